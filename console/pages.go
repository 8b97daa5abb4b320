package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/schedules"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// pages renders the templates.
type pages struct {
	s    *Server
	tmpl map[string]*template.Template
}

var pageNames = []string{"overview", "alerts", "alert", "history", "change", "diff", "error"}

func newPages(s *Server) (*pages, error) {
	funcs := template.FuncMap{
		"when":      fmtTime,
		"ago":       func(t time.Time) string { return ago(s.opt.Now(), t) },
		"printable": diffing.Printable,
		"short":     shortID,
		"alertURL":  alertURL,
		"lower":     strings.ToLower,
		"pathEsc":   url.PathEscape,
		"queryEsc":  url.QueryEscape,
	}
	p := &pages{s: s, tmpl: map[string]*template.Template{}}
	for _, n := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		p.tmpl[n] = t
	}
	return p, nil
}

// view is what every page template gets.
type view struct {
	Title   string
	User    user
	CSRF    string
	Devices []string
	Notice  string
	Data    any
	// Can* say which forms to show the user.
	CanAck, CanApprove bool
}

func (p *pages) render(w http.ResponseWriter, r *http.Request, code int, name, title string, data any) {
	u := userOf(r)
	v := view{Title: title, User: u, CSRF: p.s.auth.csrfToken(u), Data: data, Notice: r.URL.Query().Get("notice"),
		CanAck: u.Role >= roleOperator, CanApprove: u.Role >= roleApprover}
	for _, d := range p.s.opt.Cfg.Devices {
		v.Devices = append(v.Devices, d.Name)
	}
	var b bytes.Buffer
	if err := p.tmpl[name].ExecuteTemplate(&b, "layout.html", v); err != nil {
		p.s.opt.Log.Error().Err(err).Str("page", name).Msg("console: rendering a page")
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

func (p *pages) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	p.render(w, r, code, "error", http.StatusText(code), msg)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// ago renders how long ago t was, in days, hours or minutes.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d < -time.Minute:
		return "in the future (clock skew?)"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	case d < time.Minute:
		return "just now"
	default:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	}
}

func shortID(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

func alertURL(a alerts.Alert) string { return "/alerts/" + url.PathEscape(a.ID) }

// severities in display order.
var severities = []alerts.Severity{alerts.Critical, alerts.High, alerts.Medium, alerts.Low}

// deviceRow is one line of the fleet overview.
type deviceRow struct {
	Name, Protocol, Status, StatusClass string
	LastComplete                        *snapshots.Snapshot
	Latest                              *snapshots.Snapshot
	Baseline                            *store.Approval
	Open                                map[alerts.Severity]int
	Counts                              []sevCount
	OpenTotal                           int
	Next                                *schedules.Occurrence
	Overdue                             bool
	Change                              *monitor.Change
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.opt.Now()
	open, err := alerts.List(ctx, s.opt.Store, alerts.Filter{OpenOnly: true})
	if err != nil {
		s.pages.errorPage(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	plan, planErr := schedules.New(s.opt.Cfg)
	var rows []deviceRow
	for _, d := range s.opt.Cfg.Devices {
		row := deviceRow{Name: d.Name, Protocol: d.Protocol, Open: map[alerts.Severity]int{}}
		if snap, err := s.opt.Store.Latest(ctx, d.Name, true); err == nil {
			row.LastComplete = snap
		}
		if snap, err := s.opt.Store.Latest(ctx, d.Name, false); err == nil {
			row.Latest = snap
		}
		if ap, err := s.opt.Store.Baseline(ctx, d.Name); err == nil {
			row.Baseline = ap
		}
		for _, a := range open {
			if a.Device == d.Name {
				row.Open[a.Severity]++
				row.OpenTotal++
			}
		}
		if planErr == nil {
			if occ, ok := plan.Next(d.Name, now); ok {
				row.Next = &occ
			}
		}
		row.Overdue = row.LastComplete == nil || now.Sub(row.LastComplete.TakenAt) > s.opt.Cfg.Daemon.OverdueAfter.D()
		if ch, err := s.opt.Svc.OpenChange(ctx, d.Name); err == nil {
			row.Change = ch
		}
		for _, sv := range severities {
			if n := row.Open[sv]; n > 0 {
				row.Counts = append(row.Counts, sevCount{string(sv), n})
			}
		}
		row.Status, row.StatusClass = deviceStatus(row)
		rows = append(rows, row)
	}
	s.pages.render(w, r, http.StatusOK, "overview", "Fleet overview", struct {
		Rows       []deviceRow
		Severities []alerts.Severity
		Overdue    string
	}{rows, severities, s.opt.Cfg.Daemon.OverdueAfter.String()})
}

// sevCount is the number of open alerts of one severity.
type sevCount struct {
	Sev string
	N   int
}

func deviceStatus(r deviceRow) (string, string) {
	switch {
	case r.Latest == nil:
		return "never read", "warn"
	case r.Open[alerts.Critical] > 0 || r.Open[alerts.High] > 0:
		return "unapproved changes", "bad"
	case r.Change != nil:
		return "planned change " + r.Change.Ticket + " open", "warn"
	case r.Baseline == nil:
		return "no baseline", "warn"
	case r.OpenTotal > 0:
		return "open alerts", "warn"
	case !r.Latest.Status.Complete:
		return "last read partial", "warn"
	case r.Overdue:
		return "monitoring overdue", "warn"
	}
	return "matches baseline", "ok"
}

func (s *Server) alertList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := alerts.Filter{Device: q.Get("device"), OpenOnly: q.Get("open") == "1"}
	sev := q.Get("severity")
	list, err := alerts.List(r.Context(), s.opt.Store, f)
	if err != nil {
		s.pages.errorPage(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	var out []alerts.Alert
	for _, a := range list {
		if sev == "" || string(a.Severity) == sev {
			out = append(out, a)
		}
	}
	s.pages.render(w, r, http.StatusOK, "alerts", "Alerts", struct {
		Alerts     []alerts.Alert
		Device     string
		Severity   string
		Open       bool
		Severities []alerts.Severity
	}{out, f.Device, sev, f.OpenOnly, severities})
}

func (s *Server) findAlert(ctx context.Context, id string) (alerts.Alert, error) {
	all, err := alerts.List(ctx, s.opt.Store, alerts.Filter{})
	if err != nil {
		return alerts.Alert{}, err
	}
	return alerts.Find(all, id)
}

func (s *Server) alertDetail(w http.ResponseWriter, r *http.Request) {
	a, err := s.findAlert(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pages.errorPage(w, r, http.StatusNotFound, err.Error())
		return
	}
	s.pages.render(w, r, http.StatusOK, "alert", "Alert "+a.ID, struct {
		Alert     alerts.Alert
		Decisions []string
	}{a, alerts.Decisions})
}

// by is the name recorded as the deciding person: the signed-in user, or
// on a loopback console without users the name typed into the form.
func by(r *http.Request) (string, error) {
	u := userOf(r)
	if !u.Local {
		return u.Name, nil
	}
	name := strings.TrimSpace(r.PostFormValue("by"))
	if name == "" {
		return "", errors.New("your name: want the name of the person deciding (recorded with the decision)")
	}
	return name, nil
}

// ack records a decision on an alert exactly as plcwatch ack does
// (alerts.Ack, then the new chain head to the alert log), with the console
// user.
func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	name, err := by(r)
	if err != nil {
		s.pages.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	k := store.Ack{By: name, OSUser: s.opt.OSUser, Decision: r.PostFormValue("decision"), Comment: r.PostFormValue("comment"),
		ConsoleUser: userOf(r).Name, At: s.opt.Now().UTC()}
	rec, a, err := alerts.Ack(r.Context(), s.opt.Store, r.PathValue("id"), k)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, alerts.ErrUnknownAlert) {
			code = http.StatusNotFound
		}
		s.pages.errorPage(w, r, code, err.Error())
		return
	}
	s.wroteHead(rec)
	s.opt.Log.Info().Str("alert", a.ID).Str("device", a.Device).Str("by", name).Str("console_user", k.ConsoleUser).Str("decision", k.Decision).Msg("alert acknowledged in the console")
	http.Redirect(w, r, alertURL(a)+"?notice="+url.QueryEscape("acknowledged: "+k.Decision), http.StatusSeeOther)
}

func (s *Server) wroteHead(r store.Record) {
	if s.opt.Heads == nil {
		return
	}
	if err := s.opt.Heads.WriteHead(store.Head{Device: r.Device, Seq: r.Seq, Digest: r.Digest}); err != nil {
		s.opt.Log.Error().Err(err).Str("device", r.Device).Msg("writing the chain head to the alert log failed")
	}
}

// event is one entry of a device's timeline.
type event struct {
	Seq     int64
	Time    time.Time
	Type    string
	Class   string
	Summary string
	Link    string
	Snap    string
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	recs, err := s.opt.Store.Records(r.Context(), name)
	if err != nil {
		s.pages.errorPage(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	if len(recs) == 0 && s.opt.Cfg.Device(name) == nil {
		s.pages.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("no device %q in the config or the store", name))
		return
	}
	var evs []event
	var snaps []event
	for _, rec := range recs {
		e := timelineEntry(rec)
		evs = append(evs, e)
		if e.Snap != "" {
			snaps = append(snaps, e)
		}
	}
	// Newest first: the latest events are what a person looks for.
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Seq > evs[j].Seq })
	sort.SliceStable(snaps, func(i, j int) bool { return snaps[i].Seq > snaps[j].Seq })
	var base string
	if ap, err := s.opt.Store.Baseline(r.Context(), name); err == nil {
		base = ap.Snapshot
	}
	s.pages.render(w, r, http.StatusOK, "history", "History of "+name, struct {
		Device   string
		Events   []event
		Snaps    []event
		Baseline string
	}{name, evs, snaps, base})
}

// timelineEntry describes one record for the timeline.
func timelineEntry(r store.Record) event {
	e := event{Seq: r.Seq, Time: r.Time, Type: r.Type, Class: r.Type, Summary: r.Type}
	switch r.Type {
	case store.TypeSnapshot:
		var b store.SnapshotRef
		if json.Unmarshal(r.Body, &b) == nil {
			e.Summary = "snapshot " + b.ID
			if b.Label != "" {
				e.Summary += " (" + b.Label + ")"
			}
			if !b.Complete {
				e.Summary += " PARTIAL"
			}
			e.Snap = b.ID
			e.Link = "/diff?a=" + url.QueryEscape(r.Device+"@baseline") + "&b=" + b.ID
		}
	case store.TypeApproval:
		var b store.Approval
		if json.Unmarshal(r.Body, &b) == nil {
			e.Summary = fmt.Sprintf("baseline -> %s approved by %s%s, ticket %s: %s", b.Snapshot, b.By, via(b.ConsoleUser, b.OSUser), b.Ticket, b.Comment)
		}
	case store.TypeAlert:
		var a alerts.Alert
		if json.Unmarshal(r.Body, &a) == nil {
			e.Summary = fmt.Sprintf("alert %s [%s] %s", a.ID, a.Severity, a.Title)
			e.Link = alertURL(a)
		}
	case store.TypeAlertSeen:
		var b store.AlertSeen
		if json.Unmarshal(r.Body, &b) == nil {
			e.Summary = fmt.Sprintf("alert %s seen again in %s", b.Alert, b.Snapshot)
		}
	case store.TypeAck:
		var b store.Ack
		if json.Unmarshal(r.Body, &b) == nil {
			e.Summary = fmt.Sprintf("alert %s acknowledged by %s%s: %s: %s", b.Alert, b.By, via(b.ConsoleUser, b.OSUser), b.Decision, b.Comment)
			e.Link = "/alerts/" + url.PathEscape(b.Alert)
		}
	case store.TypeAlertResolved:
		var b store.AlertResolved
		if json.Unmarshal(r.Body, &b) == nil {
			e.Summary = fmt.Sprintf("alert %s resolved: %s", b.Alert, b.Reason)
			e.Link = "/alerts/" + url.PathEscape(b.Alert)
		}
	case store.TypeCheck:
		var b monitor.CheckRecord
		if json.Unmarshal(r.Body, &b) == nil {
			if b.Baseline == "" {
				e.Summary = fmt.Sprintf("check of %s: no baseline", b.Snapshot)
			} else {
				e.Summary = fmt.Sprintf("check of %s against baseline %s: %d change(s)", b.Snapshot, b.BaselineID, b.Changes)
				e.Link = "/diff?a=" + b.BaselineID + "&b=" + b.Snapshot
			}
		}
	case store.TypeChangeOpen, store.TypeChangeClose:
		var c monitor.Change
		if json.Unmarshal(r.Body, &c) == nil {
			if r.Type == store.TypeChangeOpen {
				e.Summary = fmt.Sprintf("planned change %s opened by %s%s until %s (before: %s)", c.Ticket, c.By, via(c.ConsoleUser, c.OSUser), fmtTime(c.Until), c.Before)
			} else {
				e.Summary = fmt.Sprintf("planned change %s closed: %s", c.Ticket, c.Outcome)
			}
		}
	case store.TypeRules:
		e.Summary = "classification rules changed"
	}
	e.Summary = diffing.Printable(e.Summary)
	return e
}

func via(consoleUser, osUser string) string {
	if consoleUser != "" {
		return fmt.Sprintf(" (console user %s, OS user %s)", consoleUser, osUser)
	}
	return fmt.Sprintf(" (OS user %s)", osUser)
}

// changeView is the planned-change page.
type changeView struct {
	Device string
	Change *monitor.Change
	Before *snapshots.Snapshot
	// After is the newest complete snapshot taken after the change opened
	// (by plcwatch change finish, snapshot or check, or the daemon).
	After    *snapshots.Snapshot
	MaxUntil string
}

func (s *Server) changePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	if s.opt.Cfg.Device(name) == nil {
		s.pages.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("no device %q in the config", name))
		return
	}
	ch, err := s.opt.Svc.OpenChange(ctx, name)
	if err != nil {
		s.pages.errorPage(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	v := changeView{Device: name, Change: ch, MaxUntil: s.opt.Cfg.Daemon.ChangeMaxDuration.String()}
	if ch != nil {
		if b, err := s.opt.Store.Snapshot(ctx, ch.Before); err == nil {
			v.Before = b
		}
		if id, err := afterSnapshot(ctx, s.opt.Store, name); err != nil {
			s.pages.errorPage(w, r, http.StatusInternalServerError, err.Error())
			return
		} else if id != "" && id != ch.Before {
			if a, err := s.opt.Store.Snapshot(ctx, id); err == nil {
				v.After = a
			}
		}
	}
	s.pages.render(w, r, http.StatusOK, "change", "Planned change on "+name, v)
}

// afterSnapshot returns the id of the newest complete snapshot stored after
// the device's last change_open record (chain order, not clocks), or "".
func afterSnapshot(ctx context.Context, st store.Store, device string) (string, error) {
	recs, err := st.Records(ctx, device)
	if err != nil {
		return "", err
	}
	after := ""
	for _, r := range recs {
		switch r.Type {
		case store.TypeChangeOpen:
			after = ""
		case store.TypeSnapshot:
			var b store.SnapshotRef
			if json.Unmarshal(r.Body, &b) == nil && b.Complete {
				after = b.ID
			}
		}
	}
	return after, nil
}

// changeStart opens a planned change without reading the device: the
// newest complete snapshot is the before snapshot.
func (s *Server) changeStart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.opt.Cfg.Device(name) == nil {
		s.pages.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("no device %q in the config", name))
		return
	}
	who, err := by(r)
	if err != nil {
		s.pages.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	until, err := parseUntil(r.PostFormValue("until"), s.opt.Now())
	if err != nil {
		s.pages.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ch, err := s.opt.Svc.OpenChangeRecorded(r.Context(), name, monitor.Change{Ticket: strings.TrimSpace(r.PostFormValue("ticket")), By: who,
		OSUser: s.opt.OSUser, ConsoleUser: userOf(r).Name, Until: until})
	if err != nil {
		s.pages.errorPage(w, r, http.StatusConflict, err.Error())
		return
	}
	s.opt.Log.Info().Str("device", name).Str("ticket", ch.Ticket).Str("by", who).Str("console_user", ch.ConsoleUser).Msg("planned change opened in the console")
	http.Redirect(w, r, "/devices/"+url.PathEscape(name)+"/change?notice="+url.QueryEscape("planned change "+ch.Ticket+" opened"), http.StatusSeeOther)
}

// parseUntil reads an RFC 3339 time or a duration from now (as plcwatch
// change start --until does).
func parseUntil(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("until %q: want a duration such as 4h or an RFC 3339 time such as 2026-12-01T18:00:00+01:00", s)
	}
	return t, nil
}

// diffGroup is the changes of one kind.
type diffGroup struct {
	Kind    snapshots.Kind
	Changes []diffRow
}

// diffRow is one change, side by side.
type diffRow struct {
	Path, Type, Reason string
	Old, New           string
	Fields             []string
	Info               bool
	Lines              []linePair
}

// linePair is one row of a side-by-side line diff; a side is empty where
// the line exists only on the other.
type linePair struct {
	Old, New       string
	OldCls, NewCls string
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	ra, rb := strings.TrimSpace(q.Get("a")), strings.TrimSpace(q.Get("b"))
	if ra == "" || rb == "" {
		s.pages.errorPage(w, r, http.StatusBadRequest, "diff: want a= and b=: snapshot ids, DEVICE@latest, DEVICE@baseline or DEVICE@LABEL")
		return
	}
	x, err := s.opt.Store.Resolve(ctx, ra)
	if err != nil {
		s.pages.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("diff: %s: %v", ra, err))
		return
	}
	y, err := s.opt.Store.Resolve(ctx, rb)
	if err != nil {
		s.pages.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("diff: %s: %v", rb, err))
		return
	}
	rep := diffing.Compare(x, y, diffing.Options{})
	var groups []diffGroup
	for _, c := range rep.Changes {
		if len(groups) == 0 || groups[len(groups)-1].Kind != c.Kind {
			groups = append(groups, diffGroup{Kind: c.Kind})
		}
		g := &groups[len(groups)-1]
		g.Changes = append(g.Changes, diffRowOf(c))
	}
	isBase := false
	var change *monitor.Change
	if ap, err := s.opt.Store.Baseline(ctx, y.Device); err == nil && ap.Snapshot == y.ID {
		isBase = true
	}
	if ch, err := s.opt.Svc.OpenChange(ctx, y.Device); err == nil {
		change = ch
	}
	s.pages.render(w, r, http.StatusOK, "diff", "Diff "+x.ID+" → "+y.ID, struct {
		Old, New  *snapshots.Snapshot
		Report    *diffing.Report
		Groups    []diffGroup
		Equal     bool
		NewIsBase bool
		Change    *monitor.Change
	}{x, y, rep, groups, rep.Equal(), isBase, change})
}

func diffRowOf(c diffing.Change) diffRow {
	d := diffRow{Path: diffing.Printable(c.Path), Type: string(c.Type), Reason: c.Reason, Info: c.Info, Fields: c.Fields}
	d.Old, d.New = sideText(c.Old), sideText(c.New)
	if c.LineDiff != "" {
		d.Lines = sideBySide(c.LineDiff)
	}
	return d
}

func sideText(sd *diffing.Side) string {
	if sd == nil {
		return ""
	}
	switch sd.Value.Type {
	case snapshots.TypeNone:
		return "(value not captured)"
	case snapshots.TypeText:
		return fmt.Sprintf("(text, %d lines)", strings.Count(sd.Value.Raw, "\n")+1)
	}
	return diffing.Printable(diffing.ValueText(sd.Value, sd.Attrs))
}

// sideBySide turns a diffing.LineDiff ("- ", "+ ", "  " lines) into rows:
// unchanged lines on both sides, a run of removed lines beside the run of
// added lines that follows it.
func sideBySide(ld string) []linePair {
	var out []linePair
	var dels, adds []string
	flush := func() {
		for i := 0; i < len(dels) || i < len(adds); i++ {
			var p linePair
			if i < len(dels) {
				p.Old, p.OldCls = dels[i], "del"
			}
			if i < len(adds) {
				p.New, p.NewCls = adds[i], "ins"
			}
			out = append(out, p)
		}
		dels, adds = nil, nil
	}
	for _, l := range strings.Split(strings.TrimSuffix(ld, "\n"), "\n") {
		body := diffing.Printable(strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(l, "- "), "+ "), "  "))
		switch {
		case strings.HasPrefix(l, "- "):
			if len(adds) > 0 {
				flush()
			}
			dels = append(dels, body)
		case strings.HasPrefix(l, "+ "):
			adds = append(adds, body)
		default:
			flush()
			out = append(out, linePair{Old: body, New: body})
		}
	}
	flush()
	return out
}

// approve makes a snapshot the baseline exactly as plcwatch approve does
// (monitor.Service.Approve: the same refusals of @references, partial
// snapshots and a moved baseline), with the console user.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	who, err := by(r)
	if err != nil {
		s.pages.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	req := monitor.ApproveRequest{SnapshotID: r.PostFormValue("snapshot"), Ticket: strings.TrimSpace(r.PostFormValue("ticket")), By: who,
		OSUser: s.opt.OSUser, Comment: r.PostFormValue("comment"), ConsoleUser: userOf(r).Name}
	ap, err := s.opt.Svc.Approve(r.Context(), req)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, monitor.ErrApproveRef) || errors.Is(err, monitor.ErrApprovePartial) ||
			errors.Is(err, monitor.ErrBaselineMoved) || errors.Is(err, monitor.ErrAlreadyBase) {
			code = http.StatusConflict
		} else if errors.Is(err, store.ErrNotFound) {
			code = http.StatusNotFound
		}
		s.pages.errorPage(w, r, code, "approval refused: "+err.Error())
		return
	}
	dev := "device"
	if snap, err := s.opt.Store.Snapshot(r.Context(), ap.Snapshot); err == nil {
		dev = snap.Device
	}
	s.opt.Log.Info().Str("device", dev).Str("snapshot", ap.Snapshot).Str("ticket", ap.Ticket).Str("by", ap.By).Str("console_user", ap.ConsoleUser).Msg("baseline approved in the console")
	http.Redirect(w, r, "/devices/"+url.PathEscape(dev)+"?notice="+url.QueryEscape("baseline is now "+ap.Snapshot+" (ticket "+ap.Ticket+")"), http.StatusSeeOther)
}
