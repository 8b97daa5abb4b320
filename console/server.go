// Package console is plcwatch's local web console: server-rendered pages
// (html/template, every asset embedded) over the evidence store, for the
// operator at the site's security workstation.
//
// It never talks to a controller. It reads the store, and records decisions
// the way the CLI does: acknowledgements (alerts.Ack, as plcwatch ack),
// approvals (monitor.Service.Approve, as plcwatch approve, with the same
// refusals) and planned changes opened on the newest complete snapshot
// (monitor.Service.OpenChangeRecorded). Every decision records the console
// user in the evidence chain.
//
// Security: loopback by default; any other address needs users with roles
// (viewer, operator, approver) whose passwords are argon2id hashes, and TLS
// or an explicit insecure_http (config.Console). Every state change needs a
// CSRF token and a same-origin request (Sec-Fetch-Site, Origin or Referer);
// every response carries a CSP without inline script, X-Frame-Options DENY,
// Referrer-Policy no-referrer and nosniff.
package console

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a console server.
type Options struct {
	// Cfg is the loaded config: devices, windows and the console section.
	Cfg *config.Config
	// Store is the evidence store the pages read.
	Store store.Store
	// Svc records approvals and planned changes (it never reads a device
	// here: the console calls only Approve, OpenChange and
	// OpenChangeRecorded).
	Svc *monitor.Service
	// Heads is told of the chain head after an acknowledgement (as
	// plcwatch ack does); nil: none.
	Heads monitor.HeadWriter
	Log   zerolog.Logger
	// Listen overrides Cfg.Console.Listen when not empty.
	Listen string
	// OSUser is the operating-system account the console runs as,
	// recorded with each decision as the CLI records its own.
	OSUser string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Poll is how often the live-update loop looks for new alerts in the
	// store (the daemon or the CLI may raise them); default 2s.
	Poll time.Duration
}

// Server serves the console.
type Server struct {
	opt    Options
	auth   *authenticator
	pages  *pages
	live   *hub
	mux    *http.ServeMux
	listen string
}

// New checks the options (the listen address against the console's
// security rules, the users' hashes) and returns a server; nothing listens
// yet.
func New(opt Options) (*Server, error) {
	if opt.Cfg == nil || opt.Store == nil || opt.Svc == nil {
		return nil, errors.New("console: config, store and service are required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Poll <= 0 {
		opt.Poll = 2 * time.Second
	}
	listen := opt.Listen
	if listen == "" {
		listen = opt.Cfg.Console.Listen
	}
	if listen == "" {
		listen = config.DefaultConsoleListen
	}
	cs := opt.Cfg.Console
	if !config.ConsoleListenLoopback(listen) {
		if len(cs.Users) == 0 {
			return nil, fmt.Errorf("console: listen %s: not a loopback address, so console.users (with roles and password hashes) are required in %s", listen, opt.Cfg.File)
		}
		if cs.TLSCert == "" && !cs.InsecureHTTP {
			return nil, fmt.Errorf("console: listen %s: not a loopback address, so console.tls_cert and tls_key are required (or insecure_http: true) in %s", listen, opt.Cfg.File)
		}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("console: CSRF key: %w", err)
	}
	auth, err := newAuthenticator(cs.Users, key, config.ConsoleListenLoopback(listen))
	if err != nil {
		return nil, err
	}
	s := &Server{opt: opt, auth: auth, listen: listen}
	s.pages, err = newPages(s)
	if err != nil {
		return nil, err
	}
	s.live = newHub()
	s.routes()
	return s, nil
}

// Handler returns the console's HTTP handler (security headers, sign-in,
// CSRF and origin checks included).
func (s *Server) Handler() http.Handler { return s.secure(s.mux) }

func (s *Server) routes() {
	m := http.NewServeMux()
	sub, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	m.HandleFunc("GET /{$}", s.need(roleViewer, s.overview))
	m.HandleFunc("GET /alerts", s.need(roleViewer, s.alertList))
	m.HandleFunc("GET /alerts/{id}", s.need(roleViewer, s.alertDetail))
	m.HandleFunc("POST /alerts/{id}/ack", s.need(roleOperator, s.ack))
	m.HandleFunc("GET /devices/{name}", s.need(roleViewer, s.history))
	m.HandleFunc("GET /devices/{name}/change", s.need(roleViewer, s.changePage))
	m.HandleFunc("POST /devices/{name}/change", s.need(roleApprover, s.changeStart))
	m.HandleFunc("GET /diff", s.need(roleViewer, s.diff))
	m.HandleFunc("POST /approve", s.need(roleApprover, s.approve))
	m.HandleFunc("GET /events", s.need(roleViewer, s.events))
	s.mux = m
}

// Serve listens and serves until ctx ends, then shuts down (open event
// streams are closed). ready, when not nil, receives the listening address
// (with the port chosen for ":0") once the socket is open.
func (s *Server) Serve(ctx context.Context, ready chan<- string) error {
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	cs := s.opt.Cfg.Console
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	scheme := "http"
	if cs.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.opt.Cfg.Resolve(cs.TLSCert), s.opt.Cfg.Resolve(cs.TLSKey))
		if err != nil {
			ln.Close()
			return fmt.Errorf("console: tls_cert/tls_key: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	// What is in the store now is not news: only later alerts go live.
	w := &watcher{seen: map[string]bool{}}
	if _, err := s.scan(ctx, w); err != nil {
		ln.Close()
		return fmt.Errorf("console: %w", err)
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go s.poll(pollCtx, w)
	s.opt.Log.Info().Str("url", scheme+"://"+ln.Addr().String()+"/").Bool("sign_in", s.auth.required).Msg("console listening")
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	s.live.closeAll()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("console: shutting down: %w", err)
	}
	return nil
}
