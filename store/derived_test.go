package store_test

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// seedAlerts appends alerts and alert_seen records to two devices.
func seedAlerts(t *testing.T, s store.Store) {
	t.Helper()
	at := storetest.T0
	for _, dev := range []string{"a", "b"} {
		if _, err := s.Append(t.Context(), dev, store.TypeAlert, at, map[string]string{"id": "A-1", "fingerprint": "f"}); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			at = at.Add(time.Minute)
			snap := ""
			if i < 3 {
				snap = "s" + string(rune('0'+i))
			}
			seen := store.AlertSeen{Alert: "A-1", Snapshot: snap, At: at}
			if i == 1 { // found again with other items: the summary keeps this content
				seen.Title, seen.Items, seen.Reasons = "incomplete collection: a", json.RawMessage(`[{"path":"a", "change":"not_read"}]`), []string{"a: Bad"}
			}
			if _, err := s.Append(t.Context(), dev, store.TypeAlertSeen, at, seen); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestAlertSeenSummaryMigration opens a store of schema version 2 (the
// summary table dropped, as today's code before this change wrote it) and
// checks that migrating it fills the summaries from the chain.
func TestAlertSeenSummaryMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	s := open(t, path)
	seedAlerts(t, s)
	want, err := s.AlertSeenSummaries(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 || want[0].Count != 4 || want[0].Snapshot != "s2" || want[0].FirstSeq != 2 || want[0].LastSeq != 5 ||
		want[0].Title != "incomplete collection: a" || string(want[0].Items) != `[{"path":"a","change":"not_read"}]` || len(want[0].Reasons) != 1 {
		t.Fatalf("summaries %+v, want 2 of 4 records each, newest snapshot s2, seqs 2 to 5, the content of the second", want)
	}
	s.Close()
	db := raw(t, path)
	downgradeTo2(t, db)
	db.Close()
	s2 := open(t, path)
	got, err := s2.AlertSeenSummaries(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after migration %+v, want %+v", got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.LastTime.Equal(w.LastTime) {
			t.Errorf("after migration last time %v, want %v", g.LastTime, w.LastTime)
		}
		g.LastTime, w.LastTime = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("after migration %+v, want %+v", got[i], want[i])
		}
	}
	if fs, err := s2.Verify(t.Context(), nil, nil); err != nil || len(fs) != 0 {
		t.Errorf("Verify after migration = %+v, %v; want clean", fs, err)
	}
}

// TestVerifyChecksDerived edits the summary table: verify reports it.
func TestVerifyChecksDerived(t *testing.T) {
	for _, tc := range []struct {
		name, query string
	}{
		{name: "count changed", query: `UPDATE alert_seen_summary SET count = 1 WHERE device = 'a'`},
		{name: "row deleted", query: `DELETE FROM alert_seen_summary WHERE device = 'b'`},
		{name: "content changed", query: `UPDATE alert_seen_summary SET content = '{"title":"nothing to see","items":null,"reasons":null}' WHERE device = 'a'`},
		{name: "row invented", query: `INSERT INTO alert_seen_summary VALUES ('a', 'A-9', 1, 9, 9, '2025-01-01T00:00:00Z', '', '')`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "plcwatch.db")
			s := open(t, path)
			seedAlerts(t, s)
			mustExec(t, raw(t, path), tc.query)
			fs, err := s.Verify(t.Context(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 1 || fs[0].Problem != store.ProblemDerived {
				t.Errorf("Verify = %+v, want one derived finding", fs)
			}
		})
	}
}

// TestRecordCounts: CountOfType follows appends, survives migration from
// schema 2 and is checked by verify.
func TestRecordCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	s := open(t, path)
	seedAlerts(t, s)
	g := storetest.NewGenerator("a", 5, storetest.T0.Add(time.Hour))
	for range 3 {
		// Every item changes: no delta is smaller than a full list, so
		// the store can be taken back to schema 2 (full lists only).
		if _, err := s.PutSnapshot(t.Context(), g.Next(5), nil); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *store.DB, what string) {
		t.Helper()
		for _, c := range []struct {
			dev, typ string
			want     int64
		}{{"a", store.TypeSnapshot, 3}, {"a", store.TypeAlertSeen, 4}, {"b", store.TypeSnapshot, 0}, {"b", store.TypeAlert, 1}} {
			if n, err := s.CountOfType(t.Context(), c.dev, c.typ); err != nil || n != c.want {
				t.Errorf("%s: CountOfType(%s, %s) = %d, %v; want %d", what, c.dev, c.typ, n, err, c.want)
			}
		}
	}
	check(s, "after appends")
	s.Close()
	db := raw(t, path)
	downgradeTo2(t, db)
	old := open(t, path, store.ReadOnly())
	check(old, "read-only at schema 2")
	old.Close()
	s2 := open(t, path)
	check(s2, "after migration")
	if fs, err := s2.Verify(t.Context(), nil, nil); err != nil || len(fs) != 0 {
		t.Errorf("Verify = %+v, %v; want clean", fs, err)
	}
	mustExec(t, db, `UPDATE record_counts SET count = 7 WHERE device = 'a' AND type = 'snapshot'`)
	if fs, err := s2.Verify(t.Context(), nil, nil); err != nil || len(fs) != 1 || fs[0].Problem != store.ProblemDerived {
		t.Errorf("Verify of an edited count = %+v, %v; want one derived finding", fs, err)
	}
}

// downgradeTo2 takes a store back to schema version 2, as the code of that
// version wrote it: no derived tables, full key lists only (a store holding
// a manifest delta cannot be taken back).
func downgradeTo2(t *testing.T, db *sql.DB) {
	t.Helper()
	var deltas int
	if err := db.QueryRow(`SELECT count(*) FROM snapshots WHERE base IS NOT NULL`).Scan(&deltas); err != nil || deltas != 0 {
		t.Fatalf("%d manifest deltas (%v): schema 2 cannot hold them", deltas, err)
	}
	for _, q := range []string{`DROP TABLE alert_seen_summary`, `DROP TABLE record_counts`,
		`ALTER TABLE snapshots DROP COLUMN base`, `ALTER TABLE snapshots DROP COLUMN depth`, `ALTER TABLE snapshots DROP COLUMN span`, `PRAGMA user_version = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
