package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// diffFigures is one row of the diff comparison: the whole `plcwatch diff`
// process against GNU `diff -u` of the two snapshots rendered as text by
// `plcwatch show`.
type diffFigures struct {
	Items          int
	CanonicalBytes int64 // both snapshots' canonical encodings
	Put            time.Duration
	Plcwatch, GNU  run
	// Floor is difffloor on the same store: the least any binary linking
	// the required libraries and the store can do for this comparison
	// (zero when not measured).
	Floor run
}

// benchDiff stores two snapshots of n items (1% changed) in a fresh store
// under dir and times both diffs, and the floor binary when floorBin is set.
func benchDiff(ctx context.Context, bin, floorBin, dir string, n, reps int) (diffFigures, error) {
	f := diffFigures{Items: n}
	cfg, err := writeConfig(dir)
	if err != nil {
		return f, err
	}
	st, err := store.Open(filepath.Join(dir, "plcwatch.db"))
	if err != nil {
		return f, err
	}
	g := storetest.NewGenerator("plc", n, storetest.T0)
	var ids, digests []string
	for _, changes := range []int{0, n / 100} {
		s := g.Next(changes)
		enc, err := s.Encode()
		if err != nil {
			st.Close()
			return f, err
		}
		f.CanonicalBytes += int64(len(enc))
		start := time.Now()
		if _, err := st.PutSnapshot(ctx, s, nil); err != nil {
			st.Close()
			return f, err
		}
		f.Put += time.Since(start)
		ids, digests = append(ids, s.ID), append(digests, s.Digest)
	}
	if err := st.Close(); err != nil {
		return f, err
	}
	var texts []string
	for i, id := range ids {
		p := filepath.Join(dir, fmt.Sprintf("snapshot%d.txt", i))
		out, err := os.Create(p)
		if err != nil {
			return f, err
		}
		_, err = measure(ctx, out, 0, bin, "--config", cfg, "show", id)
		out.Close()
		if err != nil {
			return f, fmt.Errorf("plcwatch show %s: %w", id, err)
		}
		texts = append(texts, p)
	}
	// Runs of a few milliseconds vary with whatever else the machine
	// does: they get more runs, and the two commands take turns.
	if n <= 100000 {
		reps = max(reps, 11)
	}
	cmds := [][]string{
		{bin, "--config", cfg, "diff", ids[0], ids[1]},
		{"diff", "-u", texts[0], texts[1]},
	}
	if floorBin != "" {
		cmds = append(cmds, []string{floorBin, filepath.Join(dir, "plcwatch.db"), digests[0], digests[1]})
	}
	rs, err := medianTurns(ctx, reps, cmds...)
	if err != nil {
		return f, fmt.Errorf("plcwatch diff against GNU diff: %w", err)
	}
	f.Plcwatch, f.GNU = rs[0], rs[1]
	if floorBin != "" {
		f.Floor = rs[2]
	}
	return f, nil
}

// buildFloor builds internal/difffloor as the plcwatch binary is built
// (static, stripped) into dir and returns its path.
func buildFloor(ctx context.Context, dir string) (string, error) {
	p := filepath.Join(dir, "difffloor")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", p, "./internal/difffloor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building internal/difffloor: %w: %s", err, out)
	}
	return p, nil
}

// writeConfig writes a minimal config whose store lives in dir.
func writeConfig(dir string) (string, error) {
	p := filepath.Join(dir, "plcwatch.yaml")
	const cfg = `store:
  path: plcwatch.db
alerts:
  console:
    enabled: false
devices:
  - name: plc
    protocol: s7
    endpoint: 127.0.0.1:102
`
	return p, os.WriteFile(p, []byte(cfg), 0o600)
}

var _ = snapshots.FormatVersion
