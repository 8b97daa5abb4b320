package logix

import (
	"fmt"
	"strings"

	"github.com/plcwatch/plcwatch/snapshots"
)

// A Read Tag of one element that names an array without an index (a tag
// "Curve" of REAL[2,5], a member "Recipe.Times" of DINT[3]) is answered
// with the array's first element (Logix 5000 Data Access, 1756-PM020,
// "Read Tag Service": the element count is counted from the element the
// path names, the first one when it names none). Recorded as the setpoint's
// value, that element would stand for the whole array: a change of any other
// element would go unseen while the snapshot says the setpoint was read.
// Such a setpoint is therefore not observable, with the array named, once
// the tag database (read or carried) shows what the path points at.

// attrArray holds, on a setpoint item made not observable because its tag
// names a whole array, the array's type as the tag database gives it
// ("REAL[2,5]"), so that a snapshot that carries the tag database forward
// keeps the decision.
const attrArray = "array"

// tagShapes is what the tag database says about tag paths: the symbols of
// each scope ("" for controller scope, else the program's name, lower
// case) and the templates read.
type tagShapes struct {
	scopes    map[string][]symbol
	templates map[uint32]template
}

// pathPart is one dot-separated part of a tag path: a name and how many
// indices follow it.
type pathPart struct {
	name    string
	indices int
}

// splitTagPath splits "Program:P.Tag[1].Member" into the program ("P", or
// "" for controller scope) and its parts; ok is false for a path tagPath
// would refuse.
func splitTagPath(tag string) (program string, parts []pathPart, ok bool) {
	if len(tag) > len("Program:") && strings.EqualFold(tag[:len("Program:")], "Program:") {
		p, r, found := strings.Cut(tag[len("Program:"):], ".")
		if !found {
			return "", nil, false
		}
		program, tag = p, r
	}
	for _, s := range strings.Split(tag, ".") {
		name, idx, hasIdx := strings.Cut(s, "[")
		if name == "" {
			return "", nil, false
		}
		n := 0
		if hasIdx {
			n = strings.Count(idx, ",") + 1
		}
		parts = append(parts, pathPart{name, n})
	}
	return program, parts, true
}

// wholeArray reports whether tag names an array without indexing it (the
// tag itself or one of the members on its path), and that array's type
// ("Curve is REAL[2,5]"). Paths the shapes do not cover (an unknown tag or
// member, a template not read) are not reported.
func (sh tagShapes) wholeArray(tag string) (name, typ string, ok bool) {
	program, parts, valid := splitTagPath(tag)
	if !valid {
		return "", "", false
	}
	var sym *symbol
	syms := sh.scopes[strings.ToLower(program)]
	for i := range syms {
		if strings.EqualFold(syms[i].Name, parts[0].name) {
			sym = &syms[i]
			break
		}
	}
	if sym == nil {
		return "", "", false
	}
	cur := sym.Type
	if cur>>13&3 != 0 && parts[0].indices == 0 {
		if sym.NoDims {
			return parts[0].name, sh.typeName(cur) + " array", true
		}
		return parts[0].name, sh.typeName(cur) + "[" + dimsOf(*sym) + "]", true
	}
	cur &^= 0x6000
	for i, p := range parts[1:] {
		if !isStruct(cur) {
			return "", "", false
		}
		t, found := sh.templates[templateID(cur)]
		if !found {
			return "", "", false
		}
		var m *templateMember
		for j := range t.Members {
			if strings.EqualFold(t.Members[j].Name, p.name) {
				m = &t.Members[j]
				break
			}
		}
		if m == nil {
			return "", "", false
		}
		// A BOOL member's info is its bit number; any other member's is
		// its array length (0: not an array).
		if m.Info > 0 && m.Type&0xFF != 0xC1 && p.indices == 0 {
			whole := make([]string, 0, i+2)
			for _, q := range parts[:i+2] {
				whole = append(whole, q.name)
			}
			return strings.Join(whole, "."), fmt.Sprintf("%s[%d]", sh.typeName(m.Type), m.Info), true
		}
		cur = m.Type &^ 0x6000
	}
	return "", "", false
}

// typeName names an element type: an atomic type or a template's name.
func (sh tagShapes) typeName(t uint16) string {
	t &^= 0x6000
	if isStruct(t) {
		if tp, ok := sh.templates[templateID(t)]; ok {
			return tp.Name
		}
		return fmt.Sprintf("template 0x%03X", templateID(t))
	}
	return atomicName(t)
}

// wholeArrayReason says why a setpoint that names a whole array has no
// value.
func wholeArrayReason(tag, name, typ string) string {
	first := "0"
	if i := strings.LastIndexByte(typ, '['); i >= 0 {
		first += strings.Repeat(",0", strings.Count(typ[i:], ","))
	}
	return fmt.Sprintf("setpoint %s: %s is an array (%s) and a read returns its first element only: name one element, such as %s[%s]", tag, name, typ, name, first)
}

// checkArraySetpoints makes every setpoint read with a value whose tag
// names a whole array not observable (see the top of this file). With
// shapes from this snapshot's tag database it decides from them; without
// (the tag database carried from prev because nothing was downloaded
// since, or its listing failed), it keeps prev's decisions, or decides
// from the tag items carried when prev made none.
func (c *connector) checkArraySetpoints(b *build, sh *tagShapes, prev *snapshots.Snapshot) {
	for _, sp := range c.cfg.Setpoints {
		path := "setpoints/" + sp.itemName()
		it := b.item(path)
		if it == nil || it.Volatile || it.Provenance.Source != snapshots.SourceRead {
			continue
		}
		var typ, reason string
		switch {
		case sh != nil:
			name, t, ok := sh.wholeArray(sp.Tag)
			if !ok {
				continue
			}
			typ, reason = t, wholeArrayReason(sp.Tag, name, t)
		default:
			if old := prevArray(prev, path, sp.Tag); old != nil {
				typ, reason = old.Attrs[attrArray], old.Provenance.Reason
				break
			}
			// No decision to keep (prev was taken before this check
			// existed): the tag items b holds say whether the tag itself
			// is an array.
			name, t, ok := carriedArray(b, sp.Tag)
			if !ok {
				continue
			}
			typ, reason = t, wholeArrayReason(sp.Tag, name, t)
		}
		attrs := make(map[string]string, len(it.Attrs)+1)
		for k, v := range it.Attrs {
			attrs[k] = v
		}
		attrs[attrArray] = typ
		it.Attrs = attrs
		it.Value = snapshots.None()
		it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: reason}
	}
}

// prevArray returns prev's item at path when prev found that the same tag
// names a whole array.
func prevArray(prev *snapshots.Snapshot, path, tag string) *snapshots.Item {
	if prev == nil {
		return nil
	}
	old := prev.Item(path)
	if old == nil || old.Provenance.Source != snapshots.SourceNotObservable || old.Attrs[attrArray] == "" || old.Attrs["tag"] != tag {
		return nil
	}
	return old
}

// carriedArray reports whether tag names, without an index, a tag that
// b's tag items ("tags/NAME", "programs/P/tags/NAME") record as an array,
// and that array's type ("REAL[2,5]"). Arrays inside structures are not
// found this way.
func carriedArray(b *build, tag string) (name, typ string, ok bool) {
	program, parts, valid := splitTagPath(tag)
	if !valid || parts[0].indices > 0 {
		return "", "", false
	}
	prefix := "tags/"
	if program != "" {
		prefix = "programs/" + program + "/tags/"
	}
	for _, it := range b.items {
		if strings.EqualFold(it.Path, prefix+parts[0].name) && it.Attrs["dims"] != "" && it.Value.Type != snapshots.TypeNone {
			return parts[0].name, it.Value.Raw, true
		}
	}
	return "", "", false
}
