package diffing

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
)

var update = flag.Bool("update", false, "rewrite golden files")

func snap(t testing.TB, complete bool, items ...snapshots.Item) *snapshots.Snapshot {
	t.Helper()
	s := &snapshots.Snapshot{Device: "d1", Protocol: "s7", TakenAt: time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC), Status: snapshots.Status{Complete: complete}}
	if !complete {
		s.Status.Reasons = []string{"connection reset after 12 requests"}
	}
	for _, it := range items {
		if it.Provenance.Source == "" {
			it.Provenance.Source = snapshots.SourceRead
		}
		s.Items = append(s.Items, it)
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	return s
}

func sp(path string, v float64, db float64) snapshots.Item {
	return snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Value: snapshots.Float(v, "%"), Deadband: db}
}

// at gives an item the address a device holds it at (an OPC UA NodeId).
func at(it snapshots.Item, nodeID string) snapshots.Item {
	it.Attrs = map[string]string{snapshots.AttrNodeID: nodeID}
	return it
}

func notObs(path, reason string) snapshots.Item {
	return snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Value: snapshots.None(),
		Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: reason}}
}

// empty is a value recorded although not observable, as the OPC UA
// connector records a variable that answered an empty (Null) Variant.
func empty(path string) snapshots.Item {
	return snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Value: snapshots.String("(null)"),
		Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "empty value"}}
}

func mode(m, since string) snapshots.Item {
	return snapshots.Item{Path: "mode/cpu", Kind: snapshots.KindMode, Value: snapshots.String(m), Attrs: map[string]string{"meta.last_transition": since}}
}

func block(n string, sum uint64, attrs map[string]string) snapshots.Item {
	return snapshots.Item{Path: "blocks/" + n, Kind: snapshots.KindLogic, Value: snapshots.Uint(sum, ""), Attrs: attrs}
}

func TestCompare(t *testing.T) {
	notRead := block("FB2", 0, nil)
	notRead.Value = snapshots.None()
	notRead.Provenance = snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: "block info read failed"}
	live := func(p string) snapshots.Item {
		return snapshots.Item{Path: p, Kind: snapshots.KindInfo, Volatile: true, Attrs: map[string]string{"data_type": "Double"}}
	}
	tests := []struct {
		name  string
		old   *snapshots.Snapshot
		new   *snapshots.Snapshot
		want  map[string]ChangeType // path -> type
		equal bool
		supp  int
	}{
		{"identical", snap(t, true, block("OB1", 1, nil)), snap(t, true, block("OB1", 1, nil)), nil, true, 0},
		{"added removed changed", snap(t, true, block("OB1", 1, nil), block("FC1", 2, nil)), snap(t, true, block("OB1", 9, nil), block("FC2", 3, nil)),
			map[string]ChangeType{"blocks/OB1": Changed, "blocks/FC1": Removed, "blocks/FC2": Added}, false, 0},
		{"partial never removal", snap(t, true, block("OB1", 1, nil), block("FC1", 2, nil)), snap(t, false, block("OB1", 1, nil)),
			map[string]ChangeType{"blocks/FC1": NotRead}, true, 0},
		{"not-read marker", snap(t, true, block("FB2", 5, nil)), snap(t, false, notRead), map[string]ChangeType{"blocks/FB2": NotRead}, true, 0},
		{"partial old: new items are not previously read, not added", snap(t, false, block("OB1", 1, nil)), snap(t, true, block("OB1", 1, nil), block("FC9", 1, nil)),
			map[string]ChangeType{"blocks/FC9": NotRead}, true, 0},
		{"partial old, partial new: neither added nor removed", snap(t, false, block("OB1", 1, nil), block("FC1", 1, nil)), snap(t, false, block("OB1", 1, nil), block("FC9", 1, nil)),
			map[string]ChangeType{"blocks/FC1": NotRead, "blocks/FC9": NotRead}, true, 0},
		{"not read in old, read now", snap(t, false, notRead), snap(t, true, block("FB2", 5, nil)), map[string]ChangeType{"blocks/FB2": NotRead}, true, 0},
		{"not read in new, absent from old", snap(t, true, block("OB1", 1, nil)), snap(t, false, block("OB1", 1, nil), notRead), map[string]ChangeType{"blocks/FB2": NotRead}, true, 0},
		{"removed from a complete snapshot", snap(t, true, block("OB1", 1, nil), notRead), snap(t, true, block("OB1", 1, nil)), map[string]ChangeType{"blocks/FB2": Removed}, false, 0},
		{"volatile attrs still compared", snap(t, true, live("process/Flow")),
			snap(t, true, snapshots.Item{Path: "process/Flow", Kind: snapshots.KindInfo, Volatile: true, Attrs: map[string]string{"data_type": "Float"}}),
			map[string]ChangeType{"process/Flow": Changed}, true, 0},
		{"volatile setpoint: value ignored, attrs compared",
			snap(t, true, snapshots.Item{Path: "sp/X", Kind: snapshots.KindSetpoint, Volatile: true, Attrs: map[string]string{"access": "rw"}}),
			snap(t, true, snapshots.Item{Path: "sp/X", Kind: snapshots.KindSetpoint, Volatile: true, Attrs: map[string]string{"access": "r"}}),
			map[string]ChangeType{"sp/X": Changed}, false, 0},
		{"classification only: made volatile", snap(t, true, sp("setpoints/T", 80, 0)),
			snap(t, true, snapshots.Item{Path: "setpoints/T", Kind: snapshots.KindSetpoint, Volatile: true}), map[string]ChangeType{"setpoints/T": Changed}, true, 0},
		{"classification only: kind", snap(t, true, snapshots.Item{Path: "x", Kind: snapshots.KindInfo, Value: snapshots.Int(1, "")}),
			snap(t, true, snapshots.Item{Path: "x", Kind: snapshots.KindSetpoint, Value: snapshots.Int(1, "")}), map[string]ChangeType{"x": Changed}, true, 0},
		{"kind and value", snap(t, true, snapshots.Item{Path: "x", Kind: snapshots.KindInfo, Value: snapshots.Int(1, "")}),
			snap(t, true, snapshots.Item{Path: "x", Kind: snapshots.KindSetpoint, Value: snapshots.Int(2, "")}), map[string]ChangeType{"x": Changed}, false, 0},
		{"unit change is never suppressed", snap(t, true, sp("setpoints/T", 80, 0.5)),
			snap(t, true, snapshots.Item{Path: "setpoints/T", Kind: snapshots.KindSetpoint, Value: snapshots.Float(80.1, "degC"), Deadband: 0.5}), map[string]ChangeType{"setpoints/T": Changed}, false, 0},
		{"NaN is never within a deadband", snap(t, true, sp("setpoints/T", 80, 0.5)), snap(t, true, sp("setpoints/T", math.NaN(), 0.5)), map[string]ChangeType{"setpoints/T": Changed}, false, 0},
		{"deadband only differs", snap(t, true, sp("setpoints/T", 80, 0.5)), snap(t, true, sp("setpoints/T", 80, 1)), nil, true, 0},
		{"no baseline: everything added", nil, snap(t, true, block("OB1", 1, nil)), map[string]ChangeType{"blocks/OB1": Added}, false, 0},
		{"within deadband", snap(t, true, sp("setpoints/T", 80, 0.5)), snap(t, true, sp("setpoints/T", 80.4, 0.5)), nil, true, 1},
		{"beyond deadband", snap(t, true, sp("setpoints/T", 80, 0.5)), snap(t, true, sp("setpoints/T", 80.6, 0.5)), map[string]ChangeType{"setpoints/T": Changed}, false, 0},
		{"deadband from baseline when new has none", snap(t, true, sp("setpoints/T", 80, 0.5)), snap(t, true, sp("setpoints/T", 80.2, 0)), nil, true, 1},
		{"volatile churn ignored", snap(t, true, live("process/Flow")), snap(t, true, live("process/Flow")), nil, true, 0},
		{"touched: meta only", snap(t, true, block("OB1", 1, map[string]string{"meta.code_time": "2026-01-01T10:00:00Z"})),
			snap(t, true, block("OB1", 1, map[string]string{"meta.code_time": "2026-01-01T10:05:00Z"})), map[string]ChangeType{"blocks/OB1": Touched}, false, 0},
		{"content and meta", snap(t, true, block("OB1", 1, map[string]string{"meta.code_time": "a", "load_size": "10"})),
			snap(t, true, block("OB1", 1, map[string]string{"meta.code_time": "b", "load_size": "12"})), map[string]ChangeType{"blocks/OB1": Changed}, false, 0},
		{"info changes do not count", snap(t, true, snapshots.Item{Path: "i", Kind: snapshots.KindInfo, Value: snapshots.Int(1, "")}),
			snap(t, true, snapshots.Item{Path: "i", Kind: snapshots.KindInfo, Value: snapshots.Int(2, "")}), map[string]ChangeType{"i": Changed}, true, 0},
		{"Bad status now (not observable): not read, never 42 -> (not captured)", snap(t, true, sp("setpoints/Bad", 42, 0)),
			snap(t, true, notObs("setpoints/Bad", "server answered BadWaitingForInitialData")), map[string]ChangeType{"setpoints/Bad": NotRead}, true, 0},
		{"not observable in the baseline, read now", snap(t, true, notObs("setpoints/Bad", "server answered BadWaitingForInitialData")),
			snap(t, true, sp("setpoints/Bad", 42, 0)), map[string]ChangeType{"setpoints/Bad": NotRead}, true, 0},
		{"not observable on both sides alike: nothing", snap(t, true, notObs("setpoints/Bad", "BadNotReadable")),
			snap(t, true, notObs("setpoints/Bad", "BadNoCommunication")), nil, true, 0},
		{"read, then recorded empty (not observable with a value): not read", snap(t, true, sp("setpoints/E", 42, 0)),
			snap(t, true, empty("setpoints/E")), map[string]ChangeType{"setpoints/E": NotRead}, true, 0},
		{"recorded empty in the baseline, a value now: changed", snap(t, true, empty("setpoints/E")),
			snap(t, true, sp("setpoints/E", 42, 0)), map[string]ChangeType{"setpoints/E": Changed}, false, 0},
		{"empty recorded as read before, marked now: nothing", snap(t, true, snapshots.Item{Path: "setpoints/E", Kind: snapshots.KindSetpoint, Value: snapshots.String("(null)")}),
			snap(t, true, empty("setpoints/E")), nil, true, 0},
		{"empty on both sides: nothing", snap(t, true, empty("setpoints/E")), snap(t, true, empty("setpoints/E")), nil, true, 0},
		{"recorded empty, then not read: not read", snap(t, true, empty("setpoints/E")),
			snap(t, true, notObs("setpoints/E", "BadNoCommunication")), map[string]ChangeType{"setpoints/E": NotRead}, true, 0},
		{"not read marker in a complete snapshot", snap(t, true, block("FB2", 5, nil)), snap(t, true, notRead), map[string]ChangeType{"blocks/FB2": NotRead}, true, 0},
		{"unmarked missing value (Bad status the connector did not mark)", snap(t, true, sp("setpoints/Bad", 42, 0)),
			snap(t, true, snapshots.Item{Path: "setpoints/Bad", Kind: snapshots.KindSetpoint, Value: snapshots.None()}), map[string]ChangeType{"setpoints/Bad": NotRead}, true, 0},
		{"unmarked missing value in the baseline, value now", snap(t, true, snapshots.Item{Path: "setpoints/Bad", Kind: snapshots.KindSetpoint, Value: snapshots.None()}),
			snap(t, true, sp("setpoints/Bad", 42, 0)), map[string]ChangeType{"setpoints/Bad": NotRead}, true, 0},
		{"mode transition time moved (restart): information", snap(t, true, mode("RUN", "2026-05-01T01:00:00Z")),
			snap(t, true, mode("RUN", "2026-05-01T03:00:00Z")), map[string]ChangeType{"mode/cpu": Touched}, true, 0},
		{"firmware metadata moved: information", snap(t, true, snapshots.Item{Path: "fw", Kind: snapshots.KindFirmware, Value: snapshots.String("V3.2"), Attrs: map[string]string{"meta.build_date": "a"}}),
			snap(t, true, snapshots.Item{Path: "fw", Kind: snapshots.KindFirmware, Value: snapshots.String("V3.2"), Attrs: map[string]string{"meta.build_date": "b"}}), map[string]ChangeType{"fw": Touched}, true, 0},
		{"NodeId renumbered on restart, same path and value: nothing", snap(t, true, at(sp("opcua/Numeric/SP1", 1.5, 0), "nsu=urn:a;i=5001")),
			snap(t, true, at(sp("opcua/Numeric/SP1", 1.5, 0), "nsu=urn:a;i=5022")), nil, true, 0},
		{"NodeId renumbered and the value changed: changed", snap(t, true, at(sp("opcua/Numeric/SP1", 1.5, 0), "nsu=urn:a;i=5001")),
			snap(t, true, at(sp("opcua/Numeric/SP1", 2.5, 0), "nsu=urn:a;i=5022")), map[string]ChangeType{"opcua/Numeric/SP1": Changed}, false, 0},
		{"logic NodeId renumbered: not a re-download", snap(t, true, at(snapshots.Item{Path: "opcua/Logic/Checksum", Kind: snapshots.KindLogic, Value: snapshots.String("c0ffee")}, "nsu=urn:a;i=7")),
			snap(t, true, at(snapshots.Item{Path: "opcua/Logic/Checksum", Kind: snapshots.KindLogic, Value: snapshots.String("c0ffee")}, "nsu=urn:a;i=9")), nil, true, 0},
		{"not observable on both sides, NodeId renumbered: nothing", snap(t, true, at(notObs("opcua/Bad", "BadNoCommunication"), "nsu=urn:a;i=1")),
			snap(t, true, at(notObs("opcua/Bad", "BadNoCommunication"), "nsu=urn:a;i=2")), nil, true, 0},
		{"real mode change with a moved transition time", snap(t, true, mode("RUN", "2026-05-01T01:00:00Z")),
			snap(t, true, mode("STOP", "2026-05-01T03:00:00Z")), map[string]ChangeType{"mode/cpu": Changed}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(tc.old, tc.new, Options{})
			got := map[string]ChangeType{}
			for _, c := range r.Changes {
				got[c.Path] = c.Type
			}
			if len(got) != len(tc.want) {
				t.Errorf("changes = %v, want %v", got, tc.want)
			}
			for p, ty := range tc.want {
				if got[p] != ty {
					t.Errorf("%s: %q, want %q", p, got[p], ty)
				}
			}
			if r.Equal() != tc.equal {
				t.Errorf("Equal() = %v, want %v", r.Equal(), tc.equal)
			}
			if len(r.Suppressed) != tc.supp {
				t.Errorf("suppressed = %v, want %d", r.Suppressed, tc.supp)
			}
		})
	}
}

// TestDriftAgainstBaseline: five steps of 0.11, each under the 0.5
// deadband, are caught once they add up past it (0.55 at the fifth), because
// each reading is compared with the baseline; step against step would never
// catch them.
func TestDriftAgainstBaseline(t *testing.T) {
	base := snap(t, true, sp("setpoints/T", 80, 0.5))
	prev := base
	caughtAt := 0
	for step := 1; step <= 5; step++ {
		cur := snap(t, true, sp("setpoints/T", 80+0.11*float64(step), 0.5))
		r := Compare(base, cur, Options{})
		if !r.Equal() && caughtAt == 0 {
			caughtAt = step
			if d := r.Changes[0].Delta; d == nil || *d < 0.5 {
				t.Errorf("delta at step %d = %v, want about 0.55", step, d)
			}
		}
		if r.Equal() && len(r.Suppressed) != 1 {
			t.Errorf("step %d: within the deadband but suppressed = %v", step, r.Suppressed)
		}
		if !Compare(prev, cur, Options{}).Equal() {
			t.Errorf("step %d against step %d reported a change; each step is within the deadband", step, step-1)
		}
		prev = cur
	}
	if caughtAt != 5 {
		t.Errorf("drift caught at step %d, want 5 (0.55 > 0.5)", caughtAt)
	}
}

// TestNonFiniteDeltaEncodes: a value going to or from an infinity has no
// delta, so the report still encodes as JSON.
func TestNonFiniteDeltaEncodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new float64
	}{
		{"to +Inf", 1, math.Inf(1)},
		{"from -Inf", math.Inf(-1), 2},
		{"+Inf to -Inf", math.Inf(1), math.Inf(-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(snap(t, true, sp("setpoints/T", tc.old, 0.5)), snap(t, true, sp("setpoints/T", tc.new, 0.5)), Options{})
			if len(r.Changes) != 1 || r.Changes[0].Delta != nil {
				t.Fatalf("changes = %+v, want one change without a delta", r.Changes)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("encoding the report: %v", err)
			}
		})
	}
}

// TestRenderEscapesDeviceText: text from a device cannot inject terminal
// escape sequences, newlines or bidi overrides into the rendering.
func TestRenderEscapesDeviceText(t *testing.T) {
	evil := "\x1b[2J\x1b[31mFAKE\r\n+ blocks/OB1 added\u202e"
	old := snap(t, true, snapshots.Item{Path: "blocks/" + evil, Kind: snapshots.KindLogic, Value: snapshots.String(evil), Attrs: map[string]string{"author": evil}})
	cur := snap(t, true, snapshots.Item{Path: "blocks/" + evil, Kind: snapshots.KindLogic, Value: snapshots.String("x" + evil), Attrs: map[string]string{"author": "y" + evil}},
		snapshots.Item{Path: "blocks/\xff" + evil, Kind: snapshots.KindLogic, Value: snapshots.String(evil)})
	var buf bytes.Buffer
	if err := Render(&buf, Compare(old, cur, Options{}), RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"\x1b", "\r", "\u202e", "\xff"} {
		if strings.Contains(out, bad) {
			t.Errorf("rendering contains %q:\n%s", bad, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 10 {
		t.Errorf("rendering has %d lines, want 10 (a device string added lines):\n%s", n, out)
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "OB1 Main", "OB1 Main"},
		{"tab kept", "a\tb", "a\tb"},
		{"unicode kept", "Füllstand °C", "Füllstand °C"},
		{"escape", "\x1b[31m", `\x1b[31m`},
		{"newline", "a\nb", `a\nb`},
		{"bidi override", "a\u202eb", `a\u202eb`},
		{"invalid utf-8", "a\xffb", `a\xffb`},
		{"C1 control", "a\u0085b", `a\u0085b`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Printable(tc.in); got != tc.want {
				t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLineDiffDeterministic(t *testing.T) {
	a := "LD X\nAND Y\nST Z\n"
	b := "LD X\nOR Y\nST Z\nST W\n"
	want := "  LD X\n- AND Y\n+ OR Y\n  ST Z\n+ ST W\n"
	for i := 0; i < 20; i++ {
		if got := LineDiff(a, b); got != want {
			t.Fatalf("LineDiff =\n%s\nwant\n%s", got, want)
		}
	}
}

func TestGolden(t *testing.T) {
	old := snap(t, true,
		block("OB1", 0x1111, map[string]string{"role": "tasking", "load_size": "100", "meta.code_time": "2026-01-01T10:00:00Z"}),
		block("FC1", 0x2222, nil), block("FC2", 0x3333, map[string]string{"meta.code_time": "2026-01-01T10:00:00Z"}),
		sp("setpoints/TankHighLimit", 87.5, 0.5), sp("setpoints/Gain", 1.2, 0.05),
		snapshots.Item{Path: "cpu/mode", Kind: snapshots.KindMode, Value: snapshots.String("RUN")},
		snapshots.Item{Path: "program/Main", Kind: snapshots.KindLogic, Value: snapshots.String("IF a THEN\n  b := 1;\nEND_IF\n")},
	)
	cur := snap(t, false,
		block("OB1", 0x1112, map[string]string{"role": "tasking", "load_size": "104", "meta.code_time": "2026-05-01T01:00:00Z"}),
		block("FC2", 0x3333, map[string]string{"meta.code_time": "2026-05-01T01:00:00Z"}),
		block("FC3", 0x4444, nil),
		sp("setpoints/TankHighLimit", 95, 0.5), sp("setpoints/Gain", 1.22, 0.05),
		snapshots.Item{Path: "cpu/mode", Kind: snapshots.KindMode, Value: snapshots.String("STOP")},
		snapshots.Item{Path: "program/Main", Kind: snapshots.KindLogic, Value: snapshots.String("IF a THEN\n  b := 0;\nEND_IF\n")},
	)
	r := Compare(old, cur, Options{})
	var human bytes.Buffer
	if err := Render(&human, r, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", human.Bytes())
	golden(t, "report.json", append(js, '\n'))

	// A partial old snapshot, informational and classification changes.
	old2 := snap(t, false, block("OB1", 1, nil),
		snapshots.Item{Path: "process/uptime", Kind: snapshots.KindInfo, Value: snapshots.Uint(100, "s")},
		sp("setpoints/Trip", 10, 0))
	cur2 := snap(t, true, block("OB1", 1, nil), block("FC7", 7, nil),
		snapshots.Item{Path: "process/uptime", Kind: snapshots.KindInfo, Value: snapshots.Uint(5, "s")},
		snapshots.Item{Path: "setpoints/Trip", Kind: snapshots.KindSetpoint, Volatile: true})
	r2 := Compare(old2, cur2, Options{})
	human.Reset()
	if err := Render(&human, r2, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "report-partial-old.txt", human.Bytes())
	if !r2.Equal() || r2.Info != 2 || r2.CountsByKind[snapshots.KindLogic][NotRead] != 1 {
		t.Errorf("partial old: equal %v info %d counts by kind %v", r2.Equal(), r2.Info, r2.CountsByKind)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./diffing -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update after checking):\n%s", name, got)
	}
}

func FuzzCompare(f *testing.F) {
	a := snap(f, true, block("OB1", 1, nil), sp("setpoints/T", 1, 0.1))
	b := snap(f, true, block("OB1", 2, nil), block("FC1", 1, nil))
	ea, _ := a.Encode()
	eb, _ := b.Encode()
	f.Add(ea, eb)
	f.Fuzz(func(t *testing.T, x, y []byte) {
		sa, err := snapshots.Decode(x, "")
		if err != nil {
			return
		}
		sb, err := snapshots.Decode(y, "")
		if err != nil {
			return
		}
		ab := Compare(sa, sb, Options{})
		ba := Compare(sb, sa, Options{})
		if sa.Status.Complete && sb.Status.Complete && !hasNotRead(sa) && !hasNotRead(sb) && ab.Counts[Added] != ba.Counts[Removed] {
			t.Fatalf("added %d one way, removed %d the other", ab.Counts[Added], ba.Counts[Removed])
		}
		var buf bytes.Buffer
		if err := Render(&buf, ab, RenderOptions{Color: true}); err != nil {
			t.Fatal(err)
		}
	})
}

// genSnapshot builds a finalized snapshot from fuzz bytes: a few paths from
// a small set (so both sides share some), every kind, numeric, text and
// volatile values, meta and content attrs, deadbands and not-read items.
func genSnapshot(data []byte, complete bool) *snapshots.Snapshot {
	paths := []string{"blocks/OB1", "blocks/FC1", "setpoints/T", "cpu/mode", "fw", "prot/level", "process/Flow", "text/Main"}
	texts := []string{"", "a\nb\nc\n", "a\nB\nc\n", "a\nb\nc", "x"}
	s := &snapshots.Snapshot{Device: "d1", Protocol: "s7", Status: snapshots.Status{Complete: complete}}
	used := map[string]bool{}
	for i := 0; i+4 <= len(data) && len(s.Items) < 12; i += 4 {
		b0, b1, b2, b3 := data[i], data[i+1], data[i+2], data[i+3]
		p := paths[int(b0)%len(paths)]
		if used[p] {
			continue
		}
		used[p] = true
		it := snapshots.Item{Path: p, Kind: snapshots.Kinds[int(b1)%len(snapshots.Kinds)], Provenance: snapshots.Provenance{Source: snapshots.SourceRead}}
		switch b2 % 6 {
		case 0:
			it.Value = snapshots.Float(float64(int8(b3))/10, "%")
		case 1:
			it.Value = snapshots.Int(int64(b3%4), "")
		case 2:
			it.Value = snapshots.String(texts[int(b3)%len(texts)])
		case 3:
			it.Value = snapshots.Float([]float64{math.Inf(1), math.Inf(-1), math.NaN(), 0}[b3%4], "")
		case 4:
			it.Value = snapshots.Bool(b3%2 == 0)
		default:
			it.Value = snapshots.None()
		}
		if b2&0x08 != 0 {
			it.Deadband = float64(b3%8) / 10
		}
		if b2&0x10 != 0 {
			it.Volatile = true
		}
		if b2&0x20 != 0 {
			it.Attrs = map[string]string{"meta.code_time": string(rune('a' + b3%3))}
		}
		if b2&0x40 != 0 {
			if it.Attrs == nil {
				it.Attrs = map[string]string{}
			}
			it.Attrs["load_size"] = string(rune('0' + b3%2))
		}
		if b2&0x80 != 0 && b1&0x80 != 0 {
			it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: "cut off"}
			it.Value = snapshots.None()
		}
		if b1&0x40 != 0 {
			it.Indicator = true
		}
		s.Items = append(s.Items, it)
	}
	if err := s.Finalize(); err != nil {
		panic(err) // paths are unique and kinds valid by construction
	}
	return s
}

func hasNotRead(s *snapshots.Snapshot) bool {
	for _, it := range s.Items {
		if it.Provenance.Source == snapshots.SourceNotRead {
			return true
		}
	}
	return false
}

// FuzzCompareGenerated compares generated snapshot pairs both ways. It must
// never panic; the reports must encode and render; for complete snapshots
// without not-read items, added one way is removed the other, and touched
// counts agree; a partial new snapshot never yields a removal.
func FuzzCompareGenerated(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 0, 0, 2}, []byte{0, 0, 0, 2, 2, 1, 0, 3}, uint8(3))
	f.Add([]byte{2, 1, 0x08, 5, 0, 0, 0x20, 1}, []byte{2, 1, 0x08, 6, 0, 0, 0x20, 2}, uint8(3))
	f.Add([]byte{7, 0, 2, 1, 6, 8, 0x10, 0}, []byte{7, 0, 2, 2, 6, 8, 0x11, 0}, uint8(1))
	f.Add([]byte{3, 0x80, 0x80, 0, 5, 5, 3, 0}, []byte{3, 4, 4, 1}, uint8(0))
	f.Fuzz(func(t *testing.T, x, y []byte, flags uint8) {
		a, b := genSnapshot(x, flags&1 != 0), genSnapshot(y, flags&2 != 0)
		ab, ba := Compare(a, b, Options{}), Compare(b, a, Options{})
		for _, r := range []*Report{ab, ba} {
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("encoding: %v", err)
			}
			if err := Render(io.Discard, r, RenderOptions{Color: true}); err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, n := range r.Counts {
				total += n
			}
			if total != len(r.Changes) {
				t.Fatalf("counts %v add up to %d, %d changes", r.Counts, total, len(r.Changes))
			}
		}
		if !b.Status.Complete && ab.Counts[Removed] != 0 {
			t.Fatalf("partial new snapshot gave removals: %+v", ab.ChangesOfType(Removed))
		}
		if !a.Status.Complete && ab.Counts[Added] != 0 {
			t.Fatalf("partial old snapshot gave additions: %+v", ab.ChangesOfType(Added))
		}
		if a.Status.Complete && b.Status.Complete && !hasNotRead(a) && !hasNotRead(b) {
			if ab.Counts[Added] != ba.Counts[Removed] || ab.Counts[Removed] != ba.Counts[Added] {
				t.Fatalf("a->b added %d removed %d; b->a added %d removed %d", ab.Counts[Added], ab.Counts[Removed], ba.Counts[Added], ba.Counts[Removed])
			}
			if ab.Counts[Touched] != ba.Counts[Touched] {
				t.Fatalf("touched %d one way, %d the other", ab.Counts[Touched], ba.Counts[Touched])
			}
		}
	})
}

// TestChangesNaturalOrder: changes list DB2 before DB10 (issue 11), kinds
// first.
func TestChangesNaturalOrder(t *testing.T) {
	old := snap(t, true, block("DB1", 1, nil), block("DB2", 1, nil), block("DB10", 1, nil), block("FC9", 1, nil), block("FC10", 1, nil))
	cur := snap(t, true, block("DB1", 2, nil), block("DB2", 2, nil), block("DB10", 2, nil), block("FC9", 2, nil), block("FC10", 2, nil))
	var got []string
	for _, c := range Compare(old, cur, Options{}).Changes {
		got = append(got, c.Path)
	}
	want := []string{"blocks/DB1", "blocks/DB2", "blocks/DB10", "blocks/FC9", "blocks/FC10"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("changes in order %v, want %v", got, want)
	}
}
