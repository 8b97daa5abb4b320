package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
)

// TestQueryPlans checks that every lookup the derived queries make is an
// index search, not a scan of the records table, so they stay fast with
// thousands of snapshots.
func TestQueryPlans(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "plans.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tests := []struct {
		name  string
		query string
		args  []any
		index string
	}{
		{name: "chain head", query: qHead, args: []any{"plc"}, index: "sqlite_autoindex_records_1"},
		{name: "latest", query: qLatest, args: []any{"plc"}, index: "records_type"},
		{name: "latest complete", query: qLatestDone, args: []any{"plc"}, index: "records_snapshot_complete"},
		{name: "label", query: qLabel, args: []any{"plc", "fat"}, index: "records_snapshot_label"},
		{name: "id prefix", query: qByIDRange, args: []any{"abcdef", "abcdefg"}, index: "records_snapshot_id"},
		{name: "newest approval", query: qNewestOfType, args: []any{TypeApproval, "plc"}, index: "records_type"},
		{name: "records of type", query: qOfType, args: []any{TypeAck, "plc"}, index: "records_type"},
		{name: "records of type, all devices", query: qOfTypeAll, args: []any{TypeAck}, index: "records_type"},
		{name: "manifest", query: qManifest, args: []any{strings.Repeat("a", 64)}, index: "PRIMARY KEY"},
		{name: "manifest chain", query: qChain, args: []any{strings.Repeat("a", 64), "", maxChainRows}, index: "PRIMARY KEY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := d.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			p := strings.Join(plan, "; ")
			if !strings.Contains(p, "SEARCH") || !strings.Contains(p, tc.index) || strings.Contains(p, "TEMP B-TREE") {
				t.Fatalf("plan %q, want a search using %s without a sort", p, tc.index)
			}
		})
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Ref
		err  bool
	}{
		{name: "id", in: "0123456789abcdef", want: Ref{Kind: RefID, ID: "0123456789abcdef"}},
		{name: "short prefix", in: "ABCDEF", want: Ref{Kind: RefID, ID: "abcdef"}},
		{name: "digest", in: strings.Repeat("f", 64), want: Ref{Kind: RefID, ID: strings.Repeat("f", 64)}},
		{name: "latest", in: "plc-1@latest", want: Ref{Kind: RefLatest, Device: "plc-1"}},
		{name: "baseline", in: "plc-1@baseline", want: Ref{Kind: RefBaseline, Device: "plc-1"}},
		{name: "label", in: "plc-1@FAT 2024", want: Ref{Kind: RefLabel, Device: "plc-1", Label: "FAT 2024"}},
		{name: "label with @", in: "plc@a@b", want: Ref{Kind: RefLabel, Device: "plc", Label: "a@b"}},
		{name: "too short", in: "abcde", err: true},
		{name: "too long", in: strings.Repeat("a", 65), err: true},
		{name: "not hex", in: "abcdefg", err: true},
		{name: "empty", in: "", err: true},
		{name: "no device", in: "@latest", err: true},
		{name: "no label", in: "plc@", err: true},
		{name: "space in device", in: "p lc@latest", err: true},
		{name: "control in label", in: "plc@a\x00b", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRef(tc.in)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), "reference") {
					t.Fatalf("ParseRef(%q) = %+v, %v; want an error naming the reference", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzParseRef: any input either fails or parses to a reference that prints
// back to a string parsing to the same reference.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"0123456789abcdef", "ABCDEF", "plc@latest", "plc@baseline", "plc@FAT", "plc@a@b", "@x", "p\x00@l", strings.Repeat("e", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRef(%q) = %+v prints as %q, which parses to %+v, %v", s, r, r.String(), again, err)
		}
		if r.Kind == RefID && (len(r.ID) < MinPrefix || !isHex(r.ID)) {
			t.Fatalf("ParseRef(%q) accepted id %q", s, r.ID)
		}
	})
}

func seedSnapshot(t testing.TB) (*snapshots.Snapshot, *manifest) {
	s := &snapshots.Snapshot{Device: "plc", Protocol: "s7", TakenAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Status: snapshots.Status{Complete: true},
		Items: []snapshots.Item{
			{Path: "blocks/OB1", Kind: snapshots.KindLogic, Value: snapshots.Bytes([]byte{1, 2, 3}), Attrs: map[string]string{"size": "120"}},
			{Path: "setpoints/High", Kind: snapshots.KindSetpoint, Value: snapshots.Float(80.5, "degC"), Deadband: 0.5},
		}}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	m, err := split(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

// FuzzReassemble feeds arbitrary stored manifests and item blobs (untrusted:
// read back from a file anyone with access could edit) to the decoding path.
// It must never panic, and whatever it accepts must be a snapshot whose
// canonical encoding hashes to the wanted digest.
func FuzzReassemble(f *testing.F) {
	s, m := seedSnapshot(f)
	f.Add(m.header, m.keys, m.items[0], m.items[1], s.Digest)
	f.Add(m.header, m.keys[:keySize], m.items[0], m.items[1], s.Digest)
	f.Add([]byte(`{"items":null}`), []byte{}, []byte{}, []byte{}, "")
	f.Add(bytes.Replace(m.header, []byte("plc"), []byte("plx"), 1), m.keys, m.items[0], m.items[1], s.Digest)
	f.Add(m.header, m.keys, bytes.Replace(m.items[0], []byte("120"), []byte("121"), 1), m.items[1], "")
	f.Fuzz(func(t *testing.T, header, keys, blob0, blob1 []byte, want string) {
		blobs := map[[keySize]byte][]byte{sha256.Sum256(blob0): blob0, sha256.Sum256(blob1): blob1}
		// A lookup that may also return a blob under a key it does not hash to.
		var lying [keySize]byte
		copy(lying[:], blob0)
		blobs[lying] = blob1
		got, err := reassemble(header, keys, want, func(k [keySize]byte) ([]byte, error) { return blobs[k], nil })
		if err != nil {
			return
		}
		enc, err := got.Encode()
		if err != nil {
			t.Fatalf("accepted snapshot does not encode: %v", err)
		}
		if d := digestOf(enc); d != got.Digest || (want != "" && d != want) {
			t.Fatalf("accepted snapshot with digest %s, encoding hashes to %s, wanted %q", got.Digest, d, want)
		}
		_ = checkItemBlob(blob0)
	})
}

// FuzzRecordFields feeds arbitrary stored record fields to the code that
// reads them back (times, snapshot and approval bodies) and to chain
// verification. None may panic; a chain made of them verifies clean only
// if every digest and link holds.
func FuzzRecordFields(f *testing.F) {
	ref, _ := json.Marshal(SnapshotRef{ID: strings.Repeat("a", 16), Digest: strings.Repeat("a", 64), Complete: true})
	f.Add(TypeSnapshot, "2025-06-02T07:30:00.123456789Z", ref, int64(1), GenesisPrev)
	f.Add(TypeApproval, "2025-06-02T07:30:00Z", []byte(`{"snapshot":"x","digest":"y","by":"a","os_user":"b","ticket":"c","at":"2025-01-01T00:00:00Z","new_baseline":"y"}`), int64(2), strings.Repeat("0", 63))
	f.Add(TypeAck, "yesterday", []byte(`{`), int64(-1), "")
	f.Fuzz(func(t *testing.T, typ, ts string, body []byte, seq int64, prev string) {
		tm, timeErr := parseTime(ts)
		_, _ = decodeRef(body)
		var a Approval
		_ = decodeStrict(body, &a)
		r := chainRecord{Record: Record{Device: "plc", Seq: seq, Type: typ, Time: tm, Body: body, Prev: prev}, timeErr: timeErr}
		r.Digest = r.ComputeDigest()
		second := r
		second.Seq, second.Prev = seq+1, r.Digest
		second.Digest = second.ComputeDigest()
		var fs []Finding
		verifyChain([]chainRecord{r, second}, &fs)
		clean := timeErr == nil && seq == 1 && prev == GenesisPrev
		if clean && typ == TypeSnapshot {
			if _, err := decodeRef(body); err != nil {
				clean = false
			}
		}
		if clean != (len(fs) == 0) {
			t.Fatalf("chain of seq %d prev %q time %q type %q: findings %+v, clean %v", seq, prev, ts, typ, fs, clean)
		}
	})
}

func TestSplitRefusesChangedSnapshot(t *testing.T) {
	s, _ := seedSnapshot(t)
	s.Items[1].Value = snapshots.Float(99, "degC")
	if _, err := split(s); !errors.Is(err, snapshots.ErrDigestMismatch) {
		t.Fatalf("split of a snapshot changed after Finalize = %v, want ErrDigestMismatch", err)
	}
}

// putSetpoints stores versions snapshots of device plc, an hour apart, of n
// setpoints of about 200 bytes each (so that reading them touches many
// pages), the first changed of them differing between versions, and
// returns the snapshots' ids.
func putSetpoints(t *testing.T, w *DB, versions, n, changed int) []string {
	t.Helper()
	at := time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC)
	var ids []string
	for version := range versions {
		s := &snapshots.Snapshot{Device: "plc", Protocol: "s7", TakenAt: at.Add(time.Duration(version) * time.Hour), Status: snapshots.Status{Complete: true}}
		for i := range n {
			v := 0
			if i < changed {
				v = version
			}
			s.Items = append(s.Items, snapshots.Item{Path: fmt.Sprintf("setpoints/SP%05d", i), Kind: snapshots.KindSetpoint, Value: snapshots.String(fmt.Sprintf("%s%d/%d", strings.Repeat("x", 200), i, v))})
		}
		if err := s.Finalize(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.PutSnapshot(t.Context(), s, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	return ids
}

// TestMapReadsFault truncates a store while a statement reads it through a
// memory map (MapReads): the read must fail with ErrHostIO, the process
// must live on, and the handle must refuse further reads and close
// without touching SQLite.
func TestMapReadsFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id := putSetpoints(t, w, 1, 3000, 0)[0]
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, ReadOnly(), MapReads())
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	err = d.guard(func() error {
		r, err := d.db.QueryContext(t.Context(), `SELECT data FROM blobs`)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			if rows++; rows == 1 {
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		return r.Err()
	})
	if !errors.Is(err, ErrHostIO) || !strings.Contains(err.Error(), "memory map faulted") {
		t.Fatalf("after truncating the file mid-read: %v (%d rows), want a memory-map fault wrapping ErrHostIO", err, rows)
	}
	if _, err := d.Resolve(t.Context(), id); !errors.Is(err, ErrHostIO) {
		t.Errorf("Resolve after the fault: %v, want ErrHostIO", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close after the fault: %v", err)
	}
}

// TestMapReadsFaultParallel truncates a store after a diff has read both
// manifests, as the two sides start reading their blobs on two connections
// (600 a side): the side whose connection mapped the whole file faults in
// its own goroutine, which the main goroutine's guard does not cover. The
// diff must fail with ErrHostIO and the process live on. The store's -wal
// file holds a record, so SQLite takes the database's size from the WAL,
// not from the truncated file, as it does while a writer is busy.
func TestMapReadsFaultParallel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	refs := putSetpoints(t, w, 2, 1200, 600)
	at := time.Date(2025, 6, 1, 4, 0, 0, 0, time.UTC)
	if _, err := w.db.ExecContext(t.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(t.Context(), "plc", TypeAlert, at, map[string]string{"id": "A1", "severity": "high"}); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, ReadOnly(), MapReads())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	beforeSideRead = func() {
		once.Do(func() {
			if err := os.Truncate(path, 0); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() { beforeSideRead = nil }()
	_, err = d.ResolveDiff(t.Context(), refs[0], refs[1])
	if !errors.Is(err, ErrHostIO) || !strings.Contains(err.Error(), "memory map") {
		t.Errorf("ResolveDiff with the store truncated as its sides read: %v, want a memory-map fault wrapping ErrHostIO", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close after the fault: %v", err)
	}
}

// TestReadOnlyHandleRefusesWrites checks that SQLite itself refuses every
// kind of write on a read-only store's handle, below the store's own
// ErrReadOnly check: mode=ro is what keeps an auditor's copy unchanged.
func TestReadOnlyHandleRefusesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(t.Context(), "plc", TypeAck, time.Unix(0, 0), 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, mapped := range []bool{false, true} {
		opts := []Option{ReadOnly()}
		if mapped {
			opts = append(opts, MapReads())
		}
		d, err := Open(path, opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, stmt string }{
			{name: "insert", stmt: `INSERT INTO counters (name, value) VALUES ('x', 1)`},
			{name: "delete", stmt: `DELETE FROM records`},
			{name: "create table", stmt: `CREATE TABLE x (a)`},
			{name: "schema version", stmt: `PRAGMA user_version = 99`},
		} {
			if _, err := d.db.ExecContext(t.Context(), tc.stmt); err == nil || !strings.Contains(err.Error(), "readonly") {
				t.Errorf("mapped %v: %s on a read-only handle: %v, want SQLite's read-only error", mapped, tc.name, err)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the store file changed under read-only handles")
	}
}
