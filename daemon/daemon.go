// Package daemon runs scheduled checks: it is the one loop that owns real
// time and goroutines. Everything it decides with (windows, offsets, rate
// limits, diffs) is a pure function in another package.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/limits"
	"github.com/plcwatch/plcwatch/monitor"
	"github.com/plcwatch/plcwatch/schedules"
	"github.com/plcwatch/plcwatch/store"
)

// Options configure a daemon.
type Options struct {
	// ConfigPath is read at start and on every reload.
	ConfigPath string
	Log        zerolog.Logger
	// Service builds the monitor service for a config (store, sinks). The
	// daemon sets its Limiter. close releases what it opened.
	Service func(cfg *config.Config) (svc *monitor.Service, close func() error, err error)
	// Reload receives a value for each SIGHUP.
	Reload <-chan os.Signal
	// Grace is how long in-flight checks may run on after shutdown begins
	// (they are cut at their window's end in any case). Default 60s.
	Grace time.Duration
	// Housekeeping is the interval of the overdue, missed-window and
	// overdue-change checks. Default 1 minute.
	Housekeeping time.Duration
	// Events, when set, receives what the daemon did (for tests).
	Events chan<- Event
}

// Event is something the daemon did, reported to Options.Events.
type Event struct {
	Kind   string // "started", "check_started", "check_done", "reloaded", "reload_failed", "alert"
	Device string
	Window string
	Start  time.Time // the occurrence start
	At     time.Time
	Err    error
	Result *monitor.CheckResult
}

// state is everything built from one config.
type state struct {
	cfg     *config.Config
	plan    *schedules.Plan
	limiter *limits.Limiter
	slots   *limits.DeviceSlots
	svc     *monitor.Service
	close   func() error
}

// occKey names one check of one occurrence of one window for one device.
type occKey struct {
	device, window string
	start          time.Time
	n              int
}

// Daemon is a running scheduler.
type Daemon struct {
	opt Options
	log zerolog.Logger

	mu      sync.Mutex
	st      *state
	running map[string]bool  // devices being read now
	started map[occKey]bool  // checks started
	ran     map[string]bool  // "device|window|start" occurrences with a check that ran
	lastOcc map[string]int64 // device -> start (unix) of the occurrence its breaker was reset for
	wg      sync.WaitGroup
	since   time.Time // when the daemon started (missed windows are counted from here)
	lastHK  time.Time
}

// Run loads the config and runs until ctx ends, then waits up to Grace for
// in-flight checks. A config that fails to load at start is an error; one
// that fails on reload is logged and the running config stays.
func Run(ctx context.Context, opt Options) error {
	if opt.Grace == 0 {
		opt.Grace = 60 * time.Second
	}
	if opt.Housekeeping == 0 {
		opt.Housekeeping = time.Minute
	}
	d := &Daemon{opt: opt, log: opt.Log, running: map[string]bool{}, started: map[occKey]bool{},
		ran: map[string]bool{}, lastOcc: map[string]int64{}, since: time.Now()}
	st, err := d.build()
	if err != nil {
		return err
	}
	d.st = st
	d.emit(Event{Kind: "started"})
	d.log.Info().Str("config", opt.ConfigPath).Int("devices", len(st.cfg.Devices)).Int("windows", len(st.cfg.Windows)).Msg("daemon started")

	// Checks run under their own context: shutdown lets them finish (they
	// end at their window's end anyway) for up to Grace, then cuts them.
	jobs, cutJobs := context.WithCancel(context.Background())
	defer cutJobs()
	done := make(chan struct{}, 64)
	for {
		now := time.Now()
		next := d.tick(jobs, now, done)
		if now.Sub(d.lastHK) >= opt.Housekeeping {
			d.housekeeping(ctx, now)
			d.lastHK = now
		}
		if hk := d.lastHK.Add(opt.Housekeeping); hk.Before(next) {
			next = hk
		}
		wait := time.Until(next)
		if wait < 0 {
			wait = 0
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			d.log.Info().Msg("shutting down: waiting for in-flight checks")
			return d.shutdown(cutJobs)
		case <-opt.Reload:
			timer.Stop()
			d.reload()
		case <-done:
			timer.Stop()
		case <-timer.C:
		}
	}
}

func (d *Daemon) emit(e Event) {
	if d.opt.Events == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	select {
	case d.opt.Events <- e:
	default:
	}
}

func (d *Daemon) build() (*state, error) {
	cfg, err := connectors.LoadConfig(d.opt.ConfigPath)
	if err != nil {
		return nil, err
	}
	plan, err := schedules.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("schedules: %w", err)
	}
	svc, closeSvc, err := d.opt.Service(cfg)
	if err != nil {
		return nil, err
	}
	lim := limits.New(cfg)
	svc.Limiter = lim
	return &state{cfg: cfg, plan: plan, limiter: lim, slots: limits.NewFleetSlots(cfg), svc: svc, close: closeSvc}, nil
}

// reload swaps in a new config; a bad one is rejected and the old one kept.
func (d *Daemon) reload() {
	st, err := d.build()
	if err != nil {
		d.log.Error().Err(err).Str("config", d.opt.ConfigPath).Msg("reload rejected: keeping the running config")
		d.emit(Event{Kind: "reload_failed", Err: err})
		return
	}
	d.mu.Lock()
	old := d.st
	d.st = st
	d.mu.Unlock()
	// Checks in flight keep the old service until they end; close it after.
	go func() {
		d.wg.Wait()
		if err := old.close(); err != nil {
			d.log.Warn().Err(err).Msg("closing the previous config's store")
		}
	}()
	d.log.Info().Int("devices", len(st.cfg.Devices)).Msg("config reloaded")
	d.emit(Event{Kind: "reloaded"})
}

func (d *Daemon) shutdown(cutJobs context.CancelFunc) error {
	finished := make(chan struct{})
	go func() { d.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(d.opt.Grace):
		d.log.Warn().Str("grace", d.opt.Grace.String()).Msg("cutting in-flight checks: their snapshots are stored as partial")
		cutJobs()
		<-finished
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.close()
}

// tick starts the checks that are due at now and returns when the loop
// should next wake.
func (d *Daemon) tick(jobs context.Context, now time.Time, done chan<- struct{}) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	next := now.Add(time.Hour)
	type dueCheck struct {
		dev *config.Device
		occ schedules.Occurrence
	}
	var due []dueCheck
	// The checks due now queue for their slots together (ReserveAll), so
	// that devices behind a gateway go first.
	defer func() {
		names := make([]string, len(due))
		for i, c := range due {
			names[i] = c.dev.Name
		}
		for i, t := range st.slots.ReserveAll(names) {
			d.wg.Add(1)
			go d.check(jobs, st, due[i].dev, due[i].occ, t, done)
		}
	}()
	for _, dev := range st.cfg.Devices {
		if occ, ok := st.plan.InWindow(dev.Name, now); ok {
			if d.lastOcc[dev.Name] != occ.Start.Unix() {
				// A new window: the breaker gets another chance.
				d.lastOcc[dev.Name] = occ.Start.Unix()
				st.limiter.Reset(dev.Name)
			}
			for n, at := range st.plan.CheckTimes(dev.Name, occ) {
				k := occKey{dev.Name, occ.Window, occ.Start, n}
				if d.started[k] {
					continue
				}
				if at.After(now) {
					if at.Before(next) {
						next = at
					}
					continue
				}
				if d.running[dev.Name] {
					continue // one read of a device at a time; retried when it ends
				}
				d.started[k] = true
				d.running[dev.Name] = true
				due = append(due, dueCheck{dev, occ})
			}
		}
		if occ, ok := st.plan.Next(dev.Name, now); ok {
			if ts := st.plan.CheckTimes(dev.Name, occ); len(ts) > 0 && ts[0].Before(next) {
				next = ts[0]
			}
		}
	}
	return next
}

// check runs one scheduled check of dev, cut off at the window's end, with
// retries and backoff while the window lasts.
func (d *Daemon) check(jobs context.Context, st *state, dev *config.Device, occ schedules.Occurrence, ticket *limits.Ticket, done chan<- struct{}) {
	defer d.wg.Done()
	defer func() {
		d.mu.Lock()
		d.running[dev.Name] = false
		d.mu.Unlock()
		select {
		case done <- struct{}{}:
		default:
		}
	}()
	log := d.log.With().Str("device", dev.Name).Str("window", occ.Window).Logger()
	ctx, cancel := context.WithDeadline(jobs, occ.End)
	defer cancel()
	lim := st.cfg.LimitsFor(dev)
	backoff := limits.Backoff{Initial: lim.BackoffInitial.D(), Max: lim.BackoffMax.D()}
	// Decided before the slot is granted: the store query costs no slot
	// time.
	opt := monitor.SnapshotOptions{Deadline: occ.End, ForceFull: d.fullReadDue(ctx, st, dev)}
	for attempt := 0; ; attempt++ {
		// A device holds a slot (max_concurrent_devices) while it is
		// read, not while its snapshot is stored and compared, nor while it
		// waits to retry: Collected frees it.
		var release func()
		var err error
		if attempt == 0 {
			release, err = ticket.Wait(ctx) // queued by tick
		} else {
			release, err = st.slots.AcquireDevice(ctx, dev.Name)
		}
		if err != nil {
			log.Warn().Err(err).Msg("no free device slot before the window's end")
			return
		}
		if attempt == 0 {
			d.mu.Lock()
			d.ran[dev.Name+"|"+occ.Window+"|"+occ.Start.UTC().Format(time.RFC3339)] = true
			d.mu.Unlock()
		}
		opt.Collected = release
		d.emit(Event{Kind: "check_started", Device: dev.Name, Window: occ.Window, Start: occ.Start})
		log.Info().Int("attempt", attempt+1).Msg("scheduled check")
		res, err := st.svc.Check(ctx, dev, opt)
		release()
		d.emit(Event{Kind: "check_done", Device: dev.Name, Window: occ.Window, Start: occ.Start, Err: err, Result: res})
		if err == nil {
			log.Info().Str("snapshot", res.SnapshotID).Bool("changes", res.Unapproved()).Msg("check done")
			return
		}
		var host *monitor.HostError
		if errors.As(err, &host) {
			// The store, alert log or lock folder failed (a full disk), or
			// the daemon is stopping: not the device's failure, no retry.
			log.Error().Err(err).Str("category", "host_failure").Msg("check stopped by a host failure")
			return
		}
		if errors.Is(err, limits.ErrBreakerOpen) || attempt >= lim.Retries || ctx.Err() != nil {
			log.Warn().Err(err).Int("attempts", attempt+1).Msg("check failed")
			return
		}
		wait := backoff.Delay(attempt)
		if time.Now().Add(wait).After(occ.End) {
			log.Warn().Err(err).Msg("check failed; no time left in the window to retry")
			return
		}
		log.Warn().Err(err).Str("retry_in", wait.Round(time.Millisecond).String()).Msg("check failed; retrying")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// fullReadDue reports whether this window's read must not carry anything
// forward: every daemon.full_read_every-th snapshot is a full read.
func (d *Daemon) fullReadDue(ctx context.Context, st *state, dev *config.Device) bool {
	n := st.cfg.Daemon.FullReadEvery
	if n <= 1 {
		return true
	}
	count, err := st.svc.Store.CountOfType(ctx, dev.Name, store.TypeSnapshot)
	if err != nil {
		return true
	}
	return count%int64(n) == 0
}

// housekeeping raises the alerts that are not diffs: monitoring overdue,
// missed windows, planned changes past their end.
func (d *Daemon) housekeeping(ctx context.Context, now time.Time) {
	d.mu.Lock()
	st := d.st
	from := d.since
	if !d.lastHK.IsZero() {
		from = d.lastHK.Add(-st.cfg.Defaults.SnapshotTimeout.D())
	}
	d.mu.Unlock()
	for _, dev := range st.cfg.Devices {
		if ctx.Err() != nil {
			return
		}
		var events []alerts.Alert
		overdue := st.cfg.Daemon.OverdueAfter.D()
		// The record says when; the snapshot itself is not loaded.
		lastRec, last, err := st.svc.Store.LatestRef(ctx, dev.Name, true)
		switch {
		case err == nil && now.Sub(lastRec.Time) > overdue:
			events = append(events, alerts.Event(dev.Name, alerts.CatOverdue,
				fmt.Sprintf("last complete snapshot %s taken %s, more than %s ago", last.ID, lastRec.Time.Format(time.RFC3339), overdue), "overdue:"+last.ID, now))
		case errors.Is(err, store.ErrNotFound) && now.Sub(d.since) > overdue:
			events = append(events, alerts.Event(dev.Name, alerts.CatOverdue,
				fmt.Sprintf("no complete snapshot since the daemon started %s", d.since.Format(time.RFC3339)), "overdue:never", now))
		}
		for _, occ := range st.plan.Occurrences(dev.Name, from, now) {
			if occ.End.After(now) || occ.Start.Before(d.since) {
				continue
			}
			d.mu.Lock()
			ran := d.ran[dev.Name+"|"+occ.Window+"|"+occ.Start.UTC().Format(time.RFC3339)]
			d.mu.Unlock()
			if !ran {
				events = append(events, alerts.Event(dev.Name, alerts.CatWindowMissed,
					fmt.Sprintf("window %s from %s to %s ended without a check", occ.Window, occ.Start.Format(time.RFC3339), occ.End.Format(time.RFC3339)),
					"missed:"+occ.Window+":"+occ.Start.UTC().Format(time.RFC3339), now))
			}
		}
		for _, g := range st.plan.Gaps(dev.Name, from, now) {
			events = append(events, alerts.Event(dev.Name, alerts.CatWindowMissed, g.Reason, "gap:"+g.Window+":"+g.Day, now))
		}
		if ch, err := st.svc.OpenChange(ctx, dev.Name); err == nil && ch != nil && now.After(ch.Until) {
			events = append(events, alerts.Event(dev.Name, alerts.CatChangeOverdue,
				fmt.Sprintf("planned change %s (by %s) passed its end %s without an approved after-snapshot", ch.Ticket, ch.By, ch.Until.Format(time.RFC3339)),
				"change:"+ch.Ticket+":"+ch.OpenedAt.Format(time.RFC3339), now))
		}
		for _, a := range events {
			res, err := st.svc.RaiseEvent(ctx, a)
			if err != nil {
				d.log.Error().Err(err).Str("device", dev.Name).Msg("raising an alert failed")
				continue
			}
			if len(res.Raised) > 0 {
				d.emit(Event{Kind: "alert", Device: dev.Name, Result: res})
			}
		}
	}
}
