package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
)

// TestOPCUACarryThroughCLI: through the CLI and its store, the checks
// after an approved baseline carry DataType and AccessLevel forward and
// stay silent, across a server restart too (same certificate and build,
// C7); a variable deleted and downloaded again under the same NodeId with
// another type is reported by the next carried check, not at the next
// full read.
func TestOPCUACarryThroughCLI(t *testing.T) {
	dir := t.TempDir()
	start := func(listen string) *opcuasim.Server {
		t.Helper()
		sim, err := opcuasim.Start(context.Background(), opcuasim.Options{Listen: listen, StateDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close() })
		return sim
	}
	sim := start("127.0.0.1:0")
	s := newSite(t, fmt.Sprintf(`devices:
  - name: skid7
    protocol: opcua
    endpoint: %s
    limits: {requests_per_second: 1000}
    opcua:
      browse: [{root: "i=85", max_depth: 8, max_nodes: 2000}]
`, sim.Endpoint()))
	s.baseline("skid7")
	s.want(0, "check", "skid7")
	addr := sim.Addr()
	sim.Close()
	sim = start(addr)
	s.want(0, "check", "skid7")
	s.want(0, "check", "skid7")
	if err := sim.RemoveNode("Plant/Tank1/LowLimit"); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddNode("Plant/Tank1", opcuasim.NodeSpec{Name: "LowLimit", Type: "Float", Value: 0.5, Writable: true}); err != nil {
		t.Fatal(err)
	}
	s.want(1, "check", "skid7")
	named := false
	for _, a := range s.alerts() {
		for _, it := range a.Items {
			named = named || it.Path == "opcua/Plant/Tank1/LowLimit"
		}
	}
	if !named {
		t.Errorf("no alert names the retyped opcua/Plant/Tank1/LowLimit: %+v", s.alerts())
	}
	var latest struct {
		Items []struct {
			Path  string            `json:"path"`
			Attrs map[string]string `json:"attrs"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(s.want(0, "show", "skid7@latest", "--json")), &latest); err != nil {
		t.Fatal(err)
	}
	for _, it := range latest.Items {
		if it.Path == "opcua/Plant/Tank1/LowLimit" && it.Attrs["data_type"] != "Float" {
			t.Errorf("%s stored with data_type %q, want Float (the carried Double must not survive the retype)", it.Path, it.Attrs["data_type"])
		}
	}
	if n := sim.Refused(); n != 0 {
		t.Errorf("the simulator refused %d write or control requests", n)
	}
}
