package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/limits"
	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// TestRateLimitFanOut: one snapshot fans out into hundreds of requests (an
// S7-400 with 202 DBs: a block info each; a Logix program of 559 tags and
// 24 UDTs: paged symbol and template reads). Measured at the wire, no second
// ever holds more requests than the device's limit.
func TestRateLimitFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("reads for several real seconds")
	}
	var blocks []s7sim.Block
	blocks = append(blocks, s7sim.Block{Type: "OB", Number: 1, Size: 100})
	for i := 1; i <= 202; i++ {
		blocks = append(blocks, s7sim.Block{Type: "DB", Number: i, Size: 16})
	}
	sc := &s7sim.Scenario{Name: "fanout", Profile: "s7-400", PDUSize: 480, Blocks: blocks,
		CPU: s7sim.CPU{OrderCode: "6ES7 416-3XR05-0AB0", Firmware: "V5.3.0", ModuleType: "CPU 416-3", Serial: "S X-1", ASName: "S400", ModuleName: "CPU416"}}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	s7, err := s7sim.Start(context.Background(), s7sim.Options{Listen: "127.0.0.1:0", Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s7.Close()
	lx, err := logixsim.Start(context.Background(), logixsim.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer lx.Close()
	tests := []struct {
		name, protocol, section string
		tap                     *wiretap
		rps                     int
		minRequests             int
	}{
		{"s7 202 DBs", "s7", "s7: {slot: 2}", newTap(t, s7.Addr(), 4, tpkt), 100, 200},
		{"logix 559 tags", "logix", "logix: {slot: 0, audit_value_tag: PlcwatchAuditValue}", newTap(t, lx.Addr(), 24, encap), 20, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := fmt.Sprintf("devices:\n  - name: d\n    protocol: %s\n    endpoint: %s\n    limits: {requests_per_second: %d}\n    %s\n", tc.protocol, tc.tap.addr(), tc.rps, tc.section)
			cfg, err := config.Parse("t.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			c, _, err := connectors.Open(cfg.Devices[0], nil, zerolog.Nop(), limits.New(cfg))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := c.Snapshot(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Status.Complete {
				t.Fatalf("partial: %v", s.Status.Reasons)
			}
			got := tc.tap.requests()
			peak := limits.MaxInWindow(got, time.Second)
			t.Logf("%d requests at the wire, peak %d in one second, limit %d", len(got), peak, tc.rps)
			if len(got) < tc.minRequests {
				t.Errorf("only %d requests: the scenario does not fan out", len(got))
			}
			if peak > tc.rps {
				t.Errorf("%d requests in one second at the device, limit %d", peak, tc.rps)
			}
		})
	}
}
