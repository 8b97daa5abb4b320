package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// importable returns the origin's records from seq from on, with the
// snapshot contents they name.
func importable(t *testing.T, st *store.DB, dev string, from int64) store.ImportChain {
	t.Helper()
	ctx := context.Background()
	recs, err := st.Records(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	c := store.ImportChain{Device: "north/" + dev, Origin: dev, Records: recs[from-1:], Snapshots: map[string][]byte{}}
	for _, r := range c.Records {
		if r.Type != store.TypeSnapshot {
			continue
		}
		var ref store.SnapshotRef
		json.Unmarshal(r.Body, &ref)
		s, err := st.Snapshot(ctx, ref.Digest)
		if err != nil {
			t.Fatal(err)
		}
		c.Snapshots[ref.Digest], _ = s.Encode()
	}
	return c
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	site := open(t, filepath.Join(dir, "site.db"))
	central := open(t, filepath.Join(dir, "central.db"))
	g := storetest.NewGenerator("plc-a", 5, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	put := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := site.PutSnapshot(ctx, g.Next(1), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(3)
	if _, err := central.Import(ctx, nil, []store.ImportChain{importable(t, site, "plc-a", 1)}); err != nil {
		t.Fatal(err)
	}
	put(2)
	siteHeads, _ := site.Heads(ctx)
	tests := []struct {
		name   string
		expect []store.OriginHead
		chain  func() store.ImportChain
		want   string
	}{
		{name: "a range that skips records", chain: func() store.ImportChain { return importable(t, site, "plc-a", 5) }, want: "does not continue it"},
		{name: "a range already imported", chain: func() store.ImportChain { return importable(t, site, "plc-a", 2) }, want: "does not continue it"},
		{name: "an expected head the store does not hold", expect: []store.OriginHead{{Device: "north/plc-a", Origin: "plc-a", Seq: 4, Digest: siteHeads[0].Digest}},
			chain: func() store.ImportChain { return importable(t, site, "plc-a", 4) }, want: "a bundle is missing in between"},
		{name: "an altered record", chain: func() store.ImportChain {
			c := importable(t, site, "plc-a", 4)
			c.Records[1].Time = c.Records[1].Time.Add(time.Second)
			return c
		}, want: "does not recompute"},
		{name: "the continuation", expect: []store.OriginHead{{Device: "north/plc-a", Origin: "plc-a", Seq: 3, Digest: func() string { r, _ := site.Records(ctx, "plc-a"); return r[2].Digest }()}},
			chain: func() store.ImportChain { return importable(t, site, "plc-a", 4) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := central.Records(ctx, "")
			_, err := central.Import(ctx, tc.expect, []store.ImportChain{tc.chain()})
			after, _ := central.Records(ctx, "")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ie *store.ImportError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want an ImportError containing %q", err, tc.want)
			}
			if len(after) != len(before) {
				t.Fatalf("a refused import wrote %d records", len(after)-len(before))
			}
		})
	}
	h, err := central.OriginHead(ctx, "north/plc-a", "plc-a")
	if err != nil || h.Seq != siteHeads[0].Seq || h.Digest != siteHeads[0].Digest {
		t.Fatalf("central origin head %+v (%v), site head %+v", h, err, siteHeads[0])
	}
	if fs, err := central.Verify(ctx, nil, nil); err != nil || len(fs) != 0 {
		t.Fatalf("central verify: %v %v", fs, err)
	}
	if _, err := central.Resolve(ctx, "north/plc-a@latest"); err != nil {
		t.Fatal(err)
	}
}
