package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/store"
)

// TypeCheck is the record type of a comparison of a snapshot with the
// baseline in force; approve uses it to refuse a stale review.
const TypeCheck = store.TypeCheck

// CheckRecord is the body of a check record.
type CheckRecord struct {
	Snapshot string `json:"snapshot"`
	// Baseline is the digest of the baseline the snapshot was compared
	// with ("" when the device had none).
	Baseline string `json:"baseline"`
	// BaselineID is its snapshot id.
	BaselineID string   `json:"baseline_id,omitempty"`
	Changes    int      `json:"changes"`
	Alerts     []string `json:"alerts,omitempty"`
	Partial    bool     `json:"partial,omitempty"`
}

// Approval errors.
var (
	ErrApproveRef     = errors.New("approve takes an immutable snapshot id")
	ErrApprovePartial = errors.New("a partial snapshot cannot become a baseline")
	ErrBaselineMoved  = errors.New("the baseline moved since this snapshot was compared with it")
	ErrAlreadyBase    = errors.New("this snapshot is already the baseline")
)

// validTicket reports whether a change ticket is 1 to 64 letters, digits
// or '_.:/#-', starting with a letter or digit. A counted repetition ({0,62}) compiles to a one-pass program of
// that many states at every process start (0.1 ms each); a length check
// and a star are the same test on these ASCII-only classes.
func validTicket(t string) bool { return len(t) <= 64 && ticketRE().MatchString(t) }

var ticketRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/#-]*$`) })

// ApproveRequest is a person's approval of a snapshot as the new baseline.
type ApproveRequest struct {
	SnapshotID string
	Ticket     string
	By         string
	OSUser     string
	Comment    string
	// ConsoleUser is the web console's user, when approved there.
	ConsoleUser string
}

// Approve makes a snapshot its device's baseline. It refuses references such
// as DEVICE@latest (only an immutable id), partial snapshots, and a snapshot
// that was compared with a baseline other than the current one (the review
// is stale: check again). It closes the device's open planned change, if any.
func (s *Service) Approve(ctx context.Context, req ApproveRequest) (*store.Approval, error) {
	id := strings.TrimSpace(req.SnapshotID)
	if strings.Contains(id, "@") {
		return nil, fmt.Errorf("%w, not %q: run `plcwatch show %s` to see the id you reviewed", ErrApproveRef, id, id)
	}
	if !validTicket(req.Ticket) {
		return nil, fmt.Errorf("--ticket %q: want a change ticket id such as CHG-123", req.Ticket)
	}
	if strings.TrimSpace(req.By) == "" {
		return nil, errors.New("--by: want the name of the person approving")
	}
	snap, err := s.Store.Snapshot(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("approve %s: %w", id, err)
	}
	if !strings.HasPrefix(snap.ID, id) && !strings.HasPrefix(snap.Digest, id) {
		return nil, fmt.Errorf("approve %s: %w", id, ErrApproveRef)
	}
	if !snap.Status.Complete {
		return nil, fmt.Errorf("approve %s: %w (%s)", snap.ID, ErrApprovePartial, strings.Join(snap.Status.Reasons, "; "))
	}
	cur, err := s.Store.Baseline(ctx, snap.Device)
	if err != nil && !errors.Is(err, store.ErrNoBaseline) {
		return nil, err
	}
	oldDigest := ""
	if cur != nil {
		oldDigest = cur.NewBaseline
	}
	if oldDigest == snap.Digest {
		return nil, fmt.Errorf("approve %s: %w", snap.ID, ErrAlreadyBase)
	}
	checks, err := s.Store.RecordsOfType(ctx, snap.Device, TypeCheck)
	if err != nil {
		return nil, err
	}
	for i := len(checks) - 1; i >= 0; i-- {
		var cr CheckRecord
		if json.Unmarshal(checks[i].Body, &cr) != nil || cr.Snapshot != snap.ID {
			continue
		}
		if cr.Baseline != oldDigest {
			return nil, fmt.Errorf("approve %s: %w (compared with %s, baseline now %s): run `plcwatch diff %s@baseline %s` and review again",
				snap.ID, ErrBaselineMoved, short(cr.Baseline), short(oldDigest), snap.Device, snap.ID)
		}
		break
	}
	a := store.Approval{
		Snapshot: snap.ID, Digest: snap.Digest, By: req.By, OSUser: req.OSUser, Ticket: req.Ticket,
		Comment: req.Comment, ConsoleUser: req.ConsoleUser, At: s.now().UTC(), OldBaseline: oldDigest, NewBaseline: snap.Digest,
	}
	if _, err := s.append(ctx, snap.Device, store.TypeApproval, a); err != nil {
		return nil, fmt.Errorf("approve %s: %w", snap.ID, err)
	}
	if ch, err := s.OpenChange(ctx, snap.Device); err == nil && ch != nil {
		ch.ClosedAt = a.At
		ch.ClosedBy = req.By
		ch.Outcome = "approved " + snap.ID
		if _, err := s.append(ctx, snap.Device, store.TypeChangeClose, ch); err != nil {
			return &a, fmt.Errorf("approval stored, but closing change %s failed: %w", ch.Ticket, err)
		}
		// The change's alerts ("planned, pending review") close with it.
		_, recs, err := alerts.Resolve(ctx, s.Store, snap.Device, func(al alerts.Alert) bool {
			return al.Disposition == alerts.Planned && al.Ticket == ch.Ticket
		}, snap.ID, fmt.Sprintf("planned change %s approved by %s (snapshot %s)", ch.Ticket, req.By, snap.ID), s.now())
		s.wroteHead(recs)
		if err != nil {
			return &a, fmt.Errorf("approval stored, but closing the alerts of change %s failed: %w", ch.Ticket, err)
		}
	}
	return &a, nil
}

func short(digest string) string {
	if digest == "" {
		return "(none)"
	}
	if len(digest) > 16 {
		return digest[:16]
	}
	return digest
}

// Change is a planned change: opened with a "before" snapshot, closed by the
// approval of the "after" snapshot (or abandoned).
type Change struct {
	Ticket string `json:"ticket"`
	By     string `json:"by"`
	OSUser string `json:"os_user"`
	// ConsoleUser is the web console's user, when opened there.
	ConsoleUser string    `json:"console_user,omitempty"`
	OpenedAt    time.Time `json:"opened_at"`
	Until       time.Time `json:"until"`
	Before      string    `json:"before"`
	After       string    `json:"after,omitempty"`
	ClosedAt    time.Time `json:"closed_at,omitzero"`
	ClosedBy    string    `json:"closed_by,omitempty"`
	Outcome     string    `json:"outcome,omitempty"`
}

// OpenChange returns the device's open planned change, or nil.
func (s *Service) OpenChange(ctx context.Context, device string) (*Change, error) {
	// The newest change_open or change_close record decides: two indexed
	// lookups, whatever the history.
	r, err := s.Store.Newest(ctx, device, store.TypeChangeOpen, store.TypeChangeClose)
	if errors.Is(err, store.ErrNotFound) || err == nil && r.Type == store.TypeChangeClose {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c Change
	if err := json.Unmarshal(r.Body, &c); err != nil {
		return nil, fmt.Errorf("device %s record %d: %w", device, r.Seq, err)
	}
	return &c, nil
}
