package s7

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// This file builds the telegrams the connector sends and decodes the
// replies. Offsets in comments count from the first byte of the TPKT
// header for requests and from the first byte of the S7 PDU for replies.

// Request kinds as the gate sees them. Only these are on the allowlist.
const (
	kindConnect  = "s7.Connect"            // COTP connection request
	kindSetup    = "s7.SetupCommunication" // PDU negotiation
	kindReadVar  = "s7.ReadVar"
	kindSZL      = "s7.SZL"
	kindListAll  = "s7.ListBlocks"
	kindList     = "s7.BlockList"
	kindInfo     = "s7.BlockInfo"
	kindRejected = "s7.Unparsed" // bytes the decoder does not recognize
)

// Allowlist is the S7 connector's read-only request kinds.
var Allowlist = []string{kindConnect, kindSetup, kindReadVar, kindSZL, kindListAll, kindList, kindInfo}

// S7 PDU types (ROSCTR).
const (
	rosJob      = 0x01
	rosAck      = 0x02
	rosAckData  = 0x03
	rosUserdata = 0x07
)

// Userdata groups and subfunctions used.
const (
	grpBlock    = 0x3
	grpCPU      = 0x4
	subListAll  = 0x01
	subListType = 0x02
	subInfo     = 0x03
	subSZL      = 0x01
)

// Block type codes on the wire.
var blockTypeCodes = sync.OnceValue(func() map[string]byte {
	return map[string]byte{"OB": 0x38, "DB": 0x41, "SDB": 0x42, "FC": 0x43, "SFC": 0x44, "FB": 0x45, "SFB": 0x46}
})

// blockTypes lists the types in the order they are read.
var blockTypes = []string{"OB", "FB", "FC", "DB", "SDB", "SFC", "SFB"}

func blockTypeName(code byte) string {
	for t, c := range blockTypeCodes() {
		if c == code {
			return t
		}
	}
	return ""
}

// decodeKind names a telegram from its bytes. Anything that is not one of
// the reads the connector knows is named too, so that the gate refuses it
// before it reaches the wire.
func decodeKind(b []byte) string {
	if len(b) < 7 || b[0] != 0x03 || b[1] != 0x00 || int(binary.BigEndian.Uint16(b[2:])) != len(b) {
		return kindRejected
	}
	li := int(b[4])
	if li < 2 || 5+li > len(b) {
		return kindRejected
	}
	switch b[5] & 0xF0 {
	case 0xE0:
		return kindConnect
	case 0xF0:
	default:
		return kindRejected
	}
	// One whole S7 PDU per telegram: a data TPDU without EOT would be
	// joined by the CPU to whatever comes next, and bytes after the PDU
	// could be a second request the gate never saw.
	if li != 2 || b[6]&0x80 == 0 {
		return kindRejected
	}
	p := b[5+li:]
	if len(p) < 10 || p[0] != 0x32 {
		return kindRejected
	}
	plen, dlen := int(binary.BigEndian.Uint16(p[6:])), int(binary.BigEndian.Uint16(p[8:]))
	if len(p) != 10+plen+dlen {
		return kindRejected
	}
	switch p[1] {
	case rosJob:
		if plen < 1 {
			return kindRejected
		}
		switch p[10] {
		case 0xF0:
			return kindSetup
		case 0x04:
			return kindReadVar
		case 0x05:
			return "s7.WriteVar"
		case 0x1A, 0x1B, 0x1C:
			return "s7.Download"
		case 0x1D, 0x1E, 0x1F:
			return "s7.Upload"
		case 0x28:
			return "s7.PLCControl"
		case 0x29:
			return "s7.PLCStop"
		}
		return fmt.Sprintf("s7.Job(0x%02X)", p[10])
	case rosUserdata:
		if plen < 8 {
			return kindRejected
		}
		par := p[10:]
		if par[0] != 0 || par[1] != 1 || par[2] != 0x12 || par[5]>>4 != 0x4 {
			return kindRejected
		}
		group, sub := par[5]&0x0F, par[6]
		switch {
		case group == grpCPU && sub == subSZL:
			return kindSZL
		case group == grpBlock && sub == subListAll:
			return kindListAll
		case group == grpBlock && sub == subListType:
			return kindList
		case group == grpBlock && sub == subInfo:
			return kindInfo
		case group == 0x7 && sub == 0x01:
			return "s7.ClockRead"
		case group == 0x7:
			return "s7.ClockSet"
		case group == 0x5:
			return "s7.Password"
		}
		return fmt.Sprintf("s7.Userdata(%d,%d)", group, sub)
	}
	return kindRejected
}

// connectRequest builds a COTP CR (22 bytes) for the given TSAPs.
func connectRequest(local, remote uint16) []byte {
	return []byte{
		0x03, 0x00, 0x00, 22, // TPKT: version 3, reserved, length 22
		17,         // COTP length indicator
		0xE0,       // CR, credit 0
		0x00, 0x00, // destination reference
		0x00, 0x01, // source reference
		0x00,             // class 0
		0xC0, 0x01, 0x0A, // TPDU size 1024
		0xC1, 0x02, byte(local >> 8), byte(local), // calling TSAP
		0xC2, 0x02, byte(remote >> 8), byte(remote), // called TSAP
	}
}

// frame wraps an S7 PDU in TPKT and one COTP DT with EOT.
func frame(pdu []byte) []byte {
	n := 7 + len(pdu)
	return append([]byte{0x03, 0x00, byte(n >> 8), byte(n), 0x02, 0xF0, 0x80}, pdu...)
}

// jobHeader is an S7 job header with the PDU reference left 0 (the
// transport sets it).
func jobHeader(rosctr byte, plen, dlen int) []byte {
	return []byte{0x32, rosctr, 0x00, 0x00, 0x00, 0x00, byte(plen >> 8), byte(plen), byte(dlen >> 8), byte(dlen)}
}

// setupRequest asks for a PDU size: F0, reserved, max AmQ calling 1, max
// AmQ called 1, PDU size.
func setupRequest(pdu int) []byte {
	return frame(append(jobHeader(rosJob, 8, 0), 0xF0, 0x00, 0x00, 0x01, 0x00, 0x01, byte(pdu>>8), byte(pdu)))
}

// userdataRequest builds the first request of a userdata function:
// parameters 00 01 12 04 11 4<group> <subfn> 00, then data FF 09 <len>
// payload (or 0A 00 00 00 when payload is nil).
func userdataRequest(group, subfn byte, payload []byte) []byte {
	data := []byte{0x0A, 0x00, 0x00, 0x00}
	if payload != nil {
		data = append([]byte{0xFF, 0x09, byte(len(payload) >> 8), byte(len(payload))}, payload...)
	}
	par := []byte{0x00, 0x01, 0x12, 0x04, 0x11, 0x40 | group, subfn, 0x00}
	return frame(append(append(jobHeader(rosUserdata, len(par), len(data)), par...), data...))
}

// continuationRequest asks for the next page: parameters 00 01 12 08 12
// 4<group> <subfn> <seq> 00 00 00 00, data 0A 00 00 00.
func continuationRequest(group, subfn, seq byte) []byte {
	par := []byte{0x00, 0x01, 0x12, 0x08, 0x12, 0x40 | group, subfn, seq, 0x00, 0x00, 0x00, 0x00}
	data := []byte{0x0A, 0x00, 0x00, 0x00}
	return frame(append(append(jobHeader(rosUserdata, len(par), len(data)), par...), data...))
}

func szlRequest(id, index uint16) []byte {
	return userdataRequest(grpCPU, subSZL, []byte{byte(id >> 8), byte(id), byte(index >> 8), byte(index)})
}

func blockListRequest(typ string) []byte {
	return userdataRequest(grpBlock, subListType, []byte{0x30, blockTypeCodes()[typ]})
}

// blockInfoRequest asks for a block's info: 30, type code, the number in
// five ASCII digits, file system 'A'.
func blockInfoRequest(typ string, num int) []byte {
	return userdataRequest(grpBlock, subInfo, append([]byte{0x30, blockTypeCodes()[typ]}, []byte(fmt.Sprintf("%05dA", num))...))
}

// varItem is one Read Var item: bytes [start, start+count) of an area.
type varItem struct {
	area  byte
	db    int
	start int
	count int
}

// readVarRequest builds Read Var for byte items: 04, count, then per item
// 12 0A 10 02 (byte) count (2) DB (2) area bit-address (3).
func readVarRequest(items []varItem) []byte {
	par := []byte{0x04, byte(len(items))}
	for _, it := range items {
		addr := it.start << 3
		par = append(par, 0x12, 0x0A, 0x10, 0x02, byte(it.count>>8), byte(it.count), byte(it.db>>8), byte(it.db), it.area,
			byte(addr>>16), byte(addr>>8), byte(addr))
	}
	return frame(append(jobHeader(rosJob, len(par), 0), par...))
}

// pdu is a parsed S7 reply.
type pdu struct {
	rosctr byte
	ref    uint16
	err    uint16 // error class and code (ack and ack-data)
	param  []byte
	data   []byte
}

// parsePDU splits an S7 reply: 32, ROSCTR, redundancy id (2), PDU
// reference (2), parameter length (2), data length (2), for ack and
// ack-data the error class and code; then parameters and data.
func parsePDU(b []byte) (pdu, error) {
	if len(b) < 10 || b[0] != 0x32 {
		return pdu{}, fmt.Errorf("reply is not an S7 PDU (% x)", head(b))
	}
	p := pdu{rosctr: b[1], ref: binary.BigEndian.Uint16(b[4:])}
	hdr := 10
	switch p.rosctr {
	case rosAck, rosAckData:
		hdr = 12
		if len(b) < 12 {
			return pdu{}, fmt.Errorf("ack of %d bytes: want a 12-byte header", len(b))
		}
		p.err = binary.BigEndian.Uint16(b[10:])
	case rosUserdata:
	default:
		return pdu{}, fmt.Errorf("reply has PDU type %d: want 2, 3 or 7", p.rosctr)
	}
	plen, dlen := int(binary.BigEndian.Uint16(b[6:])), int(binary.BigEndian.Uint16(b[8:]))
	if len(b) < hdr+plen+dlen {
		return pdu{}, fmt.Errorf("reply of %d bytes is shorter than its header says (%d)", len(b), hdr+plen+dlen)
	}
	p.param = b[hdr : hdr+plen]
	p.data = b[hdr+plen : hdr+plen+dlen]
	return p, nil
}

func head(b []byte) []byte { return b[:min(len(b), 12)] }

// udReply is a parsed userdata reply.
type udReply struct {
	seq     byte
	more    bool
	payload []byte
}

// parseUserdataReply checks a userdata reply's parameters (00 01 12 08 12,
// 8<group>, subfunction, sequence, data unit reference, last data unit,
// error code) and data header (return code FF, transport size, length). A
// CPU error comes back as *DeviceError.
func parseUserdataReply(b []byte, group, subfn byte) (udReply, error) {
	p, err := parsePDU(b)
	if err != nil {
		return udReply{}, err
	}
	if p.rosctr != rosUserdata {
		if p.err != 0 {
			return udReply{}, &DeviceError{Code: p.err}
		}
		return udReply{}, fmt.Errorf("reply has PDU type %d: want userdata (7)", p.rosctr)
	}
	par := p.param
	if len(par) < 12 || par[0] != 0 || par[1] != 1 || par[2] != 0x12 {
		return udReply{}, fmt.Errorf("userdata reply parameters % x: want 12 bytes starting 00 01 12", par)
	}
	if par[5] != 0x80|group || par[6] != subfn {
		return udReply{}, fmt.Errorf("userdata reply for group %d function %d: asked group %d function %d", par[5]&0x0F, par[6], group, subfn)
	}
	if code := binary.BigEndian.Uint16(par[10:]); code != 0 {
		return udReply{}, &DeviceError{Code: code}
	}
	d := p.data
	if len(d) < 4 {
		return udReply{}, fmt.Errorf("userdata reply data of %d bytes: want at least 4", len(d))
	}
	if d[0] != 0xFF {
		return udReply{}, &DeviceError{Code: uint16(d[0]), Item: true}
	}
	n := int(binary.BigEndian.Uint16(d[2:]))
	if len(d) < 4+n {
		return udReply{}, fmt.Errorf("userdata reply says %d data bytes, has %d", n, len(d)-4)
	}
	return udReply{seq: par[7], more: par[9] != 0, payload: d[4 : 4+n]}, nil
}

// parseSetupReply returns the PDU size granted in an ack-data to Setup
// Communication (F0 00 AmQ AmQ PDU).
func parseSetupReply(b []byte) (int, error) {
	p, err := parsePDU(b)
	if err != nil {
		return 0, err
	}
	if p.err != 0 {
		return 0, &DeviceError{Code: p.err}
	}
	if p.rosctr != rosAckData || len(p.param) < 8 || p.param[0] != 0xF0 {
		return 0, fmt.Errorf("setup communication reply % x: want ack-data with F0 and 8 parameter bytes", head(b))
	}
	n := int(binary.BigEndian.Uint16(p.param[6:]))
	if n < 64 || n > 8192 {
		return 0, fmt.Errorf("CPU granted a PDU of %d bytes: want 64 to 8192", n)
	}
	return n, nil
}

// parseReadVarReply returns each item's bytes; an item the CPU refused
// comes back as nil with its code in codes.
func parseReadVarReply(b []byte, items []varItem) (data [][]byte, codes []byte, err error) {
	p, err := parsePDU(b)
	if err != nil {
		return nil, nil, err
	}
	if p.err != 0 {
		return nil, nil, &DeviceError{Code: p.err}
	}
	if p.rosctr != rosAckData || len(p.param) < 2 || p.param[0] != 0x04 {
		return nil, nil, fmt.Errorf("read var reply % x: want ack-data with function 04", head(b))
	}
	if int(p.param[1]) != len(items) {
		return nil, nil, fmt.Errorf("read var reply has %d items, asked for %d", p.param[1], len(items))
	}
	d := p.data
	data, codes = make([][]byte, len(items)), make([]byte, len(items))
	for i, it := range items {
		if i > 0 && (len(p.data)-len(d))%2 == 1 {
			if len(d) < 1 {
				return nil, nil, fmt.Errorf("read var reply item %d: cut off", i)
			}
			d = d[1:] // fill byte: items start at even offsets
		}
		if len(d) < 4 {
			return nil, nil, fmt.Errorf("read var reply item %d: %d bytes left, want a 4-byte header", i, len(d))
		}
		codes[i] = d[0]
		if d[0] != 0xFF {
			d = d[4:]
			continue
		}
		n := int(binary.BigEndian.Uint16(d[2:]))
		switch d[1] {
		case 0x03, 0x07, 0x09: // bit, real, octet string: length in bytes (bits for 0x03 count 1)
		default: // byte/word/dword and integers: length in bits
			n /= 8
		}
		if n != it.count {
			return nil, nil, fmt.Errorf("read var reply item %d has %d bytes, asked for %d", i, n, it.count)
		}
		if len(d) < 4+n {
			return nil, nil, fmt.Errorf("read var reply item %d: %d bytes left, want %d", i, len(d)-4, n)
		}
		data[i] = d[4 : 4+n]
		d = d[4+n:]
	}
	return data, codes, nil
}

// szlList is a decoded SZL partial list.
type szlList struct {
	id, index uint16
	records   [][]byte
}

// parseSZL decodes a reassembled SZL: id (2), index (2), record length
// (2), record count (2), records.
func parseSZL(b []byte, id uint16) (szlList, error) {
	if len(b) < 8 {
		return szlList{}, fmt.Errorf("SZL 0x%04X of %d bytes: want an 8-byte header", id, len(b))
	}
	l := szlList{id: binary.BigEndian.Uint16(b), index: binary.BigEndian.Uint16(b[2:])}
	if l.id != id {
		return szlList{}, fmt.Errorf("SZL reply is for 0x%04X, asked 0x%04X", l.id, id)
	}
	size, n := int(binary.BigEndian.Uint16(b[4:])), int(binary.BigEndian.Uint16(b[6:]))
	if n > 0 && size == 0 {
		return szlList{}, fmt.Errorf("SZL 0x%04X has %d records of 0 bytes", id, n)
	}
	if len(b)-8 < size*n {
		return szlList{}, fmt.Errorf("SZL 0x%04X is cut off: %d records of %d bytes need %d, got %d", id, n, size, size*n, len(b)-8)
	}
	for i := 0; i < n; i++ {
		l.records = append(l.records, b[8+i*size:8+(i+1)*size])
	}
	return l, nil
}

// text decodes a fixed-size text field (Windows-1252, as every S7 text),
// dropping NUL and space padding.
func text(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(decodeCP1252(b))
}

// identity is what SZL 0x0011 says about a module.
type identity struct {
	orderCode  string
	hardware   int
	firmware   string
	bootLoader string
}

// decodeIdentity reads SZL 0x0011 records of at least 28 bytes: index (2),
// order number (20), module type (2), Ausbg (2), Ausbe (2). Index 1 holds
// the order number, 6 the hardware version, 7 the firmware ('V' major,
// minor patch), 0x81 the boot loader.
func decodeIdentity(l szlList) (identity, error) {
	var id identity
	for _, r := range l.records {
		if len(r) < 28 {
			return identity{}, fmt.Errorf("SZL 0x0011 record of %d bytes: want 28", len(r))
		}
		switch binary.BigEndian.Uint16(r) {
		case 0x0001:
			id.orderCode = text(r[2:22])
			if id.hardware == 0 {
				id.hardware = int(binary.BigEndian.Uint16(r[24:]))
			}
		case 0x0006:
			id.hardware = int(binary.BigEndian.Uint16(r[24:]))
		case 0x0007:
			id.firmware = version(r[24:28])
		case 0x0081:
			id.bootLoader = version(r[24:28])
		}
	}
	return id, nil
}

// version formats Ausbg/Ausbe as "V3.2.6" when Ausbg starts with a letter.
func version(b []byte) string {
	if b[0] >= 'A' && b[0] <= 'Z' {
		return fmt.Sprintf("%c%d.%d.%d", b[0], b[1], b[2], b[3])
	}
	return fmt.Sprintf("%d.%d.%d", binary.BigEndian.Uint16(b), b[2], b[3])
}

// components maps SZL 0x001C record indexes to their names and text sizes.
var components = map[uint16]struct {
	name string
	size int
}{
	0x0001: {"as_name", 24}, 0x0002: {"module_name", 24}, 0x0003: {"plant_id", 32},
	0x0004: {"copyright", 26}, 0x0005: {"serial", 24}, 0x0007: {"module_type", 32},
	0x0008: {"memory_card_serial", 32}, 0x000B: {"location", 32},
}

// decodeComponents reads SZL 0x001C records (index (2) then 32 bytes) into
// named texts; empty texts are left out.
func decodeComponents(l szlList) (map[string]string, error) {
	out := map[string]string{}
	for _, r := range l.records {
		if len(r) < 34 {
			return nil, fmt.Errorf("SZL 0x001C record of %d bytes: want 34", len(r))
		}
		c, ok := components[binary.BigEndian.Uint16(r)]
		if !ok {
			continue
		}
		if t := text(r[2 : 2+c.size]); t != "" {
			out[c.name] = t
		}
	}
	return out, nil
}

// protection is SZL 0x0232 index 4.
type protection struct {
	switchLevel, paramLevel, level, keySwitch, startup uint16
}

// decodeProtection reads the record: index (2), sch_schal, sch_par,
// sch_rel, bart_sch, anl_sch (2 bytes each).
func decodeProtection(l szlList) (protection, error) {
	if len(l.records) != 1 || len(l.records[0]) < 12 {
		return protection{}, fmt.Errorf("SZL 0x0232: want one record of at least 12 bytes, got %d", len(l.records))
	}
	r := l.records[0]
	u := func(i int) uint16 { return binary.BigEndian.Uint16(r[i:]) }
	return protection{switchLevel: u(2), paramLevel: u(4), level: u(6), keySwitch: u(8), startup: u(10)}, nil
}

var keySwitchNames = sync.OnceValue(func() map[uint16]string {
	return map[uint16]string{0: "undefined", 1: "RUN", 2: "RUN-P", 3: "STOP", 4: "MRES"}
})

// modeNames names the SZL 0x0424 mode ids (bits 0-3 of bzu-id): the
// coarse mode and its detail.
var modeNames = sync.OnceValue(func() map[byte][2]string {
	return map[byte][2]string{
		0x1: {"STOP", "update"}, 0x2: {"STOP", "memory reset"}, 0x3: {"STOP", "self initialization"},
		0x4: {"STOP", "internal"}, 0x5: {"STARTUP", "complete restart"}, 0x6: {"STARTUP", "cold restart"},
		0x7: {"STARTUP", "restart"}, 0x8: {"RUN", ""}, 0x9: {"RUN", "redundant"}, 0xA: {"HOLD", ""},
		0xB: {"LINK-UP", ""}, 0xC: {"UPDATE", ""}, 0xD: {"DEFECT", ""}, 0xE: {"TROUBLESHOOTING", ""}, 0xF: {"NO POWER", ""},
	}
})

// status is SZL 0x0424.
type status struct {
	code       byte
	mode       string
	detail     string
	transition time.Time // zero when the record's timestamp is not valid BCD
}

// decodeStatus reads the record: event id (2), ae, bzu-id (bits 0-3 the
// mode), reserved (4), startup info (4), DATE_AND_TIME of the transition (8).
func decodeStatus(l szlList) (status, error) {
	if len(l.records) < 1 || len(l.records[0]) < 4 {
		return status{}, errors.New("SZL 0x0424: want a record of at least 4 bytes")
	}
	r := l.records[0]
	st := status{code: r[3] & 0x0F, mode: "UNKNOWN"}
	if n, ok := modeNames()[st.code]; ok {
		st.mode, st.detail = n[0], n[1]
	}
	if len(r) >= 20 {
		st.transition, _ = parseDateAndTime(r[12:20])
	}
	return st, nil
}

// parseDateAndTime decodes an S7 DATE_AND_TIME (BCD: year, month, day,
// hour, minute, second, ms (3 digits), weekday).
func parseDateAndTime(b []byte) (time.Time, error) {
	var d [7]int
	for i := 0; i < 6; i++ {
		hi, lo := int(b[i]>>4), int(b[i]&0x0F)
		if hi > 9 || lo > 9 {
			return time.Time{}, errors.New("not BCD")
		}
		d[i] = hi*10 + lo
	}
	ms := int(b[6]>>4)*100 + int(b[6]&0x0F)*10 + int(b[7]>>4)
	year := 1900 + d[0]
	if d[0] < 90 {
		year = 2000 + d[0]
	}
	if d[1] < 1 || d[1] > 12 || d[2] < 1 || d[2] > 31 || d[3] > 23 || d[4] > 59 || d[5] > 59 || ms > 999 {
		return time.Time{}, errors.New("date out of range")
	}
	return time.Date(year, time.Month(d[1]), d[2], d[3], d[4], d[5], ms*1e6, time.UTC), nil
}

// module is an SZL 0x0D91 record.
type module struct {
	rack, slot, submodule int
	logical               uint16
	expected, actual      uint16
	status                uint16
}

// decodeModules reads records of 16 bytes: adr1 (rack), adr2 (slot,
// submodule), logical address, expected type, actual type, reserved, I/O
// status, area.
func decodeModules(l szlList) ([]module, error) {
	var out []module
	for _, r := range l.records {
		if len(r) < 16 {
			return nil, fmt.Errorf("SZL 0x%04X record of %d bytes: want 16", l.id, len(r))
		}
		u := func(i int) uint16 { return binary.BigEndian.Uint16(r[i:]) }
		out = append(out, module{rack: int(u(0) & 0xFF), slot: int(r[2]), submodule: int(r[3]), logical: u(4), expected: u(6), actual: u(8), status: u(12)})
	}
	return out, nil
}

// parseBlockList reads list-of-type entries: number (2), flags, language.
func parseBlockList(b []byte) ([]int, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("block list of %d bytes: want 4 bytes per block", len(b))
	}
	out := make([]int, 0, len(b)/4)
	for i := 0; i < len(b); i += 4 {
		out = append(out, int(binary.BigEndian.Uint16(b[i:])))
	}
	return out, nil
}

// parseListAll reads the block counts: per type 30, type code, count (2).
func parseListAll(b []byte) (map[string]int, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("block counts of %d bytes: want 4 bytes per type", len(b))
	}
	out := map[string]int{}
	for i := 0; i < len(b); i += 4 {
		if t := blockTypeName(b[i+1]); t != "" {
			out[t] = int(binary.BigEndian.Uint16(b[i+2:]))
		}
	}
	return out, nil
}

// blockInfo is a decoded block info reply.
type blockInfo struct {
	typ                string
	number             int
	flags, language    byte
	loadSize           uint32
	knowHow            bool
	codeTime, intfTime time.Time
	sbb, localData     int
	mc7                int
	author, family     string
	name               string
	version            byte
	checksum           uint16
}

// s7Epoch is day 0 of the dates in block headers.
var s7Epoch = time.Date(1984, 1, 1, 0, 0, 0, 0, time.UTC)

// blockTime decodes milliseconds since midnight (4) and days since
// 1984-01-01 (2), keeping the milliseconds gos7 drops.
func blockTime(b []byte) time.Time {
	ms := binary.BigEndian.Uint32(b)
	days := binary.BigEndian.Uint16(b[4:])
	return s7Epoch.AddDate(0, 0, int(days)).Add(time.Duration(ms) * time.Millisecond)
}

var subBlockTypes = sync.OnceValue(func() map[byte]string {
	return map[byte]string{0x08: "OB", 0x0A: "DB", 0x0B: "SDB", 0x0C: "FC", 0x0D: "SFC", 0x0E: "FB", 0x0F: "SFB"}
})

// parseBlockInfo decodes the block info data (offsets from the data after
// the 4-byte data header; +33 gives the offset in the frame): flags 9,
// language 10, sub-block type 11, number 12, load size 14, security 18,
// code time 22, interface time 28, SBB length 34, ADD length 36, local data
// 38, MC7 size 40, author 42, family 50, name 58, version 66, checksum 68.
func parseBlockInfo(b []byte, typ string, num int) (blockInfo, error) {
	if len(b) < 70 {
		return blockInfo{}, fmt.Errorf("block info of %s%d has %d bytes: want at least 70", typ, num, len(b))
	}
	bi := blockInfo{
		typ: subBlockTypes()[b[11]], number: int(binary.BigEndian.Uint16(b[12:])),
		flags: b[9], language: b[10],
		loadSize: binary.BigEndian.Uint32(b[14:]),
		knowHow:  binary.BigEndian.Uint32(b[18:]) != 0,
		codeTime: blockTime(b[22:28]), intfTime: blockTime(b[28:34]),
		sbb: int(binary.BigEndian.Uint16(b[34:])), localData: int(binary.BigEndian.Uint16(b[38:])),
		mc7:    int(binary.BigEndian.Uint16(b[40:])),
		author: text(b[42:50]), family: text(b[50:58]), name: text(b[58:66]),
		version: b[66], checksum: binary.BigEndian.Uint16(b[68:]),
	}
	if bi.typ != typ || bi.number != num {
		return blockInfo{}, fmt.Errorf("block info reply is for %s%d, asked %s%d", bi.typ, bi.number, typ, num)
	}
	return bi, nil
}

var languages = sync.OnceValue(func() map[byte]string {
	return map[byte]string{0x01: "STL", 0x02: "LAD", 0x03: "FBD", 0x04: "SCL", 0x05: "DB", 0x06: "GRAPH", 0x07: "SDB", 0x08: "CPU-DB", 0x11: "SDB", 0x12: "SDB", 0x29: "ENCRYPT"}
})

// DeviceError is an error the CPU answered with: the request reached the
// CPU and the connection is intact.
type DeviceError struct {
	Code uint16
	// Item is set for a return code of one item or data block rather than
	// an error code of the whole request.
	Item bool
}

var deviceErrors = sync.OnceValue(func() map[uint16]string {
	return map[uint16]string{
		0x8104: "function not available", 0x8500: "request or reply does not fit the PDU",
		0xD201: "syntax error in block name", 0xD203: "syntax error in block type", 0xD209: "block does not exist",
		0xD20E: "no block of this type", 0xD241: "protection level too low", 0xD401: "SZL not available",
		0xD402: "SZL index not available", 0x8103: "access to object not permitted",
	}
})

var itemErrors = sync.OnceValue(func() map[uint16]string {
	return map[uint16]string{0x03: "object access not allowed", 0x05: "address out of range", 0x06: "data type not supported", 0x0A: "object does not exist"}
})

func (e *DeviceError) Error() string {
	if e.Item {
		if t, ok := itemErrors()[e.Code]; ok {
			return fmt.Sprintf("S7 return code 0x%02X: %s", e.Code, t)
		}
		return fmt.Sprintf("S7 return code 0x%02X", e.Code)
	}
	if t, ok := deviceErrors()[e.Code]; ok {
		return fmt.Sprintf("S7 error 0x%04X: %s", e.Code, t)
	}
	return fmt.Sprintf("S7 error 0x%04X", e.Code)
}

// unsupported reports whether the CPU says it has no such function or list
// at all (as S7-1200/1500 CPUs say of block functions): a property of the
// CPU model, not observable, rather than a refusal of this one read
// (protection, access, resources), which is "not read".
func (e *DeviceError) unsupported() bool {
	if e.Item {
		return e.Code == 0x0A
	}
	switch e.Code {
	case 0x8104, 0xD401, 0xD402:
		return true
	}
	return false
}
