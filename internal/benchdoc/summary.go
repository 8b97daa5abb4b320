package main

import (
	"fmt"
	"strings"
)

// target is one row of the summary: a figure against its anchor, and the
// bound issue 10 sets on their ratio.
type target struct {
	What   string
	Figure string  // the figure and its anchor, as measured
	Ratio  float64 // figure / anchor (for counts: figure / target)
	Bound  float64 // the ratio must be at most this
	Met    bool
}

// targets lists every measured target of issue 10, in the order the
// sections come.
func (r report) targets() []target {
	var ts []target
	add := func(what, figure string, ratio, bound float64) {
		ts = append(ts, target{What: what, Figure: figure, Ratio: ratio, Bound: bound, Met: ratio <= bound})
	}
	for _, f := range r.Diff {
		add(fmt.Sprintf("diff of %d items: time against GNU diff -u", f.Items), ms(f.Plcwatch.Wall)+" / "+ms(f.GNU.Wall), ratio(f.Plcwatch.Wall, f.GNU.Wall), 1)
		add(fmt.Sprintf("diff of %d items: peak RSS against canonical size", f.Items), mib(f.Plcwatch.PeakRSS)+" / "+mib(f.CanonicalBytes), float64(f.Plcwatch.PeakRSS)/float64(f.CanonicalBytes), 10)
	}
	base := map[string]float64{}
	for _, g := range r.Go {
		if fam, ok := strings.CutSuffix(g.Name, "/history=10"); ok {
			base[fam] = g.NsOp
		}
	}
	for _, g := range r.Go {
		fam, ok := strings.CutSuffix(g.Name, "/history=3650")
		if !ok || strings.Contains(fam, "rebuild") || base[fam] == 0 {
			continue
		}
		add("hot path per window at 3,650 snapshots against 10 (flat: at most 1.25)", fmt.Sprintf("%.0f / %.0f ns", g.NsOp, base[fam]), g.NsOp/base[fam], 1.25)
	}
	for _, f := range r.Store {
		add(fmt.Sprintf("store of %d devices x %d snapshots x %d items against unique content", f.Devices, f.Snapshots, f.Items), mib(f.Bytes)+" / "+mib(f.Unique), float64(f.Bytes)/float64(f.Unique), 1.5)
		if f.History.Wall > 0 {
			add(fmt.Sprintf("history of one device (%d items) against 50 ms", f.Items), ms(f.History.Wall)+" / 50 ms", float64(f.History.Wall.Milliseconds())/50, 1)
		}
		if f.Show.Wall > 0 && f.Diff.Wall > 0 {
			add(fmt.Sprintf("show DEVICE@baseline (%d items) against diff at that size", f.Items), ms(f.Show.Wall)+" / "+ms(f.Diff.Wall), ratio(f.Show.Wall, f.Diff.Wall), 1)
		}
		if f.VerifyPart.PeakRSS > 0 && f.Verify.PeakRSS > 0 && f.PartDevices > 0 && f.PartDevices < f.Devices {
			add(fmt.Sprintf("verify's peak RSS at %d devices against %d (bounded: at most 1.25)", f.Devices, f.PartDevices), mib(f.Verify.PeakRSS)+" / "+mib(f.VerifyPart.PeakRSS), float64(f.Verify.PeakRSS)/float64(f.VerifyPart.PeakRSS), 1.25)
			// Linear: the time per device the same at both sizes, within
			// the slack the flat targets get.
			scale := float64(f.Devices) / float64(f.PartDevices)
			add(fmt.Sprintf("verify's time at %d devices against %.0fx its time at %d (linear: at most 1.25)", f.Devices, scale, f.PartDevices), ms(f.Verify.Wall)+fmt.Sprintf(" / %.0f x ", scale)+ms(f.VerifyPart.Wall), ratio(f.Verify.Wall, f.VerifyPart.Wall)/scale, 1.25)
		}
	}
	for _, f := range r.Fleet {
		add(fmt.Sprintf("check --all on %d controllers against the rate-limit floor", f.Devices), ms(f.Run.Wall)+" / "+ms(f.Floor), ratio(f.Run.Wall, f.Floor), 1.1)
		add(fmt.Sprintf("check --all: most requests one controller saw in one second against its limit"), fmt.Sprintf("%d / %d", f.MaxInSecond, int(f.RPS)), float64(f.MaxInSecond)/f.RPS, 1)
	}
	for _, f := range r.Daemon {
		add(fmt.Sprintf("daemon on %d mixed controllers against the rate-limit floor", f.S7+f.Logix+f.OPCUA), ms(f.Took)+" / "+ms(f.Floor), ratio(f.Took, f.Floor), 1.1)
		add("daemon: most requests one controller saw in one second against its limit", fmt.Sprintf("%d / %d", f.MaxInSecond, int(f.RPS)), float64(f.MaxInSecond)/f.RPS, 1)
	}
	for _, f := range r.OPCUA {
		add(fmt.Sprintf("OPC UA server of %d nodes re-read unchanged, requests against 40", f.Variables), fmt.Sprintf("%d / 40", f.Unchanged.Requests), float64(f.Unchanged.Requests)/40, 1)
	}
	for _, p := range r.Plans {
		if p.Counted.Requests == 0 {
			continue
		}
		// Exact means equal, requests and bytes sent both; the ratio shown
		// is the requests'.
		ok := p.Planned == p.Counted.Requests && p.PlannedOut == p.Counted.BytesIn
		ts = append(ts, target{
			What:   fmt.Sprintf("plan exact for %s (%s, after the %s snapshot): requests and bytes sent", p.Protocol, p.Scenario, p.After),
			Figure: fmt.Sprintf("%d / %d requests, %d / %d bytes", p.Planned, p.Counted.Requests, p.PlannedOut, p.Counted.BytesIn),
			Ratio:  float64(p.Planned) / float64(p.Counted.Requests), Bound: 1, Met: ok,
		})
	}
	return ts
}

// summaryMarkdown is the table of every target at the top of the report,
// and the one furthest from its bound.
func (r report) summaryMarkdown() string {
	ts := r.targets()
	if len(ts) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("## Every target at a glance\n\n")
	b.WriteString("Each row is a figure against its anchor from the sections below; the ratio must be at most the bound. For `plan`, exact means planned equals counted (ratio 1).\n\n")
	b.WriteString("| target | figure / anchor | ratio | bound | met |\n|---|---:|---:|---:|:-:|\n")
	worst := -1
	for i, t := range ts {
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f | %s |\n", t.What, t.Figure, t.Ratio, t.Bound, yes(t.Met))
		if !t.Met && (worst < 0 || t.Ratio/t.Bound > ts[worst].Ratio/ts[worst].Bound) {
			worst = i
		}
	}
	if worst >= 0 {
		t := ts[worst]
		fmt.Fprintf(&b, "\nFurthest from its target: %s, %.2f against at most %.2f.\n\n", t.What, t.Ratio, t.Bound)
		for _, f := range r.Diff {
			if f.Floor.Wall > 0 && ratio(f.Plcwatch.Wall, f.GNU.Wall) > 1 {
				fmt.Fprintf(&b, "At %d items the floor of any static binary linking the required libraries and the store (`internal/difffloor`: start, open the store, read and hash both manifests and the changed items' blobs, nothing decoded or printed) takes %s: %.2f times GNU diff, and plcwatch diff takes %.2f times the floor (see the diff section).\n\n", f.Items, ms(f.Floor.Wall), ratio(f.Floor.Wall, f.GNU.Wall), ratio(f.Plcwatch.Wall, f.Floor.Wall))
			}
		}
	} else {
		b.WriteString("\nEvery target above is met in this run.\n\n")
	}
	return b.String()
}
