package logix

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
)

// CIP services (CIP Vol. 1 appendix A; Logix services from 1756-PM020).
const (
	svcGetAttributesAll         = 0x01
	svcSetAttributesAll         = 0x02
	svcGetAttributeList         = 0x03
	svcSetAttributeList         = 0x04
	svcReset                    = 0x05
	svcStart                    = 0x06
	svcStop                     = 0x07
	svcCreate                   = 0x08
	svcDelete                   = 0x09
	svcMultipleService          = 0x0A
	svcGetAttributeSingle       = 0x0E
	svcSetAttributeSingle       = 0x10
	svcReadTag                  = 0x4C
	svcWriteTag                 = 0x4D
	svcForwardClose             = 0x4E // on the Connection Manager; Read-Modify-Write elsewhere
	svcReadFragmented           = 0x52 // Unconnected Send on the Connection Manager
	svcWriteFragmented          = 0x53
	svcForwardOpen              = 0x54
	svcGetInstanceAttributeList = 0x55
	svcLargeForwardOpen         = 0x5B
)

// CIP classes served.
const (
	classIdentity       = 0x01
	classMessageRouter  = 0x02
	classConnManager    = 0x06
	classProgram        = 0x68
	classSymbol         = 0x6B
	classTemplate       = 0x6C
	classControllerProp = 0xAC
)

var writeServices = sync.OnceValue(func() map[byte]string {
	return map[byte]string{
		svcSetAttributesAll:   "cip.SetAttributesAll",
		svcSetAttributeList:   "cip.SetAttributeList",
		svcReset:              "cip.Reset",
		svcStart:              "cip.Start",
		svcStop:               "cip.Stop",
		svcCreate:             "cip.Create",
		svcDelete:             "cip.Delete",
		svcSetAttributeSingle: "cip.SetAttributeSingle",
		svcWriteTag:           "cip.WriteTag",
		svcWriteFragmented:    "cip.WriteTagFragmented",
	}
})

// ReadKinds lists every request kind the simulator counts that is a read
// (or session and connection housekeeping). Any other kind it records was
// refused.
var ReadKinds = []string{
	"cip.ListIdentity", "cip.ListServices", "cip.ListInterfaces", "cip.Nop",
	"cip.RegisterSession", "cip.UnregisterSession",
	"cip.ForwardOpen", "cip.LargeForwardOpen", "cip.ForwardClose",
	"cip.GetAttributesAll", "cip.GetAttributeList", "cip.GetAttributeSingle",
	"cip.GetInstanceAttributeList", "cip.ReadTag", "cip.ReadTagFragmented",
	"cip.ReadTemplate", "cip.MultipleServicePacket",
}

// serviceKind names a message-router request and says whether it is on the
// read allowlist. class is the first class segment of its path (0 if none).
func serviceKind(service byte, class uint32) (string, bool) {
	switch service {
	case svcGetAttributesAll:
		return "cip.GetAttributesAll", true
	case svcGetAttributeList:
		return "cip.GetAttributeList", true
	case svcGetAttributeSingle:
		return "cip.GetAttributeSingle", true
	case svcGetInstanceAttributeList:
		return "cip.GetInstanceAttributeList", true
	case svcMultipleService:
		return "cip.MultipleServicePacket", true
	case svcReadTag:
		switch class {
		case classTemplate:
			return "cip.ReadTemplate", true
		case 0, classSymbol, classProgram:
			return "cip.ReadTag", true
		}
		// 0x4C elsewhere is another service: Initiate Download on the
		// File object 0x37, a Data Table read on 0xB2, ...
		return fmt.Sprintf("cip.Service0x4C(class 0x%02X)", class), false
	case svcReadFragmented:
		switch class {
		case classConnManager:
			return "cip.UnconnectedSend", true
		case 0, classSymbol, classProgram:
			return "cip.ReadTagFragmented", true
		}
		return fmt.Sprintf("cip.Service0x52(class 0x%02X)", class), false
	case svcForwardOpen:
		if class == classConnManager {
			return "cip.ForwardOpen", true
		}
	case svcLargeForwardOpen:
		if class == classConnManager {
			return "cip.LargeForwardOpen", true
		}
	case svcForwardClose:
		if class == classConnManager {
			return "cip.ForwardClose", true
		}
		return "cip.ReadModifyWriteTag", false
	}
	if k, ok := writeServices()[service]; ok {
		return k, false
	}
	return fmt.Sprintf("cip.Service0x%02X", service), false
}

func firstClass(path []byte) uint32 {
	segs, err := parsePath(path)
	if err != nil {
		return 0
	}
	for _, s := range segs {
		if s.Kind == segClass {
			return s.Value
		}
	}
	return 0
}

// requestKind names a message-router request as the simulator counts it:
// an Unconnected Send counts as the request it carries.
func requestKind(mr []byte) (string, bool) {
	req, err := parseMR(mr)
	if err != nil {
		return "cip.Malformed", true
	}
	class := firstClass(req.Path)
	k, ok := serviceKind(req.Service, class)
	if k == "cip.UnconnectedSend" {
		if inner, _, err := parseUnconnectedSend(req.Data); err == nil {
			return requestKind(inner)
		}
	}
	return k, ok
}

// target is where a request goes: the controller (module nil) or a module.
type target struct {
	module *Identity
	slot   int
}

// exec runs one message-router request. limit is the largest reply the
// transport allows. count says to count a refusal here: true for requests
// inside a Multiple Service Packet, whose frame counts as a read; a frame's
// own request is counted by handleFrame. The server's mutex is held.
func (s *Server) exec(cs *connState, raw []byte, tgt target, limit int, connected, count bool) []byte {
	req, err := parseMR(raw)
	if err != nil {
		s.malformed++
		return mrReply(0, statusNotEnoughData, nil, nil)
	}
	class := firstClass(req.Path)
	kind, read := serviceKind(req.Service, class)
	if !read {
		if count {
			s.total.Add(1)
			s.refused.Add(1)
			s.refusedKinds[kind]++
		}
		return mrReply(req.Service, statusServiceNotSupported, nil, nil)
	}
	segs, err := parsePath(req.Path)
	if err != nil {
		return mrReply(req.Service, statusPathSegmentError, nil, nil)
	}
	if class == classConnManager {
		switch req.Service {
		case svcForwardOpen, svcLargeForwardOpen:
			if connected {
				return mrReply(req.Service, statusServiceNotSupported, nil, nil)
			}
			return s.forwardOpen(cs, req)
		case svcForwardClose:
			return s.forwardClose(cs, req)
		case svcReadFragmented:
			inner, route, err := parseUnconnectedSend(req.Data)
			if err != nil {
				return mrReply(req.Service, statusNotEnoughData, nil, nil)
			}
			t, ok := s.route(route)
			if !ok {
				return mrReply(req.Service, statusConnectionFailure, []uint16{0x0312}, nil)
			}
			return s.exec(cs, inner, t, unconnectedLimit, false, count)
		}
		return mrReply(req.Service, statusServiceNotSupported, nil, nil)
	}
	if tgt.module != nil {
		if class != classIdentity {
			return mrReply(req.Service, statusPathDestUnknown, nil, nil)
		}
		return s.identity(req, segs, *tgt.module, 0x0060)
	}
	c := s.ctl
	switch {
	case req.Service == svcMultipleService:
		if class != classMessageRouter {
			return mrReply(req.Service, statusPathDestUnknown, nil, nil)
		}
		if s.opts.NoMultipleService {
			return mrReply(req.Service, statusServiceNotSupported, nil, nil)
		}
		return s.multiple(cs, req, tgt, limit, connected)
	case class == classIdentity:
		if s.opts.NoIdentityObject {
			return mrReply(req.Service, statusServiceNotSupported, nil, nil)
		}
		return s.identity(req, segs, c.id, c.status())
	case class == classControllerProp:
		if s.opts.NoControllerProperties {
			return mrReply(req.Service, statusPathDestUnknown, nil, nil)
		}
		return s.controllerProps(req, segs)
	case class == classTemplate:
		return s.template(req, segs, limit)
	case class == classProgram && req.Service == svcGetInstanceAttributeList && !hasClass(segs, classSymbol):
		return s.listPrograms(req, segs, limit)
	case req.Service == svcGetInstanceAttributeList:
		return s.listSymbols(req, segs, limit)
	case req.Service == svcReadTag || req.Service == svcReadFragmented:
		return s.readTag(req, segs, limit)
	}
	return mrReply(req.Service, statusPathDestUnknown, nil, nil)
}

// unconnectedLimit is the largest unconnected reply (CIP Vol. 1, 3-5.5.1).
const unconnectedLimit = 504

// parseUnconnectedSend splits Unconnected Send data: priority/tick (u8),
// timeout ticks (u8), embedded request size (u16), embedded request, a pad
// byte if the size is odd, route path size in words (u8), reserved (u8),
// route path.
func parseUnconnectedSend(d []byte) (inner, route []byte, err error) {
	if len(d) < 4 {
		return nil, nil, fmt.Errorf("unconnected send: %d bytes, want at least 4", len(d))
	}
	n := int(binary.LittleEndian.Uint16(d[2:]))
	if len(d) < 4+n {
		return nil, nil, fmt.Errorf("unconnected send: embedded request of %d bytes exceeds the data", n)
	}
	inner = d[4 : 4+n]
	rest := d[4+n:]
	if n%2 == 1 && len(rest) > 0 {
		rest = rest[1:]
	}
	if len(rest) < 2 {
		return nil, nil, fmt.Errorf("unconnected send: no route path")
	}
	rl := int(rest[0]) * 2
	if len(rest) < 2+rl {
		return nil, nil, fmt.Errorf("unconnected send: route path of %d bytes exceeds the data", rl)
	}
	return inner, rest[2 : 2+rl], nil
}

// route resolves a route path (port segments) to the controller or a
// module in the chassis: port 1 (backplane) with the slot as link address.
func (s *Server) route(path []byte) (target, bool) {
	segs, err := parsePath(path)
	if err != nil {
		return target{}, false
	}
	var ports []segment
	for _, sg := range segs {
		if sg.Kind == segPort {
			ports = append(ports, sg)
		}
	}
	if len(ports) == 0 {
		return target{slot: s.ctl.slot}, true
	}
	if len(ports) > 1 || ports[0].Value != 1 || len(ports[0].Link) != 1 {
		return target{}, false
	}
	slot := int(ports[0].Link[0])
	if slot == s.ctl.slot {
		return target{slot: slot}, true
	}
	if m, ok := s.ctl.modules[slot]; ok {
		return target{module: &m, slot: slot}, true
	}
	return target{}, false
}

func (s *Server) identity(req mrRequest, segs []segment, id Identity, status uint16) []byte {
	all := id.encode(status)
	// Attribute values sliced out of the Get Attributes All layout.
	attr := func(a uint32) ([]byte, bool) {
		switch a {
		case 1:
			return all[0:2], true
		case 2:
			return all[2:4], true
		case 3:
			return all[4:6], true
		case 4:
			return all[6:8], true
		case 5:
			return all[8:10], true
		case 6:
			return all[10:14], true
		case 7:
			return all[14:], true
		}
		return nil, false
	}
	return attributes(req, segs, all, attr)
}

// attributes serves Get Attributes All, Get Attribute Single and Get
// Attribute List from an attribute function.
func attributes(req mrRequest, segs []segment, all []byte, attr func(uint32) ([]byte, bool)) []byte {
	switch req.Service {
	case svcGetAttributesAll:
		if all == nil {
			return mrReply(req.Service, statusServiceNotSupported, nil, nil)
		}
		return mrReply(req.Service, statusOK, nil, all)
	case svcGetAttributeSingle:
		for _, sg := range segs {
			if sg.Kind == segAttribute {
				v, ok := attr(sg.Value)
				if !ok {
					return mrReply(req.Service, statusAttrNotSupported, nil, nil)
				}
				return mrReply(req.Service, statusOK, nil, v)
			}
		}
		return mrReply(req.Service, statusPathSegmentError, nil, nil)
	case svcGetAttributeList:
		// Request: count (u16), attribute ids (u16 each). Reply: count,
		// then per attribute: id (u16), status (u16), value if status 0.
		if len(req.Data) < 2 {
			return mrReply(req.Service, statusNotEnoughData, nil, nil)
		}
		n := int(binary.LittleEndian.Uint16(req.Data))
		if len(req.Data) < 2+2*n {
			return mrReply(req.Service, statusNotEnoughData, nil, nil)
		}
		out := binary.LittleEndian.AppendUint16(nil, uint16(n))
		for i := 0; i < n; i++ {
			a := binary.LittleEndian.Uint16(req.Data[2+2*i:])
			out = binary.LittleEndian.AppendUint16(out, a)
			v, ok := attr(uint32(a))
			if !ok {
				out = binary.LittleEndian.AppendUint16(out, statusAttrNotSupported)
				continue
			}
			out = binary.LittleEndian.AppendUint16(out, 0)
			out = append(out, v...)
		}
		return mrReply(req.Service, statusOK, nil, out)
	}
	return mrReply(req.Service, statusServiceNotSupported, nil, nil)
}

func (s *Server) controllerProps(req mrRequest, segs []segment) []byte {
	if instanceOf(segs) != 1 {
		return mrReply(req.Service, statusPathDestUnknown, nil, nil)
	}
	attr := func(a uint32) ([]byte, bool) {
		switch a {
		case 1, 2: // UINT
			return binary.LittleEndian.AppendUint16(nil, uint16(s.ctl.props[uint16(a)])), true
		case 3, 4, 10: // UDINT
			return binary.LittleEndian.AppendUint32(nil, s.ctl.props[uint16(a)]), true
		}
		return nil, false
	}
	return attributes(req, segs, nil, attr)
}

func hasClass(segs []segment, class uint32) bool {
	for _, sg := range segs {
		if sg.Kind == segClass && sg.Value == class {
			return true
		}
	}
	return false
}

func instanceOf(segs []segment) uint32 {
	for _, sg := range segs {
		if sg.Kind == segInstance {
			return sg.Value
		}
	}
	return 0
}

func (s *Server) template(req mrRequest, segs []segment, limit int) []byte {
	u := s.ctl.byID[uint16(instanceOf(segs))]
	if u == nil || instanceOf(segs) > 0xFFFF {
		return mrReply(req.Service, statusPathDestUnknown, nil, nil)
	}
	if req.Service == svcReadTag {
		// Read Template: offset (u32), bytes wanted (u16).
		if len(req.Data) < 6 {
			return mrReply(req.Service, statusNotEnoughData, nil, nil)
		}
		off := int(binary.LittleEndian.Uint32(req.Data))
		want := int(binary.LittleEndian.Uint16(req.Data[4:]))
		if off > len(u.Def) {
			return mrReply(req.Service, statusInvalidParameter, nil, nil)
		}
		d := u.Def[off:]
		if want < len(d) {
			d = d[:want]
		}
		if room := limit - 4; len(d) > room {
			return mrReply(req.Service, statusPartialTransfer, nil, d[:room&^3])
		}
		return mrReply(req.Service, statusOK, nil, d)
	}
	attr := func(a uint32) ([]byte, bool) {
		switch a {
		case 1: // structure handle (u16)
			return binary.LittleEndian.AppendUint16(nil, u.Handle), true
		case 2: // member count (u16)
			return binary.LittleEndian.AppendUint16(nil, uint16(len(u.Members))), true
		case 4: // template object definition size in 32-bit words (u32)
			return binary.LittleEndian.AppendUint32(nil, uint32((len(u.Def)+23+3)/4)), true
		case 5: // structure size in bytes (u32)
			return binary.LittleEndian.AppendUint32(nil, uint32(u.Size)), true
		}
		return nil, false
	}
	return attributes(req, segs, nil, attr)
}

// splitScope takes an optional program prefix off a path: a symbolic
// "Program:Name" segment or program class 0x68 with an instance.
func (s *Server) splitScope(segs []segment) (*scope, []segment, bool) {
	if len(segs) > 0 && segs[0].Kind == segSymbol && strings.HasPrefix(strings.ToLower(segs[0].Symbol), "program:") {
		p := s.ctl.programs[strings.ToLower(segs[0].Symbol[len("program:"):])]
		if p == nil {
			return nil, nil, false
		}
		return p.scope, segs[1:], true
	}
	if len(segs) > 1 && segs[0].Kind == segClass && segs[0].Value == classProgram && segs[1].Kind == segInstance {
		for _, p := range s.ctl.programs {
			if p.Inst == segs[1].Value {
				return p.scope, segs[2:], true
			}
		}
		return nil, nil, false
	}
	return s.ctl.global, segs, true
}

// attrIDs parses "count (u16), attribute ids (u16 each)".
func attrIDs(d []byte) ([]uint16, bool) {
	if len(d) < 2 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(d))
	if n == 0 || len(d) < 2+2*n {
		return nil, false
	}
	ids := make([]uint16, n)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint16(d[2+2*i:])
	}
	return ids, true
}

// listSymbols serves Get Instance Attribute List on the Symbol object:
// for each instance from the one in the path: instance id (u32), then the
// requested attributes: 1 name (u16 length + bytes), 2 type (u16), 8 array
// dimensions (3 x u32). A reply that would exceed limit ends early with
// status 0x06 (partial transfer); the client asks again from the last
// instance + 1.
func (s *Server) listSymbols(req mrRequest, segs []segment, limit int) []byte {
	sc, rest, ok := s.splitScope(segs)
	if !ok {
		return mrReply(req.Service, statusPathDestUnknown, nil, nil)
	}
	if len(rest) < 1 || rest[0].Kind != segClass || rest[0].Value != classSymbol {
		return mrReply(req.Service, statusPathDestUnknown, nil, nil)
	}
	ids, ok := attrIDs(req.Data)
	if !ok {
		return mrReply(req.Service, statusNotEnoughData, nil, nil)
	}
	for _, a := range ids {
		if a != 1 && a != 2 && a != 8 || a == 8 && s.opts.NoSymbolDimensions {
			return mrReply(req.Service, statusAttrNotSupported, nil, nil)
		}
	}
	var out []byte
	room := limit - 4
	for _, t := range sc.from(instanceOf(rest)) {
		e := binary.LittleEndian.AppendUint32(nil, t.Inst)
		for _, a := range ids {
			switch a {
			case 1:
				e = binary.LittleEndian.AppendUint16(e, uint16(len(t.Name)))
				e = append(e, t.Name...)
			case 2:
				e = binary.LittleEndian.AppendUint16(e, t.typeWord())
			case 8:
				for k := 0; k < 3; k++ {
					d := 0
					if k < len(t.Dims) {
						d = t.Dims[k]
					}
					e = binary.LittleEndian.AppendUint32(e, uint32(d))
				}
			}
		}
		if len(out)+len(e) > room {
			return mrReply(req.Service, statusPartialTransfer, nil, out)
		}
		out = append(out, e...)
	}
	return mrReply(req.Service, statusOK, nil, out)
}

// listPrograms serves Get Instance Attribute List on the Program class
// (0x68) with attribute 28 in the layout gologix's ListAllPrograms reads:
// instance (u32), name length (u32), name.
func (s *Server) listPrograms(req mrRequest, segs []segment, limit int) []byte {
	ids, ok := attrIDs(req.Data)
	if !ok {
		return mrReply(req.Service, statusNotEnoughData, nil, nil)
	}
	if len(ids) != 1 || ids[0] != 28 {
		return mrReply(req.Service, statusAttrNotSupported, nil, nil)
	}
	start := instanceOf(segs)
	var out []byte
	for _, p := range s.ctl.programList() {
		if p.Inst < start {
			continue
		}
		e := binary.LittleEndian.AppendUint32(nil, p.Inst)
		e = binary.LittleEndian.AppendUint32(e, uint32(len(p.Name)))
		e = append(e, p.Name...)
		if len(out)+len(e) > limit-4 {
			return mrReply(req.Service, statusPartialTransfer, nil, out)
		}
		out = append(out, e...)
	}
	return mrReply(req.Service, statusOK, nil, out)
}

// readTag serves Read Tag (elements u16) and Read Tag Fragmented (elements
// u16, byte offset u32). The reply holds the type (u16 code, or 0x02A0 and
// the structure handle) and the data; a reply too big for the connection
// ends with status 0x06 and the client reads on with a fragmented read.
func (s *Server) readTag(req mrRequest, segs []segment, limit int) []byte {
	sc, rest, ok := s.splitScope(segs)
	if !ok || len(rest) == 0 {
		return mrReply(req.Service, statusPathDestUnknown, nil, nil)
	}
	var t *tag
	switch {
	case rest[0].Kind == segSymbol:
		t = sc.byName[strings.ToLower(rest[0].Symbol)]
		rest = rest[1:]
	case len(rest) > 1 && rest[0].Kind == segClass && rest[0].Value == classSymbol && rest[1].Kind == segInstance:
		if xs := sc.from(rest[1].Value); len(xs) > 0 && xs[0].Inst == rest[1].Value {
			t = xs[0]
		}
		rest = rest[2:]
	}
	if t == nil {
		return mrReply(req.Service, statusPathDestUnknown, []uint16{0x0000}, nil)
	}
	r, err := resolve(t, rest)
	if err != nil {
		return mrReply(req.Service, statusPathSegmentError, nil, nil)
	}
	if len(req.Data) < 2 {
		return mrReply(req.Service, statusNotEnoughData, nil, nil)
	}
	count := int(binary.LittleEndian.Uint16(req.Data))
	off := 0
	if req.Service == svcReadFragmented {
		if len(req.Data) < 6 {
			return mrReply(req.Service, statusNotEnoughData, nil, nil)
		}
		off = int(binary.LittleEndian.Uint32(req.Data[2:]))
	}
	if count == 0 {
		count = 1
	}
	if count > r.n {
		// 0xFF with extended 0x2105: access beyond the end of the object.
		return mrReply(req.Service, 0xFF, []uint16{0x2105}, nil)
	}
	var typ []byte
	if r.typ.UDT != nil {
		typ = []byte{0xA0, 0x02, byte(r.typ.UDT.Handle), byte(r.typ.UDT.Handle >> 8)}
	} else {
		typ = binary.LittleEndian.AppendUint16(nil, r.typ.Code)
	}
	var data []byte
	if r.bit >= 0 {
		data = []byte{0}
		if r.data[0]&(1<<r.bit) != 0 {
			data[0] = 1
		}
	} else {
		data = r.data[:count*r.typ.Size]
	}
	if off > len(data) {
		return mrReply(req.Service, statusInvalidParameter, nil, nil)
	}
	data = data[off:]
	room := limit - 4 - len(typ)
	if len(data) > room {
		return mrReply(req.Service, statusPartialTransfer, nil, append(typ, data[:room&^7]...))
	}
	return mrReply(req.Service, statusOK, nil, append(typ, data...))
}

// multiple serves a Multiple Service Packet: count (u16), offsets (u16
// each, from the count), requests. The reply has the same layout; its
// status is 0x1E when any embedded reply failed.
func (s *Server) multiple(cs *connState, req mrRequest, tgt target, limit int, connected bool) []byte {
	d := req.Data
	if len(d) < 2 {
		return mrReply(req.Service, statusNotEnoughData, nil, nil)
	}
	n := int(binary.LittleEndian.Uint16(d))
	if n == 0 || len(d) < 2+2*n {
		return mrReply(req.Service, statusNotEnoughData, nil, nil)
	}
	replies := make([][]byte, n)
	failed := false
	for i := 0; i < n; i++ {
		start := int(binary.LittleEndian.Uint16(d[2+2*i:]))
		end := len(d)
		if i+1 < n {
			end = int(binary.LittleEndian.Uint16(d[2+2*(i+1):]))
		}
		if start < 2+2*n || end > len(d) || start > end {
			return mrReply(req.Service, statusInvalidParameter, nil, nil)
		}
		inner := d[start:end]
		if r, err := parseMR(inner); err == nil && r.Service == svcMultipleService {
			replies[i] = mrReply(r.Service, statusServiceNotSupported, nil, nil)
		} else {
			replies[i] = s.exec(cs, inner, tgt, limit, connected, true)
			if k, _ := requestKind(inner); k != "" {
				replies[i] = faultReply(s.takeEmbedded(k), replies[i], true)
			}
		}
		if len(replies[i]) >= 3 && replies[i][2] != statusOK {
			failed = true
		}
	}
	out := binary.LittleEndian.AppendUint16(nil, uint16(n))
	off := 2 + 2*n
	for _, r := range replies {
		out = binary.LittleEndian.AppendUint16(out, uint16(off))
		off += len(r)
	}
	for _, r := range replies {
		out = append(out, r...)
	}
	if len(out)+4 > limit {
		// 0x11: reply data too large.
		return mrReply(req.Service, 0x11, nil, nil)
	}
	st := byte(statusOK)
	if failed {
		st = statusEmbeddedError
	}
	return mrReply(req.Service, st, nil, out)
}

// forwardOpen serves Forward Open (0x54) and Large Forward Open (0x5B).
// Request data: priority/tick (u8), timeout ticks (u8), O->T connection id
// (u32), T->O connection id (u32), connection serial (u16), originator
// vendor (u16), originator serial (u32), timeout multiplier (u8), reserved
// (3), O->T RPI (u32), O->T parameters (u16, or u32 when large), T->O RPI
// (u32), T->O parameters, transport trigger (u8), path size in words (u8),
// connection path.
func (s *Server) forwardOpen(cs *connState, req mrRequest) []byte {
	d := req.Data
	large := req.Service == svcLargeForwardOpen
	pw := 2
	if large {
		pw = 4
	}
	fixed := 22 + 4 + pw + 4 + pw + 2
	if len(d) < fixed {
		return mrReply(req.Service, statusNotEnoughData, nil, nil)
	}
	toID := binary.LittleEndian.Uint32(d[6:])
	serial := binary.LittleEndian.Uint16(d[10:])
	vendor := binary.LittleEndian.Uint16(d[12:])
	origSerial := binary.LittleEndian.Uint32(d[14:])
	rpi := binary.LittleEndian.Uint32(d[22:])
	var size int
	if large {
		size = int(binary.LittleEndian.Uint32(d[26:]) & 0xFFFF)
	} else {
		size = int(binary.LittleEndian.Uint16(d[26:]) & 0x01FF)
	}
	pl := int(d[fixed-1]) * 2
	if len(d) < fixed+pl {
		return mrReply(req.Service, statusNotEnoughData, nil, nil)
	}
	t, ok := s.route(d[fixed : fixed+pl])
	if !ok {
		return mrReply(req.Service, statusConnectionFailure, []uint16{0x0312}, nil)
	}
	if size < 32 {
		// 0x0109: invalid connection size.
		return mrReply(req.Service, statusConnectionFailure, []uint16{0x0109}, nil)
	}
	if large && s.opts.NoLargeForwardOpen {
		return mrReply(req.Service, statusServiceNotSupported, nil, nil)
	}
	if len(cs.conns) >= 8 {
		// 0x0113: out of connections.
		return mrReply(req.Service, statusConnectionFailure, []uint16{0x0113}, nil)
	}
	s.nextConn++
	otID := 0x10000000 + s.nextConn
	cs.conns[otID] = &cipConn{target: t, size: size, serial: serial, vendor: vendor, origSerial: origSerial, toID: toID}
	out := binary.LittleEndian.AppendUint32(nil, otID)
	out = binary.LittleEndian.AppendUint32(out, toID)
	out = binary.LittleEndian.AppendUint16(out, serial)
	out = binary.LittleEndian.AppendUint16(out, vendor)
	out = binary.LittleEndian.AppendUint32(out, origSerial)
	out = binary.LittleEndian.AppendUint32(out, rpi)
	out = binary.LittleEndian.AppendUint32(out, rpi)
	out = append(out, 0, 0)
	return mrReply(req.Service, statusOK, nil, out)
}

// forwardClose serves Forward Close: priority/tick (u8), timeout ticks
// (u8), connection serial (u16), vendor (u16), originator serial (u32),
// path size (u8), reserved (u8), path. The connection is found by its
// serial number.
func (s *Server) forwardClose(cs *connState, req mrRequest) []byte {
	d := req.Data
	if len(d) < 10 {
		return mrReply(req.Service, statusNotEnoughData, nil, nil)
	}
	serial := binary.LittleEndian.Uint16(d[2:])
	for id, c := range cs.conns {
		if c.serial == serial {
			delete(cs.conns, id)
			out := append([]byte(nil), d[2:10]...)
			out = append(out, 0, 0)
			return mrReply(req.Service, statusOK, nil, out)
		}
	}
	// 0x0107: connection not found.
	return mrReply(req.Service, statusConnectionFailure, []uint16{0x0107}, nil)
}
