package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSummaryNamesFurthestTarget(t *testing.T) {
	tests := []struct {
		name string
		r    report
		want []string
	}{
		{
			name: "one diff size misses, the store misses further",
			r: report{
				Diff:  []diffFigures{{Items: 10000, CanonicalBytes: 1 << 20, Plcwatch: run{Wall: 30 * time.Millisecond, PeakRSS: 2 << 20}, GNU: run{Wall: 10 * time.Millisecond}}},
				Store: []storeFigures{{Devices: 1, Snapshots: 365, Items: 500, Bytes: 8 << 20, Unique: 1 << 20}},
			},
			want: []string{"| diff of 10000 items: time against GNU diff -u | 30 ms / 10 ms | 3.00 | 1.00 | **no** |", "Furthest from its target: store of 1 devices x 365 snapshots x 500 items against unique content, 8.00 against at most 1.50."},
		},
		{
			name: "every target met",
			r: report{
				Diff: []diffFigures{{Items: 100, CanonicalBytes: 1 << 20, Plcwatch: run{Wall: 5 * time.Millisecond, PeakRSS: 2 << 20}, GNU: run{Wall: 10 * time.Millisecond}}},
			},
			want: []string{"| 0.50 | 1.00 | yes |", "Every target above is met in this run."},
		},
		{
			name: "a plan one request short is not exact",
			r: report{
				Plans: []planFigures{{Protocol: "s7", Scenario: "demo", After: "first", Planned: 76, PlannedOut: 10, Counted: countFigures{Requests: 77, BytesIn: 10}}},
			},
			want: []string{"76 / 77 requests", "**no**", "Furthest from its target: plan exact for s7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.r.summaryMarkdown()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("summary lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestMedianBench checks that repeated benchmark lines become one per
// name, each figure the median of its runs, in first-seen order.
func TestMedianBench(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []goBench
		want []goBench
	}{
		{name: "one run each", in: []goBench{{Name: "a", NsOp: 3}, {Name: "b", NsOp: 1}}, want: []goBench{{Name: "a", NsOp: 3}, {Name: "b", NsOp: 1}}},
		{name: "odd count", in: []goBench{{Name: "a", NsOp: 9, AllocsOp: 1}, {Name: "b", NsOp: 5}, {Name: "a", NsOp: 1, AllocsOp: 1}, {Name: "a", NsOp: 4, AllocsOp: 2}}, want: []goBench{{Name: "a", NsOp: 4, AllocsOp: 1}, {Name: "b", NsOp: 5}}},
		{name: "even count", in: []goBench{{Name: "a", NsOp: 10, BOp: 8}, {Name: "a", NsOp: 20, BOp: 8}}, want: []goBench{{Name: "a", NsOp: 15, BOp: 8}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := medianBench(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("medianBench = %+v, want %+v", got, tc.want)
			}
		})
	}
}
