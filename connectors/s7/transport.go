package s7

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/robinson/gos7"

	"github.com/plcwatch/plcwatch/connectors"
)

// transport is an ISO-on-TCP connection to one CPU or module. Every
// telegram it sends, including the connection request and the PDU
// negotiation, goes through the gate under a kind decoded from its bytes,
// so a telegram that is not a known read never reaches the wire.
//
// It also implements gos7.ClientHandler, so that gos7's own client can be
// run over it (the tests do, to show that gos7's writing and controlling
// functions are refused here).
type transport struct {
	addr          string
	local, remote uint16
	pduWant       int
	timeout       time.Duration
	gate          *connectors.Gate
	dial          func(ctx context.Context, addr string) (net.Conn, error)

	conn net.Conn
	pdu  int
	ref  uint16
	// reused is set while the connection carried no request yet in this
	// snapshot: a CPU may have closed it while it sat idle.
	reused bool
	// lastUse is when the last reply arrived.
	lastUse time.Time
	// ctx is used by Send, which gos7 calls without a context.
	ctx context.Context
}

// idleProbe is how long a connection may sit unused before the transport
// checks, before sending, that the CPU has not closed it.
const idleProbe = time.Second

// errTransport marks failures of the connection itself (as opposed to
// errors the CPU answered with): the connection is closed after one.
var errTransport = errors.New("S7 connection failed")

func newTransport(addr string, local, remote uint16, pdu int, timeout time.Duration, gate *connectors.Gate) *transport {
	d := &net.Dialer{}
	return &transport{addr: addr, local: local, remote: remote, pduWant: pdu, timeout: timeout, gate: gate,
		dial: func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }}
}

// open connects when there is no connection, or when the CPU closed the
// one held since the last snapshot.
func (t *transport) open(ctx context.Context) error {
	if t.conn != nil && !t.alive() {
		t.close()
	}
	if t.conn != nil {
		t.reused = true
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	conn, err := t.dial(dctx, t.addr)
	if err != nil {
		return fmt.Errorf("%w: dialing %s: %w", errTransport, t.addr, err)
	}
	t.conn, t.pdu, t.reused = conn, 0, false
	if _, err := t.roundTrip(ctx, "COTP", connectRequest(t.local, t.remote)); err != nil {
		t.close()
		return fmt.Errorf("ISO connection to TSAP 0x%04X: %w", t.remote, err)
	}
	reply, err := t.roundTrip(ctx, "PDU", setupRequest(t.pduWant))
	if err == nil {
		t.pdu, err = parseSetupReply(reply)
	}
	if err != nil {
		t.close()
		return fmt.Errorf("setup communication: %w", err)
	}
	return nil
}

// alive reports whether the peer has not closed the connection, without
// sending anything: a read that times out at once means it is open.
func (t *transport) alive() bool {
	if err := t.conn.SetReadDeadline(time.Now()); err != nil {
		return false
	}
	var b [1]byte
	_, err := t.conn.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (t *transport) close() error {
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn, t.pdu = nil, 0
	return err
}

func (t *transport) pduSize() int { return t.pdu }

// exchange sends one S7 telegram and returns the reply's S7 PDU. A failure
// of the connection is wrapped in errTransport and closes it; when the
// first request on a connection held from an earlier snapshot finds it
// closed by the CPU, the transport reconnects and sends the request again.
func (t *transport) exchange(ctx context.Context, object string, req []byte) ([]byte, error) {
	if t.conn != nil && time.Since(t.lastUse) > idleProbe && !t.alive() {
		t.close()
	}
	if t.conn == nil {
		if err := t.open(ctx); err != nil {
			return nil, err
		}
	}
	retry := t.reused
	t.reused = false
	reply, err := t.roundTrip(ctx, object, req)
	if err != nil && retry && errors.Is(err, errClosedByPeer) {
		t.close()
		if err := t.open(ctx); err != nil {
			return nil, err
		}
		reply, err = t.roundTrip(ctx, object, req)
	}
	return reply, err
}

// errClosedByPeer is a connection the CPU closed before answering.
var errClosedByPeer = errors.New("connection closed by the CPU")

// roundTrip sends one telegram through the gate and reads the reply: the
// COTP CC for a connection request, otherwise the reassembled S7 PDU,
// whose PDU reference must match the request's.
func (t *transport) roundTrip(ctx context.Context, object string, req []byte) ([]byte, error) {
	kind := decodeKind(req)
	if t.conn == nil {
		// Refuse before connecting: the gate decides first.
		if err := t.gate.Check(kind); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: not connected", errTransport)
	}
	var ref uint16
	if kind != kindConnect && len(req) >= 17 && req[7] == 0x32 {
		t.ref++
		if t.ref == 0 {
			t.ref = 1
		}
		ref = t.ref
		binary.BigEndian.PutUint16(req[11:], ref) // S7 header: PDU reference at 4, after TPKT and COTP (7)
	}
	var reply []byte
	err := t.gate.Do(ctx, connectors.Request{Kind: kind, Object: object, Size: len(req)}, func(ctx context.Context) (int, error) {
		deadline := time.Now().Add(t.timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		conn := t.conn
		if err := conn.SetDeadline(deadline); err != nil {
			return 0, err
		}
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		if _, err := conn.Write(req); err != nil {
			return 0, err
		}
		var n int
		var err error
		if kind == kindConnect {
			reply, n, err = readConnectConfirm(conn)
		} else {
			reply, n, err = readPDU(conn, t.maxReply())
		}
		return n, err
	})
	if err != nil {
		if errors.Is(err, connectors.ErrNotAllowed) {
			return nil, err
		}
		t.close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", errTransport, ctx.Err())
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			// The cause stays in the chain: monitor.ErrorClass keys the
			// "collection failed" alert by it.
			return nil, fmt.Errorf("%w: %w (%w)", errTransport, errClosedByPeer, err)
		}
		return nil, fmt.Errorf("%w: %w", errTransport, err)
	}
	t.lastUse = time.Now()
	if kind != kindConnect {
		if len(reply) < 6 || binary.BigEndian.Uint16(reply[4:]) != ref {
			t.close()
			return nil, fmt.Errorf("%w: reply does not answer PDU reference %d (% x)", errTransport, ref, head(reply))
		}
	}
	return reply, nil
}

func (t *transport) maxReply() int {
	if t.pdu == 0 {
		return 1024
	}
	return t.pdu
}

// readConnectConfirm reads the COTP CC that answers a CR.
func readConnectConfirm(r io.Reader) ([]byte, int, error) {
	b, err := readTPKT(r)
	if err != nil {
		return nil, len(b), err
	}
	if b[5]&0xF0 != 0xD0 {
		if b[5]&0xF0 == 0x80 {
			return nil, len(b), errors.New("the CPU refused the connection (COTP disconnect request): check rack and slot or TSAP")
		}
		return nil, len(b), fmt.Errorf("COTP reply type 0x%02X: want a connection confirm (0xD0)", b[5])
	}
	return b, len(b), nil
}

// readTPKT reads one TPKT packet (RFC 1006): version 3, reserved, length
// (2, including the header), then the COTP TPDU.
func readTPKT(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if h[0] != 0x03 || h[1] != 0x00 || n < 7 || n > 8192+7 {
		return nil, fmt.Errorf("not a TPKT packet (% x): want version 3 and a length of 7 to 8199", h)
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return b[:4], err
	}
	li := int(b[4])
	if li < 2 || 5+li > n {
		return b, fmt.Errorf("COTP length indicator %d does not fit a %d-byte packet", li, n)
	}
	return b, nil
}

// readPDU reads COTP data TPDUs until one carries EOT and returns the
// reassembled S7 PDU (at most max bytes) and the bytes read.
func readPDU(r io.Reader, max int) ([]byte, int, error) {
	var pdu []byte
	total := 0
	for {
		b, err := readTPKT(r)
		total += len(b)
		if err != nil {
			return nil, total, err
		}
		li := int(b[4])
		switch b[5] & 0xF0 {
		case 0xF0:
		case 0x80:
			return nil, total, fmt.Errorf("%w (COTP disconnect request)", errClosedByPeer)
		default:
			return nil, total, fmt.Errorf("COTP TPDU type 0x%02X: want data (0xF0)", b[5])
		}
		pdu = append(pdu, b[5+li:]...)
		if len(pdu) > max {
			return nil, total, fmt.Errorf("reply exceeds the negotiated PDU of %d bytes", max)
		}
		if b[6]&0x80 != 0 {
			return pdu, total, nil
		}
	}
}

// Send implements gos7.Transporter: it sends a whole telegram through the
// gate and returns the reply laid out as gos7 expects (TPKT and COTP
// header, then the S7 PDU). Connections are made by open, not by gos7.
func (t *transport) Send(req []byte) ([]byte, error) {
	ctx := t.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	b := append([]byte(nil), req...)
	if decodeKind(b) == kindConnect {
		return nil, fmt.Errorf("%w: connections are opened by the connector", connectors.ErrNotAllowed)
	}
	pdu, err := t.exchange(ctx, "gos7", b)
	if err != nil {
		return nil, err
	}
	return frame(pdu), nil
}

// Verify implements gos7.Packager; replies are checked in roundTrip.
func (t *transport) Verify(request, response []byte) error { return nil }

var _ gos7.ClientHandler = (*transport)(nil)
