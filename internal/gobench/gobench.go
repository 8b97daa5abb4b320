// Package gobench reads the result lines `go test -bench -benchmem` prints,
// for the tools that turn them into ratios (benchratio) and into
// docs/BENCHMARKS.md (benchdoc).
package gobench

import (
	"strconv"
	"strings"
)

// Result is one benchmark result line.
type Result struct {
	// Name is the benchmark's full name ("BenchmarkDiff/items=1000")
	// without the GOMAXPROCS suffix ("-2").
	Name string
	// NsOp, BOp and AllocsOp are the ns/op, B/op and allocs/op figures
	// (0 when the line lacks one).
	NsOp, BOp, AllocsOp float64
}

// Parse reads one line such as
// "BenchmarkDiff/1000-2   500   2400 ns/op   512 B/op   7 allocs/op";
// ok is false for any line that is not a result with an ns/op figure.
func Parse(line string) (r Result, ok bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return Result{}, false
	}
	r.Name = f[0]
	if i := strings.LastIndex(r.Name, "-"); i > 0 {
		if _, err := strconv.Atoi(r.Name[i+1:]); err == nil {
			r.Name = r.Name[:i]
		}
	}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		switch f[i+1] {
		case "ns/op":
			r.NsOp = v
		case "B/op":
			r.BOp = v
		case "allocs/op":
			r.AllocsOp = v
		}
	}
	return r, r.NsOp > 0
}
