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

// BenchmarkDiffCommand runs `plcwatch diff A B` in-process on two stored
// snapshots with 1% of their items changed: store reads, the comparison
// and the rendered output, everything the command does but start the
// process (docs/BENCHMARKS.md times the whole process against GNU diff).
func BenchmarkDiffCommand(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		dir := b.TempDir()
		cfg := filepath.Join(dir, "plcwatch.yaml")
		const yaml = "store:\n  path: plcwatch.db\nalerts:\n  console:\n    enabled: false\ndevices:\n  - name: plc\n    protocol: s7\n    endpoint: 127.0.0.1:102\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(filepath.Join(dir, "plcwatch.db"))
		if err != nil {
			b.Fatal(err)
		}
		g := storetest.NewGenerator("plc", n, storetest.T0)
		var ids []string
		for _, changes := range []int{0, n / 100} {
			s := g.Next(changes)
			if _, err := st.PutSnapshot(b.Context(), s, nil); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, s.ID)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
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
