package app

import (
	"runtime/debug"
	"testing"
)

// TestShortLivedGC checks that a short command's GC settings apply only
// when the person running it set none, and that the previous settings
// come back (tests and the daemon run with their own).
func TestShortLivedGC(t *testing.T) {
	for _, tc := range []struct {
		name, env, value string
		wantPct          int
		wantLimit        int64
	}{
		{name: "no setting", wantPct: gcPercentShortLived, wantLimit: memoryLimitShortLived},
		{name: "GOGC set", env: "GOGC", value: "50", wantPct: 77, wantLimit: 1 << 40},
		{name: "GOMEMLIMIT set", env: "GOMEMLIMIT", value: "1GiB", wantPct: 77, wantLimit: 1 << 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			if tc.env != "" {
				t.Setenv(tc.env, tc.value)
			}
			prevPct := debug.SetGCPercent(77)
			prevLimit := debug.SetMemoryLimit(1 << 40)
			defer debug.SetGCPercent(prevPct)
			defer debug.SetMemoryLimit(prevLimit)
			restore := shortLivedGC()
			if got := debug.SetGCPercent(-1); got != tc.wantPct {
				t.Errorf("GC percent during the command = %d, want %d", got, tc.wantPct)
			}
			debug.SetGCPercent(tc.wantPct)
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit during the command = %d, want %d", got, tc.wantLimit)
			}
			restore()
			if got := debug.SetGCPercent(77); got != 77 {
				t.Errorf("GC percent after the command = %d, want 77 again", got)
			}
			if got := debug.SetMemoryLimit(-1); got != 1<<40 {
				t.Errorf("memory limit after the command = %d, want %d again", got, int64(1<<40))
			}
		})
	}
}
