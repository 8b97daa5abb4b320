package snapshots

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// golden is a fixed snapshot whose digest is pinned below. Changing the
// canonical encoding changes the digest and breaks every stored chain: this
// test must never be edited to make it pass.
func golden() *Snapshot {
	return &Snapshot{
		Device:      "press-7",
		Protocol:    "s7",
		Endpoint:    "10.0.0.7:102",
		Label:       "before",
		TakenAt:     time.Date(2026, 3, 14, 2, 30, 0, 123456789, time.FixedZone("CET", 3600)),
		Identity:    Identity{Vendor: "Siemens", Model: "6ES7 315-2EH14-0AB0", Serial: "S C-X4U421302009", Firmware: "V3.3.12", Name: "PRESS7"},
		Status:      Status{Complete: true},
		RulesDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Cost: Cost{Requests: 12, BytesOut: 420, BytesIn: 2048, Duration: 1500 * time.Millisecond,
			ByKind: []RequestCount{{Kind: "s7.BlockInfo", Object: "block info", Count: 2, BytesOut: 70, BytesIn: 300}}},
		Items: []Item{
			{Path: "setpoints/TankHighLimit", Kind: KindSetpoint, Value: Float32(87.5, "%"), Deadband: 0.5,
				Attrs: map[string]string{AttrDataType: "REAL", "address": "DB10.DBD4"}, Provenance: Provenance{Source: SourceRead}},
			{Path: "blocks/OB1", Kind: KindLogic, Value: Uint(0xBEEF, ""),
				Attrs:      map[string]string{AttrRole: RoleTasking, "load_size": "312", "meta.code_time": "2026-03-01T10:11:12.345Z"},
				Provenance: Provenance{Source: SourceCarried, From: "0123456789abcdef", Reason: "checksum unchanged"}},
			{Path: "cpu/mode", Kind: KindMode, Value: String("RUN"), Provenance: Provenance{Source: SourceRead}},
			{Path: "process/Level", Kind: KindInfo, Volatile: true, Provenance: Provenance{Source: SourceRead}},
			{Path: "cpu/notes", Kind: KindInfo, Value: String("line one\nline two <&>"), Provenance: Provenance{Source: SourceNotObservable, Reason: "not exposed"}},
		},
	}
}

const goldenDigest = "81f8e1406795dd1ba7fc5c8e6be72fcabae9f10d72030d1ed6f6ddac4c13e369"

func TestGoldenDigest(t *testing.T) {
	s := golden()
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	if s.Digest != goldenDigest {
		t.Fatalf("digest of the golden snapshot = %s, pinned %s: the canonical encoding changed", s.Digest, goldenDigest)
	}
	if s.ID != goldenDigest[:IDLength] {
		t.Errorf("id = %s, want the digest's first %d digits", s.ID, IDLength)
	}
}

func TestFinalizeIsDeterministic(t *testing.T) {
	a, b := golden(), golden()
	// Items in another order and times in another zone give the same digest.
	b.Items[0], b.Items[3] = b.Items[3], b.Items[0]
	b.TakenAt = b.TakenAt.UTC()
	if err := a.Finalize(); err != nil {
		t.Fatal(err)
	}
	if err := b.Finalize(); err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Errorf("same content, different digests: %s vs %s", a.Digest, b.Digest)
	}
}

func TestProvenanceNotInItemHash(t *testing.T) {
	a := Item{Path: "x", Kind: KindLogic, Value: Uint(1, ""), Provenance: Provenance{Source: SourceRead}}
	b := a
	b.Provenance = Provenance{Source: SourceCarried, From: "abc"}
	if ContentHash(a) != ContentHash(b) {
		t.Error("a carried item hashes differently from the same item read")
	}
	b.Value = Uint(2, "")
	if ContentHash(a) == ContentHash(b) {
		t.Error("different values hash alike")
	}
}

func TestFinalizeRejects(t *testing.T) {
	tests := []struct {
		name  string
		items []Item
		want  string
	}{
		{"duplicate path", []Item{{Path: "a", Kind: KindInfo}, {Path: "a", Kind: KindInfo}}, "share the path"},
		{"empty path", []Item{{Path: "", Kind: KindInfo}}, "empty path"},
		{"bad kind", []Item{{Path: "a", Kind: "bogus"}}, `kind "bogus"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Snapshot{Device: "d", Items: tc.items}
			err := s.Finalize()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Finalize() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeRoundTripAndTamper(t *testing.T) {
	s := golden()
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b, s.Digest)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got.Digest != s.Digest || len(got.Items) != len(s.Items) {
		t.Errorf("round trip changed the snapshot")
	}
	tests := []struct {
		name   string
		edit   func(string) string
		digest string
		want   error
	}{
		{"value edited", func(s string) string { return strings.Replace(s, `"raw":"RUN"`, `"raw":"STOP"`, 1) }, "", ErrDigestMismatch},
		{"device edited", func(s string) string { return strings.Replace(s, `"press-7"`, `"press-8"`, 1) }, s.Digest, ErrDigestMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.edit(string(b))), tc.digest)
			if !errors.Is(err, tc.want) {
				t.Errorf("Decode = %v, want %v", err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "{", `{"format":2}`, `{"format":1,"bogus":1}`, `{"format":1}{}`} {
		if _, err := Decode([]byte(bad), ""); err == nil {
			t.Errorf("Decode(%q) succeeded", bad)
		}
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		name string
		v    Value
		raw  string
		num  float64
		isN  bool
	}{
		{"float32 shortest", Float32(0.1, ""), "0.1", 0.1, true},
		{"float", Float(87.25, "%"), "87.25", 87.25, true},
		{"nan", Float(nan(), ""), "NaN", 0, true},
		{"int", Int(-5, "s"), "-5", -5, true},
		{"uint", Uint(7, ""), "7", 7, true},
		{"bool", Bool(true), "true", 0, false},
		{"string", String("RUN"), "RUN", 0, false},
		{"bytes", Bytes([]byte{0xde, 0xad}), "dead", 0, false},
		{"time", Time(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)), "2026-01-02T03:04:05.000000006Z", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.v.Raw != tc.raw {
				t.Errorf("raw = %q, want %q", tc.v.Raw, tc.raw)
			}
			n, ok := tc.v.Number()
			if ok != tc.isN || (ok && tc.raw != "NaN" && n != tc.num) {
				t.Errorf("Number() = %v, %v; want %v, %v", n, ok, tc.num, tc.isN)
			}
		})
	}
	if String(strings.Repeat("x", 201)).Type != TypeText || String("a\nb").Type != TypeText {
		t.Error("long or multi-line strings are not text")
	}
}

func FuzzDecode(f *testing.F) {
	s := golden()
	if err := s.Finalize(); err != nil {
		f.Fatal(err)
	}
	b, _ := s.Encode()
	f.Add(b)
	f.Add([]byte(`{"format":1,"items":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b, "")
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to bytes that decode to the same digest.
		out, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(out, s.Digest)
		if err != nil || again.Digest != s.Digest {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func nan() float64 { var z float64; return z / z }
