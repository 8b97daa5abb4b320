// Package app implements plcwatch's command line. Each command is a method
// that can be run in-process (tests do) with its own standard streams.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"os/user"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
)

// Exit codes, shared by every command (like diff(1)).
const (
	ExitOK       = 0 // no difference, no finding
	ExitFindings = 1 // differences, unapproved changes or verification findings
	ExitError    = 2 // the command could not do its job
)

// Version is stamped at build time with -ldflags "-X ...app.Version=...".
var Version = "dev"

// ExitError carries a specific exit code out of a command.
type ExitCodeError struct {
	Code int
	Err  error
}

func (e *ExitCodeError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitCodeError) Unwrap() error { return e.Err }

// errFindings is returned by commands that completed and found something
// (exit 1) and already said so on stdout.
var errFindings = &ExitCodeError{Code: ExitFindings}

// App holds the process environment a command runs in.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Now is the clock; tests may fix it.
	Now func() time.Time
	// OSUser returns the operating-system account running the command.
	OSUser func() string
	// SessionExe is the plcwatch binary that runs isolated protocol
	// sessions (`SessionExe __session`); empty runs connectors in this
	// process whatever the config says. Main sets it to the running
	// executable; tests that run commands in-process leave it empty.
	SessionExe string

	configFlag string
	logFormat  string
	logLevel   string
	// alertOut is where the console alert sink writes: standard error for
	// commands (their standard output is the command's result), standard
	// output for the daemon (whose logs are on standard error).
	alertOut io.Writer
}

// New returns an App on the process's standard streams.
func New() *App {
	return &App{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Now: time.Now,
		OSUser: func() string {
			if u, err := user.Current(); err == nil {
				return u.Username
			}
			return fmt.Sprintf("uid:%d", os.Getuid())
		},
	}
}

// ExitInterrupted is the exit code after SIGINT (Ctrl-C), as shells report
// a process killed by it (128 + 2); SIGTERM gives 143.
const ExitInterrupted = 130

// Interrupted is the cause of a context cancelled by a signal.
type Interrupted struct{ Signal os.Signal }

func (i *Interrupted) Error() string { return "interrupted by " + i.Signal.String() }

// NotifyContext returns a context cancelled, with *Interrupted as its cause,
// when one of sigs arrives; stop releases the signals.
func NotifyContext(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			cancel(&Interrupted{Signal: sig})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(context.Canceled)
	}
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string) int {
	a := New()
	if exe, err := os.Executable(); err == nil {
		a.SessionExe = exe
	}
	return a.ExitContext(ctx, a.Run(ctx, args))
}

// ExitContext is Exit, except that a run stopped by a signal (ctx's cause is
// *Interrupted) exits 128 + the signal number (130 for Ctrl-C) and says so:
// the operator stopped it, no controller failed.
func (a *App) ExitContext(ctx context.Context, err error) int {
	var in *Interrupted
	if err != nil && errors.As(context.Cause(ctx), &in) {
		fmt.Fprintf(a.Stderr, "plcwatch: %v; nothing was recorded against the device being read: %v\n", in, err)
		if s, ok := in.Signal.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return ExitInterrupted
	}
	return a.Exit(err)
}

// Exit maps a command's error to an exit code, printing it first.
func (a *App) Exit(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec *ExitCodeError
	if errors.As(err, &ec) {
		if ec.Err != nil {
			fmt.Fprintln(a.Stderr, "plcwatch:", ec.Err)
		}
		return ec.Code
	}
	fmt.Fprintln(a.Stderr, "plcwatch:", err)
	return ExitError
}

// Run parses args and runs one command.
func (a *App) Run(ctx context.Context, args []string) error {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	return root.ExecuteContext(ctx)
}

// RootCommand returns the whole command tree, for generating the manual
// pages (internal/mangen); running it is Run's job.
func (a *App) RootCommand() *cobra.Command { return a.rootCommand() }

func (a *App) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "plcwatch",
		Short: "Watch PLCs for unapproved configuration changes, read-only",
		Long: `plcwatch reads the logic, setpoint, firmware, mode and protection metadata of
PLCs (Siemens S7, Rockwell Logix, OPC UA), stores each reading as a hash-chained
snapshot, compares it with the approved baseline and alerts on unapproved
changes. It never writes to a controller.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.PersistentFlags().StringVarP(&a.configFlag, "config", "c", "", "config file (default $"+config.EnvPath+" or ./"+config.DefaultPath+")")
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", "", "log format on standard error: json or console (default console; json for daemon)")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn, error (default warn; info for daemon)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitCodeError{Code: ExitError, Err: fmt.Errorf("%s: %w (see %s --help)", c.CommandPath(), err, c.CommandPath())}
	})
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		// gopcua's server writes to the standard logger; send it to ours.
		if l, err := a.logger(); err == nil {
			log.SetOutput(opcuasim.LibraryLogWriter(l))
		}
		return nil
	}
	for _, c := range a.commands() {
		root.AddCommand(c)
	}
	return root
}

// loadConfig loads the config named by --config, PLCWATCH_CONFIG or the
// default path.
func (a *App) loadConfig() (*config.Config, error) {
	return connectors.LoadConfig(config.Path(a.configFlag))
}

// logger builds the process logger from --log-format and --log-level.
func (a *App) logger() (zerolog.Logger, error) {
	level, format := a.logLevel, a.logFormat
	if level == "" {
		level = "warn"
	}
	if format == "" {
		format = "console"
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Nop(), fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	var w io.Writer
	switch format {
	case "json":
		w = a.Stderr
	case "console":
		w = zerolog.ConsoleWriter{Out: a.Stderr, NoColor: !a.isTerminal(a.Stderr), TimeFormat: time.RFC3339}
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format %q: want json or console", a.logFormat)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func (a *App) isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// usageError is an error in the command's arguments.
func usageError(format string, args ...any) error {
	return &ExitCodeError{Code: ExitError, Err: fmt.Errorf(format, args...)}
}
