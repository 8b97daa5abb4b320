package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

var writeFixture = flag.Bool("write-fixture", false, "rewrite testdata/schema3.sqlite, the store written by schema version 3 (full manifests) that the migration test opens; only with the code of schema version 3")

// schema3Fixture is a store written by the code of schema version 3, where
// every snapshot row holds its full list of item keys.
const schema3Fixture = "testdata/schema3.sqlite"

// writeSchema3Store writes the migration fixture's content to a new store at
// path: three devices with several snapshots each (one with no items, one
// with an item list that is null, one incomplete, one identical to its
// parent), approvals, alerts, alert_seen records, an ack and a resolved
// alert. It returns the snapshots written, in order.
func writeSchema3Store(t *testing.T, path string) []*snapshots.Snapshot {
	t.Helper()
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	rules := json.RawMessage(`[{"match":"info/*","kind":"info"}]`)
	var out []*snapshots.Snapshot
	put := func(s *snapshots.Snapshot) {
		t.Helper()
		if _, err := db.PutSnapshot(ctx, s, rules); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	rec := func(dev, typ string, at time.Time, body any) {
		t.Helper()
		if _, err := db.Append(ctx, dev, typ, at, body); err != nil {
			t.Fatal(err)
		}
	}
	approve := func(s *snapshots.Snapshot, old string) {
		t.Helper()
		rec(s.Device, store.TypeApproval, s.TakenAt.Add(time.Minute), store.Approval{Snapshot: s.ID, Digest: s.Digest, By: "ann", OSUser: "ann", Ticket: "CHG-1",
			At: s.TakenAt.Add(time.Minute), OldBaseline: old, NewBaseline: s.Digest})
	}
	for d, dev := range []string{"press-1", "kiln-2", "line-3"} {
		g := storetest.NewGenerator(dev, 40+10*d, storetest.T0.Add(time.Duration(d)*time.Hour))
		first := g.Next(0)
		put(first)
		approve(first, "")
		for i := range 5 {
			s := g.Next(1 + i%3)
			put(s)
			if i == 1 {
				at := s.TakenAt.Add(2 * time.Minute)
				rec(dev, store.TypeAlert, at, map[string]string{"id": dev + "-A1", "severity": "high"})
				rec(dev, store.TypeAlertSeen, at.Add(time.Minute), store.AlertSeen{Alert: dev + "-A1", Snapshot: s.ID, At: at.Add(time.Minute)})
				rec(dev, store.TypeAck, at.Add(2*time.Minute), store.Ack{Alert: dev + "-A1", By: "bob", OSUser: "bob", Decision: "expected", Comment: "planned", At: at.Add(2 * time.Minute)})
			}
			if i == 3 {
				approve(s, first.Digest)
			}
		}
		put(g.Next(0)) // the same items as its parent, a new header
	}
	// Odd shapes: an empty item list, a null item list, an incomplete read,
	// and a snapshot whose content another device already stored.
	at := storetest.T0.Add(48 * time.Hour)
	for i, items := range [][]snapshots.Item{{}, nil} {
		s := &snapshots.Snapshot{Device: "line-3", Protocol: "opcua", Endpoint: "opc.tcp://127.0.0.1:4840", TakenAt: at.Add(time.Duration(i) * time.Hour),
			Status: snapshots.Status{Complete: true}, Items: items}
		if err := s.Finalize(); err != nil {
			t.Fatal(err)
		}
		put(s)
	}
	g := storetest.NewGenerator("line-3", 30, at.Add(3*time.Hour))
	s := g.Next(0)
	s.Status = snapshots.Status{Complete: false, Reasons: []string{"blocks/DB00004: read failed: timeout"}}
	s.Items = s.Items[:len(s.Items)-1]
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	put(s)
	rec("line-3", store.TypeAlert, s.TakenAt.Add(time.Minute), map[string]string{"id": "line-3-A2", "severity": "medium"})
	rec("line-3", store.TypeAlertResolved, s.TakenAt.Add(2*time.Minute), store.AlertResolved{Alert: "line-3-A2", Snapshot: s.ID, Reason: "complete read", At: s.TakenAt.Add(2 * time.Minute)})
	put(g.Next(2))
	return out
}

// TestWriteSchema3Fixture rewrites the fixture when asked (-write-fixture);
// the committed file was written by the code of schema version 3.
func TestWriteSchema3Fixture(t *testing.T) {
	if !*writeFixture {
		t.Skip("run with -write-fixture to rewrite " + schema3Fixture)
	}
	if store.SchemaVersion != 3 {
		t.Fatalf("the fixture is the store schema version 3 wrote; this build writes version %d", store.SchemaVersion)
	}
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	writeSchema3Store(t, path)
	// Closing the last handle checkpoints the WAL into the main file.
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatalf("%s-wal is still there after closing", path)
	}
	copyFile(t, path, schema3Fixture)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(fmt.Errorf("writing %s: %w", to, err))
	}
}

// TestMigrateSchema3 opens a copy of a store written by the schema-3 code
// (full manifests): read-only it reads as it is; opened for writing it
// migrates to manifest deltas, every snapshot reads back byte for byte,
// verify is clean, and new snapshots (deltas against the old full lists)
// append and read back.
func TestMigrateSchema3(t *testing.T) {
	ctx := t.Context()
	want := writeSchema3Store(t, filepath.Join(t.TempDir(), "expected.db"))
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	copyFile(t, schema3Fixture, path)
	readBack := func(db *store.DB, what string, snaps []*snapshots.Snapshot) {
		t.Helper()
		for _, w := range snaps {
			got, err := db.Snapshot(ctx, w.Digest)
			if err != nil {
				t.Fatalf("%s: snapshot %s of %s: %v", what, w.ID, w.Device, err)
			}
			enc, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			wantEnc, err := w.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != w.Digest || !bytes.Equal(enc, wantEnc) {
				t.Fatalf("%s: snapshot %s of %s reads back as %s, other bytes", what, w.ID, w.Device, got.Digest)
			}
		}
	}
	old := open(t, path, store.ReadOnly())
	readBack(old, "read-only at schema 3", want)
	if fs, err := old.Verify(ctx, nil, nil); err != nil || len(fs) != 0 {
		t.Fatalf("Verify read-only at schema 3 = %+v, %v; want clean", fs, err)
	}
	heads, err := old.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	db := open(t, path)
	readBack(db, "migrated", want)
	if fs, err := db.Verify(ctx, heads, nil); err != nil || len(fs) != 0 {
		t.Fatalf("Verify after migration = %+v, %v; want clean", fs, err)
	}
	for _, dev := range []string{"press-1", "line-3"} {
		if _, err := db.Baseline(ctx, dev); err != nil && !errors.Is(err, store.ErrNoBaseline) {
			t.Fatalf("Baseline(%s) after migration: %v", dev, err)
		}
	}
	// New snapshots continue two old chains (deltas against old full lists)
	// and start a new one.
	var added []*snapshots.Snapshot
	for _, dev := range []string{"press-1", "kiln-2", "new-4"} {
		g := storetest.NewGenerator(dev, 40, storetest.T0.Add(30*24*time.Hour))
		for i := range 3 {
			s := g.Next(i)
			if _, err := db.PutSnapshot(ctx, s, nil); err != nil {
				t.Fatalf("PutSnapshot(%s) after migration: %v", dev, err)
			}
			added = append(added, s)
		}
	}
	readBack(db, "after appending", append(want, added...))
	fs, err := db.Verify(ctx, heads, nil)
	if err != nil || len(fs) != 0 {
		t.Fatalf("Verify after appending = %+v, %v; want clean", fs, err)
	}
	var deltas int
	if err := raw(t, path).QueryRow(`SELECT count(*) FROM snapshots WHERE base IS NOT NULL`).Scan(&deltas); err != nil || deltas == 0 {
		t.Fatalf("%d manifest deltas after appending (%v), want some", deltas, err)
	}
}
