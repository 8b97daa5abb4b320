package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	logixsim "github.com/plcwatch/plcwatch/simulators/logix"
	opcuasim "github.com/plcwatch/plcwatch/simulators/opcua"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
)

// simServer is what the sim command needs of a running simulator.
type simServer interface {
	Addr() string
	Requests() map[string]int
	Refused() int
	Close() error
}

func (a *App) simCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a protocol simulator (for the demo, tests and trying plcwatch out)",
		Long: `Runs a simulated controller on a loopback address until interrupted. The
simulators speak the real protocols, count every request by kind, and refuse
(and count) any write or control request.`,
	}
	var listen, scenario, stateDir string
	opcua := &cobra.Command{
		Use:   "opcua",
		Short: "OPC UA server shaped like a small plant controller",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			log, err := a.logger()
			if err != nil {
				return usageError("%v", err)
			}
			if err := loopbackOnly(listen); err != nil {
				return err
			}
			s, err := opcuasim.Start(c.Context(), opcuasim.Options{Listen: listen, ScenarioFile: scenario, StateDir: simStateDir(stateDir, scenario), Logger: log})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "OPC UA simulator listening on %s (endpoint %s, certificate sha256 %s)\n", s.Addr(), s.Endpoint(), s.Thumbprint())
			return a.serveUntilDone(c.Context(), s)
		},
	}
	opcua.Flags().StringVar(&listen, "listen", "127.0.0.1:4840", "loopback address to listen on")
	opcua.Flags().StringVar(&scenario, "scenario", "", "scenario YAML file (default: the built-in plant)")
	opcua.Flags().StringVar(&stateDir, "state-dir", "", "directory keeping the server certificate and key across restarts (default: the scenario's directory, else plcwatch/opcua-sim in the user cache directory)")
	cmd.AddCommand(opcua)
	cmd.AddCommand(a.simS7Command(), a.simLogixCommand())
	return cmd
}

// serveUntilDone waits for ctx (Ctrl-C), stops the simulator and prints
// what it received.
func (a *App) serveUntilDone(ctx context.Context, s simServer) error {
	<-ctx.Done()
	err := s.Close()
	reqs := s.Requests()
	var kinds []string
	for k := range reqs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(a.Stdout, "stopped; requests received:")
	for _, k := range kinds {
		fmt.Fprintf(a.Stdout, " %s=%d", k, reqs[k])
	}
	fmt.Fprintf(a.Stdout, "; refused write/control requests: %d\n", s.Refused())
	return err
}

// loopbackOnly refuses to listen anywhere but on this machine: a simulator
// must never appear on a plant network.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError("--listen %q: want host:port such as 127.0.0.1:4840", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return usageError("--listen %q: simulators listen on loopback addresses only (127.0.0.0/8 or ::1)", addr)
	}
	return nil
}

// simSubcommand builds one `sim PROTOCOL` command: it checks --listen is a
// loopback address, starts the simulator and serves until interrupted.
func (a *App) simSubcommand(use, short, listenDefault, scenarioHelp string, start func(ctx context.Context, listen, scenario string, log zerolog.Logger) (simServer, error)) *cobra.Command {
	var listen, scenario string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			log, err := a.logger()
			if err != nil {
				return usageError("%v", err)
			}
			if err := loopbackOnly(listen); err != nil {
				return err
			}
			s, err := start(c.Context(), listen, scenario, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "%s simulator listening on %s\n", use, s.Addr())
			return a.serveUntilDone(c.Context(), s)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", listenDefault, "loopback address to listen on")
	cmd.Flags().StringVar(&scenario, "scenario", "", scenarioHelp)
	return cmd
}

func (a *App) simS7Command() *cobra.Command {
	return a.simSubcommand("s7", "Siemens S7comm server (ISO-on-TCP) holding a small S7-300 program (real PLCs use port 102)",
		"127.0.0.1:1102", "scenario YAML file (default: the built-in demo program)",
		func(ctx context.Context, listen, scenario string, log zerolog.Logger) (simServer, error) {
			opt := s7sim.Options{Listen: listen, Logger: log}
			if scenario != "" {
				sc, err := s7sim.LoadScenario(scenario)
				if err != nil {
					return nil, err
				}
				opt.Scenario = sc
			}
			return s7sim.Start(ctx, opt)
		})
}

func (a *App) simLogixCommand() *cobra.Command {
	return a.simSubcommand("logix", "Rockwell Logix controller (CIP over EtherNet/IP)",
		"127.0.0.1:44818", "scenario YAML file (default: the built-in demo plant)",
		func(ctx context.Context, listen, scenario string, log zerolog.Logger) (simServer, error) {
			opt := logixsim.Options{Listen: listen, Log: log}
			if scenario != "" {
				sc, err := logixsim.LoadScenario(scenario)
				if err != nil {
					return nil, err
				}
				opt.Scenario = sc
			}
			return logixsim.Start(ctx, opt)
		})
}

// simStateDir is where `sim opcua` keeps its certificate: the flag, else
// the scenario's directory (the simulator's default), else a folder in the
// user's cache directory, so that a restarted simulator presents the same
// certificate as a real server does.
func simStateDir(flag, scenario string) string {
	if flag != "" || scenario != "" {
		return flag
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "plcwatch", "opcua-sim")
	}
	return ""
}
