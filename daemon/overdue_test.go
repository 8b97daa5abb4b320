package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/monitor"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/store"
)

// TestOverdueAlerts: a device with no complete snapshot for longer than
// overdue_after raises "monitoring overdue", and a planned change past its
// --until raises "planned change overdue", once each.
func TestOverdueAlerts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a few real seconds")
	}
	ctx := context.Background()
	sim, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "plcwatch.yaml")
	// A window every hour (not reached in the test): only on-demand reads.
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
daemon: {overdue_after: 2s}
windows:
  - {name: w, cron: "@every 1h", duration: 1m, time_zone: UTC, devices: [plc]}
devices:
  - {name: plc, protocol: s7, endpoint: %s, limits: {requests_per_second: 1000}, s7: {slot: 2}}
`, sim.Addr())
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	var svc *monitor.Service
	events := make(chan Event, 64)
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(dctx, Options{ConfigPath: cfgPath, Log: zerolog.Nop(), Events: events, Housekeeping: 300 * time.Millisecond,
			Service: func(cfg *config.Config) (*monitor.Service, func() error, error) {
				st, err := store.Open(cfg.StorePath())
				if err != nil {
					return nil, nil, err
				}
				svc = &monitor.Service{Cfg: cfg, Store: st, Log: zerolog.Nop()}
				return svc, st.Close, nil
			}})
	}()
	defer func() {
		stop()
		<-done
	}()
	// The service is complete (its limiter set) once the daemon started.
	if e := <-events; e.Kind != "started" {
		t.Fatalf("first event %+v, want started", e)
	}
	// An on-demand planned change: its before snapshot is the last complete
	// snapshot; the change ends in one second.
	if _, _, err := svc.StartChange(ctx, svc.Cfg.Device("plc"), "CHG-9", "Jane", "jane", time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{alerts.CatOverdue: false, alerts.CatChangeOverdue: false}
	seen := map[string]bool{} // fingerprints: each condition is raised once
	deadline := time.After(30 * time.Second)
	for !want[alerts.CatOverdue] || !want[alerts.CatChangeOverdue] {
		select {
		case e := <-events:
			if e.Kind != "alert" {
				continue
			}
			for _, a := range e.Result.Raised {
				if _, ok := want[a.Category]; ok {
					if seen[a.Fingerprint] {
						t.Errorf("%s raised twice: %s", a.Category, a.Title)
					}
					seen[a.Fingerprint] = true
					want[a.Category] = true
					t.Logf("raised: %s", a.Title)
				}
			}
		case <-deadline:
			t.Fatalf("alerts raised: %v", want)
		}
	}
}
