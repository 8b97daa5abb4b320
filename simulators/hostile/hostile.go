// Package hostile runs misbehaving servers on loopback for tests of
// plcwatch's robustness: a proxy in front of a real simulator that stalls,
// trickles its replies one byte at a time, answers garbage, truncates a
// reply, drops the connection mid-snapshot, or rewrites a reply with an
// absurd length (for OPC UA, the variant array of negative length that
// panics gopcua v0.9.0's decoder). It speaks just enough of each protocol's
// framing (UACP, TPKT, EtherNet/IP encapsulation) to find reply boundaries.
package hostile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Modes.
const (
	// Stall accepts and reads but never answers.
	Stall = "stall"
	// Slow forwards the real replies one byte per Interval.
	Slow = "slow"
	// Garbage answers every request with bytes that are no frame at all.
	Garbage = "garbage"
	// Truncate forwards replies until the After-th, sends half of it and
	// closes the connection.
	Truncate = "truncate"
	// Drop forwards After replies, then closes the connection.
	Drop = "drop"
	// AbsurdLength rewrites the After-th reply's length field to the
	// largest value it can hold (TPKT, EtherNet/IP) or, for OPC UA, the
	// first Read response after it into one holding a variant array of
	// negative length.
	AbsurdLength = "absurd-length"
)

// Modes lists every mode, for table tests.
var Modes = []string{Stall, Slow, Garbage, Truncate, Drop, AbsurdLength}

// Options configure a hostile server.
type Options struct {
	// Protocol is "opcua", "s7" or "logix": how replies are framed.
	Protocol string
	// Mode is one of Modes.
	Mode string
	// Upstream is the real simulator's address; needed by every mode but
	// Stall and Garbage.
	Upstream string
	// After is the reply (1-based) that Truncate, Drop and AbsurdLength act
	// on; 0 means 3.
	After int
	// Interval is Slow's delay per byte; 0 means one second.
	Interval time.Duration
	// Listen is the address to listen on; default 127.0.0.1:0.
	Listen string
}

// Server is a running hostile server. Its counters are safe to read at any
// time.
type Server struct {
	opt  Options
	ln   net.Listener
	wg   sync.WaitGroup
	stop chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	hostile  atomic.Int64 // replies withheld, mangled or cut
	requests atomic.Int64 // client frames (or reads) seen
}

// Start listens and serves until Close.
func Start(opt Options) (*Server, error) {
	if opt.After == 0 {
		opt.After = 3
	}
	if opt.Interval == 0 {
		opt.Interval = time.Second
	}
	if opt.Listen == "" {
		opt.Listen = "127.0.0.1:0"
	}
	switch opt.Protocol {
	case "opcua", "s7", "logix":
	default:
		return nil, fmt.Errorf("hostile: protocol %q: want opcua, s7 or logix", opt.Protocol)
	}
	ok := false
	for _, m := range Modes {
		ok = ok || m == opt.Mode
	}
	if !ok {
		return nil, fmt.Errorf("hostile: mode %q: want one of %v", opt.Mode, Modes)
	}
	if opt.Upstream == "" && opt.Mode != Stall && opt.Mode != Garbage {
		return nil, fmt.Errorf("hostile: mode %s needs an upstream simulator", opt.Mode)
	}
	ln, err := net.Listen("tcp", opt.Listen)
	if err != nil {
		return nil, err
	}
	s := &Server{opt: opt, ln: ln, stop: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Hostile returns how many replies were withheld, mangled or cut so far.
func (s *Server) Hostile() int64 { return s.hostile.Load() }

// Requests returns how many client frames the server has seen.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Close stops the server and every connection and waits for its goroutines.
func (s *Server) Close() error {
	close(s.stop)
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stop:
		c.Close()
		return false
	default:
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	switch s.opt.Mode {
	case Stall:
		// Read and count whatever comes; answer nothing.
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				s.requests.Add(1)
				s.hostile.Add(1)
			}
			if err != nil {
				return
			}
		}
	case Garbage:
		buf := make([]byte, 4096)
		junk := []byte("\x8e000\x8e\xff\xff\xff\x7fGARBAGE\x00\x01\x02")
		for {
			n, err := c.Read(buf)
			if n > 0 {
				s.requests.Add(1)
				s.hostile.Add(1)
				if _, err := c.Write(junk); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	up, err := net.Dial("tcp", s.opt.Upstream)
	if err != nil {
		return
	}
	if !s.track(up) {
		return
	}
	defer s.untrack(up)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer c.Close()
		defer up.Close()
		if s.opt.Protocol == "opcua" {
			// Frame by frame, with the endpoint URL the client asks for
			// made the upstream's: gopcua's server answers GetEndpoints
			// and CreateSession only for its own URLs.
			for {
				f, err := readFrame(c, "opcua")
				if err != nil {
					return
				}
				s.requests.Add(1)
				if _, err := up.Write(s.swapURL(f, true)); err != nil {
					return
				}
			}
		}
		// Client -> upstream, counting reads as requests.
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				s.requests.Add(1)
				if _, err := up.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	s.replies(c, up)
}

// replies forwards upstream -> client frame by frame, applying the mode.
func (s *Server) replies(c, up net.Conn) {
	n := 0
	opcuaArmed := false
	for {
		f, err := readFrame(up, s.opt.Protocol)
		if err != nil {
			return
		}
		n++
		if s.opt.Protocol == "opcua" {
			f = s.swapURL(f, false)
		}
		switch s.opt.Mode {
		case Slow:
			s.hostile.Add(1)
			t := time.NewTicker(s.opt.Interval)
			for i := range f {
				if _, err := c.Write(f[i : i+1]); err != nil {
					t.Stop()
					return
				}
				select {
				case <-t.C:
				case <-s.stop:
					t.Stop()
					return
				}
			}
			t.Stop()
			continue
		case Truncate:
			if n == s.opt.After {
				s.hostile.Add(1)
				c.Write(f[:len(f)/2])
				return
			}
		case Drop:
			if n > s.opt.After {
				s.hostile.Add(1)
				return
			}
		case AbsurdLength:
			if s.opt.Protocol == "opcua" {
				if n >= s.opt.After {
					opcuaArmed = true
				}
				if opcuaArmed {
					if g, ok := negativeArrayRead(f); ok {
						s.hostile.Add(1)
						f = g
						opcuaArmed = false
					}
				}
			} else if n == s.opt.After && len(f) >= 4 {
				s.hostile.Add(1)
				f = append([]byte(nil), f...)
				f[2], f[3] = 0xff, 0xff
			}
		}
		if _, err := c.Write(f); err != nil {
			return
		}
	}
}

// swapURL replaces the proxy's address with the upstream's in a cleartext
// frame (toUpstream) or back. Loopback ports from port 0 have five digits,
// so both addresses have the same length and no length field changes; a
// frame where they differ is left alone.
func (s *Server) swapURL(f []byte, toUpstream bool) []byte {
	from, to := []byte(s.Addr()), []byte(s.opt.Upstream)
	if !toUpstream {
		from, to = to, from
	}
	if len(from) != len(to) {
		return f
	}
	return bytes.ReplaceAll(f, from, to)
}

// readFrame reads one frame:
//
//	opcua: UACP header, bytes 4..7 the chunk size (LE, header included)
//	s7:    TPKT header, bytes 2..3 the frame size (BE, header included)
//	logix: EtherNet/IP encapsulation, 24-byte header, bytes 2..3 the data
//	       length that follows it (LE)
func readFrame(r io.Reader, protocol string) ([]byte, error) {
	var hdrLen int
	switch protocol {
	case "opcua":
		hdrLen = 8
	case "s7":
		hdrLen = 4
	default:
		hdrLen = 24
	}
	hdr := make([]byte, hdrLen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	var total int
	switch protocol {
	case "opcua":
		total = int(binary.LittleEndian.Uint32(hdr[4:8]))
	case "s7":
		total = int(binary.BigEndian.Uint16(hdr[2:4]))
	default:
		total = 24 + int(binary.LittleEndian.Uint16(hdr[2:4]))
	}
	if total < hdrLen || total > 1<<24 {
		return nil, errors.New("hostile: upstream frame length out of range")
	}
	f := make([]byte, total)
	copy(f, hdr)
	if _, err := io.ReadFull(r, f[hdrLen:]); err != nil {
		return nil, err
	}
	return f, nil
}

// readResponseID is ReadResponse_Encoding_DefaultBinary (OPC UA Part 6).
const readResponseID = 634

// negativeArrayRead returns f, if it is a final MSG chunk on a security-None
// channel carrying a ReadResponse, rewritten to hold one DataValue whose
// variant is an array of Guid with a negative length (0x8e303030, the fuzz
// input that panics gopcua v0.9.0). The layout (Part 6, 6.7.2 and 5.2):
//
//	0..7    UACP header "MSGF" + size
//	8..11   secure channel id
//	12..15  token id (symmetric security header)
//	16..19  sequence number
//	20..23  request id
//	24..27  type id, four-byte NodeId: 0x01, ns 0, id u16 LE
//	28..    ResponseHeader: timestamp (8), request handle (4), ...
func negativeArrayRead(f []byte) ([]byte, bool) {
	if len(f) < 40 || string(f[0:4]) != "MSGF" || f[24] != 0x01 || f[25] != 0 ||
		binary.LittleEndian.Uint16(f[26:28]) != readResponseID {
		return nil, false
	}
	g := append([]byte(nil), f[:40]...) // through the timestamp and request handle
	g = append(g,
		0, 0, 0, 0, // ServiceResult Good
		0x00,                   // ServiceDiagnostics: empty DiagnosticInfo
		0xff, 0xff, 0xff, 0xff, // StringTable: null array
		0x00, 0x00, 0x00, // AdditionalHeader: ExtensionObject, null NodeId, no body
		1, 0, 0, 0, // Results: one DataValue
		0x01,                   // DataValue mask: value present
		0x8e,                   // Variant: array (0x80) of Guid (14)
		0x30, 0x30, 0x30, 0x8e, // array length 0x8e303030: negative
		0xff, 0xff, 0xff, 0xff, // DiagnosticInfos: null array
	)
	binary.LittleEndian.PutUint32(g[4:8], uint32(len(g)))
	return g, true
}
