package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// TestRuleWarnings: config check names the rules that matched nothing in
// the latest stored snapshots, by file and line, and only those.
func TestRuleWarnings(t *testing.T) {
	dir := t.TempDir()
	y := `store: {path: plcwatch.db}
classification:
  - {path: "server/**", kind: info}
  - {path: "nothing/here/**", kind: info}
  - {path: "also/nothing", ignore: true}
devices:
  - name: plc1
    protocol: s7
    endpoint: 127.0.0.1:1
    rules:
      - {path: "mode/cpu", kind: info}
      - {path: "setpoints/Typo", deadband: 1, kind: setpoint}
  - name: plc2
    protocol: s7
    endpoint: 127.0.0.1:2
    rules:
      - {path: "setpoints/Typo", kind: setpoint}
`
	path := filepath.Join(dir, "plcwatch.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := ruleWarnings(context.Background(), cfg); err != nil || len(w) != 0 {
		t.Fatalf("without a store: %v %v, want nothing", w, err)
	}
	st, err := store.Open(cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	s := &snapshots.Snapshot{Device: "plc1", Protocol: "s7", TakenAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), Status: snapshots.Status{Complete: true},
		Items: []snapshots.Item{
			{Path: "mode/cpu", Kind: snapshots.KindMode, Value: snapshots.String("RUN"), Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "server/state", Kind: snapshots.KindMode, Value: snapshots.Int(0, ""), Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
		}}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutSnapshot(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	warns, err := ruleWarnings(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(warns, "\n")
	want := []string{
		"plcwatch.yaml:12: warning: rule of device plc1 matched no item of its latest snapshot " + s.ID,
		"plcwatch.yaml:4: warning: rule matched no item of any device's latest snapshot",
	}
	if len(warns) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d", got, len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(warns[i], w) {
			t.Errorf("warning %d = %q, want it to end with %q", i, warns[i], w)
		}
	}
}
