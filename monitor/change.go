package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// Planned-change errors.
var (
	ErrChangeOpen   = errors.New("a planned change is already open on this device")
	ErrNoChange     = errors.New("no planned change is open on this device")
	ErrUntilTooLong = errors.New("--until is later than the configured change_max_duration allows")
)

// StartChange takes the "before" snapshot of a planned change (on demand: a
// person asked) and opens the change. Until the change is closed, detected
// changes on the device are "planned, pending review", not "unauthorized".
func (s *Service) StartChange(ctx context.Context, dev *config.Device, ticket, by, osUser string, until time.Time) (*Change, *snapshots.Snapshot, error) {
	if !ticketRE.MatchString(ticket) {
		return nil, nil, fmt.Errorf("--ticket %q: want a change ticket id such as CHG-123", ticket)
	}
	if strings.TrimSpace(by) == "" {
		return nil, nil, errors.New("--by: want the name of the person making the change")
	}
	now := s.now()
	if !until.After(now) {
		return nil, nil, fmt.Errorf("--until %s is not in the future", until.Format(time.RFC3339))
	}
	if max := s.Cfg.Daemon.ChangeMaxDuration.D(); until.Sub(now) > max {
		return nil, nil, fmt.Errorf("%w (%s)", ErrUntilTooLong, max)
	}
	if open, err := s.OpenChange(ctx, dev.Name); err != nil {
		return nil, nil, err
	} else if open != nil {
		return nil, nil, fmt.Errorf("%w: %s by %s until %s", ErrChangeOpen, open.Ticket, open.By, open.Until.Format(time.RFC3339))
	}
	snap, err := s.Snapshot(ctx, dev, SnapshotOptions{Label: "before"})
	if err != nil {
		return nil, nil, err
	}
	ch := &Change{Ticket: ticket, By: by, OSUser: osUser, OpenedAt: now.UTC(), Until: until.UTC(), Before: snap.ID}
	if _, err := s.append(ctx, dev.Name, store.TypeChangeOpen, ch); err != nil {
		return nil, snap, err
	}
	return ch, snap, nil
}

// FinishChange takes the "after" snapshot of the open change and returns the
// before/after diff for review. The change stays open until the after
// snapshot is approved (which closes it and moves the baseline).
func (s *Service) FinishChange(ctx context.Context, dev *config.Device) (*Change, *diffing.Report, *snapshots.Snapshot, error) {
	ch, err := s.OpenChange(ctx, dev.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	if ch == nil {
		return nil, nil, nil, ErrNoChange
	}
	before, err := s.Store.Snapshot(ctx, ch.Before)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("change %s: before snapshot %s: %w", ch.Ticket, ch.Before, err)
	}
	after, err := s.Snapshot(ctx, dev, SnapshotOptions{Label: "after"})
	if err != nil {
		return nil, nil, nil, err
	}
	ch.After = after.ID
	return ch, diffing.Compare(before, after, diffing.Options{}), after, nil
}
