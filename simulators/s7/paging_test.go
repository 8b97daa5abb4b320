package s7

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

func fcs(n int) []Block {
	var out []Block
	for i := 1; i <= n; i++ {
		out = append(out, Block{Type: "FC", Number: i, Size: 30})
	}
	return out
}

func TestPaging(t *testing.T) {
	sc := &Scenario{Profile: "s7-400", CPU: CPU{Firmware: "V3.2.6", ModuleType: "CPU 416-2", Serial: "S 1"}, Blocks: fcs(150)}
	s := start(t, sc, Options{})
	tests := []struct {
		name           string
		pdu            int
		group, subfn   byte
		payload        []byte
		pages, entries int // entries: 4-byte block list entries, 0 for SZLs
	}{
		{"150 FCs at PDU 240: 52 per page", 240, grpBlock, 2, []byte{0x30, 0x43}, 3, 150},
		{"150 FCs at PDU 480: 112 per page", 480, grpBlock, 2, []byte{0x30, 0x43}, 2, 150},
		{"SZL 0x001C at PDU 240", 240, grpCPU, 1, []byte{0x00, 0x1C, 0, 0}, 2, 0},
		{"SZL 0x001C at PDU 480", 480, grpCPU, 1, []byte{0x00, 0x1C, 0, 0}, 1, 0},
	}
	var szl [][]byte
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.Addr(), 0x0302, tc.pdu)
			all, n := c.pages(tc.group, tc.subfn, tc.payload)
			if n != tc.pages {
				t.Errorf("%d pages, want %d", n, tc.pages)
			}
			if tc.entries > 0 {
				if len(all) != 4*tc.entries {
					t.Errorf("%d bytes, want %d entries", len(all), tc.entries)
				}
				for i := 0; i+4 <= len(all); i += 4 {
					if int(binary.BigEndian.Uint16(all[i:])) != i/4+1 || all[i+2] != 0x22 {
						t.Fatalf("entry %d: % x", i/4, all[i:i+4])
					}
				}
			} else {
				szl = append(szl, all)
			}
		})
	}
	if len(szl) == 2 && !bytes.Equal(szl[0], szl[1]) {
		t.Error("SZL 0x001C read in two pages differs from one page")
	}
	t.Run("continuation with the wrong sequence number", func(t *testing.T) {
		c := dial(t, s.Addr(), 0x0302, 240)
		u := parseUD(t, c.send(userdataPDU(grpBlock, 2, []byte{0x30, 0x43})))
		if !u.more {
			t.Fatal("one page only")
		}
		if e := parseUD(t, c.send(continuationPDU(grpBlock, 2, u.seq+1))); e.err != errFuncNotAvail {
			t.Errorf("error 0x%04X, want 0x8104", e.err)
		}
	})
	t.Run("a type with no blocks", func(t *testing.T) {
		c := dial(t, s.Addr(), 0x0302, 240)
		if u := parseUD(t, c.send(userdataPDU(grpBlock, 2, []byte{0x30, 0x45}))); u.err != errNoBlocks {
			t.Errorf("error 0x%04X, want 0xD20E", u.err)
		}
	})
	t.Run("block info of a missing block", func(t *testing.T) {
		c := dial(t, s.Addr(), 0x0302, 240)
		if u := parseUD(t, c.send(userdataPDU(grpBlock, 3, []byte("0C00151A")))); u.err != errBlockMissing {
			t.Errorf("error 0x%04X, want 0xD209", u.err)
		}
	})
	t.Run("read var larger than the PDU", func(t *testing.T) {
		c := dial(t, s.Addr(), 0x0302, 240)
		big := []byte{0x32, 0x01, 0, 0, 0, 0, 0, 14, 0, 0, 0x04, 0x01, 0x12, 0x0A, 0x10, 0x02, 0x01, 0x00, 0x00, 0x00, 0x83, 0, 0, 0} // 256 bytes of M
		rep := c.send(big)
		if p, err := parseS7(rep); err != nil || p.rosctr != rosAckData || binary.BigEndian.Uint16(rep[10:]) != errPDUSize {
			t.Errorf("reply % x, want error 0x8500", rep)
		}
	})
}

// TestRefusedRequests sends each request the simulator refuses and checks
// it is answered with an S7 error and counted.
func TestRefusedRequests(t *testing.T) {
	s := start(t, nil, Options{})
	c := dial(t, s.Addr(), 0x0102, 240)
	tests := []struct {
		name, kind string
		pdu        []byte
	}{
		{"write var", "WriteVar", []byte{0x32, 1, 0, 0, 0, 0, 0, 14, 0, 5, 0x05, 1, 0x12, 0x0A, 0x10, 2, 0, 1, 0, 10, 0x84, 0, 0, 0, 0, 4, 0, 8, 1}},
		{"PLC stop", "PLCStop", []byte{0x32, 1, 0, 0, 0, 0, 0, 16, 0, 0, 0x29, 0, 0, 0, 0, 0, 9, 'P', '_', 'P', 'R', 'O', 'G', 'R', 'A', 'M'}},
		{"PLC control", "PLCControl", []byte{0x32, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0x28, 0}},
		{"request download", "RequestDownload", []byte{0x32, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0x1A, 0}},
		{"start upload", "StartUpload", []byte{0x32, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0x1D, 0}},
		{"unknown job", "Job", []byte{0x32, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0x77}},
		{"set clock", "ClockSet", userdataPDU(grpTime, 2, []byte{0, 0x19, 0x26, 1, 2, 3, 4, 5, 0, 1})},
		{"password", "Password", userdataPDU(grpSec, 1, []byte{1, 2, 3, 4, 5, 6, 7, 8})},
		{"cyclic read", "Userdata", userdataPDU(2, 1, []byte{0, 1})},
		{"ack from a client", "Unknown", []byte{0x32, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := c.send(tc.pdu)
			p, err := parseS7(rep)
			if err != nil {
				t.Fatalf("reply % x: %v", rep, err)
			}
			refused := false
			switch p.rosctr {
			case rosAckData:
				refused = binary.BigEndian.Uint16(rep[10:]) != 0 || (len(p.data) > 0 && p.data[0] == retAccessDenied)
			case rosUserdata:
				refused = binary.BigEndian.Uint16(p.param[10:]) == errFuncNotAvail
			}
			if !refused {
				t.Errorf("reply % x is no refusal", rep)
			}
			if got := s.Requests()[tc.kind]; got != 1 {
				t.Errorf("%s counted %d times", tc.kind, got)
			}
			if s.Refused() != i+1 {
				t.Errorf("refused %d, want %d", s.Refused(), i+1)
			}
		})
	}
	// The clock can be read.
	if u := parseUD(t, c.send(userdataPDU(grpTime, 1, nil))); u.err != 0 || len(u.payload) != 10 {
		t.Errorf("clock read % x", u.payload)
	}
}

func TestFaultActions(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		// check runs the request that meets the fault on c's connection.
		check func(t *testing.T, s *Server, c net.Conn)
	}{
		{"drop", Fault{Action: FaultDrop, Kind: "SZL"}, wantClosed},
		{"garbage", Fault{Action: FaultGarbage, Kind: "SZL"}, func(t *testing.T, s *Server, c net.Conn) {
			if _, err := readFrame(c); err == nil {
				t.Error("garbage read as a TPKT packet")
			}
		}},
		{"truncate", Fault{Action: FaultTruncate, Kind: "SZL"}, func(t *testing.T, s *Server, c net.Conn) {
			f, err := readFrame(c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseS7(f.data); err == nil {
				t.Error("truncated reply parses")
			}
		}},
		{"close after reply", Fault{Action: FaultCloseAfterReply, Kind: "SZL"}, func(t *testing.T, s *Server, c net.Conn) {
			if _, err := readFrame(c); err != nil {
				t.Fatal(err)
			}
			wantClosed(t, s, c)
		}},
		{"refuse with an S7 error", Fault{Action: FaultRefuse, Kind: "SZL", Object: "SZL 0x0424", Code: 0xD241}, func(t *testing.T, s *Server, c net.Conn) {
			f, err := readFrame(c)
			if err != nil {
				t.Fatal(err)
			}
			if u := parseUD(t, f.data); u.err != 0xD241 {
				t.Errorf("error 0x%04X, want 0xD241", u.err)
			}
		}},
		{"a fault aimed at another object misses", Fault{Action: FaultDrop, Kind: "SZL", Object: "SZL 0x0232"}, func(t *testing.T, s *Server, c net.Conn) {
			f, err := readFrame(c)
			if err != nil {
				t.Fatal(err)
			}
			if u := parseUD(t, f.data); u.err != 0 || len(u.payload) == 0 {
				t.Errorf("reply %+v, want the SZL", u)
			}
		}},
		{"trickle: the whole reply, one byte at a time, counted", Fault{Action: FaultTrickle, Kind: "SZL", Interval: time.Millisecond}, func(t *testing.T, s *Server, c net.Conn) {
			var got []byte
			b := make([]byte, 64)
			for len(got) < 4 || len(got) < int(binary.BigEndian.Uint16(got[2:])) {
				n, err := c.Read(b)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, b[:n]...)
			}
			f, err := parseFrame(got)
			if err != nil {
				t.Fatal(err)
			}
			if u := parseUD(t, f.data); u.err != 0 || len(u.payload) == 0 {
				t.Errorf("reply %+v, want the SZL", u)
			}
			if st := s.Stats(); st.BytesOut < int64(len(got)) {
				t.Errorf("%d bytes counted out, the client read %d after the setup", st.BytesOut, len(got))
			}
		}},
		{"stall until cleared", Fault{Action: FaultStall, Kind: "SZL"}, func(t *testing.T, s *Server, c net.Conn) {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := readFrame(c); err == nil {
				t.Fatal("a stalled request was answered")
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			s.ClearFault()
			wantClosed(t, s, c)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, nil, Options{})
			r := dial(t, s.Addr(), 0x0302, 240)
			s.SetFault(tc.fault)
			if _, err := r.c.Write(frameDT(userdataPDU(grpCPU, 1, []byte{0x04, 0x24, 0, 0}), 0)); err != nil {
				t.Fatal(err)
			}
			tc.check(t, s, r.c)
			if s.Requests()["SZL"] != 1 {
				t.Errorf("the faulted request was not counted: %v", s.Requests())
			}
		})
	}
	t.Run("skip and count: only the second page, once", func(t *testing.T) {
		s := start(t, &Scenario{CPU: CPU{Firmware: "V1.0.0"}, Blocks: fcs(150)}, Options{})
		s.SetFault(Fault{Action: FaultDrop, Kind: "ListBlocksOfType", Continuation: true, Count: 1})
		r := dial(t, s.Addr(), 0x0302, 240)
		u := parseUD(t, r.send(userdataPDU(grpBlock, 2, []byte{0x30, 0x43})))
		r.c.Write(frameDT(continuationPDU(grpBlock, 2, u.seq), 0))
		wantClosed(t, s, r.c)
		r2 := dial(t, s.Addr(), 0x0302, 240)
		if _, n := r2.pages(grpBlock, 2, []byte{0x30, 0x43}); n != 3 {
			t.Errorf("%d pages after the fault healed", n)
		}
	})
}

func wantClosed(t *testing.T, s *Server, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read %v, want the connection closed", err)
	}
}

func TestStations(t *testing.T) {
	sc := DemoScenario()
	s := start(t, sc, Options{})
	t.Run("CP in slot 7 answers for itself", func(t *testing.T) {
		c := dial(t, s.Addr(), 0x0307, 240)
		all, _ := c.pages(grpCPU, 1, []byte{0x00, 0x11, 0, 0})
		if !bytes.Contains(all, []byte("6GK7 343-1EX30-0XE0")) || !bytes.Contains(all, []byte{'V', 3, 0, 22}) {
			t.Errorf("SZL 0x0011 of the CP: % x", all)
		}
		if u := parseUD(t, c.send(userdataPDU(grpBlock, 1, nil))); u.err != errFuncNotAvail {
			t.Errorf("block functions on a CP: error 0x%04X", u.err)
		}
	})
	t.Run("nobody in slot 9", func(t *testing.T) {
		if c := dial(t, s.Addr(), 0x0309, 0); c.c != nil {
			t.Error("a connection to an empty slot was confirmed")
		}
	})
	t.Run("S7-1500 refuses block functions", func(t *testing.T) {
		s15 := start(t, &Scenario{Profile: "s7-1500", CPU: CPU{Firmware: "V2.9.4"}, Blocks: fcs(3)}, Options{})
		c := dial(t, s15.Addr(), 0x0301, 960)
		for _, sub := range []byte{1, 2, 3} {
			if u := parseUD(t, c.send(userdataPDU(grpBlock, sub, []byte("0C00001A")))); u.err != errFuncNotAvail {
				t.Errorf("block function %d: error 0x%04X", sub, u.err)
			}
		}
		if all, _ := c.pages(grpCPU, 1, []byte{0x00, 0x11, 0, 0}); len(all) < 8 {
			t.Error("no SZL on an S7-1500")
		}
		if s15.Refused() != 0 {
			t.Errorf("refused %d reads", s15.Refused())
		}
	})
}
