package logix

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/plcwatch/plcwatch/connectors"
)

// Connection sizes: Large Forward Open asks for 4002 bytes (ControlLogix
// v20+); a controller that refuses it gets a standard 504-byte connection.
const (
	largeConnSize    = 4002
	standardConnSize = 504
	vendorID         = 0xFFF1 // not an ODVA-assigned vendor
)

// session is one EtherNet/IP session with one CIP connection to the
// controller. Every frame it sends passes the gate, named by requestKind
// from its own bytes.
type session struct {
	conn    net.Conn
	addr    string
	gate    *connectors.Gate
	timeout time.Duration
	route   []byte

	handle     uint32
	connID     uint32 // O->T connection id (chosen by the target)
	connSerial uint16
	origSerial uint32
	connected  bool
	seq        uint16
	maxReply   int   // largest connected reply
	dead       error // set once the TCP connection failed
	peerClosed bool  // the device closed the connection (not a timeout or garbage)
	reopens    int   // sessions opened again after the device closed one
	noMSP      bool  // the device refused Multiple Service Packet: single requests only
	// noSymbolDims: the device lists symbols without attribute 8.
	noSymbolDims bool
}

// errDead wraps the failure that ended a session.
var errDead = errors.New("connection lost")

// maxReopens bounds how often one snapshot opens a new session after the
// device closed the previous one (some devices close the connection after
// answering an error). A stalled or garbled connection is never reopened,
// so a silent device costs one timeout, not several.
const maxReopens = 4

// closedByPeer reports whether err says the device closed the connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

func dial(ctx context.Context, addr string, gate *connectors.Gate, timeout time.Duration, route []byte) (*session, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	return &session{conn: c, addr: addr, gate: gate, timeout: timeout, route: route, origSerial: rand.Uint32(), connSerial: uint16(rand.Uint32())}, nil
}

// reopen replaces a session the device closed with a new one (TCP
// connection, RegisterSession, Forward Open), within maxReopens per
// snapshot. It returns false when the session may not or could not be
// reopened; the session then stays dead.
func (s *session) reopen(ctx context.Context) bool {
	if s.dead == nil || !s.peerClosed || s.reopens >= maxReopens || ctx.Err() != nil {
		return false
	}
	s.reopens++
	s.conn.Close()
	d := net.Dialer{Timeout: s.timeout}
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		s.peerClosed = false
		s.dead = fmt.Errorf("%w: reconnecting to %s: %v", errDead, s.addr, err)
		return false
	}
	s.conn, s.dead, s.peerClosed = c, nil, false
	s.handle, s.connected, s.connID, s.seq = 0, false, 0, 0
	s.connSerial++
	if err := s.register(ctx); err != nil {
		return false
	}
	if err := s.open(ctx); err != nil {
		return false
	}
	return true
}

// roundTrip sends one frame through the gate and returns the reply frame.
// object is the coarse thing read, for plans. With noReply the frame is
// sent and nothing is read (UnregisterSession has no reply).
func (s *session) roundTrip(ctx context.Context, object string, frame []byte, noReply bool) ([]byte, error) {
	if s.dead != nil {
		return nil, s.dead
	}
	kind, embedded, err := requestKind(frame)
	if err != nil {
		return nil, err
	}
	for _, k := range embedded {
		if err := s.gate.Check(k); err != nil {
			return nil, fmt.Errorf("in a multiple service packet: %w", err)
		}
	}
	var reply []byte
	err = s.gate.Do(ctx, connectors.Request{Kind: kind, Object: object, Size: len(frame)}, func(ctx context.Context) (int, error) {
		deadline := time.Now().Add(s.timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := s.conn.SetDeadline(deadline); err != nil {
			return 0, err
		}
		stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		if _, err := s.conn.Write(frame); err != nil {
			return 0, err
		}
		if noReply {
			return 0, nil
		}
		hdr := make([]byte, encapHeaderLen)
		if _, err := io.ReadFull(s.conn, hdr); err != nil {
			return 0, err
		}
		if got, sent := binary.LittleEndian.Uint16(hdr), binary.LittleEndian.Uint16(frame); got != sent {
			return encapHeaderLen, fmt.Errorf("reply command 0x%04X to a 0x%04X request: not EtherNet/IP or out of step", got, sent)
		}
		n := int(binary.LittleEndian.Uint16(hdr[2:]))
		reply = make([]byte, encapHeaderLen+n)
		copy(reply, hdr)
		if _, err := io.ReadFull(s.conn, reply[encapHeaderLen:]); err != nil {
			return encapHeaderLen, err
		}
		return len(reply), nil
	})
	if err != nil {
		if !errors.Is(err, connectors.ErrNotAllowed) {
			s.dead = fmt.Errorf("%w: %s %s: %v", errDead, kind, object, err)
			s.peerClosed = closedByPeer(err)
			s.conn.Close()
			return nil, s.dead
		}
		return nil, err
	}
	return reply, nil
}

// register opens the EtherNet/IP session.
func (s *session) register(ctx context.Context) error {
	reply, err := s.roundTrip(ctx, "session", registerSessionFrame(), false)
	if err != nil {
		return fmt.Errorf("registering session: %w", err)
	}
	h, _, err := parseReplyFrame(reply, cmdRegisterSession)
	if err != nil {
		return fmt.Errorf("registering session: %w", err)
	}
	if h == 0 {
		return fmt.Errorf("registering session: the device returned session handle 0")
	}
	s.handle = h
	return nil
}

// unconnected sends a request with SendRRData and returns the reply. When
// the device had closed the session, it is reopened and the request sent
// again once.
func (s *session) unconnected(ctx context.Context, object string, req []byte) (mrReply, error) {
	r, err := s.unconnected1(ctx, object, req)
	if err != nil && s.reopen(ctx) {
		return s.unconnected1(ctx, object, req)
	}
	return r, err
}

func (s *session) unconnected1(ctx context.Context, object string, req []byte) (mrReply, error) {
	reply, err := s.roundTrip(ctx, object, rrDataFrame(s.handle, req), false)
	if err != nil {
		return mrReply{}, err
	}
	_, d, err := parseReplyFrame(reply, cmdSendRRData)
	if err != nil {
		return mrReply{}, err
	}
	return parseMRReply(d)
}

// open makes the CIP connection: Large Forward Open, and a standard one if
// the controller refuses it.
func (s *session) open(ctx context.Context) error {
	for _, large := range []bool{true, false} {
		size := standardConnSize
		if large {
			size = largeConnSize
		}
		r, err := s.unconnected1(ctx, "connection", forwardOpenMR(large, rand.Uint32(), s.connSerial, vendorID, s.origSerial, size, s.route))
		if err != nil {
			return fmt.Errorf("forward open: %w", err)
		}
		if err := r.err(false); err != nil {
			if large {
				continue
			}
			return fmt.Errorf("forward open: %w", err)
		}
		if len(r.Data) < 4 {
			return fmt.Errorf("forward open reply: %w", errShort)
		}
		s.connID = binary.LittleEndian.Uint32(r.Data)
		s.connected = true
		s.maxReply = size - 2
		return nil
	}
	return nil
}

// call sends a connected request and returns its reply. When the device
// had closed the session, it is reopened and the request sent again once.
func (s *session) call(ctx context.Context, object string, req []byte) (mrReply, error) {
	r, err := s.call1(ctx, object, req)
	if err != nil && s.reopen(ctx) {
		return s.call1(ctx, object, req)
	}
	return r, err
}

func (s *session) call1(ctx context.Context, object string, req []byte) (mrReply, error) {
	s.seq++
	reply, err := s.roundTrip(ctx, object, unitDataFrame(s.handle, s.connID, s.seq, req), false)
	if err != nil {
		return mrReply{}, err
	}
	_, d, err := parseReplyFrame(reply, cmdSendUnitData)
	if err != nil {
		return mrReply{}, err
	}
	return parseMRReply(d)
}

// part is one embedded reply of a Multiple Service Packet, or why it
// cannot be used (truncated, not a reply).
type part struct {
	r   mrReply
	err error
}

// multiple sends requests in one Multiple Service Packet and returns each
// embedded reply. An error means the packet as a whole is unusable: the
// transport failed, the device answered it with an error status (0x08:
// it does not take Multiple Service Packets at all, and noMSP is set), or
// its offset table is wrong. A device that closes the connection on a
// Multiple Service Packet is sent single requests from then on too.
func (s *session) multiple(ctx context.Context, object string, reqs [][]byte) ([]part, error) {
	r, err := s.call1(ctx, object, multipleMR(reqs))
	if err != nil {
		if s.peerClosed {
			s.noMSP = true
		}
		return nil, err
	}
	if r.Status != statusOK && r.Status != statusEmbeddedError {
		if r.Status == statusServiceNotSupported {
			s.noMSP = true
		}
		return nil, fmt.Errorf("multiple service packet: %w", r.err(false))
	}
	parts, err := splitMultiple(r.Data)
	if err != nil {
		return nil, err
	}
	if len(parts) != len(reqs) {
		return nil, fmt.Errorf("multiple service packet: %d replies to %d requests", len(parts), len(reqs))
	}
	out := make([]part, len(parts))
	for i, p := range parts {
		out[i].r, out[i].err = parseMRReply(p)
		if out[i].err == nil && out[i].r.Service != reqs[i][0] {
			out[i].err = fmt.Errorf("embedded reply to service 0x%02X, the request was 0x%02X", out[i].r.Service, reqs[i][0])
		}
		if out[i].err != nil {
			out[i].err = fmt.Errorf("multiple service packet reply %d: %w", i, out[i].err)
		}
	}
	return out, nil
}

// listIdentity asks for the device's identity with the ListIdentity
// encapsulation command, on the session's TCP connection.
func (s *session) listIdentity(ctx context.Context) (identity, error) {
	reply, err := s.roundTrip(ctx, objListIdentity, listIdentityFrame(), false)
	if err != nil && s.reopen(ctx) {
		reply, err = s.roundTrip(ctx, objListIdentity, listIdentityFrame(), false)
	}
	if err != nil {
		return identity{}, fmt.Errorf("list identity: %w", err)
	}
	_, d, err := parseReplyFrame(reply, cmdListIdentity)
	if err != nil {
		return identity{}, fmt.Errorf("list identity: %w", err)
	}
	return parseListIdentity(d)
}

// close ends the connection and session politely (when the transport still
// works) and closes the socket.
func (s *session) close(ctx context.Context) {
	if s.dead == nil && s.connected {
		s.unconnected1(ctx, "connection", forwardCloseMR(s.connSerial, vendorID, s.origSerial, s.route))
	}
	if s.dead == nil && s.handle != 0 {
		if _, err := s.roundTrip(ctx, "session", unregisterSessionFrame(s.handle), true); err == nil {
			// The target closes the TCP connection after UnregisterSession
			// (CIP Vol. 2, 2-4.5); wait briefly for that so the device has
			// seen the whole conversation before this returns.
			wait := min(s.timeout, time.Second)
			s.conn.SetReadDeadline(time.Now().Add(wait))
			io.Copy(io.Discard, io.LimitReader(s.conn, 1<<16))
		}
	}
	s.conn.Close()
}
