// Package storetest is the conformance suite every store.Store passes: hash
// chains, snapshot round trips, content addressing, references, baselines,
// verification of an untampered store and concurrent writers.
package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// T0 is the time the suite's data starts at.
var T0 = time.Date(2025, 6, 2, 7, 30, 0, 123456789, time.UTC)

type config struct {
	second func(t *testing.T, s store.Store) store.Store
}

// Option tunes Run.
type Option func(*config)

// WithSecondHandle gives the suite a way to open a second, independent
// handle on the same storage as s (another *DB on the same file), so the
// concurrency tests also race writers that do not share memory, as a daemon
// and a CLI command do.
func WithSecondHandle(open func(t *testing.T, s store.Store) store.Store) Option {
	return func(c *config) { c.second = open }
}

// Run runs the suite. newStore returns a new, empty store and arranges for
// it to be closed when the test ends.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	t.Run("append_chain", func(t *testing.T) { testAppendChain(t, newStore(t)) })
	t.Run("append_refused", func(t *testing.T) { testAppendRefused(t, newStore(t)) })
	t.Run("snapshot_round_trip", func(t *testing.T) { testSnapshotRoundTrip(t, newStore(t)) })
	t.Run("put_snapshot_refused", func(t *testing.T) { testPutRefused(t, newStore(t)) })
	t.Run("rules_records", func(t *testing.T) { testRules(t, newStore(t)) })
	t.Run("content_addressing", func(t *testing.T) { testContentAddressing(t, newStore(t)) })
	t.Run("resolve", func(t *testing.T) { testResolve(t, newStore(t)) })
	t.Run("ambiguous_prefix", func(t *testing.T) { testAmbiguous(t, newStore(t)) })
	t.Run("baseline", func(t *testing.T) { testBaseline(t, newStore(t)) })
	t.Run("verify_clean", func(t *testing.T) { testVerifyClean(t, newStore(t)) })
	t.Run("concurrent", func(t *testing.T) {
		s := newStore(t)
		handles := []store.Store{s}
		if c.second != nil {
			handles = append(handles, c.second(t, s))
		}
		testConcurrent(t, handles)
	})
}

// Snapshot is a small finalized snapshot for tests.
func Snapshot(t testing.TB, device string, at time.Time, label string, complete bool, items int) *snapshots.Snapshot {
	t.Helper()
	g := NewGenerator(device, items, at)
	g.Label = label
	s := g.Next(0)
	s.Status = snapshots.Status{Complete: complete}
	if !complete {
		s.Status.Reasons = []string{"SZL 0x0111: request timed out"}
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPut(t *testing.T, s store.Store, snap *snapshots.Snapshot) []store.Record {
	t.Helper()
	recs, err := s.PutSnapshot(t.Context(), snap, nil)
	if err != nil {
		t.Fatalf("PutSnapshot(%s): %v", snap.ID, err)
	}
	return recs
}

func mustAppend(t *testing.T, s store.Store, device, typ string, at time.Time, body any) store.Record {
	t.Helper()
	r, err := s.Append(t.Context(), device, typ, at, body)
	if err != nil {
		t.Fatalf("Append(%s, %s): %v", device, typ, err)
	}
	return r
}

// checkChain checks that recs form one intact chain from seq 1.
func checkChain(t *testing.T, recs []store.Record) {
	t.Helper()
	prev := store.GenesisPrev
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d of %s has seq %d, want %d", i, r.Device, r.Seq, i+1)
		}
		if r.Prev != prev {
			t.Fatalf("record %s #%d: prev %s, want %s (forked or broken chain)", r.Device, r.Seq, r.Prev, prev)
		}
		if d := r.ComputeDigest(); d != r.Digest {
			t.Fatalf("record %s #%d: digest %s, content hashes to %s", r.Device, r.Seq, r.Digest, d)
		}
		prev = r.Digest
	}
}

func testAppendChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	loc := time.FixedZone("CEST", 2*3600)
	var want = map[string][]store.Record{}
	types := []string{store.TypeAlert, store.TypeAlertSeen, store.TypeAck, store.TypeChangeOpen, store.TypeChangeClose, store.TypeRules}
	for i := 0; i < 12; i++ {
		dev := []string{"press-1", "kiln.2"}[i%2]
		at := T0.In(loc).Add(time.Duration(i) * time.Second)
		body := map[string]any{"n": i, "text": "<tank & valve>"}
		r := mustAppend(t, s, dev, types[i/2], at, body) // each device gets each type once
		if !r.Time.Equal(at) || r.Time.Location() != time.UTC {
			t.Errorf("record time %v, want %v in UTC", r.Time, at)
		}
		var got map[string]any
		if err := json.Unmarshal(r.Body, &got); err != nil || got["text"] != "<tank & valve>" {
			t.Errorf("record body %s does not hold what was appended (%v)", r.Body, err)
		}
		want[dev] = append(want[dev], r)
	}
	for dev, w := range want {
		checkChain(t, w)
		got, err := s.Records(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("Records(%s) differ from what Append returned:\n got %+v\nwant %+v", dev, got, w)
		}
	}
	all, err := s.Records(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if wantAll := append(append([]store.Record{}, want["kiln.2"]...), want["press-1"]...); !reflect.DeepEqual(all, wantAll) {
		t.Errorf("Records(\"\") = %d records, want kiln.2's then press-1's (%d)", len(all), len(wantAll))
	}
	acks, err := s.RecordsOfType(ctx, "press-1", store.TypeAck)
	if err != nil {
		t.Fatal(err)
	}
	var wantAcks []store.Record
	for _, r := range want["press-1"] {
		if r.Type == store.TypeAck {
			wantAcks = append(wantAcks, r)
		}
	}
	if len(wantAcks) == 0 || !reflect.DeepEqual(acks, wantAcks) {
		t.Errorf("RecordsOfType(press-1, ack) = %+v, want %+v", acks, wantAcks)
	}
	alerts, err := s.RecordsOfType(ctx, "", store.TypeAlert)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 2 || alerts[0].Device != "kiln.2" || alerts[1].Device != "press-1" {
		t.Errorf("RecordsOfType(\"\", alert) = %+v, want one per device, kiln.2 first", alerts)
	}
	devs, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(devs, []string{"kiln.2", "press-1"}) {
		t.Errorf("Devices = %v", devs)
	}
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wantHeads []store.Head
	for _, dev := range []string{"kiln.2", "press-1"} {
		last := want[dev][len(want[dev])-1]
		wantHeads = append(wantHeads, store.Head{Device: dev, Seq: last.Seq, Digest: last.Digest})
	}
	if !reflect.DeepEqual(heads, wantHeads) {
		t.Errorf("Heads = %+v, want %+v", heads, wantHeads)
	}
}

func testAppendRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustAppend(t, s, "plc", store.TypeAlert, T0, map[string]string{"id": "a1"})
	tests := []struct {
		name   string
		device string
		typ    string
		at     time.Time
		body   any
	}{
		{name: "empty device", device: "", typ: store.TypeAlert, at: T0, body: 1},
		{name: "device with @", device: "plc@latest", typ: store.TypeAlert, at: T0, body: 1},
		{name: "device with newline", device: "plc\nx", typ: store.TypeAlert, at: T0, body: 1},
		{name: "unknown type", device: "plc", typ: "note", at: T0, body: 1},
		{name: "snapshot type", device: "plc", typ: store.TypeSnapshot, at: T0, body: store.SnapshotRef{}},
		{name: "zero time", device: "plc", typ: store.TypeAck, at: time.Time{}, body: 1},
		{name: "body not JSON-able", device: "plc", typ: store.TypeAck, at: T0, body: make(chan int)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := s.Append(ctx, tc.device, tc.typ, tc.at, tc.body); err == nil {
				t.Errorf("Append accepted it: %+v", r)
			}
		})
	}
	recs, err := s.Records(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Digest != first.Digest {
		t.Errorf("refused appends left records behind: %+v", recs)
	}
}

func roundTrip(t *testing.T, s store.Store, want *snapshots.Snapshot, refs ...string) {
	t.Helper()
	wantEnc, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		got, err := s.Snapshot(t.Context(), ref)
		if err != nil {
			t.Fatalf("Snapshot(%q): %v", ref, err)
		}
		gotEnc, err := got.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != want.Digest || got.ID != want.ID || !bytes.Equal(gotEnc, wantEnc) {
			t.Fatalf("Snapshot(%q) = %s (%d bytes), want %s (%d bytes)", ref, got.ID, len(gotEnc), want.ID, len(wantEnc))
		}
	}
}

func testSnapshotRoundTrip(t *testing.T, s store.Store) {
	odd := Snapshot(t, "odd", T0, "", false, 3)
	odd.Items = append(odd.Items,
		snapshots.Item{Path: "text/comment", Kind: snapshots.KindLogic, Value: snapshots.String("line 1\nline 2 <b>&amp;</b> \u00e9\u2603"),
			Provenance: snapshots.Provenance{Source: snapshots.SourceCarried, From: "0123456789abcdef", Reason: "checksum unchanged"}},
		snapshots.Item{Path: "setpoints/nan", Kind: snapshots.KindSetpoint, Value: snapshots.Float32(float32(0.1), "bar"), Attrs: map[string]string{}},
		snapshots.Item{Path: "zz/not-read", Kind: snapshots.KindSetpoint, Provenance: snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: "timeout"}},
	)
	if err := odd.Finalize(); err != nil {
		t.Fatal(err)
	}
	empty := &snapshots.Snapshot{Device: "empty", Protocol: "opcua", TakenAt: T0, Items: []snapshots.Item{}}
	none := &snapshots.Snapshot{Device: "none", Protocol: "opcua", TakenAt: T0}
	for _, e := range []*snapshots.Snapshot{empty, none} {
		if err := e.Finalize(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		snap *snapshots.Snapshot
	}{
		{name: "1000 items", snap: Snapshot(t, "big", T0, "commissioning", true, 1000)},
		{name: "partial with odd values", snap: odd},
		{name: "empty item list", snap: empty},
		{name: "no item list", snap: none},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := mustPut(t, s, tc.snap)
			if len(recs) != 1 || recs[0].Type != store.TypeSnapshot {
				t.Fatalf("PutSnapshot without rules returned %+v, want one snapshot record", recs)
			}
			var ref store.SnapshotRef
			if err := json.Unmarshal(recs[0].Body, &ref); err != nil {
				t.Fatal(err)
			}
			want := store.SnapshotRef{ID: tc.snap.ID, Digest: tc.snap.Digest, Label: tc.snap.Label, Complete: tc.snap.Status.Complete, RulesDigest: tc.snap.RulesDigest, Manifest: ref.Manifest}
			if len(ref.Manifest) != 64 {
				t.Errorf("snapshot record names manifest %q, want a 64-digit digest", ref.Manifest)
			}
			if ref != want || !recs[0].Time.Equal(tc.snap.TakenAt) {
				t.Errorf("snapshot record %+v at %v, want body %+v at %v", ref, recs[0].Time, want, tc.snap.TakenAt)
			}
			roundTrip(t, s, tc.snap, tc.snap.ID, tc.snap.Digest, tc.snap.ID[:store.MinPrefix], strings.ToUpper(tc.snap.ID), tc.snap.Digest[:40])
		})
	}
	if _, err := s.Snapshot(t.Context(), "00000000000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Snapshot(unknown id) = %v, want ErrNotFound", err)
	}
	if _, err := s.Snapshot(t.Context(), "abc"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Snapshot(\"abc\") = %v, want an error about the reference", err)
	}
}

func testPutRefused(t *testing.T, s store.Store) {
	unfinalized := &snapshots.Snapshot{Device: "plc", TakenAt: T0}
	changed := Snapshot(t, "plc", T0, "", true, 5)
	changed.Items[2].Value = snapshots.Int(42, "")
	tests := []struct {
		name string
		snap *snapshots.Snapshot
	}{
		{name: "nil", snap: nil},
		{name: "not finalized", snap: unfinalized},
		{name: "changed after finalize", snap: changed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if recs, err := s.PutSnapshot(t.Context(), tc.snap, nil); err == nil {
				t.Errorf("PutSnapshot accepted it: %+v", recs)
			}
		})
	}
	if recs, err := s.Records(t.Context(), ""); err != nil || len(recs) != 0 {
		t.Errorf("refused snapshots left records: %+v, %v", recs, err)
	}
	if _, err := s.Latest(t.Context(), "plc", false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Latest after refused puts = %v, want ErrNotFound", err)
	}
}

func testRules(t *testing.T, s store.Store) {
	g := NewGenerator("plc", 5, T0)
	tests := []struct {
		name      string
		rules     json.RawMessage
		wantTypes []string
	}{
		{name: "first rules", rules: json.RawMessage(`[{"match":"info/*","kind":"info"}]`), wantTypes: []string{store.TypeRules, store.TypeSnapshot}},
		{name: "same rules, other spacing", rules: json.RawMessage(`[ {"match": "info/*", "kind": "info"} ]`), wantTypes: []string{store.TypeSnapshot}},
		{name: "no rules given", rules: nil, wantTypes: []string{store.TypeSnapshot}},
		{name: "changed rules", rules: json.RawMessage(`[{"match":"info/*","kind":"ignore"}]`), wantTypes: []string{store.TypeRules, store.TypeSnapshot}},
		{name: "back to the first", rules: json.RawMessage(`[{"match":"info/*","kind":"info"}]`), wantTypes: []string{store.TypeRules, store.TypeSnapshot}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := s.PutSnapshot(t.Context(), g.Next(1), tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, r := range recs {
				types = append(types, r.Type)
			}
			if !reflect.DeepEqual(types, tc.wantTypes) {
				t.Fatalf("PutSnapshot appended %v, want %v", types, tc.wantTypes)
			}
			if recs[0].Type == store.TypeRules {
				var a, b bytes.Buffer
				json.Compact(&a, recs[0].Body)
				json.Compact(&b, tc.rules)
				if a.String() != b.String() {
					t.Errorf("rules record body %s, want %s", recs[0].Body, tc.rules)
				}
			}
		})
	}
	if _, err := s.PutSnapshot(t.Context(), g.Next(1), json.RawMessage(`{"broken`)); err == nil {
		t.Error("PutSnapshot accepted rules that are not JSON")
	}
	recs, err := s.Records(t.Context(), "plc")
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, recs)
}

func testContentAddressing(t *testing.T, s store.Store) {
	g := NewGenerator("plc", 200, T0)
	first := g.Next(0)
	second := g.Next(3)
	third := g.Next(0)
	for _, snap := range []*snapshots.Snapshot{first, second, third, first} {
		mustPut(t, s, snap)
	}
	for _, snap := range []*snapshots.Snapshot{first, second, third} {
		roundTrip(t, s, snap, snap.ID)
	}
	refs, err := s.RecordsOfType(t.Context(), "plc", store.TypeSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 4 {
		t.Fatalf("%d snapshot records, want 4 (the first snapshot was stored twice)", len(refs))
	}
	latest, err := s.Latest(t.Context(), "plc", false)
	if err != nil || latest.Digest != first.Digest {
		t.Errorf("Latest after re-storing the first snapshot = %v, %v; want %s", latest, err, first.ID)
	}
	diff := 0
	for i := range first.Items {
		if first.Items[i].Hash != second.Items[i].Hash {
			diff++
		}
	}
	if diff != 3 {
		t.Errorf("generator changed %d items, want 3", diff)
	}
}

func testResolve(t *testing.T, s store.Store) {
	ctx := t.Context()
	s1 := Snapshot(t, "press", T0, "commissioning", true, 20)
	s2 := Snapshot(t, "press", T0.Add(time.Hour), "", false, 20)
	s3 := Snapshot(t, "press", T0.Add(2*time.Hour), "commissioning", true, 20)
	s4 := Snapshot(t, "press", T0.Add(3*time.Hour), "", false, 20)
	o1 := Snapshot(t, "other", T0.Add(4*time.Hour), "commissioning", true, 20)
	for _, snap := range []*snapshots.Snapshot{s1, s2} {
		mustPut(t, s, snap)
	}
	mustAppend(t, s, "press", store.TypeApproval, T0.Add(90*time.Minute), store.Approval{Snapshot: s1.ID, Digest: s1.Digest, By: "jdoe", OSUser: "jdoe", Ticket: "CHG-1", At: T0.Add(90 * time.Minute), NewBaseline: s1.Digest})
	for _, snap := range []*snapshots.Snapshot{s3, s4, o1} {
		mustPut(t, s, snap)
	}
	tests := []struct {
		name    string
		ref     string
		want    *snapshots.Snapshot
		wantErr error // nil with want nil: any error
	}{
		{name: "id", ref: s2.ID, want: s2},
		{name: "prefix", ref: s3.ID[:7], want: s3},
		{name: "digest", ref: s4.Digest, want: s4},
		{name: "upper-case id", ref: strings.ToUpper(s1.ID), want: s1},
		{name: "latest is partial", ref: "press@latest", want: s4},
		{name: "baseline", ref: "press@baseline", want: s1},
		{name: "newest with label", ref: "press@commissioning", want: s3},
		{name: "label of other device", ref: "other@commissioning", want: o1},
		{name: "unknown label", ref: "press@acceptance", wantErr: store.ErrNotFound},
		{name: "unknown device latest", ref: "nobody@latest", wantErr: store.ErrNotFound},
		{name: "no baseline", ref: "other@baseline", wantErr: store.ErrNoBaseline},
		{name: "unknown id", ref: "fedcba9876543210", wantErr: store.ErrNotFound},
		{name: "prefix too short", ref: s1.ID[:5]},
		{name: "not hex", ref: "press-1"},
		{name: "nothing after @", ref: "press@"},
		{name: "no device", ref: "@latest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Resolve(ctx, tc.ref)
			if tc.want == nil {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("Resolve(%q) = %v, %v; want error %v", tc.ref, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tc.ref, err)
			}
			if got.Digest != tc.want.Digest {
				t.Fatalf("Resolve(%q) = %s, want %s", tc.ref, got.ID, tc.want.ID)
			}
		})
	}
	latest, err := s.Latest(ctx, "press", true)
	if err != nil || latest.Digest != s3.Digest {
		t.Errorf("Latest(press, complete only) = %v, %v; want %s", latest, err, s3.ID)
	}
	if _, err := s.Latest(ctx, "nobody", true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Latest(nobody) = %v, want ErrNotFound", err)
	}
}

func testAmbiguous(t *testing.T, s store.Store) {
	// Find two snapshots whose ids share their first MinPrefix hex digits.
	seen := map[string]*snapshots.Snapshot{}
	var a, b *snapshots.Snapshot
	base := &snapshots.Snapshot{Device: "amb", Protocol: "s7", Status: snapshots.Status{Complete: true}}
	for i := 0; i < 400000 && a == nil; i++ {
		snap := *base
		snap.TakenAt = T0.Add(time.Duration(i) * time.Second)
		if err := snap.Finalize(); err != nil {
			t.Fatal(err)
		}
		p := snap.ID[:store.MinPrefix]
		if prev, ok := seen[p]; ok {
			a, b = prev, &snap
		}
		seen[p] = &snap
	}
	if a == nil {
		t.Fatal("found no two snapshot ids sharing a prefix")
	}
	mustPut(t, s, a)
	mustPut(t, s, b)
	_, err := s.Resolve(t.Context(), a.ID[:store.MinPrefix])
	if !errors.Is(err, store.ErrAmbiguous) || !strings.Contains(err.Error(), a.ID) || !strings.Contains(err.Error(), b.ID) {
		t.Errorf("Resolve(shared prefix) = %v, want ErrAmbiguous naming %s and %s", err, a.ID, b.ID)
	}
	roundTrip(t, s, a, a.ID)
	roundTrip(t, s, b, b.ID)
}

func testBaseline(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.Baseline(ctx, "plc"); !errors.Is(err, store.ErrNoBaseline) {
		t.Fatalf("Baseline before any approval = %v, want ErrNoBaseline", err)
	}
	g := NewGenerator("plc", 10, T0)
	s1, s2 := g.Next(0), g.Next(2)
	mustPut(t, s, s1)
	mustPut(t, s, s2)
	a1 := store.Approval{Snapshot: s1.ID, Digest: s1.Digest, By: "Ann Operator", OSUser: "ann", Ticket: "CHG-100", At: T0.Add(time.Hour), NewBaseline: s1.Digest}
	a2 := store.Approval{Snapshot: s2.ID, Digest: s2.Digest, By: "Bob Engineer", OSUser: "bob", Ticket: "CHG-101", Comment: "new recipe", At: T0.Add(2 * time.Hour), OldBaseline: s1.Digest, NewBaseline: s2.Digest}
	other := store.Approval{Snapshot: "ffffffffffffffff", Digest: strings.Repeat("f", 64), By: "x", At: T0.Add(3 * time.Hour), NewBaseline: strings.Repeat("f", 64)}
	steps := []struct {
		name   string
		device string
		body   store.Approval
		want   store.Approval
		ref    *snapshots.Snapshot
	}{
		{name: "first approval", device: "plc", body: a1, want: a1, ref: s1},
		{name: "baseline moves", device: "plc", body: a2, want: a2, ref: s2},
		{name: "other device does not interfere", device: "kiln", body: other, want: a2, ref: s2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			mustAppend(t, s, st.device, store.TypeApproval, st.body.At, st.body)
			mustAppend(t, s, "plc", store.TypeAck, st.body.At.Add(time.Minute), store.Ack{Alert: "a", Decision: "expected", At: st.body.At})
			got, err := s.Baseline(ctx, "plc")
			if err != nil {
				t.Fatal(err)
			}
			if !got.At.Equal(st.want.At) {
				t.Fatalf("Baseline at %v, want %v", got.At, st.want.At)
			}
			got.At = st.want.At
			if !reflect.DeepEqual(*got, st.want) {
				t.Fatalf("Baseline = %+v, want %+v", *got, st.want)
			}
			snap, err := s.Resolve(ctx, "plc@baseline")
			if err != nil || snap.Digest != st.ref.Digest {
				t.Fatalf("Resolve(plc@baseline) = %v, %v; want %s", snap, err, st.ref.ID)
			}
		})
	}
}

func testVerifyClean(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := NewGenerator("plc", 50, T0)
	var heads []store.Head
	for i := 0; i < 5; i++ {
		recs, err := s.PutSnapshot(ctx, g.Next(2), json.RawMessage(fmt.Sprintf(`{"v":%d}`, i/2)))
		if err != nil {
			t.Fatal(err)
		}
		last := recs[len(recs)-1]
		heads = append(heads, store.Head{Device: last.Device, Seq: last.Seq, Digest: last.Digest})
		mustAppend(t, s, "other", store.TypeAlert, T0.Add(time.Duration(i)*time.Minute), map[string]int{"i": i})
	}
	current, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, h := range current {
		digests = append(digests, h.Digest)
	}
	fs, err := s.Verify(ctx, append(heads, current...), digests)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Fatalf("Verify of an untampered store found %+v", fs)
	}
	beyond := store.Head{Device: "plc", Seq: current[1].Seq + 1, Digest: strings.Repeat("a", 64)}
	wrong := store.Head{Device: "plc", Seq: 2, Digest: strings.Repeat("b", 64)}
	gone := store.Head{Device: "gone", Seq: 1, Digest: strings.Repeat("c", 64)}
	tests := []struct {
		name  string
		known []store.Head
		extra []string
		want  []string
	}{
		{name: "head beyond the end", known: []store.Head{beyond}, want: []string{store.ProblemHeadMissing}},
		{name: "head with another digest", known: []store.Head{wrong}, want: []string{store.ProblemHeadMismatch}},
		{name: "head of a device with no records", known: []store.Head{gone}, want: []string{store.ProblemHeadMissing}},
		{name: "extra head in no chain", extra: []string{strings.Repeat("d", 64)}, want: []string{store.ProblemHeadMissing}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := s.Verify(ctx, tc.known, tc.extra)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Problem)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Verify found %+v, want problems %v", fs, tc.want)
			}
		})
	}
	if _, err := s.Verify(ctx, nil, []string{"not-a-digest"}); err == nil {
		t.Error("Verify accepted a head that is not a digest")
	}
}

func testConcurrent(t *testing.T, handles []store.Store) {
	ctx := t.Context()
	const workers, perWorker = 6, 15
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*2+4)
	for w := 0; w < workers; w++ {
		h := handles[w%len(handles)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < perWorker; i++ {
				at := T0.Add(time.Duration(w*perWorker+i) * time.Millisecond)
				if _, err := h.Append(ctx, "shared", store.TypeAlert, at, map[string]int{"w": w, "i": i}); err != nil {
					errs <- err
				}
				if _, err := h.Append(ctx, fmt.Sprintf("own-%d", w), store.TypeAlertSeen, at, map[string]int{"i": i}); err != nil {
					errs <- err
				}
			}
		}()
	}
	// Two writers of snapshots of one device, one per handle when there are two.
	for w := 0; w < 2; w++ {
		h := handles[w%len(handles)]
		g := NewGenerator("snap", 30, T0.Add(time.Duration(w)*time.Hour))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 5; i++ {
				if _, err := h.PutSnapshot(ctx, g.Next(1), json.RawMessage(fmt.Sprintf(`{"writer":%d}`, w))); err != nil {
					errs <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write failed: %v", err)
	}
	for i, h := range handles {
		shared, err := h.Records(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		if len(shared) != workers*perWorker {
			t.Errorf("handle %d: shared chain has %d records, want %d (lost appends)", i, len(shared), workers*perWorker)
		}
		checkChain(t, shared)
		for w := 0; w < workers; w++ {
			own, err := h.Records(ctx, fmt.Sprintf("own-%d", w))
			if err != nil {
				t.Fatal(err)
			}
			if len(own) != perWorker {
				t.Errorf("handle %d: own-%d has %d records, want %d", i, w, len(own), perWorker)
			}
			checkChain(t, own)
		}
		snaps, err := h.Records(ctx, "snap")
		if err != nil {
			t.Fatal(err)
		}
		checkChain(t, snaps)
		if n := countType(snaps, store.TypeSnapshot); n != 10 {
			t.Errorf("handle %d: %d snapshot records, want 10", i, n)
		}
		fs, err := h.Verify(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 0 {
			t.Errorf("handle %d: Verify after concurrent writes found %+v", i, fs)
		}
	}
}

func countType(recs []store.Record, typ string) int {
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}
