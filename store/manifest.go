package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// How manifests are stored (schema version 4). A row of the snapshots table
// holds either a snapshot's header and its full list of item keys (a
// checkpoint: base is NULL) or a delta against another snapshot, its base
// (the device's previous snapshot when it was written): the header as
//
//	uvarint prefix, uvarint suffix, the bytes between
//
// (the base's header keeps its first prefix and last suffix bytes, the
// bytes between are replaced), and the key list as an edit script, a
// sequence of operations, each
//
//	uvarint skip, uvarint n, n keys of 32 bytes, uvarint copy
//
// applied with a cursor into the base's keys that starts at 0: skip moves
// the cursor over `skip` base keys, the n keys are appended, then `copy`
// base keys from the cursor are appended and the cursor moves past them.
// After the last operation the cursor must be at the end of the base's keys.
// depth counts the deltas from the nearest checkpoint (0 for a checkpoint)
// and span their bytes; a writer starts a new checkpoint when depth would
// pass maxDeltaDepth or span a fraction of a full list (see useDelta), so
// reading a manifest reads a bounded number of rows.
//
// The key list reconstructed is checked against the manifest digest the
// snapshot record names (ManifestDigest), exactly as a full list is: the
// storage form changes nothing that the chain fixes.

// maxDeltaDepth is the most deltas between a manifest and its checkpoint.
// At 1% churn of 500 items a key delta is about 180 bytes and a full list
// 16,000; the span rule (below) then makes a checkpoint every 180 snapshots
// or so, 90 bytes per snapshot amortized, and reading a manifest reads at
// most 3 full lists' bytes in at most maxDeltaDepth+1 rows of one query.
const maxDeltaDepth = 256

// maxSpanFactor bounds the bytes of the deltas since the checkpoint: a new
// checkpoint is written once they would exceed this many full lists (high
// churn makes a checkpoint sooner than maxDeltaDepth).
const maxSpanFactor = 2

// maxChainRows is how many rows a reader follows before calling a chain of
// bases a loop: far above what a writer makes.
const maxChainRows = 4 * maxDeltaDepth

// schemaDeltas is the first schema version whose snapshot rows may hold
// deltas.
const schemaDeltas = 4

// migrationDeltas adds the base, depth and span columns. Rows already
// stored keep their full key lists and read as checkpoints; new snapshots
// are stored as deltas against their parent.
const migrationDeltas = `
ALTER TABLE snapshots ADD COLUMN base TEXT;
ALTER TABLE snapshots ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE snapshots ADD COLUMN span INTEGER NOT NULL DEFAULT 0;
`

// encodeDelta returns the edit script that turns the key list base into
// keys (both concatenated 32-byte keys). Keys both hold in the same relative
// order are copied (a snapshot's items are in path order and a key hashes
// the item's bytes, path included, so the shared keys keep their order);
// the rest are skipped or inserted.
func encodeDelta(base, keys []byte) []byte {
	pos := make(map[[keySize]byte]int, len(base)/keySize)
	for i := 0; i+keySize <= len(base); i += keySize {
		pos[[keySize]byte(base[i:i+keySize])] = i / keySize
	}
	var out []byte
	type op struct {
		skip int
		ins  []byte
		copy int
	}
	var cur op
	flush := func() {
		if cur.skip == 0 && len(cur.ins) == 0 && cur.copy == 0 {
			return
		}
		out = binary.AppendUvarint(out, uint64(cur.skip))
		out = binary.AppendUvarint(out, uint64(len(cur.ins)/keySize))
		out = append(out, cur.ins...)
		out = binary.AppendUvarint(out, uint64(cur.copy))
		cur = op{}
	}
	at := 0 // cursor into base, in keys
	for j := 0; j+keySize <= len(keys); j += keySize {
		k := keys[j : j+keySize]
		i, ok := pos[[keySize]byte(k)]
		if ok && i >= at {
			if gap := i - at; gap > 0 && cur.copy > 0 {
				flush()
			}
			cur.skip += i - at
			cur.copy++
			at = i + 1
			continue
		}
		if cur.copy > 0 {
			flush()
		}
		cur.ins = append(cur.ins, k...)
	}
	if rest := len(base)/keySize - at; rest > 0 {
		if cur.copy > 0 {
			flush()
		}
		cur.skip += rest
	}
	flush()
	return out
}

// applyDelta applies an edit script to the key list base. Stored bytes are
// untrusted: a script that runs past its end or its base, or does not end at
// the end of its base, is an error.
func applyDelta(base, delta []byte) ([]byte, error) {
	if len(base)%keySize != 0 {
		return nil, fmt.Errorf("base key list is %d bytes, want a multiple of %d", len(base), keySize)
	}
	n := len(base) / keySize
	out := make([]byte, 0, len(base)+len(delta))
	at, off := 0, 0
	next := func(what string) (int, error) {
		v, w := binary.Uvarint(delta[off:])
		if w <= 0 || v > uint64(len(base)+len(delta)) {
			return 0, fmt.Errorf("edit script byte %d: want a %s count (uvarint)", off, what)
		}
		off += w
		return int(v), nil
	}
	for off < len(delta) {
		skip, err := next("skip")
		if err != nil {
			return nil, err
		}
		ins, err := next("insert")
		if err != nil {
			return nil, err
		}
		if ins > (len(delta)-off)/keySize {
			return nil, fmt.Errorf("edit script byte %d: inserts %d keys, only %d bytes follow", off, ins, len(delta)-off)
		}
		if at+skip > n {
			return nil, fmt.Errorf("edit script byte %d: skips to key %d of a base of %d", off, at+skip, n)
		}
		at += skip
		out = append(out, delta[off:off+ins*keySize]...)
		off += ins * keySize
		cp, err := next("copy")
		if err != nil {
			return nil, err
		}
		if at+cp > n {
			return nil, fmt.Errorf("edit script byte %d: copies up to key %d of a base of %d", off, at+cp, n)
		}
		out = append(out, base[at*keySize:(at+cp)*keySize]...)
		at += cp
	}
	if at != n {
		return nil, fmt.Errorf("edit script ends at key %d of a base of %d", at, n)
	}
	return out, nil
}

// useDelta reports whether a snapshot is stored as a delta of delta bytes
// against a parent at depth parentDepth whose deltas since the checkpoint
// take parentSpan bytes, rather than as a full list of full bytes.
func useDelta(parentDepth, parentSpan, delta, full int) bool {
	return parentDepth+1 <= maxDeltaDepth && delta < full && parentSpan+delta <= maxSpanFactor*full
}

// manifestRow is a snapshot row as the reader of a chain of bases sees it.
type manifestRow struct {
	base         sql.NullString
	depth, span  int
	header, data []byte
}

// ErrBrokenDelta means a stored manifest is a delta whose base is missing
// or does not apply: the snapshot cannot be read (verify names it).
var ErrBrokenDelta = errors.New("manifest delta does not apply")

type rowsQuerier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// qChain reads a manifest row and the rows of its bases up to the nearest
// checkpoint (or until the digest ?2 is reached, which the caller already
// holds), in any order (n counts the steps from the first).
const qChain = `WITH RECURSIVE chain(n, digest, base) AS (
	SELECT 0, digest, base FROM snapshots WHERE digest = ?1
	UNION ALL
	SELECT c.n + 1, s.digest, s.base FROM snapshots s JOIN chain c ON s.digest = c.base
	WHERE c.base <> ?2 AND c.n < ?3
) SELECT c.n, s.digest, s.base, s.depth, s.span, s.header, s.items FROM chain c JOIN snapshots s ON s.digest = c.digest`

// keyCache is the key list of one snapshot already reconstructed, which a
// chain read may stop at.
type keyCache struct {
	digest       string
	header, keys []byte
	depth, span  int // of its row
}

// readManifest reads the header and the full key list of the snapshot with
// the given digest, following its chain of bases. version is the file's
// schema version (older files have full lists only). With a cache, the
// walk stops at the cached snapshot and uses its keys. A missing row gives
// ErrNotFound; a missing base or a delta that does not apply gives
// ErrBrokenDelta, naming the snapshot and its base.
func readManifest(ctx context.Context, q rowsQuerier, version int, digest string, cache *keyCache) (header, keys []byte, top manifestRow, err error) {
	if version < schemaDeltas {
		rows, err := q.QueryContext(ctx, qManifest, digest)
		if err != nil {
			return nil, nil, top, err
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return nil, nil, top, err
			}
			return nil, nil, top, fmt.Errorf("snapshot %s: its content is missing (see verify): %w", digest, ErrNotFound)
		}
		if err := rows.Scan(&top.header, &top.data); err != nil {
			return nil, nil, top, err
		}
		return top.header, top.data, top, rows.Err()
	}
	stop := ""
	if cache != nil {
		if cache.digest == digest {
			return cache.header, cache.keys, manifestRow{depth: cache.depth, span: cache.span}, nil
		}
		stop = cache.digest
	}
	rows, err := q.QueryContext(ctx, qChain, digest, stop, maxChainRows)
	if err != nil {
		return nil, nil, top, err
	}
	defer rows.Close()
	type step struct {
		n    int
		name string
		row  manifestRow
	}
	var steps []step
	for rows.Next() {
		var st step
		if err := rows.Scan(&st.n, &st.name, &st.row.base, &st.row.depth, &st.row.span, &st.row.header, &st.row.data); err != nil {
			return nil, nil, top, err
		}
		steps = append(steps, st)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, top, err
	}
	slices.SortFunc(steps, func(a, b step) int { return a.n - b.n })
	chain := make([]manifestRow, len(steps))
	names := make([]string, len(steps))
	for i, st := range steps {
		if st.n != i {
			return nil, nil, top, fmt.Errorf("snapshot %s: the chain of its manifest's bases has two rows at step %d (two rows of one digest?): %w", digest, st.n, ErrBrokenDelta)
		}
		chain[i], names[i] = st.row, st.name
	}
	if len(chain) == 0 {
		return nil, nil, top, fmt.Errorf("snapshot %s: its content is missing (see verify): %w", digest, ErrNotFound)
	}
	top = chain[0]
	last := chain[len(chain)-1]
	switch {
	case !last.base.Valid:
		header, keys = last.header, last.data
		chain = chain[:len(chain)-1]
	case cache != nil && last.base.String == cache.digest:
		header, keys = cache.header, cache.keys
	case len(chain) > maxChainRows:
		return nil, nil, top, fmt.Errorf("snapshot %s: its manifest is a delta more than %d deltas from a full list (a loop of bases?): %w", digest, maxChainRows, ErrBrokenDelta)
	default:
		return nil, nil, top, fmt.Errorf("snapshot %s: its manifest is a delta against snapshot %s, whose manifest is missing (see verify): %w", names[len(names)-1], last.base.String, ErrBrokenDelta)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if header, err = applyHeaderDelta(header, chain[i].header); err != nil {
			return nil, nil, top, fmt.Errorf("snapshot %s: its header delta against snapshot %s: %v: %w", names[i], chain[i].base.String, err, ErrBrokenDelta)
		}
		if keys, err = applyDelta(keys, chain[i].data); err != nil {
			return nil, nil, top, fmt.Errorf("snapshot %s: its manifest delta against snapshot %s: %v: %w", names[i], chain[i].base.String, err, ErrBrokenDelta)
		}
	}
	return header, keys, top, nil
}

// putContentTx stores a snapshot's content for device inside a write
// transaction, before its record is appended: the item blobs the store
// lacks, and its manifest as a delta against the device's newest snapshot
// (its parent) when useDelta says so, else as a full list. Only the keys
// the parent does not hold are looked up among the blobs, so the cost
// follows what changed. A parent whose manifest does not read back to the
// digest its record names is not used (the snapshot becomes a checkpoint and
// every key is looked up). Content already stored is not stored again.
// last, when not nil, is the manifest this handle wrote last, which the
// parent's read uses instead of reading it again when it is the parent
// (content is addressed by digest, so it cannot have changed). It returns
// the manifest written, for the next call (nil when none was written).
func putContentTx(ctx context.Context, tx *sql.Tx, device, digest string, m *manifest, last *keyCache) (*keyCache, error) {
	ks, err := splitKeys(m.keys)
	if err != nil {
		return nil, err
	}
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM snapshots WHERE digest = ?`, digest).Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking up the snapshot's content: %w", err)
	}
	var (
		parentDigest             string
		parentHeader, parentKeys []byte
		parent                   manifestRow
	)
	var body []byte
	err = tx.QueryRowContext(ctx, qLatest, device).Scan(&body)
	switch {
	case err == nil:
		if ref, err := decodeRef(body); err == nil && ref.Digest != digest && ref.Manifest != "" {
			header, keys, top, err := readManifest(ctx, tx, SchemaVersion, ref.Digest, last)
			if err == nil && ManifestDigest(header, keys) == ref.Manifest {
				parentDigest, parentHeader, parentKeys, parent = ref.Digest, header, keys, top
			}
		}
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("reading the parent snapshot: %w", err)
	}
	// idx lists the items whose blobs may be missing: every item, or the
	// ones the parent does not hold.
	idx := make([]int, 0, len(ks))
	var inParent map[[keySize]byte]struct{}
	if parentDigest != "" && exists == 0 {
		inParent = make(map[[keySize]byte]struct{}, len(parentKeys)/keySize)
		for i := 0; i+keySize <= len(parentKeys); i += keySize {
			inParent[[keySize]byte(parentKeys[i:i+keySize])] = struct{}{}
		}
	}
	cand := make([][keySize]byte, 0, len(ks))
	for i, k := range ks {
		if _, ok := inParent[k]; !ok {
			idx = append(idx, i)
			cand = append(cand, k)
		}
	}
	if len(idx) > 0 {
		have, err := presentKeys(ctx, tx, cand)
		if err != nil {
			return nil, err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO blobs (hash, data) VALUES (?, ?)`)
		if err != nil {
			return nil, err
		}
		defer ins.Close()
		for _, i := range idx {
			k := ks[i]
			if have[k] {
				continue
			}
			if err := m.checkItem(i); err != nil {
				return nil, err
			}
			have[k] = true
			if _, err := ins.ExecContext(ctx, k[:], m.items[i]); err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
		}
	}
	if exists > 0 {
		return nil, nil
	}
	if parentDigest != "" {
		delta := encodeDelta(parentKeys, m.keys)
		if useDelta(parent.depth, parent.span, len(delta), len(m.keys)) {
			depth, span := parent.depth+1, parent.span+len(delta)
			_, err := tx.ExecContext(ctx, `INSERT INTO snapshots (digest, header, items, base, depth, span) VALUES (?, ?, ?, ?, ?, ?)`,
				digest, encodeHeaderDelta(parentHeader, m.header), delta, parentDigest, depth, span)
			if err != nil {
				return nil, err
			}
			return &keyCache{digest: digest, header: m.header, keys: m.keys, depth: depth, span: span}, nil
		}
	}
	if _, err = tx.ExecContext(ctx, `INSERT INTO snapshots (digest, header, items) VALUES (?, ?, ?)`, digest, m.header, m.keys); err != nil {
		return nil, err
	}
	return &keyCache{digest: digest, header: m.header, keys: m.keys}, nil
}

// encodeHeaderDelta returns header as a delta against base: the lengths of
// the prefix and suffix they share, then the bytes between.
func encodeHeaderDelta(base, header []byte) []byte {
	n := min(len(base), len(header))
	pre := 0
	for pre < n && base[pre] == header[pre] {
		pre++
	}
	suf := 0
	for suf < n-pre && base[len(base)-1-suf] == header[len(header)-1-suf] {
		suf++
	}
	out := binary.AppendUvarint(nil, uint64(pre))
	out = binary.AppendUvarint(out, uint64(suf))
	return append(out, header[pre:len(header)-suf]...)
}

// applyHeaderDelta rebuilds a header from its base and a delta made by
// encodeHeaderDelta; a delta that does not fit its base is an error.
func applyHeaderDelta(base, delta []byte) ([]byte, error) {
	pre, w := binary.Uvarint(delta)
	if w <= 0 {
		return nil, errors.New("want the shared prefix length (uvarint)")
	}
	suf, w2 := binary.Uvarint(delta[w:])
	if w2 <= 0 {
		return nil, errors.New("want the shared suffix length (uvarint)")
	}
	if pre > uint64(len(base)) || suf > uint64(len(base))-pre {
		return nil, fmt.Errorf("keeps %d and %d bytes of a base header of %d", pre, suf, len(base))
	}
	mid := delta[w+w2:]
	out := make([]byte, 0, int(pre)+len(mid)+int(suf))
	out = append(out, base[:pre]...)
	out = append(out, mid...)
	return append(out, base[len(base)-int(suf):]...), nil
}
