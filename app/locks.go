package app

import (
	"context"
	"path/filepath"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/limits"
)

// lockDir is where per-device lock files live: daemon.lock_dir, or a
// folder beside the store.
func lockDir(cfg *config.Config) string {
	if cfg.Daemon.LockDir != "" {
		return cfg.Resolve(cfg.Daemon.LockDir)
	}
	return filepath.Join(filepath.Dir(cfg.StorePath()), "plcwatch-locks")
}

// deviceLocker returns the cross-process per-device lock shared by the CLI
// and the daemon.
func deviceLocker(cfg *config.Config) func(ctx context.Context, device string) (func(), error) {
	dir := lockDir(cfg)
	return func(ctx context.Context, device string) (func(), error) {
		return limits.Lock(ctx, dir, device)
	}
}
