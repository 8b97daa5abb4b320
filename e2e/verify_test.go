package e2e

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/plcwatch/plcwatch/store"
)

// tamper opens the site's store file directly, as an attacker with file
// access would, and runs fn on it.
func (s *site) tamper(fn func(db *sql.DB) error) {
	s.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.dir, "plcwatch.db"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	if err := fn(db); err != nil {
		s.t.Fatal(err)
	}
}

// TestVerifyCatchesTampering: edited, deleted newest, reordered and
// consistently rewritten chains are each caught by plcwatch verify.
func TestVerifyCatchesTampering(t *testing.T) {
	tests := []struct {
		name string
		// forgetLog removes the alert log (an attacker who also deleted it),
		// so only --head can reveal the rewrite.
		forgetLog bool
		edit      func(db *sql.DB) error
		want      string
	}{
		{name: "edited record", want: "edited", edit: func(db *sql.DB) error {
			_, err := db.Exec(`UPDATE records SET body = replace(body, 'CHG-1', 'CHG-9') WHERE type = 'approval'`)
			return err
		}},
		{name: "deleted newest record", want: "head_missing", edit: func(db *sql.DB) error {
			_, err := db.Exec(`DELETE FROM records WHERE seq = (SELECT max(seq) FROM records)`)
			return err
		}},
		{name: "reordered records", want: "reordered", edit: func(db *sql.DB) error {
			if _, err := db.Exec(`UPDATE records SET seq = -1 WHERE seq = 2`); err != nil {
				return err
			}
			if _, err := db.Exec(`UPDATE records SET seq = 2 WHERE seq = 3`); err != nil {
				return err
			}
			_, err := db.Exec(`UPDATE records SET seq = 3 WHERE seq = -1`)
			return err
		}},
		{name: "chain rewritten consistently, against a recorded head", forgetLog: true, want: "head_missing", edit: rewriteChain},
	}
	tg := targets[0]
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tg.start(t)
			s := newSite(t, r.yaml)
			s.baseline(tg.device)
			if err := r.setSetpoint(r.base + 5); err != nil {
				t.Fatal(err)
			}
			s.want(1, "check", tg.device)
			out := s.want(0, "verify")
			head := headOf(t, out, tg.device)
			s.tamper(tc.edit)
			if tc.forgetLog {
				os.Remove(filepath.Join(s.dir, "plcwatch-alerts.jsonl"))
				// Without a recorded head the rewrite itself is not
				// detectable: verify finds only that the log it wrote
				// heads to is gone, and says it has no outside anchor.
				out := s.want(1, "verify")
				if !strings.Contains(out, "FINDING alert_log_missing") || !strings.Contains(out, "NO OUTSIDE ANCHOR") {
					t.Errorf("verify without the alert log:\n%s\nwant an alert_log_missing finding and NO OUTSIDE ANCHOR", out)
				}
			}
			out, _, code := s.run("verify", "--head", head)
			if code != 1 || !strings.Contains(out, "FINDING "+tc.want) {
				t.Errorf("verify after %s: exit %d, want 1 with a %s finding:\n%s", tc.name, code, tc.want, out)
			}
		})
	}
}

func headOf(t *testing.T, verifyOut, device string) string {
	t.Helper()
	for _, l := range strings.Split(verifyOut, "\n") {
		f := strings.Fields(l)
		if len(f) == 5 && f[0] == "head" && f[1] == device {
			return f[4]
		}
	}
	t.Fatalf("no head for %s in:\n%s", device, verifyOut)
	return ""
}

// rewriteChain rewrites every record's time and recomputes every digest and
// link, so the chain is consistent in itself.
func rewriteChain(db *sql.DB) error {
	rows, err := db.Query(`SELECT device, seq, type, time, body FROM records ORDER BY device, seq`)
	if err != nil {
		return err
	}
	var recs []store.Record
	for rows.Next() {
		var r store.Record
		var ts, body string
		if err := rows.Scan(&r.Device, &r.Seq, &r.Type, &ts, &body); err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return err
		}
		r.Time = t.Add(-time.Hour)
		r.Body = []byte(body)
		recs = append(recs, r)
	}
	rows.Close()
	prev := map[string]string{}
	for _, r := range recs {
		r.Prev = prev[r.Device]
		if r.Prev == "" {
			r.Prev = store.GenesisPrev
		}
		r.Digest = r.ComputeDigest()
		prev[r.Device] = r.Digest
		if _, err := db.Exec(`UPDATE records SET time = ?, prev = ?, digest = ? WHERE device = ? AND seq = ?`,
			r.Time.UTC().Format(time.RFC3339Nano), r.Prev, r.Digest, r.Device, r.Seq); err != nil {
			return err
		}
	}
	return nil
}

// TestBadConfigRejected: every problem is named with file:line.
func TestBadConfigRejected(t *testing.T) {
	s := newSite(t, "devices:\n  - name: plc1\n    protocol: s7\n    endpoint: 127.0.0.1:1\n    s7:\n      slot: 2\n      setpoints:\n        - {name: X, address: DB10.DBQ4, type: REAL}\n    colour: red\n")
	out, _, code := s.run("config", "check")
	if code != 2 {
		t.Fatalf("config check of a bad config: exit %d\n%s", code, out)
	}
	for _, want := range []string{s.cfg + ":14: devices[0].colour: unknown key", s.cfg + ":13:"} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}
	// Commands refuse to run on a bad config, and nothing is created.
	if _, errs, code := s.run("check", "--all"); code != 2 || !strings.Contains(errs, ":14:") {
		t.Errorf("check with a bad config: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "plcwatch.db")); err == nil {
		t.Error("a store was created for a bad config")
	}
}
