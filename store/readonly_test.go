package store

import (
	"path/filepath"
	"testing"
)

// TestReadOnlyMapsPages checks that a read-only open reads pages through a
// memory map (one pread and copy per page otherwise) and a writable one
// keeps SQLite's default.
func TestReadOnlyMapsPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := Open(path, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		name string
		db   *DB
		want int
	}{
		{name: "read-only", db: r, want: readOnlyMmap},
		{name: "writable", db: w, want: 0},
	} {
		got, err := pragmaInt(t.Context(), tc.db.db, "mmap_size")
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: mmap_size = %d, want %d", tc.name, got, tc.want)
		}
	}
}
