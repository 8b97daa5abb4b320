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
// changes grouped by kind in snapshots.Kinds order ("+ added", "- removed",
// "~ changed: old -> new" with the attributes that differ and an indented
// line diff of long text, "= touched", "? not read"), informational changes
// marked "[info]", then the changes within their deadband. Every string that
// came from a device passes through Printable.
func Render(w io.Writer, r *Report, opt RenderOptions) error {
	paint := func(code, s string) string {
		if !opt.Color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s %s%s\n", orDash(r.Old.ID), r.Old.TakenAt, sideNote(r.Old))
	fmt.Fprintf(&b, "+++ %s %s%s\n", orDash(r.New.ID), r.New.TakenAt, sideNote(r.New))
	if len(r.Changes) == 0 {
		b.WriteString("no differences\n")
	}
	var kind snapshots.Kind = "-"
	for _, c := range r.Changes {
		if c.Kind != kind {
			kind = c.Kind
			fmt.Fprintf(&b, "\n%s\n", paint(ansiBold, Printable(string(kind))))
		}
		path, note := Printable(c.Path), ""
		if c.Info {
			note = " [info]"
		}
		switch c.Type {
		case Added:
			fmt.Fprintf(&b, "  %s %s = %s%s\n", paint(ansiGreen, "+"), path, val(c.New), note)
		case Removed:
			fmt.Fprintf(&b, "  %s %s (was %s)%s\n", paint(ansiRed, "-"), path, val(c.Old), note)
		case NotRead:
			switch {
			case c.Reason == ReasonNotPreviously:
				fmt.Fprintf(&b, "  %s %s not previously read; now %s%s\n", paint(ansiYellow, "?"), path, val(c.New), note)
			case c.Old == nil:
				fmt.Fprintf(&b, "  %s %s not read (%s)%s\n", paint(ansiYellow, "?"), path, Printable(c.Reason), note)
			default:
				fmt.Fprintf(&b, "  %s %s not read (%s); last known %s%s\n", paint(ansiYellow, "?"), path, Printable(c.Reason), val(c.Old), note)
			}
		case Touched:
			if c.Info {
				fmt.Fprintf(&b, "  %s %s metadata moved, content identical (%s)%s\n", paint(ansiCyan, "="), path, Printable(strings.Join(c.Fields, ", ")), note)
			} else {
				fmt.Fprintf(&b, "  %s %s re-downloaded, content identical (%s)%s\n", paint(ansiCyan, "="), path, Printable(strings.Join(c.Fields, ", ")), note)
			}
			writeAttrChanges(&b, c, true)
		case Changed:
			fmt.Fprintf(&b, "  %s %s: %s -> %s", paint(ansiYellow, "~"), path, val(c.Old), val(c.New))
			if c.Delta != nil && c.Kind == snapshots.KindSetpoint {
				fmt.Fprintf(&b, " (%s)", signed(*c.Delta))
			}
			if c.Reason != "" {
				fmt.Fprintf(&b, " (%s)", c.Reason)
			}
			b.WriteString(note + "\n")
			writeKindChanges(&b, c)
			writeAttrChanges(&b, c, false)
			if c.LineDiff != "" {
				for _, l := range strings.Split(strings.TrimSuffix(c.LineDiff, "\n"), "\n") {
					l = Printable(l)
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
			fmt.Fprintf(&b, " %s %s->%s (deadband %v);", Printable(s.Path), Printable(s.Old), Printable(s.New), s.Deadband)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sideNote(s SnapshotInfo) string {
	note := ""
	if s.Label != "" {
		note += " label=" + Printable(s.Label)
	}
	if !s.Complete {
		note += " PARTIAL: " + Printable(strings.Join(s.Reasons, "; "))
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
	return Printable(ValueText(s.Value, s.Attrs))
}

// ValueText renders a value for people: an enumerated value by its name
// (snapshots.AttrValueName) with the number after it, "Running (0)";
// anything else as snapshots.Value.String does. The caller makes it
// printable.
func ValueText(v snapshots.Value, attrs map[string]string) string {
	if name := attrs[snapshots.AttrValueName]; name != "" && v.Type != snapshots.TypeNone {
		return name + " (" + v.Raw + ")"
	}
	return v.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeKindChanges shows a change of kind (a classification change).
func writeKindChanges(b *strings.Builder, c Change) {
	if c.Old != nil && c.New != nil && c.Old.Kind != c.New.Kind {
		fmt.Fprintf(b, "      kind: %s -> %s\n", Printable(string(c.Old.Kind)), Printable(string(c.New.Kind)))
	}
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
		if k == snapshots.AttrValueName {
			continue // shown with the value already
		}
		var o, n string
		if c.Old != nil {
			o = c.Old.Attrs[k]
		}
		if c.New != nil {
			n = c.New.Attrs[k]
		}
		fmt.Fprintf(b, "      %s: %s -> %s\n", Printable(k), Printable(orNone(o)), Printable(orNone(n)))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
