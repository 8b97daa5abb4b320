package logix

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Scenario is what a simulated controller holds: its identity, mode, tag
// database, programs, structures, chassis modules and values. Load one from
// YAML with LoadScenario or take the built-in Demo.
type Scenario struct {
	Identity Identity `yaml:"identity"`
	// Slot is the controller's slot in the chassis (backplane port 1).
	Slot int `yaml:"slot"`
	// Mode is "RUN", "PROG", "REM RUN" or "REM PROG" (default "REM RUN").
	Mode string `yaml:"mode"`
	// Fault is "none" (default), "minor recoverable", "minor unrecoverable",
	// "major recoverable" or "major unrecoverable".
	Fault string `yaml:"fault"`
	// ControllerProperties are the initial values of the controller
	// properties object (class 0xAC instance 1), attributes 1, 2, 3, 4 and
	// 10: the ones 1756-PM020 documents for change detection. Others are
	// not served.
	ControllerProperties map[uint16]uint32 `yaml:"controller_properties"`
	// AuditTag names a LINT tag that the controller's logic fills with the
	// change-detection AuditValue (a GSV in a routine); BumpAuditValue
	// moves it, as a download or online edit would.
	AuditTag string       `yaml:"audit_tag"`
	UDTs     []UDT        `yaml:"udts"`
	Tags     []TagDef     `yaml:"tags"`
	Programs []ProgramDef `yaml:"programs"`
	Modules  []Module     `yaml:"modules"`
}

// TagDef declares a tag and its initial value: a number or bool for an
// atomic scalar, a list for an array, a map of member names for a UDT.
type TagDef struct {
	Name  string `yaml:"name"`
	Type  string `yaml:"type"`
	Dims  []int  `yaml:"dims,omitempty"`
	Value any    `yaml:"value,omitempty"`
}

// ProgramDef declares a program and its program-scoped tags.
type ProgramDef struct {
	Name string   `yaml:"name"`
	Tags []TagDef `yaml:"tags"`
}

// Module is a module in the chassis, reached through the backplane (port 1)
// at its slot.
type Module struct {
	Slot     int `yaml:"slot"`
	Identity `yaml:",inline"`
}

// LoadScenario reads a scenario file. Unknown keys are errors; errors name
// the file and line.
func LoadScenario(file string) (*Scenario, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	return ParseScenario(file, b)
}

// ParseScenario decodes scenario YAML; name is used in error messages.
func ParseScenario(name string, b []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: scenario is empty: want a mapping with identity, tags and programs", name)
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if _, err := newController(&sc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &sc, nil
}

// Demo returns the built-in demo scenario: a 1756-L83E in slot 0 of a
// chassis with an EN2T, an input and an output module; 24 UDTs (some
// nested, some with BOOL members), 8 programs and over 500 tags, a LINT tag
// that logic fills with the AuditValue, and a few setpoint tags with values.
func Demo() *Scenario {
	sc := &Scenario{
		Identity: Identity{Vendor: 1, DeviceType: 14, ProductCode: 166, Revision: "33.11", Serial: 0x00C0FFEE, ProductName: "1756-L83E/B"},
		Slot:     0,
		Mode:     "REM RUN",
		Fault:    "none",
		ControllerProperties: map[uint16]uint32{
			1: 4, 2: 2, 3: 1021, 4: 377, 10: 90210,
		},
		AuditTag: "PlcwatchAuditValue",
		Modules: []Module{
			{Slot: 1, Identity: Identity{Vendor: 1, DeviceType: 12, ProductCode: 166, Revision: "11.2", Serial: 0x00A1B2C3, ProductName: "1756-EN2T/D"}},
			{Slot: 2, Identity: Identity{Vendor: 1, DeviceType: 7, ProductCode: 10, Revision: "3.4", Serial: 0x00D4E5F6, ProductName: "1756-IB16/A"}},
			{Slot: 3, Identity: Identity{Vendor: 1, DeviceType: 7, ProductCode: 12, Revision: "3.6", Serial: 0x00A7B8C9, ProductName: "1756-OB16E/A"}},
		},
	}
	sc.UDTs = append(sc.UDTs,
		UDT{Name: "PID_Gains", Members: []Member{{Name: "Kp", Type: "REAL"}, {Name: "Ki", Type: "REAL"}, {Name: "Kd", Type: "REAL"}}},
		UDT{Name: "Motor", Members: []Member{{Name: "Running", Type: "BOOL"}, {Name: "Fault", Type: "BOOL"}, {Name: "Speed", Type: "REAL"}, {Name: "Starts", Type: "DINT"}, {Name: "Hours", Type: "LREAL"}}},
		UDT{Name: "Valve", Members: []Member{{Name: "Open", Type: "BOOL"}, {Name: "Closed", Type: "BOOL"}, {Name: "Cmd", Type: "BOOL"}, {Name: "TravelTime", Type: "DINT"}}},
		UDT{Name: "Alarm", Members: []Member{{Name: "Active", Type: "BOOL"}, {Name: "Acked", Type: "BOOL"}, {Name: "Limit", Type: "REAL"}, {Name: "Delay", Type: "DINT"}}},
		UDT{Name: "Loop", Members: []Member{{Name: "SP", Type: "REAL"}, {Name: "PV", Type: "REAL"}, {Name: "CV", Type: "REAL"}, {Name: "Gains", Type: "PID_Gains"}, {Name: "HiAlarm", Type: "Alarm"}, {Name: "LoAlarm", Type: "Alarm"}}},
	)
	for i := 1; len(sc.UDTs) < 24; i++ {
		sc.UDTs = append(sc.UDTs, UDT{Name: fmt.Sprintf("Recipe%02d", i), Members: []Member{
			{Name: "Step", Type: "DINT"}, {Name: "Enable", Type: "BOOL"}, {Name: "Target", Type: "REAL"},
			{Name: "Times", Type: "DINT", Dim: i%4 + 2}, {Name: "Batch", Type: "INT"}, {Name: "Gains", Type: "PID_Gains"},
		}})
	}
	sc.Tags = append(sc.Tags,
		TagDef{Name: "PlcwatchAuditValue", Type: "LINT", Value: 6148914691236517205},
		TagDef{Name: "TankHighLimit", Type: "REAL", Value: 92.5},
		TagDef{Name: "TankLowLimit", Type: "REAL", Value: 7.5},
		TagDef{Name: "PumpStartDelay", Type: "DINT", Value: 3000},
		TagDef{Name: "FlowLoop", Type: "Loop", Value: map[string]any{"SP": 40.0, "Gains": map[string]any{"Kp": 1.2, "Ki": 0.3, "Kd": 0.0}}},
		TagDef{Name: "Motors", Type: "Motor", Dims: []int{8}},
		TagDef{Name: "Valves", Type: "Valve", Dims: []int{12}},
		TagDef{Name: "Lookup", Type: "REAL", Dims: []int{4, 8}},
	)
	atomicTypes := []string{"DINT", "REAL", "BOOL", "INT", "SINT", "LINT", "LREAL", "UDINT"}
	for i := 0; len(sc.Tags) < 300; i++ {
		t := atomicTypes[i%len(atomicTypes)]
		sc.Tags = append(sc.Tags, TagDef{Name: fmt.Sprintf("Area%d_%s_%03d", i%5+1, t, i), Type: t})
	}
	for i := 5; i < len(sc.UDTs); i++ {
		sc.Tags = append(sc.Tags, TagDef{Name: "Recipe_" + sc.UDTs[i].Name, Type: sc.UDTs[i].Name})
	}
	for p := 1; p <= 8; p++ {
		pd := ProgramDef{Name: fmt.Sprintf("Line%d", p)}
		for j := 0; j < 28; j++ {
			t := atomicTypes[(p+j)%len(atomicTypes)]
			pd.Tags = append(pd.Tags, TagDef{Name: fmt.Sprintf("Local_%s_%02d", t, j), Type: t})
		}
		pd.Tags = append(pd.Tags, TagDef{Name: "Conveyor", Type: "Motor"}, TagDef{Name: "Level", Type: "Loop"})
		sc.Programs = append(sc.Programs, pd)
	}
	return sc
}
