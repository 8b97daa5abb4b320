package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors/isolate"
	"github.com/plcwatch/plcwatch/limits"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/store"

	// Connectors register themselves.
	_ "github.com/plcwatch/plcwatch/connectors/logix"
	_ "github.com/plcwatch/plcwatch/connectors/opcua"
	_ "github.com/plcwatch/plcwatch/connectors/s7"
)

// env is an opened config, store and monitor service for one command.
type env struct {
	Cfg   *config.Config
	Store *store.DB
	Svc   *monitor.Service
	close []func() error
}

// Close releases what open took.
func (e *env) Close() error {
	var first error
	for i := len(e.close) - 1; i >= 0; i-- {
		if err := e.close[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (a *App) openWith(ctx context.Context, cfg *config.Config) (*env, error) {
	log, err := a.logger()
	if err != nil {
		return nil, usageError("%v", err)
	}
	path := cfg.StorePath()
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
	}
	st, err := store.Open(path)
	if err != nil {
		if errors.Is(err, store.ErrNotStore) || errors.Is(err, store.ErrNewerSchema) {
			return nil, err
		}
		return nil, &monitor.HostError{Op: "opening the store", Err: err}
	}
	e := &env{Cfg: cfg, Store: st}
	e.close = append(e.close, st.Close)
	sinks, heads, closeSinks, err := a.sinks(cfg)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.close = append(e.close, closeSinks)
	e.Svc = &monitor.Service{
		Cfg: cfg, Store: st, Log: log, Notify: sinks, Heads: countedHeads{w: heads, st: st, now: a.Now}, Now: a.Now,
		Lock: deviceLocker(cfg), Limiter: limits.New(cfg),
	}
	if cfg.IsolateSessions() && a.SessionExe != "" {
		e.Svc.Open = isolate.Opener(a.SessionExe, isolate.Options{MemoryLimit: cfg.SessionMemoryLimit()})
	}
	// A torn last line in the alert log (a crash or a full disk) is cut off
	// now, kept in a side file, and noted as the host's event.
	torn, err := alerts.RepairTornLine(cfg.AlertLogPath(), a.Now())
	if err != nil {
		log.Error().Err(err).Str("category", HostDevice).Msg("the alert log ends with a torn line that could not be moved aside")
	} else if torn != nil {
		detail := fmt.Sprintf("alert log %s ended with a torn line (%d bytes at offset %d, from a crash or a full disk): cut off and kept in %s", torn.Path, torn.Bytes, torn.Offset, torn.SideFile)
		al := alerts.Event(HostDevice, alerts.CatHostFailure, detail, "torn:"+torn.SideFile, a.Now())
		if _, err := e.Svc.RaiseEvent(ctx, al); err != nil {
			log.Error().Err(err).Msg(detail)
		}
	}
	return e, nil
}

// HostDevice is the chain that holds the monitoring host's own events (a
// repaired alert log): device names in a config start with a letter or
// digit, so it never collides with one.
const HostDevice = "_host"

// countedHeads writes chain heads to the alert log and counts each one that
// reached the disk in the store, so verify can tell a deleted or shortened
// alert log. A head the alert log refused (a full disk, a read-only file)
// is the host's failure: it is stored as a host_failure alert on the _host
// chain, without telling the sinks (the alert log is what failed).
type countedHeads struct {
	w   monitor.HeadWriter
	st  *store.DB
	now func() time.Time
}

// WriteHead implements monitor.HeadWriter.
func (c countedHeads) WriteHead(h store.Head) error {
	ctx := context.Background()
	if err := c.w.WriteHead(h); err != nil {
		detail := fmt.Sprintf("the alert log refused chain head %s seq %d: %v", h.Device, h.Seq, err)
		al := alerts.Event(HostDevice, alerts.CatHostFailure, detail, "alert-log-write", c.now())
		if _, _, _, rerr := alerts.Raise(ctx, c.st, []alerts.Alert{al}, "", c.now()); rerr != nil {
			return fmt.Errorf("%w; storing it as a host alert: %v", err, rerr)
		}
		return err
	}
	return c.st.AddHeadsLogged(ctx, 1)
}

// openRead loads the config and opens the store read-only for commands that
// only read (alerts, history, show, diff, verify): nothing is created, a
// missing store is an error naming its path, and a store on a read-only
// filesystem works. opts add to store.ReadOnly (diff and show, which read
// scattered items once, ask for store.MapReads).
func (a *App) openRead(ctx context.Context, opts ...store.Option) (*env, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(cfg.StorePath(), append([]store.Option{store.ReadOnly()}, opts...)...)
	if err != nil {
		return nil, &ExitCodeError{Code: ExitError, Err: fmt.Errorf("%w (store.path in %s)", err, cfg.File)}
	}
	log, err := a.logger()
	if err != nil {
		st.Close()
		return nil, usageError("%v", err)
	}
	e := &env{Cfg: cfg, Store: st}
	e.close = append(e.close, st.Close)
	e.Svc = &monitor.Service{Cfg: cfg, Store: st, Log: log, Now: a.Now}
	return e, nil
}
