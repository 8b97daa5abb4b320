package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/report"
	"github.com/plcwatch/plcwatch/store"
)

// parseWhen reads a point in time for --since and --until: a span back from
// now ("35d", "12h", "90m"), a date ("2026-03-01", midnight UTC) or an RFC
// 3339 time.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	const want = `want a span back from now (35d, 12h), a date (2026-03-01) or an RFC 3339 time`
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*366 {
			return time.Time{}, usageError("%s %q: %s", flag, s, want)
		}
		return now.AddDate(0, 0, -days), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageError("%s %q: %s", flag, s, want)
}

func (a *App) reportCommand() *cobra.Command {
	var since, until, out string
	var devices []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report [--since 35d|DATE] [--until DATE] [--device D]... --out DIR",
		Short: "Write the compliance report (HTML, CSV, JSON) for a period",
		Long: `Writes DIR/report.html (one self-contained page, prints to PDF with a page per
device), DIR/report.csv and DIR/report.json: per device the approved baseline by
NERC CIP-010 R1.1 category, every change in the period with its disposition,
monitoring coverage (complete collections, gaps longer than daemon.overdue_after),
open alerts, and the verification of the evidence chains with their heads.
Reads the store only; never contacts a controller. Exit 1 when the chains do not
verify, 2 on error.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("report: --out DIR is required")
			}
			now := a.Now().UTC()
			from, err := parseWhen("--since", since, now)
			if err != nil {
				return err
			}
			to := now
			if until != "" {
				if to, err = parseWhen("--until", until, now); err != nil {
					return err
				}
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			st, err := store.Open(cfg.StorePath(), store.ReadOnly())
			if err != nil {
				return err
			}
			defer st.Close()
			known, err := alerts.ReadHeads(cfg.AlertLogPath())
			var bad *alerts.BadLinesError
			if err != nil && !errors.As(err, &bad) && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("report: reading recorded heads: %w", err)
			}
			r, err := report.Build(c.Context(), st, report.Options{
				Since: from, Until: to, Devices: devices, Interval: time.Duration(cfg.Daemon.OverdueAfter),
				KnownHeads: known, Generated: now,
			})
			if err != nil {
				return &ExitCodeError{Code: ExitError, Err: err}
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return fmt.Errorf("report: %w", err)
			}
			for _, f := range []struct {
				name  string
				write func(*bytes.Buffer, *report.Report) error
			}{
				{"report.html", func(b *bytes.Buffer, r *report.Report) error { return report.WriteHTML(b, r) }},
				{"report.csv", func(b *bytes.Buffer, r *report.Report) error { return report.WriteCSV(b, r) }},
				{"report.json", func(b *bytes.Buffer, r *report.Report) error { return report.WriteJSON(b, r) }},
			} {
				var b bytes.Buffer
				if err := f.write(&b, r); err != nil {
					return err
				}
				if err := writeFileAtomic(filepath.Join(out, f.name), b.Bytes(), 0o600); err != nil {
					return fmt.Errorf("report: %w", err)
				}
			}
			if asJSON {
				if err := writeJSON(a.Stdout, map[string]any{"out": out, "files": []string{"report.html", "report.csv", "report.json"},
					"devices": len(r.Devices), "since": r.Since.UTC(), "until": r.Until.UTC(), "verified": r.Verify.OK && bad == nil,
					"findings": len(r.Verify.Findings)}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.Stdout, "report of %d device(s) from %s to %s written to %s (report.html, report.csv, report.json)\n",
					len(r.Devices), timeText(r.Since), timeText(r.Until), out)
			}
			if !r.Verify.OK || bad != nil {
				if asJSON {
					return errFindings
				}
				fmt.Fprintf(a.Stdout, "the evidence chains do NOT verify: %d finding(s) (see the report's last page)\n", len(r.Verify.Findings))
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "35d", "start of the period: 35d, 12h, 2026-03-01 or an RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "end of the period (default now)")
	cmd.Flags().StringArrayVar(&devices, "device", nil, "only this device (repeatable; default all)")
	cmd.Flags().StringVar(&out, "out", "", "directory to write report.html, report.csv and report.json to")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was written as JSON")
	return cmd
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so a reader never sees a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
