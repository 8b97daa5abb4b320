package s7

import (
	"strconv"
	"strings"
	"testing"

	"github.com/plcwatch/plcwatch/diffing"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/snapshots"
)

// TestText reads text setpoints as the CPU holds them, byte for byte, and
// changes them: each row's value is what the CPU means, and a row with a
// reason is bytes that are no valid text, which are not observable.
func TestText(t *testing.T) {
	tests := []struct {
		name       string
		typ        string
		length     int
		before     []byte // bytes at DB20.DBB0
		after      []byte // nil: not changed
		want       string // value after (or before when after is nil)
		wantBefore string
		reason     string // not observable, with this in the reason
		attrs      string // an attribute after, key=value
	}{
		{name: "STRING in Windows-1252", typ: "STRING", length: 8,
			before: []byte{8, 4, 'K', 0xC4, 'S', 'E'}, after: []byte{8, 4, 'K', 0xD6, 'S', 'E'},
			wantBefore: "KÄSE", want: "KÖSE"},
		{name: "STRING with the euro sign and quotes of code page 1252", typ: "STRING", length: 8,
			before: []byte{8, 4, 0x80, 0x93, 'x', 0x94}, wantBefore: "€“x”", want: "€“x”"},
		{name: "STRING bytes the code page leaves undefined stay distinct", typ: "STRING", length: 4,
			before: []byte{4, 2, 0x81, 0x8D}, after: []byte{4, 2, 0x81, 0x8F},
			wantBefore: "\u0081\u008d", want: "\u0081\u008f"},
		{name: "STRING shortened by its length byte only", typ: "STRING", length: 8,
			before: []byte{8, 4, 'K', 0xC4, 'S', 'E'}, after: []byte{8, 3, 'K', 0xC4, 'S', 'E'},
			wantBefore: "KÄSE", want: "KÄS"},
		{name: "STRING re-declared longer, same text", typ: "STRING", length: 8,
			before: []byte{8, 4, 'K', 0xC4, 'S', 'E'}, after: []byte{10, 4, 'K', 0xC4, 'S', 'E'},
			wantBefore: "KÄSE", want: "KÄSE", attrs: "max_length=10"},
		{name: "WSTRING re-declared longer, same text", typ: "WSTRING", length: 2,
			before: []byte{0, 2, 0, 1, 0, 'K'}, after: []byte{0, 3, 0, 1, 0, 'K'},
			wantBefore: "K", want: "K", attrs: "max_length=3"},
		{name: "STRING whose current length exceeds its maximum", typ: "STRING", length: 4,
			before: []byte{4, 9, 'A', 'B', 'C', 'D'}, reason: "current length 9 exceeds its maximum length 4"},
		{name: "STRING longer than declared in the configuration", typ: "STRING", length: 4,
			before: []byte{10, 6, 'A', 'B', 'C', 'D', 'E', 'F'}, reason: "current length 6 exceeds the declared length 4"},
		{name: "CHAR in Windows-1252", typ: "CHAR",
			before: []byte{0xDF}, after: []byte{0x9A}, wantBefore: "ß", want: "š"},
		{name: "WSTRING in UTF-16", typ: "WSTRING", length: 4,
			before: []byte{0, 4, 0, 3, 0, 'K', 0, 0xC4, 0x6C, 0x34}, after: []byte{0, 4, 0, 3, 0, 'K', 0, 0xD6, 0x6C, 0x34},
			wantBefore: "KÄ水", want: "KÖ水"},
		{name: "WSTRING with a surrogate pair", typ: "WSTRING", length: 2,
			before: []byte{0, 2, 0, 2, 0xD8, 0x3D, 0xDE, 0x00}, wantBefore: "😀", want: "😀"},
		{name: "WSTRING whose current length exceeds its maximum", typ: "WSTRING", length: 2,
			before: []byte{0, 2, 0, 3, 0, 'A', 0, 'B'}, reason: "current length 3 exceeds its maximum length 2"},
		{name: "WSTRING with a lone surrogate", typ: "WSTRING", length: 2,
			before: []byte{0, 2, 0, 2, 0, 'A', 0xDC, 0x00}, reason: "lone UTF-16 surrogate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, scenario("s7-300", 240, s7sim.Block{Type: "DB", Number: 20, Code: strings.Repeat("00", 40)}), s7sim.Options{})
			must(t, sim.SetDB(20, 0, tc.before))
			sp := "        - {name: Text, address: DB20.DBB0, type: " + tc.typ
			if tc.length > 0 {
				sp += ", length: " + strconv.Itoa(tc.length)
			}
			c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), func(y string) string { return y + "      setpoints:\n" + sp + "}\n" }))
			a := snap(t, c, nil)
			if !a.Status.Complete {
				t.Fatalf("snapshot partial: %v", a.Status.Reasons)
			}
			it := a.Item("setpoints/Text")
			if tc.reason != "" {
				if it.Provenance.Source != snapshots.SourceNotObservable || !strings.Contains(it.Provenance.Reason, tc.reason) || it.Value.Type != snapshots.TypeNone {
					t.Fatalf("%+v: want not observable because %s", it, tc.reason)
				}
				if it.Attrs["raw"] == "" {
					t.Errorf("%+v: the bytes read are not kept", it)
				}
				return
			}
			if it.Value.Raw != tc.wantBefore || it.Provenance.Source != snapshots.SourceRead {
				t.Fatalf("value %q (%s), want %q", it.Value.Raw, it.Provenance.Source, tc.wantBefore)
			}
			if tc.after == nil {
				return
			}
			must(t, sim.SetDB(20, 0, tc.after))
			b := snap(t, c, a)
			r := diffing.Compare(a, b, diffing.Options{})
			if len(r.Changes) != 1 || r.Changes[0].Path != "setpoints/Text" || r.Changes[0].Type != diffing.Changed {
				t.Fatalf("changes %+v: want setpoints/Text changed", r.Changes)
			}
			if got := b.Item("setpoints/Text").Value.Raw; got != tc.want {
				t.Errorf("%q -> %q, want %q -> %q", tc.wantBefore, got, tc.wantBefore, tc.want)
			}
			if k, v, ok := strings.Cut(tc.attrs, "="); ok && b.Item("setpoints/Text").Attrs[k] != v {
				t.Errorf("attrs %v, want %s", b.Item("setpoints/Text").Attrs, tc.attrs)
			}
		})
	}
}
