package schedules

import (
	"fmt"
	"testing"
	"time"

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
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
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
	p, cfg := plan(t, "  - {name: n, cron: \"@every 10m\", duration: 2m, time_zone: UTC, groups: [g]}\n", "d1", "d2")
	rows := p.Upcoming(cfg, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 3)
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	for _, r := range rows {
		if r.FirstCheck.Before(r.Start) || !r.FirstCheck.Before(r.End) {
			t.Errorf("row %+v: first check outside the window", r)
		}
	}
}
