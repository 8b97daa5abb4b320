package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/alexedwards/argon2id"

	"github.com/plcwatch/plcwatch/config"
)

// role is a console role; a higher one may do what lower ones may.
type role int

const (
	roleViewer role = iota + 1
	roleOperator
	roleApprover
)

func (r role) String() string {
	switch r {
	case roleViewer:
		return config.RoleViewer
	case roleOperator:
		return config.RoleOperator
	case roleApprover:
		return config.RoleApprover
	}
	return "none"
}

func parseRole(s string) role {
	switch s {
	case config.RoleViewer:
		return roleViewer
	case config.RoleOperator:
		return roleOperator
	case config.RoleApprover:
		return roleApprover
	}
	return 0
}

// LocalUser is the console user recorded for decisions taken on a loopback
// console without configured users (nobody signs in; the person types a
// name, as with --by).
const LocalUser = "local"

// user is who makes a request.
type user struct {
	Name string
	Role role
	// Local is true on a loopback console without users: the person's
	// name comes from the form, as --by does on the CLI.
	Local bool
}

type userKey struct{}

func userOf(r *http.Request) user {
	u, _ := r.Context().Value(userKey{}).(user)
	return u
}

// authenticator checks HTTP basic credentials against the configured users
// (argon2id hashes) and makes and checks CSRF tokens.
type authenticator struct {
	users    map[string]config.ConsoleUser
	required bool
	loopback bool
	key      []byte

	mu sync.Mutex
	// ok caches verified credentials (SHA-256 of name and password) so
	// that argon2id runs once per user and password, not per request.
	ok map[[32]byte]bool
}

func newAuthenticator(users []config.ConsoleUser, key []byte, loopback bool) (*authenticator, error) {
	a := &authenticator{users: map[string]config.ConsoleUser{}, required: len(users) > 0, loopback: loopback, key: key, ok: map[[32]byte]bool{}}
	for _, u := range users {
		if _, _, _, err := argon2id.DecodeHash(u.PasswordHash); err != nil {
			return nil, fmt.Errorf("console: user %q: password_hash: %w (want the output of plcwatch console hash-password)", u.Name, err)
		}
		if parseRole(u.Role) == 0 {
			return nil, fmt.Errorf("console: user %q: role %q: want viewer, operator or approver", u.Name, u.Role)
		}
		a.users[u.Name] = u
	}
	return a, nil
}

// identify returns the request's user, or false when sign-in is required
// and the credentials are missing or wrong.
func (a *authenticator) identify(r *http.Request) (user, bool) {
	if !a.required {
		return user{Name: LocalUser, Role: roleApprover, Local: true}, true
	}
	name, pw, ok := r.BasicAuth()
	if !ok {
		return user{}, false
	}
	u, known := a.users[name]
	if !known {
		return user{}, false
	}
	sum := sha256.Sum256([]byte(name + "\x00" + pw + "\x00" + u.PasswordHash))
	a.mu.Lock()
	cached := a.ok[sum]
	a.mu.Unlock()
	if !cached {
		match, err := argon2id.ComparePasswordAndHash(pw, u.PasswordHash)
		if err != nil || !match {
			return user{}, false
		}
		a.mu.Lock()
		a.ok[sum] = true
		a.mu.Unlock()
	}
	return user{Name: name, Role: parseRole(u.Role)}, true
}

// csrfToken is the CSRF token of a user: an HMAC of the name under the
// server's random key (new on every start).
func (a *authenticator) csrfToken(u user) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("csrf\x00" + u.Name))
	return hex.EncodeToString(m.Sum(nil))
}

func (a *authenticator) validCSRF(u user, tok string) bool {
	want := a.csrfToken(u)
	return len(tok) == len(want) && subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1
}

// refusal is why a request was refused (for the log and the page).
type refusal struct {
	code int
	why  string
}

// sameOrigin checks that a state-changing request comes from the console's
// own pages: Sec-Fetch-Site, when sent, must be same-origin; an Origin
// other than "null" (which browsers send under no-referrer) must be this
// server's; and at least one of Sec-Fetch-Site, Origin or Referer must
// positively name this server. A request with none of them is refused.
func sameOrigin(r *http.Request) *refusal {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	self := scheme + "://" + r.Host
	positive := false
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" {
		if sfs != "same-origin" {
			return &refusal{http.StatusForbidden, "cross-origin request refused (Sec-Fetch-Site: " + sfs + ")"}
		}
		positive = true
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if !strings.EqualFold(o, self) {
			return &refusal{http.StatusForbidden, "cross-origin request refused (Origin " + o + ", want " + self + ")"}
		}
		positive = true
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || !strings.EqualFold(u.Scheme+"://"+u.Host, self) {
			return &refusal{http.StatusForbidden, "cross-origin request refused (Referer is not this console)"}
		}
		positive = true
	}
	if !positive {
		return &refusal{http.StatusForbidden, "request refused: no Sec-Fetch-Site, Origin or Referer shows it came from this console"}
	}
	return nil
}

// hostAllowed guards a loopback console against DNS rebinding: the Host
// header must name a loopback address or localhost.
func hostAllowed(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// securityHeaders are sent with every response.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
	"X-Content-Type-Options": "nosniff",
	"Cache-Control":          "no-store",
}

// secure wraps every request: security headers, the Host check of a
// loopback console, sign-in, and for any method but GET and HEAD the
// same-origin and CSRF checks.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		if s.auth.loopback && !hostAllowed(r.Host) {
			s.refuse(w, r, refusal{http.StatusMisdirectedRequest, "Host " + r.Host + " is not this loopback console"})
			return
		}
		u, ok := s.auth.identify(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="plcwatch console", charset="UTF-8"`)
			s.refuse(w, r, refusal{http.StatusUnauthorized, "sign in with a console user"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if ref := sameOrigin(r); ref != nil {
				s.refuse(w, r, *ref)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				s.refuse(w, r, refusal{http.StatusBadRequest, "form: " + err.Error()})
				return
			}
			if !s.auth.validCSRF(u, r.PostFormValue("csrf")) {
				s.refuse(w, r, refusal{http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again"})
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

// need lets users with at least role through.
func (s *Server) need(min role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := userOf(r)
		if u.Role < min {
			s.refuse(w, r, refusal{http.StatusForbidden, fmt.Sprintf("user %s is a %s; this needs the %s role", u.Name, u.Role, min)})
			return
		}
		h(w, r)
	}
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, ref refusal) {
	s.opt.Log.Warn().Str("method", r.Method).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Int("status", ref.code).Str("why", ref.why).Msg("console request refused")
	s.pages.errorPage(w, r, ref.code, ref.why)
}
