package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/bundle"
	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

var t0 = time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)

func key(t testing.TB) bundle.PrivateKey {
	t.Helper()
	k, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// siteStore returns a store with two devices' chains: snapshots and a few
// other records, one with "<&>" in its body (which JSON escaping would
// change).
func siteStore(t testing.TB) (*store.DB, []*storetest.Generator) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "site.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gens := []*storetest.Generator{storetest.NewGenerator("plc-a", 20, t0), storetest.NewGenerator("plc-b", 10, t0)}
	for _, g := range gens {
		grow(t, st, g, 3)
	}
	return st, gens
}

// grow appends n snapshots and an ack-like record to the generator's device.
func grow(t testing.TB, st store.Store, g *storetest.Generator, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		s := g.Next(2)
		if _, err := st.PutSnapshot(ctx, s, []byte(`{"rules":[]}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Append(ctx, g.Device, store.TypeAck, g.At, store.Ack{Alert: "A-0000000000", By: "Ops <&> night shift", Decision: "expected", Comment: "ok", At: g.At}); err != nil {
		t.Fatal(err)
	}
}

func export(t testing.TB, st store.Store, k bundle.PrivateKey, prev []store.Head) ([]byte, *bundle.Manifest) {
	t.Helper()
	var b bytes.Buffer
	m, err := bundle.Export(context.Background(), st, &b, bundle.ExportOptions{Site: "north", Key: k, Previous: prev, Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), m
}

func read(t testing.TB, data []byte) *bundle.Bundle {
	t.Helper()
	b, err := bundle.ReadBundle("test.tar", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewrite returns the archive with member name's content passed through f
// (f returning nil drops the member); extra members are appended.
func rewrite(t testing.TB, data []byte, name string, f func([]byte) []byte, extra map[string][]byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Name == name || (name == "first-chain" && strings.HasPrefix(h.Name, "chains/") && name != "") {
			b = f(b)
			if name == "first-chain" {
				name = ""
			}
			if b == nil {
				continue
			}
		}
		h.Size = int64(len(b))
		tw.WriteHeader(h)
		tw.Write(b)
	}
	for n, b := range extra {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	return out.Bytes()
}

func TestExportVerify(t *testing.T) {
	st, _ := siteStore(t)
	k := key(t)
	data, m := export(t, st, k, nil)
	if len(m.Chains) != 2 || m.Chains[0].FromSeq != 1 || len(m.Heads) != 2 {
		t.Fatalf("manifest chains %+v heads %+v", m.Chains, m.Heads)
	}
	heads, _ := st.Heads(context.Background())
	for i, h := range heads {
		if m.Heads[i] != h {
			t.Errorf("bundle head %+v, store head %+v", m.Heads[i], h)
		}
	}
	if ps := read(t, data).Verify(k.Public()); len(ps) != 0 {
		t.Fatalf("intact bundle: %v", ps)
	}
	other := key(t)
	flip := func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }
	snapName := ""
	for _, f := range m.Files {
		if strings.HasPrefix(f.Name, "snapshots/") {
			snapName = f.Name
			break
		}
	}
	tests := []struct {
		name string
		data []byte
		pub  ed25519.PublicKey
		want string
	}{
		{name: "other key", data: data, pub: other.Public(), want: "signature: made by key"},
		{name: "chain byte changed", data: rewrite(t, data, "first-chain", flip, nil), pub: k.Public(), want: "the file was altered"},
		{name: "record edited and manifest hash fixed is still caught by the signature", data: rewrite(t, data, bundle.ManifestName, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"site": "north"`), []byte(`"site": "south"`), 1)
		}, nil), pub: k.Public(), want: "signature by"},
		{name: "snapshot altered", data: rewrite(t, data, snapName, flip, nil), pub: k.Public(), want: "the file was altered"},
		{name: "snapshot dropped", data: rewrite(t, data, snapName, func([]byte) []byte { return nil }, nil), pub: k.Public(), want: "listed in the manifest but not in the bundle"},
		{name: "file added", data: rewrite(t, data, "", nil, map[string][]byte{"chains/9999.jsonl": []byte("{}\n")}), pub: k.Public(), want: "not listed in the manifest"},
		{name: "signature of another namespace", data: rewrite(t, data, bundle.SignatureName, func(b []byte) []byte {
			return bundle.Sign(bundle.RawKeyForTest(k), "git", read(t, data).ManifestBytes)
		}, nil), pub: k.Public(), want: `namespace "git"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := read(t, tc.data).Verify(tc.pub)
			var all []string
			for _, p := range ps {
				all = append(all, p.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.want) {
				t.Fatalf("problems %q, want one containing %q", all, tc.want)
			}
		})
	}
}

// TestRecordDigestsRecomputed: a record changed inside its chain file, with
// the manifest's SHA-256 updated and the manifest re-signed (a site key
// holder rewriting history), is still caught by the record digests.
func TestRecordDigestsRecomputed(t *testing.T) {
	st, _ := siteStore(t)
	k := key(t)
	var b bytes.Buffer
	_, err := bundle.Export(context.Background(), st, &b, bundle.ExportOptions{Site: "north", Key: k, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	bd := read(t, b.Bytes())
	for name, data := range bd.Files {
		if strings.HasPrefix(name, "chains/") {
			bd.Files[name] = bytes.Replace(data, []byte(`Ops <&> night shift`), []byte(`Ops <&> day shift!!`), 1)
		}
	}
	ps := bd.Verify(k.Public())
	var all []string
	for _, p := range ps {
		all = append(all, p.String())
	}
	if !strings.Contains(strings.Join(all, "\n"), "it was altered") {
		t.Fatalf("problems %q, want an altered record", all)
	}
}

func TestSequence(t *testing.T) {
	st, gens := siteStore(t)
	k := key(t)
	_, m1 := export(t, st, k, nil)
	grow(t, st, gens[0], 2)
	d2, m2 := export(t, st, k, m1.Heads)
	if len(m2.Chains) != 1 || m2.Chains[0].Device != "plc-a" || m2.Chains[0].FromSeq != m1.Heads[0].Seq+1 {
		t.Fatalf("second bundle chains %+v, want plc-a from %d", m2.Chains, m1.Heads[0].Seq+1)
	}
	if len(m2.Heads) != 2 || m2.Heads[1] != m1.Heads[1] {
		t.Errorf("second bundle heads %+v: plc-b's must carry over", m2.Heads)
	}
	if ps := read(t, d2).Verify(k.Public()); len(ps) != 0 {
		t.Fatalf("second bundle: %v", ps)
	}
	grow(t, st, gens[1], 1)
	_, m3 := export(t, st, k, m2.Heads)
	tests := []struct {
		name       string
		prev, next *bundle.Manifest
		want       string
	}{
		{name: "1 then 2", prev: m1, next: m2},
		{name: "2 then 3", prev: m2, next: m3},
		{name: "2 missing", prev: m1, next: m3, want: "a bundle is missing between them"},
		{name: "out of order", prev: m2, next: m1, want: "does not name it as its start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := bundle.FollowsProblems(tc.prev, tc.next)
			var all []string
			for _, p := range ps {
				all = append(all, p.String())
			}
			got := strings.Join(all, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
		})
	}
	// A store rewritten since the last bundle cannot export a continuation.
	if _, err := bundle.Export(context.Background(), st, io.Discard, bundle.ExportOptions{Site: "north", Key: k, Now: t0,
		Previous: []store.Head{{Device: "plc-a", Seq: 2, Digest: strings.Repeat("ab", 32)}}}); err == nil || !strings.Contains(err.Error(), "no longer holds") {
		t.Fatalf("export after a rewrite: %v", err)
	}
}

// TestSSHKeygen checks the signature with OpenSSH's own tool, both ways:
// ssh-keygen -Y verify accepts plcwatch's signatures (and refuses a changed
// manifest or another namespace), and plcwatch accepts ssh-keygen -Y sign's.
func TestSSHKeygen(t *testing.T) {
	sshKeygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh-keygen is not installed (Debian package openssh-client)")
		}
		t.Skip("ssh-keygen is not installed")
	}
	dir := t.TempDir()
	k := key(t)
	keyFile := filepath.Join(dir, "site.key")
	if err := bundle.WriteKeyPair(keyFile, k, "north"); err != nil {
		t.Fatal(err)
	}
	pubLine, _ := os.ReadFile(keyFile + ".pub")
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte(`north namespaces="plcwatch-bundle" `+string(pubLine)), 0o644)
	msg := []byte("{\"format\": \"plcwatch-bundle/1\"}\n")
	sigFile := filepath.Join(dir, "manifest.sig")
	os.WriteFile(sigFile, bundle.Sign(ed25519FromFile(t, keyFile), bundle.Namespace, msg), 0o644)
	verify := func(ns string, m []byte) error {
		cmd := exec.Command(sshKeygen, "-Y", "verify", "-f", allowed, "-I", "north", "-n", ns, "-s", sigFile)
		cmd.Stdin = bytes.NewReader(m)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return &exec.ExitError{Stderr: out}
		}
		return nil
	}
	tests := []struct {
		name string
		ns   string
		msg  []byte
		ok   bool
	}{
		{name: "intact", ns: bundle.Namespace, msg: msg, ok: true},
		{name: "changed manifest", ns: bundle.Namespace, msg: append(bytes.Clone(msg), ' '), ok: false},
		{name: "other namespace", ns: "file", msg: msg, ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := verify(tc.ns, tc.msg); (err == nil) != tc.ok {
				t.Fatalf("ssh-keygen -Y verify: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	// The other way: OpenSSH signs, plcwatch verifies.
	sshKey := filepath.Join(dir, "ssh_ed25519")
	if out, err := exec.Command(sshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "north", "-f", sshKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -t ed25519: %v\n%s", err, out)
	}
	msgFile := filepath.Join(dir, "msg")
	os.WriteFile(msgFile, msg, 0o644)
	if out, err := exec.Command(sshKeygen, "-Y", "sign", "-f", sshKey, "-n", bundle.Namespace, msgFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	pub, err := bundle.LoadPublicKey(sshKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := os.ReadFile(msgFile + ".sig")
	if err := bundle.Verify(pub, bundle.Namespace, msg, sig); err != nil {
		t.Fatalf("verifying ssh-keygen's signature: %v", err)
	}
	if err := bundle.Verify(pub, bundle.Namespace, append(bytes.Clone(msg), 'x'), sig); err == nil {
		t.Fatal("ssh-keygen's signature verified for another message")
	}
	// Fingerprints agree with ssh-keygen -l.
	out, err := exec.Command(sshKeygen, "-l", "-f", keyFile+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	if fp := bundle.Fingerprint(k.Public()); !strings.Contains(string(out), fp) {
		t.Errorf("ssh-keygen -l says %q, plcwatch %s", out, fp)
	}
}

// ed25519FromFile loads the key file keygen wrote.
func ed25519FromFile(t testing.TB, file string) ed25519.PrivateKey {
	t.Helper()
	k, err := bundle.LoadPrivateKey(file)
	if err != nil {
		t.Fatal(err)
	}
	return bundle.RawKeyForTest(k)
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k := key(t)
	f := filepath.Join(dir, "site.key")
	if err := bundle.WriteKeyPair(f, k, "north"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(f)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %04o, want 0600", st.Mode().Perm())
	}
	if err := bundle.WriteKeyPair(f, k, "north"); err == nil || !strings.Contains(err.Error(), "never overwrites") {
		t.Errorf("second keygen: %v", err)
	}
	pem, _ := os.ReadFile(f)
	// The key never prints, whichever way it is formatted.
	body := strings.Split(string(pem), "\n")[1]
	js, _ := json.Marshal(bundle.ExportOptions{Key: k})
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", bundle.ExportOptions{Key: k}), fmt.Sprintf("%#v", k), string(js)} {
		if !strings.Contains(s, "redacted") || strings.Contains(s, body) || strings.Contains(s, hex.EncodeToString(bundle.RawKeyForTest(k).Seed())) {
			t.Errorf("the key printed as %q", s)
		}
	}
	loose := filepath.Join(dir, "loose.key")
	os.WriteFile(loose, pem, 0o644)
	os.Chmod(loose, 0o644)
	tests := []struct {
		name, file, env, want string
	}{
		{name: "file 0600", file: f},
		{name: "file readable by others", file: loose, want: "readable by group or others (mode 0644)"},
		{name: "environment", env: string(pem)},
		{name: "environment unset", want: "give --key FILE (mode 0600) or set PLCWATCH_SITE_KEY"},
		{name: "environment garbage", env: "hello", want: `want a PEM "PRIVATE KEY" block`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(bundle.KeyEnv, tc.env)
			} else {
				t.Setenv(bundle.KeyEnv, "")
			}
			got, err := bundle.LoadPrivateKey(tc.file)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil || !got.Public().Equal(k.Public()) {
				t.Fatalf("loaded %v, %v", got.Public(), err)
			}
		})
	}
}
