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
	now := s.now()
	if err := s.mayOpenChange(ctx, dev.Name, ticket, by, now, until); err != nil {
		return nil, nil, err
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

// mayOpenChange checks a new planned change: a ticket id, a person, an end
// in the future within change_max_duration, and no change open already.
func (s *Service) mayOpenChange(ctx context.Context, device, ticket, by string, now, until time.Time) error {
	if !validTicket(ticket) {
		return fmt.Errorf("--ticket %q: want a change ticket id such as CHG-123", ticket)
	}
	if strings.TrimSpace(by) == "" {
		return errors.New("--by: want the name of the person making the change")
	}
	if !until.After(now) {
		return fmt.Errorf("--until %s is not in the future", until.UTC().Format(time.RFC3339))
	}
	if max := s.Cfg.Daemon.ChangeMaxDuration.D(); until.Sub(now) > max {
		return fmt.Errorf("%w (%s)", ErrUntilTooLong, max)
	}
	if open, err := s.OpenChange(ctx, device); err != nil {
		return err
	} else if open != nil {
		return fmt.Errorf("%w: %s by %s until %s", ErrChangeOpen, open.Ticket, open.By, open.Until.UTC().Format(time.RFC3339))
	}
	return nil
}

// ErrNoBefore means a planned change cannot be opened without reading the
// device because it has no complete snapshot to serve as "before".
var ErrNoBefore = errors.New("no complete snapshot of the device to serve as the before snapshot")

// OpenChangeRecorded opens a planned change without reading the device (the
// web console never talks to a controller): the device's newest complete
// snapshot is the "before" snapshot. It refuses what StartChange refuses,
// and a device with no complete snapshot (ErrNoBefore). ch.Ticket, By,
// OSUser, ConsoleUser and Until are taken from ch; the rest is set here.
func (s *Service) OpenChangeRecorded(ctx context.Context, device string, ch Change) (*Change, error) {
	now := s.now()
	if err := s.mayOpenChange(ctx, device, ch.Ticket, ch.By, now, ch.Until); err != nil {
		return nil, err
	}
	before, err := s.Store.Latest(ctx, device, true)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("device %s: %w: run plcwatch change start %s, which reads it", device, ErrNoBefore, device)
	} else if err != nil {
		return nil, err
	}
	out := &Change{Ticket: ch.Ticket, By: ch.By, OSUser: ch.OSUser, ConsoleUser: ch.ConsoleUser,
		OpenedAt: now.UTC(), Until: ch.Until.UTC(), Before: before.ID}
	if _, err := s.append(ctx, device, store.TypeChangeOpen, out); err != nil {
		return nil, fmt.Errorf("device %s: opening change %s: %w", device, ch.Ticket, err)
	}
	return out, nil
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
