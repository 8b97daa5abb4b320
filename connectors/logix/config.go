package logix

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/danomagnum/gologix"

	"github.com/plcwatch/plcwatch/config"
)

// DefaultPort is EtherNet/IP's TCP port.
const DefaultPort = 44818

// DefaultTimeout bounds one request when the section gives no timeout.
const DefaultTimeout = 5 * time.Second

// Config is a device's `logix:` section.
//
//	logix:
//	  slot: 0                       # controller slot behind the Ethernet module (or path: "1,0")
//	  modules: [1, 2, 3]            # chassis slots whose identity and firmware to record
//	  audit_value_tag: AuditValue   # LINT tag the logic fills with the AuditValue (GSV)
//	  setpoints:
//	    - {tag: TankHighLimit, unit: "%", deadband: 0.5}
//	    - {tag: "Program:Line1.FlowSP", type: REAL, name: line1_flow_sp}
//	    - {tag: RecipeName, type: STRING}          # predefined STRING (82 characters)
//	    - {tag: BatchCode, type: STRING, length: 20}  # custom string type
//	  tag_database: true            # controller- and program-scoped tags
//	  programs: true                # program list and program-scoped tags
//	  templates: true               # UDT definitions
//	  timeout: 5s                   # per request
type Config struct {
	// Slot is the controller's slot on the backplane (port 1). Give slot or
	// path, not both; default slot 0.
	Slot *int `yaml:"slot"`
	// Path is the route to the controller in gologix's notation, such as
	// "1,0" (port 1, slot 0) or "1,2,2,10.0.0.5,1,0".
	Path string `yaml:"path"`
	// Modules are chassis slots whose Identity object is read through the
	// backplane (catalogue, revision, serial).
	Modules []int `yaml:"modules"`
	// AuditValueTag is a controller-scoped LINT tag that the site's logic
	// fills with the controller's AuditValue (GSV ControllerDevice
	// AuditValue); empty means the AuditValue is not observed.
	AuditValueTag string `yaml:"audit_value_tag"`
	// Setpoints are tags to record with their values.
	Setpoints []Setpoint `yaml:"setpoints"`
	// TagDatabase, Programs and Templates turn parts of the tag-database
	// read off (all default on).
	TagDatabase *bool `yaml:"tag_database"`
	Programs    *bool `yaml:"programs"`
	Templates   *bool `yaml:"templates"`
	// Timeout bounds each request; default 5s.
	Timeout config.Duration `yaml:"timeout"`
}

// Setpoint is one tag to record as a setpoint.
type Setpoint struct {
	// Tag is the tag path: "Name", "Name.Member", "Name[3]" or
	// "Program:Prog.Name". It names one value: a path that names a whole
	// array is not observable (see shapes.go).
	Tag string `yaml:"tag"`
	// Type, if given, is the Logix type the tag must have (REAL, DINT, ...);
	// a different type is reported instead of a value.
	Type string `yaml:"type"`
	// Unit is the engineering unit.
	Unit string `yaml:"unit"`
	// Deadband: absolute changes up to this (versus the baseline) are not
	// reported.
	Deadband float64 `yaml:"deadband"`
	// Name is the item name (setpoints/<name>); default the tag path.
	Name string `yaml:"name"`
	// Length is the DATA length (capacity in characters) of a custom string
	// type; it implies type STRING. The predefined STRING holds 82 and is
	// recognised without it.
	Length int `yaml:"length"`
}

// isString reports whether the setpoint is configured as a string.
func (sp Setpoint) isString() bool { return strings.EqualFold(sp.Type, "STRING") || sp.Length > 0 }

func (sp Setpoint) itemName() string {
	if sp.Name != "" {
		return sp.Name
	}
	return sp.Tag
}

func on(b *bool) bool { return b == nil || *b }

// settings is a validated config.
type settings struct {
	Config
	host    string
	route   []byte // port segments to the controller
	timeout time.Duration
	paths   [][]byte // encoded setpoint tag paths
}

// decode reads and validates a device's logix section.
func decode(dev *config.Device) (*settings, error) {
	var c Config
	const field = "logix"
	if err := config.DecodeSection(dev, &dev.Logix, field, &c); err != nil {
		return nil, err
	}
	var errs config.Errors
	at := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{File: dev.File, Line: config.FindLine(&dev.Logix, key), Field: fmt.Sprintf("device %s: %s.%s", dev.Name, field, key), Msg: fmt.Sprintf(format, args...)})
	}
	if dev.Logix.Kind == 0 {
		at = func(key, format string, args ...any) {
			errs = append(errs, &config.Error{File: dev.File, Line: dev.Line, Field: fmt.Sprintf("device %s: %s.%s", dev.Name, field, key), Msg: fmt.Sprintf(format, args...)})
		}
	}
	s := &settings{Config: c, timeout: c.Timeout.D()}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if c.Timeout < 0 || (c.Timeout == 0 && config.HasKey(&dev.Logix, "timeout")) {
		// An explicit zero is not the default (omitting the key is).
		at("timeout", "want a positive duration such as \"5s\" (omit it for the default %s), got %s", DefaultTimeout, c.Timeout)
	}
	host, port, err := net.SplitHostPort(dev.Endpoint)
	if err != nil {
		host, port = dev.Endpoint, strconv.Itoa(DefaultPort)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 || host == "" || strings.Contains(host, "/") {
		errs = append(errs, &config.Error{File: dev.File, Line: dev.Line, Field: fmt.Sprintf("device %s: endpoint", dev.Name), Msg: fmt.Sprintf("want host or host:port such as 10.0.0.5:44818, got %q", dev.Endpoint)})
	}
	s.host = net.JoinHostPort(host, port)
	switch {
	case c.Slot != nil && c.Path != "":
		at("path", "give slot or path, not both")
	case c.Path != "":
		p, err := gologix.ParsePath(c.Path)
		if err != nil {
			at("path", "want a route such as \"1,0\" (port, link, ...): %v", err)
			break
		}
		s.route = p.Bytes()
		if len(s.route)%2 == 1 {
			s.route = append(s.route, 0)
		}
	default:
		slot := 0
		if c.Slot != nil {
			slot = *c.Slot
		}
		if slot < 0 || slot > 255 {
			at("slot", "want a slot number 0-255, got %d", slot)
		}
		s.route = []byte{0x01, byte(slot)}
	}
	seen := map[int]bool{}
	for i, m := range c.Modules {
		if m < 0 || m > 255 {
			at(fmt.Sprintf("modules[%d]", i), "want a slot number 0-255, got %d", m)
		}
		if seen[m] {
			at(fmt.Sprintf("modules[%d]", i), "slot %d listed twice", m)
		}
		seen[m] = true
	}
	if c.AuditValueTag != "" {
		if _, err := tagPath(c.AuditValueTag); err != nil || strings.HasPrefix(c.AuditValueTag, "Program:") {
			at("audit_value_tag", "want the name of a controller-scoped LINT tag, got %q", c.AuditValueTag)
		}
	}
	names := map[string]bool{}
	for i, sp := range c.Setpoints {
		f := fmt.Sprintf("setpoints[%d]", i)
		p, err := tagPath(sp.Tag)
		switch {
		case sp.Tag == "":
			at(f+".tag", "missing: want a tag path such as \"TankHighLimit\" or \"Program:Main.SP\"")
		case err != nil:
			at(f+".tag", "want a tag path such as \"TankHighLimit\" or \"Program:Main.SP\": %v", err)
		}
		s.paths = append(s.paths, p)
		if sp.Type != "" && !validType(sp.Type) {
			at(f+".type", "want an atomic Logix type (BOOL, SINT, INT, DINT, LINT, USINT, UINT, UDINT, ULINT, REAL, LREAL, BYTE, WORD, DWORD, LWORD) or STRING, got %q", sp.Type)
		}
		if sp.Length < 0 || sp.Length > 65535 {
			at(f+".length", "want the DATA length of a custom string type, 1-65535, got %d", sp.Length)
		}
		if sp.Length > 0 && sp.Type != "" && !strings.EqualFold(sp.Type, "STRING") {
			at(f+".length", "a length is for a string type: set type: STRING or leave type out")
		}
		if sp.Deadband < 0 {
			at(f+".deadband", "want a number >= 0, got %v", sp.Deadband)
		}
		if names[sp.itemName()] {
			at(f+".name", "setpoint %q is listed twice", sp.itemName())
		}
		names[sp.itemName()] = true
	}
	if !on(c.TagDatabase) && (c.Programs != nil && *c.Programs || c.Templates != nil && *c.Templates) {
		at("tag_database", "programs and templates are read with the tag database: turn tag_database on or them off")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func validType(t string) bool {
	for _, n := range atomicNames() {
		if strings.EqualFold(n, t) {
			return true
		}
	}
	return false
}

// sections names what the tag-database read covers, for carry-forward.
func (s *settings) sections() string {
	if !on(s.TagDatabase) {
		return "none"
	}
	parts := []string{"tags"}
	if on(s.Programs) {
		parts = append(parts, "programs")
	}
	if on(s.Templates) {
		parts = append(parts, "templates")
	}
	return strings.Join(parts, ",")
}
