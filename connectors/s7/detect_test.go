package s7

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/snapshots"
)

// itemDiff is what changed in one item between two snapshots.
type itemDiff struct {
	added, removed bool
	value          bool     // the value changed
	attrs          []string // attribute keys that changed, sorted
}

func diffItem(a, b *snapshots.Snapshot, path string) itemDiff {
	x, y := a.Item(path), b.Item(path)
	switch {
	case x == nil && y == nil:
		return itemDiff{}
	case x == nil:
		return itemDiff{added: true}
	case y == nil:
		return itemDiff{removed: true}
	}
	d := itemDiff{value: x.Value != y.Value}
	keys := map[string]bool{}
	for k := range x.Attrs {
		keys[k] = true
	}
	for k := range y.Attrs {
		keys[k] = true
	}
	for k := range keys {
		if x.Attrs[k] != y.Attrs[k] {
			d.attrs = append(d.attrs, k)
		}
	}
	sort.Strings(d.attrs)
	return d
}

// changed lists the paths whose content hash differs or that exist in one
// snapshot only.
func changed(a, b *snapshots.Snapshot) []string {
	var out []string
	for _, it := range a.Items {
		if o := b.Item(it.Path); o == nil || o.Hash != it.Hash {
			out = append(out, it.Path)
		}
	}
	for _, it := range b.Items {
		if a.Item(it.Path) == nil {
			out = append(out, it.Path)
		}
	}
	sort.Strings(out)
	return out
}

// withoutInfo drops the paths of info items (such as the time of the last
// mode transition, which a mode change moves too).
func withoutInfo(s *snapshots.Snapshot, paths []string) []string {
	var out []string
	for _, p := range paths {
		if it := s.Item(p); it == nil || it.Kind != snapshots.KindInfo {
			out = append(out, p)
		}
	}
	return out
}

func onlyMeta(attrs []string) bool {
	for _, k := range attrs {
		if !strings.HasPrefix(k, snapshots.MetaPrefix) {
			return false
		}
	}
	return len(attrs) > 0
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDetections changes the simulated CPU as an engineer or attacker
// would and checks what the next snapshot shows, item by item.
func TestDetections(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, sim *s7sim.Server)
		path   string // the item that must show it
		check  func(t *testing.T, d itemDiff, a, b *snapshots.Item)
	}{
		{
			name: "block added",
			change: func(t *testing.T, sim *s7sim.Server) {
				must(t, sim.SetBlock(s7sim.Block{Type: "FC", Number: 99, Size: 80}))
			},
			path: "blocks/FC99",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.added || b.Kind != snapshots.KindLogic {
					t.Errorf("diff %+v kind %s: want a new logic item", d, b.Kind)
				}
			},
		},
		{
			name:   "block removed",
			change: func(t *testing.T, sim *s7sim.Server) { must(t, sim.RemoveBlock("FC", 3)) },
			path:   "blocks/FC3",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.removed {
					t.Errorf("diff %+v: want the item gone", d)
				}
			},
		},
		{
			name:   "block code modified, same size",
			change: func(t *testing.T, sim *s7sim.Server) { redownload(t, sim, "FC5", "evil", 0, 0) },
			path:   "blocks/FC5",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.value || a.Attrs["mc7_size"] != b.Attrs["mc7_size"] {
					t.Errorf("diff %+v: want the checksum to change at the same size", d)
				}
			},
		},
		{
			name:   "block grew",
			change: func(t *testing.T, sim *s7sim.Server) { redownload(t, sim, "FB2", "bigger", 24, 0) },
			path:   "blocks/FB2",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.value || !contains(d.attrs, "mc7_size") || !contains(d.attrs, "load_size") {
					t.Errorf("diff %+v: want checksum and sizes to change", d)
				}
			},
		},
		{
			name:   "cyclic interrupt OB changed",
			change: func(t *testing.T, sim *s7sim.Server) { redownload(t, sim, "OB35", "faster", 0, 0) },
			path:   "blocks/OB35",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.value || b.Attrs[snapshots.AttrRole] != snapshots.RoleTasking || b.Attrs["ob_class"] != "cyclic_interrupt" {
					t.Errorf("diff %+v attrs %v: want a changed tasking OB", d, b.Attrs)
				}
			},
		},
		{
			name: "interrupt OB added",
			change: func(t *testing.T, sim *s7sim.Server) {
				must(t, sim.SetBlock(s7sim.Block{Type: "OB", Number: 36, Size: 60}))
			},
			path: "blocks/OB36",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.added || b.Attrs[snapshots.AttrRole] != snapshots.RoleTasking {
					t.Errorf("diff %+v: want a new tasking item", d)
				}
			},
		},
		{
			name:   "setpoint beyond its deadband",
			change: func(t *testing.T, sim *s7sim.Server) { must(t, sim.SetDB(10, 4, real32(90))) },
			path:   "setpoints/TankHighLimit",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				x, _ := a.Value.Number()
				y, _ := b.Value.Number()
				if !d.value || y-x <= b.Deadband || b.Deadband != 0.5 || b.Kind != snapshots.KindSetpoint {
					t.Errorf("%v -> %v (deadband %v): want a change beyond the deadband", a.Value, b.Value, b.Deadband)
				}
			},
		},
		{
			name:   "setpoint within its deadband",
			change: func(t *testing.T, sim *s7sim.Server) { must(t, sim.SetDB(10, 4, real32(85.25))) },
			path:   "setpoints/TankHighLimit",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				x, _ := a.Value.Number()
				y, _ := b.Value.Number()
				if !d.value || y-x > b.Deadband {
					t.Errorf("%v -> %v (deadband %v): want a recorded change within the deadband", a.Value, b.Value, b.Deadband)
				}
			},
		},
		{
			name:   "CPU firmware",
			change: func(t *testing.T, sim *s7sim.Server) { must(t, sim.SetFirmware("V3.3.12")) },
			path:   "firmware/cpu",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.value || b.Value.Raw != "V3.3.12" || b.Kind != snapshots.KindFirmware {
					t.Errorf("%v -> %v", a.Value, b.Value)
				}
			},
		},
		{
			name: "module firmware",
			change: func(t *testing.T, sim *s7sim.Server) {
				must(t, sim.SetModule(s7sim.Module{Rack: 0, Slot: 7, Name: "CP 343-1", TypeID: 0xC410, LogicalAddress: 272, S7: true,
					OrderCode: "6GK7 343-1EX30-0XE0", Firmware: "V3.2.1", HardwareVersion: 7}))
			},
			path: "firmware/module/CP343",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.value || b.Attrs[snapshots.AttrScope] != snapshots.ScopeModule {
					t.Errorf("%v -> %v attrs %v: want a module-scope firmware change", a.Value, b.Value, b.Attrs)
				}
			},
		},
		{
			name: "module swapped for another type",
			change: func(t *testing.T, sim *s7sim.Server) {
				must(t, sim.SetModule(s7sim.Module{Rack: 0, Slot: 5, Name: "DO32", TypeID: 0x2F21, ExpectedTypeID: 0x2F20, LogicalAddress: 4}))
			},
			path: "modules/R0S5",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if !d.value || b.Value.Raw != "0x2F21" || b.Attrs["expected_type"] != "0x2F20" {
					t.Errorf("%v -> %v %v", a.Value, b.Value, b.Attrs)
				}
			},
		},
		{
			name:   "RUN to STOP",
			change: func(t *testing.T, sim *s7sim.Server) { must(t, sim.SetMode("STOP")) },
			path:   "mode/cpu",
			check:  wantValue("RUN", "STOP"),
		},
		{
			name:   "RUN to STARTUP",
			change: func(t *testing.T, sim *s7sim.Server) { must(t, sim.SetMode("STARTUP")) },
			path:   "mode/cpu",
			check:  wantValue("RUN", "STARTUP"),
		},
		{
			name:   "RUN to HOLD",
			change: func(t *testing.T, sim *s7sim.Server) { must(t, sim.SetMode("HOLD")) },
			path:   "mode/cpu",
			check:  wantValue("RUN", "HOLD"),
		},
		{
			name: "protection lowered",
			change: func(t *testing.T, sim *s7sim.Server) {
				must(t, sim.SetProtection(s7sim.Protection{Level: 1, SwitchLevel: 1, ParamLevel: 0, KeySwitch: "RUN"}))
			},
			path: "protection/level",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				x, _ := a.Value.Number()
				y, _ := b.Value.Number()
				if !(y < x) || b.Kind != snapshots.KindProtection {
					t.Errorf("%v -> %v: want a lower protection level", a.Value, b.Value)
				}
			},
		},
		{
			name: "key switch to RUN-P",
			change: func(t *testing.T, sim *s7sim.Server) {
				must(t, sim.SetProtection(s7sim.Protection{Level: 2, SwitchLevel: 1, ParamLevel: 2, KeySwitch: "RUN-P"}))
			},
			path:  "mode/key_switch",
			check: wantValue("RUN", "RUN-P"),
		},
		{
			name: "re-download of identical code, same day",
			change: func(t *testing.T, sim *s7sim.Server) {
				b, _ := sim.Block("FC7")
				b.CodeTime = b.CodeTime.Add(90 * time.Second)
				must(t, sim.SetBlock(b))
			},
			path: "blocks/FC7",
			check: func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
				if d.value || !onlyMeta(d.attrs) || a.Hash == b.Hash {
					t.Errorf("diff %+v: want only meta.* attributes to change", d)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, s7sim.DemoScenario(), s7sim.Options{})
			c, _ := open(t, loadDevice(t, "demo-device.yaml", sim.Addr(), nil))
			a := snap(t, c, nil)
			tc.change(t, sim)
			b := snap(t, c, a)
			if !b.Status.Complete {
				t.Fatalf("snapshot partial: %v", b.Status.Reasons)
			}
			tc.check(t, diffItem(a, b, tc.path), a.Item(tc.path), b.Item(tc.path))
			if got := withoutInfo(b, changed(a, b)); len(got) != 1 || got[0] != tc.path {
				t.Errorf("changed items %v, want only %s", got, tc.path)
			}
			if sim.Refused() != 0 {
				t.Errorf("the CPU refused %d requests", sim.Refused())
			}
		})
	}
}

// redownload replaces a block's code, as a download would: seed changes the
// bytes, grow adds bytes, later moves the timestamp.
func redownload(t *testing.T, sim *s7sim.Server, key, seed string, grow int, later time.Duration) {
	t.Helper()
	b, ok := sim.Block(key)
	if !ok {
		t.Fatalf("no %s", key)
	}
	b.Seed, b.Size = seed, len(b.Body())+grow
	b.CodeTime = b.CodeTime.Add(24*time.Hour + later)
	must(t, sim.SetBlock(b))
}

func wantValue(from, to string) func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
	return func(t *testing.T, d itemDiff, a, b *snapshots.Item) {
		if a.Value.Raw != from || b.Value.Raw != to {
			t.Errorf("%v -> %v, want %s -> %s", a.Value, b.Value, from, to)
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// TestDiffing feeds the connector's snapshots to the diff: what the CLI
// will report for each change.
func TestDiffing(t *testing.T) {
	tests := []struct {
		name       string
		change     func(t *testing.T, sim *s7sim.Server)
		path       string
		want       diffing.ChangeType // "" for no change
		suppressed bool
	}{
		{"re-download of identical code", func(t *testing.T, sim *s7sim.Server) {
			b, _ := sim.Block("FC7")
			b.CodeTime = b.CodeTime.Add(time.Second)
			must(t, sim.SetBlock(b))
		}, "blocks/FC7", diffing.Touched, false},
		{"modified block", func(t *testing.T, sim *s7sim.Server) { redownload(t, sim, "FC5", "x", 0, 0) }, "blocks/FC5", diffing.Changed, false},
		{"removed block", func(t *testing.T, sim *s7sim.Server) { must(t, sim.RemoveBlock("FB", 4)) }, "blocks/FB4", diffing.Removed, false},
		{"setpoint within the deadband", func(t *testing.T, sim *s7sim.Server) { must(t, sim.SetDB(10, 4, real32(85.4))) }, "setpoints/TankHighLimit", "", true},
		{"setpoint beyond the deadband", func(t *testing.T, sim *s7sim.Server) { must(t, sim.SetDB(10, 4, real32(86))) }, "setpoints/TankHighLimit", diffing.Changed, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, s7sim.DemoScenario(), s7sim.Options{})
			c, _ := open(t, loadDevice(t, "demo-device.yaml", sim.Addr(), nil))
			a := snap(t, c, nil)
			tc.change(t, sim)
			r := diffing.Compare(a, snap(t, c, a), diffing.Options{})
			var got []string
			for _, ch := range r.Changes {
				got = append(got, fmt.Sprintf("%s %s", ch.Type, ch.Path))
			}
			want := []string{}
			if tc.want != "" {
				want = []string{fmt.Sprintf("%s %s", tc.want, tc.path)}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("changes %v, want %v", got, want)
			}
			if tc.suppressed != (len(r.Suppressed) == 1 && r.Suppressed[0].Path == tc.path) {
				t.Errorf("suppressed %+v", r.Suppressed)
			}
		})
	}
}

// TestRestartIsInformation restarts the simulated CPU (the same program on
// the same address, later) and cycles it RUN-STOP-RUN: the time of the mode
// transition moves, and only its info item shows it. The diff has nothing
// but information, so nothing alerts.
func TestRestartIsInformation(t *testing.T) {
	clock := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	tests := []struct {
		name    string
		restart func(t *testing.T, sim *s7sim.Server)
	}{
		{"simulator restarted", func(t *testing.T, sim *s7sim.Server) {
			addr := sim.Addr()
			must(t, sim.Close())
			startSim(t, s7sim.DemoScenario(), s7sim.Options{Listen: addr, Now: now})
		}},
		{"RUN, STOP, RUN", func(t *testing.T, sim *s7sim.Server) {
			must(t, sim.SetMode("STOP"))
			clock = clock.Add(time.Minute)
			must(t, sim.SetMode("RUN"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, s7sim.DemoScenario(), s7sim.Options{Now: now})
			c, _ := open(t, loadDevice(t, "demo-device.yaml", sim.Addr(), nil))
			a := snap(t, c, nil)
			clock = clock.Add(17*time.Minute + 250*time.Millisecond)
			tc.restart(t, sim)
			b := snap(t, c, a)
			if !b.Status.Complete {
				t.Fatalf("snapshot partial: %v", b.Status.Reasons)
			}
			if got := changed(a, b); fmt.Sprint(got) != "["+pathModeTransition+"]" {
				t.Errorf("changed items %v, want only %s", got, pathModeTransition)
			}
			it := b.Item(pathModeTransition)
			if it == nil || it.Kind != snapshots.KindInfo || it.Value.Raw != cpuTime(clock) {
				t.Errorf("%s = %+v, want kind info and %s", pathModeTransition, it, cpuTime(clock))
			}
			for _, ch := range diffing.Compare(a, b, diffing.Options{}).Changes {
				if !ch.Info {
					t.Errorf("%s %s is not information: a restart would alert", ch.Type, ch.Path)
				}
			}
			if m := b.Item("mode/cpu"); m == nil || m.Value.Raw != "RUN" || len(m.Attrs) != 1 {
				t.Errorf("mode/cpu = %+v, want RUN with its code only", m)
			}
		})
	}
}
