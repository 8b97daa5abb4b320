package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

func forEachTarget(t *testing.T, f func(t *testing.T, tg target, r *running, s *site)) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			r := tg.start(t)
			s := newSite(t, r.yaml)
			f(t, tg, r, s)
			if n := r.refused(); n != 0 {
				t.Errorf("the simulator received %d write or control requests, want 0", n)
			}
		})
	}
}

// TestBaselineAndChanges: baseline; setpoint change detected; the same change
// on a second check gives one alert; logic change detected.
func TestBaselineAndChanges(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target, r *running, s *site) {
		s.baseline(tg.device)
		if err := r.setSetpoint(r.base + 5); err != nil {
			t.Fatal(err)
		}
		out := s.want(1, "check", tg.device)
		if !strings.Contains(out, "UNAPPROVED CHANGES") {
			t.Errorf("check output:\n%s", out)
		}
		sp := s.alertsOf("setpoint")
		if len(sp) != 1 || sp[0].Technique == nil || sp[0].Technique.ID != "T0836" || sp[0].AttackVersion == "" {
			t.Fatalf("setpoint alerts = %+v, want one with T0836", sp)
		}
		if it := sp[0].Items; len(it) != 1 || it[0].Path != r.setpointPath || !strings.HasPrefix(it[0].Old, "80") || !strings.HasPrefix(it[0].New, "85") {
			t.Errorf("setpoint alert items = %+v, want %s 80 -> 85", it, r.setpointPath)
		}
		// The same unapproved change found again updates the alert.
		s.want(1, "check", tg.device)
		sp = s.alertsOf("setpoint")
		if len(sp) != 1 || sp[0].Count != 2 {
			t.Errorf("after a second check: %d setpoint alerts, count %v; want one alert seen twice", len(sp), sp)
		}
		if err := r.changeLogic(); err != nil {
			t.Fatal(err)
		}
		s.want(1, "check", tg.device)
		found := false
		for _, a := range s.alerts("--open") {
			for _, it := range a.Items {
				if it.Path == r.logicPath && (a.Category == "logic" || a.Category == "tasking") {
					found = true
					if a.Technique == nil {
						t.Errorf("logic alert without technique: %+v", a)
					}
				}
			}
		}
		if !found {
			t.Errorf("no logic alert naming %s: %+v", r.logicPath, s.alerts())
		}
		// The diff names exactly what changed.
		diff := s.want(1, "diff", tg.device+"@baseline", tg.device+"@latest")
		if !strings.Contains(diff, r.setpointPath) || !strings.Contains(diff, r.logicPath) {
			t.Errorf("diff lacks %s or %s:\n%s", r.setpointPath, r.logicPath, diff)
		}
		// Acknowledging records a decision and does not move the baseline.
		id := sp[0].ID
		s.want(0, "ack", id, "--by", "Shift Lead", "--comment", "asked the engineer", "--decision", "investigating")
		for _, a := range s.alerts("--open") {
			if a.ID == id {
				t.Errorf("acknowledged alert %s still open", id)
			}
		}
		s.want(1, "check", tg.device)
		s.want(0, "verify")
	})
}

// TestDeadbandDrift: five setpoint steps each under the deadband are caught
// once they add up past it, because checks compare with the baseline.
func TestDeadbandDrift(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target, r *running, s *site) {
		s.baseline(tg.device)
		caught := 0
		for step := 1; step <= 5; step++ {
			if err := r.setSetpoint(r.base + 0.2*float64(step)); err != nil {
				t.Fatal(err)
			}
			_, _, code := s.run("check", tg.device)
			if code == 1 && caught == 0 {
				caught = step
			}
		}
		if caught != 3 {
			t.Errorf("drift of 0.2 per step with deadband 0.5 caught at step %d, want 3", caught)
		}
	})
}

// TestPartialIsNeverRemoval: a read cut off part way is stored as partial,
// raises "incomplete collection", reports nothing as removed, and cannot be
// approved.
func TestPartialIsNeverRemoval(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target, r *running, s *site) {
		s.baseline(tg.device)
		heal := r.breakNext()
		out := s.want(1, "check", tg.device)
		heal()
		if !strings.Contains(out, "PARTIAL") {
			t.Errorf("check of a cut-off read:\n%s", out)
		}
		if len(s.alertsOf("collection_incomplete")) != 1 {
			t.Errorf("no incomplete-collection alert: %+v", s.alerts())
		}
		var rep struct {
			Changes []struct {
				Path string `json:"path"`
				Type string `json:"type"`
			} `json:"changes"`
		}
		_, _, _ = s.run("diff", tg.device+"@baseline", tg.device+"@latest")
		js, _, _ := s.run("diff", "--json", tg.device+"@baseline", tg.device+"@latest")
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatal(err)
		}
		notRead := 0
		for _, c := range rep.Changes {
			if c.Type == "removed" {
				t.Errorf("partial read reported %s as removed", c.Path)
			}
			if c.Type == "not_read" {
				notRead++
			}
		}
		for _, a := range s.alerts() {
			for _, it := range a.Items {
				if it.Change == "removed" {
					t.Errorf("alert %s reports %s removed after a partial read", a.ID, it.Path)
				}
			}
		}
		if notRead == 0 {
			t.Errorf("partial snapshot: no item reported as not read")
		}
		id := s.latestID(tg.device)
		_, errs, code := s.run("approve", id, "--ticket", "CHG-2", "--by", "x")
		if code != 2 || !strings.Contains(errs, "partial") {
			t.Errorf("approve of a partial snapshot: exit %d, %s", code, errs)
		}
	})
}

// TestApproveRefusals: only immutable ids; not when the baseline moved since
// the snapshot was compared with it.
func TestApproveRefusals(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target, r *running, s *site) {
		s.baseline(tg.device)
		_, errs, code := s.run("approve", tg.device+"@latest", "--ticket", "CHG-2", "--by", "x")
		if code != 2 || !strings.Contains(errs, "immutable snapshot id") {
			t.Errorf("approve @latest: exit %d: %s", code, errs)
		}
		if err := r.setSetpoint(r.base + 3); err != nil {
			t.Fatal(err)
		}
		s.want(1, "check", tg.device)
		first := s.latestID(tg.device)
		if err := r.setSetpoint(r.base + 4); err != nil {
			t.Fatal(err)
		}
		s.want(1, "check", tg.device)
		second := s.latestID(tg.device)
		s.want(0, "approve", second, "--ticket", "CHG-3", "--by", "Engineer", "--comment", "new limit")
		_, errs, code = s.run("approve", first, "--ticket", "CHG-3", "--by", "Engineer")
		if code != 2 || !strings.Contains(errs, "baseline moved") {
			t.Errorf("approve of a snapshot reviewed against an older baseline: exit %d: %s", code, errs)
		}
		_, _, code = s.run("approve", "--ticket", "CHG-3", "--by", "Engineer")
		if code != 2 {
			t.Errorf("approve without an id: exit %d", code)
		}
		s.want(0, "check", tg.device)
		hist := s.want(0, "history", tg.device)
		if !strings.Contains(hist, "CHG-3") || !strings.Contains(hist, "approval") {
			t.Errorf("history lacks the approval:\n%s", hist)
		}
	})
}

// TestLiveValueChurnNotAlerted: live process values move between checks and
// nothing is alerted.
func TestLiveValueChurnNotAlerted(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target, r *running, s *site) {
		if r.churn == nil {
			t.Skip("this simulator has no live values")
		}
		s.baseline(tg.device)
		for i := 0; i < 3; i++ {
			if err := r.churn(); err != nil {
				t.Fatal(err)
			}
			s.want(0, "check", tg.device)
		}
		if as := s.alerts(); len(as) != 0 {
			t.Errorf("live value churn raised alerts: %+v", as)
		}
	})
}
