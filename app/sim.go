package app

import (
	"context"
	"fmt"
	"net"
	"sort"

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
	var listen, scenario string
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
			s, err := opcuasim.Start(c.Context(), opcuasim.Options{Listen: listen, ScenarioFile: scenario, Logger: log})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "OPC UA simulator listening on %s (endpoint %s, certificate sha256 %s)\n", s.Addr(), s.Endpoint(), s.Thumbprint())
			return a.serveUntilDone(c.Context(), s)
		},
	}
	opcua.Flags().StringVar(&listen, "listen", "127.0.0.1:4840", "loopback address to listen on")
	opcua.Flags().StringVar(&scenario, "scenario", "", "scenario YAML file (default: the built-in plant)")
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

func (a *App) simS7Command() *cobra.Command {
	var listen, scenario string
	cmd := &cobra.Command{
		Use:   "s7",
		Short: "Siemens S7comm server (ISO-on-TCP) holding a small S7-300 program",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			log, err := a.logger()
			if err != nil {
				return usageError("%v", err)
			}
			if err := loopbackOnly(listen); err != nil {
				return err
			}
			opt := s7sim.Options{Listen: listen, Logger: log}
			if scenario != "" {
				sc, err := s7sim.LoadScenario(scenario)
				if err != nil {
					return err
				}
				opt.Scenario = sc
			}
			s, err := s7sim.Start(c.Context(), opt)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "S7 simulator listening on %s\n", s.Addr())
			return a.serveUntilDone(c.Context(), s)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:1102", "loopback address to listen on (real PLCs use port 102)")
	cmd.Flags().StringVar(&scenario, "scenario", "", "scenario YAML file (default: the built-in demo program)")
	return cmd
}

func (a *App) simLogixCommand() *cobra.Command {
	var listen, scenario string
	cmd := &cobra.Command{
		Use:   "logix",
		Short: "Rockwell Logix controller (CIP over EtherNet/IP)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			log, err := a.logger()
			if err != nil {
				return usageError("%v", err)
			}
			if err := loopbackOnly(listen); err != nil {
				return err
			}
			opt := logixsim.Options{Listen: listen, Log: log}
			if scenario != "" {
				sc, err := logixsim.LoadScenario(scenario)
				if err != nil {
					return err
				}
				opt.Scenario = sc
			}
			s, err := logixsim.Start(c.Context(), opt)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Logix simulator listening on %s\n", s.Addr())
			return a.serveUntilDone(c.Context(), s)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:44818", "loopback address to listen on")
	cmd.Flags().StringVar(&scenario, "scenario", "", "scenario YAML file (default: the built-in demo plant)")
	return cmd
}
