//go:build unix

package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// TestFileModes checks the store and its -wal and -shm files are created
// 0600 whatever the umask. It changes the process umask, so it does not run
// in parallel with anything.
func TestFileModes(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077} {
		t.Run(os.FileMode(umask).String(), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			path := filepath.Join(t.TempDir(), "plcwatch.db")
			s := open(t, path)
			if _, err := s.Append(t.Context(), "plc", store.TypeAlert, storetest.T0, map[string]string{"id": "A1"}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if m := st.Mode().Perm(); m != 0o600 {
					t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), m)
				}
			}
		})
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new temporary folder and
// unmounts it at the end of the test; it skips the test when this process
// may not mount (not root, or no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): run as root to test a read-only filesystem", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// TestReadOnlyFilesystem: an intact store on a read-only filesystem (an
// auditor's copy) opens read-only, reads and verifies clean; opening it for
// writing fails with an error, not "not a store".
func TestReadOnlyFilesystem(t *testing.T) {
	dir := mountTmpfs(t, 8<<20)
	f := newFixtureAt(t, filepath.Join(dir, "plcwatch.db"))
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting read-only: %v", err)
	}
	s := open(t, f.path, store.ReadOnly())
	if _, err := s.Resolve(t.Context(), "plc@latest"); err != nil {
		t.Errorf("reading a store on a read-only filesystem: %v", err)
	}
	if fs, err := s.Verify(t.Context(), f.heads, nil); err != nil || len(fs) != 0 {
		t.Errorf("Verify on a read-only filesystem = %v, %v; want no findings", fs, err)
	}
	if w, err := store.Open(f.path); err == nil {
		w.Close()
		t.Error("a store on a read-only filesystem opened for writing")
	} else if errors.Is(err, store.ErrNotStore) {
		t.Errorf("opening for writing on a read-only filesystem = %v: an intact store is not 'not a store'", err)
	}
}
