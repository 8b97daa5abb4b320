package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// benchStore writes snaps snapshots of n items of device "plc", each with
// 1% of the items changed from the one before, to a fresh store and
// returns its config file and the snapshot ids.
func benchStore(tb testing.TB, n, snaps int) (cfg string, ids []string) {
	tb.Helper()
	dir := tb.TempDir()
	cfg = filepath.Join(dir, "plcwatch.yaml")
	const yaml = "store:\n  path: plcwatch.db\nalerts:\n  console:\n    enabled: false\ndevices:\n  - name: plc\n    protocol: s7\n    endpoint: 127.0.0.1:102\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "plcwatch.db"))
	if err != nil {
		tb.Fatal(err)
	}
	g := storetest.NewGenerator("plc", n, storetest.T0)
	for i := range snaps {
		s := g.Next(min(i, 1) * max(n/100, 1))
		if _, err := st.PutSnapshot(context.Background(), s, nil); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	if err := st.Close(); err != nil {
		tb.Fatal(err)
	}
	return cfg, ids
}

// countingWriter counts Write calls (each one a system call on a file).
type countingWriter struct{ bytes, writes int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.bytes += len(p)
	return len(p), nil
}

// TestOutputIsBuffered checks that commands printing a line per item or
// record write in large blocks, not one write (system call) per line.
func TestOutputIsBuffered(t *testing.T) {
	cfg, ids := benchStore(t, 300, 120)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{name: "show", args: []string{"show", ids[0]}, code: ExitOK},
		{name: "diff", args: []string{"diff", ids[0], ids[1]}, code: ExitFindings},
		{name: "history", args: []string{"history", "plc"}, code: ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w countingWriter
			a := &App{Stdout: &w, Stderr: io.Discard}
			if code := a.Exit(a.Run(context.Background(), append([]string{"--config", cfg, "--log-level", "error"}, tc.args...))); code != tc.code {
				t.Fatalf("exit code %d, want %d", code, tc.code)
			}
			if max := w.bytes/(64<<10) + 2; w.writes > max {
				t.Errorf("%d writes for %d bytes, want at most %d", w.writes, w.bytes, max)
			}
		})
	}
}

// BenchmarkDiffCommand runs `plcwatch diff A B` in-process on two stored
// snapshots with 1% of their items changed: store reads, the comparison
// and the rendered output, everything the command does but start the
// process (docs/BENCHMARKS.md times the whole process against GNU diff).
func BenchmarkDiffCommand(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		cfg, ids := benchStore(b, n, 2)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a := &App{Stdout: io.Discard, Stderr: io.Discard}
				if code := a.Exit(a.Run(context.Background(), []string{"--config", cfg, "--log-level", "error", "diff", ids[0], ids[1]})); code != ExitFindings {
					b.Fatalf("diff exit code %d, want %d", code, ExitFindings)
				}
			}
		})
	}
}
