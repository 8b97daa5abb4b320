package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPlannedChange: before snapshot, change, check says "planned", after
// snapshot and diff, approval closes the change and moves the baseline; a
// change outside any planned change is unauthorized.
func TestPlannedChange(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target, r *running, s *site) {
		s.baseline(tg.device)
		out := s.want(0, "change", "start", tg.device, "--ticket", "CHG-42", "--by", "Jane Engineer", "--until", "2h")
		if !strings.Contains(out, "before snapshot") {
			t.Errorf("change start:\n%s", out)
		}
		_, errs, code := s.run("change", "start", tg.device, "--ticket", "CHG-43", "--by", "x", "--until", "1h")
		if code != 2 || !strings.Contains(errs, "already open") {
			t.Errorf("second change start: exit %d: %s", code, errs)
		}
		if _, errs, code := s.run("change", "start", tg.device, "--ticket", "CHG-44", "--by", "x", "--until", "9999h"); code != 2 {
			t.Errorf("change longer than change_max_duration accepted: %s", errs)
		}
		if err := r.setSetpoint(r.base + 7); err != nil {
			t.Fatal(err)
		}
		s.want(1, "check", tg.device)
		var as []struct {
			Category    string `json:"category"`
			Disposition string `json:"disposition"`
			Ticket      string `json:"ticket"`
		}
		if err := json.Unmarshal([]byte(s.alertsJSON()), &as); err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].Disposition != "planned, pending review" || as[0].Ticket != "CHG-42" {
			t.Errorf("alerts during a planned change = %+v, want one planned alert for CHG-42", as)
		}
		out = s.want(1, "change", "finish", tg.device)
		if !strings.Contains(out, r.setpointPath) || !strings.Contains(out, "plcwatch approve") {
			t.Errorf("change finish:\n%s", out)
		}
		after := s.latestID(tg.device)
		s.want(0, "approve", after, "--ticket", "CHG-42", "--by", "Jane Engineer", "--comment", "new high limit per MOC-7")
		s.want(0, "check", tg.device)
		hist := s.want(0, "history", tg.device)
		for _, want := range []string{"planned change CHG-42 opened", "planned change CHG-42 closed: approved " + after} {
			if !strings.Contains(hist, want) {
				t.Errorf("history lacks %q:\n%s", want, hist)
			}
		}
		// After the change is closed, a change is unauthorized again.
		if err := r.setSetpoint(r.base + 20); err != nil {
			t.Fatal(err)
		}
		s.want(1, "check", tg.device)
		if err := json.Unmarshal([]byte(s.alertsJSON("--open")), &as); err != nil {
			t.Fatal(err)
		}
		unauth := 0
		for _, a := range as {
			if a.Disposition == "unauthorized" {
				unauth++
			}
		}
		if unauth != 1 {
			t.Errorf("open alerts after the change closed: %+v, want one unauthorized", as)
		}
	})
}
