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
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"
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
