// Package classify decides, from rules in the config, what each item a
// connector finds is: logic, a setpoint, identity, a volatile live value, or
// something to ignore. Protocol hints (an OPC UA AccessLevel, say) only supply
// the default that a matching rule overrides.
package classify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/plcwatch/plcwatch/snapshots"
)

// Rule matches items and says how to classify them. Every non-empty match
// field must match. The first matching rule wins.
type Rule struct {
	// Path is a glob over the item path, segments separated by '/': '*' and
	// '?' match within a segment, '**' matches any number of segments.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Name is a glob over the item's display name (its last path segment).
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// NodeClass matches the protocol's node or object class ("Variable",
	// "Object", "block", "tag").
	NodeClass string `yaml:"node_class,omitempty" json:"node_class,omitempty"`
	// DataType matches the item's data type name ("Double", "REAL", "DINT").
	DataType string `yaml:"data_type,omitempty" json:"data_type,omitempty"`
	// Writable, when set, matches items that are (true) or are not (false)
	// writable by clients.
	Writable *bool `yaml:"writable,omitempty" json:"writable,omitempty"`

	// Kind is the kind to give matching items.
	Kind snapshots.Kind `yaml:"kind,omitempty" json:"kind,omitempty"`
	// Volatile items are recorded for presence and metadata; their values
	// are not captured (live process values, counters, uptime).
	Volatile bool `yaml:"volatile,omitempty" json:"volatile,omitempty"`
	// Ignore drops matching items from snapshots altogether.
	Ignore bool `yaml:"ignore,omitempty" json:"ignore,omitempty"`
	// Deadband, for numeric setpoints: absolute change at or below which no
	// change is reported (compared with the baseline).
	Deadband float64 `yaml:"deadband,omitempty" json:"deadband,omitempty"`
	// Unit overrides or supplies the engineering unit.
	Unit string `yaml:"unit,omitempty" json:"unit,omitempty"`

	// Source is where the rule was written ("plcwatch.yaml:42"), for reports.
	Source string `yaml:"-" json:"-"`
}

// Rules is an ordered rule list.
type Rules []Rule

// Target is what a connector knows of an item when classifying it.
type Target struct {
	Path      string
	Name      string
	NodeClass string
	DataType  string
	// Writable is the protocol's hint; HasAccess says whether it is known.
	Writable  bool
	HasAccess bool
}

// Result is a classification.
type Result struct {
	Kind     snapshots.Kind
	Volatile bool
	Ignore   bool
	Deadband float64
	Unit     string
	// Rule is the index of the matching rule, or -1 for the default.
	Rule int
	// Source is the matching rule's Source, or "default".
	Source string
}

// Validate checks one rule and returns a description of the first problem.
func (r Rule) Validate() error {
	if r.Path == "" && r.Name == "" && r.NodeClass == "" && r.DataType == "" && r.Writable == nil {
		return fmt.Errorf("rule matches everything: give at least one of path, name, node_class, data_type, writable")
	}
	if r.Kind == "" && !r.Ignore && !r.Volatile {
		return fmt.Errorf("rule has no effect: give kind, volatile: true or ignore: true")
	}
	if r.Kind != "" && !r.Kind.Valid() {
		return fmt.Errorf("kind %q: want one of %v", r.Kind, snapshots.Kinds)
	}
	if r.Ignore && (r.Kind != "" || r.Volatile || r.Deadband != 0) {
		return fmt.Errorf("ignore: true goes alone; kind, volatile and deadband do not apply to ignored items")
	}
	if r.Deadband < 0 {
		return fmt.Errorf("deadband %v: want a number >= 0", r.Deadband)
	}
	for _, g := range []string{r.Path, r.Name} {
		if g == "" {
			continue
		}
		if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), ""); err != nil {
			return fmt.Errorf("pattern %q: %v", g, err)
		}
	}
	return nil
}

// Match reports whether the rule matches t.
func (r Rule) Match(t Target) bool {
	if r.Path != "" && !MatchPath(r.Path, t.Path) {
		return false
	}
	if r.Name != "" {
		if ok, _ := path.Match(r.Name, t.Name); !ok {
			return false
		}
	}
	if r.NodeClass != "" && !strings.EqualFold(r.NodeClass, t.NodeClass) {
		return false
	}
	if r.DataType != "" && !strings.EqualFold(r.DataType, t.DataType) {
		return false
	}
	if r.Writable != nil && (!t.HasAccess || *r.Writable != t.Writable) {
		return false
	}
	return true
}

// Classify returns the first matching rule's classification, or def (with
// Rule -1) when none matches. A matching rule without a kind keeps def's kind.
func (rs Rules) Classify(t Target, def Result) Result {
	for i, r := range rs {
		if !r.Match(t) {
			continue
		}
		res := Result{Kind: def.Kind, Volatile: r.Volatile, Ignore: r.Ignore, Deadband: r.Deadband, Unit: r.Unit, Rule: i, Source: r.Source}
		if r.Kind != "" {
			res.Kind = r.Kind
		}
		if res.Source == "" {
			res.Source = fmt.Sprintf("rule %d", i+1)
		}
		return res
	}
	def.Rule = -1
	def.Source = "default"
	return def
}

// Digest returns a stable hex digest of the rules (match fields and effects,
// in order), recorded with each snapshot.
func (rs Rules) Digest() string {
	b, _ := json.Marshal(rs)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// MatchPath matches a '/'-separated path against a glob in which '**' stands
// for any number (including zero) of whole segments.
func MatchPath(pattern, p string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(p, "/"))
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(segs); i++ {
				if matchSegs(rest, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// match3 is the outcome of matching a rule against a stored item, which may
// lack what the rule asks about.
type match3 int

const (
	matchNo match3 = iota
	matchYes
	// matchUnknown: path and name match but the rule also asks about the
	// node class, data type or writability, which the item does not
	// record; only its connector, which knew them, could decide.
	matchUnknown
)

// matchItem matches a rule against a stored item: its path, its name (the
// last path segment), and the node class, data type and writability its
// attributes record (snapshots.AttrNodeClass, snapshots.AttrDataType,
// "writable").
func (r Rule) matchItem(it *snapshots.Item) match3 {
	name := it.Path[strings.LastIndexByte(it.Path, '/')+1:]
	if r.Path != "" && !MatchPath(r.Path, it.Path) {
		return matchNo
	}
	if r.Name != "" {
		if ok, _ := path.Match(r.Name, name); !ok {
			return matchNo
		}
	}
	out := matchYes
	check := func(want string, key string) {
		if want == "" || out == matchNo {
			return
		}
		got, ok := it.Attrs[key]
		switch {
		case !ok:
			out = matchUnknown
		case !strings.EqualFold(want, got):
			out = matchNo
		}
	}
	check(r.NodeClass, snapshots.AttrNodeClass)
	check(r.DataType, snapshots.AttrDataType)
	if r.Writable != nil {
		check(fmt.Sprint(*r.Writable), "writable")
	}
	return out
}

// Applied is what Apply did.
type Applied struct {
	// Hits counts, per rule (by index), the items it decided.
	Hits []int
	// Ignored counts the items a rule dropped.
	Ignored int
}

// Apply classifies every item of a snapshot with the rules, whoever made
// the item (a connector's browse, or its own server/*, security/*, mode and
// identity items), so a site can re-class or silence anything. The first
// rule that matches decides: its kind, volatile flag (the value is then not
// kept), ignore (the item is dropped), deadband and unit; the item's own
// classification is the default when no rule matches. A rule that asks
// about a node class, data type or writability an item does not record
// leaves that item, and the rules after it, to the connector, which
// classified it with the same rules knowing them. Items are changed in
// place; the kept items are returned in order.
func (rs Rules) Apply(items []snapshots.Item) ([]snapshots.Item, Applied) {
	ap := Applied{Hits: make([]int, len(rs))}
	out := items[:0]
	for i := range items {
		it, keep := items[i], true
		for ri, r := range rs {
			m := r.matchItem(&it)
			if m == matchNo {
				continue
			}
			if m == matchYes {
				ap.Hits[ri]++
				if r.Ignore {
					ap.Ignored++
					keep = false
					break
				}
				if r.Kind != "" {
					it.Kind = r.Kind
				}
				if r.Volatile {
					it.Volatile, it.Value = true, snapshots.None()
				}
				if r.Deadband != 0 {
					it.Deadband = r.Deadband
				}
				if _, numeric := it.Value.Number(); numeric && r.Unit != "" {
					it.Value.Unit = r.Unit
				}
			}
			break
		}
		if keep {
			out = append(out, it)
		}
	}
	return out, ap
}

// Matches reports, per rule (by index), whether it matches at least one of
// the items, or may (an item lacks an attribute the rule asks about).
// `config check` uses it to warn about rules that match nothing.
func (rs Rules) Matches(items []snapshots.Item) []bool {
	out := make([]bool, len(rs))
	for ri, r := range rs {
		for i := range items {
			if r.matchItem(&items[i]) != matchNo {
				out[ri] = true
				break
			}
		}
	}
	return out
}
