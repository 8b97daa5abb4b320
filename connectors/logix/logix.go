// Package logix is plcwatch's connector for Rockwell ControlLogix and
// CompactLogix controllers over EtherNet/IP and CIP.
//
// A snapshot holds the controller's identity, key switch, mode and major
// faults (minor faults as information);
// the identity and firmware of configured chassis modules; the cheap change
// indicators (controller-properties attributes of class 0xAC and, where the
// site's logic copies it into a tag, the AuditValue); the tag database
// (controller- and program-scoped tags, programs, UDT definitions); and
// configured setpoints. When the indicators did not move since the previous
// snapshot, the tag database is carried forward instead of read.
//
// The CIP client is the connector's own (cip.go, transport.go), not
// gologix's: gologix dials and owns its socket, so its requests cannot be
// passed one by one through the gate, and its ListAllTags keeps stale tags
// across calls, swallows template errors and hides a failed program list.
// gologix supplies vendor and device-type names and route-path parsing.
// Only read services can be encoded, and every frame is named from its own
// bytes by its (service, class) pair and checked against the allowlist
// before it is sent; a Multiple Service Packet or Unconnected Send may
// carry listed reads only.
//
// What a device cannot give costs the item, never the snapshot: an item
// whose reply carries a CIP error status, cannot be decoded or has a type
// the connector does not know is "not read" with the status named; an
// unusable reply inside a Multiple Service Packet is asked again singly,
// and a device that refuses the packet (0x08) gets single requests for the
// rest of the snapshot; the identity falls back to ListIdentity; a session
// the device closed is reopened (maxReopens). Each request is bounded by
// the section's timeout and ctx.
package logix

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
)

// Protocol is the config's protocol name for this connector.
const Protocol = "logix"

func init() {
	connectors.Register(connectors.Factory{
		Protocol:  Protocol,
		Allowlist: Allowlist,
		Validate: func(dev *config.Device) error {
			_, err := decode(dev)
			return err
		},
		New: New,
	})
}

type forceKey struct{}

// ForceFull returns a context under which Snapshot reads the whole tag
// database even when the change indicators did not move (the daemon's
// full_read_every, or a person's on-demand full check).
func ForceFull(ctx context.Context) context.Context {
	return context.WithValue(ctx, forceKey{}, true)
}

// FullReadForced reports whether ctx carries ForceFull.
func FullReadForced(ctx context.Context) bool {
	v, _ := ctx.Value(forceKey{}).(bool)
	return v
}

// connector reads one Logix controller. It keeps no connection between
// snapshots: each snapshot opens a fresh session, so nothing read earlier
// can leak into a later snapshot.
type connector struct {
	dev *config.Device
	env connectors.Env
	cfg *settings
}

// New builds a Logix connector for dev. It does not touch the network.
func New(dev *config.Device, env connectors.Env) (connectors.Connector, error) {
	cfg, err := decode(dev)
	if err != nil {
		return nil, err
	}
	if env.Gate == nil {
		return nil, fmt.Errorf("logix connector for %s: no gate", dev.Name)
	}
	return &connector{dev: dev, env: env, cfg: cfg}, nil
}

// Close releases nothing: sessions live for one snapshot only.
func (c *connector) Close() error { return nil }

// Item paths the carry-forward decision reads.
const (
	sectionsItem = "collector/sections"
)

// tagDBPrefixes are the parts of a snapshot carried forward.
var tagDBPrefixes = []string{"tags", "programs", "udts"}

// Snapshot reads the controller. See the package doc for what it holds.
func (c *connector) Snapshot(ctx context.Context, prev *snapshots.Snapshot) (*snapshots.Snapshot, error) {
	start := time.Now()
	c.env.Gate.Reset()
	snap := &snapshots.Snapshot{Device: c.dev.Name, Protocol: Protocol, Endpoint: c.cfg.host, TakenAt: start.UTC(), RulesDigest: c.env.Rules.Digest()}
	b := newBuild(c.env.Rules)

	s, err := dial(ctx, c.cfg.host, c.env.Gate, c.cfg.timeout, c.cfg.route)
	if err != nil {
		return nil, err
	}
	if err := s.register(ctx); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("device %s: %w", c.dev.Name, err)
	}
	if err := s.open(ctx); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("device %s: %w", c.dev.Name, err)
	}
	id := c.readCheap(ctx, s, b)
	if id != (identity{}) {
		snap.Identity = snapshots.Identity{Vendor: vendorName(id.Vendor), Model: id.ProductName, Serial: id.serial(), Firmware: id.revision()}
	}
	for _, slot := range c.cfg.Modules {
		c.readModule(ctx, s, slot, b)
	}
	b.add(snapshots.Item{Path: sectionsItem, Kind: snapshots.KindInfo, Value: snapshots.String(c.cfg.sections())}, "collector", "")
	if on(c.cfg.TagDatabase) {
		if ok, why := c.canCarry(ctx, prev, b); ok {
			c.env.Log.Debug().Str("from", prev.ID).Msg("change indicators unchanged: tag database carried forward")
			b.carry(prev, tagDBPrefixes)
			c.checkArraySetpoints(b, nil, prev)
		} else {
			c.env.Log.Debug().Str("reason", why).Msg("reading tag database")
			c.checkArraySetpoints(b, c.readTagDatabase(ctx, s, b), prev)
		}
	}
	s.close(ctx)

	b.finish(prev)
	snap.Items = b.items
	snap.Status = snapshots.Status{Complete: len(b.reasons) == 0, Reasons: b.reasons}
	snap.Cost = c.env.Gate.Cost()
	snap.Cost.Duration = time.Since(start)
	return snap, nil
}

// canCarry decides whether the tag database may be carried from prev: a
// complete Logix snapshot of the same controller (serial, firmware), read
// with the same sections and rules, whose change indicators equal the ones
// just read, at least one of them observable.
func (c *connector) canCarry(ctx context.Context, prev *snapshots.Snapshot, b *build) (bool, string) {
	switch {
	case FullReadForced(ctx):
		return false, "full read forced"
	case prev == nil:
		return false, "no previous snapshot"
	case prev.Protocol != Protocol || !prev.Status.Complete:
		return false, "previous snapshot incomplete"
	case prev.RulesDigest != c.env.Rules.Digest():
		return false, "classification rules changed"
	}
	for _, p := range []string{sectionsItem, "identity/serial", "firmware/controller"} {
		old, cur := prev.Item(p), b.item(p)
		if old == nil || cur == nil || old.Value != cur.Value {
			return false, p + " changed"
		}
	}
	observable := 0
	cur := 0
	for _, it := range b.items {
		if !it.Indicator && !strings.HasPrefix(it.Path, "indicators/") {
			continue
		}
		cur++
		old := prev.Item(it.Path)
		if old == nil || old.Value != it.Value || old.Provenance.Source != it.Provenance.Source {
			return false, "change indicator " + it.Path + " moved"
		}
		if it.Provenance.Source == snapshots.SourceRead {
			observable++
		}
	}
	for _, it := range prev.Items {
		if strings.HasPrefix(it.Path, "indicators/") {
			cur--
		}
	}
	if cur != 0 {
		return false, "change indicators differ"
	}
	if observable == 0 {
		return false, "no change indicator observable"
	}
	return true, ""
}

// Plan describes the requests of the next snapshot. With a complete prev
// it is exact for an unchanged device: prev's requests, without the
// tag-database read when that will be carried forward.
func (c *connector) Plan(prev *snapshots.Snapshot) (*connectors.Plan, error) {
	if prev != nil && prev.Protocol == Protocol && prev.Status.Complete {
		p := connectors.PlanFromSnapshot(prev)
		if carryPossible(prev) && on(c.cfg.TagDatabase) {
			var keep []snapshots.RequestCount
			for _, r := range p.Requests {
				if r.Object != objSymbols && r.Object != objTemplates {
					keep = append(keep, r)
				}
			}
			p.Requests = keep
			p.Notes = append(p.Notes, "tag database carried forward while the change indicators do not move; a full read adds the Symbol 0x6B and Template 0x6C requests of the last full snapshot")
		}
		return p, nil
	}
	p := &connectors.Plan{Device: c.dev.Name, Protocol: Protocol, Endpoint: c.cfg.host, Basis: "estimate from config"}
	add := func(kind, object string, n int) {
		p.Requests = append(p.Requests, snapshots.RequestCount{Kind: kind, Object: object, Count: n})
	}
	add(KindRegisterSession, objSession, 1)
	add(KindLargeForwardOpen, objConn, 1)
	add(KindMultipleServicePacket, objCheap, 1+len(c.cfg.Setpoints)/100)
	if len(c.cfg.Modules) > 0 {
		add(KindGetAttributesAll, objModule, len(c.cfg.Modules))
	}
	if on(c.cfg.TagDatabase) {
		add(KindGetInstanceAttributeList, objSymbols, 1)
		p.Notes = append(p.Notes, "the first snapshot lists the whole tag database: one Symbol 0x6B request per page of tags and per program, and two or more Template 0x6C requests per UDT; later unchanged snapshots carry it forward")
	}
	add(KindForwardClose, objConn, 1)
	add(KindUnregisterSession, objSession, 1)
	return p, nil
}

// carryPossible reports whether prev had an observable change indicator,
// which an unchanged next snapshot needs to carry the tag database.
func carryPossible(prev *snapshots.Snapshot) bool {
	for _, it := range prev.Items {
		if it.Indicator && it.Provenance.Source == snapshots.SourceRead {
			return true
		}
	}
	return false
}

// build collects a snapshot's items and what could not be read.
type build struct {
	rules   classify.Rules
	items   []snapshots.Item
	index   map[string]int
	reasons []string
	failed  []failure
}

type failure struct{ prefix, reason string }

func newBuild(rules classify.Rules) *build {
	return &build{rules: rules, index: map[string]int{}}
}

func (b *build) item(path string) *snapshots.Item {
	if i, ok := b.index[path]; ok {
		return &b.items[i]
	}
	return nil
}

// add classifies an item with the rules (the item's kind, deadband and
// unit are the defaults) and keeps it unless a rule ignores it. The first
// item of a path wins.
func (b *build) add(it snapshots.Item, nodeClass, dataType string) {
	if _, dup := b.index[it.Path]; dup {
		return
	}
	name := it.Path[strings.LastIndex(it.Path, "/")+1:]
	res := b.rules.Classify(classify.Target{Path: it.Path, Name: name, NodeClass: nodeClass, DataType: dataType},
		classify.Result{Kind: it.Kind, Deadband: it.Deadband, Unit: it.Value.Unit})
	if res.Ignore {
		return
	}
	it.Kind, it.Deadband = res.Kind, res.Deadband
	if res.Unit != "" && it.Value.Type != snapshots.TypeNone {
		it.Value.Unit = res.Unit
	}
	if res.Volatile {
		it.Volatile, it.Value = true, snapshots.None()
	}
	if it.Provenance.Source == "" {
		it.Provenance = snapshots.Provenance{Source: snapshots.SourceRead}
	}
	b.index[it.Path] = len(b.items)
	b.items = append(b.items, it)
}

// notObservable records an item the device does not expose.
func (b *build) notObservable(path string, kind snapshots.Kind, reason string) {
	b.add(snapshots.Item{Path: path, Kind: kind, Value: snapshots.None(), Indicator: strings.HasPrefix(path, "indicators/"),
		Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: reason}}, "indicator", "")
}

// notRead records an item that was asked for and could not be read, with
// the reason; the snapshot is partial. it gives the item's kind and
// attributes; its path, value and provenance are set here.
func (b *build) notRead(path string, it snapshots.Item, reason string) {
	it.Path, it.Value = path, snapshots.None()
	it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: reason}
	b.add(it, "item", "")
	b.fail(path, reason)
}

// identityNotRead marks the identity, firmware and mode items not read
// when neither the Identity object nor ListIdentity answered.
func (b *build) identityNotRead(reason string) {
	for _, p := range []struct {
		path string
		kind snapshots.Kind
	}{
		{"identity/vendor", snapshots.KindIdentity}, {"identity/device_type", snapshots.KindIdentity},
		{"identity/product_code", snapshots.KindIdentity}, {"identity/product_name", snapshots.KindIdentity},
		{"identity/serial", snapshots.KindIdentity}, {"firmware/controller", snapshots.KindFirmware},
		{"mode/key_switch", snapshots.KindMode}, {"mode/operating", snapshots.KindMode}, {"mode/faults", snapshots.KindMode}, {"info/minor_faults", snapshots.KindInfo},
	} {
		b.notRead(p.path, snapshots.Item{Kind: p.kind}, reason)
	}
}

// fail records that the items at or under prefix could not be read; the
// snapshot is partial.
func (b *build) fail(prefix, reason string) {
	b.failed = append(b.failed, failure{prefix, reason})
	b.reasons = append(b.reasons, reason)
}

// carry copies prev's items under the prefixes, marked carried from the
// snapshot they were first read in.
func (b *build) carry(prev *snapshots.Snapshot, prefixes []string) {
	for _, it := range prev.Items {
		if !under(it.Path, prefixes...) {
			continue
		}
		from := prev.ID
		if it.Provenance.Source == snapshots.SourceCarried && it.Provenance.From != "" {
			from = it.Provenance.From
		}
		it.Provenance = snapshots.Provenance{Source: snapshots.SourceCarried, From: from, Reason: "change indicators unchanged"}
		it.Hash = ""
		if it.Attrs != nil {
			a := make(map[string]string, len(it.Attrs))
			for k, v := range it.Attrs {
				a[k] = v
			}
			it.Attrs = a
		}
		b.index[it.Path] = len(b.items)
		b.items = append(b.items, it)
	}
}

func under(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// finish adds, for every item of prev under a failed prefix that this
// snapshot did not read, a not-read item: a failed read is never removal.
func (b *build) finish(prev *snapshots.Snapshot) {
	if prev != nil {
		for _, f := range b.failed {
			for _, it := range prev.Items {
				if !under(it.Path, f.prefix) || b.item(it.Path) != nil {
					continue
				}
				nr := snapshots.Item{Path: it.Path, Kind: it.Kind, Value: snapshots.None(), Attrs: it.Attrs, Deadband: it.Deadband,
					Indicator: it.Indicator, Provenance: snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: f.reason}}
				b.index[it.Path] = len(b.items)
				b.items = append(b.items, nr)
			}
		}
	}
	sort.Slice(b.items, func(i, j int) bool { return b.items[i].Path < b.items[j].Path })
	b.index = map[string]int{}
	for i, it := range b.items {
		b.index[it.Path] = i
	}
}

// identity records the controller's identity, firmware and mode.
func (b *build) identity(id identity) {
	ident := func(p string, v snapshots.Value) {
		b.add(snapshots.Item{Path: "identity/" + p, Kind: snapshots.KindIdentity, Value: v}, "identity", "")
	}
	ident("vendor", snapshots.String(vendorName(id.Vendor)))
	ident("device_type", snapshots.String(deviceTypeName(id.DeviceType)))
	ident("product_code", snapshots.Uint(uint64(id.ProductCode), ""))
	ident("product_name", snapshots.String(id.ProductName))
	ident("serial", snapshots.String(id.serial()))
	b.add(snapshots.Item{Path: "firmware/controller", Kind: snapshots.KindFirmware, Value: snapshots.String(id.revision()),
		Attrs: map[string]string{"catalog": id.ProductName}}, "identity", "")
	mode := func(p, v string) {
		b.add(snapshots.Item{Path: "mode/" + p, Kind: snapshots.KindMode, Value: snapshots.String(v)}, "mode", "")
	}
	mode("key_switch", keySwitch(id.Status))
	mode("operating", operatingMode(id.Status))
	// A major fault stops the controller: a mode. A minor fault (a low
	// battery, an overflow in a routine) leaves it running and comes and
	// goes by itself: information, never alerted.
	mode("faults", faultState(id.Status, false))
	b.add(snapshots.Item{Path: "info/minor_faults", Kind: snapshots.KindInfo, Value: snapshots.String(faultState(id.Status, true))}, "info", "")
}
