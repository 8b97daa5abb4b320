// Package snapshots defines what plcwatch records about one controller at one
// moment: the snapshot model, its canonical encoding and its digest.
//
// A snapshot is immutable once built. Its digest is computed over a canonical,
// deterministic encoding (see Encode) and is pinned by a golden test vector:
// changing the encoding breaks every stored chain, so it must never change
// within one FormatVersion.
package snapshots

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"
)

// FormatVersion is the version of the canonical encoding. It is part of every
// encoded snapshot so that a future encoding can coexist with stored ones.
const FormatVersion = 1

// Kind says what an item is, and so what a change to it means.
type Kind string

// The item kinds. Their order in Kinds is the order reports group them in.
const (
	KindLogic      Kind = "logic"      // program blocks, routines, POUs, UDTs, tasks
	KindSetpoint   Kind = "setpoint"   // parameters a person sets: limits, gains, timers
	KindFirmware   Kind = "firmware"   // firmware and software revisions
	KindHardware   Kind = "hardware"   // modules, order numbers, serials of modules
	KindMode       Kind = "mode"       // operating mode, key switch
	KindProtection Kind = "protection" // protection level, passwords, access rules
	KindIdentity   Kind = "identity"   // vendor, model, serial of the controller
	KindSecurity   Kind = "security"   // endpoints, security policies, certificates
	KindInfo       Kind = "info"       // informational only: live values, uptime; never alerts on value
)

// Kinds lists every kind in report order.
var Kinds = []Kind{KindLogic, KindSetpoint, KindFirmware, KindHardware, KindMode, KindProtection, KindIdentity, KindSecurity, KindInfo}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Source says where an item's value came from.
type Source string

// The provenance sources.
const (
	// SourceRead: the value was read from the device during this snapshot.
	SourceRead Source = "read"
	// SourceCarried: the value was carried forward from an earlier snapshot
	// because a cheap change indicator (checksum, change counter) did not move.
	SourceCarried Source = "carried"
	// SourceNotObservable: the device does not expose this item; Reason says why.
	SourceNotObservable Source = "not_observable"
	// SourceNotRead: the item was expected but could not be read in this
	// snapshot (a failed or cut-off read). It is never evidence of removal.
	SourceNotRead Source = "not_read"
)

// Provenance records how an item's value was obtained.
type Provenance struct {
	Source Source `json:"source"`
	// From is the id of the snapshot a carried value was first read in.
	From string `json:"from,omitempty"`
	// Reason explains a carried, not-observable or not-read item.
	Reason string `json:"reason,omitempty"`
}

// Value types. Raw holds the canonical text of the value for each type.
const (
	TypeBool   = "bool"   // "true" or "false"
	TypeInt    = "int"    // base-10 signed integer
	TypeUint   = "uint"   // base-10 unsigned integer
	TypeFloat  = "float"  // strconv.FormatFloat(v, 'g', -1, 64)
	TypeString = "string" // short text, compared as a whole
	TypeText   = "text"   // long or multi-line text, diffed by line
	TypeBytes  = "bytes"  // lower-case hex
	TypeTime   = "time"   // RFC 3339 with nanoseconds, UTC
	TypeNone   = "none"   // no value captured (volatile items, not-read items)
)

// Value is a typed, canonical value. Two values are equal exactly when their
// Type, Raw and Unit are equal.
type Value struct {
	Type string `json:"type"`
	Raw  string `json:"raw"`
	Unit string `json:"unit,omitempty"`
}

// Item is one observed thing on a controller, keyed by a stable path such as
// "blocks/OB1", "setpoints/TankHighLimit" or "opcua/ns=2;s=Plant.Line1.SP".
type Item struct {
	Path  string `json:"path"`
	Kind  Kind   `json:"kind"`
	Value Value  `json:"value"`
	// Attrs holds metadata that is part of the item's identity and content,
	// such as a data type, an access level or a block's size. Changes to attrs
	// are changes to the item.
	Attrs map[string]string `json:"attrs,omitempty"`
	// Deadband, for numeric setpoints: changes whose absolute size is at most
	// Deadband (compared with the baseline) are not reported.
	Deadband float64 `json:"deadband,omitempty"`
	// Volatile items are recorded for their presence and metadata only; their
	// value is not captured and never alerted on.
	Volatile bool `json:"volatile,omitempty"`
	// Indicator marks cheap change indicators (checksums, change counters)
	// whose movement says "something changed" even where content is not
	// observable.
	Indicator  bool       `json:"indicator,omitempty"`
	Provenance Provenance `json:"provenance"`
	// Hash is the hex SHA-256 of the item's content (see ContentHash). Set by
	// Finalize; it excludes provenance so a carried value hashes as read.
	Hash string `json:"hash"`
}

// Identity names the controller.
type Identity struct {
	Vendor   string `json:"vendor,omitempty"`
	Model    string `json:"model,omitempty"`
	Serial   string `json:"serial,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Name     string `json:"name,omitempty"`
}

// Status says whether a snapshot is complete.
type Status struct {
	Complete bool `json:"complete"`
	// Reasons, for a partial snapshot, says what could not be read and why.
	Reasons []string `json:"reasons,omitempty"`
}

// RequestCount is what one kind of request cost during a snapshot.
type RequestCount struct {
	Kind     string `json:"kind"`
	Object   string `json:"object,omitempty"`
	Count    int    `json:"count"`
	BytesOut int64  `json:"bytes_out"`
	BytesIn  int64  `json:"bytes_in"`
}

// Cost is what a snapshot cost the device.
type Cost struct {
	Requests int64          `json:"requests"`
	BytesOut int64          `json:"bytes_out"`
	BytesIn  int64          `json:"bytes_in"`
	Duration time.Duration  `json:"duration_ns"`
	ByKind   []RequestCount `json:"by_kind,omitempty"`
	// Next, when set, is what the connector predicts the next snapshot of
	// the unchanged device will send, where that differs from ByKind (an
	// OPC UA full read is followed by reads that carry static attributes
	// forward). Counts are exact; bytes as the connector's doc says.
	Next []RequestCount `json:"next,omitempty"`
}

// Count returns the requests of one kind (a connector's request kind such
// as "opcua.Read"), every object included.
func (c Cost) Count(kind string) int {
	n := 0
	for _, r := range c.ByKind {
		if r.Kind == kind {
			n += r.Count
		}
	}
	return n
}

// Snapshot is one reading of one device. Build it, call Finalize, and treat it
// as immutable from then on.
type Snapshot struct {
	// ID and Digest are derived by Finalize and are not part of the encoding.
	ID     string `json:"id"`
	Digest string `json:"digest"`

	Format   int       `json:"format"`
	Device   string    `json:"device"`
	Protocol string    `json:"protocol"`
	Endpoint string    `json:"endpoint,omitempty"`
	Label    string    `json:"label,omitempty"`
	TakenAt  time.Time `json:"taken_at"`
	Identity Identity  `json:"identity"`
	Status   Status    `json:"status"`
	// RulesDigest is the digest of the classification rules in force.
	RulesDigest string `json:"rules_digest,omitempty"`
	Cost        Cost   `json:"cost"`
	Items       []Item `json:"items"`
}

// IDLength is the number of hex digits of the digest used as a snapshot id.
const IDLength = 16

// ContentHash returns the hex SHA-256 of an item's content: path, kind, value,
// attrs, deadband, volatile and indicator flags; never provenance.
func ContentHash(it Item) string {
	c := it
	c.Provenance = Provenance{}
	c.Hash = ""
	b, err := canonicalJSON(c)
	if err != nil {
		// Items hold only strings, numbers and maps of strings: cannot fail.
		panic(fmt.Sprintf("snapshots: encoding item %q: %v", it.Path, err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Finalize sorts items by path, fills in each item's Hash, normalizes times to
// UTC, sets Format, and computes Digest and ID. It returns an error if two
// items share a path or an item has an invalid kind.
func (s *Snapshot) Finalize() error {
	s.Format = FormatVersion
	s.TakenAt = s.TakenAt.UTC()
	sort.Slice(s.Items, func(i, j int) bool { return s.Items[i].Path < s.Items[j].Path })
	for i := range s.Items {
		it := &s.Items[i]
		if it.Path == "" {
			return fmt.Errorf("snapshot %s: item %d has an empty path", s.Device, i)
		}
		if i > 0 && s.Items[i-1].Path == it.Path {
			return fmt.Errorf("snapshot %s: two items share the path %q", s.Device, it.Path)
		}
		if !it.Kind.Valid() {
			return fmt.Errorf("snapshot %s: item %q has kind %q, want one of %v", s.Device, it.Path, it.Kind, Kinds)
		}
		if it.Value.Type == "" {
			it.Value.Type = TypeNone
		}
		if len(it.Attrs) == 0 {
			it.Attrs = nil
		}
		it.Hash = ContentHash(*it)
	}
	d, err := s.ComputeDigest()
	if err != nil {
		return err
	}
	s.Digest = d
	s.ID = d[:IDLength]
	return nil
}

// Item returns the item at path, or nil.
func (s *Snapshot) Item(path string) *Item {
	i := sort.Search(len(s.Items), func(i int) bool { return s.Items[i].Path >= path })
	if i < len(s.Items) && s.Items[i].Path == path {
		return &s.Items[i]
	}
	return nil
}

// Partial reports whether the snapshot is incomplete.
func (s *Snapshot) Partial() bool { return !s.Status.Complete }

// Attribute conventions shared by connectors, diffing and alerts.
const (
	// MetaPrefix starts attribute keys that are metadata rather than content,
	// such as a block's download timestamp ("meta.code_time"). When only
	// metadata attributes of a logic item change, the diff reports the item
	// as touched: re-downloaded, content identical.
	MetaPrefix = "meta."
	// AttrRole refines what an item is for the ATT&CK mapping: RoleTasking
	// (OBs, tasks: T0821), RoleAlarm (alarm limits: T0838).
	AttrRole    = "role"
	RoleTasking = "tasking"
	RoleAlarm   = "alarm"
	// AttrScope with ScopeModule marks firmware of a module rather than of
	// the controller (T1693.002 rather than T1693.001).
	AttrScope   = "scope"
	ScopeModule = "module"
	// AttrDataType is the protocol's data type name of an item.
	AttrDataType = "data_type"
	// AttrValueName is the name of an enumerated value, such as "Running"
	// for OPC UA ServerState 0 or "RUN" for a mode code. Reports show it in
	// place of the number, which stays the compared value.
	AttrValueName = "value_name"
	// AttrNodeClass is the protocol's node or object class of an item
	// ("Variable", "block", "tag"), as classification rules match it.
	AttrNodeClass = "node_class"
	// AttrNodeID is where the device holds an item (an OPC UA NodeId such
	// as "nsu=urn:vendor;i=5001"): an address, not content. Servers may
	// number their nodes anew on every restart while the browse path (the
	// item's identity) stays, so it is recorded for people and for the
	// connector's own use, and never compared (see IsAddress).
	AttrNodeID = "node_id"
)

// IsAddress reports whether an attribute key names where the device holds
// an item rather than what the item is (AttrNodeID): such attributes are
// shown but never compared, so a server that renumbers its nodes on
// restart changes nothing, and never enter an alert's fingerprint.
func IsAddress(key string) bool { return key == AttrNodeID }
