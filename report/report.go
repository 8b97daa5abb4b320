// Package report builds the compliance report an auditor reads: per device
// the approved baseline by NERC CIP-010 R1.1 category, every change in a
// period with its disposition, monitoring coverage (CIP-010 R2: at least
// every 35 days), open alerts, and the result of verifying the evidence
// chains with their heads.
//
// Build reads only the store; it never contacts a controller. The same
// Report renders as one self-contained HTML file (WriteHTML), as CSV
// (WriteCSV) and as JSON (WriteJSON).
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// DefaultInterval is NERC CIP-010 R2's longest gap between two checks of a
// baseline: 35 calendar days.
const DefaultInterval = 35 * 24 * time.Hour

// Options selects what a report covers.
type Options struct {
	// Since and Until bound the period (Since inclusive, Until inclusive).
	Since, Until time.Time
	// Devices limits the report to these devices; empty means every device
	// in the store.
	Devices []string
	// Interval is the longest acceptable gap between two complete
	// collections; 0 means DefaultInterval.
	Interval time.Duration
	// KnownHeads are chain heads recorded outside the store (the alert log);
	// verification reports any the chains no longer hold.
	KnownHeads []store.Head
	// Generated is the report's time (the caller's clock).
	Generated time.Time
}

// Report is the whole compliance report. It is deterministic for a given
// store and Options.
type Report struct {
	Generated     time.Time `json:"generated"`
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	IntervalHours float64   `json:"interval_hours"`
	Devices       []Device  `json:"devices"`
	Verify        Verify    `json:"verify"`
}

// Verify is the result of store.Verify over every chain of the store.
type Verify struct {
	OK                bool            `json:"ok"`
	Findings          []store.Finding `json:"findings"`
	KnownHeadsChecked int             `json:"known_heads_checked"`
	Heads             []store.Head    `json:"heads"`
}

// Device is one device's part of the report.
type Device struct {
	Name     string             `json:"name"`
	Protocol string             `json:"protocol,omitempty"`
	Endpoint string             `json:"endpoint,omitempty"`
	Identity snapshots.Identity `json:"identity"`
	// Baseline is nil when no baseline was ever approved.
	Baseline   *Baseline `json:"baseline"`
	Changes    []Change  `json:"changes"`
	Coverage   Coverage  `json:"coverage"`
	OpenAlerts []Alert   `json:"open_alerts"`
}

// Baseline is the approved baseline in force at the end of the period, its
// content grouped by CIP-010 R1.1 category.
type Baseline struct {
	SnapshotID string         `json:"snapshot_id"`
	Digest     string         `json:"digest"`
	TakenAt    time.Time      `json:"taken_at"`
	Approval   store.Approval `json:"approval"`
	Categories []Category     `json:"categories"`
}

// Category is one CIP-010 R1.1 baseline category.
type Category struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Items []Item `json:"items"`
}

// Item is one baseline item as an auditor reads it.
type Item struct {
	Path  string `json:"path"`
	Kind  string `json:"kind"`
	Value string `json:"value"`
	// Attrs are the item's attributes, "key=value" sorted by key (for logic:
	// checksums, sizes, versions).
	Attrs  string `json:"attrs,omitempty"`
	Source string `json:"source"`
	Hash   string `json:"hash"`
}

// The dispositions of a Change.
const (
	DispApproved = "approved"
)

// Change is one change in the period: an approval of a new baseline
// (Disposition "approved", with who, when, ticket and comment and the items
// that differ from the previous baseline), or an alert about an unapproved
// change (its disposition, items and acknowledgements).
type Change struct {
	Time        time.Time `json:"time"`
	Disposition string    `json:"disposition"`
	// Approved changes.
	By          string `json:"by,omitempty"`
	OSUser      string `json:"os_user,omitempty"`
	Ticket      string `json:"ticket,omitempty"`
	Comment     string `json:"comment,omitempty"`
	Snapshot    string `json:"snapshot,omitempty"`
	OldBaseline string `json:"old_baseline,omitempty"`
	// Items are "path: old -> new" lines.
	Items []string `json:"items"`
	// Alert is set for unapproved changes.
	Alert *Alert `json:"alert,omitempty"`
}

// Alert is an alert as the report shows it.
type Alert struct {
	ID          string               `json:"id"`
	Severity    string               `json:"severity"`
	Category    string               `json:"category"`
	Title       string               `json:"title"`
	Technique   string               `json:"technique,omitempty"`
	Disposition string               `json:"disposition,omitempty"`
	Ticket      string               `json:"ticket,omitempty"`
	Raised      time.Time            `json:"raised"`
	LastSeen    time.Time            `json:"last_seen"`
	Count       int                  `json:"count"`
	Status      string               `json:"status"`
	Items       []string             `json:"items"`
	Acks        []store.Ack          `json:"acks"`
	Resolved    *store.AlertResolved `json:"resolved,omitempty"`
}

// Coverage is the proof of monitoring in the period.
type Coverage struct {
	// Collections are the complete snapshots taken in the period.
	Collections []Collection `json:"collections"`
	// Partial counts the partial snapshots taken in the period.
	Partial int `json:"partial"`
	// LastComplete is the newest complete collection up to Until (zero if
	// none).
	LastComplete time.Time `json:"last_complete,omitzero"`
	// Gaps are the stretches of the period longer than the interval without
	// a complete collection.
	Gaps []Gap `json:"gaps"`
	// Alerts are the monitoring alerts raised in the period: collection
	// failed or incomplete, monitoring overdue, window missed, planned
	// change overdue.
	Alerts []Alert `json:"alerts"`
}

// Collection is one complete snapshot.
type Collection struct {
	Time     time.Time `json:"time"`
	Snapshot string    `json:"snapshot"`
}

// Gap is a stretch without a complete collection longer than the interval.
type Gap struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Hours float64   `json:"hours"`
	// Open is true when the gap reaches the end of the period.
	Open bool `json:"open,omitempty"`
}

// categoryOf maps item kinds to CIP-010 R1.1 categories, in report order.
var categoryOrder = []struct {
	id, title string
	kinds     []snapshots.Kind
}{
	{"firmware", "Firmware and operating system (CIP-010 R1.1.1)", []snapshots.Kind{snapshots.KindFirmware}},
	{"logic", "Logic: blocks, programs, routines with checksums (custom software, R1.1.3)", []snapshots.Kind{snapshots.KindLogic}},
	{"setpoints", "Setpoints and parameters", []snapshots.Kind{snapshots.KindSetpoint}},
	{"hardware", "Hardware and modules (component inventory, IEC 62443-3-3 SR 7.8)", []snapshots.Kind{snapshots.KindHardware}},
	{"identity", "Identity", []snapshots.Kind{snapshots.KindIdentity}},
	{"security", "Security: protection, operating mode, endpoints and certificates (R1.1.4, SR 7.6)", []snapshots.Kind{snapshots.KindProtection, snapshots.KindMode, snapshots.KindSecurity}},
}

// monitoringCats are the alert categories about monitoring, not changes.
var monitoringCats = map[string]bool{
	alerts.CatIncomplete: true, alerts.CatOverdue: true, alerts.CatWindowMissed: true,
	alerts.CatChangeOverdue: true, alerts.CatCollectionFailed: true,
}

// ErrUnknownDevice means a requested device has no records in the store.
var ErrUnknownDevice = errors.New("no records of this device in the store")

// Build reads the store and assembles the report. It fails when the store
// cannot be read or a requested device has no records; a store that does
// not verify is reported (Verify.OK false), not an error.
func Build(ctx context.Context, st store.Store, opt Options) (*Report, error) {
	if opt.Until.IsZero() || opt.Since.IsZero() || opt.Until.Before(opt.Since) {
		return nil, fmt.Errorf("report period %s to %s: want a start before the end", opt.Since.Format(time.RFC3339), opt.Until.Format(time.RFC3339))
	}
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	all, err := st.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("building report: %w", err)
	}
	devs := opt.Devices
	if len(devs) == 0 {
		devs = all
	} else {
		have := map[string]bool{}
		for _, d := range all {
			have[d] = true
		}
		for _, d := range devs {
			if !have[d] {
				return nil, fmt.Errorf("report: device %q (stored devices: %s): %w", d, strings.Join(all, ", "), ErrUnknownDevice)
			}
		}
	}
	r := &Report{
		Generated: opt.Generated.UTC(), Since: opt.Since.UTC(), Until: opt.Until.UTC(),
		IntervalHours: opt.Interval.Hours(), Devices: []Device{},
	}
	for _, name := range devs {
		d, err := buildDevice(ctx, st, name, opt)
		if err != nil {
			return nil, fmt.Errorf("report of %s: %w", name, err)
		}
		r.Devices = append(r.Devices, *d)
	}
	fs, err := st.Verify(ctx, opt.KnownHeads, nil)
	if err != nil {
		return nil, fmt.Errorf("report: verifying the store: %w", err)
	}
	heads, err := st.Heads(ctx)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	r.Verify = Verify{OK: len(fs) == 0, Findings: nonNil(fs), KnownHeadsChecked: len(opt.KnownHeads), Heads: nonNil(heads)}
	return r, nil
}

func inPeriod(t time.Time, opt Options) bool { return !t.Before(opt.Since) && !t.After(opt.Until) }

func buildDevice(ctx context.Context, st store.Store, name string, opt Options) (*Device, error) {
	recs, err := st.Records(ctx, name)
	if err != nil {
		return nil, err
	}
	d := &Device{Name: name, Changes: []Change{}, OpenAlerts: []Alert{}}
	d.Coverage = Coverage{Collections: []Collection{}, Gaps: []Gap{}, Alerts: []Alert{}}

	// The records up to the end of the period: the report says what was
	// true at Until, whatever happened later.
	var upto []store.Record
	for _, r := range recs {
		if !r.Time.After(opt.Until) {
			upto = append(upto, r)
		}
	}
	als, err := alerts.Rebuild(upto, alerts.Filter{Device: name})
	if err != nil {
		return nil, err
	}
	byRaised := append([]alerts.Alert(nil), als...)
	sort.SliceStable(byRaised, func(i, j int) bool {
		if !byRaised[i].FirstSeen.Equal(byRaised[j].FirstSeen) {
			return byRaised[i].FirstSeen.Before(byRaised[j].FirstSeen)
		}
		return byRaised[i].ID < byRaised[j].ID
	})

	var latest *store.Approval
	var firstTime time.Time
	var completes []Collection
	for i, r := range upto {
		if i == 0 {
			firstTime = r.Time
		}
		switch r.Type {
		case store.TypeApproval:
			var a store.Approval
			if err := json.Unmarshal(r.Body, &a); err != nil {
				return nil, fmt.Errorf("approval record %d: %w", r.Seq, err)
			}
			latest = &a
			if inPeriod(r.Time, opt) {
				c, err := approvedChange(ctx, st, r.Time, a)
				if err != nil {
					return nil, err
				}
				d.Changes = append(d.Changes, c)
			}
		case store.TypeSnapshot:
			var ref store.SnapshotRef
			if err := json.Unmarshal(r.Body, &ref); err != nil {
				return nil, fmt.Errorf("snapshot record %d: %w", r.Seq, err)
			}
			if ref.Complete {
				completes = append(completes, Collection{Time: r.Time, Snapshot: ref.ID})
			} else if inPeriod(r.Time, opt) {
				d.Coverage.Partial++
			}
		}
	}
	for _, a := range byRaised {
		if !inPeriod(a.FirstSeen, opt) {
			continue
		}
		ra := reportAlert(a)
		if monitoringCats[a.Category] {
			d.Coverage.Alerts = append(d.Coverage.Alerts, ra)
			continue
		}
		disp := a.Disposition
		if disp == "" {
			disp = alerts.Unauthorized
		}
		d.Changes = append(d.Changes, Change{Time: a.FirstSeen, Disposition: disp, Ticket: a.Ticket, Snapshot: a.Snapshot, Items: ra.Items, Alert: &ra})
	}
	sort.SliceStable(d.Changes, func(i, j int) bool { return d.Changes[i].Time.Before(d.Changes[j].Time) })
	for _, a := range byRaised {
		if a.Open() {
			d.OpenAlerts = append(d.OpenAlerts, reportAlert(a))
		}
	}

	// Coverage: complete collections in the period, and gaps longer than
	// the interval between the start of monitoring (or of the period) and
	// its end.
	start := opt.Since
	if firstTime.After(start) {
		start = firstTime
	}
	prev := start
	for _, c := range completes {
		if c.Time.After(opt.Since) || c.Time.Equal(opt.Since) {
			d.Coverage.Collections = append(d.Coverage.Collections, c)
		}
		if c.Time.After(prev) {
			if c.Time.Sub(prev) > opt.Interval {
				d.Coverage.Gaps = append(d.Coverage.Gaps, Gap{From: prev, To: c.Time, Hours: c.Time.Sub(prev).Hours()})
			}
			prev = c.Time
		}
		d.Coverage.LastComplete = c.Time
	}
	if !firstTime.IsZero() && opt.Until.Sub(prev) > opt.Interval {
		d.Coverage.Gaps = append(d.Coverage.Gaps, Gap{From: prev, To: opt.Until, Hours: opt.Until.Sub(prev).Hours(), Open: true})
	}

	// Identity and protocol from the newest snapshot up to Until.
	var newest *snapshots.Snapshot
	for i := len(upto) - 1; i >= 0; i-- {
		if upto[i].Type != store.TypeSnapshot {
			continue
		}
		var ref store.SnapshotRef
		if err := json.Unmarshal(upto[i].Body, &ref); err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w", upto[i].Seq, err)
		}
		s, err := st.Snapshot(ctx, ref.Digest)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", ref.ID, err)
		}
		newest = s
		break
	}
	if latest != nil {
		s, err := st.Snapshot(ctx, latest.Digest)
		if err != nil {
			return nil, fmt.Errorf("baseline %s: %w", latest.Snapshot, err)
		}
		d.Baseline = baseline(s, *latest)
		if newest == nil {
			newest = s
		}
	}
	if newest != nil {
		d.Protocol, d.Endpoint, d.Identity = newest.Protocol, newest.Endpoint, newest.Identity
	}
	return d, nil
}

// approvedChange describes an approval: the items that differ between the
// old and the new baseline.
func approvedChange(ctx context.Context, st store.Store, at time.Time, a store.Approval) (Change, error) {
	c := Change{Time: at, Disposition: DispApproved, By: a.By, OSUser: a.OSUser, Ticket: a.Ticket, Comment: a.Comment, Snapshot: a.Snapshot, Items: []string{}}
	cur, err := st.Snapshot(ctx, a.Digest)
	if err != nil {
		return c, fmt.Errorf("approved snapshot %s: %w", a.Snapshot, err)
	}
	if a.OldBaseline == "" {
		c.Items = append(c.Items, fmt.Sprintf("first baseline: %d items", len(cur.Items)))
		return c, nil
	}
	old, err := st.Snapshot(ctx, a.OldBaseline)
	if err != nil {
		return c, fmt.Errorf("previous baseline %s: %w", short(a.OldBaseline), err)
	}
	c.OldBaseline = old.ID
	rep := diffing.Compare(old, cur, diffing.Options{IgnoreInfo: true})
	for _, ch := range rep.Changes {
		if ch.Info || ch.Type == diffing.NotRead {
			continue
		}
		c.Items = append(c.Items, fmt.Sprintf("%s (%s): %s -> %s", diffing.Printable(ch.Path), ch.Type, sideText(ch.Old), sideText(ch.New)))
	}
	return c, nil
}

func sideText(s *diffing.Side) string {
	if s == nil {
		return "(none)"
	}
	if s.Value.Type == snapshots.TypeNone {
		return "(no value)"
	}
	return diffing.Printable(diffing.ValueText(s.Value, s.Attrs))
}

func short(d string) string {
	if len(d) > snapshots.IDLength {
		return d[:snapshots.IDLength]
	}
	return d
}

func baseline(s *snapshots.Snapshot, a store.Approval) *Baseline {
	b := &Baseline{SnapshotID: s.ID, Digest: s.Digest, TakenAt: s.TakenAt.UTC(), Approval: a}
	for _, c := range categoryOrder {
		cat := Category{ID: c.id, Title: c.title, Items: []Item{}}
		for _, it := range s.Items {
			for _, k := range c.kinds {
				if it.Kind == k {
					cat.Items = append(cat.Items, baselineItem(it))
				}
			}
		}
		b.Categories = append(b.Categories, cat)
	}
	return b
}

func baselineItem(it snapshots.Item) Item {
	v := "(no value)"
	if it.Value.Type != snapshots.TypeNone {
		v = diffing.Printable(diffing.ValueText(it.Value, it.Attrs))
	}
	keys := make([]string, 0, len(it.Attrs))
	for k := range it.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var attrs []string
	for _, k := range keys {
		attrs = append(attrs, diffing.Printable(k+"="+it.Attrs[k]))
	}
	src := string(it.Provenance.Source)
	if it.Provenance.Reason != "" {
		src += ": " + it.Provenance.Reason
	}
	return Item{Path: diffing.Printable(it.Path), Kind: string(it.Kind), Value: v, Attrs: strings.Join(attrs, "; "), Source: diffing.Printable(src), Hash: it.Hash}
}

func reportAlert(a alerts.Alert) Alert {
	r := Alert{
		ID: a.ID, Severity: string(a.Severity), Category: a.Category, Title: a.Title, Disposition: a.Disposition,
		Ticket: a.Ticket, Raised: a.FirstSeen, LastSeen: a.LastSeen, Count: a.Count, Status: a.Status,
		Items: []string{}, Acks: nonNil(a.Acks), Resolved: a.Resolved,
	}
	if a.Technique != nil {
		r.Technique = a.Technique.ID + " " + a.Technique.Name + " (ATT&CK for ICS " + a.AttackVersion + ")"
	}
	for _, it := range a.Items {
		s := diffing.Printable(it.Path) + " (" + it.Change + ")"
		if it.Old != "" || it.New != "" {
			s += ": " + orNone(it.Old) + " -> " + orNone(it.New)
		}
		if it.Reason != "" {
			s += ": " + it.Reason
		}
		r.Items = append(r.Items, diffing.Printable(s))
	}
	for _, reason := range a.Reasons {
		r.Items = append(r.Items, diffing.Printable(reason))
	}
	return r
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
