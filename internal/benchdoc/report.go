package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plcwatch/plcwatch/internal/gobench"
)

// report is everything benchdoc measured.
type report struct {
	Store []storeFigures
	Go    []goBench
	Diff  []diffFigures
	// Startup is `plcwatch version`: the same binary starting and exiting,
	// the fixed cost in every diff.
	Startup run
	Fleet   []fleetFigures
	Daemon  []daemonFigures
	OPCUA   []opcuaFigures
	Plans   []planFigures
}

func (r report) markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\nWritten by `make bench` (`go run ./internal/benchdoc`); do not edit by hand. ")
	b.WriteString("Each figure is measured in one run on this machine, whole processes, median of several runs, next to its anchor; the ratio is figure / anchor.\n\n")
	b.WriteString(r.summaryMarkdown())
	b.WriteString("## Diff: `plcwatch diff A B` against GNU `diff -u`\n\n")
	b.WriteString("Two snapshots of N items, 1% of them changed, in a fresh store. The anchor is GNU `diff -u` of the two snapshots rendered as text by `plcwatch show`. The two commands take turns (at least 11 runs each up to 100,000 items), and each figure is the median of its runs. ")
	b.WriteString("Targets: time ratio at most 1.00; peak memory at most 10x the two snapshots' canonical encodings. ")
	b.WriteString("How: snapshot records name their manifest digest, so the chain fixes every item's key; `diff` checks both manifests, reads in bulk only the items the two do not share (through a memory map of the store file, not a pread and page copy per page), checks each against its key once and decodes only those (items shared byte for byte compare equal). What it trades: a blob damaged in the store but shared by both sides is not seen by `diff` (verify and `show` find it).\n\n")
	b.WriteString("The floor is `internal/difffloor`, run in the same turns on the same store: the least any static binary linking the five required libraries and the SQLite driver can do for this comparison. It starts, opens the store read-only through a memory map, reads both manifests and hashes them, and reads and hashes the blobs of the items the two snapshots do not share; it decodes, compares and prints nothing. Where the floor itself is above GNU diff, `plcwatch diff` cannot meet the time target at that size with this store format (a manifest is read whole to be checked), the required libraries and the check of what it reads.\n\n")
	b.WriteString("| items | plcwatch diff | GNU diff -u | time ratio | target met | floor | floor / GNU | plcwatch / floor | peak RSS | canonical size | RSS / canonical | target met | storing both snapshots |\n")
	b.WriteString("|---:|---:|---:|---:|:-:|---:|---:|---:|---:|---:|---:|:-:|---:|\n")
	for _, f := range r.Diff {
		tr := ratio(f.Plcwatch.Wall, f.GNU.Wall)
		mr := float64(f.Plcwatch.PeakRSS) / float64(f.CanonicalBytes)
		floor, fg, pf := "not measured", "", ""
		if f.Floor.Wall > 0 {
			floor, fg, pf = ms(f.Floor.Wall), fmt.Sprintf("%.2f", ratio(f.Floor.Wall, f.GNU.Wall)), fmt.Sprintf("%.2f", ratio(f.Plcwatch.Wall, f.Floor.Wall))
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %.2f | %s | %s | %s | %s | %s | %s | %.1f | %s | %s |\n", f.Items, ms(f.Plcwatch.Wall), ms(f.GNU.Wall), tr, yes(tr <= 1), floor, fg, pf, mib(f.Plcwatch.PeakRSS), mib(f.CanonicalBytes), mr, yes(mr <= 10), ms(f.Put))
	}
	if len(r.Diff) > 1 {
		a, z := r.Diff[0], r.Diff[len(r.Diff)-1]
		if r.Startup.Wall > 0 {
			fmt.Fprintf(&b, "\nStart-up alone, `plcwatch version` (the same static binary: the Go runtime, SQLite and three protocol stacks initialised, nothing read): %s, against GNU diff's %s for the whole comparison at %d items.\n", ms(r.Startup.Wall), ms(a.GNU.Wall), a.Items)
		}
		fmt.Fprintf(&b, "\nGrowth from %d to %d items (%.0fx the items): plcwatch diff %.1fx the time, GNU diff %.1fx.\n", a.Items, z.Items, float64(z.Items)/float64(a.Items), ratio(z.Plcwatch.Wall, a.Plcwatch.Wall), ratio(z.GNU.Wall, a.GNU.Wall))
	}
	if len(r.Go) > 0 {
		b.WriteString("\n## Hot paths: cost per window against history\n\n")
		b.WriteString("`BenchmarkHotPath` (alerts package): what a daemon window asks the store per device (the device's alerts, the snapshot count for the forced-full-read decision, the open planned change, the newest complete snapshot's record), at 10 and 3,650 snapshots of history (ten years of nightly windows), each followed by a repeated alert. ")
		fmt.Fprintf(&b, "The anchor is the same at 10 snapshots; `rebuild` is what the code did before (every alert, alert_seen and approval record, and every record for the open change). Target: flat (ratio near 1). The `indexed` rows are the median of %d runs (the one of `make bench`'s Go benchmarks and %d more), `rebuild` a single run.\n\n", hotPathRuns+1, hotPathRuns)
		b.WriteString("| benchmark | ns/op | B/op | allocs/op | ratio to history=10 |\n|---|---:|---:|---:|---:|\n")
		base := map[string]float64{}
		for _, g := range r.Go {
			fam := strings.SplitN(g.Name, "/history=", 2)[0]
			if strings.HasSuffix(g.Name, "/history=10") {
				base[fam] = g.NsOp
			}
		}
		for _, g := range r.Go {
			fam := strings.SplitN(g.Name, "/history=", 2)[0]
			rt := "-"
			if b := base[fam]; b > 0 {
				rt = fmt.Sprintf("%.2f", g.NsOp/b)
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %s |\n", g.Name, g.NsOp, g.BOp, g.AllocsOp, rt)
		}
		b.WriteString("\nOther Go benchmarks (`-benchmem`) are in `bench.out`; compare runs with benchstat.\n")
	}
	r.storeMarkdown(&b)
	b.WriteString("\n## Fleet: `plcwatch check --all` against the rate-limit floor\n\n")
	b.WriteString("Simulated S7-300 controllers on loopback (the demo program), each behind a proxy that timestamps every request frame it receives; one `check --all` (the first: it stores a snapshot per device). ")
	b.WriteString("The floor: a device's n requests are at least 1/rps apart, so it needs (n-1)/rps; at most `max_concurrent_devices` are read at once, so the fleet needs at least the sum over devices divided by the cap. ")
	b.WriteString("Targets: time at most 1.10x the floor; no device sees more than floor(rps) requests in any one second. Each run starts from an empty store; the table shows the median run and the spread of the ratio over all runs (CPU: user + system of `check --all` and its session processes, the most of any run; peak RSS: the largest process).\n\n")
	b.WriteString("| devices | cap | rps per device | requests | floor | check --all | ratio (spread) | target met | max requests in one second (limit) | refused writes | peak RSS | CPU |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|\n")
	for _, f := range r.Fleet {
		tr := ratio(f.Run.Wall, f.Floor)
		fmt.Fprintf(&b, "| %d | %d | %g | %d | %s | %s | %.2f (%s) | %s | %d (%d) %s | %d | %s | %.2f s |\n", f.Devices, f.Cap, f.RPS, f.Requests, ms(f.Floor), ms(f.Run.Wall), tr, spread(f.Ratios), yes(tr <= 1.1 && slices.Max(append(f.Ratios, tr)) <= 1.1),
			f.MaxInSecond, int(f.RPS), yes(f.MaxInSecond <= int(f.RPS)), f.Refused, mib(f.Run.PeakRSS), f.Run.CPU.Seconds())
	}
	b.WriteString(daemonMarkdown(r.Daemon))
	for _, f := range r.Fleet {
		if f.UploadBytes == 0 {
			continue
		}
		b.WriteString("\n## S7: a snapshot against a full upload\n\n")
		b.WriteString("One simulated S7-300 of the fleet above (the demo program). The anchor is what vendor backup tools send: a full upload of every user block (OB, FB, FC, DB, SDB), counted as the sum of the blocks' load sizes from their block info (protocol overhead not counted, so the real upload is larger). The snapshot's bytes are its recorded cost, sent plus received. No target is set; smaller is gentler.\n\n")
		fmt.Fprintf(&b, "| snapshot bytes | full upload (load sizes) | ratio |\n|---:|---:|---:|\n| %d | %d | %.2f |\n", f.SnapshotBytes, f.UploadBytes, float64(f.SnapshotBytes)/float64(f.UploadBytes))
		break
	}
	b.WriteString(opcuaMarkdown(r.OPCUA, r.Plans))
	return b.String()
}

// goBench is one result line of `go test -bench`.
type goBench = gobench.Result

// goBenchLines picks the hot-path results out of `go test -bench` output.
func goBenchLines(out string) []goBench {
	var gs []goBench
	for _, line := range strings.Split(out, "\n") {
		if g, ok := gobench.Parse(line); ok && strings.HasPrefix(g.Name, "BenchmarkHotPath/") {
			gs = append(gs, g)
		}
	}
	return gs
}

// hotPathRuns is how many more runs of the indexed hot path benchdoc makes
// (besides the one in make bench's go test output).
const hotPathRuns = 5

// medianBench returns one result per benchmark name, in the order names
// first come, each figure the median of that name's results.
func medianBench(gs []goBench) []goBench {
	by := map[string][]goBench{}
	var order []string
	for _, g := range gs {
		if _, ok := by[g.Name]; !ok {
			order = append(order, g.Name)
		}
		by[g.Name] = append(by[g.Name], g)
	}
	med := func(rs []goBench, f func(goBench) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := make([]goBench, 0, len(order))
	for _, n := range order {
		rs := by[n]
		out = append(out, goBench{Name: n,
			NsOp:     med(rs, func(g goBench) float64 { return g.NsOp }),
			BOp:      med(rs, func(g goBench) float64 { return g.BOp }),
			AllocsOp: med(rs, func(g goBench) float64 { return g.AllocsOp })})
	}
	return out
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
