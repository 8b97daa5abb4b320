// Package s7 is a simulated Siemens S7 CPU speaking S7comm over ISO-on-TCP
// (RFC 1006 TPKT, ISO 8073 COTP class 0, S7 PDUs), faithful enough that
// unmodified clients (gos7, snap7) talk to it and hit the same corner cases
// as on real CPUs: PDU sizes down to 240, SZL replies and block lists that
// span several PDUs, millisecond block timestamps, CPU modes beyond RUN and
// STOP, and an S7-1500 profile that refuses block functions.
//
// The simulator answers reads only: Setup Communication, Read Var, SZL
// reads, block lists, block info and reading the clock. Everything else
// (write var, PLC control, downloads, uploads, clock set, passwords) is
// refused with an S7 error and counted by Refused. Requests counts every
// request it received, by kind (see ReadKinds).
package s7

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ReadKinds are the request kinds the simulator serves; every other kind is
// refused and counted by Refused.
var ReadKinds = []string{"Connect", "SetupCommunication", "ReadVar", "SZL", "ListBlocks", "ListBlocksOfType", "BlockInfo", "ClockRead"}

// Options configures a simulator.
type Options struct {
	// Listen is the TCP address to listen on; default "127.0.0.1:0".
	Listen string
	// Scenario is the CPU's program and identity; default DemoScenario().
	// The server works on its own copy.
	Scenario *Scenario
	// Logger receives connection and request logs; default: none.
	Logger zerolog.Logger
	// Latency delays every reply.
	Latency time.Duration
	// COTPFragment, when > 0, splits every reply into COTP data TPDUs of at
	// most this many S7 bytes (snap7 reassembles them; gos7 does not).
	COTPFragment int
	// Now is the CPU's clock; default time.Now.
	Now func() time.Time
}

// FaultAction is what a fault does to a request.
type FaultAction int

// The fault actions.
const (
	// FaultDrop closes the connection without replying.
	FaultDrop FaultAction = iota + 1
	// FaultStall never replies; the connection is closed when the fault is
	// cleared or the server stops.
	FaultStall
	// FaultGarbage replies with bytes that are not a TPKT frame.
	FaultGarbage
	// FaultTruncate replies with a correctly framed but truncated S7 PDU.
	FaultTruncate
	// FaultCloseAfterReply replies, then closes the connection, as a CPU
	// closing an idle connection would.
	FaultCloseAfterReply
	// FaultRefuse answers with the S7 error Fault.Code instead of the data:
	// as the error code of a userdata reply (SZL, block list, block info),
	// or as the return code of every Read Var item that Fault.Object
	// matches (the low byte of Code, such as 0x03 access denied), or as the
	// error class and code of any other job.
	FaultRefuse
	// FaultTrickle sends the reply one byte at a time, Fault.Interval apart
	// (one second when zero), as a congested or failing link would.
	FaultTrickle
	// FaultRepeatEntry starts each continuation page of a block list with
	// the last block of the page before, as a CPU whose list moved between
	// two pages (a block inserted before the page boundary by a download)
	// answers: one block listed twice.
	FaultRepeatEntry
)

// Fault makes the simulator misbehave on chosen requests.
type Fault struct {
	Action FaultAction
	// Kind limits the fault to one request kind, such as "ListBlocksOfType";
	// empty matches every kind.
	Kind string
	// Continuation limits the fault to continuation requests (the second
	// and later pages of an SZL read or block list).
	Continuation bool
	// Skip lets this many matching requests through first.
	Skip int
	// Count is how many matching requests the fault hits before it heals
	// itself; 0 means every one until ClearFault.
	Count int
	// Object limits the fault to requests about one object: "SZL 0x0232"
	// (an SZL id), "FC5" (block info of one block), "DB20" (a Read Var
	// with an item in DB20) or "M" (bit memory). Empty matches every object.
	Object string
	// Code is the S7 error FaultRefuse answers with.
	Code uint16
	// Interval is FaultTrickle's time between two bytes.
	Interval time.Duration
}

// Stats is what the simulator has seen since it started or ResetStats.
type Stats struct {
	Requests map[string]int
	Refused  int
	// BytesIn and BytesOut count TPKT bytes of requests and replies.
	BytesIn, BytesOut int64
	// Connections counts accepted ISO connections, CalledTSAPs the
	// connection requests by called TSAP (connection type, rack, slot).
	Connections int
	CalledTSAPs map[uint16]int
}

// Server is a running simulator. It is safe for concurrent use.
type Server struct {
	opt Options
	log zerolog.Logger
	ln  net.Listener
	now func() time.Time

	mu        sync.Mutex
	sc        *Scenario
	blocks    map[string]*Block
	dbs       map[int][]byte // actual values of DBs
	areas     map[byte][]byte
	mode      byte
	modeSince time.Time
	stats     Stats
	fault     *Fault
	faultSeen int
	faultHits int
	stallCh   chan struct{}
	// hidden is the block (by key) the block lists leave out; see
	// HideFromLists.
	hidden string
	done   chan struct{}
	conns  map[net.Conn]struct{}
	closed bool

	wg sync.WaitGroup
	// afterWrite, when set by a test, runs after each reply was written.
	afterWrite func()
}

// Areas other than DBs, with their sizes.
const (
	areaI = 0x81
	areaQ = 0x82
	areaM = 0x83
	areaD = 0x84
	areaC = 0x1C
	areaT = 0x1D
)

// Start validates the scenario, listens and serves until ctx ends or Close
// is called.
func Start(ctx context.Context, opt Options) (*Server, error) {
	if opt.Listen == "" {
		opt.Listen = "127.0.0.1:0"
	}
	var sc *Scenario
	if opt.Scenario == nil {
		sc = DemoScenario()
	} else {
		sc = opt.Scenario.Clone()
		if err := sc.Validate(); err != nil {
			return nil, fmt.Errorf("s7 simulator: %w", err)
		}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	ln, err := net.Listen("tcp", opt.Listen)
	if err != nil {
		return nil, fmt.Errorf("s7 simulator: %w", err)
	}
	s := &Server{
		opt: opt, log: opt.Logger, ln: ln, now: opt.Now,
		sc:      sc,
		stallCh: make(chan struct{}),
		done:    make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
		stats:   Stats{Requests: map[string]int{}, CalledTSAPs: map[uint16]int{}},
		areas: map[byte][]byte{
			areaI: make([]byte, 256), areaQ: make([]byte, 256), areaM: make([]byte, 1024),
			areaC: make([]byte, 512), areaT: make([]byte, 512),
		},
	}
	s.loadProgram()
	s.mode = Modes[sc.Mode]
	s.modeSince = s.now()
	s.wg.Add(1)
	go s.accept()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-s.done
		stop()
	}()
	s.log.Info().Str("addr", s.Addr()).Str("scenario", sc.Name).Int("blocks", len(sc.Blocks)).Msg("s7 simulator listening")
	return s, nil
}

// loadProgram indexes the scenario's blocks and copies DB initial values
// into the actual values. Callers hold mu or own s exclusively.
func (s *Server) loadProgram() {
	s.blocks = map[string]*Block{}
	s.dbs = map[int][]byte{}
	for i := range s.sc.Blocks {
		b := &s.sc.Blocks[i]
		s.blocks[b.Key()] = b
		if b.Type == "DB" {
			s.dbs[b.Number] = append([]byte(nil), b.body...)
		}
	}
}

// Addr returns the address the simulator listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the simulator and closes every connection. It waits for the
// connection goroutines to finish and is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stallCh)
	close(s.done)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
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
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// CloseConnections closes every open connection from the CPU's side, as a
// CPU does with connections that stayed idle too long. It returns once the
// sockets are closed.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Requests returns the number of requests received since the start (or
// ResetStats), by kind, including refused ones.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		m[k] = v
	}
	return m
}

// Refused returns the number of requests outside ReadKinds (writes, PLC
// control, downloads, uploads, clock set, passwords, unknown functions).
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Refused
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	st.CalledTSAPs = make(map[uint16]int, len(s.stats.CalledTSAPs))
	for k, v := range s.stats.CalledTSAPs {
		st.CalledTSAPs[k] = v
	}
	return st
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{Requests: map[string]int{}, CalledTSAPs: map[uint16]int{}}
}

// SetFault installs a fault, replacing any other.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = &f
	s.faultSeen, s.faultHits = 0, 0
}

// ClearFault removes the fault and ends any stall.
func (s *Server) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
	if !s.closed {
		close(s.stallCh)
		s.stallCh = make(chan struct{})
	}
}

// takeFault returns the fault that hits a request, if any, and the channel
// a stall waits on. objects are what the request is about (see
// Fault.Object).
func (s *Server) takeFault(kind string, objects []string, continuation bool) (*Fault, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f == nil || (f.Kind != "" && f.Kind != kind) || (f.Continuation && !continuation) {
		return nil, nil
	}
	if f.Object != "" && !slices.Contains(objects, f.Object) {
		return nil, nil
	}
	s.faultSeen++
	if s.faultSeen <= f.Skip {
		return nil, nil
	}
	s.faultHits++
	if f.Count > 0 && s.faultHits >= f.Count {
		s.fault = nil
	}
	c := *f
	return &c, s.stallCh
}

func (s *Server) count(kind string, refused bool, in int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests[kind]++
	s.stats.BytesIn += int64(in)
	if refused {
		s.stats.Refused++
	}
}

// SetBlock downloads a block: it adds or replaces the block and, for a DB,
// resets the DB's actual values to the block's initial values.
func (s *Server) SetBlock(b Block) error {
	if err := b.resolve(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.blocks[b.Key()]; ok {
		*old = b
	} else {
		s.sc.Blocks = append(s.sc.Blocks, b)
		s.loadProgramKeepDBs()
	}
	if b.Type == "DB" {
		s.dbs[b.Number] = append([]byte(nil), b.body...)
	}
	return nil
}

// loadProgramKeepDBs re-indexes blocks after the slice moved, keeping the
// DBs' actual values.
func (s *Server) loadProgramKeepDBs() {
	dbs := s.dbs
	s.loadProgram()
	for n, v := range dbs {
		if _, ok := s.dbs[n]; ok {
			s.dbs[n] = v
		}
	}
}

// RemoveBlock deletes a block, as a "delete block" from an engineering
// station would.
func (s *Server) RemoveBlock(typ string, number int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprintf("%s%d", typ, number)
	for i := range s.sc.Blocks {
		if s.sc.Blocks[i].Key() == key {
			s.sc.Blocks = append(s.sc.Blocks[:i], s.sc.Blocks[i+1:]...)
			s.loadProgramKeepDBs()
			return nil
		}
	}
	return fmt.Errorf("no block %s", key)
}

// HideFromLists makes "list all blocks" and "list blocks of type" leave
// out one block (by key, such as "FC5") while it stays in the program and
// answers block info, as a CPU whose lists are momentarily incomplete
// answers: the counts agree with the shortened list. An empty key ends it.
func (s *Server) HideFromLists(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hidden = key
}

// Block returns a copy of a block of the program, by key such as "FC12".
func (s *Server) Block(key string) (Block, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blocks[key]
	if !ok {
		return Block{}, false
	}
	c := *b
	c.body = append([]byte(nil), b.body...)
	return c, true
}

// BlockKeys returns the keys of every block of the program, sorted.
func (s *Server) BlockKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ks []string
	for k := range s.blocks {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// SetDB writes bytes into a DB's actual values, as an HMI or the program
// would; the block's checksum does not change.
func (s *Server) SetDB(number, offset int, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, ok := s.dbs[number]
	if !ok {
		return fmt.Errorf("no DB%d", number)
	}
	if offset < 0 || offset+len(b) > len(db) {
		return fmt.Errorf("DB%d: bytes %d-%d are outside its %d bytes", number, offset, offset+len(b), len(db))
	}
	copy(db[offset:], b)
	return nil
}

// DB returns a copy of a DB's actual values.
func (s *Server) DB(number int) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, ok := s.dbs[number]
	return append([]byte(nil), db...), ok
}

// SetMemory writes bytes into the bit memory (M) area.
func (s *Server) SetMemory(offset int, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.areas[areaM]
	if offset < 0 || offset+len(b) > len(m) {
		return fmt.Errorf("bit memory bytes %d-%d are outside its %d bytes", offset, offset+len(b), len(m))
	}
	copy(m[offset:], b)
	return nil
}

// SetMode changes the operating mode (see Modes) and records the time of
// the transition.
func (s *Server) SetMode(mode string) error {
	code, ok := Modes[mode]
	if !ok {
		return fmt.Errorf("mode %q: want one of %v", mode, sortedKeys(Modes))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = code
	s.sc.Mode = mode
	s.modeSince = s.now()
	return nil
}

// SetProtection changes the protection level and key switch.
func (s *Server) SetProtection(p Protection) error {
	if err := p.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sc.Protection = p
	return nil
}

// SetFirmware changes the CPU's firmware version, such as "V3.3.12".
func (s *Server) SetFirmware(version string) error {
	if err := checkVersion(version, "firmware"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sc.CPU.Firmware = version
	return nil
}

// SetCPU replaces the CPU's identity (order code, serial, names, firmware).
func (s *Server) SetCPU(c CPU) error {
	if err := checkVersion(c.Firmware, "firmware"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sc.CPU = c
	return nil
}

// SetModule adds or replaces a module of the rack configuration.
func (s *Server) SetModule(m Module) error {
	if m.ExpectedTypeID == 0 {
		m.ExpectedTypeID = m.TypeID
	}
	if m.S7 {
		if err := checkVersion(m.Firmware, "module firmware"); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.sc.Modules {
		if s.sc.Modules[i].Rack == m.Rack && s.sc.Modules[i].Slot == m.Slot {
			s.sc.Modules[i] = m
			return nil
		}
	}
	s.sc.Modules = append(s.sc.Modules, m)
	return nil
}

// PutReal writes a 32-bit S7 REAL (big-endian IEEE 754) at the start of b.
func PutReal(b []byte, f float32) { binary.BigEndian.PutUint32(b, math.Float32bits(f)) }

// Bytes returns the TPKT bytes received from and sent to clients since
// start (Stats has them too), for tests that compare a plan's bytes with
// what reached the simulator.
func (s *Server) Bytes() (in, out int64) {
	st := s.Stats()
	return st.BytesIn, st.BytesOut
}
