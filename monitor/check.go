package monitor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

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
	// Suppressed are findings seen again whose alert a person acknowledged
	// as a false positive: recorded, not reported.
	Suppressed []alerts.Alert `json:"suppressed,omitempty"`
	// Resolved are earlier alerts (collection failed or incomplete) this
	// check's complete read resolved.
	Resolved []alerts.Alert `json:"resolved,omitempty"`
	// Error is set when the device could not be read at all.
	Error string `json:"error,omitempty"`
	// ErrorClass is the stable class of Error (see ErrorClass).
	ErrorClass string `json:"error_class,omitempty"`
	// Verdict is Verdict(), filled in when Check returns.
	Verdict Verdict `json:"verdict"`
}

// Verdict is what one check found, decided in one place (CheckResult.Decide):
// the words `check` prints, its exit code and the alerts all derive from it.
type Verdict struct {
	// Findings is true when a person must look: an alert raised or seen
	// again (not suppressed), a failed read, or no baseline yet. It makes
	// `check` exit 1.
	Findings bool `json:"findings"`
	// Summary is the one line `check` prints after the snapshot ids.
	Summary string `json:"summary"`
}

// Unapproved reports whether the check found anything a person must look
// at: Decide().Findings.
func (r *CheckResult) Unapproved() bool { return r.Decide().Findings }

// Active returns the alerts of the check that ask for a person: raised and
// seen again, not suppressed.
func (r *CheckResult) Active() []alerts.Alert {
	return append(append([]alerts.Alert{}, r.Raised...), r.Repeated...)
}

// Decide computes the check's verdict from its alerts: changes (by
// disposition), incomplete collection, other events; a failed read; a
// missing baseline. Nothing a person must act on is ever reported in words
// without an alert behind it, and no alert is raised without the words.
func (r *CheckResult) Decide() Verdict {
	if r.Error != "" {
		return Verdict{Findings: true, Summary: "READ FAILED (" + r.ErrorClass + "): " + r.Error}
	}
	var unauthorized, planned, incomplete, other int
	tickets := map[string]bool{}
	for _, a := range r.Active() {
		switch {
		case a.Category == alerts.CatIncomplete:
			incomplete++
		case a.Disposition == alerts.Unauthorized:
			unauthorized++
		case a.Disposition == alerts.Planned:
			planned++
			tickets[a.Ticket] = true
		default:
			other++
		}
	}
	var parts []string
	if unauthorized > 0 {
		parts = append(parts, fmt.Sprintf("UNAPPROVED CHANGES (%d alert(s))", unauthorized))
	}
	if planned > 0 {
		var ts []string
		for t := range tickets {
			ts = append(ts, t)
		}
		sort.Strings(ts)
		parts = append(parts, fmt.Sprintf("PLANNED CHANGES, pending review (change %s)", strings.Join(ts, ", ")))
	}
	if incomplete > 0 {
		why := "INCOMPLETE COLLECTION: see the alert"
		if r.Snapshot != nil && !r.Snapshot.Status.Complete {
			why = "INCOMPLETE COLLECTION, PARTIAL read: " + strings.Join(r.Snapshot.Status.Reasons, "; ")
		} else if r.Report != nil {
			n := 0
			for _, c := range r.Report.Changes {
				if c.Type == diffing.NotRead && c.Reason != diffing.ReasonNotPreviously {
					n++
				}
			}
			why = fmt.Sprintf("INCOMPLETE COLLECTION: %d item(s) not read", n)
		}
		parts = append(parts, why)
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%d other finding(s)", other))
	}
	findings := len(parts) > 0
	if r.NoBaseline {
		findings = true
		parts = append([]string{"NO BASELINE yet"}, parts...)
	}
	if !findings {
		parts = append(parts, "no unapproved change")
	}
	var notes []string
	if r.Report != nil && r.Report.Info > 0 {
		notes = append(notes, fmt.Sprintf("%d informational change(s)", r.Report.Info))
	}
	if n := len(r.Suppressed); n > 0 {
		notes = append(notes, fmt.Sprintf("%d finding(s) acknowledged as false positive, suppressed", n))
	}
	if n := len(r.Resolved); n > 0 {
		notes = append(notes, fmt.Sprintf("%d earlier alert(s) resolved", n))
	}
	sum := strings.Join(parts, "; ")
	if len(notes) > 0 {
		sum += " (" + strings.Join(notes, ", ") + ")"
	}
	return Verdict{Findings: findings, Summary: sum}
}

// Check takes a snapshot of dev, compares it with the device's baseline and
// raises alerts for unapproved changes. A device that cannot be read at all
// gets a "collection failed" alert and the error; nothing else is stored.
func (s *Service) Check(ctx context.Context, dev *config.Device, opt SnapshotOptions) (*CheckResult, error) {
	res := &CheckResult{Device: dev.Name}
	defer func() { res.Verdict = res.Decide() }()
	snap, err := s.Snapshot(ctx, dev, opt)
	var host *HostError
	if errors.As(err, &host) {
		return res, err // the host's failure, not the controller's
	}
	if err != nil {
		res.Error, res.ErrorClass = err.Error(), ErrorClass(err)
		if ctx.Err() == nil {
			// One alert per device and error class: the message carries
			// ports and timings that differ on every attempt.
			a := alerts.Event(dev.Name, alerts.CatCollectionFailed, res.ErrorClass+": "+err.Error(), "failed:"+res.ErrorClass, s.now())
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
			als := alerts.Derive(diffing.Compare(snap, snap, diffing.Options{}), alerts.Input{Device: dev.Name, Now: s.now()})
			for i := range als {
				als[i].Baseline = "" // compared with itself: there is no baseline yet
			}
			err = s.raise(ctx, res, als, snap.ID)
		}
		if err == nil && snap.Status.Complete {
			err = s.resolveCollection(ctx, res, dev.Name, snap.ID)
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
	complete := snap.Status.Complete
	for _, a := range als {
		complete = complete && a.Category != alerts.CatIncomplete
	}
	if complete {
		if err := s.resolveCollection(ctx, res, dev.Name, snap.ID); err != nil {
			return res, err
		}
		if err := s.endFalsePositives(ctx, res, dev.Name, snap.ID, als); err != nil {
			return res, err
		}
	}
	var ids []string
	for _, a := range res.Active() {
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

// resolveCollection records that a complete read ended the device's
// "collection failed" and "incomplete collection" alerts.
func (s *Service) resolveCollection(ctx context.Context, res *CheckResult, device, snapID string) error {
	done, recs, err := alerts.Resolve(ctx, s.Store, device, func(a alerts.Alert) bool {
		return a.Category == alerts.CatCollectionFailed || a.Category == alerts.CatIncomplete
	}, snapID, "a complete read succeeded (snapshot "+snapID+")", s.now())
	s.wroteHead(recs)
	res.Resolved = append(res.Resolved, done...)
	for _, a := range done {
		s.Log.Info().Str("device", device).Str("alert", a.ID).Str("snapshot", snapID).Msg("alert resolved")
	}
	return err
}

// endFalsePositives records that the findings acknowledged as false
// positives which a complete read (snapID) no longer shows are over: an
// acknowledgement suppresses its finding while it lasts, so the next
// occurrence (another STOP after the CPU was back in RUN) is a new alert.
// current are the alerts this check derived.
func (s *Service) endFalsePositives(ctx context.Context, res *CheckResult, device, snapID string, current []alerts.Alert) error {
	seen := map[string]bool{}
	for _, a := range current {
		seen[a.Fingerprint] = true
	}
	done, recs, err := alerts.Resolve(ctx, s.Store, device, func(a alerts.Alert) bool {
		return a.Current() && a.FalsePositive() && !seen[a.Fingerprint] && findingCategory(a.Category)
	}, snapID, "the finding acknowledged as a false positive is gone (snapshot "+snapID+")", s.now())
	s.wroteHead(recs)
	res.Resolved = append(res.Resolved, done...)
	return err
}

// findingCategory reports whether alerts of the category are findings of
// a comparison with the baseline, rather than events (a failed or
// incomplete collection, an overdue check, a missed window).
func findingCategory(cat string) bool {
	switch cat {
	case alerts.CatCollectionFailed, alerts.CatIncomplete, alerts.CatOverdue, alerts.CatWindowMissed, alerts.CatChangeOverdue:
		return false
	}
	return true
}

// raise stores alerts, then tells the sinks (a sink failing is logged; the
// alert is already stored).
func (s *Service) raise(ctx context.Context, res *CheckResult, als []alerts.Alert, snapID string) error {
	if len(als) == 0 {
		return nil
	}
	raised, seen, recs, err := alerts.Raise(ctx, s.Store, als, snapID, s.now())
	s.wroteHead(recs)
	res.Raised = append(res.Raised, raised...)
	var repeated []alerts.Alert
	for _, a := range seen {
		if a.Suppressed {
			res.Suppressed = append(res.Suppressed, a)
		} else {
			repeated = append(repeated, a)
		}
	}
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
