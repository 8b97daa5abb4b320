// Package s7 is plcwatch's read-only connector for Siemens S7-300/400 (and,
// as far as they allow, S7-1200/1500) CPUs over S7comm (ISO-on-TCP).
//
// It reads the CPU's identity, order code and firmware (SZL 0x001C and
// 0x0011), protection level and key switch (SZL 0x0232), operating mode
// (SZL 0x0424), module list (SZL 0x0D91), the block list with every OB,
// FB, FC and DB's block info (checksum, sizes, millisecond timestamps,
// author, family, name, version), the firmware of declared CPs/FMs, and
// declared setpoints in DBs or bit memory.
//
// Read-only by construction: the connector builds only read telegrams, and
// its transport decodes the kind of every telegram from its bytes and sends
// it through the gate, whose allowlist (see Allowlist) holds reads only.
// github.com/robinson/gos7 supplies the Transporter contract the transport
// implements; none of gos7's read calls are used, because each is wrong
// where plcwatch needs it (SZL replies over several PDUs come back empty,
// block lists stop after the first PDU, block dates lose their time of day,
// every mode but RUN reads as STOP, GetOrderCode panics) and its Read Var
// calls panic on any transporter but its own.
package s7

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
)

func init() {
	connectors.Register(connectors.Factory{
		Protocol:  "s7",
		Allowlist: Allowlist,
		Validate: func(dev *config.Device) error {
			_, err := decodeConfig(dev)
			return err
		},
		New: New,
	})
}

// New builds the connector for an S7 device; it does not touch the network.
func New(dev *config.Device, env connectors.Env) (connectors.Connector, error) {
	cfg, err := decodeConfig(dev)
	if err != nil {
		return nil, err
	}
	c := &connector{dev: dev, cfg: cfg, env: env, addr: endpoint(dev.Endpoint)}
	c.tr = c.transport(cfg.remote)
	return c, nil
}

type connector struct {
	dev  *config.Device
	cfg  *Config
	env  connectors.Env
	addr string
	tr   *transport
}

func (c *connector) transport(remote uint16) *transport {
	return newTransport(c.addr, c.cfg.local, remote, c.cfg.PDUSize, c.cfg.Timeout.D(), c.env.Gate)
}

// Close closes the connection; it is safe to call more than once.
func (c *connector) Close() error { return c.tr.close() }

// pathModeTransition is the info item holding when the CPU last changed
// its operating mode (SZL 0x0424), in CPU local time.
const pathModeTransition = "info/mode_transition"

// Item path prefixes each read owns.
var (
	prefStatus     = []string{"mode/cpu", pathModeTransition}
	prefProtection = []string{"protection/", "mode/key_switch"}
	prefCPUInfo    = []string{"identity/"}
	prefOrderCode  = []string{"hardware/cpu", "firmware/cpu", "firmware/boot_loader"}
	prefBlocks     = []string{"blocks/", "blocks"}
	prefModules    = []string{"modules/", "modules"}
	prefModFW      = []string{"firmware/module/"}
	prefSetpoints  = []string{"setpoints/"}
)

// run is one snapshot in progress.
type run struct {
	c       *connector
	ctx     context.Context
	prev    *snapshots.Snapshot
	items   map[string]snapshots.Item
	ident   snapshots.Identity
	reasons []string
	partial bool
	broken  error // the connection failure that stopped the run
}

// Snapshot reads the device. A failure of the connection part way stops
// the reads and returns a partial snapshot that marks what it could not
// read; an error means the CPU could not be reached at all.
func (c *connector) Snapshot(ctx context.Context, prev *snapshots.Snapshot) (s *snapshots.Snapshot, err error) {
	c.env.Gate.Reset()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			c.tr.close()
			s, err = nil, fmt.Errorf("s7 connector: internal error (please report): %v\n%s", p, debug.Stack())
		}
	}()
	c.tr.ctx = ctx
	if err := c.tr.open(ctx); err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", c.addr, err)
	}
	if !c.cfg.HoldConnection {
		defer c.tr.close()
	}
	r := &run{c: c, ctx: ctx, prev: prev, items: map[string]snapshots.Item{}, ident: snapshots.Identity{Vendor: "Siemens"}}
	rd := c.cfg.Reads
	// Cheap state first, then the logic fingerprints, then the rest.
	r.step("status", "mode/cpu", prefStatus, on(rd.Status), r.status)
	r.step("protection", "protection/level", prefProtection, on(rd.Protection), r.protection)
	r.step("CPU info", "identity/cpu", prefCPUInfo, on(rd.CPUInfo), r.cpuInfo)
	r.step("order code", "firmware/cpu", prefOrderCode, on(rd.OrderCode), r.orderCode)
	r.step("blocks", "blocks", prefBlocks, on(rd.Blocks), r.blocks)
	r.step("module list", "modules", prefModules, on(rd.ModuleList), r.modules)
	r.step("setpoints", "", prefSetpoints, on(rd.Setpoints) && len(c.cfg.setpoints) > 0, r.setpoints)
	r.step("module firmware", "", prefModFW, len(c.cfg.Modules) > 0, r.moduleFirmware)

	s = &snapshots.Snapshot{
		Device: c.dev.Name, Protocol: "s7", Endpoint: c.addr, TakenAt: start,
		Identity: r.ident, RulesDigest: c.env.Rules.Digest(),
		Status: snapshots.Status{Complete: !r.partial, Reasons: r.reasons},
	}
	for _, it := range r.items {
		s.Items = append(s.Items, it)
	}
	sort.Slice(s.Items, func(i, j int) bool { return s.Items[i].Path < s.Items[j].Path })
	s.Cost = c.env.Gate.Cost()
	s.Cost.Duration = time.Since(start)
	c.env.Log.Debug().Int("items", len(s.Items)).Int64("requests", s.Cost.Requests).Bool("complete", s.Status.Complete).Msg("s7 snapshot")
	return s, nil
}

// step runs one read. A connection failure stops every later step; a CPU
// that says it does not offer the read makes its items "not observable"
// and leaves the snapshot complete; any other failure makes it partial.
func (r *run) step(name, marker string, prefixes []string, enabled bool, f func() error) {
	if !enabled {
		return
	}
	if r.broken != nil {
		r.mark(prefixes, snapshots.SourceNotRead, "the connection failed earlier in this snapshot")
		return
	}
	err := f()
	if err == nil {
		return
	}
	var de *DeviceError
	switch {
	case errors.Is(err, errTransport):
		r.broken = err
		r.fail(name, err, prefixes)
	case errors.As(err, &de) && de.unsupported():
		reason := fmt.Sprintf("the CPU does not offer the %s: %v", name, err)
		// The marker stands for what could not be observed. When the
		// previous snapshot holds items of this read, they are marked
		// instead: a marker it did not have would be a new item, a change
		// made of a refusal.
		if marker != "" && (r.prev == nil || r.prev.Item(marker) != nil || !r.prevOwns(prefixes)) {
			if _, done := r.items[marker]; !done {
				r.add(snapshots.Item{Path: marker, Kind: markerKind(marker), Value: snapshots.None(),
					Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: reason}}, "", "")
			}
		}
		r.mark(prefixes, snapshots.SourceNotObservable, reason)
	default:
		// The CPU refused or garbled this read this time (protection,
		// resources, a reply that does not parse): its items are not read,
		// with the S7 error, and the snapshot is partial.
		if marker != "" && !errors.Is(err, errTransport) {
			if _, done := r.items[marker]; !done {
				r.add(snapshots.Item{Path: marker, Kind: markerKind(marker), Value: snapshots.None(),
					Provenance: snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: err.Error()}}, "", "")
			}
		}
		r.fail(name, err, prefixes)
	}
}

func (r *run) fail(name string, err error, prefixes []string) {
	r.partial = true
	r.reasons = append(r.reasons, fmt.Sprintf("%s: %v", name, err))
	r.mark(prefixes, snapshots.SourceNotRead, err.Error())
}

// failItem records one item that could not be read: not read, with the
// reason, and the snapshot partial; the rest of the snapshot goes on.
func (r *run) failItem(it snapshots.Item, nodeClass, dataType string, err error) {
	r.partial = true
	r.reasons = append(r.reasons, fmt.Sprintf("%s: %v", it.Path, err))
	it.Value = snapshots.None()
	it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: err.Error()}
	r.add(it, nodeClass, dataType)
}

func markerKind(path string) snapshots.Kind {
	switch {
	case strings.HasPrefix(path, "mode/"):
		return snapshots.KindMode
	case strings.HasPrefix(path, "protection/"):
		return snapshots.KindProtection
	case strings.HasPrefix(path, "identity/"):
		return snapshots.KindIdentity
	case strings.HasPrefix(path, "firmware/"):
		return snapshots.KindFirmware
	case path == "modules":
		return snapshots.KindHardware
	}
	return snapshots.KindLogic
}

// mark adds, for every item of the previous snapshot under prefixes that
// this run did not produce, an item with no value and the given source:
// a failed read is never evidence that something was removed.
func (r *run) mark(prefixes []string, src snapshots.Source, reason string) {
	if r.prev == nil {
		return
	}
	for _, it := range r.prev.Items {
		if _, done := r.items[it.Path]; done || !owned(it.Path, prefixes) {
			continue
		}
		r.items[it.Path] = snapshots.Item{Path: it.Path, Kind: it.Kind, Value: snapshots.None(),
			Provenance: snapshots.Provenance{Source: src, Reason: reason}}
	}
}

// prevOwns reports whether the previous snapshot has an item under the
// prefixes.
func (r *run) prevOwns(prefixes []string) bool {
	if r.prev == nil {
		return false
	}
	for _, it := range r.prev.Items {
		if owned(it.Path, prefixes) {
			return true
		}
	}
	return false
}

func owned(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
			return true
		}
	}
	return false
}

// add classifies an item with the configured rules and records it.
func (r *run) add(it snapshots.Item, nodeClass, dataType string) {
	name := it.Path[strings.LastIndexByte(it.Path, '/')+1:]
	res := r.c.env.Rules.Classify(classify.Target{Path: it.Path, Name: name, NodeClass: nodeClass, DataType: dataType},
		classify.Result{Kind: it.Kind, Deadband: it.Deadband, Unit: it.Value.Unit})
	if res.Ignore {
		return
	}
	it.Kind = res.Kind
	if res.Rule >= 0 {
		if res.Deadband != 0 {
			it.Deadband = res.Deadband
		}
		if _, numeric := it.Value.Number(); numeric && res.Unit != "" {
			it.Value.Unit = res.Unit
		}
		if res.Volatile {
			it.Volatile, it.Value = true, snapshots.None()
		}
	}
	if it.Provenance.Source == "" {
		it.Provenance.Source = snapshots.SourceRead
	}
	r.items[it.Path] = it
}

func (r *run) status() error {
	l, err := readSZL(r.ctx, r.c.tr, 0x0424, 0x0000)
	if err != nil {
		return err
	}
	st, err := decodeStatus(l)
	if err != nil {
		return fmt.Errorf("reading SZL 0x0424: %w", err)
	}
	attrs := map[string]string{"code": fmt.Sprintf("0x%X", st.code)}
	if st.detail != "" {
		attrs["detail"] = st.detail
	}
	r.add(snapshots.Item{Path: "mode/cpu", Kind: snapshots.KindMode, Value: snapshots.String(st.mode), Attrs: attrs}, "mode", "")
	if !st.transition.IsZero() {
		// Every restart moves the time of the last mode transition, so it
		// is information of its own and never part of the mode item: a
		// restart with nothing else changed must change nothing.
		r.add(snapshots.Item{Path: pathModeTransition, Kind: snapshots.KindInfo, Value: snapshots.String(cpuTime(st.transition)),
			Attrs: map[string]string{"source": "SZL 0x0424"}}, "info", "")
	}
	return nil
}

func (r *run) protection() error {
	l, err := readSZL(r.ctx, r.c.tr, 0x0232, 0x0004)
	if err != nil {
		return err
	}
	p, err := decodeProtection(l)
	if err != nil {
		return fmt.Errorf("reading SZL 0x0232: %w", err)
	}
	r.add(snapshots.Item{Path: "protection/level", Kind: snapshots.KindProtection, Value: snapshots.Uint(uint64(p.level), ""),
		Attrs: map[string]string{"switch_level": strconv.Itoa(int(p.switchLevel)), "param_level": strconv.Itoa(int(p.paramLevel))}}, "protection", "")
	ks, ok := keySwitchNames()[p.keySwitch]
	if !ok {
		ks = strconv.Itoa(int(p.keySwitch))
	}
	r.add(snapshots.Item{Path: "mode/key_switch", Kind: snapshots.KindMode, Value: snapshots.String(ks),
		Attrs: map[string]string{"startup_switch": strconv.Itoa(int(p.startup))}}, "mode", "")
	return nil
}

// cpuInfoKinds says what each SZL 0x001C text is.
var cpuInfoKinds = sync.OnceValue(func() map[string]snapshots.Kind {
	return map[string]snapshots.Kind{
		"module_type": snapshots.KindIdentity, "as_name": snapshots.KindIdentity, "module_name": snapshots.KindIdentity,
		"plant_id": snapshots.KindIdentity, "location": snapshots.KindIdentity, "copyright": snapshots.KindIdentity,
		"serial": snapshots.KindHardware, "memory_card_serial": snapshots.KindHardware,
	}
})

func (r *run) cpuInfo() error {
	l, err := readSZL(r.ctx, r.c.tr, 0x001C, 0x0000)
	if err != nil {
		return err
	}
	m, err := decodeComponents(l)
	if err != nil {
		return fmt.Errorf("reading SZL 0x001C: %w", err)
	}
	for k, v := range m {
		r.add(snapshots.Item{Path: "identity/" + k, Kind: cpuInfoKinds()[k], Value: snapshots.String(v)}, "identity", "")
	}
	r.ident.Model, r.ident.Serial, r.ident.Name = m["module_type"], m["serial"], m["as_name"]
	return nil
}

func (r *run) orderCode() error {
	l, err := readSZL(r.ctx, r.c.tr, 0x0011, 0x0000)
	if err != nil {
		return err
	}
	id, err := decodeIdentity(l)
	if err != nil {
		return fmt.Errorf("reading SZL 0x0011: %w", err)
	}
	if id.orderCode != "" {
		r.add(snapshots.Item{Path: "hardware/cpu", Kind: snapshots.KindHardware, Value: snapshots.String(id.orderCode),
			Attrs: map[string]string{"hardware_version": strconv.Itoa(id.hardware)}}, "module", "")
		if r.ident.Model == "" {
			r.ident.Model = id.orderCode
		}
	}
	if id.firmware != "" {
		r.add(snapshots.Item{Path: "firmware/cpu", Kind: snapshots.KindFirmware, Value: snapshots.String(id.firmware),
			Attrs: map[string]string{"order_code": id.orderCode}}, "firmware", "")
		r.ident.Firmware = id.firmware
	}
	if id.bootLoader != "" {
		r.add(snapshots.Item{Path: "firmware/boot_loader", Kind: snapshots.KindFirmware, Value: snapshots.String(id.bootLoader)}, "firmware", "")
	}
	return nil
}

// blocks lists every block type, then reads the block info of each OB, FB,
// FC and DB. Items are added as they are read, so a failure part way keeps
// what was read and marks the rest "not read".
func (r *run) blocks() error {
	ctx, w := r.ctx, r.c.tr
	counts, err := listAll(ctx, w)
	if err != nil {
		return err
	}
	withInfo := on(r.c.cfg.Reads.BlockInfo)
	lists := map[string][]int{}
	for _, t := range blockTypes {
		if n, known := counts[t]; known && n == 0 {
			continue
		}
		nums, err := listBlocks(ctx, w, t)
		if err != nil {
			return err
		}
		if n, known := counts[t]; known && n != len(nums) {
			r.partial = true
			r.reasons = append(r.reasons, fmt.Sprintf("blocks: the CPU counts %d %s blocks but listed %d", n, t, len(nums)))
		}
		lists[t] = nums
		if !withInfo || !hasInfo(t) {
			for _, n := range nums {
				r.addBlock(t, n, nil)
			}
		}
	}
	if !withInfo {
		return nil
	}
	for _, t := range blockTypes {
		if !hasInfo(t) {
			continue
		}
		for _, n := range lists[t] {
			bi, err := readBlockInfo(ctx, w, t, n)
			switch {
			case err == nil:
				r.addBlock(t, n, &bi)
			case errors.Is(err, errTransport):
				return err
			default:
				// The CPU refused this one block, or its reply does not
				// parse, or it listed the block and then said it does not
				// exist (0xD209): this block is not read, the others go
				// on. A block really deleted is missing from the next
				// listing; an answer that contradicts itself is no removal.
				r.failItem(snapshots.Item{Path: blockPath(t, n), Kind: snapshots.KindLogic, Attrs: map[string]string{"type": t}}, "block", t, err)
			}
		}
	}
	return r.confirmUnlisted(lists)
}

// confirmUnlisted asks for the block info of every OB, FB, FC and DB of the
// previous snapshot that the lists left out. A CPU that answers has the
// block: its list was incomplete (as a CPU's list can be for a moment,
// with counts that agree with it), so the block is recorded from its info
// and the snapshot is partial, never "logic removed". "Block does not
// exist" (0xD209) confirms the removal; any other refusal leaves the block
// not read.
func (r *run) confirmUnlisted(lists map[string][]int) error {
	if r.prev == nil {
		return nil
	}
	for _, it := range r.prev.Items {
		t, n, ok := parseBlockPath(it.Path)
		if !ok || !hasInfo(t) {
			continue
		}
		if _, done := r.items[it.Path]; done {
			continue
		}
		if _, listed := slices.BinarySearch(lists[t], n); listed {
			continue
		}
		bi, err := readBlockInfo(r.ctx, r.c.tr, t, n)
		var de *DeviceError
		switch {
		case err == nil:
			r.addBlock(t, n, &bi)
			r.partial = true
			r.reasons = append(r.reasons, fmt.Sprintf("blocks: the CPU did not list %s%d but answers its block info", t, n))
		case errors.Is(err, errTransport):
			return err
		case errors.As(err, &de) && de.Code == 0xD209:
			// Removed: the CPU confirms it.
		default:
			r.failItem(snapshots.Item{Path: it.Path, Kind: snapshots.KindLogic, Attrs: map[string]string{"type": t}}, "block", t,
				fmt.Errorf("not listed, and its block info could not confirm a removal: %w", err))
		}
	}
	return nil
}

// parseBlockPath splits a block item's path, "blocks/FC12", into its type
// and number.
func parseBlockPath(path string) (typ string, num int, ok bool) {
	rest, found := strings.CutPrefix(path, "blocks/")
	if !found {
		return "", 0, false
	}
	i := strings.IndexFunc(rest, func(c rune) bool { return c >= '0' && c <= '9' })
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(rest[i:])
	if err != nil {
		return "", 0, false
	}
	return rest[:i], n, true
}

func hasInfo(t string) bool { return t == "OB" || t == "FB" || t == "FC" || t == "DB" }

func blockPath(t string, n int) string { return "blocks/" + t + strconv.Itoa(n) }

// addBlock records a block: with its info, the checksum is the value and
// the timestamps are metadata, so a re-download of identical code changes
// only meta.* attributes.
func (r *run) addBlock(t string, n int, bi *blockInfo) {
	it := snapshots.Item{Path: blockPath(t, n), Kind: snapshots.KindLogic, Value: snapshots.None(), Attrs: map[string]string{"type": t}}
	if t == "SFC" || t == "SFB" {
		it.Kind = snapshots.KindFirmware // system blocks come with the CPU's firmware
	}
	if t == "OB" {
		it.Attrs[snapshots.AttrRole] = snapshots.RoleTasking
		it.Attrs["ob_class"] = obClass(n)
	}
	if bi != nil {
		// The checksum fingerprints the block's content itself, so a
		// changed checksum is a logic change, not an indicator-only move.
		it.Value = snapshots.Bytes([]byte{byte(bi.checksum >> 8), byte(bi.checksum)})
		lang, ok := languages()[bi.language]
		if !ok {
			lang = fmt.Sprintf("0x%02X", bi.language)
		}
		a := it.Attrs
		a["language"] = lang
		a["load_size"] = strconv.Itoa(int(bi.loadSize))
		a["mc7_size"] = strconv.Itoa(bi.mc7)
		a["local_data"] = strconv.Itoa(bi.localData)
		a["sbb_length"] = strconv.Itoa(bi.sbb)
		a["flags"] = fmt.Sprintf("0x%02X", bi.flags)
		a["version"] = fmt.Sprintf("%d.%d", bi.version>>4, bi.version&0x0F)
		for k, v := range map[string]string{"author": bi.author, "family": bi.family, "name": bi.name} {
			if v != "" {
				a[k] = v
			}
		}
		if bi.knowHow {
			a["know_how_protected"] = "true"
		}
		a[snapshots.MetaPrefix+"code_time"] = cpuTime(bi.codeTime)
		a[snapshots.MetaPrefix+"interface_time"] = cpuTime(bi.intfTime)
	}
	r.add(it, "block", t)
}

// obClass names what an organization block is started by.
func obClass(n int) string {
	switch {
	case n == 1:
		return "program_cycle"
	case n >= 10 && n <= 17:
		return "time_of_day"
	case n >= 20 && n <= 23:
		return "time_delay"
	case n >= 30 && n <= 38:
		return "cyclic_interrupt"
	case n >= 40 && n <= 47:
		return "hardware_interrupt"
	case n >= 80 && n <= 87:
		return "asynchronous_error"
	case n >= 100 && n <= 102:
		return "startup"
	case n == 121 || n == 122:
		return "synchronous_error"
	}
	return "other"
}

// cpuTime formats a CPU timestamp: S7 CPUs keep local wall-clock time
// without a zone, so none is given.
func cpuTime(t time.Time) string { return t.Format("2006-01-02T15:04:05.000") }

func (r *run) modules() error {
	for _, rack := range r.c.cfg.Racks {
		l, err := readSZL(r.ctx, r.c.tr, 0x0D91, uint16(rack))
		if err != nil {
			return err
		}
		mods, err := decodeModules(l)
		if err != nil {
			return fmt.Errorf("reading SZL 0x0D91: %w", err)
		}
		for _, m := range mods {
			path := fmt.Sprintf("modules/R%dS%d", m.rack, m.slot)
			if m.submodule != 0 {
				path += fmt.Sprintf("/%d", m.submodule)
			}
			present := m.status&0x02 != 0 && m.status&0x04 == 0
			r.add(snapshots.Item{Path: path, Kind: snapshots.KindHardware, Value: snapshots.String(fmt.Sprintf("0x%04X", m.actual)),
				Attrs: map[string]string{
					"expected_type":   fmt.Sprintf("0x%04X", m.expected),
					"logical_address": strconv.Itoa(int(m.logical)),
					"present":         strconv.FormatBool(present),
				}}, "module", "")
		}
	}
	return nil
}

// moduleFirmware reads each declared CP/FM's SZL 0x0011 over a connection
// to its own rack and slot. A module that cannot be read makes the
// snapshot partial without stopping it.
func (r *run) moduleFirmware() error {
	for _, m := range r.c.cfg.Modules {
		path := "firmware/module/" + m.Name
		ct := connectionTypes()[r.c.cfg.ConnectionType]
		tr := r.c.transport(remoteTSAP(ct, m.Rack, m.Slot))
		tr.ctx = r.ctx
		id, err := func() (identity, error) {
			defer tr.close()
			if err := tr.open(r.ctx); err != nil {
				return identity{}, err
			}
			l, err := readSZLAs(r.ctx, tr, "module SZL 0x0011", 0x0011, 0x0000)
			if err != nil {
				return identity{}, err
			}
			return decodeIdentity(l)
		}()
		if err != nil {
			r.fail("module "+m.Name, err, []string{path})
			continue
		}
		r.add(snapshots.Item{Path: path, Kind: snapshots.KindFirmware, Value: snapshots.String(id.firmware), Attrs: map[string]string{
			snapshots.AttrScope: snapshots.ScopeModule, "order_code": id.orderCode,
			"hardware_version": strconv.Itoa(id.hardware), "rack": strconv.Itoa(m.Rack), "slot": strconv.Itoa(m.Slot),
		}}, "module", "")
	}
	return nil
}

// segment is bytes read from an area, or why they could not be read: the
// CPU's return code for the item, or the failure of its whole request.
// shared is set when the failure may belong to another setpoint than the
// one asking: the item spans several setpoints (packReads merged them) or
// the whole request of several items failed.
type segment struct {
	item   varItem
	data   []byte
	err    error
	shared bool
}

// readRanges reads byte ranges with as few Read Var requests as the PDU
// allows (merging touching ranges when merge is set). Only a connection
// failure is an error; the CPU's refusals are in the segments.
func (r *run) readRanges(ranges []varItem, merge bool) ([]segment, error) {
	var segs []segment
	for _, pack := range packReads(ranges, r.c.tr.pduSize(), merge) {
		data, codes, err := readVars(r.ctx, r.c.tr, objectOf(pack), pack)
		if errors.Is(err, errTransport) {
			return segs, err
		}
		for i, it := range pack {
			sg := segment{item: it, err: err, shared: err != nil && len(pack) > 1}
			if err == nil {
				sg.data = data[i]
				if codes[i] != 0xFF {
					sg.err = &DeviceError{Code: uint16(codes[i]), Item: true}
				}
			}
			segs = append(segs, sg)
		}
	}
	return segs, nil
}

func (r *run) setpoints() error {
	sps := r.c.cfg.setpoints
	ranges := make([]varItem, len(sps))
	for i, sp := range sps {
		ranges[i] = varItem{area: sp.area, db: sp.db, start: sp.start, count: sp.size}
	}
	segs, err := r.readRanges(ranges, true)
	if err != nil {
		return err
	}
	// A range the CPU refused may hold setpoints it would answer on their
	// own (one setpoint beyond the end of a DB shortened by a download
	// makes the CPU refuse the merged range with 0x05): those are asked
	// again, each alone, so that the refusal costs only the setpoint it
	// belongs to.
	from := make([][]segment, len(sps))
	var again []varItem
	var retried []int
	for i, sp := range sps {
		from[i] = segs
		if _, seg := gather(segs, sp); seg != nil && (seg.shared || seg.item != ranges[i]) && !readVarNotOffered(seg.err) {
			again = append(again, ranges[i])
			retried = append(retried, i)
		}
	}
	var broken error
	if len(again) > 0 {
		alone, err := r.readRanges(again, false)
		if err != nil {
			broken = err
		}
		for _, i := range retried {
			from[i] = nil
			for _, sg := range alone {
				if sg.item.area == ranges[i].area && sg.item.db == ranges[i].db && sg.item.start >= ranges[i].start &&
					sg.item.start+sg.item.count <= ranges[i].start+ranges[i].count {
					from[i] = append(from[i], sg)
				}
			}
			if broken != nil && len(from[i]) == 0 {
				from[i] = []segment{{item: ranges[i], err: broken}}
			}
		}
	}
	for i, sp := range sps {
		path := "setpoints/" + sp.Name
		b, failed := gather(from[i], sp)
		attrs := map[string]string{"address": strings.ToUpper(strings.ReplaceAll(sp.Address, " ", "")), snapshots.AttrDataType: sp.Type}
		if failed != nil && readVarNotOffered(failed.err) {
			// The CPU does not offer Read Var at all: not observable, as
			// the block functions an S7-1200/1500 does not offer.
			r.add(snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Value: snapshots.None(), Attrs: attrs, Deadband: sp.Deadband,
				Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: fmt.Sprintf(
					"reading %s: the CPU does not offer Read Var (an S7-1200/1500 offers it only when its protection settings permit PUT/GET access from remote partners): %v",
					sp.Address, failed.err)}}, "setpoint", sp.Type)
			continue
		}
		if failed != nil {
			// One item the CPU refused (no such DB, access denied, type
			// not supported) costs that item only.
			r.failItem(snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Attrs: attrs, Deadband: sp.Deadband}, "setpoint", sp.Type,
				fmt.Errorf("reading %s: %w", sp.Address, failed.err))
			continue
		}
		v, err := decodeValue(sp, b)
		if err != nil {
			// Bytes that are no value the CPU could hold: not observable,
			// with the reason, and every byte kept so that any change to
			// them is still a change.
			attrs["raw"] = hex.EncodeToString(b)
			r.add(snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Value: snapshots.None(), Attrs: attrs,
				Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: fmt.Sprintf("reading %s: %v", sp.Address, err)}}, "setpoint", sp.Type)
			continue
		}
		if m, ok := declaredMax(sp, b); ok && m != sp.Length {
			// The CPU's STRING[n] is not the one configured: recorded, so
			// that a re-declared string is a change even with the same text.
			attrs["max_length"] = strconv.Itoa(m)
		}
		r.add(snapshots.Item{Path: path, Kind: snapshots.KindSetpoint, Value: v, Attrs: attrs, Deadband: sp.Deadband}, "setpoint", sp.Type)
	}
	return broken
}

// readVarNotOffered reports whether err is the CPU refusing the Read Var
// job itself as a function it does not offer (0x8104 in the job header),
// not one item of it.
func readVarNotOffered(err error) bool {
	var de *DeviceError
	return errors.As(err, &de) && !de.Item && de.unsupported()
}

// declaredMax is the maximum length a STRING or WSTRING's header declares.
func declaredMax(sp setpoint, b []byte) (int, bool) {
	switch {
	case sp.Type == "STRING" && len(b) >= 1:
		return int(b[0]), true
	case sp.Type == "WSTRING" && len(b) >= 2:
		return int(b[0])<<8 | int(b[1]), true
	}
	return 0, false
}

// gather collects a setpoint's bytes from the segments read. failed is
// the first segment among them that could not be read, or a segment with
// the setpoint's range when the CPU returned fewer bytes than it spans.
func gather(segs []segment, sp setpoint) (b []byte, failed *segment) {
	out := make([]byte, sp.size)
	got := 0
	for i := range segs {
		s := &segs[i]
		it := s.item
		if it.area != sp.area || it.db != sp.db || it.start >= sp.start+sp.size || it.start+it.count <= sp.start {
			continue
		}
		if s.err != nil {
			return nil, s
		}
		lo, hi := max(it.start, sp.start), min(it.start+it.count, sp.start+sp.size)
		got += copy(out[lo-sp.start:hi-sp.start], s.data[lo-it.start:hi-it.start])
	}
	if got < sp.size {
		return nil, &segment{item: varItem{sp.area, sp.db, sp.start, sp.size}, err: fmt.Errorf("the CPU returned %d of %d bytes", got, sp.size)}
	}
	return out, nil
}

// objectOf names a Read Var's target coarsely, for plans: "DB10" or
// "DB10+DB11+M".
func objectOf(items []varItem) string {
	seen := map[string]bool{}
	var names []string
	for _, it := range items {
		n := "M"
		if it.area == 0x84 {
			n = "DB" + strconv.Itoa(it.db)
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return strings.Join(names, "+")
}

// decodeValue turns a setpoint's big-endian bytes into a typed value. Text
// is decoded as the CPU means it (see text.go); bytes that are not a valid
// STRING, WSTRING or WCHAR give a *TextError.
func decodeValue(sp setpoint, b []byte) (snapshots.Value, error) {
	u := uint64(0)
	if len(b) <= 8 {
		for _, x := range b {
			u = u<<8 | uint64(x)
		}
	}
	unit := sp.Unit
	switch sp.Type {
	case "BOOL":
		return snapshots.Bool(b[0]&(1<<sp.bit) != 0), nil
	case "CHAR":
		return snapshots.String(decodeCP1252(b[:1])), nil
	case "WCHAR":
		s, err := decodeUTF16BE("WCHAR", b[:2])
		if err != nil {
			return snapshots.None(), err
		}
		return snapshots.String(s), nil
	case "BYTE", "WORD", "DWORD", "USINT", "UINT", "UDINT":
		return snapshots.Uint(u, unit), nil
	case "SINT":
		return snapshots.Int(int64(int8(u)), unit), nil
	case "INT":
		return snapshots.Int(int64(int16(u)), unit), nil
	case "DINT":
		return snapshots.Int(int64(int32(u)), unit), nil
	case "TIME":
		if unit == "" {
			unit = "ms"
		}
		return snapshots.Int(int64(int32(u)), unit), nil
	case "REAL":
		return snapshots.Float32(math.Float32frombits(uint32(u)), unit), nil
	case "LREAL":
		return snapshots.Float(math.Float64frombits(u), unit), nil
	case "STRING":
		s, err := decodeString(b, sp.Length)
		if err != nil {
			return snapshots.None(), err
		}
		return snapshots.String(s), nil
	case "WSTRING":
		s, err := decodeWString(b, sp.Length)
		if err != nil {
			return snapshots.None(), err
		}
		return snapshots.String(s), nil
	}
	return snapshots.Bytes(b), nil
}
