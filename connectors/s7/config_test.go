package s7

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plcwatch/plcwatch/config"
)

// TestBadConfigs checks every testdata/*.bad.yaml is rejected with the
// expected message at the expected line.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string // "line: field: text" the error must contain
	}{
		{"unknown-key", "6: s7.slott: unknown key; want one of"},
		{"bad-address", "8: s7.setpoints[0].address: want an address such as DB10.DBD4"},
		{"width-mismatch", "7: s7.setpoints[0].address: DB10.DBW4: a REAL is 4 bytes"},
		{"bool-needs-bit", "7: s7.setpoints[0].address: DB10.DBB4: a BOOL needs a bit address"},
		{"string-length", "7: s7.setpoints[0].length: a STRING needs its maximum length"},
		{"wstring-length", "7: s7.setpoints[0].length: a WSTRING needs its maximum length in characters, 1 to 16382; got 16383"},
		{"wchar-address", "7: s7.setpoints[0].address: DB10.DBD20: a WCHAR is 2 bytes; address it with DBW or MW"},
		{"unknown-type", "7: s7.setpoints[0].type: want one of BOOL"},
		{"duplicate-setpoint", "8: s7.setpoints[1].name: setpoint \"Limit\" is declared twice"},
		{"bool-deadband", "7: s7.setpoints[0].deadband: a deadband applies to numeric setpoints only"},
		{"tsap-and-slot", "7: s7.remote_tsap: give rack and slot, or remote_tsap, not both"},
		{"bad-slot", "7: s7.slot: want a slot of 0 to 31, got 40"},
		{"connection-type", "6: s7.connection_type: want pg, op or basic, got \"hmi\""},
		{"pdu-size", "6: s7.pdu_size: want 240 to 960 bytes, got 2048"},
		{"read-switch", "7: s7.reads.block_info: want true or false, got \"maybe\""},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file+".bad.yaml"] = true
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file+".bad.yaml")
			_, err := config.Load(path)
			if err == nil {
				t.Fatal("config accepted")
			}
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want config.Errors", err)
			}
			if !strings.Contains(err.Error(), path+":"+tc.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, path+":"+tc.want)
			}
		})
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no row in the table", f)
		}
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		name, in string
		area     byte
		db       int
		start    int
		width    byte
		bit      int
		err      bool
	}{
		{name: "DB double word", in: "DB10.DBD4", area: 0x84, db: 10, start: 4, width: 'D', bit: -1},
		{name: "DB bit, lower case and spaces", in: " db1.dbx 2.7", area: 0x84, db: 1, start: 2, width: 'X', bit: 7},
		{name: "DB byte", in: "DB65535.DBB65535", area: 0x84, db: 65535, start: 65535, width: 'B', bit: -1},
		{name: "M word", in: "MW10", area: 0x83, start: 10, width: 'W', bit: -1},
		{name: "M bit", in: "M4.0", area: 0x83, start: 4, width: 'X', bit: 0},
		{name: "DB 0", in: "DB0.DBW0", err: true},
		{name: "bit 8", in: "DB1.DBX0.8", err: true},
		{name: "bit on a word", in: "DB1.DBW0.1", err: true},
		{name: "bit address without a bit", in: "DB1.DBX0", err: true},
		{name: "input area", in: "IW0", err: true},
		{name: "empty", in: "", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			area, db, start, width, bit, err := parseAddress(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if err == nil && (area != tc.area || db != tc.db || start != tc.start || width != tc.width || bit != tc.bit) {
				t.Errorf("got area %x db %d start %d width %c bit %d", area, db, start, width, bit)
			}
		})
	}
}
