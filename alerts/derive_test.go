package alerts

import (
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
)

var t0 = time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)

// snap builds a finalized snapshot of device "press-7".
func snap(t testing.TB, complete bool, items ...snapshots.Item) *snapshots.Snapshot {
	t.Helper()
	return snapWith(t, complete, nil, items...)
}

// snapWith is snap with the snapshot's own reasons (nil: a partial one
// gives "connection reset after 12 requests").
func snapWith(t testing.TB, complete bool, reasons []string, items ...snapshots.Item) *snapshots.Snapshot {
	t.Helper()
	s := &snapshots.Snapshot{Device: "press-7", Protocol: "s7", TakenAt: t0, Status: snapshots.Status{Complete: complete},
		Identity: snapshots.Identity{Vendor: "Siemens", Serial: "S C-1"}}
	if !complete {
		s.Status.Reasons = []string{"connection reset after 12 requests"}
	}
	if reasons != nil {
		s.Status.Reasons = reasons
	}
	for _, it := range items {
		if it.Provenance.Source == "" {
			it.Provenance.Source = snapshots.SourceRead
		}
		s.Items = append(s.Items, it)
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	return s
}

func block(name string, sum uint64, attrs map[string]string) snapshots.Item {
	return snapshots.Item{Path: "blocks/" + name, Kind: snapshots.KindLogic, Value: snapshots.Uint(sum, ""), Attrs: attrs}
}

func mk(path string, kind snapshots.Kind, v snapshots.Value, attrs map[string]string) snapshots.Item {
	return snapshots.Item{Path: path, Kind: kind, Value: v, Attrs: attrs}
}

func attrs(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func counter(v uint64) snapshots.Item {
	return snapshots.Item{Path: "controller/change_counter", Kind: snapshots.KindLogic, Value: snapshots.Uint(v, ""), Indicator: true}
}

// want describes one expected alert.
type want struct {
	cat       string
	sev       Severity
	technique string // "" for none
	paths     []string
}

func TestDerive(t *testing.T) {
	base := []snapshots.Item{
		block("OB1", 0x1111, attrs(snapshots.AttrRole, snapshots.RoleTasking, "meta.code_time", "2026-01-01T10:00:00Z")),
		block("FC1", 0x2222, attrs("meta.code_time", "2026-01-01T10:00:00Z", "load_size", "100")),
		mk("setpoints/TankHighLimit", snapshots.KindSetpoint, snapshots.Float(87.5, "%"), nil),
		mk("setpoints/TankHighAlarm", snapshots.KindSetpoint, snapshots.Float(95, "%"), attrs(snapshots.AttrRole, snapshots.RoleAlarm)),
		mk("cpu/firmware", snapshots.KindFirmware, snapshots.String("V3.3.12"), nil),
		mk("modules/2/firmware", snapshots.KindFirmware, snapshots.String("V2.0"), attrs(snapshots.AttrScope, snapshots.ScopeModule)),
		mk("modules/2/order", snapshots.KindHardware, snapshots.String("6ES7 321-1BL00-0AA0"), nil),
		mk("cpu/mode", snapshots.KindMode, snapshots.String("RUN"), attrs("meta.last_transition", "2026-04-01T00:00:00Z")),
		mk("server/state", snapshots.KindMode, snapshots.Int(0, ""), attrs(snapshots.AttrValueName, "Running")),
		mk("cpu/protection_level", snapshots.KindProtection, snapshots.Uint(2, ""), nil),
		mk("cpu/password_set", snapshots.KindProtection, snapshots.Bool(true), nil),
		mk("opcua/endpoints/0", snapshots.KindSecurity, snapshots.String("Basic256Sha256 SignAndEncrypt"), nil),
		mk("identity/serial", snapshots.KindIdentity, snapshots.String("S C-1"), nil),
		mk("identity/name", snapshots.KindIdentity, snapshots.String("PRESS7"), nil),
		mk("process/uptime", snapshots.KindInfo, snapshots.Uint(100, "s"), nil),
		counter(7),
	}
	// with returns the baseline items with replacements by path (a nil
	// value removes the item) and additions.
	with := func(repl map[string]*snapshots.Item, add ...snapshots.Item) []snapshots.Item {
		var out []snapshots.Item
		for _, it := range base {
			if r, ok := repl[it.Path]; ok {
				if r != nil {
					out = append(out, *r)
				}
				continue
			}
			out = append(out, it)
		}
		return append(out, add...)
	}
	p := func(it snapshots.Item) *snapshots.Item { return &it }
	withDeadband := func(it snapshots.Item, db float64) snapshots.Item { it.Deadband = db; return it }
	tests := []struct {
		name     string
		old, new []snapshots.Item
		partial  bool
		ticket   string
		want     []want
		title    string   // the first alert's title contains it
		reasons  []string // the new snapshot's own reasons, as a connector gives them
	}{
		{name: "identical", old: base, new: base},
		{name: "logic content changed", old: base, new: with(map[string]*snapshots.Item{
			"blocks/FC1": p(block("FC1", 0x2223, attrs("meta.code_time", "2026-05-01T01:00:00Z", "load_size", "104")))}),
			want: []want{{CatLogic, High, "T0889", []string{"blocks/FC1"}}}},
		{name: "block added: program download", old: base, new: with(nil, block("FC9", 1, nil)),
			want: []want{{CatLogic, High, "T0843", []string{"blocks/FC9"}}}},
		{name: "block removed: program download", old: base, new: with(map[string]*snapshots.Item{"blocks/FC1": nil}),
			want: []want{{CatLogic, High, "T0843", []string{"blocks/FC1"}}}},
		{name: "added and changed: modify program", old: base, new: with(map[string]*snapshots.Item{"blocks/FC1": p(block("FC1", 9, nil))}, block("FC9", 1, nil)),
			want: []want{{CatLogic, High, "T0889", []string{"blocks/FC1", "blocks/FC9"}}}},
		{name: "organization block added: tasking", old: base, new: with(nil, block("OB35", 5, attrs(snapshots.AttrRole, snapshots.RoleTasking))),
			want: []want{{CatTasking, High, "T0821", []string{"blocks/OB35"}}}},
		{name: "setpoint beyond deadband", old: base, new: with(map[string]*snapshots.Item{
			"setpoints/TankHighLimit": p(mk("setpoints/TankHighLimit", snapshots.KindSetpoint, snapshots.Float(92, "%"), nil))}),
			want: []want{{CatSetpoint, High, "T0836", []string{"setpoints/TankHighLimit"}}}},
		{name: "setpoint within deadband raises nothing", old: with(map[string]*snapshots.Item{
			"setpoints/TankHighLimit": p(withDeadband(mk("setpoints/TankHighLimit", snapshots.KindSetpoint, snapshots.Float(87.5, "%"), nil), 0.5))}),
			new: with(map[string]*snapshots.Item{
				"setpoints/TankHighLimit": p(withDeadband(mk("setpoints/TankHighLimit", snapshots.KindSetpoint, snapshots.Float(87.8, "%"), nil), 0.5))})},
		{name: "alarm limit", old: base, new: with(map[string]*snapshots.Item{
			"setpoints/TankHighAlarm": p(mk("setpoints/TankHighAlarm", snapshots.KindSetpoint, snapshots.Float(99, "%"), attrs(snapshots.AttrRole, snapshots.RoleAlarm)))}),
			want: []want{{CatAlarmSetting, High, "T0838", []string{"setpoints/TankHighAlarm"}}}},
		{name: "system firmware", old: base, new: with(map[string]*snapshots.Item{
			"cpu/firmware": p(mk("cpu/firmware", snapshots.KindFirmware, snapshots.String("V3.3.13"), nil))}),
			want: []want{{CatFirmware, Critical, "T1693.001", []string{"cpu/firmware"}}}},
		{name: "module firmware", old: base, new: with(map[string]*snapshots.Item{
			"modules/2/firmware": p(mk("modules/2/firmware", snapshots.KindFirmware, snapshots.String("V2.1"), attrs(snapshots.AttrScope, snapshots.ScopeModule)))}),
			want: []want{{CatModuleFirmware, High, "T1693.002", []string{"modules/2/firmware"}}}},
		{name: "hardware", old: base, new: with(nil, mk("modules/3/order", snapshots.KindHardware, snapshots.String("6ES7 331-7KF02-0AB0"), nil)),
			want: []want{{CatHardware, Medium, "", []string{"modules/3/order"}}}},
		{name: "mode", old: base, new: with(map[string]*snapshots.Item{"cpu/mode": p(mk("cpu/mode", snapshots.KindMode, snapshots.String("STOP"), nil))}),
			want: []want{{CatMode, High, "T0858", []string{"cpu/mode"}}}, title: "operating mode changed: RUN -> STOP"},
		{name: "mode changed, its transition time moved too", old: base, new: with(map[string]*snapshots.Item{
			"cpu/mode": p(mk("cpu/mode", snapshots.KindMode, snapshots.String("STOP"), attrs("meta.last_transition", "2026-05-01T01:00:00Z")))}),
			want: []want{{CatMode, High, "T0858", []string{"cpu/mode"}}}, title: "operating mode changed: RUN -> STOP"},
		{name: "enumerated mode by name", old: base, new: with(map[string]*snapshots.Item{
			"server/state": p(mk("server/state", snapshots.KindMode, snapshots.Int(4, ""), attrs(snapshots.AttrValueName, "CommunicationFault")))}),
			want: []want{{CatMode, High, "T0858", []string{"server/state"}}}, title: "operating mode changed: Running -> CommunicationFault"},
		{name: "restart: only the transition time moved", old: base, new: with(map[string]*snapshots.Item{
			"cpu/mode": p(mk("cpu/mode", snapshots.KindMode, snapshots.String("RUN"), attrs("meta.last_transition", "2026-05-01T01:00:00Z")))})},
		{name: "firmware build date metadata moved", old: with(map[string]*snapshots.Item{
			"cpu/firmware": p(mk("cpu/firmware", snapshots.KindFirmware, snapshots.String("V3.3.12"), attrs("meta.build_date", "2026-04-01")))}),
			new: with(map[string]*snapshots.Item{
				"cpu/firmware": p(mk("cpu/firmware", snapshots.KindFirmware, snapshots.String("V3.3.12"), attrs("meta.build_date", "2026-05-01")))})},
		{name: "Bad status on a setpoint: incomplete naming it, no change", old: base, new: with(map[string]*snapshots.Item{
			"setpoints/TankHighLimit": p(snapshots.Item{Path: "setpoints/TankHighLimit", Kind: snapshots.KindSetpoint, Value: snapshots.None(),
				Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "server answered BadWaitingForInitialData"}})}),
			want: []want{{CatIncomplete, Medium, "", []string{"setpoints/TankHighLimit"}}}, title: "BadWaitingForInitialData"},
		{name: "Bad status with the connector's reason naming the item: named once", partial: true,
			reasons: []string{"setpoints/TankHighLimit: BadWaitingForInitialData"}, old: base, new: with(map[string]*snapshots.Item{
				"setpoints/TankHighLimit": p(snapshots.Item{Path: "setpoints/TankHighLimit", Kind: snapshots.KindSetpoint, Value: snapshots.None(),
					Provenance: snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: "BadWaitingForInitialData"}})}),
			want: []want{{CatIncomplete, Medium, "", []string{"setpoints/TankHighLimit"}}}, title: "BadWaitingForInitialData"},
		{name: "unmarked missing value: incomplete, no change", old: base, new: with(map[string]*snapshots.Item{
			"setpoints/TankHighLimit": p(mk("setpoints/TankHighLimit", snapshots.KindSetpoint, snapshots.None(), nil))}),
			want: []want{{CatIncomplete, Medium, "", []string{"setpoints/TankHighLimit"}}}, title: "no value returned"},
		{name: "protection raised", old: base, new: with(map[string]*snapshots.Item{
			"cpu/protection_level": p(mk("cpu/protection_level", snapshots.KindProtection, snapshots.Uint(3, ""), nil))}),
			want: []want{{CatProtection, High, "T0892", []string{"cpu/protection_level"}}}},
		{name: "protection lowered", old: base, new: with(map[string]*snapshots.Item{
			"cpu/protection_level": p(mk("cpu/protection_level", snapshots.KindProtection, snapshots.Uint(1, ""), nil))}),
			want: []want{{CatProtection, Critical, "T0892", []string{"cpu/protection_level"}}}},
		{name: "password cleared", old: base, new: with(map[string]*snapshots.Item{
			"cpu/password_set": p(mk("cpu/password_set", snapshots.KindProtection, snapshots.Bool(false), nil))}),
			want: []want{{CatProtection, Critical, "T0892", []string{"cpu/password_set"}}}},
		{name: "security endpoint", old: base, new: with(nil, mk("opcua/endpoints/1", snapshots.KindSecurity, snapshots.String("None None"), nil)),
			want: []want{{CatSecurity, High, "T0892", []string{"opcua/endpoints/1"}}}},
		{name: "device replaced", old: base, new: with(map[string]*snapshots.Item{
			"identity/serial": p(mk("identity/serial", snapshots.KindIdentity, snapshots.String("S C-2"), nil))}),
			want: []want{{CatDeviceReplaced, High, "", []string{"identity/serial"}}}},
		{name: "device replaced: an S7 CPU's serial, recorded as hardware", old: with(map[string]*snapshots.Item{
			"identity/serial": p(mk("identity/serial", snapshots.KindHardware, snapshots.String("S C-1"), nil))}),
			new: with(map[string]*snapshots.Item{
				"identity/serial": p(mk("identity/serial", snapshots.KindHardware, snapshots.String("S C-2"), nil))}),
			want: []want{{CatDeviceReplaced, High, "", []string{"identity/serial"}}}},
		{name: "memory card swapped: hardware, not another controller", old: with(nil,
			mk("identity/memory_card_serial", snapshots.KindHardware, snapshots.String("MMC 1"), nil)),
			new:  with(nil, mk("identity/memory_card_serial", snapshots.KindHardware, snapshots.String("MMC 2"), nil)),
			want: []want{{CatHardware, Medium, "", []string{"identity/memory_card_serial"}}}},
		{name: "identity detail", old: base, new: with(map[string]*snapshots.Item{
			"identity/name": p(mk("identity/name", snapshots.KindIdentity, snapshots.String("PRESS8"), nil))}),
			want: []want{{CatIdentity, Medium, "", []string{"identity/name"}}}},
		{name: "re-downloaded, content identical", old: base, new: with(map[string]*snapshots.Item{
			"blocks/FC1": p(block("FC1", 0x2222, attrs("meta.code_time", "2026-05-01T01:00:00Z", "load_size", "100")))}),
			want: []want{{CatRedownload, Low, "T0843", []string{"blocks/FC1"}}}},
		{name: "re-download moves the counter too", old: base, new: with(map[string]*snapshots.Item{
			"blocks/FC1":                p(block("FC1", 0x2222, attrs("meta.code_time", "2026-05-01T01:00:00Z", "load_size", "100"))),
			"controller/change_counter": p(counter(8))}),
			want: []want{{CatRedownload, Low, "T0843", []string{"blocks/FC1", "controller/change_counter"}}}},
		{name: "counter moved, no content changed", old: base, new: with(map[string]*snapshots.Item{"controller/change_counter": p(counter(8))}),
			want: []want{{CatLogicNotObservable, High, "T0889", []string{"controller/change_counter"}}}},
		{name: "counter moved with a logic change", old: base, new: with(map[string]*snapshots.Item{
			"controller/change_counter": p(counter(8)), "blocks/FC1": p(block("FC1", 3, nil))}),
			want: []want{{CatLogic, High, "T0889", []string{"blocks/FC1", "controller/change_counter"}}}},
		{name: "info items never alert", old: base, new: with(map[string]*snapshots.Item{
			"process/uptime": p(mk("process/uptime", snapshots.KindInfo, snapshots.Uint(5, "s"), nil))})},
		{name: "classification change never alerts", old: base, new: with(map[string]*snapshots.Item{
			"setpoints/TankHighLimit": p(snapshots.Item{Path: "setpoints/TankHighLimit", Kind: snapshots.KindSetpoint, Volatile: true})})},
		{name: "touched setpoint metadata never alerts", old: base, new: with(map[string]*snapshots.Item{
			"setpoints/TankHighLimit": p(mk("setpoints/TankHighLimit", snapshots.KindSetpoint, snapshots.Float(87.5, "%"), attrs("meta.read_at", "x")))})},
		{name: "partial: incomplete, no removal alerts, changes still alerted", partial: true, old: base, new: with(map[string]*snapshots.Item{
			"blocks/OB1": nil, "blocks/FC1": nil, "cpu/mode": p(mk("cpu/mode", snapshots.KindMode, snapshots.String("STOP"), nil))}),
			want: []want{{CatMode, High, "T0858", []string{"cpu/mode"}}, {CatIncomplete, Medium, "", []string{"blocks/FC1", "blocks/OB1"}}}},
		{name: "several categories, highest severity first", old: base, new: with(map[string]*snapshots.Item{
			"cpu/mode":     p(mk("cpu/mode", snapshots.KindMode, snapshots.String("STOP"), nil)),
			"cpu/firmware": p(mk("cpu/firmware", snapshots.KindFirmware, snapshots.String("V9"), nil)),
			"blocks/FC1":   p(block("FC1", 0x2222, attrs("meta.code_time", "2026-05-01T01:00:00Z", "load_size", "100")))}),
			want: []want{{CatFirmware, Critical, "T1693.001", []string{"cpu/firmware"}}, {CatMode, High, "T0858", []string{"cpu/mode"}}, {CatRedownload, Low, "T0843", []string{"blocks/FC1"}}}},
		{name: "planned change", ticket: "CHG-1234", old: base, new: with(nil, block("FC9", 1, nil)),
			want: []want{{CatLogic, High, "T0843", []string{"blocks/FC9"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old, cur := snap(t, true, tc.old...), snapWith(t, !tc.partial, tc.reasons, tc.new...)
			rep := diffing.Compare(old, cur, diffing.Options{})
			got := Derive(rep, Input{Ticket: tc.ticket, Now: t0})
			if len(got) != len(tc.want) {
				var cats []string
				for _, a := range got {
					cats = append(cats, a.Category+"/"+string(a.Severity))
				}
				t.Fatalf("alerts %v, want %d: %+v", cats, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				a := got[i]
				if a.Category != w.cat || a.Severity != w.sev {
					t.Errorf("alert %d: %s/%s, want %s/%s", i, a.Category, a.Severity, w.cat, w.sev)
				}
				tech := ""
				if a.Technique != nil {
					tech = a.Technique.ID
					if a.AttackVersion != AttackVersion || a.Technique.Name == "" {
						t.Errorf("alert %d: technique %+v version %q", i, a.Technique, a.AttackVersion)
					}
				}
				if tech != w.technique {
					t.Errorf("alert %d (%s): technique %q, want %q", i, a.Category, tech, w.technique)
				}
				var paths []string
				for _, it := range a.Items {
					paths = append(paths, it.Path)
				}
				if strings.Join(paths, ",") != strings.Join(w.paths, ",") {
					t.Errorf("alert %d (%s): items %v, want %v", i, a.Category, paths, w.paths)
				}
				if i == 0 && tc.title != "" {
					if !strings.Contains(a.Title, tc.title) {
						t.Errorf("alert %d: title %q, want it to contain %q", i, a.Title, tc.title)
					}
				} else if len(w.paths) > 0 && a.Category != CatMode && !strings.Contains(a.Title, w.paths[0]) {
					t.Errorf("alert %d: title %q does not name %s", i, a.Title, w.paths[0])
				}
				if a.Device != "press-7" || a.Baseline != old.ID || a.Snapshot != cur.ID || a.Why == "" {
					t.Errorf("alert %d: device %q baseline %q snapshot %q why %q", i, a.Device, a.Baseline, a.Snapshot, a.Why)
				}
				if len(a.Fingerprint) != 64 || !strings.HasPrefix(a.ID, IDPrefix) || len(a.ID) != len(IDPrefix)+10 {
					t.Errorf("alert %d: fingerprint %q id %q", i, a.Fingerprint, a.ID)
				}
				switch {
				case a.Category == CatIncomplete:
					if a.Disposition != "" || (tc.partial && tc.reasons == nil && (!strings.Contains(a.Title, "connection reset") || len(a.Reasons) != 1)) {
						t.Errorf("incomplete alert: disposition %q title %q reasons %v", a.Disposition, a.Title, a.Reasons)
					}
					// Each item not read is named once in the title, not
					// again through the snapshot's reason for it.
					for _, p := range w.paths {
						if n := strings.Count(a.Title, p); n != 1 {
							t.Errorf("incomplete alert title %q names %s %d times, want once", a.Title, p, n)
						}
					}
				case tc.ticket != "":
					if a.Disposition != Planned || a.Ticket != tc.ticket {
						t.Errorf("alert %d: disposition %q ticket %q, want planned %s", i, a.Disposition, a.Ticket, tc.ticket)
					}
				default:
					if a.Disposition != Unauthorized || a.Ticket != "" {
						t.Errorf("alert %d: disposition %q ticket %q, want unauthorized", i, a.Disposition, a.Ticket)
					}
				}
				for _, it := range a.Items {
					if a.Category == CatIncomplete {
						if it.Reason == "" {
							t.Errorf("alert %d item %s: no reason", i, it.Path)
						}
						continue
					}
					if it.Change != string(diffing.Added) && it.OldHash == "" || it.Change != string(diffing.Removed) && it.NewHash == "" {
						t.Errorf("alert %d item %s (%s): hashes %q -> %q", i, it.Path, it.Change, it.OldHash, it.NewHash)
					}
				}
			}
		})
	}
}

// TestDeriveNoBaselinePartial: with no baseline the daemon compares a
// partial snapshot with itself; only "incomplete" is raised.
func TestDeriveNoBaselinePartial(t *testing.T) {
	s := snap(t, false, block("OB1", 1, nil))
	got := Derive(diffing.Compare(s, s, diffing.Options{}), Input{Now: t0})
	if len(got) != 1 || got[0].Category != CatIncomplete {
		t.Fatalf("alerts %+v, want one incomplete", got)
	}
}

func TestFingerprint(t *testing.T) {
	base := snap(t, true, block("OB1", 1, nil), block("FC1", 2, nil), block("FC2", 3, nil))
	derive := func(items ...snapshots.Item) Alert {
		t.Helper()
		als := Derive(diffing.Compare(base, snap(t, true, items...), diffing.Options{}), Input{Now: t0})
		if len(als) != 1 {
			t.Fatalf("alerts %+v, want one", als)
		}
		return als[0]
	}
	a := derive(block("OB1", 1, nil), block("FC1", 5, nil), block("FC2", 6, nil))
	tests := []struct {
		name string
		b    Alert
		same bool
	}{
		{"same change again, later", func() Alert {
			b := Derive(diffing.Compare(base, snap(t, true, block("OB1", 1, nil), block("FC1", 5, nil), block("FC2", 6, nil)), diffing.Options{}), Input{Now: t0.Add(time.Hour)})
			return b[0]
		}(), true},
		{"one value differs", derive(block("OB1", 1, nil), block("FC1", 5, nil), block("FC2", 7, nil)), false},
		{"one more item", derive(block("OB1", 9, nil), block("FC1", 5, nil), block("FC2", 6, nil)), false},
		{"removed instead of changed", derive(block("OB1", 1, nil), block("FC1", 5, nil)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (a.Fingerprint == tc.b.Fingerprint) != tc.same {
				t.Errorf("fingerprints %s and %s: same = %v, want %v", a.Fingerprint, tc.b.Fingerprint, !tc.same, tc.same)
			}
		})
	}
	other := Derive(diffing.Compare(base, snap(t, true, block("OB1", 1, nil), block("FC1", 5, nil), block("FC2", 6, nil)), diffing.Options{}), Input{Device: "press-8", Now: t0})
	if other[0].Fingerprint == a.Fingerprint {
		t.Error("the same change on another device has the same fingerprint")
	}
}

// TestFingerprintIgnoresVolatile: what moves by itself never makes a new
// alert: a mode's transition time, the reasons of a partial read.
func TestFingerprintIgnoresVolatile(t *testing.T) {
	modeAt := func(m, at string) snapshots.Item {
		return mk("cpu/mode", snapshots.KindMode, snapshots.String(m), attrs("meta.last_transition", at, "code", "0x8"))
	}
	// OPC UA items carry the NodeId they were read at (an address).
	spAt := func(path string, v float64, nodeID string) snapshots.Item {
		return mk(path, snapshots.KindSetpoint, snapshots.Float(v, ""), attrs(snapshots.AttrNodeID, nodeID, "access", "read+write"))
	}
	logicAt := func(sum, nodeID string) snapshots.Item {
		return mk("opcua/Logic/Checksum", snapshots.KindLogic, snapshots.String(sum), attrs(snapshots.AttrNodeID, nodeID))
	}
	base := snap(t, true, modeAt("RUN", "2026-04-01T00:00:00Z"), block("OB1", 1, nil))
	one := func(s *snapshots.Snapshot, cat string) Alert {
		t.Helper()
		for _, a := range Derive(diffing.Compare(base, s, diffing.Options{}), Input{Now: t0}) {
			if a.Category == cat {
				return a
			}
		}
		t.Fatalf("no %s alert", cat)
		return Alert{}
	}
	partial := func(reason string, items ...snapshots.Item) *snapshots.Snapshot {
		s := &snapshots.Snapshot{Device: "press-7", TakenAt: t0, Status: snapshots.Status{Reasons: []string{reason}}, Items: items}
		for i := range s.Items {
			s.Items[i].Provenance.Source = snapshots.SourceRead
		}
		if err := s.Finalize(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		a, b Alert
		same bool
	}{
		{"mode alert: transition time moved", one(snap(t, true, modeAt("STOP", "2026-05-01T01:00:00Z"), block("OB1", 1, nil)), CatMode),
			one(snap(t, true, modeAt("STOP", "2026-05-02T07:00:00Z"), block("OB1", 1, nil)), CatMode), true},
		{"mode alert: another mode", one(snap(t, true, modeAt("STOP", "2026-05-01T01:00:00Z"), block("OB1", 1, nil)), CatMode),
			one(snap(t, true, modeAt("STARTUP", "2026-05-01T01:00:00Z"), block("OB1", 1, nil)), CatMode), false},
		{"setpoint alert: the NodeId renumbered by a restart", one(snap(t, true, modeAt("RUN", "2026-04-01T00:00:00Z"), block("OB1", 1, nil), spAt("opcua/SP1", 2.5, "nsu=urn:a;i=5001")), CatSetpoint),
			one(snap(t, true, modeAt("RUN", "2026-04-01T00:00:00Z"), block("OB1", 1, nil), spAt("opcua/SP1", 2.5, "nsu=urn:a;i=5022")), CatSetpoint), true},
		{"logic alert: the NodeId renumbered by a restart", one(snap(t, true, modeAt("RUN", "2026-04-01T00:00:00Z"), block("OB1", 1, nil), logicAt("c0ffee", "nsu=urn:a;i=7")), CatLogic),
			one(snap(t, true, modeAt("RUN", "2026-04-01T00:00:00Z"), block("OB1", 1, nil), logicAt("c0ffee", "nsu=urn:a;i=9")), CatLogic), true},
		{"logic alert: another checksum", one(snap(t, true, modeAt("RUN", "2026-04-01T00:00:00Z"), block("OB1", 1, nil), logicAt("c0ffee", "nsu=urn:a;i=7")), CatLogic),
			one(snap(t, true, modeAt("RUN", "2026-04-01T00:00:00Z"), block("OB1", 1, nil), logicAt("deadbeef", "nsu=urn:a;i=7")), CatLogic), false},
		{"incomplete: other reason text (ports, counts)", one(partial("read tcp 127.0.0.1:40001->127.0.0.1:102: reset after 12 requests", modeAt("RUN", "2026-04-01T00:00:00Z")), CatIncomplete),
			one(partial("read tcp 127.0.0.1:40777->127.0.0.1:102: reset after 31 requests", modeAt("RUN", "2026-04-01T00:00:00Z")), CatIncomplete), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.a.Fingerprint == tc.b.Fingerprint) != tc.same {
				t.Errorf("%q and %q: same fingerprint = %v, want %v", tc.a.Title, tc.b.Title, !tc.same, tc.same)
			}
		})
	}
}

func TestEvent(t *testing.T) {
	a := Event("press-7", CatOverdue, "no complete snapshot for 36 days", "overdue:2026-05", t0)
	b := Event("press-7", CatOverdue, "no complete snapshot for 37 days", "overdue:2026-05", t0.Add(24*time.Hour))
	c := Event("press-7", CatWindowMissed, "window nightly at 2026-05-02T02:00Z did not run", "window:2026-05-02", t0)
	if a.Fingerprint != b.Fingerprint {
		t.Error("one key, two fingerprints: repeats would not dedupe")
	}
	if a.Fingerprint == c.Fingerprint {
		t.Error("two categories share a fingerprint")
	}
	if a.Severity != Medium || a.Disposition != "" || !strings.Contains(a.Title, "36 days") || a.Technique != nil {
		t.Errorf("overdue event: %+v", a)
	}
	if d := Event("press-7", "something_new", "x", "k", t0); d.Severity != Medium || d.Title != "something new: x" {
		t.Errorf("unknown category: severity %s title %q", d.Severity, d.Title)
	}
}
