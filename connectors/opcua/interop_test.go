package opcua_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
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
	stop                 func()
}

// startNodeServer starts testdata/node/server.js with its PKI in pki (the
// same folder gives the same certificate, as after a restart) and the
// field behaviours switched on by opts (JSON, see server.js). It is
// stopped when the test ends, or earlier by stop.
func startNodeServer(t *testing.T, pki, opts string) *nodeServer {
	t.Helper()
	dir, _ := filepath.Abs("testdata/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node-opcua is not installed in %s: make test installs it (npm ci)", dir)
		}
		t.Skip("run make test (it installs the node peers)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if opts == "" {
		opts = "{}"
	}
	cmd := exec.CommandContext(ctx, "node", "server.js", "0", pki, opts)
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
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
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
	}
	t.Cleanup(stop)
	s := &nodeServer{in: json.NewEncoder(stdin), out: bufio.NewScanner(stdout), stop: stop}
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
	s := startNodeServer(t, t.TempDir(), "")
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
	s := startNodeServer(t, t.TempDir(), "")
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

// nodeSnapshot takes one snapshot of a running node-opcua server, each
// request bounded by 10 s; an error (Finalize's included: no two items may
// share a path) fails the test.
func nodeSnapshot(t *testing.T, s *nodeServer) *snapshots.Snapshot {
	t.Helper()
	dev, cfg := interopDevice(t, s.endpoint, "      timeout: 10s", "")
	snap, err := snapshot(t, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// nodeSnapshotOnce starts a node-opcua server with the PKI folder and
// options given, takes one snapshot and stops the server.
func nodeSnapshotOnce(t *testing.T, pki, opts string) *snapshots.Snapshot {
	t.Helper()
	s := startNodeServer(t, pki, opts)
	defer s.stop()
	return nodeSnapshot(t, s)
}

// TestInteropEmptyValue: a writable setpoint that answers Good with an
// empty (Null) Variant, as servers do before their link to the PLC is up,
// is recorded as empty and not observable: the snapshot stays complete, 42
// then empty is "not read" (never "42 -> (null)"), two empty readings are
// no news, an approved empty value that later holds 42 is a change, and a
// store from before the mark (empty recorded as read) sees nothing new.
func TestInteropEmptyValue(t *testing.T) {
	pki := t.TempDir()
	const path = "opcua/BoilerHouse/Limits/BadSetpoint"
	take := nodeSnapshot
	s := startNodeServer(t, pki, `{}`)
	base := take(t, s)
	s.stop()
	s = startNodeServer(t, pki, `{"emptyValue":true}`)
	empty := take(t, s)
	again := take(t, s)
	s.stop()

	it := empty.Item(path)
	if it == nil {
		t.Fatalf("no item %s", path)
	}
	if it.Value.Type != snapshots.TypeString || it.Value.Raw != "(null)" || it.Provenance.Source != snapshots.SourceNotObservable || it.Provenance.Reason != opcua.ReasonEmptyValue {
		t.Fatalf("empty value recorded as %s %q %s %q; want string \"(null)\", not observable, %q", it.Value.Type, it.Value.Raw, it.Provenance.Source, it.Provenance.Reason, opcua.ReasonEmptyValue)
	}
	if !empty.Status.Complete {
		t.Errorf("an empty value made the snapshot partial: %v", empty.Status.Reasons)
	}

	only := func(t *testing.T, rep *diffing.Report, typ diffing.ChangeType) diffing.Change {
		t.Helper()
		var found []diffing.Change
		for _, c := range rep.Changes {
			if c.Path == path {
				found = append(found, c)
				continue
			}
			t.Errorf("unexpected %s %s", c.Type, c.Path)
		}
		if len(found) != 1 || found[0].Type != typ {
			t.Fatalf("%s: %+v; want one %s", path, found, typ)
		}
		return found[0]
	}
	opt := diffing.Options{IgnoreInfo: true}
	c := only(t, diffing.Compare(base, empty, opt), diffing.NotRead)
	if c.Reason != opcua.ReasonEmptyValue || c.Old == nil || c.Old.Value.Raw != "42" {
		t.Errorf("42 then empty: reason %q, old %+v; want %q with 42 last known", c.Reason, c.Old, opcua.ReasonEmptyValue)
	}
	for _, a := range alerts.Derive(diffing.Compare(base, empty, opt), alerts.Input{}) {
		if a.Category != alerts.CatIncomplete {
			t.Errorf("42 then empty raised %s %s; want at most the incomplete collection", a.Severity, a.Category)
		}
	}
	if rep := diffing.Compare(empty, again, opt); len(rep.Changes) != 0 {
		t.Errorf("two empty readings: %+v", rep.Changes)
	}
	c = only(t, diffing.Compare(empty, base, opt), diffing.Changed)
	if c.Old.Value.Raw != "(null)" || c.New.Value.Raw != "42" {
		t.Errorf("approved empty, now 42: %+v -> %+v", c.Old.Value, c.New.Value)
	}
	// A baseline stored before the mark holds the empty value as read.
	old := *empty
	old.Items = append([]snapshots.Item(nil), empty.Items...)
	for i := range old.Items {
		if old.Items[i].Path == path {
			old.Items[i].Provenance = snapshots.Provenance{Source: snapshots.SourceRead}
		}
	}
	if rep := diffing.Compare(&old, again, opt); len(rep.Changes) != 0 {
		t.Errorf("a baseline from before the mark against an empty value: %+v", rep.Changes)
	}
}

// TestInteropFieldCases: node-opcua behaving as servers met in the field
// do (advertised OperationLimits, one browse name in two namespaces, a
// node under two references, a Bad status after a restart, a BuildDate
// and namespace indexes that move on restart), each with the value
// plcwatch must record.
func TestInteropFieldCases(t *testing.T) {
	pki := t.TempDir()
	take := nodeSnapshot
	// The baseline, then the same server restarted (same certificate) with
	// a later BuildDate, its namespaces renumbered, and BadSetpoint
	// answering a Bad status.
	common := `"dupNames":true,"twoRefs":true`
	s := startNodeServer(t, pki, `{`+common+`,"buildDate":"2025-01-01T00:00:00Z"}`)
	base := take(t, s)
	s.stop()
	s = startNodeServer(t, pki, `{`+common+`,"buildDate":"2026-06-01T08:00:00Z","shiftNamespaces":true,"badStatus":"BadWaitingForInitialData"}`)
	cur := take(t, s)
	s.stop()
	// A server that advertises a MaxNodesPerRead below plcwatch's default
	// request size, and enforces it.
	s = startNodeServer(t, t.TempDir(), `{"params":150,"maxNodesPerRead":100,"maxNodesPerBrowse":7}`)
	lim := take(t, s)

	snaps := map[string]*snapshots.Snapshot{"base": base, "cur": cur, "limits": lim}
	tests := []struct {
		name, snap, path string
		kind             snapshots.Kind
		value            string // Raw; "" with source not_read
		typ              string
		source           snapshots.Source
		reason           string
	}{
		{"C2 Mode in the own namespace keeps its name", "base", "opcua/BoilerHouse/Mode", snapshots.KindSetpoint, "1", snapshots.TypeInt, snapshots.SourceRead, ""},
		{"C2 Mode in another namespace is its own item", "base", "opcua/BoilerHouse/Mode{urn:elsewhere:vendor}", snapshots.KindSetpoint, "2", snapshots.TypeInt, snapshots.SourceRead, ""},
		{"C2 same path after the namespaces were renumbered", "cur", "opcua/BoilerHouse/Mode{urn:elsewhere:vendor}", snapshots.KindSetpoint, "2", snapshots.TypeInt, snapshots.SourceRead, ""},
		{"C3 node under two references recorded once", "base", "opcua/BoilerHouse/Area/Dosing/Setpoint", snapshots.KindSetpoint, "0.8", snapshots.TypeFloat, snapshots.SourceRead, ""},
		{"C4 setpoint before the restart", "base", "opcua/BoilerHouse/Limits/BadSetpoint", snapshots.KindSetpoint, "42", snapshots.TypeFloat, snapshots.SourceRead, ""},
		{"C4 Bad status is not read, with the status", "cur", "opcua/BoilerHouse/Limits/BadSetpoint", snapshots.KindSetpoint, "", snapshots.TypeNone, snapshots.SourceNotRead, "BadWaitingForInitialData"},
		{"C7 BuildDate is information", "cur", "server/build_date", snapshots.KindInfo, "2026-06-01T08:00:00Z", snapshots.TypeTime, snapshots.SourceRead, ""},
		{"C7 ServerState, named in attrs", "cur", "server/state", snapshots.KindInfo, "0", snapshots.TypeInt, snapshots.SourceRead, ""},
		{"C7 firmware stays firmware", "cur", "server/software_version", snapshots.KindFirmware, "7.1.0", snapshots.TypeString, snapshots.SourceRead, ""},
		{"code identity outside Programs is logic", "base", "opcua/BoilerHouse/Drive/ProgramHash", snapshots.KindLogic, "a1b2c3", snapshots.TypeString, snapshots.SourceRead, ""},
		{"LocalizedText keeps its locale", "base", "opcua/BoilerHouse/Text/Label", snapshots.KindSetpoint, "[de-DE] Käse", snapshots.TypeString, snapshots.SourceRead, ""},
		{"ByteString keeps every byte", "base", "opcua/BoilerHouse/Text/Recipe", snapshots.KindSetpoint, "00017f80ff", snapshots.TypeBytes, snapshots.SourceRead, ""},
		{"C1 every parameter read under MaxNodesPerRead 100", "limits", "opcua/BoilerHouse/Params/P0149", snapshots.KindSetpoint, "149.5", snapshots.TypeFloat, snapshots.SourceRead, ""},
		{"C1 the limits used are recorded", "limits", "server/request_limits", snapshots.KindInfo, "read 100, browse 7 operations per request", snapshots.TypeString, snapshots.SourceRead, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it := snaps[tc.snap].Item(tc.path)
			if it == nil {
				t.Fatalf("no item %s", tc.path)
			}
			if it.Kind != tc.kind || it.Value.Raw != tc.value || it.Value.Type != tc.typ || it.Provenance.Source != tc.source || it.Provenance.Reason != tc.reason {
				t.Errorf("%s: %s %s %q %s %q; want %s %s %q %s %q", tc.path, it.Kind, it.Value.Type, it.Value.Raw, it.Provenance.Source, it.Provenance.Reason,
					tc.kind, tc.typ, tc.value, tc.source, tc.reason)
			}
		})
	}

	if !base.Status.Complete || !lim.Status.Complete {
		t.Errorf("baseline or limits snapshot partial: %v / %v", base.Status.Reasons, lim.Status.Reasons)
	}
	if n := len(lim.Items); n < 150 {
		t.Errorf("limits snapshot has %d items, want every parameter", n)
	}
	if cur.Status.Complete || !strings.Contains(strings.Join(cur.Status.Reasons, ";"), "opcua/BoilerHouse/Limits/BadSetpoint: BadWaitingForInitialData") {
		t.Errorf("a Bad status must make the snapshot partial, naming the node: %+v", cur.Status)
	}
	for _, it := range base.Items {
		if strings.Count(it.Path, "Dosing") > 0 && strings.HasSuffix(it.Path, "/Setpoint") && it.Path != "opcua/BoilerHouse/Area/Dosing/Setpoint" {
			t.Errorf("node reached twice recorded again as %s", it.Path)
		}
	}
	// Restart, moved BuildDate, renumbered namespaces, one Bad status: no
	// change but the one item not read.
	rep := diffing.Compare(base, cur, diffing.Options{IgnoreInfo: true})
	for _, c := range rep.Changes {
		if c.Type == diffing.NotRead && c.Path == "opcua/BoilerHouse/Limits/BadSetpoint" {
			continue
		}
		t.Errorf("after a restart: %s %s (%s)", c.Type, c.Path, c.Kind)
	}
	if st := cur.Item("server/state"); st.Attrs[snapshots.AttrValueName] != "Running" {
		t.Errorf("server/state attrs %v: want value_name Running", st.Attrs)
	}
	if base.Item("security/server_certificate").Value != cur.Item("security/server_certificate").Value {
		t.Error("the server certificate moved although the PKI folder is the same")
	}
}

// TestInteropNumericNodeIDs: a server that numbers its nodes at start
// (numeric NodeIds) gives them other numbers after a restart while every
// browse path stays. The restart changes nothing: no "1.5 -> 1.5" on the
// node id, and two siblings browse-named Temp in one namespace keep their
// paths (their rank, not their numbers) instead of being removed and
// added.
func TestInteropNumericNodeIDs(t *testing.T) {
	pki := t.TempDir()
	take := func(t *testing.T, opts string) *snapshots.Snapshot {
		t.Helper()
		return nodeSnapshotOnce(t, pki, opts)
	}
	base := take(t, `{"numericIds":0}`)
	restarted := take(t, `{"numericIds":21}`)
	for _, tc := range []struct {
		name, path, value string
	}{
		{"setpoint", "opcua/BoilerHouse/Numbered/SP1", "1.5"},
		{"first Temp", "opcua/BoilerHouse/Numbered/Temp{#1}", "10"},
		{"second Temp", "opcua/BoilerHouse/Numbered/Temp{#2}", "20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []*snapshots.Snapshot{base, restarted} {
				it := s.Item(tc.path)
				if it == nil || it.Value.Raw != tc.value {
					t.Fatalf("%s: %+v, want %s", tc.path, it, tc.value)
				}
			}
			if a, b := base.Item(tc.path).Attrs[snapshots.AttrNodeID], restarted.Item(tc.path).Attrs[snapshots.AttrNodeID]; a == b {
				t.Errorf("node id %s the same after the restart: the server did not renumber", a)
			}
		})
	}
	rep := diffing.Compare(base, restarted, diffing.Options{IgnoreInfo: true})
	for _, c := range rep.Changes {
		t.Errorf("after a restart that renumbered the nodes: %s %s %v", c.Type, c.Path, c.Fields)
	}
	if als := alerts.Derive(rep, alerts.Input{}); len(als) != 0 {
		t.Errorf("alerts after a restart: %+v", als)
	}

	// Two browse roots, each with a numbered child SP1: both recorded, the
	// second told apart by its root, the same paths after the restart.
	twoRoots := func(t *testing.T, opts string) *snapshots.Snapshot {
		t.Helper()
		s := startNodeServer(t, pki, opts)
		defer s.stop()
		dev, cfg := device(t, s.endpoint, "      timeout: 10s\n      browse: [{root: \"ns=1;s=Line1\"}, {root: \"ns=1;s=Line2\"}]")
		snap, err := snapshot(t, dev, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// The server's own namespace URI holds its host name.
		nsu, _, _ := strings.Cut(snap.Item("opcua/SP1").Attrs[snapshots.AttrNodeID], ";")
		second := "opcua/SP1{root " + nsu + ";s=Line2}"
		for path, want := range map[string]string{"opcua/SP1": "1.5", second: "3.5"} {
			if it := snap.Item(path); it == nil || it.Value.Raw != want {
				t.Errorf("%s: %+v, want %s", path, it, want)
			}
		}
		return snap
	}
	for _, c := range diffing.Compare(twoRoots(t, `{"numericIds":0}`), twoRoots(t, `{"numericIds":21}`), diffing.Options{IgnoreInfo: true}).Changes {
		t.Errorf("two roots, after a restart that renumbered the nodes: %s %s", c.Type, c.Path)
	}
}

// TestInteropContinuationPoints: a server that pages each node's
// references (its own per-node limit) is browsed in full with BrowseNext;
// one whose BrowseNext never ends (a fresh continuation point and no
// references, every time) or refuses its own continuation points costs
// the nodes concerned, named with the reason, never the snapshot: it
// returns after a few BrowseNext, not at its deadline.
func TestInteropContinuationPoints(t *testing.T) {
	tests := []struct {
		name, opts string
		complete   bool
		reason     string // in the partial snapshot's reasons
		item       string // an item that must be read
		maxNext    int    // BrowseNext requests at most
	}{
		{"one reference per page, 30 parameters", `{"params":30,"pageReferences":1}`, true, "", "opcua/BoilerHouse/Params/P0029", 500},
		{"continuation points forever", `{"pageReferences":2,"browseNext":"forever"}`, false, "BrowseNext: continuation points without end", "server/state", 60},
		{"BadContinuationPointInvalid", `{"pageReferences":2,"browseNext":"invalid"}`, false, "BrowseNext: BadContinuationPointInvalid", "server/state", 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := nodeSnapshot(t, startNodeServer(t, t.TempDir(), tc.opts))
			next := snap.Cost.Count(opcua.KindBrowseNext)
			reasons := strings.Join(snap.Status.Reasons, "; ")
			switch {
			case snap.Status.Complete != tc.complete:
				t.Errorf("complete = %v, want %v: %s", snap.Status.Complete, tc.complete, reasons)
			case !strings.Contains(reasons, tc.reason):
				t.Errorf("reasons %q, want %q", reasons, tc.reason)
			case next == 0 || next > tc.maxNext:
				t.Errorf("%d BrowseNext requests, want 1 to %d", next, tc.maxNext)
			}
			found := false
			for _, it := range snap.Items {
				found = found || strings.HasPrefix(it.Path, tc.item) && it.Provenance.Source == snapshots.SourceRead
			}
			if !found {
				t.Errorf("nothing read under %s: %s", tc.item, reasons)
			}
		})
	}
}

// TestInteropLargeArray: an array Value too large for one response (the
// server sends at most 64 KiB per message; 20,000 Doubles are 160 KB) is
// read in parts with IndexRange and recorded like any long array (its
// first 1,000 elements, its count, the SHA-256 of every element): the
// snapshot is complete, the next one after a restart says nothing new,
// and a change of element 15,000 is a change.
func TestInteropLargeArray(t *testing.T) {
	const path = "opcua/BoilerHouse/Limits/Curve"
	pki := t.TempDir()
	take := func(t *testing.T, opts string) *snapshots.Snapshot {
		t.Helper()
		snap := nodeSnapshotOnce(t, pki, opts)
		if it := snap.Item(path); it == nil || it.Provenance.Source != snapshots.SourceRead ||
			!strings.HasPrefix(it.Value.Raw, "[0, 0.5, 1, ") || !strings.Contains(it.Value.Raw, "… 20000 elements in all, sha256 ") {
			t.Fatalf("%s: %+v, want read, its first elements, 20000 in all", path, it)
		}
		if !snap.Status.Complete {
			t.Fatalf("partial: %v", snap.Status.Reasons)
		}
		return snap
	}
	base := take(t, `{"curve":20000,"maxMessageSize":65536}`)
	same := take(t, `{"curve":20000,"maxMessageSize":65536}`)
	changed := take(t, `{"curve":20000,"curveChange":15000,"maxMessageSize":65536}`)
	if rep := diffing.Compare(base, same, diffing.Options{IgnoreInfo: true}); !rep.Equal() || len(rep.Changes) != 0 {
		t.Errorf("restart, nothing changed: %+v", rep.Changes)
	}
	rep := diffing.Compare(base, changed, diffing.Options{IgnoreInfo: true})
	if len(rep.Changes) != 1 || rep.Changes[0].Path != path || rep.Changes[0].Type != diffing.Changed {
		t.Errorf("element 15000 changed: %+v, want %s changed", rep.Changes, path)
	}
}

// TestInteropSmallMessages: a server that accepts and sends messages of
// at most 16 KiB and closes the connection on a larger one (node-opcua
// does; gopcua sends any size it is given) costs one new session and the
// request in halves, never the snapshot: all 300 parameters are read.
func TestInteropSmallMessages(t *testing.T) {
	s := startNodeServer(t, t.TempDir(), `{"params":300,"maxMessageSize":16384}`)
	dev, cfg := interopDevice(t, s.endpoint, "      timeout: 10s", "")
	snap, err := snapshot(t, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Status.Complete {
		t.Fatalf("partial: %v", snap.Status.Reasons)
	}
	if it := snap.Item("opcua/BoilerHouse/Params/P0299"); it == nil || it.Value.Raw != "299.5" {
		t.Errorf("last parameter: %+v, want 299.5", it)
	}
	if lim := snap.Item("server/request_limits"); !strings.Contains(lim.Attrs["lowered"], "after the server closed the connection") {
		t.Errorf("request_limits %v: want the read size lowered after the closed connection", lim.Attrs)
	}
	connects := snap.Cost.Count(opcua.KindConnect)
	if connects < 2 || connects > 4 {
		t.Errorf("%d sessions opened, want the first and at most 3 more", connects)
	}

	// The next snapshots start from the lowered size: one session each,
	// and the same request_limits every time.
	c, _, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prev := snap
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		next, err := c.Snapshot(ctx, prev)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		n := next.Cost.Count(opcua.KindConnect)
		lim := next.Item("server/request_limits")
		if !next.Status.Complete || n != 1 || lim.Attrs["read_ops"] != snap.Item("server/request_limits").Attrs["read_ops"] || lim.Attrs["kept"] == "" {
			t.Errorf("snapshot %d after the first: complete %v, %d sessions, limits %v; want complete, 1 session, the lowered size kept", i+2, next.Status.Complete, n, lim.Attrs)
		}
		if i == 1 && (lim.Value != prev.Item("server/request_limits").Value || fmt.Sprint(lim.Attrs) != fmt.Sprint(prev.Item("server/request_limits").Attrs)) {
			t.Errorf("request_limits moved between two snapshots of an unchanged server: %v -> %v", prev.Item("server/request_limits").Attrs, lim.Attrs)
		}
		prev = next
	}
}

// counter is a loopback TCP proxy that counts the OPC UA requests a client
// sends through it, as a server would see them: every Hello,
// OpenSecureChannel and CloseSecureChannel, and every service request
// (the final chunk of each MSG), with their bytes. node-opcua counts
// nothing itself.
type counter struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	requests int
	bytes    int64
	open     int
	idle     *sync.Cond
	wg       sync.WaitGroup
}

func startCounter(t *testing.T, upstream string) *counter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{ln: ln, upstream: upstream}
	c.idle = sync.NewCond(&c.mu)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				conn.Close()
				continue
			}
			c.mu.Lock()
			c.open++
			c.mu.Unlock()
			c.wg.Add(2)
			go func() { defer c.wg.Done(); io.Copy(conn, up); conn.Close() }()
			go c.requestsFrom(conn, up)
		}
	}()
	t.Cleanup(func() { ln.Close(); c.wg.Wait() })
	return c
}

// requestsFrom forwards what the client sends frame by frame (UACP
// header: type, chunk, little-endian size), counting each request before
// it is forwarded.
func (c *counter) requestsFrom(client, up net.Conn) {
	defer c.wg.Done()
	defer func() {
		up.Close()
		c.mu.Lock()
		c.open--
		c.idle.Broadcast()
		c.mu.Unlock()
	}()
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(client, hdr); err != nil {
			return
		}
		size := binary.LittleEndian.Uint32(hdr[4:])
		if size < 8 || size > 16<<20 {
			return
		}
		body := make([]byte, size-8)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		c.mu.Lock()
		c.bytes += int64(size)
		if hdr[3] == 'F' {
			c.requests++
		}
		c.mu.Unlock()
		if _, err := up.Write(append(hdr[:8:8], body...)); err != nil {
			return
		}
	}
}

// counts waits until no connection is open and returns the requests and
// bytes counted so far.
func (c *counter) counts() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.open > 0 {
		c.idle.Wait()
	}
	return c.requests, c.bytes
}

func (c *counter) endpoint() string { return "opc.tcp://" + c.ln.Addr().String() }

// TestInteropCarryForward: node-opcua with 10,000 more writable Doubles
// under one folder, advertising 1,000 operations per Read and per Browse.
// The second snapshot carries DataType and AccessLevel and reads Values:
// at most 40 requests, counted by a proxy in front of the server (every
// Hello, OpenSecureChannel and CloseSecureChannel and gopcua's own
// NamespaceArray read included), exactly what the plan made from the
// first snapshot predicted, bytes sent included.
func TestInteropCarryForward(t *testing.T) {
	s := startNodeServer(t, t.TempDir(), `{"params":10000,"maxNodesPerRead":1000,"maxNodesPerBrowse":1000}`)
	proxy := startCounter(t, strings.TrimPrefix(s.endpoint, "opc.tcp://"))
	dev, cfg := device(t, proxy.endpoint(), "      timeout: 30s\n      browse: [{root: \"i=85\", max_depth: 6, max_nodes: 20000}]")
	c, _, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	take := func(prev *snapshots.Snapshot) (*snapshots.Snapshot, int, int64) {
		n0, b0 := proxy.counts()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		snap, err := c.Snapshot(ctx, prev)
		if err != nil {
			t.Fatal(err)
		}
		if err := snap.Finalize(); err != nil {
			t.Fatal(err)
		}
		if !snap.Status.Complete {
			t.Fatalf("partial: %v", snap.Status.Reasons)
		}
		n1, b1 := proxy.counts()
		return snap, n1 - n0, b1 - b0
	}
	first, firstN, _ := take(nil)
	plan, err := c.Plan(first)
	if err != nil {
		t.Fatal(err)
	}
	second, n, sent := take(first)
	wantN, wantOut, _ := plan.Totals()
	t.Logf("first snapshot: %d requests; second: %d requests, %d bytes sent", firstN, n, sent)
	if n > 40 {
		t.Errorf("second snapshot: %d requests, want at most 40", n)
	}
	if n != wantN || sent != wantOut {
		t.Errorf("plan after the first snapshot: %d requests, %d bytes sent; the server received %d, %d bytes", wantN, wantOut, n, sent)
	}
	if rep := diffing.Compare(first, second, diffing.Options{}); !rep.Equal() {
		t.Errorf("unchanged server: %+v", rep.Changes)
	}
}

// TestInteropCarryAcrossRestart: against node-opcua, a snapshot that
// carries from the previous one says nothing new about an unchanged
// server, and neither does the first snapshot after a restart that
// renumbered the namespaces (C2) with one setpoint answering a Bad status
// (C4), nor the carried one after that: the restart forces a full read,
// the Bad setpoint is not read (not a change), and it is read again, in
// full, once the server answers it.
func TestInteropCarryAcrossRestart(t *testing.T) {
	pki := t.TempDir()
	take := func(t *testing.T, s *nodeServer, prev *snapshots.Snapshot) *snapshots.Snapshot {
		t.Helper()
		dev, cfg := interopDevice(t, s.endpoint, "      timeout: 10s", "")
		c, _, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		snap, err := c.Snapshot(ctx, prev)
		if err == nil {
			err = snap.Finalize()
		}
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	carried := func(s *snapshots.Snapshot) int {
		n := 0
		for _, it := range s.Items {
			if it.Provenance.Source == snapshots.SourceCarried {
				n++
			}
		}
		return n
	}
	const common = `"dupNames":true,"twoRefs":true,"buildDate":"2025-01-01T00:00:00Z"`
	const bad = "opcua/BoilerHouse/Limits/BadSetpoint"
	s := startNodeServer(t, pki, `{`+common+`}`)
	base := take(t, s, nil)
	second := take(t, s, base)
	s.stop()
	s = startNodeServer(t, pki, `{`+common+`,"shiftNamespaces":true,"badStatus":"BadWaitingForInitialData"}`)
	restarted := take(t, s, second)
	again := take(t, s, restarted)
	s.stop()
	s = startNodeServer(t, pki, `{`+common+`,"shiftNamespaces":true}`)
	healed := take(t, s, again)
	last := take(t, s, healed)

	for _, tc := range []struct {
		name        string
		old, cur    *snapshots.Snapshot
		wantCarried bool
		notRead     string // the one path allowed to differ, as not read
	}{
		{"unchanged server, carried", base, second, true, ""},
		{"restart, namespaces renumbered, one Bad status", second, restarted, false, bad},
		{"carried after the restart", restarted, again, true, ""},
		{"restart again, the setpoint answers", again, healed, false, ""},
		{"carried after that", healed, last, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := carried(tc.cur); (n > 0) != tc.wantCarried {
				t.Errorf("%d items carried, want carried %v", n, tc.wantCarried)
			}
			for _, c := range diffing.Compare(tc.old, tc.cur, diffing.Options{IgnoreInfo: true}).Changes {
				switch {
				case c.Path == tc.notRead && c.Type == diffing.NotRead:
				case tc.name == "restart again, the setpoint answers" && c.Path == bad && tc.old.Item(bad).Provenance.Source == snapshots.SourceNotRead:
					// Read again after a not-read: the diff may show it back.
				default:
					t.Errorf("%s %s (%s)", c.Type, c.Path, c.Kind)
				}
			}
		})
	}
	if it := again.Item(bad); it == nil || it.Provenance.Source != snapshots.SourceNotRead {
		t.Errorf("%s still Bad in the carried read: %+v, want not_read", bad, it)
	}
	if it := healed.Item(bad); it == nil || it.Provenance.Source != snapshots.SourceRead || it.Value.Raw != "42" {
		t.Errorf("%s answered again: %+v, want read 42 in full", bad, it)
	}
	if rep := diffing.Compare(base, last, diffing.Options{IgnoreInfo: true}); !rep.Equal() {
		for _, c := range rep.Changes {
			t.Errorf("first against last: %s %s", c.Type, c.Path)
		}
	}
}
