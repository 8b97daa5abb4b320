// Package limits keeps plcwatch gentle: per-device and per-gateway request
// rates and in-flight caps, a global cap on devices read at once, backoff
// with jitter, circuit breakers, and a cross-process per-device lock. It
// implements connectors.Limiter, which every connector's gate calls before
// each request it puts on the wire.
//
// Rates: a device's requests are granted 1/requests_per_second apart on a
// schedule (burst 1; a grant the host made less than a tenth of that late
// keeps the schedule, so two grants are at least 0.9/rps apart and lateness
// does not add up over a snapshot) and no one-second interval at the device holds more than
// floor(requests_per_second) of them (a rate below one spaces requests
// 1/rate apart and no more). The one-second rule works from an upper bound
// of when each request reached the device: its release (its reply, or its
// failure), since a request reaches the device before its reply leaves it.
// A new request is granted only once one second has passed since the
// earliest release among the last floor(rps) requests; a request still in
// flight has no bound yet, so it cannot be that one. However long a request
// spent between the grant and the wire (a loaded host), the device never
// sees more than floor(rps) in one second, and no safety margin is needed
// (an earlier version waited 50 ms more per second, 5% of the floor). A
// gateway's limits apply to
// the sum of the devices behind it, and both hold at once because a grant is
// recorded in the device and its gateway at the same instant. The rate
// arithmetic is a small spacer plus a log rather than x/time/rate, whose
// limiters cannot reserve one instant in two buckets atomically.
package limits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/config"
)

// ErrBreakerOpen is returned by Acquire once a device failed too often in a
// row; nothing is sent to it until Reset (the daemon resets it when the
// device's next window opens).
var ErrBreakerOpen = errors.New("circuit breaker open: too many consecutive failures, waiting for the next window")

// answered reports whether err is marked as the device's own answer
// refusing one request (connectors.Answered: a method DeviceAnswered
// returning true), such as an OPC UA service fault for one huge value: the
// device is talking, so the error neither counts towards the breaker nor
// clears its count.
func answered(err error) bool {
	var a interface{ DeviceAnswered() bool }
	return errors.As(err, &a) && a.DeviceAnswered()
}

// bucket is one rate limit plus one in-flight cap. Two rules hold at once:
// grants are at least 1/rps apart (evenly spread, burst 1), and no
// one-second interval at the device holds more than floor(rps) requests.
// Its time fields are guarded by Limiter.mu, so that a device and its
// gateway grant at the same instant.
//
// Why the one-second rule holds at the device: let N be the latest-granted
// request of any one-second interval [t, t+1s) at the device, granted at g,
// so t > g-1s. At g the log held floor(rps) requests, and its entry m with
// the earliest release r satisfied r <= g-1s (the grant waited for that),
// so m reached the device by r < t: m is outside the interval. A request
// dropped from the log earlier was released no later than every entry left
// in it (commit drops the earliest release), so it is outside too. That
// leaves at most floor(rps)-1 entries plus N.
type bucket struct {
	inflight chan struct{}
	gap      time.Duration // 1/rps, rounded up
	perSec   int           // floor(rps); 0 turns the one-second rule off

	next time.Time   // earliest next grant by spacing
	log  []time.Time // the last perSec requests: grant, moved to release when it comes
	done []bool      // whether each log entry's request was released
	ids  []uint64    // the request each log entry belongs to
	seq  uint64      // requests granted so far
}

// maxLog bounds the grant log of one bucket. Above this many requests per
// second (far beyond any controller) only the 1/rps spacing applies: a
// one-second interval then holds at most ceil(rps) grants, counted at the
// grant.
const maxLog = 4096

// newBucket returns a bucket for rps requests per second (a rate <= 0, only
// possible in hand-built configs, means 1) and inflight requests at once (at
// least 1).
func newBucket(rps float64, inflight int) *bucket {
	if inflight < 1 {
		inflight = 1
	}
	if rps <= 0 {
		rps = 1
	}
	gap := time.Duration(math.Ceil(float64(time.Second) / rps))
	perSec := int(rps)
	if rps > maxLog {
		perSec = 0
	}
	return &bucket{inflight: make(chan struct{}, inflight), gap: gap, perSec: perSec}
}

// earliest is when the bucket next allows a grant: spacing, and, once the
// log is full, one second after the earliest release in it. ok is false
// while the log is full and none of its requests was released: the bucket
// waits for a release. Callers hold Limiter.mu.
func (b *bucket) earliest() (e time.Time, ok bool) {
	e = b.next
	if b.perSec > 0 && len(b.log) == b.perSec {
		o := b.oldest()
		if o < 0 {
			return e, false
		}
		if w := b.log[o].Add(time.Second); w.After(e) {
			e = w
		}
	}
	return e, true
}

// oldest is the index of the earliest release in the log, -1 if no entry
// was released (a linear scan of at most maxLog entries: with in-flight
// requests replies may come back out of order, so insertion order is not
// time order).
func (b *bucket) oldest() int {
	o := -1
	for i := range b.log {
		if b.done[i] && (o < 0 || b.log[i].Before(b.log[o])) {
			o = i
		}
	}
	return o
}

// lateness is how late, as a share of the gap, a grant may come after the
// instant spacing allowed it and still keep the spacing schedule: a host
// that wakes a waiting grant a little late (timer and scheduling delays
// under load, about 0.6 ms a grant measured on 2 busy cores) would
// otherwise push every later grant back by as much, 3% of a 50/s device's
// time. Two grants are then at least gap - gap/lateness apart; the
// one-second rule does not move.
const lateness = 10

// commit records a grant at now, which spacing allowed from sched on, and
// returns its id for release; a full log drops its earliest release
// (earliest said there is one). The next grant is due a gap after sched
// when now is less than a tenth of a gap late, else a gap after now.
// Callers hold Limiter.mu.
func (b *bucket) commit(now, sched time.Time) uint64 {
	base := now
	if late := now.Sub(sched); late > 0 && late < b.gap/lateness {
		base = sched
	}
	b.next = base.Add(b.gap)
	b.seq++
	switch {
	case b.perSec == 0:
	case len(b.log) < b.perSec:
		b.log = append(b.log, now)
		b.done = append(b.done, false)
		b.ids = append(b.ids, b.seq)
	default:
		o := b.oldest()
		b.log[o], b.done[o], b.ids[o] = now, false, b.seq
	}
	return b.seq
}

// release moves request id's log entry to now, the instant its reply (or
// failure) came back, if it is still in the log. Callers hold Limiter.mu.
func (b *bucket) release(id uint64, now time.Time) {
	for i := range b.ids {
		if b.ids[i] == id {
			if now.After(b.log[i]) {
				b.log[i] = now
			}
			b.done[i] = true
			return
		}
	}
}

type device struct {
	own      *bucket
	gateway  *bucket // nil: not behind a gateway
	timeout  time.Duration
	failures int
	limit    int // breaker_failures; 0 never opens
	open     bool
}

// Limiter enforces per-device and per-gateway limits: implements
// connectors.Limiter. Safe for concurrent use. A device's limits and its
// gateway's hold at once, and a grant is recorded in both at the same
// instant, the instant Acquire returns.
type Limiter struct {
	mu       sync.Mutex
	devices  map[string]*device
	defaults config.Limits
	// released is closed (and replaced) at every release, waking the
	// grants that wait for one (bucket.earliest not ok).
	released chan struct{}
}

// New builds the limits of every configured device and gateway. A device
// that is not in cfg gets cfg.Defaults and no gateway. A gateway's
// max_in_flight of 0 means 1.
func New(cfg *config.Config) *Limiter {
	l := &Limiter{devices: map[string]*device{}, defaults: cfg.Defaults, released: make(chan struct{})}
	gws := map[string]*bucket{}
	for _, g := range cfg.Gateways {
		gws[g.Name] = newBucket(g.RequestsPerSecond, g.MaxInFlight)
	}
	for _, d := range cfg.Devices {
		if d == nil {
			continue
		}
		lim := cfg.LimitsFor(d)
		l.devices[d.Name] = &device{own: newBucket(lim.RequestsPerSecond, lim.MaxInFlight), gateway: gws[d.Gateway],
			timeout: lim.RequestTimeout.D(), limit: lim.BreakerFailures}
	}
	return l
}

func (l *Limiter) device(name string) *device {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devices[name]
	if d == nil {
		d = &device{own: newBucket(l.defaults.RequestsPerSecond, l.defaults.MaxInFlight),
			timeout: l.defaults.RequestTimeout.D(), limit: l.defaults.BreakerFailures}
		l.devices[name] = d
	}
	return d
}

// Acquire implements connectors.Limiter: it waits until the device, and its
// gateway, may take one more request (an in-flight slot in each and the
// rates of both), or ctx ends. It returns ErrBreakerOpen, without waiting,
// while the device's breaker is open. release must be called exactly once
// with the request's outcome (further calls do nothing); an error counts
// towards the breaker unless ctx had ended by then or it is
// context.Canceled (the caller's decision, such as a window ending) or
// marked as the device's answer (connectors.Answered: it refused this one request), and a nil error
// clears the count.
func (l *Limiter) Acquire(ctx context.Context, name string) (release func(error), err error) {
	d := l.device(name)
	if l.Open(name) {
		return nil, fmt.Errorf("device %s: %w", name, ErrBreakerOpen)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("device %s: %w", name, err)
	}
	var held []chan struct{}
	free := func() {
		for _, ch := range held {
			<-ch
		}
	}
	fail := func(err error) (func(error), error) {
		free()
		if errors.Is(err, ErrBreakerOpen) {
			return nil, fmt.Errorf("device %s: %w", name, err)
		}
		return nil, fmt.Errorf("device %s: waiting for the request limits: %w", name, err)
	}
	if err := slot(ctx, d.own.inflight); err != nil {
		return fail(err)
	}
	held = append(held, d.own.inflight)
	if d.gateway != nil {
		// Wait out the device's own rate before holding a gateway slot,
		// so a slow device does not block its neighbours.
		if _, _, err := l.wait(ctx, d, false); err != nil {
			return fail(err)
		}
		if err := slot(ctx, d.gateway.inflight); err != nil {
			return fail(err)
		}
		held = append(held, d.gateway.inflight)
	}
	ownID, gwID, err := l.wait(ctx, d, true)
	if err != nil {
		return fail(err)
	}
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			l.mu.Lock()
			now := time.Now()
			d.own.release(ownID, now)
			if d.gateway != nil {
				d.gateway.release(gwID, now)
			}
			l.mu.Unlock()
			free()
			l.outcome(ctx, d, err)
		})
	}, nil
}

func slot(ctx context.Context, ch chan struct{}) error {
	select {
	case ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits until the device's bucket (and its gateway's) allow a grant;
// with commit it records the grant in both under one lock and returns its
// ids in each. It fails with ErrBreakerOpen if the breaker opened meanwhile.
func (l *Limiter) wait(ctx context.Context, d *device, commit bool) (ownID, gwID uint64, err error) {
	for {
		l.mu.Lock()
		if d.open {
			l.mu.Unlock()
			return 0, 0, ErrBreakerOpen
		}
		now := time.Now()
		e, ok := d.own.earliest()
		if commit && d.gateway != nil {
			g, gok := d.gateway.earliest()
			if g.After(e) {
				e = g
			}
			ok = ok && gok
		}
		if !ok {
			// Wait for a release: until one comes, no bound on when the
			// requests in the log reached the device is known.
			rel := l.released
			l.mu.Unlock()
			select {
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			case <-rel:
			}
			continue
		}
		if !e.After(now) {
			if commit {
				ownID = d.own.commit(now, e)
				if d.gateway != nil {
					gwID = d.gateway.commit(now, e)
				}
			}
			l.mu.Unlock()
			return ownID, gwID, nil
		}
		l.mu.Unlock()
		t := time.NewTimer(e.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, 0, ctx.Err()
		case <-t.C:
		}
	}
}

// outcome counts consecutive failures. An error after the caller's context
// ended (a window closing, a shutdown), or context.Canceled, is the
// caller's decision, not the device's failure; a request's own timeout
// (context.DeadlineExceeded while ctx is alive) is a failure. An answered
// error is the device talking: it neither counts nor clears.
//
// It runs last in a release, so it also wakes the grants waiting for a
// release: they see the released log entry and the breaker's state at once.
func (l *Limiter) outcome(ctx context.Context, d *device, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		close(l.released)
		l.released = make(chan struct{})
	}()
	switch {
	case err == nil:
		d.failures = 0
	case ctx.Err() != nil, errors.Is(err, context.Canceled), answered(err):
	default:
		d.failures++
		if d.limit > 0 && d.failures >= d.limit {
			d.open = true
		}
	}
}

// RequestTimeout returns the device's request_timeout (the defaults' for a
// device not in the config); 0 means none.
func (l *Limiter) RequestTimeout(name string) time.Duration {
	return l.device(name).timeout
}

// RequestContext returns ctx bounded by the device's request_timeout, for
// one request (one round trip): the gate, or a connector, wraps the send in
// it after Acquire. A parent deadline that comes sooner is kept. A timeout
// of 0 leaves ctx unbounded (cancel is still to be called). When the request
// fails with context.DeadlineExceeded while the Acquire context is alive,
// release counts it as the device's failure.
func (l *Limiter) RequestContext(ctx context.Context, name string) (context.Context, context.CancelFunc) {
	if d := l.RequestTimeout(name); d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// Reset closes the device's breaker and clears its failure count. The
// daemon calls it when the device's next window opens.
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

// DeviceSlots caps how many devices are read at once, across all windows
// (daemon.max_concurrent_devices), and, for each gateway, how many of the
// devices behind it hold a slot at once (its share): enough to keep the
// gateway busy, GatewayShare, and no more, so that devices waiting on a
// saturated gateway do not take the slots of devices that could be read
// meanwhile. Free slots go first to devices behind a gateway with share
// left, then to the others, each in the order they queued; a device whose
// gateway's share is full keeps its place. Safe for concurrent use.
type DeviceSlots struct {
	mu      sync.Mutex
	free    int
	total   int
	gateway map[string]string // device -> its gateway (with a share)
	share   map[string]int    // gateway -> slots its devices may still take
	queue   []*Ticket
}

// Ticket is a place in the queue for a slot (DeviceSlots.Reserve).
type Ticket struct {
	s       *DeviceSlots
	gateway string
	ready   chan struct{} // closed when the slot is granted
	granted bool          // guarded by s.mu
}

// NewDeviceSlots allows n devices at once (at least 1), with no gateway
// shares.
func NewDeviceSlots(n int) *DeviceSlots {
	if n < 1 {
		n = 1
	}
	return &DeviceSlots{free: n, total: n, gateway: map[string]string{}, share: map[string]int{}}
}

// NewFleetSlots allows cfg.Daemon.MaxConcurrentDevices devices at once,
// and gives each gateway of cfg its share (see DeviceSlots).
func NewFleetSlots(cfg *config.Config) *DeviceSlots {
	s := NewDeviceSlots(cfg.Daemon.MaxConcurrentDevices)
	slowest := map[string]float64{}
	for _, d := range cfg.Devices {
		if d == nil || d.Gateway == "" {
			continue
		}
		r := cfg.LimitsFor(d).RequestsPerSecond
		if v, ok := slowest[d.Gateway]; !ok || r < v {
			slowest[d.Gateway] = r
		}
	}
	for _, g := range cfg.Gateways {
		if r, ok := slowest[g.Name]; ok && r > 0 && g.RequestsPerSecond > 0 {
			s.share[g.Name] = GatewayShare(g.RequestsPerSecond, r)
		}
	}
	for _, d := range cfg.Devices {
		if d != nil && s.share[d.Gateway] > 0 {
			s.gateway[d.Name] = d.Gateway
		}
	}
	return s
}

// GatewayShare is how many devices of rate device (requests per second)
// keep a gateway of rate gateway busy: ceil(gateway/device), at least one.
// One more would keep the gateway busy while one of them connects or ends,
// but then every device of a busy gateway runs below its own rate and holds
// its slot longer: on 500 simulated devices (benchdoc, 150 behind a 200/s
// gateway) the extra one took 44.1 s against 41.3 s without, run back to
// back.
func GatewayShare(gateway, device float64) int {
	return max(1, int(math.Ceil(gateway/device-1e-9)))
}

// Acquire waits for a slot or for ctx to end (then it returns ctx.Err()).
// release frees the slot; calling it again does nothing.
func (s *DeviceSlots) Acquire(ctx context.Context) (release func(), err error) {
	return s.Reserve("").Wait(ctx)
}

// AcquireDevice is Acquire for one device, which behind a gateway also
// takes one of the gateway's share.
func (s *DeviceSlots) AcquireDevice(ctx context.Context, device string) (release func(), err error) {
	return s.Reserve(device).Wait(ctx)
}

// Reserve queues device for a slot now, without waiting: slots go out in
// the order of Reserve calls (check --all reserves in config order). Wait
// on the ticket exactly once.
func (s *DeviceSlots) Reserve(device string) *Ticket {
	return s.ReserveAll([]string{device})[0]
}

// ReserveAll queues several devices at once, in the order given, before
// any of them is granted a slot: the free slots then go to devices behind a
// gateway first (see DeviceSlots), which queuing one by one would not
// allow. Wait on each ticket exactly once.
func (s *DeviceSlots) ReserveAll(devices []string) []*Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := make([]*Ticket, len(devices))
	for i, d := range devices {
		ts[i] = &Ticket{s: s, gateway: s.gateway[d], ready: make(chan struct{})}
		s.queue = append(s.queue, ts[i])
	}
	s.dispatch()
	return ts
}

// Wait waits until the ticket's slot is granted or ctx ends (then it
// leaves the queue and returns ctx.Err()). release frees the slot (and
// gateway share); calling it again does nothing.
func (t *Ticket) Wait(ctx context.Context) (release func(), err error) {
	s := t.s
	if err := ctx.Err(); err == nil {
		select {
		case <-t.ready:
			var once sync.Once
			return func() { once.Do(t.release) }, nil
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.granted {
		s.give(t)
	} else {
		s.queue = slices.DeleteFunc(s.queue, func(q *Ticket) bool { return q == t })
	}
	return nil, ctx.Err()
}

func (t *Ticket) release() {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.give(t)
}

// give returns t's slot and share and hands them on. Callers hold s.mu.
func (s *DeviceSlots) give(t *Ticket) {
	s.free++
	if t.gateway != "" {
		s.share[t.gateway]++
	}
	s.dispatch()
}

// dispatch grants free slots to queued tickets: first to devices behind a
// gateway with share left, in order (a gateway's rate is shared by all its
// devices, so it bounds the fleet's time unless it is kept busy from the
// start), then to the others in order. Callers hold s.mu.
func (s *DeviceSlots) dispatch() {
	s.grant(func(t *Ticket) bool { return t.gateway != "" && s.share[t.gateway] > 0 })
	s.grant(func(t *Ticket) bool { return t.gateway == "" || s.share[t.gateway] > 0 })
}

// grant gives free slots to the queued tickets ok accepts, in order.
// Callers hold s.mu.
func (s *DeviceSlots) grant(ok func(*Ticket) bool) {
	for i := 0; i < len(s.queue) && s.free > 0; {
		t := s.queue[i]
		if !ok(t) {
			i++
			continue
		}
		s.free--
		if t.gateway != "" {
			s.share[t.gateway]--
		}
		t.granted = true
		close(t.ready)
		s.queue = append(s.queue[:i], s.queue[i+1:]...)
	}
}

// InUse returns how many slots are taken now.
func (s *DeviceSlots) InUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total - s.free
}

// Backoff is exponential backoff with jitter: retry number attempt (0 for
// the first) is based on min(Initial*2^attempt, Max). With equal jitter (the
// default) it waits between half and all of that, so a retry never comes
// sooner than half the base; with Full it waits between none and all of it.
type Backoff struct {
	// Initial is the base of the first retry; <= 0 means one second.
	Initial time.Duration
	// Max caps the base; <= 0 means no cap.
	Max time.Duration
	// Full selects full jitter instead of equal jitter.
	Full bool
	// Rand returns a number in [0, 1); nil uses math/rand/v2. Tests pass a
	// fixed function.
	Rand func() float64
}

// Delay returns the wait before retry number attempt (0 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	if d <= 0 {
		d = time.Second
	}
	for i := 0; i < attempt && (b.Max <= 0 || d < b.Max) && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	if b.Full {
		return time.Duration(r() * float64(d))
	}
	return d/2 + time.Duration(r()*float64(d/2))
}

// Wait waits Delay(attempt), or until ctx ends (then it returns ctx.Err()).
func (b Backoff) Wait(ctx context.Context, attempt int) error {
	t := time.NewTimer(b.Delay(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// MaxInWindow returns the largest number of times that fall in any
// half-open interval [t, t+d): the peak rate a simulator saw. The times need
// not be sorted; times is not modified. A d <= 0 holds nothing: 0.
func MaxInWindow(times []time.Time, d time.Duration) int {
	if d <= 0 {
		return 0
	}
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

// Recorder collects the instants requests arrived, for tests that measure
// rates at a simulator or a wiretap. The zero value is ready; it is safe for
// concurrent use.
type Recorder struct {
	mu    sync.Mutex
	times []time.Time
}

// Record notes one request at t.
func (r *Recorder) Record(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, t)
}

// Times returns a copy of the recorded instants, in recording order.
func (r *Recorder) Times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times...)
}

// Len returns how many requests were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.times)
}

// Peak returns MaxInWindow of the recorded instants.
func (r *Recorder) Peak(d time.Duration) int { return MaxInWindow(r.Times(), d) }

// Last returns the latest recorded instant (zero if none): with a window's
// end, it shows how late a request reached the device.
func (r *Recorder) Last() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, t := range r.times {
		if t.After(last) {
			last = t
		}
	}
	return last
}
