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
	"syscall"
	"testing"

	"github.com/plcwatch/plcwatch/alerts"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/store"
)

// hostEnv is a config in a temporary folder with one S7 device.
type hostEnv struct {
	dir, cfg, db, log string
}

func newHostEnv(t *testing.T, dir, endpoint string) hostEnv {
	t.Helper()
	h := hostEnv{dir: dir, cfg: filepath.Join(dir, "plcwatch.yaml"), db: filepath.Join(dir, "plcwatch.db"), log: filepath.Join(dir, "alerts.jsonl")}
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}, jsonl: {path: alerts.jsonl}}
defaults: {requests_per_second: 500}
daemon: {lock_dir: "%s"}
devices:
  - {name: plc1, protocol: s7, endpoint: "%s", s7: {rack: 0, slot: 2}}
`, filepath.Join(t.TempDir(), "locks"), endpoint)
	if err := os.WriteFile(h.cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

// run runs one command in-process and returns its exit code and output.
func (h hostEnv) run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := New()
	a.Stdout, a.Stderr, a.Stdin = &out, &errb, strings.NewReader("")
	code := a.ExitContext(ctx, a.Run(ctx, append([]string{"--config", h.cfg}, args...)))
	return code, out.String(), errb.String()
}

func startS7(t *testing.T) *s7sim.Server {
	t.Helper()
	s, err := s7sim.Start(t.Context(), s7sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestReadOnlyCommandsNeverCreateAStore: with no store, every command that
// only reads fails naming the path (plan gives its estimate) and creates
// nothing; an empty file is "not a store".
func TestReadOnlyCommandsNeverCreateAStore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		empty    bool // an empty file at store.path instead of none
		wantCode int
		want     string // in stderr
	}{
		{"alerts, missing store", []string{"alerts"}, false, ExitError, "no such file"},
		{"history, missing store", []string{"history", "plc1"}, false, ExitError, "no such file"},
		{"show, missing store", []string{"show", "plc1@latest"}, false, ExitError, "no such file"},
		{"diff, missing store", []string{"diff", "plc1@baseline", "plc1@latest"}, false, ExitError, "no such file"},
		{"verify, missing store", []string{"verify"}, false, ExitError, "no such file"},
		{"plan, missing store: an estimate", []string{"plan", "plc1"}, false, ExitOK, "the plan is an estimate"},
		{"alerts, empty file", []string{"alerts"}, true, ExitError, "not a plcwatch store"},
		{"verify, empty file", []string{"verify"}, true, ExitError, "not a plcwatch store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostEnv(t, t.TempDir(), "127.0.0.1:1")
			if tc.empty {
				if err := os.WriteFile(h.db, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, _, stderr := h.run(t, t.Context(), tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.wantCode, tc.want)
			}
			if tc.wantCode == ExitError && !strings.Contains(stderr, h.db) {
				t.Errorf("stderr %q does not name the store %s", stderr, h.db)
			}
			st, err := os.Stat(h.db)
			switch {
			case tc.empty && (err != nil || st.Size() != 0):
				t.Errorf("the empty file was changed: %v, %v", st, err)
			case !tc.empty && !os.IsNotExist(err):
				t.Errorf("a store was created at %s", h.db)
			}
			for _, side := range []string{h.db + "-wal", h.db + "-shm", h.log} {
				if _, err := os.Stat(side); !os.IsNotExist(err) {
					t.Errorf("%s was created", side)
				}
			}
		})
	}
}

// TestStoreOnReadOnlyFilesystem: an auditor's copy on a read-only
// filesystem is read and verified; a check (which writes) fails as the
// host's failure. Root only (it mounts a tmpfs).
func TestStoreOnReadOnlyFilesystem(t *testing.T) {
	sim := startS7(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v)", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	h := newHostEnv(t, dir, sim.Addr())
	if code, out, errs := h.run(t, t.Context(), "check", "plc1"); code != ExitFindings {
		t.Fatalf("first check: exit %d: %s %s", code, out, errs)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"verify"}, {"alerts"}, {"history", "plc1"}, {"show", "plc1@latest"}} {
		if code, out, errs := h.run(t, t.Context(), args...); code != ExitOK {
			t.Errorf("%v on a read-only filesystem: exit %d: %s %s", args, code, out, errs)
		}
	}
	code, _, errs := h.run(t, t.Context(), "check", "plc1")
	if code != ExitError || strings.Contains(errs, "not a plcwatch store") {
		t.Errorf("check on a read-only filesystem: exit %d, %q; want exit 2 naming the read-only store", code, errs)
	}
}

// TestFullDiskIsTheHosts: a store on a full disk fails the check with exit
// 2 as a host failure; no collection alert blames the controller, and the
// alert log holds whole lines only. Root only (a small tmpfs).
func TestFullDiskIsTheHosts(t *testing.T) {
	sim := startS7(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestJSONLTornLine injects ENOSPC instead", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	h := newHostEnv(t, dir, sim.Addr())
	if code, out, errs := h.run(t, t.Context(), "check", "plc1"); code != ExitFindings {
		t.Fatalf("first check: exit %d: %s %s", code, out, errs)
	}
	fill, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := fill.Write(buf); err != nil {
			break
		}
	}
	fill.Close()
	// A changed program so that the snapshot needs new blobs.
	b := s7sim.DemoScenario().Blocks[0]
	b.Code, b.Seed, b.Size = "", "changed while the disk was full", 2048
	if err := sim.SetBlock(b); err != nil {
		t.Fatal(err)
	}
	code, out, errs := h.run(t, t.Context(), "check", "plc1")
	if code != ExitError || !strings.Contains(errs, "host failure") || strings.Contains(out, "READ FAILED") {
		t.Errorf("check on a full disk: exit %d, stdout %q, stderr %q; want exit 2, a host failure, no READ FAILED", code, out, errs)
	}
	os.Remove(filepath.Join(dir, "filler"))
	code, out, errs = h.run(t, t.Context(), "alerts", "--json")
	if code != ExitOK && code != ExitFindings { // 1: it lists open alerts
		t.Fatalf("alerts: exit %d: %s", code, errs)
	}
	var list []alerts.Alert
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a.Category == alerts.CatCollectionFailed {
			t.Errorf("a full disk was blamed on the controller: %+v", a)
		}
	}
	if code, out, _ := h.run(t, t.Context(), "verify"); code != ExitOK {
		t.Errorf("verify after a full disk: exit %d: %s", code, out)
	}
}

// TestInterruptIsNotAFinding: Ctrl-C during a read exits 130 and records
// nothing against the device (no snapshot, no alert).
func TestInterruptIsNotAFinding(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // holds the connection and never answers
		}
	}()
	h := newHostEnv(t, t.TempDir(), ln.Addr().String())
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		c := <-accepted
		defer c.Close()
		cancel(&Interrupted{Signal: os.Interrupt})
	}()
	code, out, errs := h.run(t, ctx, "check", "plc1")
	if code != ExitInterrupted || strings.Contains(out, "READ FAILED") || !strings.Contains(errs, "interrupted") {
		t.Errorf("Ctrl-C during a check: exit %d, stdout %q, stderr %q; want exit 130 and no READ FAILED", code, out, errs)
	}
	st, err := store.Open(h.db, store.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Records(t.Context(), "plc1")
	if err != nil || len(recs) != 0 {
		t.Errorf("records after Ctrl-C: %+v, %v; want none", recs, err)
	}
}

// TestDemoDirRefusesForeignFolder: demo --dir never deletes a folder it did
// not create.
func TestDemoDirRefusesForeignFolder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(dir string) error
		wantErr bool
	}{
		{"missing folder is created", func(dir string) error { return nil }, false},
		{"empty folder is used", func(dir string) error { return os.Mkdir(dir, 0o700) }, false},
		{"folder of an earlier demo is emptied", func(dir string) error {
			if err := prepareDemoDir(dir); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "plcwatch.db"), []byte("x"), 0o600)
		}, false},
		{"someone's folder is refused", func(dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "thesis.tex"), []byte("years of work"), 0o600)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "demo")
			if err := tc.prepare(dir); err != nil {
				t.Fatal(err)
			}
			err := prepareDemoDir(dir)
			if (err != nil) != tc.wantErr {
				t.Fatalf("prepareDemoDir = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if b, err := os.ReadFile(filepath.Join(dir, "thesis.tex")); err != nil || string(b) != "years of work" {
					t.Errorf("the folder's file is gone or changed: %q, %v", b, err)
				}
				return
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 || entries[0].Name() != demoMarker {
				t.Errorf("folder holds %v, want only %s", entries, demoMarker)
			}
		})
	}
}

// TestVerifyAnchor: deleting or shortening the alert log is a finding, a
// torn last line is not (it is repaired at the next start and noted as the
// host's event), and verify says when it has no outside anchor.
func TestVerifyAnchor(t *testing.T) {
	sim := startS7(t)
	for _, tc := range []struct {
		name     string
		damage   func(t *testing.T, h hostEnv)
		wantCode int
		want     []string // in verify's output
		wantNot  []string
	}{
		{"intact", func(*testing.T, hostEnv) {}, ExitOK, []string{"ok:"}, []string{"NO OUTSIDE ANCHOR", "FINDING"}},
		{"alert log deleted", func(t *testing.T, h hostEnv) {
			if err := os.Remove(h.log); err != nil {
				t.Fatal(err)
			}
		}, ExitFindings, []string{ProblemAlertLogMissing, "NO OUTSIDE ANCHOR"}, nil},
		{"alert log emptied", func(t *testing.T, h hostEnv) {
			if err := os.WriteFile(h.log, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, ExitFindings, []string{ProblemAlertLogShort, "NO OUTSIDE ANCHOR"}, nil},
		{"alert log shortened by one line", func(t *testing.T, h hostEnv) {
			b, err := os.ReadFile(h.log)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.SplitAfter(b, []byte("\n"))
			if err := os.WriteFile(h.log, bytes.Join(lines[:len(lines)-2], nil), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ExitFindings, []string{ProblemAlertLogShort}, []string{"NO OUTSIDE ANCHOR"}},
		{"torn last line", func(t *testing.T, h hostEnv) {
			f, err := os.OpenFile(h.log, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(`{"type":"chain_head","dev`); err != nil {
				t.Fatal(err)
			}
		}, ExitOK, []string{"ok:"}, []string{"FINDING", "NO OUTSIDE ANCHOR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostEnv(t, t.TempDir(), sim.Addr())
			if code, out, errs := h.run(t, t.Context(), "check", "plc1"); code != ExitFindings {
				t.Fatalf("first check: exit %d: %s %s", code, out, errs)
			}
			tc.damage(t, h)
			code, out, errs := h.run(t, t.Context(), "verify")
			if code != tc.wantCode {
				t.Errorf("verify: exit %d, want %d: %s %s", code, tc.wantCode, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("verify output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("verify output has %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestTornLineRepairedAtStart: the next command that writes cuts a torn
// last line off the alert log, keeps it in a side file and stores a host
// alert; verify stays clean.
func TestTornLineRepairedAtStart(t *testing.T) {
	sim := startS7(t)
	h := newHostEnv(t, t.TempDir(), sim.Addr())
	if code, out, errs := h.run(t, t.Context(), "check", "plc1"); code != ExitFindings {
		t.Fatalf("first check: exit %d: %s %s", code, out, errs)
	}
	torn := `{"type":"chain_head","device":"plc1","seq":`
	f, err := os.OpenFile(h.log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(torn)
	f.Close()
	if code, out, errs := h.run(t, t.Context(), "check", "plc1"); code != ExitFindings {
		t.Fatalf("second check: exit %d: %s %s", code, out, errs)
	}
	sides, _ := filepath.Glob(h.log + ".torn-*")
	if len(sides) != 1 {
		t.Fatalf("side files %v, want one", sides)
	}
	if b, _ := os.ReadFile(sides[0]); string(b) != torn {
		t.Errorf("side file holds %q, want %q", b, torn)
	}
	code, out, _ := h.run(t, t.Context(), "alerts", "--json", "--device", HostDevice)
	var list []alerts.Alert
	if code != ExitFindings || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Category != alerts.CatHostFailure {
		t.Errorf("host alerts: exit %d, %s; want one host_failure alert", code, out)
	}
	if code, out, _ := h.run(t, t.Context(), "verify"); code != ExitOK {
		t.Errorf("verify after the repair: exit %d: %s", code, out)
	}
}

// TestConfigCheck: every error with its key and line, then warnings; a
// config with warnings only is valid.
func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src      string
		wantCode int
		want     []string
	}{
		{"every type error", "defaults: {retries: many, request_timeout: soon}\ndevices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:102}\n", ExitError,
			[]string{"error: CFG:1: defaults.retries: want an integer", "error: CFG:1: defaults.request_timeout: want a duration"}},
		{"a section error from the linked-in connector", "devices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:102, s7: {bogus: 1}}\n", ExitError,
			[]string{"error: CFG:2: s7.bogus: unknown key"}},
		{"warnings only", "windows:\n  - {name: w, cron: \"0 2 * * *\", duration: 1h, groups: [plant]}\ndevices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:102, groups: [plnat]}\n  - {name: b, protocol: s7, endpoint: 127.0.0.1:103, groups: [plant]}\n", ExitOK,
			[]string{"CFG:4: warning: devices[0].name: device \"a\" (groups plnat) is in no window", "ok (2 devices, 1 windows, 0 classification rules, 1 warning(s))"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostEnv(t, t.TempDir(), "127.0.0.1:1")
			if err := os.WriteFile(h.cfg, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := h.run(t, t.Context(), "config", "check")
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d: %s %s", code, tc.wantCode, out, errs)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "CFG", h.cfg); !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestAlertLogFailureIsAHostAlert: when the alert log cannot be written (here
// a folder stands where it should be) the check still stores its evidence,
// and the store records the host's failure on the _host chain.
func TestAlertLogFailureIsAHostAlert(t *testing.T) {
	sim := startS7(t)
	h := newHostEnv(t, t.TempDir(), sim.Addr())
	if err := os.Mkdir(h.log, 0o700); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := h.run(t, t.Context(), "check", "plc1"); code != ExitFindings || strings.Contains(out, "READ FAILED") {
		t.Fatalf("check with an unwritable alert log: exit %d: %s %s", code, out, errs)
	}
	code, out, _ := h.run(t, t.Context(), "alerts", "--json", "--device", HostDevice)
	var list []alerts.Alert
	if code != ExitFindings || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Category != alerts.CatHostFailure || !strings.Contains(list[0].Title, "the alert log refused") {
		t.Errorf("host alerts: exit %d, %s; want one host_failure alert about the alert log", code, out)
	}
	code, out, _ = h.run(t, t.Context(), "alerts", "--json", "--device", "plc1")
	if code == ExitError || strings.Contains(out, alerts.CatCollectionFailed) {
		t.Errorf("the controller was blamed: %s", out)
	}
}
