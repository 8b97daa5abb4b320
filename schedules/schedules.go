// Package schedules computes maintenance windows: pure functions of time and
// the config. Nothing here reads a clock.
//
// A window opens at every time its cron expression gives in its time zone
// and stays open for its duration. Each device assigned to a window (by name
// or group) is checked at a stable offset into each occurrence: an FNV-1a
// hash of the device and window names picks a point in the first half of the
// occurrence (Offset), so devices are spread out rather than all read at
// second 0, the same device is read at the same point every night, and the
// second half is left for the read itself, its retries and any further
// checks (checks_per_window). StartTimes lists the devices of an occurrence
// by start; CheckTimes gives one device's checks.
//
// Cron expressions are parsed with cron.ParseStandard (five fields or a
// descriptor such as "@daily" or "@every 10s"; a "CRON_TZ=Zone " prefix may
// stand in for time_zone). Durations are elapsed time: a 2h window is two
// hours long even across a daylight-saving change.
//
// Missed windows: Missed lists occurrences that closed without a check and
// Gaps lists starts that never happened because of the clocks; the daemon
// raises "window missed" for both, so no window vanishes silently.
//
// Daylight saving, exactly:
//   - Spring forward: a start whose local time does not exist that day (02:30
//     in Europe/Berlin on 2026-03-29, in America/New_York on 2026-03-08) is
//     skipped, as cron does. Gaps lists each such skipped start, so the
//     daemon raises "window missed".
//   - Fall back: a start whose local time comes twice (02:30 in Berlin on
//     2026-10-25, 01:30 in New York on 2026-11-01) opens the window once, at
//     the first pass (the earlier offset); cron alone would fire twice.
//   - "@every D" windows are anchored to the Unix epoch and ignore the zone.
package schedules

import (
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/plcwatch/plcwatch/config"
)

// Occurrence is one opening of one window.
type Occurrence struct {
	Window string
	Start  time.Time
	End    time.Time
}

// Contains reports whether t is inside the occurrence: Start <= t < End.
func (o Occurrence) Contains(t time.Time) bool { return !t.Before(o.Start) && t.Before(o.End) }

// Duration is the occurrence's elapsed length.
func (o Occurrence) Duration() time.Duration { return o.End.Sub(o.Start) }

type window struct {
	cfg   config.Window
	sched cron.Schedule
	loc   *time.Location
}

// Plan is the windows of every device in one config. It is immutable once
// built and safe for concurrent use.
type Plan struct {
	windows map[string]*window
	devices map[string][]*window // device -> its windows
	members map[string][]string  // window -> its devices, in config order
}

// New builds the plan of a validated config. A cron expression may name its
// zone with a "CRON_TZ=" (or "TZ=") prefix instead of time_zone; giving both,
// different, is an error.
func New(cfg *config.Config) (*Plan, error) {
	p := &Plan{windows: map[string]*window{}, devices: map[string][]*window{}, members: map[string][]string{}}
	for _, w := range cfg.Windows {
		zone := w.TimeZone
		if zone == "" {
			zone = "Local"
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return nil, fmt.Errorf("window %s: time_zone %q: %w", w.Name, w.TimeZone, err)
		}
		s, err := cron.ParseStandard(w.Cron)
		if err != nil {
			return nil, fmt.Errorf("window %s: cron %q: %w", w.Name, w.Cron, err)
		}
		if spec, ok := s.(*cron.SpecSchedule); ok && spec.Location != time.Local {
			if zone != "Local" && zone != spec.Location.String() {
				return nil, fmt.Errorf("window %s: cron %q names zone %s but time_zone is %s: give the zone once", w.Name, w.Cron, spec.Location, zone)
			}
			loc = spec.Location
		}
		if w.Duration <= 0 {
			return nil, fmt.Errorf("window %s: duration %s: want a positive duration", w.Name, w.Duration)
		}
		p.windows[w.Name] = &window{cfg: w, sched: s, loc: loc}
	}
	for _, d := range cfg.Devices {
		for _, w := range cfg.WindowsFor(d) {
			p.devices[d.Name] = append(p.devices[d.Name], p.windows[w.Name])
			p.members[w.Name] = append(p.members[w.Name], d.Name)
		}
	}
	return p, nil
}

// repeatedWallClock reports whether start's local wall-clock time already
// happened earlier that day (the second pass through a fall-back hour): the
// wall clock read with the offset in force a day earlier names an earlier
// instant that shows the same wall clock.
func (w *window) repeatedWallClock(start time.Time) bool {
	_, off := start.Zone()
	_, before := start.Add(-25 * time.Hour).In(w.loc).Zone()
	if before <= off {
		return false
	}
	const wall = "2006-01-02 15:04:05"
	return start.Add(-time.Duration(before-off)*time.Second).In(w.loc).Format(wall) == start.In(w.loc).Format(wall)
}

// next returns the first occurrence of w starting strictly after t (zero
// Start when cron finds none within five years).
//
// An "@every D" window is anchored to the Unix epoch: it opens at every
// whole multiple of D since 1970-01-01T00:00:00Z, so its occurrences do not
// depend on when they are computed, and daylight saving does not touch it.
//
// A cron expression is read on the wall clock of the window's zone, and a
// wall-clock start that comes round a second time in a fall-back hour is
// skipped: the window opens once (cron alone would fire twice).
func (w *window) next(t time.Time) Occurrence {
	var s time.Time
	if every, ok := w.sched.(cron.ConstantDelaySchedule); ok && every.Delay > 0 {
		d := int64(every.Delay / time.Second) // cron rounds Every to whole seconds, at least 1
		u := t.Unix()
		k := u / d
		if u%d < 0 {
			k-- // floor for instants before 1970
		}
		s = time.Unix((k+1)*d, 0).In(w.loc)
	} else {
		s = w.sched.Next(t.In(w.loc))
		for !s.IsZero() && w.repeatedWallClock(s) {
			s = w.sched.Next(s)
		}
	}
	return Occurrence{Window: w.cfg.Name, Start: s, End: s.Add(w.cfg.Duration.D())}
}

// Next returns the device's next occurrence starting after t (false when
// the device is in no window).
func (p *Plan) Next(device string, after time.Time) (Occurrence, bool) {
	var best Occurrence
	found := false
	for _, w := range p.devices[device] {
		o := w.next(after)
		if o.Start.IsZero() {
			continue
		}
		if !found || o.Start.Before(best.Start) {
			best, found = o, true
		}
	}
	return best, found
}

// InWindow returns the occurrence t falls in ([Start, End)), including one
// that opened before t (a 2h window from 23:00 the day before, say). When
// several overlap, the one that ends last wins.
func (p *Plan) InWindow(device string, t time.Time) (Occurrence, bool) {
	var best Occurrence
	found := false
	for _, w := range p.devices[device] {
		d := w.cfg.Duration.D()
		// The occurrence containing t started in (t-d, t].
		for _, o := range w.between(t.Add(-d), t.Add(time.Nanosecond)) {
			if !t.Before(o.Start) && t.Before(o.End) && (!found || o.End.After(best.End)) {
				best, found = o, true
			}
		}
	}
	return best, found
}

// between lists w's occurrences starting in (from, to), at most
// maxOccurrences of them.
func (w *window) between(from, to time.Time) []Occurrence {
	var out []Occurrence
	for t := from; len(out) < maxOccurrences; {
		o := w.next(t)
		if o.Start.IsZero() || !o.Start.Before(to) {
			break
		}
		out = append(out, o)
		t = o.Start
	}
	return out
}

// maxOccurrences bounds what one call lists per window, so that a cron such
// as "@every 1s" over a long span cannot exhaust memory.
const maxOccurrences = 100000

// Occurrences lists the device's occurrences starting in (from, to) (from
// itself excluded), in start order, at most 100000 per window.
func (p *Plan) Occurrences(device string, from, to time.Time) []Occurrence {
	var out []Occurrence
	for _, w := range p.devices[device] {
		out = append(out, w.between(from, to)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Offset is the device's stable offset into a window of duration d: an FNV
// hash of the device and window names mapped into the first half of d.
func Offset(device, window string, d time.Duration) time.Duration {
	if d <= time.Second {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(device))
	h.Write([]byte{0})
	h.Write([]byte(window))
	spread := d / 2
	return time.Duration(h.Sum64() % uint64(spread))
}

// CheckTimes returns when the device is checked in occ, in order: first at
// Start + Offset(device, window, End-Start), which lies in the first half of
// the occurrence; for checks_per_window n > 1, n-1 further checks evenly
// spaced after it, the last halfway between the first check and End. All
// lie in [Start, End). It returns nil for a window the plan does not know.
func (p *Plan) CheckTimes(device string, occ Occurrence) []time.Time {
	w := p.windows[occ.Window]
	if w == nil {
		return nil
	}
	d := occ.End.Sub(occ.Start)
	first := occ.Start.Add(Offset(device, occ.Window, d))
	n := w.cfg.ChecksPerWindow
	if n < 1 {
		n = 1
	}
	out := []time.Time{first}
	if n > 1 {
		step := (occ.End.Sub(first) / 2) / time.Duration(n-1)
		for i := 1; i < n; i++ {
			out = append(out, first.Add(time.Duration(i)*step))
		}
	}
	return out
}

// DeviceStart is when one device is first checked in an occurrence.
type DeviceStart struct {
	Device string
	// At is Start plus Offset.
	At time.Time
	// Offset is the device's stable offset into the occurrence.
	Offset time.Duration
}

// StartTimes returns the first check of every device assigned to occ's
// window (by name or group), earliest first (ties by device name). It
// returns nil for a window the plan does not know.
func (p *Plan) StartTimes(occ Occurrence) []DeviceStart {
	var out []DeviceStart
	d := occ.Duration()
	for _, dev := range p.members[occ.Window] {
		off := Offset(dev, occ.Window, d)
		out = append(out, DeviceStart{Device: dev, At: occ.Start.Add(off), Offset: off})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Device < out[j].Device
	})
	return out
}

// Devices returns the devices assigned to the named window, in config
// order.
func (p *Plan) Devices(window string) []string {
	return append([]string(nil), p.members[window]...)
}

// Gap is a start time a window's cron expression names that did not occur
// because it fell into a daylight-saving gap (the hour the clocks skip in
// spring): cron skips such times, so the window did not open.
type Gap struct {
	Window string
	// Day is the local date of the skipped start, YYYY-MM-DD in the window's
	// time zone.
	Day string
	// Wall is the skipped local start, "2006-01-02 15:04:05".
	Wall string
	// At is the instant the window would have opened had the clocks not
	// changed: Wall read with the UTC offset in force before the change
	// (03:30 CEST for a skipped 02:30 in Europe/Berlin).
	At time.Time
	// Reason is a sentence for the "window missed" alert.
	Reason string
}

// Gaps returns the device's skipped window starts whose At falls in
// [from, to), in time order then config order: every start a cron
// expression names on a spring-forward day (daily, weekly on the Sunday the
// clocks change, or any other pattern) that does not exist on the local
// clock. The daemon raises "window missed" for each. "@every" windows never
// have gaps. A start in the repeated hour of a fall-back day is not a gap:
// the window opens at its first pass.
func (p *Plan) Gaps(device string, from, to time.Time) []Gap {
	var out []Gap
	for _, w := range p.devices[device] {
		out = append(out, w.gaps(from, to)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

func (w *window) gaps(from, to time.Time) []Gap {
	spec, ok := w.sched.(*cron.SpecSchedule)
	if !ok || !from.Before(to) {
		return nil
	}
	// The same expression read on a clock without daylight saving gives
	// every wall-clock start.
	wall := *spec
	wall.Location = time.UTC
	var out []Gap
	f := from.In(w.loc)
	// A gap's At lies at most a day after its local midnight: start a day
	// early so that none is missed at the edge of the range.
	for day := time.Date(f.Year(), f.Month(), f.Day()-1, 0, 0, 0, 0, w.loc); day.Before(to); {
		y, m, d := day.Date()
		next := time.Date(y, m, d+1, 0, 0, 0, 0, w.loc)
		_, off0 := day.Zone()
		_, off1 := next.Zone()
		if off1 > off0 { // clocks went forward this day: some wall times do not exist
			dayUTC := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
			for t := wall.Next(dayUTC.Add(-time.Second)); !t.IsZero() && t.Before(dayUTC.AddDate(0, 0, 1)); t = wall.Next(t) {
				local := time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, w.loc)
				if local.Hour() == t.Hour() && local.Minute() == t.Minute() && local.Day() == d {
					continue // this wall time exists
				}
				at := time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.FixedZone("", off0)).In(w.loc)
				if at.Before(from) || !at.Before(to) {
					continue
				}
				ws := t.Format("2006-01-02 15:04:05")
				out = append(out, Gap{Window: w.cfg.Name, Day: t.Format("2006-01-02"), Wall: ws, At: at,
					Reason: fmt.Sprintf("window %s did not open at %s %s: that local time does not exist (daylight-saving change; cron %q)", w.cfg.Name, ws, w.loc, w.cfg.Cron)})
			}
		}
		day = next
	}
	return out
}

// Missed returns the device's occurrences that started at or after from,
// ended at or before now, and for which ran reports false: windows that
// closed without a check. With Gaps it is what the daemon needs to raise
// "window missed".
func (p *Plan) Missed(device string, ran func(Occurrence) bool, from, now time.Time) []Occurrence {
	var out []Occurrence
	for _, o := range p.Occurrences(device, from.Add(-time.Nanosecond), now) {
		if o.Start.Before(from) || o.End.After(now) || ran(o) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// Row is one line of `plcwatch windows`. Start, End and the checks are in
// the window's time zone; render .UTC() for the UTC column.
type Row struct {
	Device     string    `json:"device"`
	Window     string    `json:"window"`
	TimeZone   string    `json:"time_zone"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	FirstCheck time.Time `json:"first_check"`
	// Offset is FirstCheck - Start, the device's stable offset.
	Offset time.Duration `json:"offset_ns"`
	// Checks are every check of the device in the occurrence
	// (checks_per_window of them), the first being FirstCheck.
	Checks []time.Time `json:"checks"`
}

// Upcoming lists each device's next n occurrences after now (strictly
// after: an occurrence open at now is not listed), devices in config order,
// each device's rows in start order. A device in no window has no rows.
func (p *Plan) Upcoming(cfg *config.Config, now time.Time, n int) []Row {
	var rows []Row
	for _, d := range cfg.Devices {
		// Each window's next n, merged: two windows opening at one
		// instant are both listed.
		var occs []Occurrence
		for _, w := range p.devices[d.Name] {
			t := now
			for i := 0; i < n; i++ {
				o := w.next(t)
				if o.Start.IsZero() {
					break
				}
				occs = append(occs, o)
				t = o.Start
			}
		}
		sort.SliceStable(occs, func(i, j int) bool { return occs[i].Start.Before(occs[j].Start) })
		if len(occs) > n {
			occs = occs[:n]
		}
		for _, o := range occs {
			checks := p.CheckTimes(d.Name, o)
			rows = append(rows, Row{Device: d.Name, Window: o.Window, TimeZone: p.windows[o.Window].loc.String(),
				Start: o.Start, End: o.End, FirstCheck: checks[0], Offset: checks[0].Sub(o.Start), Checks: checks})
		}
	}
	return rows
}
