package opcua_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/connectors/opcua"
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

// TestCarriedReadSeesRetypedNode: an engineer deletes a variable and
// downloads it again under the same browse name with another DataType
// (the server keeps its NodeId, which is built from the name, and its
// start time). The Value read every time comes back in a Variant of the
// new type: the carried DataType must not survive it, whether or not the
// rendered value changes too.
func TestCarriedReadSeesRetypedNode(t *testing.T) {
	s := start(t, sim.Options{})
	dev, cfg := device(t, s.Endpoint(), "      timeout: 20s\n      browse: [{root: \"i=85\", max_depth: 8, max_nodes: 2000}]")
	full, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	prev, _, _, _ := snapshotAfter(t, s, dev, cfg, full)
	tests := []struct {
		name   string
		parent string
		spec   sim.NodeSpec
	}{
		{"UInt32 to UInt16, same number", "Plant/Pump1", sim.NodeSpec{Name: "StartDelay", Type: "UInt16", Value: 5000, Writable: true}},
		{"Double to Float, same number", "Plant/Tank1", sim.NodeSpec{Name: "Setpoint", Type: "Float", Value: 2.5, Writable: true}},
		{"Double to String", "Plant/Dosing", sim.NodeSpec{Name: "ChlorineSetpoint", Type: "String", Value: "0.8", Writable: true}},
		{"Double to Int32", "Plant/Tank1/LevelPID", sim.NodeSpec{Name: "Kp", Type: "Int32", Value: 1, Writable: true}},
	}
	for _, tc := range tests {
		if err := s.RemoveNode(tc.parent + "/" + tc.spec.Name); err != nil {
			t.Fatal(err)
		}
		if err := s.AddNode(tc.parent, tc.spec); err != nil {
			t.Fatal(err)
		}
	}
	cur, _, _, _ := snapshotAfter(t, s, dev, cfg, prev)
	ref, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	changed := map[string]bool{}
	for _, c := range diffing.Compare(prev, cur, diffing.Options{}).Changes {
		changed[c.Path] = true
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "opcua/" + tc.parent + "/" + tc.spec.Name
			it := cur.Item(path)
			if it == nil {
				t.Fatalf("no item %s", path)
			}
			if got := it.Attrs[snapshots.AttrDataType]; got != tc.spec.Type {
				t.Errorf("%s: data_type %q (%s: %s), want %q", path, got, it.Provenance.Source, it.Provenance.Reason, tc.spec.Type)
			}
			if !changed[path] {
				t.Errorf("%s: retyped, but the diff against the previous snapshot shows no change", path)
			}
		})
	}
	if rep := diffing.Compare(ref, cur, diffing.Options{IgnoreInfo: true}); !rep.Equal() {
		for _, c := range rep.Changes {
			t.Errorf("the carried read differs from a full read of the same server: %s %s", c.Type, c.Path)
		}
	}
	// C4 on a carried read: a setpoint still readable but answering a Bad
	// status is not read, with the status as reason, and nothing else.
	if err := s.SetStatus("Plant/Tank1/HighLimit", ua.StatusBadWaitingForInitialData); err != nil {
		t.Fatal(err)
	}
	c, _, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bad, err := c.Snapshot(ctx, cur)
	if err == nil {
		err = bad.Finalize()
	}
	if err != nil {
		t.Fatal(err)
	}
	wantNotRead(t, bad, "opcua/Plant/Tank1/HighLimit", "BadWaitingForInitialData")
	if bad.Status.Complete || len(bad.Status.Reasons) != 1 {
		t.Errorf("status %+v, want partial for the one setpoint", bad.Status)
	}
	for _, ch := range diffing.Compare(cur, bad, diffing.Options{IgnoreInfo: true}).Changes {
		if ch.Path != "opcua/Plant/Tank1/HighLimit" || ch.Type != diffing.NotRead {
			t.Errorf("C4 on a carried read: %s %s", ch.Type, ch.Path)
		}
	}
}

// TestPlanAfterCarryPerRoot: plan, made from the previous snapshot, counts
// the requests and bytes the simulator then receives, whatever the browse
// roots: each root's variables are read in reads of their own.
func TestPlanAfterCarryPerRoot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		browse string
		mode   string // security mode with Basic256Sha256; "" for None
	}{
		{"one root", `[{root: "i=85", max_depth: 8, max_nodes: 2000}]`, ""},
		{"two roots", `[{root: "nsu=urn:plcwatch:sim:water-skid;s=Plant.Tank1"}, {root: "nsu=urn:plcwatch:sim:water-skid;s=Plant.Pump1"}]`, ""},
		{"Sign", `[{root: "i=85", max_depth: 8, max_nodes: 2000}]`, "Sign"},
		{"SignAndEncrypt", `[{root: "i=85", max_depth: 8, max_nodes: 2000}]`, "SignAndEncrypt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, sim.Options{Security: []string{"None/None", "Basic256Sha256/Sign", "Basic256Sha256/SignAndEncrypt"}})
			section := "      timeout: 20s\n      browse: " + tc.browse
			if tc.mode != "" {
				section += "\n      security_policy: Basic256Sha256\n      security_mode: " + tc.mode + "\n      trusted_thumbprints: [\"" + s.Thumbprint() + "\"]"
			}
			dev, cfg := device(t, s.Endpoint(), section)
			prev, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
			for i, what := range []string{"after the full read", "after a carried read"} {
				snap, count, bytesIn, plan := snapshotAfter(t, s, dev, cfg, prev)
				n, out, _ := plan.Totals()
				wantApprox := tc.mode != ""
				if !plan.Exact || plan.BytesApprox != wantApprox {
					t.Errorf("plan %s: exact %v, bytes approximate %v; want exact, bytes approximate %v", what, plan.Exact, plan.BytesApprox, wantApprox)
				}
				if d := out - bytesIn; n != total(count) || (!plan.BytesApprox && d != 0) || d < -16*int64(n) || d > 16*int64(n) {
					t.Errorf("plan %s (%d, exact %v): %d requests, %d bytes sent; the simulator counted %d, received %d\nplan: %+v\ncounted: %v", what, i, plan.Exact, n, out, total(count), bytesIn, plan.Requests, count)
				}
				prev = snap
			}
		})
	}
}

// TestCarryFromOtherParents: whatever the previous snapshot passed in, the
// next read records what a full read records; it carries only from a
// parent of the same endpoint and server, and only the variables whose
// DataType and AccessLevel that parent read.
func TestCarryFromOtherParents(t *testing.T) {
	s := start(t, sim.Options{})
	dev, cfg := device(t, s.Endpoint(), "      timeout: 20s\n      browse: [{root: \"i=85\", max_depth: 8, max_nodes: 2000}]")
	full, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	const setpoint = "opcua/Plant/Tank1/HighLimit"
	clone := func(edit func(s *snapshots.Snapshot, it *snapshots.Item)) *snapshots.Snapshot {
		c := *full
		c.Items = make([]snapshots.Item, len(full.Items))
		for i, it := range full.Items {
			it.Attrs = maps.Clone(it.Attrs)
			c.Items[i] = it
		}
		for i := range c.Items {
			edit(&c, &c.Items[i])
		}
		return &c
	}
	variables := 0
	for _, it := range full.Items {
		if it.Attrs["node_id"] != "" {
			variables++
		}
	}
	for _, tc := range []struct {
		name string
		prev *snapshots.Snapshot
		// carried: how many variables carry (-1: all the parent's variables
		// but those named in notCarried).
		carried    int
		notCarried []string
	}{
		{"the full read", full, -1, nil},
		{"written before carrying existed (no provenance source)", clone(func(_ *snapshots.Snapshot, it *snapshots.Item) { it.Provenance = snapshots.Provenance{} }), -1, nil},
		{"of another endpoint", clone(func(s *snapshots.Snapshot, _ *snapshots.Item) { s.Endpoint = "opc.tcp://127.0.0.1:1" }), 0, nil},
		{"the server restarted since", clone(func(_ *snapshots.Snapshot, it *snapshots.Item) {
			if it.Path == "server/start_time" {
				it.Value = snapshots.Time(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
			}
		}), 0, nil},
		{"incomplete: a setpoint not read (C4)", clone(func(s *snapshots.Snapshot, it *snapshots.Item) {
			s.Status = snapshots.Status{Reasons: []string{setpoint + ": BadWaitingForInitialData"}}
			if it.Path == setpoint {
				it.Value, it.Provenance = snapshots.None(), snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: "BadWaitingForInitialData"}
			}
		}), -1, []string{setpoint}},
		{"node ids by namespace index (an older format)", clone(func(_ *snapshots.Snapshot, it *snapshots.Item) {
			if id, ok := it.Attrs["node_id"]; ok {
				it.Attrs["node_id"] = "ns=2;" + id[strings.Index(id, ";")+1:]
			}
		}), 0, nil},
		{"an unknown access attr", clone(func(_ *snapshots.Snapshot, it *snapshots.Item) {
			if it.Path == setpoint {
				it.Attrs["access"] = "read+frobnicate"
			}
		}), -1, []string{setpoint}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, _, _, _ := snapshotAfter(t, s, dev, cfg, tc.prev)
			want := tc.carried
			if want < 0 {
				want = variables - len(tc.notCarried)
			}
			n := 0
			for _, it := range cur.Items {
				if it.Provenance.Source == snapshots.SourceCarried {
					n++
				}
			}
			if n != want {
				t.Errorf("%d variables carried, want %d", n, want)
			}
			for _, p := range tc.notCarried {
				if it := cur.Item(p); it == nil || it.Provenance.Source != snapshots.SourceRead {
					t.Errorf("%s: %+v, want read in full", p, it)
				}
			}
			for _, c := range diffing.Compare(full, cur, diffing.Options{IgnoreInfo: true}).Changes {
				t.Errorf("against the full read: %s %s", c.Type, c.Path)
			}
		})
	}
}

// TestVolatileCarried: a live read-only value carried with no read is
// recorded present, volatile, not captured, and says why; made writable by
// an engineer (volatile to setpoint), it is reported by the next full read
// (the trade docs/OPCUA.md describes), not lost.
func TestVolatileCarried(t *testing.T) {
	s := start(t, sim.Options{})
	dev, cfg := device(t, s.Endpoint(), "      timeout: 20s\n      browse: [{root: \"i=85\", max_depth: 8, max_nodes: 2000}]")
	const live = "opcua/Plant/Tank1/Level"
	full, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	carried, _, _, _ := snapshotAfter(t, s, dev, cfg, full)
	it := carried.Item(live)
	if it == nil || !it.Volatile || it.Value.Type != snapshots.TypeNone || it.Provenance.Source != snapshots.SourceCarried ||
		!strings.Contains(it.Provenance.Reason, "volatile") || it.Provenance.From != full.ID {
		t.Fatalf("%s carried: %+v, want volatile, not captured, carried from %s with the reason", live, it, full.ID)
	}
	if err := s.SetWritable("Plant/Tank1/Level", true); err != nil {
		t.Fatal(err)
	}
	again, _, _, _ := snapshotAfter(t, s, dev, cfg, carried)
	refull, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	var seen *diffing.Change
	rep := diffing.Compare(again, refull, diffing.Options{})
	for i, c := range rep.Changes {
		if c.Path == live {
			seen = &rep.Changes[i]
		}
	}
	if it := refull.Item(live); it == nil || it.Kind != snapshots.KindSetpoint || it.Volatile || it.Value.Type == snapshots.TypeNone {
		t.Errorf("full read of %s made writable: %+v, want a setpoint with its value", live, it)
	}
	if seen == nil {
		t.Errorf("full read after %s was made writable: no change reported: %+v", live, rep.Changes)
	}
}

// TestCarriedReadSeesAccessLost: a setpoint whose AccessLevel loses
// CurrentRead answers its Value with BadNotReadable. A carried read must
// record what a full read records (not observable, with the AccessLevel,
// the snapshot complete), not a setpoint "not read" that makes every
// snapshot partial until the next full read.
func TestCarriedReadSeesAccessLost(t *testing.T) {
	s := start(t, sim.Options{})
	dev, cfg := device(t, s.Endpoint(), "      timeout: 20s\n      browse: [{root: \"i=85\", max_depth: 8, max_nodes: 2000}]")
	const path = "opcua/Plant/Tank1/LowLimit"
	full, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	prev, _, _, _ := snapshotAfter(t, s, dev, cfg, full)
	if err := s.SetReadable("Plant/Tank1/LowLimit", false); err != nil {
		t.Fatal(err)
	}
	// snapshotAfter fails on a partial snapshot.
	cur, _, _, _ := snapshotAfter(t, s, dev, cfg, prev)
	ref, _, _, _ := snapshotAfter(t, s, dev, cfg, nil)
	for _, tc := range []struct {
		name string
		snap *snapshots.Snapshot
	}{
		{"carried read", cur},
		{"full read", ref},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := tc.snap.Item(path)
			if it == nil || it.Provenance.Source != snapshots.SourceNotObservable || it.Attrs["access"] != "write" {
				t.Errorf("%s: %+v, want not observable with access write", path, it)
			}
		})
	}
	if rep := diffing.Compare(ref, cur, diffing.Options{IgnoreInfo: true}); !rep.Equal() {
		for _, c := range rep.Changes {
			t.Errorf("the carried read differs from a full read of the same server: %s %s", c.Type, c.Path)
		}
	}
	// C4 on a carried read: a setpoint still readable but answering a Bad
	// status is not read, with the status as reason, and nothing else.
	if err := s.SetStatus("Plant/Tank1/HighLimit", ua.StatusBadWaitingForInitialData); err != nil {
		t.Fatal(err)
	}
	c, _, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bad, err := c.Snapshot(ctx, cur)
	if err == nil {
		err = bad.Finalize()
	}
	if err != nil {
		t.Fatal(err)
	}
	wantNotRead(t, bad, "opcua/Plant/Tank1/HighLimit", "BadWaitingForInitialData")
	if bad.Status.Complete || len(bad.Status.Reasons) != 1 {
		t.Errorf("status %+v, want partial for the one setpoint", bad.Status)
	}
	for _, ch := range diffing.Compare(cur, bad, diffing.Options{IgnoreInfo: true}).Changes {
		if ch.Path != "opcua/Plant/Tank1/HighLimit" || ch.Type != diffing.NotRead {
			t.Errorf("C4 on a carried read: %s %s", ch.Type, ch.Path)
		}
	}
}

// TestPlanEstimateBound: before any snapshot, plan's estimate does not
// call itself a bound (the server's OperationLimits are not known yet:
// gopcua's own server advertises 32 reads per request), and its Browse
// count does bound what a server taking 50 browse nodes per request costs,
// however deep the tree and however many roots.
func TestPlanEstimateBound(t *testing.T) {
	for _, tc := range []struct {
		name   string
		browse string
	}{
		{"one root, max_nodes close to the nodes there", `[{root: "i=85", max_depth: 8, max_nodes: 60}]`},
		{"two roots", `[{root: "nsu=urn:plcwatch:sim:water-skid;s=Plant.Tank1", max_nodes: 20}, {root: "nsu=urn:plcwatch:sim:water-skid;s=Plant.Pump1", max_nodes: 20}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, sim.Options{})
			dev, cfg := device(t, s.Endpoint(), "      timeout: 20s\n      browse: "+tc.browse)
			c, _, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			est, err := c.Plan(nil)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			if est.Exact || strings.Contains(strings.Join(est.Notes, " "), "upper bound") {
				t.Errorf("estimate claims exactness or a bound: exact %v, notes %q", est.Exact, est.Notes)
			}
			_, count, _, _ := snapshotAfter(t, s, dev, cfg, nil)
			for _, r := range est.Requests {
				if r.Kind == opcua.KindBrowse && r.Count < count["Browse"] {
					t.Errorf("estimate: %d Browse requests, the first snapshot sent %d", r.Count, count["Browse"])
				}
			}
		})
	}
}
