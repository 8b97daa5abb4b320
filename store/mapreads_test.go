package store_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// TestMapReadsParallelTampering tampers with a store whose diff reads 600
// blobs a side (the two-connection path at its real threshold) and reads
// the pair through a memory map, as plcwatch diff does: the parallel and
// the single read must agree (the pair, or the same error), and no
// connection may stay taken out of the pool.
func TestMapReadsParallelTampering(t *testing.T) {
	for _, tc := range []struct {
		name      string
		query     string
		diffLoads bool
	}{
		{name: "untouched", query: ``, diffLoads: true},
		{name: "blob of a shared item", query: `UPDATE blobs SET data = replace(data, 'SCL', 'SCX') WHERE CAST(data AS TEXT) LIKE '%blocks/DB01000"%'`, diffLoads: true},
		{name: "blob of a changed item", query: `UPDATE blobs SET data = replace(data, 'SCL', 'SCX') WHERE CAST(data AS TEXT) LIKE '%blocks/DB00000"%'`},
		{name: "every logic blob", query: `UPDATE blobs SET data = replace(data, 'SCL', 'SCX') WHERE CAST(data AS TEXT) LIKE '%SCL%'`},
		{name: "blob of a changed item deleted", query: `DELETE FROM blobs WHERE CAST(data AS TEXT) LIKE '%blocks/DB00004"%'`},
		{name: "every changed blob deleted", query: `DELETE FROM blobs WHERE CAST(data AS TEXT) NOT LIKE '%blocks/DB01%'`},
		{name: "header", query: `UPDATE snapshots SET header = replace(header, 'Siemens', 'Siemenz')`},
		{name: "manifest delta cut short", query: `UPDATE snapshots SET items = substr(items, 1, 20) WHERE base IS NOT NULL`},
		{name: "manifest delta's base deleted", query: `DELETE FROM snapshots WHERE base IS NULL`},
		{name: "full manifest without an item", query: `UPDATE snapshots SET items = substr(items, 33) WHERE base IS NULL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "plcwatch.db")
			s := open(t, path)
			g := storetest.NewGenerator("plc", 1200, storetest.T0)
			a, b := g.Next(0), g.Next(600)
			for _, x := range []*snapshots.Snapshot{a, b} {
				if _, err := s.PutSnapshot(t.Context(), x, nil); err != nil {
					t.Fatal(err)
				}
			}
			db := raw(t, path)
			if tc.query != "" {
				mustExec(t, db, tc.query)
			}
			// Everything into the main file, which the map covers.
			if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatal(err)
			}
			var got [2]*store.DiffPair
			var errs [2]error
			for i, threshold := range []int{1 << 30, 500} {
				store.ReadInParallel(t, threshold)
				m := open(t, path, store.ReadOnly(), store.MapReads())
				got[i], errs[i] = m.ResolveDiff(t.Context(), a.ID, b.ID)
				if n := store.ConnsInUse(m); n != 0 {
					t.Errorf("threshold %d: %d connection(s) still taken after ResolveDiff", threshold, n)
				}
				if err := m.Close(); err != nil {
					t.Errorf("threshold %d: Close: %v", threshold, err)
				}
			}
			seq, par := errs[0], errs[1]
			if tc.diffLoads {
				if seq != nil || par != nil {
					t.Fatalf("ResolveDiff: single read %v, parallel %v; want the pair", seq, par)
				}
				want := diffing.Compare(a, b, diffing.Options{})
				for i, p := range got {
					if r := diffing.Compare(p.Old, p.New, diffing.Options{}); !reflect.DeepEqual(r, want) {
						t.Errorf("way %d: report differs from the full comparison", i)
					}
				}
				return
			}
			if seq == nil || par == nil {
				t.Fatalf("tampered pair: single read %v, parallel %v; want both refused", seq, par)
			}
			for _, target := range []error{snapshots.ErrDigestMismatch, store.ErrBrokenDelta, store.ErrHostIO} {
				if errors.Is(seq, target) != errors.Is(par, target) {
					t.Errorf("errors.Is(%v): single read %v, parallel %v", target, seq, par)
				}
			}
			if seq.Error() != par.Error() {
				t.Errorf("errors differ:\n single   %v\n parallel %v", seq, par)
			}
		})
	}
}
