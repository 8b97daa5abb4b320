// Package alerts turns differences against the approved baseline into
// alerts a person can act on, stores them in the evidence chain, and tells
// people through sinks (console, JSONL file, local syslog).
//
// Severity scale (highest first):
//
//	critical  the controller's integrity or protection was weakened: system
//	          firmware replaced, protection lowered (a lower protection level,
//	          a password cleared, a protection item gone)
//	high      behaviour may have changed: logic, tasking, setpoints, alarm
//	          settings, module firmware, operating mode, protection raised,
//	          security settings, a replaced device, a change indicator that
//	          moved with no readable content change
//	medium    monitoring is impaired or hardware changed: incomplete or failed
//	          collection, monitoring overdue, a missed window, hardware or
//	          identity details changed, an overdue planned change
//	low       no functional change observed: logic re-downloaded with
//	          identical content
//	info      recorded for the record only; never raised as an alert
//
// Severity says what the change could do; Disposition says whether it was
// expected ("planned, pending review" while a planned change is open on the
// device, else "unauthorized"). Informational changes (info items, changes
// in classification only), changes within a deadband, items not read and
// metadata-only changes of anything but logic raise nothing.
//
// Every alert about a change names the MITRE ATT&CK for ICS technique it
// corresponds to, with the ATT&CK version of the mapping (AttackVersion).
package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// AttackVersion is the MITRE ATT&CK for ICS version the technique mapping
// follows (v19 renamed the firmware techniques to T1693.001/.002).
const AttackVersion = "v19"

// Severity is one step of the documented scale.
type Severity string

// The severities.
const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// Rank orders severities: critical is 4, info 0.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// Technique is a MITRE ATT&CK for ICS technique.
type Technique struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// The techniques plcwatch maps to.
var (
	T0843     = Technique{"T0843", "Program Download"}
	T0889     = Technique{"T0889", "Modify Program"}
	T0821     = Technique{"T0821", "Modify Controller Tasking"}
	T0836     = Technique{"T0836", "Modify Parameter"}
	T0838     = Technique{"T0838", "Modify Alarm Settings"}
	T1693_001 = Technique{"T1693.001", "Modify Firmware: System Firmware"}
	T1693_002 = Technique{"T1693.002", "Modify Firmware: Module Firmware"}
	T0858     = Technique{"T0858", "Change Operating Mode"}
	T0892     = Technique{"T0892", "Change Credential"}
)

// Categories of alerts.
const (
	CatLogic              = "logic"
	CatTasking            = "tasking"
	CatSetpoint           = "setpoint"
	CatAlarmSetting       = "alarm_setting"
	CatFirmware           = "firmware"
	CatModuleFirmware     = "module_firmware"
	CatHardware           = "hardware"
	CatMode               = "mode"
	CatProtection         = "protection"
	CatSecurity           = "security"
	CatIdentity           = "identity"
	CatDeviceReplaced     = "device_replaced"
	CatLogicNotObservable = "logic_not_observable"
	CatRedownload         = "redownload"
	CatIncomplete         = "collection_incomplete"
	CatOverdue            = "monitoring_overdue"
	CatWindowMissed       = "window_missed"
	CatChangeOverdue      = "change_overdue"
	CatCollectionFailed   = "collection_failed"
	CatHostFailure        = "host_failure"
)

type catInfo struct {
	sev   Severity
	tech  *Technique
	title string
	why   string
}

var categories = sync.OnceValue(func() map[string]catInfo {
	return map[string]catInfo{
		CatLogic:              {High, &T0889, "logic changed", "changed program logic changes what the controller does to the process"},
		CatTasking:            {High, &T0821, "controller tasking changed", "changed tasks or organization blocks change when and how often logic runs"},
		CatSetpoint:           {High, &T0836, "setpoints changed", "changed limits, gains or timers move the process away from its approved operating envelope"},
		CatAlarmSetting:       {High, &T0838, "alarm settings changed", "changed alarm limits can hide an abnormal process condition from operators"},
		CatFirmware:           {Critical, &T1693_001, "controller firmware changed", "unapproved firmware can change any behaviour of the controller and hide it"},
		CatModuleFirmware:     {High, &T1693_002, "module firmware changed", "unapproved module firmware can alter I/O or communication behaviour"},
		CatHardware:           {Medium, nil, "hardware configuration changed", "an added, removed or swapped module changes the controller's I/O"},
		CatMode:               {High, &T0858, "operating mode changed", "a mode change can stop the process or enable program downloads"},
		CatProtection:         {High, &T0892, "protection changed", "weakened protection lets anyone on the network change the controller"},
		CatSecurity:           {High, &T0892, "security settings changed", "changed endpoints, security policies or certificates can expose the controller or allow impersonation"},
		CatIdentity:           {Medium, nil, "identity details changed", "the controller reports a different identity than the approved baseline"},
		CatDeviceReplaced:     {High, nil, "device replaced", "a different physical controller (new serial number) answers at this address"},
		CatLogicNotObservable: {High, &T0889, "logic changed, content not observable", "the controller's change indicator moved but no readable content changed: an online edit looks exactly like this"},
		CatRedownload:         {Low, &T0843, "re-downloaded, content identical", "logic was downloaded again without a content change; confirm it was planned"},
		CatIncomplete:         {Medium, nil, "incomplete collection", "part of the controller could not be read, so changes there are unknown"},
		CatOverdue:            {Medium, nil, "monitoring overdue", "no complete snapshot within the required period (NERC CIP-010 R2: 35 days)"},
		CatWindowMissed:       {Medium, nil, "maintenance window missed", "a scheduled check did not run, so changes may go unnoticed"},
		CatChangeOverdue:      {Medium, nil, "planned change overdue", "a planned change passed its end time without an approved after-snapshot"},
		CatCollectionFailed:   {Medium, nil, "collection failed", "the controller could not be read at all"},
		CatHostFailure:        {Medium, nil, "host failure", "the monitoring host itself failed (disk, store, alert log): not a finding about any controller"},
	}
})

// Item is one changed item in an alert.
type Item struct {
	Path   string         `json:"path"`
	Kind   snapshots.Kind `json:"kind"`
	Change string         `json:"change"`
	Old    string         `json:"old,omitempty"`
	New    string         `json:"new,omitempty"`
	Fields []string       `json:"fields,omitempty"`
	// Delta is new minus old for numeric values.
	Delta    *float64 `json:"delta,omitempty"`
	LineDiff string   `json:"line_diff,omitempty"`
	OldHash  string   `json:"old_hash,omitempty"`
	NewHash  string   `json:"new_hash,omitempty"`
	// Reason says why an item was not read (incomplete collection).
	Reason string `json:"reason,omitempty"`

	// key identifies the finding for the fingerprint (see findingKey).
	key string
}

// Alert is one alert. The fields up to Raised are stored when it is first
// raised; the rest is derived from later records (seen again, acks).
type Alert struct {
	ID            string     `json:"id"`
	Device        string     `json:"device"`
	Severity      Severity   `json:"severity"`
	Category      string     `json:"category"`
	Title         string     `json:"title"`
	Why           string     `json:"why"`
	Technique     *Technique `json:"technique,omitempty"`
	AttackVersion string     `json:"attack_version,omitempty"`
	Items         []Item     `json:"items,omitempty"`
	Reasons       []string   `json:"reasons,omitempty"`
	Baseline      string     `json:"baseline,omitempty"`
	Snapshot      string     `json:"snapshot,omitempty"`
	// Disposition is "unauthorized", or "planned, pending review" while a
	// planned change (Ticket) is open on the device; empty for alerts that
	// are not about a change (incomplete collection, overdue monitoring).
	Disposition string    `json:"disposition,omitempty"`
	Ticket      string    `json:"ticket,omitempty"`
	Fingerprint string    `json:"fingerprint"`
	Raised      time.Time `json:"raised"`

	FirstSeen time.Time   `json:"first_seen,omitzero"`
	LastSeen  time.Time   `json:"last_seen,omitzero"`
	Count     int         `json:"count,omitempty"`
	Acks      []store.Ack `json:"acks,omitempty"`
	Status    string      `json:"status,omitempty"`
	// Superseded is true once a baseline was approved on the device after
	// the alert was last seen: the same change found again raises a new
	// alert rather than counting against this one.
	Superseded bool `json:"superseded,omitempty"`
	// Resolved is set once the alert's condition ended (see Resolve): the
	// alert stays in the chain, and the same problem found again later
	// raises a new alert.
	Resolved *store.AlertResolved `json:"resolved,omitempty"`
	// Suppressed is true on an alert found again whose latest
	// acknowledgement says false_positive: the same finding is recorded as
	// seen but not reported again until it changes.
	Suppressed bool `json:"suppressed,omitempty"`
}

// Open reports whether the alert still asks for a person: nobody has
// acknowledged it and its condition has not ended.
func (a *Alert) Open() bool { return len(a.Acks) == 0 && a.Resolved == nil }

// Current reports whether a finding with the same fingerprint counts against
// this alert (seen again) rather than raising a new one: no baseline was
// approved since it was last seen and it was not resolved.
func (a *Alert) Current() bool { return !a.Superseded && a.Resolved == nil }

// FalsePositive reports whether the latest acknowledgement of the alert
// says it was a false positive.
func (a *Alert) FalsePositive() bool {
	return len(a.Acks) > 0 && a.Acks[len(a.Acks)-1].Decision == DecisionFalsePositive
}

// Dispositions.
const (
	Unauthorized = "unauthorized"
	Planned      = "planned, pending review"
)

// Input is what Derive needs besides the report.
type Input struct {
	Device string
	// Ticket of the device's open planned change, if any.
	Ticket string
	Now    time.Time
}

// Derive returns the alerts a comparison with the baseline warrants: one per
// category of unapproved change, naming every item of that category, plus
// "incomplete collection" for a partial snapshot. Items not read,
// informational changes (info items, classification changes) and changes
// within a deadband raise nothing; a touched item raises only when it is
// logic (re-downloaded, content identical). Change indicators (checksums,
// change counters) that moved join the logic, tasking or re-download alert
// when one exists, and otherwise raise "logic changed, content not
// observable". The result is sorted by severity, highest first.
func Derive(rep *diffing.Report, in Input) []Alert {
	if in.Device == "" {
		in.Device = rep.New.Device
		if in.Device == "" {
			in.Device = rep.Old.Device
		}
	}
	groups := map[string][]diffing.Change{}
	var indicators []diffing.Change
	var notRead []diffing.Change
	for _, c := range rep.Changes {
		if c.Type == diffing.NotRead {
			if c.Reason != diffing.ReasonNotPreviously {
				notRead = append(notRead, c)
			}
			continue
		}
		if c.Info || c.Kind == snapshots.KindInfo {
			continue
		}
		if c.Indicator && c.Type == diffing.Changed {
			indicators = append(indicators, c)
			continue
		}
		if c.Type == diffing.Touched && c.Kind != snapshots.KindLogic {
			continue // metadata moved, content identical: nothing to act on
		}
		cat := category(c)
		groups[cat] = append(groups[cat], c)
	}
	if len(indicators) > 0 {
		switch {
		case len(groups[CatLogic]) > 0:
			groups[CatLogic] = append(groups[CatLogic], indicators...)
		case len(groups[CatTasking]) > 0:
			groups[CatTasking] = append(groups[CatTasking], indicators...)
		case len(groups[CatRedownload]) > 0:
			groups[CatRedownload] = append(groups[CatRedownload], indicators...)
		default:
			groups[CatLogicNotObservable] = indicators
		}
	}
	var out []Alert
	for cat, cs := range groups {
		a := newAlert(in, cat, rep)
		for _, c := range cs {
			a.Items = append(a.Items, item(c))
		}
		if cat == CatProtection && lowered(cs) {
			a.Severity = Critical
			a.Title = "protection lowered"
		}
		if cat == CatLogic && allAdded(cs) {
			a.Technique = &T0843
		}
		if cat == CatMode && len(a.Items) == 1 && a.Items[0].Change == string(diffing.Changed) {
			// "operating mode changed: RUN -> STOP"
			a.Title = fmt.Sprintf("%s: %s -> %s", a.Title, plainValue(cs[0].Old), plainValue(cs[0].New))
		} else {
			a.Title = fmt.Sprintf("%s: %s", a.Title, describe(a.Items))
		}
		a.finish(nil)
		out = append(out, a)
	}
	if !rep.New.Complete || len(notRead) > 0 {
		out = append(out, incomplete(rep, in, notRead))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Severity.Rank() != out[j].Severity.Rank() {
			return out[i].Severity.Rank() > out[j].Severity.Rank()
		}
		return out[i].Category < out[j].Category
	})
	return out
}

// incomplete is the one "incomplete collection" alert of a comparison: it
// names every item not read with its reason, and the snapshot's own reasons.
// Its fingerprint is the device and category alone: what failed and why
// (counts, timings, addresses) varies from one reading to the next, and it
// is one problem until a complete read resolves it.
func incomplete(rep *diffing.Report, in Input, notRead []diffing.Change) Alert {
	a := newAlert(in, CatIncomplete, rep)
	a.Reasons = append([]string(nil), rep.New.Reasons...)
	var named []string
	for _, c := range notRead {
		it := Item{Path: c.Path, Kind: c.Kind, Change: string(diffing.NotRead), Reason: c.Reason}
		if c.Old != nil && c.Old.Value.Type != snapshots.TypeNone {
			it.Old = show(c.Old, nil, false)
		}
		a.Items = append(a.Items, it)
		if len(named) < 3 {
			named = append(named, fmt.Sprintf("%s (%s)", c.Path, c.Reason))
		}
	}
	var detail []string
	if len(notRead) > 0 {
		d := fmt.Sprintf("%d item(s) not read: %s", len(notRead), strings.Join(named, ", "))
		if len(notRead) > len(named) {
			d += fmt.Sprintf(" and %d more", len(notRead)-len(named))
		}
		detail = append(detail, d)
	}
	// The snapshot's reasons go into the title unless they are about an
	// item already named above ("path: status"): the items keep them.
	for _, r := range rep.New.Reasons {
		about := false
		for _, c := range notRead {
			if strings.HasPrefix(r, c.Path+": ") {
				about = true
				break
			}
		}
		if !about {
			detail = append(detail, r)
		}
	}
	a.Title = fmt.Sprintf("%s: %s", a.Title, strings.Join(detail, "; "))
	a.Fingerprint = fingerprint(a.Device, a.Category, nil)
	a.ID = idOf(a.Fingerprint, 0)
	return a
}

// Event returns an alert that is not a diff: monitoring overdue, a missed
// window, an overdue planned change, a failed collection. key distinguishes
// distinct events of one category (such as the window occurrence).
func Event(device, cat, detail, key string, now time.Time) Alert {
	a := newAlert(Input{Device: device, Now: now}, cat, nil)
	a.Title = a.Title + ": " + detail
	a.Reasons = []string{detail}
	a.Disposition = ""
	a.Fingerprint = fingerprint(device, cat, []string{key})
	a.ID = idOf(a.Fingerprint, 0)
	return a
}

func newAlert(in Input, cat string, rep *diffing.Report) Alert {
	ci, ok := categories()[cat]
	if !ok {
		ci = catInfo{sev: Medium, title: strings.ReplaceAll(cat, "_", " ")}
	}
	a := Alert{Device: in.Device, Severity: ci.sev, Category: cat, Title: ci.title, Why: ci.why,
		Technique: ci.tech, Disposition: Unauthorized, Raised: in.Now.UTC()}
	if cat == CatIncomplete {
		a.Disposition = ""
	}
	if ci.tech != nil {
		a.AttackVersion = AttackVersion
	}
	if in.Ticket != "" {
		a.Disposition, a.Ticket = Planned, in.Ticket
	}
	if rep != nil {
		a.Baseline, a.Snapshot = rep.Old.ID, rep.New.ID
	}
	return a
}

// finish sets the fingerprint (over device, category and the sorted
// finding keys of the items, plus extra) and the provisional id.
func (a *Alert) finish(extra []string) {
	var parts []string
	for _, it := range a.Items {
		parts = append(parts, it.key)
	}
	for _, e := range extra {
		parts = append(parts, "extra\x00"+e)
	}
	sort.Strings(parts)
	a.Fingerprint = fingerprint(a.Device, a.Category, parts)
	a.ID = idOf(a.Fingerprint, 0)
}

// fingerprint hashes the parts with their lengths, so no choice of paths or
// values can make two different sets hash alike.
func fingerprint(device, cat string, parts []string) string {
	h := sha256.New()
	for _, p := range append([]string{device, cat}, parts...) {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// IDPrefix starts every alert id.
const IDPrefix = "A-"

// idOf is the id of the n-th alert (from 0) raised on a device with one
// fingerprint: "A-" and 10 hex digits, short enough to type. The first
// occurrence uses the fingerprint's own digits; a later one (the same change
// again after an approval superseded the first) hashes the fingerprint with
// n, so ids stay unique.
func idOf(fp string, n int) string {
	if n == 0 {
		return IDPrefix + fp[:10]
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\n%d", fp, n)))
	return IDPrefix + hex.EncodeToString(sum[:5])
}

// pathControllerSerial is the item the S7 and Logix connectors record the
// controller's own serial number in.
const pathControllerSerial = "identity/serial"

// category maps one change to its alert category.
func category(c diffing.Change) string {
	switch c.Kind {
	case snapshots.KindLogic:
		if c.Type == diffing.Touched {
			return CatRedownload
		}
		if c.Role == snapshots.RoleTasking {
			return CatTasking
		}
		return CatLogic
	case snapshots.KindSetpoint:
		if c.Role == snapshots.RoleAlarm {
			return CatAlarmSetting
		}
		return CatSetpoint
	case snapshots.KindFirmware:
		if c.Scope == snapshots.ScopeModule {
			return CatModuleFirmware
		}
		return CatFirmware
	case snapshots.KindHardware:
		// The controller's own serial number (an S7 CPU's, from SZL
		// 0x001C, is recorded as hardware): a new one is another
		// controller at this address, whatever kind it is recorded as.
		if c.Path == pathControllerSerial && c.Type == diffing.Changed {
			return CatDeviceReplaced
		}
		return CatHardware
	case snapshots.KindMode:
		return CatMode
	case snapshots.KindProtection:
		return CatProtection
	case snapshots.KindSecurity:
		return CatSecurity
	case snapshots.KindIdentity:
		if strings.Contains(strings.ToLower(c.Path), "serial") && c.Type == diffing.Changed {
			return CatDeviceReplaced
		}
		return CatIdentity
	}
	return CatLogic
}

// findingKey identifies one item's finding: its path, the change and both
// sides. For logic the sides are the content hashes (a block's download
// time is part of a re-download finding); for anything else they are the
// value and the attributes that are not metadata, so a mode alert is keyed
// by the modes, not by a transition time that moves on every restart. An
// address attribute (snapshots.IsAddress) is never part of the key.
func findingKey(c diffing.Change) string {
	sideKey := func(s *diffing.Side) string {
		if s == nil {
			return ""
		}
		address := false
		for k := range s.Attrs {
			address = address || snapshots.IsAddress(k)
		}
		if c.Kind == snapshots.KindLogic && !address {
			return s.Hash
		}
		// An address (a NodeId a server renumbers on restart) is never
		// part of the key; logic keeps its metadata.
		parts := []string{s.Value.Type, s.Value.Raw, s.Value.Unit}
		for _, k := range sortedKeys(s.Attrs) {
			meta := strings.HasPrefix(k, snapshots.MetaPrefix) && c.Kind != snapshots.KindLogic
			if !meta && !snapshots.IsAddress(k) {
				parts = append(parts, k+"="+s.Attrs[k])
			}
		}
		return fingerprint("", "", parts)
	}
	return strings.Join([]string{c.Path, string(c.Type), sideKey(c.Old), sideKey(c.New)}, "\x00")
}

func item(c diffing.Change) Item {
	it := Item{Path: c.Path, Kind: c.Kind, Change: string(c.Type), Fields: c.Fields, Delta: c.Delta, LineDiff: c.LineDiff, key: findingKey(c)}
	if c.Kind != snapshots.KindLogic {
		// Metadata of anything but logic moves by itself: not shown as
		// part of what changed.
		var fs []string
		for _, f := range c.Fields {
			if !strings.HasPrefix(f, "attrs."+snapshots.MetaPrefix) {
				fs = append(fs, f)
			}
		}
		it.Fields = fs
	}
	// Attributes are shown only where they changed (or for an item added or
	// removed, where they describe it); unchanged ones are noise.
	changed := map[string]bool{}
	for _, f := range it.Fields {
		if k, ok := strings.CutPrefix(f, "attrs."); ok {
			changed[k] = true
		}
	}
	whole := c.Old == nil || c.New == nil
	if c.Old != nil {
		it.Old, it.OldHash = show(c.Old, changed, whole), c.Old.Hash
	}
	if c.New != nil {
		it.New, it.NewHash = show(c.New, changed, whole), c.New.Hash
	}
	return it
}

// plainValue is a value as a title shows it: an enumeration's name, else
// the raw text without quotes.
func plainValue(s *diffing.Side) string {
	if s == nil || s.Value.Type == snapshots.TypeNone {
		return "(none)"
	}
	if name := s.Attrs[snapshots.AttrValueName]; name != "" {
		return name
	}
	return s.Value.Raw
}

func show(s *diffing.Side, changed map[string]bool, all bool) string {
	v := diffing.ValueText(s.Value, s.Attrs)
	if s.Value.Type == snapshots.TypeText {
		v = fmt.Sprintf("(text, %d lines)", strings.Count(s.Value.Raw, "\n")+1)
	}
	var extra []string
	for _, k := range sortedKeys(s.Attrs) {
		if k == snapshots.AttrRole || k == snapshots.AttrScope || k == snapshots.AttrValueName || !(all || changed[k]) {
			continue
		}
		if s.Kind != snapshots.KindLogic && strings.HasPrefix(k, snapshots.MetaPrefix) {
			continue
		}
		extra = append(extra, k+"="+s.Attrs[k])
	}
	if len(extra) > 0 && len(extra) <= 6 {
		v += " [" + strings.Join(extra, " ") + "]"
	}
	return v
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// lowered reports whether protection was weakened: a numeric protection
// value went down (protection values read "higher is stronger", as S7
// protection levels 1-3 do), a boolean one went from true to false (a
// password no longer set), or a protection item was removed.
func lowered(cs []diffing.Change) bool {
	for _, c := range cs {
		if c.Type == diffing.Removed {
			return true
		}
		if c.Delta != nil && *c.Delta < 0 {
			return true
		}
		if c.Old != nil && c.New != nil && c.Old.Value.Type == snapshots.TypeBool && c.Old.Value.Raw == "true" && c.New.Value.Raw == "false" {
			return true
		}
	}
	return false
}

// allAdded reports whether the content changes are all blocks, programs or
// tags added or removed (a download, T0843); the change indicators that
// moved with them do not count.
func allAdded(cs []diffing.Change) bool {
	n := 0
	for _, c := range cs {
		if c.Indicator && c.Type == diffing.Changed {
			continue
		}
		if c.Type != diffing.Added && c.Type != diffing.Removed {
			return false
		}
		n++
	}
	return n > 0
}

// describe names what changed, exactly, for the title.
func describe(items []Item) string {
	var parts []string
	for i, it := range items {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(items)-3))
			break
		}
		switch it.Change {
		case "added":
			parts = append(parts, it.Path+" added")
		case "removed":
			parts = append(parts, it.Path+" removed")
		case "touched":
			parts = append(parts, it.Path+" re-downloaded")
		default:
			if len(it.Old) < 40 && len(it.New) < 40 && it.LineDiff == "" {
				parts = append(parts, fmt.Sprintf("%s %s -> %s", it.Path, it.Old, it.New))
			} else {
				parts = append(parts, it.Path+" changed")
			}
		}
	}
	return strings.Join(parts, ", ")
}
