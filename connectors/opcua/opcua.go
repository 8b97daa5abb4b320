// Package opcua is plcwatch's read-only OPC UA connector, on
// github.com/gopcua/opcua. It records the server's build info, endpoints,
// security policies and certificate, and the configured subtrees browsed
// recursively with bounds, each variable's value, data type, access level and
// engineering unit, classified by the config's rules.
//
// Item paths are browse names from the root ("opcua/Plant/Tank1/Level");
// a node reached by several references is recorded once, and siblings
// sharing a browse name are told apart by the namespace URI of their
// browse name ("Mode{urn:vendor:extra}"), their stable string, GUID or
// opaque node id, or their rank among numeric node ids ("Temp{#2}"), never
// by a namespace index or a node number, which servers may give anew on
// restart; the node id is recorded as an address (snapshots.AttrNodeID),
// never compared. A Bad or
// Uncertain status on one value or attribute makes that item not_read
// (Provenance.Reason names the status) and the snapshot partial; it costs
// nothing else. Read-only variables named as code identity (ProgramHash,
// Checksum, CRC, POU version) are compared as logic by default.
package opcua

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
)

// Request kinds; Allowlist holds every kind the connector may send.
const (
	KindGetEndpoints = "opcua.GetEndpoints"
	KindConnect      = "opcua.Connect" // secure channel + CreateSession + ActivateSession
	KindBrowse       = "opcua.Browse"
	KindBrowseNext   = "opcua.BrowseNext"
	KindRead         = "opcua.Read"
	KindClose        = "opcua.CloseSession"
)

// Allowlist is the read-only request kinds: no Write, Call, node management
// or history updates exist in the connector at all.
var Allowlist = []string{KindGetEndpoints, KindConnect, KindBrowse, KindBrowseNext, KindRead, KindClose}

func init() {
	connectors.Register(connectors.Factory{
		Protocol:  "opcua",
		Allowlist: Allowlist,
		Validate: func(dev *config.Device) error {
			_, err := parse(dev)
			return err
		},
		New: func(dev *config.Device, env connectors.Env) (connectors.Connector, error) { return New(dev, env) },
	})
}

// Connector reads one OPC UA server.
type Connector struct {
	dev   *config.Device
	set   *settings
	trust *trust
	gate  *connectors.Gate
	rules classify.Rules
	log   zerolog.Logger
	meter *meter
	// lastOut and lastIn are the bytes the last request sent and received
	// (set by do; requests are sent one at a time).
	lastOut, lastIn int
	// observe, when set, is told of every answered Read with its bytes.
	observe func(req *ua.ReadRequest, resp *ua.ReadResponse, out, in int)
}

// New builds a connector; it does not touch the network.
func New(dev *config.Device, env connectors.Env) (*Connector, error) {
	s, err := parse(dev)
	if err != nil {
		return nil, err
	}
	t, err := loadTrust(s)
	if err != nil {
		return nil, err
	}
	return &Connector{dev: dev, set: s, trust: t, gate: env.Gate, rules: env.Rules, log: env.Log, meter: &meter{}}, nil
}

// Close implements connectors.Connector; sessions never outlive a snapshot.
func (c *Connector) Close() error { return nil }

// do sends one service call through the gate, counting the bytes the
// kernel saw arrive.
func (c *Connector) do(ctx context.Context, kind, object string, size int, call func(ctx context.Context) error) error {
	return c.gate.DoMeasured(ctx, connectors.Request{Kind: kind, Object: object, Size: size}, func(ctx context.Context) (int, int, error) {
		in, out, gen := c.meter.counts()
		err := call(ctx)
		if serverAnswered(err) {
			err = connectors.Answered(err)
		}
		in2, out2, gen2 := c.meter.counts()
		if gen2 != gen {
			in, out = 0, 0 // the call dialed a connection of its own
		}
		// A closed socket reads as 0: never count negative bytes.
		c.lastIn, c.lastOut = int(max(0, in2-in)), max(size, int(max(0, out2-out)))
		return c.lastIn, c.lastOut, err
	})
}

// serverAnswered reports whether err is a status the server sent back for
// this one request (a service fault such as BadTooManyOperations or
// BadResponseTooLarge): the server is talking, so the split-and-retry that
// follows must not open the device's breaker. A timeout, a lost channel or
// session, or an undecodable reply is not an answer.
func serverAnswered(err error) bool {
	var sc ua.StatusCode
	if !errors.As(err, &sc) || errors.Is(err, ua.StatusBadTimeout) || errors.Is(err, ua.StatusBadRequestTimeout) {
		return false
	}
	return splittable(err)
}

// snap is one snapshot in progress.
type snap struct {
	s       *snapshots.Snapshot
	uris    []string
	reasons []string
	lim     *opLimits
	seen    map[string]bool // stable node ids already recorded
	// rootOf gives, by stable node id, the stable id of the browse root
	// each recorded variable was found under (for uniquePaths).
	rootOf map[string]string
	// carry holds, by stable node id, the previous snapshot's variables
	// whose static attributes (DataType, AccessLevel) may be carried
	// forward; nil when this snapshot reads everything (see carryFrom).
	carry     map[string]*snapshots.Item
	carryFrom string // id of the snapshot the carried attributes were read in
	carryWhy  string // why nothing is carried, for the log and the docs
	carried   int    // variables recorded with carried attributes
	// next sizes the variables' reads of the next snapshot of an unchanged
	// server (see nextReads).
	next nextReads
}

func (b *snap) partial(format string, args ...any) {
	b.reasons = append(b.reasons, fmt.Sprintf(format, args...))
}

func (b *snap) add(it snapshots.Item) {
	if it.Provenance.Source == "" {
		it.Provenance.Source = snapshots.SourceRead
	}
	b.s.Items = append(b.s.Items, it)
}

// Snapshot implements connectors.Connector.
func (c *Connector) Snapshot(ctx context.Context, prev *snapshots.Snapshot) (*snapshots.Snapshot, error) {
	c.gate.Reset()
	defer c.meter.release()
	start := time.Now()
	b := &snap{s: &snapshots.Snapshot{Device: c.dev.Name, Protocol: "opcua", Endpoint: c.dev.Endpoint, TakenAt: start},
		lim: newLimits(), seen: map[string]bool{}, rootOf: map[string]string{}}
	c.observe = b.next.observe
	defer func() { c.observe = nil }()
	d := dialOptions{endpoint: c.dev.Endpoint, timeout: c.set.timeout, meter: c.meter}

	ep, err := c.endpoints(ctx, d, b)
	if err != nil {
		return nil, err
	}
	user, pw, err := c.dev.Credentials.Resolve()
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", c.dev.Name, err)
	}
	id := identity{user: user, password: pw.Reveal(), serverTrusted: !c.trust.empty()}
	if c.set.secure() {
		if id.cert, id.key, err = c.clientIdentity(); err != nil {
			return nil, err
		}
	}
	open := func(ctx context.Context) (session, error) {
		var s session
		err := c.do(ctx, KindConnect, "session", 0, func(ctx context.Context) error {
			var e error
			s, e = openSession(ctx, d, ep, id)
			return e
		})
		return s, err
	}
	first, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("device %s: connecting to %s (%s/%s): %w", c.dev.Name, c.dev.Endpoint, c.set.policy, c.set.mode, err)
	}
	sess := &reopening{session: first, open: open, left: maxReopen}
	closed := false
	closeSession := func() {
		if closed {
			return
		}
		closed = true
		c.closeSession(ctx, sess.session)
	}
	sess.close = func(old session) { c.closeSession(ctx, old) }
	defer closeSession()

	if err = c.readServer(ctx, sess, b); err != nil {
		b.partial("server status: %v", err)
	}
	b.lim.keep(prev, c.dev.Endpoint)
	b.decideCarry(prev)
	c.log.Debug().Bool("carry", b.carry != nil).Str("why", b.carryWhy).Msg("static attributes")
	var aborted *abortError
	for _, r := range c.set.roots {
		if errors.As(err, &aborted) || ctx.Err() != nil {
			b.partial("browsing %s: not started: %v", r.spec, err)
			continue
		}
		if err = c.browseRoot(ctx, sess, r, b); err != nil {
			b.partial("browsing %s: %v", r.spec, err)
		}
	}
	closeSession() // counted in the snapshot's cost, as the plan shows it
	b.add(b.lim.item())
	b.uniquePaths()
	s := b.s
	s.Status = snapshots.Status{Complete: len(b.reasons) == 0, Reasons: b.reasons}
	s.Cost = c.gate.Cost()
	s.Cost.Next = b.next.cost(s.Cost.ByKind, b.lim)
	s.Cost.Duration = time.Since(start)
	s.RulesDigest = c.rules.Digest()
	return s, nil
}

// closeSession ends a session: CloseSession, then CloseSecureChannel.
func (c *Connector) closeSession(ctx context.Context, sess session) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.set.timeout)
	defer cancel()
	c.do(cctx, KindClose, "session", 0, func(ctx context.Context) error {
		sess.CloseSession(ctx)
		return sess.Close(ctx)
	})
}

// maxReopen bounds the sessions one snapshot opens again after the server
// closed the connection on a large request.
const maxReopen = 3

// reopening is the snapshot's session. A server that closes the
// connection on a request of many operations, instead of answering
// BadRequestTooLarge or BadResponseTooLarge (node-opcua does when a
// message exceeds the size it negotiated; gopcua v0.9.0 sends any size
// it is given), costs a new session (a gated Connect) and that request in
// halves, at most maxReopen times per snapshot: never the snapshot.
type reopening struct {
	session
	open  func(ctx context.Context) (session, error)
	close func(old session)
	left  int
}

// reopen replaces a session whose connection the server closed; false
// when it may not (maxReopen reached) or could not.
func (r *reopening) reopen(ctx context.Context) bool {
	if r.left <= 0 || ctx.Err() != nil {
		return false
	}
	r.left--
	r.close(r.session)
	s, err := r.open(ctx)
	if err != nil {
		return false
	}
	r.session = s
	return true
}

// endpoints reads the server's endpoints on a discovery channel, records
// them, and picks the configured one after checking its certificate.
func (c *Connector) endpoints(ctx context.Context, d dialOptions, b *snap) (*ua.EndpointDescription, error) {
	var resp *ua.GetEndpointsResponse
	err := c.do(ctx, KindGetEndpoints, "endpoints", 0, func(ctx context.Context) error {
		disc, err := openDiscovery(ctx, d)
		if err != nil {
			return err
		}
		defer disc.Close(ctx)
		resp, err = disc.GetEndpoints(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("device %s: GetEndpoints from %s: %w", c.dev.Name, c.dev.Endpoint, err)
	}
	var chosen *ua.EndpointDescription
	seen := map[string]bool{}
	for _, ep := range resp.Endpoints {
		policy := shortPolicy(ep.SecurityPolicyURI)
		key := "security/endpoints/" + policy + "/" + strings.TrimPrefix(ep.SecurityMode.String(), "MessageSecurityMode")
		if !seen[key] {
			seen[key] = true
			var tokens []string
			for _, t := range ep.UserIdentityTokens {
				tokens = append(tokens, strings.TrimPrefix(t.TokenType.String(), "UserTokenType"))
			}
			b.add(snapshots.Item{Path: key, Kind: snapshots.KindSecurity, Value: snapshots.String(strings.Join(tokens, ",")),
				Attrs: map[string]string{"security_level": fmt.Sprint(ep.SecurityLevel)}})
		}
		if policy == c.set.policy && ep.SecurityMode == c.set.mode && chosen == nil {
			chosen = ep
		}
	}
	if chosen == nil {
		return nil, fmt.Errorf("device %s: %s offers no %s/%s endpoint (see the security/endpoints items of an earlier snapshot, or plcwatch plan)", c.dev.Name, c.dev.Endpoint, c.set.policy, c.set.mode)
	}
	if len(chosen.ServerCertificate) > 0 {
		b.add(snapshots.Item{Path: "security/server_certificate", Kind: snapshots.KindSecurity, Value: snapshots.String(Thumbprint(chosen.ServerCertificate)),
			Attrs: map[string]string{"hash": "sha256"}})
	}
	switch {
	case !c.trust.empty():
		if err := c.trust.check(chosen.ServerCertificate, time.Now()); err != nil {
			return nil, fmt.Errorf("device %s: %w (sha256 %s): add it to trusted_thumbprints only after checking it on the server", c.dev.Name, err, Thumbprint(chosen.ServerCertificate))
		}
	case c.set.secure():
		return nil, fmt.Errorf("device %s: %w: %s/%s needs trusted_thumbprints or trust_list (the server offers sha256 %s)",
			c.dev.Name, ErrUntrustedCertificate, c.set.policy, c.set.mode, Thumbprint(chosen.ServerCertificate))
	}
	return chosen, nil
}

func shortPolicy(uri string) string {
	if i := strings.LastIndex(uri, "#"); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

func (c *Connector) clientIdentity() ([]byte, *rsaKey, error) {
	if c.set.certFile != "" {
		return loadClientCert(c.set.certFile, c.set.keyFile)
	}
	return clientCertificate()
}

// serverField is one ServerStatus or BuildInfo variable the connector
// records.
type serverField struct {
	path string
	kind snapshots.Kind
	id   uint32
	enum string // DataType name of an enumeration value
	// optional fields are not in every server (counters): missing ones are
	// not observable rather than not read.
	optional bool
	// volatile fields move between two reads of an unchanged server: only
	// their presence is recorded.
	volatile bool
}

// serverFields are recorded under server/. BuildDate, StartTime,
// CurrentTime, ServerState and the session counters are information: they
// move on restarts (gopcua's server reports its start as its BuildDate) and
// never alert; a firmware change shows in SoftwareVersion or BuildNumber.
var serverFields = []serverField{
	{path: "server/manufacturer", kind: snapshots.KindIdentity, id: id.Server_ServerStatus_BuildInfo_ManufacturerName},
	{path: "server/product_name", kind: snapshots.KindIdentity, id: id.Server_ServerStatus_BuildInfo_ProductName},
	{path: "server/product_uri", kind: snapshots.KindIdentity, id: id.Server_ServerStatus_BuildInfo_ProductURI},
	{path: "server/software_version", kind: snapshots.KindFirmware, id: id.Server_ServerStatus_BuildInfo_SoftwareVersion},
	{path: "server/build_number", kind: snapshots.KindFirmware, id: id.Server_ServerStatus_BuildInfo_BuildNumber},
	{path: "server/build_date", kind: snapshots.KindInfo, id: id.Server_ServerStatus_BuildInfo_BuildDate},
	{path: "server/start_time", kind: snapshots.KindInfo, id: id.Server_ServerStatus_StartTime},
	{path: "server/current_time", kind: snapshots.KindInfo, id: id.Server_ServerStatus_CurrentTime, volatile: true},
	{path: "server/state", kind: snapshots.KindInfo, id: id.Server_ServerStatus_State, enum: "ServerState"},
	{path: "server/sessions", kind: snapshots.KindInfo, id: id.Server_ServerDiagnostics_ServerDiagnosticsSummary_CurrentSessionCount, optional: true, volatile: true},
	{path: "server/subscriptions", kind: snapshots.KindInfo, id: id.Server_ServerDiagnostics_ServerDiagnosticsSummary_CurrentSubscriptionCount, optional: true, volatile: true},
}

// readServer reads the namespace array and the request limits first (so
// that every later request is sized to them), then ServerStatus and
// BuildInfo.
func (c *Connector) readServer(ctx context.Context, sess session, b *snap) error {
	ops := []*ua.ReadValueID{readOp(ua.NewNumericNodeID(0, id.Server_NamespaceArray), ua.AttributeIDValue)}
	for _, n := range limitNodes {
		ops = append(ops, readOp(ua.NewNumericNodeID(0, n.id), ua.AttributeIDValue))
	}
	res, err := c.read(ctx, sess, "ServerStatus", ops, b.lim)
	if err != nil {
		return err
	}
	if r := res[0]; r.failure() == "" && r.dv.Value != nil {
		if uris, ok := r.dv.Value.Value().([]string); ok {
			b.uris = uris
		}
	} else {
		b.partial("server/namespace_array: %s (node paths of namespaces other than the browse root's may not be stable)", r.failure())
	}
	b.lim.apply(res[1:])

	// A second request: the first stays within any limit a server may
	// advertise, since the limits are not known before it.
	ops = ops[:0]
	for _, f := range serverFields {
		ops = append(ops, readOp(ua.NewNumericNodeID(0, f.id), ua.AttributeIDValue))
	}
	res, err = c.read(ctx, sess, "ServerStatus", ops, b.lim)
	str := func(i int) string {
		r := res[i]
		if r.failure() != "" || r.dv.Value == nil {
			return ""
		}
		v, ok, _ := canonical(r.dv.Value, "")
		if !ok || v == nullValue {
			return ""
		}
		return v.Raw
	}
	idn := snapshots.Identity{Vendor: str(0), Model: str(1), Firmware: strings.TrimSpace(str(3) + " build " + str(4)), Name: str(2)}
	if str(4) == "" {
		idn.Firmware = str(3)
	}
	b.s.Identity = idn
	for i, f := range serverFields {
		it := snapshots.Item{Path: f.path, Kind: f.kind, Volatile: f.volatile}
		fail := res[i].failure()
		switch {
		case f.volatile:
			it.Value = snapshots.None()
		case fail != "" && (f.optional || f.kind == snapshots.KindInfo || res[i].dv != nil && res[i].dv.Status == ua.StatusBadNodeIDUnknown):
			it.Value = snapshots.None()
			it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "server answered " + fail}
		case fail != "":
			it.Value = snapshots.None()
			it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: fail}
			b.partial("%s: server answered %s", f.path, fail)
		default:
			v, ok, reason := canonical(res[i].dv.Value, "")
			if !ok {
				it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: reason}
			}
			if name, ok := enumName(f.enum, v); ok {
				it.Attrs = map[string]string{snapshots.AttrValueName: name}
			}
			it.Value = v
		}
		b.add(it)
	}
	return err
}

// node is one node found while browsing.
type node struct {
	id     *ua.NodeID
	key    string // stable node id: namespace URI, not index
	path   string // "opcua/Plant/Tank1/HighLimit"
	name   string
	nsURI  string // namespace of the browse name
	parent *node
	class  ua.NodeClass
	depth  int
	// parent of a property (EngineeringUnits) to attach the unit to
	euOf *node
	unit string
	// unitFail is why its EngineeringUnits property could not be read:
	// the unit is part of the value, so the value is not read either.
	unitFail string
}

// nsURI names namespace index i by its URI, which stays when a server
// renumbers its namespaces on restart.
func (b *snap) nsURI(i uint16) string {
	if int(i) < len(b.uris) && b.uris[i] != "" {
		return b.uris[i]
	}
	return "ns=" + strconv.Itoa(int(i))
}

// browseRoot walks one configured subtree breadth first within its bounds,
// then reads every variable found. Each node is recorded once, under the
// first path by which the walk reaches it (shallowest, then smallest path),
// however many references lead to it.
func (c *Connector) browseRoot(ctx context.Context, sess session, r root, b *snap) error {
	rootID := r.id
	if r.nsURI != "" {
		idx := -1
		for i, u := range b.uris {
			if u == r.nsURI {
				idx = i
			}
		}
		if idx < 0 {
			return fmt.Errorf("the server has no namespace %q", r.nsURI)
		}
		rootID = ua.NewNodeIDFromExpandedNodeID(ua.NewExpandedNodeID(r.id, "", 0))
		rootID.SetNamespace(uint16(idx))
	}
	b.lim.nodeRefs = r.maxNodes
	top := &node{id: rootID, key: stableID(rootID, b.uris), path: "opcua", depth: 0}
	b.seen[top.key] = true
	level := []*node{top}
	var vars []*node
	count := 0
	for len(level) > 0 {
		children, err := c.browse(ctx, sess, level, b)
		if err != nil {
			c.readVars(ctx, sess, vars, b)
			return err
		}
		var next []*node
		for _, ch := range children {
			count++
			if count > r.maxNodes {
				c.readVars(ctx, sess, vars, b)
				return fmt.Errorf("more than max_nodes (%d) nodes under %s: raise max_nodes or browse a narrower root", r.maxNodes, r.spec)
			}
			if ch.class == ua.NodeClassVariable {
				vars = append(vars, ch)
			}
			if ch.depth < r.maxDepth {
				next = append(next, ch)
			} else if ch.class == ua.NodeClassObject {
				b.partial("%s: deeper than max_depth (%d): its children were not read", ch.path, r.maxDepth)
			}
		}
		level = next
	}
	return c.readVars(ctx, sess, vars, b)
}

// browse returns the hierarchical children (objects and variables) of one
// level of nodes not seen before, named and sorted by path. A node whose
// references cannot be browsed makes the snapshot partial; the others go
// on.
func (c *Connector) browse(ctx context.Context, sess session, parents []*node, b *snap) ([]*node, error) {
	descs := make([]*ua.BrowseDescription, len(parents))
	for i, p := range parents {
		descs[i] = &ua.BrowseDescription{
			NodeID: p.id, BrowseDirection: ua.BrowseDirectionForward, ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
			IncludeSubtypes: true, NodeClassMask: uint32(ua.NodeClassObject | ua.NodeClassVariable), ResultMask: uint32(ua.BrowseResultMaskAll),
		}
	}
	res, stop := c.browseNodes(ctx, sess, descs, b.lim)
	var out []*node
	for i, r := range res {
		p := parents[i]
		if r.reason != "" {
			b.partial("%s: browse answered %s", p.path, r.reason)
		}
		out = append(out, c.children(p, r.refs, b)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].path < out[j].path })
	kept := out[:0]
	for _, ch := range out {
		if b.seen[ch.key] {
			continue // reached again by another reference or parent: recorded once
		}
		b.seen[ch.key] = true
		kept = append(kept, ch)
	}
	return kept, stop
}

// children turns one parent's references into nodes: one per NodeId, each
// with a path segment unique among its siblings. The segment is the browse
// name; when siblings share a browse name, those whose browse name is in a
// namespace other than the parent's get "{namespace URI}" appended, and
// any still alike get "{stable node id}" for a string, GUID or opaque
// NodeId (never a namespace index, which a server may renumber on restart)
// or "{#rank}" for a numeric one (see numericRank), whose number a server
// may give anew on restart.
func (c *Connector) children(p *node, refs []*ua.ReferenceDescription, b *snap) []*node {
	var kids []*node
	mine := map[string]bool{}
	for _, ref := range refs {
		if ref == nil || ref.NodeID == nil || ref.NodeID.NodeID == nil || ref.BrowseName == nil {
			continue
		}
		nid := ref.NodeID.NodeID
		if nid.Namespace() == 0 || ref.NodeID.ServerIndex != 0 {
			continue // the standard's own nodes (Server object) and other servers
		}
		key := stableID(nid, b.uris)
		if mine[key] || b.seen[key] {
			continue
		}
		mine[key] = true
		ch := &node{id: nid, key: key, name: ref.BrowseName.Name, nsURI: b.nsURI(ref.BrowseName.NamespaceIndex),
			class: ref.NodeClass, depth: p.depth + 1, parent: p}
		if ch.name == "EngineeringUnits" && p.class == ua.NodeClassVariable {
			ch.euOf = p
		}
		kids = append(kids, ch)
	}
	byName := map[string][]*node{}
	for _, k := range kids {
		byName[k.name] = append(byName[k.name], k)
	}
	parentNS := b.nsURI(p.id.Namespace())
	for _, k := range kids {
		seg := escapeSegment(k.name)
		if len(byName[k.name]) > 1 {
			same := 0
			for _, o := range byName[k.name] {
				if o.nsURI == k.nsURI {
					same++
				}
			}
			switch {
			case same > 1 && numericID(k.id):
				seg += "{#" + strconv.Itoa(numericRank(k, byName[k.name])) + "}"
			case same > 1:
				seg += "{" + escapeSegment(k.key) + "}"
			case k.nsURI != parentNS:
				seg += "{" + escapeSegment(k.nsURI) + "}"
			}
		}
		k.path = p.path + "/" + seg
	}
	return kids
}

// numericID reports whether a NodeId's identifier is a number (in any of
// its three encodings).
func numericID(n *ua.NodeID) bool {
	switch n.Type() {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		return true
	}
	return false
}

// numericKey reports whether a stable node id ("nsu=urn:x;i=5001",
// "ns=1;i=5001", "i=85") has a numeric identifier.
func numericKey(key string) bool {
	if strings.HasPrefix(key, "nsu=") || strings.HasPrefix(key, "ns=") {
		_, key, _ = strings.Cut(key, ";")
	}
	return strings.HasPrefix(key, "i=")
}

// numericRank is k's place (from 1) among its siblings of the same browse
// name and namespace that have numeric NodeIds, in the order of their
// identifiers. Servers that number nodes as they build their address space
// give them other numbers after a restart (a node added before them shifts
// them all) but keep their order, so the rank is what tells such siblings
// apart in a path, never the number itself.
func numericRank(k *node, alike []*node) int {
	rank := 1
	for _, o := range alike {
		if o == k || o.nsURI != k.nsURI || !numericID(o.id) {
			continue
		}
		if o.id.Namespace() < k.id.Namespace() || o.id.Namespace() == k.id.Namespace() && o.id.IntID() < k.id.IntID() {
			rank++
		}
	}
	return rank
}

// escapeSegment keeps '/' out of path segments and makes them valid UTF-8:
// '%', '/' and each byte of invalid UTF-8 are written %XX, so that two
// different browse names never give the same segment.
func escapeSegment(s string) string {
	if utf8.ValidString(s) && !strings.ContainsAny(s, "%/") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1, r == '%', r == '/':
			fmt.Fprintf(&sb, "%%%02X", s[i])
		default:
			sb.WriteString(s[i : i+n])
		}
		i += max(n, 1)
	}
	return sb.String()
}

// readVars reads every variable and records it as a classified item. A
// variable the previous snapshot recorded with its static attributes
// (DataType, AccessLevel) gets them carried forward and only its Value read
// (nothing at all when its classification makes it volatile); any other
// variable is read in full. An EngineeringUnits property is read for its
// Value only. See docs/OPCUA.md for what carrying trades.
func (c *Connector) readVars(ctx context.Context, sess session, vars []*node, b *snap) error {
	vr := make([]varResult, len(vars))
	first := make([]int, len(vars))
	var ops []*ua.ReadValueID
	for i, v := range vars {
		first[i] = len(ops)
		op := func(a ua.AttributeID) { ops = append(ops, readOp(v.id, a)) }
		if v.euOf != nil {
			op(ua.AttributeIDValue)
			continue
		}
		if prev := b.carry[v.key]; prev != nil {
			vr[i].carried = prev
			if cl := c.classify(v, prev.Attrs[snapshots.AttrDataType], prevAccess(prev)); !cl.Ignore && !cl.Volatile {
				op(ua.AttributeIDValue)
			}
			continue
		}
		op(ua.AttributeIDValue)
		op(ua.AttributeIDDataType)
		op(ua.AttributeIDAccessLevel)
	}
	res, err := c.read(ctx, sess, "variables", ops, b.lim)
	for i, v := range vars {
		n := len(ops) - first[i]
		if i+1 < len(vars) {
			n = first[i+1] - first[i]
		}
		if n >= 1 {
			vr[i].value = res[first[i]]
		}
		if n == 3 {
			vr[i].dtype, vr[i].access = res[first[i]+1], res[first[i]+2]
		}
		if v.euOf != nil && vr[i].value.failure() != "" {
			v.euOf.unitFail = vr[i].value.failure()
		}
		if v.euOf != nil && vr[i].value.failure() == "" && vr[i].value.dv.Value != nil {
			// Units first, from EngineeringUnits properties.
			if eu, ok := vr[i].value.dv.Value.Value().(*ua.ExtensionObject); ok {
				if info, ok := eu.Value.(*ua.EUInformation); ok {
					v.euOf.unit = unitText(info)
				}
			}
		}
	}
	for i, v := range vars {
		// An array too large for one response is read in parts, so that
		// it is recorded (summarised) instead of never read.
		if err == nil && v.euOf == nil && tooLarge(vr[i].value) {
			whole, why := c.readInParts(ctx, sess, v.id, "")
			if why != "" {
				// Not an array, or too large even so: the item keeps the
				// server's first answer as its reason.
				c.log.Debug().Str("path", v.path).Str("why", why).Msg("value not read in parts")
				continue
			}
			vr[i].value = readResult{dv: &ua.DataValue{}, whole: &whole}
		}
	}
	if err == nil {
		err = c.recheck(ctx, sess, vars, vr, b)
	}
	for i := range vr {
		if vr[i].carried != nil && retyped(vr[i].carried.Attrs[snapshots.AttrDataType], vr[i].value) {
			// Not re-read (the session ended): the carried DataType is known wrong.
			vr[i].carried = nil
			vr[i].dtype = readResult{reason: "not re-read after the Value contradicted the carried DataType"}
			vr[i].access = vr[i].dtype
		}
	}
	c.addVars(vars, vr, b)
	b.next.endVars()
	return err
}

// recheck re-reads the DataType and AccessLevel of the carried variables
// whose Value contradicts them: it came back in a Variant of another type
// than the carried DataType (a variable deleted and downloaded again under
// the same NodeId), or the server answered it with a Bad or Uncertain
// status (CurrentRead taken away, or a value not available: a full read
// tells them apart). Those are not carried. It costs a request only when
// that happened.
func (c *Connector) recheck(ctx context.Context, sess session, vars []*node, vr []varResult, b *snap) error {
	var idx []int
	var ops []*ua.ReadValueID
	for i, v := range vars {
		r := vr[i].value
		answeredBad := r.dv != nil && r.failure() != "" && !unknownStructure(r.dv)
		if vr[i].carried != nil && (answeredBad || retyped(vr[i].carried.Attrs[snapshots.AttrDataType], r)) {
			idx = append(idx, i)
			ops = append(ops, readOp(v.id, ua.AttributeIDDataType), readOp(v.id, ua.AttributeIDAccessLevel))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	res, err := c.read(ctx, sess, "variables", ops, b.lim)
	for k, i := range idx {
		vr[i].carried = nil
		vr[i].dtype, vr[i].access = res[2*k], res[2*k+1]
	}
	return err
}

// varResult is what one variable's read returned; carried, when set, is
// the previous snapshot's item whose DataType and AccessLevel stand in for
// dtype and access, which were not read.
type varResult struct {
	value, dtype, access readResult
	carried              *snapshots.Item
}

// unknownStructure reports whether gopcua marked a value Bad because it
// has no decoder for the structure's DataType (the server answered Good):
// a permanent property of the value, not a failed read.
func unknownStructure(dv *ua.DataValue) bool {
	if dv == nil || dv.Value == nil || dv.Status != ua.StatusBadDataTypeIDUnknown {
		return false
	}
	eo, ok := dv.Value.Value().(*ua.ExtensionObject)
	return ok && eo != nil && eo.Value == nil
}

// classify gives a variable's classification from its DataType name and
// AccessLevel (hasAcc false: not known).
func (c *Connector) classify(v *node, dtype string, acc accessInfo) classify.Result {
	writable := acc.level&byte(ua.AccessLevelTypeCurrentWrite) != 0
	parentName := ""
	if v.parent != nil {
		parentName = v.parent.name
	}
	def := classify.Result{Kind: snapshots.KindInfo, Volatile: true}
	switch {
	case writable:
		def = classify.Result{Kind: snapshots.KindSetpoint}
	case acc.known && isCodeIdentity(v.name, parentName):
		// Code identity wherever it sits: compared as logic.
		def = classify.Result{Kind: snapshots.KindLogic}
	}
	return c.rules.Classify(classify.Target{Path: v.path, Name: v.name, NodeClass: "Variable", DataType: dtype, Writable: writable, HasAccess: acc.known}, def)
}

func (c *Connector) addVars(vars []*node, res []varResult, b *snap) {
	for i, v := range vars {
		if v.euOf != nil {
			b.next.add(v, 1, res[i].value.dv)
			continue // folded into its variable's unit
		}
		r := res[i]
		dtype, dtFail := "", r.dtype.failure()
		var acc accessInfo
		accFail := r.access.failure()
		if r.carried != nil {
			dtype, dtFail, accFail = r.carried.Attrs[snapshots.AttrDataType], "", ""
			acc = prevAccess(r.carried)
		} else {
			if dtFail == "" {
				dtype = dataTypeName(r.dtype.dv.Value, b.uris)
			}
			if accFail == "" {
				acc.level, acc.known = accessLevel(r.access.dv.Value)
			}
		}
		cl := c.classify(v, dtype, acc)
		if cl.Ignore {
			b.next.add(v, 3, r.value.dv, r.dtype.dv, r.access.dv)
			continue
		}
		unit := v.unit
		if cl.Unit != "" {
			unit = cl.Unit
		}
		top := v
		for top.parent != nil {
			top = top.parent
		}
		if b.rootOf != nil {
			b.rootOf[v.key] = top.key
		}
		it := snapshots.Item{Path: v.path, Kind: cl.Kind, Volatile: cl.Volatile, Deadband: cl.Deadband,
			Attrs: map[string]string{snapshots.AttrNodeID: v.key, snapshots.AttrDataType: dtype, "access": accessString(acc.level)}}
		notRead := func(reason string) {
			it.Value = snapshots.None()
			it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: reason}
			b.partial("%s: %s", v.path, reason)
		}
		valFail := r.value.failure()
		switch {
		case accFail != "" && cl.Rule < 0:
			// Without its AccessLevel the item's kind is unknown.
			notRead("AccessLevel: " + accFail)
		case cl.Volatile:
			it.Value = snapshots.None()
		case dtFail != "":
			notRead("DataType: " + dtFail)
		case valFail != "" && unknownStructure(r.value.dv):
			it.Value = snapshots.None()
			it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "structure of a DataType the client cannot decode"}
		case valFail != "" && acc.known && acc.level&byte(ua.AccessLevelTypeCurrentRead) == 0:
			it.Value = snapshots.None()
			it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "not readable (AccessLevel " + accessString(acc.level) + "): " + valFail}
		case valFail != "":
			notRead(valFail)
		case v.unitFail != "":
			// Recorded without its unit, the value would read as changed.
			notRead("EngineeringUnits: " + v.unitFail)
		default:
			val, ok, reason := canonical(r.value.dv.Value, unit)
			if sv, isRef := stableValue(r.value.dv.Value, b.uris); isRef {
				val = sv
			}
			if r.value.whole != nil {
				val, ok = withUnit(*r.value.whole, unit), true
			}
			if name, isEnum := enumName(dtype, val); isEnum {
				it.Attrs[snapshots.AttrValueName] = name
			}
			it.Value = val
			switch {
			case !ok:
				it.Value = snapshots.None()
				it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: reason}
			case val == nullValue:
				// Good with an empty Variant: a server that has no value
				// yet (after a restart, before its link to the PLC is up)
				// or never has one. The value is recorded, so that the
				// snapshot stays complete and an approved empty value
				// that later holds 42 is a change; but no value is no
				// reading of one: 42 followed by empty is not a change
				// (diffing.Compare).
				it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: ReasonEmptyValue}
			}
		}
		if r.carried != nil && it.Provenance.Source == "" {
			it.Provenance = b.carriedProvenance(r.carried, cl.Volatile)
			b.carried++
		}
		if carryable(&it) {
			ops := 1
			if cl.Volatile {
				ops = 0
			}
			b.next.add(v, ops, r.value.dv)
			if ops == 1 && retyped(dtype, r.value) {
				// A server whose Values contradict the DataType it states
				// gets the re-read every time.
				b.next.addRecheck(v, r.dtype.dv, r.access.dv)
			}
		} else {
			b.next.add(v, 3, r.value.dv, r.dtype.dv, r.access.dv)
		}
		b.add(it)
	}
}

// uniquePaths is the last guard before a snapshot leaves the connector:
// should two items still share a path (children of one name under two
// browse roots), the later ones get their node id appended, or for a
// numeric node id their browse root's ("{root nsu=urn:plant;s=DB2}"), or
// a counter, and say so in attrs, so one odd node never makes the
// snapshot invalid and a restart that renumbers nodes moves no path.
func (b *snap) uniquePaths() {
	defer func() { b.rootOf = nil }()
	sort.SliceStable(b.s.Items, func(i, j int) bool { return b.s.Items[i].Path < b.s.Items[j].Path })
	used := map[string]bool{}
	for i := range b.s.Items {
		used[b.s.Items[i].Path] = true
	}
	prev := ""
	for i := range b.s.Items {
		it := &b.s.Items[i]
		orig := it.Path
		if i == 0 || orig != prev {
			prev = orig
			continue
		}
		suffix := it.Attrs[snapshots.AttrNodeID]
		if root := b.rootOf[suffix]; root != "" && numericKey(suffix) {
			// Two browse roots with a child of one name: the root tells
			// them apart, not a number the server may give anew on restart.
			suffix = "root " + root
		}
		for n := 2; suffix == "" || used[orig+"{"+escapeSegment(suffix)+"}"]; n++ {
			suffix = "duplicate " + strconv.Itoa(n)
		}
		it.Path = orig + "{" + escapeSegment(suffix) + "}"
		used[it.Path] = true
		attrs := map[string]string{"path_collision": orig}
		for k, v := range it.Attrs {
			attrs[k] = v
		}
		it.Attrs = attrs
	}
}

// Plan implements connectors.Connector.
func (c *Connector) Plan(prev *snapshots.Snapshot) (*connectors.Plan, error) {
	if prev != nil && prev.Status.Complete {
		p := connectors.PlanFromSnapshot(prev)
		wireRequests(p)
		p.Notes = append(p.Notes,
			"counts are requests on the wire: each connection's Hello, OpenSecureChannel and CloseSecureChannel included; the rate limit applies to the gated steps (one per GetEndpoints, Connect and CloseSession row)",
			"after a full read, DataType and AccessLevel are carried forward and only Values are read; a forced full read (daemon.full_read_every) sends what the first snapshot did")
		if c.set.secure() {
			// The secured messages' sizes vary by a few bytes between two
			// sessions of an unchanged server (measured: up to 3 bytes per
			// snapshot under Sign and SignAndEncrypt): padding to the
			// cipher block, and what gopcua's secure channel sends.
			p.BytesApprox = true
			p.Notes = append(p.Notes, "bytes sent are approximate under Sign and SignAndEncrypt: secured messages vary in size (padding to the cipher block), so each request may differ by up to 16 bytes; request counts are exact")
		}
		return p, nil
	}
	p := &connectors.Plan{Device: c.dev.Name, Protocol: "opcua", Endpoint: c.dev.Endpoint, Basis: "estimate from the config (no complete snapshot stored yet)"}
	// Per root: one Browse per level at least, and the nodes of a level in
	// requests of defaultBrowseOps; its variables read apart from other
	// roots'.
	nodes, browses, reads := 0, 0, 0
	for _, r := range c.set.roots {
		nodes += r.maxNodes
		browses += (r.maxNodes+defaultBrowseOps-1)/defaultBrowseOps + r.maxDepth
		reads += (3*r.maxNodes + defaultReadOps - 1) / defaultReadOps
	}
	p.Requests = []snapshots.RequestCount{
		{Kind: KindGetEndpoints, Object: "endpoints", Count: 1},
		{Kind: KindConnect, Object: "session", Count: 1},
		{Kind: KindRead, Object: "ServerStatus", Count: 2},
		{Kind: KindBrowse, Object: "address space", Count: max(1, browses)},
		{Kind: KindRead, Object: "variables", Count: max(1, reads)},
		{Kind: KindClose, Object: "session", Count: 1},
	}
	p.Notes = append(p.Notes, fmt.Sprintf("estimate, not a bound: it assumes every root holds max_nodes nodes (%d in all) and the server takes %d read and %d browse operations per request; a server advertising lower OperationLimits, refusing requests as too large or paging references with BrowseNext costs more. The first snapshot records the exact plan", nodes, defaultReadOps, defaultBrowseOps))
	wireRequests(p)
	return p, nil
}

// wireMessages are the messages each gated step sends: one gated step may
// open a connection (Hello), a secure channel and a session.
var wireMessages = sync.OnceValue(func() map[string][]string {
	return map[string][]string{
		KindGetEndpoints: {"Hello", "OpenSecureChannel", "GetEndpoints", "CloseSecureChannel"},
		// gopcua's Connect reads the NamespaceArray itself once the session
		// is active.
		KindConnect: {"Hello", "OpenSecureChannel", "CreateSession", "ActivateSession", "Read (NamespaceArray)"},
		KindClose:   {"CloseSession", "CloseSecureChannel"},
	}
})

// wireRequests turns p's gated steps into requests on the wire: a step
// that sends several messages counts each (its row names them, its bytes
// are theirs together); p.Steps keeps the gated steps.
func wireRequests(p *connectors.Plan) {
	p.Steps = 0
	for i, r := range p.Requests {
		p.Steps += r.Count
		if msgs, ok := wireMessages()[r.Kind]; ok {
			p.Requests[i].Object = strings.Join(msgs, ", ")
			p.Requests[i].Count = r.Count * len(msgs)
		}
	}
}
