package app

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
)

func (a *App) commands() []*cobra.Command {
	return []*cobra.Command{
		a.configCommand(),
		a.snapshotCommand(),
		a.checkCommand(),
		a.showCommand(),
		a.historyCommand(),
		a.diffCommand(),
		a.approveCommand(),
		a.alertsCommand(),
		a.ackCommand(),
		a.verifyCommand(),
		a.reportCommand(),
		a.keygenCommand(),
		a.exportCommand(),
		a.importCommand(),
		a.planCommand(),
		a.changeCommand(),
		a.windowsCommand(),
		a.daemonCommand(),
		a.consoleCommand(),
		a.simCommand(),
		a.demoCommand(),
		a.versionCommand(),
	}
}

func (a *App) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintln(a.Stdout, "plcwatch", Version)
			return nil
		},
	}
}

func (a *App) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the configuration file"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the config and report every problem with file:line",
		Long: `Reports every error (unknown keys, wrong types, bad values, protocol sections,
protocols not linked into this build) with file:line, then warnings: devices in
no window, credential environment variables that are not set, password files
readable by others, rates or in-flight caps beyond a sane maximum, a zero
request timeout. Exit 0: valid (warnings are printed); 2: errors.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			path := config.Path(a.configFlag)
			cfg, err := connectors.LoadConfig(path)
			if err != nil {
				var es config.Errors
				if errors.As(err, &es) {
					for _, e := range es {
						fmt.Fprintln(a.Stdout, "error:", e)
					}
					return &ExitCodeError{Code: ExitError, Err: fmt.Errorf("%s: %d problem(s)", path, len(es))}
				}
				return err
			}
			var warns []string
			for _, w := range cfg.Warnings() {
				warns = append(warns, warningLine(w))
			}
			rw, err := ruleWarnings(c.Context(), cfg)
			if err != nil {
				return err
			}
			warns = append(warns, rw...)
			for _, w := range warns {
				fmt.Fprintln(a.Stdout, w)
			}
			fmt.Fprintf(a.Stdout, "%s: ok (%d devices, %d windows, %d classification rules, %d warning(s))\n", path, len(cfg.Devices), len(cfg.Windows), len(cfg.Classification), len(warns))
			return nil
		},
	})
	return cmd
}

// warningLine renders a config warning as "file:line: warning: field: msg",
// the form rule warnings take too.
func warningLine(w *config.Error) string {
	loc := w.File
	if w.Line > 0 {
		loc = fmt.Sprintf("%s:%d", w.File, w.Line)
	}
	msg := w.Msg
	if w.Field != "" {
		msg = w.Field + ": " + msg
	}
	return loc + ": warning: " + msg
}
