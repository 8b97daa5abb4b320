// Package logix is plcwatch's Rockwell Logix simulator: its own EtherNet/IP
// and CIP responder that answers like a ControlLogix controller in a
// chassis. It serves ListIdentity, sessions, Forward Open/Close, the
// Identity object, the controller-properties object (class 0xAC), the
// Symbol object (tag lists with partial transfers), the Template object,
// the program list, tag reads (single, fragmented and in Multiple Service
// Packets) and Unconnected Send through the backplane to simulated modules.
//
// It counts every request by kind, before its reply is written, and
// refuses, with a CIP error, anything that is not a read (writes, mode
// changes, object creation, services other than reads on tag classes).
// Mutators act like an engineer changing the controller; faults (drop,
// stall, one byte per second, garbage, error statuses, truncated or
// partial replies, per frame or per request inside a Multiple Service
// Packet), latency and Options make it misbehave on purpose. The same
// scenario always gives the same controller: identity, change counters and
// template instances do not depend on when or how often it starts.
package logix

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// DefaultListen is the address a simulator listens on when Options.Listen
// is empty: EtherNet/IP's port on the loopback interface.
const DefaultListen = "127.0.0.1:44818"

// Options configures a simulator.
type Options struct {
	// Listen is the TCP address, DefaultListen if empty. Use
	// "127.0.0.1:0" in tests.
	Listen string
	// Scenario is what the controller holds; Demo() if nil.
	Scenario *Scenario
	// Latency delays every reply.
	Latency time.Duration
	// NoLargeForwardOpen refuses Large Forward Open, as controllers before
	// firmware v20 do, so clients fall back to a standard one.
	NoLargeForwardOpen bool
	// NoControllerProperties answers requests to the controller-properties
	// object (class 0xAC) with "path destination unknown", as a controller
	// without it would.
	NoControllerProperties bool
	// NoIdentityObject answers requests to the controller's Identity object
	// (class 0x01) with "service not supported"; ListIdentity still
	// answers, as on devices that serve identity only there.
	NoIdentityObject bool
	// NoSymbolDimensions refuses Symbol object attribute 8 (array
	// dimensions) with 0x14 (attribute not supported) in tag listings.
	NoSymbolDimensions bool
	// NoMultipleService answers every Multiple Service Packet with 0x08
	// (service not supported), as small CIP devices do.
	NoMultipleService bool
	// Log receives connection events; the zero value logs nothing.
	Log zerolog.Logger
}

// FaultKind says how an injected fault misbehaves.
type FaultKind int

// The fault kinds.
const (
	// FaultDrop closes the TCP connection instead of answering.
	FaultDrop FaultKind = iota + 1
	// FaultError answers with CIP general status 0x1F (vendor error).
	FaultError
	// FaultStall never answers; the connection stays open until the client
	// gives up or the server closes.
	FaultStall
	// FaultGarbage answers with bytes that are not EtherNet/IP.
	FaultGarbage
	// FaultTrickle sends the reply one byte per Fault.Interval (default one
	// second), as a congested or failing link would.
	FaultTrickle
	// FaultTruncate cuts the message-router reply's data in half (the
	// encapsulation stays consistent), so the reply cannot be decoded. On
	// an embedded request it cuts the embedded reply to 3 bytes.
	FaultTruncate
	// FaultPartial answers with status 0x06 (partial transfer) and half the
	// data, as a reply too large for the packet would be.
	FaultPartial
	// FaultBadOffsets answers a Multiple Service Packet with an offset
	// table that points outside the reply.
	FaultBadOffsets
)

// Fault makes the simulator misbehave on a chosen request.
type Fault struct {
	Kind FaultKind
	// Request is the request kind it applies to, such as
	// "cip.GetInstanceAttributeList"; empty means any request.
	Request string
	// After is how many matching requests are served normally before the
	// fault fires (so After 1 on the tag listing cuts it after one page).
	After int
	// Times is how often it fires; 0 means until ClearFaults.
	Times int
	// Embedded makes the fault apply to requests inside a Multiple Service
	// Packet (Request names the embedded kind, such as "cip.ReadTag")
	// instead of to whole frames; only FaultError, FaultTruncate and
	// FaultPartial act there. Embedded and frame faults are armed
	// separately.
	Embedded bool
	// Status is the CIP general status FaultError answers (default 0x1F,
	// vendor specific), and Extended its extended status words.
	Status   byte
	Extended []uint16
	// Interval is FaultTrickle's time per byte (default one second).
	Interval time.Duration
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	ln   net.Listener
	log  zerolog.Logger

	mu           sync.Mutex
	ctl          *controller
	requests     map[string]int
	refusedKinds map[string]int
	malformed    int
	fault        *Fault
	faultSeen    int
	faultFired   int
	embFault     *Fault
	embSeen      int
	embFired     int
	nextConn     uint32
	nextSession  uint32

	// total and refused count every request (frames, and refused
	// embedded requests) as it arrives, before any reply is written.
	total   atomic.Int64
	refused atomic.Int64
	bytesIn atomic.Int64 // encapsulation bytes received, counted before replying

	done  chan struct{}
	wg    sync.WaitGroup
	conns map[net.Conn]bool
	once  sync.Once
}

// connState is one TCP client's session and CIP connections.
type connState struct {
	session uint32
	conns   map[uint32]*cipConn
}

// cipConn is a connection opened with Forward Open.
type cipConn struct {
	target     target
	size       int
	serial     uint16
	vendor     uint16
	origSerial uint32
	toID       uint32
}

// Start listens and serves until Close or until ctx ends.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	sc := opts.Scenario
	if sc == nil {
		sc = Demo()
	}
	ctl, err := newController(sc)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("logix simulator: %w", err)
	}
	s := &Server{
		opts: opts, ln: ln, log: opts.Log, ctl: ctl,
		requests: map[string]int{}, refusedKinds: map[string]int{},
		nextSession: 0x5EED0000, done: make(chan struct{}), conns: map[net.Conn]bool{},
	}
	s.wg.Add(1)
	go s.accept()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// Addr is the address the simulator listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the simulator and closes every client connection. It is safe
// to call more than once.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	s.log.Debug().Str("client", c.RemoteAddr().String()).Msg("client connected")
	cs := &connState{conns: map[uint32]*cipConn{}}
	hdr := make([]byte, encapHeaderLength)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		h, _ := parseEncapHeader(hdr)
		data := make([]byte, h.Length)
		if _, err := io.ReadFull(c, data); err != nil {
			return
		}
		s.bytesIn.Add(int64(len(hdr) + len(data)))
		reply, act, every := s.handleFrame(cs, h, data)
		if s.opts.Latency > 0 {
			t := time.NewTimer(s.opts.Latency)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
		}
		switch act {
		case FaultDrop:
			return
		case FaultStall:
			// Wait for the client to give up or the server to stop.
			go func() {
				<-s.done
				c.Close()
			}()
			io.Copy(io.Discard, c)
			return
		case FaultGarbage:
			c.Write([]byte("\x13\x37garbage, not EtherNet/IP\x00\x00\x00\x00\x00\x00"))
			continue
		case FaultTrickle:
			if !s.trickle(c, reply, every) {
				return
			}
			continue
		}
		if reply == nil {
			continue
		}
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

// trickle writes reply one byte per interval (one second by default); it
// returns false when the client went away or the server stopped.
func (s *Server) trickle(c net.Conn, reply []byte, every time.Duration) bool {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := range reply {
		select {
		case <-t.C:
		case <-s.done:
			return false
		}
		if _, err := c.Write(reply[i : i+1]); err != nil {
			return false
		}
	}
	return true
}

// frameKind names the request in one encapsulation frame as the simulator
// counts it.
func frameKind(h encapHeader, data []byte) (string, bool) {
	switch h.Command {
	case cmdNop:
		return "cip.Nop", true
	case cmdListServices:
		return "cip.ListServices", true
	case cmdListIdentity:
		return "cip.ListIdentity", true
	case cmdListInterfaces:
		return "cip.ListInterfaces", true
	case cmdRegisterSession:
		return "cip.RegisterSession", true
	case cmdUnregisterSession:
		return "cip.UnregisterSession", true
	case cmdSendRRData, cmdSendUnitData:
		items, err := parseCPF(data)
		if err != nil || len(items) < 2 {
			return "cip.Malformed", true
		}
		mr := items[1].Data
		if h.Command == cmdSendUnitData {
			if len(mr) < 2 {
				return "cip.Malformed", true
			}
			mr = mr[2:]
		}
		return requestKind(mr)
	}
	return fmt.Sprintf("cip.Command0x%04X", h.Command), false
}

// takeFault decides whether the injected frame fault fires for this
// request, and returns it. The mutex is held.
func (s *Server) takeFault(kind string) *Fault {
	return fire(s.fault, kind, &s.faultSeen, &s.faultFired)
}

// takeEmbedded is takeFault for a request inside a Multiple Service
// Packet. The mutex is held.
func (s *Server) takeEmbedded(kind string) *Fault {
	return fire(s.embFault, kind, &s.embSeen, &s.embFired)
}

func fire(f *Fault, kind string, seen, fired *int) *Fault {
	if f == nil || (f.Request != "" && f.Request != kind) {
		return nil
	}
	*seen++
	if *seen <= f.After {
		return nil
	}
	if f.Times > 0 && *fired >= f.Times {
		return nil
	}
	*fired++
	return f
}

// faultReply applies an error, truncation or partial-transfer fault to a
// message-router reply r (service|0x80, reserved, status, extended size,
// extended status, data).
func faultReply(f *Fault, r []byte, embedded bool) []byte {
	if f == nil || len(r) < 4 {
		return r
	}
	switch f.Kind {
	case FaultError:
		st := f.Status
		if st == 0 {
			st = statusGeneralError
		}
		return mrReply(r[0]&^0x80, st, f.Extended, nil)
	case FaultTruncate:
		if embedded {
			return r[:3]
		}
		hdr := 4 + 2*int(r[3])
		if hdr > len(r) {
			return r
		}
		return r[:hdr+(len(r)-hdr)/2]
	case FaultPartial:
		hdr := 4 + 2*int(r[3])
		if hdr > len(r) {
			return r
		}
		out := append([]byte(nil), r[:hdr+(len(r)-hdr)/2]...)
		out[2] = statusPartialTransfer
		return out
	}
	return r
}

// handleFrame records and answers one encapsulation frame. It returns the
// reply (nil for none) and a fault action to take instead.
func (s *Server) handleFrame(cs *connState, h encapHeader, data []byte) ([]byte, FaultKind, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind, ok := frameKind(h, data)
	s.total.Add(1)
	s.requests[kind]++
	f := s.takeFault(kind)
	if f != nil && (f.Kind == FaultDrop || f.Kind == FaultStall || f.Kind == FaultGarbage) {
		return nil, f.Kind, 0
	}
	if !ok {
		// Counted here whatever happens next: refused by the service
		// check, or earlier for a bad session or connection.
		s.refused.Add(1)
		s.refusedKinds[kind]++
		if h.Command != cmdSendRRData && h.Command != cmdSendUnitData {
			h.Status = encapInvalidCommand
			return frame(h, nil), 0, 0
		}
	}
	reply, act := s.answer(cs, h, data, f)
	if act == 0 && f != nil && f.Kind == FaultTrickle {
		return reply, FaultTrickle, f.Interval
	}
	return reply, act, 0
}

// answer builds the reply to one frame, with a reply fault applied, and
// says whether to close the connection instead (FaultDrop). The mutex is
// held.
func (s *Server) answer(cs *connState, h encapHeader, data []byte, f *Fault) ([]byte, FaultKind) {
	switch h.Command {
	case cmdNop:
		return nil, 0
	case cmdListIdentity:
		return frame(h, s.listIdentity()), 0
	case cmdListServices:
		// One item (0x100): version 1, capabilities 0x0120 (CIP over TCP,
		// class 0/1 over UDP), name "Communications" in 16 bytes.
		d := binary.LittleEndian.AppendUint16(nil, 1)
		d = binary.LittleEndian.AppendUint16(d, itemListServices)
		d = binary.LittleEndian.AppendUint16(d, 20)
		d = binary.LittleEndian.AppendUint16(d, 1)
		d = binary.LittleEndian.AppendUint16(d, 0x0120)
		d = append(d, "Communications\x00\x00"...)
		return frame(h, d), 0
	case cmdListInterfaces:
		return frame(h, []byte{0, 0}), 0
	case cmdRegisterSession:
		if len(data) < 4 || binary.LittleEndian.Uint16(data) != 1 {
			h.Status = encapInvalidLength
			return frame(h, data), 0
		}
		if cs.session == 0 {
			s.nextSession++
			cs.session = s.nextSession
		}
		h.Session = cs.session
		return frame(h, data[:4]), 0
	case cmdUnregisterSession:
		cs.session = 0
		return nil, FaultDrop
	}
	if cs.session == 0 || h.Session != cs.session {
		h.Status = encapInvalidSession
		return frame(h, nil), 0
	}
	items, err := parseCPF(data)
	if err != nil || len(items) < 2 {
		s.malformed++
		h.Status = encapInvalidLength
		return frame(h, nil), 0
	}
	if h.Command == cmdSendRRData {
		if items[1].Type != itemUnconnData {
			h.Status = encapInvalidLength
			return frame(h, nil), 0
		}
		r := faultReply(f, s.exec(cs, items[1].Data, target{slot: s.ctl.slot}, unconnectedLimit, false, false), false)
		return frame(h, appendCPF(nil, cpfItem{Type: itemNull}, cpfItem{Type: itemUnconnData, Data: r})), 0
	}
	// SendUnitData: connected address item (connection id), connected data
	// item (sequence count u16 + request).
	if items[0].Type != itemConnAddress || len(items[0].Data) != 4 || items[1].Type != itemConnData || len(items[1].Data) < 2 {
		h.Status = encapInvalidLength
		return frame(h, nil), 0
	}
	cc := cs.conns[binary.LittleEndian.Uint32(items[0].Data)]
	seq := items[1].Data[:2]
	var r []byte
	if cc == nil {
		// 0x0100 is "connection in use"; a closed or unknown id is refused
		// the same way a controller refuses a stale connection.
		r = mrReply(0, statusConnectionFailure, []uint16{0x0107}, nil)
		if m, err := parseMR(items[1].Data[2:]); err == nil {
			r[0] = m.Service | 0x80
		}
	} else {
		r = s.exec(cs, items[1].Data[2:], cc.target, cc.size-2, true, false)
		if f != nil && f.Kind == FaultBadOffsets && len(r) >= 8 && r[0] == svcMultipleService|0x80 {
			// First offset beyond the reply.
			r = append([]byte(nil), r...)
			binary.LittleEndian.PutUint16(r[4+2*int(r[3])+2:], 0xFFF0)
		}
		r = faultReply(f, r, false)
	}
	toID := uint32(0)
	if cc != nil {
		toID = cc.toID
	}
	return frame(h, appendCPF(nil,
		cpfItem{Type: itemConnAddress, Data: binary.LittleEndian.AppendUint32(nil, toID)},
		cpfItem{Type: itemConnData, Data: append(append([]byte(nil), seq...), r...)})), 0
}

// listIdentity builds the ListIdentity reply: item count (u16), one item
// 0x0C: encapsulation version (u16), socket address (family, port, address
// big-endian, 8 zero bytes), the identity, state (u8).
func (s *Server) listIdentity() []byte {
	id := s.ctl.id.encode(s.ctl.status())
	body := binary.LittleEndian.AppendUint16(nil, 1)
	body = binary.BigEndian.AppendUint16(body, 2)
	port, ip := uint16(44818), net.IPv4(127, 0, 0, 1).To4()
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
		port = uint16(a.Port)
		if v4 := a.IP.To4(); v4 != nil {
			ip = v4
		}
	}
	body = binary.BigEndian.AppendUint16(body, port)
	body = append(body, ip...)
	body = append(body, make([]byte, 8)...)
	body = append(body, id...)
	body = append(body, 3)
	d := binary.LittleEndian.AppendUint16(nil, 1)
	d = binary.LittleEndian.AppendUint16(d, itemListIdentity)
	d = binary.LittleEndian.AppendUint16(d, uint16(len(body)))
	return append(d, body...)
}

// Requests returns the requests received since start, by kind (such as
// "cip.ReadTag"); an Unconnected Send counts as the request it carries.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		m[k] = v
	}
	return m
}

// Refused returns how many requests outside the read allowlist were
// received (and refused), embedded ones included.
func (s *Server) Refused() int {
	return int(s.refused.Load())
}

// Total returns how many requests the simulator received, refused ones
// included. Each is counted as it arrives, before its reply is written.
func (s *Server) Total() int {
	return int(s.total.Load())
}

// RefusedKinds returns the refused requests by kind.
func (s *Server) RefusedKinds() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for k, v := range s.refusedKinds {
		m[k] = v
	}
	return m
}

// InjectFault arms a fault, replacing any armed one of the same level
// (frame or embedded, see Fault.Embedded).
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Embedded {
		s.embFault, s.embSeen, s.embFired = &f, 0, 0
		return
	}
	s.fault, s.faultSeen, s.faultFired = &f, 0, 0
}

// ClearFaults disarms the injected faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.embFault = nil, nil
}

// ErrNotFound is returned by mutators for a missing tag, program or UDT.
var ErrNotFound = errors.New("not found")

func (s *Server) edit(structures bool, f func(c *controller) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f(s.ctl); err != nil {
		return err
	}
	s.ctl.edited(structures)
	return nil
}

// AddTag adds a tag to the controller scope (program "") or a program, as
// an online edit would.
func (s *Server) AddTag(program string, def TagDef) error {
	return s.edit(false, func(c *controller) error {
		sc, err := c.scopeOf(program)
		if err != nil {
			return err
		}
		return c.addTag(sc, def)
	})
}

// RemoveTag deletes a tag from the controller scope or a program.
func (s *Server) RemoveTag(program, name string) error {
	return s.edit(false, func(c *controller) error {
		sc, err := c.scopeOf(program)
		if err != nil {
			return err
		}
		if t := sc.byName[strings.ToLower(name)]; t == nil || t.program != nil {
			return fmt.Errorf("tag %s: %w", name, ErrNotFound)
		}
		sc.remove(name)
		return nil
	})
}

// RetypeTag changes a tag's type and dimensions in place (same instance).
func (s *Server) RetypeTag(program string, def TagDef) error {
	return s.edit(false, func(c *controller) error {
		sc, err := c.scopeOf(program)
		if err != nil {
			return err
		}
		t := sc.byName[strings.ToLower(def.Name)]
		if t == nil || t.program != nil {
			return fmt.Errorf("tag %s: %w", def.Name, ErrNotFound)
		}
		nt, err := c.newTag(def)
		if err != nil {
			return err
		}
		t.Type, t.Dims, t.Data = nt.Type, nt.Dims, nt.Data
		return nil
	})
}

// SetTagValue sets a value by tag path ("Tank.Level", "Program:Main.SP",
// "Lookup[1,2]"), as an operator would; the tag database does not change.
func (s *Server) SetTagValue(path string, v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.ctl.lookupPath(path)
	if err != nil {
		return err
	}
	return setValue(r, v)
}

// AddProgram adds an empty program.
func (s *Server) AddProgram(name string) error {
	return s.edit(false, func(c *controller) error {
		_, err := c.addProgram(name)
		return err
	})
}

// RemoveProgram deletes a program and its tags.
func (s *Server) RemoveProgram(name string) error {
	return s.edit(false, func(c *controller) error {
		p := c.programs[strings.ToLower(name)]
		if p == nil {
			return fmt.Errorf("program %s: %w", name, ErrNotFound)
		}
		delete(c.programs, strings.ToLower(name))
		c.global.remove("Program:" + p.Name)
		return nil
	})
}

// SetUDT adds a UDT or replaces the one of the same name (its template
// instance stays); tags of that type are re-laid out.
func (s *Server) SetUDT(def UDT) error {
	return s.edit(true, func(c *controller) error {
		old := append([]UDT(nil), c.decls...)
		replaced := false
		for i, d := range c.decls {
			if strings.EqualFold(d.Name, def.Name) {
				c.decls[i], replaced = def, true
			}
		}
		if !replaced {
			c.decls = append(c.decls, def)
		}
		if err := c.rebuildUDTs(); err != nil {
			c.decls = old
			if err2 := c.rebuildUDTs(); err2 != nil {
				return errors.Join(err, err2)
			}
			return err
		}
		return nil
	})
}

// SetRevision sets the controller's firmware revision ("major.minor").
func (s *Server) SetRevision(rev string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.ctl.id
	id.Revision = rev
	if _, _, err := id.revision(); err != nil {
		return err
	}
	s.ctl.id = id
	return nil
}

// SetModuleRevision sets a module's firmware revision.
func (s *Server) SetModuleRevision(slot int, rev string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.ctl.modules[slot]
	if !ok {
		return fmt.Errorf("slot %d: %w", slot, ErrNotFound)
	}
	m.Revision = rev
	if _, _, err := m.revision(); err != nil {
		return err
	}
	s.ctl.modules[slot] = m
	return nil
}

// SetSerial sets the controller's serial number, as a replaced controller
// would have.
func (s *Server) SetSerial(serial uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.id.Serial = serial
}

// SetModuleSerial sets a module's serial number.
func (s *Server) SetModuleSerial(slot int, serial uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.ctl.modules[slot]
	if !ok {
		return fmt.Errorf("slot %d: %w", slot, ErrNotFound)
	}
	m.Serial = serial
	s.ctl.modules[slot] = m
	return nil
}

// SetMode sets the key switch and mode: "RUN", "PROG", "REM RUN" or
// "REM PROG".
func (s *Server) SetMode(mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := modes()[mode]; !ok {
		return fmt.Errorf("mode %q: want RUN, PROG, REM RUN or REM PROG", mode)
	}
	s.ctl.mode = mode
	return nil
}

// SetControllerFault sets the controller's fault state: "none", "minor
// recoverable", "minor unrecoverable", "major recoverable" or "major
// unrecoverable".
func (s *Server) SetControllerFault(fault string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := faults()[fault]; !ok {
		return fmt.Errorf("fault %q: want none, minor recoverable, minor unrecoverable, major recoverable or major unrecoverable", fault)
	}
	s.ctl.fault = fault
	return nil
}

// BumpAuditValue moves the AuditValue the logic copies into the audit tag,
// with no other visible change (as an online rung edit would). It fails if
// the scenario has no audit tag.
func (s *Server) BumpAuditValue() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctl.auditTag == "" {
		return fmt.Errorf("audit tag: %w: the scenario has no audit_tag", ErrNotFound)
	}
	s.ctl.bumpAudit()
	return nil
}

// ChangeProperties moves controller-properties attribute 10 with no other
// visible change.
func (s *Server) ChangeProperties() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.props[10]++
}

// Bytes returns the encapsulation bytes received from clients since start
// (out is not counted: 0), for tests that compare a plan's bytes sent with
// what reached the simulator.
func (s *Server) Bytes() (in, out int64) { return s.bytesIn.Load(), 0 }
