package isolate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	_ "github.com/plcwatch/plcwatch/connectors/opcua"
	"github.com/plcwatch/plcwatch/limits"
	"github.com/plcwatch/plcwatch/simulators/hostile"
	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
)

// TestHostileOPCUA drives the real OPC UA connector, isolated, against
// hostile servers. Each must cost the snapshot at most, within request and
// snapshot bounds, and never the test process: in-process, the negative
// array length would panic inside gopcua's receive goroutine and end it.
func TestHostileOPCUA(t *testing.T) {
	sim, err := opcuasim.Start(context.Background(), opcuasim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mode    string
		after   int
		wantErr error    // errors.Is
		wantMsg []string // substrings of the error or of the partial snapshot's reasons
	}{
		{name: "variant array of negative length", mode: hostile.AbsurdLength, after: 1, wantErr: ErrCrashed,
			wantMsg: []string{"OPC UA session for device skid crashed: panic:", "(a reply the protocol library could not decode)"}},
		{name: "stall", mode: hostile.Stall},
		{name: "one byte per second", mode: hostile.Slow},
		{name: "garbage", mode: hostile.Garbage},
		{name: "truncated reply", mode: hostile.Truncate, after: 4},
		{name: "dropped mid-snapshot", mode: hostile.Drop, after: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := hostile.Start(hostile.Options{Protocol: "opcua", Mode: tc.mode, Upstream: sim.Addr(), After: tc.after})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			y := fmt.Sprintf(`defaults: {request_timeout: 500ms}
devices:
  - name: skid
    protocol: opcua
    endpoint: opc.tcp://%s
    opcua: {timeout: 10s}
`, h.Addr())
			cfg, err := config.Parse("test.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			lb := &logBuf{}
			conn, _, err := Opener(exe, Options{MemoryLimit: 256 << 20})(cfg.Devices[0], nil, zerolog.New(lb), limits.New(cfg))
			if err != nil {
				t.Fatal(err)
			}
			// A guard far beyond the request bound: if it is what ends the
			// snapshot, a request was not bounded.
			ctx, cancel := context.WithTimeoutCause(context.Background(), time.Minute, errors.New("test guard"))
			defer cancel()
			snap, err := conn.Snapshot(ctx, nil)
			if ctx.Err() != nil {
				t.Fatalf("the snapshot ran into the test's guard: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Snapshot error = %v, want %v", err, tc.wantErr)
			}
			if err == nil && snap.Status.Complete {
				t.Fatalf("a %s server gave a complete snapshot", tc.mode)
			}
			got := fmt.Sprint(err)
			if snap != nil {
				got = strings.Join(snap.Status.Reasons, "; ")
			}
			for _, w := range tc.wantMsg {
				if !strings.Contains(got, w) {
					t.Errorf("got %q, want it to say %q", got, w)
				}
			}
			if h.Hostile() == 0 {
				t.Errorf("the %s server never misbehaved: the test tested nothing", tc.mode)
			}
			t.Logf("%s: %v", tc.mode, got)
		})
	}
}
