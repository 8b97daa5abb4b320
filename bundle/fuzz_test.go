package bundle_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/plcwatch/plcwatch/bundle"
)

// FuzzReadBundle feeds untrusted archives to ReadBundle and Verify: they
// must return errors or problems, never panic.
func FuzzReadBundle(f *testing.F) {
	st, _ := siteStore(f)
	k := key(f)
	data, _ := export(f, st, k, nil)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		bd, err := bundle.ReadBundle("fuzz", bytes.NewReader(b))
		if err != nil {
			return
		}
		bd.Verify(k.Public())
		bd.Records()
	})
}

// FuzzVerifySignature feeds untrusted signatures and public keys to the
// SSHSIG and OpenSSH key parsers.
func FuzzVerifySignature(f *testing.F) {
	k := key(f)
	msg := []byte("manifest")
	f.Add(bundle.Sign(bundle.RawKeyForTest(k), bundle.Namespace, msg), bundle.FormatPublicKey(k.Public(), "north"))
	f.Add([]byte("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"), "ssh-ed25519 AAAA")
	f.Fuzz(func(t *testing.T, sig []byte, pub string) {
		p, err := bundle.ParsePublicKey(pub)
		if err != nil {
			p = k.Public()
		}
		if len(p) != ed25519.PublicKeySize {
			t.Fatalf("ParsePublicKey returned a %d-byte key", len(p))
		}
		bundle.Verify(p, bundle.Namespace, msg, sig)
	})
}
