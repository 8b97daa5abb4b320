package app

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/daemon"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/schedules"
)

func (a *App) daemonCommand() *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run scheduled checks inside maintenance windows until SIGTERM",
		Long: `Checks every device inside its maintenance windows, gently, and raises alerts
for unapproved changes, missed windows, overdue monitoring and overdue planned
changes. SIGHUP reloads the config (a bad one is rejected and the running one
kept); SIGTERM or SIGINT stops it after in-flight checks end (at their window's
end, or after --grace).

Alerts go to standard output (when alerts.console is enabled), the alert log
and syslog; logs go to standard error, JSON lines at level info unless
--log-format console or --log-level say otherwise. The two never share a
stream.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if a.logFormat == "" {
				a.logFormat = "json"
			}
			if a.logLevel == "" {
				a.logLevel = "info"
			}
			a.alertOut = a.Stdout
			log, err := a.logger()
			if err != nil {
				return usageError("%v", err)
			}
			stopConsole, err := a.daemonConsole(c.Context(), log, nil)
			if err != nil {
				return err
			}
			defer stopConsole()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return daemon.Run(c.Context(), daemon.Options{
				ConfigPath: config.Path(a.configFlag),
				Log:        log,
				Reload:     hup,
				Grace:      grace,
				Service: func(cfg *config.Config) (*monitor.Service, func() error, error) {
					e, err := a.openWith(c.Context(), cfg)
					if err != nil {
						return nil, nil, err
					}
					e.Svc.Log = log
					return e.Svc, e.Close, nil
				},
			})
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 60*time.Second, "how long in-flight checks may run on after SIGTERM")
	return cmd
}

func (a *App) windowsCommand() *cobra.Command {
	var n int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "windows",
		Short: "Show the next maintenance windows of every device and when each is checked",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			p, err := schedules.New(cfg)
			if err != nil {
				return err
			}
			rows := p.Upcoming(cfg, a.Now(), n)
			if asJSON {
				return writeJSON(a.Stdout, nonNil(rows))
			}
			for _, d := range cfg.Devices {
				if len(cfg.WindowsFor(d)) == 0 {
					fmt.Fprintf(a.Stdout, "%-20s in no window: checked only on demand\n", d.Name)
				}
			}
			for _, r := range rows {
				fmt.Fprintf(a.Stdout, "%-20s %-12s %s -> %s  check at %s  (%s %s)\n", r.Device, r.Window,
					timeText(r.Start), timeText(r.End), timeText(r.FirstCheck), r.TimeZone, r.Start.Format("2006-01-02 15:04 MST"))
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&n, "next", "n", 3, "occurrences per device")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
