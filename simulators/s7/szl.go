package s7

import (
	"encoding/binary"
	"slices"
)

// SZL ids the simulated CPU answers.
const (
	szlIDs         = 0x0000 // list of the SZL ids the CPU supports
	szlModuleID    = 0x0011 // module identification, all records
	szlModuleID1   = 0x0111 // module identification, one record
	szlComponents  = 0x001C // component identification, all records
	szlComponent1  = 0x011C // component identification, one record
	szlCommCaps    = 0x0131 // communication capabilities
	szlProtection  = 0x0232 // protection level (index 4)
	szlProtection2 = 0x0132
	szlStatus      = 0x0424 // current mode transition
	szlModules     = 0x0091 // status of all modules
	szlRackModules = 0x0D91 // status of the modules of one rack (index: rack)
)

// szl returns a whole SZL list: id (2), index (2), record length (2),
// record count (2), records. Callers hold mu.
func (s *Server) szl(cs *connState, id, index uint16) ([]byte, uint16) {
	if slices.Contains(s.sc.UnsupportedSZL, int(id)) {
		return nil, errSZLID
	}
	if !cs.cpu {
		return s.moduleSZL(cs, id, index)
	}
	var recLen int
	var recs [][]byte
	switch id {
	case szlIDs:
		recLen = 2
		for _, x := range []uint16{szlIDs, szlModuleID, szlModuleID1, szlComponents, szlComponent1, szlCommCaps, szlProtection2, szlProtection, szlStatus, szlModules, szlRackModules} {
			if !slices.Contains(s.sc.UnsupportedSZL, int(x)) {
				recs = append(recs, []byte{byte(x >> 8), byte(x)})
			}
		}
	case szlModuleID, szlModuleID1:
		recLen = 28
		c := s.sc.CPU
		recs = identRecords(c.OrderCode, c.HardwareVersion, c.Firmware, c.BootLoader)
		if recs = pick(recs, id == szlModuleID1, index); recs == nil {
			return nil, errSZLIndex
		}
	case szlComponents, szlComponent1:
		recLen = 34
		if recs = pick(s.componentRecords(), id == szlComponent1, index); recs == nil {
			return nil, errSZLIndex
		}
	case szlCommCaps:
		if index != 1 {
			return nil, errSZLIndex
		}
		recLen = 40
		r := make([]byte, 40)
		binary.BigEndian.PutUint16(r[0:], 1)
		binary.BigEndian.PutUint16(r[2:], uint16(s.sc.PDUSize))
		binary.BigEndian.PutUint16(r[4:], 16)       // connections
		binary.BigEndian.PutUint32(r[6:], 187500)   // MPI rate
		binary.BigEndian.PutUint32(r[10:], 1500000) // backplane rate
		recs = [][]byte{r}
	case szlProtection, szlProtection2:
		if index != 4 {
			return nil, errSZLIndex
		}
		recLen = 40
		pr := s.sc.Protection
		r := make([]byte, 40)
		binary.BigEndian.PutUint16(r[0:], 4)
		binary.BigEndian.PutUint16(r[2:], uint16(pr.SwitchLevel))
		binary.BigEndian.PutUint16(r[4:], uint16(pr.ParamLevel))
		binary.BigEndian.PutUint16(r[6:], uint16(pr.Level))
		binary.BigEndian.PutUint16(r[8:], keySwitches()[pr.KeySwitch])
		recs = [][]byte{r}
	case szlStatus:
		recLen = 20
		r := make([]byte, 20)
		binary.BigEndian.PutUint16(r[0:], 0x4300|uint16(s.mode)) // event id
		r[2] = 0xFF                                              // ae
		r[3] = s.mode                                            // bzu-id: mode in bits 0-3 (the previous-mode bits read 0 on captured CPUs)
		copy(r[12:], dateAndTime(s.modeSince))                   // time of the transition
		recs = [][]byte{r}
	case szlModules, szlRackModules:
		recLen = 16
		for _, m := range s.sc.Modules {
			if id == szlRackModules && m.Rack != int(index) {
				continue
			}
			recs = append(recs, moduleRecord(m))
		}
	default:
		return nil, errSZLID
	}
	return szlList(id, index, recLen, recs), 0
}

// moduleSZL answers SZL reads on a connection to an S7-capable module:
// only its identification.
func (s *Server) moduleSZL(cs *connState, id, index uint16) ([]byte, uint16) {
	if id != szlModuleID && id != szlModuleID1 {
		return nil, errSZLID
	}
	for _, m := range s.sc.Modules {
		if m.Rack == cs.module[0] && m.Slot == cs.module[1] {
			recs := pick(identRecords(m.OrderCode, m.HardwareVersion, m.Firmware, ""), id == szlModuleID1, index)
			if recs == nil {
				return nil, errSZLIndex
			}
			return szlList(id, index, 28, recs), 0
		}
	}
	return nil, errSZLID
}

func szlList(id, index uint16, recLen int, recs [][]byte) []byte {
	out := make([]byte, 8, 8+recLen*len(recs))
	binary.BigEndian.PutUint16(out[0:], id)
	binary.BigEndian.PutUint16(out[2:], index)
	binary.BigEndian.PutUint16(out[4:], uint16(recLen))
	binary.BigEndian.PutUint16(out[6:], uint16(len(recs)))
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}

// pick returns all records, or for a single-record SZL only the one whose
// index (first two bytes) is index; nil when there is none.
func pick(recs [][]byte, single bool, index uint16) [][]byte {
	if !single {
		return recs
	}
	for _, r := range recs {
		if binary.BigEndian.Uint16(r) == index {
			return [][]byte{r}
		}
	}
	return nil
}

// identRecords builds SZL 0x0011 records of 28 bytes: index (2), order
// number (20, space padded), module type (2), Ausbg (2), Ausbe (2). Index 1
// is the module, 6 the hardware, 7 the firmware ('V', major, minor, patch),
// 0x81 the boot loader.
func identRecords(order string, hw int, fw, boot string) [][]byte {
	rec := func(index uint16, mlfb string, typ uint16, ausbg, ausbe [2]byte) []byte {
		r := make([]byte, 28)
		binary.BigEndian.PutUint16(r, index)
		copy(r[2:22], pad(mlfb, 20, ' '))
		binary.BigEndian.PutUint16(r[22:], typ)
		copy(r[24:], ausbg[:])
		copy(r[26:], ausbe[:])
		return r
	}
	hwv := [2]byte{byte(hw >> 8), byte(hw)}
	l, a, b, c, _ := parseVersion(fw)
	out := [][]byte{
		rec(0x0001, order, 0x00C0, hwv, [2]byte{0, 1}),
		rec(0x0006, order, 0x00C0, hwv, [2]byte{0, 1}),
		rec(0x0007, "", 0x00C0, [2]byte{l, a}, [2]byte{b, c}),
	}
	if boot != "" {
		l, a, b, c, _ := parseVersion(boot)
		out = append(out, rec(0x0081, "Boot Loader", 0x0000, [2]byte{l, a}, [2]byte{b, c}))
	}
	return out
}

// componentRecords builds SZL 0x001C records of 34 bytes: index (2) and 32
// bytes of text (NUL padded) or ids.
func (s *Server) componentRecords() [][]byte {
	c := s.sc.CPU
	rec := func(index uint16, text string, n int) []byte {
		r := make([]byte, 34)
		binary.BigEndian.PutUint16(r, index)
		copy(r[2:2+n], pad(text, n, 0))
		return r
	}
	mfr := make([]byte, 34)
	copy(mfr, []byte{0x00, 0x09, 0x00, 0x2A, 0xF6, 0x00, 0x00, 0x01}) // index 9: manufacturer 0x002A (Siemens), profile 0xF600
	oem := make([]byte, 34)
	oem[1] = 0x0A
	return [][]byte{
		rec(0x0001, c.ASName, 24),
		rec(0x0002, c.ModuleName, 24),
		rec(0x0003, c.PlantID, 32),
		rec(0x0004, c.Copyright, 26),
		rec(0x0005, c.Serial, 24),
		rec(0x0007, c.ModuleType, 32),
		rec(0x0008, c.MemoryCard, 32),
		mfr,
		oem,
		rec(0x000B, c.Location, 32),
	}
}

// moduleRecord builds an SZL 0x0D91 record of 16 bytes: adr1 (rack), adr2
// (slot, submodule), logical address, expected type, actual type, reserved,
// I/O status, area.
func moduleRecord(m Module) []byte {
	r := make([]byte, 16)
	binary.BigEndian.PutUint16(r[0:], uint16(m.Rack))
	r[2] = byte(m.Slot)
	binary.BigEndian.PutUint16(r[4:], uint16(m.LogicalAddress))
	binary.BigEndian.PutUint16(r[6:], uint16(m.ExpectedTypeID))
	status := uint16(0xB400 | 0x02) // input data, module exists
	if m.Absent {
		status = 0xB400 | 0x04 // module not available
	} else {
		binary.BigEndian.PutUint16(r[8:], uint16(m.TypeID))
	}
	binary.BigEndian.PutUint16(r[12:], status)
	binary.BigEndian.PutUint16(r[14:], 0x0011)
	return r
}

func pad(s string, n int, with byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = with
	}
	copy(b, s)
	return b
}
