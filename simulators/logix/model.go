package logix

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// dataType is an atomic Logix type or a structure (UDT).
type dataType struct {
	Name string
	Code uint16 // atomic type code (0xC1...), 0 for structures
	Size int    // bytes per element
	UDT  *udt
}

var atomics = map[string]*dataType{}

func init() {
	for _, t := range []dataType{
		{Name: "BOOL", Code: 0xC1, Size: 1},
		{Name: "SINT", Code: 0xC2, Size: 1},
		{Name: "INT", Code: 0xC3, Size: 2},
		{Name: "DINT", Code: 0xC4, Size: 4},
		{Name: "LINT", Code: 0xC5, Size: 8},
		{Name: "USINT", Code: 0xC6, Size: 1},
		{Name: "UINT", Code: 0xC7, Size: 2},
		{Name: "UDINT", Code: 0xC8, Size: 4},
		{Name: "REAL", Code: 0xCA, Size: 4},
		{Name: "LREAL", Code: 0xCB, Size: 8},
		{Name: "DWORD", Code: 0xD3, Size: 4},
	} {
		t := t
		atomics[t.Name] = &t
	}
}

// align is the alignment of a type inside a structure.
func (t *dataType) align() int {
	if t.UDT != nil {
		return t.UDT.align
	}
	if t.Size > 4 {
		return 8
	}
	return t.Size
}

// typeWord is the 16-bit symbol/member type: the atomic code or 0x8000 |
// template instance.
func (t *dataType) typeWord() uint16 {
	if t.UDT != nil {
		return 0x8000 | t.UDT.ID
	}
	return t.Code
}

// Member is one declared member of a UDT.
type Member struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// Dim is the array length of an array member (0 for a scalar).
	Dim int `yaml:"dim,omitempty"`
}

// UDT is a user-defined structure as an engineer declares it.
type UDT struct {
	Name    string   `yaml:"name"`
	Members []Member `yaml:"members"`
}

// layoutMember is a member as laid out in the template, hidden BOOL hosts
// included.
type layoutMember struct {
	Name   string
	Type   *dataType
	Info   uint16 // array length, or bit number of a BOOL
	Offset uint32
	Dim    int
	Bit    int // BOOL members: bit in the host byte; -1 otherwise
}

// udt is a laid-out structure with its template (class 0x6C) instance.
type udt struct {
	Name    string
	ID      uint16
	Decl    UDT
	Members []layoutMember
	Size    int
	align   int
	Def     []byte // template definition as returned by Read Template
	Handle  uint16
}

func (u *udt) member(name string) *layoutMember {
	for i := range u.Members {
		if strings.EqualFold(u.Members[i].Name, name) && !strings.HasPrefix(u.Members[i].Name, "ZZZZZZZZZZ") {
			return &u.Members[i]
		}
	}
	return nil
}

// layout computes offsets: members in declaration order, each aligned to its
// type; consecutive BOOLs share a hidden SINT host, as Logix lays them out.
func (u *udt) layout(lookup func(string) (*dataType, error)) error {
	u.Members = nil
	off, al := 0, 1
	host := -1 // index of the current hidden BOOL host, -1 if none
	hosts := 0
	for _, m := range u.Decl.Members {
		if m.Name == "" {
			return fmt.Errorf("UDT %s: member without a name", u.Name)
		}
		t, err := lookup(m.Type)
		if err != nil {
			return fmt.Errorf("UDT %s member %s: %w", u.Name, m.Name, err)
		}
		if t.UDT == u {
			return fmt.Errorf("UDT %s member %s: a structure cannot contain itself", u.Name, m.Name)
		}
		if m.Dim < 0 || m.Dim > 0xFFFF {
			return fmt.Errorf("UDT %s member %s: dim %d out of range", u.Name, m.Name, m.Dim)
		}
		if t.Code == 0xC1 && m.Dim == 0 {
			bit := 0
			if host >= 0 && u.Members[len(u.Members)-1].Bit >= 0 && u.Members[len(u.Members)-1].Bit < 7 {
				bit = u.Members[len(u.Members)-1].Bit + 1
			} else {
				u.Members = append(u.Members, layoutMember{Name: fmt.Sprintf("ZZZZZZZZZZ%s%d", u.Name, hosts), Type: atomics["SINT"], Offset: uint32(off), Bit: -1})
				host = len(u.Members) - 1
				hosts++
				off++
			}
			u.Members = append(u.Members, layoutMember{Name: m.Name, Type: t, Info: uint16(bit), Offset: u.Members[host].Offset, Bit: bit})
			continue
		}
		if t.Code == 0xC1 {
			return fmt.Errorf("UDT %s member %s: BOOL arrays are not supported by the simulator", u.Name, m.Name)
		}
		host = -1
		a := t.align()
		if a > al {
			al = a
		}
		off = (off + a - 1) / a * a
		n := 1
		if m.Dim > 0 {
			n = m.Dim
		}
		u.Members = append(u.Members, layoutMember{Name: m.Name, Type: t, Info: uint16(m.Dim), Offset: uint32(off), Dim: m.Dim, Bit: -1})
		off += n * t.Size
		if off > maxBytes {
			return fmt.Errorf("UDT %s: larger than the simulator's %d-byte limit", u.Name, maxBytes)
		}
	}
	if al < 4 {
		al = 4
	}
	u.align = al
	u.Size = (off + al - 1) / al * al
	// Template definition: 8 bytes per member (info u16, type u16, offset
	// u32), then "Name;n" NUL, then each member name NUL-terminated.
	var d []byte
	for _, m := range u.Members {
		d = binary.LittleEndian.AppendUint16(d, m.Info)
		tw := m.Type.typeWord()
		if m.Dim > 0 {
			tw |= 0x2000
		}
		d = binary.LittleEndian.AppendUint16(d, tw)
		d = binary.LittleEndian.AppendUint32(d, m.Offset)
	}
	d = append(d, u.Name+";n"...)
	d = append(d, 0)
	for _, m := range u.Members {
		d = append(d, m.Name...)
		d = append(d, 0)
	}
	u.Def = d
	u.Handle = uint16(crc32.ChecksumIEEE(d))
	if strings.EqualFold(u.Name, "STRING") {
		// The predefined STRING's structure handle on Logix controllers.
		u.Handle = 0x0FCE
	}
	return nil
}

// tag is one symbol: a data tag, or (when program is set) the
// "Program:Name" entry of a program in the controller scope.
type tag struct {
	Name    string
	Type    *dataType
	Dims    []int
	Inst    uint32
	Data    []byte
	program *program
}

func (t *tag) count() int {
	n := 1
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// typeWord is symbol attribute 2: type code or structure bit plus template,
// dimension count in bits 13-14; 0x1068 for program entries.
func (t *tag) typeWord() uint16 {
	if t.program != nil {
		return 0x1068
	}
	return t.Type.typeWord() | uint16(len(t.Dims))<<13
}

// scope is a symbol table: the controller's or one program's.
type scope struct {
	tags   []*tag // sorted by instance
	byName map[string]*tag
	next   uint32
}

func newScope() *scope { return &scope{byName: map[string]*tag{}, next: 1} }

func (s *scope) add(t *tag) {
	t.Inst = s.next
	s.next++
	s.tags = append(s.tags, t)
	s.byName[strings.ToLower(t.Name)] = t
}

func (s *scope) remove(name string) *tag {
	t := s.byName[strings.ToLower(name)]
	if t == nil {
		return nil
	}
	delete(s.byName, strings.ToLower(name))
	for i, x := range s.tags {
		if x == t {
			s.tags = append(s.tags[:i], s.tags[i+1:]...)
			break
		}
	}
	return t
}

// from returns the symbols with instance >= start, in instance order.
func (s *scope) from(start uint32) []*tag {
	i := sort.Search(len(s.tags), func(i int) bool { return s.tags[i].Inst >= start })
	return s.tags[i:]
}

// program is a Logix program: its class 0x68 instance and its tags.
type program struct {
	Name  string
	Inst  uint32
	scope *scope
}

// Identity is what the Identity object (class 0x01) of the controller or a
// module returns.
type Identity struct {
	Vendor      uint16 `yaml:"vendor"`
	DeviceType  uint16 `yaml:"device_type"`
	ProductCode uint16 `yaml:"product_code"`
	// Revision is "major.minor", such as "33.11".
	Revision    string `yaml:"revision"`
	Serial      uint32 `yaml:"serial"`
	ProductName string `yaml:"product_name"`
}

func (id Identity) revision() (major, minor byte, err error) {
	a, b, ok := strings.Cut(id.Revision, ".")
	if !ok {
		return 0, 0, fmt.Errorf("revision %q: want major.minor such as \"33.11\"", id.Revision)
	}
	x, err1 := strconv.ParseUint(a, 10, 8)
	y, err2 := strconv.ParseUint(b, 10, 8)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("revision %q: want major.minor with numbers 0-255", id.Revision)
	}
	return byte(x), byte(y), nil
}

// encode returns the Identity object's Get Attributes All reply data:
// vendor, device type, product code (u16 each), revision major and minor
// (u8 each), status (u16), serial (u32), product name (short string).
func (id Identity) encode(status uint16) []byte {
	maj, min, _ := id.revision()
	b := binary.LittleEndian.AppendUint16(nil, id.Vendor)
	b = binary.LittleEndian.AppendUint16(b, id.DeviceType)
	b = binary.LittleEndian.AppendUint16(b, id.ProductCode)
	b = append(b, maj, min)
	b = binary.LittleEndian.AppendUint16(b, status)
	b = binary.LittleEndian.AppendUint32(b, id.Serial)
	b = append(b, byte(len(id.ProductName)))
	return append(b, id.ProductName...)
}

// Modes the key switch and controller can be in.
var modes = sync.OnceValue(func() map[string]uint16 {
	return map[string]uint16{
		// key switch in bits 12-13 (1 RUN, 2 PROG, 3 REM); bits 4-7 = 6 run,
		// 7 program (idle).
		"RUN":      0x1060,
		"PROG":     0x2070,
		"REM RUN":  0x3060,
		"REM PROG": 0x3070,
	}
})

// Controller faults in identity status bits 8-11.
var faults = sync.OnceValue(func() map[string]uint16 {
	return map[string]uint16{
		"none":                0,
		"minor recoverable":   0x0100,
		"minor unrecoverable": 0x0200,
		"major recoverable":   0x0400,
		"major unrecoverable": 0x0800,
	}
})

// encodeValue writes v (a number or bool) as type t into b.
func encodeValue(t *dataType, b []byte, bit int, v any) error {
	var f float64
	var i int64 // exact integer value where v is an integer
	switch x := v.(type) {
	case bool:
		if x {
			f, i = 1, 1
		}
	case int:
		f, i = float64(x), int64(x)
	case int64:
		f, i = float64(x), x
	case uint64:
		f, i = float64(x), int64(x)
	case uint32:
		f, i = float64(x), int64(x)
	case float64:
		f, i = x, int64(x)
	case float32:
		f, i = float64(x), int64(x)
	default:
		return fmt.Errorf("value %v (%T): want a number or a bool", v, v)
	}
	if len(b) < t.Size {
		return fmt.Errorf("value %v: no room", v)
	}
	if bit >= 0 {
		if f != 0 {
			b[0] |= 1 << bit
		} else {
			b[0] &^= 1 << bit
		}
		return nil
	}
	switch t.Code {
	case 0xC1:
		b[0] = 0
		if f != 0 {
			b[0] = 1
		}
	case 0xC2, 0xC6:
		b[0] = byte(i)
	case 0xC3, 0xC7:
		binary.LittleEndian.PutUint16(b, uint16(i))
	case 0xC4, 0xC8, 0xD3:
		binary.LittleEndian.PutUint32(b, uint32(i))
	case 0xC5:
		binary.LittleEndian.PutUint64(b, uint64(i))
	case 0xCA:
		binary.LittleEndian.PutUint32(b, math.Float32bits(float32(f)))
	case 0xCB:
		binary.LittleEndian.PutUint64(b, math.Float64bits(f))
	default:
		return fmt.Errorf("value %v: type %s takes no scalar value", v, t.Name)
	}
	return nil
}
