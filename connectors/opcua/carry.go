package opcua

import (
	"strings"
	"sync"

	"github.com/gopcua/opcua/ua"

	"github.com/plcwatch/plcwatch/snapshots"
)

// What is carried forward (see docs/OPCUA.md): a variable's DataType and
// AccessLevel, the static attributes that decide its data type attr, its
// access attr and its classification, are read in full when the previous
// snapshot has no usable record of them, and carried from it otherwise.
// The address space is re-browsed every time (added, removed and renamed
// nodes are seen at once) and the Value of every variable that is not
// volatile is read every time. A carried attribute that changes on the
// server is seen at the next full read: the first snapshot, a read with no
// usable previous snapshot, a server whose software, build or start time
// moved, or a forced full read (daemon.full_read_every).

// serverChange lists the server items whose movement means the static
// attributes may have changed with them: nothing is carried then.
var serverChange = []string{"server/software_version", "server/build_number", "server/start_time", "server/product_uri"}

// decideCarry sets which variables of prev may have their static
// attributes carried forward into this snapshot; the server items must
// already be recorded.
func (b *snap) decideCarry(prev *snapshots.Snapshot) {
	switch {
	case prev == nil:
		b.carryWhy = "no previous snapshot (a first or a forced full read)"
		return
	case prev.Protocol != "opcua" || prev.Endpoint != b.s.Endpoint:
		b.carryWhy = "the previous snapshot is of another endpoint"
		return
	}
	for _, path := range serverChange {
		var cur *snapshots.Item
		for i := range b.s.Items {
			if b.s.Items[i].Path == path {
				cur = &b.s.Items[i]
			}
		}
		old := prev.Item(path)
		if cur == nil || old == nil || cur.Value != old.Value || source(cur) != source(old) {
			b.carryWhy = path + " moved: the server restarted or was updated"
			return
		}
	}
	b.carry = map[string]*snapshots.Item{}
	for i := range prev.Items {
		it := &prev.Items[i]
		if strings.HasPrefix(it.Path, "opcua/") && carryable(it) {
			b.carry[it.Attrs[snapshots.AttrNodeID]] = it
		}
	}
	b.carryFrom = prev.ID
}

// source is an item's provenance source, an empty one read (as stored by
// a snapshot that predates provenance).
func source(it *snapshots.Item) snapshots.Source {
	if it.Provenance.Source == "" {
		return snapshots.SourceRead
	}
	return it.Provenance.Source
}

// carryable reports whether an item's static attributes were read (or
// carried) and can stand for the next snapshot's: its value was read or
// carried (an empty source is read: add fills it in), and its DataType and
// AccessLevel are known.
func carryable(it *snapshots.Item) bool {
	switch it.Provenance.Source {
	case "", snapshots.SourceRead, snapshots.SourceCarried:
	default:
		return false
	}
	if it.Attrs[snapshots.AttrNodeID] == "" || it.Attrs[snapshots.AttrDataType] == "" {
		return false
	}
	a, ok := parseAccess(it.Attrs["access"])
	return ok && a != 0
}

// carriedProvenance marks an item whose static attributes come from prev.
func (b *snap) carriedProvenance(prev *snapshots.Item, volatile bool) snapshots.Provenance {
	from := b.carryFrom
	if prev.Provenance.Source == snapshots.SourceCarried && prev.Provenance.From != "" {
		from = prev.Provenance.From
	}
	why := "DataType and AccessLevel carried, Value read; node browsed"
	if volatile {
		why = "DataType and AccessLevel carried, value not captured (volatile); node browsed"
	}
	return snapshots.Provenance{Source: snapshots.SourceCarried, From: from, Reason: why + " (re-read at the next full read)"}
}

// accessInfo is a variable's AccessLevel and whether it is known.
type accessInfo struct {
	level byte
	known bool
}

// prevAccess is the AccessLevel a carryable item recorded.
func prevAccess(it *snapshots.Item) accessInfo {
	a, ok := parseAccess(it.Attrs["access"])
	return accessInfo{level: a, known: ok}
}

// parseAccess reverses accessString.
func parseAccess(s string) (byte, bool) {
	if s == "" {
		return 0, false
	}
	if s == "none" {
		return 0, true
	}
	var a byte
	for _, part := range strings.Split(s, "+") {
		found := false
		for _, f := range accessFlags {
			if f.name == part {
				a |= byte(f.bit)
				found = true
			}
		}
		if !found {
			return 0, false
		}
	}
	return a, true
}

// nextReads is what the variables' reads of the next snapshot of an
// unchanged server will be: one operation per carried variable that is
// not volatile, three per variable read in full, one per EngineeringUnits
// property. Sizes come from the reads this snapshot made: the request
// header gopcua filled in and the bytes each request cost beyond its
// encoded body (the secure channel's framing), so that under security
// None the predicted bytes sent are exact; under Sign or SignAndEncrypt
// the padding of each message may differ by up to one cipher block.
type nextReads struct {
	// batches are the Reads of the variables in the order readVars sends
	// them: per browse root, the Values (and full reads), then the
	// re-reads of carried attributes that a Value contradicts.
	batches []readBatch
	cur, re readBatch
	// From the last Read this snapshot made (seen: there was one).
	seen            bool
	respHdr         *ua.ResponseHeader
	overOut, overIn int
}

// readBatch is the operations readVars sends in one call of read (split
// into requests by the limits), with the DataValues this snapshot got for
// them (to size the responses).
type readBatch struct {
	ops []*ua.ReadValueID
	dvs []*ua.DataValue
}

var nextAttrs = []ua.AttributeID{ua.AttributeIDValue, ua.AttributeIDDataType, ua.AttributeIDAccessLevel}

// add plans n operations (1: Value; 3: Value, DataType, AccessLevel) on v,
// with the DataValues this snapshot got for them (to size the response).
func (nr *nextReads) add(v *node, n int, dvs ...*ua.DataValue) {
	nr.cur.add(v, nextAttrs[:n], dvs)
}

// addRecheck plans the re-read of v's DataType and AccessLevel that follows
// when its Value contradicts the carried DataType (see retyped).
func (nr *nextReads) addRecheck(v *node, dtype, access *ua.DataValue) {
	nr.re.add(v, nextAttrs[1:], []*ua.DataValue{dtype, access})
}

// endVars closes the batches of one readVars call.
func (nr *nextReads) endVars() {
	for _, b := range []readBatch{nr.cur, nr.re} {
		if len(b.ops) > 0 {
			nr.batches = append(nr.batches, b)
		}
	}
	nr.cur, nr.re = readBatch{}, readBatch{}
}

func (rb *readBatch) add(v *node, attrs []ua.AttributeID, dvs []*ua.DataValue) {
	for i, a := range attrs {
		rb.ops = append(rb.ops, readOp(v.id, a))
		var dv *ua.DataValue
		if i < len(dvs) {
			dv = dvs[i]
		}
		rb.dvs = append(rb.dvs, dv)
	}
}

// observe records one answered Read: its response header and the bytes
// it cost beyond its encoded body, both ways. gopcua sends a copy of req
// with the request header filled in, which is the same size in every
// request of a session: it is part of that overhead.
func (nr *nextReads) observe(req *ua.ReadRequest, resp *ua.ReadResponse, out, in int) {
	ro, err1 := ua.Encode(req)
	ri, err2 := ua.Encode(resp)
	if err1 != nil || err2 != nil || out == 0 {
		return
	}
	nr.seen, nr.respHdr = true, resp.ResponseHeader
	nr.overOut, nr.overIn = out-len(ro), in-len(ri)
}

// cost returns byKind with the variables' reads replaced by the planned
// ones, or nil when no Read was observed to size them.
func (nr *nextReads) cost(byKind []snapshots.RequestCount, lim *opLimits) []snapshots.RequestCount {
	if !nr.seen {
		return nil
	}
	plan := snapshots.RequestCount{Kind: KindRead, Object: "variables"}
	for _, rb := range nr.batches {
		size := func(i int) int { return nodeIDSize(rb.ops[i].NodeID) + 10 }
		for _, ch := range chunks(len(rb.ops), lim.readOps, size) {
			for lo := ch[0]; lo < ch[1]; {
				hi := min(lo+lim.readOps, ch[1])
				req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither, NodesToRead: rb.ops[lo:hi]}
				results := make([]*ua.DataValue, hi-lo)
				for i := range results {
					if results[i] = rb.dvs[lo+i]; results[i] == nil {
						results[i] = &ua.DataValue{}
					}
				}
				resp := &ua.ReadResponse{ResponseHeader: nr.respHdr, Results: results}
				ro, err1 := ua.Encode(req)
				ri, err2 := ua.Encode(resp)
				if err1 != nil || err2 != nil {
					return nil
				}
				plan.Count++
				plan.BytesOut += int64(len(ro) + nr.overOut)
				plan.BytesIn += int64(len(ri) + nr.overIn)
				lo = hi
			}
		}
	}
	out := make([]snapshots.RequestCount, 0, len(byKind)+1)
	placed := false
	for _, rc := range byKind {
		if rc.Kind == KindRead && rc.Object == "variables" {
			rc, placed = plan, true
			if rc.Count == 0 {
				continue
			}
		}
		out = append(out, rc)
	}
	if !placed && plan.Count > 0 {
		out = append(out, plan)
	}
	return out
}

// readOp is one ReadValueID as gopcua sends it (its Read fills in an empty
// DataEncoding), so that its encoded size is the size on the wire.
func readOp(n *ua.NodeID, a ua.AttributeID) *ua.ReadValueID {
	return &ua.ReadValueID{NodeID: n, AttributeID: a, DataEncoding: &ua.QualifiedName{}}
}

// builtinTypes maps the names of the concrete built-in DataTypes
// (namespace 0, ids 1 to 21: Boolean to LocalizedText) to the Variant type
// that carries their values: Part 6 §5.1.2 numbers them alike.
var builtinTypes = sync.OnceValue(func() map[string]ua.TypeID {
	m := map[string]ua.TypeID{}
	for i := uint32(1); i <= 21; i++ {
		m[typeName(i)] = ua.TypeID(i)
	}
	return m
})

// retyped reports whether a Good value contradicts dtype, a DataType name
// as dataTypeName gives it: dtype is a concrete built-in type and the
// Variant is of another (a variable deleted and downloaded again under
// the same NodeId with a new type). Abstract, enumerated and structured
// DataTypes are never contradicted.
func retyped(dtype string, r readResult) bool {
	if r.failure() != "" || r.dv.Value == nil || r.dv.Value.Type() == ua.TypeIDNull {
		return false
	}
	want, ok := builtinTypes()[dtype]
	return ok && r.dv.Value.Type() != want
}
