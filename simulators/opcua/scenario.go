package opcua

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Scenario is the simulated controller: its identity and its address space.
// Load one from YAML with LoadScenario or ParseScenario, or use
// DefaultScenario.
type Scenario struct {
	// Namespace is the URI of the simulator's own namespace (index 1).
	Namespace string     `yaml:"namespace"`
	Identity  Identity   `yaml:"identity"`
	Nodes     []NodeSpec `yaml:"nodes"`
}

// Identity is what the server reports in BuildInfo and its endpoints.
type Identity struct {
	ApplicationName string `yaml:"application_name"`
	ApplicationURI  string `yaml:"application_uri"`
	Manufacturer    string `yaml:"manufacturer"`
	Product         string `yaml:"product"`
	ProductURI      string `yaml:"product_uri"`
	SoftwareVersion string `yaml:"software_version"`
	BuildNumber     string `yaml:"build_number"`
	// BuildDate is reported in BuildInfo; it stays the same across restarts
	// as a real server's does (default 2026-01-15T00:00:00Z).
	BuildDate time.Time `yaml:"build_date"`
}

// DefaultBuildDate is the BuildDate of a scenario that gives none.
var DefaultBuildDate = time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)

// NodeSpec is one node and its children. A node with Type is a variable, a
// node with Program is a program (POU) object with CodeHash, Version and
// Language properties, and any other node is an object (a folder when
// Folder is set).
type NodeSpec struct {
	// Name is the browse name; it must not contain '/' or '.'.
	Name   string `yaml:"name"`
	Folder bool   `yaml:"folder"`
	// Type is the variable's data type: Boolean, Int16, Int32, Int64,
	// UInt16, UInt32, UInt64, Float, Double, String or DateTime.
	Type  string `yaml:"type"`
	Value any    `yaml:"value"`
	// Writable gives the variable CurrentWrite in its AccessLevel (clients
	// are still refused: the simulator serves no Write).
	Writable bool `yaml:"writable"`
	// Unit adds an EngineeringUnits property.
	Unit string `yaml:"unit"`
	// Live makes the value move by itself around Value.
	Live     *Live      `yaml:"live"`
	Program  *Program   `yaml:"program"`
	Children []NodeSpec `yaml:"children"`
}

// Live describes a process value that changes by itself: a sine of the
// given amplitude and period around the node's value (numeric types), or a
// toggle every period (Boolean).
type Live struct {
	Amplitude float64       `yaml:"amplitude"`
	Period    time.Duration `yaml:"period"`
}

// Program is a program organisation unit's downloadable content.
type Program struct {
	Language string `yaml:"language"`
	Version  string `yaml:"version"`
	// Code is the program text; the server exposes its SHA-256 as CodeHash.
	Code string `yaml:"code"`
}

var dataTypes = sync.OnceValue(func() map[string]bool {
	return map[string]bool{
		"Boolean": true, "Int16": true, "Int32": true, "Int64": true, "UInt16": true, "UInt32": true,
		"UInt64": true, "Float": true, "Double": true, "String": true, "DateTime": true,
	}
})

// LoadScenario reads a scenario from a YAML file.
func LoadScenario(file string) (*Scenario, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", file, err)
	}
	return sc, nil
}

// ParseScenario decodes and checks a YAML scenario. Unknown keys are errors.
func ParseScenario(b []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("decoding YAML: %w", err)
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Validate checks names, types and values, and fills in defaults.
func (sc *Scenario) Validate() error {
	if sc.Namespace == "" {
		sc.Namespace = "urn:plcwatch:sim:plant"
	}
	id := &sc.Identity
	def := DefaultScenario().Identity
	for _, f := range []struct {
		v *string
		d string
	}{
		{&id.ApplicationName, def.ApplicationName}, {&id.ApplicationURI, def.ApplicationURI},
		{&id.Manufacturer, def.Manufacturer}, {&id.Product, def.Product}, {&id.ProductURI, def.ProductURI},
		{&id.SoftwareVersion, def.SoftwareVersion},
	} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
	if id.BuildDate.IsZero() {
		id.BuildDate = DefaultBuildDate
	}
	if len(sc.Nodes) == 0 {
		return fmt.Errorf("nodes: want at least one node")
	}
	var check func(parent string, ns []NodeSpec) error
	check = func(parent string, ns []NodeSpec) error {
		seen := map[string]bool{}
		for i := range ns {
			n := &ns[i]
			if n.Name == "" || strings.ContainsAny(n.Name, "/.") {
				return fmt.Errorf("node %d under %q: name: want a name without '/' or '.', got %q", i, parent, n.Name)
			}
			where := "node " + strings.TrimPrefix(parent+"/"+n.Name, "/")
			if seen[n.Name] {
				return fmt.Errorf("%s: the name appears twice under the same parent", where)
			}
			seen[n.Name] = true
			switch {
			case n.Program != nil:
				if n.Type != "" || len(n.Children) > 0 {
					return fmt.Errorf("%s: a program has no type and no children", where)
				}
			case n.Type != "":
				if !dataTypes()[n.Type] {
					return fmt.Errorf("%s: type: want one of Boolean, Int16, Int32, Int64, UInt16, UInt32, UInt64, Float, Double, String, DateTime; got %q", where, n.Type)
				}
				if len(n.Children) > 0 {
					return fmt.Errorf("%s: a variable has no children", where)
				}
				v, err := convert(n.Type, n.Value)
				if err != nil {
					return fmt.Errorf("%s: value: %w", where, err)
				}
				n.Value = v
				if n.Live != nil && n.Live.Period <= 0 {
					return fmt.Errorf("%s: live.period: want a positive duration such as 60s", where)
				}
			default:
				if n.Value != nil || n.Unit != "" || n.Live != nil || n.Writable {
					return fmt.Errorf("%s: value, unit, live and writable need a type", where)
				}
			}
			if err := check(strings.TrimPrefix(parent+"/"+n.Name, "/"), n.Children); err != nil {
				return err
			}
		}
		return nil
	}
	return check("", sc.Nodes)
}

// convert turns a YAML or Go value into the Go type gopcua encodes for the
// OPC UA data type t.
func convert(t string, v any) (any, error) {
	switch t {
	case "Boolean":
		if v == nil {
			return false, nil
		}
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want true or false for a Boolean, got %v", v)
		}
		return b, nil
	case "String":
		if v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %v", v)
		}
		return s, nil
	case "DateTime":
		switch x := v.(type) {
		case nil:
			return time.Time{}, nil
		case time.Time:
			return x.UTC(), nil
		case string:
			tm, err := time.Parse(time.RFC3339, x)
			if err != nil {
				return nil, fmt.Errorf("want an RFC 3339 time, got %q", x)
			}
			return tm.UTC(), nil
		}
		return nil, fmt.Errorf("want an RFC 3339 time, got %v", v)
	case "Float", "Double":
		f, ok := number(v)
		if !ok {
			return nil, fmt.Errorf("want a number for a %s, got %v", t, v)
		}
		if t == "Float" {
			return float32(f), nil
		}
		return f, nil
	}
	f, ok := number(v)
	if !ok || f != float64(int64(f)) {
		return nil, fmt.Errorf("want an integer for an %s, got %v", t, v)
	}
	i := int64(f)
	lim := map[string][2]float64{"Int16": {-1 << 15, 1<<15 - 1}, "Int32": {-1 << 31, 1<<31 - 1},
		"Int64": {-1 << 63, 1<<63 - 1}, "UInt16": {0, 1<<16 - 1}, "UInt32": {0, 1<<32 - 1}, "UInt64": {0, 1<<64 - 1}}[t]
	if f < lim[0] || f > lim[1] {
		return nil, fmt.Errorf("%v is out of range for an %s", v, t)
	}
	switch t {
	case "Int16":
		return int16(i), nil
	case "Int32":
		return int32(i), nil
	case "Int64":
		return i, nil
	case "UInt16":
		return uint16(i), nil
	case "UInt32":
		return uint32(i), nil
	}
	return uint64(i), nil
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case nil:
		return 0, true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// DefaultScenario is the built-in plant controller used by the demo: a
// water treatment skid with three programs, setpoints (limits, PID gains,
// timers) and live process values.
func DefaultScenario() *Scenario {
	live := func(a float64, p time.Duration) *Live { return &Live{Amplitude: a, Period: p} }
	return &Scenario{
		Namespace: "urn:plcwatch:sim:water-skid",
		Identity: Identity{
			ApplicationName: "Skid-7 Controller OPC UA Server",
			ApplicationURI:  "urn:plcwatch:sim:skid7",
			Manufacturer:    "Northwind Controls",
			Product:         "NC-3100 Process Controller",
			ProductURI:      "urn:northwind:nc3100",
			SoftwareVersion: "4.2.1",
			BuildNumber:     "1187",
		},
		Nodes: []NodeSpec{{
			Name: "Plant", Folder: true,
			Children: []NodeSpec{
				{Name: "Controller", Children: []NodeSpec{
					{Name: "Programs", Folder: true, Children: []NodeSpec{
						{Name: "Main", Program: &Program{Language: "ST", Version: "1.4.0",
							Code: "PROGRAM Main\n  TankControl();\n  PumpSequence();\nEND_PROGRAM\n"}},
						{Name: "TankControl", Program: &Program{Language: "FBD", Version: "2.0.3",
							Code: "FUNCTION_BLOCK TankControl\n  LevelPID(SP := Setpoint, PV := Level);\nEND_FUNCTION_BLOCK\n"}},
						{Name: "PumpSequence", Program: &Program{Language: "SFC", Version: "1.1.7",
							Code: "PROGRAM PumpSequence\n  STEP Start: Pump1.Run := TRUE; END_STEP\nEND_PROGRAM\n"}},
					}},
					{Name: "ScanTime", Type: "Double", Value: 4.0, Unit: "ms", Live: live(0.5, 7*time.Second)},
					// Code identity outside the Programs folder, as many
					// controllers publish it.
					{Name: "ProgramHash", Type: "String", Value: "5e0c7a91d2b4"},
				}},
				{Name: "Tank1", Children: []NodeSpec{
					{Name: "Level", Type: "Double", Value: 2.4, Unit: "m", Live: live(0.3, 60*time.Second)},
					{Name: "Setpoint", Type: "Double", Value: 2.5, Unit: "m", Writable: true},
					{Name: "HighLimit", Type: "Double", Value: 4.5, Unit: "m", Writable: true},
					{Name: "LowLimit", Type: "Double", Value: 0.5, Unit: "m", Writable: true},
					{Name: "HighAlarmEnabled", Type: "Boolean", Value: true, Writable: true},
					{Name: "LevelPID", Children: []NodeSpec{
						{Name: "Kp", Type: "Double", Value: 1.2, Writable: true},
						{Name: "Ti", Type: "Double", Value: 30.0, Unit: "s", Writable: true},
						{Name: "Td", Type: "Double", Value: 0.0, Unit: "s", Writable: true},
						{Name: "Output", Type: "Double", Value: 42.0, Unit: "%", Live: live(5, 20*time.Second)},
					}},
				}},
				{Name: "Pump1", Children: []NodeSpec{
					{Name: "Running", Type: "Boolean", Value: true, Live: live(0, 45*time.Second)},
					{Name: "Speed", Type: "Float", Value: 1450, Unit: "rpm", Live: live(25, 13*time.Second)},
					{Name: "RunHours", Type: "UInt32", Value: 18211, Unit: "h", Live: live(1, time.Hour)},
					{Name: "StartDelay", Type: "UInt32", Value: 5000, Unit: "ms", Writable: true},
					{Name: "MaxSpeed", Type: "Float", Value: 1800, Unit: "rpm", Writable: true},
				}},
				{Name: "Dosing", Children: []NodeSpec{
					{Name: "ChlorineSetpoint", Type: "Double", Value: 0.8, Unit: "mg/L", Writable: true},
					{Name: "ChlorineResidual", Type: "Double", Value: 0.78, Unit: "mg/L", Live: live(0.05, 30*time.Second)},
					{Name: "Recipe", Type: "String", Value: "SUMMER-2026", Writable: true},
				}},
			},
		}},
	}
}

// LargeScenario is a plant of objects x perObject writable Double
// setpoints ("Plant/U007/V042"), for measuring what reading a large
// address space costs: LargeScenario(100, 100) holds 10,000 variables.
func LargeScenario(objects, perObject int) *Scenario {
	sc := DefaultScenario()
	sc.Namespace = "urn:plcwatch:sim:large"
	plant := NodeSpec{Name: "Plant", Folder: true}
	for o := 0; o < objects; o++ {
		obj := NodeSpec{Name: fmt.Sprintf("U%03d", o)}
		for v := 0; v < perObject; v++ {
			obj.Children = append(obj.Children, NodeSpec{Name: fmt.Sprintf("V%03d", v), Type: "Double", Value: float64(o*perObject + v), Writable: true})
		}
		plant.Children = append(plant.Children, obj)
	}
	sc.Nodes = []NodeSpec{plant}
	return sc
}
