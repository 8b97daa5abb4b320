// Package e2e runs the real plcwatch binary against protocol simulators over
// loopback, the way a person at a site would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var plcwatchBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plcwatch-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	plcwatchBin = filepath.Join(dir, "plcwatch")
	args := []string{"build", "-o", plcwatchBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "../cmd/plcwatch")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+map[bool]string{true: "1", false: "0"}[raceEnabled])
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building plcwatch: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// site is one plcwatch installation in a temporary folder.
type site struct {
	t   *testing.T
	dir string
	cfg string
}

func newSite(t *testing.T, devices string) *site {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "plcwatch.yaml")
	body := "store:\n  path: plcwatch.db\nalerts:\n  console:\n    color: never\n" + devices
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return &site{t: t, dir: dir, cfg: cfg}
}

// run runs plcwatch with args and returns stdout, stderr and the exit code.
func (s *site) run(args ...string) (string, string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, plcwatchBin, append([]string{"--config", s.cfg}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Dir = s.dir
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			s.t.Fatalf("plcwatch %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// want runs plcwatch and fails the test unless it exits with code.
func (s *site) want(code int, args ...string) string {
	s.t.Helper()
	out, errs, got := s.run(args...)
	if got != code {
		s.t.Fatalf("plcwatch %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errs)
	}
	return out
}

// alertsJSON runs `plcwatch alerts --json ARGS`, which exits 1 when it
// lists an open alert and 0 otherwise, and checks that the exit code
// agrees with the statuses listed.
func (s *site) alertsJSON(args ...string) string {
	s.t.Helper()
	out, errs, code := s.run(append([]string{"alerts", "--json"}, args...)...)
	var as []struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &as); err != nil {
		s.t.Fatalf("plcwatch alerts --json %v: exit %d: %v\nstderr:\n%s", args, code, err, errs)
	}
	want := 0
	for _, a := range as {
		if a.Status == "open" {
			want = 1
		}
	}
	if code != want {
		s.t.Fatalf("plcwatch alerts --json %v: exit %d, want %d for %d alerts\nstderr:\n%s", args, code, want, len(as), errs)
	}
	return out
}

// latestID returns the id of a device's newest snapshot.
func (s *site) latestID(device string) string {
	s.t.Helper()
	var snap struct {
		ID     string `json:"id"`
		Status struct {
			Complete bool `json:"complete"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(s.want(0, "show", device+"@latest", "--json")), &snap); err != nil {
		s.t.Fatal(err)
	}
	return snap.ID
}

// baseline takes a first snapshot and approves it.
func (s *site) baseline(device string) string {
	s.t.Helper()
	out := s.want(1, "check", device)
	if !strings.Contains(out, "NO BASELINE") {
		s.t.Fatalf("first check does not report the missing baseline:\n%s", out)
	}
	id := s.latestID(device)
	s.want(0, "approve", id, "--ticket", "CHG-1", "--by", "Test Engineer", "--comment", "commissioning")
	s.want(0, "check", device)
	return id
}

type alertJSON struct {
	ID        string `json:"id"`
	Category  string `json:"category"`
	Severity  string `json:"severity"`
	Count     int    `json:"count"`
	Technique *struct {
		ID string `json:"id"`
	} `json:"technique"`
	AttackVersion string `json:"attack_version"`
	Items         []struct {
		Path   string `json:"path"`
		Change string `json:"change"`
		Old    string `json:"old"`
		New    string `json:"new"`
	} `json:"items"`
}

func (s *site) alerts(args ...string) []alertJSON {
	s.t.Helper()
	var as []alertJSON
	if err := json.Unmarshal([]byte(s.alertsJSON(args...)), &as); err != nil {
		s.t.Fatal(err)
	}
	return as
}

func (s *site) alertsOf(category string) []alertJSON {
	var out []alertJSON
	for _, a := range s.alerts() {
		if a.Category == category {
			out = append(out, a)
		}
	}
	return out
}
