// Command benchdoc measures plcwatch against outside anchors (GNU diff, a
// full read, the rate-limit floor) and writes docs/BENCHMARKS.md. `make
// bench` runs it after building bin/plcwatch.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The fleet measured: check --all on this many simulated S7 controllers,
// this many at once, each at this many requests per second.
var (
	fleetDevices = 100
	fleetCap     = 10
	fleetRPS     = 50.0
	fleetReps    = 3
	// storeDevices is how many devices get a year of nightly snapshots of
	// 500 items for the store figures (0: not measured); bigDevices how many
	// get 5,000 items.
	storeDevices = storeCases[0].devices
	bigDevices   = storeCases[1].devices
)

func main() {
	bin := flag.String("bin", "bin/plcwatch", "the plcwatch binary to measure")
	out := flag.String("out", "docs/BENCHMARKS.md", "where to write the report")
	sizes := flag.String("diff-items", "10000,100000,1000000", "snapshot sizes (items) for the diff comparison")
	flag.IntVar(&fleetDevices, "fleet", fleetDevices, "simulated controllers for check --all")
	flag.IntVar(&fleetReps, "fleet-reps", fleetReps, "runs of check --all (the spread of their ratios is reported)")
	flag.IntVar(&storeDevices, "store-devices", storeDevices, "devices with 365 nightly snapshots of 500 items for the store figures (0 to skip)")
	flag.IntVar(&bigDevices, "store-devices-5000", bigDevices, "devices with 365 nightly snapshots of 5,000 items for the store figures (0 to skip)")
	gobench := flag.String("gobench", "", "`go test -bench` output whose hot-path benchmarks go into the report")
	reps := flag.Int("reps", 5, "runs per measurement (the median is reported)")
	only := flag.String("only", "", "comma-separated sections to measure (diff, fleet, daemon, store, opcua); empty: all")
	mix := flag.String("daemon-mix", fmt.Sprintf("%d,%d,%d", daemonS7, daemonLogix, daemonOPCUA), "simulated S7, Logix and OPC UA controllers for the daemon")
	flag.Parse()
	// gopcua's server (the OPC UA simulators) prints to the standard
	// logger; benchdoc's own output is its report and its progress lines.
	log.SetOutput(io.Discard)
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			sections[s] = true
		}
	}
	if _, err := fmt.Sscanf(*mix, "%d,%d,%d", &daemonS7, &daemonLogix, &daemonOPCUA); err != nil {
		fmt.Fprintf(os.Stderr, "benchdoc: -daemon-mix %q: want three counts, such as 300,150,50\n", *mix)
		os.Exit(2)
	}
	if err := run1(context.Background(), *bin, *out, *sizes, *gobench, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(2)
	}
}

// sections selected by -only; empty means every section.
var sections = map[string]bool{}

// measured says whether a section is to be measured in this run.
func measured(name string) bool { return len(sections) == 0 || sections[name] }

func run1(ctx context.Context, bin, out, sizes, gobench string, reps int) error {
	var ns []int
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 100 {
			return fmt.Errorf("-diff-items %q: want a comma-separated list of item counts of at least 100", sizes)
		}
		ns = append(ns, n)
	}
	r := report{}
	if gobench != "" {
		b, err := os.ReadFile(gobench)
		if err != nil {
			return err
		}
		r.Go = goBenchLines(string(b))
		if len(r.Go) > 0 {
			// Two figures of a few hundred microseconds, one measured
			// after the other (and, in make bench, next to other
			// packages' benchmarks), move with the machine: the indexed
			// hot path runs hotPathRuns times more on its own, both
			// histories in each run, and each figure is the median of
			// its runs.
			more := r.Go
			for range hotPathRuns {
				cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkHotPath$/^indexed$", "-benchmem", "-count", "1", "./alerts")
				cmd.Stderr = os.Stderr
				out, err := cmd.Output()
				if err != nil {
					return fmt.Errorf("running BenchmarkHotPath again: %w", err)
				}
				more = append(more, goBenchLines(string(out))...)
			}
			r.Go = medianBench(more)
		}
	}
	if measured("diff") {
		st, err := median(ctx, reps, 0, bin, "version")
		if err != nil {
			return fmt.Errorf("plcwatch version: %w", err)
		}
		r.Startup = st
	}
	var floorBin string
	if measured("diff") {
		dir, err := os.MkdirTemp("", "plcwatch-floor-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if floorBin, err = buildFloor(ctx, dir); err != nil {
			return err
		}
	}
	for _, n := range ns {
		if !measured("diff") {
			break
		}
		dir, err := os.MkdirTemp("", "plcwatch-bench-")
		if err != nil {
			return err
		}
		f, err := benchDiff(ctx, bin, floorBin, dir, n, reps)
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("diff at %d items: %w", n, err)
		}
		fmt.Fprintf(os.Stderr, "diff %d items: plcwatch %v %d MiB, GNU diff %v %d MiB, floor %v (store writes %v)\n", n, f.Plcwatch.Wall, f.Plcwatch.PeakRSS>>20, f.GNU.Wall, f.GNU.PeakRSS>>20, f.Floor.Wall, f.Put)
		r.Diff = append(r.Diff, f)
	}
	for _, fl := range []struct {
		n, capDevices int
		rps           float64
	}{{n: fleetDevices, capDevices: fleetCap, rps: fleetRPS}} {
		if !measured("fleet") {
			break
		}
		dir, err := os.MkdirTemp("", "plcwatch-bench-")
		if err != nil {
			return err
		}
		f, err := benchFleet(ctx, bin, dir, fl.n, fl.capDevices, fl.rps, fleetReps)
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("fleet of %d: %w", fl.n, err)
		}
		fmt.Fprintf(os.Stderr, "check --all on %d: %v (median), floor %v, ratios %.3f, %d requests, max %d in one second\n", fl.n, f.Run.Wall, f.Floor, f.Ratios, f.Requests, f.MaxInSecond)
		r.Fleet = append(r.Fleet, f)
	}
	if measured("daemon") {
		dir, err := os.MkdirTemp("", "plcwatch-bench-")
		if err != nil {
			return err
		}
		f, err := benchDaemon(ctx, bin, dir)
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
		fmt.Fprintf(os.Stderr, "daemon on %d+%d+%d: %v, floor %v, %d requests, max %d in one second, %d failed\n", f.S7, f.Logix, f.OPCUA, f.Took, f.Floor, f.Requests, f.MaxInSecond, f.Failed)
		r.Daemon = append(r.Daemon, f)
	}
	for _, c := range []struct{ devices, items int }{{storeDevices, 500}, {bigDevices, 5000}} {
		if c.devices <= 0 || !measured("store") {
			continue
		}
		dir, err := storeTempDir()
		if err != nil {
			return err
		}
		f, err := benchStoreSize(ctx, bin, dir, c.devices, 365, c.items, min(reps, 3))
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("store size: %w", err)
		}
		fmt.Fprintf(os.Stderr, "store: %d devices x %d snapshots x %d items: %d bytes for %d unique (put %v, verify %v %d MiB)\n", f.Devices, f.Snapshots, f.Items, f.Bytes, f.Unique, f.Put, f.Verify.Wall, f.Verify.PeakRSS>>20)
		r.Store = append(r.Store, f)
	}
	if measured("opcua") {
		f, plans, err := benchOPCUA(ctx)
		if err != nil {
			return fmt.Errorf("opcua: %w", err)
		}
		fmt.Fprintf(os.Stderr, "opcua 10,000 nodes: full read %d requests, unchanged %d\n", f.Full.Requests, f.Unchanged.Requests)
		r.OPCUA, r.Plans = append(r.OPCUA, f), plans
	}
	return os.WriteFile(out, []byte(r.markdown()), 0o644)
}
