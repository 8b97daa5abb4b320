package s7

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ISO-on-TCP framing (RFC 1006 TPKT + ISO 8073 COTP class 0).
const (
	tpktVersion = 0x03
	cotpCR      = 0xE0 // connection request
	cotpCC      = 0xD0 // connection confirm
	cotpDR      = 0x80 // disconnect request
	cotpDT      = 0xF0 // data transfer
	cotpEOT     = 0x80 // last data unit of a TSDU
	// maxTPKT bounds one TPKT packet; the largest COTP TPDU is 8192 bytes.
	maxTPKT = 8192 + 7
	// maxRequest bounds a reassembled S7 request.
	maxRequest = 65535
)

// connState is one ISO connection's state.
type connState struct {
	// cpu is true for a connection to the CPU; otherwise module is the
	// rack/slot of the S7-capable module the connection addresses.
	connected bool
	cpu       bool
	module    [2]int
	pdu       int // negotiated PDU size; 0 before Setup Communication
	seq       byte
	pending   *pending
	// repeatEntry is set while a request hit by FaultRepeatEntry is
	// answered.
	repeatEntry bool
}

// pending is an SZL read or block list that continues on the next page.
type pending struct {
	group, subfn, seq byte
	rest              []byte
	page              int
	// last is the last entry (4 bytes) of the page sent before, for
	// FaultRepeatEntry.
	last []byte
}

// frame is one TPKT packet split into its COTP header and user data.
type frame struct {
	cotp []byte // COTP header without its length indicator
	data []byte
	size int // TPKT bytes
}

// readFrame reads one TPKT packet.
func readFrame(r io.Reader) (frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if hdr[0] != tpktVersion || hdr[1] != 0 || n < 7 || n > maxTPKT {
		return frame{}, fmt.Errorf("TPKT header % x: want version 3 and a length of 7 to %d", hdr, maxTPKT)
	}
	buf := make([]byte, n)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		return frame{}, err
	}
	return parseFrame(buf)
}

// parseFrame splits a whole TPKT packet.
func parseFrame(buf []byte) (frame, error) {
	if len(buf) < 7 {
		return frame{}, fmt.Errorf("TPKT packet of %d bytes: want at least 7", len(buf))
	}
	li := int(buf[4])
	if li < 2 || 5+li > len(buf) {
		return frame{}, fmt.Errorf("COTP length indicator %d does not fit a %d-byte packet", li, len(buf))
	}
	return frame{cotp: buf[5 : 5+li], data: buf[5+li:], size: len(buf)}, nil
}

// serve runs one connection until it closes or breaks the protocol.
func (s *Server) serve(c net.Conn) {
	cs := &connState{}
	var req []byte
	in := 0
	for {
		f, err := readFrame(c)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug().Err(err).Msg("s7 simulator: closing connection")
			}
			return
		}
		switch f.cotp[0] & 0xF0 {
		case cotpCR:
			if cs.connected {
				return
			}
			reply, ok := s.connect(cs, f)
			fault, stall := s.takeFault("Connect", nil, false)
			s.count("Connect", false, f.size)
			if !s.act(c, fault, stall, reply) || !ok {
				return
			}
		case cotpDT:
			if !cs.connected || len(f.cotp) < 2 {
				return
			}
			req = append(req, f.data...)
			in += f.size
			if len(req) > maxRequest {
				return
			}
			if f.cotp[1]&cotpEOT == 0 {
				continue
			}
			kind, cont := classify(req)
			fault, stall := s.takeFault(kind, objects(kind, req), cont)
			s.count(kind, !isRead(kind), in)
			if !isRead(kind) {
				s.log.Warn().Str("kind", kind).Str("remote", c.RemoteAddr().String()).Msg("s7 simulator: refused a request outside the read allowlist")
			}
			var reply []byte
			if fault != nil && fault.Action == FaultRefuse {
				reply = s.refuse(req, fault)
			} else {
				cs.repeatEntry = fault != nil && fault.Action == FaultRepeatEntry
				reply = s.handle(cs, req)
				cs.repeatEntry = false
			}
			req, in = nil, 0
			if reply == nil {
				return
			}
			if fault != nil && fault.Action == FaultTruncate {
				reply = reply[:len(reply)/2]
			}
			if !s.act(c, fault, stall, frameDT(reply, s.opt.COTPFragment)) {
				return
			}
		default: // disconnect request or anything else: close
			return
		}
	}
}

// act applies a fault action and otherwise writes the reply. It reports
// whether the connection stays open.
func (s *Server) act(c net.Conn, fault *Fault, stall chan struct{}, reply []byte) bool {
	var act FaultAction
	if fault != nil {
		act = fault.Action
	}
	switch act {
	case FaultDrop:
		return false
	case FaultStall:
		<-stall
		return false
	case FaultGarbage:
		reply = garbage(len(reply))
	case FaultTrickle:
		return s.trickle(c, fault.Interval, reply)
	}
	if s.opt.Latency > 0 {
		t := time.NewTimer(s.opt.Latency)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return false
		}
	}
	// Count before writing: a client that has read the whole reply may
	// ask for the counters at once, and must find these bytes there.
	s.mu.Lock()
	s.stats.BytesOut += int64(len(reply))
	after := s.afterWrite
	s.mu.Unlock()
	if _, err := c.Write(reply); err != nil {
		return false
	}
	if after != nil {
		after()
	}
	return act != FaultCloseAfterReply
}

// garbage returns n bytes (at least 16) that do not start a TPKT packet.
func garbage(n int) []byte {
	if n < 16 {
		n = 16
	}
	b := make([]byte, n)
	x := uint32(0x9E3779B9)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	b[0] = 0x47 // never 0x03, the TPKT version
	return b
}

// connect answers a COTP connection request: a connection confirm when the
// called TSAP addresses the CPU or an S7-capable module, otherwise a
// disconnect request. ok is false when the connection must close.
func (s *Server) connect(cs *connState, f frame) (reply []byte, ok bool) {
	cr, err := parseCR(f.cotp)
	if err != nil {
		return nil, false
	}
	rack, slot := int(cr.called[1]>>5), int(cr.called[1]&0x1F)
	s.mu.Lock()
	s.stats.CalledTSAPs[uint16(cr.called[0])<<8|uint16(cr.called[1])]++
	switch {
	case rack == s.sc.Rack && slot == s.sc.Slot:
		cs.cpu = true
	default:
		for _, m := range s.sc.Modules {
			if m.Rack == rack && m.Slot == slot && m.S7 && !m.Absent {
				cs.module = [2]int{rack, slot}
				ok = true
			}
		}
	}
	s.mu.Unlock()
	if !cs.cpu && !ok {
		return disconnectRequest(cr.srcRef), false
	}
	cs.connected = true
	s.mu.Lock()
	s.stats.Connections++
	s.mu.Unlock()
	return connectConfirm(cr), true
}

// connRequest is a parsed COTP CR.
type connRequest struct {
	srcRef  uint16
	tpdu    byte
	calling [2]byte
	called  [2]byte
}

// parseCR decodes a COTP connection request header (without its length
// indicator): code, destination and source reference, class, then
// parameters as code/length/value.
func parseCR(h []byte) (connRequest, error) {
	cr := connRequest{tpdu: 0x0A, calling: [2]byte{0x01, 0x00}}
	if len(h) < 6 || h[0]&0xF0 != cotpCR {
		return cr, fmt.Errorf("COTP CR of %d bytes: want at least 6", len(h))
	}
	cr.srcRef = binary.BigEndian.Uint16(h[3:])
	haveCalled := false
	for p := h[6:]; len(p) > 0; {
		if len(p) < 2 || int(p[1])+2 > len(p) {
			return cr, fmt.Errorf("COTP CR parameter % x is cut off", p)
		}
		code, v := p[0], p[2:2+int(p[1])]
		switch {
		case code == 0xC0 && len(v) == 1:
			cr.tpdu = v[0]
		case code == 0xC1 && len(v) == 2:
			copy(cr.calling[:], v)
		case code == 0xC2 && len(v) == 2:
			copy(cr.called[:], v)
			haveCalled = true
		}
		p = p[2+len(v):]
	}
	if !haveCalled {
		return cr, errors.New("COTP CR without a 2-byte called TSAP")
	}
	return cr, nil
}

// connectConfirm builds the 22-byte COTP CC that answers cr.
func connectConfirm(cr connRequest) []byte {
	return []byte{
		tpktVersion, 0x00, 0x00, 22, // TPKT: version 3, reserved, length 22
		17,                                    // COTP length indicator: 17 bytes follow
		cotpCC,                                // CC, credit 0
		byte(cr.srcRef >> 8), byte(cr.srcRef), // destination reference: the caller's source reference
		0x00, 0x01, // source reference
		0x00,             // class 0, no options
		0xC0, 1, cr.tpdu, // TPDU size
		0xC1, 2, cr.calling[0], cr.calling[1], // calling TSAP (echo)
		0xC2, 2, cr.called[0], cr.called[1], // called TSAP (echo)
	}
}

// disconnectRequest refuses a connection to a rack/slot nobody answers on.
func disconnectRequest(ref uint16) []byte {
	return []byte{
		tpktVersion, 0x00, 0x00, 11, // TPKT, length 11
		6,                         // COTP length indicator
		cotpDR,                    // DR
		byte(ref >> 8), byte(ref), // destination reference
		0x00, 0x01, // source reference
		0x80, // reason: normal disconnect initiated by the session entity
	}
}

// frameDT wraps an S7 PDU in TPKT + COTP DT packets, split into pieces of
// at most frag bytes when frag > 0; the last piece carries EOT.
func frameDT(pdu []byte, frag int) []byte {
	if frag <= 0 || frag >= len(pdu) {
		frag = len(pdu)
	}
	var out []byte
	for first := true; first || len(pdu) > 0; first = false {
		n := min(frag, len(pdu))
		eot := byte(0)
		if n == len(pdu) {
			eot = cotpEOT
		}
		size := 7 + n
		out = append(out, tpktVersion, 0, byte(size>>8), byte(size), 2, cotpDT, eot)
		out = append(out, pdu[:n]...)
		pdu = pdu[n:]
	}
	return out
}

// trickle writes reply one byte at a time, every byte counted before it is
// written. It gives up when the server closes or the client goes away.
func (s *Server) trickle(c net.Conn, every time.Duration, reply []byte) bool {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := range reply {
		select {
		case <-t.C:
		case <-s.done:
			return false
		}
		s.mu.Lock()
		s.stats.BytesOut++
		s.mu.Unlock()
		if _, err := c.Write(reply[i : i+1]); err != nil {
			return false
		}
	}
	return true
}
