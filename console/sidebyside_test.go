package console

import (
	"reflect"
	"testing"

	"github.com/plcwatch/plcwatch/diffing"
)

// TestSideBySide: a text item's line diff is laid out side by side, a run
// of removed lines beside the added lines that replace it.
func TestSideBySide(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     []linePair
	}{
		{"one line replaced", "a\nb\nc", "a\nB\nc", []linePair{
			{Old: "a", New: "a"}, {Old: "b", OldCls: "del", New: "B", NewCls: "ins"}, {Old: "c", New: "c"}}},
		{"line added", "a\nc", "a\nb\nc", []linePair{
			{Old: "a", New: "a"}, {New: "b", NewCls: "ins"}, {Old: "c", New: "c"}}},
		{"two removed, one added", "x\ny\nz", "q\nz", []linePair{
			{Old: "x", OldCls: "del", New: "q", NewCls: "ins"}, {Old: "y", OldCls: "del"}, {Old: "z", New: "z"}}},
		{"control characters made printable", "a\x1b[2J", "b", []linePair{
			{Old: `a\x1b[2J`, OldCls: "del", New: "b", NewCls: "ins"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := sideBySide(diffing.LineDiff(tc.old, tc.new))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
