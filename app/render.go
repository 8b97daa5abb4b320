package app

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
)

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// renderSnapshot prints a snapshot for people: header, then items grouped by
// kind.
func renderSnapshot(w io.Writer, s *snapshots.Snapshot) {
	fmt.Fprintf(w, "snapshot %s  (digest %s)\n", s.ID, s.Digest)
	fmt.Fprintf(w, "  device    %s (%s %s)\n", s.Device, s.Protocol, s.Endpoint)
	fmt.Fprintf(w, "  taken     %s\n", s.TakenAt.Format(time.RFC3339))
	if s.Label != "" {
		fmt.Fprintf(w, "  label     %s\n", s.Label)
	}
	id := s.Identity
	fmt.Fprintf(w, "  identity  %s\n", joinNonEmpty(" / ", id.Vendor, id.Model, id.Name, "serial "+id.Serial, "firmware "+id.Firmware))
	if s.Status.Complete {
		fmt.Fprintf(w, "  status    complete\n")
	} else {
		fmt.Fprintf(w, "  status    PARTIAL: %s\n", strings.Join(s.Status.Reasons, "; "))
	}
	fmt.Fprintf(w, "  cost      %d requests, %d bytes sent, %d bytes received, %s\n", s.Cost.Requests, s.Cost.BytesOut, s.Cost.BytesIn, s.Cost.Duration.Round(time.Millisecond))
	byKind := map[snapshots.Kind][]snapshots.Item{}
	for _, it := range s.Items {
		byKind[it.Kind] = append(byKind[it.Kind], it)
	}
	for _, k := range snapshots.Kinds {
		items := byKind[k]
		if len(items) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d)\n", k, len(items))
		for _, it := range items {
			fmt.Fprintf(w, "  %s = %s%s%s\n", it.Path, valueText(it), attrText(it.Attrs), provenanceText(it.Provenance))
		}
	}
}

func valueText(it snapshots.Item) string {
	if it.Volatile {
		return "(live value, not captured)"
	}
	v := diffing.ValueText(it.Value, it.Attrs)
	if it.Value.Type == snapshots.TypeText {
		lines := strings.Count(it.Value.Raw, "\n") + 1
		v = fmt.Sprintf("(text, %d lines, %d bytes)", lines, len(it.Value.Raw))
	}
	if it.Deadband != 0 {
		v += fmt.Sprintf(" (deadband %v)", it.Deadband)
	}
	return v
}

func attrText(attrs map[string]string) string {
	if len(attrs) == 0 {
		return ""
	}
	var ks []string
	for k := range attrs {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, k+"="+attrs[k])
	}
	return "  [" + strings.Join(parts, " ") + "]"
}

func provenanceText(p snapshots.Provenance) string {
	switch p.Source {
	case snapshots.SourceRead, "":
		return ""
	case snapshots.SourceCarried:
		return fmt.Sprintf("  (carried from %s: %s)", p.From, p.Reason)
	default:
		return fmt.Sprintf("  (%s: %s)", strings.ReplaceAll(string(p.Source), "_", " "), p.Reason)
	}
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" && p != "serial " && p != "firmware " {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
