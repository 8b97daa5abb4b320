package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// fakeClock is moved by hand; the simulator's CPU clock and the CLI's
// share it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// run runs one command in-process and returns its exit code and stdout.
func run(t *testing.T, clk *fakeClock, cfg string, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &App{Stdout: &out, Stderr: &errOut, Now: clk.Now, OSUser: func() string { return "tester" }}
	code := a.Exit(a.Run(context.Background(), append([]string{"--config", cfg, "--log-level", "error"}, args...)))
	return code, out.String()
}

// TestCheckWordsExitAndAlertsAgree: what `check` prints, its exit code and
// the alerts it raises come from one verdict (C6: a restart printed
// "UNAPPROVED CHANGES" with exit 0 and no alert).
func TestCheckWordsExitAndAlertsAgree(t *testing.T) {
	tests := []struct {
		name      string
		change    func(*s7sim.Server) error
		wantCode  int
		wantWords []string
		wantTitle string // of the one alert raised; "" for none
	}{
		{name: "restart (RUN-STOP-RUN), nothing changed", change: func(s *s7sim.Server) error {
			if err := s.SetMode("STOP"); err != nil {
				return err
			}
			return s.SetMode("RUN")
		}, wantCode: ExitOK, wantWords: []string{"no unapproved change", "info: info/mode_transition"}},
		{name: "mode changed", change: func(s *s7sim.Server) error { return s.SetMode("STOP") },
			wantCode: ExitFindings, wantWords: []string{"UNAPPROVED CHANGES"}, wantTitle: "operating mode changed: RUN -> STOP"},
		{name: "nothing at all", change: func(*s7sim.Server) error { return nil }, wantCode: ExitOK, wantWords: []string{"no unapproved change"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)}
			sim, err := s7sim.Start(context.Background(), s7sim.Options{Listen: "127.0.0.1:0", Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			dir := t.TempDir()
			cfg := filepath.Join(dir, "plcwatch.yaml")
			y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
devices:
  - {name: tankfarm, protocol: s7, endpoint: %s, limits: {requests_per_second: 1000}, s7: {rack: 0, slot: 2}}
`, sim.Addr())
			if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out := run(t, clk, cfg, "check", "tankfarm", "--json")
			var res []struct {
				Snapshot string `json:"snapshot"`
			}
			if code != ExitFindings || json.Unmarshal([]byte(out), &res) != nil || len(res) != 1 {
				t.Fatalf("first check: exit %d\n%s", code, out)
			}
			if code, out := run(t, clk, cfg, "approve", res[0].Snapshot, "--ticket", "CHG-1", "--by", "eve"); code != ExitOK {
				t.Fatalf("approve: exit %d\n%s", code, out)
			}
			clk.add(time.Hour)
			if err := tc.change(sim); err != nil {
				t.Fatal(err)
			}
			clk.add(time.Hour)
			code, out = run(t, clk, cfg, "check", "tankfarm")
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d:\n%s", code, tc.wantCode, out)
			}
			for _, w := range tc.wantWords {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			_, js := run(t, clk, cfg, "alerts", "--json")
			var als []alerts.Alert
			if err := json.Unmarshal([]byte(js), &als); err != nil {
				t.Fatalf("alerts --json: %v\n%s", err, js)
			}
			switch {
			case tc.wantTitle == "" && len(als) != 0:
				t.Errorf("alerts %+v, want none", als)
			case tc.wantTitle != "" && (len(als) != 1 || als[0].Title != tc.wantTitle || !strings.Contains(out, als[0].ID)):
				t.Errorf("alerts %+v, want one titled %q named in the output:\n%s", als, tc.wantTitle, out)
			}
			if n := sim.Refused(); n != 0 {
				t.Errorf("simulator refused %d requests, want 0", n)
			}
		})
	}
}
