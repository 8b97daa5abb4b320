//go:build unix

package store_test

import (
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
