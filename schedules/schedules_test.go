package schedules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/plcwatch/plcwatch/config"
)

func plan(t *testing.T, windows string, devices ...string) (*Plan, *config.Config) {
	t.Helper()
	y := "devices:\n"
	for _, d := range devices {
		y += fmt.Sprintf("  - {name: %s, protocol: s7, endpoint: 127.0.0.1:1, groups: [g]}\n", d)
	}
	cfg, err := config.Parse("t.yaml", []byte(y+"windows:\n"+windows))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, cfg
}

func at(t *testing.T, zone, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	// An explicit offset ("2026-10-25 02:30 +0100") picks one pass of a
	// repeated hour; without one, time.Date does not say which it takes.
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02 15:04 -0700", "2006-01-02 15:04:05 -0700"} {
		if v, err := time.ParseInLocation(layout, s, loc); err == nil {
			return v
		}
	}
	t.Fatalf("bad time %q", s)
	return time.Time{}
}

func TestInWindow(t *testing.T) {
	p, _ := plan(t, "  - {name: night, cron: \"0 23 * * *\", duration: 2h, time_zone: Europe/Berlin, groups: [g]}\n", "d1")
	tests := []struct {
		name string
		t    string
		in   bool
		want string // occurrence start
	}{
		{"before", "2026-06-10 22:59", false, ""},
		{"at start", "2026-06-10 23:00", true, "2026-06-10 23:00"},
		{"after midnight, same occurrence", "2026-06-11 00:30", true, "2026-06-10 23:00"},
		{"at end (exclusive)", "2026-06-11 01:00", false, ""},
		{"midday", "2026-06-11 12:00", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := p.InWindow("d1", at(t, "Europe/Berlin", tc.t))
			if ok != tc.in {
				t.Fatalf("InWindow = %v, want %v", ok, tc.in)
			}
			if ok && !o.Start.Equal(at(t, "Europe/Berlin", tc.want)) {
				t.Errorf("occurrence starts %v, want %s", o.Start, tc.want)
			}
		})
	}
	if _, ok := p.InWindow("stranger", at(t, "Europe/Berlin", "2026-06-10 23:30")); ok {
		t.Error("a device in no window is in a window")
	}
}

func TestNextAndGroups(t *testing.T) {
	p, _ := plan(t, "  - {name: a, cron: \"0 2 * * *\", duration: 1h, time_zone: UTC, devices: [d1]}\n  - {name: b, cron: \"0 1 * * 0\", duration: 1h, time_zone: UTC, groups: [g]}\n", "d1", "d2")
	o, ok := p.Next("d1", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)) // a Sunday
	if !ok || o.Window != "b" || o.Start.Hour() != 1 {
		t.Errorf("d1 next = %+v, want window b at 01:00 (Sunday)", o)
	}
	o, ok = p.Next("d2", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	if !ok || o.Window != "b" || o.Start.Day() != 6 {
		t.Errorf("d2 next = %+v, want window b on Sunday 6 December", o)
	}
}

func TestOffsetsSpreadAndStable(t *testing.T) {
	var devs []string
	for i := 0; i < 20; i++ {
		devs = append(devs, fmt.Sprintf("plc%02d", i))
	}
	p, _ := plan(t, "  - {name: n, cron: \"0 2 * * *\", duration: 2h, time_zone: UTC, groups: [g], checks_per_window: 2}\n", devs...)
	occ, _ := p.Next("plc00", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	seen := map[time.Time]bool{}
	for _, d := range devs {
		ts := p.CheckTimes(d, occ)
		if len(ts) != 2 || !ts[1].After(ts[0]) || !ts[1].Before(occ.End) {
			t.Fatalf("%s check times %v", d, ts)
		}
		if ts[0].Before(occ.Start) || !ts[0].Before(occ.Start.Add(time.Hour)) {
			t.Errorf("%s first check %v outside the first half of the window", d, ts[0])
		}
		seen[ts[0]] = true
		if again := p.CheckTimes(d, occ); !again[0].Equal(ts[0]) {
			t.Errorf("%s offset is not stable", d)
		}
	}
	if len(seen) < 18 {
		t.Errorf("20 devices start at only %d distinct times", len(seen))
	}
}

// TestDST: cron skips a start time in the spring-forward gap; Gaps reports
// the day so the daemon raises "window missed". In the fall-back hour the
// window opens once.
func TestDST(t *testing.T) {
	tests := []struct {
		name, zone, cron, from, to string
		opens                      int
		gaps                       []string
	}{
		{"Berlin spring forward skips 02:30", "Europe/Berlin", "30 2 * * *", "2026-03-28 00:00", "2026-03-31 00:00", 2, []string{"2026-03-29"}},
		{"New York spring forward skips 02:30", "America/New_York", "30 2 * * *", "2026-03-07 00:00", "2026-03-10 00:00", 2, []string{"2026-03-08"}},
		{"Berlin fall back opens once at 02:30", "Europe/Berlin", "30 2 * * *", "2026-10-24 00:00", "2026-10-27 00:00", 3, nil},
		{"New York fall back opens once at 01:30", "America/New_York", "30 1 * * *", "2026-10-31 00:00", "2026-11-03 00:00", 3, nil},
		{"outside the gap nothing is missed", "Europe/Berlin", "30 3 * * *", "2026-03-28 00:00", "2026-03-31 00:00", 3, nil},
		{"Berlin weekly Sunday 02:30 skipped on the change day", "Europe/Berlin", "30 2 * * 0", "2026-03-22 00:00", "2026-04-06 00:00", 2, []string{"2026-03-29"}},
		{"New York weekly Sunday 02:00 skipped on the change day", "America/New_York", "0 2 * * sun", "2026-03-01 00:00", "2026-03-16 00:00", 2, []string{"2026-03-08"}},
		{"New York every 15 minutes from 02:00: four starts skipped", "America/New_York", "*/15 2 * * *", "2026-03-07 00:00", "2026-03-10 00:00", 8, []string{"2026-03-08", "2026-03-08", "2026-03-08", "2026-03-08"}},
		{"Berlin 02:00 daily, start at the very gap", "Europe/Berlin", "0 2 * * *", "2026-03-28 00:00", "2026-03-31 00:00", 2, []string{"2026-03-29"}},
		{"Berlin fall back every 15 minutes in the repeated hour: once each", "Europe/Berlin", "*/15 2 * * *", "2026-10-24 00:00", "2026-10-27 00:00", 12, nil},
		{"Berlin @every 10m across fall back: nothing skipped", "Europe/Berlin", "@every 10m", "2026-10-25 00:00", "2026-10-25 06:00", 41, nil},
		{"New York @every 10m across spring forward", "America/New_York", "@every 10m", "2026-03-08 00:00", "2026-03-08 06:00", 29, nil},
		{"a gap outside the range is not reported", "Europe/Berlin", "30 2 * * *", "2026-03-29 04:00", "2026-03-31 00:00", 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := plan(t, fmt.Sprintf("  - {name: w, cron: %q, duration: 1h, time_zone: %s, groups: [g]}\n", tc.cron, tc.zone), "d1")
			from, to := at(t, tc.zone, tc.from), at(t, tc.zone, tc.to)
			if got := len(p.Occurrences("d1", from, to)); got != tc.opens {
				t.Errorf("%d occurrences, want %d: %v", got, tc.opens, p.Occurrences("d1", from, to))
			}
			gaps := p.Gaps("d1", from, to)
			if len(gaps) != len(tc.gaps) {
				t.Fatalf("gaps = %+v, want %v", gaps, tc.gaps)
			}
			for i, g := range gaps {
				if g.Day != tc.gaps[i] {
					t.Errorf("gap %d on %s, want %s", i, g.Day, tc.gaps[i])
				}
			}
		})
	}
}

func TestUpcoming(t *testing.T) {
	p, cfg := plan(t, "  - {name: n, cron: \"@every 10m\", duration: 2m, time_zone: UTC, groups: [g]}\n"+
		"  - {name: b, cron: \"0 23 * * *\", duration: 2h, time_zone: America/New_York, devices: [d2], checks_per_window: 2}\n", "d1", "d2")
	now := time.Date(2026, 1, 1, 3, 55, 0, 0, time.UTC) // 22:55 EST on 31 December
	rows := p.Upcoming(cfg, now, 3)
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6: %+v", len(rows), rows)
	}
	want := []struct {
		device, window, zone, startUTC string
		checks                         int
	}{
		{"d1", "n", "UTC", "2026-01-01 04:00", 1},
		{"d1", "n", "UTC", "2026-01-01 04:10", 1},
		{"d1", "n", "UTC", "2026-01-01 04:20", 1},
		{"d2", "n", "UTC", "2026-01-01 04:00", 1},
		{"d2", "b", "America/New_York", "2026-01-01 04:00", 2}, // 23:00 EST, same instant: both listed
		{"d2", "n", "UTC", "2026-01-01 04:10", 1},
	}
	for i, r := range rows {
		w := want[i]
		if r.Device != w.device || r.Window != w.window || r.TimeZone != w.zone || r.Start.UTC().Format("2006-01-02 15:04") != w.startUTC {
			t.Errorf("row %d = %s %s %s %v, want %s %s %s %s", i, r.Device, r.Window, r.TimeZone, r.Start.UTC(), w.device, w.window, w.zone, w.startUTC)
		}
		if r.Start.Location().String() != w.zone {
			t.Errorf("row %d start in %v, want the window's zone %s", i, r.Start.Location(), w.zone)
		}
		if r.FirstCheck.Before(r.Start) || !r.FirstCheck.Before(r.End) || r.Offset != r.FirstCheck.Sub(r.Start) {
			t.Errorf("row %d %+v: first check outside the window or offset inconsistent", i, r)
		}
		if r.Offset != Offset(r.Device, r.Window, r.End.Sub(r.Start)) {
			t.Errorf("row %d: offset %v is not the device's stable offset", i, r.Offset)
		}
		if len(r.Checks) != w.checks || !r.Checks[0].Equal(r.FirstCheck) {
			t.Errorf("row %d: checks %v, want %d starting at the first check", i, r.Checks, w.checks)
		}
	}
	if rows := p.Upcoming(cfg, now, 0); len(rows) != 0 {
		t.Errorf("n = 0 gave %d rows", len(rows))
	}
}

// TestStartTimes: every device of the window, by name or by group, starts
// at its own offset, in order, and devices of other windows are not listed.
func TestStartTimes(t *testing.T) {
	var devs []string
	for i := 0; i < 12; i++ {
		devs = append(devs, fmt.Sprintf("rtu-%d", i))
	}
	y := "devices:\n"
	for i, d := range devs {
		g := "east"
		if i%3 == 0 {
			g = "west"
		}
		y += fmt.Sprintf("  - {name: %s, protocol: s7, endpoint: 127.0.0.1:1, groups: [%s]}\n", d, g)
	}
	y += "windows:\n" +
		"  - {name: east-night, cron: \"0 1 * * *\", duration: 90m, time_zone: Europe/Berlin, groups: [east], devices: [rtu-0]}\n" +
		"  - {name: west-night, cron: \"0 2 * * *\", duration: 1h, time_zone: Europe/Berlin, groups: [west]}\n"
	cfg, err := config.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, window string
		devices      int
	}{
		{"group east plus rtu-0 by name", "east-night", 9},
		{"group west", "west-night", 4},
		{"unknown window", "nowhere", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := at(t, "Europe/Berlin", "2026-03-29 01:00") // the spring-forward night
			occ := Occurrence{Window: tc.window, Start: start, End: start.Add(90 * time.Minute)}
			got := p.StartTimes(occ)
			if len(got) != tc.devices || len(p.Devices(tc.window)) != tc.devices {
				t.Fatalf("%d starts, %d devices, want %d: %+v", len(got), len(p.Devices(tc.window)), tc.devices, got)
			}
			seen := map[string]bool{}
			for i, s := range got {
				if seen[s.Device] {
					t.Errorf("%s listed twice", s.Device)
				}
				seen[s.Device] = true
				if !s.At.Equal(occ.Start.Add(s.Offset)) || s.Offset < 0 || s.Offset >= occ.Duration()/2 {
					t.Errorf("%s at %v, offset %v: want Start+offset, offset in [0, %v)", s.Device, s.At, s.Offset, occ.Duration()/2)
				}
				if first := p.CheckTimes(s.Device, occ); !first[0].Equal(s.At) {
					t.Errorf("%s starts at %v, but its first check is %v", s.Device, s.At, first[0])
				}
				if i > 0 && s.At.Before(got[i-1].At) {
					t.Errorf("not in start order: %v before %v", got[i-1].At, s.At)
				}
			}
			if tc.devices > 1 {
				if spread := got[len(got)-1].At.Sub(got[0].At); spread < occ.Duration()/8 {
					t.Errorf("%d devices start within %v of each other: not spread", tc.devices, spread)
				}
			}
		})
	}
}

func TestNext(t *testing.T) {
	two := "  - {name: a, cron: \"0 2 * * *\", duration: 1h, time_zone: UTC, devices: [d1]}\n" +
		"  - {name: b, cron: \"0 1 * * 0\", duration: 1h, time_zone: UTC, groups: [g]}\n"
	tests := []struct {
		name, windows, device, zone, after string
		ok                                 bool
		window, start                      string // start in zone
	}{
		{"two windows: the earlier wins", two, "d1", "UTC", "2026-11-29 00:00", true, "b", "2026-11-29 01:00"},
		{"two windows: the daily one on a weekday", two, "d1", "UTC", "2026-11-30 00:00", true, "a", "2026-11-30 02:00"},
		{"strictly after: a start at after is not next", two, "d1", "UTC", "2026-11-30 02:00", true, "a", "2026-12-01 02:00"},
		{"group only: the weekly window", two, "d2", "UTC", "2026-11-30 00:00", true, "b", "2026-12-06 01:00"},
		{"unknown device", two, "nobody", "UTC", "2026-11-30 00:00", false, "", ""},
		{"Berlin fall back: the second 02:30 is not an occurrence",
			"  - {name: n, cron: \"30 2 * * *\", duration: 1h, time_zone: Europe/Berlin, groups: [g]}\n",
			"d1", "Europe/Berlin", "2026-10-25 02:10 +0100", true, "n", "2026-10-26 02:30"},
		{"Berlin fall back: the first 02:30 is",
			"  - {name: n, cron: \"30 2 * * *\", duration: 1h, time_zone: Europe/Berlin, groups: [g]}\n",
			"d1", "Europe/Berlin", "2026-10-25 01:10", true, "n", "2026-10-25 02:30 +0200"},
		{"New York spring forward: next day",
			"  - {name: n, cron: \"30 2 * * *\", duration: 1h, time_zone: America/New_York, groups: [g]}\n",
			"d1", "America/New_York", "2026-03-07 03:00", true, "n", "2026-03-09 02:30"},
		{"@every anchored to the epoch",
			"  - {name: e, cron: \"@every 10s\", duration: 4s, time_zone: Europe/Berlin, groups: [g]}\n",
			"d1", "UTC", "2026-06-01 12:00", true, "e", "2026-06-01 12:00:10"},
		{"CRON_TZ names the zone when time_zone is not given",
			"  - {name: z, cron: \"CRON_TZ=America/New_York 30 2 * * *\", duration: 1h, groups: [g]}\n",
			"d1", "America/New_York", "2026-03-07 03:00", true, "z", "2026-03-09 02:30"},
		{"CRON_TZ and the same time_zone",
			"  - {name: z, cron: \"TZ=Europe/Berlin 0 2 * * *\", duration: 1h, time_zone: Europe/Berlin, groups: [g]}\n",
			"d1", "Europe/Berlin", "2026-06-01 03:00", true, "z", "2026-06-02 02:00"},
		{"@every before 1970",
			"  - {name: e, cron: \"@every 1h\", duration: 4s, time_zone: UTC, groups: [g]}\n",
			"d1", "UTC", "1969-12-31 22:30", true, "e", "1969-12-31 23:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := plan(t, tc.windows, "d1", "d2")
			o, ok := p.Next(tc.device, at(t, tc.zone, tc.after))
			if ok != tc.ok {
				t.Fatalf("Next ok = %v, want %v (%+v)", ok, tc.ok, o)
			}
			if !ok {
				return
			}
			if o.Window != tc.window || !o.Start.Equal(at(t, tc.zone, tc.start)) {
				t.Errorf("Next = %s at %v, want %s at %s", o.Window, o.Start, tc.window, tc.start)
			}
			if !o.Start.After(at(t, tc.zone, tc.after)) {
				t.Errorf("Next %v is not after %s", o.Start, tc.after)
			}
		})
	}
}

// TestInWindowAcrossDST: durations are elapsed time, and a window spanning
// midnight and a clock change contains the instants it should.
func TestInWindowAcrossDST(t *testing.T) {
	tests := []struct {
		name, zone, cron, dur, t string
		in                       bool
		start, end               string // local wall clock, with an offset where ambiguous
	}{
		{"Berlin 23:00 for 4h over spring forward ends 04:00 CEST", "Europe/Berlin", "0 23 * * *", "4h", "2026-03-29 03:30", true, "2026-03-28 23:00", "2026-03-29 04:00"},
		{"... and is over at 04:00", "Europe/Berlin", "0 23 * * *", "4h", "2026-03-29 04:00", false, "", ""},
		{"New York 23:00 for 4h over fall back ends 02:00 EST", "America/New_York", "0 23 * * *", "4h", "2026-11-01 01:59 -0500", true, "2026-10-31 23:00", "2026-11-01 02:00"},
		{"Berlin 01:00 for 2h over spring forward ends 04:00 CEST", "Europe/Berlin", "0 1 * * *", "2h", "2026-03-29 03:59", true, "2026-03-29 01:00", "2026-03-29 04:00"},
		{"Berlin skipped 02:30: not in a window at 03:45", "Europe/Berlin", "30 2 * * *", "1h", "2026-03-29 03:45", false, "", ""},
		{"Berlin 02:30 on fall-back day: first pass", "Europe/Berlin", "30 2 * * *", "30m", "2026-10-25 02:45 +0200", true, "2026-10-25 02:30 +0200", "2026-10-25 03:00 +0200"},
		{"Berlin 02:30 on fall-back day: not the second pass", "Europe/Berlin", "30 2 * * *", "30m", "2026-10-25 02:45 +0100", false, "", ""},
		{"New York 01:30 on fall-back day: first pass", "America/New_York", "30 1 * * *", "1h", "2026-11-01 01:10 -0500", true, "2026-11-01 01:30 -0400", "2026-11-01 01:30 -0500"},
		{"@every 10s in Berlin: also in the repeated hour", "Europe/Berlin", "@every 10s", "4s", "2026-10-25 02:30:02 +0100", true, "2026-10-25 02:30:00 +0100", "2026-10-25 02:30:04 +0100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := plan(t, fmt.Sprintf("  - {name: w, cron: %q, duration: %s, time_zone: %s, groups: [g]}\n", tc.cron, tc.dur, tc.zone), "d1")
			now := at(t, tc.zone, tc.t)
			o, ok := p.InWindow("d1", now)
			if ok != tc.in {
				t.Fatalf("InWindow(%v) = %v %+v, want %v", now, ok, o, tc.in)
			}
			if !ok {
				return
			}
			if want := at(t, tc.zone, tc.start); !o.Start.Equal(want) {
				t.Errorf("start %v, want %v", o.Start, want)
			}
			if want := at(t, tc.zone, tc.end); !o.End.Equal(want) {
				t.Errorf("end %v, want %v", o.End, want)
			}
			if o.Duration() != mustDur(t, tc.dur) || !o.Contains(now) {
				t.Errorf("occurrence %+v: elapsed %v, want %s, containing %v", o, o.Duration(), tc.dur, now)
			}
		})
	}
}

func mustDur(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCheckTimes(t *testing.T) {
	tests := []struct {
		name, windows string
		checks        int
	}{
		{"one check", "  - {name: n, cron: \"0 2 * * *\", duration: 2h, time_zone: UTC, groups: [g]}\n", 1},
		{"three checks", "  - {name: n, cron: \"0 2 * * *\", duration: 2h, time_zone: UTC, groups: [g], checks_per_window: 3}\n", 3},
		{"few-second window", "  - {name: n, cron: \"@every 10s\", duration: 4s, time_zone: UTC, groups: [g], checks_per_window: 2}\n", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := plan(t, tc.windows, "plc-a", "plc-b")
			occ, ok := p.Next("plc-a", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			if !ok {
				t.Fatal("no occurrence")
			}
			for _, dev := range []string{"plc-a", "plc-b"} {
				ts := p.CheckTimes(dev, occ)
				if len(ts) != tc.checks {
					t.Fatalf("%s: %d checks, want %d", dev, len(ts), tc.checks)
				}
				if off := ts[0].Sub(occ.Start); off != Offset(dev, occ.Window, occ.Duration()) || off < 0 || off >= occ.Duration()/2 {
					t.Errorf("%s: first check %v after the start, want Offset in [0, %v)", dev, off, occ.Duration()/2)
				}
				for i := 1; i < len(ts); i++ {
					if !ts[i].After(ts[i-1]) {
						t.Errorf("%s: checks not increasing: %v", dev, ts)
					}
				}
				if last := ts[len(ts)-1]; !last.Before(occ.End) {
					t.Errorf("%s: last check %v not before the end %v", dev, last, occ.End)
				}
				if tc.checks > 1 {
					if want := ts[0].Add(occ.End.Sub(ts[0]) / 2); ts[len(ts)-1].Sub(want).Abs() > time.Duration(tc.checks) {
						t.Errorf("%s: last check %v, want halfway to the end %v", dev, ts[len(ts)-1], want)
					}
				}
			}
			if p.CheckTimes("plc-a", Occurrence{Window: "unknown", Start: occ.Start, End: occ.End}) != nil {
				t.Error("check times for an unknown window")
			}
		})
	}
}

func TestMissed(t *testing.T) {
	p, _ := plan(t, "  - {name: n, cron: \"0 2 * * *\", duration: 1h, time_zone: UTC, groups: [g]}\n", "d1")
	day := func(d int) time.Time { return time.Date(2026, 1, d, 2, 0, 0, 0, time.UTC) }
	ran := func(o Occurrence) bool { return o.Start.Equal(day(2)) }
	tests := []struct {
		name      string
		from, now time.Time
		want      []time.Time
	}{
		{"ran on the 2nd only", day(1), day(4).Add(30 * time.Minute), []time.Time{day(1), day(3)}},
		{"an open window is not missed", day(4), day(4).Add(59 * time.Minute), nil},
		{"closes at now exactly", day(4), day(4).Add(time.Hour), []time.Time{day(4)}},
		{"started before from", day(1).Add(time.Minute), day(3).Add(time.Hour), []time.Time{day(3)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Missed("d1", ran, tc.from, tc.now)
			if len(got) != len(tc.want) {
				t.Fatalf("missed %+v, want starts %v", got, tc.want)
			}
			for i := range got {
				if !got[i].Start.Equal(tc.want[i]) {
					t.Errorf("missed[%d] starts %v, want %v", i, got[i].Start, tc.want[i])
				}
			}
		})
	}
}

func TestGapDetail(t *testing.T) {
	tests := []struct {
		name, zone, cron string
		wall             string
		atUTC            string
	}{
		{"Berlin 02:30 read as CET is 01:30 UTC (03:30 CEST)", "Europe/Berlin", "30 2 * * *", "2026-03-29 02:30:00", "2026-03-29 01:30"},
		{"New York 02:30 read as EST is 07:30 UTC (03:30 EDT)", "America/New_York", "30 2 * * *", "2026-03-08 02:30:00", "2026-03-08 07:30"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := plan(t, fmt.Sprintf("  - {name: w, cron: %q, duration: 1h, time_zone: %s, groups: [g]}\n", tc.cron, tc.zone), "d1")
			want := at(t, "UTC", tc.atUTC)
			gaps := p.Gaps("d1", want.Add(-48*time.Hour), want.Add(48*time.Hour))
			if len(gaps) != 1 {
				t.Fatalf("gaps %+v, want one", gaps)
			}
			g := gaps[0]
			if g.Wall != tc.wall || !g.At.Equal(want) || g.Window != "w" || !strings.Contains(g.Reason, tc.zone) {
				t.Errorf("gap %+v, want wall %s at %v", g, tc.wall, want)
			}
			// The range is half-open on At.
			if n := len(p.Gaps("d1", want, want.Add(time.Nanosecond))); n != 1 {
				t.Errorf("[At, At+1ns) holds %d gaps, want 1", n)
			}
			if n := len(p.Gaps("d1", want.Add(time.Nanosecond), want.Add(time.Hour))); n != 0 {
				t.Errorf("(At, At+1h) holds %d gaps, want 0", n)
			}
			if n := len(p.Gaps("d1", want.Add(-time.Hour), want)); n != 0 {
				t.Errorf("[At-1h, At) holds %d gaps, want 0", n)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dev := &config.Device{Name: "d1", Protocol: "s7", Endpoint: "127.0.0.1:1"}
	tests := []struct {
		name string
		w    config.Window
		want string
	}{
		{"bad cron", config.Window{Name: "w", Cron: "every night", Duration: config.Duration(time.Hour), TimeZone: "UTC"}, "window w: cron"},
		{"bad zone", config.Window{Name: "w", Cron: "0 2 * * *", Duration: config.Duration(time.Hour), TimeZone: "Mars/Olympus"}, "window w: time_zone"},
		{"no duration", config.Window{Name: "w", Cron: "0 2 * * *", TimeZone: "UTC"}, "window w: duration"},
		{"two zones", config.Window{Name: "w", Cron: "CRON_TZ=Asia/Tokyo 0 2 * * *", Duration: config.Duration(time.Hour), TimeZone: "UTC"}, "names zone Asia/Tokyo but time_zone is UTC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.w.Devices = []string{"d1"}
			_, err := New(&config.Config{Devices: []*config.Device{dev}, Windows: []config.Window{tc.w}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// wallClock lists, minute by minute, the instants in [from, to) at which
// expr starts when read on loc's wall clock, with an independent reading of
// the rules: cron matches the wall clock on a clock without daylight saving,
// a wall-clock minute that comes twice (fall back) counts at its first pass
// only, and one that never comes (spring forward) is returned in gaps.
func wallClock(t *testing.T, expr string, loc *time.Location, from, to time.Time) (starts []time.Time, gaps []string) {
	t.Helper()
	s, err := cron.ParseStandard(expr)
	if err != nil {
		t.Fatal(err)
	}
	spec := *s.(*cron.SpecSchedule)
	spec.Location = time.UTC
	matches := func(wall time.Time) bool { return spec.Next(wall.Add(-time.Second)).Equal(wall) }
	asWall := func(i time.Time) time.Time {
		l := i.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
	}
	seen := map[time.Time]bool{}
	for m := from; m.Before(to); m = m.Add(time.Minute) {
		w := asWall(m)
		if seen[w] {
			continue
		}
		seen[w] = true
		if matches(w) {
			starts = append(starts, m)
		}
	}
	for w := asWall(from); w.Before(asWall(to)); w = w.Add(time.Minute) {
		if !seen[w] && matches(w) {
			gaps = append(gaps, w.Format("2006-01-02 15:04:05"))
		}
	}
	return starts, gaps
}

// TestAgainstWallClock checks Occurrences, Next, InWindow and Gaps against
// wallClock on the daylight-saving weekends of 2026 in Berlin and New York,
// for daily, hourly, ranged, midnight-spanning and weekly windows.
func TestAgainstWallClock(t *testing.T) {
	changes := []struct{ zone, day string }{
		{"Europe/Berlin", "2026-03-29"}, {"Europe/Berlin", "2026-10-25"},
		{"America/New_York", "2026-03-08"}, {"America/New_York", "2026-11-01"},
	}
	windows := []struct{ cron, dur string }{
		{"30 2 * * *", "1h"},
		{"0 2 * * *", "30m"},
		{"0 * * * *", "20m"},
		{"*/20 1-3 * * *", "15m"},
		{"0 23 * * *", "4h"},
		{"45 1 * * 0", "2h"},
		{"0 0 * * *", "3h"},
	}
	for _, ch := range changes {
		for _, w := range windows {
			t.Run(ch.zone+" "+ch.day+" "+w.cron+" for "+w.dur, func(t *testing.T) {
				p, _ := plan(t, fmt.Sprintf("  - {name: w, cron: %q, duration: %s, time_zone: %s, groups: [g]}\n", w.cron, w.dur, ch.zone), "d1")
				loc, _ := time.LoadLocation(ch.zone)
				day := at(t, ch.zone, ch.day+" 12:00")
				from := time.Date(day.Year(), day.Month(), day.Day()-2, 0, 0, 0, 0, loc)
				to := time.Date(day.Year(), day.Month(), day.Day()+2, 0, 0, 0, 0, loc)
				dur := mustDur(t, w.dur)
				want, wantGaps := wallClock(t, w.cron, loc, from, to)

				got := p.Occurrences("d1", from.Add(-time.Nanosecond), to)
				if len(got) != len(want) {
					t.Fatalf("%d occurrences, want %d\ngot  %v\nwant %v", len(got), len(want), got, want)
				}
				for i := range got {
					if !got[i].Start.Equal(want[i]) || got[i].Duration() != dur {
						t.Fatalf("occurrence %d = %v for %v, want %v for %v", i, got[i].Start, got[i].Duration(), want[i], dur)
					}
				}

				gaps := p.Gaps("d1", from, to)
				if len(gaps) != len(wantGaps) {
					t.Fatalf("gaps %v, want %v", gaps, wantGaps)
				}
				for i := range gaps {
					if gaps[i].Wall != wantGaps[i] {
						t.Errorf("gap %d at %s, want %s", i, gaps[i].Wall, wantGaps[i])
					}
				}

				// A grid of instants not aligned to minutes, from when the
				// oracle knows every occurrence that can contain them.
				for now := from.Add(dur).Add(17 * time.Second); now.Before(to); now = now.Add(7*time.Minute + 13*time.Second) {
					var in []time.Time
					var next time.Time
					for _, s := range want {
						if !now.Before(s) && now.Before(s.Add(dur)) {
							in = append(in, s)
						}
						if next.IsZero() && s.After(now) {
							next = s
						}
					}
					o, ok := p.InWindow("d1", now)
					if ok != (len(in) > 0) {
						t.Fatalf("InWindow(%v) = %v %+v, want %v (%v)", now, ok, o, len(in) > 0, in)
					}
					if ok && !o.Start.Equal(in[len(in)-1]) {
						t.Fatalf("InWindow(%v) starts %v, want %v", now, o.Start, in[len(in)-1])
					}
					if next.IsZero() {
						continue
					}
					if n, ok := p.Next("d1", now); !ok || !n.Start.Equal(next) {
						t.Fatalf("Next(%v) = %v, want %v", now, n.Start, next)
					}
				}
			})
		}
	}
}
