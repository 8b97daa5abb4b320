package s7

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/robinson/gos7"

	"github.com/plcwatch/plcwatch/connectors"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/snapshots"
)

// bareDevice is a config with no setpoints or modules, for scenarios other
// than the demo.
const bareDevice = "bare-device.yaml"

// scenario returns a small program with n blocks of typ at the given PDU.
func scenario(profile string, pdu int, blocks ...s7sim.Block) *s7sim.Scenario {
	sc := &s7sim.Scenario{
		Name: "test", Profile: profile, PDUSize: pdu,
		CPU: s7sim.CPU{OrderCode: "6ES7 315-2EH14-0AB0", Firmware: "V3.2.6", ModuleType: "CPU 315-2 PN/DP",
			Serial: "S C-TEST0001", ASName: "TEST_PLC", ModuleName: "CPU315"},
		Blocks: append([]s7sim.Block{{Type: "OB", Number: 1, Size: 100}}, blocks...),
	}
	if err := sc.Validate(); err != nil {
		panic(err)
	}
	return sc
}

func many(typ string, n, size int) []s7sim.Block {
	var out []s7sim.Block
	for i := 1; i <= n; i++ {
		out = append(out, s7sim.Block{Type: typ, Number: i, Size: size})
	}
	return out
}

// gos7Client connects gos7's own client and handler to the simulator.
func gos7Client(t *testing.T, addr string) gos7.Client {
	t.Helper()
	h := gos7.NewTCPClientHandler(addr, 0, 2)
	h.IdleTimeout = 0
	if err := h.Connect(); err != nil {
		t.Fatalf("gos7 connect: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return gos7.NewClient(h)
}

func count(s *snapshots.Snapshot, prefix string) int {
	n := 0
	for _, it := range s.Items {
		if strings.HasPrefix(it.Path, prefix) {
			n++
		}
	}
	return n
}

// TestWhereGos7IsWrong runs gos7's own calls and the connector against the
// same simulated CPU: each row shows gos7 getting it wrong and the
// connector getting it right.
func TestWhereGos7IsWrong(t *testing.T) {
	tests := []struct {
		name string
		sc   *s7sim.Scenario
		gos7 func(t *testing.T, c gos7.Client) string // what gos7 says
		want string                                   // the truth
		plcw func(t *testing.T, s *snapshots.Snapshot) string
	}{
		{
			name: "CPU info at PDU 240 spans two SZL pages",
			sc:   scenario("s7-300", 240),
			gos7: func(t *testing.T, c gos7.Client) string {
				info, err := c.GetCPUInfo()
				if err != nil {
					t.Fatalf("gos7 reports an error, expected silent empty strings: %v", err)
				}
				return info.ModuleTypeName + "|" + info.SerialNumber
			},
			want: "CPU 315-2 PN/DP|S C-TEST0001",
			plcw: func(t *testing.T, s *snapshots.Snapshot) string {
				return s.Item("identity/module_type").Value.Raw + "|" + s.Item("identity/serial").Value.Raw
			},
		},
		{
			name: "202 DBs at PDU 480 need two block list pages",
			sc:   scenario("s7-400", 480, many("DB", 202, 16)...),
			gos7: func(t *testing.T, c gos7.Client) string {
				l, _ := c.PGListBlocks()
				return fmt.Sprint(len(l.DBList))
			},
			want: "202",
			plcw: func(t *testing.T, s *snapshots.Snapshot) string { return fmt.Sprint(count(s, "blocks/DB")) },
		},
		{
			name: "150 FCs at PDU 240 need three block list pages",
			sc:   scenario("s7-300", 240, many("FC", 150, 40)...),
			gos7: func(t *testing.T, c gos7.Client) string {
				l, _ := c.PGListBlocks()
				return fmt.Sprint(len(l.FCList))
			},
			want: "150",
			plcw: func(t *testing.T, s *snapshots.Snapshot) string { return fmt.Sprint(count(s, "blocks/FC")) },
		},
		{
			name: "block timestamps keep the time of day",
			sc: scenario("s7-300", 240, s7sim.Block{Type: "FC", Number: 7, Size: 50,
				CodeTime: time.Date(2025, 6, 3, 14, 22, 31, 123e6, time.UTC)}),
			gos7: func(t *testing.T, c gos7.Client) string {
				bi, err := c.GetAgBlockInfo(67, 7)
				if err != nil {
					t.Fatal(err)
				}
				return bi.CodeDate
			},
			want: "2025-06-03T14:22:31.123",
			plcw: func(t *testing.T, s *snapshots.Snapshot) string {
				return s.Item("blocks/FC7").Attrs[snapshots.MetaPrefix+"code_time"]
			},
		},
		{
			name: "a CPU in STARTUP is not in STOP",
			sc:   func() *s7sim.Scenario { sc := scenario("s7-300", 240); sc.Mode = "STARTUP"; return sc }(),
			gos7: func(t *testing.T, c gos7.Client) string {
				st, err := c.PLCGetStatus()
				if err != nil {
					t.Fatal(err)
				}
				return map[int]string{4: "STOP", 8: "RUN"}[st]
			},
			want: "STARTUP",
			plcw: func(t *testing.T, s *snapshots.Snapshot) string { return s.Item("mode/cpu").Value.Raw },
		},
		{
			name: "order code and firmware",
			sc:   scenario("s7-300", 240),
			gos7: func(t *testing.T, c gos7.Client) (got string) {
				defer func() {
					if p := recover(); p != nil {
						got = fmt.Sprintf("panic: %v", p)
					}
				}()
				oc, err := c.GetOrderCode()
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("%s|V%d.%d.%d", strings.TrimSpace(oc.Code), oc.V1, oc.V2, oc.V3)
			},
			want: "6ES7 315-2EH14-0AB0|V3.2.6",
			plcw: func(t *testing.T, s *snapshots.Snapshot) string {
				return s.Item("hardware/cpu").Value.Raw + "|" + s.Item("firmware/cpu").Value.Raw
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, tc.sc, s7sim.Options{})
			got := tc.gos7(t, gos7Client(t, sim.Addr()))
			if got == tc.want {
				t.Errorf("gos7 got it right (%q): the simulator no longer shows the bug", got)
			}
			c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), nil))
			s := snap(t, c, nil)
			if !s.Status.Complete {
				t.Fatalf("snapshot partial: %v", s.Status.Reasons)
			}
			if got := tc.plcw(t, s); got != tc.want {
				t.Errorf("connector says %q, want %q (gos7 says %q)", got, tc.want, got)
			}
			t.Logf("gos7: %q, connector: %q", got, tc.want)
		})
	}
}

// TestGos7WriteSurfaceIsRefused runs gos7's writing and controlling calls
// over the connector's transport: nothing may reach the CPU.
func TestGos7WriteSurfaceIsRefused(t *testing.T) {
	sim := startSim(t, scenario("s7-300", 240, s7sim.Block{Type: "DB", Number: 1, Size: 8}), s7sim.Options{})
	cc, gate := open(t, loadDevice(t, bareDevice, sim.Addr(), func(y string) string {
		return strings.Replace(y, "s7:", "s7:\n      hold_connection: true", 1)
	}))
	c := cc.(*connector)
	ctx := context.Background()
	if err := c.tr.open(ctx); err != nil {
		t.Fatal(err)
	}
	before := sim.Requests()
	g := gos7.NewClient2(c.tr, c.tr)
	calls := []struct {
		name  string
		call  func() error
		reads []string // read kinds the call sends before its write
	}{
		{"PLCStop", g.PLCStop, nil},
		{"PLCHotStart", g.PLCHotStart, nil},
		{"PLCColdStart", g.PLCColdStart, nil},
		{"PGClockRead (sets the clock)", func() error { return g.PGClockRead(time.Now()) }, nil},
		{"SetSessionPassword", func() error { return g.SetSessionPassword("secret") }, nil},
		{"ClearSessionPassword", g.ClearSessionPassword, nil},
		{"AGWriteDB", func() error { return g.AGWriteDB(1, 0, 2, []byte{1, 2}) }, nil},
		{"AGWriteMB", func() error { return g.AGWriteMB(0, 1, []byte{1}) }, nil},
		{"AGWriteEB (inputs)", func() error { return g.AGWriteEB(0, 1, []byte{1}) }, nil},
		{"AGWriteAB (outputs)", func() error { return g.AGWriteAB(0, 1, []byte{1}) }, nil},
		{"AGWriteTM (timers)", func() error { return g.AGWriteTM(0, 1, []byte{1, 0}) }, nil},
		{"AGWriteCT (counters)", func() error { return g.AGWriteCT(0, 1, []byte{1, 0}) }, nil},
		{"AGWriteMulti", func() error {
			return g.AGWriteMulti([]gos7.S7DataItem{{Area: 0x84, WordLen: 2, DBNumber: 1, Amount: 1, Data: []byte{1}}}, 1)
		}, nil},
		{"DBFill (reads the block info, then writes)", func() error { return g.DBFill(1, 0x55) }, []string{"BlockInfo"}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			before := sim.Requests()
			defer func() {
				after := sim.Requests()
				for k, n := range after {
					if n != before[k] && !contains(tc.reads, k) {
						t.Errorf("%d %s requests reached the CPU", n-before[k], k)
					}
				}
			}()
			var err error
			func() {
				// Some gos7 calls dereference a nil reply after a refusal, or
				// type-assert the transport before sending: either way
				// nothing is sent.
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panic: %v", p)
					}
				}()
				err = tc.call()
			}()
			if err == nil {
				t.Fatal("call succeeded")
			}
			if !errors.Is(err, connectors.ErrNotAllowed) && !strings.HasPrefix(err.Error(), "panic") {
				t.Errorf("error %v: want ErrNotAllowed", err)
			}
		})
	}
	for k, n := range sim.Requests() {
		if n != before[k] && k != "BlockInfo" {
			t.Errorf("the CPU received %d %s requests", n-before[k], k)
		}
	}
	before = sim.Requests()
	if sim.Refused() != 0 {
		t.Errorf("the CPU refused %d requests that should never have been sent", sim.Refused())
	}
	for k := range gate.Counts() {
		if !gate.Allowed(k) {
			t.Errorf("gate counted a sent %s", k)
		}
	}
	// gos7's reads go through the same gate and do reach the CPU.
	if _, err := g.GetAgBlockInfo(65, 1); err != nil {
		t.Errorf("gos7 block info through the transport: %v", err)
	}
	if sim.Requests()["BlockInfo"] != before["BlockInfo"]+1 {
		t.Error("gos7's block info did not reach the CPU")
	}
}

// TestRawTelegramsAreRefused sends hand-built telegrams of every refused
// kind through the transport.
func TestRawTelegramsAreRefused(t *testing.T) {
	sim := startSim(t, scenario("s7-300", 240), s7sim.Options{})
	cc, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), nil))
	c := cc.(*connector)
	ctx := context.Background()
	if err := c.tr.open(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.tr.close()
	before := sim.Stats()
	for _, tc := range refusedTelegrams {
		t.Run(tc.name, func(t *testing.T) {
			if got := decodeKind(tc.b); got != tc.kind {
				t.Errorf("kind %q, want %q", got, tc.kind)
			}
			_, err := c.tr.exchange(ctx, "test", append([]byte(nil), tc.b...))
			if !errors.Is(err, connectors.ErrNotAllowed) {
				t.Errorf("exchange: %v, want ErrNotAllowed", err)
			}
		})
	}
	if after := sim.Stats(); after.BytesIn != before.BytesIn {
		t.Errorf("%d bytes reached the CPU", after.BytesIn-before.BytesIn)
	}
}
