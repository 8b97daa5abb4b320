package opcua

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
)

// The simulator's public listener is a small proxy in front of gopcua's
// server. It reads the OPC UA Connection Protocol framing of everything a
// client sends, which is cleartext even on encrypted channels, so it can
// count the channel-level messages (HEL, OPN, CLO) that never reach gopcua's
// service handlers, and inject faults at the TCP level: drop the connection
// after N service requests, or stall.

// headerLen is the size of the UACP message header.
const headerLen = 8

// maxFrame bounds one chunk; gopcua negotiates 64 KiB buffers.
const maxFrame = 1 << 24

// frameHeader is the UACP header that starts every chunk.
type frameHeader struct {
	// Type is HEL, ACK, ERR, RHE, OPN, CLO or MSG.
	Type string
	// Chunk is 'F' (final), 'C' (intermediate) or 'A' (abort).
	Chunk byte
	// Size is the whole chunk's length including the header.
	Size uint32
}

// parseHeader decodes a chunk header:
//
//	bytes 0..2  message type, ASCII ("MSG")
//	byte  3     chunk type, ASCII ('F', 'C' or 'A')
//	bytes 4..7  message size, uint32 little endian, header included
func parseHeader(b []byte) (frameHeader, error) {
	if len(b) < headerLen {
		return frameHeader{}, fmt.Errorf("UACP header: want %d bytes, got %d", headerLen, len(b))
	}
	h := frameHeader{Type: string(b[0:3]), Chunk: b[3], Size: binary.LittleEndian.Uint32(b[4:8])}
	switch h.Type {
	case "HEL", "ACK", "ERR", "RHE", "OPN", "CLO", "MSG":
	default:
		return frameHeader{}, fmt.Errorf("UACP header: unknown message type %q", b[0:3])
	}
	switch h.Chunk {
	case 'F', 'C', 'A':
	default:
		return frameHeader{}, fmt.Errorf("UACP header: chunk type %q, want F, C or A", h.Chunk)
	}
	if h.Size < headerLen || h.Size > maxFrame {
		return frameHeader{}, fmt.Errorf("UACP header: message size %d, want %d to %d", h.Size, headerLen, maxFrame)
	}
	return h, nil
}

var wireKinds = map[string]string{"HEL": "Hello", "OPN": "OpenSecureChannel", "CLO": "CloseSecureChannel", "RHE": "ReverseHello"}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // listener closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.clients++
		s.mu.Unlock()
		s.wg.Add(1)
		go s.proxy(c)
	}
}

func (s *Server) forget(cs ...net.Conn) {
	s.mu.Lock()
	for _, c := range cs {
		delete(s.conns, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

func (s *Server) proxy(client net.Conn) {
	defer s.wg.Done()
	up, err := net.Dial("tcp", s.innerAddr)
	if err != nil {
		s.log.Error().Err(err).Msg("simulator cannot reach its OPC UA server")
		s.forget(client)
		s.clientGone()
		return
	}
	s.mu.Lock()
	s.conns[up] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	done := func() {
		once.Do(func() {
			s.forget(client, up)
			s.clientGone()
		})
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		n, _ := io.Copy(client, up)
		s.bytesOut.Add(n)
		done()
	}()
	defer done()
	hdr := make([]byte, headerLen)
	buf := make([]byte, 0, 1<<16)
	for {
		if _, err := io.ReadFull(client, hdr); err != nil {
			return
		}
		h, err := parseHeader(hdr)
		if err != nil {
			s.log.Warn().Err(err).Msg("closing connection on a malformed frame")
			s.count("Invalid")
			s.refused.Add(1)
			return
		}
		if cap(buf) < int(h.Size) {
			buf = make([]byte, h.Size)
		}
		buf = buf[:h.Size]
		copy(buf, hdr)
		if _, err := io.ReadFull(client, buf[headerLen:]); err != nil {
			return
		}
		if s.limits.OnFrame != nil {
			s.limits.OnFrame()
		}
		s.bytesIn.Add(int64(h.Size))
		if k, ok := wireKinds[h.Type]; ok && h.Chunk == 'F' {
			s.count(k)
		}
		if h.Type == "MSG" && h.Chunk == 'F' {
			if !s.admit() {
				return
			}
		}
		if _, err := up.Write(buf); err != nil {
			return
		}
	}
}

// clientGone counts one client connection closed, after everything it
// sent was counted, and wakes WaitIdle.
func (s *Server) clientGone() {
	s.mu.Lock()
	s.clients--
	if s.clients == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// WaitIdle returns once no client connection is open, so that every
// request a finished client sent (its last CloseSecureChannel included,
// which gopcua sends without waiting) has been counted; or when ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error {
	s.mu.Lock()
	if s.clients == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	ch := s.idle
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the simulator's clients to close: %w", ctx.Err())
	}
}

// admit applies the fault switches to one service request about to be
// forwarded: false means drop the connection.
func (s *Server) admit() bool {
	n := s.msgs.Add(1)
	s.mu.Lock()
	drop, stall, release := s.dropAt, s.stallAt, s.release
	s.mu.Unlock()
	if drop >= 0 && n > drop {
		s.dropped.Add(1)
		return false
	}
	if stall >= 0 && n > stall {
		s.stalled.Add(1)
		select {
		case <-release:
		case <-s.closing:
			return false
		}
	}
	return true
}
