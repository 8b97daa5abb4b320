package report

import (
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/store"
)

//go:embed report.html.tmpl report.css
var assets embed.FS

// Sections are the ids of the sections every device's part of the HTML
// report has, in order; tests and auditors look for them.
var Sections = []string{"baseline", "changes", "coverage", "open-alerts"}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report as JSON: %w", err)
	}
	return nil
}

// CSVHeader is the header row of WriteCSV: one row per baseline item,
// change, collection, gap, alert, acknowledgement, finding and chain head,
// told apart by the section column.
var CSVHeader = []string{"section", "device", "time", "category", "id", "path_or_item", "value", "disposition", "by", "ticket", "comment", "detail"}

// WriteCSV writes the report as one CSV table (RFC 4180) for spreadsheets
// and GRC tools; see CSVHeader. Times are RFC 3339 UTC.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	row := func(fields ...string) {
		rec := make([]string, len(CSVHeader))
		copy(rec, fields)
		cw.Write(rec)
	}
	row(CSVHeader...)
	row("period", "", ts(r.Since), "", "", "", ts(r.Until), "", "", "", "", fmt.Sprintf("interval %s h; generated %s", num(r.IntervalHours), ts(r.Generated)))
	for _, d := range r.Devices {
		if b := d.Baseline; b != nil {
			a := b.Approval
			row("baseline", d.Name, ts(b.TakenAt), "", b.SnapshotID, "", b.Digest, DispApproved, a.By+" ("+a.OSUser+")", a.Ticket, a.Comment, "approved "+ts(a.At))
			for _, c := range b.Categories {
				for _, it := range c.Items {
					row("baseline_item", d.Name, "", c.ID, it.Hash, it.Path, it.Value, "", "", "", "", joinNonEmpty("; ", it.Attrs, it.Source))
				}
			}
		} else {
			row("baseline", d.Name, "", "", "", "", "", "", "", "", "", "no baseline approved")
		}
		for _, c := range d.Changes {
			id, cat, by, comment := c.Snapshot, "", c.By, c.Comment
			if c.OSUser != "" {
				by += " (" + c.OSUser + ")"
			}
			if c.Alert != nil {
				id, cat = c.Alert.ID, c.Alert.Category
				by, comment = ackText(c.Alert.Acks), ""
			}
			row("change", d.Name, ts(c.Time), cat, id, strings.Join(c.Items, " | "), "", c.Disposition, by, c.Ticket, comment, "")
		}
		for _, c := range d.Coverage.Collections {
			row("collection", d.Name, ts(c.Time), "", c.Snapshot, "", "complete", "", "", "", "", "")
		}
		row("coverage", d.Name, ts(d.Coverage.LastComplete), "", "", "", "", "", "", "", "",
			fmt.Sprintf("%d complete, %d partial, %d gap(s) longer than %s h", len(d.Coverage.Collections), d.Coverage.Partial, len(d.Coverage.Gaps), num(r.IntervalHours)))
		for _, g := range d.Coverage.Gaps {
			detail := ""
			if g.Open {
				detail = "open at the end of the period"
			}
			row("gap", d.Name, ts(g.From), "", "", "", ts(g.To), "", "", "", "", joinNonEmpty("; ", num(g.Hours)+" h", detail))
		}
		for _, a := range d.Coverage.Alerts {
			alertRow(row, "monitoring_alert", d.Name, a)
		}
		for _, a := range d.OpenAlerts {
			alertRow(row, "open_alert", d.Name, a)
		}
	}
	verdict := "ok"
	if !r.Verify.OK {
		verdict = fmt.Sprintf("%d finding(s)", len(r.Verify.Findings))
	}
	row("verify", "", "", "", "", "", verdict, "", "", "", "", fmt.Sprintf("%d chain(s), %d recorded head(s) checked", len(r.Verify.Heads), r.Verify.KnownHeadsChecked))
	for _, f := range r.Verify.Findings {
		row("finding", f.Device, "", f.Problem, strconv.FormatInt(f.Seq, 10), "", "", "", "", "", "", f.Detail)
	}
	for _, h := range r.Verify.Heads {
		row("head", h.Device, "", "", strconv.FormatInt(h.Seq, 10), "", h.Digest, "", "", "", "", "")
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing the report as CSV: %w", err)
	}
	return nil
}

func alertRow(row func(...string), section, dev string, a Alert) {
	row(section, dev, ts(a.Raised), a.Category, a.ID, strings.Join(a.Items, " | "), a.Severity, a.Disposition, ackText(a.Acks), a.Ticket, "",
		fmt.Sprintf("%s; %s; seen %d times, last %s", a.Title, a.Status, a.Count, ts(a.LastSeen)))
}

func ackText(acks []store.Ack) string {
	var s []string
	for _, k := range acks {
		s = append(s, fmt.Sprintf("%s (%s) %s %s: %s", k.By, k.OSUser, ts(k.At), k.Decision, k.Comment))
	}
	return strings.Join(s, " | ")
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// htmlTmpl parses the report template on first use rather than at every
// process start (0.4 ms that no command but report needs).
var htmlTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
		"ts":  ts,
		"num": num,
		"day": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02")
		},
		"css": func() (template.CSS, error) {
			b, err := assets.ReadFile("report.css")
			return template.CSS(b), err
		},
		"acks":  ackText,
		"count": func(c Category) int { return len(c.Items) },
	}).ParseFS(assets, "report.html.tmpl"))
})

// WriteHTML writes the report as one self-contained HTML page: embedded
// CSS, no script, no external resource; each device starts on a new page
// when printed.
func WriteHTML(w io.Writer, r *Report) error {
	if err := htmlTmpl().Execute(w, r); err != nil {
		return fmt.Errorf("writing the report as HTML: %w", err)
	}
	return nil
}
