// Package limits keeps plcwatch gentle: per-device and per-gateway request
// rates and in-flight caps, a global cap on devices read at once, backoff
// with jitter, circuit breakers, and a cross-process per-device lock. It
// implements connectors.Limiter, which every connector's gate calls before
// each request it puts on the wire.
package limits

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/plcwatch/plcwatch/config"
)

// ErrBreakerOpen is returned by Acquire once a device failed too often in a
// row; nothing is sent to it until Reset (the daemon resets it when the
// device's next window opens).
var ErrBreakerOpen = errors.New("circuit breaker open: too many consecutive failures, waiting for the next window")

// bucket is one rate limit plus one in-flight cap. The token bucket keeps
// requests evenly spaced; the window log guarantees that no interval of
// one second (plus a margin for network jitter between here and the device)
// holds more than the limit, whatever the spacing.
type bucket struct {
	rl       *rate.Limiter
	inflight chan struct{}
	perSec   int

	mu  sync.Mutex
	log []time.Time // grant times, oldest first, at most perSec
}

// jitterMargin widens the one-second window the log enforces, so that a
// request delayed on its way does not land in the same second at the device
// as one sent a little later.
const jitterMargin = 50 * time.Millisecond

func newBucket(rps float64, inflight int) *bucket {
	if inflight < 1 {
		inflight = 1
	}
	b := &bucket{inflight: make(chan struct{}, inflight), perSec: int(rps)}
	if rps > 0 {
		// Burst 1, and a rate a hair under the limit, so that float
		// rounding never lets rps+1 requests into one second.
		b.rl = rate.NewLimiter(rate.Limit(rps*(1-1e-6)), 1)
	}
	return b
}

// take waits for an in-flight slot and a token.
func (b *bucket) take(ctx context.Context) (func(), error) {
	select {
	case b.inflight <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if b.rl != nil {
		if err := b.rl.Wait(ctx); err != nil {
			<-b.inflight
			return nil, err
		}
	}
	if err := b.windowWait(ctx); err != nil {
		<-b.inflight
		return nil, err
	}
	return func() { <-b.inflight }, nil
}

// windowWait waits until fewer than perSec grants fall in the last second
// plus the jitter margin, then records this grant.
func (b *bucket) windowWait(ctx context.Context) error {
	if b.perSec < 1 {
		return nil
	}
	for {
		b.mu.Lock()
		now := time.Now()
		if len(b.log) < b.perSec {
			b.log = append(b.log, now)
			b.mu.Unlock()
			return nil
		}
		wait := b.log[0].Add(time.Second + jitterMargin).Sub(now)
		if wait <= 0 {
			b.log = append(b.log[1:], now)
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

type device struct {
	own      *bucket
	gateway  *bucket
	failures int
	limit    int
	open     bool
}

// Limiter enforces per-device and per-gateway limits. Safe for concurrent
// use.
type Limiter struct {
	mu      sync.Mutex
	devices map[string]*device
}

// New builds the limits of every configured device.
func New(cfg *config.Config) *Limiter {
	l := &Limiter{devices: map[string]*device{}}
	gws := map[string]*bucket{}
	for _, g := range cfg.Gateways {
		gws[g.Name] = newBucket(g.RequestsPerSecond, g.MaxInFlight)
	}
	for _, d := range cfg.Devices {
		lim := cfg.LimitsFor(d)
		l.devices[d.Name] = &device{own: newBucket(lim.RequestsPerSecond, lim.MaxInFlight), gateway: gws[d.Gateway], limit: lim.BreakerFailures}
	}
	return l
}

// Acquire implements connectors.Limiter: it waits until the device (and its
// gateway) may take one more request. release must be called with the
// request's outcome.
func (l *Limiter) Acquire(ctx context.Context, name string) (func(error), error) {
	l.mu.Lock()
	d := l.devices[name]
	if d == nil {
		d = &device{own: newBucket(1, 1), limit: 5}
		l.devices[name] = d
	}
	if d.open {
		l.mu.Unlock()
		return nil, fmt.Errorf("device %s: %w", name, ErrBreakerOpen)
	}
	l.mu.Unlock()
	relOwn, err := d.own.take(ctx)
	if err != nil {
		return nil, err
	}
	relGw := func() {}
	if d.gateway != nil {
		if relGw, err = d.gateway.take(ctx); err != nil {
			relOwn()
			return nil, err
		}
	}
	return func(err error) {
		relGw()
		relOwn()
		l.outcome(d, err)
	}, nil
}

// outcome counts consecutive failures. A cancelled or expired context is the
// caller's decision (a window ending), not the device's failure.
func (l *Limiter) outcome(d *device, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		d.failures = 0
	case errors.Is(err, context.Canceled):
	default:
		d.failures++
		if d.limit > 0 && d.failures >= d.limit {
			d.open = true
		}
	}
}

// Reset closes the device's breaker and clears its failure count.
func (l *Limiter) Reset(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.devices[name]; d != nil {
		d.open, d.failures = false, 0
	}
}

// Open reports whether the device's breaker is open.
func (l *Limiter) Open(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devices[name]
	return d != nil && d.open
}

// DeviceSlots caps how many devices are read at once.
type DeviceSlots struct{ ch chan struct{} }

// NewDeviceSlots allows n devices at once (at least 1).
func NewDeviceSlots(n int) *DeviceSlots {
	if n < 1 {
		n = 1
	}
	return &DeviceSlots{ch: make(chan struct{}, n)}
}

// Acquire waits for a slot or for ctx to end.
func (s *DeviceSlots) Acquire(ctx context.Context) (func(), error) {
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Backoff is exponential backoff with "equal jitter": attempt n waits
// between half and all of min(Initial*2^n, Max).
type Backoff struct {
	Initial, Max time.Duration
	// Rand returns a number in [0, 1); nil uses math/rand/v2.
	Rand func() float64
}

// Delay returns the wait before retry number attempt (0 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	if d <= 0 {
		d = time.Second
	}
	for i := 0; i < attempt && (b.Max <= 0 || d < b.Max); i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d/2 + time.Duration(r()*float64(d/2))
}

// MaxInWindow returns the largest number of times that fall in any interval
// [t, t+d) — the peak rate a simulator saw.
func MaxInWindow(times []time.Time, d time.Duration) int {
	ts := append([]time.Time(nil), times...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= d {
			j++
		}
		if n := i - j + 1; n > best {
			best = n
		}
	}
	return best
}
