package config

import (
	"fmt"
	"os"
	"strings"
)

// Secret holds a credential. It never prints: String, GoString and
// MarshalText all return a placeholder, so a secret cannot leak into logs,
// JSON output or error messages by accident.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the value, for handing to a protocol library only.
func (s Secret) Reveal() string { return s.v }

// Empty reports whether the secret holds nothing.
func (s Secret) Empty() bool { return s.v == "" }

func (s Secret) String() string   { return "[redacted]" }
func (s Secret) GoString() string { return "[redacted]" }

// MarshalText keeps secrets out of any encoded output.
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Resolve reads the username and password the credentials point to. It is
// called when connecting, never at load, so a config can be checked on a
// machine that does not hold the secrets.
func (c Credentials) Resolve() (user string, password Secret, err error) {
	if c.provided {
		return c.providedUser, c.providedPass, nil
	}
	user = c.Username
	if c.UsernameEnv != "" {
		v, ok := os.LookupEnv(c.UsernameEnv)
		if !ok {
			return "", Secret{}, fmt.Errorf("credentials: environment variable %s (username_env) is not set", c.UsernameEnv)
		}
		user = v
	}
	switch {
	case c.PasswordEnv != "":
		v, ok := os.LookupEnv(c.PasswordEnv)
		if !ok {
			return "", Secret{}, fmt.Errorf("credentials: environment variable %s (password_env) is not set", c.PasswordEnv)
		}
		password = NewSecret(v)
	case c.PasswordFile != "":
		st, err := os.Stat(c.PasswordFile)
		if err != nil {
			return "", Secret{}, fmt.Errorf("credentials: password_file: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return "", Secret{}, fmt.Errorf("credentials: password_file %s is readable by group or others (mode %04o): want 0600 or 0400", c.PasswordFile, st.Mode().Perm())
		}
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", Secret{}, fmt.Errorf("credentials: password_file: %w", err)
		}
		password = NewSecret(strings.TrimRight(string(b), "\r\n"))
	}
	return user, password, nil
}

// Provide sets credentials that were resolved elsewhere (by the parent of an
// isolated session, which hands them over its pipe, never through argv or
// the environment): Resolve returns them from then on.
func (c *Credentials) Provide(user string, password Secret) {
	c.provided, c.providedUser, c.providedPass = true, user, password
}
