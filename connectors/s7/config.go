package s7

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/config"
)

// Config is a device's `s7:` section.
//
//	s7:
//	  rack: 0                  # or local_tsap/remote_tsap
//	  slot: 2
//	  connection_type: basic   # pg, op or basic (default: basic, which
//	                           # leaves the PG and OP connections free)
//	  pdu_size: 480            # requested; the CPU may grant less
//	  timeout: 5s              # per request
//	  reads: {cpu_info: true, block_info: true, ...}   # every read can be turned off
//	  racks: [0]               # racks whose module list is read
//	  modules: [{name: CP343, rack: 0, slot: 7}]       # firmware read over the module's own connection
//	  setpoints:
//	    - {name: TankHighLimit, address: DB10.DBD4, type: REAL, unit: "%", deadband: 0.5}
type Config struct {
	Rack           *int            `yaml:"rack"`
	Slot           *int            `yaml:"slot"`
	LocalTSAP      *int            `yaml:"local_tsap"`
	RemoteTSAP     *int            `yaml:"remote_tsap"`
	ConnectionType string          `yaml:"connection_type"`
	PDUSize        int             `yaml:"pdu_size"`
	Timeout        config.Duration `yaml:"timeout"`
	// HoldConnection keeps the connection open between snapshots; by
	// default it is closed after each snapshot so that the CPU's scarce
	// connection resources are held only while reading.
	HoldConnection bool        `yaml:"hold_connection"`
	Reads          Reads       `yaml:"reads"`
	Racks          []int       `yaml:"racks"`
	Modules        []ModuleRef `yaml:"modules"`
	Setpoints      []Setpoint  `yaml:"setpoints"`

	// Derived by validate.
	local, remote uint16
	setpoints     []setpoint
}

// Reads turns individual reads on and off; all are on by default. Some
// CPUs were reported to fault on particular SZL reads (SZL 0x001C on some
// 315F/317F): turn those off here.
type Reads struct {
	CPUInfo    *bool `yaml:"cpu_info"`    // SZL 0x001C: names, serial, module type
	OrderCode  *bool `yaml:"order_code"`  // SZL 0x0011: order code, hardware and firmware versions
	Protection *bool `yaml:"protection"`  // SZL 0x0232: protection level, key switch
	Status     *bool `yaml:"status"`      // SZL 0x0424: operating mode
	ModuleList *bool `yaml:"module_list"` // SZL 0x0D91: modules of each rack in racks
	Blocks     *bool `yaml:"blocks"`      // block lists
	BlockInfo  *bool `yaml:"block_info"`  // block info of every OB, FB, FC and DB
	Setpoints  *bool `yaml:"setpoints"`   // the setpoints below
}

// ModuleRef names an S7-capable module (a CP or FM) whose order code and
// firmware are read over a connection to its own rack and slot.
type ModuleRef struct {
	Name string `yaml:"name"`
	Rack int    `yaml:"rack"`
	Slot int    `yaml:"slot"`
}

// Setpoint is a value a person sets, declared by address and type.
type Setpoint struct {
	Name string `yaml:"name"`
	// Address in S7 syntax: DB10.DBX4.0, DB10.DBB4, DB10.DBW4, DB10.DBD4,
	// M4.0, MB4, MW4, MD4.
	Address string `yaml:"address"`
	// Type is BOOL, BYTE, CHAR, WCHAR, WORD, INT, UINT, SINT, USINT, DWORD,
	// DINT, UDINT, REAL, LREAL, TIME, STRING or WSTRING. CHAR and STRING are
	// Windows-1252 text, WCHAR and WSTRING UTF-16 (S7-1200/1500).
	Type string `yaml:"type"`
	// Length is a STRING's maximum length in characters (1-254), or a
	// WSTRING's (1-16382).
	Length   int     `yaml:"length"`
	Unit     string  `yaml:"unit"`
	Deadband float64 `yaml:"deadband"`
}

// setpoint is a validated Setpoint.
type setpoint struct {
	Setpoint
	area  byte // 0x84 DB, 0x83 M
	db    int
	start int // byte offset
	bit   int // BOOL only
	size  int // bytes read
}

// Connection types and their TSAP high bytes.
var connectionTypes = sync.OnceValue(func() map[string]uint16 {
	return map[string]uint16{"pg": 1, "op": 2, "basic": 3}
})

// typeSizes gives each setpoint type's size in bytes (STRING: 2 + length,
// WSTRING: 4 + 2 * length).
var typeSizes = sync.OnceValue(func() map[string]int {
	return map[string]int{
		"BOOL": 1, "BYTE": 1, "CHAR": 1, "SINT": 1, "USINT": 1,
		"WORD": 2, "INT": 2, "UINT": 2, "WCHAR": 2,
		"DWORD": 4, "DINT": 4, "UDINT": 4, "REAL": 4, "TIME": 4,
		"LREAL": 8, "STRING": 0, "WSTRING": 0,
	}
})

// validName reports whether a marker or setpoint name is 1 to 64 letters,
// digits, '.', '_' or '-'.
func validName(s string) bool { return len(s) <= 64 && nameRE().MatchString(s) }

// textTypes have no deadband.
var textTypes = sync.OnceValue(func() map[string]bool {
	return map[string]bool{"BOOL": true, "CHAR": true, "WCHAR": true, "STRING": true, "WSTRING": true}
})

var (
	dbAddr = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^DB(\d{1,5})\.DB([XBWD])(\d{1,5})(?:\.(\d))?$`) })
	mAddr  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^M([BWD]?)(\d{1,5})(?:\.(\d))?$`) })
	// nameRE with a length check of 64 bytes (validName): a counted
	// repetition compiles to a one-pass program of that many states at
	// every process start.
	nameRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) })
	defaults = struct {
		pdu     int
		timeout time.Duration
	}{480, 5 * time.Second}
)

// decodeConfig decodes and validates a device's s7 section. Problems come
// back as config.Errors with the file and line.
func decodeConfig(dev *config.Device) (*Config, error) {
	var c Config
	if err := config.DecodeSection(dev, &dev.S7, "s7", &c); err != nil {
		return nil, err
	}
	if errs := c.validate(dev); len(errs) > 0 {
		return nil, errs
	}
	return &c, nil
}

// validate fills in defaults and checks every field.
func (c *Config) validate(dev *config.Device) config.Errors {
	var errs config.Errors
	n := &dev.S7
	at := func(field, format string, args ...any) {
		line := dev.Line
		if n.Kind != 0 {
			line = config.FindLine(n, field)
		}
		errs = append(errs, &config.Error{File: dev.File, Line: line, Field: "s7." + field, Msg: fmt.Sprintf(format, args...)})
	}
	if _, _, err := net.SplitHostPort(endpoint(dev.Endpoint)); err != nil {
		errs = append(errs, &config.Error{File: dev.File, Line: dev.Line, Field: "endpoint", Msg: fmt.Sprintf("want host or host:port (port 102 by default), got %q", dev.Endpoint)})
	}
	if c.ConnectionType == "" {
		c.ConnectionType = "basic"
	}
	ct, ok := connectionTypes()[c.ConnectionType]
	if !ok {
		at("connection_type", "want pg, op or basic, got %q", c.ConnectionType)
	}
	c.local = 0x0100
	if c.LocalTSAP != nil {
		if *c.LocalTSAP < 0 || *c.LocalTSAP > 0xFFFF {
			at("local_tsap", "want a TSAP of 0 to 0xFFFF, got %d", *c.LocalTSAP)
		}
		c.local = uint16(*c.LocalTSAP)
	}
	switch {
	case c.RemoteTSAP != nil && (c.Rack != nil || c.Slot != nil):
		at("remote_tsap", "give rack and slot, or remote_tsap, not both")
	case c.RemoteTSAP != nil:
		if *c.RemoteTSAP < 0 || *c.RemoteTSAP > 0xFFFF {
			at("remote_tsap", "want a TSAP of 0 to 0xFFFF, got %d", *c.RemoteTSAP)
		}
		c.remote = uint16(*c.RemoteTSAP)
	default:
		rack, slot := 0, 2
		if c.Rack != nil {
			rack = *c.Rack
		}
		if c.Slot != nil {
			slot = *c.Slot
		}
		if rack < 0 || rack > 7 {
			at("rack", "want a rack of 0 to 7, got %d", rack)
		}
		if slot < 0 || slot > 31 {
			at("slot", "want a slot of 0 to 31, got %d", slot)
		}
		c.remote = remoteTSAP(ct, rack, slot)
	}
	if c.PDUSize == 0 {
		c.PDUSize = defaults.pdu
	}
	if c.PDUSize < 240 || c.PDUSize > 960 {
		at("pdu_size", "want 240 to 960 bytes, got %d", c.PDUSize)
	}
	switch {
	case c.Timeout < 0, c.Timeout == 0 && config.HasKey(n, "timeout"):
		// An explicit zero is not the default: no bound on a request to
		// a CPU cannot work; omitting the key gives the default.
		at("timeout", "want a positive duration such as \"5s\" (omit it for the default %s), got %s", defaults.timeout, c.Timeout)
	case c.Timeout == 0:
		c.Timeout = config.Duration(defaults.timeout)
	}
	if c.Racks == nil {
		c.Racks = []int{0}
	}
	for i, r := range c.Racks {
		if r < 0 || r > 7 {
			at(fmt.Sprintf("racks[%d]", i), "want a rack of 0 to 7, got %d", r)
		}
	}
	mods := map[string]bool{}
	for i, m := range c.Modules {
		f := fmt.Sprintf("modules[%d]", i)
		if !validName(m.Name) {
			at(f+".name", "want a name of letters, digits, '.', '_' or '-', got %q", m.Name)
		} else if mods[m.Name] {
			at(f+".name", "module %q is declared twice", m.Name)
		}
		mods[m.Name] = true
		if m.Rack < 0 || m.Rack > 7 || m.Slot < 0 || m.Slot > 31 {
			at(f, "want rack 0 to 7 and slot 0 to 31, got rack %d slot %d", m.Rack, m.Slot)
		}
	}
	names := map[string]bool{}
	for i, sp := range c.Setpoints {
		f := fmt.Sprintf("setpoints[%d]", i)
		if !validName(sp.Name) {
			at(f+".name", "want a name of letters, digits, '.', '_' or '-' (up to 64), got %q", sp.Name)
		} else if names[sp.Name] {
			at(f+".name", "setpoint %q is declared twice", sp.Name)
		}
		names[sp.Name] = true
		p, err := parseSetpoint(sp)
		if err != nil {
			at(f+"."+err.field, "%s", err.msg)
			continue
		}
		c.setpoints = append(c.setpoints, p)
	}
	return errs
}

// fieldError is a setpoint problem and the key it is about.
type fieldError struct{ field, msg string }

// parseSetpoint checks a setpoint's type and address against each other.
func parseSetpoint(sp Setpoint) (setpoint, *fieldError) {
	p := setpoint{Setpoint: sp, bit: -1}
	p.Type = strings.ToUpper(strings.TrimSpace(sp.Type))
	size, ok := typeSizes()[p.Type]
	if !ok {
		return p, &fieldError{"type", fmt.Sprintf("want one of BOOL, BYTE, CHAR, WCHAR, WORD, INT, UINT, SINT, USINT, DWORD, DINT, UDINT, REAL, LREAL, TIME, STRING, WSTRING; got %q", sp.Type)}
	}
	switch {
	case p.Type == "STRING":
		if sp.Length < 1 || sp.Length > 254 {
			return p, &fieldError{"length", fmt.Sprintf("a STRING needs its maximum length, 1 to 254; got %d", sp.Length)}
		}
		size = sp.Length + 2
	case p.Type == "WSTRING":
		if sp.Length < 1 || sp.Length > 16382 {
			return p, &fieldError{"length", fmt.Sprintf("a WSTRING needs its maximum length in characters, 1 to 16382; got %d", sp.Length)}
		}
		size = 2*sp.Length + 4
	case sp.Length != 0:
		return p, &fieldError{"length", "length is for STRING and WSTRING setpoints only"}
	}
	if sp.Deadband < 0 {
		return p, &fieldError{"deadband", fmt.Sprintf("want a number >= 0, got %v", sp.Deadband)}
	}
	if sp.Deadband != 0 && textTypes()[p.Type] {
		return p, &fieldError{"deadband", "a deadband applies to numeric setpoints only"}
	}
	area, db, start, width, bit, err := parseAddress(sp.Address)
	if err != nil {
		return p, &fieldError{"address", err.Error()}
	}
	switch {
	case width == 'X' && p.Type != "BOOL", width != 'X' && p.Type == "BOOL":
		return p, &fieldError{"address", fmt.Sprintf("%s: a BOOL needs a bit address such as DB10.DBX4.0 or M4.0, other types a byte, word or double word address", sp.Address)}
	case width == 'W' && size != 2, width == 'D' && size != 4:
		hint := map[int]string{1: "DBB or MB", 2: "DBW or MW", 4: "DBD or MD"}[size]
		if hint == "" {
			hint = "DBB or MB (its first byte)"
		}
		return p, &fieldError{"address", fmt.Sprintf("%s: a %s is %d bytes; address it with %s", sp.Address, p.Type, size, hint)}
	}
	p.area, p.db, p.start, p.bit, p.size = area, db, start, bit, size
	if start+size > 65535 {
		return p, &fieldError{"address", fmt.Sprintf("%s: %d bytes from byte %d run past 65535", sp.Address, size, start)}
	}
	return p, nil
}

// parseAddress parses S7 address syntax. width is X (bit), B, W or D.
func parseAddress(s string) (area byte, db, start int, width byte, bit int, err error) {
	a := strings.ToUpper(strings.ReplaceAll(s, " ", ""))
	bit = -1
	want := fmt.Errorf("want an address such as DB10.DBD4, DB10.DBX4.0, MW10 or M4.0, got %q", s)
	var num, off, bitStr string
	if m := dbAddr().FindStringSubmatch(a); m != nil {
		area, width, num, off, bitStr = 0x84, m[2][0], m[1], m[3], m[4]
	} else if m := mAddr().FindStringSubmatch(a); m != nil {
		area, off, bitStr = 0x83, m[2], m[3]
		width = 'X'
		if m[1] != "" {
			width = m[1][0]
		}
	} else {
		return 0, 0, 0, 0, -1, want
	}
	if (width == 'X') != (bitStr != "") {
		return 0, 0, 0, 0, -1, want
	}
	if num != "" {
		if db, _ = strconv.Atoi(num); db < 1 || db > 65535 {
			return 0, 0, 0, 0, -1, fmt.Errorf("%s: want a DB number of 1 to 65535", s)
		}
	}
	start, _ = strconv.Atoi(off)
	if bitStr != "" {
		if bit, _ = strconv.Atoi(bitStr); bit > 7 {
			return 0, 0, 0, 0, -1, fmt.Errorf("%s: want a bit of 0 to 7", s)
		}
	}
	return area, db, start, width, bit, nil
}

func remoteTSAP(connType uint16, rack, slot int) uint16 {
	return connType<<8 | uint16(rack)<<5 | uint16(slot)
}

// endpoint adds the ISO-on-TCP port 102 to a bare host.
func endpoint(ep string) string {
	if _, _, err := net.SplitHostPort(ep); err == nil {
		return ep
	}
	if strings.Count(ep, ":") > 1 && !strings.HasPrefix(ep, "[") {
		return net.JoinHostPort(ep, "102")
	}
	if ep == "" || strings.Contains(ep, ":") {
		return ep
	}
	return net.JoinHostPort(ep, "102")
}

func on(b *bool) bool { return b == nil || *b }
