package config

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

func typeOf[T any]() reflect.Type { return reflect.TypeOf((*T)(nil)).Elem() }

var yamlNodeType = typeOf[yaml.Node]()

// checkKnown reports every mapping key in n that t (a struct, through
// pointers, slices and maps) has no yaml field for, with its line.
func checkKnown(file string, n *yaml.Node, t reflect.Type, field string) Errors {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == yamlNodeType || n == nil {
		return nil
	}
	var errs Errors
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			if reflect.PointerTo(t).Implements(typeOf[yaml.Unmarshaler]()) {
				return nil
			}
			return Errors{{File: file, Line: n.Line, Field: field, Msg: fmt.Sprintf("want a mapping of keys, got %s", describe(n))}}
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := k.Value
			if field != "" {
				sub = field + "." + k.Value
			}
			ft, ok := fields[k.Value]
			if !ok {
				errs = append(errs, &Error{File: file, Line: k.Line, Field: sub, Msg: fmt.Sprintf("unknown key; want one of %s", strings.Join(sortedKeys(fields), ", "))})
				continue
			}
			errs = append(errs, checkKnown(file, v, ft, sub)...)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				errs = append(errs, checkKnown(file, c, t.Elem(), fmt.Sprintf("%s[%d]", field, i))...)
			}
		} else if n.Kind == yaml.MappingNode {
			errs = append(errs, &Error{File: file, Line: n.Line, Field: field, Msg: "want a list (items starting with \"- \"), got a mapping"})
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				errs = append(errs, checkKnown(file, n.Content[i+1], t.Elem(), field+"."+n.Content[i].Value)...)
			}
		}
	}
	return errs
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// DecodeSection strictly decodes a device's protocol section (such as
// dev.OPCUA) into v: unknown keys and type mismatches are reported as Errors
// with file:line, under the field name given (such as "devices[1].opcua").
// An absent section leaves v unchanged.
func DecodeSection(dev *Device, n *yaml.Node, field string, v any) error {
	if n == nil || n.Kind == 0 {
		return nil
	}
	errs := checkKnown(dev.File, n, reflect.TypeOf(v), field)
	if len(errs) > 0 {
		return errs
	}
	if err := n.Decode(v); err != nil {
		return decodeErrors(dev.File, err)
	}
	return nil
}

// SectionError returns an Error at a line of a device's section, for
// connector validation messages.
func SectionError(dev *Device, n *yaml.Node, field, msg string) *Error {
	line := dev.Line
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	return &Error{File: dev.File, Line: line, Field: field, Msg: msg}
}

// FindLine returns the line of key path (such as "browse[0].max_depth")
// inside node n, or n's own line when not found.
func FindLine(n *yaml.Node, keyPath string) int {
	pos := positions{}
	indexPositions(n, "", pos)
	if l := pos.line(keyPath); l > 0 {
		return l
	}
	return n.Line
}

func (c *Config) applyDefaults() {
	c.consoleDefaults()
	if c.Store.Path == "" {
		c.Store.Path = "plcwatch.db"
	}
	if c.Alerts.JSONL.Path == "" {
		c.Alerts.JSONL.Path = "plcwatch-alerts.jsonl"
	}
	if c.Alerts.Console.Enabled == nil {
		t := true
		c.Alerts.Console.Enabled = &t
	}
	if c.Alerts.Console.Color == "" {
		c.Alerts.Console.Color = "auto"
	}
	if c.Alerts.Syslog.Address == "" {
		c.Alerts.Syslog.Address = "unixgram:///dev/log"
	}
	if c.Alerts.Syslog.Facility == "" {
		c.Alerts.Syslog.Facility = "local0"
	}
	if c.Alerts.Syslog.AppName == "" {
		c.Alerts.Syslog.AppName = "plcwatch"
	}
	d := &c.Defaults
	if d.RequestsPerSecond == 0 {
		d.RequestsPerSecond = 5
	}
	if d.MaxInFlight == 0 {
		d.MaxInFlight = 1
	}
	if d.RequestTimeout == 0 {
		d.RequestTimeout = Duration(5 * time.Second)
	}
	if d.SnapshotTimeout == 0 {
		d.SnapshotTimeout = Duration(10 * time.Minute)
	}
	if d.Retries == 0 {
		d.Retries = 2
	}
	if d.BackoffInitial == 0 {
		d.BackoffInitial = Duration(time.Second)
	}
	if d.BackoffMax == 0 {
		d.BackoffMax = Duration(30 * time.Second)
	}
	if d.BreakerFailures == 0 {
		d.BreakerFailures = 5
	}
	dm := &c.Daemon
	if dm.MaxConcurrentDevices == 0 {
		dm.MaxConcurrentDevices = 4
	}
	if dm.OverdueAfter == 0 {
		dm.OverdueAfter = Duration(35 * 24 * time.Hour)
	}
	if dm.FullReadEvery == 0 {
		dm.FullReadEvery = 7
	}
	if dm.ChangeMaxDuration == 0 {
		dm.ChangeMaxDuration = Duration(72 * time.Hour)
	}
	for i := range c.Windows {
		if c.Windows[i].TimeZone == "" {
			c.Windows[i].TimeZone = "Local"
		}
		if c.Windows[i].ChecksPerWindow == 0 {
			c.Windows[i].ChecksPerWindow = 1
		}
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Validators lets connector packages check their protocol sections; the
// connectors package installs it so that config need not import connectors.
var Validators = map[string]func(dev *Device) error{}

// KnownProtocols lists protocol names accepted in devices[].protocol.
var KnownProtocols = []string{"opcua", "s7", "logix"}

func (c *Config) validate() Errors {
	var errs Errors
	at := func(field, format string, args ...any) {
		errs = append(errs, &Error{File: c.File, Line: c.Line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.Devices) == 0 && len(c.Sites) == 0 {
		at("devices", "no devices: want a list of at least one device (or sites: to import from, on a central installation)")
	}
	if c.Site != "" && !nameRE.MatchString(c.Site) {
		at("site", "want a name of letters, digits, '.', '_' or '-', got %q", c.Site)
	}
	siteNames := map[string]bool{}
	for i, s := range c.Sites {
		f := fmt.Sprintf("sites[%d]", i)
		if !nameRE.MatchString(s.Name) {
			at(f+".name", "want a name of letters, digits, '.', '_' or '-', got %q", s.Name)
		}
		if siteNames[s.Name] {
			at(f+".name", "site %q is defined twice", s.Name)
		}
		siteNames[s.Name] = true
		switch {
		case strings.Contains(s.PublicKey, "PRIVATE KEY"):
			at(f+".public_key", "this is a private key: private keys never go into the config; give the site's public key (its site.key.pub)")
		case !strings.HasPrefix(strings.TrimSpace(s.PublicKey), "ssh-ed25519 "):
			at(f+".public_key", "want the site's public key in OpenSSH format, \"ssh-ed25519 AAAA... comment\" (the site.key.pub keygen wrote)")
		}
	}
	lim := func(field string, l Limits) {
		if l.RequestsPerSecond < 0 {
			at(field+".requests_per_second", "want a number > 0, got %v", l.RequestsPerSecond)
		}
		if l.MaxInFlight < 0 {
			at(field+".max_in_flight", "want an integer >= 1, got %d", l.MaxInFlight)
		}
		for name, d := range map[string]Duration{"request_timeout": l.RequestTimeout, "snapshot_timeout": l.SnapshotTimeout, "backoff_initial": l.BackoffInitial, "backoff_max": l.BackoffMax} {
			if d < 0 {
				at(field+"."+name, "want a positive duration, got %s", d)
			}
		}
		if l.Retries < 0 || l.Retries > 10 {
			at(field+".retries", "want an integer from 0 to 10, got %d", l.Retries)
		}
		if l.BreakerFailures < 0 {
			at(field+".breaker_failures", "want an integer >= 1, got %d", l.BreakerFailures)
		}
	}
	lim("defaults", c.Defaults)
	switch c.Alerts.Console.Color {
	case "auto", "always", "never":
	default:
		at("alerts.console.color", "want auto, always or never, got %q", c.Alerts.Console.Color)
	}
	if c.Alerts.Syslog.Enabled {
		u, err := url.Parse(c.Alerts.Syslog.Address)
		switch {
		case err != nil || (u.Scheme != "unixgram" && u.Scheme != "unix" && u.Scheme != "udp"):
			at("alerts.syslog.address", "want unixgram:///dev/log or udp://127.0.0.1:514, got %q", c.Alerts.Syslog.Address)
		case u.Scheme == "udp" && !isLoopbackHost(u.Hostname()):
			at("alerts.syslog.address", "syslog goes to this machine only (air gap): want a loopback address such as udp://127.0.0.1:514, got %q", c.Alerts.Syslog.Address)
		}
	}
	for i, r := range c.Classification {
		if err := r.Validate(); err != nil {
			at(fmt.Sprintf("classification[%d]", i), "%v", err)
		}
	}
	gws := map[string]bool{}
	for i, g := range c.Gateways {
		f := fmt.Sprintf("gateways[%d]", i)
		if !nameRE.MatchString(g.Name) {
			at(f+".name", "want a name of letters, digits, '.', '_' or '-', got %q", g.Name)
		}
		if gws[g.Name] {
			at(f+".name", "gateway %q is defined twice", g.Name)
		}
		gws[g.Name] = true
		if g.RequestsPerSecond <= 0 {
			at(f+".requests_per_second", "want a number > 0, got %v", g.RequestsPerSecond)
		}
		if g.MaxInFlight < 0 {
			at(f+".max_in_flight", "want an integer >= 1, got %d", g.MaxInFlight)
		}
	}
	names := map[string]bool{}
	groups := map[string]bool{}
	for i, d := range c.Devices {
		f := fmt.Sprintf("devices[%d]", i)
		if d == nil {
			at(f, "empty device: want name, protocol and endpoint")
			continue
		}
		if !nameRE.MatchString(d.Name) {
			at(f+".name", "want a device name of letters, digits, '.', '_' or '-' (up to 63), got %q", d.Name)
		} else if names[d.Name] {
			at(f+".name", "device %q is defined twice", d.Name)
		}
		names[d.Name] = true
		for _, g := range d.Groups {
			groups[g] = true
		}
		known := false
		for _, p := range KnownProtocols {
			known = known || p == d.Protocol
		}
		if !known {
			at(f+".protocol", "want one of %s, got %q", strings.Join(KnownProtocols, ", "), d.Protocol)
		}
		if d.Endpoint == "" {
			at(f+".endpoint", "missing: want the controller's address (opc.tcp://host:4840, host:102, host:44818)")
		}
		if d.Gateway != "" && !gws[d.Gateway] {
			at(f+".gateway", "no gateway named %q under gateways:", d.Gateway)
		}
		cr := d.Credentials
		if cr.Username != "" && cr.UsernameEnv != "" {
			at(f+".credentials", "give username or username_env, not both")
		}
		if cr.PasswordEnv != "" && cr.PasswordFile != "" {
			at(f+".credentials", "give password_env or password_file, not both")
		}
		if (cr.PasswordEnv != "" || cr.PasswordFile != "") && cr.Username == "" && cr.UsernameEnv == "" {
			at(f+".credentials", "a password needs a username or username_env")
		}
		if d.Limits != nil {
			lim(f+".limits", *d.Limits)
		}
		for j, r := range d.Rules {
			if err := r.Validate(); err != nil {
				at(fmt.Sprintf("%s.rules[%d]", f, j), "%v", err)
			}
		}
		if v := Validators[d.Protocol]; v != nil && known {
			if err := v(d); err != nil {
				if es, ok := err.(Errors); ok {
					errs = append(errs, es...)
				} else if e, ok := err.(*Error); ok {
					errs = append(errs, e)
				} else {
					at(f+"."+d.Protocol, "%v", err)
				}
			}
		}
	}
	wins := map[string]bool{}
	for i, w := range c.Windows {
		f := fmt.Sprintf("windows[%d]", i)
		if !nameRE.MatchString(w.Name) {
			at(f+".name", "want a window name of letters, digits, '.', '_' or '-', got %q", w.Name)
		} else if wins[w.Name] {
			at(f+".name", "window %q is defined twice", w.Name)
		}
		wins[w.Name] = true
		if w.Cron == "" {
			at(f+".cron", "missing: want a 5-field cron expression such as \"0 2 * * *\"")
		} else if err := CronCheck(w.Cron); err != nil {
			at(f+".cron", "want a 5-field cron expression such as \"0 2 * * *\": %v", err)
		}
		if w.Duration <= 0 {
			at(f+".duration", "want a positive duration such as \"2h\"")
		}
		if _, err := time.LoadLocation(w.TimeZone); err != nil {
			at(f+".time_zone", "want an IANA time zone such as \"Europe/Berlin\" or \"Local\", got %q", w.TimeZone)
		}
		if w.ChecksPerWindow < 0 {
			at(f+".checks_per_window", "want an integer >= 1, got %d", w.ChecksPerWindow)
		}
		for j, dn := range w.Devices {
			if !names[dn] {
				at(fmt.Sprintf("%s.devices[%d]", f, j), "no device named %q", dn)
			}
		}
		for j, g := range w.Groups {
			if !groups[g] {
				at(fmt.Sprintf("%s.groups[%d]", f, j), "no device is in group %q", g)
			}
		}
	}
	if c.Daemon.MaxConcurrentDevices < 0 {
		at("daemon.max_concurrent_devices", "want an integer >= 1")
	}
	if c.Daemon.FullReadEvery < 0 {
		at("daemon.full_read_every", "want an integer >= 1")
	}
	c.validateConsole(at)
	return errs
}

// CronCheck validates a standard 5-field cron expression (descriptors such
// as @daily are accepted too).
func CronCheck(expr string) error {
	_, err := cron.ParseStandard(expr)
	return err
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}
