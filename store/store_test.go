package store_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

func open(t testing.TB, path string, opts ...store.Option) *store.DB {
	t.Helper()
	db, err := store.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) store.Store { return open(t, filepath.Join(t.TempDir(), "plcwatch.db")) },
		storetest.WithSecondHandle(func(t *testing.T, s store.Store) store.Store {
			return open(t, s.(*store.DB).Path())
		}))
}

// TestRecordDigestGolden pins the record digest format. The expected value
// was computed outside Go:
//
//	b=$(printf '%s' '{"alert":"a1","decision":"expected"}' | sha256sum | cut -d' ' -f1)
//	printf 'press-1\n3\nack\n2025-06-02T07:30:00.123456789Z\n%s\n%s' $b $(printf 'ab%.0s' $(seq 32)) | sha256sum
func TestRecordDigestGolden(t *testing.T) {
	r := store.Record{
		Device: "press-1",
		Seq:    3,
		Type:   store.TypeAck,
		Time:   time.Date(2025, 6, 2, 9, 30, 0, 123456789, time.FixedZone("CEST", 2*3600)),
		Body:   json.RawMessage(`{"alert":"a1","decision":"expected"}`),
		Prev:   strings.Repeat("ab", 32),
	}
	const want = "11df41fe05c1c244dc5a1460bf060b2346f7d9fee413687107db950d115b5ddc"
	if got := r.ComputeDigest(); got != want {
		t.Fatalf("ComputeDigest = %s, want %s", got, want)
	}
}

// fixture is a store with two chains, and the heads recorded after writing.
type fixture struct {
	path  string
	snaps []*snapshots.Snapshot
	heads []store.Head
}

// newFixture writes plc: rules#1 snapshot#2 alert#3 snapshot#4 ack#5
// snapshot#6 alert#7, and kiln: alert#1 alert#2.
func newFixture(t *testing.T) fixture {
	return newFixtureAt(t, filepath.Join(t.TempDir(), "plcwatch.db"))
}

func newFixtureAt(t *testing.T, path string) fixture {
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	g := storetest.NewGenerator("plc", 40, storetest.T0)
	rules := json.RawMessage(`[{"match":"info/*","kind":"info"}]`)
	f := fixture{path: path}
	at := storetest.T0
	step := func(fn func() error) {
		t.Helper()
		at = at.Add(time.Minute)
		if err := fn(); err != nil {
			t.Fatal(err)
		}
	}
	put := func() error {
		s := g.Next(1)
		f.snaps = append(f.snaps, s)
		_, err := db.PutSnapshot(ctx, s, rules)
		return err
	}
	appendRec := func(dev, typ string, body any) func() error {
		return func() error { _, err := db.Append(ctx, dev, typ, at, body); return err }
	}
	step(put)
	step(appendRec("plc", store.TypeAlert, map[string]string{"id": "A1", "severity": "high"}))
	step(put)
	step(appendRec("plc", store.TypeAck, store.Ack{Alert: "A1", By: "ann", Decision: "expected", At: at}))
	step(put)
	step(appendRec("plc", store.TypeAlert, map[string]string{"id": "A2", "severity": "high"}))
	step(appendRec("kiln", store.TypeAlert, map[string]string{"id": "K1", "severity": "low"}))
	step(appendRec("kiln", store.TypeAlert, map[string]string{"id": "K2", "severity": "low"}))
	if f.heads, err = db.Heads(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fixture) head(device string) store.Head {
	for _, h := range f.heads {
		if h.Device == device {
			return h
		}
	}
	panic("no head for " + device)
}

// raw opens the store file with plain SQL, as someone tampering with it would.
func raw(t *testing.T, path string) *sql.DB {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s changed nothing", q)
	}
}

// rewrite replaces the plc chain with one whose alert at seq 3 says "low",
// with fresh, consistent digests, keeping only the first keep records.
func rewrite(keep int64) func(t *testing.T, db *sql.DB) {
	return func(t *testing.T, db *sql.DB) {
		rows, err := db.Query(`SELECT device, seq, type, time, body, prev, digest FROM records WHERE device = 'plc' ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		var recs []store.Record
		for rows.Next() {
			var r store.Record
			var ts string
			var body []byte
			if err := rows.Scan(&r.Device, &r.Seq, &r.Type, &ts, &body, &r.Prev, &r.Digest); err != nil {
				t.Fatal(err)
			}
			r.Body = body
			if r.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
		rows.Close()
		mustExec(t, db, `DELETE FROM records WHERE device = 'plc'`)
		prev := store.GenesisPrev
		for _, r := range recs[:keep] {
			if r.Seq == 3 {
				r.Body = bytes.Replace(r.Body, []byte("high"), []byte("low"), 1)
			}
			r.Prev = prev
			r.Digest = r.ComputeDigest()
			prev = r.Digest
			mustExec(t, db, `INSERT INTO records (device, seq, type, time, body, prev, digest) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				r.Device, r.Seq, r.Type, r.Time.Format(time.RFC3339Nano), string(r.Body), r.Prev, r.Digest)
		}
	}
}

func swap(a, b int) func(t *testing.T, db *sql.DB) {
	return func(t *testing.T, db *sql.DB) {
		mustExec(t, db, `UPDATE records SET seq = -1 WHERE device = 'plc' AND seq = ?`, a)
		mustExec(t, db, `UPDATE records SET seq = ? WHERE device = 'plc' AND seq = ?`, a, b)
		mustExec(t, db, `UPDATE records SET seq = ? WHERE device = 'plc' AND seq = -1`, b)
	}
}

func problems(fs []store.Finding) []string {
	out := []string{}
	for _, f := range fs {
		if f.Device != "" {
			out = append(out, fmt.Sprintf("%s %s#%d", f.Problem, f.Device, f.Seq))
		} else {
			out = append(out, f.Problem)
		}
	}
	sort.Strings(out)
	return out
}

func TestVerifyFindsTampering(t *testing.T) {
	const shared = `instr(CAST(data AS TEXT), '"blocks/DB00008"') > 0` // an item in every snapshot
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB)
		known  bool // pass the heads recorded at write time
		extra  bool // pass the plc head digest as --head
		want   []string
		// readErr, when set, is the error resolving plc@latest must give.
		readErr error
	}{
		{name: "untampered", tamper: func(*testing.T, *sql.DB) {}, known: true, extra: true, want: []string{}},
		{name: "edit a record body", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE records SET body = replace(body, 'high', 'low') WHERE device = 'plc' AND seq = 3`)
		}, want: []string{"edited plc#3"}},
		{name: "edit a record time", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE records SET time = '2025-06-02T07:00:00Z' WHERE device = 'kiln' AND seq = 1`)
		}, want: []string{"edited kiln#1"}},
		{name: "edit a record and recompute its digest", tamper: func(t *testing.T, db *sql.DB) {
			var r store.Record
			var ts string
			var body []byte
			if err := db.QueryRow(`SELECT device, seq, type, time, body, prev FROM records WHERE device = 'plc' AND seq = 3`).Scan(&r.Device, &r.Seq, &r.Type, &ts, &body, &r.Prev); err != nil {
				t.Fatal(err)
			}
			r.Body = body
			r.Time, _ = time.Parse(time.RFC3339Nano, ts)
			r.Body = bytes.Replace(r.Body, []byte("high"), []byte("low"), 1)
			mustExec(t, db, `UPDATE records SET body = ?, digest = ? WHERE device = 'plc' AND seq = 3`, string(r.Body), r.ComputeDigest())
		}, known: true, want: []string{"bad_link plc#4"}},
		{name: "delete a middle record", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM records WHERE device = 'plc' AND seq = 3`)
		}, known: true, want: []string{"deleted plc#4", "derived plc#0"}},
		{name: "delete the first record", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM records WHERE device = 'kiln' AND seq = 1`)
		}, known: true, want: []string{"deleted kiln#2", "derived kiln#0"}},
		// A deletion that leaves record_counts alone shows there too; one
		// that edits both is found only by a head.
		{name: "delete the newest record, no head given", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM records WHERE device = 'plc' AND seq = 7`)
		}, want: []string{"derived plc#0"}},
		{name: "delete the newest record and its count, no head given", tamper: func(t *testing.T, db *sql.DB) {
			var typ string
			if err := db.QueryRow(`SELECT type FROM records WHERE device = 'plc' AND seq = 7`).Scan(&typ); err != nil {
				t.Fatal(err)
			}
			mustExec(t, db, `DELETE FROM records WHERE device = 'plc' AND seq = 7`)
			mustExec(t, db, `UPDATE record_counts SET count = count - 1 WHERE device = 'plc' AND type = ?`, typ)
		}, want: []string{}},
		{name: "delete the newest record, known head", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM records WHERE device = 'plc' AND seq = 7`)
		}, known: true, want: []string{"derived plc#0", "head_missing plc#7"}},
		{name: "delete the newest record, --head", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM records WHERE device = 'plc' AND seq = 7`)
		}, extra: true, want: []string{"derived plc#0", "head_missing"}},
		{name: "delete a whole chain, known head", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM records WHERE device = 'kiln'`)
		}, known: true, want: []string{"derived kiln#0", "head_missing kiln#2"}},
		{name: "swap adjacent records", tamper: swap(3, 4), known: true, want: []string{"reordered plc#3", "reordered plc#4"}},
		{name: "swap distant records", tamper: swap(3, 5), known: true, want: []string{"reordered plc#3", "reordered plc#5"}},
		{name: "rewrite the chain consistently, no head", tamper: rewrite(7), want: []string{}},
		{name: "rewrite the chain consistently, known head", tamper: rewrite(7), known: true, want: []string{"head_mismatch plc#7"}},
		{name: "rewrite the chain consistently, --head", tamper: rewrite(7), extra: true, want: []string{"head_missing"}},
		{name: "rewrite and truncate the chain, known head", tamper: rewrite(5), known: true, want: []string{"derived plc#0", "derived plc#0", "head_missing plc#7"}},
		{name: "unparseable record time", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE records SET time = 'yesterday' WHERE device = 'plc' AND seq = 5`)
		}, want: []string{"unparseable plc#5"}},
		{name: "edit a blob", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE blobs SET data = CAST(replace(CAST(data AS TEXT), 'SCL', 'STL') AS BLOB) WHERE `+shared)
		}, want: []string{"blob_mismatch", "blob_mismatch plc#2", "blob_mismatch plc#4", "blob_mismatch plc#6"}, readErr: snapshots.ErrDigestMismatch},
		{name: "delete a blob", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM blobs WHERE `+shared)
		}, want: []string{"missing_blob plc#2", "missing_blob plc#4", "missing_blob plc#6"}, readErr: errAny},
		{name: "edit a snapshot header", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE snapshots SET header = CAST(replace(CAST(header AS TEXT), 'Siemens', 'Siemenz') AS BLOB)`)
		}, want: []string{"blob_mismatch plc#2", "blob_mismatch plc#4", "blob_mismatch plc#6"}, readErr: snapshots.ErrDigestMismatch},
		{name: "delete a snapshot's content", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM snapshots WHERE digest = (SELECT json_extract(body, '$.digest') FROM records WHERE device = 'plc' AND seq = 6)`)
		}, want: []string{"missing_blob plc#6"}, readErr: store.ErrNotFound},
		// plc#2 is stored as a full list, plc#4 as a delta against it and
		// plc#6 as a delta against plc#4; a delta ends with the key
		// inserted and a one-byte copy count.
		{name: "delete the base of a manifest delta", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM snapshots WHERE digest = (SELECT json_extract(body, '$.digest') FROM records WHERE device = 'plc' AND seq = 2)`)
		}, want: []string{"missing_blob plc#2", "missing_blob plc#4", "missing_blob plc#6"}, readErr: store.ErrBrokenDelta},
		{name: "edit a key in a manifest delta", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE snapshots SET items = substr(items, 1, length(items) - 2) || (CASE WHEN substr(items, length(items) - 1, 1) = X'00' THEN X'01' ELSE X'00' END) || substr(items, length(items))
				WHERE digest = (SELECT json_extract(body, '$.digest') FROM records WHERE device = 'plc' AND seq = 4)`)
		}, want: []string{"blob_mismatch plc#4", "blob_mismatch plc#6"}, readErr: snapshots.ErrDigestMismatch},
		{name: "cut a manifest delta short", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE snapshots SET items = substr(items, 1, 5) WHERE digest = (SELECT json_extract(body, '$.digest') FROM records WHERE device = 'plc' AND seq = 4)`)
		}, want: []string{"unparseable plc#4", "unparseable plc#6"}, readErr: store.ErrBrokenDelta},
		{name: "make a manifest delta its own base", tamper: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE snapshots SET base = digest WHERE digest = (SELECT json_extract(body, '$.digest') FROM records WHERE device = 'plc' AND seq = 4)`)
		}, want: []string{"unparseable plc#4", "unparseable plc#6"}, readErr: store.ErrBrokenDelta},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			db := raw(t, f.path)
			tc.tamper(t, db)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s := open(t, f.path)
			var known []store.Head
			var extra []string
			if tc.known {
				known = f.heads
			}
			if tc.extra {
				extra = []string{f.head("plc").Digest}
			}
			fs, err := s.Verify(t.Context(), known, extra)
			if err != nil {
				t.Fatal(err)
			}
			if got := problems(fs); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Verify found %v, want %v:\n%s", got, tc.want, dump(fs))
			}
			for _, fd := range fs {
				if fd.Detail == "" {
					t.Errorf("finding %+v has no detail", fd)
				}
			}
			if tc.readErr != nil {
				_, err := s.Resolve(t.Context(), "plc@latest")
				if err == nil || (tc.readErr != errAny && !errors.Is(err, tc.readErr)) {
					t.Errorf("Resolve(plc@latest) of a tampered snapshot = %v, want %v", err, tc.readErr)
				}
			}
		})
	}
}

var errAny = errors.New("any error")

// TestVerifyDamagedFile garbles the last page of a store (SQLite's own
// structure, not our rows) and checks Verify reports it as findings.
func TestVerifyDamagedFile(t *testing.T) {
	f := newFixture(t)
	st, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if st.Size() < 3*page || st.Size()%page != 0 {
		t.Fatalf("store is %d bytes, want whole %d-byte pages", st.Size(), page)
	}
	file, err := os.OpenFile(f.path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteAt(bytes.Repeat([]byte{0xa5}, page), st.Size()-page); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	s := open(t, f.path) // page 1 (header and schema) is intact
	fs, err := s.Verify(t.Context(), f.heads, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := problems(fs); !containsStr(got, store.ProblemUnparseable) {
		t.Fatalf("Verify of a damaged file found %v, want an unparseable finding:\n%s", got, dump(fs))
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func dump(fs []store.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %+v\n", f)
	}
	return b.String()
}

func TestOpenRefusesOtherFiles(t *testing.T) {
	foreign := func(t *testing.T, path string) {
		db := raw(t, path)
		if _, err := db.Exec(`CREATE TABLE recipes (name TEXT)`); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	newer := func(t *testing.T, path string) {
		s, err := store.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		db := raw(t, path)
		if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, store.SchemaVersion+1)); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	damaged := func(t *testing.T, path string) {
		s, err := store.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 100; i < len(b); i++ { // keep the 100-byte header, garble the pages
			b[i] ^= 0x5a
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		make    func(t *testing.T, path string)
		wantErr error
		wantMsg string
	}{
		{name: "text file", make: func(t *testing.T, p string) { os.WriteFile(p, []byte("devices:\n  - name: plc\n"), 0o600) }, wantErr: store.ErrNotStore, wantMsg: "SQLite 3 header"},
		{name: "short file", make: func(t *testing.T, p string) { os.WriteFile(p, []byte("SQLite"), 0o600) }, wantErr: store.ErrNotStore, wantMsg: "SQLite 3 header"},
		{name: "directory", make: func(t *testing.T, p string) { os.Mkdir(p, 0o700) }, wantErr: store.ErrNotStore, wantMsg: "it is a directory, want a SQLite file"},
		{name: "another application's SQLite database", make: foreign, wantErr: store.ErrNotStore, wantMsg: "want a plcwatch store"},
		{name: "newer schema", make: newer, wantErr: store.ErrNewerSchema, wantMsg: "upgrade plcwatch"},
		{name: "damaged pages", make: damaged, wantErr: store.ErrNotStore, wantMsg: "damaged"},
	}
	for _, tc := range tests {
		for _, mode := range []struct {
			name string
			opts []store.Option
		}{{name: "read-write"}, {name: "read-only", opts: []store.Option{store.ReadOnly()}}} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "plcwatch.db")
				tc.make(t, path)
				before, _ := os.ReadFile(path)
				s, err := store.Open(path, mode.opts...)
				if err == nil {
					s.Close()
					t.Fatal("Open accepted it")
				}
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("Open = %v, want %v naming %s and saying %q", err, tc.wantErr, path, tc.wantMsg)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(before, after) {
					t.Error("Open changed the file it refused")
				}
			})
		}
	}
	for _, bad := range []string{"", "x.db?mode=ro", "file:x.db", ":memory:"} {
		if s, err := store.Open(bad); err == nil {
			s.Close()
			t.Errorf("Open(%q) accepted a path that is not a plain file path", bad)
		}
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if s, err := store.Open(missing, store.ReadOnly()); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(missing, ReadOnly) = %v, want a not-exist error naming the path", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal("a read-only Open created the file")
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := store.Open(empty, store.ReadOnly()); err == nil || !errors.Is(err, store.ErrNotStore) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(empty file, ReadOnly) = %v, want ErrNotStore", err)
	}
	if st, err := os.Stat(empty); err != nil || st.Size() != 0 {
		t.Fatalf("a read-only Open wrote to an empty file: %v, %v", st, err)
	}
	f := newFixture(t)
	s := open(t, f.path, store.ReadOnly())
	if _, err := s.Append(t.Context(), "plc", store.TypeAck, storetest.T0, 1); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Append on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, err := s.Resolve(t.Context(), "plc@latest"); err != nil {
		t.Errorf("reading a read-only store: %v", err)
	}
	if fs, err := s.Verify(t.Context(), f.heads, nil); err != nil || len(fs) != 0 {
		t.Errorf("Verify on a read-only store = %v, %v", fs, err)
	}
}

func TestReopenKeepsSchemaAndData(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 2; i++ {
		s := open(t, f.path)
		heads, err := s.Heads(t.Context())
		if err != nil || !reflect.DeepEqual(heads, f.heads) {
			t.Fatalf("reopen %d: Heads = %v, %v; want %v", i, heads, err, f.heads)
		}
		s.Close()
	}
	db := raw(t, f.path)
	var ver, app int
	var mode string
	db.QueryRow(`PRAGMA user_version`).Scan(&ver)
	db.QueryRow(`PRAGMA application_id`).Scan(&app)
	db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if ver != store.SchemaVersion || app != 0x504c4357 || mode != "wal" {
		t.Errorf("user_version %d, application_id %#x, journal_mode %s; want %d, 0x504c4357, wal", ver, app, mode, store.SchemaVersion)
	}
}

// TestContentAddressingSize stores a 1000-item snapshot, then an unchanged
// second one, and checks the second costs far less than its encoding.
func TestContentAddressingSize(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "plcwatch.db"))
	ctx := t.Context()
	g := storetest.NewGenerator("plc", 1000, storetest.T0)
	first, second := g.Next(0), g.Next(0)
	if _, err := s.PutSnapshot(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	st1, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSnapshot(ctx, second, nil); err != nil {
		t.Fatal(err)
	}
	st2, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := second.Encode()
	if err != nil {
		t.Fatal(err)
	}
	growth := st2.Bytes - st1.Bytes
	t.Logf("snapshot encoding %d bytes; first put: store %d bytes; unchanged second put: +%d bytes (%.1f%% of its encoding); blobs %d -> %d",
		len(enc), st1.Bytes, growth, 100*float64(growth)/float64(len(enc)), st1.Blobs, st2.Blobs)
	if st2.Blobs != st1.Blobs || st2.Snapshots != 2 {
		t.Errorf("unchanged snapshot added blobs (%d -> %d) or did not add its manifest (%d)", st1.Blobs, st2.Blobs, st2.Snapshots)
	}
	if growth*5 > int64(len(enc)) {
		t.Errorf("unchanged snapshot grew the store by %d bytes, want under a fifth of its %d-byte encoding", growth, len(enc))
	}
}

// TestHistorySize reports the store size for 100 snapshots of a 1000-item
// device with 1% of the items changed each time.
func TestHistorySize(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("stores 100 snapshots of 1000 items (skipped with -short and -race)")
	}
	s := open(t, filepath.Join(t.TempDir(), "plcwatch.db"))
	ctx := t.Context()
	g := storetest.NewGenerator("plc", 1000, storetest.T0)
	var raw int64
	for i := 0; i < 100; i++ {
		snap := g.Next(10)
		enc, err := snap.Encode()
		if err != nil {
			t.Fatal(err)
		}
		raw += int64(len(enc))
		if _, err := s.PutSnapshot(ctx, snap, nil); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100 snapshots x 1000 items, 1%% changed each: encodings %d bytes, store %d bytes (%.1f%%), %d blobs holding %d bytes, %d records",
		raw, st.Bytes, 100*float64(st.Bytes)/float64(raw), st.Blobs, st.BlobBytes, st.Records)
	if st.Blobs != 1000+99*10 {
		t.Errorf("%d blobs, want %d (one per distinct item)", st.Blobs, 1000+99*10)
	}
	if st.Bytes*5 > raw {
		t.Errorf("store is %d bytes, want under a fifth of the %d bytes of encodings", st.Bytes, raw)
	}
}

func BenchmarkPutSnapshot(b *testing.B) {
	for _, changes := range []int{0, 10, 1000} {
		b.Run(fmt.Sprintf("items=1000/changed=%d", changes), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "plcwatch.db"))
			g := storetest.NewGenerator("plc", 1000, storetest.T0)
			for b.Loop() {
				b.StopTimer()
				snap := g.Next(changes)
				b.StartTimer()
				if _, err := s.PutSnapshot(b.Context(), snap, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkResolveLatest(b *testing.B) {
	for _, history := range []int{10, 3000} {
		b.Run(fmt.Sprintf("items=100/history=%d", history), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "plcwatch.db"))
			ctx := b.Context()
			// The device of interest and a noisy neighbour, both with history.
			for _, dev := range []string{"plc", "other"} {
				g := storetest.NewGenerator(dev, 100, storetest.T0)
				for i := 0; i < history; i++ {
					if _, err := s.PutSnapshot(ctx, g.Next(1), nil); err != nil {
						b.Fatal(err)
					}
					if i%3 == 0 {
						if _, err := s.Append(ctx, dev, store.TypeAlert, g.At, map[string]int{"i": i}); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			for b.Loop() {
				if _, err := s.Resolve(ctx, "plc@latest"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestHeadsLogged: the count of heads written to the alert log adds up
// across handles and is readable read-only.
func TestHeadsLogged(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		add  int64
		want int64
	}{
		{"nothing logged yet", 0, 0},
		{"one head", 1, 1},
		{"three more", 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := open(t, f.path)
			if tc.add > 0 {
				if err := w.AddHeadsLogged(t.Context(), tc.add); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			r := open(t, f.path, store.ReadOnly())
			n, known, err := r.HeadsLogged(t.Context())
			if err != nil || !known || n != tc.want {
				t.Errorf("HeadsLogged = %d, %v, %v; want %d, true", n, known, err, tc.want)
			}
			if err := r.AddHeadsLogged(t.Context(), 1); !errors.Is(err, store.ErrReadOnly) {
				t.Errorf("AddHeadsLogged on a read-only store = %v, want ErrReadOnly", err)
			}
		})
	}
}

// BenchmarkOpenReadOnly opens a store read-only, reads one snapshot by id
// and closes it, as `plcwatch show` and `diff` do at every start: the
// statements run before the first read are start-up time.
func BenchmarkOpenReadOnly(b *testing.B) {
	path := filepath.Join(b.TempDir(), "plcwatch.db")
	s := open(b, path)
	snap := storetest.NewGenerator("plc", 10, storetest.T0).Next(0)
	if _, err := s.PutSnapshot(b.Context(), snap, nil); err != nil {
		b.Fatal(err)
	}
	s.Close()
	for b.Loop() {
		r, err := store.Open(path, store.ReadOnly())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Resolve(b.Context(), snap.ID); err != nil {
			b.Fatal(err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
