// Package monitor is the one sequence both the CLI and the daemon run to
// watch a device: read it through its connector, store the snapshot, compare
// it with the approved baseline, raise alerts, and record approvals.
//
// It never acts on a controller: the only thing it sends a device is what the
// device's connector sends through its read-only gate.
package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// Service runs snapshots, checks and approvals against one store.
type Service struct {
	Cfg   *config.Config
	Store store.Store
	Log   zerolog.Logger
	// Limiter throttles every request to devices (nil: none).
	Limiter connectors.Limiter
	// Notify is told of alerts raised or seen again, after they are stored.
	Notify alerts.Sink
	// Heads is told of every new chain head, after it is stored.
	Heads HeadWriter
	// Lock takes the cross-process lock of one device (nil: none).
	Lock func(ctx context.Context, device string) (unlock func(), err error)
	// Now is the clock.
	Now func() time.Time
	// Open builds a device's connector (nil: connectors.Open, in this
	// process). The CLI and daemon pass isolate.Opener, which runs each
	// snapshot in a child process.
	Open func(dev *config.Device, global classify.Rules, log zerolog.Logger, limiter connectors.Limiter) (connectors.Connector, *connectors.Gate, error)
}

// HostError is a failure of the monitoring host itself: its store, alert
// log or lock folder (a full disk, a read-only or missing store), or the
// operator or service manager stopping the run (Ctrl-C, SIGTERM). It is
// never the controller's finding: Check raises no collection alert for it.
type HostError struct {
	Op  string // what the host was doing, such as "storing snapshot 1a2b3c"
	Err error
}

func (e *HostError) Error() string { return "host failure: " + e.Op + ": " + e.Err.Error() }

func (e *HostError) Unwrap() error { return e.Err }

// HeadWriter records chain heads outside the store (the alert log), so that
// a truncated or rewritten chain can be detected later.
type HeadWriter interface {
	WriteHead(h store.Head) error
}

// SnapshotOptions tune one snapshot.
type SnapshotOptions struct {
	Label string
	// Deadline, when not zero, cuts the snapshot off (the maintenance
	// window's end); what was read by then is stored as a partial snapshot.
	Deadline time.Time
	// ForceFull asks the connector not to carry anything forward.
	ForceFull bool
	// Collected, when not nil, is called once the connector's snapshot
	// returned (the device is no longer being read), before the snapshot is
	// stored, compared and alerted on (whether or not it failed; not when
	// the device lock or the connector could not be had). The CLI and the
	// daemon free the device slot (daemon.max_concurrent_devices) there, so
	// the next device is read while this one is stored; they free it when
	// Check returns too, so it must tolerate a second call.
	Collected func()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Rules returns the classification rules in force for a device: its own
// first, then the global ones.
func (s *Service) Rules(dev *config.Device) classify.Rules {
	return append(append(classify.Rules{}, dev.Rules...), s.Cfg.Classification...)
}

// Snapshot reads dev now and stores the snapshot. A partial snapshot is
// stored too (it is evidence of what could be read); an error means nothing
// was stored.
func (s *Service) Snapshot(ctx context.Context, dev *config.Device, opt SnapshotOptions) (*snapshots.Snapshot, error) {
	if s.Lock != nil {
		unlock, err := s.Lock(ctx, dev.Name)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", dev.Name, &HostError{Op: "taking the device lock", Err: err})
		}
		defer unlock()
	}
	prev, err := s.Store.Latest(ctx, dev.Name, true)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("device %s: %w", dev.Name, &HostError{Op: "reading the latest snapshot", Err: err})
	}
	if opt.ForceFull {
		prev = nil
	}
	log := s.Log.With().Str("device", dev.Name).Str("protocol", dev.Protocol).Logger()
	open := s.Open
	if open == nil {
		open = connectors.Open
	}
	conn, _, err := open(dev, s.Cfg.Classification, s.Log, s.Limiter)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	lim := s.Cfg.LimitsFor(dev)
	sctx, cancel := context.WithTimeout(ctx, lim.SnapshotTimeout.D())
	defer cancel()
	if !opt.Deadline.IsZero() {
		var c2 context.CancelFunc
		sctx, c2 = context.WithDeadline(sctx, opt.Deadline)
		defer c2()
	}
	start := s.now()
	snap, err := conn.Snapshot(sctx, prev)
	if opt.Collected != nil {
		opt.Collected()
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		// Stopped by the operator or a shutdown (cancelled), not by the
		// device or the window's end (a deadline): what was read is not the
		// device's evidence.
		return nil, fmt.Errorf("device %s: %w", dev.Name, &HostError{Op: "the run was stopped", Err: context.Cause(ctx)})
	}
	if err != nil {
		log.Warn().Err(err).Msg("snapshot failed")
		return nil, withDevice(dev.Name, err)
	}
	rules := s.Rules(dev)
	// The rules reach every item, the connector's own ones too (server/*,
	// security/*, mode, identity): a site can re-class or silence anything.
	var applied classify.Applied
	snap.Items, applied = rules.Apply(snap.Items)
	if applied.Ignored > 0 {
		log.Debug().Int("ignored", applied.Ignored).Msg("items dropped by ignore rules")
	}
	snap.Device = dev.Name
	snap.Protocol = dev.Protocol
	if snap.Endpoint == "" {
		snap.Endpoint = dev.Endpoint
	}
	if snap.TakenAt.IsZero() {
		snap.TakenAt = start
	}
	snap.Label = opt.Label
	snap.RulesDigest = rules.Digest()
	if err := snap.Finalize(); err != nil {
		return nil, fmt.Errorf("device %s: connector returned a malformed snapshot: %w", dev.Name, err)
	}
	// What was read is evidence and is stored even when the read was cut
	// off by the window's end: the store is not bound by that deadline.
	ctx = context.WithoutCancel(ctx)
	rulesJSON, err := json.Marshal(rules)
	if err != nil {
		return nil, err
	}
	recs, err := s.Store.PutSnapshot(ctx, snap, rulesJSON)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", dev.Name, &HostError{Op: "storing snapshot " + snap.ID, Err: err})
	}
	s.wroteHead(recs)
	log.Info().Str("snapshot", snap.ID).Bool("complete", snap.Status.Complete).
		Int("items", len(snap.Items)).Int64("requests", snap.Cost.Requests).
		Int64("bytes_in", snap.Cost.BytesIn).Str("took", snap.Cost.Duration.Round(time.Millisecond).String()).Msg("snapshot stored")
	return snap, nil
}

// wroteHead tells the head writer about the newest of recs.
func (s *Service) wroteHead(recs []store.Record) {
	if s.Heads == nil || len(recs) == 0 {
		return
	}
	r := recs[len(recs)-1]
	if err := s.Heads.WriteHead(store.Head{Device: r.Device, Seq: r.Seq, Digest: r.Digest}); err != nil {
		s.Log.Error().Err(err).Str("device", r.Device).Msg("writing the chain head to the alert log failed")
	}
}

// append adds one record and records the new head.
func (s *Service) append(ctx context.Context, device, typ string, body any) (store.Record, error) {
	r, err := s.Store.Append(ctx, device, typ, s.now(), body)
	if err != nil {
		return r, err
	}
	s.wroteHead([]store.Record{r})
	return r, nil
}

// withDevice names the device in a failed read's error once: connectors and
// the limiter name it in most of theirs, and the error becomes an alert's
// title.
func withDevice(name string, err error) error {
	if strings.HasPrefix(err.Error(), "device "+name+": ") {
		return err
	}
	return fmt.Errorf("device %s: %w", name, err)
}
