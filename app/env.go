package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
		return nil, err
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
		Cfg: cfg, Store: st, Log: log, Notify: sinks, Heads: heads, Now: a.Now,
		Lock: deviceLocker(cfg), Limiter: limits.New(cfg),
	}
	if cfg.IsolateSessions() && a.SessionExe != "" {
		e.Svc.Open = isolate.Opener(a.SessionExe, isolate.Options{MemoryLimit: cfg.SessionMemoryLimit()})
	}
	return e, nil
}
