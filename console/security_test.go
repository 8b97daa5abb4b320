package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/plcwatch/plcwatch/store"
)

// usersYAML configures one user per role (password: the name + "-pw").
func usersYAML(t *testing.T) string {
	var b strings.Builder
	b.WriteString("console:\n  users:\n")
	for _, r := range []string{"viewer", "operator", "approver"} {
		fmt.Fprintf(&b, "    - {name: %s, role: %s, password_hash: %q}\n", r, r, hash(t, r+"-pw"))
	}
	return b.String()
}

const self = "http://127.0.0.1:8686"

// post builds a same-origin form POST as a browser sends it from the
// console's own page; mut changes it for a row.
func post(path string, form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, self+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", self)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

// TestRefusedRequests sends state changes that must be refused (and one
// that must not, per kind of check) through the console's handler and
// asserts the status and that nothing was recorded in the evidence chain.
func TestRefusedRequests(t *testing.T) {
	f := newFixture(t, usersYAML(t))
	_, changed := f.seed()
	alertID := changed.Raised[0].ID
	srv, err := New(f.consoleOpts())
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	tok := func(name string) string { return srv.auth.csrfToken(user{Name: name}) }
	ackForm := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "decision": {"investigating"}, "comment": {"called the engineer"}}
	}
	approveForm := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "snapshot": {changed.SnapshotID}, "ticket": {"CHG-2"}}
	}
	ackPath := "/alerts/" + alertID + "/ack"
	tests := []struct {
		name string
		req  func() *http.Request
		want int
		// records is how many records the request may append.
		records int
	}{
		{"no credentials", func() *http.Request { return post(ackPath, ackForm(tok("operator"))) }, http.StatusUnauthorized, 0},
		{"wrong password", func() *http.Request {
			r := post(ackPath, ackForm(tok("operator")))
			r.SetBasicAuth("operator", "guess")
			return r
		}, http.StatusUnauthorized, 0},
		{"unknown user", func() *http.Request {
			r := post(ackPath, ackForm(tok("mallory")))
			r.SetBasicAuth("mallory", "operator-pw")
			return r
		}, http.StatusUnauthorized, 0},
		{"no CSRF token", func() *http.Request {
			r := post(ackPath, ackForm(""))
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusForbidden, 0},
		{"another user's CSRF token", func() *http.Request {
			r := post(ackPath, ackForm(tok("approver")))
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusForbidden, 0},
		{"cross origin (Origin)", func() *http.Request {
			r := post(ackPath, ackForm(tok("operator")))
			r.Header.Set("Origin", "http://evil.example")
			r.Header.Del("Sec-Fetch-Site")
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusForbidden, 0},
		{"cross site (Sec-Fetch-Site)", func() *http.Request {
			r := post(ackPath, ackForm(tok("operator")))
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			r.Header.Set("Origin", "null")
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusForbidden, 0},
		{"cross origin (Referer)", func() *http.Request {
			r := post(ackPath, ackForm(tok("operator")))
			r.Header.Del("Origin")
			r.Header.Del("Sec-Fetch-Site")
			r.Header.Set("Referer", "http://evil.example/page")
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusForbidden, 0},
		{"no origin evidence at all", func() *http.Request {
			r := post(ackPath, ackForm(tok("operator")))
			r.Header.Del("Origin")
			r.Header.Del("Sec-Fetch-Site")
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusForbidden, 0},
		{"viewer acknowledges (wrong role)", func() *http.Request {
			r := post(ackPath, ackForm(tok("viewer")))
			r.SetBasicAuth("viewer", "viewer-pw")
			return r
		}, http.StatusForbidden, 0},
		{"operator approves (wrong role)", func() *http.Request {
			r := post("/approve", approveForm(tok("operator")))
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusForbidden, 0},
		{"operator starts a change (wrong role)", func() *http.Request {
			r := post("/devices/tankfarm/change", url.Values{"csrf": {tok("operator")}, "ticket": {"CHG-3"}, "until": {"4h"}})
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusForbidden, 0},
		{"viewer reads the overview", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, self+"/", nil)
			r.SetBasicAuth("viewer", "viewer-pw")
			return r
		}, http.StatusOK, 0},
		{"operator acknowledges from the console's page", func() *http.Request {
			r := post(ackPath, ackForm(tok("operator")))
			r.SetBasicAuth("operator", "operator-pw")
			return r
		}, http.StatusSeeOther, 1},
		{"approver acknowledges under no-referrer (Origin null, Sec-Fetch-Site same-origin)", func() *http.Request {
			r := post(ackPath, ackForm(tok("approver")))
			r.Header.Set("Origin", "null")
			r.SetBasicAuth("approver", "approver-pw")
			return r
		}, http.StatusSeeOther, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.record())
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tc.req())
			if w.Code != tc.want {
				t.Errorf("status %d, want %d; body:\n%s", w.Code, tc.want, w.Body.String())
			}
			if got := len(f.record()) - before; got != tc.records {
				t.Errorf("%d record(s) appended, want %d", got, tc.records)
			}
			for k, v := range securityHeaders {
				if got := w.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
	acks := f.records(store.TypeAck)
	if len(acks) != 2 || !strings.Contains(string(acks[0].Body), `"console_user":"operator"`) || !strings.Contains(string(acks[0].Body), `"by":"operator"`) {
		t.Errorf("ack records %v: want two, the first by console user operator", acks)
	}
	f.noWrites()
}

// TestLoopbackRefusals covers the loopback console without users: a foreign
// Host header (DNS rebinding) is refused, and a decision needs a name.
func TestLoopbackRefusals(t *testing.T) {
	f := newFixture(t, "")
	_, changed := f.seed()
	srv, err := New(f.consoleOpts())
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	local := user{Name: LocalUser}
	tests := []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"foreign Host (DNS rebinding)", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://attacker.example:8686/", nil)
			return r
		}, http.StatusMisdirectedRequest},
		{"ack without a name", func() *http.Request {
			return post("/alerts/"+changed.Raised[0].ID+"/ack", url.Values{"csrf": {srv.auth.csrfToken(local)}, "decision": {"investigating"}, "comment": {"x"}})
		}, http.StatusBadRequest},
		{"ack without CSRF token", func() *http.Request {
			return post("/alerts/"+changed.Raised[0].ID+"/ack", url.Values{"by": {"Eve"}, "decision": {"investigating"}, "comment": {"x"}})
		}, http.StatusForbidden},
		{"localhost is this console", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "http://localhost:8686/alerts", nil)
		}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.record())
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tc.req())
			if w.Code != tc.want {
				t.Errorf("status %d, want %d; body:\n%s", w.Code, tc.want, w.Body.String())
			}
			if n := len(f.record()) - before; n != 0 {
				t.Errorf("%d record(s) appended, want none", n)
			}
		})
	}
}

// TestNewRefusesOpenListen: any address but loopback needs users and TLS
// (or insecure_http), even when the config was built without validation.
func TestNewRefusesOpenListen(t *testing.T) {
	f := newFixture(t, "")
	tests := []struct {
		name, listen string
		users        bool
		insecure     bool
		want         string // "" accepted
	}{
		{"non-loopback without users", "0.0.0.0:0", false, true, "console.users"},
		{"non-loopback without TLS", "0.0.0.0:0", true, false, "tls_cert"},
		{"non-loopback with users and insecure_http", "0.0.0.0:0", true, true, ""},
		{"loopback without users", "127.0.0.1:0", false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := *f.cfg
			cfg.Console.Users = nil
			if tc.users {
				cfg.Console.Users = f.usersFor(t)
			}
			cfg.Console.InsecureHTTP = tc.insecure
			opt := f.consoleOpts()
			opt.Cfg, opt.Listen = &cfg, tc.listen
			_, err := New(opt)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
