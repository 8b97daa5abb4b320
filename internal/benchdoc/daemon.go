package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plcwatch/plcwatch/limits"
	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// The daemon measured: this many simulated controllers of each protocol in
// one window, this many read at once, each at this many requests per
// second; the Logix controllers also share one gateway.
var (
	daemonS7, daemonLogix, daemonOPCUA = 300, 150, 50
	daemonCap                          = 16
	daemonRPS                          = 50.0
	daemonGatewayRPS                   = 200.0
)

// daemonFigures is `plcwatch daemon` reading a mixed fleet in one window,
// against the floor the per-device rate, the gateway's rate and the device
// cap impose.
type daemonFigures struct {
	S7, Logix, OPCUA, Cap int
	RPS, GatewayRPS       float64
	Requests              int           // request frames all simulators received
	Floor                 time.Duration // see floorOf
	// Took is from the first check the daemon started to the last one it
	// finished (stored, compared, alerted).
	Took time.Duration
	Run  run // the daemon process, start to SIGTERM, sessions included
	// MaxInSecond is the most request frames one simulator received in any
	// one-second window; Failed the devices whose check failed.
	MaxInSecond, Failed, Refused int
}

// floorDevice is one device's requests and the limits on them.
type floorDevice struct {
	requests int
	rps      float64
	gateway  string // "" if none
}

// floorOf is the least time the limits allow a fleet: each device needs
// (n-1)/rps for its n requests; at most capDevices are read at once, so the
// fleet needs the sum of those over the cap; and the requests of all the
// devices behind a gateway are 1/rps of the gateway apart.
func floorOf(devs []floorDevice, capDevices int, gateways map[string]float64) time.Duration {
	var sum, longest float64
	behind := map[string]int{}
	for _, d := range devs {
		t := float64(max(d.requests-1, 0)) / d.rps
		sum += t
		longest = max(longest, t)
		if d.gateway != "" {
			behind[d.gateway] += d.requests
		}
	}
	floor := max(longest, sum/float64(max(capDevices, 1)))
	for g, n := range behind {
		if rps := gateways[g]; rps > 0 {
			floor = max(floor, float64(max(n-1, 0))/rps)
		}
	}
	return time.Duration(floor * float64(time.Second))
}

// windowFor returns an "@every" period in whole seconds, at least min,
// whose window of duration d is open at now and in its second half, with at
// least d/4 of it left: every device's first check (at its offset in the
// first half, schedules.Offset) is then due when the daemon starts, so the
// spread is out of the measure and what remains is the limits. Such
// windows are anchored to the Unix epoch, so the period picks the phase.
func windowFor(now time.Time, minPeriod, d time.Duration) (time.Duration, error) {
	for p := minPeriod.Truncate(time.Second); p < minPeriod+24*time.Hour; p += time.Second {
		phase := time.Duration(now.UnixNano() % int64(p))
		if phase >= d/2 && phase <= d*3/4 {
			return p, nil
		}
	}
	return 0, errors.New("no period puts now in the second half of the window")
}

// sim is one simulated controller and what timestamps its request frames.
type sim struct {
	name, protocol, endpoint string
	frames                   func() []time.Time
	refused                  func() int
	close                    func()
}

// benchDaemon starts the simulators, each behind a proxy that timestamps
// every request frame, runs `plcwatch daemon` in a window already open,
// follows its log until every device's check ended, and stops it.
func benchDaemon(ctx context.Context, bin, dir string) (daemonFigures, error) {
	f := daemonFigures{S7: daemonS7, Logix: daemonLogix, OPCUA: daemonOPCUA, Cap: daemonCap, RPS: daemonRPS, GatewayRPS: daemonGatewayRPS}
	var sims []*sim
	defer func() {
		for _, s := range sims {
			s.close()
		}
	}()
	// S7 and Logix simulators sit behind a proxy that timestamps each
	// request frame.
	add := func(protocol string, fr framing, addr string, refused func() int, closeFn func() error) error {
		p, err := newFrameProxy(addr, fr)
		if err != nil {
			closeFn()
			return err
		}
		sims = append(sims, &sim{name: fmt.Sprintf("%s%03d", protocol, len(sims)), protocol: protocol, endpoint: p.Addr(),
			frames: p.Frames, refused: refused, close: func() { p.Close(); closeFn() }})
		return nil
	}
	for range daemonS7 {
		s, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
		if err != nil {
			return f, err
		}
		if err := add("s7", tpktFrame, s.Addr(), s.Refused, s.Close); err != nil {
			return f, err
		}
	}
	for range daemonLogix {
		s, err := logixsim.Start(ctx, logixsim.Options{Listen: "127.0.0.1:0"})
		if err != nil {
			return f, err
		}
		if err := add("logix", encapFrame, s.Addr(), s.Refused, s.Close); err != nil {
			return f, err
		}
	}
	// One certificate for every OPC UA simulator (kept in dir after the
	// first made it): RSA key generation is not what is measured.
	certs := filepath.Join(dir, "opcua-state")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return f, err
	}
	// An OPC UA simulator timestamps its frames itself (OnFrame): gopcua's
	// server answers GetEndpoints only for its own URL, so no proxy can sit
	// in front of it.
	for range daemonOPCUA {
		rec := &limits.Recorder{}
		s, err := opcuasim.Start(ctx, opcuasim.Options{Listen: "127.0.0.1:0", StateDir: certs, Security: []string{"None/None"},
			OnFrame: func() { rec.Record(time.Now()) }})
		if err != nil {
			return f, err
		}
		sims = append(sims, &sim{name: fmt.Sprintf("opcua%03d", len(sims)), protocol: "opcua", endpoint: s.Addr(),
			frames: rec.Times, refused: s.Refused, close: func() { s.Close() }})
	}

	const window = time.Hour
	period, err := windowFor(time.Now(), 2*window, window)
	if err != nil {
		return f, err
	}
	var devs strings.Builder
	for _, s := range sims {
		switch s.protocol {
		case "s7":
			fmt.Fprintf(&devs, "  - {name: %s, protocol: s7, endpoint: %s, groups: [plant], s7: {rack: 0, slot: 2}}\n", s.name, s.endpoint)
		case "logix":
			fmt.Fprintf(&devs, "  - {name: %s, protocol: logix, endpoint: %s, groups: [plant], gateway: cell, logix: {slot: 0, audit_value_tag: PlcwatchAuditValue}}\n", s.name, s.endpoint)
		case "opcua":
			fmt.Fprintf(&devs, "  - {name: %s, protocol: opcua, endpoint: opc.tcp://%s, groups: [plant], opcua: {security_policy: None}}\n", s.name, s.endpoint)
		}
	}
	cfg := filepath.Join(dir, "plcwatch.yaml")
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
defaults: {requests_per_second: %g, max_in_flight: 1}
daemon: {max_concurrent_devices: %d}
gateways:
  - {name: cell, requests_per_second: %g, max_in_flight: 4}
windows:
  - {name: bench, cron: "@every %ds", duration: %s, time_zone: UTC, groups: [plant]}
devices:
%s`, daemonRPS, daemonCap, daemonGatewayRPS, int(period/time.Second), window, devs.String())
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		return f, err
	}
	took, r, failed, err := runDaemon(ctx, bin, cfg, len(sims))
	if err != nil {
		return f, err
	}
	f.Took, f.Run, f.Failed = took, r, failed
	var fd []floorDevice
	for _, s := range sims {
		ts := s.frames()
		f.Requests += len(ts)
		f.MaxInSecond = max(f.MaxInSecond, maxInWindow(ts, time.Second))
		f.Refused += s.refused()
		d := floorDevice{requests: len(ts), rps: daemonRPS}
		if s.protocol == "logix" {
			d.gateway = "cell"
		}
		fd = append(fd, d)
	}
	f.Floor = floorOf(fd, daemonCap, map[string]float64{"cell": daemonGatewayRPS})
	return f, nil
}

// runDaemon runs `plcwatch daemon` under GNU time and reads its JSON log
// lines as they come: the first "scheduled check" starts the clock, and
// once every one of n devices logged the end of its check ("check done", or
// a failure) the clock stops and the daemon gets SIGTERM. It returns the
// time between the two, the process's figures and how many checks failed.
func runDaemon(ctx context.Context, bin, cfg string, n int) (time.Duration, run, int, error) {
	tf, err := os.CreateTemp("", "benchdoc-time-")
	if err != nil {
		return 0, run{}, 0, err
	}
	tf.Close()
	defer os.Remove(tf.Name())
	cmd := exec.CommandContext(ctx, timeBin, "-f", "%U %S %M", "-o", tf.Name(), "--", bin, "--config", cfg, "daemon", "--grace", "10s")
	cmd.Stdout = io.Discard
	logs, err := cmd.StderrPipe()
	if err != nil {
		return 0, run{}, 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, run{}, 0, err
	}
	var first, last time.Time
	ended := map[string]bool{}
	failed := 0
	sc := bufio.NewScanner(logs)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for len(ended) < n && sc.Scan() {
		var l struct {
			Message string `json:"message"`
			Device  string `json:"device"`
			Window  string `json:"window"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Window == "" {
			continue
		}
		switch l.Message {
		case "scheduled check":
			if first.IsZero() {
				first = time.Now()
			}
		case "check done":
			ended[l.Device] = true
			last = time.Now()
		case "check failed", "check failed; no time left in the window to retry", "check stopped by a host failure":
			if !ended[l.Device] {
				failed++
				if failed == 1 {
					fmt.Fprintf(os.Stderr, "daemon: check of %s failed: %s\n", l.Device, l.Error)
				}
			}
			ended[l.Device] = true
			last = time.Now()
		}
	}
	if len(ended) < n {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, run{}, 0, fmt.Errorf("the daemon's log ended after %d of %d devices", len(ended), n)
	}
	// GNU time passes signals on to nobody: signal the daemon, its child.
	if err := signalChild(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, run{}, 0, err
	}
	go io.Copy(io.Discard, logs)
	if err := cmd.Wait(); err != nil {
		return 0, run{}, 0, fmt.Errorf("plcwatch daemon: %w", err)
	}
	r := run{Wall: time.Since(start)}
	out, err := os.ReadFile(tf.Name())
	if err != nil {
		return 0, r, 0, err
	}
	fs := strings.Fields(string(out))
	if len(fs) < 3 {
		return 0, r, 0, fmt.Errorf("%s wrote %q, want user, system and max RSS", timeBin, out)
	}
	user, err1 := strconv.ParseFloat(fs[len(fs)-3], 64)
	sys, err2 := strconv.ParseFloat(fs[len(fs)-2], 64)
	rss, err3 := strconv.ParseInt(fs[len(fs)-1], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, r, 0, fmt.Errorf("%s: reading %q: %w", timeBin, out, err)
	}
	r.CPU = time.Duration((user + sys) * float64(time.Second))
	r.PeakRSS = rss * 1024
	return last.Sub(first), r, failed, nil
}

// signalChild sends sig to the one child of process pid (Linux: its
// /proc children list).
func signalChild(pid int, sig syscall.Signal) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return fmt.Errorf("finding the daemon under %s: %w", timeBin, err)
	}
	fs := strings.Fields(string(b))
	if len(fs) != 1 {
		return fmt.Errorf("%s (pid %d) has children %q, want the daemon alone", timeBin, pid, fs)
	}
	child, err := strconv.Atoi(fs[0])
	if err != nil {
		return err
	}
	return syscall.Kill(child, sig)
}

// daemonMarkdown is the daemon section of the report ("" when not
// measured).
func daemonMarkdown(fs []daemonFigures) string {
	if len(fs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Daemon: one window on a mixed fleet against the rate-limit floor\n\n")
	b.WriteString("`plcwatch daemon` with simulated S7-300 (the demo program), ControlLogix and OPC UA controllers on loopback, in one maintenance window; every request frame a simulator receives is timestamped (S7 and Logix by a proxy in front, OPC UA by the simulator itself, since gopcua's server answers GetEndpoints only for its own URL). ")
	b.WriteString("The Logix controllers all sit behind one gateway. The window (`@every P`, one hour long) is already past its midpoint when the daemon starts, so every device's first check, at its stable offset in the first half, is due at once: the spread over the window is out of the measure and the limits are what is left. ")
	b.WriteString("The daemon logs JSON lines; the time runs from its first `scheduled check` to the last device's `check done` (snapshot stored, compared, alerted), then it gets SIGTERM. ")
	b.WriteString("The floor: each device needs (n-1)/rps for its n requests, the fleet at least the sum of those over `max_concurrent_devices`, and a gateway's devices together (N-1)/rps of the gateway. ")
	b.WriteString("Targets: time at most 1.10x the floor; no simulator sees more than floor(rps) requests in any one second. CPU is user + system of the daemon and all its session processes; peak RSS the largest of them. The simulators run in the benchmark process on the same 2 cores, so they share the CPU with the daemon.\n\n")
	b.WriteString("| S7 | Logix (behind the gateway) | OPC UA | cap | rps per device | gateway rps | requests | floor | all devices done | ratio | target met | max requests in one second (limit) | failed checks | refused writes | peak RSS | CPU |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|---:|\n")
	for _, f := range fs {
		tr := ratio(f.Took, f.Floor)
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %g | %g | %d | %s | %s | %.2f | %s | %d (%d) %s | %d | %d | %s | %.2f s |\n", f.S7, f.Logix, f.OPCUA, f.Cap, f.RPS, f.GatewayRPS, f.Requests,
			ms(f.Floor), ms(f.Took), tr, yes(tr <= 1.1), f.MaxInSecond, int(f.RPS), yes(f.MaxInSecond <= int(f.RPS)), f.Failed, f.Refused, mib(f.Run.PeakRSS), f.Run.CPU.Seconds())
	}
	return b.String()
}

// spread is the range of ratios, "1.04-1.09 over 3 runs".
func spread(rs []float64) string {
	if len(rs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f-%.2f over %d runs", slices.Min(rs), slices.Max(rs), len(rs))
}
