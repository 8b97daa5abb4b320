package logix

import (
	"encoding/binary"
	"testing"
)

// Fuzz targets for the simulator's parsers of client bytes: EPATHs, common
// packets, whole encapsulation frames through the request handler, and
// scenario files.

func FuzzParsePath(f *testing.F) {
	f.Add([]byte{0x20, 0x6B, 0x25, 0x00, 0x01, 0x02})
	f.Add([]byte{0x91, 0x03, 'A', 'b', 'c', 0x00, 0x28, 0x01, 0x29, 0x00, 0x01, 0x00})
	f.Add([]byte{0x01, 0x00, 0x12, 0x09, '1', '0', '.', '0', '.', '0', '.', '1', 0x00, 0x01, 0x00})
	f.Add([]byte{0x0F, 0x12, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		segs, err := parsePath(b)
		if err != nil {
			return
		}
		for _, s := range segs {
			if s.Kind < segPort || s.Kind > segSymbol {
				t.Fatalf("segment kind %d", s.Kind)
			}
		}
		_, _, _ = parseTagPath(string(b))
	})
}

func FuzzParseCPF(f *testing.F) {
	f.Add(appendCPF(nil, cpfItem{Type: itemNull}, cpfItem{Type: itemUnconnData, Data: []byte{1, 2, 0x20, 1, 0x24, 1}}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 9, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := parseCPF(b)
		if err != nil {
			return
		}
		n := 8
		for _, it := range items {
			n += 4 + len(it.Data)
		}
		if n > len(b) {
			t.Fatalf("items claim %d of %d bytes", n, len(b))
		}
		for _, it := range items {
			if r, err := parseMR(it.Data); err == nil {
				parseUnconnectedSend(r.Data)
				requestKind(it.Data)
			}
		}
	})
}

// FuzzHandleFrame feeds arbitrary frames, after a valid session and
// connection, to the request handler of a demo controller. Whatever it is
// sent, it must answer or close, never panic, and refuse every write.
func FuzzHandleFrame(f *testing.F) {
	s := startTest(f, Options{})
	seed := func(cmd uint16, data []byte) {
		f.Add(binary.LittleEndian.AppendUint16(nil, cmd), data)
	}
	mrUnconn := func(m []byte) []byte {
		return appendCPF(nil, cpfItem{Type: itemNull}, cpfItem{Type: itemUnconnData, Data: m})
	}
	mrConn := func(m []byte) []byte {
		return appendCPF(nil, cpfItem{Type: itemConnAddress, Data: []byte{1, 0, 0, 0x10}}, cpfItem{Type: itemConnData, Data: append([]byte{1, 0}, m...)})
	}
	seed(cmdListIdentity, nil)
	seed(cmdSendRRData, mrUnconn([]byte{0x01, 0x02, 0x20, 0x01, 0x24, 0x01}))
	seed(cmdSendRRData, mrUnconn([]byte{0x55, 0x03, 0x20, 0x6B, 0x25, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x00}))
	seed(cmdSendUnitData, mrConn([]byte{0x4C, 0x02, 0x91, 0x02, 'S', 'P', 0x01, 0x00}))
	seed(cmdSendUnitData, mrConn([]byte{0x0A, 0x02, 0x20, 0x02, 0x24, 0x01, 0x01, 0x00, 0x04, 0x00, 0x01, 0x02, 0x20, 0x01, 0x24, 0x01}))
	seed(cmdSendRRData, mrUnconn([]byte{0x52, 0x02, 0x20, 0x06, 0x24, 0x01, 0x0A, 0x0E, 0x06, 0x00, 0x01, 0x02, 0x20, 0x01, 0x24, 0x01, 0x01, 0x00, 0x01, 0x01}))
	seed(cmdSendRRData, mrUnconn([]byte{0x4C, 0x03, 0x20, 0x6C, 0x25, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00}))
	seed(cmdSendRRData, mrUnconn([]byte{0x4D, 0x02, 0x91, 0x02, 'S', 'P', 0xCA, 0x00, 0x01, 0x00, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, cmdb, data []byte) {
		if len(cmdb) < 2 || len(data) > maxEncapData {
			return
		}
		cs := &connState{conns: map[uint32]*cipConn{}}
		// A registered session and an open connection (0x10000001) to
		// the controller, as a well-behaved client would have.
		h, _, _ := s.handleFrame(cs, encapHeader{Command: cmdRegisterSession}, []byte{1, 0, 0, 0})
		if h == nil || cs.session == 0 {
			t.Fatal("register failed")
		}
		cs.conns[0x10000001] = &cipConn{target: target{slot: 0}, size: 4000}
		before := s.Refused()
		kind, read := frameKind(encapHeader{Command: binary.LittleEndian.Uint16(cmdb)}, data)
		reply, _, _ := s.handleFrame(cs, encapHeader{Command: binary.LittleEndian.Uint16(cmdb), Session: cs.session, Length: uint16(len(data))}, data)
		if reply != nil {
			if _, err := parseEncapHeader(reply); err != nil {
				t.Fatalf("reply without a header: %v", err)
			}
		}
		if !read && s.Refused() == before && kind != "cip.Malformed" {
			t.Fatalf("%s not refused", kind)
		}
	})
}

func FuzzParseScenario(f *testing.F) {
	f.Add([]byte(smallScenario))
	f.Add([]byte("identity: {revision: \"1.1\"}\ntags: [{name: A, type: REAL, dims: [2, 3], value: [1, 2]}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<14 {
			return
		}
		sc, err := ParseScenario("fuzz", b)
		if err == nil {
			if _, err := newController(sc); err != nil {
				t.Fatalf("accepted scenario fails to build: %v", err)
			}
		}
	})
}
