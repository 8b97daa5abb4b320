package limits

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrLocked is returned (wrapped together with ctx's error) by Lock when
// another process, or another Lock in this one, held the device's lock until
// ctx ended.
var ErrLocked = errors.New("device is being read by another plcwatch process")

// Lock takes the cross-process lock of one device (an exclusive flock on
// dir/DEVICE.lock, mode 0600, dir created 0700 if missing), polling with a
// short backoff (5 ms growing to 250 ms) until it is free or ctx ends. The
// CLI and the daemon both take it, so a controller is never read by two
// processes at once and their requests never add up past its limits.
//
// The holder's process id is written into the file for the error message
// of the next taker. unlock releases the lock and may be called more than
// once; the file stays (removing it would race with a waiting process). The
// lock is tied to the open file, so it is also released when the process
// dies. Two Locks of one device in one process exclude each other too.
func Lock(ctx context.Context, dir, device string) (unlock func(), err error) {
	if device == "" || device == "." || device == ".." || strings.ContainsAny(device, `/\`) {
		return nil, fmt.Errorf("device lock: want a device name without path separators, got %q", device)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("device lock dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, device+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("device lock %s: %w", path, err)
	}
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Best effort: the pid is only for messages.
			if f.Truncate(0) == nil {
				f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			}
			var once sync.Once
			return func() {
				once.Do(func() {
					syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
					f.Close()
				})
			}, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("device lock %s: %w", path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			holder := ""
			if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				holder = " (pid " + strings.TrimSpace(string(b)) + ")"
			}
			f.Close()
			return nil, fmt.Errorf("device %s: lock %s held%s: %w: %w", device, path, holder, ErrLocked, ctx.Err())
		case <-t.C:
		}
	}
}
