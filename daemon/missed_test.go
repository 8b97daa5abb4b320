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
	"github.com/plcwatch/plcwatch/schedules"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/store"
)

// TestWindowMissed: with one device slot, a device that stalls until the
// window's end keeps the other from being read; the daemon raises "window
// missed" for the one that never ran.
func TestWindowMissed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs windows of a few real seconds")
	}
	// Pick names so the stalling device's offset comes first.
	stall, other := "", ""
	for i := 0; stall == ""; i++ {
		a, b := fmt.Sprintf("hog%d", i), fmt.Sprintf("victim%d", i)
		if schedules.Offset(a, "w", 4*time.Second) < schedules.Offset(b, "w", 4*time.Second) {
			stall, other = a, b
		}
	}
	ctx := context.Background()
	hog, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	hog.SetFault(s7sim.Fault{Action: s7sim.FaultStall})
	ok, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "plcwatch.yaml")
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
defaults: {request_timeout: 10s, retries: 0}
daemon: {max_concurrent_devices: 1}
windows:
  - {name: w, cron: "@every 8s", duration: 4s, time_zone: UTC, groups: [g]}
devices:
  - {name: %s, protocol: s7, endpoint: %s, groups: [g], s7: {slot: 2, timeout: 10s}}
  - {name: %s, protocol: s7, endpoint: %s, groups: [g], s7: {slot: 2}}
`, stall, hog.Addr(), other, ok.Addr())
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	events := make(chan Event, 256)
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(dctx, Options{ConfigPath: cfgPath, Log: zerolog.Nop(), Events: events, Grace: time.Second, Housekeeping: 500 * time.Millisecond,
			Service: func(cfg *config.Config) (*monitor.Service, func() error, error) {
				st, err := store.Open(cfg.StorePath())
				if err != nil {
					return nil, nil, err
				}
				return &monitor.Service{Cfg: cfg, Store: st, Log: zerolog.Nop()}, st.Close, nil
			}})
	}()
	defer func() {
		stop()
		<-done
	}()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind != "alert" || e.Device != other {
				continue
			}
			for _, a := range e.Result.Raised {
				if a.Category == alerts.CatWindowMissed {
					t.Logf("raised: %s", a.Title)
					return
				}
			}
		case <-deadline:
			t.Fatalf("no window-missed alert for %s within 60 s", other)
		}
	}
}
