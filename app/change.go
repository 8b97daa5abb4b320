package app

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/diffing"
)

func (a *App) changeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "change",
		Short: "Planned changes: a before snapshot, the change, an after snapshot, review and approval",
	}
	var ticket, by, until string
	var startJSON bool
	start := &cobra.Command{
		Use:   "start DEVICE --ticket CHG-123 --by NAME --until TIME",
		Short: "Take the before snapshot and open a planned change",
		Long: `Takes a "before" snapshot now (a person asked, so outside windows too) and
opens a planned change until --until (RFC 3339 time or a duration such as
"4h"; at most daemon.change_max_duration). While it is open, changes found on
the device are "planned, pending review" rather than unauthorized.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			env, dev, err := a.openDevice(c.Context(), args[0])
			if err != nil {
				return err
			}
			defer env.Close()
			u, err := parseUntil(until, a.Now())
			if err != nil {
				return err
			}
			ch, snap, err := env.Svc.StartChange(c.Context(), dev, ticket, by, a.OSUser(), u)
			if err != nil {
				return &ExitCodeError{Code: ExitError, Err: err}
			}
			if startJSON {
				return writeJSON(a.Stdout, map[string]any{"change": ch, "before": snap.ID})
			}
			fmt.Fprintf(a.Stdout, "change %s opened on %s until %s; before snapshot %s\nmake the change, then run: plcwatch change finish %s\n",
				ch.Ticket, dev.Name, timeText(ch.Until), snap.ID, dev.Name)
			return nil
		},
	}
	start.Flags().BoolVar(&startJSON, "json", false, "print the opened change as JSON")
	start.Flags().StringVar(&ticket, "ticket", "", "change ticket id (required)")
	start.Flags().StringVar(&by, "by", "", "name of the person making the change (required)")
	start.Flags().StringVar(&until, "until", "", "when the change window ends: RFC 3339 time or a duration such as 4h (required)")
	start.MarkFlagRequired("ticket")
	start.MarkFlagRequired("by")
	start.MarkFlagRequired("until")

	var asJSON bool
	finish := &cobra.Command{
		Use:   "finish DEVICE",
		Short: "Take the after snapshot and print the before/after diff for review",
		Long: `Takes the "after" snapshot and prints what changed between before and after.
Review it, then run plcwatch approve AFTER_ID --ticket ... --by ... to close
the change and move the baseline. Exit 1 when there are differences.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			env, dev, err := a.openDevice(c.Context(), args[0])
			if err != nil {
				return err
			}
			defer env.Close()
			ch, rep, after, err := env.Svc.FinishChange(c.Context(), dev)
			if err != nil {
				return &ExitCodeError{Code: ExitError, Err: err}
			}
			if asJSON {
				err = writeJSON(a.Stdout, map[string]any{"change": ch, "after": after.ID, "report": rep})
			} else {
				fmt.Fprintf(a.Stdout, "change %s on %s: before %s, after %s\n", ch.Ticket, dev.Name, ch.Before, after.ID)
				err = diffing.Render(a.Stdout, rep, diffing.RenderOptions{Color: a.isTerminal(a.Stdout)})
				if !after.Status.Complete {
					fmt.Fprintf(a.Stdout, "the after snapshot is PARTIAL and cannot be approved: run change finish again\n")
				} else {
					fmt.Fprintf(a.Stdout, "\nif this is what %s was for: plcwatch approve %s --ticket %s --by NAME --comment ...\n", ch.Ticket, after.ID, ch.Ticket)
				}
			}
			if err != nil {
				return err
			}
			if !rep.Equal() {
				return errFindings
			}
			return nil
		},
	}
	finish.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(start, finish)
	return cmd
}

// parseUntil reads an RFC 3339 time or a duration from now.
func parseUntil(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError("--until %q: want an RFC 3339 time (2026-12-01T18:00:00+01:00) or a duration (4h)", s)
	}
	return t, nil
}
