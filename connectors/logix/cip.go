package logix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/plcwatch/plcwatch/connectors"
)

// This file is the connector's EtherNet/IP and CIP codec. It can build read
// requests only: there is no encoder for any write, mode-change, create or
// delete service, and requestKind (used by the transport on every frame
// before it is sent) names each frame from its bytes for the gate.

// EtherNet/IP encapsulation commands (CIP Vol. 2, table 2-3.2).
const (
	cmdListIdentity      = 0x0063
	cmdRegisterSession   = 0x0065
	cmdUnregisterSession = 0x0066
	cmdSendRRData        = 0x006F
	cmdSendUnitData      = 0x0070
	encapHeaderLen       = 24
)

// Common packet format item types (CIP Vol. 2, table 2-6.3).
const (
	itemNull        = 0x0000
	itemConnAddress = 0x00A1
	itemConnData    = 0x00B1
	itemUnconnData  = 0x00B2
)

// CIP services used (all reads, plus connection housekeeping).
const (
	svcGetAttributesAll         = 0x01
	svcGetAttributeList         = 0x03
	svcMultipleService          = 0x0A
	svcGetAttributeSingle       = 0x0E
	svcReadTemplateAlt          = 0x4B // Read on a Template, as some clients send it
	svcReadTag                  = 0x4C
	svcForwardClose             = 0x4E // on the Connection Manager only
	svcUnconnectedSend          = 0x52 // on the Connection Manager only
	svcForwardOpen              = 0x54
	svcGetInstanceAttributeList = 0x55
	svcLargeForwardOpen         = 0x5B
)

// CIP classes read.
const (
	classIdentity       = 0x01
	classMessageRouter  = 0x02
	classConnManager    = 0x06
	classSymbol         = 0x6B
	classTemplate       = 0x6C
	classControllerProp = 0xAC
)

// CIP general status codes the connector acts on.
const (
	statusOK                  = 0x00
	statusPartialTransfer     = 0x06
	statusServiceNotSupported = 0x08
	statusAttrListError       = 0x0A
	statusAttrNotSupported    = 0x14
	statusEmbeddedError       = 0x1E
)

// Request kinds as the gate and plans see them.
const (
	KindRegisterSession          = "cip.RegisterSession"
	KindUnregisterSession        = "cip.UnregisterSession"
	KindForwardOpen              = "cip.ForwardOpen"
	KindLargeForwardOpen         = "cip.LargeForwardOpen"
	KindForwardClose             = "cip.ForwardClose"
	KindGetAttributesAll         = "cip.GetAttributesAll"
	KindGetAttributeList         = "cip.GetAttributeList"
	KindGetAttributeSingle       = "cip.GetAttributeSingle"
	KindGetInstanceAttributeList = "cip.GetInstanceAttributeList"
	KindListIdentity             = "cip.ListIdentity"
	KindReadTag                  = "cip.ReadTag"
	KindReadTagFragmented        = "cip.ReadTagFragmented"
	KindReadTemplate             = "cip.ReadTemplate"
	KindMultipleServicePacket    = "cip.MultipleServicePacket"
)

// Allowlist is every request kind the connector may send.
var Allowlist = []string{
	KindRegisterSession, KindUnregisterSession, KindForwardOpen, KindLargeForwardOpen, KindForwardClose,
	KindGetAttributesAll, KindGetAttributeList, KindGetAttributeSingle, KindGetInstanceAttributeList,
	KindReadTag, KindReadTagFragmented, KindReadTemplate, KindMultipleServicePacket, KindListIdentity,
}

// StatusError is a CIP error reply: the general status of CIP Vol. 1
// appendix B, with the extended status words when the device sent any.
type StatusError struct {
	Service  byte
	Status   byte
	Extended []uint16
}

// Error names the status by code and meaning first ("CIP status 0x05 path
// destination unknown"), so that an item's reason says what the device
// answered.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("CIP status 0x%02X %s", e.Status, statusText(e.Status))
	for i, x := range e.Extended {
		if i == 0 {
			s += ", extended"
		}
		s += fmt.Sprintf(" 0x%04X", x)
	}
	return s + fmt.Sprintf(" (service 0x%02X)", e.Service)
}

// statusText is the meaning of a CIP general status code (CIP Vol. 1,
// table B-1.1).
func statusText(s byte) string {
	switch s {
	case 0x00:
		return "success"
	case 0x01:
		return "connection failure"
	case 0x02:
		return "resource unavailable"
	case 0x03:
		return "invalid parameter value"
	case 0x04:
		return "path segment error"
	case 0x05:
		return "path destination unknown"
	case 0x06:
		return "partial transfer"
	case 0x07:
		return "connection lost"
	case 0x08:
		return "service not supported"
	case 0x09:
		return "invalid attribute value"
	case 0x0A:
		return "attribute list error"
	case 0x0B:
		return "already in requested mode/state"
	case 0x0C:
		return "object state conflict"
	case 0x0D:
		return "object already exists"
	case 0x0E:
		return "attribute not settable"
	case 0x0F:
		return "privilege violation"
	case 0x10:
		return "device state conflict"
	case 0x11:
		return "reply data too large"
	case 0x12:
		return "fragmentation of a primitive value"
	case 0x13:
		return "not enough data"
	case 0x14:
		return "attribute not supported"
	case 0x15:
		return "too much data"
	case 0x16:
		return "object does not exist"
	case 0x17:
		return "service fragmentation sequence not in progress"
	case 0x18:
		return "no stored attribute data"
	case 0x19:
		return "store operation failure"
	case 0x1A:
		return "routing failure, request packet too large"
	case 0x1B:
		return "routing failure, response packet too large"
	case 0x1C:
		return "missing attribute list entry data"
	case 0x1D:
		return "invalid attribute value list"
	case 0x1E:
		return "embedded service error"
	case 0x1F:
		return "vendor specific error"
	case 0x20:
		return "invalid parameter"
	case 0x21:
		return "write-once value or medium already written"
	case 0x22:
		return "invalid reply received"
	case 0x25:
		return "key failure in path"
	case 0x26:
		return "path size invalid"
	case 0x27:
		return "unexpected attribute in list"
	case 0x28:
		return "invalid member id"
	case 0x29:
		return "member not settable"
	case 0xFF:
		return "general error"
	}
	return "unknown status"
}

// errShort is wrapped by every parser for truncated input.
var errShort = errors.New("reply too short")

// appendEncap appends an encapsulation header (command, length, session,
// status 0, sender context 0, options 0) and data.
func appendEncap(b []byte, cmd uint16, session uint32, data []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, cmd)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(data)))
	b = binary.LittleEndian.AppendUint32(b, session)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, data...)
}

// registerSessionFrame: protocol version 1, options 0.
func registerSessionFrame() []byte {
	return appendEncap(nil, cmdRegisterSession, 0, []byte{0x01, 0x00, 0x00, 0x00})
}

// listIdentityFrame asks the target for its identity (CIP Vol. 2,
// 2-4.2): no session, no data.
func listIdentityFrame() []byte {
	return appendEncap(nil, cmdListIdentity, 0, nil)
}

func unregisterSessionFrame(session uint32) []byte {
	return appendEncap(nil, cmdUnregisterSession, session, nil)
}

// rrDataFrame wraps an unconnected request: interface handle 0, timeout 0,
// two items: null address, unconnected data.
func rrDataFrame(session uint32, mr []byte) []byte {
	d := make([]byte, 0, 16+len(mr))
	d = binary.LittleEndian.AppendUint32(d, 0)
	d = binary.LittleEndian.AppendUint16(d, 0)
	d = binary.LittleEndian.AppendUint16(d, 2)
	d = binary.LittleEndian.AppendUint16(d, itemNull)
	d = binary.LittleEndian.AppendUint16(d, 0)
	d = binary.LittleEndian.AppendUint16(d, itemUnconnData)
	d = binary.LittleEndian.AppendUint16(d, uint16(len(mr)))
	d = append(d, mr...)
	return appendEncap(nil, cmdSendRRData, session, d)
}

// unitDataFrame wraps a connected request: interface handle 0, timeout 0,
// connected address item (connection id), connected data item (sequence
// count, request).
func unitDataFrame(session, connID uint32, seq uint16, mr []byte) []byte {
	d := make([]byte, 0, 24+len(mr))
	d = binary.LittleEndian.AppendUint32(d, 0)
	d = binary.LittleEndian.AppendUint16(d, 0)
	d = binary.LittleEndian.AppendUint16(d, 2)
	d = binary.LittleEndian.AppendUint16(d, itemConnAddress)
	d = binary.LittleEndian.AppendUint16(d, 4)
	d = binary.LittleEndian.AppendUint32(d, connID)
	d = binary.LittleEndian.AppendUint16(d, itemConnData)
	d = binary.LittleEndian.AppendUint16(d, uint16(2+len(mr)))
	d = binary.LittleEndian.AppendUint16(d, seq)
	d = append(d, mr...)
	return appendEncap(nil, cmdSendUnitData, session, d)
}

// mr builds a message-router request: service, path size in words, path,
// data. path must have an even length.
func mr(service byte, path, data []byte) []byte {
	b := make([]byte, 0, 2+len(path)+len(data))
	b = append(b, service, byte(len(path)/2))
	b = append(b, path...)
	return append(b, data...)
}

// logical appends an 8-, 16- or 32-bit logical segment; kind is 0x20
// (class), 0x24 (instance) or 0x30 (attribute).
func logical(b []byte, kind byte, v uint32) []byte {
	switch {
	case v <= 0xFF:
		return append(b, kind, byte(v))
	case v <= 0xFFFF:
		return binary.LittleEndian.AppendUint16(append(b, kind|1, 0), uint16(v))
	}
	return binary.LittleEndian.AppendUint32(append(b, kind|2, 0), v)
}

func classInstance(class, inst uint32) []byte {
	return logical(logical(nil, 0x20, class), 0x24, inst)
}

// symbolic appends an ANSI extended symbolic segment (0x91, length, name,
// pad to a word).
func symbolic(b []byte, name string) []byte {
	b = append(b, 0x91, byte(len(name)))
	b = append(b, name...)
	if len(name)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// tagPath encodes "Program:Main.Tank.Level" or "Recipe.Times" as symbolic
// segments; "[n]" indexes become element segments.
func tagPath(tag string) ([]byte, error) {
	var b []byte
	if strings.HasPrefix(tag, "Program:") {
		prog, rest, ok := strings.Cut(tag, ".")
		if !ok {
			return nil, fmt.Errorf("tag %q: want Program:Name.Tag", tag)
		}
		b = symbolic(b, prog)
		tag = rest
	}
	for _, part := range strings.Split(tag, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		if name == "" || len(name) > 255 {
			return nil, fmt.Errorf("tag %q: empty or too long name part", tag)
		}
		b = symbolic(b, name)
		if hasIdx {
			idx, ok := strings.CutSuffix(idx, "]")
			if !ok {
				return nil, fmt.Errorf("tag %q: missing ]", tag)
			}
			for _, s := range strings.Split(idx, ",") {
				var n uint32
				if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d", &n); err != nil {
					return nil, fmt.Errorf("tag %q: index %q is not a number", tag, s)
				}
				b = logical(b, 0x28, n)
			}
		}
	}
	return b, nil
}

// forwardOpenMR builds a Forward Open (large or standard) to the message
// router behind route. Data: priority/tick 0x0A, timeout ticks 0x0E, O->T id
// 0 (the target chooses), T->O id, connection serial, vendor, originator
// serial, timeout multiplier 3 + 3 reserved, O->T RPI, O->T parameters,
// T->O RPI, T->O parameters, transport trigger 0xA3 (server, class 3),
// path size, path.
func forwardOpenMR(large bool, toID uint32, serial uint16, vendor uint16, origSerial uint32, size int, route []byte) []byte {
	d := []byte{0x0A, 0x0E}
	d = binary.LittleEndian.AppendUint32(d, 0)
	d = binary.LittleEndian.AppendUint32(d, toID)
	d = binary.LittleEndian.AppendUint16(d, serial)
	d = binary.LittleEndian.AppendUint16(d, vendor)
	d = binary.LittleEndian.AppendUint32(d, origSerial)
	d = append(d, 3, 0, 0, 0)
	const rpi = 2000000 // 2 s in microseconds
	for i := 0; i < 2; i++ {
		d = binary.LittleEndian.AppendUint32(d, rpi)
		if large {
			// owner 0, point-to-point (2<<29), low priority, variable size (1<<25).
			d = binary.LittleEndian.AppendUint32(d, 2<<29|1<<25|uint32(size))
		} else {
			d = binary.LittleEndian.AppendUint16(d, 2<<13|1<<9|uint16(size))
		}
	}
	d = append(d, 0xA3)
	path := append(append([]byte(nil), route...), 0x20, classMessageRouter, 0x24, 0x01)
	d = append(d, byte(len(path)/2))
	d = append(d, path...)
	svc := byte(svcForwardOpen)
	if large {
		svc = svcLargeForwardOpen
	}
	return mr(svc, classInstance(classConnManager, 1), d)
}

// forwardCloseMR: priority/tick, timeout ticks, connection serial, vendor,
// originator serial, path size, reserved, path.
func forwardCloseMR(serial uint16, vendor uint16, origSerial uint32, route []byte) []byte {
	d := []byte{0x0A, 0x0E}
	d = binary.LittleEndian.AppendUint16(d, serial)
	d = binary.LittleEndian.AppendUint16(d, vendor)
	d = binary.LittleEndian.AppendUint32(d, origSerial)
	path := append(append([]byte(nil), route...), 0x20, classMessageRouter, 0x24, 0x01)
	d = append(d, byte(len(path)/2), 0)
	d = append(d, path...)
	return mr(svcForwardClose, classInstance(classConnManager, 1), d)
}

// unconnectedSendMR routes an embedded request through the Connection
// Manager: priority/tick, timeout ticks, embedded size, embedded request,
// pad if odd, route size in words, reserved, route.
func unconnectedSendMR(inner, route []byte) []byte {
	d := []byte{0x0A, 0x0E}
	d = binary.LittleEndian.AppendUint16(d, uint16(len(inner)))
	d = append(d, inner...)
	if len(inner)%2 == 1 {
		d = append(d, 0)
	}
	d = append(d, byte(len(route)/2), 0)
	d = append(d, route...)
	return mr(svcUnconnectedSend, classInstance(classConnManager, 1), d)
}

// multipleMR packs requests into a Multiple Service Packet to the message
// router: count, offsets from the count, requests.
func multipleMR(reqs [][]byte) []byte {
	d := binary.LittleEndian.AppendUint16(nil, uint16(len(reqs)))
	off := 2 + 2*len(reqs)
	for _, r := range reqs {
		d = binary.LittleEndian.AppendUint16(d, uint16(off))
		off += len(r)
	}
	for _, r := range reqs {
		d = append(d, r...)
	}
	return mr(svcMultipleService, classInstance(classMessageRouter, 1), d)
}

// attrListMR is Get Attribute List: count, attribute ids.
func attrListMR(class, inst uint32, attrs ...uint16) []byte {
	d := binary.LittleEndian.AppendUint16(nil, uint16(len(attrs)))
	for _, a := range attrs {
		d = binary.LittleEndian.AppendUint16(d, a)
	}
	return mr(svcGetAttributeList, classInstance(class, inst), d)
}

// symbolListMR is Get Instance Attribute List on the Symbol object from
// instance start, asking for attributes 1 (name), 2 (type) and, with
// dims, 8 (array dimensions); program scopes prefix the "Program:Name"
// segment.
func symbolListMR(program string, start uint32, dims bool) []byte {
	var p []byte
	if program != "" {
		p = symbolic(p, "Program:"+program)
	}
	p = append(p, 0x20, classSymbol)
	// 16-bit instance segment, as Logix clients send it even for small
	// instances; 32-bit above 0xFFFF.
	if start <= 0xFFFF {
		p = binary.LittleEndian.AppendUint16(append(p, 0x25, 0), uint16(start))
	} else {
		p = binary.LittleEndian.AppendUint32(append(p, 0x26, 0), start)
	}
	if !dims {
		return mr(svcGetInstanceAttributeList, p, []byte{0x02, 0x00, 0x01, 0x00, 0x02, 0x00})
	}
	return mr(svcGetInstanceAttributeList, p, []byte{0x03, 0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x00})
}

// readTemplateMR is Read on a Template instance: offset (u32), bytes (u16).
func readTemplateMR(inst uint32, offset uint32, n uint16) []byte {
	d := binary.LittleEndian.AppendUint32(nil, offset)
	d = binary.LittleEndian.AppendUint16(d, n)
	return mr(svcReadTag, classInstance(classTemplate, inst), d)
}

// readTagMR is Read Tag for one element.
func readTagMR(path []byte) []byte { return mr(svcReadTag, path, []byte{0x01, 0x00}) }

// pathTarget reads the first segments of a request path: leading ANSI
// extended symbolic segments (0x91) are skipped and counted, then the first
// logical class segment (8- or 16-bit) is returned. ok is false for a path
// that cannot be walked (a truncated segment or one of another type before
// the class).
func pathTarget(path []byte) (class uint32, hasClass bool, symbols int, ok bool) {
	for len(path) > 0 {
		switch path[0] {
		case 0x91:
			if len(path) < 2 {
				return 0, false, symbols, false
			}
			n := 2 + int(path[1])
			n += n % 2
			if len(path) < n {
				return 0, false, symbols, false
			}
			symbols++
			path = path[n:]
		case 0x20:
			if len(path) < 2 {
				return 0, false, symbols, false
			}
			return uint32(path[1]), true, symbols, true
		case 0x21:
			if len(path) < 4 {
				return 0, false, symbols, false
			}
			return uint32(binary.LittleEndian.Uint16(path[2:])), true, symbols, true
		default:
			// Element, member or other segments only after a symbol.
			return 0, false, symbols, symbols > 0
		}
	}
	return 0, false, symbols, symbols > 0
}

// readClasses are the classes whose attributes the connector may read with
// Get Attributes All (0x01), Get Attribute List (0x03) and Get Attribute
// Single (0x0E): Identity, Symbol, Template and controller properties.
var readClasses = sync.OnceValue(func() map[uint32]bool {
	return map[uint32]bool{classIdentity: true, classSymbol: true, classTemplate: true, classControllerProp: true}
})

// embeddedReads are the kinds that may travel inside a Multiple Service
// Packet or an Unconnected Send: reads only, no connection management and
// no nested packet.
var embeddedReads = sync.OnceValue(func() map[string]bool {
	return map[string]bool{
		KindGetAttributesAll: true, KindGetAttributeList: true, KindGetAttributeSingle: true,
		KindGetInstanceAttributeList: true, KindReadTag: true, KindReadTagFragmented: true, KindReadTemplate: true,
	}
})

// mrKind names a message-router request for the gate by its (service,
// class) pair. ok is true only for the pairs the connector may send:
//
//	0x01, 0x03, 0x0E  Get Attributes All/List/Single on Identity 0x01, Symbol 0x6B, Template 0x6C, 0xAC
//	0x4C, 0x52        Read Tag (Fragmented) on a symbolic path or a Symbol 0x6B instance
//	0x4C, 0x4B        Read Template on Template 0x6C
//	0x55              Get Instance Attribute List on Symbol 0x6B (optionally program-scoped) or Template 0x6C
//	0x0A              Multiple Service Packet on the Message Router 0x02
//	0x54, 0x5B, 0x4E  (Large) Forward Open and Forward Close on the Connection Manager 0x06
//	0x52              Unconnected Send on 0x06, named by the read it carries
//
// Anything else, whatever its service code means on its class (Read-Modify-
// Write Tag 0x4E, File object 0x37 transfers, the Data Table 0xB2 services
// gologix's DataTableBuffer sends), is refused: kind then names the
// service and class for the error, and ok is false.
func mrKind(b []byte) (kind string, ok bool) {
	if len(b) < 2 || len(b) < 2+int(b[1])*2 {
		return "cip.Malformed", false
	}
	svc, path, data := b[0], b[2:2+int(b[1])*2], b[2+int(b[1])*2:]
	class, hasClass, symbols, walked := pathTarget(path)
	if !walked {
		return fmt.Sprintf("cip.Service0x%02X(bad path)", svc), false
	}
	on := func(c uint32) bool { return hasClass && class == c }
	refused := func(name string) (string, bool) {
		if hasClass {
			return fmt.Sprintf("%s(class 0x%02X)", name, class), false
		}
		return fmt.Sprintf("%s(symbolic path)", name), false
	}
	switch svc {
	case svcGetAttributesAll:
		if hasClass && symbols == 0 && readClasses()[class] {
			return KindGetAttributesAll, true
		}
		return refused(KindGetAttributesAll)
	case svcGetAttributeList:
		if hasClass && symbols == 0 && readClasses()[class] {
			return KindGetAttributeList, true
		}
		return refused(KindGetAttributeList)
	case svcGetAttributeSingle:
		if hasClass && symbols == 0 && readClasses()[class] {
			return KindGetAttributeSingle, true
		}
		return refused(KindGetAttributeSingle)
	case svcGetInstanceAttributeList:
		if on(classSymbol) && symbols <= 1 || on(classTemplate) && symbols == 0 {
			return KindGetInstanceAttributeList, true
		}
		return refused(KindGetInstanceAttributeList)
	case svcMultipleService:
		if on(classMessageRouter) && symbols == 0 {
			return KindMultipleServicePacket, true
		}
		return refused(KindMultipleServicePacket)
	case svcReadTag:
		switch {
		case on(classTemplate) && symbols == 0:
			return KindReadTemplate, true
		case !hasClass && symbols > 0, on(classSymbol):
			return KindReadTag, true
		}
		return refused("cip.Service0x4C")
	case svcReadTemplateAlt:
		if on(classTemplate) && symbols == 0 {
			return KindReadTemplate, true
		}
		return refused("cip.Service0x4B")
	case svcForwardOpen:
		if on(classConnManager) && symbols == 0 {
			return KindForwardOpen, true
		}
		return refused("cip.Service0x54")
	case svcLargeForwardOpen:
		if on(classConnManager) && symbols == 0 {
			return KindLargeForwardOpen, true
		}
		return refused("cip.Service0x5B")
	case svcForwardClose:
		if on(classConnManager) && symbols == 0 {
			return KindForwardClose, true
		}
		// 0x4E on a tag is Read-Modify-Write Tag: a write.
		return refused("cip.ReadModifyWriteTag")
	case svcUnconnectedSend:
		switch {
		case on(classConnManager) && symbols == 0:
			if len(data) < 4 {
				return "cip.UnconnectedSend(truncated)", false
			}
			n := int(binary.LittleEndian.Uint16(data[2:]))
			if len(data) < 4+n {
				return "cip.UnconnectedSend(truncated)", false
			}
			k, ok := mrKind(data[4 : 4+n])
			if !ok || !embeddedReads()[k] {
				return "cip.UnconnectedSend carrying " + k, false
			}
			return k, true
		case !hasClass && symbols > 0, on(classSymbol):
			return KindReadTagFragmented, true
		}
		return refused("cip.Service0x52")
	}
	return refused(fmt.Sprintf("cip.Service0x%02X", svc))
}

// requestKind names an outgoing frame from its bytes, and lists the kinds
// of requests embedded in a Multiple Service Packet.
func requestKind(frame []byte) (kind string, embedded []string, err error) {
	if len(frame) < encapHeaderLen {
		return "", nil, fmt.Errorf("frame of %d bytes: %w", len(frame), errShort)
	}
	cmd := binary.LittleEndian.Uint16(frame)
	data := frame[encapHeaderLen:]
	switch cmd {
	case cmdRegisterSession:
		return KindRegisterSession, nil, nil
	case cmdUnregisterSession:
		return KindUnregisterSession, nil, nil
	case cmdListIdentity:
		return KindListIdentity, nil, nil
	case cmdSendRRData, cmdSendUnitData:
	default:
		k := fmt.Sprintf("cip.Command0x%04X", cmd)
		return k, nil, fmt.Errorf("outgoing encapsulation command %s: %w", k, connectors.ErrNotAllowed)
	}
	items, err := parseCPF(data)
	if err != nil || len(items) < 2 {
		return "", nil, fmt.Errorf("outgoing frame: bad common packet: %v", err)
	}
	m := items[1].Data
	if cmd == cmdSendUnitData {
		if len(m) < 2 {
			return "", nil, fmt.Errorf("outgoing frame: connected data: %w", errShort)
		}
		m = m[2:]
	}
	kind, ok := mrKind(m)
	if !ok {
		return kind, nil, fmt.Errorf("outgoing request %s: %w", kind, connectors.ErrNotAllowed)
	}
	if kind == KindMultipleServicePacket {
		reqs, err := splitMultiple(m[2+int(m[1])*2:])
		if err != nil {
			return "", nil, fmt.Errorf("outgoing frame: %w", err)
		}
		if len(reqs) == 0 {
			return "", nil, fmt.Errorf("outgoing frame: empty multiple service packet")
		}
		for _, r := range reqs {
			k, ok := mrKind(r)
			if !ok || !embeddedReads()[k] {
				return kind, nil, fmt.Errorf("outgoing multiple service packet carrying %s: %w", k, connectors.ErrNotAllowed)
			}
			embedded = append(embedded, k)
		}
	}
	return kind, embedded, nil
}

// splitMultiple splits Multiple Service Packet data (request or reply):
// count (u16), offsets (u16 each, from the count), parts.
func splitMultiple(d []byte) ([][]byte, error) {
	if len(d) < 2 {
		return nil, fmt.Errorf("multiple service packet: %w", errShort)
	}
	n := int(binary.LittleEndian.Uint16(d))
	if len(d) < 2+2*n {
		return nil, fmt.Errorf("multiple service packet: %d offsets: %w", n, errShort)
	}
	parts := make([][]byte, n)
	for i := 0; i < n; i++ {
		start := int(binary.LittleEndian.Uint16(d[2+2*i:]))
		end := len(d)
		if i+1 < n {
			end = int(binary.LittleEndian.Uint16(d[2+2*(i+1):]))
		}
		if start < 2+2*n || start > end || end > len(d) {
			return nil, fmt.Errorf("multiple service packet: part %d at %d..%d outside %d bytes", i, start, end, len(d))
		}
		parts[i] = d[start:end]
	}
	return parts, nil
}

type cpfItem struct {
	Type uint16
	Data []byte
}

// parseCPF parses interface handle (u32), timeout (u16), item count (u16)
// and items (type u16, length u16, data).
func parseCPF(b []byte) ([]cpfItem, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("common packet: %d bytes: %w", len(b), errShort)
	}
	n := int(binary.LittleEndian.Uint16(b[6:]))
	b = b[8:]
	if n > 8 {
		return nil, fmt.Errorf("common packet: %d items, want at most 8", n)
	}
	items := make([]cpfItem, 0, n)
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("common packet item %d: %w", i, errShort)
		}
		l := int(binary.LittleEndian.Uint16(b[2:]))
		if len(b) < 4+l {
			return nil, fmt.Errorf("common packet item %d: length %d: %w", i, l, errShort)
		}
		items = append(items, cpfItem{Type: binary.LittleEndian.Uint16(b), Data: b[4 : 4+l]})
		b = b[4+l:]
	}
	return items, nil
}

// mrReply is a parsed message-router reply.
type mrReply struct {
	Service  byte // request service (reply bit cleared)
	Status   byte
	Extended []uint16
	Data     []byte
}

// err returns the reply's status as an error, nil for success; partial
// transfer counts as success when partialOK.
func (r mrReply) err(partialOK bool) error {
	if r.Status == statusOK || (partialOK && r.Status == statusPartialTransfer) {
		return nil
	}
	return &StatusError{Service: r.Service, Status: r.Status, Extended: r.Extended}
}

// parseMRReply parses service|0x80, reserved, general status, extended
// status size (words), extended status, data.
func parseMRReply(b []byte) (mrReply, error) {
	if len(b) < 4 {
		return mrReply{}, fmt.Errorf("message router reply: %d bytes: %w", len(b), errShort)
	}
	if b[0]&0x80 == 0 {
		return mrReply{}, fmt.Errorf("message router reply: service 0x%02X is not a reply", b[0])
	}
	n := int(b[3])
	if len(b) < 4+2*n {
		return mrReply{}, fmt.Errorf("message router reply: %d extended status words: %w", n, errShort)
	}
	r := mrReply{Service: b[0] &^ 0x80, Status: b[2], Data: b[4+2*n:]}
	for i := 0; i < n; i++ {
		r.Extended = append(r.Extended, binary.LittleEndian.Uint16(b[4+2*i:]))
	}
	return r, nil
}

// parseReplyFrame checks an encapsulation reply (command, status, session)
// and returns the message-router reply it carries (for SendRRData and
// SendUnitData) or its data (for RegisterSession).
func parseReplyFrame(frame []byte, wantCmd uint16) (session uint32, payload []byte, err error) {
	if len(frame) < encapHeaderLen {
		return 0, nil, fmt.Errorf("encapsulation reply: %d bytes: %w", len(frame), errShort)
	}
	cmd := binary.LittleEndian.Uint16(frame)
	n := int(binary.LittleEndian.Uint16(frame[2:]))
	session = binary.LittleEndian.Uint32(frame[4:])
	status := binary.LittleEndian.Uint32(frame[8:])
	data := frame[encapHeaderLen:]
	if cmd != wantCmd {
		return 0, nil, fmt.Errorf("encapsulation reply: command 0x%04X, want 0x%04X", cmd, wantCmd)
	}
	if status != 0 {
		return 0, nil, fmt.Errorf("encapsulation reply: status 0x%04X", status)
	}
	if len(data) != n {
		return 0, nil, fmt.Errorf("encapsulation reply: length %d, got %d bytes: %w", n, len(data), errShort)
	}
	if cmd == cmdRegisterSession || cmd == cmdListIdentity {
		return session, data, nil
	}
	items, err := parseCPF(data)
	if err != nil {
		return 0, nil, err
	}
	if len(items) < 2 {
		return 0, nil, fmt.Errorf("encapsulation reply: %d items, want 2", len(items))
	}
	d := items[1].Data
	if cmd == cmdSendUnitData {
		if items[1].Type != itemConnData || len(d) < 2 {
			return 0, nil, fmt.Errorf("encapsulation reply: connected data item: %w", errShort)
		}
		d = d[2:]
	} else if items[1].Type != itemUnconnData {
		return 0, nil, fmt.Errorf("encapsulation reply: item type 0x%04X, want unconnected data", items[1].Type)
	}
	return session, d, nil
}
