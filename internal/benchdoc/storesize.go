package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// storeFigures is the store's size after a history of nightly snapshots,
// against the unique content it holds.
type storeFigures struct {
	Devices, Snapshots, Items int
	Churn                     float64 // items changed per snapshot, fraction
	Bytes                     int64   // the database file's pages in use
	Unique                    int64   // distinct item blobs plus every snapshot's header
	Put                       time.Duration
}

// benchStoreSize appends `snapshots` snapshots of `items` items (1% changed
// each) for each of `devices` devices to a fresh store under dir.
func benchStoreSize(ctx context.Context, dir string, devices, snaps, items int) (storeFigures, error) {
	f := storeFigures{Devices: devices, Snapshots: snaps, Items: items, Churn: 0.01}
	st, err := store.Open(filepath.Join(dir, "plcwatch.db"))
	if err != nil {
		return f, err
	}
	defer st.Close()
	start := time.Now()
	for d := range devices {
		g := storetest.NewGenerator(fmt.Sprintf("plc%03d", d), items, storetest.T0)
		g.Step = 24 * time.Hour
		for i := range snaps {
			changes := items / 100
			if i == 0 {
				changes = 0
			}
			s := g.Next(changes)
			h := *s
			h.Items = []snapshots.Item{}
			enc, err := h.Encode()
			if err != nil {
				return f, err
			}
			f.Unique += int64(len(enc))
			if _, err := st.PutSnapshot(ctx, s, nil); err != nil {
				return f, err
			}
		}
	}
	f.Put = time.Since(start)
	stats, err := st.Stats(ctx)
	if err != nil {
		return f, err
	}
	f.Bytes = stats.Bytes
	f.Unique += stats.BlobBytes
	return f, nil
}
