package s7

import (
	"bytes"
	"context"
	"testing"
)

// Fuzz targets for every parser of bytes a client sends, and for scenario
// files.

func FuzzHandle(f *testing.F) {
	f.Add(userdataPDU(grpCPU, 1, []byte{0x00, 0x1C, 0, 0}), false)
	f.Add(userdataPDU(grpBlock, 3, []byte("0E00010A")), false)
	f.Add(userdataPDU(grpBlock, 2, []byte{0x30, 0x43}), false)
	f.Add(continuationPDU(grpCPU, 1, 1), true)
	f.Add([]byte{0x32, 0x01, 0, 0, 0, 9, 0, 0x1A, 0, 0, 0x04, 0x02, 0x12, 0x0A, 0x10, 0x08, 0, 1, 0, 10, 0x84, 0, 0, 0x20, 0x12, 0x0A, 0x10, 0x01, 0, 1, 0, 10, 0x84, 0, 0, 0x50}, false)
	f.Add([]byte{0x32, 0x01, 0, 0, 4, 0, 0, 8, 0, 0, 0xF0, 0, 0, 1, 0, 1, 1, 0xE0}, false)
	s, err := Start(context.Background(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, b []byte, primed bool) {
		cs := &connState{connected: true, cpu: true, pdu: 240}
		if primed {
			// A pending SZL read, so continuations have something to continue.
			s.handle(cs, userdataPDU(grpCPU, 1, []byte{0x00, 0x1C, 0, 0}))
		}
		kind, _ := classify(b)
		objs := objects(kind, b)
		if ref := s.refuse(b, &Fault{Action: FaultRefuse, Code: 0x8104}); ref != nil {
			if _, err := parseS7(ref); err != nil {
				t.Fatalf("refusal of %s %v does not parse: %v", kind, objs, err)
			}
		}
		rep := s.handle(cs, b)
		if rep == nil {
			return
		}
		if len(rep) > cs.pdu {
			t.Fatalf("reply of %d bytes exceeds the PDU of %d", len(rep), cs.pdu)
		}
		if _, err := parseS7(rep); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
	})
}

func FuzzFrames(f *testing.F) {
	f.Add([]byte{0x03, 0x00, 0x00, 0x16, 0x11, 0xE0, 0, 0, 0, 1, 0, 0xC0, 1, 0x0A, 0xC1, 2, 1, 0, 0xC2, 2, 1, 2})
	f.Add(frameDT([]byte{0x32, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	f.Add(frameDT(bytes.Repeat([]byte{7}, 100), 30))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			fr, err := readFrame(r)
			if err != nil {
				return
			}
			if len(fr.cotp) < 2 || fr.size != 5+len(fr.cotp)+len(fr.data) {
				t.Fatalf("frame %+v", fr)
			}
			if fr.cotp[0]&0xF0 == cotpCR {
				if cr, err := parseCR(fr.cotp); err == nil && len(connectConfirm(cr)) != 22 {
					t.Fatal("connection confirm is not 22 bytes")
				}
			}
		}
	})
}

func FuzzScenario(f *testing.F) {
	f.Add(demoYAML)
	f.Add([]byte("profile: s7-1500\ncpu: {firmware: V2.9.4}\nblocks: [{type: DB, number: 1, size: 8, values: [{offset: 0, type: STRING, length: 6, value: abc}]}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseScenario("fuzz.yaml", b)
		if err != nil {
			return
		}
		if err := sc.Clone().Validate(); err != nil {
			t.Fatalf("a valid scenario's clone fails: %v", err)
		}
	})
}
