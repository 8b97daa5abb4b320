package s7

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/connectors/connectortest"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/snapshots"
)

// startSim starts a simulator for the test and stops it at cleanup.
func startSim(t *testing.T, sc *s7sim.Scenario, opt s7sim.Options) *s7sim.Server {
	t.Helper()
	opt.Scenario = sc
	s, err := s7sim.Start(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// loadDevice parses a config file from testdata with ENDPOINT replaced,
// and returns its first device. edit, if given, rewrites the YAML first.
func loadDevice(t *testing.T, file, addr string, edit func(string) string) *config.Device {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	y := strings.ReplaceAll(string(b), "ENDPOINT", addr)
	if edit != nil {
		y = edit(y)
	}
	cfg, err := config.Parse(filepath.Join("testdata", file), []byte(y))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Devices[0]
}

func open(t *testing.T, dev *config.Device) (connectors.Connector, *connectors.Gate) {
	t.Helper()
	c, gate, err := connectors.Open(dev, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, gate
}

func snap(t *testing.T, c connectors.Connector, prev *snapshots.Snapshot) *snapshots.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Snapshot(ctx, prev)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	return s
}

func real32(f float32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, math.Float32bits(f))
	return b
}

func TestConformance(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) *connectortest.Harness {
		sim := startSim(t, s7sim.DemoScenario(), s7sim.Options{})
		return &connectortest.Harness{
			Device:      loadDevice(t, "demo-device.yaml", sim.Addr(), nil),
			Sim:         sim,
			ReadKinds:   s7sim.ReadKinds,
			ExactCounts: true,
			WirePlan:    true,
			ChangeSetpoint: func(t *testing.T) string {
				if err := sim.SetDB(10, 4, real32(95)); err != nil {
					t.Fatal(err)
				}
				return "setpoints/TankHighLimit"
			},
			ChangeLogic: func(t *testing.T) string {
				b, _ := sim.Block("FC5")
				b.Seed, b.Size = "changed", len(b.Body())
				if err := sim.SetBlock(b); err != nil {
					t.Fatal(err)
				}
				return "blocks/FC5"
			},
			ChurnLive: func(t *testing.T) {
				if err := sim.SetDB(11, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
					t.Fatal(err)
				}
				if err := sim.SetMemory(0, []byte{0xFF, 0x55}); err != nil {
					t.Fatal(err)
				}
			},
			BreakNext: func(t *testing.T) func() {
				sim.SetFault(s7sim.Fault{Action: s7sim.FaultDrop, Kind: "BlockInfo", Skip: 5})
				return sim.ClearFault
			},
		}
	})
}

// TestDemoCost measures what a snapshot of the demo program costs the CPU,
// unchanged and after one block was downloaded: a changed block costs no
// extra request, because block info (not an upload) is the fingerprint.
func TestDemoCost(t *testing.T) {
	sim := startSim(t, s7sim.DemoScenario(), s7sim.Options{})
	c, _ := open(t, loadDevice(t, "demo-device.yaml", sim.Addr(), nil))
	a := snap(t, c, nil)
	sim.ResetStats()
	b := snap(t, c, a)
	unchanged := sim.Stats()
	b2, _ := sim.Block("FC12")
	b2.Seed, b2.Size = "patched", len(b2.Body())+16
	if err := sim.SetBlock(b2); err != nil {
		t.Fatal(err)
	}
	sim.ResetStats()
	d := snap(t, c, b)
	changedBlock := sim.Stats()
	if got := changed(b, d); len(got) != 1 || got[0] != "blocks/FC12" {
		t.Errorf("changed items %v", got)
	}
	for _, x := range []struct {
		name string
		s    *snapshots.Snapshot
		st   s7sim.Stats
	}{{"unchanged", b, unchanged}, {"one changed block", d, changedBlock}} {
		t.Logf("%s: %d requests, %d bytes out, %d bytes in (simulator: %d bytes in, %d out); %v",
			x.name, x.s.Cost.Requests, x.s.Cost.BytesOut, x.s.Cost.BytesIn, x.st.BytesIn, x.st.BytesOut, x.st.Requests)
		if x.s.Cost.BytesOut != x.st.BytesIn || x.s.Cost.BytesIn != x.st.BytesOut {
			t.Errorf("%s: the gate's bytes differ from the simulator's", x.name)
		}
	}
	if b.Cost.Requests != d.Cost.Requests {
		t.Errorf("a changed block cost %d requests, unchanged %d", d.Cost.Requests, b.Cost.Requests)
	}
}

func TestPlanEstimate(t *testing.T) {
	sim := startSim(t, s7sim.DemoScenario(), s7sim.Options{})
	c, _ := open(t, loadDevice(t, "demo-device.yaml", sim.Addr(), nil))
	est, err := c.Plan(nil)
	if err != nil {
		t.Fatal(err)
	}
	if est.Exact || len(est.Notes) == 0 {
		t.Errorf("estimate without history: exact %v, notes %v", est.Exact, est.Notes)
	}
	a := snap(t, c, nil)
	// A partial snapshot gives an estimate from its block counts.
	a.Status.Complete = false
	est, err = c.Plan(a)
	if err != nil {
		t.Fatal(err)
	}
	n, _, _ := est.Totals()
	if est.Exact || n != int(a.Cost.Requests) {
		t.Errorf("estimate from block counts: %d requests (exact %v), the snapshot sent %d", n, est.Exact, a.Cost.Requests)
	}
}
