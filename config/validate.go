package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
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
		return fieldsOf(decodeErrors(dev.File, err), n, field)
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

// HasKey reports whether key path (such as "timeout" or
// "browse[0].max_depth") is written inside node n: a section can then tell
// an explicit zero from an absent key.
func HasKey(n *yaml.Node, keyPath string) bool {
	if n == nil || n.Kind == 0 {
		return false
	}
	pos := positions{}
	indexPositions(n, "", pos)
	_, ok := pos[keyPath]
	return ok
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
	if c.Store.Path == "" && !c.given("store.path") {
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
	// Only keys absent from the file take their default: an explicit 0 is
	// zero (validate refuses the zeros that make no sense).
	d := &c.Defaults
	absent := func(key string) bool { return !c.given(key) }
	if absent("defaults.requests_per_second") {
		d.RequestsPerSecond = 5
	}
	if absent("defaults.max_in_flight") {
		d.MaxInFlight = 1
	}
	if absent("defaults.request_timeout") {
		d.RequestTimeout = Duration(5 * time.Second)
	}
	if absent("defaults.snapshot_timeout") {
		d.SnapshotTimeout = Duration(10 * time.Minute)
	}
	if absent("defaults.retries") {
		d.Retries = 2
	}
	if absent("defaults.backoff_initial") {
		d.BackoffInitial = Duration(time.Second)
	}
	if absent("defaults.backoff_max") {
		d.BackoffMax = Duration(30 * time.Second)
	}
	if absent("defaults.breaker_failures") {
		d.BreakerFailures = 5
	}
	d.Set("requests_per_second", "max_in_flight", "request_timeout", "snapshot_timeout", "retries", "backoff_initial", "backoff_max", "breaker_failures")
	dm := &c.Daemon
	if absent("daemon.max_concurrent_devices") {
		dm.MaxConcurrentDevices = 4
	}
	if absent("daemon.overdue_after") {
		dm.OverdueAfter = Duration(35 * 24 * time.Hour)
	}
	if absent("daemon.full_read_every") {
		dm.FullReadEvery = 7
	}
	if absent("daemon.change_max_duration") {
		dm.ChangeMaxDuration = Duration(72 * time.Hour)
	}
	for i := range c.Windows {
		if c.Windows[i].TimeZone == "" {
			c.Windows[i].TimeZone = "Local"
		}
		if absent(fmt.Sprintf("windows[%d].checks_per_window", i)) {
			c.Windows[i].ChecksPerWindow = 1
		}
	}
}

// given reports whether a key path such as "defaults.retries" is in the
// file (a config built in code counts non-zero values as given).
func (c *Config) given(field string) bool {
	_, ok := c.pos[field]
	return ok
}

// validName reports whether s is 1 to 63 letters, digits, '.', '_' or
// '-', starting with a letter or digit. A counted repetition ({0,62}) compiles to a one-pass program of
// that many states at every process start (0.1 ms each); a length check
// and a star are the same test on these ASCII-only classes.
func validName(s string) bool { return len(s) <= 63 && nameRE().MatchString(s) }

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) })

// KnownProtocols lists protocol names accepted in devices[].protocol.
var KnownProtocols = []string{"opcua", "s7", "logix"}

func (c *Config) validate() Errors {
	var errs Errors
	at := func(field, format string, args ...any) {
		errs = append(errs, &Error{File: c.File, Line: c.Line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	// An explicit empty store.path is not the default: the evidence of
	// years would quietly move to ./plcwatch.db.
	if c.Store.Path == "" {
		at("store.path", "empty: want a file path (omit the key for the default plcwatch.db)")
	}
	for _, p := range []struct{ field, path string }{{"store.path", c.Store.Path}, {"alerts.jsonl.path", c.Alerts.JSONL.Path}} {
		if p.path == "~" || strings.HasPrefix(p.path, "~/") {
			at(p.field, "%q: ~ is not expanded here (it would be a folder named ~ beside the config); give an absolute path or one relative to the config file", p.path)
		}
	}
	if len(c.Devices) == 0 && len(c.Sites) == 0 {
		at("devices", "no devices: want a list of at least one device (or sites: to import from, on a central installation)")
	}
	if c.Site != "" && !validName(c.Site) {
		at("site", "want a name of letters, digits, '.', '_' or '-', got %q", c.Site)
	}
	siteNames := map[string]bool{}
	for i, s := range c.Sites {
		f := fmt.Sprintf("sites[%d]", i)
		if !validName(s.Name) {
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
	if m := c.Isolation.MemoryLimitMB; m != nil && *m != 0 && (*m < 64 || *m > 1<<20) {
		at("isolation.memory_limit_mb", "want 0 (no limit) or 64 to 1048576 MiB, got %d", *m)
	}
	lim := func(field string, l Limits) {
		given := func(key string, nonZero bool) bool { return l.Has(key) || nonZero }
		if given("requests_per_second", l.RequestsPerSecond != 0) && l.RequestsPerSecond <= 0 {
			at(field+".requests_per_second", "want a number > 0 (requests per second), got %v", l.RequestsPerSecond)
		}
		if given("max_in_flight", l.MaxInFlight != 0) && l.MaxInFlight < 1 {
			at(field+".max_in_flight", "want an integer >= 1, got %d", l.MaxInFlight)
		}
		for _, name := range []string{"request_timeout", "snapshot_timeout", "backoff_initial", "backoff_max"} {
			d := map[string]Duration{"request_timeout": l.RequestTimeout, "snapshot_timeout": l.SnapshotTimeout, "backoff_initial": l.BackoffInitial, "backoff_max": l.BackoffMax}[name]
			if d < 0 {
				at(field+"."+name, "want a positive duration, got %s", d)
			}
		}
		if l.BackoffMax > 0 && l.BackoffInitial > l.BackoffMax {
			at(field+".backoff_initial", "%s is longer than backoff_max %s: the first wait would already exceed the longest", l.BackoffInitial, l.BackoffMax)
		}
		if given("snapshot_timeout", l.SnapshotTimeout != 0) && l.SnapshotTimeout == 0 {
			at(field+".snapshot_timeout", "want a positive duration such as \"10m\": 0 would cut every snapshot off before its first request")
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
		if !validName(g.Name) {
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
		if !validName(d.Name) {
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
		for _, p := range KnownProtocols {
			if p != d.Protocol && d.section(p) != nil && d.section(p).Kind != 0 {
				at(f+"."+p, "a %s section on a device whose protocol is %q: it would be ignored", p, d.Protocol)
			}
		}
	}
	wins := map[string]bool{}
	for i, w := range c.Windows {
		f := fmt.Sprintf("windows[%d]", i)
		if !validName(w.Name) {
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
		if w.ChecksPerWindow < 1 {
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
	if c.Daemon.MaxConcurrentDevices < 1 {
		at("daemon.max_concurrent_devices", "want an integer >= 1, got %d", c.Daemon.MaxConcurrentDevices)
	}
	if c.Daemon.FullReadEvery < 1 {
		at("daemon.full_read_every", "want an integer >= 1 (a full read every N windows), got %d", c.Daemon.FullReadEvery)
	}
	if c.Daemon.OverdueAfter <= 0 {
		at("daemon.overdue_after", "want a positive duration such as \"840h\", got %s", c.Daemon.OverdueAfter)
	}
	if c.Daemon.ChangeMaxDuration <= 0 {
		at("daemon.change_max_duration", "want a positive duration such as \"72h\", got %s", c.Daemon.ChangeMaxDuration)
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

// section returns the device's section for protocol p (nil if p has none).
func (d *Device) section(p string) *yaml.Node {
	switch p {
	case "opcua":
		return &d.OPCUA
	case "s7":
		return &d.S7
	case "logix":
		return &d.Logix
	}
	return nil
}

// SectionValidator checks one device's protocol section, returning Errors
// (or an *Error) with file:line.
type SectionValidator func(dev *Device) error

// Registry maps protocol names to the validators of their sections. The
// connectors package registers each linked-in connector; CheckSections
// refuses a device whose protocol has none, so a protocol that is not
// linked into a build is an error, never a section silently skipped.
type Registry struct {
	mu sync.RWMutex
	v  map[string]SectionValidator
}

// Register adds a protocol's validator; a duplicate or a nil validator is
// an error.
func (r *Registry) Register(protocol string, v SectionValidator) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v == nil {
		return fmt.Errorf("config: nil section validator for protocol %q", protocol)
	}
	if _, dup := r.v[protocol]; dup {
		return fmt.Errorf("config: protocol %q registered twice", protocol)
	}
	if r.v == nil {
		r.v = map[string]SectionValidator{}
	}
	r.v[protocol] = v
	return nil
}

// Names lists the registered protocols, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return sortedKeys(r.v)
}

// Protocols is the registry Parse and Load validate sections with; each
// connector package registers itself in it (through connectors.Register).
// Parse checks the sections of registered protocols only (so packages that
// link no connector can parse configs); the program loads its config with
// CheckSections, strictly.
var Protocols Registry

// CheckSections validates every device's protocol section with the
// registered validators and returns every problem as Errors (nil when
// there are none). A device whose protocol has no validator here is an
// error naming the protocols this build has.
func (r *Registry) CheckSections(c *Config) error {
	return r.check(c, true)
}

// qualify names the device of a section error: a field the validator gave
// relative to its section ("s7.rack") becomes "devices[2].s7.rack", so the
// key path is whole like every other error's. Errors are copied.
func qualify(es Errors, device, protocol string) Errors {
	out := make(Errors, 0, len(es))
	for _, e := range es {
		q := *e
		if q.Field == protocol || strings.HasPrefix(q.Field, protocol+".") || strings.HasPrefix(q.Field, protocol+"[") {
			q.Field = device + "." + q.Field
		}
		out = append(out, &q)
	}
	return out
}

func (r *Registry) check(c *Config, strict bool) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var errs Errors
	for i, d := range c.Devices {
		if d == nil {
			continue
		}
		f := fmt.Sprintf("devices[%d]", i)
		v, ok := r.v[d.Protocol]
		if !ok && !strict {
			continue
		}
		if !ok {
			errs = append(errs, &Error{File: c.File, Line: c.Line(f + ".protocol"), Field: f + ".protocol",
				Msg: fmt.Sprintf("protocol %q is not linked into this build of plcwatch (it has: %s): its section cannot be checked or read", d.Protocol, strings.Join(sortedKeys(r.v), ", "))})
			continue
		}
		if err := v(d); err != nil {
			var es Errors
			var e *Error
			switch {
			case errors.As(err, &es):
				errs = append(errs, qualify(es, f, d.Protocol)...)
			case errors.As(err, &e):
				errs = append(errs, qualify(Errors{e}, f, d.Protocol)...)
			default:
				errs = append(errs, &Error{File: c.File, Line: c.Line(f + "." + d.Protocol), Field: f + "." + d.Protocol, Msg: err.Error()})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sortErrors(errs)
	return errs
}
