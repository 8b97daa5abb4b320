package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/simulators/hostile"
	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// TestHostileServersThroughDaemon runs the built daemon (so isolation is
// the real child process) against a hostile OPC UA, S7 and Logix server in
// every hostile mode, next to a healthy device, for two windows. It asserts
// that the daemon stays up and leaves no zombie, that each attempt ends
// within snapshot_timeout plus the kill margin, that every hostile device
// gets exactly one collection alert (seen again on each failure), and that
// the healthy device is checked in every window. Figures are printed as RELIABILITY lines for make reliability.
func TestHostileServersThroughDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon for two windows")
	}
	opcua, err := opcuasim.Start(context.Background(), opcuasim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { opcua.Close() })
	s7, err := s7sim.Start(context.Background(), s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s7.Close() })
	logix, err := logixsim.Start(context.Background(), logixsim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logix.Close() })
	healthy, err := s7sim.Start(context.Background(), s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { healthy.Close() })

	upstream := map[string]string{"opcua": opcua.Addr(), "s7": s7.Addr(), "logix": logix.Addr()}
	after := map[string]map[string]int{
		// OPC UA: the first Read response (inside the session handshake).
		"opcua": {hostile.AbsurdLength: 1, hostile.Truncate: 4, hostile.Drop: 6},
		// S7: COTP CC and Setup Communication first, then the reads.
		"s7": {hostile.AbsurdLength: 3, hostile.Truncate: 3, hostile.Drop: 4},
		// Logix: RegisterSession first, then the reads.
		"logix": {hostile.AbsurdLength: 2, hostile.Truncate: 2, hostile.Drop: 3},
	}
	var devs strings.Builder
	servers := map[string][]*hostile.Server{}
	var hostileNames []string
	for _, p := range []string{"opcua", "s7", "logix"} {
		for _, mode := range hostile.Modes {
			h, err := hostile.Start(hostile.Options{Protocol: p, Mode: mode, Upstream: upstream[p], After: after[p][mode]})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			servers[p] = append(servers[p], h)
			name := p + "-" + mode
			hostileNames = append(hostileNames, name)
			switch p {
			case "opcua":
				fmt.Fprintf(&devs, "  - {name: %s, protocol: opcua, endpoint: \"opc.tcp://%s\", groups: [plant], opcua: {browse: [{root: \"i=85\", max_depth: 8, max_nodes: 2000}]}}\n", name, h.Addr())
			case "s7":
				fmt.Fprintf(&devs, "  - {name: %s, protocol: s7, endpoint: \"%s\", groups: [plant], s7: {rack: 0, slot: 2}}\n", name, h.Addr())
			case "logix":
				fmt.Fprintf(&devs, "  - {name: %s, protocol: logix, endpoint: \"%s\", groups: [plant], logix: {slot: 0}}\n", name, h.Addr())
			}
		}
	}
	fmt.Fprintf(&devs, "  - {name: healthy, protocol: s7, endpoint: \"%s\", groups: [plant], s7: {rack: 0, slot: 2}}\n", healthy.Addr())
	const window = 15 * time.Second
	cfg := fmt.Sprintf(`defaults:
  requests_per_second: 1000
  request_timeout: 500ms
  snapshot_timeout: 5s
  backoff_initial: 100ms
  backoff_max: 200ms
daemon:
  max_concurrent_devices: 8
windows:
  - {name: often, cron: "@every %s", duration: 12s, time_zone: UTC, groups: [plant]}
devices:
%s`, window, devs.String())
	s := newSite(t, cfg)

	cmd := exec.Command(plcwatchBin, "--config", s.cfg, "daemon", "--grace", "10s")
	cmd.Dir = s.dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var (
		mu        sync.Mutex
		done      = map[string]int{} // device -> checks ended (done or failed)
		healthyOK int                // the healthy device's successful checks
		crashes   int
		killed    int
		attempts  = map[string]int{}
		started   = map[string]time.Time{}
		longest   time.Duration // the longest single attempt of a hostile device
		lastErr   = map[string]string{}
	)
	progress := make(chan struct{}, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			dev, _ := l["device"].(string)
			msg, _ := l["message"].(string)
			errText, _ := l["error"].(string)
			mu.Lock()
			switch msg {
			case "scheduled check":
				attempts[dev]++
				started[dev] = logTime(l)
			case "check done", "check failed", "check failed; no time left in the window to retry", "check failed; retrying":
				if d := logTime(l).Sub(started[dev]); dev != "healthy" && !started[dev].IsZero() && d > longest {
					longest = d
				}
				if msg == "check failed; retrying" {
					break
				}
				done[dev]++
				if dev == "healthy" && msg == "check done" {
					healthyOK++
				}
				if errText != "" {
					lastErr[dev] = errText
				}
			}
			if strings.HasPrefix(msg, "check failed") && strings.Contains(errText, "crashed: panic") {
				crashes++
			}
			if strings.HasPrefix(msg, "check failed") && strings.Contains(errText, " killed: ") {
				killed++
			}
			mu.Unlock()
			select {
			case progress <- struct{}{}:
			default:
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { <-logDone; exited <- cmd.Wait() }()

	// Run until every hostile device's check ended and the healthy device
	// was checked in two windows, or the test's guard ends it.
	guard := time.NewTimer(3 * window * 2)
	defer guard.Stop()
	healthyChecks := func() int {
		mu.Lock()
		defer mu.Unlock()
		return healthyOK
	}
	allTried := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range hostileNames {
			if done[n] == 0 {
				return false
			}
		}
		return true
	}
	// A session process is briefly a zombie between its exit and the
	// daemon's wait; one that stays a zombie until the end was never reaped.
	var early map[int]bool
wait:
	for {
		select {
		case err := <-exited:
			t.Fatalf("the daemon exited while hostile servers were answering: %v", err)
		case <-guard.C:
			t.Errorf("guard: healthy checked %d times; hostile devices ended: %v", healthyChecks(), done)
			break wait
		case <-progress:
			if allTried() && early == nil {
				early = zombies(cmd.Process.Pid)
			}
			if allTried() && healthyChecks() >= 2 {
				break wait
			}
		}
	}
	zombiesSeen := 0
	for pid := range zombies(cmd.Process.Pid) {
		if early[pid] {
			zombiesSeen++
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("the daemon is gone: %v", err)
	}
	if err := <-exited; err != nil {
		t.Errorf("daemon exit after SIGTERM: %v", err)
	}

	var as []struct {
		Device   string `json:"device"`
		Category string `json:"category"`
		Count    int    `json:"count"`
	}
	if err := json.Unmarshal([]byte(s.alertsJSON()), &as); err != nil {
		t.Fatal(err)
	}
	perDevice := map[string]int{}
	for _, a := range as {
		if a.Category == "collection_failed" || a.Category == "collection_incomplete" {
			perDevice[a.Device]++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	one := 0
	for _, n := range hostileNames {
		if done[n] == 0 {
			t.Errorf("%s: no check ended", n)
		}
		// One alert per device, seen again on every failed attempt:
		// its fingerprint holds the error's class, not its text. The
		// daemon may start near the end of a window, whose check is then
		// cut by the window's end (the window's decision, no alert); a
		// device checked in two windows has its alert.
		switch c := perDevice[n]; {
		case c == 1:
			one++
		case c > 1:
			t.Errorf("%s: %d collection alerts, want one", n, c)
		case done[n] >= 2:
			t.Errorf("%s: checked in %d windows, no collection alert", n, done[n])
		}
	}
	for _, a := range as {
		// A healthy device's read may be cut by the end of the window the
		// daemon started in (incomplete); it never fails.
		if a.Device == "healthy" && a.Category == "collection_failed" {
			t.Errorf("healthy device has a collection-failed alert")
		}
	}
	// The daemon may start so near a window's end that the healthy
	// device's first read is cut (the window's decision); it then succeeds
	// in every following window.
	if healthyOK < 2 {
		t.Errorf("healthy device checked successfully %d times, want one per window (2); last error: %s", healthyOK, lastErr["healthy"])
	}
	// The design's bound: snapshot_timeout (5 s) plus the kill margin
	// (2 s); generous for log timestamps of one-second resolution and a
	// loaded machine. Without the bounds, a stall lasts until the window
	// ends and beyond.
	if longest > 12*time.Second {
		t.Errorf("the longest check attempt of a hostile device took %s, want at most snapshot_timeout + margin", longest)
	}
	if zombiesSeen > 0 {
		t.Errorf("%d zombie session processes seen under the daemon", zombiesSeen)
	}
	if crashes == 0 {
		t.Error("no session crash was reported: the negative-array OPC UA reply did not reach gopcua")
	}
	for _, n := range hostileNames {
		t.Logf("%-20s attempts=%d ended=%d last error: %s", n, attempts[n], done[n], lastErr[n])
	}
	for _, p := range []string{"opcua", "s7", "logix"} {
		var n int64
		for _, h := range servers[p] {
			n += h.Hostile()
		}
		fmt.Printf("RELIABILITY hostile_replies_%s=%d\n", p, n)
	}
	fmt.Printf("RELIABILITY hostile_devices=%d\n", len(hostileNames))
	fmt.Printf("RELIABILITY hostile_session_crashes_contained=%d\n", crashes)
	fmt.Printf("RELIABILITY hostile_sessions_killed=%d\n", killed)
	fmt.Printf("RELIABILITY hostile_daemon_crashes=0\n")
	fmt.Printf("RELIABILITY hostile_zombies=%d\n", zombiesSeen)
	fmt.Printf("RELIABILITY hostile_healthy_checks=%d\n", healthyOK)
	fmt.Printf("RELIABILITY hostile_longest_attempt_seconds=%.0f\n", longest.Seconds())
	fmt.Printf("RELIABILITY hostile_devices_one_collection_alert=%d\n", one)
}

// logTime is a daemon log line's time (RFC 3339, one-second resolution).
func logTime(l map[string]any) time.Time {
	s, _ := l["time"].(string)
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// zombies returns the child processes of pid that have exited but were not
// reaped.
func zombies(pid int) map[int]bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	n := map[int]bool{}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 2 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			p, _ := strconv.Atoi(e.Name())
			n[p] = true
		}
	}
	return n
}
