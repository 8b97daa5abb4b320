// Package store keeps plcwatch's evidence: snapshots, approvals, alerts and
// acknowledgements, append-only and hash-chained per device.
//
// Every record is appended to its device's chain; nothing is updated or
// deleted in place. Derived state (the current baseline, an alert's last-seen
// time and count, whether it is acknowledged) is computed from the records.
// Verify recomputes every digest and link.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
)

// Record types.
const (
	TypeSnapshot      = "snapshot"       // body: SnapshotRef; the snapshot itself is content-addressed
	TypeRules         = "rules"          // body: the classification rules in force (JSON), when they changed
	TypeApproval      = "approval"       // body: Approval
	TypeAlert         = "alert"          // body: alert JSON (alerts package), first raised
	TypeAlertSeen     = "alert_seen"     // body: AlertSeen, the same alert found again
	TypeAck           = "ack"            // body: Ack
	TypeChangeOpen    = "change_open"    // body: Change (planned change opened)
	TypeChangeClose   = "change_close"   // body: Change (closed by approval or abandoned)
	TypeCheck         = "check"          // body: a comparison of a snapshot with the baseline in force
	TypeAlertResolved = "alert_resolved" // body: AlertResolved, an alert whose condition ended
)

// GenesisPrev is the Prev digest of a chain's first record.
const GenesisPrev = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one entry of a device's chain. Digest is the hex SHA-256 over
// Device, Seq, Type, Time (RFC 3339 nanoseconds, UTC), the hex SHA-256 of
// Body, and Prev, each separated by a newline.
type Record struct {
	Device string          `json:"device"`
	Seq    int64           `json:"seq"`
	Type   string          `json:"type"`
	Time   time.Time       `json:"time"`
	Body   json.RawMessage `json:"body"`
	Prev   string          `json:"prev"`
	Digest string          `json:"digest"`
}

// ComputeDigest returns the digest r must carry: the hex SHA-256 of Device,
// Seq, Type, Time (RFC 3339 nanoseconds, UTC), the hex SHA-256 of Body and
// Prev, separated by newlines. It ignores r.Digest.
func (r Record) ComputeDigest() string {
	body := sha256.Sum256(r.Body)
	h := sha256.New()
	for i, f := range []string{
		r.Device,
		strconv.FormatInt(r.Seq, 10),
		r.Type,
		r.Time.UTC().Format(time.RFC3339Nano),
		hex.EncodeToString(body[:]),
		r.Prev,
	} {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Types lists every record type.
var Types = []string{TypeSnapshot, TypeRules, TypeApproval, TypeAlert, TypeAlertSeen, TypeAck, TypeChangeOpen, TypeChangeClose, TypeCheck, TypeAlertResolved}

// ValidType reports whether typ is one of Types.
func ValidType(typ string) bool {
	for _, t := range Types {
		if t == typ {
			return true
		}
	}
	return false
}

// SnapshotRef is the body of a snapshot record.
type SnapshotRef struct {
	ID          string `json:"id"`
	Digest      string `json:"digest"`
	Label       string `json:"label,omitempty"`
	Complete    bool   `json:"complete"`
	RulesDigest string `json:"rules_digest,omitempty"`
	// Manifest is the hex SHA-256 of the stored manifest (see
	// ManifestDigest), recorded since schema version 2. It lets a reader
	// check a snapshot's content item by item: the chain fixes the
	// manifest, the manifest fixes each item's key, and each item is
	// checked against its key when it is read, so items that are not
	// decoded (shared by two snapshots being compared) need not be read.
	// Records written before have none and are checked against Digest.
	Manifest string `json:"manifest,omitempty"`
}

// Approval is the body of an approval record: a person made a snapshot the
// device's baseline.
type Approval struct {
	Snapshot string `json:"snapshot"` // snapshot id
	Digest   string `json:"digest"`   // its full digest
	By       string `json:"by"`       // --by
	OSUser   string `json:"os_user"`  // the OS account that ran approve
	Ticket   string `json:"ticket"`
	Comment  string `json:"comment,omitempty"`
	// ConsoleUser is the web console's signed-in user ("local" on an
	// unauthenticated loopback console); empty when approved from the CLI.
	ConsoleUser string    `json:"console_user,omitempty"`
	At          time.Time `json:"at"`
	OldBaseline string    `json:"old_baseline,omitempty"` // digest, empty for the first
	NewBaseline string    `json:"new_baseline"`           // digest
}

// AlertSeen is the body of an alert_seen record.
// Title, Items (the alerts package's items, as JSON) and Reasons are set
// only when what was found this time differs from the alert as last
// recorded (the same "incomplete collection" with other items not read):
// the alert then shows them from this record on.
type AlertSeen struct {
	Alert    string          `json:"alert"`
	Snapshot string          `json:"snapshot"`
	At       time.Time       `json:"at"`
	Title    string          `json:"title,omitempty"`
	Items    json.RawMessage `json:"items,omitempty"`
	Reasons  []string        `json:"reasons,omitempty"`
}

// AlertResolved is the body of an alert_resolved record: the condition an
// alert reported ended (a later complete read, or the approval of a planned
// change's snapshot). The alert itself stays in the chain.
type AlertResolved struct {
	Alert string `json:"alert"`
	// Snapshot is the id of the snapshot that showed the condition ended
	// (the complete read, or the approved after-snapshot).
	Snapshot string    `json:"snapshot,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Ack is a person's decision on an alert. It never moves the baseline.
type Ack struct {
	Alert    string `json:"alert"`
	By       string `json:"by"`
	OSUser   string `json:"os_user"`
	Decision string `json:"decision"`
	Comment  string `json:"comment"`
	// ConsoleUser is the web console's signed-in user ("local" on an
	// unauthenticated loopback console); empty when acknowledged from the
	// CLI.
	ConsoleUser string    `json:"console_user,omitempty"`
	At          time.Time `json:"at"`
}

// Errors.
var (
	ErrNotFound   = errors.New("not found")
	ErrAmbiguous  = errors.New("ambiguous snapshot id prefix")
	ErrNoBaseline = errors.New("no baseline approved")
	// ErrNotStore means a file is not a plcwatch store (not SQLite, damaged,
	// or another application's database). The file is left untouched.
	ErrNotStore = errors.New("not a plcwatch store")
	// ErrNewerSchema means the store was written by a newer plcwatch.
	ErrNewerSchema = errors.New("store schema is newer than this plcwatch")
	// ErrHostIO means the host failed the store (an I/O error, a full disk,
	// a file or folder that cannot be opened or written): the file may well
	// be intact.
	ErrHostIO = errors.New("the host's disk or filesystem failed the store")
	// ErrReadOnly means a write was attempted on a store opened read-only.
	ErrReadOnly = errors.New("store is opened read-only")
)

// The Finding problems.
const (
	ProblemEdited       = "edited"        // a record's content no longer matches its digest
	ProblemDeleted      = "deleted"       // a gap in a chain's sequence numbers
	ProblemReordered    = "reordered"     // a record's digest is valid at another position
	ProblemBadLink      = "bad_link"      // a record's Prev is not its predecessor's digest
	ProblemBlobMismatch = "blob_mismatch" // stored content does not hash to its key or digest
	ProblemMissingBlob  = "missing_blob"  // content a record or snapshot refers to is absent
	ProblemHeadMissing  = "head_missing"  // a known head is not in the chain: truncated or rewritten
	ProblemHeadMismatch = "head_mismatch" // the record at a known head's seq has another digest
	ProblemUnparseable  = "unparseable"   // stored data cannot be read
	ProblemDerived      = "derived"       // derived state (a summary kept for hot paths) differs from the chain
)

// Finding is one problem verify found.
type Finding struct {
	Device string `json:"device,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
	// Problem is one of: edited, deleted, reordered, bad_link, blob_mismatch,
	// missing_blob, head_missing, head_mismatch, unparseable, derived.
	Problem string `json:"problem"`
	Detail  string `json:"detail"`
}

// Head is the newest record of one device's chain.
type Head struct {
	Device string `json:"device"`
	Seq    int64  `json:"seq"`
	Digest string `json:"digest"`
}

// Store is the evidence store. Implementations are safe for concurrent use by
// goroutines and by several processes on one file.
type Store interface {
	// Append adds a record of type typ with body (marshalled to JSON) to the
	// device's chain, atomically, and returns it with Seq, Prev and Digest set.
	Append(ctx context.Context, device, typ string, at time.Time, body any) (Record, error)
	// PutSnapshot stores the finalized snapshot's content (content-addressed:
	// unchanged items are stored once) and appends its snapshot record; when
	// rules differ from the last rules record of the device it appends a rules
	// record first. It returns the records appended.
	PutSnapshot(ctx context.Context, s *snapshots.Snapshot, rules json.RawMessage) ([]Record, error)
	// Snapshot returns a stored snapshot by id, unique id prefix (at least 6
	// hex digits) or full digest, re-verifying its digest as it decodes.
	Snapshot(ctx context.Context, id string) (*snapshots.Snapshot, error)
	// Resolve returns the snapshot a reference names: an id (or unique
	// prefix, or digest), "DEVICE@latest" (newest snapshot, complete or not),
	// "DEVICE@baseline" (the approved baseline) or "DEVICE@LABEL" (newest
	// snapshot with that label).
	Resolve(ctx context.Context, ref string) (*snapshots.Snapshot, error)
	// Latest returns the device's newest snapshot, or the newest complete one
	// when completeOnly; ErrNotFound if there is none.
	Latest(ctx context.Context, device string, completeOnly bool) (*snapshots.Snapshot, error)
	// Baseline returns the device's current baseline approval (the newest
	// approval record); ErrNoBaseline if none.
	Baseline(ctx context.Context, device string) (*Approval, error)
	// RecordsOfType returns a device's records of one type, in chain order
	// (all devices if device is "").
	RecordsOfType(ctx context.Context, device, typ string) ([]Record, error)
	// Records returns a device's chain in order (all devices if device is "").
	Records(ctx context.Context, device string) ([]Record, error)
	// Devices lists the devices that have records.
	Devices(ctx context.Context) ([]string, error)
	// Heads returns the newest record of every chain.
	Heads(ctx context.Context) ([]Head, error)
	// Newest returns the device's newest record of any of the given types,
	// or ErrNotFound; an indexed lookup, whatever the history.
	Newest(ctx context.Context, device string, types ...string) (Record, error)
	// LatestRef returns the record and body of the device's newest snapshot
	// (newest complete one when completeOnly) without loading it, or
	// ErrNotFound.
	LatestRef(ctx context.Context, device string, completeOnly bool) (Record, SnapshotRef, error)
	// CountOfType counts a device's records of one type without reading
	// them.
	CountOfType(ctx context.Context, device, typ string) (int64, error)
	// AlertSeenSummaries sums up the alert_seen records of each alert of a
	// device (every device if device is ""), from a table kept with the
	// chain (Verify checks it against the chain).
	AlertSeenSummaries(ctx context.Context, device string) ([]SeenSummary, error)
	// Verify recomputes every blob hash, record digest and chain link, and
	// compares chains with heads recorded earlier (from the alert log, or
	// --head); a head that is not in the chain is a finding.
	Verify(ctx context.Context, known []Head, extraHeads []string) ([]Finding, error)
	// Close closes the store.
	Close() error
}
