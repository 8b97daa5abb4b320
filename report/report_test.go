package report_test

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/report"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"

	_ "modernc.org/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// t0 is the start of the fixture's history.
var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

func snap(t *testing.T, dev string, at time.Time, complete bool, ob1 uint64, sp float64, fw string) *snapshots.Snapshot {
	t.Helper()
	s := &snapshots.Snapshot{
		Device: dev, Protocol: "s7", Endpoint: "10.0.0.7:102", TakenAt: at,
		Identity: snapshots.Identity{Vendor: "Siemens", Model: "CPU 315-2 PN/DP", Serial: "S C-C2UR28922012", Firmware: fw},
		Status:   snapshots.Status{Complete: complete},
		Items: []snapshots.Item{
			{Path: "blocks/OB1", Kind: snapshots.KindLogic, Value: snapshots.Uint(ob1, ""), Attrs: map[string]string{"checksum": "0x" + strings.ToUpper(hexs(ob1)), "load_size": "412", "lang": "STL"}, Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "blocks/FB10", Kind: snapshots.KindLogic, Value: snapshots.Uint(0x1234, ""), Attrs: map[string]string{"checksum": "0x1234", "load_size": "1024"}, Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "setpoints/TankHighLimit", Kind: snapshots.KindSetpoint, Value: snapshots.Float(sp, "%"), Deadband: 0.5, Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "firmware/cpu", Kind: snapshots.KindFirmware, Value: snapshots.String(fw), Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "modules/rack0/slot4", Kind: snapshots.KindHardware, Value: snapshots.String("6ES7 321-1BL00-0AA0"), Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "identity/serial", Kind: snapshots.KindIdentity, Value: snapshots.String("S C-C2UR28922012"), Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "protection/level", Kind: snapshots.KindProtection, Value: snapshots.Uint(3, ""), Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "mode/cpu", Kind: snapshots.KindMode, Value: snapshots.String("RUN"), Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
			{Path: "info/uptime", Kind: snapshots.KindInfo, Volatile: true, Provenance: snapshots.Provenance{Source: snapshots.SourceRead}},
		},
	}
	if !complete {
		s.Status.Reasons = []string{"block info: connection reset"}
		s.Items[0].Provenance = snapshots.Provenance{Source: snapshots.SourceNotRead, Reason: "connection reset"}
		s.Items[0].Value = snapshots.Value{Type: snapshots.TypeNone}
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	return s
}

func hexs(v uint64) string { return fmt.Sprintf("%08x", v) }

// fixture fills a store with three months of one device's history: a first
// baseline, weekly checks, an unapproved setpoint change that is
// acknowledged, an approved logic change, a partial read, a gap of 50 days
// and an unapproved firmware change still open; and a second device that
// never got a baseline.
func fixture(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "plcwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	put := func(s *snapshots.Snapshot) {
		if _, err := st.PutSnapshot(ctx, s, nil); err != nil {
			t.Fatal(err)
		}
	}
	approve := func(s *snapshots.Snapshot, old *snapshots.Snapshot, at time.Time, by, ticket, comment string) {
		a := store.Approval{Snapshot: s.ID, Digest: s.Digest, By: by, OSUser: "eng1", Ticket: ticket, Comment: comment, At: at, NewBaseline: s.Digest}
		if old != nil {
			a.OldBaseline = old.Digest
		}
		if _, err := st.Append(ctx, s.Device, store.TypeApproval, at, a); err != nil {
			t.Fatal(err)
		}
	}
	raise := func(base, s *snapshots.Snapshot, at time.Time) []alerts.Alert {
		rep := diffing.Compare(base, s, diffing.Options{})
		als := alerts.Derive(rep, alerts.Input{Device: s.Device, Now: at})
		raised, _, _, err := alerts.Raise(ctx, st, als, s.ID, at)
		if err != nil {
			t.Fatal(err)
		}
		return raised
	}
	const dev = "tankfarm-s7"
	b1 := snap(t, dev, t0, true, 0xBEEF, 87.5, "V3.3.10")
	put(b1)
	approve(b1, nil, t0.Add(time.Hour), "J. Engineer", "CHG-1001", "commissioning")
	week := 7 * 24 * time.Hour
	put(snap(t, dev, t0.Add(week), true, 0xBEEF, 87.5, "V3.3.10"))
	// An unapproved setpoint change, acknowledged.
	s2 := snap(t, dev, t0.Add(2*week), true, 0xBEEF, 92, "V3.3.10")
	put(s2)
	al := raise(b1, s2, s2.TakenAt)
	if len(al) != 1 {
		t.Fatalf("setpoint change raised %d alerts, want 1", len(al))
	}
	if _, _, err := alerts.Ack(ctx, st, al[0].ID, store.Ack{By: "Shift Lead", OSUser: "ops2", Decision: "investigating", Comment: "called the engineer", At: s2.TakenAt.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// A partial read.
	p := snap(t, dev, t0.Add(3*week), false, 0xBEEF, 92, "V3.3.10")
	put(p)
	raise(b1, p, p.TakenAt)
	// An approved logic change (also making the setpoint the baseline).
	b2 := snap(t, dev, t0.Add(4*week), true, 0xC0DE, 92, "V3.3.10")
	put(b2)
	approve(b2, b1, b2.TakenAt.Add(30*time.Minute), "J. Engineer", "CHG-1002", "new tank interlock")
	// The daemon was down for a window, and later the device went overdue.
	for _, ev := range []alerts.Alert{
		alerts.Event(dev, alerts.CatWindowMissed, "window nightly at 2026-04-05T02:00:00Z did not run (daemon down)", "nightly 2026-04-05T02:00:00Z", t0.Add(5*week+time.Hour)),
		alerts.Event(dev, alerts.CatOverdue, "no complete snapshot since 2026-03-29T02:00:00Z", "overdue", t0.Add(4*week+36*24*time.Hour)),
	} {
		if _, _, _, err := alerts.Raise(ctx, st, []alerts.Alert{ev}, "", ev.Raised.Add(0)); err != nil {
			t.Fatal(err)
		}
	}
	// 50 days without a complete collection, then a firmware change.
	s4 := snap(t, dev, t0.Add(4*week+50*24*time.Hour), true, 0xC0DE, 92, "V3.3.12")
	put(s4)
	raise(b2, s4, s4.TakenAt)
	// A device never approved.
	put(snap(t, "press-logix", t0.Add(2*24*time.Hour), true, 1, 1, "V33.011"))
	return st
}

func build(t *testing.T, st store.Store, opt report.Options) *report.Report {
	t.Helper()
	if opt.Generated.IsZero() {
		opt.Generated = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	}
	r, err := report.Build(context.Background(), st, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

var period = report.Options{Since: t0, Until: time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)}

func TestGolden(t *testing.T) {
	r := build(t, fixture(t), period)
	var js, cs bytes.Buffer
	if err := report.WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteCSV(&cs, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", js.Bytes())
	golden(t, "report.csv", cs.Bytes())
}

// TestContent checks the facts an auditor relies on, independently of the
// golden files.
func TestContent(t *testing.T) {
	st := fixture(t)
	tests := []struct {
		name  string
		opt   report.Options
		check func(t *testing.T, r *report.Report)
	}{
		{name: "baseline by category is the newest approval", opt: period, check: func(t *testing.T, r *report.Report) {
			d := r.Devices[1]
			if d.Name != "tankfarm-s7" || d.Baseline == nil {
				t.Fatalf("device %s baseline %v", d.Name, d.Baseline)
			}
			if d.Baseline.Approval.Ticket != "CHG-1002" {
				t.Errorf("baseline ticket %s, want CHG-1002", d.Baseline.Approval.Ticket)
			}
			want := map[string]int{"firmware": 1, "logic": 2, "setpoints": 1, "hardware": 1, "identity": 1, "security": 2}
			for _, c := range d.Baseline.Categories {
				if len(c.Items) != want[c.ID] {
					t.Errorf("category %s has %d items, want %d", c.ID, len(c.Items), want[c.ID])
				}
				for _, it := range c.Items {
					if it.Kind == string(snapshots.KindInfo) {
						t.Errorf("info item %s in the baseline", it.Path)
					}
				}
			}
			if r.Devices[0].Baseline != nil {
				t.Errorf("press-logix has a baseline in the report but none was approved")
			}
		}},
		{name: "changes with dispositions", opt: period, check: func(t *testing.T, r *report.Report) {
			var disp []string
			for _, c := range r.Devices[1].Changes {
				disp = append(disp, c.Disposition)
			}
			want := "approved,unauthorized,approved,unauthorized"
			if got := strings.Join(disp, ","); got != want {
				t.Fatalf("dispositions %s, want %s", got, want)
			}
			sp := r.Devices[1].Changes[1]
			if len(sp.Alert.Acks) != 1 || sp.Alert.Acks[0].By != "Shift Lead" {
				t.Errorf("setpoint change acks %+v, want Shift Lead's", sp.Alert.Acks)
			}
			logic := r.Devices[1].Changes[2]
			if logic.Ticket != "CHG-1002" || !strings.Contains(strings.Join(logic.Items, "\n"), "blocks/OB1") {
				t.Errorf("approved change %+v, want CHG-1002 naming blocks/OB1", logic)
			}
		}},
		{name: "gap longer than 35 days", opt: period, check: func(t *testing.T, r *report.Report) {
			cov := r.Devices[1].Coverage
			// 50 days without a complete read, then 43 days to the end of
			// the period (open).
			if len(cov.Gaps) != 2 || cov.Gaps[0].Hours != 50*24 || cov.Gaps[0].Open || cov.Gaps[1].Hours != 1030 || !cov.Gaps[1].Open {
				t.Errorf("gaps %+v, want 1200 h and an open one of 1030 h", cov.Gaps)
			}
			if cov.Partial != 1 || len(cov.Collections) != 5 {
				t.Errorf("%d complete and %d partial collections, want 5 and 1", len(cov.Collections), cov.Partial)
			}
			var cats []string
			for _, a := range cov.Alerts {
				cats = append(cats, a.Category)
			}
			if got := strings.Join(cats, ","); got != "collection_incomplete,window_missed,monitoring_overdue" {
				t.Errorf("monitoring alerts %s, want the incomplete collection, the missed window and the overdue device", got)
			}
		}},
		{name: "configured interval", opt: report.Options{Since: period.Since, Until: period.Until, Interval: 10 * 24 * time.Hour}, check: func(t *testing.T, r *report.Report) {
			// The 14 days around the partial read count too.
			if g := r.Devices[1].Coverage.Gaps; len(g) != 3 || g[0].Hours != 14*24 || !g[2].Open {
				t.Errorf("gaps %+v, want 3 (336 h first, the last open)", g)
			}
		}},
		{name: "period limits changes", opt: report.Options{Since: t0.Add(24 * 24 * time.Hour), Until: t0.Add(30 * 24 * time.Hour)}, check: func(t *testing.T, r *report.Report) {
			if c := r.Devices[1].Changes; len(c) != 1 || c[0].Ticket != "CHG-1002" {
				t.Errorf("changes %+v, want only CHG-1002", c)
			}
			// The baseline is the one in force at the end of the period.
			if b := r.Devices[1].Baseline; b == nil || b.Approval.Ticket != "CHG-1002" {
				t.Errorf("baseline %+v", b)
			}
		}},
		{name: "baseline in force at the end of an earlier period", opt: report.Options{Since: t0, Until: t0.Add(10 * 24 * time.Hour)}, check: func(t *testing.T, r *report.Report) {
			if b := r.Devices[1].Baseline; b == nil || b.Approval.Ticket != "CHG-1001" {
				t.Errorf("baseline %+v, want CHG-1001", b)
			}
		}},
		{name: "open alerts", opt: period, check: func(t *testing.T, r *report.Report) {
			var cats []string
			for _, a := range r.Devices[1].OpenAlerts {
				cats = append(cats, a.Category)
			}
			if got := strings.Join(cats, ","); got != "collection_incomplete,window_missed,monitoring_overdue,firmware" {
				t.Errorf("open alerts %s, want collection_incomplete,window_missed,monitoring_overdue,firmware", got)
			}
		}},
		{name: "verify and heads", opt: period, check: func(t *testing.T, r *report.Report) {
			if !r.Verify.OK || len(r.Verify.Heads) != 2 {
				t.Errorf("verify %+v, want ok with 2 heads", r.Verify)
			}
		}},
		{name: "one device", opt: report.Options{Since: period.Since, Until: period.Until, Devices: []string{"press-logix"}}, check: func(t *testing.T, r *report.Report) {
			if len(r.Devices) != 1 || r.Devices[0].Name != "press-logix" {
				t.Errorf("devices %+v", r.Devices)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, build(t, st, tc.opt)) })
	}
}

func TestBadOptions(t *testing.T) {
	st := fixture(t)
	tests := []struct {
		name string
		opt  report.Options
		want string
	}{
		{name: "unknown device", opt: report.Options{Since: period.Since, Until: period.Until, Devices: []string{"nope"}}, want: `device "nope" (stored devices: press-logix, tankfarm-s7)`},
		{name: "end before start", opt: report.Options{Since: period.Until, Until: period.Since}, want: "want a start before the end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := report.Build(context.Background(), st, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestHTMLSections(t *testing.T) {
	r := build(t, fixture(t), period)
	var b bytes.Buffer
	if err := report.WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, d := range r.Devices {
		for _, s := range report.Sections {
			if !strings.Contains(html, `id="`+s+"-"+d.Name+`"`) {
				t.Errorf("section %s of %s missing", s, d.Name)
			}
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "<link", "src="} {
		if strings.Contains(html, bad) {
			t.Errorf("the HTML contains %q: it must be self-contained, without scripts", bad)
		}
	}
	if !strings.Contains(html, `id="verification"`) || !strings.Contains(html, "break-before: page") {
		t.Error("no verification section or no page break per device")
	}
}

// TestTamperedStore: an edited record shows in the report as a finding of
// the verification, with the chain heads, instead of a clean bill.
func TestTamperedStore(t *testing.T) {
	st := fixture(t)
	db, err := sql.Open("sqlite", st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE records SET body = replace(body, 'called the engineer', 'called nobody') WHERE type = 'ack'`); err != nil {
		t.Fatal(err)
	}
	r := build(t, st, period)
	if r.Verify.OK || len(r.Verify.Findings) != 1 || r.Verify.Findings[0].Problem != store.ProblemEdited {
		t.Fatalf("verify %+v, want one edited record", r.Verify)
	}
	var b bytes.Buffer
	if err := report.WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "1 finding(s)") || !strings.Contains(b.String(), "edited") {
		t.Error("the HTML report does not show the finding")
	}
}
