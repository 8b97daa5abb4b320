// Command benchratio reads `go test -bench` output on stdin and prints each
// benchmark family (BenchmarkX/variant) side by side, as ratios to the
// family's first variant, so that results from one run compare directly.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

type result struct {
	name          string
	ns, bytes, al float64
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
}

func run(r io.Reader, w io.Writer) error {
	families := map[string][]result{}
	var order []string
	sc := bufio.NewScanner(r)
	pkg := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "pkg: ") {
			pkg = strings.TrimPrefix(line, "pkg: ")
			continue
		}
		res, ok := parse(line)
		if !ok {
			continue
		}
		fam, _, _ := strings.Cut(res.name, "/")
		key := pkg + " " + fam
		if _, seen := families[key]; !seen {
			order = append(order, key)
		}
		families[key] = append(families[key], res)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark results on standard input")
	}
	for _, key := range order {
		rs := families[key]
		fmt.Fprintf(w, "\n%s\n", key)
		fmt.Fprintf(w, "  %-48s %14s %8s %12s %8s %10s\n", "variant", "ns/op", "x", "B/op", "x", "allocs/op")
		base := rs[0]
		for _, r := range rs {
			fmt.Fprintf(w, "  %-48s %14.0f %8s %12.0f %8s %10.0f\n", r.name, r.ns, ratio(r.ns, base.ns), r.bytes, ratio(r.bytes, base.bytes), r.al)
		}
	}
	return nil
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

// parse reads one result line such as
// "BenchmarkDiff/1000-2   500   2400 ns/op   512 B/op   7 allocs/op".
func parse(line string) (result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return result{}, false
	}
	name := f[0]
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	res := result{name: strings.TrimPrefix(name, "Benchmark")}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		switch f[i+1] {
		case "ns/op":
			res.ns = v
		case "B/op":
			res.bytes = v
		case "allocs/op":
			res.al = v
		}
	}
	return res, res.ns > 0
}
