package logix

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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
}

// errDead wraps the failure that ended a session.
var errDead = errors.New("connection lost")

func dial(ctx context.Context, addr string, gate *connectors.Gate, timeout time.Duration, route []byte) (*session, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	return &session{conn: c, gate: gate, timeout: timeout, route: route, origSerial: rand.Uint32(), connSerial: uint16(rand.Uint32())}, nil
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

// unconnected sends a request with SendRRData and returns the reply.
func (s *session) unconnected(ctx context.Context, object string, req []byte) (mrReply, error) {
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
		r, err := s.unconnected(ctx, "connection", forwardOpenMR(large, rand.Uint32(), s.connSerial, vendorID, s.origSerial, size, s.route))
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

// call sends a connected request and returns its reply.
func (s *session) call(ctx context.Context, object string, req []byte) (mrReply, error) {
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

// multiple sends requests in one Multiple Service Packet and returns each
// reply. A failed embedded request shows in its own reply's status.
func (s *session) multiple(ctx context.Context, object string, reqs [][]byte) ([]mrReply, error) {
	r, err := s.call(ctx, object, multipleMR(reqs))
	if err != nil {
		return nil, err
	}
	if r.Status != statusOK && r.Status != statusEmbeddedError {
		return nil, r.err(false)
	}
	parts, err := splitMultiple(r.Data)
	if err != nil {
		return nil, err
	}
	if len(parts) != len(reqs) {
		return nil, fmt.Errorf("multiple service packet: %d replies to %d requests", len(parts), len(reqs))
	}
	out := make([]mrReply, len(parts))
	for i, p := range parts {
		if out[i], err = parseMRReply(p); err != nil {
			return nil, fmt.Errorf("multiple service packet reply %d: %w", i, err)
		}
	}
	return out, nil
}

// close ends the connection and session politely (when the transport still
// works) and closes the socket.
func (s *session) close(ctx context.Context) {
	if s.dead == nil && s.connected {
		s.unconnected(ctx, "connection", forwardCloseMR(s.connSerial, vendorID, s.origSerial, s.route))
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
