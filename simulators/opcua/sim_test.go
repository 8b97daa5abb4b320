package opcua

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"
)

func startSim(t *testing.T, opt Options) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, opt)
	if err != nil {
		cancel()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		cancel()
	})
	return s
}

func dial(t *testing.T, s *Server) *gopcua.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := gopcua.NewClient(s.Endpoint(), gopcua.AutoReconnect(false), gopcua.RequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func read(t *testing.T, c *gopcua.Client, nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: nid, AttributeID: attr}}})
	if err != nil {
		t.Fatalf("read %s: %v", nid, err)
	}
	return res.Results[0]
}

func TestAddressSpace(t *testing.T) {
	s := startSim(t, Options{Logger: zerolog.Nop()})
	c := dial(t, s)
	ns := uint16(1)
	tests := []struct {
		name string
		node *ua.NodeID
		attr ua.AttributeID
		want any
	}{
		{"setpoint value", ua.NewStringNodeID(ns, "Plant.Tank1.HighLimit"), ua.AttributeIDValue, 4.5},
		{"setpoint data type", ua.NewStringNodeID(ns, "Plant.Tank1.HighLimit"), ua.AttributeIDDataType, "i=11"},
		{"setpoint access", ua.NewStringNodeID(ns, "Plant.Tank1.HighLimit"), ua.AttributeIDAccessLevel, byte(3)},
		{"live value access", ua.NewStringNodeID(ns, "Plant.Tank1.Level"), ua.AttributeIDAccessLevel, byte(1)},
		{"unit", ua.NewStringNodeID(ns, "Plant.Tank1.HighLimit.EngineeringUnits"), ua.AttributeIDValue, "m"},
		{"program version", ua.NewStringNodeID(ns, "Plant.Controller.Programs.Main.Version"), ua.AttributeIDValue, "1.4.0"},
		{"browse name", ua.NewStringNodeID(ns, "Plant.Pump1"), ua.AttributeIDBrowseName, "Pump1"},
		{"node class", ua.NewStringNodeID(ns, "Plant.Pump1"), ua.AttributeIDNodeClass, int32(ua.NodeClassObject)},
		{"manufacturer", ua.NewNumericNodeID(0, id.Server_ServerStatus_BuildInfo_ManufacturerName), ua.AttributeIDValue, "Northwind Controls"},
		{"software version", ua.NewNumericNodeID(0, id.Server_ServerStatus_BuildInfo_SoftwareVersion), ua.AttributeIDValue, "4.2.1"},
		{"build number", ua.NewNumericNodeID(0, id.Server_ServerStatus_BuildInfo_BuildNumber), ua.AttributeIDValue, "1187"},
		{"unknown node", ua.NewStringNodeID(ns, "Plant.Nope"), ua.AttributeIDValue, ua.StatusBadNodeIDUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := read(t, c, tt.node, tt.attr)
			var got any
			switch {
			case v.Status != ua.StatusOK:
				got = v.Status
			case v.Value == nil:
				got = nil
			default:
				got = v.Value.Value()
			}
			switch x := got.(type) {
			case *ua.NodeID:
				got = x.String()
			case *ua.QualifiedName:
				got = x.Name
			case *ua.ExtensionObject:
				if eu, ok := x.Value.(*ua.EUInformation); ok {
					got = eu.DisplayName.Text
				}
			}
			if got != tt.want {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestBrowseFromObjects(t *testing.T) {
	s := startSim(t, Options{Logger: zerolog.Nop()})
	c := dial(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{{
		NodeID: ua.NewNumericNodeID(0, id.ObjectsFolder), BrowseDirection: ua.BrowseDirectionForward,
		ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true,
		ResultMask: uint32(ua.BrowseResultMaskAll),
	}, {
		NodeID: ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), BrowseDirection: ua.BrowseDirectionForward,
		ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true,
		ResultMask: uint32(ua.BrowseResultMaskAll),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res.Results[0].References {
		names = append(names, r.BrowseName.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "Plant") {
		t.Errorf("Objects folder children %v do not include Plant", names)
	}
	refs := res.Results[1].References
	if len(refs) != 1 || refs[0].BrowseName.Name != "EngineeringUnits" || refs[0].ReferenceTypeID.IntID() != id.HasProperty {
		t.Errorf("HighLimit children = %v, want one HasProperty EngineeringUnits", refs)
	}
}

func TestRequestsCountedAndWritesRefused(t *testing.T) {
	var frames atomic.Int64
	s := startSim(t, Options{Logger: zerolog.Nop(), OnFrame: func() { frames.Add(1) }})
	c := dial(t, s)
	before := s.Requests()
	read(t, c, ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), ua.AttributeIDValue)
	read(t, c, ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), ua.AttributeIDValue)
	after := s.Requests()
	if got := after["Read"] - before["Read"]; got != 2 {
		t.Errorf("simulator counted %d reads, want 2", got)
	}
	for _, k := range []string{"Hello", "OpenSecureChannel", "CreateSession", "ActivateSession"} {
		if after[k] != 1 {
			t.Errorf("%s counted %d times, want 1", k, after[k])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, _ := ua.NewVariant(9.9)
	_, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v},
	}}})
	if !errors.Is(err, ua.StatusBadUserAccessDenied) {
		t.Errorf("write = %v, want BadUserAccessDenied", err)
	}
	if s.Refused() != 1 || s.Requests()["Write"] != 1 {
		t.Errorf("refused = %d, writes = %d, want 1 and 1", s.Refused(), s.Requests()["Write"])
	}
	if got, _ := s.Value("Plant/Tank1/HighLimit"); got != 4.5 {
		t.Errorf("a refused write changed the value to %v", got)
	}
	// OnFrame saw every request the counters saw (one chunk each).
	total := 0
	for _, n := range s.Requests() {
		total += n
	}
	if got := frames.Load(); got != int64(total) {
		t.Errorf("OnFrame called %d times for %d requests", got, total)
	}
}

func TestMutators(t *testing.T) {
	s := startSim(t, Options{Logger: zerolog.Nop()})
	c := dial(t, s)
	tests := []struct {
		name   string
		mutate func() error
		node   *ua.NodeID
		want   any
	}{
		{"set a setpoint", func() error { return s.SetValue("Plant/Tank1/HighLimit", 5) }, ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), 5.0},
		{"set a timer", func() error { return s.SetValue("Plant/Pump1/StartDelay", 7000) }, ua.NewStringNodeID(1, "Plant.Pump1.StartDelay"), uint32(7000)},
		{"download a program", func() error {
			return s.SetProgram("Plant/Controller/Programs/Main", "PROGRAM Main END_PROGRAM", "1.5.0")
		}, ua.NewStringNodeID(1, "Plant.Controller.Programs.Main.Version"), "1.5.0"},
		{"flash firmware", func() error { s.SetFirmware("4.3.0", "1201"); return nil }, ua.NewNumericNodeID(0, id.Server_ServerStatus_BuildInfo_SoftwareVersion), "4.3.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.mutate(); err != nil {
				t.Fatal(err)
			}
			if got := read(t, c, tt.node, ua.AttributeIDValue).Value.Value(); got != tt.want {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	bad := []struct {
		name string
		err  error
	}{
		{"unknown path", s.SetValue("Plant/Nope", 1)},
		{"program property", s.SetValue("Plant/Controller/Programs/Main/CodeHash", "x")},
		{"wrong type", s.SetValue("Plant/Tank1/HighAlarmEnabled", 3)},
		{"not a program", s.SetProgram("Plant/Tank1", "x", "1")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Error("mutator accepted a bad request")
			}
		})
	}
}

func TestLiveValuesChurn(t *testing.T) {
	s := startSim(t, Options{Logger: zerolog.Nop()})
	a, _ := s.Value("Plant/Tank1/Level")
	s.ChurnLive()
	b, _ := s.Value("Plant/Tank1/Level")
	if a == b {
		t.Errorf("live value did not move: %v", a)
	}
}

func TestDropAfter(t *testing.T) {
	s := startSim(t, Options{Logger: zerolog.Nop()})
	c := dial(t, s)
	s.DropAfter(1)
	read(t, c, ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), ua.AttributeIDValue)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), AttributeID: ua.AttributeIDValue}}})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("read after the drop = %v (ctx %v), want a prompt connection error", err, ctx.Err())
	}
	if s.Dropped() != 1 {
		t.Errorf("dropped = %d, want 1", s.Dropped())
	}
	s.Heal()
	c2 := dial(t, s)
	read(t, c2, ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), ua.AttributeIDValue)
}

func TestStall(t *testing.T) {
	s := startSim(t, Options{Logger: zerolog.Nop()})
	c := dial(t, s)
	s.StallAfter(0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), AttributeID: ua.AttributeIDValue}}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled read = %v, want the caller's deadline", err)
	}
	s.Heal()
	read(t, c, ua.NewStringNodeID(1, "Plant.Tank1.LowLimit"), ua.AttributeIDValue)
}

func TestSecureChannel(t *testing.T) {
	s := startSim(t, Options{Logger: zerolog.Nop()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := gopcua.GetEndpoints(ctx, s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	ep, err := gopcua.SelectEndpoint(eps, ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt)
	if err != nil {
		t.Fatalf("no SignAndEncrypt endpoint among %d: %v", len(eps), err)
	}
	if ep.EndpointURL != s.Endpoint() {
		t.Errorf("endpoint URL %s, want %s", ep.EndpointURL, s.Endpoint())
	}
	cert, key, err := newCertificate("urn:plcwatch:test:client", "test client")
	if err != nil {
		t.Fatal(err)
	}
	c, err := gopcua.NewClient(s.Endpoint(), gopcua.AutoReconnect(false), gopcua.Certificate(cert), gopcua.PrivateKey(key),
		gopcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect SignAndEncrypt: %v", err)
	}
	defer c.Close(ctx)
	if v := read(t, c, ua.NewStringNodeID(1, "Plant.Tank1.HighLimit"), ua.AttributeIDValue); v.Value.Value() != 4.5 {
		t.Errorf("read over SignAndEncrypt = %v", v.Value.Value())
	}
	if s.Requests()["Read"] < 1 {
		t.Error("reads over an encrypted channel were not counted")
	}
}

func TestScenarioFile(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"good", "namespace: urn:x\nnodes:\n  - name: Line\n    children:\n      - {name: SP, type: Int32, value: 5, writable: true}\n      - {name: PV, type: Double, value: 1.5, live: {amplitude: 1, period: 10s}}\n      - {name: Prog, program: {language: ST, version: '1', code: x}}\n", ""},
		{"unknown key", "nodes:\n  - name: A\n    colour: red\n", "field colour not found"},
		{"bad type", "nodes:\n  - {name: A, type: Real}\n", "node A: type: want one of"},
		{"bad value", "nodes:\n  - {name: A, type: Int16, value: 70000}\n", "out of range"},
		{"bad name", "nodes:\n  - {name: A.B}\n", "want a name without"},
		{"duplicate", "nodes:\n  - {name: A}\n  - {name: A}\n", "appears twice"},
		{"no nodes", "namespace: urn:x\n", "want at least one node"},
		{"value without type", "nodes:\n  - {name: A, value: 3}\n", "need a type"},
		{"live without period", "nodes:\n  - {name: A, type: Double, live: {amplitude: 1}}\n", "live.period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "s.yaml")
			if err := os.WriteFile(f, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadScenario(f)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    frameHeader
		wantErr bool
	}{
		// "MSG" 'F' size=0x00000020 (32, little endian)
		{"final message", []byte{'M', 'S', 'G', 'F', 0x20, 0x00, 0x00, 0x00}, frameHeader{"MSG", 'F', 32}, false},
		// "OPN" 'F' size=0x00000485 (1157)
		{"open channel", []byte{'O', 'P', 'N', 'F', 0x85, 0x04, 0x00, 0x00}, frameHeader{"OPN", 'F', 1157}, false},
		// "HEL" 'F' size=8 (header only)
		{"hello, header only", []byte{'H', 'E', 'L', 'F', 0x08, 0x00, 0x00, 0x00}, frameHeader{"HEL", 'F', 8}, false},
		{"unknown type", []byte{'G', 'E', 'T', 'F', 0x08, 0x00, 0x00, 0x00}, frameHeader{}, true},
		{"bad chunk type", []byte{'M', 'S', 'G', 'X', 0x08, 0x00, 0x00, 0x00}, frameHeader{}, true},
		{"size below header", []byte{'M', 'S', 'G', 'F', 0x07, 0x00, 0x00, 0x00}, frameHeader{}, true},
		{"size too large", []byte{'M', 'S', 'G', 'F', 0x00, 0x00, 0x00, 0x10}, frameHeader{}, true},
		{"short", []byte{'M', 'S', 'G'}, frameHeader{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHeader(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseHeader = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte("MSGF\x20\x00\x00\x00"))
	f.Add([]byte("HELF\x08\x00\x00\x00"))
	f.Add([]byte("CLOA\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		if h.Size < headerLen || h.Size > maxFrame || len(h.Type) != 3 {
			t.Fatalf("accepted an invalid header %+v", h)
		}
	})
}

// TestMalformedFrameClosesConnection sends garbage and expects the proxy to
// hang up and count it.
func TestMalformedFrameClosesConnection(t *testing.T) {
	s := startSim(t, Options{Logger: zerolog.Nop()})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("read after garbage = %v, want the connection closed", err)
	}
	if s.Requests()["Invalid"] != 1 || s.Refused() != 1 {
		t.Errorf("invalid frames counted %d, want 1", s.Requests()["Invalid"])
	}
}

// TestReadFaults: the request limit and the per-value faults a client
// must survive, each counted before it is answered.
func TestReadFaults(t *testing.T) {
	hl := ua.NewStringNodeID(1, "Plant.Tank1.HighLimit")
	sp := ua.NewStringNodeID(1, "Plant.Tank1.Setpoint")
	ops := func(nids ...*ua.NodeID) []*ua.ReadValueID {
		var out []*ua.ReadValueID
		for _, n := range nids {
			out = append(out, &ua.ReadValueID{NodeID: n, AttributeID: ua.AttributeIDValue})
		}
		return out
	}
	tests := []struct {
		name       string
		opt        Options
		arm        func(s *Server) error
		read       []*ua.ReadValueID
		wantErr    error
		wantStatus ua.StatusCode // of the first result, when the read succeeds
	}{
		{"within MaxNodesPerRead", Options{MaxNodesPerRead: 2}, nil, ops(hl, sp), nil, ua.StatusOK},
		{"over MaxNodesPerRead", Options{MaxNodesPerRead: 2}, nil, ops(hl, sp, hl), ua.StatusBadTooManyOperations, 0},
		{"a huge value refuses the whole read", Options{}, func(s *Server) error { return s.SetHuge("Plant/Tank1/Setpoint", true) }, ops(hl, sp), ua.StatusBadResponseTooLarge, 0},
		{"the others alone are read", Options{}, func(s *Server) error { return s.SetHuge("Plant/Tank1/Setpoint", true) }, ops(hl), nil, ua.StatusOK},
		{"Bad status on one value", Options{}, func(s *Server) error { return s.SetStatus("Plant/Tank1/HighLimit", ua.StatusBadWaitingForInitialData) }, ops(hl, sp), nil, ua.StatusBadWaitingForInitialData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Logger = zerolog.Nop()
			s := startSim(t, tc.opt)
			if tc.arm != nil {
				if err := tc.arm(s); err != nil {
					t.Fatal(err)
				}
			}
			c := dial(t, s)
			before := s.Requests()["Read"]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: tc.read})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("read = %v, want %v", err, tc.wantErr)
				}
				if s.Faults() != 1 {
					t.Errorf("faults = %d, want 1", s.Faults())
				}
			} else if err != nil {
				t.Fatal(err)
			} else if res.Results[0].Status != tc.wantStatus {
				t.Errorf("status %v, want %v", res.Results[0].Status, tc.wantStatus)
			}
			if got := s.Requests()["Read"] - before; got != 1 {
				t.Errorf("counted %d reads, want 1 (refused ones too)", got)
			}
		})
	}
}

// TestStateDir: a restarted simulator presents the same certificate and
// BuildDate; the key is kept with mode 0600.
func TestStateDir(t *testing.T) {
	dir := t.TempDir()
	var thumbs []string
	var dates []any
	for i := 0; i < 2; i++ {
		s := startSim(t, Options{Logger: zerolog.Nop(), StateDir: dir})
		thumbs = append(thumbs, s.Thumbprint())
		c := dial(t, s)
		dates = append(dates, read(t, c, ua.NewNumericNodeID(0, id.Server_ServerStatus_BuildInfo_BuildDate), ua.AttributeIDValue).Value.Value())
		c.Close(context.Background())
		s.Close()
	}
	if thumbs[0] != thumbs[1] {
		t.Errorf("certificate changed across a restart: %s then %s", thumbs[0], thumbs[1])
	}
	if dates[0] != dates[1] || dates[0] != DefaultBuildDate {
		t.Errorf("BuildDate %v then %v, want %v both times", dates[0], dates[1], DefaultBuildDate)
	}
	for _, f := range []string{"opcua-sim.der", "opcua-sim.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if s := startSim(t, Options{Logger: zerolog.Nop()}); s.Thumbprint() == thumbs[0] {
		t.Error("a simulator without a state directory reused the certificate")
	}
}
