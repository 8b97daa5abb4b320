// Package connectors holds the contract every protocol connector keeps, and
// the one gate every request to a controller passes through.
//
// A connector turns one device's config into a snapshot. It sends nothing to
// the controller except through its Gate: the gate refuses any request kind
// that is not on the connector's read-only allowlist before it reaches the
// wire, counts requests and bytes, and lets the daemon rate-limit them.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/snapshots"
)

// Connector reads one controller. Implementations are not safe for concurrent
// use: one snapshot at a time.
type Connector interface {
	// Snapshot reads the device and returns an unfinalized snapshot with its
	// items, identity, status and cost filled in. prev is the device's latest
	// stored snapshot (nil if none); a connector may carry items forward from
	// it when a cheap change indicator did not move. A read that fails part
	// way returns a partial snapshot (Status.Complete false, the unread items
	// marked SourceNotRead) and a nil error; an error means nothing usable was
	// read. Snapshot honours ctx, including its deadline, on every request.
	Snapshot(ctx context.Context, prev *snapshots.Snapshot) (*snapshots.Snapshot, error)
	// Plan describes, without touching the device, the requests a snapshot
	// will send. With prev (the latest stored snapshot) it is exact for an
	// unchanged device; without, it is an estimate.
	Plan(prev *snapshots.Snapshot) (*Plan, error)
	// Close releases connections. It is safe to call more than once.
	Close() error
}

// Env is what a connector is given besides its device config.
type Env struct {
	// Log is the connector's logger; it already carries device and protocol.
	Log zerolog.Logger
	// Gate is the single path to the wire. Never nil when built by Open.
	Gate *Gate
	// Rules classifies items: the device's rules first, then the global ones.
	Rules classify.Rules
}

// Factory builds a connector for a device. It validates the device's
// protocol section and returns a *config.Error list for problems found there.
type Factory struct {
	// Protocol is the config's `protocol:` value, such as "opcua".
	Protocol string
	// Allowlist is the read-only request kinds this connector may send.
	Allowlist []string
	// Validate checks the device's protocol-specific config.
	Validate func(dev *config.Device) error
	// New builds the connector; it should not touch the network.
	New func(dev *config.Device, env Env) (Connector, error)
}

var (
	regMu    sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a connector factory available by protocol name. It panics
// on a duplicate, which is a programming error.
func Register(f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[f.Protocol]; dup {
		panic("connectors: duplicate protocol " + f.Protocol)
	}
	registry[f.Protocol] = f
	v := f.Validate
	if v == nil {
		v = func(*config.Device) error { return nil }
	}
	if err := config.Protocols.Register(f.Protocol, v); err != nil {
		panic(err)
	}
}

// LoadConfig loads the config at path and validates every device's
// protocol section with the linked-in connectors: a protocol that is not
// linked in is an error. Problems come back as config.Errors with
// file:line.
func LoadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := config.Protocols.CheckSections(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Lookup returns the factory for a protocol.
func Lookup(protocol string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := registry[protocol]
	return f, ok
}

// Protocols lists the registered protocol names, sorted.
func Protocols() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var ps []string
	for p := range registry {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// ErrUnknownProtocol is returned by Open for a protocol no connector serves.
var ErrUnknownProtocol = errors.New("unknown protocol")

// Open builds the connector for dev. limiter may be nil (no rate limiting).
// The returned gate is the one the connector uses; read its Meter for counts.
func Open(dev *config.Device, global classify.Rules, log zerolog.Logger, limiter Limiter) (Connector, *Gate, error) {
	f, ok := Lookup(dev.Protocol)
	if !ok {
		return nil, nil, fmt.Errorf("device %s: protocol %q: %w (have %v)", dev.Name, dev.Protocol, ErrUnknownProtocol, Protocols())
	}
	gate := NewGate(dev.Name, f.Allowlist, limiter)
	env := Env{
		Log:   log.With().Str("device", dev.Name).Str("protocol", dev.Protocol).Logger(),
		Gate:  gate,
		Rules: append(append(classify.Rules{}, dev.Rules...), global...),
	}
	c, err := f.New(dev, env)
	if err != nil {
		return nil, nil, fmt.Errorf("device %s: %w", dev.Name, err)
	}
	return c, gate, nil
}

// Plan is what a snapshot of one device will send.
type Plan struct {
	Device   string `json:"device"`
	Protocol string `json:"protocol"`
	Endpoint string `json:"endpoint"`
	// Exact is true when the plan was derived from a stored snapshot's
	// recorded requests, false for an estimate.
	Exact    bool                     `json:"exact"`
	Basis    string                   `json:"basis"` // e.g. "estimate from config" or "snapshot 3fa2…"
	Requests []snapshots.RequestCount `json:"requests"`
	// Steps, when not 0, is the number of gated steps (what the rate limit
	// admits) where a step sends several requests (an OPC UA connection's
	// Hello, OpenSecureChannel, CreateSession, ActivateSession).
	Steps int      `json:"steps,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Totals returns the plan's request count and bytes.
func (p *Plan) Totals() (count int, out, in int64) {
	for _, r := range p.Requests {
		count += r.Count
		out += r.BytesOut
		in += r.BytesIn
	}
	return
}

// PlanFromSnapshot returns the exact plan of an unchanged snapshot: the
// requests that prev recorded, or the ones prev predicted for its
// successor (Cost.Next) when the connector recorded them. Connectors use it
// when prev is complete.
func PlanFromSnapshot(prev *snapshots.Snapshot) *Plan {
	p := &Plan{Device: prev.Device, Protocol: prev.Protocol, Endpoint: prev.Endpoint, Exact: true,
		Basis: "requests recorded by snapshot " + prev.ID}
	p.Requests = append(p.Requests, prev.Cost.ByKind...)
	if len(prev.Cost.Next) > 0 {
		p.Requests = append([]snapshots.RequestCount(nil), prev.Cost.Next...)
		p.Basis += ", with the reads it predicted for the next snapshot of the unchanged device"
	}
	return p
}
