package logix

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/danomagnum/gologix"

	"github.com/plcwatch/plcwatch/snapshots"
)

// Objects, as the gate and plans record them. Requests for objSymbols and
// objTemplates are the tag-database read that carry-forward saves.
const (
	objSession      = "session"
	objConn         = "connection"
	objCheap        = "identity, properties, audit value, setpoints"
	objModule       = "module identity"
	objSymbols      = "Symbol 0x6B"
	objListIdentity = "ListIdentity"
	objTemplates    = "Template 0x6C"
)

// maxPages bounds a paged listing, so a device that keeps answering
// "partial transfer" cannot keep the connector busy forever.
const maxPages = 10000

// readCheap reads, in as few Multiple Service Packets as fit, the
// controller identity, the controller-properties attributes, the audit
// tag and the setpoints. Every item that cannot be read is marked with the
// reason; the identity falls back to ListIdentity when the Identity object
// cannot be read. The identity returned is the zero value when neither
// answered.
func (c *connector) readCheap(ctx context.Context, s *session, b *build) identity {
	reqs := [][]byte{
		mr(svcGetAttributesAll, classInstance(classIdentity, 1), nil),
		attrListMR(classControllerProp, 1, 1, 2, 3, 4, 10),
	}
	var auditPath []byte
	if c.cfg.AuditValueTag != "" {
		auditPath, _ = tagPath(c.cfg.AuditValueTag)
		reqs = append(reqs, readTagMR(auditPath))
	}
	first := len(reqs)
	for _, p := range c.cfg.paths {
		reqs = append(reqs, readTagMR(p))
	}
	results := c.batch(ctx, s, objCheap, reqs, func(i int) int {
		switch i {
		case 0:
			return 4 + 15 + 255
		case 1:
			return 4 + 2 + 5*8
		}
		if i >= first && c.cfg.Setpoints[i-first].isString() {
			return 4 + 4 + 4 + max(c.cfg.Setpoints[i-first].Length, 82) + 3
		}
		return 4 + 4 + 8
	})

	id, ierr := results[0].get()
	var ident identity
	if ierr == nil {
		ident, ierr = parseIdentity(id.Data)
	}
	if ierr != nil {
		c.env.Log.Debug().Err(ierr).Msg("identity object (class 0x01) not read: trying ListIdentity")
		var lerr error
		ident, lerr = s.listIdentity(ctx)
		if lerr != nil {
			b.identityNotRead(fmt.Sprintf("identity object (class 0x01): %v; %v", ierr, lerr))
			ident = identity{}
		} else {
			b.identity(ident)
		}
	} else {
		b.identity(ident)
	}

	// Controller properties (class 0xAC instance 1), attributes 1, 2, 3, 4
	// and 10: the change indicators 1756-PM020 documents.
	r, perr := results[1].get()
	var attrs []attrValue
	if perr == nil {
		attrs, perr = parseAttrList(r.Data, propSize)
	}
	got := map[uint16]attrValue{}
	for _, a := range attrs {
		got[a.ID] = a
	}
	for _, id := range []uint16{1, 2, 3, 4, 10} {
		path := fmt.Sprintf("indicators/controller_properties/attr%d", id)
		a, ok := got[id]
		switch {
		case ok && a.Status == 0:
			b.add(snapshots.Item{Path: path, Kind: snapshots.KindLogic, Value: snapshots.Uint(leUint(a.Value), ""), Indicator: true,
				Attrs: map[string]string{"class": "0xAC", "attribute": strconv.Itoa(int(id))}}, "indicator", "")
		case ok:
			b.notObservable(path, snapshots.KindLogic, fmt.Sprintf("controller properties attribute %d: the controller answers status 0x%04X", id, a.Status))
		case isStatus(perr):
			b.notObservable(path, snapshots.KindLogic, fmt.Sprintf("controller properties (class 0xAC): %v", perr))
		default:
			b.notRead(path, snapshots.Item{Kind: snapshots.KindLogic, Indicator: true}, fmt.Sprintf("controller properties attribute %d: %v", id, errOr(perr, "not in the reply")))
		}
	}

	const auditItem = "indicators/audit_value"
	if auditPath == nil {
		b.notObservable(auditItem, snapshots.KindLogic, "no audit_value_tag configured: the AuditValue is readable only through a tag that the controller's logic fills (GSV)")
	} else {
		r, err := results[2].get()
		var typ string
		var v snapshots.Value
		if err == nil {
			typ, v, err = parseTagValue(r.Data, 0, false)
			if err == nil && typ != "LINT" {
				err = fmt.Errorf("tag %s is %s, want LINT", c.cfg.AuditValueTag, typ)
			}
		}
		if err != nil {
			b.notRead(auditItem, snapshots.Item{Kind: snapshots.KindLogic, Indicator: true, Attrs: map[string]string{"tag": c.cfg.AuditValueTag}},
				fmt.Sprintf("audit value tag %s: %v", c.cfg.AuditValueTag, err))
		} else {
			attrs := map[string]string{"tag": c.cfg.AuditValueTag}
			if n, perr := strconv.ParseInt(v.Raw, 10, 64); perr == nil {
				// Shown as Studio 5000 shows the AuditValue; the number
				// stays the compared value.
				attrs[snapshots.AttrValueName] = AuditValueText(n)
			}
			b.add(snapshots.Item{Path: auditItem, Kind: snapshots.KindLogic, Value: v, Indicator: true, Attrs: attrs}, "indicator", typ)
		}
	}

	for i, sp := range c.cfg.Setpoints {
		path := "setpoints/" + sp.itemName()
		r, err := results[first+i].get()
		var typ string
		var v snapshots.Value
		if err == nil {
			typ, v, err = parseTagValue(r.Data, sp.Length, sp.isString())
			if err == nil && sp.Type != "" && !sameType(sp.Type, typ) {
				err = fmt.Errorf("tag is %s, the config says %s", typ, strings.ToUpper(sp.Type))
			}
		}
		if err != nil {
			attrs := map[string]string{"tag": sp.Tag}
			var no *notObservableError
			if errors.As(err, &no) {
				attrs[snapshots.AttrDataType] = typ
				b.add(snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Value: snapshots.None(), Deadband: sp.Deadband, Attrs: attrs,
					Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: fmt.Sprintf("setpoint %s: %v", sp.Tag, err)}}, "tag", typ)
				continue
			}
			b.notRead(path, snapshots.Item{Kind: snapshots.KindSetpoint, Deadband: sp.Deadband, Attrs: attrs}, fmt.Sprintf("setpoint %s: %v", sp.Tag, err))
			continue
		}
		v.Unit = sp.Unit
		b.add(snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Value: v, Deadband: sp.Deadband,
			Attrs: map[string]string{snapshots.AttrDataType: typ, "tag": sp.Tag}}, "tag", typ)
	}
	return ident
}

// sameType reports whether a tag of type typ satisfies a setpoint's
// configured type; STRING accepts every string type.
func sameType(want, typ string) bool {
	if strings.EqualFold(want, "STRING") {
		return strings.HasPrefix(typ, "STRING")
	}
	return strings.EqualFold(want, typ)
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func isStatus(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

// result is the reply to one request of a batch, or the reason there is
// none (the transport failed or the reply could not be decoded).
type result struct {
	r   mrReply
	err error
}

// get returns the reply, or an error for a missing reply or a CIP error
// status.
func (r result) get() (mrReply, error) {
	if r.err != nil {
		return mrReply{}, r.err
	}
	return r.r, r.r.err(false)
}

// batch sends requests in Multiple Service Packets no bigger than the
// connection allows, given each reply's largest expected size, and returns
// one result per request. It never stops early: an embedded reply that is
// unusable (an error status, truncated, a wrong offset table, a partial
// transfer) is asked for again as a single request, a packet the device
// refuses as a whole is sent as single requests, and after a device
// answers 0x08 (service not supported) to a packet, every later request of
// the snapshot goes singly.
func (c *connector) batch(ctx context.Context, s *session, object string, reqs [][]byte, replySize func(i int) int) []result {
	out := make([]result, len(reqs))
	single := func(i int) {
		r, err := s.call(ctx, object, reqs[i])
		out[i] = result{r: r, err: err}
	}
	for start := 0; start < len(reqs); {
		reqBytes, repBytes, end := 6, 6, start
		for end < len(reqs) {
			rq, rp := len(reqs[end])+2, replySize(end)+2
			if end > start && (reqBytes+rq > s.maxReply-16 || repBytes+rp > s.maxReply-16) {
				break
			}
			reqBytes, repBytes = reqBytes+rq, repBytes+rp
			end++
		}
		if s.noMSP || end-start == 1 {
			for i := start; i < end; i++ {
				single(i)
			}
			start = end
			continue
		}
		parts, err := s.multiple(ctx, object, reqs[start:end])
		if err != nil {
			c.env.Log.Debug().Err(err).Int("requests", end-start).Msg("multiple service packet unusable: sending its requests singly")
		}
		for i := start; i < end; i++ {
			if err == nil && parts[i-start].err == nil && parts[i-start].r.Status == statusOK {
				out[i] = result{r: parts[i-start].r}
				continue
			}
			single(i)
		}
		start = end
	}
	return out
}

// readModule reads a chassis module's Identity object with an Unconnected
// Send through the backplane (port 1) to its slot.
func (c *connector) readModule(ctx context.Context, s *session, slot int, b *build) {
	path := fmt.Sprintf("modules/slot%02d", slot)
	r, err := s.unconnected(ctx, objModule, unconnectedSendMR(mr(svcGetAttributesAll, classInstance(classIdentity, 1), nil), []byte{0x01, byte(slot)}))
	var id identity
	if err == nil {
		if err = r.err(false); err == nil {
			id, err = parseIdentity(r.Data)
		}
	}
	if err != nil {
		reason := fmt.Sprintf("module in slot %d: %v", slot, err)
		nr := snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: reason}
		b.add(snapshots.Item{Path: path, Kind: snapshots.KindHardware, Value: snapshots.None(), Provenance: nr,
			Attrs: map[string]string{"slot": strconv.Itoa(slot)}}, "module", "")
		b.add(snapshots.Item{Path: path + "/firmware", Kind: snapshots.KindFirmware, Value: snapshots.None(), Provenance: nr,
			Attrs: map[string]string{snapshots.AttrScope: snapshots.ScopeModule, "slot": strconv.Itoa(slot)}}, "module", "")
		b.fail(path, reason)
		return
	}
	b.add(snapshots.Item{Path: path, Kind: snapshots.KindHardware, Value: snapshots.String(id.ProductName), Attrs: map[string]string{
		"slot": strconv.Itoa(slot), "vendor": vendorName(id.Vendor), "device_type": deviceTypeName(id.DeviceType),
		"product_code": strconv.Itoa(int(id.ProductCode)), "serial": id.serial(),
	}}, "module", "")
	b.add(snapshots.Item{Path: path + "/firmware", Kind: snapshots.KindFirmware, Value: snapshots.String(id.revision()), Attrs: map[string]string{
		snapshots.AttrScope: snapshots.ScopeModule, "slot": strconv.Itoa(slot), "catalog": id.ProductName,
	}}, "module", "")
}

func vendorName(v uint16) string {
	return fmt.Sprintf("%s (%d)", gologix.VendorId(v).Name(), v)
}

func deviceTypeName(t uint16) string {
	return fmt.Sprintf("%s (%d)", gologix.DeviceType(t).Name(), t)
}

// listSymbols pages through a scope's Symbol object: controller scope for
// program "", else the program's. It returns what it read even when a page
// fails. A device that refuses attribute 8 (array dimensions), or answers
// in a layout without it twice (gologix's server), is asked again for
// names and types only, from then on in this session.
func (c *connector) listSymbols(ctx context.Context, s *session, program string) ([]symbol, error) {
	var out []symbol
	start := uint32(0)
	askedAgain := false
	for page := 0; page < maxPages; page++ {
		r, err := s.call(ctx, objSymbols, symbolListMR(program, start, !s.noSymbolDims))
		if err != nil {
			return out, err
		}
		err = r.err(true)
		var syms []symbol
		if err == nil {
			syms, err = parseSymbols(r.Data, !s.noSymbolDims)
		}
		if err != nil && page == 0 && !s.noSymbolDims && !isStatus(err) && !askedAgain {
			// A first page that does not parse may be one garbled reply
			// rather than a layout without attribute 8: asked once more
			// before every array tag is given up as not observable.
			c.env.Log.Debug().Err(err).Msg("symbol listing with array dimensions unusable: asking once more")
			askedAgain = true
			page--
			continue
		}
		if err != nil && page == 0 && !s.noSymbolDims && (!isStatus(err) || r.Status == statusAttrNotSupported || r.Status == statusAttrListError) {
			c.env.Log.Debug().Err(err).Msg("symbol listing with array dimensions unusable: listing names and types only")
			s.noSymbolDims = true
			page--
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, syms...)
		if r.Status != statusPartialTransfer {
			return out, nil
		}
		if len(syms) == 0 || syms[len(syms)-1].Instance < start {
			return out, fmt.Errorf("symbol listing from instance %d: partial transfer that does not advance", start)
		}
		start = syms[len(syms)-1].Instance + 1
	}
	return out, fmt.Errorf("symbol listing: more than %d pages", maxPages)
}

// readTemplates reads the definitions of the given templates and of every
// structure nested in them: attributes in Multiple Service Packets, then
// each definition with Read Template, paged on partial transfers. A
// template that cannot be read is left out with its reason in failed; the
// others are still read.
func (c *connector) readTemplates(ctx context.Context, s *session, ids []uint32) (map[uint32]template, map[uint32]error) {
	out := map[uint32]template{}
	failed := map[uint32]error{}
	queued := map[uint32]bool{}
	queue := append([]uint32(nil), ids...)
	for _, id := range ids {
		queued[id] = true
	}
	for len(queue) > 0 {
		batch := queue
		queue = nil
		reqs := make([][]byte, len(batch))
		for i, id := range batch {
			reqs[i] = attrListMR(classTemplate, id, 4, 5, 2, 1)
		}
		results := c.batch(ctx, s, objTemplates, reqs, func(int) int { return 4 + 2 + 4*4 + 12 })
		for i, id := range batch {
			r, err := results[i].get()
			if err != nil {
				failed[id] = fmt.Errorf("template 0x%03X attributes: %w", id, err)
				continue
			}
			info, err := parseTemplateInfo(r.Data)
			if err != nil {
				failed[id] = fmt.Errorf("template 0x%03X: %w", id, err)
				continue
			}
			t, err := c.readDefinition(ctx, s, id, info)
			if err != nil {
				failed[id] = err
				continue
			}
			out[id] = t
			for _, m := range t.Members {
				if isStruct(m.Type) && !queued[templateID(m.Type)] {
					queued[templateID(m.Type)] = true
					queue = append(queue, templateID(m.Type))
				}
			}
		}
	}
	return out, failed
}

func (c *connector) readDefinition(ctx context.Context, s *session, id uint32, info templateInfo) (template, error) {
	// 1756-PM020: the definition is (object definition size * 4) - 23 bytes.
	total := int(info.Words)*4 - 23
	if total <= 0 || total > 1<<20 {
		return template{}, fmt.Errorf("template 0x%03X: definition size %d words out of range", id, info.Words)
	}
	var def []byte
	for page := 0; len(def) < total && page < maxPages; page++ {
		r, err := s.call(ctx, objTemplates, readTemplateMR(id, uint32(len(def)), uint16(min(total-len(def), 0xFFFF))))
		if err != nil {
			return template{}, fmt.Errorf("template 0x%03X: %w", id, err)
		}
		if err := r.err(true); err != nil {
			return template{}, fmt.Errorf("template 0x%03X: %w", id, err)
		}
		def = append(def, r.Data...)
		if r.Status == statusOK {
			break
		}
		if len(r.Data) == 0 {
			return template{}, fmt.Errorf("template 0x%03X: partial transfer without data", id)
		}
	}
	t, err := parseTemplate(def, int(info.Members))
	if err != nil {
		return template{}, fmt.Errorf("template 0x%03X: %w", id, err)
	}
	t.Size = info.Size
	return t, nil
}

// readTagDatabase lists controller- and program-scoped tags and programs
// and reads the templates of the structures they use. It returns what the
// tag database says about tag paths, or nil when the controller's tag
// list could not be read.
func (c *connector) readTagDatabase(ctx context.Context, s *session, b *build) *tagShapes {
	syms, err := c.listSymbols(ctx, s, "")
	if err != nil {
		b.fail("tags", fmt.Sprintf("controller tag list: %v", err))
		b.fail("programs", "program list: the controller tag list was cut off")
		b.fail("udts", "templates: the controller tag list was cut off")
	}
	type scoped struct {
		prefix string
		syms   []symbol
	}
	scopes := []scoped{{"tags/", nil}}
	progSyms := map[string][]symbol{}
	var programs []string
	for _, sy := range syms {
		if p, ok := strings.CutPrefix(sy.Name, "Program:"); ok {
			programs = append(programs, p)
			continue
		}
		if keepSymbol(sy) {
			scopes[0].syms = append(scopes[0].syms, sy)
		}
	}
	if on(c.cfg.Programs) {
		sort.Strings(programs)
		for _, p := range programs {
			b.add(snapshots.Item{Path: "programs/" + p, Kind: snapshots.KindLogic, Value: snapshots.String("program")}, "program", "")
			if err != nil {
				continue // the controller listing failed: the rest is not read
			}
			psyms, perr := c.listSymbols(ctx, s, p)
			if perr != nil {
				b.fail("programs/"+p+"/tags", fmt.Sprintf("tags of program %s: %v", p, perr))
			}
			var keep []symbol
			for _, sy := range psyms {
				if keepSymbol(sy) {
					keep = append(keep, sy)
				}
			}
			scopes = append(scopes, scoped{"programs/" + p + "/tags/", keep})
			progSyms[strings.ToLower(p)] = keep
		}
	}
	var templates map[uint32]template
	if on(c.cfg.Templates) && err == nil {
		seen := map[uint32]bool{}
		var ids []uint32
		for _, sc := range scopes {
			for _, sy := range sc.syms {
				if isStruct(sy.Type) && !seen[templateID(sy.Type)] {
					seen[templateID(sy.Type)] = true
					ids = append(ids, templateID(sy.Type))
				}
			}
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		var failed map[uint32]error
		templates, failed = c.readTemplates(ctx, s, ids)
		fids := make([]uint32, 0, len(failed))
		for id := range failed {
			fids = append(fids, id)
		}
		sort.Slice(fids, func(i, j int) bool { return fids[i] < fids[j] })
		for _, id := range fids {
			b.fail("udts", fmt.Sprintf("templates: %v", failed[id]))
		}
		for _, t := range templates {
			attrs := map[string]string{snapshots.AttrDataType: "UDT", "size": strconv.Itoa(int(t.Size)), "members": strconv.Itoa(visibleMembers(t))}
			if m, ok := unreadMember(t, templates); ok {
				// A member's structure was not read, so its type name is
				// unknown: the structure is not read rather than shown
				// with "template 0x…" for that member.
				b.notRead("udts/"+t.Name, snapshots.Item{Kind: snapshots.KindLogic, Attrs: attrs},
					fmt.Sprintf("UDT %s: the structure of its member %s (template 0x%03X) was not read", t.Name, m.Name, templateID(m.Type)))
				continue
			}
			b.add(snapshots.Item{Path: "udts/" + t.Name, Kind: snapshots.KindLogic, Value: snapshots.String(describeTemplate(t, templates)),
				Attrs: attrs}, "udt", t.Name)
		}
	}
	for _, sc := range scopes {
		for _, sy := range sc.syms {
			path := sc.prefix + sy.Name
			typ := atomicName(sy.Type)
			if isStruct(sy.Type) {
				t, ok := templates[templateID(sy.Type)]
				switch {
				case ok:
					typ = t.Name
				case on(c.cfg.Templates):
					// The template was not read: the type name is unknown,
					// so the tag is not read rather than shown retyped.
					b.fail(path, fmt.Sprintf("tag %s: its structure (template 0x%03X) was not read", sy.Name, templateID(sy.Type)))
					continue
				default:
					typ = "UDT (templates not read)"
				}
			}
			attrs := map[string]string{snapshots.AttrDataType: typ}
			if sy.NoDims && sy.Type>>13&3 != 0 {
				// An array whose dimensions the device did not give: not
				// comparable, rather than shown with other dimensions.
				b.add(snapshots.Item{Path: path, Kind: snapshots.KindLogic, Value: snapshots.None(), Attrs: attrs,
					Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "array tag: the device lists symbols without their dimensions (Symbol object attribute 8)"}}, "tag", typ)
				continue
			}
			desc := typ
			if dims := dimsOf(sy); dims != "" {
				attrs["dims"] = dims
				desc += "[" + dims + "]"
			}
			b.add(snapshots.Item{Path: path, Kind: snapshots.KindLogic, Value: snapshots.String(desc), Attrs: attrs}, "tag", typ)
		}
	}
	if err != nil {
		return nil
	}
	progSyms[""] = scopes[0].syms
	return &tagShapes{scopes: progSyms, templates: templates}
}

// keepSymbol drops system symbols (type bit 12, names starting "__") and
// the "Map:", "Task:", "Cxn:" style entries that are not tags.
func keepSymbol(sy symbol) bool {
	return sy.Type&typeSystem == 0 && !strings.HasPrefix(sy.Name, "__") && !strings.Contains(sy.Name, ":") && sy.Name != ""
}

func dimsOf(sy symbol) string {
	n := int(sy.Type>>13) & 3
	var ds []string
	for i := 0; i < n; i++ {

		ds = append(ds, strconv.Itoa(int(sy.Dims[i])))
	}
	return strings.Join(ds, ",")
}

func hiddenMember(name string) bool {
	return strings.HasPrefix(name, "ZZZZZZZZZZ") || strings.HasPrefix(name, "__")
}

func visibleMembers(t template) int {
	n := 0
	for _, m := range t.Members {
		if !hiddenMember(m.Name) {
			n++
		}
	}
	return n
}

// describeTemplate renders a definition one member per line: name, type
// (with array length), offset (with the bit of a BOOL). Hidden BOOL hosts
// are left out; their effect shows in the members' offsets.
// unreadMember returns a visible member of t whose structure is not among
// the templates read.
func unreadMember(t template, all map[uint32]template) (templateMember, bool) {
	for _, m := range t.Members {
		if _, ok := all[templateID(m.Type)]; isStruct(m.Type) && !ok && !hiddenMember(m.Name) {
			return m, true
		}
	}
	return templateMember{}, false
}

func describeTemplate(t template, all map[uint32]template) string {
	var b strings.Builder
	for _, m := range t.Members {
		if hiddenMember(m.Name) {
			continue
		}
		typ := atomicName(m.Type &^ 0x6000)
		if isStruct(m.Type) {
			typ = fmt.Sprintf("template 0x%03X", templateID(m.Type))
			if n, ok := all[templateID(m.Type)]; ok {
				typ = n.Name
			}
		}
		switch {
		case m.Type&0xFF == 0xC1 && !isStruct(m.Type):
			fmt.Fprintf(&b, "%s %s @%d.%d\n", m.Name, typ, m.Offset, m.Info)
		case m.Info > 0:
			fmt.Fprintf(&b, "%s %s[%d] @%d\n", m.Name, typ, m.Info, m.Offset)
		default:
			fmt.Fprintf(&b, "%s %s @%d\n", m.Name, typ, m.Offset)
		}
	}
	return b.String()
}

// AuditValueText formats a controller's AuditValue (a LINT) as Rockwell's
// software shows it: the 64 bits in hexadecimal, in groups of four digits,
// "16#0000_1234_abcd_0000" style with upper-case digits
// ("16#5555_5555_5555_5555"). Negative values show their two's complement.
func AuditValueText(v int64) string {
	h := fmt.Sprintf("%016X", uint64(v))
	return "16#" + h[0:4] + "_" + h[4:8] + "_" + h[8:12] + "_" + h[12:16]
}
