package app

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/store"
)

// ruleWarnings names the classification rules that matched no item of the
// devices' latest stored snapshots: a device's own rule that matched
// nothing in that device's snapshot, and a global rule that matched nothing
// in any device's. Ignore rules are left out (the items they match are not
// stored), and so are devices without a snapshot. Without a store there is
// nothing to say. The store is opened read-only.
func ruleWarnings(ctx context.Context, cfg *config.Config) ([]string, error) {
	path := cfg.StorePath()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	st, err := store.Open(path, store.ReadOnly())
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var warns []string
	globalHit := make([]bool, len(cfg.Classification))
	seen := 0
	for _, dev := range cfg.Devices {
		snap, err := st.Latest(ctx, dev.Name, false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("device %s: reading its latest snapshot: %w", dev.Name, err)
		}
		seen++
		rules := append(append(cfg.Classification[:0:0], dev.Rules...), cfg.Classification...)
		hits := rules.Matches(snap.Items)
		for i, r := range dev.Rules {
			if !hits[i] && !r.Ignore {
				warns = append(warns, fmt.Sprintf("%s: warning: rule of device %s matched no item of its latest snapshot %s", r.Source, dev.Name, snap.ID))
			}
		}
		for i := range cfg.Classification {
			globalHit[i] = globalHit[i] || hits[len(dev.Rules)+i]
		}
	}
	if seen == 0 {
		return warns, nil
	}
	for i, r := range cfg.Classification {
		if !globalHit[i] && !r.Ignore {
			warns = append(warns, fmt.Sprintf("%s: warning: rule matched no item of any device's latest snapshot", r.Source))
		}
	}
	return warns, nil
}
