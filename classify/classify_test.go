package classify

import (
	"testing"

	"github.com/plcwatch/plcwatch/snapshots"
)

func TestMatchPath(t *testing.T) {
	tests := []struct {
		name, pattern, path string
		want                bool
	}{
		{"exact", "a/b/c", "a/b/c", true},
		{"star in segment", "a/*/c", "a/xyz/c", true},
		{"star does not cross segments", "a/*", "a/b/c", false},
		{"double star many", "a/**/c", "a/b/x/y/c", true},
		{"double star zero", "a/**/c", "a/c", true},
		{"double star tail", "opcua/**", "opcua/Plant/Line1", true},
		{"prefix mismatch", "s7/**", "opcua/x", false},
		{"glob chars", "setpoints/Tank*Limit", "setpoints/TankHighLimit", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MatchPath(tc.pattern, tc.path); got != tc.want {
				t.Errorf("MatchPath(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	yes, no := true, false
	rules := Rules{
		{Path: "opcua/Plant/**/Live/*", Volatile: true, Kind: snapshots.KindInfo, Source: "r1"},
		{Name: "*Limit", Kind: snapshots.KindSetpoint, Deadband: 0.5, Source: "r2"},
		{DataType: "ByteString", NodeClass: "Variable", Ignore: true, Source: "r3"},
		{Writable: &no, Path: "opcua/Plant/Params/**", Kind: snapshots.KindSetpoint, Source: "r4"},
		{Writable: &yes, Path: "opcua/Plant/Status/**", Kind: snapshots.KindInfo, Volatile: true, Source: "r5"},
	}
	def := Result{Kind: snapshots.KindInfo}
	tests := []struct {
		name   string
		target Target
		want   Result
	}{
		{"live value volatile", Target{Path: "opcua/Plant/L1/Live/Flow", Name: "Flow"}, Result{Kind: snapshots.KindInfo, Volatile: true, Rule: 0, Source: "r1"}},
		{"name glob setpoint", Target{Path: "x/TankHighLimit", Name: "TankHighLimit"}, Result{Kind: snapshots.KindSetpoint, Deadband: 0.5, Rule: 1, Source: "r2"}},
		{"data type ignore", Target{Path: "x/Blob", Name: "Blob", NodeClass: "variable", DataType: "bytestring"}, Result{Kind: snapshots.KindInfo, Ignore: true, Rule: 2, Source: "r3"}},
		{"read-only setpoint by rule", Target{Path: "opcua/Plant/Params/Gain", Name: "Gain", HasAccess: true, Writable: false}, Result{Kind: snapshots.KindSetpoint, Rule: 3, Source: "r4"}},
		{"writable live value by rule", Target{Path: "opcua/Plant/Status/Speed", Name: "Speed", HasAccess: true, Writable: true}, Result{Kind: snapshots.KindInfo, Volatile: true, Rule: 4, Source: "r5"}},
		{"writable needs known access", Target{Path: "opcua/Plant/Status/Speed", Name: "Speed"}, Result{Kind: snapshots.KindInfo, Rule: -1, Source: "default"}},
		{"default", Target{Path: "other", Name: "other"}, Result{Kind: snapshots.KindInfo, Rule: -1, Source: "default"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rules.Classify(tc.target, def); got != tc.want {
				t.Errorf("Classify = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		ok   bool
	}{
		{"fine", Rule{Path: "a/**", Kind: snapshots.KindLogic}, true},
		{"matches everything", Rule{Kind: snapshots.KindLogic}, false},
		{"no effect", Rule{Path: "a"}, false},
		{"bad kind", Rule{Path: "a", Kind: "x"}, false},
		{"ignore with kind", Rule{Path: "a", Ignore: true, Kind: snapshots.KindLogic}, false},
		{"negative deadband", Rule{Path: "a", Kind: snapshots.KindSetpoint, Deadband: -1}, false},
		{"bad glob", Rule{Path: "a/[", Kind: snapshots.KindSetpoint}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.rule.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestDigestChangesWithRules(t *testing.T) {
	a := Rules{{Path: "a", Kind: snapshots.KindLogic}}
	b := Rules{{Path: "a", Kind: snapshots.KindSetpoint}}
	if a.Digest() == b.Digest() || a.Digest() != (Rules{{Path: "a", Kind: snapshots.KindLogic, Source: "elsewhere"}}).Digest() {
		t.Error("rules digest must follow content and ignore Source")
	}
}

func TestApply(t *testing.T) {
	rules := Rules{
		{Path: "server/build_date", Kind: snapshots.KindInfo},
		{Path: "security/server_certificate", Ignore: true},
		{Path: "mode/*", Volatile: true},
		{NodeClass: "block", Path: "blocks/**", Kind: snapshots.KindInfo},
		{Path: "blocks/**", Kind: snapshots.KindSetpoint},
		{DataType: "REAL", Path: "setpoints/*", Deadband: 0.5, Unit: "%"},
	}
	tests := []struct {
		name     string
		item     snapshots.Item
		wantKind snapshots.Kind
		dropped  bool
		volatile bool
		deadband float64
		unit     string
	}{
		{name: "connector-made firmware item re-classed as info", item: snapshots.Item{Path: "server/build_date", Kind: snapshots.KindFirmware, Value: snapshots.String("x")}, wantKind: snapshots.KindInfo},
		{name: "connector-made security item silenced", item: snapshots.Item{Path: "security/server_certificate", Kind: snapshots.KindSecurity}, dropped: true},
		{name: "volatile keeps the connector's kind", item: snapshots.Item{Path: "mode/cpu", Kind: snapshots.KindMode, Value: snapshots.String("RUN")}, wantKind: snapshots.KindMode, volatile: true},
		{name: "rule needing a node class the item does not record: left to the connector", item: snapshots.Item{Path: "blocks/OB1", Kind: snapshots.KindLogic}, wantKind: snapshots.KindLogic},
		{name: "node class recorded: the rule decides", item: snapshots.Item{Path: "blocks/OB1", Kind: snapshots.KindLogic, Attrs: map[string]string{snapshots.AttrNodeClass: "block"}}, wantKind: snapshots.KindInfo},
		{name: "data type recorded: deadband and unit", item: snapshots.Item{Path: "setpoints/T", Kind: snapshots.KindSetpoint, Value: snapshots.Float(80, ""), Attrs: map[string]string{snapshots.AttrDataType: "REAL"}}, wantKind: snapshots.KindSetpoint, deadband: 0.5, unit: "%"},
		{name: "no rule: the connector's classification stays", item: snapshots.Item{Path: "identity/serial", Kind: snapshots.KindIdentity}, wantKind: snapshots.KindIdentity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := rules.Apply([]snapshots.Item{tc.item})
			if tc.dropped {
				if len(out) != 0 {
					t.Fatalf("kept %+v, want it dropped", out)
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("items %+v, want one", out)
			}
			got := out[0]
			if got.Kind != tc.wantKind || got.Volatile != tc.volatile || got.Deadband != tc.deadband || got.Value.Unit != tc.unit {
				t.Errorf("got kind %s volatile %v deadband %v unit %q, want %s %v %v %q", got.Kind, got.Volatile, got.Deadband, got.Value.Unit, tc.wantKind, tc.volatile, tc.deadband, tc.unit)
			}
			if tc.volatile && got.Value.Type != snapshots.TypeNone {
				t.Errorf("volatile item kept its value %v", got.Value)
			}
		})
	}
	m := rules.Matches([]snapshots.Item{{Path: "server/build_date"}, {Path: "blocks/OB1"}})
	want := []bool{true, false, false, true, true, false}
	for i := range want {
		if m[i] != want[i] {
			t.Errorf("Matches[%d] = %v, want %v", i, m[i], want[i])
		}
	}
}
