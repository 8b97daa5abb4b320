package opcua

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrUntrustedCertificate is returned when the server's certificate is
// neither pinned by thumbprint nor in (or issued by a CA in) the trust list.
var ErrUntrustedCertificate = errors.New("server certificate is not trusted")

// Thumbprint returns the hex SHA-256 of a certificate's DER bytes: the form
// trusted_thumbprints takes (`openssl x509 -in c.der -inform der -noout
// -fingerprint -sha256`, colons allowed).
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// parseThumbprint accepts 64 hex digits, optionally separated by ':' or
// spaces, in either case.
func parseThumbprint(s string) ([32]byte, error) {
	var out [32]byte
	clean := strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s))
	if strings.HasPrefix(strings.ToLower(clean), "sha256") {
		clean = strings.TrimLeft(clean[6:], "=")
	}
	b, err := hex.DecodeString(clean)
	if err != nil {
		return out, fmt.Errorf("want a SHA-256 thumbprint of 64 hex digits, got %q", s)
	}
	switch len(b) {
	case 32:
	case 20:
		return out, fmt.Errorf("%q looks like a SHA-1 thumbprint: want the SHA-256 of the certificate's DER bytes (64 hex digits)", s)
	default:
		return out, fmt.Errorf("want a SHA-256 thumbprint of 64 hex digits, got %d digits", len(clean))
	}
	copy(out[:], b)
	return out, nil
}

// parseCertificates reads one or more certificates from PEM (any number of
// CERTIFICATE blocks) or DER (one or more concatenated) bytes.
func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	if bytes.Contains(b, []byte("-----BEGIN")) {
		var out []*x509.Certificate
		rest := b
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM certificate %d: %w", len(out)+1, err)
			}
			out = append(out, c)
		}
		if len(out) == 0 {
			return nil, errors.New("no CERTIFICATE block in the PEM data")
		}
		return out, nil
	}
	cs, err := x509.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("DER certificate: %w", err)
	}
	if len(cs) == 0 {
		return nil, errors.New("no certificate in the data")
	}
	return cs, nil
}

// trust decides whether a server certificate is acceptable.
type trust struct {
	pins  map[[32]byte]bool
	certs []*x509.Certificate
	pool  *x509.CertPool
}

func (t *trust) empty() bool { return len(t.pins) == 0 && len(t.certs) == 0 }

func loadTrust(s *settings) (*trust, error) {
	t := &trust{pins: map[[32]byte]bool{}, pool: x509.NewCertPool()}
	for _, p := range s.pins {
		t.pins[p] = true
	}
	for _, f := range s.trust {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("trust_list: %w", err)
		}
		cs, err := parseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("trust_list %s: %w", f, err)
		}
		for _, c := range cs {
			t.certs = append(t.certs, c)
			t.pool.AddCert(c)
		}
	}
	return t, nil
}

// check accepts der when its SHA-256 is pinned, when it is byte-identical to
// a trust-list certificate (pinned certificates are trusted whatever their
// validity dates: the pin is the operator's explicit decision), or when it
// chains to a trust-list certificate as a CA and is valid now.
func (t *trust) check(der []byte, now time.Time) error {
	if len(der) == 0 {
		return fmt.Errorf("%w: the endpoint offers no certificate", ErrUntrustedCertificate)
	}
	tp := sha256.Sum256(der)
	if t.pins[tp] {
		return nil
	}
	for _, c := range t.certs {
		if bytes.Equal(c.Raw, der) {
			return nil
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: sha256 %s cannot be parsed: %v", ErrUntrustedCertificate, hex.EncodeToString(tp[:]), err)
	}
	if len(t.certs) > 0 {
		_, verr := cert.Verify(x509.VerifyOptions{Roots: t.pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if verr == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: sha256 %s (subject %q, issuer %q, valid until %s) is not in trusted_thumbprints or trust_list",
		ErrUntrustedCertificate, hex.EncodeToString(tp[:]), cert.Subject.String(), cert.Issuer.String(), cert.NotAfter.UTC().Format("2006-01-02"))
}

type rsaKey = rsa.PrivateKey

// loadClientCert reads the client's application instance certificate (PEM
// or DER) and its RSA key (PEM, PKCS#1 or PKCS#8).
func loadClientCert(certFile, keyFile string) ([]byte, *rsa.PrivateKey, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	certs, err := parseCertificates(cb)
	if err != nil || len(certs) == 0 {
		return nil, nil, fmt.Errorf("certificate %s: want a PEM or DER certificate: %v", certFile, err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("private_key: %w", err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, nil, fmt.Errorf("private_key %s: want a PEM RSA key", keyFile)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return certs[0].Raw, k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("private_key %s: %w", keyFile, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("private_key %s: want an RSA key, got %T", keyFile, k)
	}
	return certs[0].Raw, rk, nil
}
