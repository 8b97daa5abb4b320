package logix

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// controller is the simulated controller's state. The server guards it with
// its mutex.
type controller struct {
	id       Identity
	slot     int
	mode     string
	fault    string
	props    map[uint16]uint32
	auditTag string

	decls   []UDT             // UDT declarations in order
	udtIDs  map[string]uint16 // lower name -> template instance, stable across edits
	nextUDT uint16
	udts    map[string]*udt
	byID    map[uint16]*udt

	global   *scope
	programs map[string]*program
	nextProg uint32
	modules  map[int]Identity
}

// maxBytes bounds one tag or structure, so a scenario cannot exhaust memory.
const maxBytes = 1 << 24

// propAttrs are the controller-properties attributes served, in order.
var propAttrs = []uint16{1, 2, 3, 4, 10}

func newController(sc *Scenario) (*controller, error) {
	c := &controller{
		id: sc.Identity, slot: sc.Slot, mode: sc.Mode, fault: sc.Fault,
		props: map[uint16]uint32{}, auditTag: sc.AuditTag,
		udtIDs: map[string]uint16{}, nextUDT: 0x100,
		global: newScope(), programs: map[string]*program{}, nextProg: 1, modules: map[int]Identity{},
	}
	if c.mode == "" {
		c.mode = "REM RUN"
	}
	if c.fault == "" {
		c.fault = "none"
	}
	if _, ok := modes()[c.mode]; !ok {
		return nil, fmt.Errorf("mode %q: want RUN, PROG, REM RUN or REM PROG", c.mode)
	}
	if _, ok := faults()[c.fault]; !ok {
		return nil, fmt.Errorf("fault %q: want none, minor recoverable, minor unrecoverable, major recoverable or major unrecoverable", c.fault)
	}
	if _, _, err := c.id.revision(); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if c.slot < 0 || c.slot > 255 {
		return nil, fmt.Errorf("slot %d: want 0-255", c.slot)
	}
	for k, v := range sc.ControllerProperties {
		if !contains16(propAttrs, k) {
			return nil, fmt.Errorf("controller_properties: attribute %d: only 1, 2, 3, 4 and 10 are served", k)
		}
		c.props[k] = v
	}
	c.decls = append(c.decls, sc.UDTs...)
	if err := c.rebuildUDTs(); err != nil {
		return nil, err
	}
	for _, td := range sc.Tags {
		if err := c.addTag(c.global, td); err != nil {
			return nil, err
		}
	}
	for _, pd := range sc.Programs {
		p, err := c.addProgram(pd.Name)
		if err != nil {
			return nil, err
		}
		for _, td := range pd.Tags {
			if err := c.addTag(p.scope, td); err != nil {
				return nil, fmt.Errorf("program %s: %w", pd.Name, err)
			}
		}
	}
	for _, m := range sc.Modules {
		if m.Slot == c.slot || m.Slot < 0 || m.Slot > 255 {
			return nil, fmt.Errorf("module in slot %d: want a slot 0-255 other than the controller's (%d)", m.Slot, c.slot)
		}
		if _, dup := c.modules[m.Slot]; dup {
			return nil, fmt.Errorf("module in slot %d: slot used twice", m.Slot)
		}
		if _, _, err := m.revision(); err != nil {
			return nil, fmt.Errorf("module in slot %d: %w", m.Slot, err)
		}
		c.modules[m.Slot] = m.Identity
	}
	if c.auditTag != "" {
		t := c.global.byName[strings.ToLower(c.auditTag)]
		if t == nil || t.Type.Code != 0xC5 || len(t.Dims) > 0 {
			return nil, fmt.Errorf("audit_tag %q: want the name of a controller-scoped LINT tag", c.auditTag)
		}
	}
	return c, nil
}

func contains16(xs []uint16, x uint16) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (c *controller) lookupType(name string) (*dataType, error) {
	if t := atomics[strings.ToUpper(name)]; t != nil {
		return t, nil
	}
	if u := c.udts[strings.ToLower(name)]; u != nil {
		return &dataType{Name: u.Name, Size: u.Size, UDT: u}, nil
	}
	return nil, fmt.Errorf("type %q: not an atomic type (BOOL, SINT, INT, DINT, LINT, USINT, UINT, UDINT, REAL, LREAL, DWORD) or a declared UDT", name)
}

// rebuildUDTs lays out every declared UDT (in dependency order) and rebinds
// the tags to the new layouts, keeping their bytes where they still fit.
func (c *controller) rebuildUDTs() error {
	byName := map[string]UDT{}
	for _, d := range c.decls {
		k := strings.ToLower(d.Name)
		if d.Name == "" {
			return fmt.Errorf("UDT without a name")
		}
		if _, dup := byName[k]; dup {
			return fmt.Errorf("UDT %s declared twice", d.Name)
		}
		if atomics[strings.ToUpper(d.Name)] != nil {
			return fmt.Errorf("UDT %s: the name of an atomic type", d.Name)
		}
		byName[k] = d
		if _, ok := c.udtIDs[k]; !ok {
			if c.nextUDT >= 0x0FFF {
				return fmt.Errorf("UDT %s: too many templates", d.Name)
			}
			c.udtIDs[k] = c.nextUDT
			c.nextUDT++
		}
	}
	old := c.udts
	c.udts, c.byID = map[string]*udt{}, map[uint16]*udt{}
	visiting := map[string]bool{}
	var build func(name string) (*udt, error)
	build = func(name string) (*udt, error) {
		k := strings.ToLower(name)
		if u := c.udts[k]; u != nil {
			return u, nil
		}
		if visiting[k] {
			return nil, fmt.Errorf("UDT %s: contains itself through its members", name)
		}
		visiting[k] = true
		d := byName[k]
		u := &udt{Name: d.Name, ID: c.udtIDs[k], Decl: d}
		err := u.layout(func(tn string) (*dataType, error) {
			if t := atomics[strings.ToUpper(tn)]; t != nil {
				return t, nil
			}
			if _, ok := byName[strings.ToLower(tn)]; !ok {
				return nil, fmt.Errorf("type %q: not an atomic type or a declared UDT", tn)
			}
			m, err := build(tn)
			if err != nil {
				return nil, err
			}
			return &dataType{Name: m.Name, Size: m.Size, UDT: m}, nil
		})
		if err != nil {
			return nil, err
		}
		c.udts[k], c.byID[u.ID] = u, u
		return u, nil
	}
	for _, d := range c.decls {
		if _, err := build(d.Name); err != nil {
			c.udts = old
			return err
		}
	}
	rebind := func(s *scope) error {
		for _, t := range s.tags {
			if t.program != nil || t.Type.UDT == nil {
				continue
			}
			u := c.udts[strings.ToLower(t.Type.Name)]
			if u == nil {
				return fmt.Errorf("tag %s: its type %s is no longer declared", t.Name, t.Type.Name)
			}
			t.Type = &dataType{Name: u.Name, Size: u.Size, UDT: u}
			d := make([]byte, u.Size*t.count())
			copy(d, t.Data)
			t.Data = d
		}
		return nil
	}
	if err := rebind(c.global); err != nil {
		return err
	}
	for _, p := range c.programs {
		if err := rebind(p.scope); err != nil {
			return err
		}
	}
	return nil
}

func validName(n string) bool {
	if n == "" || len(n) > 40 {
		return false
	}
	for i, r := range n {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func (c *controller) addTag(s *scope, td TagDef) error {
	if !validName(td.Name) {
		return fmt.Errorf("tag %q: want a Logix name (letters, digits, '_', up to 40)", td.Name)
	}
	if s.byName[strings.ToLower(td.Name)] != nil {
		return fmt.Errorf("tag %s: already exists in this scope", td.Name)
	}
	t, err := c.newTag(td)
	if err != nil {
		return err
	}
	s.add(t)
	if td.Value != nil {
		if err := setValue(ref{typ: t.Type, data: t.Data, n: t.count(), bit: -1}, td.Value); err != nil {
			return fmt.Errorf("tag %s: %w", td.Name, err)
		}
	}
	return nil
}

func (c *controller) newTag(td TagDef) (*tag, error) {
	typ, err := c.lookupType(td.Type)
	if err != nil {
		return nil, fmt.Errorf("tag %s: %w", td.Name, err)
	}
	if len(td.Dims) > 3 {
		return nil, fmt.Errorf("tag %s: %d dimensions, want at most 3", td.Name, len(td.Dims))
	}
	for _, d := range td.Dims {
		if d <= 0 || d > 65535 {
			return nil, fmt.Errorf("tag %s: dimension %d, want 1-65535", td.Name, d)
		}
	}
	if typ.Code == 0xC1 && len(td.Dims) > 0 {
		return nil, fmt.Errorf("tag %s: BOOL arrays are not supported by the simulator", td.Name)
	}
	t := &tag{Name: td.Name, Type: typ, Dims: append([]int(nil), td.Dims...)}
	if t.count() > maxBytes/max(typ.Size, 1) {
		return nil, fmt.Errorf("tag %s: larger than the simulator's %d-byte limit", td.Name, maxBytes)
	}
	t.Data = make([]byte, typ.Size*t.count())
	return t, nil
}

func (c *controller) addProgram(name string) (*program, error) {
	if !validName(name) {
		return nil, fmt.Errorf("program %q: want a Logix name", name)
	}
	if c.programs[strings.ToLower(name)] != nil {
		return nil, fmt.Errorf("program %s: already exists", name)
	}
	p := &program{Name: name, Inst: c.nextProg, scope: newScope()}
	c.nextProg++
	c.programs[strings.ToLower(name)] = p
	c.global.add(&tag{Name: "Program:" + name, program: p})
	return p, nil
}

func (c *controller) programList() []*program {
	ps := make([]*program, 0, len(c.programs))
	for _, p := range c.programs {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Inst < ps[j].Inst })
	return ps
}

func (c *controller) scopeOf(prog string) (*scope, error) {
	if prog == "" {
		return c.global, nil
	}
	p := c.programs[strings.ToLower(prog)]
	if p == nil {
		return nil, fmt.Errorf("program %s: no such program", prog)
	}
	return p.scope, nil
}

// status is the Identity object's status word.
func (c *controller) status() uint16 { return modes()[c.mode] | faults()[c.fault] }

// edited records a change to the tag database or structures: the
// controller-properties attributes move (3 for tags and programs, 4 for
// structures, 10 for any edit: the simulator's own choice, as Rockwell does
// not document which attribute tracks what) and so does the AuditValue.
func (c *controller) edited(structures bool) {
	if structures {
		c.props[4]++
	} else {
		c.props[3]++
	}
	c.props[10]++
	c.bumpAudit()
}

func (c *controller) bumpAudit() {
	if c.auditTag == "" {
		return
	}
	t := c.global.byName[strings.ToLower(c.auditTag)]
	if t == nil || len(t.Data) < 8 {
		return
	}
	// Move by a large odd step, so the value jumps as a hash would.
	v := uint64(0)
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(t.Data[i])
	}
	v += 0x9E3779B97F4A7C15
	for i := 0; i < 8; i++ {
		t.Data[i] = byte(v >> (8 * i))
	}
}

// ref is a resolved tag reference: the type, the bytes from the addressed
// element to the end of the addressed object, elements available, and the
// bit of a BOOL member (-1 otherwise).
type ref struct {
	typ  *dataType
	data []byte
	n    int
	bit  int
}

// resolve follows segments from a tag: element segments index arrays,
// symbolic segments select structure members.
func resolve(t *tag, rest []segment) (ref, error) {
	if t.program != nil {
		return ref{}, fmt.Errorf("%s is a program, not a tag", t.Name)
	}
	r := ref{typ: t.Type, data: t.Data, n: t.count(), bit: -1}
	dims := t.Dims
	for i := 0; i < len(rest); i++ {
		s := rest[i]
		switch s.Kind {
		case segElement:
			if len(dims) == 0 {
				return ref{}, fmt.Errorf("element index on a scalar")
			}
			idx := []uint32{s.Value}
			for len(idx) < len(dims) && i+1 < len(rest) && rest[i+1].Kind == segElement {
				i++
				idx = append(idx, rest[i].Value)
			}
			lin := 0
			for k, d := range dims {
				v := 0
				if k < len(idx) {
					v = int(idx[k])
				}
				if v >= d {
					return ref{}, fmt.Errorf("index %d beyond dimension %d", v, d)
				}
				lin = lin*d + v
			}
			total := 1
			for _, d := range dims {
				total *= d
			}
			r.data = r.data[lin*r.typ.Size:]
			r.n = total - lin
			dims = nil
		case segSymbol:
			if r.typ.UDT == nil {
				return ref{}, fmt.Errorf("member %s of a non-structure", s.Symbol)
			}
			m := r.typ.UDT.member(s.Symbol)
			if m == nil {
				return ref{}, fmt.Errorf("no member %s in %s", s.Symbol, r.typ.Name)
			}
			n := 1
			if m.Dim > 0 {
				n = m.Dim
				dims = []int{m.Dim}
			} else {
				dims = nil
			}
			r = ref{typ: m.Type, data: r.data[m.Offset : int(m.Offset)+n*m.Type.Size], n: n, bit: m.Bit}
		default:
			return ref{}, fmt.Errorf("unexpected segment in a tag path")
		}
	}
	return r, nil
}

// setValue writes a scenario value: scalar, list (array elements) or map
// (structure members).
func setValue(r ref, v any) error {
	switch x := v.(type) {
	case []any:
		if len(x) > r.n {
			return fmt.Errorf("%d values for %d elements", len(x), r.n)
		}
		for i, e := range x {
			sub := ref{typ: r.typ, data: r.data[i*r.typ.Size:], n: 1, bit: r.bit}
			if err := setValue(sub, e); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		return nil
	case map[string]any:
		if r.typ.UDT == nil {
			return fmt.Errorf("member values for %s, which is not a structure", r.typ.Name)
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub, err := resolveMember(r, k)
			if err != nil {
				return err
			}
			if err := setValue(sub, x[k]); err != nil {
				return fmt.Errorf("member %s: %w", k, err)
			}
		}
		return nil
	case string:
		if r.typ.UDT != nil {
			return setString(r, []byte(x))
		}
	case []byte:
		if r.typ.UDT != nil {
			return setString(r, x)
		}
	}
	return encodeValue(r.typ, r.data, r.bit, v)
}

// setString fills a string structure (LEN DINT, DATA SINT[n]): LEN is the
// byte count, DATA the bytes, the rest of DATA zero.
func setString(r ref, b []byte) error {
	l, errL := resolveMember(r, "LEN")
	d, errD := resolveMember(r, "DATA")
	if errL != nil || errD != nil || l.typ.Code != 0xC4 || d.typ.Code != 0xC2 {
		return fmt.Errorf("a string for %s, which is not a string type (LEN DINT, DATA SINT[n])", r.typ.Name)
	}
	if len(b) > d.n {
		return fmt.Errorf("%d characters for a string of %d", len(b), d.n)
	}
	binary.LittleEndian.PutUint32(l.data, uint32(len(b)))
	clear(d.data)
	copy(d.data, b)
	return nil
}

func resolveMember(r ref, name string) (ref, error) {
	m := r.typ.UDT.member(name)
	if m == nil {
		return ref{}, fmt.Errorf("no member %s in %s", name, r.typ.Name)
	}
	n := 1
	if m.Dim > 0 {
		n = m.Dim
	}
	return ref{typ: m.Type, data: r.data[m.Offset : int(m.Offset)+n*m.Type.Size], n: n, bit: m.Bit}, nil
}

// parseTagPath turns "Program:Main.Tank[2].Level" into a program name and
// segments (symbol, elements, member symbols).
func parseTagPath(p string) (prog string, segs []segment, err error) {
	if rest, ok := strings.CutPrefix(p, "Program:"); ok {
		var found bool
		prog, p, found = strings.Cut(rest, ".")
		if !found {
			return "", nil, fmt.Errorf("tag path %q: want Program:Name.Tag", "Program:"+rest)
		}
	}
	for _, part := range strings.Split(p, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		if name == "" {
			return "", nil, fmt.Errorf("tag path %q: empty name", p)
		}
		segs = append(segs, segment{Kind: segSymbol, Symbol: name})
		if hasIdx {
			idx, ok := strings.CutSuffix(idx, "]")
			if !ok {
				return "", nil, fmt.Errorf("tag path %q: missing ]", p)
			}
			for _, s := range strings.Split(idx, ",") {
				n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
				if err != nil {
					return "", nil, fmt.Errorf("tag path %q: index %q is not a number", p, s)
				}
				segs = append(segs, segment{Kind: segElement, Value: uint32(n)})
			}
		}
	}
	return prog, segs, nil
}

func (c *controller) lookupPath(p string) (ref, error) {
	prog, segs, err := parseTagPath(p)
	if err != nil {
		return ref{}, err
	}
	s, err := c.scopeOf(prog)
	if err != nil {
		return ref{}, err
	}
	t := s.byName[strings.ToLower(segs[0].Symbol)]
	if t == nil {
		return ref{}, fmt.Errorf("tag %s: no such tag", p)
	}
	r, err := resolve(t, segs[1:])
	if err != nil {
		return ref{}, fmt.Errorf("tag %s: %w", p, err)
	}
	return r, nil
}
