package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
)

// writeJSON prints v as indented JSON in the one schema style every
// command's --json output keeps: lists are [] (never null), durations are
// strings such as "1.5s" (a stored "x_ns" count is printed as "x"), times
// are RFC 3339 with their zone (UTC). It may fill nil lists of v in place.
func writeJSON(w io.Writer, v any) error {
	rv := reflect.ValueOf(v)
	if rv.IsValid() {
		c := reflect.New(rv.Type()).Elem()
		c.Set(rv)
		fillNil(c)
		v = c.Interface()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	out := nsField().ReplaceAllFunc(buf.Bytes(), func(m []byte) []byte {
		g := nsField().FindSubmatch(m)
		n, err := strconv.ParseInt(string(g[3]), 10, 64)
		if err != nil {
			return m
		}
		return fmt.Appendf(nil, "%s%q: %q%s", g[1], g[2], time.Duration(n).String(), g[4])
	})
	_, err := w.Write(out)
	return err
}

// nsField matches an indented JSON member "name_ns": 123 on a line of its
// own (never inside a string, where the quotes would be escaped).
var nsField = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^(\s*)"(\w+)_ns": (-?\d+)(,?)$`) })

// fillNil replaces nil slices (but []byte) and nil maps reachable through
// exported fields, map values, interfaces and pointers with empty ones, so
// that they encode as [] and {} rather than null.
func fillNil(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			fillNil(v.Elem())
		}
	case reflect.Interface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		e := v.Elem()
		c := reflect.New(e.Type()).Elem()
		c.Set(e)
		fillNil(c)
		v.Set(c)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				fillNil(f)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		for i := 0; i < v.Len(); i++ {
			fillNil(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			return
		}
		for _, k := range v.MapKeys() {
			c := reflect.New(v.Type().Elem()).Elem()
			c.Set(v.MapIndex(k))
			fillNil(c)
			v.SetMapIndex(k, c)
		}
	}
}

// timeText is how every command's text output shows a time: RFC 3339 in
// UTC, the zone the store records (2026-05-01T02:00:00Z).
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// naturalItems returns a copy of items in natural path order (DB2 before
// DB10), for listings; the snapshot keeps its canonical order.
func naturalItems(items []snapshots.Item) []snapshots.Item {
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b snapshots.Item) int {
		switch {
		case snapshots.NaturalLess(a.Path, b.Path):
			return -1
		case snapshots.NaturalLess(b.Path, a.Path):
			return 1
		}
		return 0
	})
	return out
}

// renderSnapshot prints a snapshot for people: header, then items grouped by
// kind, each kind's items in natural order (DB2 before DB10). Output is
// buffered (one write per 64 KiB, not one per item) and the item lines are
// built without fmt; the error is the first write's.
func renderSnapshot(w io.Writer, s *snapshots.Snapshot) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	renderHeader(bw, s)
	byKind := map[snapshots.Kind][]snapshots.Item{}
	for _, it := range naturalItems(s.Items) {
		byKind[it.Kind] = append(byKind[it.Kind], it)
	}
	for _, k := range snapshots.Kinds {
		items := byKind[k]
		if len(items) == 0 {
			continue
		}
		fmt.Fprintf(bw, "\n%s (%d)\n", k, len(items))
		for _, it := range items {
			bw.WriteString("  ")
			bw.WriteString(it.Path)
			bw.WriteString(" = ")
			bw.WriteString(valueText(it))
			bw.WriteString(attrText(it.Attrs))
			bw.WriteString(provenanceText(it.Provenance))
			bw.WriteByte('\n')
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the snapshot: %w", err)
	}
	return nil
}

// renderSummary prints a snapshot's header and its item counts by kind,
// with the command that prints it whole: for snapshots of hundreds of items.
func renderSummary(w io.Writer, s *snapshots.Snapshot) {
	renderHeader(w, s)
	counts := map[snapshots.Kind]int{}
	for _, it := range s.Items {
		counts[it.Kind]++
	}
	var parts []string
	for _, k := range snapshots.Kinds {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	fmt.Fprintf(w, "  items     %d: %s\n", len(s.Items), strings.Join(parts, ", "))
	fmt.Fprintf(w, "  whole     plcwatch show %s\n", s.ID)
}

func renderHeader(w io.Writer, s *snapshots.Snapshot) {
	fmt.Fprintf(w, "snapshot %s  (digest %s)\n", s.ID, s.Digest)
	fmt.Fprintf(w, "  device    %s (%s %s)\n", s.Device, s.Protocol, s.Endpoint)
	fmt.Fprintf(w, "  taken     %s\n", timeText(s.TakenAt))
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
