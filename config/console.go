package config

import (
	"fmt"
	"net"
	"strings"
)

// DefaultConsoleListen is the console's address when console.listen is not
// set: loopback only.
const DefaultConsoleListen = "127.0.0.1:8686"

// Console roles, each allowed what the ones before it are.
const (
	RoleViewer   = "viewer"   // reads every page
	RoleOperator = "operator" // acknowledges alerts
	RoleApprover = "approver" // approves baselines and manages planned changes
)

// ConsoleRoles lists the roles in increasing order of rights.
var ConsoleRoles = []string{RoleViewer, RoleOperator, RoleApprover}

// Console configures the local web console (plcwatch console, and plcwatch
// daemon when Enabled).
type Console struct {
	// Enabled makes plcwatch daemon serve the console too; default false.
	// plcwatch console always serves it.
	Enabled *bool `yaml:"enabled"`
	// Listen is host:port; default 127.0.0.1:8686. Any address that is not
	// loopback needs Users, and TLS or InsecureHTTP.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files (relative to the config file);
	// both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// InsecureHTTP says plainly that a non-loopback console serves plain
	// HTTP (passwords and evidence travel unencrypted).
	InsecureHTTP bool `yaml:"insecure_http"`
	// Users may sign in (HTTP basic authentication). With none, only a
	// loopback address is allowed and nobody signs in.
	Users []ConsoleUser `yaml:"users"`
}

// ConsoleUser is one person who may use the console.
type ConsoleUser struct {
	Name string `yaml:"name"`
	// Role is viewer, operator or approver.
	Role string `yaml:"role"`
	// PasswordHash is an argon2id hash in PHC form ("$argon2id$v=19$...")
	// as printed by plcwatch console hash-password; never a password.
	PasswordHash string `yaml:"password_hash"`
}

// ConsoleEnabled reports whether plcwatch daemon serves the console.
func (c *Config) ConsoleEnabled() bool { return c.Console.Enabled != nil && *c.Console.Enabled }

// ConsoleListenLoopback reports whether addr (host:port) listens on
// loopback only.
func ConsoleListenLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) consoleDefaults() {
	if c.Console.Listen == "" {
		c.Console.Listen = DefaultConsoleListen
	}
}

// validateConsole checks the console section: a listen address, known
// roles, unique names, hashed passwords, TLS files in pairs, and users plus
// TLS (or insecure_http) on any address that is not loopback.
func (c *Config) validateConsole(at func(field, format string, args ...any)) {
	cs := &c.Console
	if _, port, err := net.SplitHostPort(cs.Listen); err != nil || port == "" {
		at("console.listen", "want host:port such as 127.0.0.1:8686, got %q", cs.Listen)
		return
	}
	if (cs.TLSCert == "") != (cs.TLSKey == "") {
		at("console.tls_cert", "want both tls_cert and tls_key, or neither")
	}
	seen := map[string]bool{}
	for i, u := range cs.Users {
		f := fmt.Sprintf("console.users[%d]", i)
		if !validName(u.Name) {
			at(f+".name", "want a user name of letters, digits, '.', '_' or '-', got %q", u.Name)
		} else if seen[u.Name] {
			at(f+".name", "user %q is listed twice", u.Name)
		}
		seen[u.Name] = true
		if !validRole(u.Role) {
			at(f+".role", "want one of %s, got %q", strings.Join(ConsoleRoles, ", "), u.Role)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$") || strings.Count(u.PasswordHash, "$") != 5 {
			at(f+".password_hash", "want an argon2id hash (\"$argon2id$v=19$m=...\") from plcwatch console hash-password, never a password")
		}
	}
	if !ConsoleListenLoopback(cs.Listen) {
		if len(cs.Users) == 0 {
			at("console.listen", "%s is not a loopback address: want console.users (name, role, password_hash) to sign in, or a 127.0.0.1 address", cs.Listen)
		}
		if cs.TLSCert == "" && !cs.InsecureHTTP {
			at("console.listen", "%s is not a loopback address: want tls_cert and tls_key, or insecure_http: true to serve plain HTTP knowingly", cs.Listen)
		}
	}
}

func validRole(r string) bool {
	for _, x := range ConsoleRoles {
		if x == r {
			return true
		}
	}
	return false
}
