package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/plcwatch/plcwatch/snapshots"
)

// testItems returns the canonical encodings of n finalized items shaped as
// the S7 connector's blocks (a digest, five attributes).
func testItems(tb testing.TB, n int) [][]byte {
	tb.Helper()
	s := &snapshots.Snapshot{Device: "plc", Protocol: "s7", Status: snapshots.Status{Complete: true}}
	for i := range n {
		s.Items = append(s.Items, snapshots.Item{
			Path: fmt.Sprintf("blocks/DB%05d", i), Kind: snapshots.KindLogic,
			Value: snapshots.Bytes([]byte(fmt.Sprintf("code of DB%05d", i))),
			Attrs: map[string]string{"checksum_algorithm": "crc32", "language": "SCL", "meta.code_time": "2024-03-01T08:00:00Z", "role": "data", "size": "200"},
		})
	}
	if err := s.Finalize(); err != nil {
		tb.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range s.Items {
		b, err := canonical(&s.Items[i])
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// itemsInput keys blobs by their index (the hash check is not under test
// here) and asks for every one of them.
func itemsInput(blobs [][]byte) ([][keySize]byte, []int, verifiedBlobs) {
	ks := make([][keySize]byte, len(blobs))
	idx := make([]int, len(blobs))
	vb := verifiedBlobs{}
	for i, b := range blobs {
		ks[i][0], ks[i][1] = byte(i>>8), byte(i)
		idx[i] = i
		vb[ks[i]] = b
	}
	return ks, idx, vb
}

// decodeItemsOneByOne is the reference decodeItems is held to: one
// decoder per item, unknown fields refused, nothing but whitespace after
// the value.
func decodeItemsOneByOne(blobs [][]byte) ([]snapshots.Item, error) {
	items := make([]snapshots.Item, len(blobs))
	for i, b := range blobs {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&items[i]); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) != 0 {
			return nil, fmt.Errorf("item %d: trailing data", i)
		}
	}
	for i := range items {
		if i > 0 && items[i-1].Path >= items[i].Path {
			return nil, fmt.Errorf("items not in strict path order at %q", items[i].Path)
		}
		if !items[i].Kind.Valid() {
			return nil, fmt.Errorf("item %q has kind %q", items[i].Path, items[i].Kind)
		}
	}
	return items, nil
}

// TestDecodeItems checks that items read as one stream are as strict as
// items decoded one by one: a value must begin and end inside its own
// blob, with no unknown field and nothing after it, and the error names
// the item.
func TestDecodeItems(t *testing.T) {
	good := testItems(t, 3)
	with := func(i int, b string) [][]byte {
		out := append([][]byte(nil), good...)
		out[i] = []byte(b)
		return out
	}
	a, b := string(good[0]), string(good[1])
	for _, tc := range []struct {
		name  string
		blobs [][]byte
		want  string // error text; empty: decodes to what the reference gives
	}{
		{name: "canonical items", blobs: good},
		{name: "whitespace around a value", blobs: with(1, " \n"+b+"\t\r\n ")},
		{name: "no items", blobs: [][]byte{}},
		{name: "unknown field", blobs: with(1, strings.Replace(b, `{"path"`, `{"extra":1,"path"`, 1)), want: `item 1: json: unknown field "extra"`},
		{name: "trailing value", blobs: with(1, b+` {"path":"x"}`), want: "item 1: trailing data after the JSON value"},
		{name: "trailing brace", blobs: with(1, b+`}`), want: "item 1: trailing data after the JSON value"},
		{name: "trailing bracket", blobs: with(2, string(good[2])+`]`), want: "item 2: trailing data after the JSON value"},
		{name: "value split over two blobs", blobs: [][]byte{[]byte(a[:1]), []byte(a[1:]), good[2]}, want: "item 0: the JSON value does not end inside the item"},
		{name: "value split inside a string", blobs: [][]byte{[]byte(a[:20]), []byte(a[20:]), good[2]}, want: "item 0: unexpected EOF"},
		{name: "empty blob", blobs: with(1, ""), want: "item 1: the JSON value does not end inside the item"},
		{name: "empty last blob", blobs: with(2, " "), want: "item 2: EOF"},
		{name: "truncated last blob", blobs: with(2, string(good[2][:30])), want: "item 2: unexpected EOF"},
		{name: "not an object", blobs: with(0, `[1]`), want: "item 0: json: cannot unmarshal array into Go value of type snapshots.Item"},
		{name: "syntax error", blobs: with(1, `{"path":}`), want: "item 1: invalid character '}' looking for beginning of value"},
		{name: "paths out of order", blobs: [][]byte{good[1], good[0]}, want: `items not in strict path order at "blocks/DB00000"`},
		{name: "unknown kind", blobs: with(2, strings.Replace(string(good[2]), `"kind":"logic"`, `"kind":"firmwares"`, 1)), want: `item "blocks/DB00002" has kind "firmwares"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, refErr := decodeItemsOneByOne(tc.blobs)
			got, err := decodeItems(itemsInput(tc.blobs))
			if tc.want == "" {
				if err != nil || refErr != nil {
					t.Fatalf("decodeItems = %v (reference %v), want items", err, refErr)
				}
				if !reflect.DeepEqual(got, ref) {
					t.Errorf("decodeItems = %+v, want %+v", got, ref)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("decodeItems error = %v, want %q", err, tc.want)
			}
			if refErr == nil {
				t.Errorf("the one-by-one reference accepts what decodeItems refuses")
			}
		})
	}
}

// FuzzDecodeItems holds decodeItems to the one-by-one reference on
// arbitrary blobs: both refuse the same input, naming the same item, or
// both give the same items.
func FuzzDecodeItems(f *testing.F) {
	good := testItems(f, 3)
	f.Add(good[0], good[1], good[2])
	f.Add(good[0][:20], good[0][20:], good[2])
	f.Add(good[0], append(append([]byte{}, good[1]...), '}'), []byte(" "))
	f.Add([]byte(`{"path":"a","kind":"logic"`), []byte(`,"hash":"x"}`), []byte(`{"path":"b","kind":"logic"} `))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		blobs := [][]byte{a, b, c}
		ref, refErr := decodeItemsOneByOne(blobs)
		got, err := decodeItems(itemsInput(blobs))
		switch {
		case (err == nil) != (refErr == nil):
			t.Fatalf("decodeItems error %v, reference %v", err, refErr)
		case err != nil:
			if g, r := errorItem(err), errorItem(refErr); g != r {
				t.Fatalf("decodeItems error %v names %q, reference %v names %q", err, g, refErr, r)
			}
		case !reflect.DeepEqual(got, ref):
			t.Fatalf("decodeItems = %+v, reference %+v", got, ref)
		}
	})
}

// errorItem returns the item an error names ("item 2", or the order or
// kind message whole).
func errorItem(err error) string {
	s := err.Error()
	if strings.HasPrefix(s, "item ") {
		if i := strings.Index(s, ":"); i > 0 {
			return s[:i]
		}
	}
	return s
}
