package logix

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/plcwatch/plcwatch/snapshots"
)

// identity is the Identity object (class 0x01) of the controller or a
// module.
type identity struct {
	Vendor      uint16
	DeviceType  uint16
	ProductCode uint16
	Major       byte
	Minor       byte
	Status      uint16
	Serial      uint32
	ProductName string
}

// parseIdentity parses Get Attributes All data of the Identity object:
// vendor, device type, product code (u16 each), revision major, minor (u8
// each), status (u16), serial (u32), product name (short string).
func parseIdentity(b []byte) (identity, error) {
	if len(b) < 15 {
		return identity{}, fmt.Errorf("identity: %d bytes, want at least 15: %w", len(b), errShort)
	}
	id := identity{
		Vendor:      binary.LittleEndian.Uint16(b),
		DeviceType:  binary.LittleEndian.Uint16(b[2:]),
		ProductCode: binary.LittleEndian.Uint16(b[4:]),
		Major:       b[6],
		Minor:       b[7],
		Status:      binary.LittleEndian.Uint16(b[8:]),
		Serial:      binary.LittleEndian.Uint32(b[10:]),
	}
	n := int(b[14])
	if len(b) < 15+n {
		return identity{}, fmt.Errorf("identity: product name of %d bytes: %w", n, errShort)
	}
	id.ProductName = string(b[15 : 15+n])
	return id, nil
}

// itemListIdentity is the CPF item type of a ListIdentity reply.
const itemListIdentity = 0x000C

// parseListIdentity parses ListIdentity reply data (CIP Vol. 2, 2-4.2.3):
// item count (u16), then the first item: type 0x0C (u16), length (u16),
// encapsulation protocol version (u16), socket address (16 bytes, big-
// endian), then the Identity attributes in Get Attributes All order, and
// the state (u8). Only the first identity item is used.
func parseListIdentity(b []byte) (identity, error) {
	if len(b) < 2 {
		return identity{}, fmt.Errorf("list identity: %w", errShort)
	}
	n := int(binary.LittleEndian.Uint16(b))
	if n == 0 {
		return identity{}, fmt.Errorf("list identity: no identity item")
	}
	b = b[2:]
	if len(b) < 4 {
		return identity{}, fmt.Errorf("list identity item: %w", errShort)
	}
	typ, l := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
	if typ != itemListIdentity {
		return identity{}, fmt.Errorf("list identity: item type 0x%04X, want 0x000C", typ)
	}
	b = b[4:]
	if len(b) < l {
		return identity{}, fmt.Errorf("list identity item: length %d, got %d bytes: %w", l, len(b), errShort)
	}
	b = b[:l]
	// version (2) and socket address (16) precede the identity.
	if len(b) < 18 {
		return identity{}, fmt.Errorf("list identity item: %d bytes: %w", len(b), errShort)
	}
	id, err := parseIdentity(b[18:])
	if err != nil {
		return identity{}, fmt.Errorf("list identity: %w", err)
	}
	return id, nil
}

func (id identity) revision() string { return fmt.Sprintf("%d.%d", id.Major, id.Minor) }

func (id identity) serial() string { return fmt.Sprintf("0x%08X", id.Serial) }

// keySwitch decodes identity status bits 12-13, where Logix controllers
// report the key switch.
func keySwitch(status uint16) string {
	switch status >> 12 & 3 {
	case 1:
		return "RUN"
	case 2:
		return "PROGRAM"
	case 3:
		return "REMOTE"
	}
	return "unknown"
}

// operatingMode decodes the extended device status (bits 4-7): 6 means at
// least one connection in run mode, 7 all in idle (program) mode.
func operatingMode(status uint16) string {
	switch status >> 4 & 0xF {
	case 6:
		return "RUN"
	case 7:
		return "PROGRAM"
	}
	return fmt.Sprintf("other (extended status %d)", status>>4&0xF)
}

// faultState decodes identity status bits 8-11: bits 8-9 are the minor
// faults (minor is set), bits 10-11 the major ones.
func faultState(status uint16, minor bool) string {
	var fs []string
	for bit, name := range []string{"minor recoverable", "minor unrecoverable", "major recoverable", "major unrecoverable"} {
		if (bit < 2) == minor && status&(0x100<<bit) != 0 {
			fs = append(fs, name)
		}
	}
	if len(fs) == 0 {
		return "none"
	}
	return strings.Join(fs, ", ")
}

// attrValue is one attribute of a Get Attribute List reply.
type attrValue struct {
	ID     uint16
	Status uint16
	Value  []byte
}

// parseAttrList parses a Get Attribute List reply: count (u16), then per
// attribute: id (u16), status (u16), value (if status 0). size gives each
// attribute's value length, which the reply does not carry.
func parseAttrList(b []byte, size func(id uint16) int) ([]attrValue, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("attribute list: %w", errShort)
	}
	n := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	var out []attrValue
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("attribute list entry %d: %w", i, errShort)
		}
		a := attrValue{ID: binary.LittleEndian.Uint16(b), Status: binary.LittleEndian.Uint16(b[2:])}
		b = b[4:]
		if a.Status == 0 {
			l := size(a.ID)
			if l < 0 || len(b) < l {
				return nil, fmt.Errorf("attribute %d: value of %d bytes: %w", a.ID, l, errShort)
			}
			a.Value, b = b[:l], b[l:]
		}
		out = append(out, a)
	}
	return out, nil
}

// propSize gives the sizes of controller-properties attributes 1 and 2
// (UINT) and 3, 4 and 10 (UDINT).
func propSize(id uint16) int {
	switch id {
	case 1, 2:
		return 2
	case 3, 4, 10:
		return 4
	}
	return -1
}

// templateAttrSize: 1 handle (UINT), 2 member count (UINT), 4 definition
// size in words (UDINT), 5 structure size in bytes (UDINT).
func templateAttrSize(id uint16) int {
	switch id {
	case 1, 2:
		return 2
	case 4, 5:
		return 4
	}
	return -1
}

func leUint(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// symbol is one Symbol object instance. NoDims is set when the device
// did not give attribute 8: Dims are then unknown, not zero.
type symbol struct {
	Instance uint32
	Name     string
	Type     uint16
	Dims     [3]uint32
	NoDims   bool
}

// parseSymbols parses Get Instance Attribute List data for attributes 1,
// 2 and, with dims, 8: per instance: id (u32), name length (u16), name,
// type (u16), and with dims three dimensions (u32 each).
func parseSymbols(b []byte, dims bool) ([]symbol, error) {
	rest := 2
	if dims {
		rest += 12
	}
	var out []symbol
	for len(b) > 0 {
		if len(b) < 6 {
			return nil, fmt.Errorf("symbol entry: %w", errShort)
		}
		s := symbol{Instance: binary.LittleEndian.Uint32(b), NoDims: !dims}
		n := int(binary.LittleEndian.Uint16(b[4:]))
		if len(b) < 6+n+rest {
			return nil, fmt.Errorf("symbol %d: name of %d bytes and attributes: %w", s.Instance, n, errShort)
		}
		s.Name = string(b[6 : 6+n])
		b = b[6+n:]
		s.Type = binary.LittleEndian.Uint16(b)
		for i := 0; dims && i < 3; i++ {
			s.Dims[i] = binary.LittleEndian.Uint32(b[2+4*i:])
		}
		b = b[rest:]
		out = append(out, s)
	}
	return out, nil
}

// Type word bits (1756-PM020): bit 15 structure, bits 13-14 dimension
// count, bit 12 system (reserved) symbol, bits 0-11 atomic code or template
// instance.
const (
	typeStruct = 0x8000
	typeSystem = 0x1000
)

func isStruct(t uint16) bool { return t&typeStruct != 0 }

func templateID(t uint16) uint32 { return uint32(t & 0x0FFF) }

var atomicNames = sync.OnceValue(func() map[byte]string {
	return map[byte]string{
		0xC1: "BOOL", 0xC2: "SINT", 0xC3: "INT", 0xC4: "DINT", 0xC5: "LINT",
		0xC6: "USINT", 0xC7: "UINT", 0xC8: "UDINT", 0xC9: "ULINT", 0xCA: "REAL",
		0xCB: "LREAL", 0xD0: "STRING", 0xD1: "BYTE", 0xD2: "WORD", 0xD3: "DWORD", 0xD4: "LWORD",
	}
})

func atomicName(code uint16) string {
	if code&0xFF == 0xC1 { // BOOL carries its bit number in bits 8-10
		return "BOOL"
	}
	if n, ok := atomicNames()[byte(code)]; ok && code&0x0F00 == 0 {
		return n
	}
	return fmt.Sprintf("type 0x%04X", code)
}

// templateInfo is what Get Attribute List tells of a template.
type templateInfo struct {
	Handle  uint16
	Members uint16
	Words   uint32
	Size    uint32
}

func parseTemplateInfo(b []byte) (templateInfo, error) {
	attrs, err := parseAttrList(b, templateAttrSize)
	if err != nil {
		return templateInfo{}, err
	}
	var ti templateInfo
	seen := 0
	for _, a := range attrs {
		if a.Status != 0 {
			return templateInfo{}, fmt.Errorf("template attribute %d: status 0x%04X", a.ID, a.Status)
		}
		v := leUint(a.Value)
		switch a.ID {
		case 1:
			ti.Handle = uint16(v)
		case 2:
			ti.Members = uint16(v)
		case 4:
			ti.Words = uint32(v)
		case 5:
			ti.Size = uint32(v)
		}
		seen++
	}
	if seen != 4 {
		return templateInfo{}, fmt.Errorf("template attributes: got %d of 4", seen)
	}
	return ti, nil
}

// templateMember is one member of a template definition.
type templateMember struct {
	Name   string
	Info   uint16 // array length, or bit number of a BOOL
	Type   uint16
	Offset uint32
}

// template is a parsed template definition.
type template struct {
	Name    string
	Size    uint32
	Members []templateMember
}

// parseTemplate parses Read Template data: members records (info u16, type
// u16, offset u32), then the template name up to NUL (anything after ';'
// is dropped), then each member name NUL-terminated.
func parseTemplate(b []byte, members int) (template, error) {
	if members < 0 || len(b) < 8*members {
		return template{}, fmt.Errorf("template: %d member records: %w", members, errShort)
	}
	t := template{Members: make([]templateMember, members)}
	for i := range t.Members {
		r := b[8*i:]
		t.Members[i] = templateMember{Info: binary.LittleEndian.Uint16(r), Type: binary.LittleEndian.Uint16(r[2:]), Offset: binary.LittleEndian.Uint32(r[4:])}
	}
	rest := b[8*members:]
	next := func(what string) (string, error) {
		i := indexByte(rest, 0)
		if i < 0 {
			return "", fmt.Errorf("template: %s not NUL-terminated: %w", what, errShort)
		}
		s := string(rest[:i])
		rest = rest[i+1:]
		return s, nil
	}
	name, err := next("name")
	if err != nil {
		return template{}, err
	}
	t.Name, _, _ = strings.Cut(name, ";")
	for i := range t.Members {
		if t.Members[i].Name, err = next(fmt.Sprintf("member %d name", i)); err != nil {
			return template{}, err
		}
	}
	return t, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// notObservableError says a value was read but cannot be observed as it
// is: the item is "not observable" with this reason, not "not read".
type notObservableError struct{ msg string }

func (e *notObservableError) Error() string { return e.msg }

// Logix STRING (1756-PM020): the predefined structure STRING is LEN (DINT)
// and DATA (SINT[82]), 88 bytes with padding, whose structure handle in a
// Read Tag reply is 0x0FCE. Custom string types have the same two members
// with another DATA length, and another handle.
const (
	stringHandle   = 0x0FCE
	stringCapacity = 82
)

// parseTagValue decodes Read Tag data: type (u16; 0x02A0 and a structure
// handle for structures), then the value. Atomic values and strings are
// decoded: the predefined STRING always, another structure as a custom
// string type when wantString (its capacity is length, or what the reply
// holds when length is 0). A string whose LEN is beyond its capacity gives
// a *notObservableError.
func parseTagValue(b []byte, length int, wantString bool) (typeName string, v snapshots.Value, err error) {
	if len(b) < 2 {
		return "", v, fmt.Errorf("tag value: %w", errShort)
	}
	code := binary.LittleEndian.Uint16(b)
	if code == 0x02A0 {
		if len(b) < 4 {
			return "struct", v, fmt.Errorf("tag value: structure handle: %w", errShort)
		}
		handle := binary.LittleEndian.Uint16(b[2:])
		switch {
		case handle == stringHandle && length == 0:
			v, err = parseString(b[4:], stringCapacity)
			return "STRING", v, err
		case handle == stringHandle || wantString:
			name := fmt.Sprintf("STRING (handle 0x%04X)", handle)
			if handle == stringHandle {
				name = "STRING"
			}
			v, err = parseString(b[4:], length)
			return name, v, err
		}
		return "struct", v, fmt.Errorf("tag value: a structure (handle 0x%04X), want an atomic tag or member, or a string type (set type: STRING)", handle)
	}
	d := b[2:]
	need := map[uint16]int{0xC1: 1, 0xC2: 1, 0xC3: 2, 0xC4: 4, 0xC5: 8, 0xC6: 1, 0xC7: 2, 0xC8: 4, 0xC9: 8, 0xCA: 4, 0xCB: 8, 0xD1: 1, 0xD2: 2, 0xD3: 4, 0xD4: 8}
	n, ok := need[code]
	if !ok {
		return atomicName(code), v, fmt.Errorf("tag value: type 0x%04X not supported", code)
	}
	if len(d) < n {
		return atomicName(code), v, fmt.Errorf("tag value: %s needs %d bytes: %w", atomicName(code), n, errShort)
	}
	u := leUint(d[:n])
	switch code {
	case 0xC1:
		v = snapshots.Bool(u != 0)
	case 0xC2:
		v = snapshots.Int(int64(int8(u)), "")
	case 0xC3:
		v = snapshots.Int(int64(int16(u)), "")
	case 0xC4:
		v = snapshots.Int(int64(int32(u)), "")
	case 0xC5:
		v = snapshots.Int(int64(u), "")
	case 0xCA:
		v = snapshots.Float32(math.Float32frombits(uint32(u)), "")
	case 0xCB:
		v = snapshots.Float(math.Float64frombits(u), "")
	default:
		v = snapshots.Uint(u, "")
	}
	return atomicName(code), v, nil
}

// parseString decodes a string structure's data: LEN (DINT), then DATA.
// capacity is the DATA length of the type, 0 for "as many bytes as the
// reply holds" (a custom type whose length the config does not give; the
// padding then counts). Every byte of DATA up to LEN is kept, in
// logixText's notation.
func parseString(d []byte, capacity int) (snapshots.Value, error) {
	if len(d) < 4 {
		return snapshots.Value{}, fmt.Errorf("string: LEN: %w", errShort)
	}
	n := int64(int32(binary.LittleEndian.Uint32(d)))
	held := len(d) - 4
	if capacity == 0 {
		capacity = held
	}
	if capacity > held {
		return snapshots.Value{}, fmt.Errorf("string: the reply holds %d characters, the type %d: %w", held, capacity, errShort)
	}
	if n < 0 || n > int64(capacity) {
		return snapshots.Value{}, &notObservableError{fmt.Sprintf("string LEN %d is beyond its capacity of %d characters: the controller holds an inconsistent value", n, capacity)}
	}
	return snapshots.String(logixText(d[4 : 4+n])), nil
}

// logixText renders string bytes as Studio 5000 shows them, keeping every
// byte: printable ASCII as is, '$' as "$$", a quote as "$'", and any other
// byte as '$' and two hex digits ("$0D", "$B0"). Two different byte
// strings never render the same.
func logixText(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == '$':
			s.WriteString("$$")
		case c == '\'':
			s.WriteString("$'")
		case c >= 0x20 && c < 0x7F:
			s.WriteByte(c)
		default:
			fmt.Fprintf(&s, "$%02X", c)
		}
	}
	return s.String()
}
