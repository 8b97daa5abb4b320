package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Volatile parts of command output, replaced before comparing with a golden
// file: ids and digests move with content and times, the simulator's port
// and the temp dir with each run, durations with the machine.
var (
	reDigest = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	reID     = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
	reAlert  = regexp.MustCompile(`\bA-[0-9a-f]{10}\b`)
	reAddr   = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	reDur    = regexp.MustCompile(`"(\d+(\.\d+)?(h|m|s|ms|µs|ns))+"`)
	reTime   = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`)
	reCost   = regexp.MustCompile(`("(bytes_in|bytes_out|requests|count)": )\d+`)
	reKey    = regexp.MustCompile(`(ssh-ed25519 |SHA256:)[A-Za-z0-9+/=]+`)
)

func normalize(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "<dir>")
	s = reDigest.ReplaceAllString(s, "<digest>")
	s = reID.ReplaceAllString(s, "<id>")
	s = reAlert.ReplaceAllString(s, "A-<alert>")
	s = reAddr.ReplaceAllString(s, "127.0.0.1:<port>")
	s = reDur.ReplaceAllString(s, `"<duration>"`)
	s = reTime.ReplaceAllString(s, `"<time>"`)
	s = reKey.ReplaceAllString(s, "${1}<key>")
	return reCost.ReplaceAllString(s, "${1}<n>")
}

func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./app -run TestJSONGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (check, then rerun with -update):\n%s", path, got)
	}
}

// checkSchema fails on what the one JSON style forbids: null (an empty
// list is []), bare nanoseconds (a member named *_ns), times without a zone.
func checkSchema(t *testing.T, out string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case nil:
			t.Errorf("%s is null", path)
		case map[string]any:
			for k, e := range x {
				if strings.HasSuffix(k, "_ns") {
					t.Errorf("%s.%s: a duration in bare nanoseconds", path, k)
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string:
			// Device data (an S7 block's DATE_AND_TIME has no zone) is
			// shown as read; only plcwatch's own times must carry one.
			if strings.Contains(path, ".attrs.") || strings.Contains(path, ".value.") || strings.Contains(path, ".items[") {
				return
			}
			if regexp.MustCompile(`^\d{4}-\d\d-\d\d[T ]\d\d:\d\d`).MatchString(x) && !reTime.MatchString(`"`+x+`"`) {
				t.Errorf("%s = %q: a time not in RFC 3339 with zone", path, x)
			}
		}
	}
	walk("$", v)
}

// TestJSONGolden runs every command with --json through one device's
// life (commissioning, a nightly check, an unapproved change, its alert and
// acknowledgement, a planned change, verification) against the S7
// simulator, and compares each output with testdata/NAME.golden. Every
// output keeps the one schema style and each command exits as the README
// says.
func TestJSONGolden(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)}
	sim, err := s7sim.Start(context.Background(), s7sim.Options{Listen: "127.0.0.1:0", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "plcwatch.yaml")
	y := fmt.Sprintf(`site: plant1
store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
windows:
  - {name: nightly, cron: "30 1 * * *", duration: 2h, time_zone: Europe/Berlin, devices: [tankfarm]}
devices:
  - name: tankfarm
    protocol: s7
    endpoint: %s
    limits: {requests_per_second: 1000}
    s7:
      rack: 0
      slot: 2
      setpoints:
        - {name: TankHighLimit, address: DB10.DBD4, type: REAL, unit: "%%", deadband: 0.5}
`, sim.Addr())
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	setHigh := func(v float32) func() {
		return func() {
			b := make([]byte, 4)
			binary.BigEndian.PutUint32(b, math.Float32bits(v))
			if err := sim.SetDB(10, 4, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ids = map[string]string{} // snapshot ids and alert ids by role
	steps := []struct {
		name   string
		before func()
		args   func() []string
		want   int
		keep   func(out string) // remembers an id for later steps
	}{
		{name: "config-check", args: func() []string { return []string{"config", "check"} }},
		{name: "version", args: func() []string { return []string{"version"} }},
		{name: "windows", args: func() []string { return []string{"windows", "-n", "1"} }},
		{name: "plan", args: func() []string { return []string{"plan", "tankfarm"} }},
		{name: "check-no-baseline", args: func() []string { return []string{"check", "--all"} }, want: ExitFindings,
			keep: func(out string) { ids["first"] = field(t, out, `"snapshot": "`) }},
		{name: "show", args: func() []string { return []string{"show", "tankfarm@latest"} }},
		{name: "approve", args: func() []string {
			return []string{"approve", ids["first"], "--ticket", "CHG-1001", "--by", "J. Engineer", "--comment", "commissioning"}
		}},
		{name: "alerts-none", args: func() []string { return []string{"alerts", "--open"} }},
		{name: "check-clean", args: func() []string { return []string{"check", "tankfarm"} }},
		{name: "diff-equal", args: func() []string { return []string{"diff", "tankfarm@baseline", "tankfarm@latest"} }},
		{name: "check-change", before: setHigh(97.5), args: func() []string { return []string{"check", "tankfarm"} }, want: ExitFindings},
		{name: "alerts-open", args: func() []string { return []string{"alerts", "--open"} }, want: ExitFindings,
			keep: func(out string) { ids["alert"] = field(t, out, `"id": "`) }},
		{name: "diff", args: func() []string { return []string{"diff", "tankfarm@baseline", "tankfarm@latest"} }, want: ExitFindings},
		{name: "ack", args: func() []string {
			return []string{"ack", ids["alert"], "--by", "Shift Lead", "--decision", "investigating", "--comment", "called the engineer"}
		}},
		{name: "alerts-acked", args: func() []string { return []string{"alerts", "--open"} }},
		{name: "change-start", before: setHigh(87.5), args: func() []string {
			return []string{"change", "start", "tankfarm", "--ticket", "CHG-1234", "--by", "J. Engineer", "--until", "4h"}
		}},
		{name: "change-finish", before: setHigh(90), args: func() []string { return []string{"change", "finish", "tankfarm"} }, want: ExitFindings},
		{name: "snapshot", args: func() []string { return []string{"snapshot", "tankfarm", "--label", "after"} }},
		{name: "history", args: func() []string { return []string{"history", "tankfarm"} }},
		{name: "verify", args: func() []string { return []string{"verify"} }},
		{name: "keygen", args: func() []string {
			return []string{"keygen", "--out", filepath.Join(dir, "site.key"), "--comment", "plant1"}
		}},
		{name: "export", args: func() []string {
			return []string{"export", "--key", filepath.Join(dir, "site.key"), "--out", filepath.Join(dir, "b1.tar")}
		}},
		{name: "verify-bundle", args: func() []string {
			return []string{"verify", "--bundle", filepath.Join(dir, "b1.tar"), "--key", filepath.Join(dir, "site.key.pub")}
		}},
		{name: "import", before: func() {
			pub, err := os.ReadFile(filepath.Join(dir, "site.key.pub"))
			if err != nil {
				t.Fatal(err)
			}
			central := fmt.Sprintf("store: {path: central.db}\nalerts: {console: {enabled: false}, jsonl: {path: central-alerts.jsonl}}\nsites:\n  - {name: plant1, public_key: %q}\n", strings.TrimSpace(string(pub)))
			if err := os.WriteFile(filepath.Join(dir, "central.yaml"), []byte(central), 0o600); err != nil {
				t.Fatal(err)
			}
		}, args: func() []string {
			return []string{"--config", filepath.Join(dir, "central.yaml"), "import", filepath.Join(dir, "b1.tar")}
		}},
		{name: "report", args: func() []string { return []string{"report", "--since", "30d", "--out", filepath.Join(dir, "report")} }},
		{name: "alerts-unknown-device", args: func() []string { return []string{"alerts", "--device", "nosuch"} }, want: ExitError},
		{name: "history-unknown-device", args: func() []string { return []string{"history", "nosuch"} }, want: ExitError},
		{name: "check-unknown-device", args: func() []string { return []string{"check", "nosuch"} }, want: ExitError},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		clk.add(time.Minute)
		args := append(st.args(), "--json")
		code, out := run(t, clk, cfg, args...)
		if code != st.want {
			t.Fatalf("%s: plcwatch %s exited %d, want %d\n%s", st.name, strings.Join(args, " "), code, st.want, out)
		}
		if st.want == ExitError {
			if out != "" {
				t.Errorf("%s: an error printed %q on stdout", st.name, out)
			}
			continue
		}
		checkSchema(t, out)
		if st.keep != nil {
			st.keep(out)
		}
		goldenFile(t, "json-"+st.name, []byte(normalize(out, dir)))
	}
}

// field returns the value after the first occurrence of prefix, up to the
// closing quote.
func field(t *testing.T, out, prefix string) string {
	t.Helper()
	i := strings.Index(out, prefix)
	if i < 0 {
		t.Fatalf("no %s in\n%s", prefix, out)
	}
	rest := out[i+len(prefix):]
	return rest[:strings.IndexByte(rest, '"')]
}
