package opcua_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors/opcua"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
)

// nodeServer is a node-opcua server: an OPC UA implementation nobody at
// plcwatch wrote.
type nodeServer struct {
	endpoint, thumbprint string
	in                   *json.Encoder
	out                  *bufio.Scanner
}

func startNodeServer(t *testing.T) *nodeServer {
	t.Helper()
	dir, _ := filepath.Abs("testdata/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node-opcua is not installed in %s: make test installs it (npm ci)", dir)
		}
		t.Skip("run make test (it installs the node peers)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "server.js", "0", t.TempDir())
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	s := &nodeServer{in: json.NewEncoder(stdin), out: bufio.NewScanner(stdout)}
	ready := make(chan error, 1)
	go func() {
		if !s.next() {
			ready <- fmt.Errorf("node server exited before listening: %v", s.out.Err())
			return
		}
		var hello struct{ Endpoint, Thumbprint string }
		if err := json.Unmarshal(s.out.Bytes(), &hello); err != nil {
			ready <- fmt.Errorf("node server said %q: %v", s.out.Text(), err)
			return
		}
		s.endpoint, s.thumbprint = hello.Endpoint, hello.Thumbprint
		ready <- nil
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("node-opcua server did not start within 60 s")
	}
	return s
}

// next reads the server's next JSON line, passing over the warnings
// node-opcua prints on standard output.
func (s *nodeServer) next() bool {
	for s.out.Scan() {
		if strings.HasPrefix(s.out.Text(), "{") {
			return true
		}
	}
	return false
}

// command sends one JSON command and waits for its answer.
func (s *nodeServer) command(t *testing.T, cmd map[string]any) {
	t.Helper()
	if err := s.in.Encode(cmd); err != nil {
		t.Fatal(err)
	}
	if !s.next() || !strings.Contains(s.out.Text(), `"ok":true`) {
		t.Fatalf("node server answered %q to %v", s.out.Text(), cmd)
	}
}

const interopRules = `
    rules:
      - {path: "opcua/BoilerHouse/Logic/*", kind: logic}
      - {name: "ReadOnlyLimit", kind: setpoint, deadband: 0.5}
      - {name: "ManualSpeed", kind: info, volatile: true}
`

func interopDevice(t *testing.T, endpoint, section, creds string) (*config.Device, *config.Config) {
	t.Helper()
	y := fmt.Sprintf("devices:\n  - name: boiler\n    protocol: opcua\n    endpoint: %s\n%s    opcua:\n%s\n      browse: [{root: \"i=85\", max_depth: 6, max_nodes: 500}]\n%s",
		endpoint, creds, section, interopRules)
	cfg, err := config.Parse("interop.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Devices[0], cfg
}

// TestInteropNodeOPCUA: browse, classify and detect changes on a node-opcua
// server whose address space is unlike the simulator's.
func TestInteropNodeOPCUA(t *testing.T) {
	s := startNodeServer(t)
	dev, cfg := interopDevice(t, s.endpoint, "      timeout: 10s", "")
	base, err := snapshot(t, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !base.Status.Complete {
		t.Fatalf("partial: %v", base.Status.Reasons)
	}
	classes := []struct {
		path     string
		kind     snapshots.Kind
		volatile bool
	}{
		{"opcua/BoilerHouse/Logic/Checksum", snapshots.KindLogic, false},
		{"opcua/BoilerHouse/Limits/ReadOnlyLimit", snapshots.KindSetpoint, false},
		{"opcua/BoilerHouse/Limits/SteamSetpoint", snapshots.KindSetpoint, false},
		{"opcua/BoilerHouse/Drive/ManualSpeed", snapshots.KindInfo, true},
		{"opcua/BoilerHouse/Measurements/Pressure", snapshots.KindInfo, true},
	}
	for _, c := range classes {
		it := base.Item(c.path)
		if it == nil {
			t.Errorf("no item %s", c.path)
			continue
		}
		if it.Kind != c.kind || it.Volatile != c.volatile {
			t.Errorf("%s classified %s volatile=%v, want %s volatile=%v", c.path, it.Kind, it.Volatile, c.kind, c.volatile)
		}
	}
	if base.Identity.Vendor != "Elsewhere Automation" || !strings.HasPrefix(base.Identity.Firmware, "7.1.0") {
		t.Errorf("identity %+v", base.Identity)
	}
	changes := []struct {
		name string
		cmd  map[string]any
		want map[string]bool // paths that must change
	}{
		{"live values churn", map[string]any{"churn": true}, nil},
		{"read-only setpoint within its deadband", map[string]any{"set": "ReadOnlyLimit", "value": 180.3}, nil},
		{"read-only setpoint beyond its deadband", map[string]any{"set": "ReadOnlyLimit", "value": 185}, map[string]bool{"opcua/BoilerHouse/Limits/ReadOnlyLimit": true}},
		{"logic download", map[string]any{"set": "Checksum", "value": "deadbeef"}, map[string]bool{"opcua/BoilerHouse/Limits/ReadOnlyLimit": true, "opcua/BoilerHouse/Logic/Checksum": true}},
	}
	for _, tc := range changes {
		t.Run(tc.name, func(t *testing.T) {
			s.command(t, tc.cmd)
			cur, err := snapshot(t, dev, cfg)
			if err != nil {
				t.Fatal(err)
			}
			rep := diffing.Compare(base, cur, diffing.Options{IgnoreInfo: true})
			got := map[string]bool{}
			for _, c := range rep.Changes {
				if c.Type != diffing.NotRead {
					got[c.Path] = true
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("changed %v, want %v", got, tc.want)
			}
			for p := range tc.want {
				if !got[p] {
					t.Errorf("%s did not change", p)
				}
			}
		})
	}
}

// TestInteropSecurity: username authentication, Sign and SignAndEncrypt with
// the server certificate pinned, and a wrong certificate refused.
func TestInteropSecurity(t *testing.T) {
	s := startNodeServer(t)
	t.Setenv("BOILER_PW", "s3cret")
	t.Setenv("BOILER_BAD_PW", "guess")
	user := "    credentials: {username: operator, password_env: BOILER_PW}\n"
	wrongUser := "    credentials: {username: operator, password_env: BOILER_BAD_PW}\n"
	pin := func(mode, tp string) string {
		return fmt.Sprintf("      security_policy: Basic256Sha256\n      security_mode: %s\n      trusted_thumbprints: [%q]\n      timeout: 10s", mode, tp)
	}
	wrong := strings.Repeat("0f", 32)
	tests := []struct {
		name, section, creds string
		wantErr              error // nil: must succeed
		anyErr               bool
	}{
		{"username on None, certificate not pinned: refused before sending", "      timeout: 10s", user, opcua.ErrCleartextPassword, true},
		{"username on None, pinned: encrypted by the token policy", fmt.Sprintf("      trusted_thumbprints: [%q]\n      timeout: 10s", s.thumbprint), user, nil, false},
		{"wrong password refused", fmt.Sprintf("      trusted_thumbprints: [%q]\n      timeout: 10s", s.thumbprint), wrongUser, nil, true},
		{"Sign, pinned", pin("Sign", s.thumbprint), "", nil, false},
		{"SignAndEncrypt, pinned, username", pin("SignAndEncrypt", s.thumbprint), user, nil, false},
		{"wrong certificate refused", pin("SignAndEncrypt", wrong), "", opcua.ErrUntrustedCertificate, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, cfg := interopDevice(t, s.endpoint, tc.section, tc.creds)
			snap, err := snapshot(t, dev, cfg)
			switch {
			case tc.anyErr && err == nil:
				t.Fatal("connected, want a refusal")
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			case !tc.anyErr && err != nil:
				t.Fatal(err)
			case !tc.anyErr && (!snap.Status.Complete || snap.Item("opcua/BoilerHouse/Limits/SteamSetpoint") == nil):
				t.Errorf("snapshot incomplete: %v", snap.Status)
			}
		})
	}
}
