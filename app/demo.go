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

func (a *App) demoCommand() *cobra.Command {
	var example, dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo: simulated PLCs, a baseline, an unapproved change, its alerts and diff",
		Long: `Starts the built-in simulators on loopback, copies the example config into
--dir, and runs the plcwatch commands a person would: snapshot, approve a
baseline, check (no change), then changes a setpoint and a program in the
simulated PLCs the way an engineer would, checks again, and shows the alerts,
the diff and the verification of the evidence chain. Exits 0 when every step
behaved as expected.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.runDemo(c.Context(), example, dir)
		},
	}
	cmd.Flags().StringVar(&example, "example", "plcwatch.example.yaml", "the example config to copy")
	cmd.Flags().StringVar(&dir, "dir", "demo-run", "working folder for the demo's config, store and alert log (created; a non-empty folder is refused unless an earlier demo made it)")
	return cmd
}

func (a *App) runDemo(ctx context.Context, example, dir string) error {
	src, err := os.ReadFile(example)
	if err != nil {
		return usageError("demo: reading the example config: %v", err)
	}
	if err := prepareDemoDir(dir); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "plcwatch.yaml")
	if err := os.WriteFile(cfgPath, src, 0o600); err != nil {
		return err
	}
	sims, err := startDemoSims(ctx)
	if err != nil {
		return fmt.Errorf("demo: starting simulators: %w", err)
	}
	defer sims.Close()

	steps := []demoStep{
		{say: "Validate the config", args: []string{"config", "check"}},
		{say: "Commissioning: snapshot every device and approve the snapshots as baselines", args: []string{"check", "--all"}, want: ExitFindings},
	}
	steps = append(steps, sims.baselineSteps(a)...)
	steps = append(steps,
		demoStep{say: "Nightly check: nothing changed", args: []string{"check", "--all"}},
		demoStep{say: "An engineer changes setpoints and downloads changed logic, without a change ticket", args: []string{"check", "--all"}, want: ExitFindings, before: sims.tamper},
		demoStep{say: "The open alerts", args: []string{"alerts", "--open"}},
	)
	steps = append(steps, sims.diffSteps()...)
	steps = append(steps,
		demoStep{say: "Verify the evidence chain", args: []string{"verify"}},
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
	fmt.Fprintf(a.Stdout, "\nDemo done. Its config, store and alert log are in %s/; try:\n  bin/plcwatch --config %s history %s\n", dir, cfgPath, sims.firstDevice())
	fmt.Fprintf(a.Stdout, "Requests the simulators received: %s; write/control requests: %d\n", sims.requestSummary(), sims.refused())
	if sims.refused() != 0 {
		return errors.New("demo: a simulator received write or control requests")
	}
	return nil
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
