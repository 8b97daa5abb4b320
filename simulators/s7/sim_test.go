package s7

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/robinson/gos7"
)

var fixedNow = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC) }

// TestFixtures pins the bytes the simulator answers with.
func TestFixtures(t *testing.T) {
	s := start(t, nil, Options{Now: fixedNow})
	t.Run("connection confirm", func(t *testing.T) {
		f, err := parseFrame([]byte{
			0x03, 0x00, 0x00, 0x16, // TPKT, 22 bytes
			0x11, 0xE0, // COTP: 17 bytes, connection request
			0x00, 0x00, 0x00, 0x01, 0x00, // destination ref 0, source ref 1, class 0
			0xC0, 0x01, 0x0A, // TPDU size 1024
			0xC1, 0x02, 0x01, 0x00, // calling TSAP 0x0100
			0xC2, 0x02, 0x01, 0x02, // called TSAP: PG (1), rack 0, slot 2
		})
		if err != nil {
			t.Fatal(err)
		}
		cr, err := parseCR(f.cotp)
		if err != nil {
			t.Fatal(err)
		}
		want := []byte{
			0x03, 0x00, 0x00, 0x16, // TPKT, 22 bytes (gos7 insists on exactly 22)
			0x11, 0xD0, // COTP: 17 bytes, connection confirm
			0x00, 0x01, // destination reference: the caller's source reference
			0x00, 0x01, // our source reference
			0x00,             // class 0
			0xC0, 0x01, 0x0A, // TPDU size
			0xC1, 0x02, 0x01, 0x00, // calling TSAP
			0xC2, 0x02, 0x01, 0x02, // called TSAP
		}
		if got := connectConfirm(cr); !bytes.Equal(got, want) {
			t.Errorf("got  % x\nwant % x", got, want)
		}
	})
	tests := []struct {
		name     string
		req, rep []byte
	}{
		{"setup communication: an S7-300 grants 240", []byte{
			0x32, 0x01, 0x00, 0x00, 0x04, 0x00, // job, reference 0x0400 (gos7's)
			0x00, 0x08, 0x00, 0x00, // 8 bytes of parameters
			0xF0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0xE0, // setup, AmQ 1/1, asks for 480
		}, []byte{
			0x32, 0x03, 0x00, 0x00, 0x04, 0x00, // ack-data, same reference
			0x00, 0x08, 0x00, 0x00, // 8 bytes of parameters, no data
			0x00, 0x00, // no error
			0xF0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0xF0, // granted: 240
		}},
		{"SZL 0x0232 index 4: protection", []byte{
			0x32, 0x07, 0x00, 0x00, 0x00, 0x07, // userdata, reference 7
			0x00, 0x08, 0x00, 0x08, // 8 bytes of parameters, 8 of data
			0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00, // request, CPU functions, read SZL
			0xFF, 0x09, 0x00, 0x04, 0x02, 0x32, 0x00, 0x04, // SZL 0x0232 index 4
		}, append([]byte{
			0x32, 0x07, 0x00, 0x00, 0x00, 0x07, // userdata, reference 7
			0x00, 0x0C, 0x00, 0x34, // 12 bytes of parameters, 52 of data
			0x00, 0x01, 0x12, 0x08, 0x12, // head, 8 more bytes, response
			0x84, 0x01, 0x01, // response | CPU functions, read SZL, sequence 1
			0x00, 0x00, 0x00, 0x00, // data unit reference, last data unit, no error
			0xFF, 0x09, 0x00, 0x30, // success, octet string, 48 bytes
			0x02, 0x32, 0x00, 0x04, // SZL id, index
			0x00, 0x28, 0x00, 0x01, // one record of 40 bytes
			0x00, 0x04, // index
			0x00, 0x01, // level set with the key switch: 1
			0x00, 0x02, // level set in the parameters: 2
			0x00, 0x02, // level in force: 2
			0x00, 0x01, // key switch: RUN
			0x00, 0x00, // startup switch
		}, make([]byte, 28)...)},
		{"SZL 0x0424: RUN since 2026-01-02 03:04:05.678", []byte{
			0x32, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x00, 0x08,
			0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00,
			0xFF, 0x09, 0x00, 0x04, 0x04, 0x24, 0x00, 0x00, // SZL 0x0424 index 0
		}, []byte{
			0x32, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0C, 0x00, 0x20, // 12 + 32
			0x00, 0x01, 0x12, 0x08, 0x12, 0x84, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, // sequence 2
			0xFF, 0x09, 0x00, 0x1C, // 28 bytes
			0x04, 0x24, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01, // one record of 20 bytes
			0x43, 0x08, // event id
			0xFF,                                           // ae
			0x08,                                           // bzu-id: RUN
			0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // reserved, startup info
			0x26, 0x01, 0x02, 0x03, 0x04, 0x05, // BCD 26-01-02 03:04:05
			0x67, 0x86, // 678 ms, weekday 6 (Friday)
		}},
		{"read var DB10.DBD4 as REAL and DB10.DBX10.0", []byte{
			0x32, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x1A, 0x00, 0x00, // job, 26 bytes of parameters
			0x04, 0x02, // read var, 2 items
			0x12, 0x0A, 0x10, 0x08, 0x00, 0x01, 0x00, 0x0A, 0x84, 0x00, 0x00, 0x20, // 1 REAL of DB10 at bit 32
			0x12, 0x0A, 0x10, 0x01, 0x00, 0x01, 0x00, 0x0A, 0x84, 0x00, 0x00, 0x50, // 1 BIT of DB10 at bit 80
		}, []byte{
			0x32, 0x03, 0x00, 0x00, 0x00, 0x09, 0x00, 0x02, 0x00, 0x0D, 0x00, 0x00, // ack-data, 2 + 13 bytes
			0x04, 0x02, // read var, 2 items
			0xFF, 0x07, 0x00, 0x04, 0x42, 0xAA, 0x00, 0x00, // success, REAL, 4 bytes: 85.0
			0xFF, 0x03, 0x00, 0x01, 0x01, // success, BIT, 1 bit: true
		}},
		{"write var is refused item by item", []byte{
			0x32, 0x01, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x0E, 0x00, 0x05,
			0x05, 0x01, 0x12, 0x0A, 0x10, 0x02, 0x00, 0x01, 0x00, 0x0A, 0x84, 0x00, 0x00, 0x20,
			0x00, 0x04, 0x00, 0x08, 0x01,
		}, []byte{
			0x32, 0x03, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
			0x05, 0x01, // write var, 1 item
			0x03, // object access not allowed
		}},
		{"PLC stop is refused", []byte{
			0x32, 0x01, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x10, 0x00, 0x00,
			0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 'P', '_', 'P', 'R', 'O', 'G', 'R', 'A', 'M',
		}, []byte{
			0x32, 0x03, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x01, 0x00, 0x00,
			0x81, 0x04, // error class 0x81, code 0x04: function not available
			0x29,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := &connState{connected: true, cpu: true, pdu: 240}
			if strings.Contains(tc.name, "0x0424") {
				cs.seq = 1
			}
			if strings.HasPrefix(tc.name, "setup") {
				cs.pdu = 0
			}
			if got := s.handle(cs, tc.req); !bytes.Equal(got, tc.rep) {
				t.Errorf("got  % x\nwant % x", got, tc.rep)
			}
		})
	}
}

// TestGos7Reads checks the simulator against gos7 where gos7 is right
// (PDU 480, lists shorter than one reply).
func TestGos7Reads(t *testing.T) {
	sc := DemoScenario()
	sc.PDUSize = 480
	s := start(t, sc, Options{})
	h := gos7.NewTCPClientHandler(s.Addr(), 0, 2)
	h.IdleTimeout = 0
	if err := h.Connect(); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.PDULength != 480 {
		t.Errorf("PDU %d, want 480", h.PDULength)
	}
	c := gos7.NewClient(h)
	info, err := c.GetCPUInfo()
	nul := func(s string) string { return strings.TrimRight(s, "\x00") }
	if err != nil || nul(info.ModuleTypeName) != sc.CPU.ModuleType || nul(info.SerialNumber) != sc.CPU.Serial || nul(info.ASName) != sc.CPU.ASName {
		t.Errorf("CPU info %+v, %v", info, err)
	}
	ob1, _ := s.Block("OB1")
	bi, err := c.GetAgBlockInfo(56, 1)
	if err != nil || bi.CheckSum != int(ob1.Checksum()) || bi.MC7Size != len(ob1.Body()) || strings.TrimRight(bi.Header, "\x00") != "MAIN" {
		t.Errorf("block info %+v, %v", bi, err)
	}
	buf := make([]byte, 4)
	if err := c.AGReadDB(10, 4, 4, buf); err != nil || math.Float32frombits(binary.BigEndian.Uint32(buf)) != 85 {
		t.Errorf("DB10.DBD4 % x, %v", buf, err)
	}
	items := []gos7.S7DataItem{
		{Area: 0x84, WordLen: 0x02, DBNumber: 10, Start: 8, Amount: 2, Data: make([]byte, 2)},
		{Area: 0x84, WordLen: 0x02, DBNumber: 99, Start: 0, Amount: 1, Data: make([]byte, 1)},
		{Area: 0x83, WordLen: 0x02, Start: 0, Amount: 3, Data: make([]byte, 3)},
	}
	if err := c.AGReadMulti(items, len(items)); err != nil || binary.BigEndian.Uint16(items[0].Data) != 30 || items[1].Error == "" || items[2].Error != "" {
		t.Errorf("multi read %+v, %v", items, err)
	}
	l, err := c.PGListBlocks()
	if err != nil || len(l.OBList) != 10 || len(l.FCList) != 24 || len(l.DBList) != 14 || len(l.SDBList) != 4 {
		t.Errorf("blocks %+v, %v", l, err)
	}
	if s.Refused() != 0 {
		t.Errorf("%d refused", s.Refused())
	}
}

func TestDemoScenario(t *testing.T) {
	sc := DemoScenario()
	n := 0
	for _, b := range sc.Blocks {
		if b.Type == "OB" || b.Type == "FB" || b.Type == "FC" || b.Type == "DB" {
			n++
		}
	}
	if n < 50 {
		t.Errorf("demo has %d OBs, FBs, FCs and DBs, want at least 50", n)
	}
	loaded, err := LoadScenario("testdata/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Blocks) != len(sc.Blocks) || loaded.PDUSize != 240 {
		t.Errorf("demo.yaml: %d blocks PDU %d", len(loaded.Blocks), loaded.PDUSize)
	}
}

func TestBadScenarios(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "pdu: 240\n", "field pdu not found"},
		{"profile", "profile: s7-200\n", "profile \"s7-200\""},
		{"PDU", "pdu_size: 100\n", "pdu_size 100: want 240 to 960"},
		{"mode", "mode: SLEEP\n", "mode \"SLEEP\""},
		{"firmware", "cpu: {firmware: 3.2}\n", "cpu.firmware: version \"3.2\""},
		{"block type", "cpu: {firmware: V1.0.0}\nblocks: [{type: XB, number: 1}]\n", "blocks[0]: type \"XB\""},
		{"duplicate block", "cpu: {firmware: V1.0.0}\nblocks: [{type: FC, numbers: 1-3}, {type: FC, number: 2}]\n", "FC2 is defined twice"},
		{"value outside the DB", "cpu: {firmware: V1.0.0}\nblocks: [{type: DB, number: 1, size: 4, values: [{offset: 2, type: REAL, value: '1'}]}]\n", "outside the DB's 4 bytes"},
		{"bad code hex", "cpu: {firmware: V1.0.0}\nblocks: [{type: FC, number: 1, code: xyz}]\n", "code: want hex bytes"},
		{"numbers", "cpu: {firmware: V1.0.0}\nblocks: [{type: FC, numbers: 5-2}]\n", "want a range"},
		{"key switch", "cpu: {firmware: V1.0.0}\nprotection: {key_switch: AUTO}\n", "key_switch \"AUTO\""},
		{"module slot twice", "cpu: {firmware: V1.0.0}\nmodules: [{slot: 4}, {slot: 4}]\n", "rack 0 slot 4 is used twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario("test.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCountsBeforeReplying reads the counters the moment each reply has
// arrived: they must already hold the request and every byte of its reply.
// When the simulator counted after writing, the client could see the reply
// before the count (TestDemoCost failed about 3 times in 10).
func TestCountsBeforeReplying(t *testing.T) {
	s := start(t, nil, Options{})
	r := dial(t, s.Addr(), 0x0102, 240)
	// Hold the server after each write until the client has looked at
	// the counters, so a count made after writing is always seen missing.
	looked := make(chan struct{})
	s.mu.Lock()
	s.afterWrite = func() {
		select {
		case <-looked:
		case <-s.done:
		}
	}
	s.mu.Unlock()
	base := s.Stats()
	in, out := base.BytesIn, base.BytesOut
	req := userdataPDU(grpCPU, 0x01, []byte{0x04, 0x24, 0, 0}) // SZL 0x0424
	for i := 0; i < 20; i++ {
		rep := r.send(req)
		in += int64(7 + len(req))
		out += int64(7 + len(rep))
		st := s.Stats()
		if st.BytesOut != out || st.BytesIn != in || st.Requests["SZL"] != i+1 {
			t.Fatalf("after reply %d: counted %d bytes in, %d out, %d SZL requests; the client has seen %d in, %d out, %d requests",
				i+1, st.BytesIn, st.BytesOut, st.Requests["SZL"], in, out, i+1)
		}
		looked <- struct{}{}
	}
}
