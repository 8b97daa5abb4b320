// Package opcua is plcwatch's OPC UA simulator: a gopcua server shaped like
// a small plant controller (programs with a code hash and version, setpoints
// with engineering units, live process values, BuildInfo), for tests and the
// demo.
//
// It listens on a loopback address of the caller's choosing (port 0 allowed),
// counts every request a client sends by kind, refuses and counts anything
// outside its read allowlist (Write, Call, AddNodes, DeleteNodes,
// HistoryUpdate, ...), and has mutators that act like an engineer (change a
// setpoint, download a program, flash firmware) and fault switches (drop the
// connection after N service requests, stall).
//
// How requests are observed: gopcua v0.9.0 has no interceptor. Its server
// hands each decoded service request to the configured Logger's Debug method
// ("handleService: Got: %T") before dispatching it; the simulator's logger
// adapter counts the request object it is given there. Channel-level
// messages (Hello, OpenSecureChannel, CloseSecureChannel) never reach that
// point: a small proxy in front of the gopcua server reads the cleartext
// UACP chunk headers and counts them, and applies the fault switches.
//
// gopcua's server also prints through the standard library's global logger
// (about 20 "can't find node" lines at start). The package never changes the
// global logger; a command may route it with log.SetOutput(LibraryLogWriter(l)).
package opcua

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
	"github.com/rs/zerolog"
)

// Options configure a simulator.
type Options struct {
	// Listen is the address to listen on, "127.0.0.1:0" by default.
	Listen string
	// Scenario is the address space; nil means ScenarioFile, or the
	// built-in DefaultScenario when that is empty too.
	Scenario     *Scenario
	ScenarioFile string
	// Security lists the endpoints to offer as "Policy/Mode" pairs:
	// "None/None", "Basic256Sha256/SignAndEncrypt", "Basic256Sha256/Sign".
	// Default: None/None and Basic256Sha256/SignAndEncrypt.
	Security []string
	// CertificateFile and KeyFile give the server's application instance
	// certificate (PEM or DER) and RSA key (PEM); a fresh self-signed pair
	// is generated when they are empty.
	CertificateFile string
	KeyFile         string
	// StateDir keeps the generated certificate and key (opcua-sim.der,
	// opcua-sim.key, mode 0600) so that a restarted simulator presents the
	// same certificate, as a real server does. Empty: the directory of
	// ScenarioFile when one is given, else a fresh pair in memory.
	StateDir string
	// MaxNodesPerRead, when > 0, refuses a Read with more operations with
	// BadTooManyOperations, as servers do. AdvertiseLimits also publishes
	// it (and MaxNodesPerBrowse) in Server/ServerCapabilities/OperationLimits;
	// without it the limit is enforced but not advertised (older servers).
	MaxNodesPerRead   int
	MaxNodesPerBrowse int
	AdvertiseLimits   bool
	// Logger receives the simulator's and gopcua's server log.
	Logger zerolog.Logger
	// OnFrame, when not nil, is called as each complete frame (one OPC UA
	// TCP chunk) arrives from a client, before it is forwarded or counted:
	// benchmarks timestamp the requests the server saw with it. A proxy in
	// front cannot, since the server answers GetEndpoints only for its own
	// URL.
	OnFrame func()
}

// ReadKinds are the request kinds the simulator serves: channel messages
// and read-only services. Everything else is refused and counted.
var ReadKinds = []string{
	"Hello", "OpenSecureChannel", "CloseSecureChannel",
	"GetEndpoints", "FindServers", "FindServersOnNetwork",
	"CreateSession", "ActivateSession", "CloseSession", "Cancel",
	"Browse", "BrowseNext", "TranslateBrowsePathsToNodeIds", "RegisterNodes", "UnregisterNodes",
	"Read", "HistoryRead", "QueryFirst", "QueryNext",
	"CreateSubscription", "ModifySubscription", "SetPublishingMode", "Publish", "Republish",
	"TransferSubscriptions", "DeleteSubscriptions", "CreateMonitoredItems", "ModifyMonitoredItems",
	"SetMonitoringMode", "SetTriggering", "DeleteMonitoredItems",
}

// refusedServices are answered with BadUserAccessDenied without touching
// the address space.
var refusedServices = []uint16{
	id.WriteRequest_Encoding_DefaultBinary, id.HistoryUpdateRequest_Encoding_DefaultBinary,
	id.CallRequest_Encoding_DefaultBinary, id.AddNodesRequest_Encoding_DefaultBinary,
	id.AddReferencesRequest_Encoding_DefaultBinary, id.DeleteNodesRequest_Encoding_DefaultBinary,
	id.DeleteReferencesRequest_Encoding_DefaultBinary, id.RegisterServerRequest_Encoding_DefaultBinary,
	id.RegisterServer2Request_Encoding_DefaultBinary,
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	log       zerolog.Logger
	srv       *server.Server
	ns        *plantNS
	ln        net.Listener
	innerAddr string
	endpoint  string
	cert      []byte
	cancel    context.CancelFunc

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	clients int           // client connections open
	idle    chan struct{} // closed when clients drops to 0 (WaitIdle)
	closed  bool
	// counts holds one *atomic.Int64 per request kind; a request is
	// counted when it arrives, before it is answered.
	counts  sync.Map
	refused atomic.Int64
	faults  atomic.Int64
	dropAt  int64
	stallAt int64
	release chan struct{}
	closing chan struct{}

	msgs     atomic.Int64
	dropped  atomic.Int64
	stalled  atomic.Int64
	bytesIn  atomic.Int64
	bytesOut atomic.Int64
	wg       sync.WaitGroup

	idMu     sync.Mutex
	identity Identity
	limits   Options
}

// Start starts a simulator and returns once it accepts connections. Stop it
// with Close. ctx bounds the server's life as well.
func Start(ctx context.Context, opt Options) (*Server, error) {
	sc := opt.Scenario
	if sc == nil && opt.ScenarioFile != "" {
		var err error
		if sc, err = LoadScenario(opt.ScenarioFile); err != nil {
			return nil, err
		}
	}
	if sc == nil {
		sc = DefaultScenario()
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	sec := opt.Security
	if len(sec) == 0 {
		sec = []string{"None/None", "Basic256Sha256/SignAndEncrypt"}
	}
	var cert []byte
	var key *rsa.PrivateKey
	state := opt.StateDir
	if state == "" && opt.ScenarioFile != "" {
		state = filepath.Dir(opt.ScenarioFile)
	}
	if opt.CertificateFile != "" || opt.KeyFile != "" {
		c, k, err := loadKeyPair(opt.CertificateFile, opt.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("simulator certificate: %w", err)
		}
		cert, key = c, k
	} else if state != "" {
		c, k, err := stateKeyPair(state, sc.Identity.ApplicationURI, sc.Identity.ApplicationName)
		if err != nil {
			return nil, fmt.Errorf("simulator certificate: %w", err)
		}
		cert, key = c, k
	} else {
		c, k, err := newCertificate(sc.Identity.ApplicationURI, sc.Identity.ApplicationName)
		if err != nil {
			return nil, fmt.Errorf("simulator certificate: %w", err)
		}
		cert, key = c, k
	}
	listen := opt.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("simulator listen: %w", err)
	}
	s := &Server{
		log:      opt.Logger.With().Str("component", "opcua-sim").Logger(),
		ln:       ln,
		cert:     cert,
		conns:    map[net.Conn]struct{}{},
		limits:   opt,
		dropAt:   -1,
		stallAt:  -1,
		release:  make(chan struct{}),
		closing:  make(chan struct{}),
		identity: sc.Identity,
	}
	outer := ln.Addr().(*net.TCPAddr)
	s.endpoint = fmt.Sprintf("opc.tcp://%s", net.JoinHostPort(outer.IP.String(), strconv.Itoa(outer.Port)))

	// gopcua's server cannot report the port it bound, so the inner port is
	// chosen here; another process may take it in between, hence the retry.
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			ln.Close()
			return nil, err
		}
		if lastErr = s.startInner(ctx, sc, sec, cert, key, outer, port); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		ln.Close()
		return nil, fmt.Errorf("starting gopcua server: %w", lastErr)
	}
	s.wg.Add(1)
	go s.acceptLoop()
	s.log.Info().Str("endpoint", s.endpoint).Int("nodes", len(s.ns.byID)).Msg("OPC UA simulator listening")
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choosing a port for the inner server: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) startInner(ctx context.Context, sc *Scenario, sec []string, cert []byte, key *rsa.PrivateKey, outer *net.TCPAddr, port int) error {
	opts := []server.Option{
		server.EndPoint("127.0.0.1", port),
		server.EndPoint(outer.IP.String(), outer.Port),
		server.ServerName(sc.Identity.ApplicationName),
		server.ManufacturerName(sc.Identity.Manufacturer),
		server.ProductName(sc.Identity.Product),
		server.SoftwareVersion(sc.Identity.SoftwareVersion),
		server.Certificate(cert),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.SetLogger(gopcuaLog{s}),
	}
	opts = append(opts, server.PrivateKey(key))
	for _, p := range sec {
		pol, mode, ok := strings.Cut(p, "/")
		m := ua.MessageSecurityModeFromString(mode)
		if !ok || m == ua.MessageSecurityModeInvalid || (pol != "None" && pol != "Basic256Sha256") {
			return fmt.Errorf("security %q: want None/None, Basic256Sha256/Sign or Basic256Sha256/SignAndEncrypt", p)
		}
		opts = append(opts, server.EnableSecurity(pol, m))
	}
	srv := server.New(opts...)
	ns := newPlantNS(sc, time.Now())
	srv.AddNamespace(ns)
	ns.build(sc.Nodes)
	objects := srv.Node(ua.NewNumericNodeID(0, id.ObjectsFolder))
	for _, r := range ns.roots {
		objects.AddRef(r.stub, id.Organizes, true)
	}
	s.overrideBuildInfo(srv)
	s.operationLimits(srv)
	srv.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, s.read(srv))
	for _, t := range refusedServices {
		srv.RegisterHandler(t, refuse)
	}
	sctx, cancel := context.WithCancel(ctx)
	s.innerAddr = fmt.Sprintf("127.0.0.1:%d", port)
	if err := srv.Start(sctx); err != nil {
		cancel()
		return err
	}
	s.srv, s.ns, s.cancel = srv, ns, cancel
	return nil
}

func refuse(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	return fault(r, ua.StatusBadUserAccessDenied), nil
}

// fault is a ServiceFault answering r with code.
func fault(r ua.Request, code ua.StatusCode) *ua.ServiceFault {
	return &ua.ServiceFault{ResponseHeader: &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      r.Header().RequestHandle,
		ServiceResult:      code,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}}
}

// overrideBuildInfo replaces gopcua's BuildInfo variables (which report the
// version as the build number and name ManufacturerName "ProductName") with
// nodes that read the simulator's identity, so SetFirmware is visible.
func (s *Server) overrideBuildInfo(srv *server.Server) {
	ns0, err := srv.Namespace(0)
	if err != nil {
		return
	}
	str := func(f func(Identity) string) server.ValueFunc {
		return func() *ua.DataValue {
			s.idMu.Lock()
			defer s.idMu.Unlock()
			return server.DataValueFromValue(f(s.identity))
		}
	}
	for _, n := range []struct {
		id   uint32
		name string
		val  server.ValueFunc
	}{
		{id.Server_ServerStatus_BuildInfo_ProductName, "ProductName", str(func(i Identity) string { return i.Product })},
		{id.Server_ServerStatus_BuildInfo_ProductURI, "ProductUri", str(func(i Identity) string { return i.ProductURI })},
		{id.Server_ServerStatus_BuildInfo_ManufacturerName, "ManufacturerName", str(func(i Identity) string { return i.Manufacturer })},
		{id.Server_ServerStatus_BuildInfo_SoftwareVersion, "SoftwareVersion", str(func(i Identity) string { return i.SoftwareVersion })},
		{id.Server_ServerStatus_BuildInfo_BuildNumber, "BuildNumber", str(func(i Identity) string { return i.BuildNumber })},
	} {
		ns0.AddNode(server.NewNode(ua.NewNumericNodeID(0, n.id), server.Attributes{
			ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			ua.AttributeIDBrowseName: server.DataValueFromValue(&ua.QualifiedName{Name: n.name}),
			ua.AttributeIDDataType:   server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.String)),
		}, nil, n.val))
	}
	// gopcua reports its start as the BuildDate; a real server's build
	// date is fixed.
	ns0.AddNode(server.NewNode(ua.NewNumericNodeID(0, id.Server_ServerStatus_BuildInfo_BuildDate), server.Attributes{
		ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName: server.DataValueFromValue(&ua.QualifiedName{Name: "BuildDate"}),
		ua.AttributeIDDataType:   server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.UtcTime)),
	}, nil, func() *ua.DataValue {
		s.idMu.Lock()
		defer s.idMu.Unlock()
		return server.DataValueFromValue(s.identity.BuildDate)
	}))
}

// operationLimits publishes MaxNodesPerRead and MaxNodesPerBrowse in
// Server/ServerCapabilities/OperationLimits when the options say so.
func (s *Server) operationLimits(srv *server.Server) {
	if !s.limits.AdvertiseLimits {
		return
	}
	ns0, err := srv.Namespace(0)
	if err != nil {
		return
	}
	for _, n := range []struct {
		id   uint32
		name string
		v    int
	}{
		{id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead, "MaxNodesPerRead", s.limits.MaxNodesPerRead},
		{id.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse, "MaxNodesPerBrowse", s.limits.MaxNodesPerBrowse},
	} {
		v := uint32(max(n.v, 0))
		ns0.AddNode(server.NewNode(ua.NewNumericNodeID(0, n.id), server.Attributes{
			ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			ua.AttributeIDBrowseName: server.DataValueFromValue(&ua.QualifiedName{Name: n.name}),
			ua.AttributeIDDataType:   server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.UInt32)),
		}, nil, func() *ua.DataValue { return server.DataValueFromValue(v) }))
	}
}

// read is the simulator's Read service: gopcua's, plus the request limit
// and the faults a client must survive (a value too large to send, a Bad
// status). A refused request is answered with a ServiceFault.
func (s *Server) read(srv *server.Server) server.Handler {
	return func(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
		req, ok := r.(*ua.ReadRequest)
		if !ok {
			return nil, fmt.Errorf("read: got %T", r)
		}
		if m := s.limits.MaxNodesPerRead; m > 0 && len(req.NodesToRead) > m {
			s.faults.Add(1)
			return fault(r, ua.StatusBadTooManyOperations), nil
		}
		results := make([]*ua.DataValue, len(req.NodesToRead))
		for i, n := range req.NodesToRead {
			if s.ns.huge(n.NodeID) && n.AttributeID == ua.AttributeIDValue {
				s.faults.Add(1)
				return fault(r, ua.StatusBadResponseTooLarge), nil
			}
			ns, err := srv.Namespace(int(n.NodeID.Namespace()))
			if err != nil {
				results[i] = bad(ua.StatusBadNodeIDUnknown)
				continue
			}
			results[i] = ns.Attribute(n.NodeID, n.AttributeID)
		}
		return &ua.ReadResponse{
			ResponseHeader: &ua.ResponseHeader{Timestamp: time.Now(), RequestHandle: req.RequestHeader.RequestHandle,
				ServiceDiagnostics: &ua.DiagnosticInfo{}, StringTable: []string{}, AdditionalHeader: ua.NewExtensionObject(nil)},
			Results:         results,
			DiagnosticInfos: []*ua.DiagnosticInfo{},
		}, nil
	}
}

// Faults returns how many requests the simulator refused as a whole
// (too many operations, a response too large).
func (s *Server) Faults() int { return int(s.faults.Load()) }

// Close stops the simulator and drops every connection. It is safe to call
// more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	err := s.srv.Close()
	s.cancel()
	s.wg.Wait()
	return err
}

// Addr returns the address the simulator listens on (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Endpoint returns the endpoint URL clients connect to.
func (s *Server) Endpoint() string { return s.endpoint }

// Certificate returns the server's application instance certificate (DER).
func (s *Server) Certificate() []byte { return append([]byte(nil), s.cert...) }

// Thumbprint returns the hex SHA-256 of the server certificate's DER bytes.
func (s *Server) Thumbprint() string {
	sum := sha256.Sum256(s.cert)
	return hex.EncodeToString(sum[:])
}

// Requests returns the requests received since start by kind: service names
// such as "Read" and "Browse", and the channel messages "Hello",
// "OpenSecureChannel" and "CloseSecureChannel". Refused requests are
// included under their own kind.
func (s *Server) Requests() map[string]int {
	m := map[string]int{}
	s.counts.Range(func(k, v any) bool {
		m[k.(string)] = int(v.(*atomic.Int64).Load())
		return true
	})
	return m
}

// Refused returns how many requests outside the read allowlist arrived.
func (s *Server) Refused() int { return int(s.refused.Load()) }

// Bytes returns the bytes received from and sent to clients.
func (s *Server) Bytes() (in, out int64) { return s.bytesIn.Load(), s.bytesOut.Load() }

// Stalled returns how many service requests the stall fault has held.
func (s *Server) Stalled() int { return int(s.stalled.Load()) }

// Dropped returns how many connections the drop fault has cut.
func (s *Server) Dropped() int { return int(s.dropped.Load()) }

// count counts one request of kind as it arrives, before any reply.
func (s *Server) count(kind string) {
	c, ok := s.counts.Load(kind)
	if !ok {
		c, _ = s.counts.LoadOrStore(kind, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

var readKind = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, k := range ReadKinds {
		m[k] = true
	}
	return m
})

// service records one decoded service request.
func (s *Server) service(req ua.Request) {
	t := reflect.TypeOf(req)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	kind := strings.TrimSuffix(t.Name(), "Request")
	s.count(kind)
	if !readKind()[kind] {
		s.refused.Add(1)
		s.log.Warn().Str("service", kind).Msg("refused a request outside the read allowlist")
	}
}

// SetStatus makes a variable answer code instead of its value (a Bad or
// Uncertain status, as servers do after a restart or while their PLC link
// is down); ua.StatusOK restores the value.
func (s *Server) SetStatus(path string, code ua.StatusCode) error {
	n := s.ns.at(path)
	if n == nil || n.class != ua.NodeClassVariable {
		return fmt.Errorf("set status %s: %w", path, ErrNoNode)
	}
	s.ns.mu.Lock()
	n.status = code
	s.ns.mu.Unlock()
	return nil
}

// SetHuge makes a variable's value too large to send: any Read of it is
// refused as a whole with BadResponseTooLarge, whatever else it asks for.
func (s *Server) SetHuge(path string, on bool) error {
	n := s.ns.at(path)
	if n == nil || n.class != ua.NodeClassVariable {
		return fmt.Errorf("set huge %s: %w", path, ErrNoNode)
	}
	s.ns.mu.Lock()
	n.huge = on
	s.ns.mu.Unlock()
	return nil
}

// DropAfter arms the drop fault: after n more service requests, every
// further one makes the simulator cut its connection instead of answering,
// until Heal.
func (s *Server) DropAfter(n int) {
	s.mu.Lock()
	s.dropAt = s.msgs.Load() + int64(n)
	s.mu.Unlock()
}

// StallAfter arms the stall fault: after n more service requests, further
// ones are held (not forwarded, not answered) until Heal or Close.
func (s *Server) StallAfter(n int) {
	s.mu.Lock()
	s.stallAt = s.msgs.Load() + int64(n)
	s.mu.Unlock()
}

// Heal disarms the faults and releases stalled requests.
func (s *Server) Heal() {
	s.mu.Lock()
	s.dropAt, s.stallAt = -1, -1
	close(s.release)
	s.release = make(chan struct{})
	s.mu.Unlock()
}

// ErrNoNode is returned by mutators for a path that names no suitable node.
var ErrNoNode = errors.New("no such node")

// Paths lists the browse paths of all nodes ("Plant/Tank1/Level"), sorted.
func (s *Server) Paths() []string {
	var ps []string
	s.ns.tree.RLock()
	defer s.ns.tree.RUnlock()
	for p := range s.ns.byPath {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// SetValue changes a variable's value as an engineer would from an
// engineering tool. v is converted to the variable's data type.
func (s *Server) SetValue(path string, v any) error {
	n := s.ns.at(path)
	if n == nil || n.class != ua.NodeClassVariable || (n.parent != nil && n.parent.prog != nil) || n.dataType == id.EUInformation {
		return fmt.Errorf("set value %s: %w (want a variable's browse path)", path, ErrNoNode)
	}
	cv, err := convert(typeName(n.dataType), v)
	if err != nil {
		return fmt.Errorf("set value %s: %w", path, err)
	}
	s.ns.mu.Lock()
	n.value = cv
	s.ns.mu.Unlock()
	return nil
}

// Value returns a variable's current value.
func (s *Server) Value(path string) (any, error) {
	n := s.ns.at(path)
	if n == nil || n.class != ua.NodeClassVariable {
		return nil, fmt.Errorf("value %s: %w", path, ErrNoNode)
	}
	s.ns.mu.Lock()
	defer s.ns.mu.Unlock()
	return s.ns.valueLocked(n, time.Now()), nil
}

// SetProgram downloads new content to a program: its CodeHash and Version
// change.
func (s *Server) SetProgram(path, code, version string) error {
	n := s.ns.at(path)
	if n == nil || n.prog == nil {
		return fmt.Errorf("set program %s: %w (want a program's browse path)", path, ErrNoNode)
	}
	s.ns.mu.Lock()
	n.prog.Code, n.prog.Version = code, version
	s.ns.mu.Unlock()
	return nil
}

// SetFirmware changes the reported software version and build number.
func (s *Server) SetFirmware(version, build string) {
	s.idMu.Lock()
	s.identity.SoftwareVersion, s.identity.BuildNumber = version, build
	s.idMu.Unlock()
}

// ChurnLive moves every live process value by a step, beyond what time
// alone does.
func (s *Server) ChurnLive() {
	s.ns.mu.Lock()
	s.ns.churn++
	s.ns.mu.Unlock()
}

// gopcuaLog adapts gopcua's printf-style server Logger to zerolog, and is
// the point where every decoded service request is counted (see the
// package doc).
type gopcuaLog struct{ s *Server }

const serviceMsg = "handleService: Got: %T\n"

func (g gopcuaLog) Debug(msg string, args ...any) {
	if msg == serviceMsg && len(args) == 1 {
		if req, ok := args[0].(ua.Request); ok {
			g.s.service(req)
		}
	}
	g.emit(g.s.log.Debug(), msg, args)
}

func (g gopcuaLog) Info(msg string, args ...any)  { g.emit(g.s.log.Debug(), msg, args) }
func (g gopcuaLog) Warn(msg string, args ...any)  { g.emit(g.s.log.Warn(), msg, args) }
func (g gopcuaLog) Error(msg string, args ...any) { g.emit(g.s.log.Warn(), msg, args) }

func (g gopcuaLog) emit(e *zerolog.Event, msg string, args []any) {
	if !e.Enabled() {
		return
	}
	e.Str("detail", strings.TrimSpace(fmt.Sprintf(msg, args...))).Msg("gopcua server")
}

// LibraryLogWriter returns a writer that forwards lines written to it (such
// as gopcua's use of the standard library logger) to l at debug level. A
// command may pass it to log.SetOutput; the package itself never changes
// the global logger.
func LibraryLogWriter(l zerolog.Logger) io.Writer { return libWriter{l} }

type libWriter struct{ l zerolog.Logger }

func (w libWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("detail", strings.TrimSpace(string(p))).Msg("gopcua library")
	return len(p), nil
}

// AddNode adds spec (and its children) under the object at parent, as an
// engineer downloading a new variable or object would.
func (s *Server) AddNode(parent string, spec NodeSpec) error {
	sc := &Scenario{Nodes: []NodeSpec{spec}}
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("add node under %s: %w", parent, err)
	}
	s.ns.tree.Lock()
	defer s.ns.tree.Unlock()
	p := s.ns.byPath[parent]
	if p == nil || p.class != ua.NodeClassObject || p.prog != nil {
		return fmt.Errorf("add node under %s: %w (want an object's browse path)", parent, ErrNoNode)
	}
	if s.ns.byPath[parent+"/"+spec.Name] != nil {
		return fmt.Errorf("add node %s/%s: the name is taken", parent, spec.Name)
	}
	rt := uint32(id.HasComponent)
	if p.typeDef == id.FolderType {
		rt = id.Organizes
	}
	s.ns.add(p, &sc.Nodes[0], rt)
	return nil
}

// RemoveNode removes the node at path and everything under it, as an
// engineer deleting a variable or object would.
func (s *Server) RemoveNode(path string) error {
	s.ns.tree.Lock()
	defer s.ns.tree.Unlock()
	n := s.ns.byPath[path]
	if n == nil || n.parent == nil {
		return fmt.Errorf("remove node %s: %w (want a browse path below a root)", path, ErrNoNode)
	}
	refs := n.parent.refs[:0]
	for _, r := range n.parent.refs {
		if r.target != n {
			refs = append(refs, r)
		}
	}
	n.parent.refs = refs
	var drop func(*simNode)
	drop = func(x *simNode) {
		delete(s.ns.byPath, x.path)
		delete(s.ns.byID, x.id.String())
		for _, r := range x.refs {
			drop(r.target)
		}
	}
	drop(n)
	return nil
}

// SetReadable gives a variable CurrentRead in its AccessLevel (or takes it
// away, after which its Value answers BadNotReadable), as an engineer
// hiding a value from clients would.
func (s *Server) SetReadable(path string, readable bool) error {
	n := s.ns.at(path)
	if n == nil || n.class != ua.NodeClassVariable {
		return fmt.Errorf("set readable %s: %w (want a variable's browse path)", path, ErrNoNode)
	}
	s.ns.mu.Lock()
	defer s.ns.mu.Unlock()
	if readable {
		n.access |= byte(ua.AccessLevelTypeCurrentRead)
	} else {
		n.access &^= byte(ua.AccessLevelTypeCurrentRead)
	}
	return nil
}

// SetWritable gives a variable CurrentWrite in its AccessLevel (or takes it
// away), as an engineer exposing a value for writing would.
func (s *Server) SetWritable(path string, writable bool) error {
	n := s.ns.at(path)
	if n == nil || n.class != ua.NodeClassVariable {
		return fmt.Errorf("set writable %s: %w (want a variable's browse path)", path, ErrNoNode)
	}
	s.ns.mu.Lock()
	defer s.ns.mu.Unlock()
	if writable {
		n.access |= byte(ua.AccessLevelTypeCurrentWrite)
	} else {
		n.access &^= byte(ua.AccessLevelTypeCurrentWrite)
	}
	return nil
}
