package logix

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// hx decodes a commented hex fixture ('#' starts a comment).
func hx(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// client is a raw EtherNet/IP client for tests: it sends hand-built frames.
type client struct {
	t       *testing.T
	c       net.Conn
	session uint32
}

func dialRaw(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

// send writes a frame and reads the reply frame (header and data).
func (cl *client) send(cmd uint16, data []byte) (encapHeader, []byte) {
	cl.t.Helper()
	cl.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := cl.c.Write(frame(encapHeader{Command: cmd, Session: cl.session}, data)); err != nil {
		cl.t.Fatal(err)
	}
	hdr := make([]byte, encapHeaderLength)
	if _, err := io.ReadFull(cl.c, hdr); err != nil {
		cl.t.Fatalf("reading reply: %v", err)
	}
	h, _ := parseEncapHeader(hdr)
	d := make([]byte, h.Length)
	if _, err := io.ReadFull(cl.c, d); err != nil {
		cl.t.Fatal(err)
	}
	return h, d
}

func (cl *client) register() {
	cl.t.Helper()
	h, _ := cl.send(cmdRegisterSession, []byte{1, 0, 0, 0})
	if h.Status != 0 || h.Session == 0 {
		cl.t.Fatalf("register: status %d session %d", h.Status, h.Session)
	}
	cl.session = h.Session
}

// unconnected sends a message-router request with SendRRData and returns
// the message-router reply.
func (cl *client) unconnected(req []byte) []byte {
	cl.t.Helper()
	h, d := cl.send(cmdSendRRData, appendCPF(nil, cpfItem{Type: itemNull}, cpfItem{Type: itemUnconnData, Data: req}))
	if h.Status != 0 {
		cl.t.Fatalf("SendRRData: encapsulation status 0x%x", h.Status)
	}
	items, err := parseCPF(d)
	if err != nil || len(items) != 2 {
		cl.t.Fatalf("reply items: %v", err)
	}
	return items[1].Data
}

func mrBytes(service byte, path, data []byte) []byte {
	return append(append([]byte{service, byte(len(path) / 2)}, path...), data...)
}

func startTest(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var smallScenario = `
identity: {vendor: 1, device_type: 14, product_code: 55, revision: "20.19", serial: 0x12345678, product_name: "1769-L33ER/A"}
slot: 0
mode: "REM RUN"
controller_properties: {1: 1, 2: 2, 3: 3, 4: 4, 10: 10}
udts:
  - name: Pump
    members: [{name: Run, type: BOOL}, {name: Speed, type: REAL}]
tags:
  - {name: SP, type: REAL, value: 92.5}
  - {name: P1, type: Pump, value: {Run: true, Speed: 3.5}}
programs:
  - name: Main
    tags: [{name: Cnt, type: DINT, value: 7}]
modules:
  - {slot: 1, vendor: 1, device_type: 12, product_code: 200, revision: "2.1", serial: 0xAB, product_name: "1769-IF4/B"}
`

func small(t *testing.T) *Scenario {
	t.Helper()
	sc, err := ParseScenario("small", []byte(smallScenario))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// Byte-exact replies of the simulator to hand-built requests.
func TestReplies(t *testing.T) {
	s := startTest(t, Options{Scenario: small(t)})
	cl := dialRaw(t, s.Addr())
	cl.register()
	tests := []struct {
		name string
		req  []byte
		want string
	}{
		{name: "identity", req: mrBytes(0x01, []byte{0x20, 0x01, 0x24, 0x01}, nil), want: `
			81 00 00 00  # reply to Get Attributes All, status 0
			01 00        # vendor 1
			0E 00        # device type 14
			37 00        # product code 55
			14 13        # revision 20.19
			60 30        # status: key switch REMOTE (bits 12-13 = 3), run (bits 4-7 = 6)
			78 56 34 12  # serial
			0C 313736392D4C333345522F41  # "1769-L33ER/A"`},
		{name: "controller properties", req: mrBytes(0x03, []byte{0x20, 0xAC, 0x24, 0x01}, []byte{3, 0, 1, 0, 10, 0, 5, 0}), want: `
			83 00 00 00  # reply to Get Attribute List
			03 00        # 3 attributes
			01 00 00 00 01 00        # attribute 1, status 0, UINT 1
			0A 00 00 00 0A 00 00 00  # attribute 10, status 0, UDINT 10
			05 00 14 00              # attribute 5: status 0x14, not supported`},
		{name: "symbol list of a program", req: mrBytes(0x55, []byte{0x91, 0x0C, 'P', 'r', 'o', 'g', 'r', 'a', 'm', ':', 'M', 'a', 'i', 'n', 0x20, 0x6B, 0x25, 0x00, 0x00, 0x00}, []byte{3, 0, 1, 0, 2, 0, 8, 0}), want: `
			D5 00 00 00  # reply to Get Instance Attribute List, complete
			01 00 00 00  # instance 1
			03 00 436E74 # name "Cnt"
			C4 00        # type DINT, scalar
			00 00 00 00 00 00 00 00 00 00 00 00  # no dimensions`},
		{name: "read a structure member", req: mrBytes(0x4C, []byte{0x91, 0x02, 'P', '1', 0x91, 0x05, 'S', 'p', 'e', 'e', 'd', 0x00}, []byte{1, 0}), want: `
			CC 00 00 00  # reply to Read Tag
			CA 00        # REAL
			00 00 60 40  # 3.5`},
		{name: "read a BOOL member", req: mrBytes(0x4C, []byte{0x91, 0x02, 'P', '1', 0x91, 0x03, 'R', 'u', 'n', 0x00}, []byte{1, 0}), want: `
			CC 00 00 00  # reply to Read Tag
			C1 00 01     # BOOL true`},
		{name: "write tag refused", req: mrBytes(0x4D, []byte{0x91, 0x02, 'S', 'P'}, []byte{0xCA, 0x00, 0x01, 0x00, 0, 0, 0x80, 0x3F}), want: `
			CD 00 08 00  # reply to Write Tag: service not supported`},
		{name: "missing tag", req: mrBytes(0x4C, []byte{0x91, 0x02, 'N', 'o'}, []byte{1, 0}), want: `
			CC 00 05 01 00 00  # path destination unknown`},
		{name: "module through the backplane", req: mrBytes(0x52, []byte{0x20, 0x06, 0x24, 0x01}, hx(t, `0A 0E 06 00 01 02 20 01 24 01 01 00 01 01`)), want: `
			81 00 00 00  # Get Attributes All reply from slot 1
			01 00 0C 00 C8 00 02 01  # vendor 1, comms adapter, product 200, revision 2.1
			60 00        # status
			AB 00 00 00  # serial
			0A 313736392D4946342F42  # "1769-IF4/B"`},
		{name: "empty slot", req: mrBytes(0x52, []byte{0x20, 0x06, 0x24, 0x01}, hx(t, `0A 0E 06 00 01 02 20 01 24 01 01 00 01 07`)), want: `
			D2 00 01 01 12 03  # connection failure, extended 0x0312 (link address not valid)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cl.unconnected(tt.req)
			if want := hx(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("got  % X\nwant % X", got, want)
			}
		})
	}
	if s.Refused() != 1 {
		t.Errorf("refused %d, want 1", s.Refused())
	}
}

// ListIdentity's reply, field by field.
func TestListIdentity(t *testing.T) {
	s := startTest(t, Options{Scenario: small(t)})
	cl := dialRaw(t, s.Addr())
	_, d := cl.send(cmdListIdentity, nil)
	_, port, _ := net.SplitHostPort(s.Addr())
	var p uint16
	for _, c := range port {
		p = p*10 + uint16(c-'0')
	}
	want := hx(t, `
		01 00        # 1 item
		0C 00        # type: identity
		2E 00        # length 46
		01 00        # encapsulation version 1
		00 02        # family AF_INET (big-endian)
		`+hex.EncodeToString(binary.BigEndian.AppendUint16(nil, p))+` # port (big-endian)
		7F 00 00 01  # 127.0.0.1
		00 00 00 00 00 00 00 00  # zero
		01 00 0E 00 37 00 14 13 60 30 78 56 34 12  # vendor .. serial
		0C 313736392D4C333345522F41  # product name
		03           # state`)
	if !bytes.Equal(d, want) {
		t.Errorf("got  % X\nwant % X", d, want)
	}
}

// Requests outside the read allowlist are refused with a CIP or
// encapsulation error, counted, and the connection stays usable.
func TestRefusals(t *testing.T) {
	s := startTest(t, Options{Scenario: small(t)})
	cl := dialRaw(t, s.Addr())
	cl.register()
	tests := []struct {
		name   string
		req    []byte
		kind   string
		status byte
	}{
		{name: "write tag", req: mrBytes(0x4D, []byte{0x91, 0x02, 'S', 'P'}, []byte{0xCA, 0, 1, 0, 0, 0, 0, 0}), kind: "cip.WriteTag", status: 0x08},
		{name: "write fragmented", req: mrBytes(0x53, []byte{0x91, 0x02, 'S', 'P'}, []byte{0xCA, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}), kind: "cip.WriteTagFragmented", status: 0x08},
		{name: "read-modify-write", req: mrBytes(0x4E, []byte{0x91, 0x02, 'S', 'P'}, []byte{4, 0, 1, 0, 0, 0, 0, 0, 0, 0}), kind: "cip.ReadModifyWriteTag", status: 0x08},
		{name: "set attribute (clock)", req: mrBytes(0x10, []byte{0x20, 0x8B, 0x24, 0x01, 0x30, 0x05}, make([]byte, 28)), kind: "cip.SetAttributeSingle", status: 0x08},
		{name: "stop", req: mrBytes(0x07, []byte{0x20, 0x8E, 0x24, 0x01}, nil), kind: "cip.Stop", status: 0x08},
		{name: "reset", req: mrBytes(0x05, []byte{0x20, 0x01, 0x24, 0x01}, nil), kind: "cip.Reset", status: 0x08},
		{name: "create data table", req: mrBytes(0x08, []byte{0x20, 0xB2, 0x24, 0x00}, nil), kind: "cip.Create", status: 0x08},
		{name: "write in a multiple service packet", req: mrBytes(0x0A, []byte{0x20, 0x02, 0x24, 0x01}, hx(t, `
			01 00 04 00  # 1 request at offset 4
			4D 02 91 02 53 50 CA 00 01 00 00 00 00 00  # Write Tag SP`)), kind: "cip.MultipleServicePacket", status: 0x1E},
		{name: "stop through the backplane", req: mrBytes(0x52, []byte{0x20, 0x06, 0x24, 0x01}, hx(t, `0A 0E 06 00 07 02 20 8E 24 01 01 00 01 00`)), kind: "cip.Stop", status: 0x08},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cl.unconnected(tt.req)
			if len(r) < 4 || r[2] != tt.status {
				t.Errorf("reply % X, want status 0x%02X", r, tt.status)
			}
			if got := s.Refused(); got != i+1 {
				t.Errorf("refused %d, want %d", got, i+1)
			}
			if s.Requests()[tt.kind] == 0 {
				t.Errorf("no %s recorded: %v", tt.kind, s.Requests())
			}
			// Still answering reads.
			if r := cl.unconnected(mrBytes(0x01, []byte{0x20, 0x01, 0x24, 0x01}, nil)); r[2] != 0 {
				t.Errorf("identity after a refusal: % X", r)
			}
		})
	}
	h, _ := cl.send(0x0099, nil)
	if h.Status != encapInvalidCommand {
		t.Errorf("unknown command: status %d", h.Status)
	}
	for k := range s.Requests() {
		read := false
		for _, r := range ReadKinds {
			read = read || r == k
		}
		if !read && s.RefusedKinds()[k] == 0 {
			t.Errorf("%s recorded as neither read nor refused", k)
		}
	}
}

// The symbol list pages with partial transfers and the pages add up to
// the whole list.
func TestPagedListing(t *testing.T) {
	s := startTest(t, Options{})
	cl := dialRaw(t, s.Addr())
	cl.register()
	var names []string
	start, pages := uint32(0), 0
	for {
		path := binary.LittleEndian.AppendUint16([]byte{0x20, 0x6B, 0x25, 0x00}, uint16(start))
		r := cl.unconnected(mrBytes(0x55, path, []byte{2, 0, 1, 0, 2, 0}))
		pages++
		if len(r) > unconnectedLimit {
			t.Fatalf("reply of %d bytes exceeds %d", len(r), unconnectedLimit)
		}
		d := r[4:]
		last := uint32(0)
		for len(d) > 0 {
			last = binary.LittleEndian.Uint32(d)
			n := int(binary.LittleEndian.Uint16(d[4:]))
			names = append(names, string(d[6:6+n]))
			d = d[8+n:]
		}
		if r[2] == statusOK {
			break
		}
		if r[2] != statusPartialTransfer {
			t.Fatalf("status 0x%02X", r[2])
		}
		start = last + 1
	}
	want := len(s.ctl.global.tags)
	if len(names) != want || pages < 5 {
		t.Errorf("%d names in %d pages, want %d names in several pages", len(names), pages, want)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
	}
}

// Latency delays replies; a stalled client does not keep Close waiting.
func TestLatencyAndStall(t *testing.T) {
	s := startTest(t, Options{Scenario: small(t), Latency: 50 * time.Millisecond})
	cl := dialRaw(t, s.Addr())
	t0 := time.Now()
	cl.register()
	if d := time.Since(t0); d < 50*time.Millisecond {
		t.Errorf("reply after %v, want at least the 50ms latency", d)
	}
	s.InjectFault(Fault{Kind: FaultStall})
	cl.c.Write(frame(encapHeader{Command: cmdListIdentity}, nil))
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a stalled client")
	}
}

func TestScenarioErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{name: "unknown key", yaml: "identity: {revision: \"1.1\"}\ntagz: []\n", want: "field tagz not found"},
		{name: "bad revision", yaml: "identity: {revision: \"v33\"}\n", want: "want major.minor"},
		{name: "bad mode", yaml: "identity: {revision: \"1.1\"}\nmode: AUTO\n", want: "mode \"AUTO\""},
		{name: "unknown type", yaml: "identity: {revision: \"1.1\"}\ntags: [{name: A, type: FLOAT}]\n", want: "type \"FLOAT\""},
		{name: "recursive UDT", yaml: "identity: {revision: \"1.1\"}\nudts: [{name: A, members: [{name: b, type: B}]}, {name: B, members: [{name: a, type: A}]}]\n", want: "contains itself"},
		{name: "undocumented property", yaml: "identity: {revision: \"1.1\"}\ncontroller_properties: {7: 1}\n", want: "attribute 7"},
		{name: "audit tag not LINT", yaml: "identity: {revision: \"1.1\"}\naudit_tag: A\ntags: [{name: A, type: DINT}]\n", want: "LINT"},
		{name: "module in the controller slot", yaml: "identity: {revision: \"1.1\"}\nmodules: [{slot: 0, revision: \"1.1\"}]\n", want: "slot 0"},
		{name: "value for a missing member", yaml: "identity: {revision: \"1.1\"}\nudts: [{name: U, members: [{name: x, type: INT}]}]\ntags: [{name: A, type: U, value: {y: 1}}]\n", want: "no member y"},
		{name: "empty", yaml: "", want: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario("sc.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "sc.yaml") {
				t.Errorf("err = %v, want one naming sc.yaml and containing %q", err, tt.want)
			}
		})
	}
}

func TestScenarioFile(t *testing.T) {
	sc, err := LoadScenario("testdata/plant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := startTest(t, Options{Scenario: sc})
	if len(s.ctl.programs) == 0 || len(s.ctl.udts) == 0 || len(s.ctl.modules) == 0 {
		t.Errorf("scenario file loaded empty parts: %d programs, %d UDTs, %d modules", len(s.ctl.programs), len(s.ctl.udts), len(s.ctl.modules))
	}
}

func TestDemoSize(t *testing.T) {
	c, err := newController(Demo())
	if err != nil {
		t.Fatal(err)
	}
	tags := 0
	for _, x := range c.global.tags {
		if x.program == nil {
			tags++
		}
	}
	for _, p := range c.programs {
		tags += len(p.scope.tags)
	}
	if tags < 500 || len(c.udts) < 20 {
		t.Errorf("demo has %d tags and %d UDTs, want at least 500 and 20", tags, len(c.udts))
	}
}

func TestScenarioLimits(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{name: "huge tag", yaml: "identity: {revision: \"1.1\"}\ntags: [{name: A, type: LREAL, dims: [65535, 65535, 2]}]\n"},
		{name: "huge UDT", yaml: "identity: {revision: \"1.1\"}\nudts: [{name: U, members: [{name: a, type: LREAL, dim: 65535}]}, {name: V, members: [{name: u, type: U, dim: 65535}]}]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseScenario("sc.yaml", []byte(tt.yaml)); err == nil || !strings.Contains(err.Error(), "limit") {
				t.Errorf("err = %v, want a size limit error", err)
			}
		})
	}
}

// Every request is counted before its reply is written: a client that has
// its reply always finds it counted, refused writes included.
func TestCountedBeforeReply(t *testing.T) {
	tests := []struct {
		name    string
		req     []byte
		refused bool
	}{
		{name: "identity read", req: mrBytes(svcGetAttributesAll, []byte{0x20, 0x01, 0x24, 0x01}, nil)},
		{name: "tag read", req: mrBytes(svcReadTag, []byte{0x91, 0x02, 'S', 'P'}, []byte{1, 0})},
		{name: "write tag refused", req: mrBytes(svcWriteTag, []byte{0x91, 0x02, 'S', 'P'}, []byte{0xCA, 0x00, 0x01, 0x00, 0, 0, 0x80, 0x3F}), refused: true},
		{name: "read-modify-write tag refused", req: mrBytes(svcForwardClose, []byte{0x91, 0x02, 'S', 'P'}, []byte{0x02, 0x00, 0xFF, 0xFF, 0x00, 0x00}), refused: true},
		{name: "file object initiate download refused", req: mrBytes(svcReadTag, []byte{0x20, 0x37, 0x24, 0x01}, []byte{0, 0, 0, 0}), refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startTest(t, Options{Scenario: small(t)})
			cl := dialRaw(t, s.Addr())
			cl.register()
			for i := 1; i <= 20; i++ {
				r := cl.unconnected(tt.req)
				if got := s.Total(); got != i+1 { // + RegisterSession
					t.Fatalf("after reply %d: %d requests counted, want %d", i, got, i+1)
				}
				if tt.refused {
					if len(r) < 3 || r[2] != statusServiceNotSupported {
						t.Fatalf("reply % X, want status 0x08", r)
					}
					if s.Refused() != i {
						t.Fatalf("after reply %d: %d refused, want %d", i, s.Refused(), i)
					}
				} else if s.Refused() != 0 {
					t.Fatalf("read refused: %v", s.RefusedKinds())
				}
			}
		})
	}
}
