package logix

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/connectors"
	sim "github.com/plcwatch/plcwatch/simulators/logix"
	"github.com/plcwatch/plcwatch/snapshots"
)

// hx decodes a commented hex fixture: everything after '#' on a line is a
// comment, whitespace is ignored.
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

// Byte-exact fixtures of the frames the connector builds.
func TestBuildFrames(t *testing.T) {
	tagP, err := tagPath("Program:Line1.Tank[3].SP")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{name: "RegisterSession", got: registerSessionFrame(), want: `
			65 00        # command: RegisterSession
			04 00        # length: 4
			00 00 00 00  # session handle: none yet
			00 00 00 00  # status
			00 00 00 00 00 00 00 00  # sender context
			00 00 00 00  # options
			01 00        # protocol version 1
			00 00        # option flags`},
		{name: "ListIdentity", got: listIdentityFrame(), want: `
			63 00        # command: ListIdentity
			00 00        # length: 0
			00 00 00 00  # session handle: none
			00 00 00 00  # status
			00 00 00 00 00 00 00 00  # sender context
			00 00 00 00  # options`},
		{name: "UnregisterSession", got: unregisterSessionFrame(0x5EED0001), want: `
			66 00        # command: UnregisterSession
			00 00        # length: 0
			01 00 ED 5E  # session handle 0x5EED0001
			00 00 00 00  # status
			00 00 00 00 00 00 00 00  # sender context
			00 00 00 00  # options`},
		{name: "symbol list of a program", got: symbolListMR("Line1", 0x0102, true), want: `
			55           # service: Get Instance Attribute List
			0B           # path: 11 words
			91 0D 50726F6772616D3A4C696E6531 00  # symbolic "Program:Line1", pad
			20 6B        # class: Symbol
			25 00 02 01  # instance (16-bit): 0x0102
			03 00        # 3 attributes:
			01 00        #   1 name
			02 00        #   2 type
			08 00        #   8 array dimensions`},
		{name: "tag path with program, index and member", got: tagP, want: `
			91 0D 50726F6772616D3A4C696E6531 00  # "Program:Line1", pad
			91 04 54616E6B                     # "Tank"
			28 03                              # element 3
			91 02 5350                         # "SP"`},
		{name: "module identity through the backplane", got: unconnectedSendMR(mr(svcGetAttributesAll, classInstance(classIdentity, 1), nil), []byte{0x01, 0x03}), want: `
			52           # service: Unconnected Send
			02           # path: 2 words
			20 06 24 01  # Connection Manager, instance 1
			0A 0E        # priority/tick, timeout ticks
			06 00        # embedded request: 6 bytes
			01 02 20 01 24 01  # Get Attributes All, Identity instance 1
			01 00        # route: 1 word, reserved
			01 03        # port 1 (backplane), slot 3`},
		{name: "template read", got: readTemplateMR(0x0105, 0x80, 0x0200), want: `
			4C           # service: Read (template)
			03           # path: 3 words
			20 6C        # class: Template
			25 00 05 01  # instance (16-bit) 0x0105
			80 00 00 00  # offset 0x80
			00 02        # bytes wanted 0x200`},
		{name: "multiple service packet", got: multipleMR([][]byte{
			mr(svcGetAttributesAll, classInstance(classIdentity, 1), nil),
			attrListMR(classControllerProp, 1, 1, 10),
		}), want: `
			0A 02 20 02 24 01  # Multiple Service Packet to the Message Router
			02 00        # 2 requests
			06 00        # first at offset 6 (from the count)
			0C 00        # second at offset 12
			01 02 20 01 24 01  # Get Attributes All, Identity 1
			03 02 20 AC 24 01 02 00 01 00 0A 00  # Get Attribute List, 0xAC 1: attributes 1, 10`},
		{name: "connected request", got: unitDataFrame(0x11223344, 0x10000001, 7, readTagMR([]byte{0x91, 0x02, 'S', 'P'})), want: `
			70 00        # command: SendUnitData
			1E 00        # length: 30
			44 33 22 11  # session handle
			00 00 00 00  # status
			00 00 00 00 00 00 00 00  # sender context
			00 00 00 00  # options
			00 00 00 00  # interface handle
			00 00        # timeout
			02 00        # 2 items
			A1 00 04 00 01 00 00 10  # connected address: connection 0x10000001
			B1 00 0A 00  # connected data: 10 bytes
			07 00        # sequence count 7
			4C 02 91 02 53 50 01 00  # Read Tag "SP", 1 element`},
		{name: "forward close", got: forwardCloseMR(0x1234, vendorID, 0xCAFEF00D, []byte{0x01, 0x00}), want: `
			4E 02 20 06 24 01  # Forward Close to the Connection Manager
			0A 0E        # priority/tick, timeout ticks
			34 12        # connection serial
			F1 FF        # vendor
			0D F0 FE CA  # originator serial
			03 00        # path: 3 words, reserved
			01 00 20 02 24 01  # backplane slot 0, Message Router`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := hx(t, tt.want); !bytes.Equal(tt.got, want) {
				t.Errorf("got  % X\nwant % X", tt.got, want)
			}
		})
	}
}

// The large forward open, checked field by field.
func TestForwardOpenFrame(t *testing.T) {
	got := forwardOpenMR(true, 0xAABBCCDD, 0x1234, vendorID, 0xCAFEF00D, largeConnSize, []byte{0x01, 0x00})
	want := hx(t, `
		5B 02 20 06 24 01  # Large Forward Open to the Connection Manager
		0A 0E        # priority/tick, timeout ticks
		00 00 00 00  # O->T connection id: chosen by the target
		DD CC BB AA  # T->O connection id
		34 12        # connection serial
		F1 FF        # vendor
		0D F0 FE CA  # originator serial
		03 00 00 00  # timeout multiplier 3, reserved
		80 84 1E 00  # O->T RPI 2 s
		A2 0F 00 42  # O->T parameters: point-to-point, variable, 4002 bytes
		80 84 1E 00  # T->O RPI
		A2 0F 00 42  # T->O parameters
		A3           # transport: server, class 3
		03           # connection path: 3 words
		01 00 20 02 24 01  # backplane slot 0, Message Router`)
	if !bytes.Equal(got, want) {
		t.Errorf("got  % X\nwant % X", got, want)
	}
	if k, ok := mrKind(got); !ok || k != KindLargeForwardOpen {
		t.Errorf("kind %q %v", k, ok)
	}
}

// Parsing fixtures of replies.
func TestParseReplies(t *testing.T) {
	id, err := parseIdentity(hx(t, `
		01 00        # vendor 1
		0E 00        # device type 14 (PLC)
		A6 00        # product code 166
		21 0B        # revision 33.11
		60 30        # status: key switch REMOTE, run
		EE FF C0 00  # serial 0x00C0FFEE
		0B 31373536 2D4C3833452F42  # product name "1756-L83E/B"`))
	if err != nil {
		t.Fatal(err)
	}
	if id.revision() != "33.11" || id.serial() != "0x00C0FFEE" || id.ProductName != "1756-L83E/B" || keySwitch(id.Status) != "REMOTE" || operatingMode(id.Status) != "RUN" || faultState(id.Status, false) != "none" || faultState(id.Status, true) != "none" {
		t.Errorf("identity %+v", id)
	}
	syms, err := parseSymbols(hx(t, `
		05 00 00 00  # instance 5
		04 00 54616E6B  # name "Tank"
		CA 20        # type: REAL, 1 dimension
		0A 00 00 00 00 00 00 00 00 00 00 00  # dimensions 10, 0, 0
		09 00 00 00  # instance 9
		0D 00 50726F6772616D3A4C696E6531  # "Program:Line1"
		68 10        # program entry
		00 00 00 00 00 00 00 00 00 00 00 00`), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(syms) != 2 || syms[0].Name != "Tank" || atomicName(syms[0].Type) != "REAL" || dimsOf(syms[0]) != "10" || syms[1].Instance != 9 || keepSymbol(syms[1]) {
		t.Errorf("symbols %+v", syms)
	}
	tpl, err := parseTemplate(hx(t, `
		00 00 C2 00 00 00 00 00  # info 0, SINT, offset 0 (hidden BOOL host)
		01 00 C1 00 00 00 00 00  # info 1 (bit), BOOL, offset 0
		04 00 C4 20 04 00 00 00  # info 4 (array), DINT array, offset 4
		56616C76653B6E 00        # "Valve;n"
		5A5A5A5A5A5A5A5A5A5A56616C766530 00  # "ZZZZZZZZZZValve0"
		4F70656E 00              # "Open"
		54696D6573 00            # "Times"`), 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeTemplate(tpl, nil), "Open BOOL @0.1\nTimes DINT[4] @4\n"; tpl.Name != "Valve" || got != want {
		t.Errorf("template %q: %q, want %q", tpl.Name, got, want)
	}
	r, err := parseMRReply(hx(t, `
		CC           # reply to Read Tag
		00           # reserved
		FF           # general status 0xFF
		01           # 1 extended status word
		05 21        # 0x2105`))
	if err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	if !errors.As(r.err(false), &se) || se.Status != 0xFF || len(se.Extended) != 1 || se.Extended[0] != 0x2105 {
		t.Errorf("status error %v", r.err(false))
	}
	typ, v, err := parseTagValue(hx(t, `CA 00  0000B942  # REAL 92.5`), 0, false)
	if err != nil || typ != "REAL" || v != snapshots.Float32(92.5, "") {
		t.Errorf("tag value %s %v %v", typ, v, err)
	}
	str := hx(t, `
		A0 02        # a structure
		CE 0F        # handle 0x0FCE: the predefined STRING
		05 00 00 00  # LEN 5
		41 24 B0 0D 27  # DATA: "A", "$", 0xB0, CR, "'"
		`+strings.Repeat("00 ", 77)+` # the rest of DATA[82]
		00 00        # padding to 88 bytes`)
	typ, v, err = parseTagValue(str, 0, false)
	if err != nil || typ != "STRING" || v != snapshots.String("A$$$B0$0D$'") {
		t.Errorf("STRING %s %v %v", typ, v, err)
	}
	str[4] = 83 // LEN 83 > 82
	var no *notObservableError
	if _, _, err := parseTagValue(str, 0, false); !errors.As(err, &no) {
		t.Errorf("LEN 83: %v, want not observable", err)
	}
	li, err := parseListIdentity(hx(t, `
		01 00        # 1 item
		0C 00        # item type: ListIdentity
		25 00        # 37 bytes
		01 00        # encapsulation version 1
		00 02 AF 12 7F 00 00 01 00 00 00 00 00 00 00 00  # socket address 127.0.0.1:44818 (big-endian)
		01 00 0E 00 A6 00  # vendor 1, device type 14, product code 166
		21 0B        # revision 33.11
		60 30        # status
		EE FF C0 00  # serial 0x00C0FFEE
		03 4C 3833   # product name "L83"
		03           # state`))
	if err != nil || li.serial() != "0x00C0FFEE" || li.revision() != "33.11" || li.ProductName != "L83" || operatingMode(li.Status) != "RUN" {
		t.Errorf("list identity %+v %v", li, err)
	}
}

// countConn counts writes; reads fail.
type countConn struct {
	net.Conn
	writes int
}

func (c *countConn) Write(b []byte) (int, error)        { c.writes++; return len(b), nil }
func (c *countConn) Read([]byte) (int, error)           { return 0, errors.New("no reply") }
func (c *countConn) SetDeadline(time.Time) error        { return nil }
func (c *countConn) SetReadDeadline(time.Time) error    { return nil }
func (c *countConn) Close() error                       { return nil }
func (c *countConn) SetWriteDeadline(t time.Time) error { return nil }

// A frame carrying a write, alone or inside a Multiple Service Packet or
// an Unconnected Send, never reaches the wire.
func TestWritesNeverSent(t *testing.T) {
	write := mr(0x4D, []byte{0x91, 0x02, 'S', 'P'}, []byte{0xCA, 0x00, 0x01, 0x00, 0, 0, 0x80, 0x3F})
	stop := mr(0x07, classInstance(0x8E, 1), nil)
	tests := []struct {
		name  string
		frame []byte
	}{
		{name: "write tag", frame: unitDataFrame(1, 2, 3, write)},
		{name: "write tag inside a multiple service packet", frame: unitDataFrame(1, 2, 3, multipleMR([][]byte{readTagMR([]byte{0x91, 0x02, 'S', 'P'}), write}))},
		{name: "stop through unconnected send", frame: rrDataFrame(1, unconnectedSendMR(stop, []byte{0x01, 0x00}))},
		{name: "set attribute single", frame: rrDataFrame(1, mr(0x10, append(classInstance(0x8B, 1), 0x30, 0x05), make([]byte, 28)))},
		{name: "data table create", frame: unitDataFrame(1, 2, 3, mr(0x08, classInstance(0xB2, 0), nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &countConn{}
			g := connectors.NewGate("d", Allowlist, nil)
			s := &session{conn: c, gate: g, timeout: time.Second}
			_, err := s.roundTrip(context.Background(), "x", tt.frame, false)
			if !errors.Is(err, connectors.ErrNotAllowed) {
				t.Errorf("err = %v, want ErrNotAllowed", err)
			}
			if c.writes != 0 || g.Cost().Requests != 0 {
				t.Errorf("%d writes, %d gate requests", c.writes, g.Cost().Requests)
			}
		})
	}
}

// Every write, control and unknown request of CIP and Logix is refused
// before the wire: over a live session to the simulator, the simulator
// receives nothing, refuses nothing, and the session still works after.
func TestRefusedBeforeTheWire(t *testing.T) {
	sym := []byte{0x91, 0x02, 'S', 'P'}
	read := readTagMR(sym)
	dataTable := func(inst uint16) []byte { return []byte{0x20, 0xB2, 0x25, 0x00, byte(inst), byte(inst >> 8)} }
	file := classInstance(0x37, 1)
	conn := func(s *session, m []byte) []byte { return unitDataFrame(s.handle, s.connID, 99, m) }
	unconn := func(s *session, m []byte) []byte { return rrDataFrame(s.handle, m) }
	type row struct {
		name  string
		req   []byte                  // a message-router request, sent connected and unconnected
		frame func(s *session) []byte // or a whole frame
	}
	tests := []row{
		{name: "Write Tag 0x4D", req: mr(0x4D, sym, []byte{0xCA, 0x00, 0x01, 0x00, 0, 0, 0x80, 0x3F})},
		{name: "Write Tag Fragmented 0x53", req: mr(0x53, sym, []byte{0xCA, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0x80, 0x3F})},
		{name: "Read-Modify-Write Tag 0x4E", req: mr(0x4E, sym, []byte{0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00})},
		{name: "Read-Modify-Write Tag 0x4E on a Symbol instance", req: mr(0x4E, classInstance(classSymbol, 5), []byte{0x02, 0x00, 0xFF, 0xFF, 0x00, 0x00})},
		{name: "Set Attribute Single 0x10 (wall clock)", req: mr(0x10, append(classInstance(0x8B, 1), 0x30, 0x05), make([]byte, 8))},
		{name: "Set Attributes All 0x02", req: mr(0x02, classInstance(classIdentity, 1), make([]byte, 4))},
		{name: "Set Attribute List 0x04", req: mr(0x04, classInstance(classControllerProp, 1), []byte{1, 0, 10, 0, 0, 0, 0, 0})},
		{name: "Reset 0x05 on the Identity object", req: mr(0x05, classInstance(classIdentity, 1), []byte{0x01})},
		{name: "Start 0x06 on a program", req: mr(0x06, classInstance(0x68, 1), nil)},
		{name: "Stop 0x07 on a task", req: mr(0x07, classInstance(0x70, 1), nil)},
		{name: "Start 0x06 on the Identity object", req: mr(0x06, classInstance(classIdentity, 1), nil)},
		{name: "Create 0x08", req: mr(0x08, classInstance(0x6B, 0), nil)},
		{name: "Delete 0x09", req: mr(0x09, classInstance(0x6B, 7), nil)},
		{name: "Apply Attributes 0x0D", req: mr(0x0D, classInstance(0x8E, 1), nil)},
		{name: "Restore 0x15", req: mr(0x15, classInstance(0x8E, 1), nil)},
		{name: "Save 0x16", req: mr(0x16, classInstance(0x8E, 1), nil)},
		{name: "File object Initiate Download 0x4C", req: mr(0x4C, file, []byte{0, 0, 0, 0, 0, 0})},
		{name: "File object Initiate Partial Write 0x4E", req: mr(0x4E, file, []byte{0, 0, 0, 0, 0, 0})},
		{name: "File object Download Transfer 0x50", req: mr(0x50, file, []byte{0, 0})},
		{name: "File object Clear File 0x51", req: mr(0x51, file, nil)},
		{name: "File object Initiate Upload 0x4B", req: mr(0x4B, file, []byte{0xFF})},
		{name: "DataTableBuffer create 0x08 on 0xB2", req: mr(0x08, dataTable(0), []byte{0x01, 0x00, 0x03, 0x00, 0x03, 0x00})},
		{name: "DataTableBuffer add tag 0x4E on 0xB2", req: mr(0x4E, dataTable(1), []byte{0x02, 0x00, 0x01, 0x01})},
		{name: "DataTableBuffer read 0x4C on 0xB2", req: mr(0x4C, dataTable(1), nil)},
		{name: "DataTableBuffer remove tag 0x4F on 0xB2", req: mr(0x4F, dataTable(1), []byte{0x00, 0x00})},
		{name: "DataTableBuffer delete 0x09 on 0xB2", req: mr(0x09, dataTable(1), nil)},
		{name: "Forward Open 0x54 off the Connection Manager", req: mr(0x54, classInstance(classMessageRouter, 1), make([]byte, 40))},
		{name: "unknown service 0x4F on a tag", req: mr(0x4F, sym, []byte{1, 0})},
		{name: "unknown service 0x4B on the Symbol object", req: mr(0x4B, classInstance(classSymbol, 0), nil)},
		{name: "Get Connection Data 0x57", req: mr(0x57, classInstance(classConnManager, 1), []byte{1, 0})},
		{name: "Scattered Read 0x32", req: mr(0x32, classInstance(0x8E, 1), nil)},
		{name: "Get Attributes All of an object plcwatch does not read", req: mr(0x01, classInstance(0x8E, 1), nil)},
		{name: "Get Attribute Single of the time-sync object", req: mr(0x0E, append(classInstance(0x8B, 1), 0x30, 0x05), nil)},
		{name: "Multiple Service Packet off the Message Router", req: mr(0x0A, classInstance(classSymbol, 1), []byte{1, 0, 4, 0, 0x4C, 0x02, 0x91, 0x02, 'S', 'P', 1, 0})},
		{name: "service 0x00", req: mr(0x00, classInstance(classIdentity, 1), nil)},
		{name: "service with the reply bit", req: mr(0xCC, sym, nil)},
		{name: "Multiple Service Packet hiding a write", req: multipleMR([][]byte{read, mr(0x4D, sym, []byte{0xCA, 0x00, 0x01, 0x00, 0, 0, 0x80, 0x3F})})},
		{name: "Multiple Service Packet hiding Read-Modify-Write", req: multipleMR([][]byte{read, mr(0x4E, sym, []byte{0x02, 0x00, 0xFF, 0xFF, 0x00, 0x00})})},
		{name: "Multiple Service Packet hiding a packet", req: multipleMR([][]byte{read, multipleMR([][]byte{mr(0x4D, sym, nil)})})},
		{name: "Multiple Service Packet hiding Forward Close", req: multipleMR([][]byte{read, forwardCloseMR(1, vendorID, 2, []byte{1, 0})})},
		{name: "Multiple Service Packet hiding a DataTableBuffer read", req: multipleMR([][]byte{read, mr(0x4C, dataTable(1), nil)})},
		{name: "Unconnected Send carrying a write", req: unconnectedSendMR(mr(0x4D, sym, []byte{0xCA, 0x00, 0x01, 0x00, 0, 0, 0x80, 0x3F}), []byte{0x01, 0x00})},
		{name: "Unconnected Send carrying Stop", req: unconnectedSendMR(mr(0x07, classInstance(0x8E, 1), nil), []byte{0x01, 0x00})},
		{name: "Unconnected Send carrying Forward Open", req: unconnectedSendMR(forwardOpenMR(true, 1, 1, vendorID, 1, 500, []byte{1, 0}), []byte{0x01, 0x00})},
		{name: "ListServices command", frame: func(*session) []byte { return appendEncap(nil, 0x0004, 0, nil) }},
		{name: "ListInterfaces command", frame: func(*session) []byte { return appendEncap(nil, 0x0064, 0, nil) }},
		{name: "IndicateStatus command", frame: func(s *session) []byte { return appendEncap(nil, 0x0072, s.handle, nil) }},
	}
	srv, err := sim.Start(context.Background(), sim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	gate := connectors.NewGate("d", Allowlist, nil)
	s, err := dial(context.Background(), srv.Addr(), gate, 5*time.Second, []byte{0x01, 0x00})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close(context.Background())
	if err := s.register(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, sent := srv.Total(), gate.Cost().Requests
	for _, tt := range tests {
		frames := map[string][]byte{}
		if tt.frame != nil {
			frames["frame"] = tt.frame(s)
		} else {
			frames["connected"], frames["unconnected"] = conn(s, tt.req), unconn(s, tt.req)
		}
		for how, f := range frames {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				if _, err := s.roundTrip(context.Background(), "x", f, false); !errors.Is(err, connectors.ErrNotAllowed) {
					t.Errorf("err = %v, want ErrNotAllowed", err)
				}
				if s.dead != nil {
					t.Fatalf("session ended: %v", s.dead)
				}
			})
		}
	}
	if got := srv.Total(); got != before {
		t.Errorf("the simulator received %d requests, want 0", got-before)
	}
	if srv.Refused() != 0 || gate.Cost().Requests != sent {
		t.Errorf("simulator refused %v; gate sent %d", srv.RefusedKinds(), gate.Cost().Requests-sent)
	}
	// The session still reads.
	r, err := s.call(context.Background(), "x", mr(svcGetAttributesAll, classInstance(classIdentity, 1), nil))
	if err != nil || r.Status != 0 {
		t.Fatalf("read after the refusals: %v %+v", err, r)
	}
}

// Every request the codec builds is on the allowlist under its own name.
func TestAllowedPairs(t *testing.T) {
	sym, _ := tagPath("Program:Main.Tank[2].SP")
	tests := []struct {
		name string
		req  []byte
		want string
	}{
		{name: "identity", req: mr(svcGetAttributesAll, classInstance(classIdentity, 1), nil), want: KindGetAttributesAll},
		{name: "controller properties", req: attrListMR(classControllerProp, 1, 1, 2, 3, 4, 10), want: KindGetAttributeList},
		{name: "template attributes", req: attrListMR(classTemplate, 0x105, 4, 5, 2, 1), want: KindGetAttributeList},
		{name: "template read", req: readTemplateMR(0x105, 0, 100), want: KindReadTemplate},
		{name: "controller symbols", req: symbolListMR("", 0, true), want: KindGetInstanceAttributeList},
		{name: "program symbols", req: symbolListMR("Main", 0x10000, true), want: KindGetInstanceAttributeList},
		{name: "read tag", req: readTagMR(sym), want: KindReadTag},
		{name: "read tag by symbol instance", req: readTagMR(classInstance(classSymbol, 5)), want: KindReadTag},
		{name: "read tag fragmented", req: mr(0x52, sym, []byte{1, 0, 0, 0, 0, 0}), want: KindReadTagFragmented},
		{name: "multiple service packet", req: multipleMR([][]byte{readTagMR(sym), attrListMR(classControllerProp, 1, 10)}), want: KindMultipleServicePacket},
		{name: "large forward open", req: forwardOpenMR(true, 1, 2, vendorID, 3, largeConnSize, []byte{1, 0}), want: KindLargeForwardOpen},
		{name: "forward open", req: forwardOpenMR(false, 1, 2, vendorID, 3, standardConnSize, []byte{1, 0}), want: KindForwardOpen},
		{name: "forward close", req: forwardCloseMR(2, vendorID, 3, []byte{1, 0}), want: KindForwardClose},
		{name: "module identity through the backplane", req: unconnectedSendMR(mr(svcGetAttributesAll, classInstance(classIdentity, 1), nil), []byte{1, 3}), want: KindGetAttributesAll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, emb, err := requestKind(unitDataFrame(1, 2, 3, tt.req))
			if err != nil || k != tt.want {
				t.Fatalf("kind %q, %v; want %q", k, err, tt.want)
			}
			for _, e := range append(emb, k) {
				if !connectors.NewGate("d", Allowlist, nil).Allowed(e) {
					t.Errorf("%s not on the allowlist", e)
				}
			}
		})
	}
	for _, f := range [][]byte{registerSessionFrame(), unregisterSessionFrame(1), listIdentityFrame()} {
		if k, _, err := requestKind(f); err != nil || !connectors.NewGate("d", Allowlist, nil).Allowed(k) {
			t.Errorf("frame % X: %q %v", f[:2], k, err)
		}
	}
}
