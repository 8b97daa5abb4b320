package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeyEnv is the environment variable that may hold the site's private key
// (the PEM text keygen writes) instead of a file.
const KeyEnv = "PLCWATCH_SITE_KEY"

// PrivateKey is a site's ed25519 signing key. It never prints: String,
// GoString and MarshalText return a placeholder, so the key cannot reach a
// log, an error or JSON output by accident.
type PrivateKey struct{ k ed25519.PrivateKey }

// String returns a placeholder, never the key.
func (PrivateKey) String() string { return "[redacted private key]" }

// GoString returns a placeholder, never the key (for %#v).
func (PrivateKey) GoString() string { return "[redacted private key]" }

// MarshalText keeps the key out of any encoded output.
func (PrivateKey) MarshalText() ([]byte, error) { return []byte("[redacted private key]"), nil }

// Public returns the key's public half.
func (p PrivateKey) Public() ed25519.PublicKey { return p.k.Public().(ed25519.PublicKey) }

// GenerateKey returns a new random ed25519 key.
func GenerateKey() (PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("generating an ed25519 key: %w", err)
	}
	return PrivateKey{k: k}, nil
}

// WriteKeyPair writes the private key to path (PKCS #8 PEM, mode 0600,
// refusing to overwrite an existing file) and the public key to path+".pub"
// in OpenSSH's one-line format with comment.
func WriteKeyPair(path string, k PrivateKey, comment string) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.k)
	if err != nil {
		return fmt.Errorf("encoding the private key: %w", err)
	}
	for _, p := range []string{path, path + ".pub"} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("writing key %s: the file exists; keygen never overwrites a key", p)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing private key: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // whatever the umask
		f.Close()
		return fmt.Errorf("writing private key %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("writing private key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing private key %s: %w", path, err)
	}
	if err := os.WriteFile(path+".pub", []byte(FormatPublicKey(k.Public(), comment)+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing public key: %w", err)
	}
	return nil
}

// LoadPrivateKey reads the private key from file, or, when file is "", from
// the environment variable KeyEnv. A file readable by group or others is
// refused (want mode 0600 or 0400).
func LoadPrivateKey(file string) (PrivateKey, error) {
	var data []byte
	where := file
	if file == "" {
		v, ok := os.LookupEnv(KeyEnv)
		if !ok || v == "" {
			return PrivateKey{}, fmt.Errorf("no signing key: give --key FILE (mode 0600) or set %s", KeyEnv)
		}
		data, where = []byte(v), "$"+KeyEnv
	} else {
		st, err := os.Stat(file)
		if err != nil {
			return PrivateKey{}, fmt.Errorf("signing key: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return PrivateKey{}, fmt.Errorf("signing key %s is readable by group or others (mode %04o): want 0600 or 0400", file, st.Mode().Perm())
		}
		if data, err = os.ReadFile(file); err != nil {
			return PrivateKey{}, fmt.Errorf("signing key: %w", err)
		}
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return PrivateKey{}, fmt.Errorf("signing key %s: want a PEM \"PRIVATE KEY\" block (as plcwatch keygen writes)", where)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("signing key %s: not a PKCS #8 key", where)
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return PrivateKey{}, fmt.Errorf("signing key %s: a %T, want an ed25519 key", where, k)
	}
	return PrivateKey{k: ed}, nil
}

// FormatPublicKey returns the key in OpenSSH's one-line format:
// "ssh-ed25519 BASE64 comment".
func FormatPublicKey(pub ed25519.PublicKey, comment string) string {
	s := keyTypeEd + " " + base64.StdEncoding.EncodeToString(wireKey(pub))
	if comment != "" {
		s += " " + comment
	}
	return s
}

// ParsePublicKey reads a key in OpenSSH's one-line format (as in a .pub file
// or an authorized_keys line without options).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return nil, fmt.Errorf("public key %q: want \"ssh-ed25519 BASE64 [comment]\"", trunc(s))
	}
	if f[0] != keyTypeEd {
		return nil, fmt.Errorf("public key of type %q: want %s", trunc(f[0]), keyTypeEd)
	}
	raw, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, fmt.Errorf("public key: base64: %w", err)
	}
	return parseWireKey(raw)
}

// LoadPublicKey reads a public key file (OpenSSH one-line format).
func LoadPublicKey(file string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

// Fingerprint returns the key's fingerprint as ssh-keygen -l prints it:
// "SHA256:" and the unpadded base64 SHA-256 of the wire key.
func Fingerprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256(wireKey(pub))
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(h[:])
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// errKeyInConfig is returned when something that looks like a private key
// is found where only public keys belong.
var errKeyInConfig = errors.New("a private key where a public key belongs")

// CheckNotPrivate refuses text holding a private key (a PEM "PRIVATE KEY"
// block): private keys never go into the config or the store.
func CheckNotPrivate(what, s string) error {
	if strings.Contains(s, "PRIVATE KEY") {
		return fmt.Errorf("%s: %w: private keys stay in a 0600 file or $%s", what, errKeyInConfig, KeyEnv)
	}
	return nil
}
