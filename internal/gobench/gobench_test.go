package gobench

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Result
		ok         bool
	}{
		{name: "with benchmem", line: "BenchmarkDiff/items=1000-2   500   2400 ns/op   512 B/op   7 allocs/op", want: Result{Name: "BenchmarkDiff/items=1000", NsOp: 2400, BOp: 512, AllocsOp: 7}, ok: true},
		{name: "no GOMAXPROCS suffix", line: "BenchmarkHotPath/indexed/history=10   100   1509902 ns/op", want: Result{Name: "BenchmarkHotPath/indexed/history=10", NsOp: 1509902}, ok: true},
		{name: "a dash in the name is kept", line: "BenchmarkRead/two-roots-4   10   99 ns/op", want: Result{Name: "BenchmarkRead/two-roots", NsOp: 99}, ok: true},
		{name: "not a result", line: "ok  	github.com/plcwatch/plcwatch/store	5.1s", ok: false},
		{name: "no ns/op", line: "BenchmarkX-2   10   5 B/op   1 allocs/op", want: Result{Name: "BenchmarkX", BOp: 5, AllocsOp: 1}, ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Parse(tc.line)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
			}
		})
	}
}
