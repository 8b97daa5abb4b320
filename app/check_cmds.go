package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/limits"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// labelRE with a length check of 32 bytes (a counted repetition compiles
// to a one-pass program of that many states at every process start).
var labelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) })

// validLabel reports whether a label is well formed and not one of the
// reserved reference words.
func validLabel(l string) bool {
	return len(l) <= 32 && labelRE().MatchString(l) && l != "latest" && l != "baseline"
}

// sinks builds the configured alert sinks. The console sink goes to
// a.alertOut, else stderr, so that --json output on stdout stays
// machine-readable.
func (a *App) sinks(cfg *config.Config) (alerts.Sink, monitor.HeadWriter, func() error, error) {
	var fan alerts.Fanout
	if *cfg.Alerts.Console.Enabled {
		w := a.alertOut
		if w == nil {
			w = a.Stderr
		}
		color := cfg.Alerts.Console.Color == "always" || (cfg.Alerts.Console.Color == "auto" && a.isTerminal(w))
		fan = append(fan, &alerts.Console{W: w, Color: color})
	}
	jl := &alerts.JSONL{Path: cfg.AlertLogPath()}
	fan = append(fan, jl)
	closer := func() error { return nil }
	if cfg.Alerts.Syslog.Enabled {
		sl, err := alerts.NewSyslog(cfg.Alerts.Syslog.Address, cfg.Alerts.Syslog.Facility, cfg.Alerts.Syslog.AppName)
		if err != nil {
			return nil, nil, nil, err
		}
		fan = append(fan, sl)
		closer = sl.Close
	}
	return fan, jl, closer, nil
}

func (a *App) checkCommand() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "check DEVICE... | --all",
		Short: "Snapshot devices now and compare them with their approved baselines",
		Long: `Reads each device now (a person asking allows it outside windows), stores the
snapshot, compares it with the approved baseline and raises alerts for
unapproved changes. Exit 0: no unapproved change; 1: changes, partial reads,
failed reads or devices without a baseline; 2: error.`,
		RunE: func(c *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usageError("check: name devices or give --all, not both or neither")
			}
			env, err := a.open(c.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			devs := env.Cfg.Devices
			if !all {
				devs = nil
				for _, n := range args {
					d, err := device(env.Cfg, n)
					if err != nil {
						return err
					}
					devs = append(devs, d)
				}
			}
			findings := false
			var results []*monitor.CheckResult
			progress := a.isTerminal(a.Stderr) && len(devs) > 1 && !asJSON
			// Devices are read at once up to daemon.max_concurrent_devices,
			// as the daemon reads them, under the same per-device and
			// gateway limits (env.Svc.Limiter); results print in config
			// order. A hard error stops devices not yet started.
			ctx, cancel := context.WithCancel(c.Context())
			defer cancel()
			type outcome struct {
				res *monitor.CheckResult
				err error
			}
			outs := make([]*outcome, len(devs))
			var mu sync.Mutex
			next, done := 0, 0
			var hard error
			emit := func() { // with mu held: print what is ready, in order
				for next < len(devs) && outs[next] != nil {
					o := outs[next]
					next++
					if hard != nil {
						continue
					}
					if o.err != nil && (o.res == nil || o.res.Error == "") {
						hard = o.err
						cancel()
						continue
					}
					results = append(results, o.res)
					if o.res.Verdict.Findings {
						findings = true
					}
					if !asJSON {
						printCheck(a.Stdout, o.res)
					}
				}
			}
			names := make([]string, len(devs))
			for i, d := range devs {
				names[i] = d.Name
			}
			runLimited(ctx, limits.NewFleetSlots(env.Cfg), names, func(ctx context.Context, i int, collected func()) {
				// The slot is freed once the device is read: storing,
				// comparing and alerting overlap the next device's read.
				res, err := env.Svc.Check(ctx, devs[i], monitor.SnapshotOptions{Collected: collected})
				if err == nil && res == nil {
					err = fmt.Errorf("check %s: no result", devs[i].Name)
				}
				mu.Lock()
				defer mu.Unlock()
				outs[i] = &outcome{res, err}
				done++
				if progress {
					fmt.Fprintf(a.Stderr, "\r[%d/%d] checked %s\x1b[K", done, len(devs), devs[i].Name)
				}
				emit()
			})
			if progress {
				fmt.Fprint(a.Stderr, "\r\x1b[K")
			}
			if hard != nil {
				return hard
			}
			if err := c.Context().Err(); err != nil {
				return err
			}
			if next < len(devs) {
				return fmt.Errorf("check: %d of %d devices were not checked", len(devs)-next, len(devs))
			}
			if asJSON {
				if err := writeJSON(a.Stdout, results); err != nil {
					return err
				}
			}
			if findings {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "check every configured device")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

// runLimited calls fn(ctx, i, collected) for each device names[i], each
// once it has a slot (limits.DeviceSlots: the daemon's cap and gateway
// shares, as the daemon reads them), and returns when every call has
// returned. A call holds its slot until it calls collected (the device has
// been read; calling it again does nothing) or returns. Devices queue for
// their slots at once, in config order (devices behind a gateway with share
// left go first), so one waiting for its gateway's share does not hold up
// the next. Calls not yet started when ctx ends are skipped.
func runLimited(ctx context.Context, slots *limits.DeviceSlots, names []string, fn func(ctx context.Context, i int, collected func())) {
	var wg sync.WaitGroup
	tickets := slots.ReserveAll(names) // in config order, gateways first
	for i := range names {
		wg.Go(func() {
			release, err := tickets[i].Wait(ctx)
			if err != nil {
				return
			}
			defer release()
			if ctx.Err() != nil { // a slot and the end came at once
				return
			}
			fn(ctx, i, release)
		})
	}
	wg.Wait()
}

// printCheck prints one device's check: the words are the verdict's
// (monitor.CheckResult.Decide), from which the exit code derives too.
func printCheck(w io.Writer, r *monitor.CheckResult) {
	v := r.Verdict
	switch {
	case r.Error != "":
		fmt.Fprintf(w, "%s: %s", r.Device, v.Summary)
	case r.NoBaseline:
		fmt.Fprintf(w, "%s: snapshot %s stored; %s: review it (plcwatch show %s) and approve it (plcwatch approve %s --ticket ... --by ...)",
			r.Device, r.SnapshotID, v.Summary, r.SnapshotID, r.SnapshotID)
	default:
		fmt.Fprintf(w, "%s: snapshot %s vs baseline %s: %s", r.Device, r.SnapshotID, r.BaselineID, v.Summary)
	}
	if act := r.Active(); len(act) > 0 {
		var ids []string
		for _, al := range act {
			ids = append(ids, al.ID)
		}
		fmt.Fprintf(w, " (alerts: %s)", strings.Join(ids, ", "))
	}
	fmt.Fprintln(w)
	if r.Report != nil && r.Report.Info > 0 {
		for _, c := range r.Report.Changes {
			if c.Info && c.Type == diffing.Changed && c.Kind == snapshots.KindInfo && c.Old != nil && c.New != nil {
				// An info item that moved, such as the S7 CPU's
				// "info/mode_transition: T1 -> T2" after a restart.
				fmt.Fprintf(w, "%s:   info: %s: %s -> %s\n", r.Device, diffing.Printable(c.Path),
					diffing.Printable(c.Old.Value.String()), diffing.Printable(c.New.Value.String()))
				continue
			}
			if c.Info && c.Type == diffing.Touched {
				// A restart shown as information: "mode/cpu
				// meta.last_transition: T1 -> T2".
				for _, f := range c.Fields {
					k := strings.TrimPrefix(f, "attrs.")
					fmt.Fprintf(w, "%s:   info: %s %s: %s -> %s\n", r.Device, diffing.Printable(c.Path), diffing.Printable(k),
						diffing.Printable(c.Old.Attrs[k]), diffing.Printable(c.New.Attrs[k]))
				}
			}
		}
	}
}

func (a *App) diffCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two stored snapshots (ids, DEVICE@latest, DEVICE@baseline, DEVICE@LABEL)",
		Long:  "Exit codes like diff(1): 0 same, 1 different, 2 error.",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			defer shortLivedGC()()
			env, err := a.openRead(c.Context(), store.MapReads())
			if err != nil {
				return err
			}
			defer env.Close()
			// Items both snapshots hold byte for byte are verified but
			// never decoded: they compare equal.
			p, err := env.Store.ResolveDiff(c.Context(), args[0], args[1])
			if err != nil {
				return fmt.Errorf("diff %s %s: %w", args[0], args[1], err)
			}
			rep := diffing.Compare(p.Old, p.New, diffing.Options{})
			if asJSON {
				err = writeJSON(a.Stdout, rep)
			} else {
				err = diffing.Render(a.Stdout, rep, diffing.RenderOptions{Color: a.isTerminal(a.Stdout)})
			}
			if err != nil {
				return err
			}
			if !rep.Equal() {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *App) approveCommand() *cobra.Command {
	var req monitor.ApproveRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "approve SNAPSHOT_ID --ticket CHG-123 --by NAME [--comment TEXT]",
		Short: "Make a reviewed snapshot the device's baseline",
		Long: `Records a person's approval of a snapshot as the device's new baseline: who
(--by and the OS user), when, the change ticket, a comment, and the old and
new baseline digests. Takes an immutable snapshot id only (never
DEVICE@latest), refuses partial snapshots, and refuses when the baseline moved
since the snapshot was compared with it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			env, err := a.open(c.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			req.SnapshotID, req.OSUser = args[0], a.OSUser()
			ap, err := env.Svc.Approve(c.Context(), req)
			if err != nil {
				if errors.Is(err, monitor.ErrApproveRef) || errors.Is(err, monitor.ErrApprovePartial) ||
					errors.Is(err, monitor.ErrBaselineMoved) || errors.Is(err, monitor.ErrAlreadyBase) {
					return &ExitCodeError{Code: ExitError, Err: err}
				}
				return err
			}
			dev := deviceOf(c.Context(), env, ap.Snapshot)
			if asJSON {
				return writeJSON(a.Stdout, struct {
					Device string `json:"device"`
					*store.Approval
				}{dev, ap})
			}
			fmt.Fprintf(a.Stdout, "baseline of %s is now %s (approved by %s as %s, ticket %s)\n", dev, ap.Snapshot, ap.By, ap.OSUser, ap.Ticket)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the recorded approval as JSON")
	cmd.Flags().StringVar(&req.Ticket, "ticket", "", "change ticket id (required)")
	cmd.Flags().StringVar(&req.By, "by", "", "name of the person approving (required)")
	cmd.Flags().StringVar(&req.Comment, "comment", "", "why this is the new baseline")
	cmd.MarkFlagRequired("ticket")
	cmd.MarkFlagRequired("by")
	return cmd
}

func deviceOf(ctx context.Context, e *env, id string) string {
	if s, err := e.Store.Snapshot(ctx, id); err == nil {
		return s.Device
	}
	return "device"
}

func (a *App) alertsCommand() *cobra.Command {
	var open, asJSON bool
	var dev string
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List alerts, newest first",
		Long: `Lists alerts, newest first. Exit 0: no open alert listed; 1: an open (not
acknowledged, not resolved) alert is listed; 2: error, such as a --device that
is neither in the config nor in the store.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			env, err := a.openRead(c.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			if dev != "" {
				if err := knownDevice(c.Context(), env, dev); err != nil {
					return err
				}
			}
			list, err := alerts.List(c.Context(), env.Store, alerts.Filter{Device: dev, OpenOnly: open})
			if err != nil {
				return err
			}
			anyOpen := false
			for _, al := range list {
				anyOpen = anyOpen || al.Open()
			}
			if asJSON {
				err = writeJSON(a.Stdout, list)
			} else if len(list) == 0 {
				fmt.Fprintln(a.Stdout, "no alerts")
			}
			for _, al := range list {
				if asJSON || err != nil {
					break
				}
				fmt.Fprintf(a.Stdout, "%s  %-8s %-14s seen %d× (first %s, last %s)  %s\n", al.ID, al.Severity, al.Status,
					al.Count, timeText(al.FirstSeen), timeText(al.LastSeen), al.Device)
				err = alerts.RenderAlert(indent{a.Stdout}, al, false, false)
			}
			if err != nil {
				return err
			}
			if anyOpen {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "only alerts nobody has acknowledged")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&dev, "device", "", "only this device's alerts")
	return cmd
}

// indent prefixes every line written through it with two spaces.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := "  " + strings.ReplaceAll(strings.TrimSuffix(string(p), "\n"), "\n", "\n  ") + "\n"
	if _, err := io.WriteString(i.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (a *App) ackCommand() *cobra.Command {
	var k store.Ack
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ack ALERT --by NAME --comment TEXT [--decision D]",
		Short: "Record a person's decision on an alert (does not move the baseline)",
		Long: "ALERT is an alert id or a unique prefix of it (at least 4 hex digits; an ambiguous one lists the candidates).\n" +
			"Decisions: " + strings.Join(alerts.Decisions, ", ") + ". false_positive suppresses that exact finding (same items, same old and new values) until it changes.\n" +
			"Approving a new baseline is `plcwatch approve`.",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			env, err := a.open(c.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			k.OSUser, k.At = a.OSUser(), a.Now().UTC()
			r, al, err := alerts.Ack(c.Context(), env.Store, args[0], k)
			if err != nil {
				return &ExitCodeError{Code: ExitError, Err: err}
			}
			env.Svc.Heads.WriteHead(store.Head{Device: r.Device, Seq: r.Seq, Digest: r.Digest})
			if asJSON {
				k.Alert = al.ID
				return writeJSON(a.Stdout, struct {
					Device string `json:"device"`
					store.Ack
				}{al.Device, k})
			}
			fmt.Fprintf(a.Stdout, "alert %s (%s) acknowledged by %s: %s\n", al.ID, al.Device, k.By, k.Decision)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the recorded acknowledgement as JSON")
	cmd.Flags().StringVar(&k.By, "by", "", "name of the person deciding (required)")
	cmd.Flags().StringVar(&k.Comment, "comment", "", "what was decided and why (required)")
	cmd.Flags().StringVar(&k.Decision, "decision", "investigating", "one of "+strings.Join(alerts.Decisions, ", "))
	cmd.MarkFlagRequired("by")
	cmd.MarkFlagRequired("comment")
	return cmd
}

func (a *App) verifyCommand() *cobra.Command {
	var heads, bundles []string
	var asJSON bool
	var bundleKey string
	cmd := &cobra.Command{
		Use:   "verify [--head DIGEST]... | --bundle FILE... --key PUB",
		Short: "Recompute every digest and link of the evidence chains",
		Long: `Recomputes every stored digest and chain link, and compares each chain with
the heads recorded in the alert log and any --head digests recorded earlier
(a head that is not in its chain means records were deleted or the chain was
rewritten). With --bundle, checks evidence bundles instead (offline, without a
store): each signature against --key, every file's SHA-256, every record digest
and link, and that each bundle continues the one before.
Exit 0: intact; 1: findings; 2: error.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if len(bundles) > 0 {
				return a.verifyBundles(bundles, bundleKey, asJSON)
			}
			env, err := a.openRead(c.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			for _, h := range heads {
				if len(h) != 64 || strings.Trim(strings.ToLower(h), "0123456789abcdef") != "" {
					return usageError("--head %q: want a 64-digit hex digest (as printed by plcwatch verify)", h)
				}
			}
			known, err := alerts.ReadHeads(env.Cfg.AlertLogPath())
			var bad *alerts.BadLinesError
			if errors.As(err, &bad) {
				// A damaged alert log is itself a finding; the heads that
				// could be read are still checked.
				fmt.Fprintf(a.Stdout, "FINDING alert_log %s: %v\n", env.Cfg.AlertLogPath(), err)
			} else if err != nil {
				return fmt.Errorf("reading recorded heads: %w", err)
			}
			findings, err := env.Store.Verify(c.Context(), known, heads)
			if err != nil {
				return err
			}
			more, anchorNote, err := anchorFindings(c.Context(), env.Store, env.Cfg.AlertLogPath(), known, heads)
			if err != nil {
				return err
			}
			findings = append(findings, more...)
			cur, err := env.Store.Heads(c.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(a.Stdout, map[string]any{"ok": len(findings) == 0 && bad == nil, "findings": findings, "heads": cur, "anchor_note": anchorNote}); err != nil {
					return err
				}
			} else {
				for _, f := range findings {
					fmt.Fprintf(a.Stdout, "FINDING %s %s seq %d: %s\n", f.Problem, f.Device, f.Seq, f.Detail)
				}
				if len(findings) == 0 {
					fmt.Fprintf(a.Stdout, "ok: %d chain(s) intact (%d recorded head(s) checked)\n", len(cur), len(known)+len(heads))
				}
				if anchorNote != "" {
					fmt.Fprintln(a.Stdout, anchorNote)
				}
				for _, h := range cur {
					fmt.Fprintf(a.Stdout, "head %s seq %d %s\n", h.Device, h.Seq, h.Digest)
				}
			}
			if len(findings) > 0 || bad != nil {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&heads, "head", nil, "a chain head digest recorded earlier (repeatable)")
	cmd.Flags().StringArrayVar(&bundles, "bundle", nil, "verify evidence bundle files instead of the store, in order (repeatable; see export)")
	cmd.Flags().StringVar(&bundleKey, "key", "", "with --bundle: the site's public key file (site.key.pub)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// summarizeOther describes alert and other records for history.
func summarizeOther(r store.Record) string {
	switch r.Type {
	case store.TypeAlert:
		var al alerts.Alert
		if json.Unmarshal(r.Body, &al) == nil {
			return fmt.Sprintf("alert %s [%s] %s", al.ID, al.Severity, al.Title)
		}
	case store.TypeAlertResolved:
		var res store.AlertResolved
		if json.Unmarshal(r.Body, &res) == nil {
			return fmt.Sprintf("alert %s resolved: %s", res.Alert, res.Reason)
		}
	case store.TypeCheck:
		var cr monitor.CheckRecord
		if json.Unmarshal(r.Body, &cr) == nil {
			if cr.Baseline == "" {
				return fmt.Sprintf("check of %s: no baseline", cr.Snapshot)
			}
			return fmt.Sprintf("check of %s vs baseline %s: %d change(s)", cr.Snapshot, cr.BaselineID, cr.Changes)
		}
	case store.TypeChangeOpen, store.TypeChangeClose:
		var ch monitor.Change
		if json.Unmarshal(r.Body, &ch) == nil {
			if r.Type == store.TypeChangeOpen {
				return fmt.Sprintf("planned change %s opened by %s until %s (before: %s)", ch.Ticket, ch.By, timeText(ch.Until), ch.Before)
			}
			return fmt.Sprintf("planned change %s closed: %s", ch.Ticket, ch.Outcome)
		}
	}
	return r.Type
}
