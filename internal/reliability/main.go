// Command reliability runs plcwatch's reliability campaigns and writes
// docs/RELIABILITY.md (make reliability):
//
//   - kill -9: plcwatch check and the daemon are killed at random instants
//     while they read simulated controllers; after every kill no stored
//     snapshot may be missing, and at the end verify must pass;
//   - tampering: edits to a copy of that store (records, blobs, manifests,
//     whole chains, the alert log) must each be found by verify given the
//     heads recorded before;
//   - fuzzing: every fuzz target runs for -fuzztime and its executions are
//     counted from go test's progress lines;
//   - hostile replies and planted secrets: tests print lines
//     "RELIABILITY key=value ..." (go test -run 'Hostile|Secret' -v); their
//     figures are collected per key, "not measured" when none are printed.
//
// It runs from the module root and needs the go tool. It never touches
// anything but loopback simulators it starts and temporary folders.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite"

	"github.com/plcwatch/plcwatch/store"

	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

func main() {
	out := flag.String("out", "docs/RELIABILITY.md", "the report to write")
	kills := flag.Int("kills", 100, "kill -9 campaign: processes to kill during checks")
	fuzzTime := flag.Duration("fuzztime", 2*time.Second, "time per fuzz target (0 skips fuzzing)")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the random kill instants")
	flag.Parse()
	if err := run(*out, *kills, *fuzzTime, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

// row is one line of the report's table.
type row struct{ campaign, figure, detail string }

func run(out string, kills int, fuzzTime time.Duration, seed uint64) error {
	start := time.Now()
	tmp, err := os.MkdirTemp("", "plcwatch-reliability-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "plcwatch")
	step("building plcwatch")
	if err := goCmd(nil, "build", "-o", bin, "./cmd/plcwatch"); err != nil {
		return fmt.Errorf("building plcwatch: %w", err)
	}
	var rows []row
	site, kr, err := killCampaign(bin, filepath.Join(tmp, "kill"), kills, seed)
	if err != nil {
		return fmt.Errorf("kill campaign: %w", err)
	}
	rows = append(rows, kr...)
	tr, err := tamperCampaign(bin, site, filepath.Join(tmp, "tamper"))
	if err != nil {
		return fmt.Errorf("tampering campaign: %w", err)
	}
	rows = append(rows, tr...)
	fr, err := fuzzCampaign(fuzzTime)
	if err != nil {
		return fmt.Errorf("fuzzing: %w", err)
	}
	rows = append(rows, fr...)
	hr, err := testFigures()
	if err != nil {
		return fmt.Errorf("hostile replies and secrets: %w", err)
	}
	rows = append(rows, hr...)
	return write(out, rows, time.Since(start), seed)
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "reliability: "+format+"\n", args...)
}

// goCmd runs the go tool from the module root; stdout goes to w (nil:
// discarded), stderr to ours on failure.
func goCmd(w io.Writer, args ...string) error {
	cmd := exec.Command("go", args...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return nil
}

// site is a plcwatch config, store and alert log in a folder.
type site struct {
	dir, cfg, db string
}

func (s site) cmd(bin string, args ...string) *exec.Cmd {
	return exec.Command(bin, append([]string{"--config", s.cfg}, args...)...)
}

// countSnapshots counts the snapshot records in the store, read-only.
func (s site) countSnapshots() (int, error) {
	st, err := store.Open(s.db, store.ReadOnly())
	if err != nil {
		return 0, err
	}
	defer st.Close()
	recs, err := st.RecordsOfType(context.Background(), "", store.TypeSnapshot)
	return len(recs), err
}

// killCampaign kills plcwatch check (four times in five) and the daemon
// (once in five) with SIGKILL at a random instant while they read an S7
// and a Logix simulator, until kills processes were killed while running.
func killCampaign(bin, dir string, kills int, seed uint64) (site, []row, error) {
	step("kill -9 campaign: %d kills", kills)
	ctx := context.Background()
	s7, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		return site{}, nil, err
	}
	defer s7.Close()
	lx, err := logixsim.Start(ctx, logixsim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		return site{}, nil, err
	}
	defer lx.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return site{}, nil, err
	}
	s := site{dir: dir, cfg: filepath.Join(dir, "plcwatch.yaml"), db: filepath.Join(dir, "plcwatch.db")}
	cfg := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}, jsonl: {path: alerts.jsonl}}
defaults: {requests_per_second: 100, request_timeout: 2s}
windows:
  - {name: always, cron: "@every 2s", duration: 2s, time_zone: UTC, groups: [plant]}
devices:
  - {name: s7, protocol: s7, endpoint: "%s", groups: [plant], s7: {slot: 2}}
  - {name: line3, protocol: logix, endpoint: "%s", groups: [plant], logix: {slot: 0}}
`, s7.Addr(), lx.Addr())
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		return site{}, nil, err
	}
	// A first whole check: the store exists and its duration is known.
	t0 := time.Now()
	if out, err := s.cmd(bin, "check", "--all").CombinedOutput(); exitCode(err) > 1 {
		return site{}, nil, fmt.Errorf("first check: %v: %s", err, out)
	}
	checkTime := time.Since(t0)
	first, err := s.countSnapshots()
	if err != nil {
		return site{}, nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	killed := map[string]int{}
	finished, lost, maxLost := 0, 0, 0
	for tries := 0; killed["check"]+killed["daemon"] < kills && tries < 4*kills; tries++ {
		before, err := s.countSnapshots()
		if err != nil {
			return site{}, nil, fmt.Errorf("before kill %d: %w", tries, err)
		}
		kind, args, within := "check", []string{"check", "--all"}, checkTime
		if tries%5 == 4 {
			kind, args, within = "daemon", []string{"--log-level", "error", "daemon"}, 3*time.Second
		}
		cmd := s.cmd(bin, args...)
		if err := cmd.Start(); err != nil {
			return site{}, nil, err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// The kill instant is the campaign's random variable.
		delay := time.Duration(rng.Int64N(int64(within)))
		select {
		case <-exited:
			finished++
			continue
		case <-time.After(delay):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		killed[kind]++
		after, err := s.countSnapshots()
		if err != nil {
			return site{}, nil, fmt.Errorf("after kill %d: %w", tries, err)
		}
		if after < before {
			lost += before - after
			maxLost = max(maxLost, before-after)
		}
	}
	last, err := s.countSnapshots()
	if err != nil {
		return site{}, nil, err
	}
	// The next run repairs what the kills tore (the alert log's last line).
	if out, err := s.cmd(bin, "check", "--all").CombinedOutput(); exitCode(err) > 1 {
		return site{}, nil, fmt.Errorf("check after the campaign: %v: %s", err, out)
	}
	vout, verr := s.cmd(bin, "verify").CombinedOutput()
	verdict := "passed (exit 0)"
	if verr != nil {
		verdict = fmt.Sprintf("FAILED (exit %d): %s", exitCode(verr), firstLines(string(vout), 3))
	}
	torn, _ := filepath.Glob(filepath.Join(dir, "alerts.jsonl.torn-*"))
	total := killed["check"] + killed["daemon"]
	lostFig := fmt.Sprintf("%d snapshots lost", lost)
	return s, []row{
		{"kill -9 during checks", fmt.Sprintf("%d kills, %s", total, lostFig),
			fmt.Sprintf("%d of `plcwatch check --all`, %d of the daemon, each at a random instant within a check (%s for two devices, S7 and Logix simulators); %d runs ended before their kill instant and are not counted; snapshots stored: %d before the first kill, %d after the last; %s", killed["check"], killed["daemon"], checkTime.Round(time.Millisecond), finished, first, last, lossNote(lost, maxLost))},
		{"verify after the kills", verdict, fmt.Sprintf("torn alert-log lines repaired at the next start: %d", len(torn))},
	}, nil
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func firstLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[:n]
	}
	return strings.Join(ls, " / ")
}

// tamper is one edit an attacker or a bad day makes to a copy of the store.
type tamper struct {
	name string
	edit func(db *sql.DB, dir string) error
}

func exec1(q string, args ...any) func(db *sql.DB, dir string) error {
	return func(db *sql.DB, _ string) error {
		res, err := db.Exec(q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%q changed nothing", q)
		}
		return nil
	}
}

// rewriteChain replaces the device's chain by a consistent one with an
// edited first record: every digest and link recomputed, as someone who
// knows the format would.
func rewriteChain(db *sql.DB, _ string) error {
	rows, err := db.Query(`SELECT device, seq, type, time, body FROM records WHERE device = 's7' ORDER BY seq`)
	if err != nil {
		return err
	}
	var recs []store.Record
	for rows.Next() {
		var r store.Record
		var ts string
		var body []byte
		if err := rows.Scan(&r.Device, &r.Seq, &r.Type, &ts, &body); err != nil {
			rows.Close()
			return err
		}
		r.Time, _ = time.Parse(time.RFC3339Nano, ts)
		r.Body = body
		recs = append(recs, r)
	}
	rows.Close()
	recs = recs[:len(recs)-1] // and drop the newest
	prev := store.GenesisPrev
	for i := range recs {
		if i == 0 {
			recs[i].Time = recs[i].Time.Add(-time.Hour)
		}
		recs[i].Prev = prev
		recs[i].Digest = recs[i].ComputeDigest()
		prev = recs[i].Digest
	}
	if _, err := db.Exec(`DELETE FROM records WHERE device = 's7'`); err != nil {
		return err
	}
	for _, r := range recs {
		if _, err := db.Exec(`INSERT INTO records (device, seq, type, time, body, prev, digest) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Device, r.Seq, r.Type, r.Time.UTC().Format(time.RFC3339Nano), string(r.Body), r.Prev, r.Digest); err != nil {
			return err
		}
	}
	return nil
}

var tampers = []tamper{
	{"a record's body edited", exec1(`UPDATE records SET body = replace(body, '"', '''') WHERE device = 's7' AND seq = 2`)},
	{"a record's time moved", exec1(`UPDATE records SET time = '2001-01-01T00:00:00Z' WHERE device = 's7' AND seq = 3`)},
	{"a record's type changed", exec1(`UPDATE records SET type = 'ack' WHERE device = 'line3' AND seq = 2`)},
	{"a link (prev) rewritten", exec1(`UPDATE records SET prev = digest WHERE device = 's7' AND seq = 4`)},
	{"the newest record deleted", exec1(`DELETE FROM records WHERE device = 's7' AND seq = (SELECT max(seq) FROM records WHERE device = 's7')`)},
	{"the newest three records deleted", exec1(`DELETE FROM records WHERE device = 'line3' AND seq > (SELECT max(seq) - 3 FROM records WHERE device = 'line3')`)},
	{"a record in the middle deleted", exec1(`DELETE FROM records WHERE device = 's7' AND seq = 3`)},
	{"two records swapped", func(db *sql.DB, _ string) error {
		for _, q := range []string{
			`UPDATE records SET seq = -1 WHERE device = 's7' AND seq = 2`,
			`UPDATE records SET seq = 2 WHERE device = 's7' AND seq = 3`,
			`UPDATE records SET seq = 3 WHERE device = 's7' AND seq = -1`,
		} {
			if _, err := db.Exec(q); err != nil {
				return err
			}
		}
		return nil
	}},
	{"a device's whole chain deleted", exec1(`DELETE FROM records WHERE device = 'line3'`)},
	{"a chain rewritten consistently from scratch", rewriteChain},
	{"an item blob edited", exec1(`UPDATE blobs SET data = data || x'00' WHERE hash = (SELECT hash FROM blobs LIMIT 1)`)},
	{"an item blob deleted", exec1(`DELETE FROM blobs WHERE hash = (SELECT hash FROM blobs LIMIT 1)`)},
	{"a snapshot manifest deleted", exec1(`DELETE FROM snapshots WHERE digest = (SELECT digest FROM snapshots LIMIT 1)`)},
	{"the alert log deleted", func(_ *sql.DB, dir string) error { return os.Remove(filepath.Join(dir, "alerts.jsonl")) }},
	{"the alert log cut to half its lines", func(_ *sql.DB, dir string) error {
		p := filepath.Join(dir, "alerts.jsonl")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines := bytes.SplitAfter(b, []byte("\n"))
		return os.WriteFile(p, bytes.Join(lines[:len(lines)/2], nil), 0o600)
	}},
}

// tamperCampaign applies each tamper to a fresh copy of the kill campaign's
// site and runs verify with the heads printed before: each must be found.
func tamperCampaign(bin string, s site, dir string) ([]row, error) {
	step("tampering campaign: %d edits", len(tampers))
	// Fold the WAL into the main file so a copy of it is the whole store.
	if st, err := store.Open(s.db); err == nil {
		st.Close()
	}
	out, err := s.cmd(bin, "verify", "--json").Output()
	if err != nil {
		return nil, fmt.Errorf("verify before tampering: %v: %s", err, out)
	}
	var v struct {
		Heads []store.Head `json:"heads"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, err
	}
	var headArgs []string
	for _, h := range v.Heads {
		headArgs = append(headArgs, "--head", h.Digest)
	}
	found := 0
	var missed []string
	for i, tp := range tampers {
		cp := site{dir: filepath.Join(dir, strconv.Itoa(i))}
		cp.cfg, cp.db = filepath.Join(cp.dir, "plcwatch.yaml"), filepath.Join(cp.dir, "plcwatch.db")
		if err := copyDir(s.dir, cp.dir); err != nil {
			return nil, err
		}
		db, err := sql.Open("sqlite", cp.db)
		if err != nil {
			return nil, err
		}
		err = tp.edit(db, cp.dir)
		db.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tp.name, err)
		}
		vout, verr := cp.cmd(bin, append([]string{"verify"}, headArgs...)...).CombinedOutput()
		if exitCode(verr) == 1 && strings.Contains(string(vout), "FINDING") {
			found++
		} else {
			missed = append(missed, fmt.Sprintf("%s (exit %d)", tp.name, exitCode(verr)))
		}
	}
	var names []string
	for _, tp := range tampers {
		names = append(names, tp.name)
	}
	detail := "edits, each to a fresh copy of the kill campaign's store, verify given the heads printed before: " + strings.Join(names, "; ")
	if len(missed) > 0 {
		detail += ". NOT FOUND: " + strings.Join(missed, "; ")
	}
	return []row{{"tampering found by verify", fmt.Sprintf("%d/%d", found, len(tampers)), detail}}, nil
}

func copyDir(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
var execsRE = regexp.MustCompile(`execs: (\d+)`)

// fuzzTargets finds every fuzz target by package folder, from the source.
func fuzzTargets() (map[string][]string, error) {
	targets := map[string][]string{}
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") && p != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllSubmatch(b, -1) {
			dir := "./" + filepath.Dir(p)
			targets[dir] = append(targets[dir], string(m[1]))
		}
		return nil
	})
	return targets, err
}

// fuzzCampaign runs every fuzz target for d and counts its executions from
// the last progress line go test prints.
func fuzzCampaign(d time.Duration) ([]row, error) {
	targets, err := fuzzTargets()
	if err != nil {
		return nil, err
	}
	var pkgs []string
	n := 0
	for p, fs := range targets {
		pkgs = append(pkgs, p)
		sort.Strings(fs)
		n += len(fs)
	}
	sort.Strings(pkgs)
	if d <= 0 {
		return []row{{"fuzzing", "not run", fmt.Sprintf("%d fuzz targets; -fuzztime 0", n)}}, nil
	}
	step("fuzzing: %d targets for %v each", n, d)
	var rows []row
	for _, p := range pkgs {
		for _, f := range targets[p] {
			var out bytes.Buffer
			cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+f+"$", "-fuzztime", d.String(), p)
			cmd.Stdout, cmd.Stderr = &out, &out
			runErr := cmd.Run()
			execs, _ := lastExecs(out.String())
			fig := execs + " executions"
			detail := fmt.Sprintf("%s in %s, %v", f, strings.TrimPrefix(p, "./"), d)
			if runErr != nil {
				fig = "FAILED after " + execs + " executions"
				o := out.String()
				if i := strings.Index(o, "--- FAIL"); i >= 0 {
					o = o[i:]
				}
				detail += ": " + firstLines(o, 6) + " (a failing input is kept under the package's testdata/fuzz)"
			}
			rows = append(rows, row{"fuzz " + strings.TrimPrefix(p, "./") + " " + f, fig, detail})
		}
	}
	return rows, nil
}

var reliabilityLine = regexp.MustCompile(`RELIABILITY((?:\s+[\w.-]+=\S+)+)`)

// parseFigures collects the key=value pairs of every "RELIABILITY ..." line
// in test output, keys in first-seen order; a later value of a key wins.
func parseFigures(r io.Reader) (map[string]string, []string) {
	figs := map[string]string{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := reliabilityLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			if _, ok := figs[k]; !ok {
				order = append(order, k)
			}
			figs[k] = v
		}
	}
	return figs, order
}

// figureOf says which campaign a RELIABILITY key belongs to: "opcua", "s7"
// or "logix" when one of its _-separated words names the protocol (such as
// hostile_replies_s7), "secret" when a word starts with "secret", else "".
func figureOf(key string) string {
	for _, w := range strings.FieldsFunc(strings.ToLower(key), func(r rune) bool { return r == '_' || r == '.' || r == '-' }) {
		switch {
		case w == "opcua" || w == "s7" || w == "logix":
			return w
		case strings.HasPrefix(w, "secret"):
			return "secret"
		}
	}
	return ""
}

// lastExecs returns the executions of the last fuzz progress line in out.
func lastExecs(out string) (string, bool) {
	ms := execsRE.FindAllStringSubmatch(out, -1)
	if len(ms) == 0 {
		return "?", false
	}
	return ms[len(ms)-1][1], true
}

// testFigures runs the hostile-server and secret tests of the packages that
// print RELIABILITY lines and collects their key=value figures.
func testFigures() ([]row, error) {
	var pkgs []string
	seen := map[string]bool{}
	filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, "_test.go") || strings.Contains(p, "node_modules") {
			return nil
		}
		b, _ := os.ReadFile(p)
		dir := "./" + filepath.Dir(p)
		if bytes.Contains(b, []byte("RELIABILITY ")) && !seen[dir] && dir != "./internal/reliability" {
			seen[dir] = true
			pkgs = append(pkgs, dir)
		}
		return nil
	})
	sort.Strings(pkgs)
	figs := map[string]string{}
	var order []string
	if len(pkgs) > 0 {
		step("hostile and secret tests in %v", pkgs)
		var out bytes.Buffer
		cmd := exec.Command("go", append([]string{"test", "-count=1", "-run", "Hostile|Secret", "-v"}, pkgs...)...)
		cmd.Stdout, cmd.Stderr = &out, &out
		runErr := cmd.Run()
		figs, order = parseFigures(&out)
		if runErr != nil {
			figs["tests"] = "FAILED"
			order = append(order, "tests")
		}
	}
	var rows []row
	for _, want := range []struct{ campaign, prefix string }{
		{"hostile OPC UA replies", "opcua"}, {"hostile S7 replies", "s7"}, {"hostile Logix replies", "logix"}, {"planted secrets found", "secret"},
	} {
		var parts []string
		for _, k := range order {
			if figureOf(k) == want.prefix {
				parts = append(parts, k+"="+figs[k])
			}
		}
		if len(parts) == 0 {
			rows = append(rows, row{want.campaign, "not measured", "no test printed a RELIABILITY line for it yet"})
			continue
		}
		rows = append(rows, row{want.campaign, strings.Join(parts, ", "), "from RELIABILITY lines printed by go test -run 'Hostile|Secret' -v"})
	}
	var other []string
	for _, k := range order {
		if figureOf(k) == "" {
			other = append(other, k+"="+figs[k])
		}
	}
	if len(other) > 0 {
		rows = append(rows, row{"other RELIABILITY figures", strings.Join(other, ", "), "printed by the same tests"})
	}
	return rows, nil
}

func write(path string, rows []row, took time.Duration, seed uint64) error {
	var b strings.Builder
	commit := "unknown"
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	fmt.Fprintf(&b, "# plcwatch reliability\n\n")
	fmt.Fprintf(&b, "Generated by `make reliability` (`go run ./internal/reliability`); do not edit by hand.\n")
	fmt.Fprintf(&b, "Commit %s, %s/%s, %d CPUs, %s, kill seed %d; the run took %s.\n\n", commit, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04 MST"), seed, took.Round(time.Second))
	b.WriteString("| campaign | figure | how |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(r.campaign), cell(r.figure), cell(r.detail))
	}
	b.WriteString(`
## What each campaign does

- **kill -9 during checks**: ` + "`plcwatch check --all`" + ` (four runs in five) and the daemon (one in
  five) run against an S7 and a Logix simulator on loopback and are killed with SIGKILL at a
  random instant within the time a whole check takes. The store's snapshot records are
  counted before and after every kill: a kill may lose the snapshot being written, never
  one already stored. The next run repairs a torn alert-log line (kept in a side file,
  stored as a host_failure alert) and ` + "`plcwatch verify`" + ` must then pass.
- **tampering**: each edit is made to a fresh copy of that store (SQL on the records,
  blobs and manifests, a chain rewritten with valid digests, the alert log deleted or cut)
  and ` + "`plcwatch verify --head ...`" + ` is given the heads printed before; an edit counts as
  found when verify exits 1 with a FINDING.
- **fuzz**: every ` + "`Fuzz*`" + ` target runs for ` + "`-fuzztime`" + `; the figure is the executions of the
  last progress line (a failure is reported as FAILED with its output).
- **hostile replies, planted secrets**: tests print ` + "`RELIABILITY key=value`" + ` lines; the figures
  are collected from ` + "`go test -run 'Hostile|Secret' -v`" + ` over the packages whose tests print them.
`)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

func lossNote(lost, maxLost int) string {
	if lost == 0 {
		return "never fewer after a kill than before it"
	}
	return fmt.Sprintf("SNAPSHOTS LOST: %d in all, up to %d at one kill", lost, maxLost)
}
