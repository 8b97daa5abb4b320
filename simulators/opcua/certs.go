package opcua

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// newCertificate makes a self-signed RSA 2048 application instance
// certificate for appURI, valid for a year from now, as OPC UA wants it
// (the URI in subjectAltName, usable for signing and encryption).
func newCertificate(appURI, commonName string) (der []byte, key *rsa.PrivateKey, err error) {
	key, err = rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	u, err := url.Parse(appURI)
	if err != nil {
		return nil, nil, fmt.Errorf("application URI %q: %w", appURI, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"plcwatch simulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating certificate: %w", err)
	}
	return der, key, nil
}

// loadKeyPair reads a certificate (PEM or DER) and an RSA private key (PEM,
// PKCS#1 or PKCS#8).
func loadKeyPair(certFile, keyFile string) ([]byte, *rsa.PrivateKey, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading certificate: %w", err)
	}
	if blk, _ := pem.Decode(cb); blk != nil {
		cb = blk.Bytes
	}
	if _, err := x509.ParseCertificate(cb); err != nil {
		return nil, nil, fmt.Errorf("certificate %s: %w", certFile, err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading private key: %w", err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, nil, fmt.Errorf("private key %s: want a PEM file", keyFile)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return cb, k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("private key %s: %w", keyFile, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("private key " + keyFile + ": want an RSA key")
	}
	return cb, rk, nil
}

// State file names in a simulator's state directory.
const (
	stateCertFile = "opcua-sim.der"
	stateKeyFile  = "opcua-sim.key"
)

// stateKeyPair loads the certificate and key kept in dir, or generates
// them once and writes them there (mode 0600), so that every start of the
// simulator presents the same certificate.
func stateKeyPair(dir, appURI, commonName string) ([]byte, *rsa.PrivateKey, error) {
	certFile, keyFile := filepath.Join(dir, stateCertFile), filepath.Join(dir, stateKeyFile)
	_, errC := os.Stat(certFile)
	_, errK := os.Stat(keyFile)
	if errC == nil && errK == nil {
		return loadKeyPair(certFile, keyFile)
	}
	if errC == nil || errK == nil {
		return nil, nil, fmt.Errorf("state directory %s holds only one of %s and %s: remove it to have both generated again", dir, stateCertFile, stateKeyFile)
	}
	der, key, err := newCertificate(appURI, commonName)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("state directory: %w", err)
	}
	kb := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := writeNew(keyFile, kb); err != nil {
		return nil, nil, err
	}
	if err := writeNew(certFile, der); err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

// writeNew writes a new file with mode 0600 through a temporary file, so
// that a crash never leaves half a key behind.
func writeNew(file string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".opcua-sim-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}
