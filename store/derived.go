package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Derived state. Hot paths (raising an alert, housekeeping) must not read a
// device's whole history, so the store keeps small tables derived from the
// chains, written in the same transaction as the record they follow from.
// They are never evidence: each can be recomputed from the chain, and
// Verify recomputes them and reports any difference.

// SeenSummary sums up the alert_seen records of one alert of one device:
// what alerts.Rebuild would compute from them.
type SeenSummary struct {
	Device string `json:"device"`
	Alert  string `json:"alert"`
	// Count is the number of alert_seen records.
	Count int64 `json:"count"`
	// FirstSeq and LastSeq are the seqs of the first and newest of them;
	// LastTime is the newest one's time.
	FirstSeq int64     `json:"first_seq"`
	LastSeq  int64     `json:"last_seq"`
	LastTime time.Time `json:"last_time"`
	// Snapshot is the newest non-empty snapshot id they name.
	Snapshot string `json:"snapshot,omitempty"`
	// Title, Items and Reasons are the newest content an alert_seen record
	// carried (a finding seen again with other items); empty when none did.
	Title   string          `json:"title,omitempty"`
	Items   json.RawMessage `json:"items,omitempty"`
	Reasons []string        `json:"reasons,omitempty"`
}

// migrationAlertSeen creates the alert_seen summary table and fills it from
// the records already stored.
const migrationAlertSeen = `
CREATE TABLE alert_seen_summary (
	device    TEXT NOT NULL,
	alert     TEXT NOT NULL,
	count     INTEGER NOT NULL,
	first_seq INTEGER NOT NULL,
	last_seq  INTEGER NOT NULL,
	last_time TEXT NOT NULL,
	snapshot  TEXT NOT NULL,
	content   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (device, alert)
) WITHOUT ROWID;
CREATE TABLE record_counts (
	device TEXT NOT NULL,
	type   TEXT NOT NULL,
	count  INTEGER NOT NULL,
	PRIMARY KEY (device, type)
) WITHOUT ROWID;
INSERT INTO record_counts (device, type, count) SELECT device, type, count(*) FROM records GROUP BY device, type;
INSERT INTO alert_seen_summary (device, alert, count, first_seq, last_seq, last_time, snapshot, content)
SELECT g.device, g.alert, g.n, g.first_seq, g.last_seq,
	(SELECT time FROM records WHERE device = g.device AND seq = g.last_seq),
	coalesce((SELECT json_extract(r.body, '$.snapshot') FROM records r
		WHERE r.type = 'alert_seen' AND r.device = g.device AND json_valid(r.body) AND json_extract(r.body, '$.alert') = g.alert
		AND json_type(r.body, '$.snapshot') = 'text' AND json_extract(r.body, '$.snapshot') != '' ORDER BY r.seq DESC LIMIT 1), ''),
	coalesce((SELECT json_object('title', json_extract(r.body, '$.title'), 'items', json(coalesce(json_extract(r.body, '$.items'), 'null')),
			'reasons', json(coalesce(json_extract(r.body, '$.reasons'), 'null'))) FROM records r
		WHERE r.type = 'alert_seen' AND r.device = g.device AND json_valid(r.body) AND json_extract(r.body, '$.alert') = g.alert
		AND json_type(r.body, '$.title') = 'text' AND json_extract(r.body, '$.title') != '' ORDER BY r.seq DESC LIMIT 1), '')
FROM (SELECT device, json_extract(body, '$.alert') AS alert, count(*) AS n, min(seq) AS first_seq, max(seq) AS last_seq
	FROM records WHERE type = 'alert_seen' AND json_valid(body) AND json_type(body) = 'object'
		AND json_type(body, '$.alert') = 'text' AND json_extract(body, '$.alert') != ''
	GROUP BY device, json_extract(body, '$.alert')) AS g;
`

// schemaAlertSeen is the first schema version with alert_seen_summary; a
// store opened read-only at an older version is summed up from its records.
const schemaAlertSeen = 3

// deriveTx updates the derived tables for a record being appended in tx.
func deriveTx(ctx context.Context, tx *sql.Tx, r Record) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO record_counts (device, type, count) VALUES (?, ?, 1)
		ON CONFLICT (device, type) DO UPDATE SET count = count + 1`, r.Device, r.Type); err != nil {
		return fmt.Errorf("appending %s record to %s: counting it: %w", r.Type, r.Device, err)
	}
	if r.Type != TypeAlertSeen {
		return nil
	}
	s, ok := seenBody(r.Body)
	if !ok {
		return nil // names no alert: nothing to sum up (alerts.Rebuild refuses it)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO alert_seen_summary (device, alert, count, first_seq, last_seq, last_time, snapshot, content)
		VALUES (?, ?, 1, ?, ?, ?, ?, ?)
		ON CONFLICT (device, alert) DO UPDATE SET count = count + 1, last_seq = excluded.last_seq, last_time = excluded.last_time,
			snapshot = CASE WHEN excluded.snapshot != '' THEN excluded.snapshot ELSE snapshot END,
			content = CASE WHEN excluded.content != '' THEN excluded.content ELSE content END`,
		r.Device, s.Alert, r.Seq, r.Seq, r.Time.Format(time.RFC3339Nano), s.Snapshot, seenContent(s))
	if err != nil {
		return fmt.Errorf("appending alert_seen record to %s: summing it up: %w", r.Device, err)
	}
	return nil
}

// AlertSeenSummaries returns the summary of every alert's alert_seen
// records of a device (every device if device is ""), by device and alert:
// one indexed read whatever the length of the history.
func (d *DB) AlertSeenSummaries(ctx context.Context, device string) ([]SeenSummary, error) {
	if d.version < schemaAlertSeen {
		recs, err := d.RecordsOfType(ctx, device, TypeAlertSeen)
		if err != nil {
			return nil, err
		}
		chains := map[string][]chainRecord{}
		for _, r := range recs {
			chains[r.Device] = append(chains[r.Device], chainRecord{Record: r})
		}
		return sortedSummaries(seenSummaries(chains)), nil
	}
	q := `SELECT device, alert, count, first_seq, last_seq, last_time, snapshot, content FROM alert_seen_summary`
	var args []any
	if device != "" {
		q += ` WHERE device = ?`
		args = append(args, device)
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY device, alert`, args...)
	if err != nil {
		return nil, fmt.Errorf("store %s: reading alert_seen summaries: %w", d.path, err)
	}
	defer rows.Close()
	var out []SeenSummary
	for rows.Next() {
		var s SeenSummary
		var ts, content string
		if err := rows.Scan(&s.Device, &s.Alert, &s.Count, &s.FirstSeq, &s.LastSeq, &ts, &s.Snapshot, &content); err != nil {
			return nil, fmt.Errorf("store %s: reading alert_seen summaries: %w", d.path, err)
		}
		if err := setSeenContent(&s, content); err != nil {
			return nil, fmt.Errorf("store %s: alert_seen summary of %s alert %s: content: %w", d.path, s.Device, s.Alert, err)
		}
		if s.LastTime, err = parseTime(ts); err != nil {
			return nil, fmt.Errorf("store %s: alert_seen summary of %s alert %s: %w", d.path, s.Device, s.Alert, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store %s: reading alert_seen summaries: %w", d.path, err)
	}
	return out, nil
}

// Newest returns the device's newest record of any of the given types
// (one indexed lookup per type), or ErrNotFound.
func (d *DB) Newest(ctx context.Context, device string, types ...string) (Record, error) {
	var best Record
	found := false
	for _, typ := range types {
		r, err := scanRecord(d.db.QueryRowContext(ctx, qNewestOfType, typ, device))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return Record{}, fmt.Errorf("store %s: newest %s record of %s: %w", d.path, typ, device, err)
		}
		if !found || r.Seq > best.Seq {
			best, found = r, true
		}
	}
	if !found {
		return Record{}, fmt.Errorf("device %s: no record of type %v: %w", device, types, ErrNotFound)
	}
	return best, nil
}

// LatestRef returns the record of the device's newest snapshot (newest
// complete one when completeOnly) and its body, without loading the
// snapshot; ErrNotFound if there is none. The record's time is the
// snapshot's TakenAt.
func (d *DB) LatestRef(ctx context.Context, device string, completeOnly bool) (Record, SnapshotRef, error) {
	q := `SELECT ` + recordCols + ` FROM records WHERE type = 'snapshot' AND device = ? ORDER BY seq DESC LIMIT 1`
	if completeOnly {
		q = `SELECT ` + recordCols + ` FROM records INDEXED BY records_snapshot_complete WHERE type = 'snapshot' AND device = ? AND json_extract(body, '$.complete') = 1 ORDER BY seq DESC LIMIT 1`
	}
	r, err := scanRecord(d.db.QueryRowContext(ctx, q, device))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, SnapshotRef{}, fmt.Errorf("%s latest snapshot: %w", device, ErrNotFound)
	}
	if err != nil {
		return Record{}, SnapshotRef{}, fmt.Errorf("store %s: %s latest snapshot: %w", d.path, device, err)
	}
	ref, err := decodeRef(r.Body)
	if err != nil {
		return Record{}, SnapshotRef{}, fmt.Errorf("store %s: %s record %d: %w", d.path, device, r.Seq, err)
	}
	return r, ref, nil
}

// CountOfType returns the number of the device's records of one type, from
// the record_counts table kept with the chain (counted on the records_type
// index in a read-only store older than that table).
func (d *DB) CountOfType(ctx context.Context, device, typ string) (int64, error) {
	q := `SELECT coalesce((SELECT count FROM record_counts WHERE device = ? AND type = ?), 0)`
	if d.version < schemaAlertSeen {
		q = `SELECT count(*) FROM records WHERE device = ? AND type = ?`
	}
	var n int64
	if err := d.db.QueryRowContext(ctx, q, device, typ).Scan(&n); err != nil {
		return 0, fmt.Errorf("store %s: counting %s records of %s: %w", d.path, typ, device, err)
	}
	return n, nil
}

// seenBody reads the alert and snapshot an alert_seen body names; ok is
// false when it names no alert.
func seenBody(body []byte) (AlertSeen, bool) {
	var s struct {
		Alert    any             `json:"alert"`
		Snapshot any             `json:"snapshot"`
		Title    any             `json:"title"`
		Items    json.RawMessage `json:"items"`
		Reasons  []string        `json:"reasons"`
	}
	if json.Unmarshal(body, &s) != nil {
		// A body whose content fields are malformed still names its alert
		// and snapshot: read those alone.
		var bare struct {
			Alert    any `json:"alert"`
			Snapshot any `json:"snapshot"`
		}
		if json.Unmarshal(body, &bare) != nil {
			return AlertSeen{}, false
		}
		s.Alert, s.Snapshot, s.Title, s.Items, s.Reasons = bare.Alert, bare.Snapshot, nil, nil, nil
	}
	a, _ := s.Alert.(string)
	snap, _ := s.Snapshot.(string)
	title, _ := s.Title.(string)
	out := AlertSeen{Alert: a, Snapshot: snap, Title: title}
	if title != "" {
		out.Items, out.Reasons = s.Items, s.Reasons
	}
	return out, a != ""
}

// seenSummaries computes from chains what alert_seen_summary must hold.
func seenSummaries(chains map[string][]chainRecord) map[[2]string]SeenSummary {
	out := map[[2]string]SeenSummary{}
	for dev, recs := range chains {
		for _, r := range recs {
			if r.Type != TypeAlertSeen || r.timeErr != nil {
				continue
			}
			s, ok := seenBody(r.Body)
			if !ok {
				continue
			}
			k := [2]string{dev, s.Alert}
			sum, ok := out[k]
			if !ok {
				sum = SeenSummary{Device: dev, Alert: s.Alert, FirstSeq: r.Seq}
			}
			sum.Count++
			sum.LastSeq, sum.LastTime = r.Seq, r.Time
			if s.Snapshot != "" {
				sum.Snapshot = s.Snapshot
			}
			if s.Title != "" {
				sum.Title, sum.Items, sum.Reasons = s.Title, s.Items, s.Reasons
				// Compare as stored: through the same encoding.
				if err := setSeenContent(&sum, seenContent(s)); err != nil {
					sum.Title, sum.Items, sum.Reasons = "", nil, nil
				}
			}
			out[k] = sum
		}
	}
	return out
}

// sortedSummaries returns the summaries by device and alert.
func sortedSummaries(m map[[2]string]SeenSummary) []SeenSummary {
	out := make([]SeenSummary, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Alert < out[j].Alert
	})
	return out
}

// verifyDerived recomputes the derived tables from the chains and reports
// each difference.
func (d *DB) verifyDerived(ctx context.Context, facts *chainFacts, fs *[]Finding) error {
	if d.version < schemaAlertSeen {
		return nil // nothing derived is stored yet
	}
	want := facts.seen
	got, err := d.AlertSeenSummaries(ctx, "")
	if err != nil {
		return err
	}
	for _, g := range got {
		k := [2]string{g.Device, g.Alert}
		w, ok := want[k]
		delete(want, k)
		if !ok || w.Count != g.Count || w.FirstSeq != g.FirstSeq || w.LastSeq != g.LastSeq || !w.LastTime.Equal(g.LastTime) || w.Snapshot != g.Snapshot ||
			w.Title != g.Title || !bytes.Equal(w.Items, g.Items) || !slices.Equal(w.Reasons, g.Reasons) {
			*fs = append(*fs, Finding{Device: g.Device, Problem: ProblemDerived,
				Detail: fmt.Sprintf("alert %s: the alert_seen summary says %d seen up to seq %d, the chain %d up to seq %d", g.Alert, g.Count, g.LastSeq, w.Count, w.LastSeq)})
		}
	}
	for _, w := range sortedSummaries(want) {
		*fs = append(*fs, Finding{Device: w.Device, Problem: ProblemDerived,
			Detail: fmt.Sprintf("alert %s: the chain has %d alert_seen records, the summary none", w.Alert, w.Count)})
	}
	return d.verifyCounts(ctx, facts, fs)
}

// verifyCounts compares record_counts with the chains.
func (d *DB) verifyCounts(ctx context.Context, facts *chainFacts, fs *[]Finding) error {
	want := facts.counts
	rows, err := d.db.QueryContext(ctx, `SELECT device, type, count FROM record_counts ORDER BY device, type`)
	if err != nil {
		return fmt.Errorf("store %s: reading record counts: %w", d.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var dev, typ string
		var n int64
		if err := rows.Scan(&dev, &typ, &n); err != nil {
			return fmt.Errorf("store %s: reading record counts: %w", d.path, err)
		}
		k := [2]string{dev, typ}
		if w := want[k]; w != n {
			*fs = append(*fs, Finding{Device: dev, Problem: ProblemDerived, Detail: fmt.Sprintf("record_counts says %d %s records, the chain has %d", n, typ, w)})
		}
		delete(want, k)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store %s: reading record counts: %w", d.path, err)
	}
	var left [][2]string
	for k := range want {
		left = append(left, k)
	}
	sort.Slice(left, func(i, j int) bool { return left[i][0]+"\x00"+left[i][1] < left[j][0]+"\x00"+left[j][1] })
	for _, k := range left {
		*fs = append(*fs, Finding{Device: k[0], Problem: ProblemDerived, Detail: fmt.Sprintf("record_counts has no %s records, the chain has %d", k[1], want[k])})
	}
	return nil
}

// seenContent encodes the content an alert_seen body carries for the
// summary's content column: "" when it carries none.
func seenContent(s AlertSeen) string {
	if s.Title == "" {
		return ""
	}
	b, err := json.Marshal(struct {
		Title   string          `json:"title"`
		Items   json.RawMessage `json:"items"`
		Reasons []string        `json:"reasons"`
	}{s.Title, compactJSON(s.Items), s.Reasons})
	if err != nil {
		return ""
	}
	return string(b)
}

// setSeenContent decodes a content column into s.
func setSeenContent(s *SeenSummary, content string) error {
	s.Title, s.Items, s.Reasons = "", nil, nil
	if content == "" {
		return nil
	}
	var c struct {
		Title   string          `json:"title"`
		Items   json.RawMessage `json:"items"`
		Reasons []string        `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(content), &c); err != nil {
		return err
	}
	s.Title, s.Items, s.Reasons = c.Title, compactJSON(c.Items), c.Reasons
	if string(s.Items) == "null" {
		s.Items = nil
	}
	return nil
}

// compactJSON returns raw without insignificant white space (nil for
// empty or invalid input), so content compares the same whichever of
// SQLite's json functions or Go's encoder wrote it.
func compactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return nil
	}
	if b.String() == "null" {
		return nil
	}
	return b.Bytes()
}
