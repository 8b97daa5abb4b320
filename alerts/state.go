package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/plcwatch/plcwatch/store"
)

// Decisions a person may record when acknowledging an alert.
var Decisions = []string{"investigating", "authorized", DecisionFalsePositive, "escalated", "resolved"}

// DecisionFalsePositive is the decision that suppresses the exact finding
// (the same items with the same old and new values, so the same
// fingerprint) while it lasts; monitor resolves the alert when a complete
// read no longer shows the finding, so a later occurrence is a new alert.
const DecisionFalsePositive = "false_positive"

// StatusResolved is the status of an alert whose condition ended.
const StatusResolved = "resolved"

// ErrUnknownAlert is returned by Ack for an id no device has.
var ErrUnknownAlert = errors.New("no such alert")

// Status values of an alert (an acknowledged one reads
// "acknowledged (DECISION)" with the latest decision).
const (
	StatusOpen = "open"
)

// Raise stores alerts. An alert whose fingerprint matches one already
// raised on its device that is still current (no baseline was approved on
// the device after it was last seen) is recorded as seen again (an
// alert_seen record: last seen, count and snapshot move) instead of being
// raised a second time; when that alert's latest acknowledgement says
// false_positive, the repeated alert comes back with Suppressed set (sinks
// should not be told). A new alert gets its final id here (see idOf). It
// returns the newly raised and the repeated alerts (with their updated
// state), and the records it appended, even when it fails part way.
//
// Two processes raising the same alert for one device at the same moment can
// both store it; the daemon and the CLI serialize checks per device with the
// device lock, which prevents that.
func Raise(ctx context.Context, st store.Store, als []Alert, snapshotID string, now time.Time) (raised, repeated []Alert, recs []store.Record, err error) {
	now = now.UTC()
	byDevice := map[string]*deviceAlerts{}
	for _, a := range als {
		da := byDevice[a.Device]
		if da == nil {
			ex, err := List(ctx, st, Filter{Device: a.Device})
			if err != nil {
				return raised, repeated, recs, fmt.Errorf("device %s: reading its alerts: %w", a.Device, err)
			}
			da = newDeviceAlerts(ex)
			byDevice[a.Device] = da
		}
		if old, ok := da.current[a.Fingerprint]; ok {
			seen := store.AlertSeen{Alert: old.ID, Snapshot: snapshotID, At: now}
			moved, items, err := contentMoved(*old, a)
			if err != nil {
				return raised, repeated, recs, fmt.Errorf("alert %s: %w", old.ID, err)
			}
			if moved {
				seen.Title, seen.Items, seen.Reasons = a.Title, items, a.Reasons
			}
			r, err := st.Append(ctx, a.Device, store.TypeAlertSeen, now, seen)
			if err != nil {
				return raised, repeated, recs, fmt.Errorf("recording alert %s seen again: %w", old.ID, err)
			}
			recs = append(recs, r)
			if moved {
				old.Title, old.Items, old.Reasons = a.Title, a.Items, a.Reasons
			}
			old.LastSeen = now
			old.Count++
			if snapshotID != "" {
				old.Snapshot = snapshotID
			}
			old.Suppressed = old.FalsePositive()
			repeated = append(repeated, *old)
			continue
		}
		a.ID = da.newID(a.Fingerprint)
		a.Raised = now
		a.FirstSeen, a.LastSeen, a.Count, a.Status, a.Acks, a.Superseded = time.Time{}, time.Time{}, 0, "", nil, false
		a.Resolved, a.Suppressed = nil, false
		r, err := st.Append(ctx, a.Device, store.TypeAlert, now, a)
		if err != nil {
			return raised, repeated, recs, fmt.Errorf("storing alert %s: %w", a.ID, err)
		}
		recs = append(recs, r)
		a.FirstSeen, a.LastSeen, a.Count, a.Status = now, now, 1, StatusOpen
		da.add(a)
		raised = append(raised, a)
	}
	return raised, repeated, recs, nil
}

// contentMoved reports whether what a found (its title, items and reasons)
// differs from the alert old as last recorded, and returns a's items as
// JSON for the alert_seen record. One fingerprint may cover findings that
// differ in detail (an "incomplete collection" with other items not read):
// the alert must show the latest, not the first.
func contentMoved(old, a Alert) (bool, json.RawMessage, error) {
	type content struct {
		Title   string   `json:"title"`
		Items   []Item   `json:"items"`
		Reasons []string `json:"reasons"`
	}
	was, err := json.Marshal(content{old.Title, old.Items, old.Reasons})
	if err != nil {
		return false, nil, fmt.Errorf("encoding its content: %w", err)
	}
	now, err := json.Marshal(content{a.Title, a.Items, a.Reasons})
	if err != nil {
		return false, nil, fmt.Errorf("encoding its content: %w", err)
	}
	if string(was) == string(now) {
		return false, nil, nil
	}
	items, err := json.Marshal(a.Items)
	if err != nil {
		return false, nil, fmt.Errorf("encoding its items: %w", err)
	}
	return true, items, nil
}

// deviceAlerts indexes one device's alerts for Raise.
type deviceAlerts struct {
	current map[string]*Alert // fingerprint -> current alert
	ids     map[string]bool
}

func newDeviceAlerts(ex []Alert) *deviceAlerts {
	da := &deviceAlerts{current: map[string]*Alert{}, ids: map[string]bool{}}
	for i := range ex {
		da.ids[ex[i].ID] = true
		if ex[i].Current() {
			da.current[ex[i].Fingerprint] = &ex[i]
		}
	}
	return da
}

func (da *deviceAlerts) add(a Alert) {
	da.ids[a.ID] = true
	da.current[a.Fingerprint] = &a
}

// newID returns the first id for fp that the device has not used.
func (da *deviceAlerts) newID(fp string) string {
	for n := 0; ; n++ {
		if id := idOf(fp, n); !da.ids[id] {
			return id
		}
	}
}

// Filter selects alerts for List.
type Filter struct {
	Device   string // "" for every device
	OpenOnly bool   // only alerts nobody acknowledged
}

// List rebuilds alerts and their state from the store's records (alert,
// ack, alert_resolved and approval) and the store's summaries of alert_seen
// records, newest last seen first: what Rebuild computes from the records,
// without reading a record per window (alert_seen records and approvals
// grow with history). A device whose summaries Rebuild could not use as
// they are (an alert_seen record before its alert) is rebuilt from all its
// records.
func List(ctx context.Context, st store.Store, f Filter) ([]Alert, error) {
	var recs []store.Record
	for _, typ := range []string{store.TypeAlert, store.TypeAck, store.TypeAlertResolved} {
		rs, err := st.RecordsOfType(ctx, f.Device, typ)
		if err != nil {
			return nil, fmt.Errorf("reading %s records: %w", typ, err)
		}
		recs = append(recs, rs...)
	}
	sums, err := st.AlertSeenSummaries(ctx, f.Device)
	if err != nil {
		return nil, fmt.Errorf("reading alert_seen summaries: %w", err)
	}
	approvals := map[string]int64{}
	for _, dev := range devicesOf(recs) {
		ap, err := st.Newest(ctx, dev, store.TypeApproval)
		switch {
		case err == nil:
			approvals[dev] = ap.Seq
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("reading the newest approval of %s: %w", dev, err)
		}
	}
	out, slow := rebuild(recs, sums, approvals, f)
	if len(slow) == 0 {
		return out, nil
	}
	// Rare: rebuild those devices from every record.
	var kept []Alert
	for _, a := range out {
		if !slow[a.Device] {
			kept = append(kept, a)
		}
	}
	for dev := range slow {
		var all []store.Record
		for _, typ := range []string{store.TypeAlert, store.TypeAlertSeen, store.TypeAck, store.TypeAlertResolved, store.TypeApproval} {
			rs, err := st.RecordsOfType(ctx, dev, typ)
			if err != nil {
				return nil, fmt.Errorf("reading %s records: %w", typ, err)
			}
			all = append(all, rs...)
		}
		as, err := Rebuild(all, Filter{Device: dev, OpenOnly: f.OpenOnly})
		if err != nil {
			return nil, err
		}
		kept = append(kept, as...)
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].LastSeen.After(kept[j].LastSeen) })
	return kept, nil
}

func devicesOf(recs []store.Record) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range recs {
		if r.Type == store.TypeAlert && !seen[r.Device] {
			seen[r.Device] = true
			out = append(out, r.Device)
		}
	}
	return out
}

// Rebuild computes alerts and their state from records of any order (they
// are put in chain order per device first); records of other types are
// ignored. An alert_seen or ack naming an alert the device does not have is
// ignored too. A malformed body is an error naming the record.
func Rebuild(recs []store.Record, f Filter) ([]Alert, error) {
	return rebuildErr(recs, nil, nil, f)
}

// rebuild is Rebuild with alert_seen records replaced by their summaries
// and approval records by the seq of each device's newest approval. It
// returns, instead of alerts, the devices whose summaries it cannot use (an
// alert_seen record older than its alert record, or a malformed record).
func rebuild(recs []store.Record, sums []store.SeenSummary, approvals map[string]int64, f Filter) ([]Alert, map[string]bool) {
	out, err := rebuildErr(recs, sums, approvals, f)
	if err == nil {
		return out, nil
	}
	var se *slowError
	if errors.As(err, &se) {
		return out, se.devices
	}
	// A malformed record: the full rebuild reports it.
	slow := map[string]bool{}
	for _, r := range recs {
		slow[r.Device] = true
	}
	return nil, slow
}

// slowError lists devices whose alert_seen summaries do not stand for their
// records in chain order.
type slowError struct{ devices map[string]bool }

func (e *slowError) Error() string { return "alert_seen summaries precede their alerts" }

func rebuildErr(recs []store.Record, sums []store.SeenSummary, approvals map[string]int64, f Filter) ([]Alert, error) {
	recs = append([]store.Record(nil), recs...)
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Device != recs[j].Device {
			return recs[i].Device < recs[j].Device
		}
		return recs[i].Seq < recs[j].Seq
	})
	type key struct{ device, id string }
	byID := map[key]*Alert{}
	var order []key
	lastApproval := map[string]int64{}
	lastSeenSeq := map[key]int64{}
	for _, r := range recs {
		if f.Device != "" && r.Device != f.Device {
			continue
		}
		switch r.Type {
		case store.TypeAlert:
			var a Alert
			if err := strictUnmarshal(r.Body, &a); err != nil {
				return nil, fmt.Errorf("device %s record %d: alert body: %w", r.Device, r.Seq, err)
			}
			if a.ID == "" || a.Fingerprint == "" {
				return nil, fmt.Errorf("device %s record %d: alert body without id or fingerprint", r.Device, r.Seq)
			}
			a.Device = r.Device
			a.FirstSeen, a.LastSeen, a.Count, a.Status, a.Acks, a.Superseded = r.Time.UTC(), r.Time.UTC(), 1, StatusOpen, nil, false
			a.Resolved, a.Suppressed = nil, false // derived from later records only
			k := key{r.Device, a.ID}
			if _, dup := byID[k]; !dup {
				order = append(order, k)
			}
			byID[k] = &a
			lastSeenSeq[k] = r.Seq
		case store.TypeAlertSeen:
			var s store.AlertSeen
			if err := strictUnmarshal(r.Body, &s); err != nil {
				return nil, fmt.Errorf("device %s record %d: alert_seen body: %w", r.Device, r.Seq, err)
			}
			k := key{r.Device, s.Alert}
			if a := byID[k]; a != nil {
				a.LastSeen = r.Time.UTC()
				a.Count++
				if s.Snapshot != "" {
					a.Snapshot = s.Snapshot
				}
				if s.Title != "" {
					var items []Item
					if len(s.Items) > 0 {
						if err := strictUnmarshal(s.Items, &items); err != nil {
							return nil, fmt.Errorf("device %s record %d: alert_seen items: %w", r.Device, r.Seq, err)
						}
					}
					a.Title, a.Items, a.Reasons = s.Title, items, s.Reasons
				}
				lastSeenSeq[k] = r.Seq
			}
		case store.TypeAck:
			var ack store.Ack
			if err := strictUnmarshal(r.Body, &ack); err != nil {
				return nil, fmt.Errorf("device %s record %d: ack body: %w", r.Device, r.Seq, err)
			}
			if a := byID[key{r.Device, ack.Alert}]; a != nil {
				a.Acks = append(a.Acks, ack)
				if a.Resolved == nil {
					a.Status = "acknowledged (" + ack.Decision + ")"
				}
			}
		case store.TypeAlertResolved:
			var res store.AlertResolved
			if err := strictUnmarshal(r.Body, &res); err != nil {
				return nil, fmt.Errorf("device %s record %d: alert_resolved body: %w", r.Device, r.Seq, err)
			}
			if a := byID[key{r.Device, res.Alert}]; a != nil && a.Resolved == nil {
				a.Resolved = &res
				a.Status = StatusResolved
			}
		case store.TypeApproval:
			lastApproval[r.Device] = r.Seq
		}
	}
	var slow map[string]bool
	for _, sm := range sums {
		if f.Device != "" && sm.Device != f.Device {
			continue
		}
		k := key{sm.Device, sm.Alert}
		a := byID[k]
		if a == nil {
			continue // names an alert the device does not have: ignored, as Rebuild does
		}
		if sm.FirstSeq < lastSeenSeq[k] {
			if slow == nil {
				slow = map[string]bool{}
			}
			slow[sm.Device] = true
			continue
		}
		a.LastSeen = sm.LastTime.UTC()
		a.Count += int(sm.Count)
		if sm.Snapshot != "" {
			a.Snapshot = sm.Snapshot
		}
		if sm.Title != "" {
			var items []Item
			if len(sm.Items) > 0 {
				if err := strictUnmarshal(sm.Items, &items); err != nil {
					return nil, fmt.Errorf("device %s alert %s: alert_seen summary items: %w", sm.Device, sm.Alert, err)
				}
			}
			a.Title, a.Items, a.Reasons = sm.Title, items, sm.Reasons
		}
		lastSeenSeq[k] = sm.LastSeq
	}
	for dev, seq := range approvals {
		lastApproval[dev] = max(lastApproval[dev], seq)
	}
	out := []Alert{}
	for _, k := range order {
		a := byID[k]
		if ap, ok := lastApproval[k.device]; ok && ap > lastSeenSeq[k] {
			a.Superseded = true
		}
		if f.OpenOnly && !a.Open() {
			continue
		}
		out = append(out, *a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	if slow != nil {
		return out, &slowError{devices: slow}
	}
	return out, nil
}

// Resolve records that the condition of each of the device's unresolved
// alerts that match ended (superseded ones too: an approval may come first): an alert_resolved record naming the snapshot that
// showed it and the reason. Alerts are never deleted; a resolved alert no
// longer counts as open, and the same problem found later raises a new
// alert. It returns the resolved alerts and the records appended, even when
// it fails part way.
func Resolve(ctx context.Context, st store.Store, device string, match func(Alert) bool, snapshotID, reason string, now time.Time) ([]Alert, []store.Record, error) {
	all, err := List(ctx, st, Filter{Device: device})
	if err != nil {
		return nil, nil, fmt.Errorf("device %s: reading its alerts: %w", device, err)
	}
	var done []Alert
	var recs []store.Record
	for _, a := range all {
		if a.Resolved != nil || !match(a) {
			continue
		}
		body := store.AlertResolved{Alert: a.ID, Snapshot: snapshotID, Reason: reason, At: now.UTC()}
		r, err := st.Append(ctx, device, store.TypeAlertResolved, now, body)
		if err != nil {
			return done, recs, fmt.Errorf("recording alert %s resolved: %w", a.ID, err)
		}
		recs = append(recs, r)
		a.Resolved, a.Status = &body, StatusResolved
		done = append(done, a)
	}
	return done, recs, nil
}

// strictUnmarshal decodes one JSON value and nothing after it.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// NormalizeID accepts an alert id as a person types it: any case, with or
// without the "A-" prefix, surrounding spaces ignored.
func NormalizeID(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	id = strings.TrimPrefix(id, strings.ToLower(IDPrefix))
	return IDPrefix + id
}

// Ack records a person's decision on an alert (k.Alert is set from alertID;
// k.At defaults to now). The decision must be one of Decisions, and By and
// Comment must be given. It never moves the baseline and never touches a
// controller. An acknowledged alert is no longer open.
func Ack(ctx context.Context, st store.Store, alertID string, k store.Ack) (store.Record, Alert, error) {
	if !validDecision(k.Decision) {
		return store.Record{}, Alert{}, fmt.Errorf("--decision %q: want one of %s", k.Decision, strings.Join(Decisions, ", "))
	}
	if strings.TrimSpace(k.By) == "" {
		return store.Record{}, Alert{}, errors.New("--by: want the name of the person deciding")
	}
	if strings.TrimSpace(k.Comment) == "" {
		return store.Record{}, Alert{}, errors.New("--comment: say what was decided and why")
	}
	if k.At.IsZero() {
		k.At = time.Now()
	}
	k.At = k.At.UTC()
	all, err := List(ctx, st, Filter{})
	if err != nil {
		return store.Record{}, Alert{}, err
	}
	a, err := Find(all, alertID)
	if err != nil {
		return store.Record{}, Alert{}, err
	}
	k.Alert = a.ID
	r, err := st.Append(ctx, a.Device, store.TypeAck, k.At, k)
	if err != nil {
		return r, a, fmt.Errorf("recording the acknowledgement of %s: %w", a.ID, err)
	}
	a.Acks = append(a.Acks, k)
	a.Status = "acknowledged (" + k.Decision + ")"
	return r, a, nil
}

// MinIDPrefix is the fewest hex digits of an alert id Find accepts.
const MinIDPrefix = 4

// ErrAmbiguousAlert is returned by Find for an id prefix that names more
// than one alert.
var ErrAmbiguousAlert = errors.New("ambiguous alert id prefix")

// Find returns the one alert of all whose id is, or starts with, id (as a
// person types it: any case, with or without "A-"; a prefix needs at least
// MinIDPrefix hex digits). No match is ErrUnknownAlert; several are
// ErrAmbiguousAlert, with the candidates (id, device, title) in the message.
func Find(all []Alert, id string) (Alert, error) {
	want := NormalizeID(id)
	digits := strings.TrimPrefix(want, IDPrefix)
	if len(digits) < MinIDPrefix || strings.Trim(digits, "0123456789abcdef") != "" {
		return Alert{}, fmt.Errorf("alert id %q: want A- and at least %d hex digits (see plcwatch alerts)", id, MinIDPrefix)
	}
	var exact, prefixed []Alert
	for _, a := range all {
		switch {
		case a.ID == want:
			exact = append(exact, a)
		case strings.HasPrefix(a.ID, want):
			prefixed = append(prefixed, a)
		}
	}
	found := exact
	if len(found) == 0 {
		found = prefixed
	}
	switch len(found) {
	case 0:
		return Alert{}, fmt.Errorf("%w: %q (see plcwatch alerts)", ErrUnknownAlert, id)
	case 1:
		return found[0], nil
	}
	var cands []string
	for _, a := range found {
		cands = append(cands, fmt.Sprintf("%s (%s: %s)", a.ID, a.Device, a.Title))
	}
	sort.Strings(cands)
	return Alert{}, fmt.Errorf("%w %q: it names %d alerts: %s; give more digits", ErrAmbiguousAlert, id, len(found), strings.Join(cands, "; "))
}

func validDecision(d string) bool {
	for _, x := range Decisions {
		if x == d {
			return true
		}
	}
	return false
}
