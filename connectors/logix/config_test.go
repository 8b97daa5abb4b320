package logix

import (
	"os"
	"strings"
	"testing"

	"github.com/plcwatch/plcwatch/config"
)

func TestGoodConfig(t *testing.T) {
	cfg, err := config.Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := decode(cfg.Devices[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.host != "10.0.0.5:44818" || string(s.route) != "\x01\x02" || len(s.paths) != 3 || s.timeout.Seconds() != 2 || s.sections() != "tags,programs" {
		t.Errorf("settings %+v", s)
	}
}

// Bad logix sections are rejected when the config loads, with file:line
// and what was expected.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings, each on its own error line
	}{
		{name: "slot and path", file: "slot-and-path.bad.yaml", want: []string{"slot-and-path.bad.yaml:7: device plc1: logix.path: give slot or path, not both"}},
		{name: "unknown key", file: "unknown-key.bad.yaml", want: []string{"unknown-key.bad.yaml:6", "audit_tag"}},
		{name: "bad setpoints", file: "bad-setpoint.bad.yaml", want: []string{
			"bad-setpoint.bad.yaml:7: device plc1: logix.setpoints[0].type: want an atomic Logix type",
			"bad-setpoint.bad.yaml:8: device plc1: logix.setpoints[1].tag",
			"bad-setpoint.bad.yaml:9: device plc1: logix.setpoints[2].tag: missing",
			"bad-setpoint.bad.yaml:10: device plc1: logix.setpoints[3].deadband: want a number >= 0",
		}},
		{name: "bad slots", file: "bad-slot.bad.yaml", want: []string{
			"bad-slot.bad.yaml:6: device plc1: logix.slot: want a slot number 0-255, got 300",
			"bad-slot.bad.yaml:7: device plc1: logix.modules[1]: slot 1 listed twice",
		}},
		{name: "bad audit tag and sections", file: "bad-audit.bad.yaml", want: []string{
			"logix.audit_value_tag: want the name of a controller-scoped LINT tag",
			"logix.tag_database: programs and templates are read with the tag database",
		}},
		{name: "bad endpoint", file: "bad-endpoint.bad.yaml", want: []string{"bad-endpoint.bad.yaml:2: device plc1: endpoint: want host or host:port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat("testdata/" + tt.file); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load("testdata/" + tt.file)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestAuditValueText(t *testing.T) {
	tests := []struct {
		name string
		in   int64
		want string
	}{
		{name: "zero", in: 0, want: "16#0000_0000_0000_0000"},
		{name: "demo controller", in: 6148914691236517205, want: "16#5555_5555_5555_5555"},
		{name: "grouped", in: 0x00001234ABCD0000, want: "16#0000_1234_ABCD_0000"},
		{name: "negative is two's complement", in: -1, want: "16#FFFF_FFFF_FFFF_FFFF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AuditValueText(tc.in); got != tc.want {
				t.Fatalf("AuditValueText(%d) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
