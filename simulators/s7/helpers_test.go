package s7

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

func start(t *testing.T, sc *Scenario, opt Options) *Server {
	t.Helper()
	opt.Scenario = sc
	s, err := Start(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawClient speaks S7 to the simulator with hand-built telegrams.
type rawClient struct {
	t   *testing.T
	c   net.Conn
	ref uint16
}

// dial opens an ISO connection to called TSAP tsap and, when pdu > 0,
// negotiates the PDU.
func dial(t *testing.T, addr string, tsap uint16, pdu int) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawClient{t: t, c: c}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cr := []byte{0x03, 0x00, 0x00, 22, 17, 0xE0, 0, 0, 0, 1, 0, 0xC0, 1, 0x0A, 0xC1, 2, 1, 0, 0xC2, 2, byte(tsap >> 8), byte(tsap)}
	if _, err := c.Write(cr); err != nil {
		t.Fatal(err)
	}
	f, err := readFrame(c)
	if err != nil {
		t.Fatalf("reading CC: %v", err)
	}
	if f.cotp[0] != cotpCC {
		r.c = nil
		return r
	}
	if pdu > 0 {
		rep := r.send([]byte{0x32, 0x01, 0, 0, 0, 0, 0, 8, 0, 0, 0xF0, 0, 0, 1, 0, 1, byte(pdu >> 8), byte(pdu)})
		if len(rep) < 20 {
			t.Fatalf("setup reply % x", rep)
		}
	}
	return r
}

// send sends an S7 PDU (its reference is set here) and returns the reply
// PDU, reassembled from COTP data units.
func (r *rawClient) send(pdu []byte) []byte {
	r.t.Helper()
	r.ref++
	p := append([]byte(nil), pdu...)
	if len(p) >= 6 {
		binary.BigEndian.PutUint16(p[4:], r.ref)
	}
	if _, err := r.c.Write(frameDT(p, 0)); err != nil {
		r.t.Fatal(err)
	}
	var out []byte
	for {
		f, err := readFrame(r.c)
		if err != nil {
			r.t.Fatalf("reading reply: %v", err)
		}
		out = append(out, f.data...)
		if f.cotp[1]&cotpEOT != 0 {
			return out
		}
	}
}

// userdataPDU builds a first userdata request.
func userdataPDU(group, subfn byte, payload []byte) []byte {
	data := []byte{0x0A, 0, 0, 0}
	if payload != nil {
		data = append([]byte{0xFF, 0x09, byte(len(payload) >> 8), byte(len(payload))}, payload...)
	}
	par := []byte{0, 1, 0x12, 4, 0x11, 0x40 | group, subfn, 0}
	h := []byte{0x32, 0x07, 0, 0, 0, 0, 0, byte(len(par)), byte(len(data) >> 8), byte(len(data))}
	return append(append(h, par...), data...)
}

func continuationPDU(group, subfn, seq byte) []byte {
	return []byte{0x32, 0x07, 0, 0, 0, 0, 0, 12, 0, 4, 0, 1, 0x12, 8, 0x12, 0x40 | group, subfn, seq, 0, 0, 0, 0, 0x0A, 0, 0, 0}
}

// ud is a decoded userdata reply.
type ud struct {
	seq     byte
	more    bool
	err     uint16
	payload []byte
}

func parseUD(t *testing.T, b []byte) ud {
	t.Helper()
	p, err := parseS7(b)
	if err != nil || p.rosctr != rosUserdata || len(p.param) != 12 || len(p.data) < 4 {
		t.Fatalf("not a userdata reply: % x (%v)", b, err)
	}
	u := ud{seq: p.param[7], more: p.param[9] != 0, err: binary.BigEndian.Uint16(p.param[10:])}
	if u.err == 0 {
		u.payload = p.data[4:]
	}
	return u
}

// pages reads a userdata function to its last page.
func (r *rawClient) pages(group, subfn byte, payload []byte) (all []byte, n int) {
	r.t.Helper()
	u := parseUD(r.t, r.send(userdataPDU(group, subfn, payload)))
	if u.err != 0 {
		r.t.Fatalf("error 0x%04X", u.err)
	}
	all, n = u.payload, 1
	for u.more {
		u = parseUD(r.t, r.send(continuationPDU(group, subfn, u.seq)))
		if u.err != 0 {
			r.t.Fatalf("page %d: error 0x%04X", n+1, u.err)
		}
		all, n = append(all, u.payload...), n+1
	}
	return all, n
}
