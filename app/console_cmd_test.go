package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alexedwards/argon2id"
	"github.com/rs/zerolog"
)

// consoleConfig writes a config with one (never contacted) device and the
// given console section.
func consoleConfig(t *testing.T, section string) string {
	t.Helper()
	dir := t.TempDir()
	y := "store: {path: plcwatch.db}\nalerts: {console: {enabled: false}}\n" + section +
		"devices:\n  - {name: tankfarm, protocol: s7, endpoint: 127.0.0.1:1}\n"
	p := filepath.Join(dir, "plcwatch.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConsoleCommand: the console command refuses an open address without
// users, and hash-password prints an argon2id hash of the password given.
func TestConsoleCommand(t *testing.T) {
	cfg := consoleConfig(t, "")
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "non-loopback listen without users", args: []string{"console", "--listen", "0.0.0.0:0"}, wantCode: ExitError, wantErr: "console.users"},
		{name: "hash-password without a password", args: []string{"console", "hash-password"}, wantCode: ExitError, wantErr: "password"},
		{name: "hash-password", stdin: "s3cret\n", args: []string{"console", "hash-password"}, wantCode: ExitOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			a := &App{Stdin: strings.NewReader(tc.stdin), Stdout: &out, Stderr: &errOut, Now: (&fakeClock{}).Now, OSUser: func() string { return "tester" }}
			code := a.Exit(a.Run(context.Background(), append([]string{"--config", cfg, "--log-level", "error"}, tc.args...)))
			if code != tc.wantCode || !strings.Contains(errOut.String(), tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tc.wantCode, tc.wantErr)
			}
			if tc.stdin != "" {
				ok, err := argon2id.ComparePasswordAndHash("s3cret", strings.TrimSpace(out.String()))
				if err != nil || !ok {
					t.Errorf("hash %q does not verify the password: %v", out.String(), err)
				}
			}
		})
	}
}

// TestDaemonConsole: with console.enabled the daemon's console serves the
// overview of the configured devices, and stops with the daemon.
func TestDaemonConsole(t *testing.T) {
	cfg := consoleConfig(t, "console: {enabled: true, listen: \"127.0.0.1:0\"}\n")
	a := &App{Stdout: io.Discard, Stderr: io.Discard, Now: (&fakeClock{}).Now, OSUser: func() string { return "tester" },
		configFlag: cfg, logFormat: "json", logLevel: "error"}
	ready := make(chan string, 1)
	stop, err := a.daemonConsole(context.Background(), zerolog.Nop(), ready)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	addr := <-ready
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "tankfarm") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("overview: %d %q\n%s", resp.StatusCode, resp.Header, body)
	}

	// Without console.enabled the daemon serves nothing.
	a.configFlag = consoleConfig(t, "")
	stop2, err := a.daemonConsole(context.Background(), zerolog.Nop(), ready)
	if err != nil {
		t.Fatal(err)
	}
	stop2()
	select {
	case addr := <-ready:
		t.Errorf("a console started on %s without console.enabled", addr)
	default:
	}
}
