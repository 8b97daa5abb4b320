package snapshots

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrDigestMismatch means encoded snapshot bytes do not hash to the digest
// they claim: the stored data was altered or damaged.
var ErrDigestMismatch = errors.New("snapshot digest does not match its content")

// canonicalJSON encodes v as compact JSON without HTML escaping. Struct fields
// keep their declared order and map keys are sorted by encoding/json, so the
// output is deterministic.
func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Encode returns the canonical encoding of s: the bytes its digest is computed
// over. ID and Digest are left out.
func (s *Snapshot) Encode() ([]byte, error) {
	c := *s
	c.ID, c.Digest = "", ""
	b, err := canonicalJSON(c)
	if err != nil {
		return nil, fmt.Errorf("encoding snapshot of %s: %w", s.Device, err)
	}
	return b, nil
}

// ComputeDigest returns the hex SHA-256 of the canonical encoding.
func (s *Snapshot) ComputeDigest() (string, error) {
	b, err := s.Encode()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Decode parses bytes produced by Encode (or a JSON snapshot with id and
// digest), recomputes every item hash and the digest, and returns an error
// naming what is wrong if the bytes are malformed or altered. When want is not
// empty the computed digest must equal it.
func Decode(b []byte, want string) (*Snapshot, error) {
	var s Snapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding snapshot: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding snapshot: trailing data after the JSON object")
	}
	if s.Format != FormatVersion {
		return nil, fmt.Errorf("decoding snapshot: format %d, want %d", s.Format, FormatVersion)
	}
	for i, it := range s.Items {
		if i > 0 && s.Items[i-1].Path >= it.Path {
			return nil, fmt.Errorf("decoding snapshot: items not in strict path order at %q", it.Path)
		}
		if !it.Kind.Valid() {
			return nil, fmt.Errorf("decoding snapshot: item %q has kind %q", it.Path, it.Kind)
		}
		if h := ContentHash(it); h != it.Hash {
			return nil, fmt.Errorf("decoding snapshot: item %q: content hash %s, recorded %s: %w", it.Path, h, it.Hash, ErrDigestMismatch)
		}
	}
	d, err := s.ComputeDigest()
	if err != nil {
		return nil, err
	}
	if want != "" && d != want {
		return nil, fmt.Errorf("decoding snapshot: digest %s, want %s: %w", d, want, ErrDigestMismatch)
	}
	if s.Digest != "" && s.Digest != d {
		return nil, fmt.Errorf("decoding snapshot: digest %s, recorded %s: %w", d, s.Digest, ErrDigestMismatch)
	}
	s.Digest = d
	s.ID = d[:IDLength]
	return &s, nil
}
