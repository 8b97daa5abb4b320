package alerts

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// TestListMatchesRebuild drives a history of raises, repeats, acks,
// resolutions and approvals on two devices through the store, and checks
// after every step that List (summaries, newest approval) gives what Rebuild
// gives from every record.
func TestListMatchesRebuild(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := func(dev, key string) Alert {
		return Event(dev, CatCollectionFailed, "refused "+key, key, t0)
	}
	at := t0
	step := func(name string, fn func() error) {
		t.Helper()
		at = at.Add(time.Minute)
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, f := range []Filter{{}, {Device: "a"}, {Device: "b"}, {OpenOnly: true}, {Device: "a", OpenOnly: true}} {
			got, err := List(ctx, st, f)
			if err != nil {
				t.Fatalf("%s: List(%+v): %v", name, f, err)
			}
			var all []store.Record
			for _, typ := range []string{store.TypeAlert, store.TypeAlertSeen, store.TypeAck, store.TypeAlertResolved, store.TypeApproval} {
				rs, err := st.RecordsOfType(ctx, f.Device, typ)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, rs...)
			}
			want, err := Rebuild(all, f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("after %s, List(%+v) =\n%+v\nRebuild =\n%+v", name, f, got, want)
			}
		}
	}
	raise := func(dev, key, snap string) func() error {
		return func() error {
			_, _, _, err := Raise(ctx, st, []Alert{ev(dev, key)}, snap, at)
			return err
		}
	}
	step("raise a/x", raise("a", "x", "s1"))
	step("raise b/x", raise("b", "x", "s1"))
	for i := range 5 {
		step(fmt.Sprintf("repeat a/x %d", i), raise("a", "x", fmt.Sprintf("s%d", i+2)))
	}
	step("repeat a/x without a snapshot", raise("a", "x", ""))
	step("raise a/y", raise("a", "y", "s9"))
	step("ack a/y", func() error {
		as, err := List(ctx, st, Filter{Device: "a"})
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Reasons[0] == "refused y" {
				_, _, err = Ack(ctx, st, a.ID, store.Ack{By: "eve", Decision: DecisionFalsePositive, Comment: "c", At: at})
			}
		}
		return err
	})
	step("repeat a/y", raise("a", "y", "s10"))
	step("approve a", func() error { approve(t, st, "a", at); return nil })
	step("raise a/x after the approval", raise("a", "x", "s11"))
	step("repeat a/x after the approval", raise("a", "x", "s12"))
	step("resolve b", func() error {
		_, _, err := Resolve(ctx, st, "b", func(Alert) bool { return true }, "s13", "read", at)
		return err
	})
	step("raise b/x again", raise("b", "x", "s14"))
	step("approve b twice", func() error { approve(t, st, "b", at); approve(t, st, "b", at); return nil })
}

// BenchmarkHotPath measures what a daemon window costs the store per device
// (List of its alerts, the snapshot count for the forced-full-read
// decision, the open change, the newest complete snapshot's record) at 10
// and 3,650 snapshots of history, each followed by a repeated alert, and
// for comparison the rebuild from every record that List replaced.
func BenchmarkHotPath(b *testing.B) {
	for _, history := range []int{10, 3650} {
		path := b.TempDir() + "/plcwatch.db"
		sdb, err := store.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		at := t0
		failed := Event("plc", CatCollectionFailed, "refused", "refused", at)
		for i := range history {
			at = at.Add(24 * time.Hour)
			s := snapN(b, at, i)
			if _, err := sdb.PutSnapshot(ctx, s, nil); err != nil {
				b.Fatal(err)
			}
			if _, _, _, err := Raise(ctx, sdb, []Alert{failed}, s.ID, at); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("indexed/history=%d", history), func(b *testing.B) {
			for b.Loop() {
				if _, err := List(ctx, sdb, Filter{Device: "plc"}); err != nil {
					b.Fatal(err)
				}
				if _, err := sdb.CountOfType(ctx, "plc", store.TypeSnapshot); err != nil {
					b.Fatal(err)
				}
				if _, err := sdb.Newest(ctx, "plc", store.TypeChangeOpen, store.TypeChangeClose); err != nil && !errors.Is(err, store.ErrNotFound) {
					b.Fatal(err)
				}
				if _, _, err := sdb.LatestRef(ctx, "plc", true); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("rebuild/history=%d", history), func(b *testing.B) {
			for b.Loop() {
				var all []store.Record
				for _, typ := range []string{store.TypeAlert, store.TypeAlertSeen, store.TypeAck, store.TypeAlertResolved, store.TypeApproval} {
					rs, err := sdb.RecordsOfType(ctx, "plc", typ)
					if err != nil {
						b.Fatal(err)
					}
					all = append(all, rs...)
				}
				if _, err := Rebuild(all, Filter{Device: "plc"}); err != nil {
					b.Fatal(err)
				}
				if _, err := sdb.Records(ctx, "plc"); err != nil {
					b.Fatal(err)
				}
			}
		})
		sdb.Close()
	}
}

// snapN is a small finalized snapshot of "plc" whose one item moves with i.
func snapN(b *testing.B, at time.Time, i int) *snapshots.Snapshot {
	s := &snapshots.Snapshot{Device: "plc", Protocol: "s7", TakenAt: at, Status: snapshots.Status{Complete: true},
		Items: []snapshots.Item{{Path: "blocks/OB1", Kind: snapshots.KindLogic, Value: snapshots.Int(int64(i), "")}}}
	if err := s.Finalize(); err != nil {
		b.Fatal(err)
	}
	return s
}
