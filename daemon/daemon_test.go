package daemon

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
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/limits"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/store"

	_ "github.com/plcwatch/plcwatch/connectors/logix"
	_ "github.com/plcwatch/plcwatch/connectors/s7"
	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// wiretap is a loopback TCP proxy in front of a simulator that records when
// each request frame reached the simulator: the rate the device really saw.
type wiretap struct {
	ln    net.Listener
	to    string
	frame func(hdr []byte) (int, error) // total length of a frame from its header
	hdr   int

	mu    sync.Mutex
	times []time.Time
}

// tpkt frames S7comm (ISO-on-TCP): 4-byte header, length at 2..3.
func tpkt(h []byte) (int, error) { return int(binary.BigEndian.Uint16(h[2:4])), nil }

// encap frames EtherNet/IP: 24-byte header, data length at 2..3 (LE).
func encap(h []byte) (int, error) { return 24 + int(binary.LittleEndian.Uint16(h[2:4])), nil }

func newTap(t *testing.T, to string, hdr int, frame func([]byte) (int, error)) *wiretap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wiretap{ln: ln, to: to, frame: frame, hdr: hdr}
	t.Cleanup(func() { ln.Close() })
	go w.serve()
	return w
}

func (w *wiretap) addr() string { return w.ln.Addr().String() }

func (w *wiretap) serve() {
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", w.to)
		if err != nil {
			c.Close()
			continue
		}
		go func() { io.Copy(c, s); c.Close() }()
		go func() {
			defer s.Close()
			for {
				h := make([]byte, w.hdr)
				if _, err := io.ReadFull(c, h); err != nil {
					return
				}
				n, err := w.frame(h)
				if err != nil || n < w.hdr {
					return
				}
				rest := make([]byte, n-w.hdr)
				if _, err := io.ReadFull(c, rest); err != nil {
					return
				}
				w.mu.Lock()
				w.times = append(w.times, time.Now())
				w.mu.Unlock()
				if _, err := s.Write(append(h, rest...)); err != nil {
					return
				}
			}
		}()
	}
}

func (w *wiretap) requests() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.times...)
}

func real32(v float64) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, math.Float32bits(float32(v)))
	return b
}

// TestDaemonEndToEnd: several simulators, a window of a few seconds, rate
// limits measured at the simulators, a stall at the window's end, and a
// change planted inside and one outside a planned change.
func TestDaemonEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs windows of a few real seconds")
	}
	ctx := context.Background()
	sa, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	sc, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	lx, err := logixsim.Start(ctx, logixsim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer lx.Close()
	tapA := newTap(t, sa.Addr(), 4, tpkt)
	tapB := newTap(t, sb.Addr(), 4, tpkt)
	tapC := newTap(t, sc.Addr(), 4, tpkt)
	tapL := newTap(t, lx.Addr(), 24, encap)
	for _, s := range []*s7sim.Server{sa, sb} {
		if err := s.SetDB(10, 4, real32(80)); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "plcwatch.yaml")
	// Windows open every 16 s for 14 s; S7 A is held to 30 requests/s, the
	// Logix controller to 15/s. S7 A's ~230 requests take at least 7.7 s and
	// first checks spread over about 3.5 s of the window: a 10 s window left
	// no slack on a loaded machine, so its check was cut off window after
	// window; 14 s does. S7 C (5/s, 80+ requests) is still cut off.
	cfgText := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
defaults: {request_timeout: 1s, retries: 0}
daemon: {max_concurrent_devices: 4, full_read_every: 1}
windows:
  - {name: short, cron: "@every 16s", duration: 14s, time_zone: UTC, groups: [plant]}
devices:
  - name: s7a
    protocol: s7
    endpoint: %s
    groups: [plant]
    limits: {requests_per_second: 30}
    s7: {slot: 2, timeout: 1s, setpoints: [{name: TankHighLimit, address: DB10.DBD4, type: REAL, deadband: 0.5}]}
  - name: s7b
    protocol: s7
    endpoint: %s
    groups: [plant]
    limits: {requests_per_second: 40}
    s7: {slot: 2, timeout: 1s, setpoints: [{name: TankHighLimit, address: DB10.DBD4, type: REAL, deadband: 0.5}]}
  - name: s7c
    protocol: s7
    endpoint: %s
    groups: [plant]
    limits: {requests_per_second: 5}
    s7: {slot: 2, timeout: 1s}
  - name: line3
    protocol: logix
    endpoint: %s
    groups: [plant]
    limits: {requests_per_second: 15}
    logix: {slot: 0, audit_value_tag: PlcwatchAuditValue, timeout: 1s}
`, tapA.addr(), tapB.addr(), tapC.addr(), tapL.addr())
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	var services []*monitor.Service
	var smu sync.Mutex
	events := make(chan Event, 256)
	dctx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() {
		runErr <- Run(dctx, Options{
			ConfigPath: cfgPath, Log: zerolog.Nop(), Events: events, Grace: 10 * time.Second, Housekeeping: time.Second,
			Service: func(cfg *config.Config) (*monitor.Service, func() error, error) {
				st, err := store.Open(cfg.StorePath())
				if err != nil {
					return nil, nil, err
				}
				svc := &monitor.Service{Cfg: cfg, Store: st, Log: zerolog.Nop(), Heads: &alerts.JSONL{Path: cfg.AlertLogPath()},
					Lock: func(ctx context.Context, dev string) (func(), error) {
						return limits.Lock(ctx, filepath.Join(dir, "locks"), dev)
					}}
				smu.Lock()
				services = append(services, svc)
				smu.Unlock()
				return svc, st.Close, nil
			},
		})
	}()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()

	// waitChecks waits until every device finished a check that started
	// after since, and returns their results.
	// (with complete, only checks whose snapshot is complete count: the
	// daemon may start late in a window and be cut off at its end).
	waitChecks := func(since time.Time, complete bool, devices ...string) map[string]Event {
		t.Helper()
		want := map[string]bool{}
		for _, d := range devices {
			want[d] = true
		}
		got := map[string]Event{}
		last := map[string]string{} // why each device's latest check did not count
		deadline := time.After(90 * time.Second)
		for len(got) < len(devices) {
			select {
			case e := <-events:
				if e.Kind == "check_done" && want[e.Device] {
					why := fmt.Sprintf("err=%v", e.Err)
					if e.Result != nil && e.Result.Snapshot != nil {
						why += fmt.Sprintf(" complete=%v %v", e.Result.Snapshot.Status.Complete, e.Result.Snapshot.Status.Reasons)
					}
					last[e.Device] = e.At.Format("15:04:05.000") + " " + why
				}
				ok := e.Kind == "check_done" && e.At.After(since)
				if complete {
					ok = ok && e.Err == nil && e.Result != nil && e.Result.Snapshot != nil && e.Result.Snapshot.Status.Complete
				}
				if ok && want[e.Device] {
					got[e.Device] = e
				}
			case <-deadline:
				t.Fatalf("checks after %v did not all finish: %v; latest checks: %v", since, got, last)
			}
		}
		return got
	}
	first := waitChecks(time.Time{}, true, "s7a", "s7b", "line3")
	var starts []time.Time
	for dev, e := range first {
		if e.Result.BaselineID != "" {
			t.Fatalf("first check of %s has a baseline: %+v", dev, e.Result)
		}
		starts = append(starts, e.At)
	}
	// Approve the first snapshots as baselines, as a person would.
	smu.Lock()
	svc := services[0]
	smu.Unlock()
	for dev, e := range first {
		if _, err := svc.Approve(ctx, monitor.ApproveRequest{SnapshotID: e.Result.SnapshotID, Ticket: "CHG-1", By: "test", OSUser: "test"}); err != nil {
			t.Fatalf("approve %s: %v", dev, err)
		}
	}
	// A planned change on s7a, then both S7 setpoints move; s7b's is not
	// planned.
	if _, _, err := svc.StartChange(ctx, svc.Cfg.Device("s7a"), "CHG-7", "Jane", "jane", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*s7sim.Server{sa, sb} {
		if err := s.SetDB(10, 4, real32(90)); err != nil {
			t.Fatal(err)
		}
	}
	planted := time.Now()
	second := waitChecks(planted, true, "s7a", "s7b", "line3")
	for dev, e := range second {
		if e.Err != nil {
			t.Errorf("second check of %s: %v", dev, e.Err)
		}
	}
	disp := map[string]string{}
	for _, dev := range []string{"s7a", "s7b"} {
		r := second[dev].Result
		if r == nil || len(r.Raised)+len(r.Repeated) == 0 {
			t.Fatalf("%s: no alert for the moved setpoint: %+v", dev, r)
		}
		disp[dev] = append(r.Raised, r.Repeated...)[0].Disposition
	}
	if disp["s7a"] != alerts.Planned || disp["s7b"] != alerts.Unauthorized {
		t.Errorf("dispositions = %v, want s7a planned and s7b unauthorized", disp)
	}

	// A read cut off at the window's end: s7c is held to 5 requests/s, too
	// slow to finish its ~80 requests in the window, and its last block
	// infos stall.
	sc.SetFault(s7sim.Fault{Action: s7sim.FaultStall, Kind: "BlockInfo", Skip: 30})
	third := waitChecks(time.Time{}, false, "s7c")
	e := third["s7c"]
	if e.Result == nil || e.Result.Snapshot == nil || e.Result.Snapshot.Status.Complete {
		t.Fatalf("a check cut at the window's end is not a stored partial snapshot: %+v", e)
	}
	found := false
	// Raised now, or seen again when an earlier window was cut off the same way.
	for _, a := range append(append([]alerts.Alert{}, e.Result.Raised...), e.Result.Repeated...) {
		found = found || a.Category == alerts.CatIncomplete
	}
	if !found {
		t.Errorf("no incomplete-collection alert for the cut-off read: raised %+v, repeated %+v", e.Result.Raised, e.Result.Repeated)
	}
	windowEnd := e.Start.Add(14 * time.Second)
	var last time.Time
	for _, ts := range tapC.requests() {
		if ts.After(e.Start) && ts.Before(e.Start.Add(16*time.Second)) && ts.After(last) {
			last = ts
		}
	}
	if late := last.Sub(windowEnd); late > time.Second {
		t.Errorf("last request to s7c came %v after the window's end; allowed: one request timeout (1s)", late)
	}
	t.Logf("s7c: last request %v after the window's end (limit: request timeout 1s)", last.Sub(windowEnd).Round(time.Millisecond))
	sc.ClearFault()

	// Rates measured at the simulators never exceeded the limits.
	for _, c := range []struct {
		name  string
		tap   *wiretap
		limit int
	}{{"s7a", tapA, 30}, {"s7b", tapB, 40}, {"s7c", tapC, 5}, {"line3", tapL, 15}} {
		peak := limits.MaxInWindow(c.tap.requests(), time.Second)
		t.Logf("%s: %d requests, peak %d in one second (limit %d)", c.name, len(c.tap.requests()), peak, c.limit)
		if peak > c.limit {
			t.Errorf("%s: %d requests in one second, limit %d", c.name, peak, c.limit)
		}
	}
	var spread time.Duration
	for _, s := range starts {
		for _, u := range starts {
			if d := s.Sub(u); d > spread {
				spread = d
			}
		}
	}
	t.Logf("spread of first check times within the window: %v", spread.Round(time.Millisecond))
	for _, s := range []interface{ Refused() int }{sa, sb, sc, lx} {
		if s.Refused() != 0 {
			t.Errorf("a simulator received %d write or control requests", s.Refused())
		}
	}
}

// TestReloadRejectsBadConfig: a bad config on SIGHUP is rejected and the
// daemon keeps running the old one.
func TestReloadRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "plcwatch.yaml")
	good := "store: {path: plcwatch.db}\nalerts: {console: {enabled: false}}\ndevices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:1}\n"
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	events := make(chan Event, 16)
	hup := make(chan os.Signal, 1)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Log: zerolog.Nop(), Events: events, Reload: hup,
			Service: func(cfg *config.Config) (*monitor.Service, func() error, error) {
				st, err := store.Open(cfg.StorePath())
				if err != nil {
					return nil, nil, err
				}
				return &monitor.Service{Cfg: cfg, Store: st, Log: zerolog.Nop()}, st.Close, nil
			}})
	}()
	if e := <-events; e.Kind != "started" {
		t.Fatalf("first event %+v, want started", e)
	}
	if err := os.WriteFile(cfgPath, []byte(good+"bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- os.Interrupt
	e := <-events
	if e.Kind != "reload_failed" || e.Err == nil {
		t.Fatalf("event %+v, want reload_failed", e)
	}
	var ce config.Errors
	if !errors.As(e.Err, &ce) {
		t.Errorf("reload error %v is not a config error with file:line", e.Err)
	}
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- os.Interrupt
	if e := <-events; e.Kind != "reloaded" {
		t.Errorf("event %+v, want reloaded", e)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("daemon: %v", err)
	}
}
