package app

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/connectors/isolate"
	"github.com/plcwatch/plcwatch/connectors/opcua"
	"github.com/plcwatch/plcwatch/monitor"
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
		a.sessionCommand(),
	}
}

// sessionCommand is the hidden command an isolated protocol session runs
// in: plcwatch starts itself as `plcwatch __session` with its pipes on fd 3
// and 4 (see package connectors/isolate). It is not for people.
func (a *App) sessionCommand() *cobra.Command {
	return &cobra.Command{
		Use:    isolate.Command,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if code := isolate.ServeChild(monitor.ErrorClass); code != 0 {
				return &ExitCodeError{Code: code}
			}
			return nil
		},
	}
}

func (a *App) versionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if asJSON {
				return writeJSON(a.Stdout, map[string]string{"version": Version})
			}
			fmt.Fprintln(a.Stdout, "plcwatch", Version)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// configProblem is one problem `config check --json` reports.
type configProblem struct {
	File  string `json:"file"`
	Line  int    `json:"line,omitempty"`
	Field string `json:"field,omitempty"`
	Msg   string `json:"message"`
	Text  string `json:"text"`
}

// configReport is `config check --json`'s output.
type configReport struct {
	File     string          `json:"file"`
	OK       bool            `json:"ok"`
	Problems []configProblem `json:"problems"`
	Devices  int             `json:"devices"`
	Windows  int             `json:"windows"`
	Rules    int             `json:"classification_rules"`
	Warnings []string        `json:"warnings"`
}

func (a *App) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the configuration file"}
	var asJSON bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the config and report every problem with file:line",
		Long: `Reports every error (unknown keys, wrong types, bad values, protocol sections,
protocols not linked into this build) with file:line, then warnings: devices in
no window, credential environment variables that are not set, password files
readable by others, rates or in-flight caps beyond a sane maximum, a zero
request timeout, classification rules that matched nothing in the latest stored
snapshots. Exit 0: valid (warnings are printed); 2: errors.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			path := config.Path(a.configFlag)
			rep := configReport{File: path}
			cfg, err := connectors.LoadConfig(path)
			if err != nil {
				var es config.Errors
				if !errors.As(err, &es) {
					return err
				}
				for _, e := range es {
					rep.Problems = append(rep.Problems, configProblem{File: e.File, Line: e.Line, Field: e.Field, Msg: e.Msg, Text: e.Error()})
				}
				if asJSON {
					if err := writeJSON(a.Stdout, rep); err != nil {
						return err
					}
				} else {
					for _, e := range es {
						fmt.Fprintln(a.Stdout, "error:", e)
					}
				}
				return &ExitCodeError{Code: ExitError, Err: fmt.Errorf("%s: %d problem(s)", path, len(es))}
			}
			for _, w := range cfg.Warnings() {
				rep.Warnings = append(rep.Warnings, warningLine(w))
			}
			for _, d := range cfg.Devices {
				if d.Protocol == "opcua" {
					rep.Warnings = append(rep.Warnings, opcua.Warnings(d)...)
				}
			}
			rw, err := ruleWarnings(c.Context(), cfg)
			if err != nil {
				return err
			}
			rep.Warnings = append(rep.Warnings, rw...)
			rep.OK, rep.Devices, rep.Windows, rep.Rules = true, len(cfg.Devices), len(cfg.Windows), len(cfg.Classification)
			if asJSON {
				return writeJSON(a.Stdout, rep)
			}
			for _, w := range rep.Warnings {
				fmt.Fprintln(a.Stdout, w)
			}
			fmt.Fprintf(a.Stdout, "%s: ok (%d devices, %d windows, %d classification rules, %d warning(s))\n", path, rep.Devices, rep.Windows, rep.Rules, len(rep.Warnings))
			return nil
		},
	}
	check.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(check)
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
