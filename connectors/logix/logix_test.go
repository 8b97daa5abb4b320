package logix_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/connectors/connectortest"
	"github.com/plcwatch/plcwatch/connectors/logix"
	sim "github.com/plcwatch/plcwatch/simulators/logix"
	"github.com/plcwatch/plcwatch/snapshots"
)

// deviceYAML is the logix section used against the demo scenario.
const deviceYAML = `
    logix:
      slot: 0
      modules: [1, 2, 3]
      audit_value_tag: PlcwatchAuditValue
      setpoints:
        - {tag: TankHighLimit, type: REAL, unit: "%", deadband: 0.5}
        - {tag: PumpStartDelay, unit: ms}
        - {tag: FlowLoop.Gains.Kp, name: flow_kp}
        - {tag: "Program:Line1.Local_REAL_00", name: line1_local}
      timeout: 5s
`

// startSim starts a demo simulator on a free loopback port and returns it
// with a device config pointing at it. extra replaces the logix section.
func startSim(t *testing.T, opts sim.Options, section string) (*sim.Server, *config.Device) {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := sim.Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	if section == "" {
		section = deviceYAML
	}
	y := fmt.Sprintf("devices:\n  - name: plc1\n    protocol: logix\n    endpoint: %s\n%s", s.Addr(), section)
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return s, cfg.Devices[0]
}

func TestConformance(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) *connectortest.Harness {
		s, dev := startSim(t, sim.Options{}, "")
		return &connectortest.Harness{
			Device:      dev,
			Sim:         s,
			ReadKinds:   sim.ReadKinds,
			ExactCounts: true,
			WirePlan:    true,
			ChangeSetpoint: func(t *testing.T) string {
				if err := s.SetTagValue("TankHighLimit", 60.0); err != nil {
					t.Fatal(err)
				}
				return "setpoints/TankHighLimit"
			},
			ChangeLogic: func(t *testing.T) string {
				if err := s.AddTag("", sim.TagDef{Name: "NewInterlock", Type: "DINT"}); err != nil {
					t.Fatal(err)
				}
				return "tags/NewInterlock"
			},
			ChurnLive: func(t *testing.T) {
				for _, p := range []string{"Area1_DINT_000", "Lookup[1,2]", "FlowLoop.PV", "Program:Line2.Local_INT_01"} {
					if err := s.SetTagValue(p, 1234); err != nil {
						t.Fatal(err)
					}
				}
			},
			BreakNext: func(t *testing.T) func() {
				// The second module read drops the connection.
				s.InjectFault(sim.Fault{Kind: sim.FaultDrop, Request: "cip.GetAttributesAll", After: 1})
				return s.ClearFaults
			},
		}
	})
}

// open builds the connector for dev.
func open(t *testing.T, dev *config.Device) (connectors.Connector, *connectors.Gate) {
	t.Helper()
	c, gate, err := connectors.Open(dev, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, gate
}

func snap(t *testing.T, c connectors.Connector, ctx context.Context, prev *snapshots.Snapshot) *snapshots.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
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

// diff returns the paths whose content differs or that exist on one side.
func diff(a, b *snapshots.Snapshot) []string {
	var out []string
	for _, it := range a.Items {
		o := b.Item(it.Path)
		if o == nil || o.Hash != it.Hash {
			out = append(out, it.Path)
		}
	}
	for _, it := range b.Items {
		if a.Item(it.Path) == nil {
			out = append(out, it.Path)
		}
	}
	return out
}

func TestDetection(t *testing.T) {
	tests := []struct {
		name string
		// change acts on the simulator like an engineer or an attacker.
		change func(t *testing.T, s *sim.Server)
		// want are the paths that must change (and no others); wantKind
		// the kind of each.
		want map[string]snapshots.Kind
		// carried: the tag database must be carried forward (indicators
		// did not move).
		carried bool
	}{
		{
			name:   "program added",
			change: func(t *testing.T, s *sim.Server) { must(t, s.AddProgram("Rogue")) },
			want:   map[string]snapshots.Kind{"programs/Rogue": snapshots.KindLogic, "indicators/controller_properties/attr3": snapshots.KindLogic, "indicators/controller_properties/attr10": snapshots.KindLogic, "indicators/audit_value": snapshots.KindLogic},
		},
		{
			name:   "program removed",
			change: func(t *testing.T, s *sim.Server) { must(t, s.RemoveProgram("Line8")) },
			want:   withIndicators(programPaths("Line8"), "attr3"),
		},
		{
			name: "tag added",
			change: func(t *testing.T, s *sim.Server) {
				must(t, s.AddTag("Line2", sim.TagDef{Name: "Bypass", Type: "BOOL"}))
			},
			want: withIndicators(map[string]snapshots.Kind{"programs/Line2/tags/Bypass": snapshots.KindLogic}, "attr3"),
		},
		{
			name:   "tag removed",
			change: func(t *testing.T, s *sim.Server) { must(t, s.RemoveTag("", "Area1_DINT_000")) },
			want:   withIndicators(map[string]snapshots.Kind{"tags/Area1_DINT_000": snapshots.KindLogic}, "attr3"),
		},
		{
			name: "tag retyped",
			change: func(t *testing.T, s *sim.Server) {
				must(t, s.RetypeTag("", sim.TagDef{Name: "Area2_REAL_001", Type: "LREAL"}))
			},
			want: withIndicators(map[string]snapshots.Kind{"tags/Area2_REAL_001": snapshots.KindLogic}, "attr3"),
		},
		{
			name: "UDT changed",
			change: func(t *testing.T, s *sim.Server) {
				must(t, s.SetUDT(sim.UDT{Name: "Valve", Members: []sim.Member{{Name: "Open", Type: "BOOL"}, {Name: "Closed", Type: "BOOL"}, {Name: "Cmd", Type: "BOOL"}, {Name: "TravelTime", Type: "DINT"}, {Name: "Override", Type: "BOOL"}}}))
			},
			want: withIndicators(map[string]snapshots.Kind{"udts/Valve": snapshots.KindLogic}, "attr4"),
		},
		{
			name: "nested UDT changed",
			change: func(t *testing.T, s *sim.Server) {
				must(t, s.SetUDT(sim.UDT{Name: "Alarm", Members: []sim.Member{{Name: "Active", Type: "BOOL"}, {Name: "Acked", Type: "BOOL"}, {Name: "Limit", Type: "LREAL"}, {Name: "Delay", Type: "DINT"}}}))
			},
			// Loop embeds Alarm twice: its member offsets move too.
			want: withIndicators(map[string]snapshots.Kind{"udts/Alarm": snapshots.KindLogic, "udts/Loop": snapshots.KindLogic}, "attr4"),
		},
		{
			name:    "controller properties moved, nothing else visible",
			change:  func(t *testing.T, s *sim.Server) { s.ChangeProperties() },
			want:    map[string]snapshots.Kind{"indicators/controller_properties/attr10": snapshots.KindLogic},
			carried: false,
		},
		{
			name:   "audit value moved, nothing else visible",
			change: func(t *testing.T, s *sim.Server) { must(t, s.BumpAuditValue()) },
			want:   map[string]snapshots.Kind{"indicators/audit_value": snapshots.KindLogic},
		},
		{
			name:    "setpoint changed",
			change:  func(t *testing.T, s *sim.Server) { must(t, s.SetTagValue("FlowLoop.Gains.Kp", 2.5)) },
			want:    map[string]snapshots.Kind{"setpoints/flow_kp": snapshots.KindSetpoint},
			carried: true,
		},
		{
			name:    "controller firmware",
			change:  func(t *testing.T, s *sim.Server) { must(t, s.SetRevision("34.1")) },
			want:    map[string]snapshots.Kind{"firmware/controller": snapshots.KindFirmware},
			carried: false, // a firmware change forces a full read
		},
		{
			name:    "module firmware",
			change:  func(t *testing.T, s *sim.Server) { must(t, s.SetModuleRevision(1, "12.1")) },
			want:    map[string]snapshots.Kind{"modules/slot01/firmware": snapshots.KindFirmware},
			carried: true,
		},
		{
			name:    "mode",
			change:  func(t *testing.T, s *sim.Server) { must(t, s.SetMode("REM PROG")) },
			want:    map[string]snapshots.Kind{"mode/operating": snapshots.KindMode},
			carried: true,
		},
		{
			name:    "key switch",
			change:  func(t *testing.T, s *sim.Server) { must(t, s.SetMode("RUN")) },
			want:    map[string]snapshots.Kind{"mode/key_switch": snapshots.KindMode},
			carried: true,
		},
		{
			name:    "major fault",
			change:  func(t *testing.T, s *sim.Server) { must(t, s.SetControllerFault("major recoverable")) },
			want:    map[string]snapshots.Kind{"mode/faults": snapshots.KindMode},
			carried: true,
		},
		{
			// A minor fault (a low battery, an arithmetic overflow in a
			// routine) leaves the controller running: information, never
			// an operating mode change.
			name:    "minor fault",
			change:  func(t *testing.T, s *sim.Server) { must(t, s.SetControllerFault("minor recoverable")) },
			want:    map[string]snapshots.Kind{"info/minor_faults": snapshots.KindInfo},
			carried: true,
		},
		{
			name:   "serial (controller replaced)",
			change: func(t *testing.T, s *sim.Server) { s.SetSerial(0x0BADF00D) },
			want:   map[string]snapshots.Kind{"identity/serial": snapshots.KindIdentity},
		},
		{
			name:    "module serial",
			change:  func(t *testing.T, s *sim.Server) { must(t, s.SetModuleSerial(3, 77)) },
			want:    map[string]snapshots.Kind{"modules/slot03": snapshots.KindHardware},
			carried: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := startSim(t, sim.Options{}, "")
			c, _ := open(t, dev)
			a := snap(t, c, context.Background(), nil)
			if !a.Status.Complete {
				t.Fatalf("first snapshot partial: %v", a.Status.Reasons)
			}
			tt.change(t, s)
			b := snap(t, c, context.Background(), a)
			if !b.Status.Complete {
				t.Fatalf("second snapshot partial: %v", b.Status.Reasons)
			}
			got := diff(a, b)
			gotSet := map[string]bool{}
			for _, p := range got {
				gotSet[p] = true
				if _, ok := tt.want[p]; !ok {
					t.Errorf("unexpected change at %s", p)
				}
			}
			for p, k := range tt.want {
				if !gotSet[p] {
					t.Errorf("no change at %s; changed: %v", p, got)
					continue
				}
				it := b.Item(p)
				if it == nil {
					it = a.Item(p)
				}
				if it.Kind != k {
					t.Errorf("%s has kind %s, want %s", p, it.Kind, k)
				}
			}
			tg := b.Item("tags/TankHighLimit")
			if tg == nil {
				t.Fatal("tags/TankHighLimit missing")
			}
			if carried := tg.Provenance.Source == snapshots.SourceCarried; carried != tt.carried {
				t.Errorf("tag database carried = %v, want %v", carried, tt.carried)
			}
			if s.Refused() != 0 {
				t.Errorf("simulator refused %d requests", s.Refused())
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

// withIndicators adds the indicators a tag-database edit moves in the
// simulator: the given 0xAC attribute, attribute 10 and the AuditValue.
func withIndicators(m map[string]snapshots.Kind, attr string) map[string]snapshots.Kind {
	m["indicators/controller_properties/"+attr] = snapshots.KindLogic
	m["indicators/controller_properties/attr10"] = snapshots.KindLogic
	m["indicators/audit_value"] = snapshots.KindLogic
	return m
}

// programPaths lists the items of a demo program.
func programPaths(p string) map[string]snapshots.Kind {
	m := map[string]snapshots.Kind{"programs/" + p: snapshots.KindLogic}
	types := []string{"DINT", "REAL", "BOOL", "INT", "SINT", "LINT", "LREAL", "UDINT"}
	n := int(p[len(p)-1] - '0')
	for j := 0; j < 28; j++ {
		m[fmt.Sprintf("programs/%s/tags/Local_%s_%02d", p, types[(n+j)%len(types)], j)] = snapshots.KindLogic
	}
	m["programs/"+p+"/tags/Conveyor"] = snapshots.KindLogic
	m["programs/"+p+"/tags/Level"] = snapshots.KindLogic
	return m
}

// A fault in the middle of the paged tag listing gives a partial snapshot
// in which every tag not read is "not read", never missing.
func TestFaultMidListing(t *testing.T) {
	tests := []struct {
		name    string
		fault   sim.Fault
		section string
		healed  bool // the fault costs a retry only: complete, nothing differs
	}{
		{name: "stalled after one page", fault: sim.Fault{Kind: sim.FaultStall, Request: "cip.GetInstanceAttributeList", After: 1},
			section: strings.Replace(deviceYAML, "timeout: 5s", "timeout: 1s", 1)}, // the dial is bounded by it too: not so short that a loaded machine misses it
		{name: "connection dropped after one page", fault: sim.Fault{Kind: sim.FaultDrop, Request: "cip.GetInstanceAttributeList", After: 1}},
		{name: "CIP error after two pages", fault: sim.Fault{Kind: sim.FaultError, Request: "cip.GetInstanceAttributeList", After: 2, Times: 1}},
		{name: "garbage after one page", fault: sim.Fault{Kind: sim.FaultGarbage, Request: "cip.GetInstanceAttributeList", After: 1}},
		{name: "template read fails", fault: sim.Fault{Kind: sim.FaultError, Request: "cip.ReadTemplate", After: 3, Times: 1}},
		// One garbled first page is not a device that lists symbols
		// without their dimensions: asked again, it answers in full.
		{name: "first page truncated once", fault: sim.Fault{Kind: sim.FaultTruncate, Request: "cip.GetInstanceAttributeList", Times: 1}, healed: true},
		{name: "first page partial once", fault: sim.Fault{Kind: sim.FaultPartial, Request: "cip.GetInstanceAttributeList", Times: 1}, healed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := startSim(t, sim.Options{}, tt.section)
			c, _ := open(t, dev)
			a := snap(t, c, context.Background(), nil)
			s.InjectFault(tt.fault)
			b := snap(t, c, logix.ForceFull(context.Background()), a)
			s.ClearFaults()
			if tt.healed {
				if p := diff(a, b); !b.Status.Complete || len(p) > 0 {
					t.Fatalf("complete %v (%v), items differ %v: want the fault to cost a retry only", b.Status.Complete, b.Status.Reasons, p)
				}
				return
			}
			if b.Status.Complete {
				t.Fatal("snapshot with a cut-off listing reports complete")
			}
			notRead := 0
			for _, it := range a.Items {
				o := b.Item(it.Path)
				if o == nil {
					t.Errorf("%s missing from the partial snapshot (would read as removed)", it.Path)
					continue
				}
				if o.Provenance.Source == snapshots.SourceNotRead {
					notRead++
				}
			}
			if notRead == 0 {
				t.Error("no item marked not read")
			}
			for _, it := range b.Items {
				if it.Provenance.Source == snapshots.SourceNotRead && a.Item(it.Path) == nil {
					t.Errorf("not-read item %s did not exist before", it.Path)
				}
			}
			d := snap(t, c, context.Background(), a)
			if !d.Status.Complete {
				t.Fatalf("after healing: partial: %v", d.Status.Reasons)
			}
			if p := diff(a, d); len(p) > 0 {
				t.Errorf("after healing, items differ: %v", p)
			}
		})
	}
}

// Carry-forward: an unchanged controller is not listed again, and
// ForceFull lists it.
func TestCarryForwardCost(t *testing.T) {
	s, dev := startSim(t, sim.Options{}, "")
	c, _ := open(t, dev)
	full := snap(t, c, context.Background(), nil)
	carried := snap(t, c, context.Background(), full)
	forced := snap(t, c, logix.ForceFull(context.Background()), carried)
	if p := diff(full, carried); len(p) > 0 {
		t.Errorf("carried snapshot differs: %v", p)
	}
	if p := diff(full, forced); len(p) > 0 {
		t.Errorf("forced snapshot differs: %v", p)
	}
	count := func(sn *snapshots.Snapshot, object string) int {
		n := 0
		for _, r := range sn.Cost.ByKind {
			if r.Object == object {
				n += r.Count
			}
		}
		return n
	}
	if n := count(carried, "Symbol 0x6B") + count(carried, "Template 0x6C"); n != 0 {
		t.Errorf("carried snapshot sent %d tag-database requests", n)
	}
	if count(forced, "Symbol 0x6B") == 0 || count(forced, "Template 0x6C") == 0 {
		t.Errorf("forced snapshot did not list tags and templates: %+v", forced.Cost.ByKind)
	}
	for _, it := range carried.Items {
		if strings.HasPrefix(it.Path, "tags/") && (it.Provenance.Source != snapshots.SourceCarried || it.Provenance.From != full.ID) {
			t.Fatalf("%s provenance %+v, want carried from %s", it.Path, it.Provenance, full.ID)
		}
	}
	tags := 0
	udts := 0
	for _, it := range full.Items {
		if strings.HasPrefix(it.Path, "tags/") || strings.Contains(it.Path, "/tags/") {
			tags++
		}
		if strings.HasPrefix(it.Path, "udts/") {
			udts++
		}
	}
	if tags < 500 || udts < 20 {
		t.Errorf("demo: %d tags, %d UDTs; want at least 500 and 20", tags, udts)
	}
	t.Logf("demo (%d tags, %d UDTs): full read %d requests, %d bytes out, %d bytes in; carried %d requests, %d bytes out, %d bytes in",
		tags, udts, full.Cost.Requests, full.Cost.BytesOut, full.Cost.BytesIn, carried.Cost.Requests, carried.Cost.BytesOut, carried.Cost.BytesIn)
	if s.Refused() != 0 {
		t.Errorf("refused %d", s.Refused())
	}
}

// Devices that expose fewer indicators, or only standard connections.
func TestDeviceVariants(t *testing.T) {
	noAudit := strings.Replace(deviceYAML, "      audit_value_tag: PlcwatchAuditValue\n", "", 1)
	tests := []struct {
		name    string
		opts    sim.Options
		section string
		// wantCarry: an unchanged second snapshot carries the tag database.
		wantCarry bool
		// notObservable lists items that must be SourceNotObservable.
		notObservable []string
	}{
		{name: "all indicators", section: deviceYAML, wantCarry: true},
		{name: "no audit tag configured", section: noAudit, wantCarry: true, notObservable: []string{"indicators/audit_value"}},
		{name: "no controller properties object", opts: sim.Options{NoControllerProperties: true}, section: deviceYAML, wantCarry: true,
			notObservable: []string{"indicators/controller_properties/attr1", "indicators/controller_properties/attr10"}},
		{name: "no indicator at all: always a full read", opts: sim.Options{NoControllerProperties: true}, section: noAudit, wantCarry: false,
			notObservable: []string{"indicators/audit_value", "indicators/controller_properties/attr3"}},
		{name: "standard forward open only", opts: sim.Options{NoLargeForwardOpen: true}, section: deviceYAML, wantCarry: true},
		{name: "no array dimensions in the symbol list", opts: sim.Options{NoSymbolDimensions: true}, section: deviceYAML, wantCarry: true,
			notObservable: []string{"tags/Lookup", "tags/Motors", "tags/Valves"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := startSim(t, tt.opts, tt.section)
			c, _ := open(t, dev)
			a := snap(t, c, context.Background(), nil)
			if !a.Status.Complete {
				t.Fatalf("partial: %v", a.Status.Reasons)
			}
			for _, p := range tt.notObservable {
				if it := a.Item(p); it == nil || it.Provenance.Source != snapshots.SourceNotObservable || it.Provenance.Reason == "" {
					t.Errorf("%s: %+v, want not observable with a reason", p, it)
				}
			}
			plan, err := c.Plan(a)
			if err != nil {
				t.Fatal(err)
			}
			b := snap(t, c, context.Background(), a)
			if p := diff(a, b); len(p) > 0 {
				t.Errorf("unchanged device: %v differ", p)
			}
			carried := b.Item("tags/TankHighLimit").Provenance.Source == snapshots.SourceCarried
			if carried != tt.wantCarry {
				t.Errorf("carried = %v, want %v", carried, tt.wantCarry)
			}
			if n, _, _ := plan.Totals(); n != int(b.Cost.Requests) {
				t.Errorf("plan from the first snapshot says %d requests, the second sent %d", n, b.Cost.Requests)
			}
			if tt.opts.NoLargeForwardOpen && s.Requests()["cip.ForwardOpen"] == 0 {
				t.Error("no standard forward open after the large one was refused")
			}
			if s.Refused() != 0 {
				t.Errorf("refused %d", s.Refused())
			}
		})
	}
}

// A program whose tag listing fails keeps its tags as "not read" while the
// other programs are read: the failure is never a removal.
func TestProgramListingFails(t *testing.T) {
	s, dev := startSim(t, sim.Options{}, "")
	c, _ := open(t, dev)
	a := snap(t, c, context.Background(), nil)
	listings := s.Requests()["cip.GetInstanceAttributeList"]
	programs := 0
	for _, it := range a.Items {
		if strings.Count(it.Path, "/") == 1 && strings.HasPrefix(it.Path, "programs/") {
			programs++
		}
	}
	// Controller pages come first, then one listing per program (the demo
	// programs fit one page each): fail the second program's.
	controllerPages := listings - programs
	s.InjectFault(sim.Fault{Kind: sim.FaultError, Request: "cip.GetInstanceAttributeList", After: controllerPages + 1, Times: 1})
	b := snap(t, c, logix.ForceFull(context.Background()), a)
	if b.Status.Complete {
		t.Fatal("complete despite a failed program listing")
	}
	for _, it := range a.Items {
		o := b.Item(it.Path)
		switch {
		case o == nil:
			t.Errorf("%s missing", it.Path)
		case strings.HasPrefix(it.Path, "programs/Line2/tags/"):
			if o.Provenance.Source != snapshots.SourceNotRead {
				t.Errorf("%s: %s, want not read", it.Path, o.Provenance.Source)
			}
		case o.Provenance.Source != snapshots.SourceRead && !strings.HasPrefix(it.Path, "indicators/audit") && o.Provenance.Source != snapshots.SourceNotObservable:
			t.Errorf("%s: %s, want read", it.Path, o.Provenance.Source)
		}
	}
}
