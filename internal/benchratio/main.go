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

	"github.com/plcwatch/plcwatch/internal/gobench"
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

// parse reads one result line (see gobench.Parse), naming the benchmark
// without its "Benchmark" prefix.
func parse(line string) (result, bool) {
	r, ok := gobench.Parse(line)
	return result{name: strings.TrimPrefix(r.Name, "Benchmark"), ns: r.NsOp, bytes: r.BOp, al: r.AllocsOp}, ok
}
