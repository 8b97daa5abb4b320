package opcua

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"

	"github.com/plcwatch/plcwatch/config"
)

// session is everything the connector does on an open OPC UA session. Only
// read services are here: this interface is the connector's whole surface
// of gopcua's client, so the read-only guarantee can be checked in one
// place. (gopcua's Client also has Write, Call, AddNodes and friends; they
// are unreachable from the connector.)
type session interface {
	Browse(ctx context.Context, req *ua.BrowseRequest) (*ua.BrowseResponse, error)
	BrowseNext(ctx context.Context, req *ua.BrowseNextRequest) (*ua.BrowseNextResponse, error)
	Read(ctx context.Context, req *ua.ReadRequest) (*ua.ReadResponse, error)
	CloseSession(ctx context.Context) error
	// Close sends CloseSecureChannel and closes the connection.
	Close(ctx context.Context) error
}

// discovery is what the connector does on an unauthenticated channel.
type discovery interface {
	GetEndpoints(ctx context.Context) (*ua.GetEndpointsResponse, error)
	Close(ctx context.Context) error
}

// dialOptions are the parts of a connection the connector decides.
type dialOptions struct {
	endpoint string
	timeout  time.Duration
	meter    *meter
}

func (d dialOptions) base() []gopcua.Option {
	return []gopcua.Option{
		gopcua.AutoReconnect(false),
		gopcua.RequestTimeout(d.timeout),
		gopcua.DialTimeout(d.timeout),
		gopcua.ApplicationName("plcwatch"),
		gopcua.SessionName("plcwatch"),
		gopcua.SessionTimeout(10 * time.Minute),
		gopcua.Dialer(&uacp.Dialer{
			Dialer:    &net.Dialer{Timeout: d.timeout, ControlContext: d.meter.control},
			ClientACK: uacp.DefaultClientACK,
		}),
	}
}

// openDiscovery opens a security-None channel for GetEndpoints (the
// discovery services every server offers on None).
func openDiscovery(ctx context.Context, d dialOptions) (discovery, error) {
	c, err := gopcua.NewClient(d.endpoint, d.base()...)
	if err != nil {
		return nil, err
	}
	if err := c.Dial(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// credentials for the session.
type identity struct {
	user     string
	password string
	cert     []byte
	key      *rsa.PrivateKey
	// serverTrusted says the server certificate was checked against
	// trusted_thumbprints or trust_list: a password encrypted with the
	// user token policy on a security-None channel is encrypted for that
	// certificate, so it must not be one a man in the middle handed us.
	serverTrusted bool
}

// ErrCleartextPassword is returned when a password would cross the wire
// readable: the channel is not SignAndEncrypt and the server's UserName
// token policy does not encrypt it. Nothing is sent.
var ErrCleartextPassword = errors.New("the password would travel in the clear")

// ErrNoUserNameToken is returned when credentials name a user but the
// endpoint offers no UserName login. The username is not sent.
var ErrNoUserNameToken = errors.New("the endpoint offers no UserName login")

// userToken chooses the UserName token policy of ep that a password may be
// sent with (OPC UA Part 4, 7.41 UserTokenPolicy, and Part 4, 7.36.4: the
// password is encrypted with the token policy's SecurityPolicyUri, or the
// channel's when the token names none). It prefers a policy that encrypts
// the password; it refuses:
//   - an endpoint without a UserName token (ErrNoUserNameToken);
//   - a password that neither an encrypting token policy nor a
//     SignAndEncrypt channel protects (ErrCleartextPassword): on a Sign
//     channel the message is signed, not encrypted, so the token policy
//     must encrypt it;
//   - a password encrypted by the token policy on a security-None channel
//     for a server certificate that is not pinned or trusted, which a man in
//     the middle could have swapped (ErrCleartextPassword).
func userToken(ep *ua.EndpointDescription, hasPassword, serverTrusted bool) (*ua.UserTokenPolicy, error) {
	var offered []string
	var best *ua.UserTokenPolicy
	for _, t := range ep.UserIdentityTokens {
		if t == nil {
			continue
		}
		offered = append(offered, strings.TrimPrefix(t.TokenType.String(), "UserTokenType"))
		if t.TokenType != ua.UserTokenTypeUserName {
			continue
		}
		if best == nil || (!encrypts(best, ep) && encrypts(t, ep)) {
			best = t
		}
	}
	mode := strings.TrimPrefix(ep.SecurityMode.String(), "MessageSecurityMode")
	at := shortPolicy(ep.SecurityPolicyURI) + "/" + mode
	if best == nil {
		return nil, fmt.Errorf("endpoint %s offers %s: %w; the username was not sent: remove credentials from the device, or configure the server to offer UserName login on this endpoint",
			at, strings.Join(offered, ", "), ErrNoUserNameToken)
	}
	if !hasPassword || ep.SecurityMode == ua.MessageSecurityModeSignAndEncrypt {
		return best, nil
	}
	if !encrypts(best, ep) {
		return nil, fmt.Errorf("endpoint %s with UserName token policy %q (security policy %s): %w; nothing was sent: set opcua.security_policy: Basic256Sha256 with security_mode: SignAndEncrypt (and trusted_thumbprints), or have the server encrypt UserName tokens",
			at, best.PolicyID, shortPolicy(tokenPolicy(best, ep)), ErrCleartextPassword)
	}
	if ep.SecurityMode == ua.MessageSecurityModeNone && !serverTrusted {
		return nil, fmt.Errorf("endpoint %s would encrypt the password for a server certificate that is not pinned, which anyone in the path could have replaced (%w); nothing was sent: add the server's thumbprint (sha256 %s) to opcua.trusted_thumbprints after checking it on the server, or use security_policy: Basic256Sha256",
			at, ErrCleartextPassword, Thumbprint(ep.ServerCertificate))
	}
	return best, nil
}

// tokenPolicy is the security policy that protects a token's secret.
func tokenPolicy(t *ua.UserTokenPolicy, ep *ua.EndpointDescription) string {
	if t.SecurityPolicyURI != "" {
		return t.SecurityPolicyURI
	}
	return ep.SecurityPolicyURI
}

// encrypts reports whether t's password is encrypted by its policy.
func encrypts(t *ua.UserTokenPolicy, ep *ua.EndpointDescription) bool {
	p := tokenPolicy(t, ep)
	return p != "" && p != ua.SecurityPolicyURINone
}

// openSession opens the secure channel to ep (whose certificate the caller
// has already checked), then creates and activates a session.
func openSession(ctx context.Context, d dialOptions, ep *ua.EndpointDescription, id identity) (session, error) {
	opts := d.base()
	if ep.SecurityMode != ua.MessageSecurityModeNone {
		opts = append(opts, gopcua.Certificate(id.cert), gopcua.PrivateKey(id.key))
	}
	tok := ua.UserTokenTypeAnonymous
	if id.user != "" {
		t, err := userToken(ep, id.password != "", id.serverTrusted)
		if err != nil {
			return nil, err
		}
		// Only the chosen token policy: gopcua takes the first of a type.
		only := *ep
		only.UserIdentityTokens = []*ua.UserTokenPolicy{t}
		ep = &only
		tok = ua.UserTokenTypeUserName
		opts = append(opts, gopcua.AuthUsername(id.user, id.password))
	} else {
		opts = append(opts, gopcua.AuthAnonymous())
	}
	opts = append(opts, gopcua.SecurityFromEndpoint(ep, tok))
	c, err := gopcua.NewClient(d.endpoint, opts...)
	if err != nil {
		return nil, err
	}
	// Connect opens the secure channel, creates and activates the session
	// with the options above; AutoReconnect is off, so its monitor never
	// reconnects behind the gate's back.
	if err := c.Connect(ctx); err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("opening secure channel and session: %w", err)
	}
	if c.Session() == nil {
		c.Close(ctx)
		return nil, errors.New("activating session: the session was not activated (the server's signature may not verify against its certificate)")
	}
	return c, nil
}

// clientCertificate makes an in-memory self-signed application instance
// certificate for plcwatch, used for secure channels when the config names
// none. The server must accept it (most can be told to trust on first
// connection, or the operator copies it from the server's rejected folder).
func clientCertificate() ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generating client key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	u, _ := url.Parse("urn:plcwatch:client")
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "plcwatch", Organization: []string{"plcwatch"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating client certificate: %w", err)
	}
	return der, key, nil
}

// Warnings returns what `plcwatch config check` can tell beforehand about
// how dev's credentials will travel: a password with security_policy None
// (or security_mode Sign) is sent only if the server's UserName token policy
// encrypts it, and on None only for a pinned certificate; otherwise every
// snapshot fails without sending it. Each warning names the device, the
// config line and the fix.
func Warnings(dev *config.Device) []string {
	c := dev.Credentials
	if c.PasswordEnv == "" && c.PasswordFile == "" {
		return nil
	}
	s, err := parse(dev)
	if err != nil {
		return nil // config check reports the section's errors itself
	}
	where := fmt.Sprintf("%s:%d: warning: device %s", dev.File, dev.Line, dev.Name)
	switch {
	case s.mode == ua.MessageSecurityModeNone && len(s.pins) == 0 && len(s.trust) == 0:
		return []string{where + ": a password with security_policy None and no trusted_thumbprints will be refused at every snapshot (it would travel in the clear, or encrypted for an unverified certificate): set security_policy: Basic256Sha256, security_mode: SignAndEncrypt and trusted_thumbprints"}
	case s.mode == ua.MessageSecurityModeNone:
		return []string{where + ": with security_policy None the password is sent only if the server's UserName token policy encrypts it; otherwise the snapshot fails: prefer security_policy: Basic256Sha256 with security_mode: SignAndEncrypt"}
	case s.mode == ua.MessageSecurityModeSign:
		return []string{where + ": security_mode Sign signs but does not encrypt: the password is sent only if the server's UserName token policy encrypts it; otherwise the snapshot fails: prefer security_mode: SignAndEncrypt"}
	}
	return nil
}
