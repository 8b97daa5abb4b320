package s7

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
)

// snap7Server is snap7's S7 server (node-snap7) run by testdata/node/server.js.
type snap7Server struct {
	t    *testing.T
	addr string
	in   io.WriteCloser
	out  *bufio.Scanner
}

func nodePeer(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-snap7")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node-snap7 is not installed in testdata/node: run make test (it installs the node peers)")
		}
		t.Skip("run make test (it installs the node peers)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	return dir
}

// freePort returns a loopback port that was free a moment ago (snap7's
// server takes a port number, not a listener).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startSnap7(t *testing.T) *snap7Server {
	t.Helper()
	dir := nodePeer(t)
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "node", "server.js", strconv.Itoa(port))
		cmd.Dir = dir
		in, _ := cmd.StdinPipe()
		outp, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		s := &snap7Server{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), in: in, out: bufio.NewScanner(outp)}
		var ready struct {
			Ready bool
			Error string
		}
		if s.out.Scan() && json.Unmarshal(s.out.Bytes(), &ready) == nil && ready.Ready {
			t.Cleanup(func() {
				in.Close()
				cmd.Wait()
				cancel()
			})
			return s
		}
		in.Close()
		cmd.Wait()
		cancel()
		if attempt == 3 {
			t.Fatalf("snap7 server did not start: %s", ready.Error)
		}
	}
}

// do sends a command and waits for its answer.
func (s *snap7Server) do(cmd string) {
	s.t.Helper()
	if _, err := fmt.Fprintln(s.in, cmd); err != nil {
		s.t.Fatal(err)
	}
	var r struct{ OK bool }
	if !s.out.Scan() || json.Unmarshal(s.out.Bytes(), &r) != nil || !r.OK {
		s.t.Fatalf("snap7 server: %q answered %q", cmd, s.out.Text())
	}
}

// TestSnap7Server points the connector at snap7's server, a CPU nobody
// here wrote: identity, mode, protection and DB setpoints are read, and a
// setpoint change and RUN to STOP are detected.
func TestSnap7Server(t *testing.T) {
	srv := startSnap7(t)
	dev := loadDevice(t, bareDevice, srv.addr, func(y string) string {
		return y + "      setpoints:\n" +
			"        - {name: TankHighLimit, address: DB10.DBD4, type: REAL, unit: \"%\", deadband: 0.5}\n" +
			"        - {name: PumpStartDelay, address: DB10.DBW8, type: INT, unit: s}\n"
	})
	c, _ := open(t, dev)
	a := snap(t, c, nil)
	if !a.Status.Complete {
		t.Fatalf("snapshot of snap7 partial: %v", a.Status.Reasons)
	}
	want := map[string]string{
		"identity/module_type":     "CPU 315-2 PN/DP",
		"hardware/cpu":             "6ES7 315-2EH14-0AB0",
		"firmware/cpu":             "V3.2.6",
		"mode/cpu":                 "RUN",
		"protection/level":         "1",
		"mode/key_switch":          "RUN-P",
		"setpoints/TankHighLimit":  "85",
		"setpoints/PumpStartDelay": "30",
		"blocks/DB10":              "0000",
		"modules/R0S2":             "0x00C0",
	}
	for p, v := range want {
		if it := a.Item(p); it == nil || it.Value.Raw != v {
			t.Errorf("%s = %+v, want %s", p, it, v)
		}
	}
	for _, p := range []string{"blocks/OB1", "blocks/FC1"} {
		if a.Item(p) != nil {
			t.Errorf("%s read from a server that holds DBs only", p)
		}
	}

	srv.do("db 10 4 " + hex.EncodeToString(real32(90)))
	srv.do("status stop")
	b := snap(t, c, a)
	if got := withoutInfo(b, changed(a, b)); strings.Join(got, " ") != "mode/cpu setpoints/TankHighLimit" {
		t.Errorf("changed %v, want mode/cpu and setpoints/TankHighLimit", got)
	}
	sp := b.Item("setpoints/TankHighLimit")
	if x, _ := sp.Value.Number(); x-85 <= sp.Deadband {
		t.Errorf("setpoint %v: want a change beyond the deadband %v", sp.Value, sp.Deadband)
	}
	if m := b.Item("mode/cpu"); m.Value.Raw != "STOP" || m.Kind != snapshots.KindMode {
		t.Errorf("mode %+v", m)
	}
}

// TestSnap7SetpointPastTheEnd: snap7's server, like a CPU, refuses with
// return code 0x05 a Read Var item that reaches beyond the end of its DB
// (DB10 holds 32 bytes), also when that item is the merge of an in-range
// setpoint and one beyond the end: the refusal costs the setpoint beyond
// the end only.
func TestSnap7SetpointPastTheEnd(t *testing.T) {
	srv := startSnap7(t)
	dev := loadDevice(t, bareDevice, srv.addr, func(y string) string {
		return y + "      setpoints:\n" +
			"        - {name: Edge, address: DB10.DBD28, type: REAL}\n" +
			"        - {name: Past, address: DB10.DBD30, type: REAL}\n"
	})
	srv.do("db 10 28 " + hex.EncodeToString(real32(12.5)))
	c, _ := open(t, dev)
	s := snap(t, c, nil)
	if s.Status.Complete || len(s.Status.Reasons) != 1 || !strings.Contains(s.Status.Reasons[0], "setpoints/Past") {
		t.Fatalf("complete %v, reasons %v: want partial because of setpoints/Past only", s.Status.Complete, s.Status.Reasons)
	}
	if it := s.Item("setpoints/Edge"); it == nil || it.Provenance.Source != snapshots.SourceRead || it.Value.Raw != "12.5" {
		t.Errorf("Edge = %+v, want 12.5 read", it)
	}
	if it := s.Item("setpoints/Past"); it == nil || it.Provenance.Source != snapshots.SourceNotRead || !strings.Contains(it.Provenance.Reason, "0x05: address out of range") {
		t.Errorf("Past = %+v, want not read with return code 0x05", it)
	}
}

// TestSnap7TextAndRestart reads a Windows-1252 STRING from snap7's server
// and restarts its CPU: STOP is a change of the mode while it lasts; back
// in RUN, and after the server itself was stopped and started, nothing but
// information differs from the first snapshot. snap7 reports the current
// time as the time of the last mode transition (SZL 0x0424), so that time
// must be information of its own, never part of the mode item.
func TestSnap7TextAndRestart(t *testing.T) {
	srv := startSnap7(t)
	dev := loadDevice(t, bareDevice, srv.addr, func(y string) string {
		return y + "      setpoints:\n" +
			"        - {name: Product, address: DB11.DBB0, type: STRING, length: 12}\n" +
			"        - {name: TankHighLimit, address: DB10.DBD4, type: REAL}\n"
	})
	c, _ := open(t, dev)
	// STRING[12] "Grüße €5" in code page 1252: ü FC, ß DF, € 80.
	srv.do("db 11 0 0c084772fcdf65208035")
	a := snap(t, c, nil)
	if !a.Status.Complete {
		t.Fatalf("snapshot of snap7 partial: %v", a.Status.Reasons)
	}
	if it := a.Item("setpoints/Product"); it == nil || it.Value.Raw != "Grüße €5" {
		t.Errorf("Product = %+v, want \"Grüße €5\"", it)
	}
	mode, info := a.Item("mode/cpu"), a.Item(pathModeTransition)
	if mode == nil || len(mode.Attrs) != 1 || mode.Attrs["code"] != "0x8" {
		t.Errorf("mode/cpu = %+v: want RUN with its code only", mode)
	}
	if info == nil || info.Kind != snapshots.KindInfo || info.Value.Type != snapshots.TypeString {
		t.Errorf("%s = %+v: want the transition time as information", pathModeTransition, info)
	}

	srv.do("db 11 2 4772fcdf65208034") // an HMI writes "Grüße €4"
	srv.do("status stop")
	b := snap(t, c, a)
	if got := withoutInfo(b, changed(a, b)); strings.Join(got, " ") != "mode/cpu setpoints/Product" {
		t.Errorf("changed %v, want mode/cpu and setpoints/Product", got)
	}
	if m, p := b.Item("mode/cpu"), b.Item("setpoints/Product"); m.Value.Raw != "STOP" || p.Value.Raw != "Grüße €4" {
		t.Errorf("mode %q, Product %q: want STOP and \"Grüße €4\"", m.Value.Raw, p.Value.Raw)
	}

	srv.do("db 11 2 4772fcdf65208035")
	srv.do("status run")
	srv.do("restart")
	d := snap(t, c, b)
	if !d.Status.Complete {
		t.Fatalf("snapshot after the restart partial: %v", d.Status.Reasons)
	}
	for _, ch := range diffing.Compare(a, d, diffing.Options{}).Changes {
		if !ch.Info {
			t.Errorf("after the restart: %s %s is not information", ch.Type, ch.Path)
		}
	}
}
