package isolate

import (
	"bytes"
	"encoding/binary"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/snapshots"
)

// TestFrameRoundTrip: every message type comes back from the pipe as it was
// sent, the per-request ones in the compact encoding and start and result as
// gob.
func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    message
	}{
		{name: "ask", m: message{Type: msgAsk, ID: 7, Kind: "s7.ReadVar", Object: "DB10", Size: 31}},
		{name: "grant", m: message{Type: msgGrant, ID: 1 << 40}},
		{name: "refused grant", m: message{Type: msgGrant, ID: 3, Err: "device d: waiting for the request limits: context canceled", ErrClass: classCanceled}},
		{name: "done", m: message{Type: msgDone, ID: 9, BytesIn: 1 << 20, BytesOut: 240}},
		{name: "failed done", m: message{Type: msgDone, ID: 9, Err: "read tcp: i/o timeout", ErrClass: classDeadline, Class: "timeout"}},
		{name: "unicode strings", m: message{Type: msgAsk, ID: 2, Kind: "opcua.Read", Object: "ns=1;s=Käse/Wärme"}},
		{name: "cancel", m: message{Type: msgCancel}},
		{name: "start", m: message{Type: msgStart, Start: &startMsg{Device: &config.Device{Name: "plc1", Protocol: "s7"}, User: "u", Password: "p", LogLevel: "info"}}},
		{name: "result", m: message{Type: msgResult, Snapshot: &snapshots.Snapshot{Device: "plc1", Items: []snapshots.Item{{Path: "a/b"}}}}},
		{name: "failed result", m: message{Type: msgResult, Err: "boom", ErrClass: classOther, Class: "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := &writer{w: &buf}
			// Twice: a frame needs nothing from the one before it.
			for range 2 {
				if err := w.send(&tc.m); err != nil {
					t.Fatal(err)
				}
			}
			r := newReader(&buf)
			for i := range 2 {
				got, err := r.next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, &tc.m) {
					t.Errorf("frame %d = %+v, want %+v", i, got, &tc.m)
				}
			}
			if _, err := r.next(); err != io.EOF {
				t.Errorf("after the last frame: %v, want EOF", err)
			}
		})
	}
}

// TestFrameErrors: a frame a confused child wrote is refused with what was
// wrong, never decoded into something else.
func TestFrameErrors(t *testing.T) {
	frame := func(body ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{name: "zero length", in: frame(), want: "frame length 0"},
		{name: "unknown type", in: frame(99, 0), want: "unknown message type 99"},
		{name: "truncated id", in: frame(4, 0x80), want: "request id"},
		{name: "string longer than the frame", in: frame(4, 1, 0, 0, 0, 50, 'x'), want: "kind: length 50 with 1 bytes left"},
		{name: "integer beyond 32 bits", in: frame(append([]byte{5, 1}, binary.AppendVarint(nil, 1<<40)...)...), want: "integer field 1"},
		{name: "bytes after the last field", in: frame(3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 7), want: "1 bytes after the last field"},
		{name: "gob type mismatch", in: mustFrame(t, &message{Type: msgStart, Start: &startMsg{}}, 6), want: "a result frame holds a \"start\" message"},
		{name: "garbage gob", in: frame(1, 0xff, 0xff), want: "decoding a start frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newReader(bytes.NewReader(tc.in)).next()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// mustFrame encodes m and replaces its type code with code.
func mustFrame(t *testing.T, m *message, code byte) []byte {
	t.Helper()
	b, err := encodeFrame(m)
	if err != nil {
		t.Fatal(err)
	}
	b[4] = code
	return b
}

// BenchmarkFrame is the cost of one per-request frame, written and read.
func BenchmarkFrame(b *testing.B) {
	var buf bytes.Buffer
	w := &writer{w: &buf}
	r := newReader(&buf)
	m := &message{Type: msgDone, ID: 42, BytesIn: 212, BytesOut: 33}
	for b.Loop() {
		if err := w.send(m); err != nil {
			b.Fatal(err)
		}
		if _, err := r.next(); err != nil {
			b.Fatal(err)
		}
	}
}
