//go:build linux && !race

package isolate

import "syscall"

// limitMemory caps this process's data segment (RLIMIT_DATA, which counts
// the heap Go maps), so a runaway allocation ends the session process with
// "fatal error: runtime: out of memory" instead of starving the machine.
func limitMemory(bytes int64) error {
	return syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: uint64(bytes), Max: uint64(bytes)})
}
