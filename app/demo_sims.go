package app

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/plcwatch/plcwatch/alerts"
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
	// fc7 is FC7 as approved, which the engineer restores.
	fc7 s7sim.Block
}

// startDemoSims starts the three simulators on the example config's
// addresses, or on free loopback ports when ephemeral (tests). Unless
// ephemeral, the OPC UA simulator keeps its certificate where `plcwatch sim
// opcua` keeps it by default, so restarting the demo's server with that
// command presents the same certificate, as a real server does.
func startDemoSims(ctx context.Context, ephemeral bool) (*demoSims, error) {
	d := &demoSims{names: []string{"skid7-opcua", "tankfarm-s7", "line3-logix"}}
	addr := func(fixed string) string {
		if ephemeral {
			return "127.0.0.1:0"
		}
		return fixed
	}
	var err error
	stateDir := simStateDir("", "")
	if ephemeral {
		stateDir = "" // a fresh certificate in memory
	}
	if d.opcua, err = opcuasim.Start(ctx, opcuasim.Options{Listen: addr(demoOPCUA), StateDir: stateDir}); err != nil {
		return nil, fmt.Errorf("OPC UA simulator on %s: %w", addr(demoOPCUA), err)
	}
	if d.s7, err = s7sim.Start(ctx, s7sim.Options{Listen: addr(demoS7)}); err != nil {
		d.Close()
		return nil, fmt.Errorf("S7 simulator on %s: %w", addr(demoS7), err)
	}
	if d.logix, err = logixsim.Start(ctx, logixsim.Options{Listen: addr(demoLogix)}); err != nil {
		d.Close()
		return nil, fmt.Errorf("logix simulator on %s: %w", addr(demoLogix), err)
	}
	return d, nil
}

// pointConfig rewrites the example config's simulator addresses to the
// ones the simulators listen on (the same unless ephemeral).
func (d *demoSims) pointConfig(cfg string) string {
	return strings.NewReplacer(demoOPCUA, d.opcua.Addr(), demoS7, d.s7.Addr(), demoLogix, d.logix.Addr()).Replace(cfg)
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

// baselineSteps review each device's commissioning snapshot (summarised:
// counts by kind and the command that prints it whole) and approve it by
// its id.
func (d *demoSims) baselineSteps() []demoStep {
	var steps []demoStep
	for _, n := range d.names {
		n := n
		steps = append(steps, demoStep{say: "Review " + n + "'s commissioning snapshot (summarised)", args: []string{"show", n + "@latest", "--summary"}})
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

// tamper changes the S7 PLC as an engineer with an engineering tool would,
// without a change ticket: a setpoint and a logic block.
func (d *demoSims) tamper() error {
	if err := d.s7.SetDB(10, 4, real32(97.5)); err != nil {
		return err
	}
	blk, ok := d.s7.Block("FC7")
	if !ok {
		return fmt.Errorf("demo S7 program has no FC7")
	}
	d.fc7 = blk
	blk.Code, blk.Seed, blk.Size = "", "tampered", 96
	return d.s7.SetBlock(blk)
}

// restore puts the approved FC7 and tank limit back, as the engineer does
// once the shift lead asked.
func (d *demoSims) restore() error {
	if err := d.s7.SetDB(10, 4, real32(85)); err != nil {
		return err
	}
	return d.s7.SetBlock(d.fc7)
}

// plannedChange is the engineer's work under ticket CHG-1234 on the Logix
// controller: a new tag and a new tank limit.
func (d *demoSims) plannedChange() error {
	if err := d.logix.SetTagValue("TankHighLimit", 95.0); err != nil {
		return err
	}
	return d.logix.AddTag("", logixsim.TagDef{Name: "BypassInterlock", Type: "BOOL"})
}

// ackSteps acknowledge each open alert of the S7 PLC by its id.
func (d *demoSims) ackSteps() []demoStep {
	open := func(e *env, i int) ([]string, error) {
		list, err := alerts.List(context.Background(), e.Store, alerts.Filter{Device: d.names[1], OpenOnly: true})
		if err != nil {
			return nil, err
		}
		if len(list) <= i {
			return nil, fmt.Errorf("%s has %d open alerts, want 2", d.names[1], len(list))
		}
		return []string{"ack", list[i].ID, "--by", "Shift Lead", "--decision", "escalated",
			"--comment", "no ticket: the engineer restores the approved program and limit"}, nil
	}
	return []demoStep{
		{say: "Acknowledge the first (a decision is recorded; the baseline does not move)", lazyArgs: func(e *env) ([]string, error) { return open(e, 0) }},
		{say: "And the second; the engineer then restores the approved FC7 and limit", lazyArgs: func(e *env) ([]string, error) { return open(e, 0) }},
	}
}

func real32(f float32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, math.Float32bits(f))
	return b
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
