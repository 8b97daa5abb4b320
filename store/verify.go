package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Verify recomputes every item blob's hash, every snapshot's digest from its
// manifest, and every record's digest and link, and checks the given heads
// (recorded earlier outside the store) and extra head digests against the
// chains. It returns the findings in a stable order (blobs, snapshots,
// chains by device and seq, heads); an error means verification could not
// run, not that the store is bad.
//
// Deleting the newest records of a chain, or rewriting a whole chain with
// fresh digests, leaves a consistent chain: only a head recorded earlier
// reveals it.
func (d *DB) Verify(ctx context.Context, known []Head, extraHeads []string) ([]Finding, error) {
	extra := make([]string, len(extraHeads))
	for i, h := range extraHeads {
		h = strings.ToLower(h)
		if len(h) != 64 || !isHex(h) {
			return nil, fmt.Errorf("verifying: head %q: want a record digest of 64 hex digits", extraHeads[i])
		}
		extra[i] = h
	}
	var fs []Finding
	damaged, err := d.quickCheck(ctx, &fs)
	if err != nil {
		return nil, err
	}
	// In a damaged file a table may not read to its end: say so and go on
	// with what can be read.
	phase := func(err error) error {
		if err != nil && damaged && ctx.Err() == nil {
			fs = append(fs, Finding{Problem: ProblemUnparseable, Detail: err.Error()})
			return nil
		}
		return err
	}
	if err := phase(d.verifyBlobs(ctx, &fs)); err != nil {
		return nil, err
	}
	facts := newChainFacts(known, extra)
	if err := phase(d.verifyChains(ctx, facts, &fs)); err != nil {
		return nil, err
	}
	if err := phase(d.verifyDerived(ctx, facts, &fs)); err != nil {
		return nil, err
	}
	verifyHeads(facts, known, extra, &fs)
	return fs, nil
}

// quickCheck runs SQLite's structural check of the file and reports each
// problem as an unparseable finding; it says whether there were any.
func (d *DB) quickCheck(ctx context.Context, fs *[]Finding) (bool, error) {
	rows, err := d.db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		*fs = append(*fs, Finding{Problem: ProblemUnparseable, Detail: fmt.Sprintf("file structure: %v", err)})
		return true, nil
	}
	defer rows.Close()
	damaged := false
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return false, fmt.Errorf("verifying %s: checking the file structure: %w", d.path, err)
		}
		if msg != "ok" {
			damaged = true
			*fs = append(*fs, Finding{Problem: ProblemUnparseable, Detail: "file structure: " + msg})
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		*fs = append(*fs, Finding{Problem: ProblemUnparseable, Detail: fmt.Sprintf("file structure: %v", err)})
		damaged = true
	}
	return damaged, nil
}

// verifyBlobs checks every item blob against its key and as the canonical
// encoding of an item, streaming the table in key order: nothing is kept.
func (d *DB) verifyBlobs(ctx context.Context, fs *[]Finding) error {
	rows, err := d.db.QueryContext(ctx, `SELECT hash, data FROM blobs`)
	if err != nil {
		return fmt.Errorf("verifying %s: reading blobs: %w", d.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var h, data []byte
		if err := rows.Scan(&h, &data); err != nil {
			return fmt.Errorf("verifying %s: reading blobs: %w", d.path, err)
		}
		if len(h) != keySize {
			*fs = append(*fs, Finding{Problem: ProblemBlobMismatch, Detail: fmt.Sprintf("blob key %x is %d bytes, want %d", h, len(h), keySize)})
			continue
		}
		k := [keySize]byte(h)
		if sha256.Sum256(data) != k {
			*fs = append(*fs, Finding{Problem: ProblemBlobMismatch, Detail: fmt.Sprintf("blob %x: its content hashes to %x", k, sha256.Sum256(data))})
			continue
		}
		if err := checkItemBlob(data); err != nil {
			*fs = append(*fs, Finding{Problem: ProblemBlobMismatch, Detail: fmt.Sprintf("blob %x: %v", k, err)})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verifying %s: reading blobs: %w", d.path, err)
	}
	return nil
}

// contentState is what verifying one device's snapshots in chain order
// carries from one snapshot to the next: the previous snapshot's key list
// (where the next delta starts) and its verified blobs (which the next
// snapshot mostly shares). It is bounded by the largest snapshot.
type contentState struct {
	keys  *keyCache
	blobs verifiedBlobs
}

// verifyContent checks the content of the snapshot a record names: its
// manifest reconstructed (through its deltas) and checked against the
// manifest digest the record names, each item blob read (those the previous
// snapshot did not hold) and checked against its key, and the encoding they
// make checked against the snapshot digest. Each problem is a finding on the
// record; an error means the store could not be read.
func (d *DB) verifyContent(ctx context.Context, r chainRecord, ref SnapshotRef, st *contentState, fs *[]Finding) error {
	add := func(problem, format string, args ...any) {
		*fs = append(*fs, Finding{Device: r.Device, Seq: r.Seq, Problem: problem, Detail: fmt.Sprintf(format, args...)})
	}
	header, keys, _, err := readManifest(ctx, d.db, d.version, ref.Digest, st.keys)
	switch {
	case errors.Is(err, ErrNotFound):
		add(ProblemMissingBlob, "the content of snapshot %s is missing", ref.ID)
		return nil
	case errors.Is(err, ErrBrokenDelta) && strings.Contains(err.Error(), "is missing"):
		add(ProblemMissingBlob, "snapshot %s: %v", ref.ID, err)
		return nil
	case errors.Is(err, ErrBrokenDelta):
		add(ProblemUnparseable, "snapshot %s: %v", ref.ID, err)
		return nil
	case err != nil:
		return fmt.Errorf("verifying %s: reading snapshot %s: %w", d.path, ref.ID, err)
	}
	st.keys = &keyCache{digest: ref.Digest, header: header, keys: keys}
	ks, err := splitKeys(keys)
	if err != nil {
		add(ProblemUnparseable, "snapshot %s: %v", ref.ID, err)
		return nil
	}
	if ref.Manifest != "" {
		if got := ManifestDigest(header, keys); got != ref.Manifest {
			add(ProblemBlobMismatch, "snapshot %s: the record names manifest %s, the stored manifest hashes to %s", ref.ID, ref.Manifest, got)
			return nil
		}
	}
	var need [][keySize]byte
	for _, k := range ks {
		if _, ok := st.blobs[k]; !ok {
			need = append(need, k)
		}
	}
	got, bad, err := d.readBlobs(ctx, need)
	if err != nil {
		return fmt.Errorf("verifying %s: snapshot %s: %w", d.path, ref.ID, err)
	}
	blobs := make(verifiedBlobs, len(ks))
	problem := false
	for i, k := range ks {
		b, ok := st.blobs[k]
		if !ok {
			b, ok = got[k]
		}
		switch {
		case ok:
			blobs[k] = b
		case bad[k]:
			problem = true
			add(ProblemBlobMismatch, "snapshot %s: item %d (blob %x) does not hash to its key", ref.ID, i, k)
		default:
			problem = true
			add(ProblemMissingBlob, "snapshot %s: item %d (blob %x) is missing", ref.ID, i, k)
		}
	}
	st.blobs = blobs
	if problem {
		return nil
	}
	// The encoding is hashed as it would be assembled, without building it.
	null := bytes.HasSuffix(header, suffixNull)
	switch {
	case null && len(ks) != 0:
		add(ProblemUnparseable, "snapshot %s: its header has no item list but the manifest lists %d items", ref.ID, len(ks))
		return nil
	case !null && !bytes.HasSuffix(header, suffixEmpty):
		add(ProblemUnparseable, `snapshot %s: its header does not end with "items":[]} or "items":null}`, ref.ID)
		return nil
	}
	h := sha256.New()
	if null {
		h.Write(header)
	} else {
		h.Write(header[:len(header)-2])
		for i, k := range ks {
			if i > 0 {
				h.Write([]byte{','})
			}
			h.Write(blobs[k])
		}
		h.Write([]byte("]}"))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.Digest {
		add(ProblemBlobMismatch, "snapshot %s: its stored content hashes to %s", ref.ID, got)
	}
	return nil
}

// readBlobs reads the blobs with the given keys in bulk and returns those
// that hash to their key, and the keys of those that do not; absent keys are
// in neither.
func (d *DB) readBlobs(ctx context.Context, keys [][keySize]byte) (verifiedBlobs, map[[keySize]byte]bool, error) {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b [keySize]byte) int { return bytes.Compare(a[:], b[:]) })
	sorted = slices.Compact(sorted)
	const batch = 900
	out := make(verifiedBlobs, len(sorted))
	bad := map[[keySize]byte]bool{}
	args := make([]any, 0, batch)
	for start := 0; start < len(sorted); start += batch {
		end := min(start+batch, len(sorted))
		args = args[:0]
		for i := start; i < end; i++ {
			args = append(args, sorted[i][:])
		}
		rows, err := d.db.QueryContext(ctx, `SELECT hash, data FROM blobs WHERE hash IN (?`+strings.Repeat(",?", len(args)-1)+`) ORDER BY hash`, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("reading item blobs: %w", err)
		}
		for rows.Next() {
			var h, data []byte
			if err := rows.Scan(&h, &data); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("reading item blobs: %w", err)
			}
			if len(h) != keySize {
				continue
			}
			if out.add([keySize]byte(h), data) != nil {
				bad[[keySize]byte(h)] = true
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("reading item blobs: %w", err)
		}
	}
	return out, bad, nil
}

// chainRecord is a record as stored, with its time possibly unparseable.
type chainRecord struct {
	Record
	timeErr error
}

// chainFacts is what the derived-state and head checks need from the
// chains, gathered device by device as verify streams the records: its size
// follows the number of devices, alerts and heads, not of records.
type chainFacts struct {
	seen   map[[2]string]SeenSummary // what alert_seen_summary must hold
	counts map[[2]string]int64       // records per device and type
	last   map[string]int64          // newest seq per device
	// at holds the digest of each record at a known head's seq.
	at    map[string]map[int64]string
	want  map[string][]int64 // the known heads' seqs per device
	extra map[string]bool    // extra heads, true once found in a chain
}

func newChainFacts(known []Head, extra []string) *chainFacts {
	c := &chainFacts{seen: map[[2]string]SeenSummary{}, counts: map[[2]string]int64{}, last: map[string]int64{},
		at: map[string]map[int64]string{}, want: map[string][]int64{}, extra: map[string]bool{}}
	for _, h := range known {
		c.want[h.Device] = append(c.want[h.Device], h.Seq)
	}
	for _, h := range extra {
		c.extra[h] = false
	}
	return c
}

// add takes in one device's records, sorted by seq.
func (c *chainFacts) add(dev string, recs []chainRecord) {
	for k, v := range seenSummaries(map[string][]chainRecord{dev: recs}) {
		c.seen[k] = v
	}
	for _, r := range recs {
		c.counts[[2]string{dev, r.Type}]++
		if _, ok := c.extra[r.Digest]; ok {
			c.extra[r.Digest] = true
		}
	}
	if len(recs) > 0 {
		c.last[dev] = recs[len(recs)-1].Seq
	}
	for _, seq := range c.want[dev] {
		for _, r := range recs {
			if r.Seq == seq {
				if c.at[dev] == nil {
					c.at[dev] = map[int64]string{}
				}
				c.at[dev][seq] = r.Digest
				break
			}
		}
	}
}

// verifyChains streams the records device by device: each device's chain
// is checked (verifyChain), the content of each of its snapshots is checked
// in chain order (verifyContent), and what the later checks need is kept in
// facts. Only one device's records are held at a time.
func (d *DB) verifyChains(ctx context.Context, facts *chainFacts, fs *[]Finding) error {
	rows, err := d.db.QueryContext(ctx, `SELECT `+recordCols+` FROM records ORDER BY device, seq`)
	if err != nil {
		return fmt.Errorf("verifying %s: reading records: %w", d.path, err)
	}
	defer rows.Close()
	var recs []chainRecord
	device := func() error {
		if len(recs) == 0 {
			return nil
		}
		verifyChain(recs, fs)
		var st contentState
		for _, r := range recs {
			if r.Type != TypeSnapshot {
				continue
			}
			ref, err := decodeRef(r.Body)
			if err != nil {
				continue // verifyChain reported it
			}
			if err := d.verifyContent(ctx, r, ref, &st, fs); err != nil {
				return err
			}
		}
		facts.add(recs[0].Device, recs)
		recs = recs[:0]
		return nil
	}
	for rows.Next() {
		var r chainRecord
		var ts string
		var body []byte
		if err := rows.Scan(&r.Device, &r.Seq, &r.Type, &ts, &body, &r.Prev, &r.Digest); err != nil {
			return fmt.Errorf("verifying %s: reading records: %w", d.path, err)
		}
		r.Body = body
		r.Time, r.timeErr = parseTime(ts)
		if len(recs) > 0 && recs[0].Device != r.Device {
			if err := device(); err != nil {
				return err
			}
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verifying %s: reading records: %w", d.path, err)
	}
	return device()
}

// verifyChain checks one device's records, sorted by seq.
func verifyChain(recs []chainRecord, fs *[]Finding) {
	byDigest := make(map[string]int, len(recs)) // stored digest -> index
	byPrev := make(map[string]int, len(recs))   // stored prev -> index
	for i, r := range recs {
		byDigest[r.Digest] = i
		if _, dup := byPrev[r.Prev]; !dup {
			byPrev[r.Prev] = i
		}
	}
	expected, prevDigest, prevOK := int64(1), GenesisPrev, true
	for _, r := range recs {
		add := func(problem, format string, args ...any) {
			*fs = append(*fs, Finding{Device: r.Device, Seq: r.Seq, Problem: problem, Detail: fmt.Sprintf(format, args...)})
		}
		gap := r.Seq > expected
		switch {
		case gap && r.Seq == expected+1:
			add(ProblemDeleted, "record %d is missing before record %d", expected, r.Seq)
		case gap:
			add(ProblemDeleted, "records %d to %d are missing before record %d", expected, r.Seq-1, r.Seq)
		case r.Seq < expected:
			add(ProblemEdited, "sequence number %d, want %d or more", r.Seq, expected)
		}
		ok := false
		switch {
		case r.timeErr != nil:
			add(ProblemUnparseable, "%v", r.timeErr)
		case r.ComputeDigest() == r.Digest:
			ok = true
		default:
			if was := writtenAt(r.Record, recs, byDigest, byPrev); was != 0 {
				add(ProblemReordered, "the %s record now at seq %d was written at seq %d", r.Type, r.Seq, was)
			} else {
				add(ProblemEdited, "the %s record's content hashes to %s, its recorded digest is %s", r.Type, r.ComputeDigest(), r.Digest)
			}
		}
		if ok && prevOK && !gap && r.Prev != prevDigest {
			add(ProblemBadLink, "prev is %s, the digest of the record before is %s", r.Prev, prevDigest)
		}
		if r.Type == TypeSnapshot {
			if _, err := decodeRef(r.Body); err != nil {
				add(ProblemUnparseable, "%v", err)
			}
		}
		expected, prevDigest, prevOK = r.Seq+1, r.Digest, ok
	}
}

// writtenAt returns the seq at which r's recorded digest is valid, when that
// is not its current seq (the record was moved), or 0. The candidates are
// the positions after the record its prev names and before the record that
// names it as prev.
func writtenAt(r Record, recs []chainRecord, byDigest, byPrev map[string]int) int64 {
	var cands []int64
	if r.Prev == GenesisPrev {
		cands = append(cands, 1)
	}
	if i, ok := byDigest[r.Prev]; ok {
		cands = append(cands, recs[i].Seq+1)
	}
	if i, ok := byPrev[r.Digest]; ok {
		cands = append(cands, recs[i].Seq-1)
	}
	for _, c := range cands {
		if c == r.Seq || c < 1 {
			continue
		}
		m := r
		m.Seq = c
		if m.ComputeDigest() == r.Digest {
			return c
		}
	}
	return 0
}

func verifyHeads(facts *chainFacts, known []Head, extra []string, fs *[]Finding) {
	for _, h := range known {
		last, has := facts.last[h.Device]
		add := func(problem, format string, args ...any) {
			*fs = append(*fs, Finding{Device: h.Device, Seq: h.Seq, Problem: problem, Detail: fmt.Sprintf(format, args...)})
		}
		digest, found := facts.at[h.Device][h.Seq]
		switch {
		case !has:
			add(ProblemHeadMissing, "head %s was recorded at seq %d but the device has no records: its chain was deleted", h.Digest, h.Seq)
		case !found && h.Seq > last:
			add(ProblemHeadMissing, "head %s was recorded at seq %d but the chain ends at seq %d: records were deleted from its end (or it was rewritten)", h.Digest, h.Seq, last)
		case !found:
			add(ProblemHeadMissing, "head %s was recorded at seq %d but there is no record at that seq", h.Digest, h.Seq)
		case !strings.EqualFold(digest, h.Digest):
			add(ProblemHeadMismatch, "head %s was recorded at seq %d but the record there has digest %s: the chain was rewritten", h.Digest, h.Seq, digest)
		}
	}
	for _, h := range extra {
		if !facts.extra[h] {
			*fs = append(*fs, Finding{Problem: ProblemHeadMissing, Detail: fmt.Sprintf("head %s is in no chain: a chain was truncated or rewritten", h)})
		}
	}
}
