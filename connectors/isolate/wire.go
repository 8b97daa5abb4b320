package isolate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/snapshots"
)

// The pipe between parent and child carries frames: a 4-byte big-endian
// length, then that many bytes: one byte naming the message type, then its
// body. The two large messages of a session (start, result) are gob-encoded;
// the per-request messages (ask, grant, done) and cancel, hundreds per
// snapshot, are a fixed sequence of varints and length-prefixed strings
// (encodeSmall), because a fresh gob encoder sends, and a fresh decoder
// compiles, the whole message type with every frame: that was most of the
// CPU an isolated snapshot cost. Each frame is encoded on its own, so a
// reader needs no state from earlier frames and a frame longer than maxFrame
// is refused before it is read.

// maxFrame bounds one frame (a snapshot of a million nodes fits).
const maxFrame = 256 << 20

// Message types.
const (
	msgStart  = "start"  // parent -> child: what to read, with the secrets
	msgCancel = "cancel" // parent -> child: stop now (shutdown)
	msgGrant  = "grant"  // parent -> child: request ID may be sent (or Err)
	msgAsk    = "ask"    // child -> parent: may request ID be sent?
	msgDone   = "done"   // child -> parent: request ID ended
	msgResult = "result" // child -> parent: the snapshot, or Err
)

// Error classes carried across the pipe, so that the parent's limiter can
// tell a caller's cancellation from a device's failure.
const (
	classCanceled = "canceled"
	classDeadline = "deadline"
	classOther    = "error"
	// classAnswered is the device's own answer refusing one request
	// (connectors.Answered): it must not count towards the breaker.
	classAnswered = "answered"
)

// message is one frame's content; which fields are set depends on Type.
type message struct {
	Type string
	ID   uint64

	Start *startMsg

	// ask and done
	Kind, Object string
	Size         int
	BytesIn      int
	BytesOut     int // done: the bytes the request sent, as the child measured them

	// grant, done and result: a failure, with its class
	Err      string
	ErrClass string
	// Class is the result error's stable class (monitor.ErrorClass in the
	// child, where the typed error still is), for alert fingerprints.
	Class string

	// result
	Snapshot *snapshots.Snapshot
}

// startMsg is everything the child needs to take one snapshot. The password
// travels only here, over the pipe: never in argv or the environment.
type startMsg struct {
	Device   *config.Device
	Global   classify.Rules
	Sources  []string // Global[i].Source, which gob would keep but JSON would not
	Prev     *snapshots.Snapshot
	User     string
	Password string
	// RequestTimeout bounds each request in the child (0: none).
	RequestTimeout time.Duration
	// Deadline is the snapshot's deadline (zero: none).
	Deadline time.Time
	LogLevel string
	// MemoryLimit caps the child's data segment in bytes (0: none).
	MemoryLimit int64
}

// writer sends frames; safe for concurrent use.
type writer struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *writer) send(m *message) error {
	b, err := encodeFrame(m)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.w.Write(b)
	return err
}

// Message type codes, the first byte of a frame's body.
var typeCodes = map[string]byte{msgStart: 1, msgCancel: 2, msgGrant: 3, msgAsk: 4, msgDone: 5, msgResult: 6}

// typeNames is typeCodes inverted.
var typeNames = func() map[byte]string {
	m := map[byte]string{}
	for n, c := range typeCodes {
		m[c] = n
	}
	return m
}()

// encodeFrame returns m as one frame, length header included.
func encodeFrame(m *message) ([]byte, error) {
	code, ok := typeCodes[m.Type]
	if !ok {
		return nil, fmt.Errorf("encoding a frame: unknown message type %q", m.Type)
	}
	b := append(make([]byte, 0, 64), 0, 0, 0, 0, code)
	switch m.Type {
	case msgStart, msgResult:
		buf := bytes.NewBuffer(b)
		if err := gob.NewEncoder(buf).Encode(m); err != nil {
			return nil, fmt.Errorf("encoding %s frame: %w", m.Type, err)
		}
		b = buf.Bytes()
	default:
		b = encodeSmall(b, m)
	}
	if len(b)-4 > maxFrame {
		return nil, fmt.Errorf("%s frame of %d bytes exceeds %d", m.Type, len(b)-4, maxFrame)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}

// encodeSmall appends the fields of a per-request message, in this order:
// ID (uvarint), Size, BytesIn, BytesOut (varints), Kind, Object, Err,
// ErrClass, Class (each a uvarint length and that many bytes).
func encodeSmall(b []byte, m *message) []byte {
	b = binary.AppendUvarint(b, m.ID)
	for _, n := range []int{m.Size, m.BytesIn, m.BytesOut} {
		b = binary.AppendVarint(b, int64(n))
	}
	for _, s := range []string{m.Kind, m.Object, m.Err, m.ErrClass, m.Class} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeSmall is encodeSmall's inverse; it fails on a truncated field, a
// string longer than what is left, or bytes after the last field.
func decodeSmall(b []byte, m *message) error {
	id, n := binary.Uvarint(b)
	if n <= 0 {
		return errors.New("request id: truncated or overlong varint")
	}
	m.ID, b = id, b[n:]
	for i, p := range []*int{&m.Size, &m.BytesIn, &m.BytesOut} {
		v, n := binary.Varint(b)
		if n <= 0 || v < math.MinInt32 || v > math.MaxInt32 {
			return fmt.Errorf("integer field %d: want a varint within 32 bits", i+1)
		}
		*p, b = int(v), b[n:]
	}
	for _, f := range []struct {
		name string
		p    *string
	}{{"kind", &m.Kind}, {"object", &m.Object}, {"error", &m.Err}, {"error class", &m.ErrClass}, {"class", &m.Class}} {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return fmt.Errorf("%s: length %d with %d bytes left", f.name, l, max(len(b)-n, 0))
		}
		*f.p, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	if len(b) > 0 {
		return fmt.Errorf("%d bytes after the last field", len(b))
	}
	return nil
}

// reader receives frames; not safe for concurrent use.
type reader struct{ r *bufio.Reader }

func newReader(r io.Reader) *reader { return &reader{r: bufio.NewReader(r)} }

// next reads one frame. io.EOF means the other side closed the pipe between
// frames; a torn or oversized frame is an error naming what was wrong.
func (r *reader) next() (*message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("frame header: %w", err)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxFrame {
		return nil, fmt.Errorf("frame length %d: want 1 to %d bytes", n, maxFrame)
	}
	// Grow with what arrives, not with what the header claims.
	var body bytes.Buffer
	if _, err := io.CopyN(&body, r.r, int64(n)); err != nil {
		return nil, fmt.Errorf("frame body of %d bytes: %w", n, noEOF(err))
	}
	b := body.Bytes()
	typ, ok := typeNames[b[0]]
	if !ok {
		return nil, fmt.Errorf("frame of %d bytes: unknown message type %d, want 1 to %d", n, b[0], len(typeCodes))
	}
	m := new(message)
	switch typ {
	case msgStart, msgResult:
		if err := gob.NewDecoder(bytes.NewReader(b[1:])).Decode(m); err != nil {
			return nil, fmt.Errorf("decoding a %s frame of %d bytes: %w", typ, n, err)
		}
		if m.Type != typ {
			return nil, fmt.Errorf("a %s frame holds a %q message", typ, m.Type)
		}
	default:
		if err := decodeSmall(b[1:], m); err != nil {
			return nil, fmt.Errorf("decoding a %s frame of %d bytes: %w", typ, n, err)
		}
		m.Type = typ
	}
	return m, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
