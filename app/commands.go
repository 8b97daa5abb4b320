package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/config"
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
		a.planCommand(),
		a.changeCommand(),
		a.windowsCommand(),
		a.daemonCommand(),
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
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			path := config.Path(a.configFlag)
			cfg, err := config.Load(path)
			if err != nil {
				if es, ok := err.(config.Errors); ok {
					for _, e := range es {
						fmt.Fprintln(a.Stdout, e)
					}
					return &ExitCodeError{Code: ExitError, Err: fmt.Errorf("%s: %d problem(s)", path, len(es))}
				}
				return err
			}
			fmt.Fprintf(a.Stdout, "%s: ok (%d devices, %d windows, %d classification rules)\n", path, len(cfg.Devices), len(cfg.Windows), len(cfg.Classification))
			for _, d := range cfg.Devices {
				if d.Protocol == "opcua" {
					for _, w := range opcua.Warnings(d) {
						fmt.Fprintln(a.Stdout, w)
					}
				}
			}
			warns, err := ruleWarnings(c.Context(), cfg)
			if err != nil {
				return err
			}
			for _, w := range warns {
				fmt.Fprintln(a.Stdout, w)
			}
			return nil
		},
	})
	return cmd
}
