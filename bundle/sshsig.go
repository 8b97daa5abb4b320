package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// This file implements OpenSSH's SSHSIG signature format (PROTOCOL.sshsig in
// the OpenSSH sources) for ed25519 keys and SHA-512 message hashes, so that
// `ssh-keygen -Y verify` checks a bundle's signature offline.

// Namespace is the SSHSIG namespace of bundle signatures: a signature made
// for another purpose (an SSH login, a git commit) never verifies as one.
const Namespace = "plcwatch-bundle"

const (
	sshsigMagic   = "SSHSIG"
	sshsigVersion = 1
	keyTypeEd     = "ssh-ed25519"
	hashAlg       = "sha512"
	armorBegin    = "-----BEGIN SSH SIGNATURE-----"
	armorEnd      = "-----END SSH SIGNATURE-----"
)

// ErrBadSignature means a signature does not verify with the key given.
var ErrBadSignature = errors.New("signature does not verify")

func putString(b *bytes.Buffer, s []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	b.Write(n[:])
	b.Write(s)
}

// wireKey is an ed25519 public key in the SSH wire format (RFC 8709).
func wireKey(pub ed25519.PublicKey) []byte {
	var b bytes.Buffer
	putString(&b, []byte(keyTypeEd))
	putString(&b, pub)
	return b.Bytes()
}

// signedData is what SSHSIG signs: the magic, the namespace, the reserved
// string, the hash algorithm and the hash of the message.
func signedData(namespace string, msg []byte) []byte {
	h := sha512.Sum512(msg)
	var b bytes.Buffer
	b.WriteString(sshsigMagic)
	putString(&b, []byte(namespace))
	putString(&b, nil)
	putString(&b, []byte(hashAlg))
	putString(&b, h[:])
	return b.Bytes()
}

// Sign returns the armored SSHSIG signature of msg in namespace.
func Sign(priv ed25519.PrivateKey, namespace string, msg []byte) []byte {
	sig := ed25519.Sign(priv, signedData(namespace, msg))
	var sb bytes.Buffer
	putString(&sb, []byte(keyTypeEd))
	putString(&sb, sig)
	var b bytes.Buffer
	b.WriteString(sshsigMagic)
	binary.Write(&b, binary.BigEndian, uint32(sshsigVersion))
	putString(&b, wireKey(priv.Public().(ed25519.PublicKey)))
	putString(&b, []byte(namespace))
	putString(&b, nil)
	putString(&b, []byte(hashAlg))
	putString(&b, sb.Bytes())
	enc := base64.StdEncoding.EncodeToString(b.Bytes())
	var out strings.Builder
	out.WriteString(armorBegin + "\n")
	for len(enc) > 70 {
		out.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	out.WriteString(enc + "\n" + armorEnd + "\n")
	return []byte(out.String())
}

// reader reads SSH wire strings from untrusted bytes.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("truncated: want %d more bytes, have %d", n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uint32() uint32 {
	v := r.bytes(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) string() []byte {
	n := r.uint32()
	if r.err != nil {
		return nil
	}
	if n > uint32(len(r.b)) {
		r.err = fmt.Errorf("truncated: a string of %d bytes, %d left", n, len(r.b))
		return nil
	}
	return r.bytes(int(n))
}

// parseWireKey reads an ssh-ed25519 public key in the SSH wire format.
func parseWireKey(b []byte) (ed25519.PublicKey, error) {
	r := &reader{b: b}
	typ := r.string()
	key := r.string()
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("public key: %w", r.err)
	case string(typ) != keyTypeEd:
		return nil, fmt.Errorf("public key of type %q, want %s", typ, keyTypeEd)
	case len(key) != ed25519.PublicKeySize || len(r.b) != 0:
		return nil, fmt.Errorf("public key: %d bytes of key and %d trailing, want %d and 0", len(key), len(r.b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(key), nil
}

// Verify checks an armored SSHSIG signature of msg: it must be made in
// namespace by the key pub. A signature by another key, for another
// namespace or message, or malformed, is an error wrapping ErrBadSignature.
func Verify(pub ed25519.PublicKey, namespace string, msg, armored []byte) error {
	s := strings.TrimSpace(string(armored))
	body, ok := strings.CutPrefix(s, armorBegin)
	if !ok {
		return fmt.Errorf("signature: does not start with %q: %w", armorBegin, ErrBadSignature)
	}
	body, ok = strings.CutSuffix(body, armorEnd)
	if !ok {
		return fmt.Errorf("signature: does not end with %q: %w", armorEnd, ErrBadSignature)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		return fmt.Errorf("signature: base64: %v: %w", err, ErrBadSignature)
	}
	r := &reader{b: raw}
	magic := r.bytes(len(sshsigMagic))
	ver := r.uint32()
	pk := r.string()
	ns := r.string()
	r.string() // reserved
	alg := r.string()
	sigBlob := r.string()
	if r.err != nil {
		return fmt.Errorf("signature: %v: %w", r.err, ErrBadSignature)
	}
	if string(magic) != sshsigMagic || ver != sshsigVersion || len(r.b) != 0 {
		return fmt.Errorf("signature: not an SSHSIG version 1 blob: %w", ErrBadSignature)
	}
	if string(ns) != namespace {
		return fmt.Errorf("signature: namespace %q, want %q: %w", ns, namespace, ErrBadSignature)
	}
	if string(alg) != hashAlg {
		return fmt.Errorf("signature: hash %q, want %s: %w", alg, hashAlg, ErrBadSignature)
	}
	signer, err := parseWireKey(pk)
	if err != nil {
		return fmt.Errorf("signature: %v: %w", err, ErrBadSignature)
	}
	if !signer.Equal(pub) {
		return fmt.Errorf("signature: made by key %s, want %s: %w", Fingerprint(signer), Fingerprint(pub), ErrBadSignature)
	}
	sr := &reader{b: sigBlob}
	styp := sr.string()
	sig := sr.string()
	if sr.err != nil || string(styp) != keyTypeEd || len(sig) != ed25519.SignatureSize || len(sr.b) != 0 {
		return fmt.Errorf("signature: malformed %s signature: %w", keyTypeEd, ErrBadSignature)
	}
	if !ed25519.Verify(pub, signedData(namespace, msg), sig) {
		return fmt.Errorf("signature by %s: %w", Fingerprint(pub), ErrBadSignature)
	}
	return nil
}
