package console

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	_ "github.com/plcwatch/plcwatch/connectors/s7"
	"github.com/plcwatch/plcwatch/monitor"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/store"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func real32(v float64) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, math.Float32bits(float32(v)))
	return b
}
func (f *fixture) record() []store.Record { return f.records("") }
func (f *fixture) device() *config.Device { return f.cfg.Devices[0] }
func (f *fixture) osUser() string         { return "plcwatch-svc" }
func (f *fixture) consoleOpts() Options {
	return Options{Cfg: f.cfg, Store: f.st, Svc: f.svc, Heads: f.headLog, Log: zerolog.Nop(), OSUser: f.osUser(), Now: f.clk.Now, Poll: 20 * time.Millisecond}
}
func (f *fixture) records(typ string) []store.Record {
	f.t.Helper()
	var rs []store.Record
	var err error
	if typ == "" {
		rs, err = f.st.Records(f.ctx, "tankfarm")
	} else {
		rs, err = f.st.RecordsOfType(f.ctx, "tankfarm", typ)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return rs
}

// headLog records the chain heads the console writes.
type headLog struct {
	mu    sync.Mutex
	heads []store.Head
}

func (h *headLog) WriteHead(x store.Head) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heads = append(h.heads, x)
	return nil
}

func (h *headLog) list() []store.Head {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]store.Head(nil), h.heads...)
}

// fixture is a store seeded by real checks of an S7 simulator on loopback,
// through the monitor service, with a console config around it.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	cfg     *config.Config
	st      *store.DB
	svc     *monitor.Service
	sim     *s7sim.Server
	clk     *clock
	headLog *headLog
}

// testParams keep argon2id cheap in tests (the format is the same).
var testParams = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := argon2id.CreateHash(pw, testParams)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newFixture starts the simulator and loads a config with consoleYAML as
// its console: section (empty for none).
func newFixture(t *testing.T, consoleYAML string) *fixture {
	t.Helper()
	ctx := context.Background()
	// The clock starts at the real time (the connector stamps snapshots
	// with it) and moves a minute per check.
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	sim, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := sim.SetDB(10, 4, real32(80)); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetDB(10, 38, s7string(24, "fill\nheat 60C\nmix")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
defaults: {request_timeout: 2s, retries: 0}
windows:
  - {name: nightly, cron: "0 2 * * *", duration: 1h, time_zone: UTC, devices: [tankfarm]}
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
        - {name: BatchSteps, address: DB10.DBB38, type: STRING, length: 24}
%s`, sim.Addr(), consoleYAML)
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
	svc := &monitor.Service{Cfg: cfg, Store: st, Log: zerolog.Nop(), Now: clk.Now}
	return &fixture{t: t, ctx: ctx, cfg: cfg, st: st, svc: svc, sim: sim, clk: clk, headLog: &headLog{}}
}

// check runs one check of the device a minute after the last.
func (f *fixture) check() *monitor.CheckResult {
	f.t.Helper()
	f.clk.add(time.Minute)
	res, err := f.svc.Check(f.ctx, f.device(), monitor.SnapshotOptions{})
	if err != nil && (res == nil || res.Error == "") {
		f.t.Fatalf("check: %v", err)
	}
	return res
}

// seed commissions a baseline and then finds an unapproved setpoint and
// logic change: it returns the baseline check and the check with the alert.
func (f *fixture) seed() (base, changed *monitor.CheckResult) {
	f.t.Helper()
	base = f.check()
	if _, err := f.svc.Approve(f.ctx, monitor.ApproveRequest{SnapshotID: base.SnapshotID, Ticket: "CHG-1000", By: "commissioning", OSUser: "eve"}); err != nil {
		f.t.Fatal(err)
	}
	f.changeDevice(95)
	changed = f.check()
	if len(changed.Raised) == 0 {
		f.t.Fatalf("no alert raised by the setpoint and logic change: %+v", changed.Verdict)
	}
	return base, changed
}

// changeDevice acts like an engineer: a new setpoint, a changed step of
// the batch text (a multi-line STRING, so a text item) and a changed FC.
func (f *fixture) changeDevice(sp float64) {
	f.t.Helper()
	if err := f.sim.SetDB(10, 4, real32(sp)); err != nil {
		f.t.Fatal(err)
	}
	if err := f.sim.SetDB(10, 38, s7string(24, fmt.Sprintf("fill\nheat %.0fC\nmix", sp))); err != nil {
		f.t.Fatal(err)
	}
	for _, k := range f.sim.BlockKeys() {
		if strings.HasPrefix(k, "FC") {
			b, _ := f.sim.Block(k)
			b.Code, b.Seed = "", fmt.Sprintf("edited-%v", sp)
			if b.Size == 0 {
				b.Size = 64
			}
			if err := f.sim.SetBlock(b); err != nil {
				f.t.Fatal(err)
			}
			return
		}
	}
}

// openAlerts lists the device's open alerts.
func (f *fixture) openAlerts() []alerts.Alert {
	f.t.Helper()
	list, err := alerts.List(f.ctx, f.st, alerts.Filter{OpenOnly: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return list
}

// noWrites asserts the simulator saw no write or control request.
func (f *fixture) noWrites() {
	f.t.Helper()
	if n := f.sim.Refused(); n != 0 {
		f.t.Errorf("the simulator refused %d write or control request(s): %v", n, f.sim.Requests())
	}
	for k := range f.sim.Requests() {
		if !isReadKind(k) {
			f.t.Errorf("the simulator saw a %q request", k)
		}
	}
}

func isReadKind(k string) bool {
	for _, r := range s7sim.ReadKinds {
		if r == k {
			return true
		}
	}
	return false
}

func (f *fixture) usersFor(t *testing.T) []config.ConsoleUser {
	return []config.ConsoleUser{{Name: "alice", Role: "approver", PasswordHash: hash(t, "alice-pw")}}
}

// s7string encodes an S7 STRING[max]: maximum length, current length, text.
func s7string(max int, s string) []byte {
	b := make([]byte, 2+max)
	b[0], b[1] = byte(max), byte(len(s))
	copy(b[2:], s)
	return b
}

func approveReq(id, ticket, by string) monitor.ApproveRequest {
	return monitor.ApproveRequest{SnapshotID: id, Ticket: ticket, By: by, OSUser: "eve"}
}
