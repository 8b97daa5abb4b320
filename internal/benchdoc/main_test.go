package main

import (
	"strings"
	"testing"
	"time"
)

func TestFleetFloor(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perDevice []int
		rps       float64
		cap       int
		want      time.Duration
	}{
		{name: "one device: its requests spaced", perDevice: []int{11}, rps: 10, cap: 4, want: time.Second},
		{name: "cap binds", perDevice: []int{11, 11, 11, 11}, rps: 10, cap: 2, want: 2 * time.Second},
		{name: "longest device binds", perDevice: []int{51, 2, 2}, rps: 10, cap: 2, want: 5 * time.Second},
		{name: "no requests", perDevice: []int{0, 1}, rps: 10, cap: 1, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fleetFloor(tc.perDevice, tc.rps, tc.cap); got != tc.want {
				t.Errorf("fleetFloor = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ts   []time.Time
		want int
	}{
		{name: "none", want: 0},
		{name: "spread", ts: at(0, 1000, 2000), want: 1},
		{name: "burst inside a second", ts: at(0, 100, 999, 1000, 1998), want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := maxInWindow(tc.ts, time.Second); got != tc.want {
				t.Errorf("maxInWindow = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestGoBenchLines(t *testing.T) {
	out := "pkg: x\nBenchmarkHotPath/indexed/history=10-2   100   1500 ns/op   16 B/op   3 allocs/op\nBenchmarkOther-2 1 2 ns/op 0 B/op 0 allocs/op\n"
	gs := goBenchLines(out)
	if len(gs) != 1 || gs[0].Name != "BenchmarkHotPath/indexed/history=10" || gs[0].NsOp != 1500 || gs[0].BOp != 16 || gs[0].AllocsOp != 3 {
		t.Fatalf("goBenchLines = %+v", gs)
	}
	md := report{Go: gs}.markdown()
	if !strings.Contains(md, "| BenchmarkHotPath/indexed/history=10 | 1500 | 16 | 3 | 1.00 |") {
		t.Errorf("report lacks the hot-path row:\n%s", md)
	}
}
