package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/plcwatch/plcwatch/snapshots"
)

// How snapshot content is stored. A snapshot's canonical encoding
// (snapshots.Encode) ends with its items: `...,"items":[ITEM,ITEM,...]}`,
// where each ITEM is the canonical JSON of one snapshots.Item. The store
// keeps each ITEM once in the blob table, keyed by the SHA-256 of its bytes,
// and per snapshot a manifest: the header (the encoding with the items left
// out, which ends in `"items":[]}` or `"items":null}`) and the list of item
// keys, 32 raw bytes each. Reassembly concatenates them back into the exact
// encoding, whose SHA-256 is the snapshot digest.

const keySize = sha256.Size

var (
	suffixEmpty = []byte(`"items":[]}`)
	suffixNull  = []byte(`"items":null}`)
)

// manifest is the stored form of one snapshot.
type manifest struct {
	header []byte
	keys   []byte // concatenated item keys
	items  [][]byte
}

// canonical encodes v as compact JSON without HTML escaping, the encoding
// the snapshots package hashes.
func canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// split turns a finalized snapshot into its manifest and item blobs, and
// checks that they reassemble to s.Digest (so a snapshot changed after
// Finalize is refused).
func split(s *snapshots.Snapshot) (*manifest, error) {
	if s.Digest == "" {
		return nil, fmt.Errorf("snapshot of %s has no digest: call Finalize before storing it", s.Device)
	}
	h := *s
	if s.Items != nil {
		h.Items = []snapshots.Item{}
	}
	header, err := h.Encode()
	if err != nil {
		return nil, err
	}
	m := &manifest{header: header, keys: make([]byte, 0, len(s.Items)*keySize), items: make([][]byte, len(s.Items))}
	for i := range s.Items {
		b, err := canonical(&s.Items[i])
		if err != nil {
			return nil, fmt.Errorf("encoding item %q of %s: %w", s.Items[i].Path, s.Device, err)
		}
		k := sha256.Sum256(b)
		m.keys = append(m.keys, k[:]...)
		m.items[i] = b
	}
	enc, err := assemble(m.header, m.items)
	if err != nil {
		return nil, err
	}
	if d := digestOf(enc); d != s.Digest {
		return nil, fmt.Errorf("snapshot %s of %s: content hashes to %s: it was changed after Finalize: %w", s.ID, s.Device, d, snapshots.ErrDigestMismatch)
	}
	return m, nil
}

// assemble rebuilds a snapshot's canonical encoding from its header and the
// bytes of its items in order.
func assemble(header []byte, items [][]byte) ([]byte, error) {
	switch {
	case bytes.HasSuffix(header, suffixNull):
		if len(items) != 0 {
			return nil, fmt.Errorf("snapshot header has no item list but the manifest lists %d items", len(items))
		}
		return header, nil
	case bytes.HasSuffix(header, suffixEmpty):
	default:
		return nil, errors.New(`snapshot header does not end with "items":[]} or "items":null}`)
	}
	n := len(header)
	for _, it := range items {
		n += len(it) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, header[:len(header)-2]...) // up to and including '['
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	return append(out, ']', '}'), nil
}

// splitKeys splits a manifest's key list into keys.
func splitKeys(keys []byte) ([][keySize]byte, error) {
	if len(keys)%keySize != 0 {
		return nil, fmt.Errorf("item key list is %d bytes, want a multiple of %d", len(keys), keySize)
	}
	out := make([][keySize]byte, len(keys)/keySize)
	for i := range out {
		copy(out[i][:], keys[i*keySize:])
	}
	return out, nil
}

// reassemble rebuilds and decodes a stored snapshot. blob returns an item's
// bytes by key (nil, nil when absent). Everything read is untrusted: every
// item key is re-checked, and snapshots.Decode recomputes every item hash and
// the digest, which must equal want.
func reassemble(header, keys []byte, want string, blob func(k [keySize]byte) ([]byte, error)) (*snapshots.Snapshot, error) {
	ks, err := splitKeys(keys)
	if err != nil {
		return nil, err
	}
	items := make([][]byte, len(ks))
	for i, k := range ks {
		b, err := blob(k)
		if err != nil {
			return nil, err
		}
		if b == nil {
			return nil, fmt.Errorf("item %d (blob %x) is missing", i, k)
		}
		if sha256.Sum256(b) != k {
			return nil, fmt.Errorf("item %d (blob %x) does not hash to its key: %w", i, k, snapshots.ErrDigestMismatch)
		}
		items[i] = b
	}
	enc, err := assemble(header, items)
	if err != nil {
		return nil, err
	}
	return snapshots.Decode(enc, want)
}

// checkItemBlob checks that b is the canonical encoding of a finalized item.
func checkItemBlob(b []byte) error {
	var it snapshots.Item
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return fmt.Errorf("not an item: %w", err)
	}
	c, err := canonical(&it)
	if err != nil {
		return err
	}
	if !bytes.Equal(c, b) {
		return errors.New("not the canonical encoding of an item")
	}
	if h := snapshots.ContentHash(it); h != it.Hash {
		return fmt.Errorf("item %q: content hash %s, recorded %s", it.Path, h, it.Hash)
	}
	return nil
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
