package s7

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unicode/utf16"
)

// Fuzz targets for every parser of bytes that come from the network.
// Seeds are the fixtures of wire_test.go.

func FuzzUserdataReply(f *testing.F) {
	f.Add(blockInfoReply, byte(grpBlock), byte(subInfo))
	f.Add(blockInfoReply[:40], byte(grpBlock), byte(subInfo))
	f.Add([]byte{0x32, 0x07, 0, 0, 0, 1, 0, 12, 0, 8, 0, 1, 0x12, 8, 0x12, 0x83, 0x02, 1, 0, 1, 0, 0, 0xFF, 9, 0, 4, 0, 1, 0x22, 5}, byte(grpBlock), byte(subListType))
	f.Fuzz(func(t *testing.T, b []byte, group, subfn byte) {
		r, err := parseUserdataReply(b, group&0x0F, subfn)
		if err != nil {
			return
		}
		if len(r.payload) > len(b) {
			t.Fatalf("payload of %d bytes from %d", len(r.payload), len(b))
		}
		parseBlockInfo(r.payload, "FC", 7)
		parseBlockList(r.payload)
		parseListAll(r.payload)
	})
}

func FuzzSZL(f *testing.F) {
	f.Add([]byte{0x04, 0x24, 0, 0, 0, 0x14, 0, 1, 0x43, 0x05, 0xFF, 0x85, 0, 0, 0, 0, 0, 0, 0, 0, 0x25, 0x06, 0x03, 0x14, 0x22, 0x31, 0x12, 0x34}, uint16(0x0424))
	f.Add([]byte{0x00, 0x11, 0, 0, 0, 28, 0, 1, 0, 7, ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 0, 0xC0, 'V', 3, 2, 6}, uint16(0x0011))
	f.Add([]byte{0x0D, 0x91, 0, 0, 0, 16, 0, 1, 0, 0, 2, 0, 0x7F, 0xFF, 0, 0xC0, 0, 0xC0, 0, 0, 0xB4, 2, 0, 0x11}, uint16(0x0D91))
	f.Add([]byte{0x02, 0x32, 0, 4, 0, 40, 0, 1, 0, 4, 0, 1, 0, 0, 0, 1, 0, 2}, uint16(0x0232))
	f.Add([]byte{0x00, 0x1C, 0, 0, 0, 34, 0, 1, 0, 1, 'P', 'L', 'C'}, uint16(0x001C))
	f.Fuzz(func(t *testing.T, b []byte, id uint16) {
		l, err := parseSZL(b, id)
		if err != nil {
			return
		}
		decodeIdentity(l)
		decodeComponents(l)
		decodeProtection(l)
		decodeStatus(l)
		decodeModules(l)
	})
}

func FuzzReadVarReply(f *testing.F) {
	f.Add([]byte{0x32, 0x03, 0, 0, 0, 2, 0, 2, 0, 0x12, 0, 0, 0x04, 0x03, 0xFF, 0x04, 0, 8, 0x2A, 0, 0x0A, 0, 0, 0, 0xFF, 0x07, 0, 4, 0x42, 0xAA, 0, 0}, []byte{1, 4, 4})
	f.Fuzz(func(t *testing.T, b []byte, counts []byte) {
		if len(counts) > 20 {
			counts = counts[:20]
		}
		items := make([]varItem, len(counts))
		for i, c := range counts {
			items[i] = varItem{area: 0x84, db: 1, count: int(c)}
		}
		data, _, err := parseReadVarReply(b, items)
		if err != nil {
			return
		}
		for i, d := range data {
			if d != nil && len(d) != items[i].count {
				t.Fatalf("item %d: %d bytes, asked %d", i, len(d), items[i].count)
			}
		}
	})
}

func FuzzFrames(f *testing.F) {
	f.Add(frame(blockInfoReply))
	f.Add(append(frame(blockInfoReply[:20])[:6], 0x00)) // no EOT, cut off
	f.Add([]byte{0x03, 0x00, 0x00, 0x16, 0x11, 0xD0, 0, 1, 0, 1, 0, 0xC0, 1, 0x0A, 0xC1, 2, 1, 0, 0xC2, 2, 3, 2})
	f.Add([]byte{0x03, 0x00, 0x00, 0x0B, 0x06, 0x80, 0, 1, 0, 1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if pdu, _, err := readPDU(bytes.NewReader(b), 960); err == nil && len(pdu) > 960 {
			t.Fatalf("reassembled %d bytes, limit 960", len(pdu))
		}
		readConnectConfirm(bytes.NewReader(b))
		parseSetupReply(b)
	})
}

func FuzzDecodeKind(f *testing.F) {
	for _, tc := range refusedTelegrams {
		f.Add(tc.b)
	}
	f.Add(szlRequest(0x0011, 0))
	f.Add(blockInfoRequest("OB", 1))
	f.Add(readVarRequest([]varItem{{0x84, 1, 0, 4}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		k := decodeKind(b)
		// A data telegram carrying a job whose function is not a read or the setup must
		// never decode to an allowed kind.
		if len(b) >= 18 && b[4] == 2 && b[5] == 0xF0 && b[7] == 0x32 && b[8] == rosJob && b[17] != 0x04 && b[17] != 0xF0 {
			for _, a := range Allowlist {
				if k == a {
					t.Fatalf("job function 0x%02X decoded as %s", b[17], k)
				}
			}
		}
	})
}

func FuzzSetpoint(f *testing.F) {
	f.Add("DB10.DBD4", "REAL", 0, []byte{0x42, 0xAA, 0, 0})
	f.Add("DB1.DBB0", "STRING", 16, []byte{16, 200, 'a', 'b'})
	f.Add("DB1.DBB0", "WSTRING", 4, []byte{0, 4, 0, 2, 0xD8, 0x3D, 0xDE, 0x00})
	f.Add("DB1.DBW2", "WCHAR", 0, []byte{0xDC, 0x00})
	f.Add("M4.3", "BOOL", 0, []byte{0x08})
	f.Add("DB2.DBB8", "LREAL", 0, []byte{0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18})
	f.Fuzz(func(t *testing.T, addr, typ string, length int, b []byte) {
		sp, ferr := parseSetpoint(Setpoint{Name: "x", Address: addr, Type: typ, Length: length})
		if ferr != nil {
			return
		}
		v := make([]byte, sp.size)
		copy(v, b)
		if _, err := decodeValue(sp, v); err != nil && !textTypes()[sp.Type] {
			t.Fatalf("%s: %v", sp.Type, err)
		}
		if sp.size < 1 || sp.start < 0 || (sp.Type == "BOOL") != (sp.bit >= 0) {
			t.Fatalf("setpoint %+v", sp)
		}
	})
}

// FuzzText decodes bytes as STRING, WSTRING and CHAR text: no panic, the
// length rules hold, and decoding is lossless (the text encodes back to the
// very bytes), so that two contents never read as the same value.
func FuzzText(f *testing.F) {
	f.Add([]byte{8, 4, 0x4B, 0xC4, 0x53, 0x45}, 8)
	f.Add([]byte{4, 9, 'A', 'B', 'C', 'D'}, 4)
	f.Add([]byte{0x00, 0x02, 0x00, 0x02, 0xD8, 0x3D, 0xDE, 0x00}, 2)
	f.Add([]byte{5, 5, 0x81, 0x8D, 0x8F, 0x90, 0x9D}, 5)
	f.Fuzz(func(t *testing.T, b []byte, maxLen int) {
		if got, ok := encodeCP1252(decodeCP1252(b)); !ok || !bytes.Equal(got, b) {
			t.Fatalf("% x decodes to %q and back to % x", b, decodeCP1252(b), got)
		}
		if s, err := decodeString(b, maxLen); err == nil {
			cur := int(b[1])
			if cur > int(b[0]) || cur > maxLen {
				t.Fatalf("STRING % x (declared %d) decoded despite its lengths", b, maxLen)
			}
			if got, _ := encodeCP1252(s); !bytes.Equal(got, b[2:2+cur]) {
				t.Fatalf("STRING % x reads %q, which encodes to % x", b, s, got)
			}
		}
		if s, err := decodeWString(b, maxLen); err == nil {
			cur := int(binary.BigEndian.Uint16(b[2:]))
			if cur > int(binary.BigEndian.Uint16(b)) || cur > maxLen {
				t.Fatalf("WSTRING % x (declared %d) decoded despite its lengths", b, maxLen)
			}
			var back []byte
			for _, u := range utf16.Encode([]rune(s)) {
				back = binary.BigEndian.AppendUint16(back, u)
			}
			if !bytes.Equal(back, b[4:4+2*cur]) {
				t.Fatalf("WSTRING % x reads %q, which encodes to % x", b, s, back)
			}
		}
	})
}
