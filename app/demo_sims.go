package app

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// Addresses of the demo simulators; plcwatch.example.yaml points at them.
const (
	demoOPCUA = "127.0.0.1:4840"
	demoS7    = "127.0.0.1:1102"
	demoLogix = "127.0.0.1:44818"
)

// demoSims are the demo's running simulators.
type demoSims struct {
	opcua *opcuasim.Server
	s7    *s7sim.Server
	logix *logixsim.Server
	names []string // device names in the example config, in order
}

// startDemoSims starts the three demo simulators on their fixed loopback
// ports. The OPC UA simulator keeps its certificate where `plcwatch sim
// opcua` keeps it by default, so restarting the demo's server with that
// command presents the same certificate, as a real server does.
func startDemoSims(ctx context.Context) (*demoSims, error) {
	d := &demoSims{names: []string{"skid7-opcua", "tankfarm-s7", "line3-logix"}}
	var err error
	if d.opcua, err = opcuasim.Start(ctx, opcuasim.Options{Listen: demoOPCUA, StateDir: simStateDir("", "")}); err != nil {
		return nil, fmt.Errorf("OPC UA simulator on %s: %w", demoOPCUA, err)
	}
	if d.s7, err = s7sim.Start(ctx, s7sim.Options{Listen: demoS7}); err != nil {
		d.Close()
		return nil, fmt.Errorf("S7 simulator on %s: %w", demoS7, err)
	}
	if d.logix, err = logixsim.Start(ctx, logixsim.Options{Listen: demoLogix}); err != nil {
		d.Close()
		return nil, fmt.Errorf("logix simulator on %s: %w", demoLogix, err)
	}
	return d, nil
}

// Close stops every simulator that started.
func (d *demoSims) Close() {
	if d.opcua != nil {
		d.opcua.Close()
	}
	if d.s7 != nil {
		d.s7.Close()
	}
	if d.logix != nil {
		d.logix.Close()
	}
}

func (d *demoSims) servers() []simServer {
	var out []simServer
	if d.opcua != nil {
		out = append(out, d.opcua)
	}
	if d.s7 != nil {
		out = append(out, d.s7)
	}
	if d.logix != nil {
		out = append(out, d.logix)
	}
	return out
}

func (d *demoSims) firstDevice() string { return d.names[0] }

// baselineSteps approve each device's commissioning snapshot, by its id.
func (d *demoSims) baselineSteps(a *App) []demoStep {
	var steps []demoStep
	for _, n := range d.names {
		n := n
		steps = append(steps, demoStep{say: "Review " + n + "'s commissioning snapshot", args: []string{"show", n + "@latest"}})
		steps = append(steps, demoStep{say: "Approve it as " + n + "'s baseline (an immutable id, never @latest)",
			lazyArgs: func(e *env) ([]string, error) {
				s, err := e.Store.Resolve(context.Background(), n+"@latest")
				if err != nil {
					return nil, err
				}
				return []string{"approve", s.ID, "--ticket", "CHG-1001", "--by", "J. Engineer", "--comment", "commissioning baseline"}, nil
			}})
	}
	return steps
}

// tamper changes each simulated PLC as an engineer with an engineering
// tool would, without a change ticket.
func (d *demoSims) tamper() error {
	if err := d.opcua.SetValue("Plant/Tank1/HighLimit", 4.9); err != nil {
		return err
	}
	if err := d.opcua.SetProgram("Plant/Controller/Programs/TankControl", "IF Level > HighLimit THEN\n  Inlet := FALSE;\nEND_IF;\nBypass := TRUE;\n", "2.0.4"); err != nil {
		return err
	}
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, math.Float32bits(97.5))
	if err := d.s7.SetDB(10, 4, b); err != nil {
		return err
	}
	blk, ok := d.s7.Block("FC7")
	if !ok {
		return fmt.Errorf("demo S7 program has no FC7")
	}
	blk.Code, blk.Seed, blk.Size = "", "tampered", 96
	if err := d.s7.SetBlock(blk); err != nil {
		return err
	}
	if err := d.logix.SetTagValue("TankHighLimit", 99.0); err != nil {
		return err
	}
	return d.logix.AddTag("", logixsim.TagDef{Name: "BypassInterlock", Type: "BOOL"})
}

func (d *demoSims) diffSteps() []demoStep {
	var steps []demoStep
	for _, n := range d.names {
		steps = append(steps, demoStep{say: "What changed on " + n + " against its baseline", args: []string{"diff", n + "@baseline", n + "@latest"}, want: ExitFindings})
	}
	return steps
}

func (d *demoSims) requestSummary() string {
	var parts []string
	for _, s := range d.servers() {
		total := 0
		for _, n := range s.Requests() {
			total += n
		}
		parts = append(parts, fmt.Sprintf("%s %d", s.Addr(), total))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (d *demoSims) refused() int {
	n := 0
	for _, s := range d.servers() {
		n += s.Refused()
	}
	return n
}
