package s7

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/encoding/charmap"
)

// Scenario is the program and identity of one simulated CPU: what an
// engineer would have downloaded to it. Load one from YAML with
// LoadScenario or ParseScenario, or build it in Go.
type Scenario struct {
	// Name labels the scenario in logs.
	Name string `yaml:"name"`
	// Profile is "s7-300" (default), "s7-400" or "s7-1500". It sets the
	// defaults for PDUSize and Slot, and an S7-1500 refuses block functions.
	Profile string `yaml:"profile"`
	// PDUSize is the largest PDU the CPU accepts in Setup Communication
	// (240 on an S7-300, 480 on an S7-400, 960 on an S7-1500).
	PDUSize int `yaml:"pdu_size"`
	// Rack and Slot are where the CPU sits; connections must address them.
	Rack int `yaml:"rack"`
	Slot int `yaml:"slot"`
	// CPU is the CPU's identity (SZL 0x0011 and 0x001C).
	CPU CPU `yaml:"cpu"`
	// Mode is the operating mode: RUN, STOP, STARTUP, HOLD, ... (see Modes).
	Mode string `yaml:"mode"`
	// Protection is the protection level and key switch (SZL 0x0232).
	Protection Protection `yaml:"protection"`
	// Blocks is the program: OBs, FBs, FCs, DBs, SDBs, SFCs and SFBs.
	Blocks []Block `yaml:"blocks"`
	// Modules is the central rack's configuration (SZL 0x0D91).
	Modules []Module `yaml:"modules"`
	// RefuseBlockFunctions makes the CPU answer block list and block info
	// requests with "function not available", as S7-1200/1500 CPUs do.
	// Defaults to true for the s7-1500 profile.
	RefuseBlockFunctions *bool `yaml:"refuse_block_functions"`
	// UnsupportedSZL lists SZL ids the CPU answers with "invalid SZL ID".
	UnsupportedSZL []int `yaml:"unsupported_szl"`
	// NoPutGet makes the CPU refuse every Read Var with "function not
	// available" (0x8104 in the job header), as an S7-1200/1500 does while
	// its protection settings do not permit PUT/GET access from remote
	// partners (TIA Portal's default).
	NoPutGet bool `yaml:"no_put_get"`
}

// CPU is the identity a CPU reports.
type CPU struct {
	OrderCode       string `yaml:"order_code"`       // "6ES7 315-2EH14-0AB0"
	HardwareVersion int    `yaml:"hardware_version"` // product version of the hardware
	Firmware        string `yaml:"firmware"`         // "V3.2.6"
	BootLoader      string `yaml:"boot_loader"`      // "A32.9.9"; empty: not reported
	ModuleType      string `yaml:"module_type"`      // "CPU 315-2 PN/DP"
	Serial          string `yaml:"serial"`
	ASName          string `yaml:"as_name"`     // name of the automation system (station)
	ModuleName      string `yaml:"module_name"` // name of the CPU in the project
	PlantID         string `yaml:"plant_id"`
	Copyright       string `yaml:"copyright"`
	MemoryCard      string `yaml:"memory_card_serial"`
	Location        string `yaml:"location"`
}

// Protection is what SZL 0x0232 index 4 reports.
type Protection struct {
	// Level is the protection level in force (sch_rel): 1 none, 2 write
	// protection, 3 read/write protection.
	Level int `yaml:"level"`
	// SwitchLevel is the level set with the mode selector (sch_schal).
	SwitchLevel int `yaml:"switch_level"`
	// ParamLevel is the level set in the parameters (sch_par), 0 = no password.
	ParamLevel int `yaml:"param_level"`
	// KeySwitch is the mode selector: RUN, RUN-P, STOP or MRES ("" = unknown).
	KeySwitch string `yaml:"key_switch"`
}

// Block is one program block. Code blocks carry their MC7 code, data blocks
// their initial values; the checksum, sizes and load size are derived.
type Block struct {
	// Type is OB, FB, FC, DB, SDB, SFC or SFB.
	Type string `yaml:"type"`
	// Number is the block number. In YAML, Numbers ("1-20" or "1,5,7")
	// expands one entry into several blocks.
	Number  int    `yaml:"number"`
	Numbers string `yaml:"numbers,omitempty"`
	// Language is STL, LAD, FBD, SCL, DB, GRAPH or SDB; default by type.
	Language string `yaml:"language"`
	Name     string `yaml:"name"`
	Family   string `yaml:"family"`
	Author   string `yaml:"author"`
	// Version is "major.minor", each 0-15.
	Version string `yaml:"version"`
	// Code is the block body (MC7 code, or a DB's initial values) in hex.
	// Empty: Size bytes are generated from the type, number and Seed.
	Code string `yaml:"code"`
	Size int    `yaml:"size"`
	Seed string `yaml:"seed"`
	// Values sets typed initial values inside a DB's body.
	Values []Value `yaml:"values"`
	// LocalData is the local data size in bytes.
	LocalData int `yaml:"local_data"`
	// CodeTime and InterfaceTime are the block's timestamps (millisecond
	// precision on the wire). Zero: a fixed date derived from the number.
	CodeTime      time.Time `yaml:"code_time"`
	InterfaceTime time.Time `yaml:"interface_time"`
	// KnowHowProtected marks a block whose code is protected.
	KnowHowProtected bool `yaml:"know_how_protected"`

	body []byte // resolved body
}

// Value is a typed value at a byte offset of a DB.
type Value struct {
	Offset int    `yaml:"offset"`
	Bit    int    `yaml:"bit"`
	Type   string `yaml:"type"` // BOOL, BYTE, CHAR, INT, WORD, DINT, DWORD, REAL, LREAL, STRING, WSTRING
	Value  string `yaml:"value"`
	Length int    `yaml:"length"` // STRING, WSTRING: maximum length in characters
}

// Module is one module of the central rack.
type Module struct {
	Rack int    `yaml:"rack"`
	Slot int    `yaml:"slot"`
	Name string `yaml:"name"`
	// TypeID is the module type identifier the CPU reads from the module;
	// ExpectedTypeID is the configured one (default: TypeID).
	TypeID         int `yaml:"type_id"`
	ExpectedTypeID int `yaml:"expected_type_id"`
	// LogicalAddress is the module's start address.
	LogicalAddress int `yaml:"logical_address"`
	// Absent marks a configured module that is not plugged.
	Absent bool `yaml:"absent"`
	// S7 modules (CPs, FMs) accept S7 connections on their own rack/slot and
	// answer SZL 0x0011 with their own order code and firmware.
	S7              bool   `yaml:"s7"`
	OrderCode       string `yaml:"order_code"`
	Firmware        string `yaml:"firmware"`
	HardwareVersion int    `yaml:"hardware_version"`
}

// Block type letters and their codes on the wire.
var blockTypeCodes = sync.OnceValue(func() map[string]byte {
	return map[string]byte{"OB": 0x38, "DB": 0x41, "SDB": 0x42, "FC": 0x43, "SFC": 0x44, "FB": 0x45, "SFB": 0x46}
})

// blockSubTypes are the sub-block type codes block info reports.
var blockSubTypes = sync.OnceValue(func() map[string]byte {
	return map[string]byte{"OB": 0x08, "DB": 0x0A, "SDB": 0x0B, "FC": 0x0C, "SFC": 0x0D, "FB": 0x0E, "SFB": 0x0F}
})

// blockTypeOrder is the order "list all blocks" reports types in.
var blockTypeOrder = []string{"OB", "FB", "FC", "DB", "SDB", "SFC", "SFB"}

var languageCodes = sync.OnceValue(func() map[string]byte {
	return map[string]byte{"STL": 0x01, "LAD": 0x02, "FBD": 0x03, "SCL": 0x04, "DB": 0x05, "GRAPH": 0x06, "SDB": 0x07}
})

// Modes maps the mode names a scenario may use to the SZL 0x0424 mode ids.
var Modes = map[string]byte{
	"STOP_UPDATE": 0x1, "STOP_RESET": 0x2, "STOP_INIT": 0x3, "STOP": 0x4,
	"STARTUP": 0x5, "STARTUP_COLD": 0x6, "RESTART": 0x7, "RUN": 0x8,
	"HOLD": 0xA, "DEFECT": 0xD,
}

var keySwitches = sync.OnceValue(func() map[string]uint16 {
	return map[string]uint16{"": 0, "RUN": 1, "RUN-P": 2, "STOP": 3, "MRES": 4}
})

// LoadScenario reads a scenario from a YAML file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	return ParseScenario(path, b)
}

// ParseScenario decodes and validates scenario YAML; name is used in errors.
// Unknown keys are errors.
func ParseScenario(name string, b []byte) (*Scenario, error) {
	var sc Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	if err := sc.expand(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return &sc, nil
}

// expand turns "numbers:" entries into one block per number.
func (sc *Scenario) expand() error {
	var out []Block
	for i, b := range sc.Blocks {
		if b.Numbers == "" {
			out = append(out, b)
			continue
		}
		nums, err := parseNumbers(b.Numbers)
		if err != nil {
			return fmt.Errorf("blocks[%d].numbers: %w", i, err)
		}
		for _, n := range nums {
			c := b
			c.Numbers, c.Number = "", n
			out = append(out, c)
		}
	}
	sc.Blocks = out
	return nil
}

func parseNumbers(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("want numbers such as \"1-20\" or \"1,5,7\", got %q", s)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil || z < a {
				return nil, fmt.Errorf("want a range low-high, got %q", part)
			}
		}
		for n := a; n <= z; n++ {
			out = append(out, n)
		}
	}
	return out, nil
}

// Validate fills in defaults and checks the scenario. It resolves every
// block's body. It is idempotent.
func (sc *Scenario) Validate() error {
	switch sc.Profile {
	case "":
		sc.Profile = "s7-300"
	case "s7-300", "s7-400", "s7-1500":
	default:
		return fmt.Errorf("profile %q: want s7-300, s7-400 or s7-1500", sc.Profile)
	}
	if sc.PDUSize == 0 {
		sc.PDUSize = map[string]int{"s7-300": 240, "s7-400": 480, "s7-1500": 960}[sc.Profile]
	}
	if sc.PDUSize < 240 || sc.PDUSize > 960 {
		return fmt.Errorf("pdu_size %d: want 240 to 960", sc.PDUSize)
	}
	if sc.Slot == 0 {
		sc.Slot = 2
		if sc.Profile == "s7-1500" {
			sc.Slot = 1
		}
	}
	if sc.Rack < 0 || sc.Rack > 7 || sc.Slot < 0 || sc.Slot > 31 {
		return fmt.Errorf("rack %d slot %d: want rack 0-7 and slot 0-31", sc.Rack, sc.Slot)
	}
	if sc.RefuseBlockFunctions == nil {
		v := sc.Profile == "s7-1500"
		sc.RefuseBlockFunctions = &v
	}
	if sc.Mode == "" {
		sc.Mode = "RUN"
	}
	if _, ok := Modes[sc.Mode]; !ok {
		return fmt.Errorf("mode %q: want one of %s", sc.Mode, strings.Join(sortedKeys(Modes), ", "))
	}
	if err := sc.Protection.validate(); err != nil {
		return err
	}
	if err := checkVersion(sc.CPU.Firmware, "cpu.firmware"); err != nil {
		return err
	}
	if sc.CPU.BootLoader != "" {
		if err := checkVersion(sc.CPU.BootLoader, "cpu.boot_loader"); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i := range sc.Blocks {
		b := &sc.Blocks[i]
		if err := b.resolve(); err != nil {
			return fmt.Errorf("blocks[%d]: %w", i, err)
		}
		k := b.Key()
		if seen[k] {
			return fmt.Errorf("blocks[%d]: %s is defined twice", i, k)
		}
		seen[k] = true
	}
	slots := map[[2]int]bool{}
	for i := range sc.Modules {
		m := &sc.Modules[i]
		if m.Rack < 0 || m.Rack > 7 || m.Slot < 0 || m.Slot > 31 {
			return fmt.Errorf("modules[%d]: rack %d slot %d out of range", i, m.Rack, m.Slot)
		}
		if slots[[2]int{m.Rack, m.Slot}] {
			return fmt.Errorf("modules[%d]: rack %d slot %d is used twice", i, m.Rack, m.Slot)
		}
		slots[[2]int{m.Rack, m.Slot}] = true
		if m.ExpectedTypeID == 0 {
			m.ExpectedTypeID = m.TypeID
		}
		if m.S7 {
			if err := checkVersion(m.Firmware, fmt.Sprintf("modules[%d].firmware", i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Protection) validate() error {
	if p.Level == 0 {
		p.Level = 1
	}
	if p.SwitchLevel == 0 {
		p.SwitchLevel = 1
	}
	if p.Level < 1 || p.Level > 3 || p.SwitchLevel < 1 || p.SwitchLevel > 3 || p.ParamLevel < 0 || p.ParamLevel > 3 {
		return fmt.Errorf("protection: levels %d/%d/%d: want 1-3 (param_level 0-3)", p.Level, p.SwitchLevel, p.ParamLevel)
	}
	if _, ok := keySwitches()[p.KeySwitch]; !ok {
		return fmt.Errorf("protection.key_switch %q: want RUN, RUN-P, STOP or MRES", p.KeySwitch)
	}
	return nil
}

// checkVersion accepts "V3.2.6"-style versions: a letter then three numbers 0-255.
func checkVersion(v, field string) error {
	if _, _, _, _, err := parseVersion(v); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func parseVersion(v string) (letter byte, a, b, c byte, err error) {
	if len(v) < 2 || v[0] < 'A' || v[0] > 'Z' {
		return 0, 0, 0, 0, fmt.Errorf("version %q: want a letter and three numbers such as \"V3.2.6\"", v)
	}
	parts := strings.Split(v[1:], ".")
	if len(parts) != 3 {
		return 0, 0, 0, 0, fmt.Errorf("version %q: want a letter and three numbers such as \"V3.2.6\"", v)
	}
	var n [3]byte
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || x > 255 {
			return 0, 0, 0, 0, fmt.Errorf("version %q: want numbers 0-255", v)
		}
		n[i] = byte(x)
	}
	return v[0], n[0], n[1], n[2], nil
}

// Key returns the block's name, such as "OB1".
func (b *Block) Key() string { return b.Type + strconv.Itoa(b.Number) }

// Body returns the block's resolved body (MC7 code or DB initial values).
func (b *Block) Body() []byte { return b.body }

// Checksum is the 16-bit checksum the simulated CPU reports for the block:
// a CRC-16/CCITT over the body (real CPUs use their own function).
func (b *Block) Checksum() uint16 { return crc16(b.body) }

// resolve checks the block and computes its body.
func (b *Block) resolve() error {
	if _, ok := blockTypeCodes()[b.Type]; !ok {
		return fmt.Errorf("type %q: want OB, FB, FC, DB, SDB, SFC or SFB", b.Type)
	}
	if b.Number < 0 || b.Number > 65535 {
		return fmt.Errorf("%s number %d: want 0-65535", b.Type, b.Number)
	}
	if b.Language == "" {
		b.Language = map[string]string{"DB": "DB", "SDB": "SDB"}[b.Type]
		if b.Language == "" {
			b.Language = "STL"
		}
	}
	if _, ok := languageCodes()[b.Language]; !ok {
		return fmt.Errorf("%s: language %q: want STL, LAD, FBD, SCL, DB, GRAPH or SDB", b.Key(), b.Language)
	}
	if b.Version == "" {
		b.Version = "0.1"
	}
	if _, err := versionByte(b.Version); err != nil {
		return fmt.Errorf("%s: %w", b.Key(), err)
	}
	for _, s := range []string{b.Name, b.Family, b.Author} {
		if len(s) > 8 {
			return fmt.Errorf("%s: name, family and author are at most 8 characters, got %q", b.Key(), s)
		}
	}
	switch {
	case b.Code != "":
		body, err := hex.DecodeString(strings.ReplaceAll(b.Code, " ", ""))
		if err != nil {
			return fmt.Errorf("%s: code: want hex bytes: %v", b.Key(), err)
		}
		b.body = body
	case b.body != nil && b.Size == 0:
		// Already resolved (Validate is idempotent).
	default:
		size := b.Size
		if size == 0 {
			size = 64
		}
		if size > 65535 {
			return fmt.Errorf("%s: size %d: want at most 65535", b.Key(), size)
		}
		if b.Type == "DB" {
			b.body = make([]byte, size)
		} else {
			b.body = generate(b.Type, b.Number, b.Seed, size)
		}
	}
	if len(b.body) > 65535 {
		return fmt.Errorf("%s: body of %d bytes: want at most 65535", b.Key(), len(b.body))
	}
	for i, v := range b.Values {
		if b.Type != "DB" {
			return fmt.Errorf("%s: values are for DBs only", b.Key())
		}
		if err := putValue(b.body, v); err != nil {
			return fmt.Errorf("%s: values[%d]: %w", b.Key(), i, err)
		}
	}
	b.Values = nil
	b.Code, b.Size = "", 0
	if b.CodeTime.IsZero() {
		b.CodeTime = defaultTime(b)
	}
	if b.InterfaceTime.IsZero() {
		b.InterfaceTime = b.CodeTime.Add(-time.Hour)
	}
	if b.LocalData == 0 && (b.Type == "FC" || b.Type == "FB" || b.Type == "OB") {
		b.LocalData = 20 + b.Number%7*2
	}
	return nil
}

// defaultTime is a deterministic timestamp with milliseconds.
func defaultTime(b *Block) time.Time {
	base := time.Date(2024, 3, 12, 8, 15, 0, 0, time.UTC)
	return base.Add(time.Duration(b.Number)*time.Minute + time.Duration(int(blockTypeCodes()[b.Type])*7+b.Number%1000)*time.Millisecond)
}

// generate returns size deterministic pseudo-random bytes for a code block.
func generate(typ string, num int, seed string, size int) []byte {
	out := make([]byte, 0, size+32)
	for i := 0; len(out) < size; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s%d/%s/%d", typ, num, seed, i)))
		out = append(out, h[:]...)
	}
	return out[:size]
}

func versionByte(v string) (byte, error) {
	a, b, ok := strings.Cut(v, ".")
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || x < 0 || x > 15 || y < 0 || y > 15 {
		return 0, fmt.Errorf("version %q: want major.minor, each 0-15", v)
	}
	return byte(x<<4 | y), nil
}

// putValue writes a typed value into a DB body.
func putValue(body []byte, v Value) error {
	size := map[string]int{"BOOL": 1, "BYTE": 1, "CHAR": 1, "INT": 2, "WORD": 2, "DINT": 4, "DWORD": 4, "REAL": 4, "LREAL": 8}[v.Type]
	switch v.Type {
	case "STRING":
		if v.Length <= 0 || v.Length > 254 {
			return fmt.Errorf("STRING needs a length of 1-254")
		}
		size = v.Length + 2
	case "WSTRING":
		if v.Length <= 0 || v.Length > 16382 {
			return fmt.Errorf("WSTRING needs a length of 1-16382")
		}
		size = 2*v.Length + 4
	}
	if size == 0 {
		return fmt.Errorf("type %q: want BOOL, BYTE, CHAR, INT, WORD, DINT, DWORD, REAL, LREAL, STRING or WSTRING", v.Type)
	}
	if v.Offset < 0 || v.Offset+size > len(body) {
		return fmt.Errorf("offset %d (+%d bytes) is outside the DB's %d bytes", v.Offset, size, len(body))
	}
	p := body[v.Offset:]
	switch v.Type {
	case "BOOL":
		if v.Bit < 0 || v.Bit > 7 {
			return fmt.Errorf("bit %d: want 0-7", v.Bit)
		}
		on, err := strconv.ParseBool(v.Value)
		if err != nil {
			return fmt.Errorf("BOOL value %q: want true or false", v.Value)
		}
		p[0] &^= 1 << v.Bit
		if on {
			p[0] |= 1 << v.Bit
		}
	case "STRING", "CHAR":
		// S7 text is Windows-1252, one byte per character.
		b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(v.Value))
		if err != nil {
			return fmt.Errorf("%s value %q: a character has no Windows-1252 byte", v.Type, v.Value)
		}
		if v.Type == "CHAR" {
			if len(b) != 1 {
				return fmt.Errorf("CHAR value %q: want one character", v.Value)
			}
			p[0] = b[0]
			break
		}
		if len(b) > v.Length {
			return fmt.Errorf("STRING value longer than its length %d", v.Length)
		}
		p[0], p[1] = byte(v.Length), byte(len(b))
		copy(p[2:], b)
	case "WSTRING":
		// UTF-16BE: maximum and current length in characters (2 bytes each).
		u := utf16.Encode([]rune(v.Value))
		if len(u) > v.Length {
			return fmt.Errorf("WSTRING value longer than its length %d", v.Length)
		}
		binary.BigEndian.PutUint16(p, uint16(v.Length))
		binary.BigEndian.PutUint16(p[2:], uint16(len(u)))
		for i, c := range u {
			binary.BigEndian.PutUint16(p[4+2*i:], c)
		}
	case "REAL", "LREAL":
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			return fmt.Errorf("%s value %q: want a number", v.Type, v.Value)
		}
		if v.Type == "REAL" {
			PutReal(p, float32(f))
		} else {
			binary.BigEndian.PutUint64(p, math.Float64bits(f))
		}
	default:
		n, err := strconv.ParseInt(v.Value, 0, 64)
		if err != nil {
			return fmt.Errorf("%s value %q: want an integer", v.Type, v.Value)
		}
		switch size {
		case 1:
			p[0] = byte(n)
		case 2:
			binary.BigEndian.PutUint16(p, uint16(n))
		case 4:
			binary.BigEndian.PutUint32(p, uint32(n))
		}
	}
	return nil
}

// Clone returns a deep copy of the scenario.
func (sc *Scenario) Clone() *Scenario {
	c := *sc
	c.Blocks = make([]Block, len(sc.Blocks))
	for i, b := range sc.Blocks {
		b.body = append([]byte(nil), b.body...)
		c.Blocks[i] = b
	}
	c.Modules = append([]Module(nil), sc.Modules...)
	c.UnsupportedSZL = append([]int(nil), sc.UnsupportedSZL...)
	if sc.RefuseBlockFunctions != nil {
		v := *sc.RefuseBlockFunctions
		c.RefuseBlockFunctions = &v
	}
	return &c
}

//go:embed testdata/demo.yaml
var demoYAML []byte

// DemoScenario returns the demo program: an S7-300 (PDU 240) running a
// tank-farm program of 60 OBs, FBs, FCs and DBs plus SDBs and system
// blocks, with setpoints in DB10 (see testdata/demo.yaml).
func DemoScenario() *Scenario {
	sc, err := ParseScenario("demo.yaml", demoYAML)
	if err != nil {
		panic("s7 simulator: embedded demo scenario: " + err.Error())
	}
	return sc
}

func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
