package opcua_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/diffing"
	sim "github.com/plcwatch/plcwatch/simulators/opcua"
	"github.com/plcwatch/plcwatch/snapshots"
)

// largeServer is a 10,000-variable simulator that allows 1,000
// operations per Read and per Browse and says so in its OperationLimits.
func largeServer(t *testing.T) (*sim.Server, *config.Device, *config.Config) {
	t.Helper()
	s := start(t, sim.Options{Scenario: sim.LargeScenario(100, 100), MaxNodesPerRead: 1000, MaxNodesPerBrowse: 1000, AdvertiseLimits: true})
	dev, cfg := device(t, s.Endpoint(), "      timeout: 20s\n      browse: [{root: \"i=85\", max_depth: 4, max_nodes: 20000}]")
	return s, dev, cfg
}

// snapshotAfter reads dev with prev as the previous snapshot and returns
// the finalized snapshot, what the simulator counted for it, and the
// plan made from prev beforehand.
func snapshotAfter(t *testing.T, s *sim.Server, dev *config.Device, cfg *config.Config, prev *snapshots.Snapshot) (*snapshots.Snapshot, map[string]int, int64, *connectors.Plan) {
	t.Helper()
	c, _, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var plan *connectors.Plan
	if prev != nil {
		if plan, err = c.Plan(prev); err != nil {
			t.Fatal(err)
		}
	}
	settle := func() {
		wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.WaitIdle(wctx); err != nil {
			t.Fatal(err)
		}
	}
	settle()
	before := s.Requests()
	inBefore, _ := s.Bytes()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	snap, err := c.Snapshot(ctx, prev)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Finalize(); err != nil {
		t.Fatal(err)
	}
	if !snap.Status.Complete {
		t.Fatalf("partial snapshot: %v", snap.Status.Reasons)
	}
	settle()
	counted := map[string]int{}
	for k, n := range s.Requests() {
		if d := n - before[k]; d > 0 {
			counted[k] = d
		}
	}
	inAfter, _ := s.Bytes()
	return snap, counted, inAfter - inBefore, plan
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestCarryForwardLargeServer: a 10,000-variable server that allows 1,000
// operations per request is re-read, unchanged, in at most 40 requests
// (every Hello, OpenSecureChannel, CloseSecureChannel and session request
// counted by the simulator), the plan made from the previous snapshot
// predicts exactly what the simulator counts and receives, and an added,
// a removed and a changed node are all detected on the cheap read; an
// AccessLevel change, carried, is seen at the next full read (the trade
// docs/OPCUA.md describes).
func TestCarryForwardLargeServer(t *testing.T) {
	s, dev, cfg := largeServer(t)
	full, fullCount, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	if n := len(full.Items); n < 10000 {
		t.Fatalf("first snapshot: %d items, want the 10,000 variables and the server's", n)
	}
	second, count, bytesIn, plan := snapshotAfter(t, s, dev, cfg, full)
	t.Logf("full read: %d requests %v; unchanged re-read: %d requests %v", total(fullCount), fullCount, total(count), count)
	if n := total(count); n > 40 {
		t.Errorf("unchanged re-read: %d requests, want at most 40: %v", n, count)
	}
	if n := total(fullCount); total(count) >= n {
		t.Errorf("unchanged re-read: %d requests, not fewer than the full read's %d", total(count), n)
	}
	if n, out, _ := plan.Totals(); n != total(count) || out != bytesIn {
		t.Errorf("plan after the full read: %d requests, %d bytes sent; the simulator counted %d requests, received %d bytes\nplan: %+v", n, out, total(count), bytesIn, plan.Requests)
	}
	if rep := diffing.Compare(full, second, diffing.Options{}); !rep.Equal() {
		t.Errorf("unchanged server: the carried snapshot differs from the full read: %+v", rep.Changes)
	}
	carried := 0
	for _, it := range second.Items {
		if it.Provenance.Source == snapshots.SourceCarried {
			carried++
			if it.Provenance.From != full.ID {
				t.Errorf("%s: carried from %q, want the full read %s", it.Path, it.Provenance.From, full.ID)
			}
		}
	}
	if carried != 10000 {
		t.Errorf("%d items marked carried, want the 10,000 variables", carried)
	}
	// The steady state: a carried snapshot predicts its successor too.
	_, count3, bytes3, plan3 := snapshotAfter(t, s, dev, cfg, second)
	if n, out, _ := plan3.Totals(); n != total(count3) || out != bytes3 {
		t.Errorf("plan after a carried read: %d requests, %d bytes sent; the simulator counted %d, received %d", n, out, total(count3), bytes3)
	}

	// An engineer adds, removes and changes nodes.
	if err := s.AddNode("Plant/U000", sim.NodeSpec{Name: "V100", Type: "Double", Value: 1.5, Writable: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveNode("Plant/U001/V005"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetValue("Plant/U002/V007", 99.0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWritable("Plant/U003/V009", false); err != nil {
		t.Fatal(err)
	}
	changed, count, _, _ := snapshotAfter(t, s, dev, cfg, second)
	if n := total(count); n > 40 {
		t.Errorf("re-read after the changes: %d requests, want at most 40: %v", n, count)
	}
	got := map[string]diffing.ChangeType{}
	for _, c := range diffing.Compare(second, changed, diffing.Options{}).Changes {
		got[c.Path] = c.Type
	}
	for _, tc := range []struct {
		name string
		path string
		want diffing.ChangeType
	}{
		{"added node", "opcua/Plant/U000/V100", diffing.Added},
		{"removed node", "opcua/Plant/U001/V005", diffing.Removed},
		{"changed value", "opcua/Plant/U002/V007", diffing.Changed},
		{"AccessLevel carried: seen at the next full read", "opcua/Plant/U003/V009", ""},
	} {
		if got[tc.path] != tc.want {
			t.Errorf("%s: %s is %q, want %q", tc.name, tc.path, got[tc.path], tc.want)
		}
	}
	if len(got) != 3 {
		t.Errorf("changes: %v, want exactly the added, removed and changed nodes", got)
	}
	// The next full read (prev nil, as a forced full read passes it) sees
	// the AccessLevel change.
	fullAgain, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	var access *diffing.Change
	rep := diffing.Compare(changed, fullAgain, diffing.Options{})
	for i, c := range rep.Changes {
		if c.Path == "opcua/Plant/U003/V009" {
			access = &rep.Changes[i]
		}
	}
	if access == nil || access.New == nil {
		t.Errorf("full read after an AccessLevel change: no change on opcua/Plant/U003/V009: %+v", rep.Changes)
	}
	if n := s.Refused(); n != 0 {
		t.Errorf("the simulator refused %d write or control requests, want 0", n)
	}
}
