package s7

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// S7 PDU types (ROSCTR).
const (
	rosJob      = 0x01
	rosAck      = 0x02
	rosAckData  = 0x03
	rosUserdata = 0x07
)

// S7 job functions.
const (
	fnReadVar  = 0x04
	fnWriteVar = 0x05
	fnSetup    = 0xF0
)

// Userdata function groups.
const (
	grpBlock = 0x3
	grpCPU   = 0x4
	grpSec   = 0x5
	grpTime  = 0x7
)

// Error codes the simulator answers with.
const (
	errFuncNotAvail  = 0x8104 // function not available / not implemented
	errPDUSize       = 0x8500 // request or reply does not fit the PDU
	errBlockType     = 0xD203 // syntax error: block type
	errBlockMissing  = 0xD209 // block does not exist
	errNoBlocks      = 0xD20E // no block of this type
	errSZLID         = 0xD401 // invalid SZL id
	errSZLIndex      = 0xD402 // invalid SZL index
	retOK            = 0xFF   // item return code: success
	retAccessDenied  = 0x03   // item return code: object access not allowed
	retOutOfRange    = 0x05   // item return code: address out of range
	retTypeNotSupp   = 0x06   // item return code: data type not supported
	retObjectMissing = 0x0A   // item return code: object does not exist
)

// jobKinds names the job functions.
var jobKinds = sync.OnceValue(func() map[byte]string {
	return map[byte]string{
		fnSetup: "SetupCommunication", fnReadVar: "ReadVar", fnWriteVar: "WriteVar",
		0x1A: "RequestDownload", 0x1B: "DownloadBlock", 0x1C: "DownloadEnded",
		0x1D: "StartUpload", 0x1E: "Upload", 0x1F: "EndUpload",
		0x28: "PLCControl", 0x29: "PLCStop",
	}
})

var readKinds = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, k := range ReadKinds {
		m[k] = true
	}
	return m
})

func isRead(kind string) bool { return readKinds()[kind] }

// s7PDU is a parsed S7 request.
type s7PDU struct {
	rosctr byte
	ref    uint16
	param  []byte
	data   []byte
}

// parseS7 splits an S7 PDU: protocol id 0x32, ROSCTR, redundancy id (2),
// PDU reference (2), parameter length (2), data length (2), and for ack and
// ack-data an error class and code; then parameters and data.
func parseS7(b []byte) (s7PDU, error) {
	if len(b) < 10 || b[0] != 0x32 {
		return s7PDU{}, errors.New("not an S7 PDU: want protocol id 0x32 and a 10-byte header")
	}
	p := s7PDU{rosctr: b[1], ref: binary.BigEndian.Uint16(b[4:])}
	hdr := 10
	if p.rosctr == rosAck || p.rosctr == rosAckData {
		hdr = 12
	}
	plen, dlen := int(binary.BigEndian.Uint16(b[6:])), int(binary.BigEndian.Uint16(b[8:]))
	if len(b) < hdr+plen+dlen {
		return s7PDU{}, fmt.Errorf("S7 PDU of %d bytes is shorter than its header says (%d)", len(b), hdr+plen+dlen)
	}
	p.param = b[hdr : hdr+plen]
	p.data = b[hdr+plen : hdr+plen+dlen]
	return p, nil
}

// userdata is a parsed userdata request.
type userdata struct {
	group, subfn, seq byte
	continuation      bool
	payload           []byte // data after return code, transport size and length
}

// parseUserdata decodes userdata parameters (00 01 12, length 4 or 8,
// method, type|group, subfunction, sequence number[, data unit reference,
// last data unit, error code]) and the data header (return code, transport
// size, length).
func parseUserdata(p s7PDU) (userdata, error) {
	par := p.param
	if len(par) < 8 || par[0] != 0x00 || par[1] != 0x01 || par[2] != 0x12 {
		return userdata{}, errors.New("userdata parameters: want the head 00 01 12")
	}
	if (par[3] != 4 && par[3] != 8) || len(par) < 4+int(par[3]) {
		return userdata{}, fmt.Errorf("userdata parameter length %d: want 4 or 8", par[3])
	}
	if par[5]>>4 != 0x4 {
		return userdata{}, fmt.Errorf("userdata type %d: want 4 (request)", par[5]>>4)
	}
	u := userdata{group: par[5] & 0x0F, subfn: par[6], seq: par[7], continuation: par[3] == 8}
	if len(p.data) < 4 {
		return userdata{}, errors.New("userdata data: want at least 4 bytes")
	}
	n := int(binary.BigEndian.Uint16(p.data[2:]))
	if len(p.data) < 4+n {
		return userdata{}, fmt.Errorf("userdata data length %d exceeds the %d bytes sent", n, len(p.data)-4)
	}
	u.payload = p.data[4 : 4+n]
	return u, nil
}

// classify names a request's kind from its bytes, and reports whether it is
// the continuation of an SZL read or block list.
func classify(b []byte) (kind string, continuation bool) {
	p, err := parseS7(b)
	if err != nil {
		return "Malformed", false
	}
	switch p.rosctr {
	case rosJob:
		if len(p.param) == 0 {
			return "Malformed", false
		}
		if k, ok := jobKinds()[p.param[0]]; ok {
			return k, false
		}
		return "Job", false
	case rosUserdata:
		u, err := parseUserdata(p)
		if err != nil {
			return "Malformed", false
		}
		return userdataKind(u.group, u.subfn), u.continuation
	}
	return "Unknown", false
}

func userdataKind(group, subfn byte) string {
	switch {
	case group == grpCPU && subfn == 0x01:
		return "SZL"
	case group == grpBlock && subfn == 0x01:
		return "ListBlocks"
	case group == grpBlock && subfn == 0x02:
		return "ListBlocksOfType"
	case group == grpBlock && subfn == 0x03:
		return "BlockInfo"
	case group == grpTime && subfn == 0x01:
		return "ClockRead"
	case group == grpTime:
		return "ClockSet"
	case group == grpSec:
		return "Password"
	}
	return "Userdata"
}

// handle answers one S7 request. It returns nil when the connection must
// close (the request is not an S7 PDU at all).
func (s *Server) handle(cs *connState, b []byte) []byte {
	p, err := parseS7(b)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch p.rosctr {
	case rosJob:
		return s.job(cs, p)
	case rosUserdata:
		return s.userdata(cs, p)
	}
	return ackData(p.ref, errFuncNotAvail, nil, nil)
}

// ackData builds an ack-data PDU; errCode holds the error class and code.
func ackData(ref uint16, errCode uint16, param, data []byte) []byte {
	b := make([]byte, 12, 12+len(param)+len(data))
	b[0], b[1] = 0x32, rosAckData
	binary.BigEndian.PutUint16(b[4:], ref)
	binary.BigEndian.PutUint16(b[6:], uint16(len(param)))
	binary.BigEndian.PutUint16(b[8:], uint16(len(data)))
	binary.BigEndian.PutUint16(b[10:], errCode)
	return append(append(b, param...), data...)
}

func (s *Server) job(cs *connState, p s7PDU) []byte {
	if len(p.param) == 0 {
		return ackData(p.ref, errFuncNotAvail, nil, nil)
	}
	fn := p.param[0]
	switch {
	case fn == fnSetup:
		return s.setup(cs, p)
	case cs.pdu == 0:
		// Every function but Setup Communication needs a negotiated PDU.
		return ackData(p.ref, errFuncNotAvail, []byte{fn}, nil)
	case fn == fnReadVar && s.sc.NoPutGet:
		return ackData(p.ref, errFuncNotAvail, []byte{fn}, nil)
	case fn == fnReadVar:
		return s.readVar(cs, p)
	case fn == fnWriteVar && len(p.param) >= 2:
		// A read-only CPU: every item is refused.
		n := int(p.param[1])
		if n == 0 || n > 20 {
			return ackData(p.ref, errPDUSize, []byte{fnWriteVar, 0}, nil)
		}
		data := make([]byte, n)
		for i := range data {
			data[i] = retAccessDenied
		}
		return ackData(p.ref, 0, []byte{fnWriteVar, byte(n)}, data)
	}
	return ackData(p.ref, errFuncNotAvail, []byte{fn}, nil)
}

// setup answers Setup Communication: F0, reserved, max AmQ calling (2),
// max AmQ called (2), PDU length (2). The CPU grants the smaller of the
// requested PDU and its own maximum.
func (s *Server) setup(cs *connState, p s7PDU) []byte {
	if len(p.param) < 8 {
		return ackData(p.ref, errFuncNotAvail, []byte{fnSetup}, nil)
	}
	want := int(binary.BigEndian.Uint16(p.param[6:]))
	pdu := min(want, s.sc.PDUSize)
	if pdu < 64 {
		pdu = 64
	}
	cs.pdu = pdu
	par := []byte{fnSetup, 0x00, 0, 1, 0, 1, byte(pdu >> 8), byte(pdu)}
	return ackData(p.ref, 0, par, nil)
}

// readVar answers Read Var: items of 12 bytes (12 0A 10, transport size,
// count (2), DB number (2), area, bit address (3)).
func (s *Server) readVar(cs *connState, p s7PDU) []byte {
	if len(p.param) < 2 || p.param[1] == 0 || p.param[1] > 20 || len(p.param) < 2+12*int(p.param[1]) || 10+len(p.param)+len(p.data) > cs.pdu {
		return ackData(p.ref, errPDUSize, []byte{fnReadVar, 0}, nil)
	}
	n := int(p.param[1])
	var data []byte
	for i := 0; i < n; i++ {
		item := readItem(s, p.param[2+12*i:2+12*i+12])
		if i > 0 && len(data)%2 == 1 {
			data = append(data, 0) // items start on even offsets
		}
		data = append(data, item...)
	}
	if 12+2+len(data) > cs.pdu {
		return ackData(p.ref, errPDUSize, []byte{fnReadVar, 0}, nil)
	}
	return ackData(p.ref, 0, []byte{fnReadVar, byte(n)}, data)
}

// readItem reads one item and returns its reply: return code, transport
// size, length, data.
func readItem(s *Server, it []byte) []byte {
	fail := func(code byte) []byte { return []byte{code, 0x00, 0x00, 0x00} }
	if it[0] != 0x12 || it[1] != 0x0A || it[2] != 0x10 {
		return fail(retTypeNotSupp)
	}
	ts, count := it[3], int(binary.BigEndian.Uint16(it[4:]))
	dbn, area := int(binary.BigEndian.Uint16(it[6:])), it[8]
	addr := int(it[9])<<16 | int(it[10])<<8 | int(it[11])
	size := map[byte]int{0x01: 1, 0x02: 1, 0x03: 1, 0x04: 2, 0x05: 2, 0x06: 4, 0x07: 4, 0x08: 4, 0x1C: 2, 0x1D: 2}[ts]
	if size == 0 || count == 0 || (ts == 0x01 && count != 1) {
		return fail(retTypeNotSupp)
	}
	var mem []byte
	switch area {
	case areaD:
		db, ok := s.dbs[dbn]
		if !ok {
			return fail(retObjectMissing)
		}
		mem = db
	case areaI, areaQ, areaM, areaC, areaT:
		mem = s.areas[area]
	default:
		return fail(retObjectMissing)
	}
	start, n := addr>>3, count*size
	if ts == 0x1C || ts == 0x1D {
		start = addr * 2
	}
	if start+n > len(mem) {
		return fail(retOutOfRange)
	}
	out := []byte{retOK, 0x04, 0, 0}
	switch ts {
	case 0x01:
		out[1] = 0x03
		binary.BigEndian.PutUint16(out[2:], 1)
		bit := byte(0)
		if mem[start]&(1<<(addr&7)) != 0 {
			bit = 1
		}
		return append(out, bit)
	case 0x08:
		out[1] = 0x07
		binary.BigEndian.PutUint16(out[2:], uint16(n))
	case 0x1C, 0x1D:
		out[1] = 0x09
		binary.BigEndian.PutUint16(out[2:], uint16(n))
	default:
		binary.BigEndian.PutUint16(out[2:], uint16(n*8))
	}
	return append(out, mem[start:start+n]...)
}

// userdataReply builds a userdata response: parameters 00 01 12 08 12,
// 0x80|group, subfunction, sequence number, data unit reference, last data
// unit (0 = last), error code; data: return code, transport size, length.
func userdataReply(ref uint16, group, subfn, seq byte, more bool, errNo uint16, payload []byte) []byte {
	data := []byte{0x0A, 0x00, 0x00, 0x00}
	if errNo == 0 {
		data = append([]byte{retOK, 0x09, byte(len(payload) >> 8), byte(len(payload))}, payload...)
	}
	last := byte(0)
	if more {
		last = 1
	}
	par := []byte{0x00, 0x01, 0x12, 0x08, 0x12, 0x80 | group, subfn, seq, 0x00, last, byte(errNo >> 8), byte(errNo)}
	b := make([]byte, 10, 10+len(par)+len(data))
	b[0], b[1] = 0x32, rosUserdata
	binary.BigEndian.PutUint16(b[4:], ref)
	binary.BigEndian.PutUint16(b[6:], uint16(len(par)))
	binary.BigEndian.PutUint16(b[8:], uint16(len(data)))
	return append(append(b, par...), data...)
}

func (s *Server) userdata(cs *connState, p s7PDU) []byte {
	u, err := parseUserdata(p)
	if err != nil {
		return ackData(p.ref, errFuncNotAvail, nil, nil)
	}
	refuse := func(code uint16) []byte { return userdataReply(p.ref, u.group, u.subfn, u.seq, false, code, nil) }
	if cs.pdu == 0 {
		return refuse(errFuncNotAvail)
	}
	if u.continuation {
		return s.continuePages(cs, p.ref, u)
	}
	switch userdataKind(u.group, u.subfn) {
	case "SZL":
		if len(u.payload) < 4 {
			return refuse(errSZLID)
		}
		id, index := binary.BigEndian.Uint16(u.payload), binary.BigEndian.Uint16(u.payload[2:])
		list, code := s.szl(cs, id, index)
		if code != 0 {
			return refuse(code)
		}
		return s.firstPage(cs, p.ref, u, list, cs.pdu-32)
	case "ListBlocks":
		if !cs.cpu || *s.sc.RefuseBlockFunctions {
			return refuse(errFuncNotAvail)
		}
		return userdataReply(p.ref, u.group, u.subfn, u.seq, false, 0, s.listAll())
	case "ListBlocksOfType":
		if !cs.cpu || *s.sc.RefuseBlockFunctions {
			return refuse(errFuncNotAvail)
		}
		if len(u.payload) < 2 {
			return refuse(errBlockType)
		}
		list, code := s.listOfType(u.payload[1])
		if code != 0 {
			return refuse(code)
		}
		return s.firstPage(cs, p.ref, u, list, (cs.pdu-32)/4*4)
	case "BlockInfo":
		if !cs.cpu || *s.sc.RefuseBlockFunctions {
			return refuse(errFuncNotAvail)
		}
		info, code := s.blockInfo(u.payload)
		if code != 0 {
			return refuse(code)
		}
		return userdataReply(p.ref, u.group, u.subfn, u.seq, false, 0, info)
	case "ClockRead":
		return userdataReply(p.ref, u.group, u.subfn, u.seq, false, 0, clockBytes(s.now()))
	}
	return refuse(errFuncNotAvail)
}

// firstPage answers the first request of an SZL read or block list with up
// to chunk bytes, keeping the rest for continuation requests.
func (s *Server) firstPage(cs *connState, ref uint16, u userdata, all []byte, chunk int) []byte {
	cs.seq++
	if cs.seq == 0 {
		cs.seq = 1
	}
	if len(all) <= chunk {
		cs.pending = nil
		return userdataReply(ref, u.group, u.subfn, cs.seq, false, 0, all)
	}
	cs.pending = &pending{group: u.group, subfn: u.subfn, seq: cs.seq, rest: all[chunk:], page: chunk, last: all[chunk-4 : chunk]}
	return userdataReply(ref, u.group, u.subfn, cs.seq, true, 0, all[:chunk])
}

// continuePages answers a continuation request with the next page.
func (s *Server) continuePages(cs *connState, ref uint16, u userdata) []byte {
	pd := cs.pending
	if pd == nil || pd.group != u.group || pd.subfn != u.subfn || pd.seq != u.seq {
		return userdataReply(ref, u.group, u.subfn, u.seq, false, errFuncNotAvail, nil)
	}
	prevLast := pd.last
	n := min(pd.page, len(pd.rest))
	page := pd.rest[:n]
	pd.rest = pd.rest[n:]
	if len(page) >= 4 {
		pd.last = page[len(page)-4:]
	}
	if cs.repeatEntry && pd.group == grpBlock && len(prevLast) == 4 {
		page = append(append([]byte(nil), prevLast...), page...)
	}
	more := len(pd.rest) > 0
	if !more {
		cs.pending = nil
	}
	return userdataReply(ref, u.group, u.subfn, pd.seq, more, 0, page)
}

// listAll answers "list all blocks": per type 30, type code, count (2).
func (s *Server) listAll() []byte {
	counts := map[string]int{}
	for k, b := range s.blocks {
		if k != s.hidden {
			counts[b.Type]++
		}
	}
	var out []byte
	for _, t := range blockTypeOrder {
		out = append(out, 0x30, blockTypeCodes()[t], byte(counts[t]>>8), byte(counts[t]))
	}
	return out
}

// listOfType answers "list blocks of type": per block its number (2),
// flags 0x22 and language.
func (s *Server) listOfType(code byte) ([]byte, uint16) {
	typ := ""
	for t, c := range blockTypeCodes() {
		if c == code {
			typ = t
		}
	}
	if typ == "" {
		return nil, errBlockType
	}
	var nums []int
	for k, b := range s.blocks {
		if b.Type == typ && k != s.hidden {
			nums = append(nums, b.Number)
		}
	}
	if len(nums) == 0 {
		return nil, errNoBlocks
	}
	sort.Ints(nums)
	out := make([]byte, 0, 4*len(nums))
	for _, n := range nums {
		b := s.blocks[fmt.Sprintf("%s%d", typ, n)]
		out = append(out, byte(n>>8), byte(n), 0x22, languageCodes()[b.Language])
	}
	return out, 0
}

// blockInfo answers "get block info" for a request of 30, type code, five
// ASCII digits, file system 'A'.
func (s *Server) blockInfo(req []byte) ([]byte, uint16) {
	if len(req) < 8 || req[0] != 0x30 {
		return nil, errBlockType
	}
	typ := ""
	for t, c := range blockTypeCodes() {
		if c == req[1] {
			typ = t
		}
	}
	if typ == "" {
		return nil, errBlockType
	}
	num := 0
	for _, d := range req[2:7] {
		if d < '0' || d > '9' {
			return nil, 0xD201 // syntax error: block name
		}
		num = num*10 + int(d-'0')
	}
	b, ok := s.blocks[fmt.Sprintf("%s%d", typ, num)]
	if !ok {
		return nil, errBlockMissing
	}
	return encodeBlockInfo(b), 0
}

// s7Epoch is day 0 of S7 dates.
var s7Epoch = time.Date(1984, 1, 1, 0, 0, 0, 0, time.UTC)

// s7Stamp encodes a wall-clock time as milliseconds since midnight and days
// since 1984-01-01.
func s7Stamp(t time.Time) (ms uint32, days uint16) {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if day.Before(s7Epoch) {
		return 0, 0
	}
	d := day.Sub(s7Epoch) / (24 * time.Hour)
	ms = uint32(t.Hour()*3600000 + t.Minute()*60000 + t.Second()*1000 + t.Nanosecond()/1e6)
	return ms, uint16(d)
}

// encodeBlockInfo builds the 78 bytes after the data header of a block
// info reply (offsets in comments count from the start of the TPKT frame).
func encodeBlockInfo(b *Block) []byte {
	p := make([]byte, 78)
	copy(p[0:9], []byte{0x01, 0x00, 0x00, 0x4A, 0x00, 0x22, 0x70, 0x70, 0x01}) // 33-41: constant fields
	p[9] = 0x01                                                                // 42: flags
	p[10] = languageCodes()[b.Language]                                        // 43: language
	p[11] = blockSubTypes()[b.Type]                                            // 44: sub-block type
	binary.BigEndian.PutUint16(p[12:], uint16(b.Number))                       // 45: number
	mc7 := len(b.body)
	binary.BigEndian.PutUint32(p[14:], uint32(mc7+92)) // 47: load memory size
	if b.KnowHowProtected {
		p[21] = 0x03 // 51-54: block security
	}
	ms, d := s7Stamp(b.CodeTime)
	binary.BigEndian.PutUint32(p[22:], ms) // 55: code time, ms since midnight
	binary.BigEndian.PutUint16(p[26:], d)  // 59: code time, days since 1984
	ms, d = s7Stamp(b.InterfaceTime)
	binary.BigEndian.PutUint32(p[28:], ms)                  // 61: interface time, ms
	binary.BigEndian.PutUint16(p[32:], d)                   // 65: interface time, days
	binary.BigEndian.PutUint16(p[34:], 20)                  // 67: SBB length
	binary.BigEndian.PutUint16(p[38:], uint16(b.LocalData)) // 71: local data
	binary.BigEndian.PutUint16(p[40:], uint16(mc7))         // 73: MC7 size
	copy(p[42:50], b.Author)                                // 75: author
	copy(p[50:58], b.Family)                                // 83: family
	copy(p[58:66], b.Name)                                  // 91: name
	p[66], _ = versionByte(b.Version)                       // 99: version
	binary.BigEndian.PutUint16(p[68:], b.Checksum())        // 101: checksum
	return p
}

// clockBytes encodes the clock reply: reserved, century and an 8-byte BCD
// DATE_AND_TIME.
func clockBytes(t time.Time) []byte {
	return append([]byte{0x00, bcd(t.Year() / 100)}, dateAndTime(t)...)
}

// dateAndTime encodes an S7 DATE_AND_TIME: BCD year (2 digits), month, day,
// hour, minute, second, milliseconds (3 digits) and day of week (1 digit).
func dateAndTime(t time.Time) []byte {
	ms := t.Nanosecond() / 1e6
	return []byte{bcd(t.Year() % 100), bcd(int(t.Month())), bcd(t.Day()), bcd(t.Hour()), bcd(t.Minute()), bcd(t.Second()),
		bcd(ms / 10), byte(ms%10)<<4 | byte(t.Weekday()+1)}
}

func bcd(n int) byte { return byte(n/10%10)<<4 | byte(n%10) }

// objects names what a request is about, for Fault.Object: "SZL 0x0232"
// for an SZL read, the block ("FC5") for block info, and the DBs ("DB20")
// and other areas ("M", "I", "Q") of a Read Var's items.
func objects(kind string, b []byte) []string {
	p, err := parseS7(b)
	if err != nil {
		return nil
	}
	switch kind {
	case "SZL", "BlockInfo":
		u, err := parseUserdata(p)
		if err != nil || len(u.payload) < 4 {
			return nil
		}
		if kind == "SZL" {
			return []string{fmt.Sprintf("SZL 0x%04X", binary.BigEndian.Uint16(u.payload))}
		}
		if len(u.payload) < 7 {
			return nil
		}
		for t, c := range blockTypeCodes() {
			if c == u.payload[1] {
				n := 0
				for _, d := range u.payload[2:7] {
					n = n*10 + int(d-'0')
				}
				return []string{fmt.Sprintf("%s%d", t, n)}
			}
		}
	case "ReadVar":
		var out []string
		for i := 0; len(p.param) >= 2 && i < int(p.param[1]) && 2+12*i+12 <= len(p.param); i++ {
			out = append(out, itemObject(p.param[2+12*i:]))
		}
		return out
	}
	return nil
}

// itemObject names the area of a Read Var item (12 bytes).
func itemObject(it []byte) string {
	switch it[8] {
	case areaD:
		return fmt.Sprintf("DB%d", binary.BigEndian.Uint16(it[6:]))
	case areaM:
		return "M"
	case areaI:
		return "I"
	case areaQ:
		return "Q"
	}
	return fmt.Sprintf("area 0x%02X", it[8])
}

// refuse answers a request with the fault's S7 error (see FaultRefuse).
func (s *Server) refuse(b []byte, f *Fault) []byte {
	p, err := parseS7(b)
	if err != nil {
		return nil
	}
	switch p.rosctr {
	case rosUserdata:
		u, err := parseUserdata(p)
		if err != nil {
			return ackData(p.ref, f.Code, nil, nil)
		}
		return userdataReply(p.ref, u.group, u.subfn, u.seq, false, f.Code, nil)
	case rosJob:
		if len(p.param) >= 2 && p.param[0] == fnReadVar && len(p.param) >= 2+12*int(p.param[1]) {
			// Answer normally, then turn the matching items into refusals.
			s.mu.Lock()
			var data []byte
			n := int(p.param[1])
			for i := 0; i < n; i++ {
				it := p.param[2+12*i : 2+12*i+12]
				item := readItem(s, it)
				if f.Object == "" || itemObject(it) == f.Object {
					item = []byte{byte(f.Code), 0x00, 0x00, 0x00}
				}
				if i > 0 && len(data)%2 == 1 {
					data = append(data, 0)
				}
				data = append(data, item...)
			}
			s.mu.Unlock()
			return ackData(p.ref, 0, []byte{fnReadVar, byte(n)}, data)
		}
		fn := byte(0)
		if len(p.param) > 0 {
			fn = p.param[0]
		}
		return ackData(p.ref, f.Code, []byte{fn}, nil)
	}
	return ackData(p.ref, f.Code, nil, nil)
}
