package logix_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/danomagnum/gologix"

	sim "github.com/plcwatch/plcwatch/simulators/logix"
)

func start(t *testing.T, opts sim.Options) *sim.Server {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	s, err := sim.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// quietLogger keeps gologix from logging to the test output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// gologix's client, unmodified, against the simulator.
func TestGologixClient(t *testing.T) {
	tests := []struct {
		name string
		opts sim.Options
	}{
		{name: "large forward open"},
		{name: "standard forward open", opts: sim.Options{NoLargeForwardOpen: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.opts)
			host, port, _ := net.SplitHostPort(s.Addr())
			c := gologix.NewClient(host)
			p, _ := strconv.Atoi(port)
			c.Controller.Port = uint(p)
			c.Logger = quietLogger{}
			slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) // gologix logs some paths through slog
			if err := c.Connect(); err != nil {
				t.Fatal(err)
			}
			defer c.Disconnect()

			id, err := c.ListIdentity()
			if err != nil || id.ProductName != "1756-L83E/B" || id.SerialNumber != 0x00C0FFEE || id.Revision != 33|11<<8 {
				t.Errorf("ListIdentity = %+v, %v", id, err)
			}
			props, err := c.GetControllerPropList()
			if err != nil || props.Attr5_ID != 10 || props.Attr5 != 90210 || props.Attr3 != 1021 {
				t.Errorf("controller properties = %+v, %v", props, err)
			}
			if err := c.ListAllTags(0); err != nil {
				t.Fatal(err)
			}
			if len(c.KnownPrograms) != 8 {
				t.Errorf("%d programs, want 8", len(c.KnownPrograms))
			}
			tag, ok := c.KnownTags["flowloop"]
			if !ok || tag.UDT == nil || len(tag.UDT.Members) != 6 || tag.UDT.Members[3].Name != "Gains" || tag.UDT.Members[3].UDT == nil {
				t.Errorf("FlowLoop: %+v", tag)
			}
			if _, ok := c.KnownTags["program:line3.local_real_06"]; !ok {
				t.Errorf("program tag missing from %d known tags", len(c.KnownTags))
			}

			var hi float32
			var kp float32
			var audit int64
			if err := c.Read("TankHighLimit", &hi); err != nil || hi != 92.5 {
				t.Errorf("TankHighLimit = %v, %v", hi, err)
			}
			if err := c.Read("FlowLoop.Gains.Kp", &kp); err != nil || kp != 1.2 {
				t.Errorf("FlowLoop.Gains.Kp = %v, %v", kp, err)
			}
			if err := c.Read("PlcwatchAuditValue", &audit); err != nil || audit != 6148914691236517205 {
				t.Errorf("audit = %v, %v", audit, err)
			}
			must(t, s.SetTagValue("Program:Line1.Local_REAL_00", 7.25))
			multi := struct {
				Delay int32   `gologix:"PumpStartDelay"`
				Low   float32 `gologix:"TankLowLimit"`
				Local float32 `gologix:"Program:Line1.Local_REAL_00"`
			}{}
			if err := c.ReadMulti(&multi); err != nil || multi.Delay != 3000 || multi.Low != 7.5 || multi.Local != 7.25 {
				t.Errorf("ReadMulti = %+v, %v", multi, err)
			}
			arr := make([]float32, 8)
			must(t, s.SetTagValue("Lookup[1,7]", 3.5))
			if err := c.Read("Lookup[1,0]", arr); err != nil || arr[7] != 3.5 {
				t.Errorf("Lookup[1,0..7] = %v, %v", arr, err)
			}

			// A write is refused with a CIP error; the connection lives on.
			if err := c.Write("TankHighLimit", float32(1)); err == nil {
				t.Error("write accepted")
			}
			if err := c.Read("TankHighLimit", &hi); err != nil || hi != 92.5 {
				t.Errorf("after the refused write: %v, %v", hi, err)
			}
			if s.Refused() != 1 || s.RefusedKinds()["cip.WriteTag"] != 1 {
				t.Errorf("refused %v", s.RefusedKinds())
			}
			if n := s.Requests()["cip.GetInstanceAttributeList"]; n < 1+8+2 {
				t.Errorf("%d symbol list requests: the listing was not paged", n)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// peer is the JSON line testdata/node/peer.js prints.
type peer struct {
	Error    string `json:"error"`
	Identity struct {
		Name    string `json:"name"`
		Serial  uint32 `json:"serial"`
		Version string `json:"version"`
		Run     bool   `json:"run"`
		Program bool   `json:"program"`
		Faulted bool   `json:"faulted"`
	} `json:"identity"`
	Tags        []string            `json:"tags"`
	ProgramTags int                 `json:"programTags"`
	Programs    []string            `json:"programs"`
	Templates   map[string][]string `json:"templates"`
	Values      map[string]any      `json:"values"`
}

// st-ethernet-ip, an EtherNet/IP client nobody here wrote, connects (it
// reads identity and the whole tag list and templates while connecting)
// and reads tag values. It always dials port 44818, so each row has its
// own loopback address.
func TestStEthernetIP(t *testing.T) {
	dir, _ := filepath.Abs("testdata/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "st-ethernet-ip")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node_modules missing in testdata/node: run npm ci there")
		}
		t.Skip("run make test (it installs the node peers)")
	}
	plant, err := sim.LoadScenario("testdata/plant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	slotted := sim.Demo()
	slotted.Slot = 2
	slotted.Modules = slotted.Modules[:1]
	slotted.Mode = "PROG"
	tests := []struct {
		name     string
		addr     string
		scenario *sim.Scenario
		slot     string
		tags     string
		want     map[string]any
		wantRun  bool
		ident    string
		programs int
		template string
	}{
		{name: "demo", addr: "127.44.18.1", scenario: sim.Demo(), slot: "0", tags: "TankHighLimit,PumpStartDelay,FlowLoop.Gains.Kp,PlcwatchAuditValue",
			want: map[string]any{"TankHighLimit": 92.5, "PumpStartDelay": 3000.0}, wantRun: true, ident: "1756-L83E/B", programs: 8, template: "Loop"},
		{name: "controller in slot 2, program mode", addr: "127.44.18.2", scenario: slotted, slot: "2", tags: "TankLowLimit",
			want: map[string]any{"TankLowLimit": 7.5}, wantRun: false, ident: "1756-L83E/B", programs: 8, template: "Motor"},
		{name: "plant scenario file", addr: "127.44.18.3", scenario: plant, slot: "0", tags: "Program:MainProgram.FlowSP,Pumps[1].Speed",
			want: map[string]any{"Program:MainProgram.FlowSP": 40.0, "Pumps[1].Speed": 12.5}, wantRun: true, ident: "1756-L85E/B", programs: 2, template: "Pump"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, sim.Options{Listen: tt.addr + ":44818", Scenario: tt.scenario})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "node", filepath.Join(dir, "peer.js"), tt.addr, tt.slot, tt.tags).Output()
			var p peer
			if jerr := json.Unmarshal(out, &p); jerr != nil {
				t.Fatalf("node output %q (%v): %v", out, err, jerr)
			}
			if p.Error != "" || err != nil {
				t.Fatalf("peer: %s %v", p.Error, err)
			}
			if p.Identity.Name != tt.ident || p.Identity.Run != tt.wantRun || p.Identity.Program == tt.wantRun || p.Identity.Faulted {
				t.Errorf("identity %+v", p.Identity)
			}
			for k, v := range tt.want {
				if p.Values[k] != v {
					t.Errorf("%s = %v, want %v", k, p.Values[k], v)
				}
			}
			if len(p.Programs) != tt.programs || p.ProgramTags == 0 {
				t.Errorf("programs %v, %d program tags", p.Programs, p.ProgramTags)
			}
			if m := p.Templates[tt.template]; len(m) == 0 {
				t.Errorf("template %s missing: %v", tt.template, keys(p.Templates))
			}
			if s.Refused() != 0 {
				t.Errorf("refused %v", s.RefusedKinds())
			}
			for k := range s.Requests() {
				if !contains(sim.ReadKinds, k) {
					t.Errorf("request %s is not a read", k)
				}
			}
		})
	}
}

func keys(m map[string][]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return strings.Join(ks, ",")
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
