package daemon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// heldConnector reads nothing: its snapshot reports that it started and
// returns when the test lets it.
type heldConnector struct {
	dev     string
	reading chan<- string
	finish  <-chan struct{}
}

func (c *heldConnector) Snapshot(ctx context.Context, _ *snapshots.Snapshot) (*snapshots.Snapshot, error) {
	c.reading <- c.dev
	select {
	case <-c.finish:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s := &snapshots.Snapshot{Status: snapshots.Status{Complete: true}}
	s.Items = append(s.Items, snapshots.Item{Path: "info/name", Kind: snapshots.KindInfo, Value: snapshots.String(c.dev)})
	return s, nil
}

func (c *heldConnector) Plan(*snapshots.Snapshot) (*connectors.Plan, error) {
	return &connectors.Plan{Device: c.dev}, nil
}

func (c *heldConnector) Close() error { return nil }

// heldStore blocks PutSnapshot until the test lets it, so that a device can
// be held between its read and its storing.
type heldStore struct {
	store.Store
	storing chan<- string
	finish  <-chan struct{}
}

func (s *heldStore) PutSnapshot(ctx context.Context, snap *snapshots.Snapshot, rules json.RawMessage) ([]store.Record, error) {
	s.storing <- snap.Device
	<-s.finish
	return s.Store.PutSnapshot(ctx, snap, rules)
}

// TestSlotFreedWhenCollected: with max_concurrent_devices 1, a device
// whose read has ended no longer holds the slot while its snapshot is
// stored, compared and alerted on: the next device is read meanwhile.
func TestSlotFreedWhenCollected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, "plcwatch.yaml")
		if err := os.WriteFile(cfgPath, []byte(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
daemon: {max_concurrent_devices: 1}
windows:
  - {name: w, cron: "@every 1h", duration: 1h, time_zone: UTC, groups: [plant]}
devices:
  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, groups: [plant]}
  - {name: b, protocol: s7, endpoint: 127.0.0.1:2, groups: [plant]}
`), 0o600); err != nil {
			t.Fatal(err)
		}
		reading, storing := make(chan string), make(chan string)
		finishRead, finishStore := make(chan struct{}), make(chan struct{})
		var once sync.Once
		ctx, stop := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() {
			runErr <- Run(ctx, Options{ConfigPath: cfgPath, Log: zerolog.Nop(), Housekeeping: 24 * time.Hour,
				Service: func(cfg *config.Config) (*monitor.Service, func() error, error) {
					st, err := store.Open(cfg.StorePath())
					if err != nil {
						return nil, nil, err
					}
					svc := &monitor.Service{Cfg: cfg, Store: &heldStore{Store: st, storing: storing, finish: finishStore}, Log: zerolog.Nop(),
						Open: func(dev *config.Device, _ classify.Rules, _ zerolog.Logger, _ connectors.Limiter) (connectors.Connector, *connectors.Gate, error) {
							return &heldConnector{dev: dev.Name, reading: reading, finish: finishRead}, connectors.NewGate(dev.Name, nil, nil), nil
						}}
					return svc, st.Close, nil
				}})
		}()
		var stopOnce sync.Once
		shutdown := func() {
			stopOnce.Do(func() {
				once.Do(func() { close(finishRead) })
				close(finishStore)
				drained := make(chan struct{})
				go func() { // drain what the daemon still reports
					for {
						select {
						case <-reading:
						case <-storing:
						case <-drained:
							return
						}
					}
				}()
				stop()
				if err := <-runErr; err != nil {
					t.Errorf("daemon: %v", err)
				}
				close(drained)
			})
		}
		defer shutdown()
		first := <-reading
		synctest.Wait()
		select {
		case d := <-reading:
			t.Fatalf("%s and %s read at once with max_concurrent_devices 1", first, d)
		default:
		}
		once.Do(func() { close(finishRead) }) // reads end at once from now on
		if d := <-storing; d != first {
			t.Fatalf("storing %s, want %s", d, first)
		}
		// first is being stored; the slot is free, so the other device is
		// read now. Before the fix it waited for first's whole check.
		wait := time.NewTimer(45 * time.Minute)
		defer wait.Stop()
		select {
		case second := <-reading:
			if second == first {
				t.Fatalf("%s read twice", first)
			}
		case <-wait.C:
			t.Fatalf("the second device was not read while %s was being stored: its slot was still held", first)
		}
		shutdown()
	})
}
