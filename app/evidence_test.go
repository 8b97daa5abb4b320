package app

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/store"
)

// transcript collects everything the commands of a test printed.
type transcript struct{ bytes.Buffer }

// runAll runs one command in-process and returns its exit code and stdout;
// stdout and stderr (logs included, at debug level) go to the transcript.
func (tr *transcript) run(t *testing.T, clk *fakeClock, cfg string, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &App{Stdout: &out, Stderr: &errOut, Now: clk.Now, OSUser: func() string { return "tester" }}
	code := a.Exit(a.Run(context.Background(), append([]string{"--config", cfg, "--log-level", "debug", "--log-format", "json"}, args...)))
	tr.Write(out.Bytes())
	tr.Write(errOut.Bytes())
	return code, out.String() + errOut.String()
}

// evidenceSite is one monitored site: an S7 simulator, a config, a store
// and a signing key.
type evidenceSite struct {
	name, dir, cfg, key string
	sim                 *s7sim.Server
}

func newEvidenceSite(t *testing.T, tr *transcript, clk *fakeClock, name string) *evidenceSite {
	t.Helper()
	sim, err := s7sim.Start(context.Background(), s7sim.Options{Listen: "127.0.0.1:0", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	s := &evidenceSite{name: name, dir: t.TempDir(), sim: sim}
	s.cfg = filepath.Join(s.dir, "plcwatch.yaml")
	y := fmt.Sprintf(`site: %s
store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
devices:
  - {name: tankfarm, protocol: s7, endpoint: %s, limits: {requests_per_second: 1000}, s7: {rack: 0, slot: 2}}
`, name, sim.Addr())
	if err := os.WriteFile(s.cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	s.key = filepath.Join(s.dir, "site.key")
	if code, out := tr.run(t, clk, s.cfg, "keygen", "--out", s.key, "--comment", name); code != ExitOK {
		t.Fatalf("keygen: exit %d\n%s", code, out)
	}
	return s
}

// check runs check and returns the snapshot id.
func (s *evidenceSite) check(t *testing.T, tr *transcript, clk *fakeClock) string {
	t.Helper()
	clk.add(24 * time.Hour)
	_, out := tr.run(t, clk, s.cfg, "check", "tankfarm", "--json")
	var res []struct {
		Snapshot string `json:"snapshot"`
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &res); err != nil || len(res) != 1 {
		t.Fatalf("check: %v\n%s", err, out)
	}
	return res[0].Snapshot
}

func (s *evidenceSite) export(t *testing.T, tr *transcript, clk *fakeClock, n int, args ...string) string {
	t.Helper()
	f := filepath.Join(s.dir, fmt.Sprintf("%s-%d.tar", s.name, n))
	if code, out := tr.run(t, clk, s.cfg, append([]string{"export", "--out", f}, args...)...); code != ExitOK {
		t.Fatalf("export %d: exit %d\n%s", n, code, out)
	}
	return f
}

// history makes three bundles of a site: the commissioning (a check and an
// approval), an unapproved mode change with its alert and an
// acknowledgement, and a later check with the change approved.
func (s *evidenceSite) history(t *testing.T, tr *transcript, clk *fakeClock, keyArgs ...string) []string {
	t.Helper()
	id := s.check(t, tr, clk)
	if code, out := tr.run(t, clk, s.cfg, "approve", id, "--ticket", "CHG-1", "--by", "eve"); code != ExitOK {
		t.Fatalf("approve: %d\n%s", code, out)
	}
	b1 := s.export(t, tr, clk, 1, keyArgs...)
	if err := s.sim.SetMode("STOP"); err != nil {
		t.Fatal(err)
	}
	s.check(t, tr, clk)
	_, js := tr.run(t, clk, s.cfg, "alerts", "--json")
	var als []alerts.Alert
	if err := json.Unmarshal([]byte(js[:strings.LastIndex(js, "]")+1]), &als); err != nil || len(als) != 1 {
		t.Fatalf("alerts: %v\n%s", err, js)
	}
	if code, out := tr.run(t, clk, s.cfg, "ack", als[0].ID, "--by", "shift lead", "--comment", "maintenance stop"); code != ExitOK {
		t.Fatalf("ack: %d\n%s", code, out)
	}
	b2 := s.export(t, tr, clk, 2, keyArgs...)
	id = s.check(t, tr, clk)
	if code, out := tr.run(t, clk, s.cfg, "approve", id, "--ticket", "CHG-2", "--by", "eve", "--comment", "kept in STOP"); code != ExitOK {
		t.Fatalf("approve: %d\n%s", code, out)
	}
	s.check(t, tr, clk)
	b3 := s.export(t, tr, clk, 3, keyArgs...)
	return []string{b1, b2, b3}
}

// tamper copies a bundle with one byte of its first chain file changed.
func tamper(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(data))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	done := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if !done && strings.HasPrefix(h.Name, "chains/") {
			b = bytes.Replace(b, []byte(`"by":"shift lead"`), []byte(`"by":"shift l3ad"`), 1)
			done = true
		}
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.Close()
	dst := strings.TrimSuffix(src, ".tar") + "-tampered.tar"
	if err := os.WriteFile(dst, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestEvidenceAcrossSites: two sites' stores filled by checks against S7
// simulators, bundles exported (one site's key from a 0600 file, the
// other's from the environment), one bundle tampered and one missing in the
// sequence: a central installation refuses both (importing nothing of
// them), imports the rest, and then verifies, reports and diffs across
// sites. The planted private keys appear in no output, log, store, bundle
// or config.
func TestEvidenceAcrossSites(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)}
	var tr transcript
	north := newEvidenceSite(t, &tr, clk, "north")
	south := newEvidenceSite(t, &tr, clk, "south")
	southPEM, err := os.ReadFile(south.key)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PLCWATCH_SITE_KEY", string(southPEM))
	if err := os.Remove(south.key); err != nil { // south's key lives in the environment only
		t.Fatal(err)
	}
	nb := north.history(t, &tr, clk, "--key", north.key)
	sb := south.history(t, &tr, clk)

	// An auditor's offline check of the sequence.
	northPub := north.key + ".pub"
	if code, out := tr.run(t, clk, north.cfg, "verify", "--bundle", nb[0], "--bundle", nb[1], "--bundle", nb[2], "--key", northPub); code != ExitOK {
		t.Fatalf("verify --bundle of the whole sequence: exit %d\n%s", code, out)
	}
	if code, out := tr.run(t, clk, north.cfg, "verify", "--bundle", nb[0], "--bundle", nb[2], "--key", northPub); code != ExitFindings || !strings.Contains(out, "a bundle is missing between them") {
		t.Fatalf("verify --bundle with bundle 2 missing: exit %d\n%s", code, out)
	}

	// The auditor's command with OpenSSH alone, as the README gives it.
	if sshKeygen, err := exec.LookPath("ssh-keygen"); err == nil {
		dir := t.TempDir()
		data := mustRead(t, nb[1])
		rd := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := rd.Next()
			if err != nil {
				break
			}
			if h.Name == "manifest.json" || h.Name == "manifest.sig" {
				b, _ := io.ReadAll(rd)
				os.WriteFile(filepath.Join(dir, h.Name), b, 0o600)
			}
		}
		os.WriteFile(filepath.Join(dir, "allowed_signers"), []byte(`north namespaces="plcwatch-bundle" `+string(mustRead(t, northPub))), 0o600)
		cmd := exec.Command(sshKeygen, "-Y", "verify", "-f", "allowed_signers", "-I", "north", "-n", "plcwatch-bundle", "-s", "manifest.sig")
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(mustRead(t, filepath.Join(dir, "manifest.json")))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen -Y verify of an exported bundle: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("ssh-keygen is not installed (Debian package openssh-client)")
	}

	central := t.TempDir()
	ccfg := filepath.Join(central, "plcwatch.yaml")
	npub, _ := os.ReadFile(northPub)
	spub, _ := os.ReadFile(south.key + ".pub")
	y := fmt.Sprintf("store: {path: central.db}\nalerts: {console: {enabled: false}}\nsites:\n  - {name: north, public_key: %q}\n  - {name: south, public_key: %q}\n",
		strings.TrimSpace(string(npub)), strings.TrimSpace(string(spub)))
	if err := os.WriteFile(ccfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cdb := filepath.Join(central, "central.db")
	records := func() int {
		st, err := store.Open(cdb, store.ReadOnly())
		if err != nil {
			return 0
		}
		defer st.Close()
		rs, _ := st.Records(context.Background(), "")
		return len(rs)
	}
	// A bundle of south signed with north's key.
	forged := filepath.Join(south.dir, "south-forged.tar")
	{
		t.Setenv("PLCWATCH_SITE_KEY", "")
		st := filepath.Join(south.dir, "plcwatch.db.exports.jsonl")
		saved, _ := os.ReadFile(st)
		if code, out := tr.run(t, clk, south.cfg, "export", "--key", north.key, "--out", forged); code != ExitOK {
			t.Fatalf("forged export: %d\n%s", code, out)
		}
		os.WriteFile(st, saved, 0o600)
		t.Setenv("PLCWATCH_SITE_KEY", string(southPEM))
	}
	steps := []struct {
		name, file string
		refused    string // "" when it must be imported
	}{
		{name: "north 1", file: nb[0]},
		{name: "north 2 tampered", file: tamper(t, nb[1]), refused: "the file was altered"},
		{name: "north 3 with 2 missing", file: nb[2], refused: "a bundle is missing in between"},
		{name: "north 2", file: nb[1]},
		{name: "north 3", file: nb[2]},
		{name: "north 3 again", file: nb[2], refused: "the bundle was imported already"},
		{name: "south forged with north's key", file: forged, refused: "signature"},
		{name: "south 1", file: sb[0]},
		{name: "south 3 with 2 missing", file: sb[2], refused: "a bundle is missing in between"},
		{name: "south 2", file: sb[1]},
		{name: "south 3", file: sb[2]},
	}
	refused, imported := 0, 0
	for _, s := range steps {
		before := records()
		code, out := tr.run(t, clk, ccfg, "import", s.file)
		after := records()
		if s.refused != "" {
			refused++
			if code != ExitFindings || !strings.Contains(out, "REFUSED") || !strings.Contains(out, s.refused) {
				t.Fatalf("%s: exit %d, want a refusal saying %q:\n%s", s.name, code, s.refused, out)
			}
			if after != before {
				t.Fatalf("%s: refused, yet %d records were imported", s.name, after-before)
			}
			continue
		}
		imported++
		if code != ExitOK || after <= before {
			t.Fatalf("%s: exit %d, %d records imported:\n%s", s.name, code, after-before, out)
		}
	}

	// Key rotation: north introduces a new key in a bundle signed with the
	// old one; the next bundle, signed with the new key, is accepted. A
	// bundle signed with a new key nobody introduced is not.
	newKey := filepath.Join(north.dir, "site-2027.key")
	if code, out := tr.run(t, clk, north.cfg, "keygen", "--out", newKey, "--comment", "north"); code != ExitOK {
		t.Fatalf("keygen: %d\n%s", code, out)
	}
	rogue := filepath.Join(north.dir, "rogue.key")
	tr.run(t, clk, north.cfg, "keygen", "--out", rogue)
	north.check(t, &tr, clk)
	nb = append(nb, north.export(t, &tr, clk, 4, "--key", north.key, "--next-key", newKey+".pub"))
	north.check(t, &tr, clk)
	logFile := filepath.Join(north.dir, "plcwatch.db.exports.jsonl")
	saved := mustRead(t, logFile)
	rogueBundle := north.export(t, &tr, clk, 99, "--key", rogue)
	os.WriteFile(logFile, saved, 0o600)
	nb = append(nb, north.export(t, &tr, clk, 5, "--key", newKey))
	for _, s := range []struct {
		name, file, refused string
	}{
		{name: "north 5 before 4", file: nb[4], refused: "signature"},
		{name: "north 4 introducing a new key", file: nb[3]},
		{name: "north signed with a key nobody introduced", file: rogueBundle, refused: "signature"},
		{name: "north 5 signed with the new key", file: nb[4]},
	} {
		code, out := tr.run(t, clk, ccfg, "import", s.file)
		if s.refused == "" && code != ExitOK || s.refused != "" && (code != ExitFindings || !strings.Contains(out, s.refused)) {
			t.Fatalf("%s: exit %d:\n%s", s.name, code, out)
		}
		if s.refused == "" {
			imported++
		} else {
			refused++
		}
	}
	args := []string{"verify", "--key", northPub}
	for _, f := range nb {
		args = append(args, "--bundle", f)
	}
	if code, out := tr.run(t, clk, north.cfg, args...); code != ExitOK || !strings.Contains(out, "introduces the next key") {
		t.Fatalf("verify --bundle across the key rotation: exit %d\n%s", code, out)
	}

	// The central copies continue exactly the sites' chains.
	st, err := store.Open(cdb, store.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*evidenceSite{north, south} {
		site, err := store.Open(filepath.Join(s.dir, "plcwatch.db"), store.ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		hs, _ := site.Heads(context.Background())
		site.Close()
		oh, err := st.OriginHead(context.Background(), s.name+"/tankfarm", "tankfarm")
		if err != nil || oh.Seq != hs[0].Seq || oh.Digest != hs[0].Digest {
			t.Errorf("%s: central holds up to %d %s, the site's head is %d %s (%v)", s.name, oh.Seq, oh.Digest, hs[0].Seq, hs[0].Digest, err)
		}
		t.Logf("site %s: %d records in its chain", s.name, hs[0].Seq)
	}
	st.Close()
	if code, out := tr.run(t, clk, ccfg, "verify"); code != ExitOK || !strings.Contains(out, "ok: 2 chain(s) intact") {
		t.Fatalf("central verify: exit %d\n%s", code, out)
	}
	if code, out := tr.run(t, clk, ccfg, "history", "north/tankfarm"); code != ExitOK || !strings.Contains(out, "approval") {
		t.Fatalf("central history: exit %d\n%s", code, out)
	}
	if code, out := tr.run(t, clk, ccfg, "diff", "north/tankfarm@baseline", "south/tankfarm@baseline"); code > ExitFindings {
		t.Fatalf("central diff across sites: exit %d\n%s", code, out)
	}
	rep := filepath.Join(central, "report")
	if code, out := tr.run(t, clk, ccfg, "report", "--since", "30d", "--out", rep); code != ExitOK {
		t.Fatalf("central report: exit %d\n%s", code, out)
	}
	js, _ := os.ReadFile(filepath.Join(rep, "report.json"))
	for _, want := range []string{`"name": "north/tankfarm"`, `"name": "south/tankfarm"`, `"ticket": "CHG-2"`, `"by": "shift lead"`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("central report lacks %s", want)
		}
	}
	var sizes []string
	for _, f := range append(nb[:3:3], sb...) {
		fi, _ := os.Stat(f)
		sizes = append(sizes, fmt.Sprintf("%s %d B", filepath.Base(f), fi.Size()))
	}
	t.Logf("bundles: %s", strings.Join(sizes, ", "))
	t.Logf("central import: %d bundles imported, %d refused (tampered, missing in sequence, re-sent, forged, signed with an unintroduced key); central store %d records, verify ok", imported, refused, records())

	for _, s := range []*evidenceSite{north, south} {
		if n := s.sim.Refused(); n != 0 {
			t.Errorf("%s's simulator refused %d write or control requests, want 0", s.name, n)
		}
	}

	// Planted keys: neither private key appears anywhere plcwatch wrote.
	var secrets [][]byte
	for _, p := range [][]byte{southPEM, mustRead(t, north.key)} {
		blk, _ := pem.Decode(p)
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := k.(interface{ Public() crypto.PublicKey }); !ok {
			t.Fatalf("key %d is not a signing key", len(secrets))
		}
		lines := strings.Split(strings.TrimSpace(string(p)), "\n")
		body := strings.Join(lines[1:len(lines)-1], "")
		seed := blk.Bytes[len(blk.Bytes)-32:]
		secrets = append(secrets, []byte(body), seed, []byte(hex.EncodeToString(seed)))
	}
	places := map[string][]byte{"command output and logs": tr.Bytes()}
	for _, dir := range []string{north.dir, south.dir, central} {
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() && p != north.key {
				places[p] = mustRead(t, p)
			}
			return nil
		})
	}
	if len(places) < 10 {
		t.Fatalf("only %d places to search", len(places))
	}
	for where, data := range places {
		for _, s := range secrets {
			if bytes.Contains(data, s) {
				t.Errorf("a private key is in %s", where)
			}
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
