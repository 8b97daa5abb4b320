package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/monitor"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/store"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, self+path, nil))
	return w.Code, w.Body.String()
}

func send(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestApproveRefusals: the console refuses what plcwatch approve refuses
// (an @reference, a partial snapshot, a baseline that moved since the
// snapshot was checked) and records nothing; a good approval records the
// console user.
func TestApproveRefusals(t *testing.T) {
	f := newFixture(t, "")
	base, changed := f.seed()
	// A second, later check of the same change; then the baseline moves
	// (approving the first) so the later one was checked against an old
	// baseline.
	later := f.check()
	f.sim.SetFault(s7sim.Fault{Action: s7sim.FaultDrop, Kind: "BlockInfo", Skip: 5})
	partial := f.check()
	f.sim.ClearFault()
	if partial.Snapshot == nil || partial.Snapshot.Status.Complete {
		t.Fatalf("the cut-off read is not partial: %+v", partial.Verdict)
	}
	srv, err := New(f.consoleOpts())
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	tok := srv.auth.csrfToken(user{Name: LocalUser})
	approve := func(snap string) *httptest.ResponseRecorder {
		return send(h, post("/approve", url.Values{"csrf": {tok}, "snapshot": {snap}, "ticket": {"CHG-7"}, "by": {"Shift Lead"}, "comment": {"reviewed"}}))
	}
	tests := []struct {
		name string
		snap string
		want int
		text string
	}{
		{"@latest", "tankfarm@latest", http.StatusConflict, "immutable snapshot id"},
		{"partial", partial.SnapshotID, http.StatusConflict, "partial snapshot cannot become a baseline"},
		{"already the baseline", base.SnapshotID, http.StatusConflict, "already the baseline"},
		{"unknown id", "abcdefabcdef", http.StatusNotFound, "not found"},
		{"the reviewed change", changed.SnapshotID, http.StatusSeeOther, ""},
		{"checked against the old baseline", later.SnapshotID, http.StatusConflict, "baseline moved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.record())
			w := approve(tc.snap)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.text) {
				t.Fatalf("status %d, want %d with %q; body:\n%s", w.Code, tc.want, tc.text, w.Body.String())
			}
			if tc.want != http.StatusSeeOther && len(f.record()) != before {
				t.Errorf("a refused approval appended records")
			}
		})
	}
	ap, err := f.st.Baseline(f.ctx, "tankfarm")
	if err != nil || ap.Snapshot != changed.SnapshotID || ap.By != "Shift Lead" || ap.ConsoleUser != LocalUser || ap.OSUser != f.osUser() || ap.Ticket != "CHG-7" {
		t.Errorf("baseline approval %+v (%v): want %s by Shift Lead, console user local, OS user %s", ap, err, changed.SnapshotID, f.osUser())
	}
	f.noWrites()
}

// TestAckAsCLI: an acknowledgement from the console is the record plcwatch
// ack appends (alerts.Ack), with the console user, and its chain head goes
// to the alert log; the alert is no longer open.
func TestAckAsCLI(t *testing.T) {
	f := newFixture(t, "")
	_, changed := f.seed()
	srv, err := New(f.consoleOpts())
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	id := changed.Raised[0].ID
	w := send(h, post("/alerts/"+id[:6]+"/ack", url.Values{"csrf": {srv.auth.csrfToken(user{Name: LocalUser})}, "by": {"Shift Lead"},
		"decision": {"authorized"}, "comment": {"engineer confirmed"}}))
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/alerts/"+id) {
		t.Fatalf("ack: status %d location %q body %s", w.Code, w.Header().Get("Location"), w.Body.String())
	}
	acks := f.records(store.TypeAck)
	if len(acks) != 1 {
		t.Fatalf("%d ack records, want 1", len(acks))
	}
	var k store.Ack
	if err := json.Unmarshal(acks[0].Body, &k); err != nil {
		t.Fatal(err)
	}
	want := store.Ack{Alert: id, By: "Shift Lead", OSUser: f.osUser(), Decision: "authorized", Comment: "engineer confirmed", ConsoleUser: LocalUser, At: f.clk.Now().UTC()}
	if k != want {
		t.Errorf("ack record %+v, want %+v", k, want)
	}
	if hs := f.headLog.list(); len(hs) != 1 || hs[0].Seq != acks[0].Seq || hs[0].Digest != acks[0].Digest {
		t.Errorf("heads written %+v, want the ack record's", hs)
	}
	for _, a := range f.openAlerts() {
		if a.ID == id {
			t.Errorf("alert %s still open after the ack", id)
		}
	}
	code, body := get(t, h, "/alerts/"+id)
	if code != http.StatusOK || !strings.Contains(body, "acknowledged (authorized)") || !strings.Contains(body, "engineer confirmed") {
		t.Errorf("alert page after ack: %d\n%s", code, body)
	}
	// A bad decision is refused as plcwatch ack refuses it.
	w = send(h, post("/alerts/"+id+"/ack", url.Values{"csrf": {srv.auth.csrfToken(user{Name: LocalUser})}, "by": {"x"}, "decision": {"ignore"}, "comment": {"x"}}))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "want one of") {
		t.Errorf("bad decision: %d %s", w.Code, w.Body.String())
	}
}

// TestPages renders every page over the seeded store and checks what each
// must show.
func TestPages(t *testing.T) {
	f := newFixture(t, "")
	base, changed := f.seed()
	srv, err := New(f.consoleOpts())
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	alertID := ""
	for _, a := range changed.Raised {
		if a.Category == alerts.CatSetpoint {
			alertID = a.ID
		}
	}
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"overview", "/", []string{"tankfarm", "unapproved changes", "high", "nightly", changed.SnapshotID[:8]}},
		{"alerts filtered by severity", "/alerts?severity=high&open=1", []string{alertID, "setpoints changed"}},
		{"alerts of another severity", "/alerts?severity=low", []string{"no alerts"}},
		{"alert detail", "/alerts/" + alertID, []string{alertID, "T0836", "80", "95", `name="csrf"`, "ack-form"}},
		{"history", "/devices/tankfarm", []string{"baseline -&gt; " + base.SnapshotID, "ticket CHG-1000", "alert " + alertID, "check of " + changed.SnapshotID}},
		{"diff, logic and setpoints first", "/diff?a=" + base.SnapshotID + "&b=" + changed.SnapshotID, []string{`id="kind-logic"`, `id="kind-setpoint"`, `class="old"`, `class="new"`, "approve-form",
			`<td class="del"><code>heat 60C</code></td><td class="ins"><code>heat 95C</code></td>`}},
		{"change page without a change", "/devices/tankfarm/change", []string{"No planned change is open", "change-form"}},
		{"static script", "/static/live.js", []string{"EventSource"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, h, tc.path)
			if code != http.StatusOK {
				t.Fatalf("status %d\n%s", code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "http://") && tc.path != "/static/live.js" && !strings.Contains(body, "http://127.0.0.1") {
				t.Errorf("page has inline script, inline style or an outside URL")
			}
		})
	}
	_, body := get(t, h, "/diff?a="+base.SnapshotID+"&b="+changed.SnapshotID)
	if strings.Index(body, `id="kind-logic"`) > strings.Index(body, `id="kind-setpoint"`) {
		t.Errorf("logic is not shown before setpoints")
	}
}

// TestPlannedChangeRecorded: starting a change in the console records it on
// the newest complete snapshot without reading the device; the finish page
// says plainly that the CLI takes the after snapshot until one exists, then
// offers its diff; approving it closes the change.
func TestPlannedChangeRecorded(t *testing.T) {
	f := newFixture(t, "")
	base, _ := f.seed()
	srv, err := New(f.consoleOpts())
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	tok := srv.auth.csrfToken(user{Name: LocalUser})
	latest, err := f.st.Latest(f.ctx, "tankfarm", true)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.sim.Stats().Requests
	w := send(h, post("/devices/tankfarm/change", url.Values{"csrf": {tok}, "by": {"J. Engineer"}, "ticket": {"CHG-1234"}, "until": {"4h"}}))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("change start: %d %s", w.Code, w.Body.String())
	}
	if got := f.sim.Stats().Requests; len(got) != len(reqs) || got["Connect"] != reqs["Connect"] {
		t.Errorf("starting a change in the console talked to the controller: %v -> %v", reqs, got)
	}
	ch, err := f.svc.OpenChange(f.ctx, "tankfarm")
	if err != nil || ch == nil || ch.Before != latest.ID || ch.ConsoleUser != LocalUser || ch.By != "J. Engineer" {
		t.Fatalf("open change %+v (%v): want one before %s by J. Engineer", ch, err, latest.ID)
	}
	// A second start is refused as plcwatch change start refuses it.
	w = send(h, post("/devices/tankfarm/change", url.Values{"csrf": {tok}, "by": {"x"}, "ticket": {"CHG-9"}, "until": {"4h"}}))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "already open") {
		t.Errorf("second change: %d %s", w.Code, w.Body.String())
	}
	_, body := get(t, h, "/devices/tankfarm/change")
	if !strings.Contains(body, "change-no-after") || !strings.Contains(body, "plcwatch change finish tankfarm") {
		t.Errorf("finish page without an after snapshot does not say the CLI takes it:\n%s", body)
	}
	// The engineer makes the change; plcwatch change finish takes the
	// after snapshot (the monitor service here).
	f.changeDevice(99)
	f.clk.add(time.Minute)
	_, _, after, err := f.svc.FinishChange(f.ctx, f.device())
	if err != nil {
		t.Fatal(err)
	}
	_, body = get(t, h, "/devices/tankfarm/change")
	if !strings.Contains(body, "change-after") || !strings.Contains(body, after.ID) {
		t.Fatalf("finish page does not offer the after snapshot %s:\n%s", after.ID, body)
	}
	w = send(h, post("/approve", url.Values{"csrf": {tok}, "snapshot": {after.ID}, "ticket": {"CHG-1234"}, "by": {"Shift Lead"}}))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("approve after: %d %s", w.Code, w.Body.String())
	}
	if ch, _ := f.svc.OpenChange(f.ctx, "tankfarm"); ch != nil {
		t.Errorf("change still open after approving its after snapshot")
	}
	_ = base
	_ = monitor.ErrNoChange
	f.noWrites()
}

// TestChangeStartRefusals: the console refuses to open a planned change as
// plcwatch change start does, and also when the device has no complete
// snapshot to serve as the before snapshot (it never reads the device).
func TestChangeStartRefusals(t *testing.T) {
	f := newFixture(t, "")
	srv, err := New(f.consoleOpts())
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	start := func(ticket, until string) *httptest.ResponseRecorder {
		return send(h, post("/devices/tankfarm/change", url.Values{"csrf": {srv.auth.csrfToken(user{Name: LocalUser})}, "by": {"J. Engineer"}, "ticket": {ticket}, "until": {until}}))
	}
	tests := []struct {
		name          string
		seed          bool
		ticket, until string
		want          int
		text          string
	}{
		{name: "no snapshot yet", ticket: "CHG-1", until: "4h", want: http.StatusConflict, text: "no complete snapshot"},
		{name: "bad ticket", seed: true, ticket: "no spaces allowed", until: "4h", want: http.StatusConflict, text: "want a change ticket id"},
		{name: "until too long", seed: true, ticket: "CHG-1", until: "100h", want: http.StatusConflict, text: "change_max_duration"},
		{name: "until in the past", seed: true, ticket: "CHG-1", until: "-1h", want: http.StatusConflict, text: "not in the future"},
		{name: "until unreadable", seed: true, ticket: "CHG-1", until: "tomorrow", want: http.StatusBadRequest, text: "want a duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.seed && len(f.records(store.TypeSnapshot)) == 0 {
				f.check()
			}
			before := f.sim.Stats().Requests["Connect"]
			n := len(f.record())
			w := start(tc.ticket, tc.until)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.text) {
				t.Errorf("status %d, want %d with %q; body:\n%s", w.Code, tc.want, tc.text, w.Body.String())
			}
			if len(f.record()) != n || f.sim.Stats().Requests["Connect"] != before {
				t.Errorf("a refused change recorded something or read the device")
			}
		})
	}
}
