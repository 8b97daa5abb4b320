// Package schedules computes maintenance windows: pure functions of time and
// the config. Nothing here reads a clock.
//
// A window opens at every time its cron expression gives in its time zone
// and stays open for its duration. Each device assigned to a window (by name
// or group) is checked at a stable offset into each occurrence: a hash of the
// device name picks a point in the first half of the window, so devices are
// spread out rather than all read at second 0, and the same device is read at
// the same point every night.
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

type window struct {
	cfg   config.Window
	sched cron.Schedule
	loc   *time.Location
}

// Plan is the windows of every device in one config.
type Plan struct {
	windows map[string]*window
	devices map[string][]*window // device -> its windows
}

// New builds the plan of a validated config.
func New(cfg *config.Config) (*Plan, error) {
	p := &Plan{windows: map[string]*window{}, devices: map[string][]*window{}}
	for _, w := range cfg.Windows {
		loc, err := time.LoadLocation(w.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("window %s: time_zone %q: %w", w.Name, w.TimeZone, err)
		}
		s, err := cron.ParseStandard(w.Cron)
		if err != nil {
			return nil, fmt.Errorf("window %s: cron %q: %w", w.Name, w.Cron, err)
		}
		if w.Duration <= 0 {
			return nil, fmt.Errorf("window %s: duration %s: want a positive duration", w.Name, w.Duration)
		}
		p.windows[w.Name] = &window{cfg: w, sched: s, loc: loc}
	}
	for _, d := range cfg.Devices {
		for _, w := range cfg.WindowsFor(d) {
			p.devices[d.Name] = append(p.devices[d.Name], p.windows[w.Name])
		}
	}
	return p, nil
}

// repeatedWallClock reports whether start's local wall-clock time already
// happened an hour earlier (the second pass through a fall-back hour).
func (w *window) repeatedWallClock(start time.Time) bool {
	const wall = "2006-01-02 15:04:05"
	return start.Add(-time.Hour).In(w.loc).Format(wall) == start.In(w.loc).Format(wall)
}

// next returns the first occurrence of w starting strictly after t.
// An "@every D" window is anchored to the Unix epoch (it opens at every
// multiple of D), so that its occurrences do not depend on when they are
// computed.
func (w *window) next(t time.Time) Occurrence {
	var s time.Time
	if every, ok := w.sched.(cron.ConstantDelaySchedule); ok && every.Delay > 0 {
		d := every.Delay
		s = time.Unix(0, 0).Add((t.Sub(time.Unix(0, 0))/d + 1) * d).In(w.loc)
	} else {
		s = w.sched.Next(t.In(w.loc))
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

// between lists w's occurrences starting in (from, to). In the fall-back
// hour, when the same wall-clock start comes twice, the window opens only
// the first time (cron would fire twice).
func (w *window) between(from, to time.Time) []Occurrence {
	var out []Occurrence
	for t := from; ; {
		o := w.next(t)
		if o.Start.IsZero() || !o.Start.Before(to) {
			return out
		}
		t = o.Start
		if w.repeatedWallClock(o.Start) {
			continue
		}
		out = append(out, o)
		if len(out) > 100000 {
			return out // a cron such as @every 1s over a long span: bounded
		}
	}
}

// Occurrences lists the device's occurrences starting in (from, to), in
// start order.
func (p *Plan) Occurrences(device string, from, to time.Time) []Occurrence {
	var out []Occurrence
	for _, w := range p.devices[device] {
		out = append(out, w.between(from, to)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
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

// CheckTimes returns when the device is checked in occ: at its offset, and
// for checks_per_window > 1 further checks spread evenly over the rest of
// the first half of the window.
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

// Gap is a day on which a window that otherwise opens every day did not
// open, because its start time fell into a daylight-saving gap (cron skips
// such times).
type Gap struct {
	Window string
	Day    string // YYYY-MM-DD in the window's time zone
	Reason string
}

// Gaps returns, for windows with a daily pattern (a fixed minute and hour,
// every day of month, month and week), the local days in [from, to) whose
// occurrence was skipped: the daemon raises "window missed" for them.
func (p *Plan) Gaps(device string, from, to time.Time) []Gap {
	var out []Gap
	for _, w := range p.devices[device] {
		spec, ok := w.sched.(*cron.SpecSchedule)
		if !ok || !daily(spec) {
			continue
		}
		fromL, toL := from.In(w.loc), to.In(w.loc)
		for day := time.Date(fromL.Year(), fromL.Month(), fromL.Day(), 0, 0, 0, 0, w.loc); day.Before(toL); day = day.AddDate(0, 0, 1) {
			next := day.AddDate(0, 0, 1)
			if !next.Before(toL) && !next.Equal(toL) {
				continue // the day is not over yet: its window may still open
			}
			if len(w.between(day.Add(-time.Nanosecond), next)) == 0 {
				out = append(out, Gap{Window: w.cfg.Name, Day: day.Format("2006-01-02"),
					Reason: fmt.Sprintf("window %s did not open on %s: its start (%s, %s) fell into a daylight-saving gap", w.cfg.Name, day.Format("2006-01-02"), w.cfg.Cron, w.loc)})
			}
		}
	}
	return out
}

// daily reports whether a cron spec fires at one fixed time every day.
func daily(s *cron.SpecSchedule) bool {
	one := func(bits uint64) bool { return bits&(bits-1) == 0 }
	star := uint64(1) << 63
	return one(s.Minute&^star) && one(s.Hour&^star) && s.Dom&star != 0 && s.Month&star != 0 && s.Dow&star != 0
}

// Row is one line of `plcwatch windows`.
type Row struct {
	Device     string    `json:"device"`
	Window     string    `json:"window"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	FirstCheck time.Time `json:"first_check"`
}

// Upcoming lists each device's next n occurrences after now.
func (p *Plan) Upcoming(cfg *config.Config, now time.Time, n int) []Row {
	var rows []Row
	for _, d := range cfg.Devices {
		t := now
		for i := 0; i < n; i++ {
			o, ok := p.Next(d.Name, t)
			if !ok {
				break
			}
			rows = append(rows, Row{Device: d.Name, Window: o.Window, Start: o.Start, End: o.End, FirstCheck: p.CheckTimes(d.Name, o)[0]})
			t = o.Start
		}
	}
	return rows
}
