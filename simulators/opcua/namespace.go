package opcua

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
)

// plantNS is the simulator's own namespace. It implements server.NameSpace
// itself rather than using gopcua's NodeNameSpace, so that every attribute
// is explicit and correct (DataType as a NodeId, AccessLevel, type
// definitions in browse results) and values live in one mutex-guarded state
// that mutators may change while clients read.
type plantNS struct {
	uri string
	idx uint16

	// tree guards byID, byPath and every node's refs: the mutators AddNode
	// and RemoveNode change them while clients browse.
	tree   sync.RWMutex
	byID   map[string]*simNode // by NodeID string
	byPath map[string]*simNode // by browse path "Plant/Tank1/Level"
	roots  []*simNode

	mu    sync.Mutex
	churn int // bumped by ChurnLive
	start time.Time
}

type simNode struct {
	id       *ua.NodeID
	path     string
	name     string
	class    ua.NodeClass
	typeDef  uint32   // type definition (ns 0)
	dataType uint32   // variables only (ns 0)
	access   byte     // guarded by plantNS.mu once built
	refs     []simRef // forward hierarchical references
	parent   *simNode

	// Mutable state, guarded by plantNS.mu.
	value  any // current value (variables)
	status ua.StatusCode
	huge   bool
	live   *Live
	prog   *Program // programs: current content

	stub *server.Node
}

type simRef struct {
	refType uint32
	target  *simNode
}

var typeIDs = sync.OnceValue(func() map[string]uint32 {
	return map[string]uint32{
		"Boolean": id.Boolean, "Int16": id.Int16, "Int32": id.Int32, "Int64": id.Int64, "UInt16": id.UInt16,
		"UInt32": id.UInt32, "UInt64": id.UInt64, "Float": id.Float, "Double": id.Double, "String": id.String,
		"DateTime": id.DateTime,
	}
})

// typeName names a DataType of typeIDs ("" for any other). It stands in
// for gopcua's id.Name, whose maps of every namespace 0 node would
// otherwise be linked into plcwatch and built at every process start.
func typeName(dataType uint32) string {
	for name, t := range typeIDs() {
		if t == dataType {
			return name
		}
	}
	return ""
}

func newPlantNS(sc *Scenario, start time.Time) *plantNS {
	ns := &plantNS{uri: sc.Namespace, byID: map[string]*simNode{}, byPath: map[string]*simNode{}, start: start}
	return ns
}

// build creates the nodes; it runs after SetID so node ids carry the index.
func (ns *plantNS) build(specs []NodeSpec) {
	for i := range specs {
		ns.roots = append(ns.roots, ns.add(nil, &specs[i], id.Organizes))
	}
}

func (ns *plantNS) newNode(parent *simNode, name string, class ua.NodeClass, typeDef uint32, refType uint32) *simNode {
	path := name
	if parent != nil {
		path = parent.path + "/" + name
	}
	n := &simNode{
		id:      ua.NewStringNodeID(ns.idx, strings.ReplaceAll(path, "/", ".")),
		path:    path,
		name:    name,
		class:   class,
		typeDef: typeDef,
		parent:  parent,
		access:  byte(ua.AccessLevelTypeCurrentRead),
	}
	if parent != nil {
		parent.refs = append(parent.refs, simRef{refType: refType, target: n})
	}
	n.stub = server.NewNode(n.id, server.Attributes{
		ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(class)),
		ua.AttributeIDBrowseName: server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: ns.idx, Name: name}),
		ua.AttributeIDDisplayName: server.DataValueFromValue(&ua.LocalizedText{
			EncodingMask: ua.LocalizedTextText, Text: name}),
		// gopcua's browse takes a target's type definition from its
		// DataType attribute as an ExpandedNodeID; the stub exists only for
		// that and for references from namespace 0.
		ua.AttributeIDDataType: server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, typeDef)),
	}, nil, nil)
	ns.byID[n.id.String()] = n
	ns.byPath[path] = n
	return n
}

func (ns *plantNS) add(parent *simNode, s *NodeSpec, refType uint32) *simNode {
	switch {
	case s.Program != nil:
		n := ns.newNode(parent, s.Name, ua.NodeClassObject, id.BaseObjectType, refType)
		p := *s.Program
		n.prog = &p
		for _, prop := range []string{"CodeHash", "Version", "Language"} {
			c := ns.newNode(n, prop, ua.NodeClassVariable, id.PropertyType, id.HasProperty)
			c.dataType = id.String
		}
		return n
	case s.Type != "":
		n := ns.newNode(parent, s.Name, ua.NodeClassVariable, id.BaseDataVariableType, refType)
		n.dataType = typeIDs()[s.Type]
		n.value = s.Value
		n.live = s.Live
		if s.Writable {
			n.access |= byte(ua.AccessLevelTypeCurrentWrite)
		}
		if s.Unit != "" {
			u := ns.newNode(n, "EngineeringUnits", ua.NodeClassVariable, id.PropertyType, id.HasProperty)
			u.dataType = id.EUInformation
			u.value = &ua.EUInformation{
				NamespaceURI: "http://www.opcfoundation.org/UA/units/un/cefact",
				UnitID:       -1,
				DisplayName:  ua.NewLocalizedText(s.Unit),
				Description:  ua.NewLocalizedText(s.Unit),
			}
		}
		return n
	}
	typeDef := uint32(id.BaseObjectType)
	if s.Folder {
		typeDef = id.FolderType
	}
	n := ns.newNode(parent, s.Name, ua.NodeClassObject, typeDef, refType)
	for i := range s.Children {
		rt := uint32(id.HasComponent)
		if s.Folder {
			rt = id.Organizes
		}
		ns.add(n, &s.Children[i], rt)
	}
	return n
}

// get returns the node with id nid, or nil.
func (ns *plantNS) get(nid *ua.NodeID) *simNode {
	if nid == nil {
		return nil
	}
	ns.tree.RLock()
	defer ns.tree.RUnlock()
	return ns.byID[nid.String()]
}

// at returns the node at browse path p, or nil.
func (ns *plantNS) at(p string) *simNode {
	ns.tree.RLock()
	defer ns.tree.RUnlock()
	return ns.byPath[p]
}

// Name implements server.NameSpace.
func (ns *plantNS) Name() string { return ns.uri }

// AddNode implements server.NameSpace; the address space is fixed by the
// scenario, so it only returns n.
func (ns *plantNS) AddNode(n *server.Node) *server.Node { return n }

// Node implements server.NameSpace.
func (ns *plantNS) Node(nid *ua.NodeID) *server.Node {
	if nid == nil {
		return nil
	}
	if n := ns.get(nid); n != nil {
		return n.stub
	}
	return nil
}

// Objects implements server.NameSpace.
func (ns *plantNS) Objects() *server.Node { return nil }

// Root implements server.NameSpace.
func (ns *plantNS) Root() *server.Node { return nil }

// ID implements server.NameSpace.
func (ns *plantNS) ID() uint16 { return ns.idx }

// SetID implements server.NameSpace.
func (ns *plantNS) SetID(i uint16) { ns.idx = i }

// refSuper maps each reference type the simulator uses to its supertype.
var refSuper = sync.OnceValue(func() map[uint32]uint32 {
	return map[uint32]uint32{
		id.HierarchicalReferences: id.References, id.NonHierarchicalReferences: id.References,
		id.HasTypeDefinition: id.NonHierarchicalReferences,
		id.HasChild:          id.HierarchicalReferences, id.Organizes: id.HierarchicalReferences,
		id.HasEventSource: id.HierarchicalReferences, id.Aggregates: id.HasChild, id.HasSubtype: id.HasChild,
		id.HasProperty: id.Aggregates, id.HasComponent: id.Aggregates, id.HasOrderedComponent: id.HasComponent,
		id.HasNotifier: id.HasEventSource,
	}
})

func refMatches(want *ua.NodeID, subtypes bool, have uint32) bool {
	if want == nil || (want.Namespace() == 0 && want.IntID() == 0) {
		return true
	}
	if want.Namespace() != 0 {
		return false
	}
	for t := have; t != 0; t = refSuper()[t] {
		if t == want.IntID() {
			return true
		}
		if !subtypes {
			return false
		}
	}
	return false
}

// Browse implements server.NameSpace: forward hierarchical references to
// children, the inverse reference to the parent, and HasTypeDefinition.
func (ns *plantNS) Browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	ns.tree.RLock()
	defer ns.tree.RUnlock()
	n := ns.byID[bd.NodeID.String()]
	if n == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	var refs []*ua.ReferenceDescription
	desc := func(refType uint32, fwd bool, t *simNode) *ua.ReferenceDescription {
		return &ua.ReferenceDescription{
			ReferenceTypeID: ua.NewNumericNodeID(0, refType),
			IsForward:       fwd,
			NodeID:          ua.NewExpandedNodeID(t.id, "", 0),
			BrowseName:      &ua.QualifiedName{NamespaceIndex: ns.idx, Name: t.name},
			DisplayName:     &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: t.name},
			NodeClass:       t.class,
			TypeDefinition:  ua.NewNumericExpandedNodeID(0, t.typeDef),
		}
	}
	fwdOK := bd.BrowseDirection == ua.BrowseDirectionForward || bd.BrowseDirection == ua.BrowseDirectionBoth
	invOK := bd.BrowseDirection == ua.BrowseDirectionInverse || bd.BrowseDirection == ua.BrowseDirectionBoth
	classOK := func(c ua.NodeClass) bool { return bd.NodeClassMask == 0 || bd.NodeClassMask&uint32(c) != 0 }
	if fwdOK {
		if refMatches(bd.ReferenceTypeID, bd.IncludeSubtypes, id.HasTypeDefinition) {
			refs = append(refs, &ua.ReferenceDescription{
				ReferenceTypeID: ua.NewNumericNodeID(0, id.HasTypeDefinition),
				IsForward:       true,
				NodeID:          ua.NewNumericExpandedNodeID(0, n.typeDef),
				BrowseName:      &ua.QualifiedName{},
				DisplayName:     &ua.LocalizedText{},
				NodeClass:       ua.NodeClassObjectType,
				TypeDefinition:  ua.NewTwoByteExpandedNodeID(0),
			})
		}
		for _, r := range n.refs {
			if refMatches(bd.ReferenceTypeID, bd.IncludeSubtypes, r.refType) && classOK(r.target.class) {
				refs = append(refs, desc(r.refType, true, r.target))
			}
		}
	}
	if invOK && n.parent != nil {
		for _, r := range n.parent.refs {
			if r.target == n && refMatches(bd.ReferenceTypeID, bd.IncludeSubtypes, r.refType) && classOK(n.parent.class) {
				refs = append(refs, desc(r.refType, false, n.parent))
			}
		}
	}
	return &ua.BrowseResult{StatusCode: ua.StatusGood, References: refs}
}

func dv(v any) *ua.DataValue {
	vr, err := ua.NewVariant(v)
	if err != nil {
		return bad(ua.StatusBadInternalError)
	}
	now := time.Now()
	return &ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value:           vr,
		SourceTimestamp: now,
		ServerTimestamp: now,
	}
}

func bad(code ua.StatusCode) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueStatusCode | ua.DataValueServerTimestamp, Status: code, ServerTimestamp: time.Now()}
}

// Attribute implements server.NameSpace.
func (ns *plantNS) Attribute(nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	n := ns.get(nid)
	if n == nil {
		return bad(ua.StatusBadNodeIDUnknown)
	}
	switch attr {
	case ua.AttributeIDNodeID:
		return dv(n.id)
	case ua.AttributeIDNodeClass:
		return dv(int32(n.class))
	case ua.AttributeIDBrowseName:
		return dv(&ua.QualifiedName{NamespaceIndex: ns.idx, Name: n.name})
	case ua.AttributeIDDisplayName:
		return dv(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: n.name})
	case ua.AttributeIDDescription:
		return dv(&ua.LocalizedText{})
	case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
		return dv(uint32(0))
	case ua.AttributeIDEventNotifier:
		if n.class == ua.NodeClassObject {
			return dv(byte(0))
		}
	}
	if n.class != ua.NodeClassVariable {
		return bad(ua.StatusBadAttributeIDInvalid)
	}
	switch attr {
	case ua.AttributeIDValue:
		ns.mu.Lock()
		v := ns.valueLocked(n, time.Now())
		status := n.status
		if n.access&byte(ua.AccessLevelTypeCurrentRead) == 0 {
			status = ua.StatusBadNotReadable
		}
		ns.mu.Unlock()
		if status != ua.StatusOK {
			return bad(status)
		}
		if eu, ok := v.(*ua.EUInformation); ok {
			return dv(ua.NewExtensionObject(eu))
		}
		return dv(v)
	case ua.AttributeIDDataType:
		return dv(ua.NewNumericNodeID(0, n.dataType))
	case ua.AttributeIDValueRank:
		return dv(int32(-1))
	case ua.AttributeIDArrayDimensions:
		return dv([]uint32{})
	case ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel:
		ns.mu.Lock()
		a := n.access
		ns.mu.Unlock()
		return dv(a)
	case ua.AttributeIDMinimumSamplingInterval:
		return dv(float64(0))
	case ua.AttributeIDHistorizing:
		return dv(false)
	}
	return bad(ua.StatusBadAttributeIDInvalid)
}

// huge reports whether nid is a variable whose value is too large to send.
func (ns *plantNS) huge(nid *ua.NodeID) bool {
	if nid == nil {
		return false
	}
	n := ns.get(nid)
	if n == nil {
		return false
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return n.huge
}

// SetAttribute implements server.NameSpace. Clients never get here (the
// simulator refuses Write before dispatch); it refuses all the same.
func (ns *plantNS) SetAttribute(*ua.NodeID, ua.AttributeID, *ua.DataValue) ua.StatusCode {
	return ua.StatusBadUserAccessDenied
}

// valueLocked returns a variable's current value; ns.mu is held.
func (ns *plantNS) valueLocked(n *simNode, now time.Time) any {
	if p := n.parent; p != nil && p.prog != nil {
		switch n.name {
		case "CodeHash":
			sum := sha256.Sum256([]byte(p.prog.Code))
			return hex.EncodeToString(sum[:])
		case "Version":
			return p.prog.Version
		case "Language":
			return p.prog.Language
		}
	}
	if n.live == nil {
		return n.value
	}
	phase := 2 * math.Pi * float64(now.Sub(ns.start)) / float64(n.live.Period)
	step := float64(ns.churn)
	switch v := n.value.(type) {
	case bool:
		flips := int(now.Sub(ns.start)/n.live.Period) + ns.churn
		return v != (flips%2 == 1)
	case float64:
		return v + n.live.Amplitude*math.Sin(phase) + 0.37*step*math.Max(n.live.Amplitude, 0.01)
	case float32:
		return v + float32(n.live.Amplitude*math.Sin(phase)+0.37*step*math.Max(n.live.Amplitude, 0.01))
	case int16:
		return v + int16(now.Sub(ns.start)/n.live.Period) + int16(ns.churn)
	case int32:
		return v + int32(now.Sub(ns.start)/n.live.Period) + int32(ns.churn)
	case int64:
		return v + int64(now.Sub(ns.start)/n.live.Period) + int64(ns.churn)
	case uint16:
		return v + uint16(now.Sub(ns.start)/n.live.Period) + uint16(ns.churn)
	case uint32:
		return v + uint32(now.Sub(ns.start)/n.live.Period) + uint32(ns.churn)
	case uint64:
		return v + uint64(now.Sub(ns.start)/n.live.Period) + uint64(ns.churn)
	case time.Time:
		return now.UTC()
	}
	return n.value
}
