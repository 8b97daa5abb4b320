package store

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
)

// nextSnapshot returns a finalized snapshot of n setpoints, the first
// `changes` of which (from a cursor moving round the items) get a new value
// at this version.
func nextSnapshot(t *testing.T, version, n, changes int, values []float64) *snapshots.Snapshot {
	t.Helper()
	for c := range changes {
		values[(version*changes+c)%n] = float64(version)
	}
	s := &snapshots.Snapshot{Device: "plc", Protocol: "s7", TakenAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(version) * 24 * time.Hour),
		Status: snapshots.Status{Complete: true}, Items: []snapshots.Item{}}
	for i := range n {
		s.Items = append(s.Items, snapshots.Item{Path: fmt.Sprintf("setpoints/T%04d", i), Kind: snapshots.KindSetpoint, Value: snapshots.Float(values[i], "degC")})
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	return s
}

// keysOf returns the concatenated keys named by ns (key n is the SHA-256 of
// n's decimal form).
func keysOf(ns ...int) []byte {
	var out []byte
	for _, n := range ns {
		k := sha256.Sum256([]byte(strconv.Itoa(n)))
		out = append(out, k[:]...)
	}
	return out
}

func TestManifestDelta(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base, keys []byte
		maxLen     int // the delta is at most this long
	}{
		{name: "same", base: keysOf(1, 2, 3, 4), keys: keysOf(1, 2, 3, 4), maxLen: 3},
		{name: "one changed", base: keysOf(1, 2, 3, 4), keys: keysOf(1, 9, 3, 4), maxLen: 6 + 32},
		{name: "first changed", base: keysOf(1, 2, 3), keys: keysOf(9, 2, 3), maxLen: 3 + 32},
		{name: "last changed", base: keysOf(1, 2, 3), keys: keysOf(1, 2, 9), maxLen: 6 + 32},
		{name: "inserted", base: keysOf(1, 3), keys: keysOf(1, 2, 3), maxLen: 6 + 32},
		{name: "removed", base: keysOf(1, 2, 3), keys: keysOf(1, 3), maxLen: 6},
		{name: "removed at the end", base: keysOf(1, 2, 3), keys: keysOf(1), maxLen: 6},
		{name: "all new", base: keysOf(1, 2), keys: keysOf(3, 4), maxLen: 3 + 64},
		{name: "from empty", base: nil, keys: keysOf(1, 2), maxLen: 3 + 64},
		{name: "to empty", base: keysOf(1, 2), keys: nil, maxLen: 3},
		{name: "both empty", base: nil, keys: nil, maxLen: 0},
		// A key the base holds earlier than the cursor is inserted again.
		{name: "reordered", base: keysOf(1, 2, 3), keys: keysOf(3, 1), maxLen: 6 + 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := encodeDelta(tc.base, tc.keys)
			if len(d) > tc.maxLen {
				t.Errorf("delta of %d bytes, want at most %d", len(d), tc.maxLen)
			}
			got, err := applyDelta(tc.base, d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.keys) {
				t.Fatalf("applyDelta(encodeDelta) gives %d keys, other than the %d encoded", len(got)/keySize, len(tc.keys)/keySize)
			}
		})
	}
}

func TestManifestDeltaRefused(t *testing.T) {
	base := keysOf(1, 2)
	op := func(skip, n int, ins []byte, cp int) []byte {
		b := binary.AppendUvarint(nil, uint64(skip))
		b = binary.AppendUvarint(b, uint64(n))
		b = append(b, ins...)
		return binary.AppendUvarint(b, uint64(cp))
	}
	for _, tc := range []struct {
		name  string
		delta []byte
	}{
		{name: "skips past the base", delta: op(3, 0, nil, 0)},
		{name: "copies past the base", delta: op(0, 0, nil, 3)},
		{name: "ends before the base's end", delta: op(0, 0, nil, 1)},
		{name: "inserts more keys than follow", delta: op(0, 2, keysOf(7), 2)},
		{name: "a cut count", delta: []byte{0x80}},
		{name: "no copy count", delta: op(0, 1, keysOf(7), 0)[:34]},
		{name: "a huge count", delta: binary.AppendUvarint(nil, 1<<62)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := applyDelta(base, tc.delta); err == nil {
				t.Fatalf("applyDelta = %d keys, want an error", len(got)/keySize)
			}
		})
	}
	if _, err := applyHeaderDelta([]byte("abc"), binary.AppendUvarint(binary.AppendUvarint(nil, 2), 2)); err == nil {
		t.Error("a header delta keeping more bytes than its base has applied")
	}
}

// FuzzApplyDelta feeds stored manifest and header deltas, untrusted bytes,
// to their decoders: none may panic, and a delta that encodeDelta made from
// the base must give back the keys.
func FuzzApplyDelta(f *testing.F) {
	f.Add(keysOf(1, 2, 3), encodeDelta(keysOf(1, 2, 3), keysOf(1, 9, 3)), []byte(`{"a":1,"items":[]}`), encodeHeaderDelta([]byte(`{"a":1,"items":[]}`), []byte(`{"a":22,"items":[]}`)))
	f.Fuzz(func(t *testing.T, base, delta, header, hdelta []byte) {
		_, _ = applyHeaderDelta(header, hdelta)
		got, err := applyDelta(base, delta)
		if err != nil {
			return
		}
		if len(got)%keySize != 0 {
			t.Fatalf("applyDelta gave %d bytes, not whole keys", len(got))
		}
		again, err := applyDelta(base, encodeDelta(base, got))
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-encoding the keys a delta gave does not round-trip: %v", err)
		}
		h, err := applyHeaderDelta(header, encodeHeaderDelta(header, got))
		if err != nil || !bytes.Equal(h, got) {
			t.Fatalf("a header delta does not round-trip: %v", err)
		}
	})
}

// TestDeltaCheckpoints writes more snapshots than a delta chain may hold
// and checks that the writer starts new checkpoints, no chain is longer
// than maxDeltaDepth, and every snapshot reads back.
func TestDeltaCheckpoints(t *testing.T) {
	for _, tc := range []struct {
		name        string
		snaps, n    int
		changes     int
		checkpoints int // at least
	}{
		{name: "depth limit", snaps: maxDeltaDepth + 10, n: 40, changes: 1, checkpoints: 2},
		// Every snapshot changes half the items: the delta bytes reach two
		// full lists after a few snapshots.
		{name: "span limit", snaps: 20, n: 40, changes: 20, checkpoints: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(filepath.Join(t.TempDir(), "plcwatch.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			values := make([]float64, tc.n)
			var ids []string
			for v := range tc.snaps {
				s := nextSnapshot(t, v, tc.n, tc.changes, values)
				if _, err := d.PutSnapshot(t.Context(), s, nil); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, s.ID)
			}
			var checkpoints, maxDepth int
			if err := d.db.QueryRow(`SELECT count(*) FILTER (WHERE base IS NULL), max(depth) FROM snapshots`).Scan(&checkpoints, &maxDepth); err != nil {
				t.Fatal(err)
			}
			if checkpoints < tc.checkpoints || maxDepth > maxDeltaDepth {
				t.Errorf("%d checkpoints, deepest delta %d; want at least %d and at most %d", checkpoints, maxDepth, tc.checkpoints, maxDeltaDepth)
			}
			for _, id := range ids {
				if _, err := d.Snapshot(t.Context(), id); err != nil {
					t.Fatalf("snapshot %s: %v", id, err)
				}
			}
			if fs, err := d.Verify(t.Context(), nil, nil); err != nil || len(fs) != 0 {
				t.Fatalf("Verify = %+v, %v", fs, err)
			}
		})
	}
}

// TestDamagedParentMakesCheckpoint: when the parent's stored manifest is
// gone or does not check, the next snapshot is written as a full list (a
// checkpoint) and reads back; the damaged parent stays a verify finding.
func TestDamagedParentMakesCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name, damage string
	}{
		{name: "parent's row deleted", damage: `DELETE FROM snapshots WHERE digest = ?`},
		{name: "parent's header edited", damage: `UPDATE snapshots SET header = CAST(replace(CAST(header AS TEXT), '"s7"', '"s8"') AS BLOB) WHERE digest = ?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(filepath.Join(t.TempDir(), "plcwatch.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			values := make([]float64, 10)
			a := nextSnapshot(t, 0, 10, 0, values)
			if _, err := d.PutSnapshot(t.Context(), a, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := d.db.Exec(tc.damage, a.Digest); err != nil {
				t.Fatal(err)
			}
			d.last = nil // as another process would: nothing cached
			b := nextSnapshot(t, 1, 10, 1, values)
			if _, err := d.PutSnapshot(t.Context(), b, nil); err != nil {
				t.Fatalf("PutSnapshot after its parent was damaged: %v", err)
			}
			var base sql.NullString
			if err := d.db.QueryRow(`SELECT base FROM snapshots WHERE digest = ?`, b.Digest).Scan(&base); err != nil || base.Valid {
				t.Fatalf("base %v (%v), want a checkpoint (NULL)", base, err)
			}
			if got, err := d.Snapshot(t.Context(), b.ID); err != nil || got.Digest != b.Digest {
				t.Fatalf("Snapshot(%s) = %v", b.ID, err)
			}
			fs, err := d.Verify(t.Context(), nil, nil)
			if err != nil || len(fs) != 1 || fs[0].Seq != 1 {
				t.Fatalf("Verify = %+v, %v; want one finding, on the damaged parent (seq 1)", fs, err)
			}
		})
	}
}
