package logix_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/connectors/logix"
	"github.com/plcwatch/plcwatch/diffing"
	sim "github.com/plcwatch/plcwatch/simulators/logix"
	"github.com/plcwatch/plcwatch/snapshots"
)

// withSetpoints adds setpoint lines (YAML flow mappings) to deviceYAML.
func withSetpoints(lines ...string) string {
	extra := ""
	for _, l := range lines {
		extra += "        - " + l + "\n"
	}
	return strings.Replace(deviceYAML, "      timeout: 5s\n", extra+"      timeout: 5s\n", 1)
}

// One item the device cannot give costs that item only: it is "not read"
// with the device's answer as the reason, the snapshot is partial, every
// other item is read, and nothing read before goes missing.
func TestItemFailures(t *testing.T) {
	tests := []struct {
		name    string
		opts    sim.Options
		section string
		fault   *sim.Fault
		item    string
		// reason must appear in the item's reason and the snapshot's.
		reason string
	}{
		{name: "missing tag: path destination unknown", section: withSetpoints("{tag: NoSuchTag}"),
			item: "setpoints/NoSuchTag", reason: "CIP status 0x05 path destination unknown"},
		{name: "a structure is not a value", section: withSetpoints("{tag: FlowLoop.Gains, name: gains}"),
			item: "setpoints/gains", reason: "a structure (handle 0x"},
		{name: "general error with extended status", opts: sim.Options{NoMultipleService: true},
			fault: &sim.Fault{Kind: sim.FaultError, Request: "cip.ReadTag", After: 1, Times: 1, Status: 0xFF, Extended: []uint16{0x2105}},
			item:  "setpoints/TankHighLimit", reason: "CIP status 0xFF general error, extended 0x2105"},
		{name: "privilege violation", opts: sim.Options{NoMultipleService: true},
			fault: &sim.Fault{Kind: sim.FaultError, Request: "cip.ReadTag", After: 2, Times: 1, Status: 0x0F},
			item:  "setpoints/PumpStartDelay", reason: "CIP status 0x0F privilege violation"},
		{name: "reply that cannot be decoded", opts: sim.Options{NoMultipleService: true},
			fault: &sim.Fault{Kind: sim.FaultTruncate, Request: "cip.ReadTag", After: 1, Times: 1},
			item:  "setpoints/TankHighLimit", reason: "REAL needs 4 bytes: reply too short"},
		{name: "a configured module is missing", section: strings.Replace(deviceYAML, "modules: [1, 2, 3]", "modules: [1, 2, 3, 7]", 1),
			item: "modules/slot07", reason: "module in slot 7: CIP status 0x01 connection failure, extended 0x0312"},
		{name: "the audit value tag fails", opts: sim.Options{NoMultipleService: true},
			fault: &sim.Fault{Kind: sim.FaultError, Request: "cip.ReadTag", Times: 1, Status: 0x05},
			item:  "indicators/audit_value", reason: "CIP status 0x05 path destination unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := startSim(t, tt.opts, tt.section)
			c, _ := open(t, dev)
			a := snap(t, c, context.Background(), nil)
			if tt.fault != nil {
				if !a.Status.Complete {
					t.Fatalf("first snapshot partial: %v", a.Status.Reasons)
				}
				s.InjectFault(*tt.fault)
			}
			b := snap(t, c, logix.ForceFull(context.Background()), a)
			if b.Status.Complete {
				t.Fatal("snapshot with an unreadable item reports complete")
			}
			it := b.Item(tt.item)
			switch {
			case it == nil:
				t.Fatalf("%s missing (would read as removed)", tt.item)
			case it.Provenance.Source != snapshots.SourceNotRead:
				t.Errorf("%s: source %s, want not_read", tt.item, it.Provenance.Source)
			case !strings.Contains(it.Provenance.Reason, tt.reason):
				t.Errorf("%s: reason %q, want it to name %q", tt.item, it.Provenance.Reason, tt.reason)
			}
			if !strings.Contains(strings.Join(b.Status.Reasons, "\n"), tt.reason) {
				t.Errorf("snapshot reasons %q do not name %q", b.Status.Reasons, tt.reason)
			}
			for _, old := range a.Items {
				o := b.Item(old.Path)
				if o == nil {
					t.Errorf("%s missing from the second snapshot", old.Path)
					continue
				}
				if old.Path != tt.item && old.Provenance.Source == snapshots.SourceRead && o.Provenance.Source != snapshots.SourceRead && o.Provenance.Source != snapshots.SourceCarried {
					t.Errorf("%s: %s (%s), want read: one failed item cost another", old.Path, o.Provenance.Source, o.Provenance.Reason)
				}
			}
			if s.Refused() != 0 {
				t.Errorf("refused %v", s.RefusedKinds())
			}
		})
	}
}

// A setpoint that names a whole array (a tag or a member) is answered
// with the array's first element: recorded as the setpoint's value, one
// element would stand for the array and a change of any other would go
// unseen. It is not observable, with the array named, in a snapshot that
// reads the tag database and in one that carries it; the snapshot stays
// complete and the elements named singly are read.
func TestWholeArraySetpoints(t *testing.T) {
	s, dev := startSim(t, sim.Options{}, withSetpoints(
		"{tag: Lookup, name: lookup}",
		"{tag: \"Lookup[1,2]\", name: lookup_12}",
		"{tag: Recipe_Recipe01.Times, name: times}",
		"{tag: \"Recipe_Recipe01.Times[2]\", name: times_2}",
		"{tag: \"PROGRAM:Line1.curve\", name: curve}",
		"{tag: \"Program:Line1.Curve[4]\", name: curve_4}",
		"{tag: \"Motors[2].Speed\", name: motor_speed}",
	))
	must(t, s.AddTag("Line1", sim.TagDef{Name: "Curve", Type: "REAL", Dims: []int{5}}))
	must(t, s.SetTagValue("Lookup[1,2]", 12.5))
	must(t, s.SetTagValue("Program:Line1.Curve[4]", 4.5))
	whole := map[string]string{
		"setpoints/lookup": "Lookup is an array (REAL[4,8]) and a read returns its first element only: name one element, such as Lookup[0,0]",
		"setpoints/times":  "Recipe_Recipe01.Times is an array (DINT[3]) and a read returns its first element only: name one element, such as Recipe_Recipe01.Times[0]",
		"setpoints/curve":  "curve is an array (REAL[5]) and a read returns its first element only: name one element, such as curve[0]",
	}
	read := map[string]string{"setpoints/lookup_12": "12.5", "setpoints/times_2": "0", "setpoints/curve_4": "4.5", "setpoints/motor_speed": "0"}
	c, _ := open(t, dev)
	var prev, first *snapshots.Snapshot
	for _, run := range []struct {
		name    string
		ctx     context.Context
		carried bool
	}{
		{"tag database read", context.Background(), false},
		{"tag database carried", context.Background(), true},
		{"full read again", logix.ForceFull(context.Background()), false},
	} {
		b := snap(t, c, run.ctx, prev)
		if !b.Status.Complete {
			t.Fatalf("%s: partial: %v", run.name, b.Status.Reasons)
		}
		if it := b.Item("tags/Lookup"); it == nil || (it.Provenance.Source == snapshots.SourceCarried) != run.carried {
			t.Fatalf("%s: tags/Lookup %+v: want carried %v", run.name, it, run.carried)
		}
		for p, want := range whole {
			it := b.Item(p)
			switch {
			case it == nil:
				t.Errorf("%s: %s missing", run.name, p)
			case it.Provenance.Source != snapshots.SourceNotObservable || it.Value.Type != snapshots.TypeNone:
				t.Errorf("%s: %s = %v (%s): the first element stands for the whole array", run.name, p, it.Value, it.Provenance.Source)
			case !strings.Contains(it.Provenance.Reason, want):
				t.Errorf("%s: %s: reason %q, want it to say %q", run.name, p, it.Provenance.Reason, want)
			}
		}
		for p, want := range read {
			if it := b.Item(p); it == nil || it.Provenance.Source != snapshots.SourceRead || it.Value.Raw != want {
				t.Errorf("%s: %s = %+v, want %s read", run.name, p, it, want)
			}
		}
		if prev != nil {
			if r := diffing.Compare(prev, b, diffing.Options{}); len(r.Changes) != 0 {
				t.Errorf("%s: unchanged controller gives changes %+v", run.name, r.Changes)
			}
		}
		if first == nil {
			first = b
		}
		prev = b
	}
	// A previous snapshot from before this check recorded the arrays'
	// first elements as values; with the tag database carried from it,
	// the carried tag items show which tags are arrays.
	old := *first
	old.Items = append([]snapshots.Item(nil), first.Items...)
	for i := range old.Items {
		if it := &old.Items[i]; whole[it.Path] != "" {
			it.Value, it.Provenance, it.Attrs = snapshots.Float32(0, ""), snapshots.Provenance{Source: snapshots.SourceRead}, map[string]string{"tag": it.Attrs["tag"]}
		}
	}
	b := snap(t, c, context.Background(), &old)
	if it := b.Item("tags/Lookup"); it == nil || it.Provenance.Source != snapshots.SourceCarried {
		t.Fatalf("tags/Lookup %+v: want carried", it)
	}
	for _, p := range []string{"setpoints/lookup", "setpoints/curve"} {
		if it := b.Item(p); it == nil || it.Provenance.Source != snapshots.SourceNotObservable || !strings.Contains(it.Provenance.Reason, whole[p]) {
			t.Errorf("carried from a snapshot without the check: %s = %+v, want not observable because %q", p, it, whole[p])
		}
	}
	if s.Refused() != 0 {
		t.Errorf("refused %v", s.RefusedKinds())
	}
}

// An unusable reply inside a Multiple Service Packet, or a packet the
// device refuses, costs extra single requests, never an item.
func TestMultipleServiceFallback(t *testing.T) {
	tests := []struct {
		name  string
		opts  sim.Options
		fault *sim.Fault
		// singly is the request kind that must have been sent on its own.
		singly string
		// onlyOneMSP: after the refusal, no packet is tried again.
		onlyOneMSP bool
	}{
		{name: "embedded error status", fault: &sim.Fault{Embedded: true, Kind: sim.FaultError, Request: "cip.ReadTag", After: 1, Times: 1, Status: 0x05}, singly: "cip.ReadTag"},
		{name: "embedded reply truncated", fault: &sim.Fault{Embedded: true, Kind: sim.FaultTruncate, Request: "cip.ReadTag", After: 2, Times: 1}, singly: "cip.ReadTag"},
		{name: "embedded partial transfer", fault: &sim.Fault{Embedded: true, Kind: sim.FaultPartial, Request: "cip.GetAttributesAll", Times: 1}, singly: "cip.GetAttributesAll"},
		{name: "embedded template attributes fail", fault: &sim.Fault{Embedded: true, Kind: sim.FaultError, Request: "cip.GetAttributeList", After: 3, Times: 2, Status: 0x02}, singly: "cip.GetAttributeList"},
		{name: "wrong offset table", fault: &sim.Fault{Kind: sim.FaultBadOffsets, Request: "cip.MultipleServicePacket", Times: 1}, singly: "cip.ReadTag"},
		{name: "packet refused with vendor error", fault: &sim.Fault{Kind: sim.FaultError, Request: "cip.MultipleServicePacket", Times: 1}, singly: "cip.ReadTag"},
		{name: "reply too large", fault: &sim.Fault{Kind: sim.FaultError, Request: "cip.MultipleServicePacket", Times: 1, Status: 0x11}, singly: "cip.ReadTag"},
		{name: "packet truncated", fault: &sim.Fault{Kind: sim.FaultTruncate, Request: "cip.MultipleServicePacket", Times: 1}, singly: "cip.ReadTag"},
		{name: "multiple service packet not supported", opts: sim.Options{NoMultipleService: true}, singly: "cip.GetAttributeList", onlyOneMSP: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := startSim(t, tt.opts, "")
			c, _ := open(t, dev)
			ref := snap(t, c, logix.ForceFull(context.Background()), nil)
			if !ref.Status.Complete {
				t.Fatalf("reference snapshot partial: %v", ref.Status.Reasons)
			}
			if tt.fault != nil {
				s.InjectFault(*tt.fault)
			}
			before := s.Requests()
			b := snap(t, c, logix.ForceFull(context.Background()), ref)
			after := s.Requests()
			if !b.Status.Complete {
				t.Fatalf("partial: %v", b.Status.Reasons)
			}
			if p := diff(ref, b); len(p) > 0 {
				t.Errorf("items differ from the reference: %v", p)
			}
			if after[tt.singly] <= before[tt.singly] {
				t.Errorf("no single %s sent: before %v, after %v", tt.singly, before, after)
			}
			if tt.onlyOneMSP {
				if n := after["cip.MultipleServicePacket"] - before["cip.MultipleServicePacket"]; n != 1 {
					t.Errorf("%d multiple service packets sent after the device refused the first, want 1", n)
				}
			}
			if s.Refused() != 0 {
				t.Errorf("refused %v", s.RefusedKinds())
			}
		})
	}
}

// The identity comes from ListIdentity when the Identity object cannot be
// read; when neither answers, the identity items are not read and the
// rest of the snapshot still is.
func TestIdentityFallback(t *testing.T) {
	tests := []struct {
		name     string
		opts     sim.Options
		fault    *sim.Fault
		complete bool
		reason   string
	}{
		{name: "identity object missing: ListIdentity", opts: sim.Options{NoIdentityObject: true}, complete: true},
		{name: "identity reply truncated: ListIdentity", opts: sim.Options{NoMultipleService: true},
			fault: &sim.Fault{Kind: sim.FaultTruncate, Request: "cip.GetAttributesAll", Times: 1}, complete: true},
		{name: "neither answers", opts: sim.Options{NoIdentityObject: true},
			fault:  &sim.Fault{Kind: sim.FaultDrop, Request: "cip.ListIdentity"},
			reason: "CIP status 0x08 service not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := startSim(t, tt.opts, "")
			if tt.fault != nil {
				s.InjectFault(*tt.fault)
			}
			c, _ := open(t, dev)
			b := snap(t, c, context.Background(), nil)
			if b.Status.Complete != tt.complete {
				t.Fatalf("complete = %v, want %v (%v)", b.Status.Complete, tt.complete, b.Status.Reasons)
			}
			want := map[string]snapshots.Value{
				"identity/serial":       snapshots.String("0x00C0FFEE"),
				"identity/product_name": snapshots.String("1756-L83E/B"),
				"firmware/controller":   snapshots.String("33.11"),
				"mode/key_switch":       snapshots.String("REMOTE"),
				"mode/operating":        snapshots.String("RUN"),
			}
			for p, v := range want {
				it := b.Item(p)
				switch {
				case it == nil:
					t.Errorf("%s missing", p)
				case tt.complete && (it.Provenance.Source != snapshots.SourceRead || it.Value != v):
					t.Errorf("%s = %v (%s), want %v read", p, it.Value, it.Provenance.Source, v)
				case !tt.complete && (it.Provenance.Source != snapshots.SourceNotRead || !strings.Contains(it.Provenance.Reason, tt.reason)):
					t.Errorf("%s: %s %q, want not read naming %q", p, it.Provenance.Source, it.Provenance.Reason, tt.reason)
				}
			}
			if tt.complete && s.Requests()["cip.ListIdentity"] != 1 {
				t.Errorf("ListIdentity sent %d times, want 1", s.Requests()["cip.ListIdentity"])
			}
			if sp := b.Item("setpoints/TankHighLimit"); sp == nil || sp.Provenance.Source != snapshots.SourceRead {
				t.Errorf("setpoint not read: %+v", sp)
			}
		})
	}
}

// stringScenario is the demo with the predefined STRING, two custom string
// types (20 characters, and 30 whose 34 bytes are padded to 36) and a tag
// of each.
func stringScenario() *sim.Scenario {
	sc := sim.Demo()
	sc.UDTs = append(sc.UDTs,
		sim.UDT{Name: "STRING", Members: []sim.Member{{Name: "LEN", Type: "DINT"}, {Name: "DATA", Type: "SINT", Dim: 82}}},
		sim.UDT{Name: "STRING20", Members: []sim.Member{{Name: "LEN", Type: "DINT"}, {Name: "DATA", Type: "SINT", Dim: 20}}},
		sim.UDT{Name: "STRING30", Members: []sim.Member{{Name: "LEN", Type: "DINT"}, {Name: "DATA", Type: "SINT", Dim: 30}}},
	)
	sc.Tags = append(sc.Tags,
		sim.TagDef{Name: "RecipeName", Type: "STRING", Value: "Batch A"},
		sim.TagDef{Name: "BatchCode", Type: "STRING20", Value: "B-17"},
		sim.TagDef{Name: "LotText", Type: "STRING30", Value: "Lot 4"},
	)
	return sc
}

// Logix STRING setpoints: the predefined STRING and custom string types
// are read with every byte kept, so any byte change is seen; a LEN beyond
// the capacity makes the item not observable.
func TestStringSetpoints(t *testing.T) {
	section := withSetpoints("{tag: RecipeName}", "{tag: BatchCode, type: STRING}", "{tag: LotText, length: 30}")
	tests := []struct {
		name   string
		change func(t *testing.T, s *sim.Server)
		item   string
		// want is the value after the change; empty with reason for an
		// item that is not observable.
		want   string
		reason string
	}{
		{name: "predefined STRING", change: func(*testing.T, *sim.Server) {}, item: "setpoints/RecipeName", want: "Batch A"},
		{name: "custom string type", change: func(*testing.T, *sim.Server) {}, item: "setpoints/BatchCode", want: "B-17"},
		{name: "non-ASCII and control bytes kept", change: func(t *testing.T, s *sim.Server) {
			must(t, s.SetTagValue("RecipeName", []byte("20\xb0C $5 'x'\r\n")))
		}, item: "setpoints/RecipeName", want: "20$B0C $$5 $'x$'$0D$0A"},
		{name: "one byte changed", change: func(t *testing.T, s *sim.Server) {
			must(t, s.SetTagValue("BatchCode", []byte("B-\xb17")))
		}, item: "setpoints/BatchCode", want: "B-$B17"},
		{name: "full capacity", change: func(t *testing.T, s *sim.Server) {
			must(t, s.SetTagValue("BatchCode", strings.Repeat("z", 20)))
		}, item: "setpoints/BatchCode", want: strings.Repeat("z", 20)},
		{name: "LEN beyond the predefined capacity", change: func(t *testing.T, s *sim.Server) {
			must(t, s.SetTagValue("RecipeName.LEN", 83))
		}, item: "setpoints/RecipeName", reason: "string LEN 83 is beyond its capacity of 82 characters"},
		{name: "LEN into the padding of a custom type", change: func(t *testing.T, s *sim.Server) {
			must(t, s.SetTagValue("LotText.LEN", 31))
		}, item: "setpoints/LotText", reason: "string LEN 31 is beyond its capacity of 30 characters"},
		{name: "negative LEN", change: func(t *testing.T, s *sim.Server) {
			must(t, s.SetTagValue("BatchCode.LEN", -1))
		}, item: "setpoints/BatchCode", reason: "string LEN -1 is beyond its capacity of 20 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := startSim(t, sim.Options{Scenario: stringScenario()}, section)
			c, _ := open(t, dev)
			a := snap(t, c, context.Background(), nil)
			if !a.Status.Complete {
				t.Fatalf("partial: %v", a.Status.Reasons)
			}
			tt.change(t, s)
			b := snap(t, c, context.Background(), a)
			it := b.Item(tt.item)
			if it == nil {
				t.Fatalf("%s missing", tt.item)
			}
			if tt.reason != "" {
				if it.Provenance.Source != snapshots.SourceNotObservable || !strings.Contains(it.Provenance.Reason, tt.reason) {
					t.Errorf("%s: %s %q, want not observable naming %q", tt.item, it.Provenance.Source, it.Provenance.Reason, tt.reason)
				}
				return
			}
			if it.Provenance.Source != snapshots.SourceRead || it.Value != snapshots.String(tt.want) {
				t.Errorf("%s = %+v (%s), want %q", tt.item, it.Value, it.Provenance.Source, tt.want)
			}
			if old := a.Item(tt.item); (old.Value == it.Value) != (tt.want == old.Value.Raw) {
				t.Errorf("%s: change seen = %v, want %v", tt.item, old.Value != it.Value, tt.want != old.Value.Raw)
			}
			if !b.Status.Complete {
				t.Errorf("partial: %v", b.Status.Reasons)
			}
		})
	}
}

// A setpoint configured as STRING that is not one, and a string setpoint
// configured with another type, are not read with the mismatch named.
func TestStringTypeMismatch(t *testing.T) {
	section := withSetpoints("{tag: TankLowLimit, type: STRING}", "{tag: RecipeName, type: DINT, name: recipe_dint}")
	_, dev := startSim(t, sim.Options{Scenario: stringScenario()}, section)
	c, _ := open(t, dev)
	b := snap(t, c, context.Background(), nil)
	for p, reason := range map[string]string{
		"setpoints/TankLowLimit": "tag is REAL, the config says STRING",
		"setpoints/recipe_dint":  "tag is STRING, the config says DINT",
	} {
		it := b.Item(p)
		if it == nil || it.Provenance.Source != snapshots.SourceNotRead || !strings.Contains(it.Provenance.Reason, reason) {
			t.Errorf("%s: %+v, want not read naming %q", p, it, reason)
		}
	}
	if it := b.Item("setpoints/TankHighLimit"); it == nil || it.Provenance.Source != snapshots.SourceRead {
		t.Errorf("other setpoint not read: %+v", it)
	}
}

// Every request is bounded by the section's timeout, whatever the device
// does: a stalled or trickling device costs one timeout, and the context
// given to Snapshot (which has a far later deadline) never has to end it.
func TestRequestsBounded(t *testing.T) {
	slow := strings.Replace(deviceYAML, "timeout: 5s", "timeout: 1500ms", 1)
	tests := []struct {
		name  string
		opts  sim.Options
		fault sim.Fault
		// failed: the snapshot fails (nothing usable); else it is partial.
		failed bool
	}{
		{name: "RegisterSession stalls", fault: sim.Fault{Kind: sim.FaultStall, Request: "cip.RegisterSession"}, failed: true},
		{name: "RegisterSession one byte per second", fault: sim.Fault{Kind: sim.FaultTrickle, Request: "cip.RegisterSession"}, failed: true},
		{name: "Forward Open one byte per second", fault: sim.Fault{Kind: sim.FaultTrickle, Request: "cip.LargeForwardOpen"}, failed: true},
		{name: "first read stalls", fault: sim.Fault{Kind: sim.FaultStall, Request: "cip.MultipleServicePacket"}},
		{name: "first read one byte per second", fault: sim.Fault{Kind: sim.FaultTrickle, Request: "cip.MultipleServicePacket"}},
		{name: "ListIdentity one byte per second", opts: sim.Options{NoIdentityObject: true}, fault: sim.Fault{Kind: sim.FaultTrickle, Request: "cip.ListIdentity"}},
		{name: "module read one byte per second", fault: sim.Fault{Kind: sim.FaultTrickle, Request: "cip.GetAttributesAll", After: 1}},
		{name: "tag listing one byte per second", fault: sim.Fault{Kind: sim.FaultTrickle, Request: "cip.GetInstanceAttributeList", After: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := startSim(t, tt.opts, slow)
			s.InjectFault(tt.fault)
			c, _ := open(t, dev)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			b, err := c.Snapshot(ctx, nil)
			if ctx.Err() != nil {
				t.Fatalf("the snapshot ran until its context ended: %v", ctx.Err())
			}
			if tt.failed {
				if err == nil {
					t.Fatalf("snapshot succeeded against a device that never answered: %v", b.Status)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("ended by the context, not the request timeout: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("snapshot failed: %v", err)
			}
			if b.Status.Complete {
				t.Error("complete despite a request that timed out")
			}
			if !strings.Contains(strings.Join(b.Status.Reasons, "\n"), "timeout") {
				t.Errorf("reasons do not name the timeout: %v", b.Status.Reasons)
			}
		})
	}
}

// A simulator restarted with the same scenario is the same controller:
// same identity, change counters and templates, so nothing differs.
func TestSimulatorRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plant.yaml")
	if err := os.WriteFile(file, []byte(`
identity: {vendor: 1, device_type: 14, product_code: 55, revision: "20.19", serial: 0x12345678, product_name: "1769-L33ER/A"}
mode: "REM RUN"
controller_properties: {1: 1, 2: 2, 3: 3, 4: 4, 10: 10}
audit_tag: Audit
udts:
  - {name: STRING, members: [{name: LEN, type: DINT}, {name: DATA, type: SINT, dim: 82}]}
  - {name: Pump, members: [{name: Run, type: BOOL}, {name: Speed, type: REAL}]}
tags:
  - {name: Audit, type: LINT, value: 77}
  - {name: SP, type: REAL, value: 92.5}
  - {name: Recipe, type: STRING, value: "Batch A"}
  - {name: P1, type: Pump, value: {Run: true, Speed: 3.5}}
programs:
  - {name: Main, tags: [{name: Cnt, type: DINT, value: 7}]}
modules:
  - {slot: 1, vendor: 1, device_type: 12, product_code: 200, revision: "2.1", serial: 0xAB, product_name: "1769-IF4/B"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	section := `
    logix:
      modules: [1]
      audit_value_tag: Audit
      setpoints: [{tag: SP}, {tag: Recipe}]
`
	tests := []struct {
		name     string
		scenario func(t *testing.T) *sim.Scenario
		section  string
	}{
		{name: "built-in demo", scenario: func(*testing.T) *sim.Scenario { return sim.Demo() }},
		{name: "scenario file", scenario: func(t *testing.T) *sim.Scenario {
			sc, err := sim.LoadScenario(file)
			if err != nil {
				t.Fatal(err)
			}
			return sc
		}, section: section},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var snaps []*snapshots.Snapshot
			for run := 0; run < 2; run++ {
				ctx, cancel := context.WithCancel(context.Background())
				s, dev := startSim(t, sim.Options{Scenario: tt.scenario(t)}, tt.section)
				c, _ := open(t, dev)
				var prev *snapshots.Snapshot
				if run > 0 {
					prev = snaps[0]
				}
				snaps = append(snaps, snap(t, c, logix.ForceFull(ctx), prev))
				cancel()
				s.Close()
			}
			a, b := snaps[0], snaps[1]
			if !a.Status.Complete || !b.Status.Complete {
				t.Fatalf("partial: %v / %v", a.Status.Reasons, b.Status.Reasons)
			}
			if p := diff(a, b); len(p) > 0 {
				for _, x := range p {
					t.Errorf("%s differs after a restart: %v -> %v", x, value(a, x), value(b, x))
				}
			}
			if a.Identity != b.Identity {
				t.Errorf("identity %+v, after a restart %+v", a.Identity, b.Identity)
			}
		})
	}
}

func value(s *snapshots.Snapshot, p string) string {
	if it := s.Item(p); it != nil {
		return fmt.Sprintf("%v %v", it.Value, it.Attrs)
	}
	return "(none)"
}

// A structure whose member's structure (a nested template) could not be
// read is not read itself, never shown with "template 0x1A3" for the
// member's type: that would be a logic change made of a failed read. Each
// Read Template of a full snapshot fails in turn, with an error reply and
// with garbage.
func TestNestedTemplateNotRead(t *testing.T) {
	s, dev := startSim(t, sim.Options{}, "")
	c, _ := open(t, dev)
	a := snap(t, c, logix.ForceFull(context.Background()), nil)
	if !a.Status.Complete {
		t.Fatalf("first snapshot partial: %v", a.Status.Reasons)
	}
	n := s.Requests()["cip.ReadTemplate"]
	if n < 2 {
		t.Fatalf("%d Read Template requests: the demo has nested structures", n)
	}
	for _, kind := range []sim.FaultKind{sim.FaultError, sim.FaultGarbage} {
		for k := 0; k < n; k++ {
			s.InjectFault(sim.Fault{Kind: kind, Request: "cip.ReadTemplate", After: k, Times: 1, Status: 0x05})
			b := snap(t, c, logix.ForceFull(context.Background()), a)
			s.ClearFaults()
			for _, it := range b.Items {
				if strings.HasPrefix(it.Path, "udts/") && it.Provenance.Source == snapshots.SourceRead && strings.Contains(it.Value.Raw, "template 0x") {
					t.Errorf("fault %d on Read Template %d: %s read as %q", kind, k+1, it.Path, it.Value.Raw)
				}
			}
			for _, p := range diff(a, b) {
				if it := b.Item(p); it == nil || it.Provenance.Source == snapshots.SourceRead {
					t.Errorf("fault %d on Read Template %d: %s changed: %v -> %v", kind, k+1, p, value(a, p), value(b, p))
				}
			}
		}
	}
	if s.Refused() != 0 {
		t.Errorf("refused %v", s.RefusedKinds())
	}
}
