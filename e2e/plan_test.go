package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// counting is what the plan test needs of a simulator.
type counting interface {
	Requests() map[string]int
	Bytes() (in, out int64)
}

// settle waits until the simulator's clients are gone where it can tell
// (OPC UA sends CloseSecureChannel without waiting for an answer).
func settle(t *testing.T, sim counting) {
	t.Helper()
	if w, ok := sim.(interface{ WaitIdle(context.Context) error }); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlanMatchesSimulator: `plcwatch plan` after the first snapshot,
// through the store and the session child process, names the requests
// and the bytes sent that the simulator then receives for the next
// snapshot, handshakes included, for every protocol.
func TestPlanMatchesSimulator(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			r := tg.start(t)
			sim := r.sim.(counting)
			s := newSite(t, r.yaml)
			s.want(0, "snapshot", tg.device)
			var plan struct {
				Requests int   `json:"requests"`
				BytesOut int64 `json:"bytes_out"`
			}
			if err := json.Unmarshal([]byte(s.want(0, "plan", tg.device, "--json")), &plan); err != nil {
				t.Fatal(err)
			}
			settle(t, sim)
			before, total := sim.Requests(), 0
			in0, _ := sim.Bytes()
			s.want(0, "snapshot", tg.device)
			settle(t, sim)
			for k, n := range sim.Requests() {
				total += n - before[k]
			}
			in1, _ := sim.Bytes()
			if plan.Requests != total || plan.BytesOut != in1-in0 {
				t.Errorf("plan after the first snapshot: %d requests, %d bytes sent; the simulator received %d requests, %d bytes", plan.Requests, plan.BytesOut, total, in1-in0)
			}
		})
	}
}

// TestSnapshotFull: an OPC UA snapshot after a complete one carries
// DataType and AccessLevel (items marked carried); `snapshot --full`
// carries nothing.
func TestSnapshotFull(t *testing.T) {
	r := startOPCUA(t)
	s := newSite(t, r.yaml)
	s.want(0, "snapshot", "skid7")
	carried := func(args ...string) int {
		var snap struct {
			Items []struct {
				Provenance struct {
					Source string `json:"source"`
				} `json:"provenance"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(s.want(0, append([]string{"snapshot", "skid7", "--json"}, args...)...)), &snap); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, it := range snap.Items {
			if it.Provenance.Source == "carried" {
				n++
			}
		}
		return n
	}
	if n := carried(); n == 0 {
		t.Error("second snapshot: no item carried")
	}
	if n := carried("--full"); n != 0 {
		t.Errorf("snapshot --full: %d items carried, want 0", n)
	}
}
