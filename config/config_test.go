package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadGood(t *testing.T) {
	c, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	d := c.Device("line1")
	if d == nil || d.Line != 10 {
		t.Fatalf("device line1 missing or at the wrong line: %+v", d)
	}
	if got := c.StorePath(); got != filepath.Join("testdata", "test.db") {
		t.Errorf("store path = %q, want it relative to the config file", got)
	}
	l := c.LimitsFor(d)
	if l.RequestsPerSecond != 2 || l.MaxInFlight != 1 || l.RequestTimeout.D() != 5*time.Second {
		t.Errorf("limits = %+v, want defaults merged", l)
	}
	if len(c.WindowsFor(d)) != 1 {
		t.Errorf("device is in %d windows, want 1", len(c.WindowsFor(d)))
	}
	if c.Classification[0].Source != "testdata/good.yaml:6" {
		t.Errorf("rule source = %q", c.Classification[0].Source)
	}
}

// TestBadConfigs checks every testdata/*.bad.yaml is rejected with the
// expected message at the expected line.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string // "line: text" the error must contain
		more []string
	}{
		{"type-errors", "2: defaults.retries: want an integer, got \"many\"", []string{
			"3: defaults.request_timeout: want a duration string",
			"4: defaults.requests_per_second: want a number, got \"fast\"",
			"6: daemon.max_concurrent_devices: want an integer, got \"lots\""}},
		{"explicit-zero", "2: defaults.requests_per_second: want a number > 0", []string{
			"3: defaults.snapshot_timeout: want a positive duration",
			"5: daemon.full_read_every: want an integer >= 1",
			"11: devices[0].limits.max_in_flight: want an integer >= 1, got 0"}},
		{"foreign-section", "5: devices[0].opcua: a opcua section on a device whose protocol is \"s7\"", nil},
		{"unknown-key", "4: devices[0].endpont: unknown key; want one of", nil},
		{"bad-protocol", "3: devices[0].protocol: want one of opcua, s7, logix, got \"modbus\"", nil},
		{"bad-duration", "2: defaults.request_timeout: want a duration string such as \"10s\"", nil},
		{"duplicate-device", "5: devices[1].name: device \"line1\" is defined twice", nil},
		{"bad-cron", "7: windows[0].cron: want a 5-field cron expression", nil},
		{"bad-zone", "9: windows[0].time_zone: want an IANA time zone", nil},
		{"bad-rule", "2: classification[0]: kind \"setpoints\": want one of", nil},
		{"inline-password", "7: devices[0].credentials.password: unknown key; want one of password_env, password_file, username, username_env", nil},
		{"remote-syslog", "4: alerts.syslog.address: syslog goes to this machine only", nil},
		{"invalid-yaml", "2: invalid YAML: did not find expected", nil},
		{"no-devices", "devices: no devices", nil},
		{"missing-endpoint", "2: devices[0].endpoint: missing", nil},
		{"window-unknown-device", "9: windows[0].devices[0]: no device named \"line2\"", nil},
		{"private-key-in-sites", "3: sites[0].public_key: this is a private key: private keys never go into the config", nil},
		{"console-open", "2: console.listen: 0.0.0.0:8686 is not a loopback address: want console.users", nil},
		{"console-no-tls", "2: console.listen: 192.0.2.7:8686 is not a loopback address: want tls_cert and tls_key, or insecure_http: true", nil},
		{"console-plain-password", "5: console.users[0].password_hash: want an argon2id hash", nil},
		{"console-role", "4: console.users[0].role: want one of viewer, operator, approver, got \"admin\"", nil},
		{"isolation-memory", "3: isolation.memory_limit_mb: want 0 (no limit) or 64 to 1048576 MiB, got 8", nil},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file+".bad.yaml"] = true
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file+".bad.yaml")
			_, err := Load(path)
			if err == nil {
				t.Fatal("config accepted")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want config.Errors", err)
			}
			for _, w := range append([]string{tc.want}, tc.more...) {
				if !strings.Contains(err.Error(), path+":"+w) && !strings.Contains(err.Error(), path+": "+w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, path+":"+w)
				}
			}
		})
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no row in the table", f)
		}
	}
}

func TestAllErrorsReported(t *testing.T) {
	src := "devices:\n  - name: a\n    protocol: x\n  - name: a\n    protocol: opcua\n"
	_, err := Parse("t.yaml", []byte(src))
	var es Errors
	if !errors.As(err, &es) || len(es) < 4 {
		t.Fatalf("want at least 4 errors (protocol, 2 endpoints, duplicate), got %v", err)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Line < es[i-1].Line {
			t.Errorf("errors not in file order: %v", err)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Setenv("PW", "hunter2")
	c := Credentials{Username: "op", PasswordEnv: "PW"}
	u, pw, err := c.Resolve()
	if err != nil || u != "op" || pw.Reveal() != "hunter2" {
		t.Fatalf("Resolve = %q, %v", u, err)
	}
	for _, s := range []string{pw.String(), strings.TrimSpace(sprintf("%v %+v %#v %s", pw, pw, pw, pw))} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret printed: %s", s)
		}
	}
	if _, _, err := (Credentials{Username: "op", PasswordEnv: "NOPE_NOT_SET"}).Resolve(); err == nil {
		t.Error("unset env var accepted")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	os.WriteFile(f, []byte("s3cret\n"), 0o644)
	if _, _, err := (Credentials{Username: "op", PasswordFile: f}).Resolve(); err == nil || !strings.Contains(err.Error(), "readable by group or others") {
		t.Errorf("world-readable password file: %v", err)
	}
	os.Chmod(f, 0o600)
	if _, pw, err := (Credentials{Username: "op", PasswordFile: f}).Resolve(); err != nil || pw.Reveal() != "s3cret" {
		t.Errorf("password file: %v", err)
	}
}

func TestPathPrecedence(t *testing.T) {
	t.Setenv(EnvPath, "")
	if Path("") != DefaultPath {
		t.Error("default path")
	}
	t.Setenv(EnvPath, "/etc/plcwatch.yaml")
	if Path("") != "/etc/plcwatch.yaml" || Path("x.yaml") != "x.yaml" {
		t.Error("env or flag precedence wrong")
	}
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// FuzzParse: any bytes give a config or an error naming a place, never a
// panic.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/good.yaml", "testdata/unknown-key.bad.yaml", "testdata/bad-cron.bad.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse("f.yaml", b)
		if err == nil && len(cfg.Devices) == 0 {
			t.Fatal("a config without devices was accepted")
		}
		var es Errors
		if err != nil && errors.As(err, &es) {
			for _, e := range es {
				if e.File != "f.yaml" {
					t.Fatalf("error without the file name: %v", e)
				}
			}
		}
	})
}

// TestExplicitZero: a key given as 0 is 0; only an absent key takes the
// default.
func TestExplicitZero(t *testing.T) {
	base := "devices:\n  - name: a\n    protocol: s7\n    endpoint: 127.0.0.1:102\n"
	for _, tc := range []struct {
		name, defaults, limits string
		retries, breaker       int
		timeout                time.Duration
	}{
		{"absent: defaults", "", "", 2, 5, 5 * time.Second},
		{"retries: 0 in defaults", "defaults: {retries: 0}\n", "", 0, 5, 5 * time.Second},
		{"retries: 0 on the device overrides 3", "defaults: {retries: 3}\n", "    limits: {retries: 0}\n", 0, 5, 5 * time.Second},
		{"breaker_failures: 0 (never opens)", "", "    limits: {breaker_failures: 0}\n", 2, 0, 5 * time.Second},
		{"request_timeout: 0s (none)", "defaults: {request_timeout: 0s}\n", "", 2, 5, 0},
		{"device keys not given keep the defaults", "defaults: {retries: 4}\n", "    limits: {max_in_flight: 1}\n", 4, 5, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tc.defaults+base+tc.limits))
			if err != nil {
				t.Fatal(err)
			}
			l := c.LimitsFor(c.Devices[0])
			if l.Retries != tc.retries || l.BreakerFailures != tc.breaker || l.RequestTimeout.D() != tc.timeout {
				t.Errorf("retries %d, breaker_failures %d, request_timeout %v; want %d, %d, %v", l.Retries, l.BreakerFailures, l.RequestTimeout, tc.retries, tc.breaker, tc.timeout)
			}
		})
	}
}

// TestWarnings: valid but probably wrong settings are warned about with
// their line.
func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "pw-open")
	if err := os.WriteFile(open, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(dir, "pw-closed")
	if err := os.WriteFile(closed, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PLCWATCH_TEST_SET", "x")
	win := "windows:\n  - {name: w, cron: \"0 2 * * *\", duration: 1h, groups: [plant]}\n"
	dev := func(extra string) string {
		return "devices:\n  - name: a\n    protocol: s7\n    endpoint: 127.0.0.1:102\n    groups: [plant]\n" + extra
	}
	for _, tc := range []struct {
		name, src string
		want      string // "" for no warning
	}{
		{"clean", win + dev(""), ""},
		{"device in no window (misspelled group)", win + dev("  - {name: b, protocol: s7, endpoint: 127.0.0.1:103, groups: [plnat]}\n"), "8: devices[1].name: device \"b\" (groups plnat) is in no window"},
		{"credential env var not set", win + dev("    credentials: {username: op, password_env: PLCWATCH_TEST_UNSET}\n"), "devices[0].credentials.password_env: environment variable PLCWATCH_TEST_UNSET is not set"},
		{"credential env var set", win + dev("    credentials: {username: op, password_env: PLCWATCH_TEST_SET}\n"), ""},
		{"password file readable by others", win + dev("    credentials: {username: op, password_file: "+open+"}\n"), "is readable by group or others (mode 0644)"},
		{"password file 0600", win + dev("    credentials: {username: op, password_file: "+closed+"}\n"), ""},
		{"rate beyond a sane maximum", win + dev("    limits: {requests_per_second: 1000}\n"), "8: devices[0].limits.requests_per_second: 1000 requests per second is beyond the sane maximum"},
		{"in-flight beyond a sane maximum", "defaults: {max_in_flight: 50}\n" + win + dev(""), "1: defaults.max_in_flight: 50 requests in flight is beyond"},
		{"zero request timeout", "defaults: {request_timeout: 0s}\n" + win + dev(""), "1: defaults.request_timeout: 0 means no request timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			ws := c.Warnings()
			if tc.want == "" {
				if len(ws) != 0 {
					t.Errorf("warnings %v, want none", ws)
				}
				return
			}
			if !strings.Contains(ws.Error(), tc.want) {
				t.Errorf("warnings:\n%v\nwant %q", ws, tc.want)
			}
		})
	}
}

// TestRegistry: a protocol without a registered section validator is an
// error naming what the build has; a validator's errors come back.
func TestRegistry(t *testing.T) {
	src := "devices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:102}\n  - {name: b, protocol: opcua, endpoint: opc.tcp://127.0.0.1:4840}\n"
	c, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var r Registry
	if err := r.Register("s7", func(d *Device) error {
		return &Error{File: d.File, Line: d.Line, Field: "devices[0].s7", Msg: "bad slot"}
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("s7", func(*Device) error { return nil }); err == nil {
		t.Error("a duplicate registration was accepted")
	}
	err = r.CheckSections(c)
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("CheckSections = %v, want 2 errors", err)
	}
	for _, want := range []string{"t.yaml:2: devices[0].s7: bad slot", "t.yaml:3: devices[1].protocol: protocol \"opcua\" is not linked into this build of plcwatch (it has: s7)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSections:\n%v\nwant %q", err, want)
		}
	}
}
