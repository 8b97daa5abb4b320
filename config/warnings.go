package config

import (
	"fmt"
	"os"
	"strings"
)

// Sane maxima: beyond them a setting is allowed but config check warns,
// because no controller on a plant floor needs it and it risks a process
// upset (PLC communication processors are small).
const (
	SaneRequestsPerSecond    = 100
	SaneMaxInFlight          = 8
	SaneMaxConcurrentDevices = 64
)

// Warnings lists what is valid but probably wrong, each with file:line: a
// device in no window (a misspelled group), a credential environment
// variable that is not set, a password file that is missing or readable by
// group or others, a rate or in-flight cap beyond a sane maximum, and a zero
// request timeout. It reads the environment and stats password files; it
// never reads a password.
func (c *Config) Warnings() Errors {
	var ws Errors
	at := func(field, format string, args ...any) {
		ws = append(ws, &Error{File: c.File, Line: c.Line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	lim := func(field string, l Limits, own bool) {
		given := func(key string) bool { return !own || l.Has(key) }
		if given("requests_per_second") && l.RequestsPerSecond > SaneRequestsPerSecond {
			at(field+".requests_per_second", "%v requests per second is beyond the sane maximum of %d for a controller", l.RequestsPerSecond, SaneRequestsPerSecond)
		}
		if given("max_in_flight") && l.MaxInFlight > SaneMaxInFlight {
			at(field+".max_in_flight", "%d requests in flight is beyond the sane maximum of %d for a controller", l.MaxInFlight, SaneMaxInFlight)
		}
		if given("request_timeout") && l.RequestTimeout == 0 {
			at(field+".request_timeout", "0 means no request timeout: a silent device holds its slot until snapshot_timeout")
		}
	}
	lim("defaults", c.Defaults, false)
	for i, g := range c.Gateways {
		f := fmt.Sprintf("gateways[%d]", i)
		if g.RequestsPerSecond > SaneRequestsPerSecond {
			at(f+".requests_per_second", "%v requests per second is beyond the sane maximum of %d", g.RequestsPerSecond, SaneRequestsPerSecond)
		}
		if g.MaxInFlight > SaneMaxInFlight {
			at(f+".max_in_flight", "%d requests in flight is beyond the sane maximum of %d", g.MaxInFlight, SaneMaxInFlight)
		}
	}
	if c.Daemon.MaxConcurrentDevices > SaneMaxConcurrentDevices {
		at("daemon.max_concurrent_devices", "%d devices at once is beyond the sane maximum of %d", c.Daemon.MaxConcurrentDevices, SaneMaxConcurrentDevices)
	}
	for i, d := range c.Devices {
		f := fmt.Sprintf("devices[%d]", i)
		if d.Limits != nil {
			lim(f+".limits", *d.Limits, true)
		}
		if len(c.Windows) > 0 && len(c.WindowsFor(d)) == 0 {
			groups := "no groups"
			if len(d.Groups) > 0 {
				groups = "groups " + strings.Join(d.Groups, ", ")
			}
			at(f+".name", "device %q (%s) is in no window: the daemon never checks it (a misspelled group?)", d.Name, groups)
		}
		cr := d.Credentials
		for _, e := range []struct{ key, name string }{{"username_env", cr.UsernameEnv}, {"password_env", cr.PasswordEnv}} {
			if e.name == "" {
				continue
			}
			if v, ok := os.LookupEnv(e.name); !ok || v == "" {
				at(f+".credentials."+e.key, "environment variable %s is not set (or empty) here: reads of %s will fail", e.name, d.Name)
			}
		}
		if cr.PasswordFile != "" {
			p := c.Resolve(cr.PasswordFile)
			st, err := os.Stat(p)
			switch {
			case err != nil:
				at(f+".credentials.password_file", "%v", err)
			case st.Mode().Perm()&0o077 != 0:
				at(f+".credentials.password_file", "%s is readable by group or others (mode %04o): chmod 600 it", p, st.Mode().Perm())
			}
		}
	}
	sortErrors(ws)
	return ws
}
