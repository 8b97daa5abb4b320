package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// putPair stores a snapshot of n items and its successor with changes items
// changed, and returns the store's path and both digests.
func putPair(t *testing.T, n, changes int) (path, a, b string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "plcwatch.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := storetest.NewGenerator("plc", n, storetest.T0)
	var ds []string
	for _, c := range []int{0, changes} {
		s := g.Next(c)
		if _, err := st.PutSnapshot(context.Background(), s, nil); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, s.Digest)
	}
	return path, ds[0], ds[1]
}

// The floor reads exactly the blobs of the changed items on both sides,
// whether the newer manifest is stored as a delta (the store's choice for a
// parent and its child) or both as full lists (checked by rewriting the
// delta as the full list the floor rebuilt).
func TestFloorReadsTheUnsharedBlobs(t *testing.T) {
	path, a, b := putPair(t, 1000, 10)
	n, size, err := floor(path, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if n != 20 || size == 0 {
		t.Fatalf("floor read %d blobs of %d bytes, want the 20 of 10 changed items", n, size)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var base, script []byte
	if err := db.QueryRow(`SELECT s.items, d.items FROM snapshots s, snapshots d WHERE s.digest = ? AND d.digest = ? AND d.base = s.digest`, a, b).Scan(&base, &script); err != nil {
		t.Fatalf("the newer snapshot is not a delta against the older: %v", err)
	}
	full, want, err := apply(base, script)
	if err != nil || len(want) != 20 || len(full) != len(base) {
		t.Fatalf("apply: %d keys, %d unshared, %v", len(full)/keySize, len(want), err)
	}
	if _, err := db.Exec(`UPDATE snapshots SET items = ?, base = NULL WHERE digest = ?`, full, b); err != nil {
		t.Fatal(err)
	}
	if n, _, err := floor(path, a, b); err != nil || n != 20 {
		t.Fatalf("two full lists: %d blobs, %v; want 20", n, err)
	}
}

// A blob that does not hash to its key is an error, as in plcwatch.
func TestFloorChecksBlobs(t *testing.T) {
	path, a, b := putPair(t, 200, 2)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var script []byte
	if err := db.QueryRow(`SELECT items FROM snapshots WHERE digest = ?`, b).Scan(&script); err != nil {
		t.Fatal(err)
	}
	var base []byte
	if err := db.QueryRow(`SELECT items FROM snapshots WHERE digest = ?`, a).Scan(&base); err != nil {
		t.Fatal(err)
	}
	_, want, err := apply(base, script)
	if err != nil || len(want) == 0 {
		t.Fatalf("apply: %d unshared, %v", len(want), err)
	}
	if _, err := db.Exec(`UPDATE blobs SET data = ? WHERE hash = ?`, []byte(`{"path":"x"}`), want[0][:]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := floor(path, a, b); err == nil || !bytes.Contains([]byte(err.Error()), []byte("hashes to")) {
		t.Fatalf("altered blob: %v, want an error naming its hash", err)
	}
}

// apply refuses an edit script that runs past its base or its own end, and
// never panics.
func FuzzApply(f *testing.F) {
	k := sha256.Sum256([]byte("a"))
	base := append(k[:], k[:]...)
	f.Add(base, []byte{1, 0, 1})
	f.Add(base, append([]byte{0, 1}, append(k[:], 2)...))
	f.Add(base, []byte{3, 0, 0})
	f.Fuzz(func(t *testing.T, base, script []byte) {
		base = base[:len(base)/keySize*keySize]
		keys, _, err := apply(base, script)
		if err == nil && len(keys)%keySize != 0 {
			t.Fatalf("apply gave %d bytes, not whole keys", len(keys))
		}
	})
}
