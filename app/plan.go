package app

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

func (a *App) planCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan DEVICE",
		Short: "Show what a snapshot will send to a device, without touching it",
		Long: `Prints each request a snapshot of the device will send (function, object),
their count and bytes, and the time the device's rate limit implies. Exact
after a first snapshot (it replays what that snapshot recorded), an estimate
before. This is what a change-control board reviews before approving
plcwatch on a site.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			// plan only reads: it never creates a store. Before the first
			// snapshot (no store yet) it prints the estimate and says so.
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			dev, err := device(cfg, args[0])
			if err != nil {
				return err
			}
			var prev *snapshots.Snapshot
			st, err := store.Open(cfg.StorePath(), store.ReadOnly())
			switch {
			case errors.Is(err, os.ErrNotExist):
				fmt.Fprintf(a.Stderr, "plcwatch: no store at %s yet: the plan is an estimate\n", cfg.StorePath())
			case err != nil:
				return err
			default:
				defer st.Close()
				prev, err = st.Latest(c.Context(), dev.Name, true)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			env := &env{Cfg: cfg}
			conn, gate, err := connectors.Open(dev, env.Cfg.Classification, zerolog.Nop(), nil)
			if err != nil {
				return err
			}
			defer conn.Close()
			p, err := conn.Plan(prev)
			if err != nil {
				return err
			}
			lim := env.Cfg.LimitsFor(dev)
			n, out, in := p.Totals()
			steps := n
			if p.Steps > 0 {
				steps = p.Steps // the rate limit admits gated steps
			}
			minTime := time.Duration(0)
			if lim.RequestsPerSecond > 0 && steps > 1 {
				minTime = time.Duration(float64(steps-1) / lim.RequestsPerSecond * float64(time.Second))
			}
			if asJSON {
				return writeJSON(a.Stdout, map[string]any{"plan": p, "requests": n, "bytes_out": out, "bytes_in": in,
					"requests_per_second": lim.RequestsPerSecond, "max_in_flight": lim.MaxInFlight,
					"min_duration": minTime.String(), "allowlist": gate.Allowlist()})
			}
			printPlan(a, dev, p, lim, n, out, in, minTime, gate.Allowlist())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printPlan(a *App, dev *config.Device, p *connectors.Plan, lim config.Limits, n int, out, in int64, minTime time.Duration, allow []string) {
	kind := "ESTIMATE (no complete snapshot stored yet)"
	if p.Exact {
		kind = "EXACT for an unchanged device"
	}
	fmt.Fprintf(a.Stdout, "plan for %s (%s %s): %s\n  basis: %s\n\n", dev.Name, dev.Protocol, dev.Endpoint, kind, p.Basis)
	fmt.Fprintf(a.Stdout, "  %-28s %-30s %6s %10s %10s\n", "request", "object", "count", "bytes out", "bytes in")
	for _, r := range p.Requests {
		fmt.Fprintf(a.Stdout, "  %-28s %-30s %6d %10d %10d\n", r.Kind, r.Object, r.Count, r.BytesOut, r.BytesIn)
	}
	fmt.Fprintf(a.Stdout, "  %-28s %-30s %6d %10d %10d\n\n", "total", "", n, out, in)
	fmt.Fprintf(a.Stdout, "rate limit: %.3g requests/s, %d in flight, request timeout %s: at least %s per snapshot\n",
		lim.RequestsPerSecond, lim.MaxInFlight, lim.RequestTimeout, minTime.Round(time.Millisecond))
	for _, note := range p.Notes {
		fmt.Fprintf(a.Stdout, "note: %s\n", note)
	}
	fmt.Fprintf(a.Stdout, "read-only allowlist (anything else is refused before the wire): %v\n", allow)
}
