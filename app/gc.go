package app

import (
	"os"
	"runtime/debug"
)

// Garbage collection for a short read-only command (diff, show): such a
// command allocates a few times what it keeps and then exits, so collecting
// at every doubling of the heap (GOGC=100) is mostly wasted work done while
// it runs. shortLivedGC lets the heap grow to gcPercentShortLived percent
// over what is live before collecting, under a soft limit of
// memoryLimitShortLived.
const (
	// gcPercentShortLived keeps a diff of two 10,000-item snapshots free of
	// collections (its heap stays under 4 MiB x (1 + 8)) and bounds the
	// peak at 9 times the live heap, which holds the two manifests and the
	// items that differ: far below the 10 times the snapshots' canonical
	// size the project allows.
	gcPercentShortLived = 800
	// memoryLimitShortLived makes the collector work harder rather than
	// let the heap pass 512 MiB (a soft limit: a larger live heap still
	// fits).
	memoryLimitShortLived = 512 << 20
)

// shortLivedGC applies the settings above, unless the person running the
// command set GOGC or GOMEMLIMIT, and returns the function that restores
// the previous ones (the daemon, and tests running commands in-process,
// keep the defaults).
func shortLivedGC() (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	pct := debug.SetGCPercent(gcPercentShortLived)
	limit := debug.SetMemoryLimit(memoryLimitShortLived)
	return func() {
		debug.SetGCPercent(pct)
		debug.SetMemoryLimit(limit)
	}
}
