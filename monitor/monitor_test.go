package monitor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/limits"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"

	_ "github.com/plcwatch/plcwatch/connectors/opcua"
	_ "github.com/plcwatch/plcwatch/connectors/s7"
	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// relay is a loopback TCP relay in front of a simulator. It stands for the
// controller's address: a restart is a new simulator behind the same relay,
// and an unreachable controller is a relay that resets every connection
// (the client's error then carries its own local port, different on every
// attempt, as on a real network).
type relay struct {
	ln net.Listener

	mu    sync.Mutex
	to    string // "" resets every connection
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newRelay(t *testing.T) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// target sends new connections to addr ("" resets them).
func (r *relay) target(addr string) {
	r.mu.Lock()
	r.to = addr
	r.mu.Unlock()
}

func (r *relay) track(c net.Conn) {
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
}

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		to := r.to
		r.mu.Unlock()
		if to == "" {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // close with RST: "connection reset by peer"
			}
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", to)
		if err != nil {
			c.Close()
			continue
		}
		r.track(c)
		r.track(s)
		r.wg.Add(2)
		go func() { defer r.wg.Done(); io.Copy(c, s); c.Close() }()
		go func() { defer r.wg.Done(); io.Copy(s, c); s.Close() }()
	}
}

// clock is a fake clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func real32(v float64) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, math.Float32bits(float32(v)))
	return b
}

// fixture is a monitor service on a real store, reading one S7 simulator
// over loopback through a relay.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	svc   *Service
	st    *store.DB
	dev   *config.Device
	relay *relay
	clk   *clock
	sims  []*s7sim.Server
	locks int
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, "") }

// newFixtureWith adds top-level YAML (such as classification rules) to the
// fixture's config.
func newFixtureWith(t *testing.T, extra string) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), relay: newRelay(t), clk: &clock{now: time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)}}
	f.startSim(80)
	dir := t.TempDir()
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
defaults: {request_timeout: 2s, retries: 0}
devices:
  - name: tankfarm
    protocol: s7
    endpoint: %s
    limits: {requests_per_second: 1000}
    s7:
      rack: 0
      slot: 2
      timeout: 2s
      setpoints:
        - {name: TankHighLimit, address: DB10.DBD4, type: REAL, unit: "%%", deadband: 0.5}
%s`, f.relay.addr(), extra)
	path := filepath.Join(dir, "plcwatch.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.dev = cfg.Devices[0]
	lockDir := filepath.Join(dir, "locks")
	f.svc = &Service{Cfg: cfg, Store: st, Log: zerolog.Nop(), Now: f.clk.Now,
		Lock: func(ctx context.Context, device string) (func(), error) {
			f.locks++
			return limits.Lock(ctx, lockDir, device)
		}}
	return f
}

// startSim starts a simulator (a restart when one runs already: same
// program, a later start time), puts the setpoint at sp and points the
// relay at it.
func (f *fixture) startSim(sp float64) *s7sim.Server {
	f.t.Helper()
	sim, err := s7sim.Start(f.ctx, s7sim.Options{Listen: "127.0.0.1:0", Now: f.clk.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { sim.Close() })
	if err := sim.SetDB(10, 4, real32(sp)); err != nil {
		f.t.Fatal(err)
	}
	if n := len(f.sims); n > 0 {
		f.sims[n-1].Close()
	}
	f.sims = append(f.sims, sim)
	f.relay.target(sim.Addr())
	return sim
}

func (f *fixture) sim() *s7sim.Server { return f.sims[len(f.sims)-1] }

// check runs one check an hour after the last.
func (f *fixture) check() *CheckResult {
	f.t.Helper()
	f.clk.add(time.Hour)
	res, err := f.svc.Check(f.ctx, f.dev, SnapshotOptions{})
	if err != nil && res.Error == "" {
		f.t.Fatalf("check: %v", err)
	}
	if res.Verdict != res.Decide() {
		f.t.Errorf("stored verdict %+v differs from Decide() %+v", res.Verdict, res.Decide())
	}
	return res
}

func (f *fixture) approve(id string) {
	f.t.Helper()
	if _, err := f.svc.Approve(f.ctx, ApproveRequest{SnapshotID: id, Ticket: "CHG-1", By: "eve", OSUser: "eve"}); err != nil {
		f.t.Fatalf("approve %s: %v", id, err)
	}
}

func (f *fixture) alerts(cat string) []alerts.Alert {
	f.t.Helper()
	all, err := alerts.List(f.ctx, f.st, alerts.Filter{Device: f.dev.Name})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []alerts.Alert
	for _, a := range all {
		if cat == "" || a.Category == cat {
			out = append(out, a)
		}
	}
	return out
}

func describe(r *CheckResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict %+v error %q", r.Verdict, r.Error)
	for _, a := range r.Active() {
		fmt.Fprintf(&b, "\n  alert %s %s %s", a.ID, a.Category, a.Title)
	}
	if r.Report != nil {
		for _, c := range r.Report.Changes {
			fmt.Fprintf(&b, "\n  change %s %s info=%v %s", c.Path, c.Type, c.Info, c.Reason)
		}
	}
	return b.String()
}

// TestCheckSequence runs the whole check sequence of monitor (lock,
// snapshot, store, compare with the baseline, alert, approve, planned
// change) on the real store against the S7 simulator over loopback, step by
// step as a site lives through it. Each step depends on the ones before.
func TestCheckSequence(t *testing.T) {
	f := newFixture(t)

	// Commissioning: no baseline yet is a finding; approve the snapshot.
	res := f.check()
	if !res.NoBaseline || !res.Verdict.Findings || !strings.Contains(res.Verdict.Summary, "NO BASELINE") || len(res.Active()) != 0 {
		t.Fatalf("first check: %s", describe(res))
	}
	f.approve(res.SnapshotID)
	if f.locks != 1 {
		t.Errorf("device lock taken %d times for one check, want 1", f.locks)
	}

	// Nothing changed: silence.
	if res = f.check(); res.Verdict.Findings || len(res.Active()) != 0 || res.Report == nil || !res.Report.Equal() {
		t.Fatalf("unchanged device: %s", describe(res))
	}

	// An unapproved setpoint change: one alert, raised once over two checks.
	if err := f.sim().SetDB(10, 4, real32(95)); err != nil {
		t.Fatal(err)
	}
	res = f.check()
	if !res.Verdict.Findings || !strings.Contains(res.Verdict.Summary, "UNAPPROVED CHANGES") || len(res.Raised) != 1 || res.Raised[0].Category != alerts.CatSetpoint {
		t.Fatalf("setpoint change: %s", describe(res))
	}
	spID := res.Raised[0].ID
	res = f.check()
	if !res.Verdict.Findings || len(res.Raised) != 0 || len(res.Repeated) != 1 || res.Repeated[0].ID != spID || res.Repeated[0].Count != 2 {
		t.Fatalf("the same change again: %s", describe(res))
	}
	if sp := f.alerts(alerts.CatSetpoint); len(sp) != 1 || sp[0].Count != 2 {
		t.Fatalf("setpoint alerts after two checks: %+v, want one seen twice", sp)
	}
	f.approve(res.SnapshotID) // reviewed: 95 is the new setpoint

	// A restart with nothing changed: the CPU's mode transition time moves,
	// nothing else. Silence, and the words say so.
	f.clk.add(time.Hour)
	f.startSim(95)
	res = f.check()
	if res.Verdict.Findings || len(res.Active()) != 0 || !strings.HasPrefix(res.Verdict.Summary, "no unapproved change") {
		t.Fatalf("restart, nothing changed: %s", describe(res))
	}
	moved := false
	for _, c := range res.Report.Changes {
		if c.Path == "info/mode_transition" && c.Kind == snapshots.KindInfo && c.Info {
			moved = true
		}
	}
	if !moved {
		t.Errorf("the restart is not shown as information (info/mode_transition): %s", describe(res))
	}

	// A partial read: one "incomplete collection", never a removal.
	f.sim().SetFault(s7sim.Fault{Action: s7sim.FaultDrop, Kind: "BlockInfo", Skip: 5})
	res = f.check()
	f.sim().ClearFault()
	if res.Snapshot == nil || res.Snapshot.Status.Complete {
		t.Fatalf("the cut-off read is not partial: %s", describe(res))
	}
	if len(res.Active()) != 1 || res.Active()[0].Category != alerts.CatIncomplete || res.Active()[0].Severity != alerts.Medium ||
		!res.Verdict.Findings || !strings.Contains(res.Verdict.Summary, "INCOMPLETE COLLECTION") {
		t.Fatalf("partial read: %s", describe(res))
	}
	if n := res.Report.Counts[diffing.Removed]; n != 0 {
		t.Errorf("partial read reported %d removal(s): %s", n, describe(res))
	}
	incID := res.Active()[0].ID

	// A collection failure, repeated: one alert, counted. The relay resets
	// each connection, so every error names another local port.
	f.relay.target("")
	const failures = 132
	classes := map[string]bool{}
	for i := 0; i < failures; i++ {
		res = f.check()
		if res.Error == "" || !res.Verdict.Findings || !strings.Contains(res.Verdict.Summary, "READ FAILED") {
			t.Fatalf("failed read %d: %s", i, describe(res))
		}
		classes[res.ErrorClass] = true
	}
	failed := f.alerts(alerts.CatCollectionFailed)
	if len(failed) != 1 || failed[0].Count != failures || !failed[0].Open() {
		t.Fatalf("after %d failed checks: %d collection-failed alert(s) %+v, want one with count %d", failures, len(failed), failed, failures)
	}
	if len(classes) != 1 || classes[ClassOther] {
		t.Errorf("error classes of one fault: %v, want one recognized class", classes)
	}

	// Recovery: a complete read resolves the failure and the incomplete
	// collection, recorded (not deleted) with the snapshot that showed it.
	f.relay.target(f.sim().Addr())
	res = f.check()
	if res.Verdict.Findings || len(res.Resolved) != 2 {
		t.Fatalf("recovery: %s; resolved %+v", describe(res), res.Resolved)
	}
	for _, a := range f.alerts("") {
		switch a.ID {
		case failed[0].ID, incID:
			if a.Resolved == nil || a.Resolved.Snapshot != res.SnapshotID || a.Open() || a.Status != alerts.StatusResolved {
				t.Errorf("alert %s (%s) after recovery: resolved %+v status %q", a.ID, a.Category, a.Resolved, a.Status)
			}
		}
	}
	if recs, err := f.st.RecordsOfType(f.ctx, f.dev.Name, store.TypeAlertResolved); err != nil || len(recs) != 2 {
		t.Errorf("alert_resolved records: %d (%v), want 2", len(recs), err)
	}

	// A planned change: its alert is "planned, pending review" and closes
	// when the after-snapshot is approved.
	f.clk.add(time.Hour)
	if _, _, err := f.svc.StartChange(f.ctx, f.dev, "CHG-7", "eve", "eve", f.clk.Now().Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.sim().SetDB(10, 4, real32(70)); err != nil {
		t.Fatal(err)
	}
	res = f.check()
	if len(res.Raised) != 1 || res.Raised[0].Disposition != alerts.Planned || !strings.Contains(res.Verdict.Summary, "PLANNED CHANGES") || strings.Contains(res.Verdict.Summary, "UNAPPROVED") {
		t.Fatalf("planned change: %s", describe(res))
	}
	planned := res.Raised[0].ID
	f.clk.add(time.Hour)
	_, _, after, err := f.svc.FinishChange(f.ctx, f.dev)
	if err != nil {
		t.Fatal(err)
	}
	f.approve(after.ID)
	for _, a := range f.alerts(alerts.CatSetpoint) {
		if a.ID == planned && (a.Resolved == nil || a.Resolved.Snapshot != after.ID) {
			t.Errorf("planned-change alert after approval: %+v", a)
		}
	}
	if res = f.check(); res.Verdict.Findings {
		t.Errorf("after the approved change: %s", describe(res))
	}

	for i, s := range f.sims {
		if n := s.Refused(); n != 0 {
			t.Errorf("simulator %d refused %d write or control requests, want 0", i, n)
		}
	}
}

// TestCheckBadStatusItem: an item the device answers without a value
// (not observable, or a value the connector left empty without saying why)
// is "not read" with its reason: at most one MEDIUM "incomplete collection",
// never a change and never "removed". It runs the monitor's own sequence on
// stored snapshots (the connector's part is the connectors' tests).
func TestCheckBadStatusItem(t *testing.T) {
	f := newFixture(t)
	res := f.check()
	f.approve(res.SnapshotID)
	base, err := f.st.Snapshot(f.ctx, res.SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mark   func(it *snapshots.Item)
		reason string
	}{
		{"not observable with a Bad status", func(it *snapshots.Item) {
			it.Value, it.Provenance = snapshots.None(), snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "CPU error 0x000A: object does not exist"}
		}, "object does not exist"},
		{"value-less without a mark", func(it *snapshots.Item) { it.Value = snapshots.None() }, diffing.ReasonNoValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := *base
			cur.Items = append([]snapshots.Item(nil), base.Items...)
			for i := range cur.Items {
				if cur.Items[i].Path == "setpoints/TankHighLimit" {
					tc.mark(&cur.Items[i])
				}
			}
			if err := cur.Finalize(); err != nil {
				t.Fatal(err)
			}
			rep := diffing.Compare(base, &cur, diffing.Options{})
			als := alerts.Derive(rep, alerts.Input{Device: f.dev.Name, Now: f.clk.Now()})
			if len(als) != 1 || als[0].Category != alerts.CatIncomplete || als[0].Severity != alerts.Medium {
				t.Fatalf("alerts %+v, want one medium incomplete collection", als)
			}
			if it := als[0].Items; len(it) != 1 || it[0].Path != "setpoints/TankHighLimit" || !strings.Contains(it[0].Reason, tc.reason) {
				t.Errorf("incomplete alert items %+v, want the setpoint with reason %q", it, tc.reason)
			}
			r := &CheckResult{Device: f.dev.Name, Snapshot: &cur, Report: rep, Raised: als}
			if v := r.Decide(); !v.Findings || strings.Contains(v.Summary, "UNAPPROVED") || !strings.Contains(v.Summary, "INCOMPLETE COLLECTION: 1 item(s) not read") {
				t.Errorf("verdict %+v", v)
			}
		})
	}
}

// TestFalsePositiveOnlyWhileItLasts: a finding acknowledged as a false
// positive (a STOP the shift lead knew about) is suppressed while it lasts.
// Once a complete read shows it gone (the CPU back in RUN), the next
// occurrence (another unapproved STOP) is a new alert, never silenced by
// the old acknowledgement.
func TestFalsePositiveOnlyWhileItLasts(t *testing.T) {
	f := newFixture(t)
	f.approve(f.check().SnapshotID)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.sim().SetMode("STOP"))
	res := f.check()
	if len(res.Raised) != 1 || res.Raised[0].Category != alerts.CatMode {
		t.Fatalf("RUN -> STOP: %s", describe(res))
	}
	first := res.Raised[0].ID
	if _, _, err := alerts.Ack(f.ctx, f.st, first, store.Ack{Alert: first, By: "lead", OSUser: "lead", Decision: alerts.DecisionFalsePositive, Comment: "planned stop", At: f.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if res = f.check(); res.Verdict.Findings || len(res.Suppressed) != 1 || len(res.Active()) != 0 {
		t.Fatalf("the same STOP again, acknowledged as a false positive: %s", describe(res))
	}
	must(f.sim().SetMode("RUN"))
	if res = f.check(); res.Verdict.Findings {
		t.Fatalf("back in RUN: %s", describe(res))
	}
	must(f.sim().SetMode("STOP"))
	res = f.check()
	if !res.Verdict.Findings || len(res.Raised) != 1 || res.Raised[0].Category != alerts.CatMode || res.Raised[0].ID == first || len(res.Suppressed) != 0 {
		t.Fatalf("a second STOP after RUN: %s; want a new alert, not %s suppressed", describe(res), first)
	}
}

// TestCheckNoBaselineIncomplete: the first read of a device is partial.
// Its "incomplete collection" names the snapshot and no baseline (there is
// none yet), and the verdict says both.
func TestCheckNoBaselineIncomplete(t *testing.T) {
	f := newFixture(t)
	f.sim().SetFault(s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "ReadVar", Object: "DB10", Code: 0x0A})
	res := f.check()
	if !res.NoBaseline || len(res.Raised) != 1 || res.Raised[0].Category != alerts.CatIncomplete ||
		!strings.Contains(res.Verdict.Summary, "NO BASELINE") || !strings.Contains(res.Verdict.Summary, "INCOMPLETE COLLECTION") {
		t.Fatalf("first check, partial: %s", describe(res))
	}
	if a := res.Raised[0]; a.Snapshot != res.SnapshotID || a.Baseline != "" {
		t.Errorf("alert names snapshot %q and baseline %q, want snapshot %s and no baseline", a.Snapshot, a.Baseline, res.SnapshotID)
	}
}

// TestRulesReachEveryItem: the configured rules classify the items the
// connector makes itself (mode, identity), so a site can silence or
// re-class anything; without a rule the connector's classification stays.
func TestRulesReachEveryItem(t *testing.T) {
	f := newFixtureWith(t, `classification:
  - {path: mode/cpu, ignore: true}
  - {path: "protection/**", kind: info}
`)
	res := f.check()
	if res.Snapshot == nil {
		t.Fatalf("check: %s", describe(res))
	}
	kinds := map[snapshots.Kind]int{}
	protection := 0
	for _, it := range res.Snapshot.Items {
		kinds[it.Kind]++
		switch {
		case it.Path == "mode/cpu":
			t.Errorf("mode/cpu kept despite an ignore rule: %+v", it)
		case strings.HasPrefix(it.Path, "protection/"):
			protection++
			if it.Kind != snapshots.KindInfo {
				t.Errorf("%s has kind %s, want info from the rule", it.Path, it.Kind)
			}
		}
	}
	if protection == 0 {
		t.Errorf("no protection/ items to re-class; kinds %v", kinds)
	}
	if kinds[snapshots.KindLogic] == 0 || kinds[snapshots.KindSetpoint] == 0 {
		t.Errorf("items no rule matched lost their connector's kind: %v", kinds)
	}
}

// TestRulesReachConnectorItems: OPC UA's own server/* and security/* items
// (which its connector makes without consulting the rules) follow the
// rules too.
func TestRulesReachConnectorItems(t *testing.T) {
	ctx := context.Background()
	sim, err := opcuasim.Start(ctx, opcuasim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
classification:
  - {path: server/build_date, kind: info}
  - {path: "security/**", ignore: true}
devices:
  - name: skid7
    protocol: opcua
    endpoint: %s
    limits: {requests_per_second: 1000}
    opcua:
      browse: [{root: "i=85", max_depth: 3, max_nodes: 200}]
`, sim.Endpoint())
	path := filepath.Join(dir, "plcwatch.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := &Service{Cfg: cfg, Store: st, Log: zerolog.Nop()}
	snap, err := svc.Snapshot(ctx, cfg.Devices[0], SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range snap.Items {
		switch {
		case it.Path == "server/build_date":
			found = true
			if it.Kind != snapshots.KindInfo {
				t.Errorf("server/build_date has kind %s, want info from the rule", it.Kind)
			}
		case strings.HasPrefix(it.Path, "security/"):
			t.Errorf("%s kept despite an ignore rule", it.Path)
		case it.Path == "server/software_version" && it.Kind != snapshots.KindFirmware:
			t.Errorf("server/software_version has kind %s, want the connector's firmware (no rule matches)", it.Kind)
		}
	}
	if !found {
		t.Error("no server/build_date item")
	}
	if n := sim.Refused(); n != 0 {
		t.Errorf("simulator refused %d requests, want 0", n)
	}
}

// TestErrorClass: the class comes from the error's type, never its text.
func TestErrorClass(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errReset())}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", fmt.Errorf("device x: reading SZL: %w", context.DeadlineExceeded), ClassTimeout},
		{"reset, wrapped", fmt.Errorf("device x: %w", reset), ClassReset},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errRefused())}, ClassRefused},
		{"EOF", fmt.Errorf("reading TPKT: %w", io.ErrUnexpectedEOF), ClassReset},
		{"dns", &net.DNSError{Err: "no such host", Name: "plc.invalid"}, ClassHostUnreachable},
		{"breaker", fmt.Errorf("x: %w", limits.ErrBreakerOpen), ClassBreakerOpen},
		{"text that says timeout is not a timeout", errors.New("i/o timeout on 127.0.0.1:40001"), ClassOther},
		{"own class", classed("authentication"), ClassAuthentication},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorClass(tc.err); got != tc.want {
				t.Errorf("ErrorClass(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

type classed string

func (c classed) Error() string      { return "failed: " + string(c) }
func (c classed) ErrorClass() string { return string(c) }
