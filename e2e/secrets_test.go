package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPlantedSecretAppearsNowhere runs the built plcwatch against a
// node-opcua server that requires a username and password, through a
// loopback tap, and looks for the planted password in every packet, every
// line plcwatch printed or logged (debug level), the alert log and the
// store file.
func TestPlantedSecretAppearsNowhere(t *testing.T) {
	dir, _ := filepath.Abs("../connectors/opcua/testdata/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node-opcua is not installed in %s: make test installs it (npm ci)", dir)
		}
		t.Skip("run make test (it installs the node peers)")
	}
	node := exec.Command("node", "server.js", "0", t.TempDir())
	node.Dir = dir
	stdin, err := node.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); node.Wait() })
	var hello struct{ Endpoint, Thumbprint string }
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "{") {
			if err := json.Unmarshal(sc.Bytes(), &hello); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if hello.Endpoint == "" {
		t.Fatal("node-opcua server did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()

	// The tap: every byte both ways.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wire bytes.Buffer
	var wg sync.WaitGroup
	upstream := strings.TrimPrefix(hello.Endpoint, "opc.tcp://")
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			for _, p := range [][2]net.Conn{{c, up}, {up, c}} {
				wg.Add(1)
				go func(from, to net.Conn) {
					defer wg.Done()
					defer from.Close()
					defer to.Close()
					buf := make([]byte, 64<<10)
					for {
						n, err := from.Read(buf)
						if n > 0 {
							mu.Lock()
							wire.Write(buf[:n])
							mu.Unlock()
							if _, err := to.Write(buf[:n]); err != nil {
								return
							}
						}
						if err != nil {
							return
						}
					}
				}(p[0], p[1])
			}
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })

	const planted = "s3cret" // the only password the server accepts
	t.Setenv("PLANTED_PW", planted)
	s := newSite(t, fmt.Sprintf(`devices:
  - name: boiler
    protocol: opcua
    endpoint: opc.tcp://%s
    credentials: {username: operator, password_env: PLANTED_PW}
    opcua:
      trusted_thumbprints: [%q]
      browse: [{root: "i=85", max_depth: 6, max_nodes: 500}]
  - name: boiler-clear
    protocol: opcua
    endpoint: opc.tcp://%s
    credentials: {username: operator, password_env: PLANTED_PW}
    opcua:
      browse: [{root: "i=85", max_depth: 6, max_nodes: 500}]
`, ln.Addr(), hello.Thumbprint, ln.Addr()))

	var printed strings.Builder
	run := func(code int, args ...string) string {
		out, errs, got := s.run(append([]string{"--log-level", "debug"}, args...)...)
		printed.WriteString(out + errs)
		if got != code {
			t.Fatalf("plcwatch %v: exit %d, want %d\n%s%s", args, got, code, out, errs)
		}
		return out + errs
	}
	if out := run(0, "config", "check"); !strings.Contains(out, "boiler-clear: a password with security_policy None and no trusted_thumbprints will be refused") {
		t.Errorf("config check does not warn about boiler-clear:\n%s", out)
	}
	run(1, "check", "boiler") // no baseline yet: stored, exit 1
	if out := run(1, "check", "boiler-clear"); !strings.Contains(out, "trusted_thumbprints") {
		t.Errorf("the refusal does not name the fix:\n%s", out)
	}
	run(0, "show", "boiler@latest", "--json")
	run(0, "history", "boiler")
	printed.WriteString(s.alertsJSON()) // exit 1 while alerts are open
	run(0, "plan", "boiler")

	outputs := map[string][]byte{"CLI output and logs": []byte(printed.String())}
	mu.Lock()
	outputs["wire"] = append([]byte(nil), wire.Bytes()...)
	mu.Unlock()
	for _, f := range []string{"plcwatch.db", "plcwatch.db-wal", "plcwatch-alerts.jsonl"} {
		if b, err := os.ReadFile(filepath.Join(s.dir, f)); err == nil {
			outputs[f] = b
		}
	}
	if len(outputs["wire"]) == 0 || len(outputs["plcwatch.db"]) == 0 {
		t.Fatalf("nothing recorded (wire %d bytes, store %d bytes): the test tested nothing", len(outputs["wire"]), len(outputs["plcwatch.db"]))
	}
	found := 0
	for where, b := range outputs {
		if bytes.Contains(b, []byte(planted)) {
			found++
			t.Errorf("the planted password is in the %s", where)
		}
	}
	fmt.Printf("RELIABILITY planted_secrets_found=%d\n", found)
	fmt.Printf("RELIABILITY planted_secret_outputs_searched=%d\n", len(outputs))
}
