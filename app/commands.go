package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/config"
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
