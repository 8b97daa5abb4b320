package s7

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodePeer returns the directory of the Node peers, or skips (fails under
// CI) when they are not installed.
func nodePeer(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-snap7")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node-snap7 is not installed in testdata/node: run make test (it installs the node peers)")
		}
		t.Skip("run make test (it installs the node peers)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	return dir
}

type snap7Report struct {
	Error   string `json:"error"`
	PDU     int    `json:"pdu"`
	CPUInfo struct {
		ModuleTypeName, SerialNumber, ASName, Copyright, ModuleName string
	} `json:"cpuInfo"`
	OrderCode  struct{ Code, Version string } `json:"orderCode"`
	Protection struct {
		SchSchal int `json:"sch_schal"`
		SchPar   int `json:"sch_par"`
		SchRel   int `json:"sch_rel"`
		BartSch  int `json:"bart_sch"`
	} `json:"protection"`
	Status int            `json:"status"`
	Blocks map[string]int `json:"blocks"`
	FCs    []int          `json:"fcs"`
	OB1    struct {
		Checksum, MC7, Load, Lang int
		Author, Family, Header    string
	} `json:"ob1"`
	DB10  string `json:"db10"`
	Multi []struct {
		Result int
		Data   *string
	} `json:"multi"`
	Refused map[string]bool `json:"refused"`
}

// TestSnap7Client has snap7's own client read the simulator, at the PDU
// of an S7-400 and of an S7-300 (where SZL replies and the FC list span
// several PDUs).
func TestSnap7Client(t *testing.T) {
	dir := nodePeer(t)
	for _, pdu := range []int{480, 240} {
		t.Run(fmt.Sprintf("PDU %d", pdu), func(t *testing.T) {
			sc := DemoScenario()
			sc.PDUSize = 480
			for i := 25; i <= 140; i++ { // enough FCs for two pages at 480, three at 240
				sc.Blocks = append(sc.Blocks, Block{Type: "FC", Number: i, Size: 30})
			}
			s := start(t, sc, Options{})
			_, port, _ := net.SplitHostPort(s.Addr())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "node", filepath.Join(dir, "client.js"), port, strconv.Itoa(pdu)).Output()
			if err != nil {
				t.Fatalf("node: %v", err)
			}
			var r snap7Report
			if err := json.Unmarshal(out, &r); err != nil || r.Error != "" {
				t.Fatalf("report %s: %v %s", out, err, r.Error)
			}
			cpu := sc.CPU
			ob1, _ := s.Block("OB1")
			db10, _ := s.DB(10)
			checks := []struct {
				name      string
				got, want any
			}{
				{"PDU", r.PDU, pdu},
				{"module type", r.CPUInfo.ModuleTypeName, cpu.ModuleType},
				{"serial", r.CPUInfo.SerialNumber, cpu.Serial},
				{"AS name", r.CPUInfo.ASName, cpu.ASName},
				{"order code", r.OrderCode.Code, cpu.OrderCode},
				{"protection level", r.Protection.SchRel, sc.Protection.Level},
				{"key switch", r.Protection.BartSch, 1},
				{"status RUN", r.Status, 8},
				{"OB count", r.Blocks["OBCount"], 10},
				{"FC count", r.Blocks["FCCount"], 140},
				{"FC list", len(r.FCs), 140},
				{"last FC", r.FCs[len(r.FCs)-1], 140},
				{"OB1 checksum", r.OB1.Checksum, int(ob1.Checksum())},
				{"OB1 MC7 size", r.OB1.MC7, len(ob1.Body())},
				{"OB1 author", strings.TrimRight(r.OB1.Author, "\x00 "), "PLANT"},
				{"DB10", r.DB10, hex.EncodeToString(db10[:36])},
				{"multi-read DB10.DBD4", deref(r.Multi[0].Data), "42aa0000"},
				{"multi-read DB99 refused", r.Multi[1].Result != 0, true},
				{"refused", fmt.Sprint(r.Refused), "map[dbWrite:true password:true plcStop:true setClock:true]"},
				{"counted refusals", s.Refused(), 4},
			}
			for _, c := range checks {
				if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
					t.Errorf("%s: snap7 read %v, want %v", c.name, c.got, c.want)
				}
			}
			if db, _ := s.DB(10); hex.EncodeToString(db[:36]) != hex.EncodeToString(db10[:36]) {
				t.Error("DB10 changed: a write got through")
			}
			t.Logf("requests: %v", s.Requests())
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
