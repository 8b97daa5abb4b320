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
	}{
		{"unknown-key", "4: devices[0].endpont: unknown key; want one of"},
		{"bad-protocol", "3: devices[0].protocol: want one of opcua, s7, logix, got \"modbus\""},
		{"bad-duration", "2: want a duration string such as \"10s\""},
		{"duplicate-device", "5: devices[1].name: device \"line1\" is defined twice"},
		{"bad-cron", "7: windows[0].cron: want a 5-field cron expression"},
		{"bad-zone", "9: windows[0].time_zone: want an IANA time zone"},
		{"bad-rule", "2: classification[0]: kind \"setpoints\": want one of"},
		{"inline-password", "7: devices[0].credentials.password: unknown key; want one of password_env, password_file, username, username_env"},
		{"remote-syslog", "4: alerts.syslog.address: syslog goes to this machine only"},
		{"invalid-yaml", "2: invalid YAML: did not find expected"},
		{"no-devices", "devices: no devices"},
		{"private-key-in-sites", "3: sites[0].public_key: this is a private key: private keys never go into the config"},
		{"missing-endpoint", "2: devices[0].endpoint: missing"},
		{"window-unknown-device", "9: windows[0].devices[0]: no device named \"line2\""},
		{"console-open", "2: console.listen: 0.0.0.0:8686 is not a loopback address: want console.users"},
		{"console-no-tls", "2: console.listen: 192.0.2.7:8686 is not a loopback address: want tls_cert and tls_key, or insecure_http: true"},
		{"console-plain-password", "5: console.users[0].password_hash: want an argon2id hash"},
		{"console-role", "4: console.users[0].role: want one of viewer, operator, approver, got \"admin\""},
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
			if !strings.Contains(err.Error(), path+":"+tc.want) && !strings.Contains(err.Error(), path+": "+tc.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, path+":"+tc.want)
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
