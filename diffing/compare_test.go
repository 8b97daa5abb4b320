package diffing

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
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
		{"partial old: new items are not added", snap(t, false, block("OB1", 1, nil)), snap(t, true, block("OB1", 1, nil), block("FC9", 1, nil)), nil, true, 0},
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

// TestDriftAgainstBaseline: five steps each under the deadband are caught
// once they add up past it, because each is compared with the baseline.
func TestDriftAgainstBaseline(t *testing.T) {
	base := snap(t, true, sp("setpoints/T", 80, 0.5))
	caughtAt := 0
	for step := 1; step <= 5; step++ {
		cur := snap(t, true, sp("setpoints/T", 80+0.2*float64(step), 0.5))
		if !Compare(base, cur, Options{}).Equal() && caughtAt == 0 {
			caughtAt = step
		}
	}
	if caughtAt != 3 {
		t.Errorf("drift caught at step %d, want 3 (0.6 > 0.5)", caughtAt)
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
		if sa.Status.Complete && sb.Status.Complete && ab.Counts[Added] != ba.Counts[Removed] {
			t.Fatalf("added %d one way, removed %d the other", ab.Counts[Added], ba.Counts[Removed])
		}
		var buf bytes.Buffer
		if err := Render(&buf, ab, RenderOptions{Color: true}); err != nil {
			t.Fatal(err)
		}
	})
}
