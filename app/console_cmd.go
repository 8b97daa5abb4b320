package app

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/alexedwards/argon2id"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/console"
)

func (a *App) consoleCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the local web console (127.0.0.1:8686 by default) until SIGTERM",
		Long: `Serves the web console over the store: fleet overview, alerts with
acknowledgement, device history, side-by-side diffs, baseline approval and
planned changes, with new alerts shown live. It never talks to a controller.
Any address that is not loopback needs console.users and TLS (or
insecure_http: true) in the config. Logs go to standard error at level info
unless --log-level says otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if a.logLevel == "" {
				a.logLevel = "info"
			}
			env, err := a.open(c.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			log, err := a.logger()
			if err != nil {
				return usageError("%v", err)
			}
			srv, err := console.New(console.Options{Cfg: env.Cfg, Store: env.Store, Svc: env.Svc, Heads: env.Svc.Heads,
				Log: log, Listen: listen, OSUser: a.OSUser(), Now: a.Now})
			if err != nil {
				return &ExitCodeError{Code: ExitError, Err: err}
			}
			ready := make(chan string, 1)
			go func() {
				if addr, ok := <-ready; ok {
					fmt.Fprintf(a.Stdout, "plcwatch console on %s (stop with Ctrl-C)\n", addr)
				}
			}()
			err = srv.Serve(c.Context(), ready)
			close(ready)
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "host:port to serve on (default console.listen, else 127.0.0.1:8686)")
	cmd.AddCommand(&cobra.Command{
		Use:   "hash-password",
		Short: "Read a password on standard input and print its argon2id hash for console.users[].password_hash",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			line, err := bufio.NewReader(a.Stdin).ReadString('\n')
			pw := strings.TrimRight(line, "\r\n")
			if pw == "" {
				if err != nil {
					return usageError("hash-password: want the password on standard input: %v", err)
				}
				return usageError("hash-password: the password is empty")
			}
			h, err := argon2id.CreateHash(pw, argon2id.DefaultParams)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.Stdout, h)
			return nil
		},
	})
	return cmd
}

// daemonConsole starts the web console beside the daemon when the config
// says console.enabled: true (read once at start; a reload does not move
// it). The returned stop waits for the console to shut down.
// ready, when not nil, receives the console's address once it listens.
func (a *App) daemonConsole(ctx context.Context, log zerolog.Logger, ready chan<- string) (stop func(), err error) {
	cfg, err := a.loadConfig()
	if err != nil || !cfg.ConsoleEnabled() {
		// A config that does not load is the daemon's to report.
		return func() {}, nil
	}
	env, err := a.openWith(ctx, cfg)
	if err != nil {
		return nil, err
	}
	srv, err := console.New(console.Options{Cfg: cfg, Store: env.Store, Svc: env.Svc, Heads: env.Svc.Heads,
		Log: log.With().Str("component", "console").Logger(), OSUser: a.OSUser(), Now: a.Now})
	if err != nil {
		env.Close()
		return nil, &ExitCodeError{Code: ExitError, Err: err}
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(cctx, ready); err != nil {
			log.Error().Err(err).Msg("console stopped")
		}
	}()
	return func() { cancel(); <-done; env.Close() }, nil
}
