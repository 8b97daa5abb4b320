package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// run is what one process cost.
type run struct {
	Wall    time.Duration
	CPU     time.Duration // user + system
	PeakRSS int64         // bytes
}

// timeBin is GNU time. Go starts children with vfork, so a child's own
// rusage counts the parent's memory until it execs; GNU time forks a small
// process of its own, so its peak-RSS figure is the command's.
const timeBin = "/usr/bin/time"

// measure runs a command under GNU time with stdout to w and returns its
// wall time, CPU time and peak resident set. An exit code other than 0 or
// okCode is an error.
func measure(ctx context.Context, w io.Writer, okCode int, name string, args ...string) (run, error) {
	tf, err := os.CreateTemp("", "benchdoc-time-")
	if err != nil {
		return run{}, err
	}
	tf.Close()
	defer os.Remove(tf.Name())
	cmd := exec.CommandContext(ctx, timeBin, append([]string{"-f", "%U %S %M", "-o", tf.Name(), "--", name}, args...)...)
	cmd.Stdout = w
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	r := run{Wall: time.Since(start)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != okCode {
			return r, fmt.Errorf("%s: %w: %s", name, err, stderr.String())
		}
	}
	out, err := os.ReadFile(tf.Name())
	if err != nil {
		return r, err
	}
	// The last line holds the figures (an earlier one may say the command
	// exited non-zero).
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 3 {
		return r, fmt.Errorf("%s: GNU time wrote %q, want user, system and max RSS", timeBin, out)
	}
	user, err1 := strconv.ParseFloat(f[0], 64)
	sys, err2 := strconv.ParseFloat(f[1], 64)
	rss, err3 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return r, fmt.Errorf("%s: reading %q: %w", timeBin, out, err)
	}
	r.CPU = time.Duration((user + sys) * float64(time.Second))
	r.PeakRSS = rss * 1024
	return r, nil
}

// median runs a command reps times and returns the run of median wall time
// (peak RSS and CPU are the maxima over the runs).
func median(ctx context.Context, reps, okCode int, name string, args ...string) (run, error) {
	var runs []run
	for range reps {
		r, err := measure(ctx, io.Discard, okCode, name, args...)
		if err != nil {
			return run{}, err
		}
		runs = append(runs, r)
	}
	return medianRun(runs), nil
}

// medianPair runs two commands alternately, reps times each, and returns
// each one's median run (as median): load that comes and goes on the
// machine falls on both alike, not on whichever ran second.
func medianPair(ctx context.Context, reps int, a, b []string) (ra, rb run, err error) {
	rs, err := medianTurns(ctx, reps, a, b)
	if err != nil {
		return ra, rb, err
	}
	return rs[0], rs[1], nil
}

// medianTurns is medianPair for any number of commands: they take turns,
// reps runs each, and each one's median run is returned in their order.
// Each command may exit 0 or 1 (diff's "differences found").
func medianTurns(ctx context.Context, reps int, cmds ...[]string) ([]run, error) {
	runs := make([][]run, len(cmds))
	for range reps {
		for i, c := range cmds {
			r, err := measure(ctx, io.Discard, 1, c[0], c[1:]...)
			if err != nil {
				return nil, err
			}
			runs[i] = append(runs[i], r)
		}
	}
	out := make([]run, len(cmds))
	for i := range runs {
		out[i] = medianRun(runs[i])
	}
	return out, nil
}

// medianRun returns the run of median wall time, with the peak RSS and CPU
// of the most demanding run.
func medianRun(runs []run) run {
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b run) int { return int(a.Wall - b.Wall) })
	m := runs[len(runs)/2]
	for _, r := range runs {
		m.PeakRSS = max(m.PeakRSS, r.PeakRSS)
		m.CPU = max(m.CPU, r.CPU)
	}
	return m
}

// limitedBuffer keeps the first 4 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
