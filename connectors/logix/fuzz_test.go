package logix

import (
	"encoding/binary"
	"testing"

	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
)

// Fuzz targets for every parser of bytes from the network. Each checks
// that no input panics and that what a parser accepts is consistent.

func FuzzParseReplyFrame(f *testing.F) {
	f.Add(registerSessionFrame())
	f.Add(rrDataFrame(7, []byte{0xD2, 0, 0, 0}))
	f.Add(unitDataFrame(7, 9, 1, []byte{0xCC, 0, 0, 0, 0xCA, 0, 0, 0, 0, 0}))
	f.Add([]byte{0x70, 0, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, cmd := range []uint16{cmdRegisterSession, cmdSendRRData, cmdSendUnitData} {
			_, p, err := parseReplyFrame(b, cmd)
			if err != nil {
				continue
			}
			if len(p) > len(b) {
				t.Fatalf("payload longer than the frame")
			}
			if r, err := parseMRReply(p); err == nil {
				_ = r.err(true)
				if len(r.Data) > len(p) {
					t.Fatal("reply data longer than the reply")
				}
			}
		}
	})
}

func FuzzParseMRReply(f *testing.F) {
	f.Add([]byte{0xCC, 0, 0xFF, 1, 0x05, 0x21})
	f.Add([]byte{0x8A, 0, 0x1E, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseMRReply(b)
		if err == nil && 4+2*len(r.Extended)+len(r.Data) != len(b) {
			t.Fatalf("reply parts do not add up to %d bytes", len(b))
		}
	})
}

func FuzzSplitMultiple(f *testing.F) {
	m := multipleMR([][]byte{{0x81, 0, 0, 0}, {0x83, 0, 0, 0, 0, 0}})
	f.Add(m[6:])
	f.Add([]byte{2, 0, 6, 0, 4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := splitMultiple(b)
		if err != nil {
			return
		}
		total := 0
		for _, p := range parts {
			total += len(p)
		}
		if total > len(b) {
			t.Fatalf("parts hold %d bytes of %d", total, len(b))
		}
	})
}

func FuzzParseIdentity(f *testing.F) {
	f.Add([]byte{1, 0, 14, 0, 166, 0, 33, 11, 0x60, 0x30, 0xEE, 0xFF, 0xC0, 0, 3, 'L', '8', '3'})
	f.Add([]byte{1, 0, 14, 0, 166, 0, 33, 11, 0x60, 0x30, 0xEE, 0xFF, 0xC0, 0, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseIdentity(b)
		if err == nil && len(id.ProductName) > len(b)-15 {
			t.Fatal("product name longer than the data")
		}
		_ = keySwitch(id.Status) + operatingMode(id.Status) + faultState(id.Status, false) + faultState(id.Status, true)
	})
}

func FuzzParseAttrList(f *testing.F) {
	f.Add([]byte{2, 0, 1, 0, 0, 0, 4, 0, 10, 0, 0, 0, 1, 0, 0, 0})
	f.Add([]byte{1, 0, 3, 0, 0x14, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseAttrList(b, propSize)
		parseTemplateInfo(b)
	})
}

func FuzzParseSymbols(f *testing.F) {
	e := binary.LittleEndian.AppendUint32(nil, 5)
	e = binary.LittleEndian.AppendUint16(e, 4)
	e = append(e, "Tank"...)
	e = binary.LittleEndian.AppendUint16(e, 0x20CA)
	e = append(e, make([]byte, 12)...)
	f.Add(e, true)
	f.Add(e[:10], true)
	f.Add(e[:12], false)
	f.Fuzz(func(t *testing.T, b []byte, dims bool) {
		syms, err := parseSymbols(b, dims)
		if err != nil {
			return
		}
		n := 0
		for _, s := range syms {
			n += 8 + len(s.Name)
			if dims {
				n += 12
			}
			_ = dimsOf(s) + atomicName(s.Type)
			keepSymbol(s)
		}
		if n != len(b) {
			t.Fatalf("symbols account for %d of %d bytes", n, len(b))
		}
	})
}

func FuzzParseTemplate(f *testing.F) {
	f.Add([]byte{0, 0, 0xC4, 0, 0, 0, 0, 0, 'U', ';', 'n', 0, 'A', 0}, 1)
	f.Add([]byte{0, 0, 0xC4, 0x80, 0, 0, 0, 0, 'U', 0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, members int) {
		if members > 1<<16 {
			return
		}
		tpl, err := parseTemplate(b, members)
		if err == nil {
			if len(tpl.Members) != members {
				t.Fatalf("%d members, want %d", len(tpl.Members), members)
			}
			_ = describeTemplate(tpl, map[uint32]template{1: tpl})
		}
	})
}

func FuzzParseTagValue(f *testing.F) {
	f.Add([]byte{0xCA, 0, 0, 0, 0xB9, 0x42}, 0, false)
	f.Add([]byte{0xA0, 0x02, 1, 2}, 0, false)
	f.Add([]byte{0xC5, 0, 1, 2, 3}, 0, false)
	f.Add(append([]byte{0xA0, 0x02, 0xCE, 0x0F, 3, 0, 0, 0, 'a', '$', 0xB0}, make([]byte, 79)...), 0, false)
	f.Add([]byte{0xA0, 0x02, 0x34, 0x12, 0xFF, 0, 0, 0, 'x', 'y', 0, 0}, 4, true)
	f.Fuzz(func(t *testing.T, b []byte, length int, wantString bool) {
		_, v, err := parseTagValue(b, length, wantString)
		if err == nil && v.Type == "" {
			t.Fatal("value without a type")
		}
		if err == nil && v.Type == snapshots.TypeString {
			for _, c := range []byte(v.Raw) {
				if c < 0x20 || c > 0x7E {
					t.Fatalf("string value %q holds byte 0x%02X unescaped", v.Raw, c)
				}
			}
		}
	})
}

// requestKind parses the connector's own outgoing frames; fuzzed too, as
// it stands between the codec and the gate.
func FuzzRequestKind(f *testing.F) {
	f.Add(unitDataFrame(1, 2, 3, multipleMR([][]byte{readTagMR([]byte{0x91, 1, 'A', 0})})))
	f.Add(rrDataFrame(1, unconnectedSendMR(mr(svcGetAttributesAll, classInstance(1, 1), nil), []byte{1, 3})))
	f.Add(unitDataFrame(1, 2, 3, mr(0x4E, []byte{0x91, 2, 'S', 'P'}, []byte{2, 0, 0xFF, 0xFF, 0, 0})))
	f.Add(unitDataFrame(1, 2, 3, mr(0x4C, classInstance(0x37, 1), nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, emb, err := requestKind(b)
		if err != nil {
			return
		}
		// Whatever the bytes, an accepted frame is named by allowed kinds
		// only: the gate can never be handed an unlisted request.
		g := connectors.NewGate("d", Allowlist, nil)
		if !g.Allowed(k) {
			t.Fatalf("accepted frame of kind %q, not on the allowlist", k)
		}
		for _, e := range emb {
			if !g.Allowed(e) || !embeddedReads()[e] {
				t.Fatalf("accepted embedded kind %q", e)
			}
		}
	})
}

func FuzzParseListIdentity(f *testing.F) {
	id := []byte{1, 0, 14, 0, 166, 0, 33, 11, 0x60, 0x30, 0xEE, 0xFF, 0xC0, 0, 3, 'L', '8', '3'}
	body := append([]byte{1, 0, 0, 2, 0xAF, 0x12, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, id...)
	body = append(body, 3)
	item := binary.LittleEndian.AppendUint16([]byte{1, 0, 0x0C, 0}, uint16(len(body)))
	f.Add(append(item, body...))
	f.Add([]byte{1, 0, 0x0C, 0, 0xFF, 0xFF, 1, 0})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseListIdentity(b)
		if err == nil && len(id.ProductName) > len(b) {
			t.Fatal("product name longer than the reply")
		}
	})
}
