package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := `goos: linux
pkg: example/x
BenchmarkDiff/small-2     1000    1000 ns/op    100 B/op    2 allocs/op
BenchmarkDiff/large-2      100    4000 ns/op    250 B/op    9 allocs/op
PASS
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"example/x Diff", "Diff/large", "4.00", "2.50"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(strings.NewReader("nothing"), &out); err == nil {
		t.Error("no results accepted")
	}
}
