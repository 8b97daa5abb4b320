package store_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// pairSnapshot builds a finalized snapshot of device "plc" from items
// given as path=value, with an optional not-read item.
func pairSnapshot(t *testing.T, at time.Time, complete bool, items map[string]string, notRead ...string) *snapshots.Snapshot {
	t.Helper()
	s := &snapshots.Snapshot{Device: "plc", Protocol: "s7", TakenAt: at, Status: snapshots.Status{Complete: complete}}
	if !complete {
		s.Status.Reasons = []string{"cut off"}
	}
	for p, v := range items {
		s.Items = append(s.Items, snapshots.Item{Path: p, Kind: snapshots.KindSetpoint, Value: snapshots.String(v)})
	}
	for _, p := range notRead {
		s.Items = append(s.Items, snapshots.Item{Path: p, Kind: snapshots.KindLogic, Value: snapshots.None(),
			Provenance: snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: "timeout"}})
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestResolveDiffSameReport checks that comparing the pair ResolveDiff
// loads (shared items left out) gives the report of the full snapshots.
func TestResolveDiffSameReport(t *testing.T) {
	t0 := storetest.T0
	base := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		old, cur func(t *testing.T) *snapshots.Snapshot
		shared   int
	}{
		{name: "identical content, different times",
			old:    func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0, true, base) },
			cur:    func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0.Add(time.Hour), true, base) },
			shared: 4},
		{name: "changed added removed",
			old: func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0, true, base) },
			cur: func(t *testing.T) *snapshots.Snapshot {
				return pairSnapshot(t, t0.Add(time.Hour), true, with("b", "9", "d", "", "e", "5"))
			},
			shared: 2},
		{name: "partial newer snapshot misses items",
			old: func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0, true, base) },
			cur: func(t *testing.T) *snapshots.Snapshot {
				return pairSnapshot(t, t0.Add(time.Hour), false, with("c", "", "d", ""), "x")
			},
			shared: 2},
		{name: "partial older snapshot",
			old: func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0, false, with("a", ""), "x") },
			cur: func(t *testing.T) *snapshots.Snapshot {
				return pairSnapshot(t, t0.Add(time.Hour), true, with("x", "7"))
			},
			shared: 3},
		{name: "not read on both sides",
			old: func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0, false, base, "x") },
			cur: func(t *testing.T) *snapshots.Snapshot {
				return pairSnapshot(t, t0.Add(time.Hour), false, with("a", "0"), "x")
			},
			shared: 4},
		{name: "an item added first shifts every position",
			old:    func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0, true, with("a", "")) },
			cur:    func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0.Add(time.Hour), true, base) },
			shared: 3},
		{name: "same snapshot twice",
			old:    func(t *testing.T) *snapshots.Snapshot { return pairSnapshot(t, t0, true, base) },
			cur:    nil,
			shared: 4},
	} {
		for _, parallel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/parallel=%v", tc.name, parallel), func(t *testing.T) {
				if parallel {
					store.ReadInParallel(t, 0)
				}
				resolveDiffSameReport(t, tc.old, tc.cur, tc.shared)
			})
		}
	}
}

// resolveDiffSameReport stores old and cur (cur nil: old twice) and checks
// ResolveDiff's pair, through a read-write handle and through a memory map.
func resolveDiffSameReport(t *testing.T, mkOld, mkCur func(t *testing.T) *snapshots.Snapshot, shared int) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	s := open(t, path)
	old := mkOld(t)
	cur := old
	if mkCur != nil {
		cur = mkCur(t)
	}
	put := []*snapshots.Snapshot{old}
	if cur != old {
		put = append(put, cur)
	}
	for _, x := range put {
		if _, err := s.PutSnapshot(t.Context(), x, nil); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.ResolveDiff(t.Context(), old.ID, cur.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Shared != shared {
		t.Errorf("Shared = %d, want %d", p.Shared, shared)
	}
	if p.Old.Digest != old.Digest || p.New.Digest != cur.Digest {
		t.Errorf("digests %s %s, want %s %s", p.Old.Digest, p.New.Digest, old.Digest, cur.Digest)
	}
	if n := len(p.New.Items); n != len(cur.Items)-shared {
		t.Errorf("new side has %d items, want %d", n, len(cur.Items)-shared)
	}
	want := diffing.Compare(old, cur, diffing.Options{})
	got := diffing.Compare(p.Old, p.New, diffing.Options{})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report of the pair differs from the full comparison:\n got %+v\nwant %+v", got, want)
	}
	// diff and show read through a memory map: the same pair.
	m, err := store.Open(path, store.ReadOnly(), store.MapReads())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mp, err := m.ResolveDiff(t.Context(), old.ID, cur.ID)
	if err != nil {
		t.Fatalf("through a memory map: %v", err)
	}
	if got := diffing.Compare(mp.Old, mp.New, diffing.Options{}); !reflect.DeepEqual(got, want) || mp.Shared != shared {
		t.Errorf("through a memory map: Shared %d, report %+v; want %d, %+v", mp.Shared, got, shared, want)
	}
	ms, err := m.Resolve(t.Context(), cur.ID)
	if err != nil {
		t.Fatalf("Resolve through a memory map: %v", err)
	}
	if ms.Digest != cur.Digest || len(ms.Items) != len(cur.Items) {
		t.Errorf("Resolve through a memory map: digest %s, %d items; want %s, %d items", ms.Digest, len(ms.Items), cur.Digest, len(cur.Items))
	}
}

// TestResolveDiffRefusesTampering alters stored content of the newer
// snapshot: the pair must not load, whether the altered item is shared or
// not.
func TestResolveDiffRefusesTampering(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query string
		// diffLoads: the damage is to an item both snapshots hold, which
		// the comparison does not read (their manifests fix it; verify and
		// a full load find the damage).
		diffLoads bool
	}{
		{name: "blob of a shared item", query: `UPDATE blobs SET data = replace(data, 'SCL', 'SCX') WHERE CAST(data AS TEXT) LIKE '%blocks/DB00001"%'`, diffLoads: true},
		{name: "blob of a changed item", query: `UPDATE blobs SET data = replace(data, 'SCL', 'SCX') WHERE CAST(data AS TEXT) LIKE '%blocks/DB00000"%'`},
		{name: "header", query: `UPDATE snapshots SET header = replace(header, 'Siemens', 'Siemenz')`},
		// The first snapshot's manifest is a full list, the second's a delta
		// against it (skip 1, insert 1 key, copy 7): the byte before the
		// last is the inserted key's last.
		{name: "manifest without an item", query: `UPDATE snapshots SET items = substr(items, 33) WHERE base IS NULL`},
		{name: "manifest with two items swapped", query: `UPDATE snapshots SET items = substr(items, 33, 32) || substr(items, 1, 32) || substr(items, 65) WHERE base IS NULL`},
		{name: "manifest delta with a key changed", query: `UPDATE snapshots SET items = substr(items, 1, length(items) - 2) || (CASE WHEN substr(items, length(items) - 1, 1) = X'00' THEN X'01' ELSE X'00' END) || substr(items, length(items)) WHERE base IS NOT NULL`},
		{name: "manifest delta cut short", query: `UPDATE snapshots SET items = substr(items, 1, 20) WHERE base IS NOT NULL`},
		{name: "manifest delta's base deleted", query: `DELETE FROM snapshots WHERE base IS NULL`},
		{name: "blob of a shared item deleted", query: `DELETE FROM blobs WHERE CAST(data AS TEXT) LIKE '%blocks/DB00004"%'`, diffLoads: true},
		{name: "blob of a changed item deleted", query: `DELETE FROM blobs WHERE CAST(data AS TEXT) LIKE '%blocks/DB00000"%'`},
	} {
		for _, parallel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/parallel=%v", tc.name, parallel), func(t *testing.T) {
				if parallel {
					store.ReadInParallel(t, 0)
				}
				resolveDiffRefusesTampering(t, tc.query, tc.diffLoads, strings.Contains(tc.name, "deleted"))
			})
		}
	}
}

// resolveDiffRefusesTampering stores two snapshots, runs query on the file
// and checks what ResolveDiff, Verify and Snapshot make of it.
func resolveDiffRefusesTampering(t *testing.T, query string, diffLoads, deleted bool) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	s := open(t, path)
	g := storetest.NewGenerator("plc", 8, storetest.T0)
	a, b := g.Next(0), g.Next(1)
	for _, x := range []*snapshots.Snapshot{a, b} {
		if _, err := s.PutSnapshot(t.Context(), x, nil); err != nil {
			t.Fatal(err)
		}
	}
	db := raw(t, path)
	res, err := db.Exec(query)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s changed nothing", query)
	}
	p, err := s.ResolveDiff(t.Context(), a.ID, b.ID)
	switch {
	case diffLoads && err != nil:
		t.Fatalf("ResolveDiff = %v, want the pair (the damaged item is shared)", err)
	case diffLoads:
		if want, got := diffing.Compare(a, b, diffing.Options{}), diffing.Compare(p.Old, p.New, diffing.Options{}); !reflect.DeepEqual(got, want) {
			t.Errorf("report %+v, want %+v", got, want)
		}
	case err == nil:
		t.Fatal("tampered pair loaded")
	case !deleted && !errors.Is(err, snapshots.ErrDigestMismatch) && !errors.Is(err, store.ErrBrokenDelta):
		t.Errorf("err = %v, want ErrDigestMismatch or ErrBrokenDelta", err)
	}
	if fs, err := s.Verify(t.Context(), nil, nil); err != nil || len(fs) == 0 {
		t.Errorf("Verify = %v, %v; want findings", fs, err)
	}
	if _, err := s.Snapshot(t.Context(), b.ID); err == nil {
		t.Errorf("Snapshot(%s) loaded tampered content", b.ID)
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		s := open(b, filepath.Join(b.TempDir(), "plcwatch.db"))
		g := storetest.NewGenerator("plc", n, storetest.T0)
		x, y := g.Next(0), g.Next(n/100)
		for _, sn := range []*snapshots.Snapshot{x, y} {
			if _, err := s.PutSnapshot(b.Context(), sn, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("snapshot/items=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Snapshot(b.Context(), y.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("diffpair/items=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.ResolveDiff(b.Context(), x.ID, y.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLoadRecordWithoutManifest loads snapshots whose records carry no
// manifest digest, as records written before schema version 2: every item
// is read and the encoding is checked against the digest.
func TestLoadRecordWithoutManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	s := open(t, path)
	g := storetest.NewGenerator("plc", 40, storetest.T0)
	a, b := g.Next(0), g.Next(3)
	for _, x := range []*snapshots.Snapshot{a, b} {
		if _, err := s.PutSnapshot(t.Context(), x, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, raw(t, path), `UPDATE records SET body = json_remove(body, '$.manifest') WHERE type = 'snapshot'`)
	for _, ref := range []string{a.ID, "plc@latest"} {
		got, err := s.Resolve(t.Context(), ref)
		if err != nil {
			t.Fatalf("Resolve(%s) = %v", ref, err)
		}
		if got.Digest != a.Digest && got.Digest != b.Digest {
			t.Errorf("Resolve(%s) gave %s", ref, got.Digest)
		}
	}
	p, err := s.ResolveDiff(t.Context(), a.ID, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := diffing.Compare(a, b, diffing.Options{}), diffing.Compare(p.Old, p.New, diffing.Options{}); !reflect.DeepEqual(got, want) {
		t.Errorf("report %+v, want %+v", got, want)
	}
	mustExec(t, raw(t, path), `UPDATE blobs SET data = replace(data, 'SCL', 'SCX') WHERE CAST(data AS TEXT) LIKE '%blocks/DB00001"%'`)
	if _, err := s.ResolveDiff(t.Context(), a.ID, b.ID); !errors.Is(err, snapshots.ErrDigestMismatch) {
		t.Errorf("ResolveDiff after damaging a shared item without manifests = %v, want ErrDigestMismatch", err)
	}
}
