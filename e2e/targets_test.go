package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// target is one protocol's simulator with the changes an engineer makes.
type target struct {
	name   string
	device string
	start  func(t *testing.T) *running
}

// running is a started simulator and what the tests do to it.
type running struct {
	yaml string // the devices: section pointing at the simulator
	// setSetpoint sets the deadband-governed setpoint (deadband 0.5) to v.
	setSetpoint  func(v float64) error
	setpointPath string
	base         float64
	// changeLogic downloads changed logic; logicPath is an item it changes.
	changeLogic func() error
	logicPath   string
	// churn moves live process values (nil: none on this simulator).
	churn func() error
	// breakNext makes the next snapshot fail part way; heal undoes it.
	breakNext func() (heal func())
	refused   func() int
	// sim is the simulator itself, for detection tests.
	sim any
}

var targets = []target{
	{name: "opcua", device: "skid7", start: startOPCUA},
	{name: "s7", device: "tankfarm", start: startS7},
	{name: "logix", device: "line3", start: startLogix},
}

func real32(v float64) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, math.Float32bits(float32(v)))
	return b
}

func startS7(t *testing.T) *running {
	t.Helper()
	sim, err := s7sim.Start(context.Background(), s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	r := &running{
		yaml: fmt.Sprintf(`devices:
  - name: tankfarm
    protocol: s7
    endpoint: %s
    limits: {requests_per_second: 1000}
    s7:
      rack: 0
      slot: 2
      setpoints:
        - {name: TankHighLimit, address: DB10.DBD4, type: REAL, unit: "%%", deadband: 0.5}
`, sim.Addr()),
		setpointPath: "setpoints/TankHighLimit",
		base:         80,
		setSetpoint:  func(v float64) error { return sim.SetDB(10, 4, real32(v)) },
		logicPath:    "blocks/FC7",
		changeLogic: func() error {
			b, ok := sim.Block("FC7")
			if !ok {
				return fmt.Errorf("no FC7")
			}
			b.Code, b.Seed, b.Size = "", b.Seed+"-changed", 96
			return sim.SetBlock(b)
		},
		breakNext: func() func() {
			sim.SetFault(s7sim.Fault{Action: s7sim.FaultDrop, Kind: "BlockInfo", Skip: 5})
			return sim.ClearFault
		},
		refused: sim.Refused,
		sim:     sim,
	}
	if err := r.setSetpoint(r.base); err != nil {
		t.Fatal(err)
	}
	return r
}

func startLogix(t *testing.T) *running {
	t.Helper()
	sim, err := logixsim.Start(context.Background(), logixsim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	r := &running{
		yaml: fmt.Sprintf(`devices:
  - name: line3
    protocol: logix
    endpoint: %s
    limits: {requests_per_second: 1000}
    logix:
      slot: 0
      modules: [1, 2, 3]
      audit_value_tag: PlcwatchAuditValue
      setpoints:
        - {tag: TankHighLimit, type: REAL, unit: "%%", deadband: 0.5}
`, sim.Addr()),
		setpointPath: "setpoints/TankHighLimit",
		base:         80,
		setSetpoint:  func(v float64) error { return sim.SetTagValue("TankHighLimit", v) },
		logicPath:    "tags/BypassInterlock",
		changeLogic: func() error {
			if err := sim.AddTag("", logixsim.TagDef{Name: "BypassInterlock", Type: "BOOL"}); err != nil {
				return err
			}
			return sim.BumpAuditValue()
		},
		breakNext: func() func() {
			// Move the change counter so the tag database is read (not
			// carried), then cut the paged tag listing after two pages,
			// every time until healed: the connector reopens a session the
			// device closed, so a single drop would not cut the read.
			sim.BumpAuditValue()
			sim.InjectFault(logixsim.Fault{Kind: logixsim.FaultDrop, Request: "cip.GetInstanceAttributeList", After: 2})
			return sim.ClearFaults
		},
		refused: sim.Refused,
		sim:     sim,
	}
	if err := r.setSetpoint(r.base); err != nil {
		t.Fatal(err)
	}
	return r
}

func startOPCUA(t *testing.T) *running {
	t.Helper()
	sim, err := opcuasim.Start(context.Background(), opcuasim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	r := &running{
		yaml: fmt.Sprintf(`classification:
  - {path: "opcua/**/Programs/**", kind: logic}
devices:
  - name: skid7
    protocol: opcua
    endpoint: %s
    limits: {requests_per_second: 1000}
    opcua:
      browse: [{root: "i=85", max_depth: 8, max_nodes: 2000}]
    rules:
      - {path: "opcua/Plant/Tank1/HighLimit", kind: setpoint, deadband: 0.5}
`, sim.Endpoint()),
		setpointPath: "opcua/Plant/Tank1/HighLimit",
		base:         80,
		setSetpoint:  func(v float64) error { return sim.SetValue("Plant/Tank1/HighLimit", v) },
		logicPath:    "opcua/Plant/Controller/Programs/TankControl/CodeHash",
		changeLogic: func() error {
			return sim.SetProgram("Plant/Controller/Programs/TankControl", "IF Level > HighLimit THEN Inlet := FALSE; END_IF; Bypass := TRUE;", "2.0.4")
		},
		churn: func() error { sim.ChurnLive(); return nil },
		breakNext: func() func() {
			sim.DropAfter(11)
			return sim.Heal
		},
		refused: sim.Refused,
		sim:     sim,
	}
	if err := r.setSetpoint(r.base); err != nil {
		t.Fatal(err)
	}
	return r
}
