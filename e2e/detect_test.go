package e2e

import (
	"testing"
	"time"

	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// detection is one kind of tampering and the alert the CLI must raise.
type detection struct {
	name      string
	change    func(t *testing.T) error
	category  string
	technique string // "" where the category has none
	severity  string
}

// TestDetectionS7: each change an engineer (or attacker) can make to an S7
// CPU raises the right alert through the CLI.
func TestDetectionS7(t *testing.T) {
	var sim *s7sim.Server
	rows := []detection{
		{"block added", func(t *testing.T) error { return sim.SetBlock(s7sim.Block{Type: "FC", Number: 99, Size: 80}) }, "logic", "T0843", "high"},
		{"block removed", func(t *testing.T) error { return sim.RemoveBlock("FC", 7) }, "logic", "T0843", "high"},
		{"block modified", func(t *testing.T) error {
			b, _ := sim.Block("FC7")
			b.Code, b.Seed, b.Size = "", "changed", 96
			return sim.SetBlock(b)
		}, "logic", "T0889", "high"},
		{"cyclic OB changed", func(t *testing.T) error {
			b, _ := sim.Block("OB35")
			b.Code, b.Seed, b.Size = "", "changed", 300
			return sim.SetBlock(b)
		}, "tasking", "T0821", "high"},
		{"firmware changed", func(t *testing.T) error { return sim.SetFirmware("V3.3.12") }, "firmware", "T1693.001", "critical"},
		{"RUN to STOP", func(t *testing.T) error { return sim.SetMode("STOP") }, "mode", "T0858", "high"},
		{"RUN to STARTUP", func(t *testing.T) error { return sim.SetMode("STARTUP") }, "mode", "T0858", "high"},
		{"protection lowered", func(t *testing.T) error {
			return sim.SetProtection(s7sim.Protection{Level: 1, SwitchLevel: 1, ParamLevel: 0, KeySwitch: "RUN"})
		}, "protection", "T0892", "critical"},
		{"re-downloaded, content identical, same day", func(t *testing.T) error {
			b, _ := sim.Block("FC7")
			b.CodeTime = b.CodeTime.Add(90 * time.Second)
			return sim.SetBlock(b)
		}, "redownload", "T0843", "low"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r := startS7(t)
			sim = r.sim.(*s7sim.Server)
			runDetection(t, "tankfarm", r, row)
		})
	}
}

// TestDetectionLogix: the same for a Logix controller.
func TestDetectionLogix(t *testing.T) {
	var sim *logixsim.Server
	rows := []detection{
		{"program added", func(t *testing.T) error { return sim.AddProgram("Line9") }, "logic", "T0843", "high"},
		{"tag added", func(t *testing.T) error {
			return sim.AddTag("", logixsim.TagDef{Name: "Bypass", Type: "BOOL"})
		}, "logic", "T0843", "high"},
		{"tag retyped", func(t *testing.T) error {
			return sim.RetypeTag("", logixsim.TagDef{Name: "TankHighLimit", Type: "DINT"})
		}, "logic", "T0889", "high"},
		{"UDT changed", func(t *testing.T) error {
			return sim.SetUDT(logixsim.UDT{Name: "Valve", Members: []logixsim.Member{{Name: "Open", Type: "BOOL"}, {Name: "Closed", Type: "BOOL"}, {Name: "Cmd", Type: "BOOL"}, {Name: "TravelTime", Type: "DINT"}, {Name: "Override", Type: "BOOL"}}})
		}, "logic", "T0889", "high"},
		{"change counter moved, nothing visible", func(t *testing.T) error { return sim.BumpAuditValue() }, "logic_not_observable", "T0889", "high"},
		{"controller firmware", func(t *testing.T) error { return sim.SetRevision("34.11") }, "firmware", "T1693.001", "critical"},
		{"module firmware", func(t *testing.T) error { return sim.SetModuleRevision(1, "12.1") }, "module_firmware", "T1693.002", "high"},
		{"mode REM RUN to REM PROG", func(t *testing.T) error { return sim.SetMode("REM PROG") }, "mode", "T0858", "high"},
		{"serial number changed", func(t *testing.T) error { sim.SetSerial(0x0BADCAFE); return nil }, "device_replaced", "", "high"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r := startLogix(t)
			sim = r.sim.(*logixsim.Server)
			runDetection(t, "line3", r, row)
		})
	}
}

func runDetection(t *testing.T, device string, r *running, row detection) {
	t.Helper()
	s := newSite(t, r.yaml)
	s.baseline(device)
	if err := row.change(t); err != nil {
		t.Fatal(err)
	}
	s.want(1, "check", device)
	found := false
	for _, a := range s.alerts() {
		if a.Category != row.category {
			continue
		}
		found = true
		tech := ""
		if a.Technique != nil {
			tech = a.Technique.ID
		}
		if tech != row.technique || a.Severity != row.severity {
			t.Errorf("%s alert: technique %q severity %s; want %q %s", row.category, tech, a.Severity, row.technique, row.severity)
		}
		if len(a.Items) == 0 {
			t.Errorf("%s alert names no item", row.category)
		}
	}
	if !found {
		t.Errorf("no %s alert; alerts: %+v", row.category, s.alerts())
	}
	if n := r.refused(); n != 0 {
		t.Errorf("the simulator received %d write or control requests", n)
	}
}
