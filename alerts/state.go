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
var Decisions = []string{"investigating", "authorized", "false_positive", "escalated", "resolved"}

// ErrUnknownAlert is returned by Ack for an id no device has.
var ErrUnknownAlert = errors.New("no such alert")

// Raise stores alerts for one device. An alert whose fingerprint matches one
// already raised is recorded as seen again (last seen and count move)
// instead of being raised a second time. It returns the newly raised and the
// repeated alerts (the latter with their updated state), and the records it
// appended.
func Raise(ctx context.Context, st store.Store, als []Alert, snapshotID string, now time.Time) (raised, repeated []Alert, recs []store.Record, err error) {
	if len(als) == 0 {
		return nil, nil, nil, nil
	}
	existing, err := List(ctx, st, Filter{Device: als[0].Device})
	if err != nil {
		return nil, nil, nil, err
	}
	byFP := map[string]Alert{}
	for _, a := range existing {
		byFP[a.Fingerprint] = a
	}
	for _, a := range als {
		if old, ok := byFP[a.Fingerprint]; ok {
			r, err := st.Append(ctx, a.Device, store.TypeAlertSeen, now, store.AlertSeen{Alert: old.ID, Snapshot: snapshotID, At: now.UTC()})
			if err != nil {
				return raised, repeated, recs, fmt.Errorf("recording alert %s seen again: %w", old.ID, err)
			}
			recs = append(recs, r)
			old.LastSeen = now.UTC()
			old.Count++
			repeated = append(repeated, old)
			continue
		}
		a.Raised = now.UTC()
		r, err := st.Append(ctx, a.Device, store.TypeAlert, now, a)
		if err != nil {
			return raised, repeated, recs, fmt.Errorf("storing alert %s: %w", a.ID, err)
		}
		recs = append(recs, r)
		a.FirstSeen, a.LastSeen, a.Count, a.Status = a.Raised, a.Raised, 1, "open"
		byFP[a.Fingerprint] = a
		raised = append(raised, a)
	}
	return raised, repeated, recs, nil
}

// Filter selects alerts for List.
type Filter struct {
	Device   string // "" for every device
	OpenOnly bool   // only alerts nobody acknowledged
}

// List rebuilds alerts and their state from the store's records, newest
// first.
func List(ctx context.Context, st store.Store, f Filter) ([]Alert, error) {
	var recs []store.Record
	for _, typ := range []string{store.TypeAlert, store.TypeAlertSeen, store.TypeAck} {
		rs, err := st.RecordsOfType(ctx, f.Device, typ)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rs...)
	}
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Device != recs[j].Device {
			return recs[i].Device < recs[j].Device
		}
		return recs[i].Seq < recs[j].Seq
	})
	byID := map[string]*Alert{}
	var order []string
	for _, r := range recs {
		switch r.Type {
		case store.TypeAlert:
			var a Alert
			if err := json.Unmarshal(r.Body, &a); err != nil {
				return nil, fmt.Errorf("device %s record %d: alert body: %w", r.Device, r.Seq, err)
			}
			a.FirstSeen, a.LastSeen, a.Count, a.Status = r.Time.UTC(), r.Time.UTC(), 1, "open"
			if _, dup := byID[a.ID]; !dup {
				order = append(order, a.ID)
			}
			byID[a.ID] = &a
		case store.TypeAlertSeen:
			var s store.AlertSeen
			if err := json.Unmarshal(r.Body, &s); err != nil {
				return nil, fmt.Errorf("device %s record %d: alert_seen body: %w", r.Device, r.Seq, err)
			}
			if a := byID[s.Alert]; a != nil {
				a.LastSeen = r.Time.UTC()
				a.Count++
				a.Snapshot = s.Snapshot
			}
		case store.TypeAck:
			var k store.Ack
			if err := json.Unmarshal(r.Body, &k); err != nil {
				return nil, fmt.Errorf("device %s record %d: ack body: %w", r.Device, r.Seq, err)
			}
			if a := byID[k.Alert]; a != nil {
				a.Acks = append(a.Acks, k)
				a.Status = "acknowledged (" + k.Decision + ")"
			}
		}
	}
	var out []Alert
	for _, id := range order {
		a := byID[id]
		if f.OpenOnly && len(a.Acks) > 0 {
			continue
		}
		out = append(out, *a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out, nil
}

// Ack records a person's decision on an alert. It never moves the baseline
// and never touches a controller.
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
	all, err := List(ctx, st, Filter{})
	if err != nil {
		return store.Record{}, Alert{}, err
	}
	for _, a := range all {
		if a.ID == alertID {
			k.Alert = a.ID
			r, err := st.Append(ctx, a.Device, store.TypeAck, k.At, k)
			if err != nil {
				return r, a, err
			}
			a.Acks = append(a.Acks, k)
			a.Status = "acknowledged (" + k.Decision + ")"
			return r, a, nil
		}
	}
	return store.Record{}, Alert{}, fmt.Errorf("%w: %q (see plcwatch alerts)", ErrUnknownAlert, alertID)
}

func validDecision(d string) bool {
	for _, x := range Decisions {
		if x == d {
			return true
		}
	}
	return false
}
