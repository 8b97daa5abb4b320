// Package bundle writes and checks signed evidence bundles: the records of
// a range of each hash chain of a site's store (snapshots with their
// content, approvals, alerts, acks, resolutions), with a manifest that lists
// every file's SHA-256, the chain ranges, the heads the previous bundle
// ended with and the heads this one ends with, signed with the site's
// ed25519 key in OpenSSH's SSHSIG format (namespace "plcwatch-bundle").
//
// A bundle is a tar archive:
//
//	manifest.json        the Manifest
//	manifest.sig         SSHSIG signature of manifest.json
//	chains/NNNN.jsonl    one chain range: store.Record JSON, one per line
//	snapshots/DIGEST.json the canonical encoding of each snapshot a
//	                     snapshot record of the bundle names
//
// An auditor verifies the signature with the standard tool alone:
//
//	echo "site namespaces=\"plcwatch-bundle\" $(cat site.key.pub)" > allowed_signers
//	tar -xf bundle.tar manifest.json manifest.sig
//	ssh-keygen -Y verify -f allowed_signers -I site -n plcwatch-bundle -s manifest.sig < manifest.json
//
// and `sha256sum` the files against the manifest; `plcwatch verify --bundle`
// does all of it and recomputes every record digest and chain link.
package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// Format names this bundle format in every manifest.
const Format = "plcwatch-bundle/1"

// File names inside a bundle.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
)

// Limits on what ReadBundle accepts from untrusted input.
const (
	maxFiles     = 1 << 20
	maxFileBytes = 512 << 20
	maxTotal     = 4 << 30
)

// Chain is one chain range in a bundle: records FromSeq to ToSeq of a
// device's chain. Prev is the digest of the record before FromSeq
// (store.GenesisPrev when FromSeq is 1); Head the digest of ToSeq.
type Chain struct {
	Device  string `json:"device"`
	File    string `json:"file"`
	FromSeq int64  `json:"from_seq"`
	ToSeq   int64  `json:"to_seq"`
	Prev    string `json:"prev"`
	Head    string `json:"head"`
}

// File is one file of a bundle with its SHA-256 (hex) and size in bytes.
type File struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Manifest describes a bundle; its bytes are what the signature covers.
type Manifest struct {
	Format  string    `json:"format"`
	Site    string    `json:"site"`
	Created time.Time `json:"created"`
	// Signer is the public key that signed the bundle (OpenSSH format).
	// It is informative: verification uses the key the verifier trusts.
	Signer string `json:"signer"`
	// NextKey, when set, introduces the site's next signing key (key
	// rotation): bundles after this one may be signed with it.
	NextKey string `json:"next_key,omitempty"`
	// Previous are the heads the previous bundle ended with (empty for the
	// site's first bundle).
	Previous []store.Head `json:"previous"`
	// Heads are the heads this bundle ends with: each chain's Head, and
	// the previous head of chains without new records.
	Heads  []store.Head `json:"heads"`
	Chains []Chain      `json:"chains"`
	Files  []File       `json:"files"`
}

// siteRE with a length check of 63 bytes: a counted repetition compiles
// to a one-pass program of that many states at every process start.
var siteRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) })

// ValidSite returns an error unless name can name a site: 1 to 63 letters,
// digits, '.', '_' or '-', starting with a letter or digit.
func ValidSite(name string) error {
	if len(name) > 63 || !siteRE().MatchString(name) {
		return fmt.Errorf("site name %q: want 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ExportOptions selects what Export writes.
type ExportOptions struct {
	Site string
	// Since starts the range of a chain the previous bundle did not hold:
	// its first record at or after Since (zero: the whole chain).
	Since time.Time
	// Devices limits the bundle to these devices (empty: all).
	Devices []string
	// Previous are the heads the previous bundle ended with; each chain
	// continues from there.
	Previous []store.Head
	Key      PrivateKey
	// NextKey introduces the next signing key (rotation), signed with Key.
	NextKey ed25519.PublicKey
	Now     time.Time
}

// Export writes a signed bundle of st's chains to w and returns its
// manifest. A chain that no longer holds the head the previous bundle ended
// with is an error: the store was rewritten since.
func Export(ctx context.Context, st store.Store, w io.Writer, opt ExportOptions) (*Manifest, error) {
	if err := ValidSite(opt.Site); err != nil {
		return nil, fmt.Errorf("exporting: %w", err)
	}
	if opt.Key.k == nil {
		return nil, errors.New("exporting: no signing key")
	}
	devs := opt.Devices
	if len(devs) == 0 {
		var err error
		if devs, err = st.Devices(ctx); err != nil {
			return nil, fmt.Errorf("exporting: %w", err)
		}
	}
	prev := map[string]store.Head{}
	for _, h := range opt.Previous {
		prev[h.Device] = h
	}
	m := &Manifest{Format: Format, Site: opt.Site, Created: opt.Now.UTC().Round(0), Signer: FormatPublicKey(opt.Key.Public(), opt.Site),
		Previous: nonNil(opt.Previous), Heads: []store.Head{}, Chains: []Chain{}, Files: []File{}}
	if opt.NextKey != nil {
		m.NextKey = FormatPublicKey(opt.NextKey, opt.Site)
	}
	files := map[string][]byte{}
	var names []string
	add := func(name string, data []byte) {
		files[name] = data
		names = append(names, name)
		h := sha256.Sum256(data)
		m.Files = append(m.Files, File{Name: name, SHA256: hex.EncodeToString(h[:]), Size: int64(len(data))})
	}
	exported := map[string]bool{}
	var snapNames []string
	snapData := map[string][]byte{}
	for i, dev := range devs {
		recs, err := st.Records(ctx, dev)
		if err != nil {
			return nil, fmt.Errorf("exporting %s: %w", dev, err)
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("exporting: device %q has no records", dev)
		}
		from := int64(1)
		p, hasPrev := prev[dev]
		switch {
		case hasPrev:
			if p.Seq < 1 || p.Seq > int64(len(recs)) || recs[p.Seq-1].Digest != p.Digest {
				return nil, fmt.Errorf("exporting %s: the previous bundle ended at record %d with digest %s, which this chain no longer holds (see plcwatch verify)", dev, p.Seq, p.Digest)
			}
			from = p.Seq + 1
		case !opt.Since.IsZero():
			from = int64(len(recs)) + 1
			for _, r := range recs {
				if !r.Time.Before(opt.Since) {
					from = r.Seq
					break
				}
			}
		}
		last := recs[len(recs)-1]
		if from > last.Seq {
			if hasPrev {
				m.Heads = append(m.Heads, p)
			}
			continue
		}
		c := Chain{Device: dev, File: fmt.Sprintf("chains/%04d.jsonl", i+1), FromSeq: from, ToSeq: last.Seq, Prev: store.GenesisPrev, Head: last.Digest}
		if from > 1 {
			c.Prev = recs[from-2].Digest
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for _, r := range recs[from-1:] {
			if err := enc.Encode(r); err != nil {
				return nil, fmt.Errorf("exporting %s record %d: %w", dev, r.Seq, err)
			}
			if r.Type != store.TypeSnapshot {
				continue
			}
			var ref store.SnapshotRef
			if err := json.Unmarshal(r.Body, &ref); err != nil {
				return nil, fmt.Errorf("exporting %s record %d: %w", dev, r.Seq, err)
			}
			name := "snapshots/" + ref.Digest + ".json"
			if _, ok := snapData[name]; ok {
				continue
			}
			s, err := st.Snapshot(ctx, ref.Digest)
			if err != nil {
				return nil, fmt.Errorf("exporting %s record %d: %w", dev, r.Seq, err)
			}
			b, err := s.Encode()
			if err != nil {
				return nil, fmt.Errorf("exporting snapshot %s: %w", ref.ID, err)
			}
			snapData[name] = b
			snapNames = append(snapNames, name)
		}
		add(c.File, buf.Bytes())
		m.Chains = append(m.Chains, c)
		m.Heads = append(m.Heads, store.Head{Device: dev, Seq: last.Seq, Digest: last.Digest})
		exported[dev] = true
	}
	// Heads of chains the previous bundle held and this one was not asked
	// about carry over, so the next bundle continues from them.
	for _, h := range opt.Previous {
		if !exported[h.Device] && !contains(devs, h.Device) {
			m.Heads = append(m.Heads, h)
		}
	}
	sort.Slice(m.Heads, func(i, j int) bool { return m.Heads[i].Device < m.Heads[j].Device })
	sort.Strings(snapNames)
	for _, n := range snapNames {
		add(n, snapData[n])
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("exporting: encoding the manifest: %w", err)
	}
	mb = append(mb, '\n')
	sig := Sign(opt.Key.k, Namespace, mb)
	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put(ManifestName, mb); err != nil {
		return nil, fmt.Errorf("writing the bundle: %w", err)
	}
	if err := put(SignatureName, sig); err != nil {
		return nil, fmt.Errorf("writing the bundle: %w", err)
	}
	for _, n := range names {
		if err := put(n, files[n]); err != nil {
			return nil, fmt.Errorf("writing the bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the bundle: %w", err)
	}
	return m, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// Bundle is a bundle read into memory. Nothing in it is trusted until
// Verify returns no problem.
type Bundle struct {
	// Name says where the bundle came from, for messages.
	Name          string
	Manifest      Manifest
	ManifestBytes []byte
	Signature     []byte
	Files         map[string][]byte
	order         []string
}

// ReadBundle reads a bundle archive. It refuses what is not a bundle: a
// member that is not a regular file, a name with "..", an absolute path or
// a duplicate, sizes over the limits, a missing or unparseable manifest.
func ReadBundle(name string, r io.Reader) (*Bundle, error) {
	b := &Bundle{Name: name, Files: map[string][]byte{}}
	tr := tar.NewReader(r)
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bundle %s: not a readable tar archive: %w", name, err)
		}
		n := hdr.Name
		switch {
		case hdr.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("bundle %s: member %q is not a regular file", name, n)
		case n == "" || path.IsAbs(n) || path.Clean(n) != n || strings.HasPrefix(n, "../") || n == "..":
			return nil, fmt.Errorf("bundle %s: member name %q, want a clean relative path", name, n)
		case hdr.Size < 0 || hdr.Size > maxFileBytes:
			return nil, fmt.Errorf("bundle %s: member %q is %d bytes, over the limit of %d", name, n, hdr.Size, maxFileBytes)
		case len(b.Files) >= maxFiles:
			return nil, fmt.Errorf("bundle %s: more than %d members", name, maxFiles)
		}
		if _, dup := b.Files[n]; dup || n == ManifestName && b.ManifestBytes != nil || n == SignatureName && b.Signature != nil {
			return nil, fmt.Errorf("bundle %s: member %q appears twice", name, n)
		}
		total += hdr.Size
		if total > maxTotal {
			return nil, fmt.Errorf("bundle %s: over %d bytes in all", name, int64(maxTotal))
		}
		data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil || int64(len(data)) != hdr.Size {
			return nil, fmt.Errorf("bundle %s: member %q is truncated", name, n)
		}
		switch n {
		case ManifestName:
			b.ManifestBytes = data
		case SignatureName:
			b.Signature = data
		default:
			b.Files[n] = data
			b.order = append(b.order, n)
		}
	}
	if b.ManifestBytes == nil {
		return nil, fmt.Errorf("bundle %s: no %s: not a plcwatch bundle", name, ManifestName)
	}
	if b.Signature == nil {
		return nil, fmt.Errorf("bundle %s: no %s: the bundle is not signed", name, SignatureName)
	}
	dec := json.NewDecoder(bytes.NewReader(b.ManifestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b.Manifest); err != nil {
		return nil, fmt.Errorf("bundle %s: %s: %w", name, ManifestName, err)
	}
	if b.Manifest.Format != Format {
		return nil, fmt.Errorf("bundle %s: format %q, want %q", name, b.Manifest.Format, Format)
	}
	return b, nil
}

// Problem is one thing wrong with a bundle.
type Problem struct {
	File   string `json:"file,omitempty"`
	Device string `json:"device,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
	Detail string `json:"detail"`
}

// String says where the problem is (file, device, seq) and what it is.
func (p Problem) String() string {
	var where []string
	if p.File != "" {
		where = append(where, p.File)
	}
	if p.Device != "" {
		where = append(where, p.Device)
	}
	if p.Seq != 0 {
		where = append(where, fmt.Sprintf("seq %d", p.Seq))
	}
	if len(where) == 0 {
		return p.Detail
	}
	return strings.Join(where, " ") + ": " + p.Detail
}

// Verify checks the bundle against the signer's public key: the signature
// over the manifest, every file's SHA-256 and size against the manifest (no
// file missing, none extra), and in every chain range each record's digest,
// its link to the one before (the first to the range's Prev), its device
// and sequence, the range's Head, and every snapshot's content against its
// digest. It returns every problem found; none means the bundle is intact
// and was signed by pub.
func (b *Bundle) Verify(pub ed25519.PublicKey) []Problem {
	var ps []Problem
	if err := Verify(pub, Namespace, b.ManifestBytes, b.Signature); err != nil {
		ps = append(ps, Problem{File: SignatureName, Detail: err.Error()})
	}
	m := &b.Manifest
	if err := ValidSite(m.Site); err != nil {
		ps = append(ps, Problem{File: ManifestName, Detail: err.Error()})
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Name] = true
		data, ok := b.Files[f.Name]
		if !ok {
			ps = append(ps, Problem{File: f.Name, Detail: "listed in the manifest but not in the bundle"})
			continue
		}
		h := sha256.Sum256(data)
		if got := hex.EncodeToString(h[:]); got != f.SHA256 || int64(len(data)) != f.Size {
			ps = append(ps, Problem{File: f.Name, Detail: fmt.Sprintf("SHA-256 %s (%d bytes), the manifest says %s (%d bytes): the file was altered", got, len(data), f.SHA256, f.Size)})
		}
	}
	for _, n := range b.order {
		if !listed[n] {
			ps = append(ps, Problem{File: n, Detail: "in the bundle but not listed in the manifest"})
		}
	}
	snaps := map[string]bool{}
	for _, c := range m.Chains {
		recs, err := b.records(c)
		if err != nil {
			ps = append(ps, Problem{File: c.File, Device: c.Device, Detail: err.Error()})
			continue
		}
		ps = append(ps, checkChain(c, recs, func(digest string) []byte { return b.Files["snapshots/"+digest+".json"] }, snaps)...)
	}
	for _, n := range b.order {
		if d, ok := strings.CutPrefix(n, "snapshots/"); ok && !snaps[strings.TrimSuffix(d, ".json")] {
			ps = append(ps, Problem{File: n, Detail: "no snapshot record of the bundle names this snapshot"})
		}
	}
	prev := map[string]store.Head{}
	for _, h := range m.Previous {
		prev[h.Device] = h
	}
	for _, c := range m.Chains {
		if p, ok := prev[c.Device]; ok && (p.Seq+1 != c.FromSeq || p.Digest != c.Prev) {
			ps = append(ps, Problem{Device: c.Device, Detail: fmt.Sprintf("the range starts at record %d after %s, but the previous bundle ended at record %d with %s", c.FromSeq, c.Prev, p.Seq, p.Digest)})
		}
	}
	return ps
}

// records parses a chain range's file.
func (b *Bundle) records(c Chain) ([]store.Record, error) {
	data, ok := b.Files[c.File]
	if !ok {
		return nil, errors.New("the chain's file is missing")
	}
	var out []store.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxFileBytes)
	line := 0
	for sc.Scan() {
		line++
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var r store.Record
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("line %d: not a record: %w", line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the chain: %w", err)
	}
	return out, nil
}

// checkChain checks one chain range's records; snapshot names the
// snapshot contents by digest (nil when absent). Digests of snapshots
// checked are added to seen.
func checkChain(c Chain, recs []store.Record, snapshot func(digest string) []byte, seen map[string]bool) []Problem {
	var ps []Problem
	add := func(seq int64, format string, args ...any) {
		ps = append(ps, Problem{File: c.File, Device: c.Device, Seq: seq, Detail: fmt.Sprintf(format, args...)})
	}
	if err := store.ValidDevice(c.Device); err != nil {
		add(0, "%v", err)
		return ps
	}
	if c.FromSeq < 1 || c.ToSeq < c.FromSeq || int64(len(recs)) != c.ToSeq-c.FromSeq+1 {
		add(0, "the range %d to %d holds %d records: records are missing or extra", c.FromSeq, c.ToSeq, len(recs))
	}
	if c.FromSeq == 1 && c.Prev != store.GenesisPrev {
		add(1, "the range starts the chain but its prev is %s", c.Prev)
	}
	prev := c.Prev
	for i, r := range recs {
		want := c.FromSeq + int64(i)
		switch {
		case r.Device != c.Device:
			add(r.Seq, "record of device %q in the chain of %q", r.Device, c.Device)
		case r.Seq != want:
			add(r.Seq, "sequence number %d, want %d: a record is missing or out of order", r.Seq, want)
		case !store.ValidType(r.Type):
			add(r.Seq, "record type %q", r.Type)
		case r.ComputeDigest() != r.Digest:
			add(r.Seq, "the %s record's content hashes to %s, its digest says %s: it was altered", r.Type, r.ComputeDigest(), r.Digest)
		case r.Prev != prev:
			add(r.Seq, "prev is %s, the digest of the record before is %s", r.Prev, prev)
		}
		prev = r.Digest
		if r.Type == store.TypeSnapshot {
			var ref store.SnapshotRef
			if err := json.Unmarshal(r.Body, &ref); err != nil || len(ref.Digest) != 64 {
				add(r.Seq, "snapshot record body: %v", err)
				continue
			}
			seen[ref.Digest] = true
			data := snapshot(ref.Digest)
			if data == nil {
				add(r.Seq, "the content of snapshot %s is not in the bundle", ref.ID)
				continue
			}
			s, err := snapshots.Decode(data, ref.Digest)
			if err != nil {
				add(r.Seq, "snapshot %s: %v", ref.ID, err)
				continue
			}
			if s.Device != c.Device {
				add(r.Seq, "snapshot %s is of device %q", ref.ID, s.Device)
			}
		}
	}
	if len(recs) > 0 && recs[len(recs)-1].Digest != c.Head {
		add(c.ToSeq, "the range ends with %s, the manifest says %s", recs[len(recs)-1].Digest, c.Head)
	}
	return ps
}

// Records returns a verified bundle's chain ranges with their records.
func (b *Bundle) Records() (map[string][]store.Record, error) {
	out := map[string][]store.Record{}
	for _, c := range b.Manifest.Chains {
		recs, err := b.records(c)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %s: %w", b.Name, c.File, err)
		}
		out[c.Device] = recs
	}
	return out, nil
}

// Snapshot returns the content of a snapshot in the bundle (its canonical
// encoding), or nil.
func (b *Bundle) Snapshot(digest string) []byte { return b.Files["snapshots/"+digest+".json"] }

// FollowsProblems checks that next continues prev: same site, and next
// names as its previous heads exactly the heads prev ended with. A bundle
// missing between them, or one altered, breaks this.
func FollowsProblems(prev, next *Manifest) []Problem {
	var ps []Problem
	if prev.Site != next.Site {
		ps = append(ps, Problem{File: ManifestName, Detail: fmt.Sprintf("site %q follows a bundle of site %q", next.Site, prev.Site)})
	}
	want := map[string]store.Head{}
	for _, h := range prev.Heads {
		want[h.Device] = h
	}
	got := map[string]store.Head{}
	for _, h := range next.Previous {
		got[h.Device] = h
	}
	for d, h := range want {
		g, ok := got[d]
		switch {
		case !ok:
			ps = append(ps, Problem{Device: d, Detail: fmt.Sprintf("the earlier bundle ended at record %d; this bundle does not name it as its start", h.Seq)})
		case g != h:
			ps = append(ps, Problem{Device: d, Detail: fmt.Sprintf("this bundle continues from record %d (%s), the earlier bundle ended at record %d (%s): a bundle is missing between them or one was altered", g.Seq, g.Digest, h.Seq, h.Digest)})
		}
	}
	for d, g := range got {
		if _, ok := want[d]; !ok {
			ps = append(ps, Problem{Device: d, Detail: fmt.Sprintf("this bundle continues from record %d, which the earlier bundle did not hold", g.Seq)})
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Device < ps[j].Device })
	return ps
}
