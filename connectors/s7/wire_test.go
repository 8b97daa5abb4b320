package s7

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// refusedTelegrams are hand-built telegrams of kinds off the allowlist.
var refusedTelegrams = []struct {
	name string
	kind string
	b    []byte
}{
	{"write var DB1.DBB0", "s7.WriteVar", []byte{
		0x03, 0x00, 0x00, 0x24, // TPKT, 36 bytes
		0x02, 0xF0, 0x80, // COTP DT, EOT
		0x32, 0x01, 0x00, 0x00, 0x00, 0x01, // S7 job, PDU reference 1
		0x00, 0x0E, 0x00, 0x05, // 14 bytes of parameters, 5 of data
		0x05, 0x01, // write var, 1 item
		0x12, 0x0A, 0x10, 0x02, 0x00, 0x01, // var spec, 10 bytes, ANY, BYTE, count 1
		0x00, 0x01, 0x84, 0x00, 0x00, 0x00, // DB1, area DB, bit address 0
		0x00, 0x04, 0x00, 0x08, 0x01, // reserved, transport BYTE, 8 bits, value 1
	}},
	{"PLC stop (gos7's telegram)", "s7.PLCStop", []byte{
		0x03, 0x00, 0x00, 0x21, 0x02, 0xF0, 0x80, // TPKT 33, COTP DT
		0x32, 0x01, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x10, 0x00, 0x00, // job, ref 0x0E00, 16 bytes of parameters
		0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // PLC stop, reserved, name length 9
		'P', '_', 'P', 'R', 'O', 'G', 'R', 'A', 'M',
	}},
	{"PLC hot start (gos7's telegram)", "s7.PLCControl", []byte{
		0x03, 0x00, 0x00, 0x25, 0x02, 0xF0, 0x80, // TPKT 37, COTP DT
		0x32, 0x01, 0x00, 0x00, 0x0C, 0x00, 0x00, 0x14, 0x00, 0x00, // job, 20 bytes of parameters
		0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFD, 0x00, 0x00, 0x09, // PLC control, no argument
		'P', '_', 'P', 'R', 'O', 'G', 'R', 'A', 'M',
	}},
	{"request download", "s7.Download", []byte{
		0x03, 0x00, 0x00, 0x19, 0x02, 0xF0, 0x80, // TPKT 25, COTP DT
		0x32, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00, // job, 8 bytes of parameters
		0x1A, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // request download
	}},
	{"start upload", "s7.Upload", []byte{
		0x03, 0x00, 0x00, 0x19, 0x02, 0xF0, 0x80,
		0x32, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00,
		0x1D, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // start upload
	}},
	{"set clock (gos7's PGClockRead)", "s7.ClockSet", []byte{
		0x03, 0x00, 0x00, 0x27, 0x02, 0xF0, 0x80, // TPKT 39, COTP DT
		0x32, 0x07, 0x00, 0x00, 0x89, 0x03, 0x00, 0x08, 0x00, 0x0E, // userdata, 8 bytes of parameters, 14 of data
		0x00, 0x01, 0x12, 0x04, 0x11, 0x47, 0x02, 0x00, // request, group 7 (time), subfunction 2 (set clock)
		0xFF, 0x09, 0x00, 0x0A, 0x00, 0x19, 0x13, 0x12, 0x06, 0x23, 0x55, 0x19, 0x00, 0x01, // the new time
	}},
	{"set session password", "s7.Password", []byte{
		0x03, 0x00, 0x00, 0x25, 0x02, 0xF0, 0x80, // TPKT 37
		0x32, 0x07, 0x00, 0x00, 0x27, 0x00, 0x00, 0x08, 0x00, 0x0C, // userdata, 8 + 12
		0x00, 0x01, 0x12, 0x04, 0x11, 0x45, 0x01, 0x00, // group 5 (security), subfunction 1
		0xFF, 0x09, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, // encoded password
	}},
	{"cyclic read subscription", "s7.Userdata(2,1)", []byte{
		0x03, 0x00, 0x00, 0x1D, 0x02, 0xF0, 0x80, // TPKT 29
		0x32, 0x07, 0x00, 0x00, 0x00, 0x04, 0x00, 0x08, 0x00, 0x04,
		0x00, 0x01, 0x12, 0x04, 0x11, 0x42, 0x01, 0x00, // group 2 (cyclic data)
		0x0A, 0x00, 0x00, 0x00,
	}},
	{"download block (job 0x1B)", "s7.Download", []byte{
		0x03, 0x00, 0x00, 0x23, 0x02, 0xF0, 0x80, // TPKT 35, COTP DT
		0x32, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x12, 0x00, 0x00, // job, 18 bytes of parameters
		0x1B, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // download block, status, reserved
		0x09, '_', '0', 'C', '0', '0', '0', '0', '1', 'P', // file name length 9: _0C00001P (FC1, passive)
	}},
	{"download ended (job 0x1C)", "s7.Download", []byte{
		0x03, 0x00, 0x00, 0x23, 0x02, 0xF0, 0x80, // TPKT 35, COTP DT
		0x32, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x12, 0x00, 0x00, // job, 18 bytes of parameters
		0x1C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // download ended
		0x09, '_', '0', 'C', '0', '0', '0', '0', '1', 'P',
	}},
	{"PI service: insert block (_INSE)", "s7.PLCControl", piService("_INSE", []byte("0C00001P"))},
	{"PI service: delete block (_DELE)", "s7.PLCControl", piService("_DELE", []byte("0C00001B"))},
	{"PI service: compress memory (_GARB)", "s7.PLCControl", piService("_GARB", nil)},
	{"PI service: copy RAM to ROM (_MODU)", "s7.PLCControl", piService("_MODU", []byte("P"))},
	{"PI service: cold start (P_PROGRAM, C)", "s7.PLCControl", piService("P_PROGRAM", []byte("C "))},
	{"PLC stop (job 0x29, hand-built)", "s7.PLCStop", []byte{
		0x03, 0x00, 0x00, 0x21, 0x02, 0xF0, 0x80, // TPKT 33, COTP DT
		0x32, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x10, 0x00, 0x00, // job, 16 bytes of parameters
		0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // PLC stop, reserved, name length 9
		'P', '_', 'P', 'R', 'O', 'G', 'R', 'A', 'M',
	}},
	{"set clock (userdata group 0x47, subfunction 0x02)", "s7.ClockSet", userdataRequest(0x7, 0x02, []byte{0x00, 0x19, 0x26, 0x11, 0x29, 0x22, 0x15, 0x00, 0x00, 0x01})},
	{"clear session password (group 0x45, subfunction 0x02)", "s7.Password", userdataRequest(0x5, 0x02, nil)},
	{"force (programmer commands, group 0x41, subfunction 0x10)", "s7.Userdata(1,16)", userdataRequest(0x1, 0x10, []byte{0x00, 0x14, 0x00, 0x04})},
	{"variable table write (programmer commands, group 0x41, subfunction 0x02)", "s7.Userdata(1,2)", userdataRequest(0x1, 0x02, []byte{0x00, 0x14, 0x00, 0x04})},
	{"cyclic read: unsubscribe (group 0x42, subfunction 0x04)", "s7.Userdata(2,4)", userdataRequest(0x2, 0x04, []byte{0x01})},
	{"alarm and message registration (group 0x44, subfunction 0x02)", "s7.Userdata(4,2)", userdataRequest(0x4, 0x02, []byte{0x86, 0x00})},
	{"unknown job function", "s7.Job(0x99)", []byte{
		0x03, 0x00, 0x00, 0x13, 0x02, 0xF0, 0x80,
		0x32, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x02, 0x00, 0x00,
		0x99, 0x00,
	}},
	{"TPKT length disagrees with the telegram", "s7.Unparsed", []byte{
		0x03, 0x00, 0x00, 0x40, 0x02, 0xF0, 0x80, 0x32, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x04, 0x00,
	}},
	{"not TPKT", "s7.Unparsed", []byte("GET / HTTP/1.0\r\n\r\n")},
	{"read var without EOT (the CPU would join the next telegram to it)", "s7.Unparsed", []byte{
		0x03, 0x00, 0x00, 0x1F, // TPKT, 31 bytes
		0x02, 0xF0, 0x00, // COTP DT, not the last data unit
		0x32, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0E, 0x00, 0x00, // job, 14 bytes of parameters
		0x04, 0x01, 0x12, 0x0A, 0x10, 0x02, 0x00, 0x01, 0x00, 0x01, 0x84, 0x00, 0x00, 0x00, // read var DB1.DBB0
	}},
	{"read var with a write var behind it in the same TPKT", "s7.Unparsed", append([]byte{
		0x03, 0x00, 0x00, 0x3C, // TPKT, 60 bytes
		0x02, 0xF0, 0x80, // COTP DT, EOT
		0x32, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0E, 0x00, 0x00, // job, 14 bytes of parameters
		0x04, 0x01, 0x12, 0x0A, 0x10, 0x02, 0x00, 0x01, 0x00, 0x01, 0x84, 0x00, 0x00, 0x00, // read var DB1.DBB0
	}, 0x32, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x0E, 0x00, 0x05, // job, 14 bytes of parameters, 5 of data
		0x05, 0x01, 0x12, 0x0A, 0x10, 0x02, 0x00, 0x01, 0x00, 0x01, 0x84, 0x00, 0x00, 0x00, // write var DB1.DBB0
		0x00, 0x04, 0x00, 0x08, 0x01)}, // value 1
	{"COTP DT with a header longer than the 3 bytes the connector sends", "s7.Unparsed", []byte{
		0x03, 0x00, 0x00, 0x21, // TPKT, 33 bytes
		0x04, 0xF0, 0x80, 0x05, 0x29, // COTP DT, length indicator 4 (two unexpected bytes)
		0x32, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0E, 0x00, 0x00,
		0x04, 0x01, 0x12, 0x0A, 0x10, 0x02, 0x00, 0x01, 0x00, 0x01, 0x84, 0x00, 0x00, 0x00,
	}},
}

// piService builds a PI service job (function 0x28): 7 reserved bytes with
// 0xFD, the parameter block's length and bytes, the service name's length
// and name (ASCII), as STEP 7 sends to insert, delete or compress blocks,
// copy RAM to ROM or start the CPU.
func piService(name string, arg []byte) []byte {
	par := append([]byte{0x28, 0, 0, 0, 0, 0, 0, 0xFD, byte(len(arg) >> 8), byte(len(arg))}, arg...)
	par = append(append(par, byte(len(name))), name...)
	s7 := append([]byte{0x32, 0x01, 0, 0, 0, 0x10, byte(len(par) >> 8), byte(len(par)), 0, 0}, par...)
	return frame(s7)
}

// TestRequestFixtures pins the bytes of every telegram the connector builds.
func TestRequestFixtures(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
		kind string
	}{
		{"COTP connection request, basic connection to rack 0 slot 2", connectRequest(0x0100, 0x0302), []byte{
			0x03, 0x00, 0x00, 0x16, // TPKT: version 3, reserved, 22 bytes
			0x11,       // COTP length indicator: 17
			0xE0,       // connection request
			0x00, 0x00, // destination reference
			0x00, 0x01, // source reference
			0x00,             // class 0
			0xC0, 0x01, 0x0A, // TPDU size: 1024
			0xC1, 0x02, 0x01, 0x00, // calling TSAP 0x0100
			0xC2, 0x02, 0x03, 0x02, // called TSAP: type 3 (basic), rack 0 << 5 | slot 2
		}, kindConnect},
		{"setup communication asking for 480 bytes", setupRequest(480), []byte{
			0x03, 0x00, 0x00, 0x19, 0x02, 0xF0, 0x80, // TPKT 25, COTP DT with EOT
			0x32, 0x01, // S7, job
			0x00, 0x00, // redundancy id
			0x00, 0x00, // PDU reference (set by the transport)
			0x00, 0x08, 0x00, 0x00, // 8 bytes of parameters, no data
			0xF0, 0x00, // setup communication, reserved
			0x00, 0x01, 0x00, 0x01, // max AmQ calling 1, called 1
			0x01, 0xE0, // PDU size 480
		}, kindSetup},
		{"read SZL 0x0424 index 0", szlRequest(0x0424, 0), []byte{
			0x03, 0x00, 0x00, 0x21, 0x02, 0xF0, 0x80, // TPKT 33, COTP DT
			0x32, 0x07, 0x00, 0x00, 0x00, 0x00, // S7 userdata, PDU reference
			0x00, 0x08, 0x00, 0x08, // 8 bytes of parameters, 8 of data
			0x00, 0x01, 0x12, // parameter head
			0x04, 0x11, // 4 more bytes, request
			0x44, 0x01, 0x00, // type 4 (request) | group 4 (CPU functions), read SZL, sequence 0
			0xFF, 0x09, 0x00, 0x04, // return code, octet string, 4 bytes
			0x04, 0x24, 0x00, 0x00, // SZL id 0x0424, index 0
		}, kindSZL},
		{"next page of a block list", continuationRequest(grpBlock, subListType, 0x07), []byte{
			0x03, 0x00, 0x00, 0x21, 0x02, 0xF0, 0x80, // TPKT 33
			0x32, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x00, 0x04, // userdata, 12 + 4
			0x00, 0x01, 0x12, 0x08, 0x12, // head, 8 more bytes, continuation
			0x43, 0x02, 0x07, // block functions, list of type, the CPU's sequence number
			0x00, 0x00, 0x00, 0x00, // data unit reference, last data unit, error code
			0x0A, 0x00, 0x00, 0x00, // no data
		}, kindList},
		{"list FC blocks", blockListRequest("FC"), []byte{
			0x03, 0x00, 0x00, 0x1F, 0x02, 0xF0, 0x80, // TPKT 31
			0x32, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x06,
			0x00, 0x01, 0x12, 0x04, 0x11, 0x43, 0x02, 0x00, // block functions, list blocks of type
			0xFF, 0x09, 0x00, 0x02, 0x30, 0x43, // '0', type 'C' (FC)
		}, kindList},
		{"block info FB10", blockInfoRequest("FB", 10), []byte{
			0x03, 0x00, 0x00, 0x25, 0x02, 0xF0, 0x80, // TPKT 37
			0x32, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0C,
			0x00, 0x01, 0x12, 0x04, 0x11, 0x43, 0x03, 0x00, // block functions, block info
			0xFF, 0x09, 0x00, 0x08, // 8 bytes
			0x30, 0x45, // '0', type 'E' (FB)
			'0', '0', '0', '1', '0', // number, five ASCII digits
			'A', // file system: active
		}, kindInfo},
		{"read DB10.DBD4 and MB2", readVarRequest([]varItem{{0x84, 10, 4, 4}, {0x83, 0, 2, 1}}), []byte{
			0x03, 0x00, 0x00, 0x2B, 0x02, 0xF0, 0x80, // TPKT 43
			0x32, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1A, 0x00, 0x00, // job, 26 bytes of parameters
			0x04, 0x02, // read var, 2 items
			0x12, 0x0A, 0x10, 0x02, 0x00, 0x04, 0x00, 0x0A, 0x84, 0x00, 0x00, 0x20, // 4 bytes of DB10 from bit 32
			0x12, 0x0A, 0x10, 0x02, 0x00, 0x01, 0x00, 0x00, 0x83, 0x00, 0x00, 0x10, // 1 byte of M from bit 16
		}, kindReadVar},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Equal(tc.got, tc.want) {
				t.Errorf("bytes\n got % x\nwant % x", tc.got, tc.want)
			}
			if k := decodeKind(tc.got); k != tc.kind {
				t.Errorf("kind %q, want %q", k, tc.kind)
			}
		})
	}
	for _, tc := range refusedTelegrams {
		for _, k := range Allowlist {
			if tc.kind == k {
				t.Errorf("%s decodes to %s, which is allowed", tc.name, k)
			}
		}
	}
}

// blockInfoReply is a userdata reply to "block info FC7" as the frame's S7
// PDU (offsets in comments from the TPKT header, as in Wireshark).
var blockInfoReply = []byte{
	0x32, 0x07, 0x00, 0x00, 0x00, 0x09, // 7: S7 userdata, PDU reference 9
	0x00, 0x0C, 0x00, 0x52, // 13: 12 bytes of parameters, 82 of data
	0x00, 0x01, 0x12, 0x08, 0x12, // 17: head, 8 more bytes, response
	0x83, 0x03, 0x01, // 22: type 8 | block functions, block info, sequence 1
	0x00, 0x00, 0x00, 0x00, // 25: data unit reference, last data unit, no error
	0xFF, 0x09, 0x00, 0x4E, // 29: success, octet string, 78 bytes
	0x01, 0x00, 0x00, 0x4A, 0x00, 0x22, 0x70, 0x70, 0x01, // 33: constant fields
	0x01,       // 42: flags
	0x04,       // 43: language SCL
	0x0C,       // 44: sub-block type FC
	0x00, 0x07, // 45: number 7
	0x00, 0x00, 0x01, 0x2C, // 47: load size 300
	0x00, 0x00, 0x00, 0x00, // 51: no know-how protection
	0x03, 0x0C, 0x77, 0xE3, // 55: code time: 51,148,771 ms after midnight = 14:12:28.771
	0x2F, 0x50, // 59: 12112 days after 1984-01-01 = 2017-02-28
	0x00, 0x00, 0x00, 0x01, // 61: interface time: 1 ms after midnight
	0x00, 0x00, // 65: day 0 = 1984-01-01
	0x00, 0x14, // 67: SBB length 20
	0x00, 0x00, // 69: ADD length
	0x00, 0x1A, // 71: local data 26
	0x00, 0xD0, // 73: MC7 size 208
	'P', 'L', 'A', 'N', 'T', 0, 0, 0, // 75: author
	'U', 'T', 'I', 'L', ' ', ' ', ' ', ' ', // 83: family, space padded
	'P', 'I', 'D', '_', 'C', 'T', 'R', 'L', // 91: name
	0x21,       // 99: version 2.1
	0x00,       // 100
	0xBE, 0xEF, // 101: checksum
	0, 0, 0, 0, 0, 0, 0, 0, // 103: reserved
}

func TestReplyFixtures(t *testing.T) {
	t.Run("block info", func(t *testing.T) {
		r, err := parseUserdataReply(blockInfoReply, grpBlock, subInfo)
		if err != nil {
			t.Fatal(err)
		}
		bi, err := parseBlockInfo(r.payload, "FC", 7)
		if err != nil {
			t.Fatal(err)
		}
		want := blockInfo{typ: "FC", number: 7, flags: 1, language: 4, loadSize: 300,
			codeTime: time.Date(2017, 2, 28, 14, 12, 28, 771e6, time.UTC), intfTime: time.Date(1984, 1, 1, 0, 0, 0, 1e6, time.UTC),
			sbb: 20, localData: 26, mc7: 208, author: "PLANT", family: "UTIL", name: "PID_CTRL", version: 0x21, checksum: 0xBEEF}
		if bi != want {
			t.Errorf("got  %+v\nwant %+v", bi, want)
		}
		if _, err := parseBlockInfo(r.payload, "FC", 8); err == nil {
			t.Error("a reply for FC7 was accepted for FC8")
		}
	})
	t.Run("userdata error", func(t *testing.T) {
		b := append([]byte(nil), blockInfoReply[:22]...)
		b[9] = 4                     // 4 bytes of data
		b[20], b[21] = 0xD2, 0x09    // error code 0xD209: block does not exist
		b = append(b, 0x0A, 0, 0, 0) // no data
		_, err := parseUserdataReply(b, grpBlock, subInfo)
		var de *DeviceError
		if !errors.As(err, &de) || de.Code != 0xD209 || de.unsupported() {
			t.Errorf("error %v: want DeviceError 0xD209, not 'unsupported'", err)
		}
	})
	t.Run("setup communication", func(t *testing.T) {
		n, err := parseSetupReply([]byte{
			0x32, 0x03, 0x00, 0x00, 0x00, 0x01, // ack-data, reference 1
			0x00, 0x08, 0x00, 0x00, 0x00, 0x00, // 8 bytes of parameters, no data, no error
			0xF0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0xF0, // granted PDU 240
		})
		if err != nil || n != 240 {
			t.Errorf("PDU %d, %v: want 240", n, err)
		}
	})
	t.Run("read var with padding and a refused item", func(t *testing.T) {
		items := []varItem{{0x84, 10, 0, 1}, {0x84, 99, 0, 4}, {0x84, 10, 4, 4}}
		data, codes, err := parseReadVarReply([]byte{
			0x32, 0x03, 0x00, 0x00, 0x00, 0x02, // ack-data
			0x00, 0x02, 0x00, 0x12, 0x00, 0x00, // 2 bytes of parameters, 18 of data
			0x04, 0x03, // read var, 3 items
			0xFF, 0x04, 0x00, 0x08, 0x2A, // item 1: success, BYTE, 8 bits, 0x2A
			0x00,                   // fill byte to an even offset
			0x0A, 0x00, 0x00, 0x00, // item 2: object does not exist
			0xFF, 0x07, 0x00, 0x04, 0x42, 0xAA, 0x00, 0x00, // item 3: REAL, 4 bytes, 85.0
		}, items)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data[0], []byte{0x2A}) || data[1] != nil || !bytes.Equal(data[2], []byte{0x42, 0xAA, 0, 0}) || codes[1] != 0x0A {
			t.Errorf("data % x, codes % x", data, codes)
		}
	})
	t.Run("status and transition time", func(t *testing.T) {
		l, err := parseSZL([]byte{
			0x04, 0x24, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01, // SZL 0x0424, index 0, 20-byte records, 1 record
			0x43, 0x05, 0xFF, 0x85, // event id, ae, bzu-id: previous RUN (8), now STARTUP (5)
			0, 0, 0, 0, 0, 0, 0, 0, // reserved, startup info
			0x25, 0x06, 0x03, 0x14, 0x22, 0x31, 0x12, 0x34, // 2025-06-03 14:22:31.123, weekday 4
		}, 0x0424)
		if err != nil {
			t.Fatal(err)
		}
		st, err := decodeStatus(l)
		if err != nil {
			t.Fatal(err)
		}
		if st.mode != "STARTUP" || st.detail != "complete restart" || !st.transition.Equal(time.Date(2025, 6, 3, 14, 22, 31, 123e6, time.UTC)) {
			t.Errorf("status %+v", st)
		}
	})
	t.Run("SZL cut off", func(t *testing.T) {
		if _, err := parseSZL([]byte{0x00, 0x1C, 0, 0, 0, 34, 0, 10, 1, 2, 3}, 0x001C); err == nil {
			t.Error("an SZL promising 10 records of 34 bytes with 3 bytes was accepted")
		}
	})
}

func TestPackReads(t *testing.T) {
	tests := []struct {
		name   string
		ranges []varItem
		pdu    int
		want   int // requests
	}{
		{"touching ranges merge into one item", []varItem{{0x84, 10, 0, 4}, {0x84, 10, 4, 4}, {0x84, 10, 8, 2}}, 240, 1},
		{"19 scattered REALs fit one request at PDU 240", scattered(19), 240, 1},
		{"20 items per request at most", scattered(21), 960, 2},
		{"replies bound the packing at PDU 240", sized(8, 40), 240, 2},
		{"a STRING longer than a reply is split", []varItem{{0x84, 1, 0, 256}}, 240, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			packs := packReads(tc.ranges, tc.pdu, true)
			if len(packs) != tc.want {
				t.Errorf("%d requests, want %d: %v", len(packs), tc.want, packs)
			}
			covered := 0
			for _, p := range packs {
				req, res := reqOverhead, resOverhead
				for _, it := range p {
					req += reqPerItem
					res += resPerItem + it.count + it.count%2
					covered += it.count
				}
				if req > tc.pdu || res > tc.pdu || len(p) > maxItems {
					t.Errorf("request of %d items needs %d/%d bytes, PDU %d", len(p), req, res, tc.pdu)
				}
			}
			want := 0
			for _, r := range packReads(tc.ranges, 1<<20, true) {
				for _, it := range r {
					want += it.count
				}
			}
			if covered != want {
				t.Errorf("packs cover %d bytes, want %d", covered, want)
			}
		})
	}
}

func scattered(n int) []varItem {
	var out []varItem
	for i := 0; i < n; i++ {
		out = append(out, varItem{0x84, 12, i * 8, 4})
	}
	return out
}

func sized(n, size int) []varItem {
	var out []varItem
	for i := 0; i < n; i++ {
		out = append(out, varItem{0x84, 12, i * 100, size})
	}
	return out
}
