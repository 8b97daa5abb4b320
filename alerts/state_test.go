package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "plcwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// deriveOne compares base with items and returns the single alert.
func deriveOne(t *testing.T, base *snapshots.Snapshot, items ...snapshots.Item) (Alert, string) {
	t.Helper()
	cur := snap(t, true, items...)
	als := Derive(diffing.Compare(base, cur, diffing.Options{}), Input{Now: t0})
	if len(als) != 1 {
		t.Fatalf("alerts %+v, want one", als)
	}
	return als[0], cur.ID
}

func approve(t *testing.T, st store.Store, device string, at time.Time) {
	t.Helper()
	d := strings.Repeat("ab", 32)
	if _, err := st.Append(context.Background(), device, store.TypeApproval, at, store.Approval{Snapshot: d[:16], Digest: d, By: "eve", OSUser: "eve", Ticket: "CHG-1", At: at, NewBaseline: d}); err != nil {
		t.Fatal(err)
	}
}

func TestRaiseDedupe(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	base := snap(t, true, block("OB1", 1, nil), mk("cpu/mode", snapshots.KindMode, snapshots.String("RUN"), nil))
	changed, snapA := deriveOne(t, base, block("OB1", 2, nil), mk("cpu/mode", snapshots.KindMode, snapshots.String("RUN"), nil))

	// First time: raised.
	raised, repeated, recs, err := Raise(ctx, st, []Alert{changed}, snapA, t0)
	if err != nil || len(raised) != 1 || len(repeated) != 0 || len(recs) != 1 || recs[0].Type != store.TypeAlert {
		t.Fatalf("first raise: raised %d repeated %d recs %+v err %v", len(raised), len(repeated), recs, err)
	}
	first := raised[0]
	if first.Count != 1 || first.Status != StatusOpen || !first.FirstSeen.Equal(t0) {
		t.Errorf("raised alert state: count %d status %q first seen %v", first.Count, first.Status, first.FirstSeen)
	}

	// Same change found again an hour later: seen again, count 2.
	t1 := t0.Add(time.Hour)
	raised, repeated, recs, err = Raise(ctx, st, []Alert{changed}, "snapB", t1)
	if err != nil || len(raised) != 0 || len(repeated) != 1 || len(recs) != 1 || recs[0].Type != store.TypeAlertSeen {
		t.Fatalf("second raise: raised %d repeated %d recs %+v err %v", len(raised), len(repeated), recs, err)
	}
	if r := repeated[0]; r.ID != first.ID || r.Count != 2 || !r.LastSeen.Equal(t1) || r.Snapshot != "snapB" {
		t.Errorf("repeated: id %s count %d last seen %v snapshot %s", r.ID, r.Count, r.LastSeen, r.Snapshot)
	}

	// A different change: a new alert.
	other, _ := deriveOne(t, base, block("OB1", 3, nil), mk("cpu/mode", snapshots.KindMode, snapshots.String("RUN"), nil))
	raised, _, _, err = Raise(ctx, st, []Alert{other}, "snapC", t1.Add(time.Hour))
	if err != nil || len(raised) != 1 || raised[0].ID == first.ID {
		t.Fatalf("different change: raised %+v err %v", raised, err)
	}

	list, err := List(ctx, st, Filter{Device: "press-7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != raised[0].ID || list[1].ID != first.ID {
		t.Fatalf("list: %+v, want the newer alert first, then %s", list, first.ID)
	}
	if l := list[1]; l.Count != 2 || !l.FirstSeen.Equal(t0) || !l.LastSeen.Equal(t1) || l.Snapshot != "snapB" || !l.Open() || l.Superseded {
		t.Errorf("rebuilt state of %s: count %d first %v last %v snapshot %s open %v superseded %v", l.ID, l.Count, l.FirstSeen, l.LastSeen, l.Snapshot, l.Open(), l.Superseded)
	}

	// After an approval the same change again is a new alert with a new id.
	approve(t, st, "press-7", t1.Add(2*time.Hour))
	raised, repeated, _, err = Raise(ctx, st, []Alert{changed}, "snapD", t1.Add(3*time.Hour))
	if err != nil || len(raised) != 1 || len(repeated) != 0 {
		t.Fatalf("after approval: raised %d repeated %d err %v", len(raised), len(repeated), err)
	}
	if raised[0].ID == first.ID || raised[0].Fingerprint != first.Fingerprint {
		t.Errorf("after approval: id %s (first %s), fingerprint equal %v", raised[0].ID, first.ID, raised[0].Fingerprint == first.Fingerprint)
	}
	list, err = List(ctx, st, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Alert{}
	for _, a := range list {
		byID[a.ID] = a
	}
	if len(byID) != 3 || !byID[first.ID].Superseded || byID[raised[0].ID].Superseded {
		t.Errorf("after approval: %d alerts, first superseded %v, new superseded %v", len(byID), byID[first.ID].Superseded, byID[raised[0].ID].Superseded)
	}
	// And again: it counts against the new alert.
	_, repeated, _, err = Raise(ctx, st, []Alert{changed}, "snapE", t1.Add(4*time.Hour))
	if err != nil || len(repeated) != 1 || repeated[0].ID != raised[0].ID || repeated[0].Count != 2 {
		t.Fatalf("after approval, again: %+v err %v", repeated, err)
	}
}

// TestRaiseSameBatch: two alerts with one fingerprint in one call are one
// alert seen twice.
func TestRaiseSameBatch(t *testing.T) {
	st := openStore(t)
	base := snap(t, true, block("OB1", 1, nil))
	a, _ := deriveOne(t, base, block("OB1", 2, nil))
	raised, repeated, _, err := Raise(context.Background(), st, []Alert{a, a}, "s", t0)
	if err != nil || len(raised) != 1 || len(repeated) != 1 || repeated[0].Count != 2 {
		t.Fatalf("raised %d repeated %+v err %v", len(raised), repeated, err)
	}
}

func TestAck(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	base := snap(t, true, block("OB1", 1, nil))
	a, _ := deriveOne(t, base, block("OB1", 2, nil))
	b := Event("press-8", CatOverdue, "no complete snapshot for 36 days", "k", t0)
	raised, _, _, err := Raise(ctx, st, []Alert{a, b}, "s", t0)
	if err != nil || len(raised) != 2 {
		t.Fatalf("raise: %+v %v", raised, err)
	}
	id := raised[0].ID
	good := store.Ack{By: "eve", OSUser: "eve", Decision: "investigating", Comment: "called the night shift", At: t0.Add(time.Minute)}
	tests := []struct {
		name    string
		id      string
		ack     func(store.Ack) store.Ack
		wantErr string
	}{
		{"unknown decision", id, func(k store.Ack) store.Ack { k.Decision = "ignore"; return k }, "--decision"},
		{"no person", id, func(k store.Ack) store.Ack { k.By = " "; return k }, "--by"},
		{"no comment", id, func(k store.Ack) store.Ack { k.Comment = ""; return k }, "--comment"},
		{"unknown alert", "A-0000000000", func(k store.Ack) store.Ack { return k }, ErrUnknownAlert.Error()},
		{"typed in lower case without prefix", strings.ToLower(strings.TrimPrefix(id, IDPrefix)), func(k store.Ack) store.Ack { return k }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := Ack(ctx, st, tc.id, tc.ack(good))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != id || got.Open() || got.Status != "acknowledged (investigating)" {
				t.Errorf("acked alert: id %s open %v status %q", got.ID, got.Open(), got.Status)
			}
		})
	}
	if _, _, err := Ack(ctx, st, "A-0000000000", good); !errors.Is(err, ErrUnknownAlert) {
		t.Errorf("unknown alert: %v, want ErrUnknownAlert", err)
	}
	open, err := List(ctx, st, Filter{OpenOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].ID != raised[1].ID {
		t.Errorf("open alerts %+v, want only %s", open, raised[1].ID)
	}
	all, err := List(ctx, st, Filter{Device: "press-7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || len(all[0].Acks) != 1 || all[0].Acks[0].Alert != id || all[0].Acks[0].Decision != "investigating" {
		t.Errorf("press-7 alerts %+v", all)
	}
	// Acknowledged, the same change found again still counts against it
	// (an ack never moves the baseline) and stays acknowledged.
	_, repeated, _, err := Raise(ctx, st, []Alert{a}, "s2", t0.Add(time.Hour))
	if err != nil || len(repeated) != 1 || repeated[0].Open() {
		t.Errorf("after ack: repeated %+v err %v", repeated, err)
	}
}

// rec builds a record for Rebuild tests.
func rec(device string, seq int64, typ string, body any) store.Record {
	b, _ := json.Marshal(body)
	return store.Record{Device: device, Seq: seq, Type: typ, Time: t0.Add(time.Duration(seq) * time.Minute), Body: b}
}

func TestRebuild(t *testing.T) {
	a := Alert{ID: "A-0123456789", Device: "d", Fingerprint: strings.Repeat("0", 64), Category: CatLogic, Severity: High}
	tests := []struct {
		name    string
		recs    []store.Record
		want    int // alerts
		count   int // of the first
		wantErr string
	}{
		{"alert and seen out of order", []store.Record{rec("d", 2, store.TypeAlertSeen, store.AlertSeen{Alert: a.ID}), rec("d", 1, store.TypeAlert, a)}, 1, 2, ""},
		{"seen of another device's alert ignored", []store.Record{rec("d", 1, store.TypeAlert, a), rec("e", 1, store.TypeAlertSeen, store.AlertSeen{Alert: a.ID})}, 1, 1, ""},
		{"ack of an unknown alert ignored", []store.Record{rec("d", 1, store.TypeAlert, a), rec("d", 2, store.TypeAck, store.Ack{Alert: "A-x"})}, 1, 1, ""},
		{"malformed alert body", []store.Record{{Device: "d", Seq: 4, Type: store.TypeAlert, Body: json.RawMessage(`{"id":`)}}, 0, 0, "device d record 4: alert body"},
		{"alert without id", []store.Record{rec("d", 1, store.TypeAlert, Alert{Fingerprint: "f"})}, 0, 0, "without id"},
		{"trailing data", []store.Record{{Device: "d", Seq: 1, Type: store.TypeAck, Body: json.RawMessage(`{} {}`)}}, 0, 0, "trailing data"},
		{"other record types ignored", []store.Record{rec("d", 1, store.TypeRules, []int{1})}, 0, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Rebuild(tc.recs, Filter{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want || (tc.want > 0 && got[0].Count != tc.count) {
				t.Errorf("alerts %+v, want %d with count %d", got, tc.want, tc.count)
			}
		})
	}
}

// FuzzRebuild feeds arbitrary stored bodies to Rebuild: it must return an
// error or consistent state, never panic.
func FuzzRebuild(f *testing.F) {
	a, _ := json.Marshal(Alert{ID: "A-0123456789", Fingerprint: "ff"})
	s, _ := json.Marshal(store.AlertSeen{Alert: "A-0123456789"})
	k, _ := json.Marshal(store.Ack{Alert: "A-0123456789", Decision: "authorized"})
	f.Add(a, s, k, uint8(0))
	f.Add([]byte(`{"id":"A-1","fingerprint":"x","acks":[{}],"count":-5}`), []byte(`{"alert":"A-1"}`), []byte(`null`), uint8(3))
	f.Fuzz(func(t *testing.T, alert, seen, ack []byte, order uint8) {
		types := []string{store.TypeAlert, store.TypeAlertSeen, store.TypeAck, store.TypeApproval}
		bodies := [][]byte{alert, seen, ack, []byte(`{}`)}
		var recs []store.Record
		for i := range 4 {
			j := (i + int(order)) % 4
			recs = append(recs, store.Record{Device: "d", Seq: int64(i + 1), Type: types[j], Time: t0, Body: bodies[j]})
		}
		got, err := Rebuild(recs, Filter{})
		if err != nil {
			return
		}
		for _, a := range got {
			if a.Count < 1 || a.ID == "" || a.Device != "d" {
				t.Fatalf("inconsistent alert %+v", a)
			}
		}
	})
}

func TestFind(t *testing.T) {
	all := []Alert{
		{ID: "A-abc1230000", Device: "p1", Title: "logic changed"},
		{ID: "A-abc1239999", Device: "p1", Title: "mode changed"},
		{ID: "A-ffee000000", Device: "p2", Title: "collection failed"},
		{ID: "A-1111111111", Device: "p1", Title: "one"},
		{ID: "A-1111111111", Device: "p2", Title: "other"},
	}
	tests := []struct {
		name    string
		id      string
		want    string
		wantErr error
		errHas  []string
	}{
		{name: "exact", id: "A-abc1230000", want: "A-abc1230000"},
		{name: "unique prefix without A- in upper case", id: "FFEE", want: "A-ffee000000"},
		{name: "ambiguous prefix lists the candidates", id: "A-abc123", wantErr: ErrAmbiguousAlert, errHas: []string{"A-abc1230000 (p1: logic changed)", "A-abc1239999 (p1: mode changed)"}},
		{name: "one id on two devices", id: "A-1111111111", wantErr: ErrAmbiguousAlert, errHas: []string{"p1: one", "p2: other"}},
		{name: "no match", id: "A-dddd", wantErr: ErrUnknownAlert},
		{name: "too short", id: "A-ab", errHas: []string{"at least 4 hex digits"}},
		{name: "not hex", id: "A-zzzzzz", errHas: []string{"hex digits"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Find(all, tc.id)
			if tc.want != "" {
				if err != nil || got.ID != tc.want {
					t.Fatalf("Find(%q) = %s, %v; want %s", tc.id, got.ID, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Find(%q) = %s, want an error", tc.id, got.ID)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to contain %q", err, s)
				}
			}
		})
	}
}

// TestLifecycle: a resolved alert stays in the chain, is no longer open, and
// the same problem found later raises a new alert; a false positive
// acknowledgement suppresses the exact finding, not a changed one.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	failed := Event("press-7", CatCollectionFailed, "dial tcp 127.0.0.1:102: connection refused", "connection refused", t0)
	raised, _, _, err := Raise(ctx, st, []Alert{failed}, "", t0)
	if err != nil || len(raised) != 1 {
		t.Fatalf("raise: %v %v", raised, err)
	}
	done, recs, err := Resolve(ctx, st, "press-7", func(a Alert) bool { return a.Category == CatCollectionFailed }, "snap1", "a complete read succeeded", t0.Add(time.Hour))
	if err != nil || len(done) != 1 || len(recs) != 1 || recs[0].Type != store.TypeAlertResolved {
		t.Fatalf("resolve: %v %v %v", done, recs, err)
	}
	// Resolving again finds nothing current.
	if again, _, err := Resolve(ctx, st, "press-7", func(Alert) bool { return true }, "snap2", "x", t0.Add(2*time.Hour)); err != nil || len(again) != 0 {
		t.Fatalf("second resolve: %v %v", again, err)
	}
	all, err := List(ctx, st, Filter{Device: "press-7"})
	if err != nil || len(all) != 1 {
		t.Fatalf("list: %v %v", all, err)
	}
	if a := all[0]; a.Open() || a.Status != StatusResolved || a.Resolved == nil || a.Resolved.Snapshot != "snap1" || !a.Resolved.At.Equal(t0.Add(time.Hour)) {
		t.Errorf("resolved alert: open %v status %q resolved %+v", a.Open(), a.Status, a.Resolved)
	}
	raised2, repeated, _, err := Raise(ctx, st, []Alert{failed}, "", t0.Add(3*time.Hour))
	if err != nil || len(raised2) != 1 || len(repeated) != 0 || raised2[0].ID == raised[0].ID {
		t.Fatalf("the same failure after resolution: raised %v repeated %v err %v, want a new alert", raised2, repeated, err)
	}

	base := snap(t, true, block("OB1", 1, nil))
	fp, _ := deriveOne(t, base, block("OB1", 2, nil))
	r3, _, _, err := Raise(ctx, st, []Alert{fp}, "s", t0)
	if err != nil || len(r3) != 1 {
		t.Fatal(err)
	}
	if _, _, err := Ack(ctx, st, r3[0].ID, store.Ack{By: "eve", Decision: DecisionFalsePositive, Comment: "simulator artefact", At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	_, rep, _, err := Raise(ctx, st, []Alert{fp}, "s2", t0.Add(time.Hour))
	if err != nil || len(rep) != 1 || !rep[0].Suppressed || rep[0].Count != 2 {
		t.Fatalf("the exact finding again: %+v %v, want one suppressed repeat counted", rep, err)
	}
	other, _ := deriveOne(t, base, block("OB1", 3, nil))
	r4, rep4, _, err := Raise(ctx, st, []Alert{other}, "s3", t0.Add(2*time.Hour))
	if err != nil || len(r4) != 1 || len(rep4) != 0 || r4[0].Suppressed {
		t.Fatalf("a changed finding: raised %+v repeated %+v %v, want a new unsuppressed alert", r4, rep4, err)
	}
}
