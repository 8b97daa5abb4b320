package isolate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/snapshots"
)

// The pipe between parent and child carries frames: a 4-byte big-endian
// length, then one gob-encoded message of that many bytes. Each frame is
// encoded on its own, so a reader needs no state from earlier frames and a
// frame longer than maxFrame is refused before it is read.

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
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, 0, 0})
	if err := gob.NewEncoder(&buf).Encode(m); err != nil {
		return fmt.Errorf("encoding %s frame: %w", m.Type, err)
	}
	b := buf.Bytes()
	if len(b)-4 > maxFrame {
		return fmt.Errorf("%s frame of %d bytes exceeds %d", m.Type, len(b)-4, maxFrame)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.w.Write(b)
	return err
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
	m := new(message)
	if err := gob.NewDecoder(&body).Decode(m); err != nil {
		return nil, fmt.Errorf("decoding a frame of %d bytes: %w", n, err)
	}
	return m, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
