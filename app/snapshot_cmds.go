package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/store"
)

// device returns the named device or a usage error listing the known ones.
func device(cfg *config.Config, name string) (*config.Device, error) {
	if d := cfg.Device(name); d != nil {
		return d, nil
	}
	var names []string
	for _, d := range cfg.Devices {
		names = append(names, d.Name)
	}
	return nil, usageError("no device %q in %s (devices: %v)", name, cfg.File, names)
}

func (a *App) snapshotCommand() *cobra.Command {
	var label string
	var asJSON, full bool
	cmd := &cobra.Command{
		Use:   "snapshot DEVICE",
		Short: "Read a device now (on demand, outside windows) and store a snapshot",
		Long: `Reads the device now and stores a snapshot; prints its id (or, with --json, the
snapshot). A person asking is what allows a read outside maintenance windows.
A partial read is stored as partial and exits 1. With --full nothing is carried
forward from the previous snapshot (Logix tag database, OPC UA DataType and
AccessLevel): everything is read, as the daemon does every full_read_every
windows.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if label != "" && !validLabel(label) {
				return usageError("--label %q: want letters, digits, '.', '_' or '-' (not \"latest\" or \"baseline\")", label)
			}
			env, dev, err := a.openDevice(c.Context(), args[0])
			if err != nil {
				return err
			}
			defer env.Close()
			s, err := env.Svc.Snapshot(c.Context(), dev, monitor.SnapshotOptions{Label: label, ForceFull: full})
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(a.Stdout, s); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(a.Stdout, s.ID)
			}
			if !s.Status.Complete {
				fmt.Fprintf(a.Stderr, "plcwatch: snapshot %s of %s is PARTIAL: %v\n", s.ID, dev.Name, s.Status.Reasons)
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&label, "label", "", "label the snapshot (e.g. before, after); name it later as DEVICE@LABEL")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the snapshot as JSON")
	cmd.Flags().BoolVar(&full, "full", false, "read everything: carry nothing forward from the previous snapshot")
	return cmd
}

func (a *App) showCommand() *cobra.Command {
	var asJSON, summary bool
	cmd := &cobra.Command{
		Use:   "show SNAPSHOT",
		Short: "Print a stored snapshot (by id, DEVICE@latest, DEVICE@baseline or DEVICE@LABEL)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			defer shortLivedGC()()
			env, err := a.openRead(c.Context(), store.MapReads())
			if err != nil {
				return err
			}
			defer env.Close()
			s, err := env.Store.Resolve(c.Context(), args[0])
			if err != nil {
				return fmt.Errorf("show %s: %w", args[0], err)
			}
			if asJSON {
				cp := *s
				cp.Items = naturalItems(s.Items)
				return writeJSON(a.Stdout, &cp)
			}
			if summary {
				renderSummary(a.Stdout, s)
				return nil
			}
			return renderSnapshot(a.Stdout, s)
		},
	}
	cmd.Flags().BoolVar(&summary, "summary", false, "print the header and the item counts by kind only")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// historyEntry is one line of `plcwatch history`.
type historyEntry struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Type    string          `json:"type"`
	Summary string          `json:"summary"`
	Digest  string          `json:"digest"`
	Body    json.RawMessage `json:"body,omitempty"`
}

func (a *App) historyCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history DEVICE",
		Short: "List a device's snapshots, approvals, alerts and acknowledgements in time order",
		Long:  "Exit 0, or 2 for a device that is neither in the config nor in the store.",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			env, err := a.openRead(c.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			recs, err := env.Store.Records(c.Context(), args[0])
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				if err := knownDevice(c.Context(), env, args[0]); err != nil {
					return err
				}
			}
			var out []historyEntry
			for _, r := range recs {
				out = append(out, historyEntry{Seq: r.Seq, Time: r.Time, Type: r.Type, Summary: summarize(r), Digest: r.Digest, Body: r.Body})
			}
			if asJSON {
				return writeJSON(a.Stdout, out)
			}
			// One write per 64 KiB rather than per record: a device
			// has thousands.
			bw := bufio.NewWriterSize(a.Stdout, 64<<10)
			for _, e := range out {
				fmt.Fprintf(bw, "%5d  %s  %-12s %s\n", e.Seq, timeText(e.Time), e.Type, e.Summary)
			}
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("writing the history: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// summarize describes a record in one line.
func summarize(r store.Record) string {
	switch r.Type {
	case store.TypeSnapshot:
		var b store.SnapshotRef
		if json.Unmarshal(r.Body, &b) == nil {
			s := "snapshot " + b.ID
			if b.Label != "" {
				s += " label=" + b.Label
			}
			if !b.Complete {
				s += " PARTIAL"
			}
			return s
		}
	case store.TypeApproval:
		var b store.Approval
		if json.Unmarshal(r.Body, &b) == nil {
			return fmt.Sprintf("baseline -> %s by %s (%s) ticket %s: %s", b.Snapshot, b.By, b.OSUser, b.Ticket, b.Comment)
		}
	case store.TypeAck:
		var b store.Ack
		if json.Unmarshal(r.Body, &b) == nil {
			return fmt.Sprintf("alert %s acknowledged by %s (%s): %s: %s", b.Alert, b.By, b.OSUser, b.Decision, b.Comment)
		}
	case store.TypeAlertSeen:
		var b store.AlertSeen
		if json.Unmarshal(r.Body, &b) == nil {
			return fmt.Sprintf("alert %s seen again in %s", b.Alert, b.Snapshot)
		}
	case store.TypeRules:
		return "classification rules changed"
	}
	return summarizeOther(r)
}

// knownDevice returns a usage error (exit 2) when name is neither a
// configured device nor one with records in the store.
func knownDevice(ctx context.Context, e *env, name string) error {
	if e.Cfg.Device(name) != nil {
		return nil
	}
	recs, err := e.Store.Records(ctx, name)
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		return nil
	}
	var names []string
	for _, d := range e.Cfg.Devices {
		names = append(names, d.Name)
	}
	return usageError("no device %q in %s or the store (devices: %v)", name, e.Cfg.File, names)
}

// open loads the config and opens the store and the monitor service.
func (a *App) open(ctx context.Context) (*env, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	return a.openWith(ctx, cfg)
}

// openDevice opens the environment and finds the named device in the
// config (closing what it opened when the device is unknown).
func (a *App) openDevice(ctx context.Context, name string) (*env, *config.Device, error) {
	e, err := a.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	dev, err := device(e.Cfg, name)
	if err != nil {
		e.Close()
		return nil, nil, err
	}
	return e, dev, nil
}
