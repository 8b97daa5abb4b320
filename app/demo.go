package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/connectors"
)

// demoStep is one command the demo runs, as a user would type it.
type demoStep struct {
	say  string   // what the step shows
	args []string // plcwatch arguments
	want int      // expected exit code
	// lazyArgs computes args when the step runs (e.g. a snapshot id).
	lazyArgs func(e *env) ([]string, error)
	// before runs first (e.g. an engineer changing the simulated PLC).
	before func() error
}

// demoOptions are the demo command's settings.
type demoOptions struct {
	example string // the example config to copy
	dir     string // working folder, emptied first
	// ephemeral starts the simulators on free loopback ports (tests) instead
	// of the example config's fixed ones, and points the copied config at
	// them.
	ephemeral bool
	console   bool // serve the web console at the end, until interrupted
}

func (a *App) demoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo: commissioning, an unauthorized change, its acknowledgement, a planned change, verification",
		Long: `Starts the built-in simulators on loopback, copies the example config into
--dir, and runs the plcwatch commands a person would: commissioning (snapshot,
review, approve baselines), a nightly check that finds an unauthorized
setpoint and logic change, their acknowledgement and the engineer restoring
the approved program, a planned change (start, the change, finish with the
before/after diff, approval with the ticket), a final check with nothing open
and the verification of the evidence chain. Exits 0 when every step behaved
as expected; with --console it then serves the web console over the demo's
store until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.runDemo(c.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.example, "example", "plcwatch.example.yaml", "the example config to copy")
	cmd.Flags().StringVar(&o.dir, "dir", "demo-run", "working folder for the demo's config, store and alert log (created; a non-empty folder is refused unless an earlier demo made it)")
	cmd.Flags().BoolVar(&o.console, "console", false, "serve the web console over the demo's store at the end (until Ctrl-C)")
	return cmd
}

func (a *App) runDemo(ctx context.Context, o demoOptions) error {
	src, err := os.ReadFile(o.example)
	if err != nil {
		return usageError("demo: reading the example config: %v", err)
	}
	if err := prepareDemoDir(o.dir); err != nil {
		return err
	}
	sims, err := startDemoSims(ctx, o.ephemeral)
	if err != nil {
		return fmt.Errorf("demo: starting simulators: %w", err)
	}
	defer sims.Close()
	cfgPath := filepath.Join(o.dir, "plcwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(sims.pointConfig(string(src))), 0o600); err != nil {
		return err
	}

	s7, lx := sims.names[1], sims.names[2]
	steps := []demoStep{
		{say: "Validate the config", args: []string{"config", "check"}},
		{say: "Commissioning: snapshot every device (no baseline yet: exit 1)", args: []string{"check", "--all"}, want: ExitFindings},
	}
	steps = append(steps, sims.baselineSteps()...)
	steps = append(steps,
		demoStep{say: "Nightly check: nothing changed", args: []string{"check", "--all"}},
		demoStep{say: "Overnight an engineer raises a tank limit and downloads a changed FC7 to " + s7 + ", without a ticket; the nightly check finds it",
			args: []string{"check", "--all"}, want: ExitFindings, before: sims.tamper},
		demoStep{say: "The shift lead lists the open alerts (exit 1: there are some)", args: []string{"alerts", "--open"}, want: ExitFindings},
	)
	steps = append(steps, sims.ackSteps()...)
	steps = append(steps,
		demoStep{say: "Planned change CHG-1234 on " + lx + ": the before snapshot opens it", args: []string{"change", "start", lx, "--ticket", "CHG-1234", "--by", "J. Engineer", "--until", "4h"}},
		demoStep{say: "The engineer adds a bypass tag and sets the new tank limit, then finishes: the after snapshot and the before/after diff",
			args: []string{"change", "finish", lx}, want: ExitFindings, before: sims.plannedChange},
		demoStep{say: "Reviewed: approve the after snapshot with the ticket (this closes the change)",
			lazyArgs: func(e *env) ([]string, error) {
				s, err := e.Store.Resolve(context.Background(), lx+"@latest")
				if err != nil {
					return nil, err
				}
				return []string{"approve", s.ID, "--ticket", "CHG-1234", "--by", "Shift Lead", "--comment", "reviewed the before/after diff"}, nil
			}},
		demoStep{say: "Final check: " + s7 + "'s approved program and limit are back, " + lx + " matches its new baseline", args: []string{"check", "--all"}, before: sims.restore},
		demoStep{say: "Nothing open", args: []string{"alerts", "--open"}},
		demoStep{say: "Verify the evidence chain (keep the head digests somewhere this host cannot rewrite)", args: []string{"verify"}},
	)
	for i, st := range steps {
		if st.before != nil {
			if err := st.before(); err != nil {
				return fmt.Errorf("demo step %d: %w", i+1, err)
			}
		}
		if st.lazyArgs != nil {
			cfg, err := connectors.LoadConfig(cfgPath)
			if err != nil {
				return err
			}
			e, err := a.openWith(ctx, cfg)
			if err != nil {
				return err
			}
			st.args, err = st.lazyArgs(e)
			e.Close()
			if err != nil {
				return fmt.Errorf("demo step %d: %w", i+1, err)
			}
		}
		args := append([]string{"--config", cfgPath}, st.args...)
		fmt.Fprintf(a.Stdout, "\n### %d. %s\n$ plcwatch %s\n", i+1, st.say, strings.Join(quoteArgs(st.args), " "))
		sub := *a
		sub.configFlag = ""
		code := sub.Exit(sub.Run(ctx, args))
		if code != st.want {
			return fmt.Errorf("demo step %d (plcwatch %s) exited %d, expected %d", i+1, strings.Join(st.args, " "), code, st.want)
		}
		fmt.Fprintf(a.Stdout, "(exit %d)\n", code)
	}
	fmt.Fprintf(a.Stdout, "\nDemo done: nothing open, the evidence chain verified. Requests the simulators received: %s; write/control requests: %d.\n",
		sims.requestSummary(), sims.refused())
	if sims.refused() != 0 {
		return errors.New("demo: a simulator received write or control requests")
	}
	fmt.Fprintf(a.Stdout, "Its config, store and alert log are in %s/. A device's whole story: plcwatch --config %s history %s\n", o.dir, cfgPath, s7)
	if !o.console {
		fmt.Fprintf(a.Stdout, "Look at it all in the web console: plcwatch --config %s console, then open http://127.0.0.1:8686/\n", cfgPath)
		return nil
	}
	fmt.Fprintf(a.Stdout, "The web console is on http://127.0.0.1:8686/ (Ctrl-C stops it).\n")
	sub := *a
	sub.configFlag = ""
	return sub.Run(ctx, []string{"--config", cfgPath, "console"})
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, s := range args {
		if strings.ContainsAny(s, " \"'") {
			s = "'" + s + "'"
		}
		out[i] = s
	}
	return out
}

// demoMarker marks a folder the demo created, so a later demo may empty it.
const demoMarker = ".plcwatch-demo"

// prepareDemoDir creates dir for the demo. An existing empty folder is
// used; a non-empty one is emptied only when an earlier demo created it (it
// holds demoMarker), and refused otherwise: the demo never deletes what it
// did not make.
func prepareDemoDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return usageError("demo --dir %s: %v", dir, err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, demoMarker)); err != nil {
			return usageError("demo --dir %s: the folder is not empty and was not created by plcwatch demo; give a new or empty folder (nothing was deleted)", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("demo: emptying %s from an earlier demo: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: creating %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, demoMarker), []byte("created by plcwatch demo; the next demo may empty this folder\n"), 0o600); err != nil {
		return fmt.Errorf("demo: marking %s: %w", dir, err)
	}
	return nil
}
