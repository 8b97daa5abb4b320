package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/plcwatch/plcwatch/snapshots"
)

// A central store holds copies of other stores' chains (imported from
// signed evidence bundles) under site-prefixed device names ("north/plc-a").
// An imported record keeps its sequence number, type, time and body; its
// prev and digest are recomputed for the central chain, so central
// verification works as for any chain. The origin digests stay derivable:
// recomputing a record's digest with the origin device name and the origin
// digest of the record before gives the digest the site recorded (see
// OriginHead), which is how the continuation of a chain is checked.

// OriginHead is the head of a chain as its origin store knows it: Device is
// the name in this store, Origin the name at the origin, Seq and Digest the
// origin's head.
type OriginHead struct {
	Device string
	Origin string
	Seq    int64
	Digest string
}

// ImportChain is a range of an origin chain to append to this store.
type ImportChain struct {
	// Device is the chain's name here, Origin its name at the origin.
	Device, Origin string
	// Records are the origin's records, contiguous, with the origin's
	// device name, prev and digest; the first must continue what this
	// store holds of Device (or start the chain at seq 1).
	Records []Record
	// Snapshots holds the canonical encoding of every snapshot a snapshot
	// record names, by digest.
	Snapshots map[string][]byte
}

// ImportError is a chain that does not continue what the store holds.
type ImportError struct {
	Device string
	Detail string
}

// Error names the chain and what is wrong with its continuation.
func (e *ImportError) Error() string { return e.Device + ": " + e.Detail }

// originHeadTx recomputes the origin digests of a chain held under device
// and returns the origin head (seq 0, GenesisPrev when the chain is empty).
func originHeadTx(ctx context.Context, tx *sql.Tx, device, origin string) (int64, string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+recordCols+` FROM records WHERE device = ? ORDER BY seq`, device)
	if err != nil {
		return 0, "", fmt.Errorf("reading chain %s: %w", device, err)
	}
	defer rows.Close()
	seq, digest := int64(0), GenesisPrev
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return 0, "", err
		}
		if r.Seq != seq+1 {
			return 0, "", fmt.Errorf("chain %s: record %d follows record %d (see verify)", device, r.Seq, seq)
		}
		r.Device, r.Prev = origin, digest
		seq, digest = r.Seq, r.ComputeDigest()
	}
	return seq, digest, rows.Err()
}

// OriginHead returns the head of the chain held under device as the origin
// store (where it is named origin) recorded it: seq 0 and GenesisPrev when
// this store holds nothing of it.
func (d *DB) OriginHead(ctx context.Context, device, origin string) (OriginHead, error) {
	h := OriginHead{Device: device, Origin: origin}
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return h, fmt.Errorf("store %s: %w", d.path, err)
	}
	defer tx.Rollback()
	h.Seq, h.Digest, err = originHeadTx(ctx, tx, device, origin)
	if err != nil {
		return h, fmt.Errorf("store %s: %w", d.path, err)
	}
	return h, nil
}

// Import appends ranges of origin chains in one transaction: all or
// nothing. Before writing it checks, for every expected head, that this
// store holds exactly that origin head (an *ImportError otherwise: a
// bundle in between is missing, or the origin was rewritten), and for
// every chain that its first record continues the held chain and that each
// record's origin digest and link recompute. Snapshot contents are checked
// against their digests and stored as PutSnapshot stores them. It returns
// the records appended (with this store's prev and digest).
func (d *DB) Import(ctx context.Context, expect []OriginHead, chains []ImportChain) ([]Record, error) {
	var out []Record
	err := d.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, e := range expect {
			seq, digest, err := originHeadTx(ctx, tx, e.Device, e.Origin)
			if err != nil {
				return err
			}
			if seq != e.Seq || digest != e.Digest {
				if seq == 0 {
					return &ImportError{Device: e.Device, Detail: fmt.Sprintf("the bundle continues from record %d, and this store holds nothing of the chain: import the earlier bundles first", e.Seq)}
				}
				if seq > e.Seq {
					return &ImportError{Device: e.Device, Detail: fmt.Sprintf("the bundle continues from record %d, this store already holds the chain up to record %d: the bundle was imported already (or the site's chain was rewritten)", e.Seq, seq)}
				}
				return &ImportError{Device: e.Device, Detail: fmt.Sprintf("the bundle continues from record %d (%.16s), this store holds the chain up to record %d (%.16s): a bundle is missing in between, or the site's chain was rewritten", e.Seq, e.Digest, seq, digest)}
			}
		}
		for _, c := range chains {
			if err := ValidDevice(c.Device); err != nil {
				return &ImportError{Device: c.Device, Detail: err.Error()}
			}
			if len(c.Records) == 0 {
				continue
			}
			seq, digest, err := originHeadTx(ctx, tx, c.Device, c.Origin)
			if err != nil {
				return err
			}
			first := c.Records[0]
			if first.Seq != seq+1 || first.Prev != digest {
				return &ImportError{Device: c.Device, Detail: fmt.Sprintf("the bundle's range starts at record %d after %.16s, this store holds the chain up to record %d (%.16s): it does not continue it", first.Seq, first.Prev, seq, digest)}
			}
			for _, r := range c.Records {
				if r.Device != c.Origin || r.Seq != seq+1 || r.Prev != digest || r.ComputeDigest() != r.Digest {
					return &ImportError{Device: c.Device, Detail: fmt.Sprintf("record %d does not recompute or link (origin %s, seq %d)", r.Seq, r.Device, r.Seq)}
				}
				seq, digest = r.Seq, r.Digest
				if r.Type == TypeSnapshot {
					if err := importSnapshotTx(ctx, tx, c, r); err != nil {
						return err
					}
				}
				nr, err := appendTx(ctx, tx, c.Device, r.Type, r.Time, r.Body)
				if err != nil {
					return err
				}
				if nr.Seq != r.Seq {
					return &ImportError{Device: c.Device, Detail: fmt.Sprintf("record %d landed at seq %d", r.Seq, nr.Seq)}
				}
				out = append(out, nr)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// importSnapshotTx stores the content of the snapshot an imported snapshot
// record names.
func importSnapshotTx(ctx context.Context, tx *sql.Tx, c ImportChain, r Record) error {
	ref, err := decodeRef(r.Body)
	if err != nil {
		return &ImportError{Device: c.Device, Detail: fmt.Sprintf("record %d: %v", r.Seq, err)}
	}
	enc, ok := c.Snapshots[ref.Digest]
	if !ok {
		return &ImportError{Device: c.Device, Detail: fmt.Sprintf("record %d: the content of snapshot %s is missing", r.Seq, ref.ID)}
	}
	s, err := snapshots.Decode(enc, ref.Digest)
	if err != nil {
		return &ImportError{Device: c.Device, Detail: fmt.Sprintf("record %d: snapshot %s: %v", r.Seq, ref.ID, err)}
	}
	m, err := split(s)
	if err != nil {
		return &ImportError{Device: c.Device, Detail: fmt.Sprintf("record %d: snapshot %s: %v", r.Seq, ref.ID, err)}
	}
	if _, err := putContentTx(ctx, tx, c.Device, s.Digest, m, nil); err != nil {
		return fmt.Errorf("importing snapshot %s: %w", ref.ID, err)
	}
	return nil
}
