package opcua

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/plcwatch/plcwatch/config"
)

// Config is a device's `opcua:` section.
//
//	opcua:
//	  security_policy: Basic256Sha256     # None (default) or Basic256Sha256
//	  security_mode: SignAndEncrypt       # None, Sign or SignAndEncrypt (default for Basic256Sha256)
//	  trusted_thumbprints: ["9f2c…"]      # SHA-256 of the server certificate's DER bytes, hex
//	  trust_list: [pki/plc7.der]          # certificates (PEM or DER) trusted as the server's or as its CA
//	  certificate: pki/plcwatch.der       # client certificate; generated in memory when absent
//	  private_key: pki/plcwatch.key       # its RSA key (PEM)
//	  timeout: 10s                        # per request
//	  browse:
//	    - root: "ns=2;s=Plant"            # or nsu=<namespace URI>;s=Plant, i=85
//	      max_depth: 8
//	      max_nodes: 5000
//
// Usernames and passwords come from the device's credentials, never from
// this section. Relative paths are relative to the config file.
type Config struct {
	SecurityPolicy     string          `yaml:"security_policy"`
	SecurityMode       string          `yaml:"security_mode"`
	TrustedThumbprints []string        `yaml:"trusted_thumbprints"`
	TrustList          []string        `yaml:"trust_list"`
	Certificate        string          `yaml:"certificate"`
	PrivateKey         string          `yaml:"private_key"`
	Timeout            config.Duration `yaml:"timeout"`
	Browse             []BrowseRoot    `yaml:"browse"`
}

// BrowseRoot is one subtree to record.
type BrowseRoot struct {
	// Root is the node id of the subtree's top: "ns=2;s=Plant", "i=85" or,
	// stable across server restarts, "nsu=urn:vendor:plant;s=Plant".
	Root string `yaml:"root"`
	// MaxDepth bounds how many references deep the browse goes (default 8).
	// It defines the recorded scope: nodes deeper than it are not part of
	// the snapshot.
	MaxDepth int `yaml:"max_depth"`
	// MaxNodes bounds the nodes recorded under this root (default 5000).
	// A subtree with more nodes gives a partial snapshot that says so.
	MaxNodes int `yaml:"max_nodes"`
}

// Defaults.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultMaxDepth = 8
	DefaultMaxNodes = 5000
	// DefaultRoot is the Objects folder. Nodes of namespace 0 (the
	// standard's own, such as the Server object) are never followed.
	DefaultRoot = "i=85"
)

// settings is a validated, parsed section.
type settings struct {
	policy   string // short name: None or Basic256Sha256
	mode     ua.MessageSecurityMode
	pins     [][32]byte
	trust    []string // resolved paths
	certFile string
	keyFile  string
	timeout  time.Duration
	roots    []root
}

type root struct {
	spec     string
	nsURI    string // set for nsu= roots; the index is resolved when connected
	id       *ua.NodeID
	maxDepth int
	maxNodes int
}

func (s *settings) secure() bool { return s.mode != ua.MessageSecurityModeNone }

// parse decodes and validates dev's opcua: section. Errors are config.Errors
// with file:line.
func parse(dev *config.Device) (*settings, error) {
	var c Config
	if err := config.DecodeSection(dev, &dev.OPCUA, "opcua", &c); err != nil {
		return nil, err
	}
	var errs config.Errors
	n := &dev.OPCUA
	at := func(key, format string, args ...any) {
		line := dev.Line
		if n.Kind != 0 {
			line = config.FindLine(n, key)
		}
		errs = append(errs, &config.Error{File: dev.File, Line: line, Field: "opcua." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if !strings.HasPrefix(dev.Endpoint, "opc.tcp://") {
		errs = append(errs, &config.Error{File: dev.File, Line: dev.Line, Field: "endpoint",
			Msg: fmt.Sprintf("want an OPC UA endpoint such as opc.tcp://10.0.0.7:4840, got %q", dev.Endpoint)})
	}
	s := &settings{timeout: DefaultTimeout, certFile: resolve(dev, c.Certificate), keyFile: resolve(dev, c.PrivateKey)}
	switch c.SecurityPolicy {
	case "", "None":
		s.policy = "None"
	case "Basic256Sha256":
		s.policy = "Basic256Sha256"
	default:
		at("security_policy", "want None or Basic256Sha256, got %q", c.SecurityPolicy)
	}
	switch c.SecurityMode {
	case "":
		s.mode = ua.MessageSecurityModeNone
		if s.policy == "Basic256Sha256" {
			s.mode = ua.MessageSecurityModeSignAndEncrypt
		}
	case "None", "Sign", "SignAndEncrypt":
		s.mode = ua.MessageSecurityModeFromString(c.SecurityMode)
	default:
		at("security_mode", "want None, Sign or SignAndEncrypt, got %q", c.SecurityMode)
	}
	if s.policy == "None" && s.mode != ua.MessageSecurityModeNone {
		at("security_mode", "security_policy None allows only security_mode None; use security_policy: Basic256Sha256 for %s", c.SecurityMode)
	}
	if s.policy == "Basic256Sha256" && c.SecurityMode == "None" {
		at("security_mode", "security_policy Basic256Sha256 needs security_mode Sign or SignAndEncrypt")
	}
	for i, tp := range c.TrustedThumbprints {
		p, err := parseThumbprint(tp)
		if err != nil {
			at(fmt.Sprintf("trusted_thumbprints[%d]", i), "%v", err)
			continue
		}
		s.pins = append(s.pins, p)
	}
	for i, f := range c.TrustList {
		if f == "" {
			at(fmt.Sprintf("trust_list[%d]", i), "empty path: want a certificate file (PEM or DER)")
			continue
		}
		s.trust = append(s.trust, resolve(dev, f))
	}
	if s.secure() && len(c.TrustedThumbprints) == 0 && len(c.TrustList) == 0 {
		at("security_mode", "a secure channel needs trusted_thumbprints or trust_list: plcwatch never trusts a server certificate on first use")
	}
	if (c.Certificate == "") != (c.PrivateKey == "") {
		at("certificate", "give certificate and private_key together, or neither (a certificate is then generated in memory)")
	}
	if c.Timeout < 0 || (c.Timeout != 0 && c.Timeout.D() < 100*time.Millisecond) {
		at("timeout", "want a duration of at least 100ms, got %s", c.Timeout)
	} else if c.Timeout != 0 {
		s.timeout = c.Timeout.D()
	}
	if len(c.Browse) == 0 {
		c.Browse = []BrowseRoot{{Root: DefaultRoot}}
	}
	for i, b := range c.Browse {
		key := fmt.Sprintf("browse[%d]", i)
		r := root{spec: b.Root, maxDepth: b.MaxDepth, maxNodes: b.MaxNodes}
		if r.maxDepth == 0 {
			r.maxDepth = DefaultMaxDepth
		}
		if r.maxNodes == 0 {
			r.maxNodes = DefaultMaxNodes
		}
		var err error
		r.nsURI, r.id, err = parseRoot(b.Root)
		if err != nil {
			at(key+".root", "%v", err)
		}
		if r.maxDepth < 1 || r.maxDepth > 64 {
			at(key+".max_depth", "want an integer from 1 to 64, got %d", b.MaxDepth)
		}
		if r.maxNodes < 1 || r.maxNodes > 1000000 {
			at(key+".max_nodes", "want an integer from 1 to 1000000, got %d", b.MaxNodes)
		}
		s.roots = append(s.roots, r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func resolve(dev *config.Device, p string) string {
	if p == "" || filepath.IsAbs(p) || dev.Dir == "" {
		return p
	}
	return filepath.Join(dev.Dir, p)
}

// parseRoot parses "ns=2;s=Plant", "i=85" or "nsu=<uri>;s=Plant". For nsu=
// the returned id has namespace 0 until the URI is resolved.
func parseRoot(s string) (nsURI string, nid *ua.NodeID, err error) {
	if s == "" {
		return "", nil, fmt.Errorf("missing: want a node id such as \"ns=2;s=Plant\" or \"nsu=urn:vendor:plant;s=Plant\"")
	}
	rest := s
	if strings.HasPrefix(s, "nsu=") {
		u, r, ok := strings.Cut(strings.TrimPrefix(s, "nsu="), ";")
		if !ok || u == "" {
			return "", nil, fmt.Errorf("want nsu=<namespace URI>;<id> such as \"nsu=urn:vendor:plant;s=Plant\", got %q", s)
		}
		nsURI, rest = u, r
		if strings.HasPrefix(rest, "ns=") {
			return "", nil, fmt.Errorf("give nsu= or ns=, not both, in %q", s)
		}
	}
	nid, err = ua.ParseNodeID(rest)
	if err != nil {
		return "", nil, fmt.Errorf("want a node id such as \"ns=2;s=Plant\", \"i=85\" or \"nsu=urn:vendor:plant;s=Plant\", got %q", s)
	}
	return nsURI, nid, nil
}
