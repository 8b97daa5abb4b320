package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// signalBuffer is a goroutine-safe buffer that signals every write.
type signalBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (s *signalBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *signalBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDaemonAlertsAndLogsOnSeparateStreams: `plcwatch daemon` writes its
// alerts (multi-line text) to standard output and its logs (JSON lines) to
// standard error, never one interleaved in the other (issue 11).
func TestDaemonAlertsAndLogsOnSeparateStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a real maintenance window (at most 12 s)")
	}
	// A device whose endpoint refuses connections: the window's check
	// raises "collection failed".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "plcwatch.yaml")
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: true, color: never}}
defaults: {request_timeout: 1s, retries: 0}
windows:
  - {name: short, cron: "@every 12s", duration: 10s, time_zone: UTC, devices: [tankfarm]}
devices:
  - {name: tankfarm, protocol: s7, endpoint: %s, s7: {rack: 0, slot: 2, timeout: 1s}}
`, dead)
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout := &signalBuffer{wrote: make(chan struct{}, 1)}
	stderr := &signalBuffer{wrote: make(chan struct{}, 1)}
	a := &App{Stdout: stdout, Stderr: stderr, Now: time.Now, OSUser: func() string { return "tester" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- a.Exit(a.Run(ctx, []string{"--config", cfg, "daemon", "--grace", "1s"})) }()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(stdout.String(), "collection failed") {
		select {
		case <-stdout.wrote:
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no alert on stdout within 60 s\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
		case code := <-done:
			t.Fatalf("daemon exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("daemon exited %d after SIGTERM-like cancel", code)
	}
	out, errs := stdout.String(), stderr.String()
	if strings.Contains(out, `"level"`) {
		t.Errorf("a log line on stdout, among the alerts:\n%s", out)
	}
	if strings.Contains(errs, "[MEDIUM]") || strings.Contains(errs, "collection failed:") && !strings.HasPrefix(strings.TrimSpace(errs), "{") {
		t.Errorf("alert text on stderr, among the logs:\n%s", errs)
	}
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
		if l == "" {
			continue
		}
		lines++
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("stderr line is not a JSON log line: %q", l)
		}
	}
	if lines == 0 {
		t.Error("the daemon logged nothing at its default level info")
	}
}
