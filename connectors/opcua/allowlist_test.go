package opcua_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/connectors/opcua"
	sim "github.com/plcwatch/plcwatch/simulators/opcua"
)

// TestAllowlistRefuses: every OPC UA service that writes, controls,
// manages nodes, updates history, registers servers or subscribes (none of
// which a snapshot uses) is refused by the connector's gate before anything
// reaches the wire; the simulator counts nothing. The send function of each
// row would open a connection and send a Hello to the simulator, so a gate
// that let it through fails the row.
func TestAllowlistRefuses(t *testing.T) {
	s := start(t, sim.Options{})
	dev, cfg := device(t, s.Endpoint(), "      timeout: 5s")
	_, gate, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, k := range opcua.Allowlist {
		allowed[k] = true
	}
	tests := []struct{ name, kind string }{
		// Attribute service set (Part 4, 5.10): writes.
		{"Write", "opcua.Write"},
		{"HistoryUpdate", "opcua.HistoryUpdate"},
		// Method service set (5.11): control.
		{"Call", "opcua.Call"},
		// NodeManagement service set (5.7).
		{"AddNodes", "opcua.AddNodes"},
		{"AddReferences", "opcua.AddReferences"},
		{"DeleteNodes", "opcua.DeleteNodes"},
		{"DeleteReferences", "opcua.DeleteReferences"},
		// Discovery registration (5.4).
		{"RegisterServer", "opcua.RegisterServer"},
		{"RegisterServer2", "opcua.RegisterServer2"},
		// Subscription and MonitoredItem service sets (5.12, 5.13): not used.
		{"CreateSubscription", "opcua.CreateSubscription"},
		{"ModifySubscription", "opcua.ModifySubscription"},
		{"SetPublishingMode", "opcua.SetPublishingMode"},
		{"Publish", "opcua.Publish"},
		{"Republish", "opcua.Republish"},
		{"TransferSubscriptions", "opcua.TransferSubscriptions"},
		{"DeleteSubscriptions", "opcua.DeleteSubscriptions"},
		{"CreateMonitoredItems", "opcua.CreateMonitoredItems"},
		{"ModifyMonitoredItems", "opcua.ModifyMonitoredItems"},
		{"SetMonitoringMode", "opcua.SetMonitoringMode"},
		{"SetTriggering", "opcua.SetTriggering"},
		{"DeleteMonitoredItems", "opcua.DeleteMonitoredItems"},
		// Session and view services a snapshot does not use.
		{"Cancel", "opcua.Cancel"},
		{"RegisterNodes", "opcua.RegisterNodes"},
		{"UnregisterNodes", "opcua.UnregisterNodes"},
		{"HistoryRead", "opcua.HistoryRead"},
		{"QueryFirst", "opcua.QueryFirst"},
		{"QueryNext", "opcua.QueryNext"},
		{"an unknown kind", "opcua.Frobnicate"},
		{"an empty kind", ""},
		{"another protocol's read", "s7.ReadVar"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if allowed[tc.kind] {
				t.Fatalf("%s is on the OPC UA allowlist", tc.kind)
			}
			sent := false
			err := gate.Do(context.Background(), connectors.Request{Kind: tc.kind, Object: "audit"}, func(ctx context.Context) (int, error) {
				sent = true
				c, err := net.Dial("tcp", s.Addr())
				if err != nil {
					return 0, err
				}
				defer c.Close()
				_, err = c.Write([]byte("HELF\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"))
				return 0, err
			})
			if !errors.Is(err, connectors.ErrNotAllowed) || sent {
				t.Errorf("Do(%q) = %v, sent %v; want ErrNotAllowed and nothing sent", tc.kind, err, sent)
			}
		})
	}
	total := 0
	for _, n := range s.Requests() {
		total += n
	}
	if total != 0 || s.Refused() != 0 {
		t.Errorf("the simulator saw %d requests (%v), %d refused; want none", total, s.Requests(), s.Refused())
	}
}
