package app

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/bundle"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/store"
)

// bundleLogEntry is one line of the export log (at a site) or of the import
// log (at a central installation): a bundle's manifest digest, its site,
// signer, the key it introduces and the heads it ended with.
type bundleLogEntry struct {
	File     string       `json:"file"`
	Manifest string       `json:"manifest_sha256"`
	Site     string       `json:"site"`
	Created  time.Time    `json:"created"`
	Signer   string       `json:"signer"`
	NextKey  string       `json:"next_key,omitempty"`
	Heads    []store.Head `json:"heads"`
}

func exportLogPath(cfg *config.Config) string { return cfg.StorePath() + ".exports.jsonl" }
func importLogPath(cfg *config.Config) string { return cfg.StorePath() + ".imports.jsonl" }

// readBundleLog reads a bundle log; a missing file is an empty log.
func readBundleLog(path string) ([]bundleLogEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []bundleLogEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var e bundleLogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: want a JSON bundle log entry: %w", path, n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

func appendBundleLog(path string, e bundleLogEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func manifestDigest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (a *App) keygenCommand() *cobra.Command {
	var out, comment string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keygen --out site.key [--comment NAME]",
		Short: "Create a site's ed25519 key for signing evidence bundles",
		Long: `Writes the private key to FILE (PKCS #8 PEM, mode 0600; never overwrites) and the
public key to FILE.pub in OpenSSH format, for the central site's config (sites:)
and for auditors (ssh-keygen -Y verify). The private key stays in that file or in
$` + bundle.KeyEnv + `; it never goes into the config or the store.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("keygen: --out FILE is required")
			}
			k, err := bundle.GenerateKey()
			if err != nil {
				return err
			}
			if err := bundle.WriteKeyPair(out, k, comment); err != nil {
				return &ExitCodeError{Code: ExitError, Err: err}
			}
			if asJSON {
				return writeJSON(a.Stdout, map[string]string{"private_key_file": out, "public_key_file": out + ".pub",
					"public_key": bundle.FormatPublicKey(k.Public(), comment), "fingerprint": bundle.Fingerprint(k.Public())})
			}
			fmt.Fprintf(a.Stdout, "private key: %s (mode 0600: keep it on this host, or in $%s)\npublic key:  %s.pub\n%s\nfingerprint: %s\n",
				out, bundle.KeyEnv, out, bundle.FormatPublicKey(k.Public(), comment), bundle.Fingerprint(k.Public()))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "private key file to create (the public key goes to FILE.pub)")
	cmd.Flags().StringVar(&comment, "comment", "plcwatch-site", "comment in the public key (the site name)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *App) exportCommand() *cobra.Command {
	var since, keyFile, nextKey, out, site string
	var devices []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "export [--since 35d|DATE] [--device D]... [--key FILE] [--next-key PUB] --out FILE",
		Short: "Write a signed evidence bundle of the store's chains",
		Long: `Writes the records of each chain since the previous bundle (or since --since for
a chain no bundle held yet) with the snapshots' content, as one tar archive with a
manifest (every file's SHA-256, the chain ranges, the heads the previous bundle
ended with and the heads this one ends with) and its SSHSIG signature
(manifest.sig, namespace plcwatch-bundle). The signing key is --key FILE (mode
0600) or $` + bundle.KeyEnv + `. --next-key introduces a new key (rotation): bundles
after this one may be signed with it. The site name is the config's site:.

An auditor checks a bundle offline with OpenSSH:
  tar -xf FILE manifest.json manifest.sig
  echo "SITE namespaces=\"plcwatch-bundle\" $(cat site.key.pub)" > allowed_signers
  ssh-keygen -Y verify -f allowed_signers -I SITE -n plcwatch-bundle -s manifest.sig < manifest.json
or with plcwatch verify --bundle FILE --key site.key.pub.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("export: --out FILE is required")
			}
			if _, err := os.Lstat(out); err == nil {
				return usageError("export: %s exists; a bundle is never overwritten", out)
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if site == "" {
				site = cfg.Site
			}
			if site == "" {
				return usageError("export: name the site: site: in %s or --site", cfg.File)
			}
			var from time.Time
			if since != "" {
				if from, err = parseWhen("--since", since, a.Now().UTC()); err != nil {
					return err
				}
			}
			key, err := bundle.LoadPrivateKey(keyFile)
			if err != nil {
				return &ExitCodeError{Code: ExitError, Err: err}
			}
			var next ed25519.PublicKey
			if nextKey != "" {
				if next, err = bundle.LoadPublicKey(nextKey); err != nil {
					return &ExitCodeError{Code: ExitError, Err: fmt.Errorf("--next-key: %w", err)}
				}
			}
			log, err := readBundleLog(exportLogPath(cfg))
			if err != nil {
				return err
			}
			var prev []store.Head
			for _, e := range log {
				if e.Site == site {
					prev = e.Heads
				}
			}
			st, err := store.Open(cfg.StorePath(), store.ReadOnly())
			if err != nil {
				return err
			}
			defer st.Close()
			var buf bytes.Buffer
			m, err := bundle.Export(c.Context(), st, &buf, bundle.ExportOptions{Site: site, Since: from, Devices: devices, Previous: prev, Key: key, NextKey: next, Now: a.Now()})
			if err != nil {
				return &ExitCodeError{Code: ExitError, Err: err}
			}
			if err := writeFileAtomic(out, buf.Bytes(), 0o600); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			b, err := bundle.ReadBundle(out, bytes.NewReader(buf.Bytes()))
			if err != nil {
				return err
			}
			if err := appendBundleLog(exportLogPath(cfg), bundleLogEntry{File: out, Manifest: manifestDigest(b.ManifestBytes), Site: site, Created: m.Created, Signer: m.Signer, NextKey: m.NextKey, Heads: m.Heads}); err != nil {
				return fmt.Errorf("export: recording the bundle's heads in %s: %w", exportLogPath(cfg), err)
			}
			recs := 0
			for _, ch := range m.Chains {
				recs += int(ch.ToSeq - ch.FromSeq + 1)
			}
			if asJSON {
				return writeJSON(a.Stdout, map[string]any{"bundle": out, "site": site, "chains": m.Chains, "records": recs,
					"files": len(m.Files) + 2, "manifest_sha256": manifestDigest(b.ManifestBytes), "signer": bundle.Fingerprint(key.Public())})
			}
			fmt.Fprintf(a.Stdout, "bundle %s: site %s, %d chain range(s), %d record(s), %d file(s), manifest sha256 %s, signed by %s\n",
				out, site, len(m.Chains), recs, len(m.Files)+2, manifestDigest(b.ManifestBytes), bundle.Fingerprint(key.Public()))
			for _, ch := range m.Chains {
				fmt.Fprintf(a.Stdout, "  %s: records %d to %d, head %s\n", ch.Device, ch.FromSeq, ch.ToSeq, ch.Head)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "first bundle of a chain: start at its first record at or after this time (35d, DATE)")
	cmd.Flags().StringArrayVar(&devices, "device", nil, "only this device (repeatable; default all)")
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file (mode 0600); default $"+bundle.KeyEnv)
	cmd.Flags().StringVar(&nextKey, "next-key", "", "public key file of the site's next key (key rotation)")
	cmd.Flags().StringVar(&out, "out", "", "bundle file to write")
	cmd.Flags().StringVar(&site, "site", "", "site name (default: site: in the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// verifyBundles checks bundles in order against the trusted key: each
// signature, digest and link, and that each bundle continues the one
// before. A bundle that introduces a next key makes that key trusted for
// the bundles after it.
func (a *App) verifyBundles(files []string, keyFile string, asJSON bool) error {
	if keyFile == "" {
		return usageError("verify --bundle: --key PUB (the site's public key file) is required")
	}
	pub, err := bundle.LoadPublicKey(keyFile)
	if err != nil {
		return &ExitCodeError{Code: ExitError, Err: err}
	}
	trusted := []ed25519.PublicKey{pub}
	var prev *bundle.Manifest
	bad := 0
	type result struct {
		File     string       `json:"file"`
		OK       bool         `json:"ok"`
		Findings []string     `json:"findings"`
		Site     string       `json:"site,omitempty"`
		Signer   string       `json:"signer,omitempty"`
		Records  int          `json:"records"`
		Heads    []store.Head `json:"heads"`
		NextKey  string       `json:"next_key,omitempty"`
	}
	var results []result
	out := a.Stdout
	if asJSON {
		out = io.Discard
	}
	for _, f := range files {
		b, err := readBundleFile(f)
		if err != nil {
			fmt.Fprintf(out, "FINDING %s: %v\n", f, err)
			results = append(results, result{File: f, Findings: []string{err.Error()}})
			bad++
			prev = nil
			continue
		}
		signer := signerOf(b, trusted)
		ps := b.Verify(signer)
		if prev != nil {
			ps = append(ps, bundle.FollowsProblems(prev, &b.Manifest)...)
		}
		res := result{File: f, Site: b.Manifest.Site, Signer: bundle.Fingerprint(signer)}
		for _, p := range ps {
			fmt.Fprintf(out, "FINDING %s: %s\n", f, p)
			res.Findings = append(res.Findings, fmt.Sprint(p))
		}
		if len(ps) > 0 {
			bad++
		} else {
			recs := 0
			for _, ch := range b.Manifest.Chains {
				recs += int(ch.ToSeq - ch.FromSeq + 1)
			}
			res.OK, res.Records, res.Heads = true, recs, b.Manifest.Heads
			fmt.Fprintf(out, "ok: %s: site %s, signed by %s, %d chain range(s), %d record(s), every digest and link recomputed\n",
				f, b.Manifest.Site, bundle.Fingerprint(signer), len(b.Manifest.Chains), recs)
			for _, h := range b.Manifest.Heads {
				fmt.Fprintf(out, "  head %s seq %d %s\n", h.Device, h.Seq, h.Digest)
			}
			if b.Manifest.NextKey != "" {
				if k, err := bundle.ParsePublicKey(b.Manifest.NextKey); err == nil {
					trusted = append(trusted, k)
					res.NextKey = bundle.Fingerprint(k)
					fmt.Fprintf(out, "  introduces the next key %s\n", bundle.Fingerprint(k))
				}
			}
		}
		results = append(results, res)
		m := b.Manifest
		prev = &m
	}
	if asJSON {
		if err := writeJSON(a.Stdout, map[string]any{"ok": bad == 0, "bundles": results}); err != nil {
			return err
		}
	}
	if bad > 0 {
		return errFindings
	}
	return nil
}

// signerOf returns the trusted key the manifest names as its signer, or the
// first trusted key (whose check then fails) when it names none of them.
func signerOf(b *bundle.Bundle, trusted []ed25519.PublicKey) ed25519.PublicKey {
	if k, err := bundle.ParsePublicKey(b.Manifest.Signer); err == nil {
		for _, t := range trusted {
			if t.Equal(k) {
				return t
			}
		}
	}
	return trusted[0]
}

func readBundleFile(path string) (*bundle.Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return bundle.ReadBundle(path, io.Reader(f))
}

func (a *App) importCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import BUNDLE...",
		Short: "Import signed evidence bundles from sites into this (central) store",
		Long: `Imports each bundle, in the order given, into this store under site-prefixed
device names (SITE/DEVICE), if and only if its signature is from the key the
config lists for its site (sites:, or a next key a bundle signed with it
introduced), every digest and link recomputes, and each chain continues exactly
what this store already holds from that site. A bundle that fails any check is
refused with the reason and nothing of it is imported (one transaction); the
others are still imported. Exit 1 when any bundle was refused. The central
store then runs report, history, diff and verify; it never contacts a controller.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, files []string) error {
			type result struct {
				File     string `json:"file"`
				Imported bool   `json:"imported"`
				Site     string `json:"site,omitempty"`
				Records  int    `json:"records"`
				Chains   int    `json:"chains"`
				Refused  string `json:"refused,omitempty"`
			}
			var results []result
			out := a.Stdout
			if asJSON {
				out = io.Discard
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if len(cfg.Sites) == 0 {
				return usageError("import: %s lists no sites: (name and public key of each site to import from)", cfg.File)
			}
			keys := map[string][]ed25519.PublicKey{}
			for i, s := range cfg.Sites {
				k, err := bundle.ParsePublicKey(s.PublicKey)
				if err != nil {
					return usageError("%s: sites[%d].public_key: %v", cfg.File, i, err)
				}
				keys[s.Name] = append(keys[s.Name], k)
			}
			log, err := readBundleLog(importLogPath(cfg))
			if err != nil {
				return err
			}
			for _, e := range log {
				if k, err := bundle.ParsePublicKey(e.NextKey); e.NextKey != "" && err == nil {
					keys[e.Site] = append(keys[e.Site], k)
				}
			}
			st, err := store.Open(cfg.StorePath())
			if err != nil {
				return err
			}
			defer st.Close()
			jl := &alerts.JSONL{Path: cfg.AlertLogPath()}
			refused := 0
			for _, f := range files {
				recs, e, err := importOne(c, st, f, keys)
				if err != nil {
					fmt.Fprintf(out, "REFUSED %s: %v (nothing of it was imported)\n", f, err)
					results = append(results, result{File: f, Refused: err.Error()})
					refused++
					continue
				}
				if err := appendBundleLog(importLogPath(cfg), e); err != nil {
					return fmt.Errorf("import: recording %s in %s: %w", f, importLogPath(cfg), err)
				}
				// The central chains' new heads go to the alert log, as
				// every new head does, for verify.
				last := map[string]store.Record{}
				for _, r := range recs {
					last[r.Device] = r
				}
				for _, r := range last {
					if err := jl.WriteHead(store.Head{Device: r.Device, Seq: r.Seq, Digest: r.Digest}); err != nil {
						return fmt.Errorf("import: %w", err)
					}
				}
				if e.NextKey != "" {
					if k, err := bundle.ParsePublicKey(e.NextKey); err == nil {
						keys[e.Site] = append(keys[e.Site], k)
					}
				}
				fmt.Fprintf(out, "imported %s: site %s, %d record(s) in %d chain(s)\n", f, e.Site, len(recs), len(last))
				results = append(results, result{File: f, Imported: true, Site: e.Site, Records: len(recs), Chains: len(last)})
			}
			if asJSON {
				if err := writeJSON(a.Stdout, results); err != nil {
					return err
				}
			}
			if refused > 0 {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// importOne checks one bundle and imports it in one transaction; it returns
// the records appended and the import log entry.
func importOne(c *cobra.Command, st *store.DB, file string, keys map[string][]ed25519.PublicKey) ([]store.Record, bundleLogEntry, error) {
	b, err := readBundleFile(file)
	if err != nil {
		return nil, bundleLogEntry{}, err
	}
	m := b.Manifest
	trusted, ok := keys[m.Site]
	if !ok {
		return nil, bundleLogEntry{}, fmt.Errorf("site %q is not listed under sites: in the config", m.Site)
	}
	signer := signerOf(b, trusted)
	if ps := b.Verify(signer); len(ps) > 0 {
		var s []string
		for _, p := range ps {
			s = append(s, p.String())
		}
		return nil, bundleLogEntry{}, fmt.Errorf("%d problem(s): %s", len(ps), strings.Join(s, "; "))
	}
	recs, err := b.Records()
	if err != nil {
		return nil, bundleLogEntry{}, err
	}
	var expect []store.OriginHead
	for _, h := range m.Previous {
		expect = append(expect, store.OriginHead{Device: m.Site + "/" + h.Device, Origin: h.Device, Seq: h.Seq, Digest: h.Digest})
	}
	var chains []store.ImportChain
	for _, ch := range m.Chains {
		ic := store.ImportChain{Device: m.Site + "/" + ch.Device, Origin: ch.Device, Records: recs[ch.Device], Snapshots: map[string][]byte{}}
		for _, r := range ic.Records {
			if r.Type != store.TypeSnapshot {
				continue
			}
			var ref store.SnapshotRef
			if err := json.Unmarshal(r.Body, &ref); err != nil {
				return nil, bundleLogEntry{}, fmt.Errorf("%s record %d: %w", ch.Device, r.Seq, err)
			}
			ic.Snapshots[ref.Digest] = b.Snapshot(ref.Digest)
		}
		chains = append(chains, ic)
	}
	out, err := st.Import(c.Context(), expect, chains)
	if err != nil {
		return nil, bundleLogEntry{}, err
	}
	return out, bundleLogEntry{File: file, Manifest: manifestDigest(b.ManifestBytes), Site: m.Site, Created: m.Created, Signer: m.Signer, NextKey: m.NextKey, Heads: m.Heads}, nil
}
