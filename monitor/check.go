package monitor

import (
	"context"
	"errors"
	"fmt"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// CheckResult is the outcome of one check of one device.
type CheckResult struct {
	Device   string              `json:"device"`
	Snapshot *snapshots.Snapshot `json:"-"`
	// SnapshotID is the new snapshot's id ("" when the read failed).
	SnapshotID string `json:"snapshot,omitempty"`
	// NoBaseline is true when the device has no approved baseline yet.
	NoBaseline bool            `json:"no_baseline,omitempty"`
	BaselineID string          `json:"baseline,omitempty"`
	Report     *diffing.Report `json:"report,omitempty"`
	Raised     []alerts.Alert  `json:"raised,omitempty"`
	Repeated   []alerts.Alert  `json:"repeated,omitempty"`
	// Error is set when the device could not be read at all.
	Error string `json:"error,omitempty"`
}

// Unapproved reports whether the check found anything a person must look
// at: changes against the baseline, a partial read or a failed one.
func (r *CheckResult) Unapproved() bool {
	return r.Error != "" || len(r.Raised) > 0 || len(r.Repeated) > 0
}

// Check takes a snapshot of dev, compares it with the device's baseline and
// raises alerts for unapproved changes. A device that cannot be read at all
// gets a "collection failed" alert and the error; nothing else is stored.
func (s *Service) Check(ctx context.Context, dev *config.Device, opt SnapshotOptions) (*CheckResult, error) {
	res := &CheckResult{Device: dev.Name}
	snap, err := s.Snapshot(ctx, dev, opt)
	var host *HostError
	if errors.As(err, &host) {
		return res, err // the host's failure, not the controller's
	}
	if err != nil {
		res.Error = err.Error()
		if ctx.Err() == nil {
			a := alerts.Event(dev.Name, alerts.CatCollectionFailed, err.Error(), "failed:"+err.Error(), s.now())
			if rerr := s.raise(ctx, res, []alerts.Alert{a}, ""); rerr != nil {
				return res, rerr
			}
		}
		return res, err
	}
	res.Snapshot, res.SnapshotID = snap, snap.ID
	ctx = context.WithoutCancel(ctx) // the comparison and alerts are stored whatever the window

	appr, err := s.Store.Baseline(ctx, dev.Name)
	if errors.Is(err, store.ErrNoBaseline) {
		res.NoBaseline = true
		_, err = s.append(ctx, dev.Name, TypeCheck, CheckRecord{Snapshot: snap.ID, Partial: !snap.Status.Complete})
		if err == nil && !snap.Status.Complete {
			err = s.raise(ctx, res, alerts.Derive(diffing.Compare(snap, snap, diffing.Options{}), alerts.Input{Device: dev.Name, Now: s.now()}), snap.ID)
		}
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("device %s: reading the baseline: %w", dev.Name, err)
	}
	base, err := s.Store.Snapshot(ctx, appr.Snapshot)
	if err != nil {
		return res, fmt.Errorf("device %s: loading baseline %s: %w", dev.Name, appr.Snapshot, err)
	}
	res.BaselineID = base.ID
	rep := diffing.Compare(base, snap, diffing.Options{})
	res.Report = rep
	in := alerts.Input{Device: dev.Name, Now: s.now()}
	if ch, err := s.OpenChange(ctx, dev.Name); err != nil {
		return res, err
	} else if ch != nil {
		in.Ticket = ch.Ticket
	}
	als := alerts.Derive(rep, in)
	if err := s.raise(ctx, res, als, snap.ID); err != nil {
		return res, err
	}
	var ids []string
	for _, a := range append(append([]alerts.Alert{}, res.Raised...), res.Repeated...) {
		ids = append(ids, a.ID)
	}
	n := 0
	for _, c := range rep.Changes {
		if c.Type != diffing.NotRead && !c.Info {
			n++
		}
	}
	_, err = s.append(ctx, dev.Name, TypeCheck, CheckRecord{Snapshot: snap.ID, Baseline: base.Digest, BaselineID: base.ID, Changes: n, Alerts: ids, Partial: !snap.Status.Complete})
	return res, err
}

// RaiseEvent stores a non-diff alert (overdue, missed window) and notifies,
// once: an event already raised is not recorded again however often the
// condition is seen.
func (s *Service) RaiseEvent(ctx context.Context, a alerts.Alert) (*CheckResult, error) {
	res := &CheckResult{Device: a.Device}
	existing, err := alerts.List(ctx, s.Store, alerts.Filter{Device: a.Device})
	if err != nil {
		return res, err
	}
	for _, e := range existing {
		if e.Fingerprint == a.Fingerprint {
			return res, nil
		}
	}
	return res, s.raise(ctx, res, []alerts.Alert{a}, "")
}

// raise stores alerts, then tells the sinks (a sink failing is logged; the
// alert is already stored).
func (s *Service) raise(ctx context.Context, res *CheckResult, als []alerts.Alert, snapID string) error {
	if len(als) == 0 {
		return nil
	}
	raised, repeated, recs, err := alerts.Raise(ctx, s.Store, als, snapID, s.now())
	s.wroteHead(recs)
	res.Raised = append(res.Raised, raised...)
	res.Repeated = append(res.Repeated, repeated...)
	if err != nil {
		return err
	}
	if s.Notify != nil {
		for _, a := range raised {
			if err := s.Notify.Notify(a, false); err != nil {
				s.Log.Error().Err(err).Str("alert", a.ID).Msg("an alert sink failed; the alert is stored")
			}
		}
		for _, a := range repeated {
			if err := s.Notify.Notify(a, true); err != nil {
				s.Log.Error().Err(err).Str("alert", a.ID).Msg("an alert sink failed; the alert is stored")
			}
		}
	}
	return nil
}
