// Package diffing compares two snapshots structurally. It is pure: the same
// two snapshots always give the same report.
package diffing

import (
	"math"
	"sort"
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"

	"github.com/plcwatch/plcwatch/snapshots"
)

// ChangeType says how an item differs.
type ChangeType string

// The change types.
const (
	Added   ChangeType = "added"
	Removed ChangeType = "removed"
	Changed ChangeType = "changed"
	// Touched: only metadata attributes (snapshots.MetaPrefix) differ, such
	// as a block's download timestamp: for logic, re-downloaded, content
	// identical; for any other kind informational (Change.Info), such as a
	// mode's transition time after a restart.
	Touched ChangeType = "touched"
	// NotRead: the item could not be read in the newer snapshot (a failed
	// or partial read). It is never evidence of removal.
	NotRead ChangeType = "not_read"
)

// Options tune a comparison.
type Options struct {
	// IgnoreInfo leaves out informational changes (see Change.Info).
	IgnoreInfo bool
}

// Side is one side of a change.
type Side struct {
	Value      snapshots.Value      `json:"value"`
	Attrs      map[string]string    `json:"attrs,omitempty"`
	Kind       snapshots.Kind       `json:"kind"`
	Hash       string               `json:"hash"`
	Provenance snapshots.Provenance `json:"provenance"`
}

// Change is one item that differs.
type Change struct {
	Path string         `json:"path"`
	Kind snapshots.Kind `json:"kind"`
	Type ChangeType     `json:"type"`
	Old  *Side          `json:"old,omitempty"`
	New  *Side          `json:"new,omitempty"`
	// Fields lists what differs: "value", "unit", "kind", "volatile",
	// "attrs.KEY".
	Fields []string `json:"fields,omitempty"`
	// Delta is new minus old for numeric values.
	Delta *float64 `json:"delta,omitempty"`
	// LineDiff is a unified-style line diff of long text values.
	LineDiff string `json:"line_diff,omitempty"`
	// Indicator marks a cheap change indicator (checksum, change counter).
	Indicator bool `json:"indicator,omitempty"`
	// Role is the item's role attribute (tasking, alarm), if any.
	Role string `json:"role,omitempty"`
	// Scope is the item's scope attribute (module), if any.
	Scope string `json:"scope,omitempty"`
	// Reason explains a not-read item ("not previously read" when the
	// older snapshot is the one that could not read it).
	Reason string `json:"reason,omitempty"`
	// Info marks informational changes: items of kind info, changes only
	// in how the rules classify an item (its kind, volatile or indicator
	// flag), which are configuration changes, not device changes, and
	// metadata-only changes of items that are not logic.
	// They never make a report unequal and never raise alerts.
	Info bool `json:"info,omitempty"`
}

// ReasonNotPreviously is the Reason of a NotRead change whose older side
// could not be read (the item is present now; nothing can be said about
// whether it changed).
const ReasonNotPreviously = "not previously read"

// ReasonNoValue is the Reason of a NotRead change whose newer side has no
// value although it is not volatile and the older side had one: the
// connector returned nothing (a Bad status, say) without marking the item.
const ReasonNoValue = "no value returned (the device gave no value and no reason)"

// ReasonAbsentPartial is the Reason of an item missing from a partial newer
// snapshot.
const ReasonAbsentPartial = "not in the partial snapshot"

// Suppressed is a numeric change within its deadband.
type Suppressed struct {
	Path     string  `json:"path"`
	Old      string  `json:"old"`
	New      string  `json:"new"`
	Delta    float64 `json:"delta"`
	Deadband float64 `json:"deadband"`
}

// SnapshotInfo names one side of the comparison.
type SnapshotInfo struct {
	ID       string   `json:"id"`
	Digest   string   `json:"digest"`
	Device   string   `json:"device"`
	Label    string   `json:"label,omitempty"`
	TakenAt  string   `json:"taken_at"`
	Complete bool     `json:"complete"`
	Reasons  []string `json:"reasons,omitempty"`
}

// Report is the result of Compare.
type Report struct {
	Old        SnapshotInfo `json:"old"`
	New        SnapshotInfo `json:"new"`
	Changes    []Change     `json:"changes"`
	Suppressed []Suppressed `json:"suppressed,omitempty"`
	// Counts by change type (not_read and informational changes included).
	Counts map[ChangeType]int `json:"counts"`
	// CountsByKind breaks Counts down by item kind.
	CountsByKind map[snapshots.Kind]map[ChangeType]int `json:"counts_by_kind"`
	// Info counts the informational changes (see Change.Info).
	Info int `json:"info"`
}

// Equal reports whether the report has no change other than informational
// ones (see Change.Info) and items not read: suppressed (within-deadband),
// informational and not-read changes do not count. A partial snapshot is
// reported through Partial, not through Equal. Exit codes follow Equal.
func (r *Report) Equal() bool {
	for _, c := range r.Changes {
		if c.Type != NotRead && !c.Info {
			return false
		}
	}
	return true
}

// Partial reports whether the newer snapshot was partial.
func (r *Report) Partial() bool { return !r.New.Complete }

func info(s *snapshots.Snapshot) SnapshotInfo {
	if s == nil {
		return SnapshotInfo{Complete: true}
	}
	return SnapshotInfo{ID: s.ID, Digest: s.Digest, Device: s.Device, Label: s.Label,
		TakenAt: s.TakenAt.UTC().Format("2006-01-02T15:04:05Z"), Complete: s.Status.Complete, Reasons: s.Status.Reasons}
}

func side(it *snapshots.Item) *Side {
	return &Side{Value: it.Value, Attrs: it.Attrs, Kind: it.Kind, Hash: it.Hash, Provenance: it.Provenance}
}

// Compare diffs old (usually the baseline) against new. Items match by path.
// An item absent from a partial new snapshot, or marked not read in it, is
// NotRead, never Removed; an item new has that a partial old snapshot lacks
// (or could not read) is NotRead with ReasonNotPreviously, never Added.
// Value changes of volatile items are ignored. A numeric value change within
// the deadband (new item's, else old's) is Suppressed, so comparing with the
// baseline catches drift in small steps. A nil snapshot stands for an empty,
// complete one.
func Compare(old, cur *snapshots.Snapshot, opt Options) *Report {
	if old == nil {
		old = &snapshots.Snapshot{Status: snapshots.Status{Complete: true}}
	}
	if cur == nil {
		cur = &snapshots.Snapshot{Status: snapshots.Status{Complete: true}}
	}
	r := &Report{Old: info(old), New: info(cur), Counts: map[ChangeType]int{}, CountsByKind: map[snapshots.Kind]map[ChangeType]int{}}
	oldBy := map[string]*snapshots.Item{}
	for i := range old.Items {
		if _, dup := oldBy[old.Items[i].Path]; !dup {
			oldBy[old.Items[i].Path] = &old.Items[i]
		}
	}
	seen := map[string]bool{}
	for i := range cur.Items {
		n := &cur.Items[i]
		if seen[n.Path] {
			continue // a duplicated path (never in a finalized snapshot): first wins
		}
		seen[n.Path] = true
		o := oldBy[n.Path]
		switch {
		case n.Provenance.Source == snapshots.SourceNotRead && o == nil:
			r.add(opt, withMeta(Change{Path: n.Path, Kind: n.Kind, Type: NotRead, New: side(n), Reason: reasonOf(n)}, n))
		case o == nil && !old.Status.Complete:
			r.add(opt, withMeta(Change{Path: n.Path, Kind: n.Kind, Type: NotRead, New: side(n), Reason: ReasonNotPreviously}, n))
		case o == nil:
			r.add(opt, withMeta(Change{Path: n.Path, Kind: n.Kind, Type: Added, New: side(n)}, n))
		case unread(o) && !unread(n) && o.Value.Type != snapshots.TypeNone:
			// An item recorded with a value although marked not observable
			// (an OPC UA variable that answered an empty value) compares
			// by that value: an approved empty value that now holds 42 is
			// a change.
			if c, ok := r.compareItem(o, n); ok {
				r.add(opt, c)
			}
		case unread(n) || unread(o):
			// A failed read is never a change: only what was read on both
			// sides is compared. Two equally unread sides are no news, nor
			// is a value read before and recorded the same now (an empty
			// value a store from before its mark holds as read).
			if unread(n) && (unread(o) || o.Value.Type != snapshots.TypeNone) && sameContent(o, n) {
				continue
			}
			c := withMeta(Change{Path: n.Path, Kind: o.Kind, Type: NotRead, Old: side(o), New: side(n), Reason: reasonOf(n)}, n)
			if !unread(n) {
				if sameContent(o, n) {
					continue
				}
				c.Kind, c.Reason = n.Kind, ReasonNotPreviously
			}
			r.add(opt, c)
		case valueLost(o, n):
			// A connector that returned no value without saying why (a Bad
			// status it did not mark): not read, never "42 -> (not captured)".
			r.add(opt, withMeta(Change{Path: n.Path, Kind: o.Kind, Type: NotRead, Old: side(o), New: side(n), Reason: ReasonNoValue}, n))
		case valueLost(n, o):
			r.add(opt, withMeta(Change{Path: n.Path, Kind: n.Kind, Type: NotRead, Old: side(o), New: side(n), Reason: ReasonNotPreviously}, n))
		default:
			if c, ok := r.compareItem(o, n); ok {
				r.add(opt, c)
			}
		}
	}
	for i := range old.Items {
		o := &old.Items[i]
		if seen[o.Path] {
			continue
		}
		seen[o.Path] = true
		if !cur.Status.Complete {
			r.add(opt, withMeta(Change{Path: o.Path, Kind: o.Kind, Type: NotRead, Old: side(o), Reason: ReasonAbsentPartial}, o))
			continue
		}
		r.add(opt, withMeta(Change{Path: o.Path, Kind: o.Kind, Type: Removed, Old: side(o)}, o))
	}
	sortChanges(r.Changes)
	sort.Slice(r.Suppressed, func(i, j int) bool { return r.Suppressed[i].Path < r.Suppressed[j].Path })
	return r
}

// unread reports whether an item's value was not obtained in its snapshot:
// not read (a failed or cut-off read) or not observable (the device refused
// or gave something that cannot be decoded).
func unread(it *snapshots.Item) bool {
	return it.Provenance.Source == snapshots.SourceNotRead || it.Provenance.Source == snapshots.SourceNotObservable
}

// valueLost reports whether a's value was captured and b's was not although
// neither is volatile: b is no reading of the value, whatever its
// provenance says.
func valueLost(a, b *snapshots.Item) bool {
	return !a.Volatile && !b.Volatile && a.Value.Type != snapshots.TypeNone && b.Value.Type == snapshots.TypeNone
}

func reasonOf(it *snapshots.Item) string {
	if it.Provenance.Reason != "" {
		return it.Provenance.Reason
	}
	if it.Provenance.Source == snapshots.SourceNotObservable {
		return "not observable"
	}
	return "not read"
}

// sameContent reports whether two items have the same content as far as a
// diff is concerned (what a not-read item carries over is often its last
// known value).
func sameContent(o, n *snapshots.Item) bool {
	return o.Kind == n.Kind && o.Value == n.Value && attrsEqual(o.Attrs, n.Attrs)
}

// attrsEqual compares the attributes that are content: an address
// (snapshots.IsAddress) is not.
func attrsEqual(a, b map[string]string) bool {
	for _, k := range unionKeys(a, b) {
		av, aok := a[k]
		bv, bok := b[k]
		if !snapshots.IsAddress(k) && (aok != bok || av != bv) {
			return false
		}
	}
	return true
}

func (r *Report) add(opt Options, c Change) {
	if c.Kind == snapshots.KindInfo && (c.Old == nil || c.Old.Kind == snapshots.KindInfo) && (c.New == nil || c.New.Kind == snapshots.KindInfo) {
		c.Info = true
	}
	if opt.IgnoreInfo && c.Info {
		return
	}
	r.Changes = append(r.Changes, c)
	r.Counts[c.Type]++
	if r.CountsByKind[c.Kind] == nil {
		r.CountsByKind[c.Kind] = map[ChangeType]int{}
	}
	r.CountsByKind[c.Kind][c.Type]++
	if c.Info {
		r.Info++
	}
}

func withMeta(c Change, it *snapshots.Item) Change {
	c.Indicator = it.Indicator
	c.Role = it.Attrs[snapshots.AttrRole]
	c.Scope = it.Attrs[snapshots.AttrScope]
	return c
}

// compareItem returns the change between two readings of one path.
func (r *Report) compareItem(o, n *snapshots.Item) (Change, bool) {
	if o.Hash == n.Hash && o.Hash != "" {
		return Change{}, false
	}
	c := withMeta(Change{Path: n.Path, Kind: n.Kind, Type: Changed, Old: side(o), New: side(n)}, n)
	volatile := n.Volatile || o.Volatile
	var content, meta []string
	if o.Kind != n.Kind {
		content = append(content, "kind")
	}
	if o.Volatile != n.Volatile {
		content = append(content, "volatile")
	}
	valueDiffers := !volatile && (o.Value.Type != n.Value.Type || o.Value.Raw != n.Value.Raw)
	if valueDiffers {
		content = append(content, "value")
	}
	if !volatile && o.Value.Unit != n.Value.Unit {
		content = append(content, "unit")
	}
	for _, k := range unionKeys(o.Attrs, n.Attrs) {
		ov, ook := o.Attrs[k]
		nv, nok := n.Attrs[k]
		if ov == nv && ook == nok || snapshots.IsAddress(k) {
			// An address (an OPC UA NodeId a server renumbered on
			// restart) is not the item's content.
			continue
		}
		if strings.HasPrefix(k, snapshots.MetaPrefix) {
			meta = append(meta, "attrs."+k)
		} else {
			content = append(content, "attrs."+k)
		}
	}
	if o.Indicator != n.Indicator {
		content = append(content, "indicator")
	}
	if len(content) == 0 && len(meta) == 0 {
		return Change{}, false // deadband or other non-content fields only
	}
	if len(content) == 0 {
		c.Type = Touched
		c.Fields = meta
		if o.Kind != snapshots.KindLogic || n.Kind != snapshots.KindLogic {
			// Mode, firmware, identity and the like carry metadata that
			// moves by itself (a mode's transition time moves on every
			// restart): information, never a re-download or a change.
			c.Info, c.Reason = true, ReasonMetadata
		}
		return c, true
	}
	c.Fields = append(content, meta...)
	if classificationOnly(content) {
		c.Info = true
		c.Reason = ReasonClassification
		return c, true
	}
	if valueDiffers {
		ov, ook := o.Value.Number()
		nv, nok := n.Value.Number()
		if ook && nok && !math.IsNaN(ov) && !math.IsNaN(nv) {
			d := nv - ov
			if !math.IsInf(d, 0) && !math.IsNaN(d) {
				c.Delta = &d // JSON has no NaN or infinities
			}
			db := n.Deadband
			if db == 0 {
				db = o.Deadband
			}
			if len(content) == 1 && db > 0 && math.Abs(d) <= db {
				r.Suppressed = append(r.Suppressed, Suppressed{Path: n.Path, Old: o.Value.Raw, New: n.Value.Raw, Delta: d, Deadband: db})
				return Change{}, false
			}
		}
		if isText(o.Value) || isText(n.Value) {
			c.LineDiff = LineDiff(o.Value.Raw, n.Value.Raw)
		}
	}
	return c, true
}

// ReasonMetadata is the Reason of an informational change in metadata
// attributes only (snapshots.MetaPrefix) of an item that is not logic.
const ReasonMetadata = "metadata only, content identical"

// ReasonClassification is the Reason of an informational change in how the
// rules classify an item (kind, volatile, indicator), not in the device.
const ReasonClassification = "classification changed, not the device"

func classificationOnly(content []string) bool {
	for _, f := range content {
		if f != "kind" && f != "volatile" && f != "indicator" {
			return false
		}
	}
	return true
}

func isText(v snapshots.Value) bool {
	return v.Type == snapshots.TypeText || (v.Type == snapshots.TypeString && len(v.Raw) > 80 && strings.Contains(v.Raw, "\n"))
}

func unionKeys(a, b map[string]string) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func kindOrder(k snapshots.Kind) int {
	for i, x := range snapshots.Kinds {
		if x == k {
			return i
		}
	}
	return len(snapshots.Kinds)
}

func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if kindOrder(a.Kind) != kindOrder(b.Kind) {
			return kindOrder(a.Kind) < kindOrder(b.Kind)
		}
		return snapshots.NaturalLess(a.Path, b.Path)
	})
}

// LineDiff returns a line diff of two texts: lines prefixed "- ", "+ " or
// "  ". It is deterministic (no time limit).
func LineDiff(a, b string) string {
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 0
	ca, cb, lines := dmp.DiffLinesToChars(a, b)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	var out strings.Builder
	for _, d := range diffs {
		prefix := "  "
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			prefix = "- "
		case diffmatchpatch.DiffInsert:
			prefix = "+ "
		}
		text := strings.TrimSuffix(d.Text, "\n")
		for _, l := range strings.Split(text, "\n") {
			out.WriteString(prefix)
			out.WriteString(l)
			out.WriteString("\n")
		}
	}
	return out.String()
}

// ChangesOfType returns the report's changes of one type, in report order.
func (r *Report) ChangesOfType(t ChangeType) []Change {
	var out []Change
	for _, c := range r.Changes {
		if c.Type == t {
			out = append(out, c)
		}
	}
	return out
}
