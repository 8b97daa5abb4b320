package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"

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
	snap   *snapshots.Snapshot
}

// checkItem refuses item i when its recorded hash does not match its
// content. Loading trusts item hashes that the digest proves unchanged since
// the item was stored, so every item is checked once, when its blob is
// first stored (an item whose bytes the parent holds was checked then).
func (m *manifest) checkItem(i int) error {
	s := m.snap
	if h := snapshots.ContentHash(s.Items[i]); h != s.Items[i].Hash {
		return fmt.Errorf("snapshot %s of %s: item %q has content hash %s, recorded %s: %w", s.ID, s.Device, s.Items[i].Path, h, s.Items[i].Hash, snapshots.ErrDigestMismatch)
	}
	return nil
}

// ManifestDigest returns the hex SHA-256 of a stored manifest: the header's
// length (8 bytes, big-endian), the header, then the item keys (32 raw bytes
// each, in item order). The length makes the split between header and keys
// unambiguous.
func ManifestDigest(header, keys []byte) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(header)))
	h.Write(n[:])
	h.Write(header)
	h.Write(keys)
	return hex.EncodeToString(h.Sum(nil))
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
// Finalize is refused). Item hashes are checked by the writer (checkItem),
// for the items it stores.
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
	m := &manifest{header: header, keys: make([]byte, len(s.Items)*keySize), items: make([][]byte, len(s.Items)), snap: s}
	// Items are encoded on every CPU for large snapshots, each worker
	// reusing one encoder.
	errs := make([]error, len(s.Items))
	encode := func(lo, hi int) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for i := lo; i < hi; i++ {
			buf.Reset()
			if err := enc.Encode(&s.Items[i]); err != nil {
				errs[i] = fmt.Errorf("encoding item %q of %s: %w", s.Items[i].Path, s.Device, err)
				continue
			}
			b := bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
			k := sha256.Sum256(b)
			copy(m.keys[i*keySize:], k[:])
			m.items[i] = b
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(s.Items)/2048+1)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(s.Items)/workers, (w+1)*len(s.Items)/workers
		wg.Go(func() { encode(lo, hi) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
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

// splitKeys returns a manifest's key list as keys: a view of the same
// memory, not a copy (a [keySize]byte has the alignment of a byte, so any
// byte slice holds whole keys; the lists of a 10,000-item diff are 640 KB,
// whose copies were a tenth of its memory). Neither is written after.
func splitKeys(keys []byte) ([][keySize]byte, error) {
	if len(keys)%keySize != 0 {
		return nil, fmt.Errorf("item key list is %d bytes, want a multiple of %d", len(keys), keySize)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return unsafe.Slice((*[keySize]byte)(unsafe.Pointer(unsafe.SliceData(keys))), len(keys)/keySize), nil
}

// reassemble rebuilds and decodes a stored snapshot. blob returns an item's
// bytes by key (nil, nil when absent). Everything read is untrusted: every
// item's bytes are hashed once against their key, and the canonical encoding
// they reassemble to must hash to want, the digest the chain records (want
// is required). Nothing is re-encoded: bytes that hash to the digest Finalize
// computed are the canonical encoding, whose item hashes Finalize set and
// PutSnapshot checked (verify re-checks them).
func reassemble(header, keys []byte, want string, blob func(k [keySize]byte) ([]byte, error)) (*snapshots.Snapshot, error) {
	ks, err := splitKeys(keys)
	if err != nil {
		return nil, err
	}
	blobs := make(verifiedBlobs, len(ks))
	for i, k := range ks {
		if _, ok := blobs[k]; ok {
			continue
		}
		b, err := blob(k)
		if err != nil {
			return nil, err
		}
		if b == nil {
			return nil, fmt.Errorf("item %d (blob %x) is missing", i, k)
		}
		if err := blobs.add(k, b); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	return decodeManifest(header, keys, ks, want, "", false, blobs, nil)
}

// verifiedBlobs holds item blobs by key; add admits only bytes that hash to
// their key, so every value was hashed exactly once.
type verifiedBlobs map[[keySize]byte][]byte

func (v verifiedBlobs) add(k [keySize]byte, b []byte) error {
	if sha256.Sum256(b) != k {
		return fmt.Errorf("blob %x does not hash to its key: %w", k, snapshots.ErrDigestMismatch)
	}
	v[k] = b
	return nil
}

// decodeManifest checks a stored snapshot and decodes its header and items,
// leaving out item i when skip(i) (a nil skip keeps every item). With the
// manifest digest the chain records (manifest not empty), the header and keys
// are checked against it (unless checked says the caller did) and only the
// items decoded must be in blobs (whose
// values were checked against their keys); without it, every item must be
// in blobs and the encoding they reassemble to (hashed without building it)
// must hash to want. Items are decoded on every CPU for large snapshots.
func decodeManifest(header, keys []byte, ks [][keySize]byte, want, manifest string, checked bool, blobs verifiedBlobs, skip func(i int) bool) (*snapshots.Snapshot, error) {
	if len(want) != 2*keySize || !isHex(want) {
		return nil, fmt.Errorf("snapshot digest %q: want 64 hex digits to check the content against", want)
	}
	null := bytes.HasSuffix(header, suffixNull)
	switch {
	case null && len(ks) != 0:
		return nil, fmt.Errorf("snapshot header has no item list but the manifest lists %d items", len(ks))
	case !null && !bytes.HasSuffix(header, suffixEmpty):
		return nil, errors.New(`snapshot header does not end with "items":[]} or "items":null}`)
	}
	if manifest != "" {
		if checked {
			// The caller hashed these very bytes against manifest.
		} else if d := ManifestDigest(header, keys); d != manifest {
			return nil, fmt.Errorf("manifest hashes to %s, the snapshot record names %s: %w", d, manifest, snapshots.ErrDigestMismatch)
		}
	} else {
		h := sha256.New()
		if null {
			h.Write(header)
		} else {
			h.Write(header[:len(header)-2]) // up to and including '['
			for i, k := range ks {
				b, ok := blobs[k]
				if !ok {
					return nil, fmt.Errorf("item %d (blob %x) is missing", i, k)
				}
				if i > 0 {
					h.Write([]byte{','})
				}
				h.Write(b)
			}
			h.Write([]byte("]}"))
		}
		if d := hex.EncodeToString(h.Sum(nil)); d != want {
			return nil, fmt.Errorf("content hashes to %s, want %s: %w", d, want, snapshots.ErrDigestMismatch)
		}
	}
	var s snapshots.Snapshot
	if err := decodeStrict(header, &s); err != nil {
		return nil, fmt.Errorf("decoding the snapshot header: %w", err)
	}
	if s.Format != snapshots.FormatVersion {
		return nil, fmt.Errorf("snapshot format %d, want %d", s.Format, snapshots.FormatVersion)
	}
	if s.Items != nil || len(ks) > 0 {
		idx := make([]int, 0, len(ks))
		for i := range ks {
			if skip == nil || !skip(i) {
				idx = append(idx, i)
			}
		}
		items, err := decodeItems(ks, idx, blobs)
		if err != nil {
			return nil, err
		}
		s.Items = items
	}
	s.Digest, s.ID = want, want[:snapshots.IDLength]
	return &s, nil
}

// decodeItems decodes the blobs of ks at the indexes idx (ascending) and
// checks their kinds and strict path order. Each blob must hold exactly one
// JSON object with no field snapshots.Item lacks (whitespace around it is
// allowed); an error names the item's index. Items are decoded on several
// CPUs only when there are enough of them to pay for the goroutines.
func decodeItems(ks [][keySize]byte, idx []int, blobs verifiedBlobs) ([]snapshots.Item, error) {
	items := make([]snapshots.Item, len(idx))
	errs := make([]error, len(idx))
	decode := func(lo, hi int) {
		// One decoder reads the blobs of this range as one stream: a
		// decoder per item costs its allocations and buffer copies again
		// for each item. item.at checks each value ends inside its blob.
		var s itemStream
		for j := lo; j < hi; j++ {
			b, ok := blobs[ks[idx[j]]]
			if !ok {
				errs[j] = fmt.Errorf("item %d (blob %x) is missing", idx[j], ks[idx[j]])
				return
			}
			s.blobs = append(s.blobs, b)
		}
		dec := json.NewDecoder(&s)
		dec.DisallowUnknownFields()
		for j := lo; j < hi; j++ {
			if err := s.decode(dec, j-lo, &items[j]); err != nil {
				errs[j] = fmt.Errorf("item %d: %w", idx[j], err)
				return
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(idx)/2048+1)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(idx)/workers, (w+1)*len(idx)/workers
		wg.Go(func() { decode(lo, hi) })
	}
	wg.Wait()
	for j := range items {
		if errs[j] != nil {
			return nil, errs[j]
		}
	}
	for j := range items {
		it := &items[j]
		if j > 0 && items[j-1].Path >= it.Path {
			return nil, fmt.Errorf("items not in strict path order at %q", it.Path)
		}
		if !it.Kind.Valid() {
			return nil, fmt.Errorf("item %q has kind %q", it.Path, it.Kind)
		}
	}
	return items, nil
}

// itemStream presents blobs to a json.Decoder as one stream, each followed
// by a newline, and remembers where each blob ends in it, so that a value
// running into the next blob, or bytes after a blob's value, are caught.
type itemStream struct {
	blobs [][]byte
	next  int   // the blob Read is in
	off   int   // bytes of blobs[next] already read; len+1 once its newline is
	end   int64 // stream offset of the end of the blobs decoded so far
}

// Read implements io.Reader.
func (s *itemStream) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && s.next < len(s.blobs) {
		b := s.blobs[s.next]
		if s.off < len(b) {
			c := copy(p[n:], b[s.off:])
			s.off += c
			n += c
			continue
		}
		p[n] = '\n'
		n++
		s.next, s.off = s.next+1, 0
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// decode decodes blob i, the next one in the stream, into v: the value the
// decoder reads must end inside the blob, with only whitespace after it.
func (s *itemStream) decode(dec *json.Decoder, i int, v *snapshots.Item) error {
	start := s.end
	b := s.blobs[i]
	s.end += int64(len(b)) + 1
	if err := dec.Decode(v); err != nil {
		// Say what is wrong with this blob alone, as a person reading it
		// would see it, rather than with the stream.
		if err := decodeStrict(b, new(snapshots.Item)); err != nil {
			return err
		}
		return err
	}
	at := dec.InputOffset() - start
	if at > int64(len(b)) {
		return errors.New("the JSON value does not end inside the item")
	}
	if len(bytes.TrimLeft(b[at:], " \t\r\n")) != 0 {
		return errors.New("trailing data after the JSON value")
	}
	return nil
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
	// Anything but whitespace after the value is refused (dec.More would
	// let a closing bracket or brace through).
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) != 0 {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
