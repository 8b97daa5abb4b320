//go:build unix

package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// TestFileModes checks the store and its -wal and -shm files are created
// 0600 whatever the umask, also when the store is made in an empty file
// someone created beforehand (touch plcwatch.db) readable by others. It
// changes the process umask, so it does not run in parallel with anything.
func TestFileModes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		umask   int
		touched bool
	}{
		{name: "umask 0", umask: 0},
		{name: "umask 022", umask: 0o022},
		{name: "umask 077", umask: 0o077},
		{name: "an empty file of mode 0644 made beforehand", umask: 0o022, touched: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := syscall.Umask(tc.umask)
			defer syscall.Umask(old)
			path := filepath.Join(t.TempDir(), "plcwatch.db")
			if tc.touched {
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
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

// TestReadOnlyCopyWithWAL: a copy of a live store on a read-only
// filesystem, taken with its -wal file (records not yet checkpointed into
// the main file) but without its -shm file. SQLite can read such a WAL
// only with a -shm file it may create; opened as immutable, it would show
// the main file alone, silently missing the newest records. With the
// -shm file, the newest snapshot is read; without it, opening fails naming
// the -wal file, through a memory map (diff, show) or not.
func TestReadOnlyCopyWithWAL(t *testing.T) {
	src := filepath.Join(t.TempDir(), "live.db")
	w := open(t, src)
	g := storetest.NewGenerator("plc", 50, storetest.T0)
	a, b := g.Next(0), g.Next(5)
	if _, err := w.PutSnapshot(t.Context(), a, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := raw(t, src).Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.PutSnapshot(t.Context(), b, nil); err != nil { // stays in the -wal file
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files []string
		want  string // the latest snapshot's id, or "" for an error naming the -wal file
	}{
		{name: "store, -wal and -shm", files: []string{"", "-wal", "-shm"}, want: b.ID},
		{name: "store and -wal", files: []string{"", "-wal"}},
		{name: "store and an empty -wal", files: []string{"", "-wal=empty"}, want: a.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := mountTmpfs(t, 8<<20)
			dst := filepath.Join(dir, "plcwatch.db")
			for _, f := range tc.files {
				data, err := os.ReadFile(src + strings.TrimSuffix(f, "=empty"))
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(f, "=empty") {
					data = nil
				}
				if err := os.WriteFile(dst+strings.TrimSuffix(f, "=empty"), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
				t.Fatalf("remounting read-only: %v", err)
			}
			for _, opts := range [][]store.Option{{store.ReadOnly()}, {store.ReadOnly(), store.MapReads()}} {
				s, err := store.Open(dst, opts...)
				if tc.want == "" {
					if err == nil {
						s.Close()
						t.Fatalf("opened with %d option(s), want an error naming the -wal file", len(opts))
					}
					if !strings.Contains(err.Error(), dst+"-wal") {
						t.Errorf("opening with %d option(s): %v, want an error naming %s-wal", len(opts), err, dst)
					}
					continue
				}
				if err != nil {
					t.Fatalf("opening with %d option(s): %v", len(opts), err)
				}
				got, err := s.Resolve(t.Context(), "plc@latest")
				s.Close()
				if err != nil || got.ID != tc.want {
					t.Errorf("plc@latest with %d option(s) = %v, %v; want %s", len(opts), got, err, tc.want)
				}
			}
		})
	}
}
