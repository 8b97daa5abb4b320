// Package config loads and validates plcwatch's YAML configuration.
//
// Every problem is reported with the file and line it is on and what was
// expected; unknown keys are errors. Protocol sections (opcua:, s7:, logix:)
// are kept as YAML nodes here and decoded by their connector's package with
// DecodeSection, so each connector owns its own settings.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/plcwatch/plcwatch/classify"
)

// DefaultPath is the config file used when neither --config nor
// PLCWATCH_CONFIG names one.
const DefaultPath = "plcwatch.yaml"

// EnvPath is the environment variable that names the config file.
const EnvPath = "PLCWATCH_CONFIG"

// Config is the whole configuration.
type Config struct {
	Store          Store          `yaml:"store"`
	Alerts         Alerts         `yaml:"alerts"`
	Defaults       Limits         `yaml:"defaults"`
	Daemon         Daemon         `yaml:"daemon"`
	Isolation      Isolation      `yaml:"isolation"`
	Classification classify.Rules `yaml:"classification"`
	Gateways       []Gateway      `yaml:"gateways"`
	Windows        []Window       `yaml:"windows"`
	Devices        []*Device      `yaml:"devices"`
	Console        Console        `yaml:"console"`
	// Site names this installation in the evidence bundles it exports.
	Site string `yaml:"site"`
	// Sites are the sites whose evidence bundles this (central)
	// installation imports, each with its public signing key. A central
	// installation may have no devices.
	Sites []Site `yaml:"sites"`

	// File is the path the config was loaded from.
	File string `yaml:"-"`
	// Dir is the directory relative paths in the config are resolved against.
	Dir string `yaml:"-"`
	pos positions
}

// Store configures the embedded snapshot store.
type Store struct {
	// Path of the SQLite file; relative paths are relative to the config file.
	Path string `yaml:"path"`
}

// Alerts configures the alert sinks. The store always keeps every alert;
// sinks only tell people.
type Alerts struct {
	Console ConsoleSink `yaml:"console"`
	JSONL   JSONLSink   `yaml:"jsonl"`
	Syslog  SyslogSink  `yaml:"syslog"`
}

// ConsoleSink prints alerts on standard error.
type ConsoleSink struct {
	Enabled *bool `yaml:"enabled"`
	// Color is auto (on a terminal), always or never.
	Color string `yaml:"color"`
}

// JSONLSink appends one JSON object per alert (and per chain head) to a file.
type JSONLSink struct {
	// Path of the log; relative paths are relative to the config file.
	Path string `yaml:"path"`
}

// SyslogSink sends RFC 5424 messages to the local syslog.
type SyslogSink struct {
	Enabled bool `yaml:"enabled"`
	// Address is "unixgram:///dev/log" (the default) or "udp://127.0.0.1:514".
	Address  string `yaml:"address"`
	Facility string `yaml:"facility"`
	AppName  string `yaml:"app_name"`
}

// Limits are the gentleness settings of one device (or the defaults). A
// key given in the file is honoured whatever its value (an explicit 0 is
// zero: retries: 0 means no retry); only an absent key takes the default.
type Limits struct {
	RequestsPerSecond float64  `yaml:"requests_per_second"`
	MaxInFlight       int      `yaml:"max_in_flight"`
	RequestTimeout    Duration `yaml:"request_timeout"`
	// SnapshotTimeout bounds one whole snapshot.
	SnapshotTimeout Duration `yaml:"snapshot_timeout"`
	Retries         int      `yaml:"retries"`
	BackoffInitial  Duration `yaml:"backoff_initial"`
	BackoffMax      Duration `yaml:"backoff_max"`
	// BreakerFailures consecutive failures open the device's circuit breaker
	// until its next window.
	BreakerFailures int `yaml:"breaker_failures"`

	// set holds the keys given in the file.
	set map[string]bool
}

// UnmarshalYAML decodes the limits and records which keys were given.
func (l *Limits) UnmarshalYAML(n *yaml.Node) error {
	type plain Limits
	if err := n.Decode((*plain)(l)); err != nil {
		return err
	}
	l.set = map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		l.set[n.Content[i].Value] = true
	}
	return nil
}

// Has reports whether key (such as "retries") was given in the file, or set
// with Set.
func (l Limits) Has(key string) bool { return l.set[key] }

// Set marks key as given, for limits built in code.
func (l *Limits) Set(keys ...string) {
	if l.set == nil {
		l.set = map[string]bool{}
	}
	for _, k := range keys {
		l.set[k] = true
	}
}

// Daemon configures the scheduler.
type Daemon struct {
	// MaxConcurrentDevices caps devices read at once, across all windows.
	MaxConcurrentDevices int `yaml:"max_concurrent_devices"`
	// OverdueAfter raises "monitoring overdue" for a device with no complete
	// snapshot for this long (NERC CIP-010 R2: 35 days).
	OverdueAfter Duration `yaml:"overdue_after"`
	// FullReadEvery forces a full read every N windows even when cheap change
	// indicators did not move.
	FullReadEvery int `yaml:"full_read_every"`
	// ChangeMaxDuration is the longest a planned change may stay open.
	ChangeMaxDuration Duration `yaml:"change_max_duration"`
	// LockDir holds the per-device lock files; default: beside the store.
	LockDir string `yaml:"lock_dir"`
}

// Isolation configures where protocol sessions run.
type Isolation struct {
	// Enabled runs each device's snapshot in a child process of the plcwatch
	// binary, so that a protocol library that panics, allocates without
	// bound or hangs costs that device's snapshot only. Default true; an
	// explicit false runs connectors inside the calling process.
	Enabled *bool `yaml:"enabled"`
	// MemoryLimitMB caps the data segment (RLIMIT_DATA: the heap a
	// protocol library can allocate) of each session process, in MiB.
	// Default 1024; an explicit 0 means no limit. A session that reaches
	// it dies and its snapshot fails as "ran out of memory".
	MemoryLimitMB *int `yaml:"memory_limit_mb"`
}

// SessionMemoryLimit returns isolation.memory_limit_mb in bytes (default
// 1024 MiB; 0: no limit).
func (c *Config) SessionMemoryLimit() int64 {
	if c.Isolation.MemoryLimitMB == nil {
		return 1024 << 20
	}
	return int64(*c.Isolation.MemoryLimitMB) << 20
}

// IsolateSessions reports whether snapshots run in a child process
// (isolation.enabled, default true).
func (c *Config) IsolateSessions() bool {
	return c.Isolation.Enabled == nil || *c.Isolation.Enabled
}

// Site is a site whose signed evidence bundles are imported, named with
// its public key in OpenSSH format ("ssh-ed25519 AAAA... comment"). Private
// keys never go into the config.
type Site struct {
	Name      string `yaml:"name"`
	PublicKey string `yaml:"public_key"`
}

// Gateway is an endpoint shared by several devices (a gateway or a
// communication module) with limits of its own.
type Gateway struct {
	Name              string  `yaml:"name"`
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	MaxInFlight       int     `yaml:"max_in_flight"`
}

// Window is an approved maintenance window: it opens at each time Cron gives,
// in TimeZone, and lasts Duration.
type Window struct {
	Name     string   `yaml:"name"`
	Cron     string   `yaml:"cron"`
	Duration Duration `yaml:"duration"`
	TimeZone string   `yaml:"time_zone"`
	Devices  []string `yaml:"devices"`
	Groups   []string `yaml:"groups"`
	// ChecksPerWindow is how many times each device is checked in one
	// window; default 1.
	ChecksPerWindow int `yaml:"checks_per_window"`
}

// Device is one controller.
type Device struct {
	Name     string   `yaml:"name"`
	Protocol string   `yaml:"protocol"`
	Endpoint string   `yaml:"endpoint"`
	Groups   []string `yaml:"groups"`
	Gateway  string   `yaml:"gateway"`
	// Credentials name where secrets are; they are never written inline.
	Credentials Credentials    `yaml:"credentials"`
	Limits      *Limits        `yaml:"limits"`
	Rules       classify.Rules `yaml:"rules"`

	// Protocol sections, decoded by the connector with DecodeSection.
	OPCUA yaml.Node `yaml:"opcua"`
	S7    yaml.Node `yaml:"s7"`
	Logix yaml.Node `yaml:"logix"`

	// Line is where the device starts in File.
	Line int    `yaml:"-"`
	File string `yaml:"-"`
	// Dir is the config file's directory, for relative paths in sections.
	Dir string `yaml:"-"`
}

// Credentials reference secrets held outside the config.
type Credentials struct {
	Username     string `yaml:"username"`
	UsernameEnv  string `yaml:"username_env"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`

	// provided holds credentials already resolved by a parent process and
	// handed over a pipe (an isolated session); Resolve returns them.
	provided     bool
	providedUser string
	providedPass Secret
}

// Duration is a time.Duration written as a string such as "10s" or "2h30m".
type Duration time.Duration

// UnmarshalYAML parses a duration string. A bad one is a *yaml.TypeError,
// so decoding goes on and every bad value in the file is reported.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration string such as \"10s\", got %s", n.Line, describe(n))}}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration string such as \"10s\" or \"2h\", got %q", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String renders the duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Error is one configuration problem, with where it is.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config, in file order.
type Errors []*Error

func (es Errors) Error() string {
	var lines []string
	for _, e := range es {
		lines = append(lines, e.Error())
	}
	return strings.Join(lines, "\n")
}

// positions maps a field path ("devices[0].endpoint") to its line.
type positions map[string]int

func (p positions) line(field string) int {
	for f := field; f != ""; {
		if l, ok := p[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

// Path resolves the config's config path to use: flag, then PLCWATCH_CONFIG,
// then DefaultPath.
func Path(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	return DefaultPath
}

// Load reads, decodes, defaults and validates the config at file. The error,
// if any, is an Errors listing every problem with file:line.
func Load(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(file, b)
}

// Parse decodes and validates config bytes; file is used in messages and to
// resolve relative paths. Protocol sections are validated by the protocols
// registered in Protocols; Protocols.CheckSections also refuses protocols
// that are not registered.
func Parse(file string, b []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	if len(root.Content) == 0 {
		return nil, Errors{{File: file, Line: 1, Msg: "config is empty: want a mapping with at least devices:"}}
	}
	doc := root.Content[0]
	var errs Errors
	pos := positions{}
	indexPositions(doc, "", pos)
	// Unknown keys are reported together with every other problem, so one
	// run of config check lists them all.
	errs = append(errs, checkKnown(file, doc, typeOf[Config](), "")...)
	cfg := &Config{File: file, Dir: filepath.Dir(file), pos: pos}
	typeErrs := false
	if err := doc.Decode(cfg); err != nil {
		// yaml goes on decoding after a type error, so the devices and
		// their protocol sections are there to be checked too: one run of
		// config check lists every type error, sections included.
		errs = append(errs, fieldsOf(decodeErrors(file, err), doc, "")...)
		typeErrs = true
	}
	if devs := mapValue(doc, "devices"); devs != nil && devs.Kind == yaml.SequenceNode {
		for i, n := range devs.Content {
			if i < len(cfg.Devices) && cfg.Devices[i] != nil {
				cfg.Devices[i].Line = n.Line
			}
		}
	}
	for _, d := range cfg.Devices {
		if d != nil {
			d.File, d.Dir = file, cfg.Dir
		}
	}
	if typeErrs {
		// Values that failed to decode read as zero: the checks of meaning
		// would report them again as wrong, so only the sections are
		// checked.
		if err := Protocols.check(cfg, false); err != nil {
			errs = append(errs, err.(Errors)...)
		}
		sortErrors(errs)
		return nil, errs
	}
	cfg.setRuleSources()
	cfg.applyDefaults()
	errs = append(errs, cfg.validate()...)
	if err := Protocols.check(cfg, false); err != nil {
		errs = append(errs, err.(Errors)...)
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return cfg, nil
}

func sortErrors(errs Errors) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`) })

func yamlError(file string, err error) *Error {
	m := yamlLine().FindStringSubmatch(err.Error())
	if m != nil {
		var l int
		fmt.Sscan(m[1], &l)
		return &Error{File: file, Line: l, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

// fieldsOf names the key of each error that has a line but no field (yaml's
// type errors give only the line): the key on that line whose value is the
// one the message quotes, else the deepest key on the line.
func fieldsOf(errs Errors, n *yaml.Node, prefix string) Errors {
	type keyAt struct{ field, value string }
	byLine := map[int][]keyAt{}
	var walk func(n *yaml.Node, p string)
	walk = func(n *yaml.Node, p string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				f := n.Content[i].Value
				if p != "" {
					f = p + "." + f
				}
				v := n.Content[i+1]
				byLine[n.Content[i].Line] = append(byLine[n.Content[i].Line], keyAt{f, v.Value})
				walk(v, f)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", p, i))
			}
		}
	}
	walk(n, prefix)
	for _, e := range errs {
		if e.Field != "" || e.Line <= 0 {
			continue
		}
		keys := byLine[e.Line]
		for _, k := range keys {
			if k.value != "" && strings.Contains(e.Msg, fmt.Sprintf("%q", k.value)) {
				e.Field = k.field
				break
			}
		}
		if e.Field == "" && len(keys) > 0 {
			e.Field = keys[len(keys)-1].field
		}
	}
	return errs
}

// typeMsg rewrites yaml's "cannot unmarshal !!str `x` into int" as what the
// key wants.
var typeMsg = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.+)$") })

var goTypeWords = map[string]string{
	"int": "an integer", "int64": "an integer", "float64": "a number", "bool": "true or false",
	"string": "a string", "[]string": "a list of strings",
}

func decodeErrors(file string, err error) Errors {
	var te *yaml.TypeError
	var ce *Error
	switch {
	case errors.As(err, &ce):
		c := *ce
		c.File = file
		return Errors{&c}
	case errors.As(err, &te):
		var out Errors
		for _, e := range te.Errors {
			ye := yamlError(file, errors.New(e))
			ye.Msg = strings.TrimPrefix(ye.Msg, "invalid YAML: ")
			if m := typeMsg().FindStringSubmatch(ye.Msg); m != nil {
				want := goTypeWords[m[3]]
				if want == "" {
					want = "a " + strings.TrimPrefix(m[3], "config.")
				}
				ye.Msg = fmt.Sprintf("want %s, got %q", want, m[2])
			}
			out = append(out, ye)
		}
		return out
	}
	return Errors{yamlError(file, err)}
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func indexPositions(n *yaml.Node, prefix string, pos positions) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			pos[p] = n.Content[i].Line
			indexPositions(n.Content[i+1], p, pos)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			pos[p] = c.Line
			indexPositions(c, p, pos)
		}
	}
}

// Line returns the line of a field path such as "devices[2].endpoint" (or
// of its nearest parent found), 0 if unknown.
func (c *Config) Line(field string) int { return c.pos.line(field) }

// Device returns the device with the given name, or nil.
func (c *Config) Device(name string) *Device {
	for _, d := range c.Devices {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (c *Config) setRuleSources() {
	for i := range c.Classification {
		c.Classification[i].Source = fmt.Sprintf("%s:%d", c.File, c.Line(fmt.Sprintf("classification[%d]", i)))
	}
	for di, d := range c.Devices {
		if d == nil {
			continue
		}
		for i := range d.Rules {
			d.Rules[i].Source = fmt.Sprintf("%s:%d", c.File, c.Line(fmt.Sprintf("devices[%d].rules[%d]", di, i)))
		}
	}
}

// Resolve returns p resolved against the config file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// StorePath is the store file's path.
func (c *Config) StorePath() string { return c.Resolve(c.Store.Path) }

// AlertLogPath is the JSONL alert log's path.
func (c *Config) AlertLogPath() string { return c.Resolve(c.Alerts.JSONL.Path) }

// LimitsFor returns the device's limits: each key its own limits give
// (an explicit 0 included), else the defaults'. Limits built in code
// without Set count a non-zero field as given.
func (c *Config) LimitsFor(d *Device) Limits {
	l := c.Defaults
	if d.Limits == nil {
		return l
	}
	o := *d.Limits
	given := func(key string, nonZero bool) bool { return o.Has(key) || (o.set == nil && nonZero) }
	if given("requests_per_second", o.RequestsPerSecond != 0) {
		l.RequestsPerSecond = o.RequestsPerSecond
	}
	if given("max_in_flight", o.MaxInFlight != 0) {
		l.MaxInFlight = o.MaxInFlight
	}
	if given("request_timeout", o.RequestTimeout != 0) {
		l.RequestTimeout = o.RequestTimeout
	}
	if given("snapshot_timeout", o.SnapshotTimeout != 0) {
		l.SnapshotTimeout = o.SnapshotTimeout
	}
	if given("retries", o.Retries != 0) {
		l.Retries = o.Retries
	}
	if given("backoff_initial", o.BackoffInitial != 0) {
		l.BackoffInitial = o.BackoffInitial
	}
	if given("backoff_max", o.BackoffMax != 0) {
		l.BackoffMax = o.BackoffMax
	}
	if given("breaker_failures", o.BreakerFailures != 0) {
		l.BreakerFailures = o.BreakerFailures
	}
	return l
}

// Gateway returns the named gateway, or nil.
func (c *Config) Gateway(name string) *Gateway {
	for i := range c.Gateways {
		if c.Gateways[i].Name == name {
			return &c.Gateways[i]
		}
	}
	return nil
}

// WindowsFor returns the windows a device is assigned to, directly or through
// one of its groups.
func (c *Config) WindowsFor(d *Device) []Window {
	var out []Window
	for _, w := range c.Windows {
		if contains(w.Devices, d.Name) || intersects(w.Groups, d.Groups) {
			out = append(out, w)
		}
	}
	return out
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}
