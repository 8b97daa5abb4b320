package logix

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EtherNet/IP encapsulation commands (CIP Vol. 2, table 2-3.2).
const (
	cmdNop               = 0x0000
	cmdListServices      = 0x0004
	cmdListIdentity      = 0x0063
	cmdListInterfaces    = 0x0064
	cmdRegisterSession   = 0x0065
	cmdUnregisterSession = 0x0066
	cmdSendRRData        = 0x006F
	cmdSendUnitData      = 0x0070
)

// Encapsulation status codes (CIP Vol. 2, table 2-3.3).
const (
	encapInvalidCommand = 0x0001
	encapInvalidLength  = 0x0065
	encapInvalidSession = 0x0064
)

// Common packet format item types (CIP Vol. 2, table 2-6.3).
const (
	itemNull          = 0x0000
	itemListIdentity  = 0x000C
	itemConnAddress   = 0x00A1
	itemConnData      = 0x00B1
	itemUnconnData    = 0x00B2
	itemListServices  = 0x0100
	encapHeaderLength = 24
	// maxEncapData bounds the data a request may announce; a frame longer
	// than this is refused before it is read.
	maxEncapData = 65511
)

// CIP general status codes (CIP Vol. 1, appendix B).
const (
	statusOK                  = 0x00
	statusConnectionFailure   = 0x01
	statusPathSegmentError    = 0x04
	statusPathDestUnknown     = 0x05
	statusPartialTransfer     = 0x06
	statusServiceNotSupported = 0x08
	statusAttrNotSupported    = 0x14
	statusNotEnoughData       = 0x13
	statusTooMuchData         = 0x15
	statusEmbeddedError       = 0x1E
	statusGeneralError        = 0x1F
	statusInvalidParameter    = 0x20
)

// encapHeader is the 24-byte EtherNet/IP encapsulation header. All fields
// are little-endian.
type encapHeader struct {
	Command uint16
	Length  uint16
	Session uint32
	Status  uint32
	Context [8]byte
	Options uint32
}

func parseEncapHeader(b []byte) (encapHeader, error) {
	var h encapHeader
	if len(b) < encapHeaderLength {
		return h, fmt.Errorf("encapsulation header: %d bytes, want %d", len(b), encapHeaderLength)
	}
	h.Command = binary.LittleEndian.Uint16(b[0:])
	h.Length = binary.LittleEndian.Uint16(b[2:])
	h.Session = binary.LittleEndian.Uint32(b[4:])
	h.Status = binary.LittleEndian.Uint32(b[8:])
	copy(h.Context[:], b[12:20])
	h.Options = binary.LittleEndian.Uint32(b[20:])
	return h, nil
}

func (h encapHeader) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, h.Command)
	b = binary.LittleEndian.AppendUint16(b, h.Length)
	b = binary.LittleEndian.AppendUint32(b, h.Session)
	b = binary.LittleEndian.AppendUint32(b, h.Status)
	b = append(b, h.Context[:]...)
	return binary.LittleEndian.AppendUint32(b, h.Options)
}

// frame builds a whole encapsulation frame: header (with Length set) plus data.
func frame(h encapHeader, data []byte) []byte {
	h.Length = uint16(len(data))
	b := h.append(make([]byte, 0, encapHeaderLength+len(data)))
	return append(b, data...)
}

// cpfItem is one common-packet-format item.
type cpfItem struct {
	Type uint16
	Data []byte
}

// parseCPF parses the data of SendRRData / SendUnitData: interface handle
// (u32), timeout (u16), item count (u16), then items (type u16, length u16,
// data).
func parseCPF(b []byte) ([]cpfItem, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("common packet: %d bytes, want at least 8", len(b))
	}
	n := int(binary.LittleEndian.Uint16(b[6:]))
	b = b[8:]
	if n > 8 {
		return nil, fmt.Errorf("common packet: %d items, want at most 8", n)
	}
	items := make([]cpfItem, 0, n)
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("common packet item %d: truncated header", i)
		}
		t := binary.LittleEndian.Uint16(b)
		l := int(binary.LittleEndian.Uint16(b[2:]))
		if len(b) < 4+l {
			return nil, fmt.Errorf("common packet item %d: length %d exceeds the %d bytes left", i, l, len(b)-4)
		}
		items = append(items, cpfItem{Type: t, Data: b[4 : 4+l]})
		b = b[4+l:]
	}
	return items, nil
}

// appendCPF writes interface handle 0, timeout 0 and the items.
func appendCPF(b []byte, items ...cpfItem) []byte {
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(items)))
	for _, it := range items {
		b = binary.LittleEndian.AppendUint16(b, it.Type)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(it.Data)))
		b = append(b, it.Data...)
	}
	return b
}

// mrRequest is a message-router request: service, path (in 16-bit words),
// request data.
type mrRequest struct {
	Service byte
	Path    []byte
	Data    []byte
}

func parseMR(b []byte) (mrRequest, error) {
	if len(b) < 2 {
		return mrRequest{}, fmt.Errorf("message router request: %d bytes, want at least 2", len(b))
	}
	pl := int(b[1]) * 2
	if len(b) < 2+pl {
		return mrRequest{}, fmt.Errorf("message router request: path of %d bytes exceeds the %d bytes left", pl, len(b)-2)
	}
	return mrRequest{Service: b[0], Path: b[2 : 2+pl], Data: b[2+pl:]}, nil
}

// mrReply builds a message-router reply: service|0x80, reserved, general
// status, extended status size in words, extended status, data.
func mrReply(service, status byte, ext []uint16, data []byte) []byte {
	b := make([]byte, 0, 4+2*len(ext)+len(data))
	b = append(b, service|0x80, 0, status, byte(len(ext)))
	for _, e := range ext {
		b = binary.LittleEndian.AppendUint16(b, e)
	}
	return append(b, data...)
}

// Segment kinds of a parsed EPATH.
const (
	segPort = iota + 1
	segClass
	segInstance
	segAttribute
	segElement
	segSymbol
)

// segment is one parsed EPATH segment.
type segment struct {
	Kind   int
	Value  uint32 // port number (for segPort the link address is Link), class, instance, attribute, element
	Link   []byte // port segment link address
	Symbol string // ANSI extended symbol
}

var errPath = errors.New("malformed path")

// parsePath decodes an EPATH made of port segments (CIP Vol. 1, C-1.4.3),
// 8/16/32-bit logical class, instance, attribute and element segments
// (C-1.4.4) and ANSI extended symbolic segments (0x91, C-1.4.5).
func parsePath(b []byte) ([]segment, error) {
	var segs []segment
	for len(b) > 0 {
		t := b[0]
		switch {
		case t&0xE0 == 0x00: // port segment
			port := uint32(t & 0x0F)
			extLink := t&0x10 != 0
			i := 1
			if port == 0x0F {
				if len(b) < 3 {
					return nil, fmt.Errorf("%w: truncated extended port", errPath)
				}
				port = uint32(binary.LittleEndian.Uint16(b[1:]))
				i = 3
			}
			if !extLink {
				if len(b) < i+1 {
					return nil, fmt.Errorf("%w: truncated port link", errPath)
				}
				segs = append(segs, segment{Kind: segPort, Value: port, Link: []byte{b[i]}})
				i++
			} else {
				if len(b) < i+1 {
					return nil, fmt.Errorf("%w: truncated port link size", errPath)
				}
				n := int(b[i])
				i++
				if len(b) < i+n {
					return nil, fmt.Errorf("%w: port link of %d bytes exceeds the path", errPath, n)
				}
				segs = append(segs, segment{Kind: segPort, Value: port, Link: append([]byte(nil), b[i:i+n]...)})
				i += n
			}
			if i%2 == 1 && len(b) > i { // pad to a word
				i++
			}
			if i > len(b) {
				i = len(b)
			}
			b = b[i:]
		case t&0xE0 == 0x20: // logical segment
			kind := 0
			switch t & 0x1C {
			case 0x00:
				kind = segClass
			case 0x04:
				kind = segInstance
			case 0x08:
				kind = segElement
			case 0x10:
				kind = segAttribute
			default:
				return nil, fmt.Errorf("%w: logical segment type 0x%02x not supported", errPath, t)
			}
			var v uint32
			switch t & 0x03 {
			case 0:
				if len(b) < 2 {
					return nil, fmt.Errorf("%w: truncated 8-bit logical segment", errPath)
				}
				v, b = uint32(b[1]), b[2:]
			case 1:
				if len(b) < 4 {
					return nil, fmt.Errorf("%w: truncated 16-bit logical segment", errPath)
				}
				v, b = uint32(binary.LittleEndian.Uint16(b[2:])), b[4:]
			case 2:
				if len(b) < 6 {
					return nil, fmt.Errorf("%w: truncated 32-bit logical segment", errPath)
				}
				v, b = binary.LittleEndian.Uint32(b[2:]), b[6:]
			default:
				return nil, fmt.Errorf("%w: reserved logical format in 0x%02x", errPath, t)
			}
			segs = append(segs, segment{Kind: kind, Value: v})
		case t == 0x91: // ANSI extended symbolic
			if len(b) < 2 {
				return nil, fmt.Errorf("%w: truncated symbolic segment", errPath)
			}
			n := int(b[1])
			if len(b) < 2+n {
				return nil, fmt.Errorf("%w: symbol of %d bytes exceeds the path", errPath, n)
			}
			segs = append(segs, segment{Kind: segSymbol, Symbol: string(b[2 : 2+n])})
			n += 2
			if n%2 == 1 {
				n++
			}
			if n > len(b) {
				n = len(b)
			}
			b = b[n:]
		default:
			return nil, fmt.Errorf("%w: segment type 0x%02x not supported", errPath, t)
		}
	}
	return segs, nil
}
