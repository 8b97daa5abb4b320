package opcua_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/connectors/opcua"
	"github.com/plcwatch/plcwatch/limits"
	sim "github.com/plcwatch/plcwatch/simulators/opcua"
)

// tap is a loopback TCP proxy that records every byte both ways. gopcua's
// server answers for its own endpoint URL only, so with swap the tap
// rewrites its own address into the upstream's (same length: five-digit
// ports) in what the client sends, and back; node-opcua needs no rewrite
// (which would break signatures).
type tap struct {
	ln       net.Listener
	upstream string
	swap     bool
	mu       sync.Mutex
	wire     bytes.Buffer
	wg       sync.WaitGroup
}

func startTap(t *testing.T, upstream string, swap bool) *tap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{ln: ln, upstream: upstream, swap: swap}
	tp.wg.Add(1)
	go func() {
		defer tp.wg.Done()
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
			tp.wg.Add(2)
			go tp.pipe(c, up, ln.Addr().String(), upstream)
			go tp.pipe(up, c, upstream, ln.Addr().String())
		}
	}()
	t.Cleanup(func() { ln.Close(); tp.wg.Wait() })
	return tp
}

func (tp *tap) pipe(from, to net.Conn, old, new string) {
	defer tp.wg.Done()
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			b := buf[:n]
			tp.mu.Lock()
			tp.wire.Write(b)
			tp.mu.Unlock()
			if tp.swap && len(old) == len(new) {
				b = bytes.ReplaceAll(b, []byte(old), []byte(new))
			}
			if _, err := to.Write(b); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (tp *tap) bytes() []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]byte(nil), tp.wire.Bytes()...)
}

func (tp *tap) endpoint() string { return "opc.tcp://" + tp.ln.Addr().String() }

// TestSecretsNeverInClear plants a password (and, for the anonymous-only
// server, a username) and reads the wire, the logs, the snapshot and the
// error: the secret appears nowhere, whether the connection succeeds with
// an encrypted password or is refused before sending it.
func TestSecretsNeverInClear(t *testing.T) {
	node := startNodeServer(t, t.TempDir(), "")
	gosim := start(t, sim.Options{})
	const password, user = "s3cret", "operator"
	t.Setenv("PLANTED_PW", password)
	creds := "    credentials: {username: " + user + ", password_env: PLANTED_PW}\n"
	pin := func(extra string) string {
		return fmt.Sprintf("      trusted_thumbprints: [%q]\n      timeout: 10s%s", node.thumbprint, extra)
	}
	tests := []struct {
		name     string
		upstream string // host:port
		section  string
		wantErr  error // nil: the snapshot must succeed with the session
		secret   string
	}{
		{name: "None, certificate not pinned: refused before sending", upstream: strings.TrimPrefix(node.endpoint, "opc.tcp://"),
			section: "      timeout: 10s", wantErr: opcua.ErrCleartextPassword, secret: password},
		{name: "None, pinned: the token policy encrypts it", upstream: strings.TrimPrefix(node.endpoint, "opc.tcp://"),
			section: pin(""), secret: password},
		{name: "Sign, pinned: the token policy encrypts it", upstream: strings.TrimPrefix(node.endpoint, "opc.tcp://"),
			section: pin("\n      security_policy: Basic256Sha256\n      security_mode: Sign"), secret: password},
		{name: "SignAndEncrypt, pinned", upstream: strings.TrimPrefix(node.endpoint, "opc.tcp://"),
			section: pin("\n      security_policy: Basic256Sha256\n      security_mode: SignAndEncrypt"), secret: password},
		{name: "anonymous-only server: the username is not sent", upstream: gosim.Addr(),
			section: "      timeout: 10s", wantErr: opcua.ErrNoUserNameToken, secret: user},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp := startTap(t, tc.upstream, tc.upstream == gosim.Addr())
			dev, cfg := interopDevice(t, tp.endpoint(), tc.section, creds)
			var logs bytes.Buffer
			c, _, err := connectors.Open(dev, cfg.Classification, zerolog.New(&logs).Level(zerolog.DebugLevel), limits.New(cfg))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			snap, err := c.Snapshot(ctx, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Snapshot = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Snapshot: %v", err)
			} else if !snap.Status.Complete {
				t.Fatalf("partial: %v", snap.Status.Reasons)
			}
			outputs := map[string][]byte{"wire": tp.bytes(), "log": logs.Bytes(), "error": []byte(fmt.Sprint(err))}
			if snap != nil {
				js, _ := json.Marshal(snap)
				outputs["snapshot"] = js
			}
			if len(outputs["wire"]) == 0 {
				t.Fatal("the tap saw nothing: the test tested nothing")
			}
			for where, b := range outputs {
				if bytes.Contains(b, []byte(tc.secret)) {
					t.Errorf("the planted secret %q is in the %s", tc.secret, where)
				}
			}
		})
	}
}
