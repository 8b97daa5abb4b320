// Package opcua is plcwatch's read-only OPC UA connector, on
// github.com/gopcua/opcua. It records the server's build info, endpoints,
// security policies and certificate, and the configured subtrees browsed
// recursively with bounds, each variable's value, data type, access level and
// engineering unit, classified by the config's rules.
package opcua

import (
	"context"
	"fmt"
	"strings"
	"time"

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

// Batch sizes keep each request small for old servers.
const (
	browseBatch = 50
	readBatch   = 100
)

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
	return c.gate.Do(ctx, connectors.Request{Kind: kind, Object: object, Size: size}, func(ctx context.Context) (int, error) {
		before := c.meter.received()
		err := call(ctx)
		// A closed socket reads as 0: never count negative bytes.
		return int(max(0, c.meter.received()-before)), err
	})
}

// snap is one snapshot in progress.
type snap struct {
	s       *snapshots.Snapshot
	uris    []string
	reasons []string
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
	start := time.Now()
	b := &snap{s: &snapshots.Snapshot{Device: c.dev.Name, Protocol: "opcua", Endpoint: c.dev.Endpoint, TakenAt: start}}
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
	var sess session
	err = c.do(ctx, KindConnect, "session", 0, func(ctx context.Context) error {
		var e error
		sess, e = openSession(ctx, d, ep, id)
		return e
	})
	if err != nil {
		return nil, fmt.Errorf("device %s: connecting to %s (%s/%s): %w", c.dev.Name, c.dev.Endpoint, c.set.policy, c.set.mode, err)
	}
	closed := false
	closeSession := func() {
		if closed {
			return
		}
		closed = true
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.set.timeout)
		defer cancel()
		c.do(cctx, KindClose, "session", 0, func(ctx context.Context) error {
			sess.CloseSession(ctx)
			return sess.Close(ctx)
		})
	}
	defer closeSession()

	if err := c.readServer(ctx, sess, b); err != nil {
		b.partial("server status: %v", err)
	}
	for _, r := range c.set.roots {
		if len(b.reasons) > 0 && ctx.Err() != nil {
			break
		}
		if err := c.browseRoot(ctx, sess, r, b); err != nil {
			b.partial("browsing %s: %v", r.spec, err)
		}
	}
	closeSession() // counted in the snapshot's cost, as the plan shows it
	s := b.s
	s.Status = snapshots.Status{Complete: len(b.reasons) == 0, Reasons: b.reasons}
	s.Cost = c.gate.Cost()
	s.Cost.Duration = time.Since(start)
	s.RulesDigest = c.rules.Digest()
	return s, nil
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

// readServer reads the namespace array, ServerStatus and BuildInfo.
func (c *Connector) readServer(ctx context.Context, sess session, b *snap) error {
	ids := []uint32{id.Server_NamespaceArray, id.Server_ServerStatus_BuildInfo_ManufacturerName, id.Server_ServerStatus_BuildInfo_ProductName,
		id.Server_ServerStatus_BuildInfo_ProductURI, id.Server_ServerStatus_BuildInfo_SoftwareVersion, id.Server_ServerStatus_BuildInfo_BuildNumber,
		id.Server_ServerStatus_BuildInfo_BuildDate, id.Server_ServerStatus_StartTime, id.Server_ServerStatus_State}
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	for _, n := range ids {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, n), AttributeID: ua.AttributeIDValue})
	}
	var resp *ua.ReadResponse
	if err := c.do(ctx, KindRead, "ServerStatus", 0, func(ctx context.Context) error {
		var e error
		resp, e = sess.Read(ctx, req)
		return e
	}); err != nil {
		return err
	}
	if len(resp.Results) != len(ids) {
		return fmt.Errorf("ServerStatus read: %d results for %d nodes", len(resp.Results), len(ids))
	}
	str := func(i int) string {
		r := resp.Results[i]
		if r == nil || r.Status != ua.StatusOK || r.Value == nil {
			return ""
		}
		return fmt.Sprint(r.Value.Value())
	}
	if r := resp.Results[0]; r != nil && r.Value != nil {
		if uris, ok := r.Value.Value().([]string); ok {
			b.uris = uris
		}
	}
	idn := snapshots.Identity{Vendor: str(1), Model: str(2), Firmware: strings.TrimSpace(str(4) + " build " + str(5)), Name: str(3)}
	if str(5) == "" {
		idn.Firmware = str(4)
	}
	b.s.Identity = idn
	for _, f := range []struct {
		path string
		kind snapshots.Kind
		i    int
		vol  bool
	}{
		{"server/manufacturer", snapshots.KindIdentity, 1, false},
		{"server/product_name", snapshots.KindIdentity, 2, false},
		{"server/product_uri", snapshots.KindIdentity, 3, false},
		{"server/software_version", snapshots.KindFirmware, 4, false},
		{"server/build_number", snapshots.KindFirmware, 5, false},
		{"server/build_date", snapshots.KindFirmware, 6, false},
		{"server/start_time", snapshots.KindInfo, 7, true},
		{"server/state", snapshots.KindMode, 8, false},
	} {
		r := resp.Results[f.i]
		if r == nil || r.Status != ua.StatusOK {
			b.add(snapshots.Item{Path: f.path, Kind: f.kind, Value: snapshots.None(),
				Provenance: snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "server answered " + statusName(statusOf(r))}})
			continue
		}
		it := snapshots.Item{Path: f.path, Kind: f.kind, Volatile: f.vol}
		if !f.vol {
			v, ok, reason := canonical(r.Value, "")
			if !ok {
				it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: reason}
			}
			it.Value = v
		}
		b.add(it)
	}
	return nil
}

func statusOf(r *ua.DataValue) ua.StatusCode {
	if r == nil {
		return ua.StatusBadUnexpectedError
	}
	return r.Status
}

// node is one node found while browsing.
type node struct {
	id    *ua.NodeID
	path  string // "opcua/Plant/Tank1/HighLimit"
	name  string
	class ua.NodeClass
	depth int
	// parent of a property (EngineeringUnits) to attach the unit to
	euOf *node
	unit string
}

// browseRoot walks one configured subtree breadth first within its bounds,
// then reads every variable found.
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
	level := []*node{{id: rootID, path: "opcua", depth: 0}}
	var vars []*node
	count := 0
	for len(level) > 0 {
		var next []*node
		for i := 0; i < len(level); i += browseBatch {
			batch := level[i:min(i+browseBatch, len(level))]
			children, err := c.browse(ctx, sess, batch, b)
			if err != nil {
				return err
			}
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
		}
		level = next
	}
	return c.readVars(ctx, sess, vars, b)
}

// browse returns the hierarchical children (objects and variables) of a
// batch of nodes, following continuation points.
func (c *Connector) browse(ctx context.Context, sess session, parents []*node, b *snap) ([]*node, error) {
	req := &ua.BrowseRequest{RequestedMaxReferencesPerNode: 1000}
	for _, p := range parents {
		req.NodesToBrowse = append(req.NodesToBrowse, &ua.BrowseDescription{
			NodeID: p.id, BrowseDirection: ua.BrowseDirectionForward, ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
			IncludeSubtypes: true, NodeClassMask: uint32(ua.NodeClassObject | ua.NodeClassVariable), ResultMask: uint32(ua.BrowseResultMaskAll),
		})
	}
	var resp *ua.BrowseResponse
	if err := c.do(ctx, KindBrowse, "address space", 0, func(ctx context.Context) error {
		var e error
		resp, e = sess.Browse(ctx, req)
		return e
	}); err != nil {
		return nil, err
	}
	if len(resp.Results) != len(parents) {
		return nil, fmt.Errorf("browse: %d results for %d nodes", len(resp.Results), len(parents))
	}
	var out []*node
	for i, res := range resp.Results {
		p := parents[i]
		if res.StatusCode != ua.StatusOK {
			b.partial("%s: browse answered %s", p.path, statusName(res.StatusCode))
			continue
		}
		refs := res.References
		cp := res.ContinuationPoint
		for len(cp) > 0 {
			var nr *ua.BrowseNextResponse
			if err := c.do(ctx, KindBrowseNext, "address space", 0, func(ctx context.Context) error {
				var e error
				nr, e = sess.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
				return e
			}); err != nil {
				return nil, err
			}
			if len(nr.Results) != 1 || nr.Results[0].StatusCode != ua.StatusOK {
				b.partial("%s: BrowseNext failed", p.path)
				break
			}
			refs = append(refs, nr.Results[0].References...)
			cp = nr.Results[0].ContinuationPoint
		}
		for _, ref := range refs {
			if ref == nil || ref.NodeID == nil || ref.NodeID.NodeID == nil || ref.BrowseName == nil {
				continue
			}
			nid := ref.NodeID.NodeID
			if nid.Namespace() == 0 || ref.NodeID.ServerIndex != 0 {
				continue // the standard's own nodes (Server object) and other servers
			}
			name := ref.BrowseName.Name
			ch := &node{id: nid, name: name, class: ref.NodeClass, depth: p.depth + 1, path: p.path + "/" + escapeSegment(name)}
			if name == "EngineeringUnits" && p.class == ua.NodeClassVariable {
				ch.euOf = p
			}
			out = append(out, ch)
		}
	}
	return out, nil
}

// escapeSegment keeps '/' out of path segments.
func escapeSegment(s string) string { return strings.ReplaceAll(s, "/", "%2F") }

// readVars reads value, data type and access level of every variable and
// records them as classified items.
func (c *Connector) readVars(ctx context.Context, sess session, vars []*node, b *snap) error {
	attrs := []ua.AttributeID{ua.AttributeIDValue, ua.AttributeIDDataType, ua.AttributeIDAccessLevel}
	res := make([]varResult, len(vars))
	for i := 0; i < len(vars); i += readBatch {
		batch := vars[i:min(i+readBatch, len(vars))]
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
		for _, v := range batch {
			for _, a := range attrs {
				req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: v.id, AttributeID: a})
			}
		}
		var resp *ua.ReadResponse
		if err := c.do(ctx, KindRead, "variables", 0, func(ctx context.Context) error {
			var e error
			resp, e = sess.Read(ctx, req)
			return e
		}); err != nil {
			c.addVars(vars[:i], res[:i], b)
			return err
		}
		if len(resp.Results) != len(req.NodesToRead) {
			c.addVars(vars[:i], res[:i], b)
			return fmt.Errorf("read: %d results for %d attributes", len(resp.Results), len(req.NodesToRead))
		}
		for j := range batch {
			res[i+j] = varResult{resp.Results[3*j], resp.Results[3*j+1], resp.Results[3*j+2]}
		}
	}
	// Units first, from EngineeringUnits properties.
	for i, v := range vars {
		if v.euOf != nil && res[i].value != nil && res[i].value.Value != nil {
			if eu, ok := res[i].value.Value.Value().(*ua.ExtensionObject); ok {
				if info, ok := eu.Value.(*ua.EUInformation); ok {
					v.euOf.unit = unitText(info)
				}
			}
		}
	}
	c.addVars(vars, res, b)
	return nil
}

// varResult is what one variable's read returned.
type varResult struct {
	value, dtype, access *ua.DataValue
}

func (c *Connector) addVars(vars []*node, res []varResult, b *snap) {
	for i, v := range vars {
		if v.euOf != nil {
			continue // folded into its variable's unit
		}
		r := res[i]
		dtype := ""
		if r.dtype != nil && r.dtype.Status == ua.StatusOK {
			dtype = dataTypeName(r.dtype.Value, b.uris)
		}
		acc, hasAcc := byte(0), false
		if r.access != nil && r.access.Status == ua.StatusOK {
			acc, hasAcc = accessLevel(r.access.Value)
		}
		writable := acc&byte(ua.AccessLevelTypeCurrentWrite) != 0
		def := classify.Result{Kind: snapshots.KindInfo, Volatile: true}
		if writable {
			def = classify.Result{Kind: snapshots.KindSetpoint}
		}
		cl := c.rules.Classify(classify.Target{Path: v.path, Name: v.name, NodeClass: "Variable", DataType: dtype, Writable: writable, HasAccess: hasAcc}, def)
		if cl.Ignore {
			continue
		}
		unit := v.unit
		if cl.Unit != "" {
			unit = cl.Unit
		}
		it := snapshots.Item{Path: v.path, Kind: cl.Kind, Volatile: cl.Volatile, Deadband: cl.Deadband,
			Attrs: map[string]string{"node_id": stableID(v.id, b.uris), snapshots.AttrDataType: dtype, "access": accessString(acc)}}
		switch {
		case cl.Volatile:
			it.Value = snapshots.None()
		case r.value == nil:
			it.Value = snapshots.None()
			it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: "not read"}
		case r.value.Status != ua.StatusOK:
			it.Value = snapshots.None()
			it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: "server answered " + statusName(r.value.Status)}
		default:
			val, ok, reason := canonical(r.value.Value, unit)
			it.Value = val
			if !ok {
				it.Provenance = snapshots.Provenance{Source: snapshots.SourceNotObservable, Reason: reason}
			}
		}
		b.add(it)
	}
}

// Plan implements connectors.Connector.
func (c *Connector) Plan(prev *snapshots.Snapshot) (*connectors.Plan, error) {
	if prev != nil && prev.Status.Complete {
		p := connectors.PlanFromSnapshot(prev)
		p.Notes = append(p.Notes, "opcua.Connect is the secure channel and session handshake (OpenSecureChannel, CreateSession, ActivateSession): one gated step")
		return p, nil
	}
	p := &connectors.Plan{Device: c.dev.Name, Protocol: "opcua", Endpoint: c.dev.Endpoint, Basis: "estimate from the config (no complete snapshot stored yet)"}
	nodes := 0
	for _, r := range c.set.roots {
		nodes += r.maxNodes
	}
	p.Requests = []snapshots.RequestCount{
		{Kind: KindGetEndpoints, Object: "endpoints", Count: 1},
		{Kind: KindConnect, Object: "session", Count: 1},
		{Kind: KindRead, Object: "ServerStatus", Count: 1},
		{Kind: KindBrowse, Object: "address space", Count: max(1, nodes/browseBatch)},
		{Kind: KindRead, Object: "variables", Count: max(1, nodes/readBatch)},
		{Kind: KindClose, Object: "session", Count: 1},
	}
	p.Notes = append(p.Notes, fmt.Sprintf("upper bound: browse and read counts assume every root holds max_nodes nodes (%d in all); the first snapshot records the exact plan", nodes))
	return p, nil
}
