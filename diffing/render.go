package diffing

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/plcwatch/plcwatch/snapshots"
)

// RenderOptions tune the human rendering.
type RenderOptions struct {
	// Color adds ANSI colours (for terminals).
	Color bool
}

const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

// Render writes the report for people: a header naming both snapshots, then
// changes grouped by kind, each with old -> new and what differs.
func Render(w io.Writer, r *Report, opt RenderOptions) error {
	paint := func(code, s string) string {
		if !opt.Color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s %s%s\n", r.Old.ID, r.Old.TakenAt, sideNote(r.Old))
	fmt.Fprintf(&b, "+++ %s %s%s\n", r.New.ID, r.New.TakenAt, sideNote(r.New))
	if len(r.Changes) == 0 {
		b.WriteString("no differences\n")
	}
	var kind snapshots.Kind = "-"
	for _, c := range r.Changes {
		if c.Kind != kind {
			kind = c.Kind
			fmt.Fprintf(&b, "\n%s\n", paint(ansiBold, string(kind)))
		}
		switch c.Type {
		case Added:
			fmt.Fprintf(&b, "  %s %s = %s\n", paint(ansiGreen, "+"), c.Path, val(c.New))
		case Removed:
			fmt.Fprintf(&b, "  %s %s (was %s)\n", paint(ansiRed, "-"), c.Path, val(c.Old))
		case NotRead:
			fmt.Fprintf(&b, "  %s %s not read (%s); last known %s\n", paint(ansiYellow, "?"), c.Path, c.Reason, val(c.Old))
		case Touched:
			fmt.Fprintf(&b, "  %s %s re-downloaded, content identical (%s)\n", paint(ansiCyan, "="), c.Path, strings.Join(c.Fields, ", "))
			writeAttrChanges(&b, c, true)
		case Changed:
			fmt.Fprintf(&b, "  %s %s: %s -> %s", paint(ansiYellow, "~"), c.Path, val(c.Old), val(c.New))
			if c.Delta != nil && c.Kind == snapshots.KindSetpoint {
				fmt.Fprintf(&b, " (%s)", signed(*c.Delta))
			}
			b.WriteString("\n")
			writeAttrChanges(&b, c, false)
			if c.LineDiff != "" {
				for _, l := range strings.Split(strings.TrimSuffix(c.LineDiff, "\n"), "\n") {
					switch {
					case strings.HasPrefix(l, "+ "):
						l = paint(ansiGreen, l)
					case strings.HasPrefix(l, "- "):
						l = paint(ansiRed, l)
					}
					fmt.Fprintf(&b, "      %s\n", l)
				}
			}
		}
	}
	if n := len(r.Suppressed); n > 0 {
		fmt.Fprintf(&b, "\n%d change(s) within their deadband not shown:", n)
		for _, s := range r.Suppressed {
			fmt.Fprintf(&b, " %s %s->%s (deadband %v);", s.Path, s.Old, s.New, s.Deadband)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sideNote(s SnapshotInfo) string {
	note := ""
	if s.Label != "" {
		note += " label=" + s.Label
	}
	if !s.Complete {
		note += " PARTIAL: " + strings.Join(s.Reasons, "; ")
	}
	return note
}

func val(s *Side) string {
	if s == nil {
		return "(none)"
	}
	switch s.Value.Type {
	case snapshots.TypeNone:
		return "(value not captured)"
	case snapshots.TypeText:
		return fmt.Sprintf("(text, %d lines)", strings.Count(s.Value.Raw, "\n")+1)
	}
	return s.Value.String()
}

func signed(f float64) string {
	s := strconv.FormatFloat(f, 'g', 6, 64)
	if f > 0 {
		return "+" + s
	}
	return s
}

func writeAttrChanges(b *strings.Builder, c Change, metaOnly bool) {
	for _, f := range c.Fields {
		k, ok := strings.CutPrefix(f, "attrs.")
		if !ok {
			continue
		}
		if metaOnly && !strings.HasPrefix(k, snapshots.MetaPrefix) {
			continue
		}
		var o, n string
		if c.Old != nil {
			o = c.Old.Attrs[k]
		}
		if c.New != nil {
			n = c.New.Attrs[k]
		}
		fmt.Fprintf(b, "      %s: %s -> %s\n", k, orNone(o), orNone(n))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
