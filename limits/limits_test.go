package limits

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/plcwatch/plcwatch/config"
)

func cfg(t *testing.T, y string) *config.Config {
	t.Helper()
	c, err := config.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const twoDevices = `gateways:
  - {name: gw, requests_per_second: 3, max_in_flight: 1}
devices:
  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, limits: {requests_per_second: 2, max_in_flight: 1, breaker_failures: 3}}
  - {name: b, protocol: s7, endpoint: 127.0.0.1:2, limits: {requests_per_second: 10, max_in_flight: 2}}
  - {name: c, protocol: s7, endpoint: 127.0.0.1:3, gateway: gw, limits: {requests_per_second: 10}}
  - {name: d, protocol: s7, endpoint: 127.0.0.1:4, gateway: gw, limits: {requests_per_second: 10}}
`

const mixed = `gateways:
  - {name: gw, requests_per_second: 10, max_in_flight: 1}
devices:
  - {name: e, protocol: s7, endpoint: 127.0.0.1:1, gateway: gw, limits: {requests_per_second: 2, max_in_flight: 2}}
  - {name: f, protocol: s7, endpoint: 127.0.0.1:2, gateway: gw, limits: {requests_per_second: 10, max_in_flight: 1}}
  - {name: g, protocol: s7, endpoint: 127.0.0.1:3, gateway: gw, limits: {requests_per_second: 2.5, max_in_flight: 3}}
`

// grant runs n requests per device from workers goroutines each, each
// request holding the wire for hold, and returns the grant times per device
// and the peak in-flight count per device and over all of them.
func grant(t *testing.T, l *Limiter, devices []string, n, workers int, hold time.Duration) (map[string][]time.Time, map[string]int, int) {
	var mu sync.Mutex
	times := map[string][]time.Time{}
	peaks := map[string]int{}
	inflight := map[string]int{}
	total, peak := 0, 0
	var wg sync.WaitGroup
	for _, dev := range devices {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n/workers; i++ {
					rel, err := l.Acquire(context.Background(), dev)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					times[dev] = append(times[dev], time.Now())
					inflight[dev]++
					total++
					peaks[dev] = max(peaks[dev], inflight[dev])
					peak = max(peak, total)
					mu.Unlock()
					time.Sleep(hold)
					mu.Lock()
					inflight[dev]--
					total--
					mu.Unlock()
					rel(nil)
				}
			}()
		}
	}
	wg.Wait()
	return times, peaks, peak
}

func TestRateAndInFlight(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		devices []string
		hold    time.Duration
		perSec  map[string]int // most grants in any one second, per device
		// gatewayPerSec and gatewayInFlight bound all devices together
		// (0: not checked).
		gatewayPerSec, gatewayInFlight int
		inflight                       map[string]int
	}{
		{"device a: 2/s, 1 in flight", twoDevices, []string{"a"}, 20 * time.Millisecond, map[string]int{"a": 2}, 0, 0, map[string]int{"a": 1}},
		{"device b: 10/s, 2 in flight", twoDevices, []string{"b"}, 150 * time.Millisecond, map[string]int{"b": 10}, 0, 0, map[string]int{"b": 2}},
		{"gateway shared by c and d: 3/s, 1 in flight", twoDevices, []string{"c", "d"}, 20 * time.Millisecond, map[string]int{"c": 3, "d": 3}, 3, 1, map[string]int{"c": 1, "d": 1}},
		{"busy gateway does not bunch a device's requests", mixed, []string{"e", "f", "g"}, 40 * time.Millisecond, map[string]int{"e": 2, "f": 10, "g": 2}, 10, 1, map[string]int{"e": 1, "f": 1, "g": 1}},
		{"devices a and b are independent", twoDevices, []string{"a", "b"}, 20 * time.Millisecond, map[string]int{"a": 2, "b": 10}, 12, 3, map[string]int{"a": 1, "b": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(cfg(t, tc.config))
				times, peaks, peak := grant(t, l, tc.devices, 40, 4, tc.hold)
				var all []time.Time
				for _, dev := range tc.devices {
					all = append(all, times[dev]...)
					got := MaxInWindow(times[dev], time.Second)
					if got > tc.perSec[dev] {
						t.Errorf("%s: %d grants in one second, limit %d", dev, got, tc.perSec[dev])
					}
					// The limit is used, not undercut by a wide safety gap.
					if len(tc.devices) == 1 && got < tc.perSec[dev] {
						t.Errorf("%s: only %d grants in the busiest second: the limit %d is not used", dev, got, tc.perSec[dev])
					}
					if len(tc.devices) == 1 && peaks[dev] < tc.inflight[dev] {
						t.Errorf("%s: at most %d requests in flight: the cap %d is not reached, the test proves nothing", dev, peaks[dev], tc.inflight[dev])
					}
					if peaks[dev] > tc.inflight[dev] {
						t.Errorf("%s: %d requests in flight, cap %d", dev, peaks[dev], tc.inflight[dev])
					}
				}
				if tc.gatewayPerSec > 0 {
					if got := MaxInWindow(all, time.Second); got > tc.gatewayPerSec {
						t.Errorf("all devices: %d grants in one second, limit %d", got, tc.gatewayPerSec)
					}
					if peak > tc.gatewayInFlight {
						t.Errorf("all devices: %d requests in flight, cap %d", peak, tc.gatewayInFlight)
					}
				}
			})
		})
	}
}

func TestDeviceSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewDeviceSlots(2)
		var now, peak atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rel, err := s.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if v := now.Add(1); v > peak.Load() {
					peak.Store(v)
				}
				time.Sleep(time.Second)
				now.Add(-1)
				rel()
				rel() // a second release frees nothing more
			}()
		}
		wg.Wait()
		if peak.Load() != 2 {
			t.Errorf("peak devices at once = %d, want 2", peak.Load())
		}
		if s.InUse() != 0 {
			t.Errorf("%d slots taken after every release", s.InUse())
		}
		// Both taken: a waiter gives up when its context ends, and an
		// ended context is refused even with a slot free.
		r1, _ := s.Acquire(context.Background())
		r2, _ := s.Acquire(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if _, err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute {
			t.Errorf("full: %v after %v, want DeadlineExceeded after 1m", err, time.Since(start))
		}
		r1()
		if _, err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ended context: %v", err)
		}
		if s.InUse() != 1 {
			t.Errorf("%d slots taken, want 1", s.InUse())
		}
		r2()
	})
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Unix(1_780_000_000, 0)
	ms := func(v ...int) []time.Time {
		var ts []time.Time
		for _, m := range v {
			ts = append(ts, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return ts
	}
	tests := []struct {
		name  string
		times []time.Time
		d     time.Duration
		want  int
	}{
		{"empty", nil, time.Second, 0},
		{"one", ms(0), time.Second, 1},
		{"the end of the interval is excluded", ms(0, 100, 999, 1000, 1500), time.Second, 3},
		{"a later interval holds more", ms(0, 900, 1000, 1100, 1899, 1900), time.Second, 4},
		{"unsorted input", ms(1500, 0, 999, 100, 1000), time.Second, 3},
		{"same instant counted each time", ms(5, 5, 5, 2000), time.Second, 3},
		{"all within", ms(0, 1, 2, 3), time.Second, 4},
		{"one per second, spaced exactly", ms(0, 1000, 2000, 3000), time.Second, 1},
		{"a 1.05 s interval", ms(0, 1000, 2000, 3000), time.Second + 50*time.Millisecond, 2},
		{"zero interval holds nothing", ms(0, 0, 1), 0, 0},
		{"negative interval holds nothing", ms(0, 0, 1), -time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]time.Time(nil), tc.times...)
			if got := MaxInWindow(tc.times, tc.d); got != tc.want {
				t.Errorf("MaxInWindow = %d, want %d", got, tc.want)
			}
			for i := range before {
				if !tc.times[i].Equal(before[i]) {
					t.Fatal("MaxInWindow reordered its input")
				}
			}
		})
	}
}

func TestRecorder(t *testing.T) {
	var r Recorder
	if !r.Last().IsZero() || r.Len() != 0 || r.Peak(time.Second) != 0 {
		t.Fatal("a new recorder is not empty")
	}
	t0 := time.Unix(1_780_000_000, 0)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				// Goroutine g records at g*1000 + i*10 ms: 50 in each second.
				r.Record(t0.Add(time.Duration(g*1000+i*10) * time.Millisecond))
			}
		}()
	}
	wg.Wait()
	if r.Len() != 200 || len(r.Times()) != 200 {
		t.Fatalf("recorded %d (%d times), want 200", r.Len(), len(r.Times()))
	}
	if got := r.Peak(time.Second); got != 50 {
		t.Errorf("peak %d in one second, want 50", got)
	}
	if want := t0.Add(3490 * time.Millisecond); !r.Last().Equal(want) {
		t.Errorf("last %v, want %v", r.Last(), want)
	}
	ts := r.Times()
	ts[0] = time.Time{}
	if r.Times()[0].IsZero() {
		t.Error("Times shares its slice with the recorder")
	}
}

// TestSpacing: sequential callers are granted exactly 1/rate apart, the
// busiest second holds the rate and no more, and the grant log stays
// bounded however high the rate.
func TestSpacing(t *testing.T) {
	tests := []struct {
		name   string
		rps    float64
		grants int
		gap    time.Duration
		perSec int // grants in the busiest second
	}{
		{"half a request per second", 0.5, 5, 2 * time.Second, 1},
		{"2.5 per second", 2.5, 12, 400 * time.Millisecond, 2},
		{"10 per second", 10, 40, 100 * time.Millisecond, 10},
		{"above the log bound: spacing only", 10000.5, 12000, 99996 * time.Nanosecond, 10001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(cfg(t, fmt.Sprintf("devices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, limits: {requests_per_second: %v}}\n", tc.rps)))
				var times []time.Time
				for i := 0; i < tc.grants; i++ {
					rel, err := l.Acquire(context.Background(), "a")
					if err != nil {
						t.Fatal(err)
					}
					times = append(times, time.Now())
					rel(nil)
				}
				minGap := time.Duration(math.MaxInt64)
				for i := 1; i < len(times); i++ {
					minGap = min(minGap, times[i].Sub(times[i-1]))
				}
				if minGap < tc.gap {
					t.Errorf("grants %v apart, want at least %v", minGap, tc.gap)
				}
				if got := MaxInWindow(times, time.Second); got != tc.perSec {
					t.Errorf("%d grants in the busiest second, want %d", got, tc.perSec)
				}
				// The limit is used: sequential grants come as soon as the
				// rules allow, floor(rps) per second, 1/rps apart, with no
				// margin on top.
				n := len(times) - 1
				bound := time.Duration(n) * tc.gap
				if per := int(tc.rps); per > 0 && tc.rps <= maxLog {
					bound = time.Duration(n/per)*time.Second + time.Duration(n%per)*tc.gap
				}
				if took := times[n].Sub(times[0]); took > bound {
					t.Errorf("%d grants took %v, want at most %v", len(times), took, bound)
				}
				if n := len(l.device("a").own.log); n > maxLog {
					t.Errorf("grant log holds %d entries, bound %d", n, maxLog)
				}
			})
		})
	}
}

// TestRequestContext: one request is bounded by the device's
// request_timeout, a sooner parent deadline is kept, and a request that runs
// out of its own time counts towards the breaker.
func TestRequestContext(t *testing.T) {
	const y = "defaults: {request_timeout: 3s}\n" +
		"devices:\n" +
		"  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, limits: {request_timeout: 500ms, breaker_failures: 2}}\n" +
		"  - {name: b, protocol: s7, endpoint: 127.0.0.1:2}\n"
	tests := []struct {
		name   string
		device string
		parent time.Duration // parent deadline; 0: none
		want   time.Duration // until the request's deadline
	}{
		{"own timeout", "a", 0, 500 * time.Millisecond},
		{"defaults", "b", 0, 3 * time.Second},
		{"unknown device gets the defaults", "stranger", 0, 3 * time.Second},
		{"a sooner parent deadline wins", "b", time.Second, time.Second},
		{"a later parent deadline is cut", "a", time.Minute, 500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(cfg(t, y))
				parent := context.Background()
				if tc.parent > 0 {
					var cancel context.CancelFunc
					parent, cancel = context.WithTimeout(parent, tc.parent)
					defer cancel()
				}
				ctx, cancel := l.RequestContext(parent, tc.device)
				defer cancel()
				dl, ok := ctx.Deadline()
				if !ok || time.Until(dl) != tc.want {
					t.Errorf("deadline in %v (set %v), want %v", time.Until(dl), ok, tc.want)
				}
			})
		})
	}
	t.Run("no timeout in a hand-built config", func(t *testing.T) {
		l := New(&config.Config{Devices: []*config.Device{{Name: "z"}}})
		ctx, cancel := l.RequestContext(context.Background(), "z")
		defer cancel()
		if _, ok := ctx.Deadline(); ok || l.RequestTimeout("z") != 0 {
			t.Error("a zero request_timeout set a deadline")
		}
	})
	t.Run("timeouts count towards the breaker", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := New(cfg(t, y))
			for i := 0; i < 2; i++ {
				rel, err := l.Acquire(context.Background(), "a")
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := l.RequestContext(context.Background(), "a")
				<-ctx.Done() // the device never answers
				cancel()
				rel(fmt.Errorf("reading DB1: %w", ctx.Err()))
			}
			if !l.Open("a") {
				t.Error("two request timeouts with breaker_failures 2 left the breaker closed")
			}
		})
	})
}

func BenchmarkAcquireRelease(b *testing.B) {
	c, _ := config.Parse("t.yaml", []byte("devices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, limits: {requests_per_second: 1000000000, max_in_flight: 64}}\n"))
	l := New(c)
	b.Run("uncontended", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rel, _ := l.Acquire(context.Background(), "a")
			rel(nil)
		}
	})
	b.Run("contended", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rel, _ := l.Acquire(context.Background(), "a")
				rel(nil)
			}
		})
	})
}

// answer is an error the device sent back for one request, marked as
// connectors.Answered marks it.
type answer struct{ error }

func (answer) DeviceAnswered() bool { return true }
func (a answer) Unwrap() error      { return a.error }

func TestBreaker(t *testing.T) {
	fail := errors.New("connection reset")
	ended := func() context.Context { // a caller whose window has closed
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	tests := []struct {
		name string
		// outcomes are released in order on device a (breaker_failures 3);
		// each is the error and whether the caller's context had ended.
		outcomes []error
		ctxEnded []bool
		open     bool
	}{
		{"three failures open it", []error{fail, fail, fail}, nil, true},
		{"two failures do not", []error{fail, fail}, nil, false},
		{"a success in between resets the count", []error{fail, fail, nil, fail, fail}, nil, false},
		{"caller cancellations do not count", []error{context.Canceled, fmt.Errorf("read: %w", context.Canceled), context.Canceled, context.Canceled}, nil, false},
		{"errors after the caller's context ended do not count", []error{context.DeadlineExceeded, fail, fail}, []bool{true, true, true}, false},
		{"a request's own timeout counts", []error{context.DeadlineExceeded, context.DeadlineExceeded, context.DeadlineExceeded}, nil, true},
		{"the device refusing one request in words does not count", []error{answer{fail}, fmt.Errorf("read: %w", answer{fail}), answer{fail}, answer{fail}}, nil, false},
		{"answers do not hide failures around them", []error{fail, answer{fail}, fail, fail}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(cfg(t, twoDevices))
				for i, e := range tc.outcomes {
					ctx := context.Background()
					if tc.ctxEnded != nil && tc.ctxEnded[i] {
						ctx, cancel := context.WithCancel(context.Background())
						rel, err := l.Acquire(ctx, "a")
						if err != nil {
							t.Fatalf("acquire %d: %v", i, err)
						}
						cancel()
						rel(e)
						continue
					}
					rel, err := l.Acquire(ctx, "a")
					if err != nil {
						t.Fatalf("acquire %d: %v", i, err)
					}
					rel(e)
					rel(fail) // a second release does nothing
				}
				if l.Open("a") != tc.open {
					t.Fatalf("breaker open = %v, want %v", l.Open("a"), tc.open)
				}
				rel, err := l.Acquire(context.Background(), "a")
				if tc.open != errors.Is(err, ErrBreakerOpen) {
					t.Fatalf("acquire after the outcomes: %v, want ErrBreakerOpen %v", err, tc.open)
				}
				if err == nil {
					rel(nil)
				}
				_, err = l.Acquire(ended(), "a")
				if tc.open && !errors.Is(err, ErrBreakerOpen) {
					t.Errorf("an open breaker is reported before the context: %v", err)
				}
				if !tc.open && !errors.Is(err, context.Canceled) {
					t.Errorf("acquire with an ended context: %v, want Canceled", err)
				}
				rel, err = l.Acquire(context.Background(), "b")
				if err != nil {
					t.Fatalf("another device is affected: %v", err)
				}
				rel(nil)
				l.Reset("a")
				if l.Open("a") {
					t.Fatal("open after Reset")
				}
				rel, err = l.Acquire(context.Background(), "a")
				if err != nil {
					t.Fatalf("after reset: %v", err)
				}
				rel(nil)
			})
		})
	}
}

// TestBreakerWaiters: callers already queued for the device when its
// breaker opens get ErrBreakerOpen, not the wire.
func TestBreakerWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(cfg(t, twoDevices)) // a: 2/s, 1 in flight, breaker after 3
		first, err := l.Acquire(context.Background(), "a")
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 3)
		for i := 0; i < 3; i++ {
			go func() {
				rel, err := l.Acquire(context.Background(), "a")
				if err == nil {
					rel(errors.New("timeout"))
				}
				errs <- err
			}()
		}
		synctest.Wait() // all three wait for the in-flight slot
		first(errors.New("timeout"))
		var granted, refused int
		for i := 0; i < 3; i++ {
			switch err := <-errs; {
			case err == nil:
				granted++
			case errors.Is(err, ErrBreakerOpen):
				refused++
			default:
				t.Errorf("waiter: %v", err)
			}
		}
		if granted != 2 || refused != 1 {
			t.Errorf("granted %d, refused %d; want 2 more failures to open the breaker and the last waiter refused", granted, refused)
		}
	})
}

// TestAcquireCancelled: a caller whose context ends while it waits gets the
// context's error and leaves no slot taken.
func TestAcquireCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(cfg(t, twoDevices))
		rel, err := l.Acquire(context.Background(), "c") // gateway gw: 1 in flight
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := l.Acquire(ctx, "d"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("acquire behind a busy gateway: %v, want DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != 200*time.Millisecond {
			t.Errorf("gave up after %v, want the 200ms deadline", waited)
		}
		rel(nil)
		rel, err = l.Acquire(context.Background(), "d")
		if err != nil {
			t.Fatalf("the cancelled caller left a slot taken: %v", err)
		}
		rel(nil)
	})
}

func TestUnknownDeviceGetsDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(cfg(t, "defaults: {requests_per_second: 4, breaker_failures: 2}\n"+twoDevices))
		var times []time.Time
		for i := 0; i < 12; i++ {
			rel, err := l.Acquire(context.Background(), "stranger")
			if err != nil {
				t.Fatal(err)
			}
			times = append(times, time.Now())
			rel(nil)
		}
		if got := MaxInWindow(times, time.Second); got != 4 {
			t.Errorf("unknown device: %d grants in the busiest second, want the default 4", got)
		}
		for i := 0; i < 2; i++ {
			rel, _ := l.Acquire(context.Background(), "stranger")
			rel(errors.New("refused"))
		}
		if !l.Open("stranger") {
			t.Error("the default breaker_failures 2 did not open the breaker")
		}
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		r       float64
		want    time.Duration
	}{
		{"first, no jitter", Backoff{Initial: time.Second, Max: 10 * time.Second}, 0, 0, 500 * time.Millisecond},
		{"first, half jitter", Backoff{Initial: time.Second, Max: 10 * time.Second}, 0, 0.5, 750 * time.Millisecond},
		{"first, top of the jitter", Backoff{Initial: time.Second, Max: 10 * time.Second}, 0, 0.999999, time.Second},
		{"third doubles twice", Backoff{Initial: time.Second, Max: 10 * time.Second}, 2, 0, 2 * time.Second},
		{"capped", Backoff{Initial: time.Second, Max: 10 * time.Second}, 10, 0, 5 * time.Second},
		{"capped, top", Backoff{Initial: time.Second, Max: 10 * time.Second}, 10, 0.999999, 10 * time.Second},
		{"huge attempt does not overflow", Backoff{Initial: time.Second, Max: 30 * time.Second}, 1000, 0.5, 22500 * time.Millisecond},
		{"no cap, huge attempt stays positive", Backoff{Initial: time.Second}, 1000, 0, (time.Second << 33) / 2},
		{"zero initial means one second", Backoff{}, 1, 0, time.Second},
		{"full jitter can be zero", Backoff{Initial: time.Second, Max: 8 * time.Second, Full: true}, 3, 0, 0},
		{"full jitter, half", Backoff{Initial: time.Second, Max: 8 * time.Second, Full: true}, 3, 0.5, 4 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			b.Rand = func() float64 { return tc.r }
			if got := b.Delay(tc.attempt); (got - tc.want).Abs() > time.Millisecond {
				t.Errorf("Delay(%d) = %v, want %v", tc.attempt, got, tc.want)
			}
		})
	}
}

// TestBackoffBounds: with real randomness every delay lies in its jitter
// range, and the bases grow until the cap.
func TestBackoffBounds(t *testing.T) {
	for _, full := range []bool{false, true} {
		b := Backoff{Initial: 100 * time.Millisecond, Max: 3 * time.Second, Full: full}
		for attempt := 0; attempt < 12; attempt++ {
			base := min(100*time.Millisecond<<attempt, 3*time.Second)
			lo := base / 2
			if full {
				lo = 0
			}
			for i := 0; i < 200; i++ {
				if d := b.Delay(attempt); d < lo || d > base {
					t.Fatalf("full=%v attempt %d: %v outside [%v, %v]", full, attempt, d, lo, base)
				}
			}
		}
	}
}

func TestBackoffWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Initial: time.Second, Max: time.Minute, Rand: func() float64 { return 0 }}
		start := time.Now()
		if err := b.Wait(context.Background(), 3); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 4*time.Second {
			t.Errorf("waited %v, want 4s", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Wait(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait past the deadline: %v", err)
		}
	})
}

// lockHelperEnv makes the test binary a lock holder: see TestLockHelper.
const lockHelperEnv = "PLCWATCH_LOCK_HELPER_DIR"

// TestLockHelper is not a test: run as a subprocess by TestLock, it takes
// the lock of "plc1", prints "locked", and holds it until its stdin closes.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("subprocess helper for TestLock")
	}
	unlock, err := Lock(context.Background(), dir, "plc1")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	unlock()
	os.Exit(0)
}

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	// Another process holds plc1: we wait, then give up when ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Lock(ctx, dir, "plc1")
	if !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock held by another process: %v, want ErrLocked and DeadlineExceeded", err)
	}
	if want := fmt.Sprintf("pid %d", cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder (%s)", err, want)
	}
	// Another device is free.
	other, err := Lock(context.Background(), dir, "plc2")
	if err != nil {
		t.Fatalf("another device's lock: %v", err)
	}
	other()
	other() // unlock twice is harmless

	// A waiter gets the lock once the holder lets go.
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), dir, "plc1")
		if err == nil {
			defer u()
			// In this process now: a second Lock here is excluded too.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err2 := Lock(ctx, dir, "plc1"); !errors.Is(err2, ErrLocked) {
				err = fmt.Errorf("second lock in one process: %v", err2)
			}
		}
		got <- err
	}()
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if err := <-got; err != nil {
		t.Errorf("waiting holder: %v", err)
	}

	fi, err := os.Stat(filepath.Join(dir, "plc1.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestLockBadName(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "../escape", "a/b", `a\b`} {
		if _, err := Lock(context.Background(), dir, name); err == nil {
			t.Errorf("Lock(%q) succeeded", name)
		}
	}
}

// TestRateAtTheDevice: a request can spend any time between its grant and
// the wire (a loaded host, a busy goroutine); counted where the device sees
// it, no second holds more requests than the limit. Each worker's request
// arrives at the device after its transit delay and is answered hold later;
// release comes with the answer.
func TestRateAtTheDevice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomDelays := make([]time.Duration, 64)
	for i := range randomDelays {
		randomDelays[i] = time.Duration(rng.IntN(400)) * time.Millisecond
	}
	tests := []struct {
		name    string
		config  string
		device  string
		workers int
		limit   int
		delay   func(i int) time.Duration // transit delay of the worker's i-th request
	}{
		{"first of every five delayed 190ms, 5/s", "devices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, limits: {requests_per_second: 5}}\n", "a", 1, 5,
			func(i int) time.Duration {
				if i%5 == 0 {
					return 190 * time.Millisecond
				}
				return 0
			}},
		{"random delays up to 400ms, 5/s", "devices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, limits: {requests_per_second: 5}}\n", "a", 1, 5,
			func(i int) time.Duration { return randomDelays[i%len(randomDelays)] }},
		{"random delays, 10/s with 2 in flight", twoDevices, "b", 2, 10,
			func(i int) time.Duration { return randomDelays[(7*i)%len(randomDelays)] }},
		{"random delays behind a gateway, 3/s", twoDevices, "c", 1, 3,
			func(i int) time.Duration { return randomDelays[(3*i)%len(randomDelays)] }},
		{"delays up to 1.6s, 2/s with 4 in flight: more in flight than the limit", "devices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, limits: {requests_per_second: 2, max_in_flight: 4}}\n", "a", 4, 2,
			func(i int) time.Duration { return 4 * randomDelays[(5*i)%len(randomDelays)] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(cfg(t, tc.config))
				var rec Recorder
				var wg sync.WaitGroup
				for w := 0; w < tc.workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 30; i++ {
							rel, err := l.Acquire(context.Background(), tc.device)
							if err != nil {
								t.Error(err)
								return
							}
							time.Sleep(tc.delay(i))
							rec.Record(time.Now())
							time.Sleep(10 * time.Millisecond)
							rel(nil)
						}
					}()
				}
				wg.Wait()
				if got := rec.Peak(time.Second); got > tc.limit {
					t.Errorf("%d requests reached the device in one second, limit %d", got, tc.limit)
				}
			})
		})
	}
}

// TestScheduleKeepsLateGrants: a grant that comes a little after its slot
// (a host waking the waiter late) does not push later grants back; one that
// comes much later (the device was idle) starts the spacing afresh.
func TestScheduleKeepsLateGrants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		late  time.Duration // how long after its slot the second request asks
		third time.Duration // when the third, asked for at once, is granted
	}{
		{name: "on time", late: 0, third: 200 * time.Millisecond},
		{name: "a twentieth of a gap late keeps the schedule", late: 5 * time.Millisecond, third: 200 * time.Millisecond},
		{name: "half a gap late: spacing from the grant", late: 50 * time.Millisecond, third: 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(cfg(t, "devices:\n  - {name: a, protocol: s7, endpoint: 127.0.0.1:1, limits: {requests_per_second: 10}}\n"))
				start := time.Now()
				get := func() time.Duration {
					rel, err := l.Acquire(context.Background(), "a")
					if err != nil {
						t.Fatal(err)
					}
					rel(nil)
					return time.Since(start)
				}
				get()
				time.Sleep(100*time.Millisecond + tc.late)
				if got := get(); got != 100*time.Millisecond+tc.late {
					t.Fatalf("second grant at %v, want %v", got, 100*time.Millisecond+tc.late)
				}
				if got := get(); got != tc.third {
					t.Errorf("third grant at %v, want %v", got, tc.third)
				}
			})
		})
	}
}

func TestGatewayShare(t *testing.T) {
	for _, tc := range []struct {
		name            string
		gateway, device float64
		want            int
	}{
		{name: "two devices fill the gateway", gateway: 100, device: 50, want: 2},
		{name: "a fraction rounds up", gateway: 100, device: 30, want: 4},
		{name: "a gateway slower than its device: one", gateway: 5, device: 50, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := GatewayShare(tc.gateway, tc.device); got != tc.want {
				t.Errorf("GatewayShare(%g, %g) = %d, want %d", tc.gateway, tc.device, got, tc.want)
			}
		})
	}
}

// TestFleetSlotsGatewayShare: devices behind a gateway hold at most its
// share of the slots; those waiting for the share take no slot, so a
// device not behind the gateway is read meanwhile.
func TestFleetSlotsGatewayShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewFleetSlots(cfg(t, `daemon: {max_concurrent_devices: 4}
gateways:
  - {name: gw, requests_per_second: 150, max_in_flight: 2}
devices:
  - {name: g1, protocol: s7, endpoint: 127.0.0.1:1, gateway: gw, limits: {requests_per_second: 50}}
  - {name: g2, protocol: s7, endpoint: 127.0.0.1:2, gateway: gw, limits: {requests_per_second: 50}}
  - {name: g3, protocol: s7, endpoint: 127.0.0.1:3, gateway: gw, limits: {requests_per_second: 50}}
  - {name: g4, protocol: s7, endpoint: 127.0.0.1:4, gateway: gw, limits: {requests_per_second: 50}}
  - {name: g5, protocol: s7, endpoint: 127.0.0.1:5, gateway: gw, limits: {requests_per_second: 50}}
  - {name: a, protocol: s7, endpoint: 127.0.0.1:6}
  - {name: b, protocol: s7, endpoint: 127.0.0.1:7}
`))
		var mu sync.Mutex
		holding := map[string]func(){}
		take := func(dev string) {
			rel, err := s.AcquireDevice(context.Background(), dev)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			holding[dev] = rel
			mu.Unlock()
		}
		held := func() []string {
			mu.Lock()
			defer mu.Unlock()
			var out []string
			for d := range holding {
				out = append(out, d)
			}
			sort.Strings(out)
			return out
		}
		for _, d := range []string{"g1", "g2", "g3", "g4", "g5"} {
			go take(d)
		}
		synctest.Wait()
		if h := held(); len(h) != 3 {
			t.Fatalf("devices behind the gateway holding slots: %v, want its share of 3", h)
		}
		go take("a")
		synctest.Wait()
		if h := held(); len(h) != 4 || !slices.Contains(h, "a") {
			t.Fatalf("holding %v: a device not behind the gateway must get the free slot", h)
		}
		go take("b") // every slot taken: b waits, as do g4 and g5
		synctest.Wait()
		if h := held(); len(h) != 4 {
			t.Fatalf("holding %v with 4 slots", h)
		}
		// A gateway device ends: its share and slot pass to g4 or g5
		// (waiting for the share), or b (waiting for the slot).
		mu.Lock()
		var first string
		for d, rel := range holding {
			if strings.HasPrefix(d, "g") {
				first = d
				rel()
				rel() // a second release frees nothing more
				delete(holding, d)
				break
			}
		}
		mu.Unlock()
		synctest.Wait()
		h := held()
		gw := 0
		for _, d := range h {
			if strings.HasPrefix(d, "g") {
				gw++
			}
		}
		if len(h) != 4 || gw > 3 {
			t.Fatalf("after %s ended: holding %v, want 4 with at most 3 behind the gateway", first, h)
		}
		// Release until every device has had its turn.
		for range 7 {
			mu.Lock()
			for d, rel := range holding {
				rel()
				delete(holding, d)
			}
			mu.Unlock()
			synctest.Wait()
		}
		if s.InUse() != 0 {
			t.Errorf("%d slots taken after every release", s.InUse())
		}
	})
}

// TestFleetSlotsGatewayFirst: a free slot goes to a device behind a gateway
// with share left before a device that queued earlier, so the gateway,
// whose rate all its devices share, is kept busy from the start.
func TestFleetSlotsGatewayFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewFleetSlots(cfg(t, `daemon: {max_concurrent_devices: 1}
gateways:
  - {name: gw, requests_per_second: 10}
devices:
  - {name: x, protocol: s7, endpoint: 127.0.0.1:1}
  - {name: y, protocol: s7, endpoint: 127.0.0.1:2}
  - {name: g, protocol: s7, endpoint: 127.0.0.1:3, gateway: gw, limits: {requests_per_second: 10}}
`))
		relX, err := s.AcquireDevice(context.Background(), "x")
		if err != nil {
			t.Fatal(err)
		}
		ty, tg := s.Reserve("y"), s.Reserve("g")
		got := make(chan string, 2)
		for _, w := range []struct {
			name string
			t    *Ticket
		}{{"y", ty}, {"g", tg}} {
			go func() {
				rel, err := w.t.Wait(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				got <- w.name
				rel()
			}()
		}
		synctest.Wait()
		relX()
		if first := <-got; first != "g" {
			t.Errorf("the free slot went to %s, want g (behind the gateway)", first)
		}
		<-got
	})
}

// TestReserveAllGatewayFirst: devices queued together get the free slots
// gateway devices first, even when the others come first in the list.
func TestReserveAllGatewayFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewFleetSlots(cfg(t, `daemon: {max_concurrent_devices: 2}
gateways:
  - {name: gw, requests_per_second: 10}
devices:
  - {name: x, protocol: s7, endpoint: 127.0.0.1:1}
  - {name: y, protocol: s7, endpoint: 127.0.0.1:2}
  - {name: g, protocol: s7, endpoint: 127.0.0.1:3, gateway: gw, limits: {requests_per_second: 10}}
`))
		ts := s.ReserveAll([]string{"x", "y", "g"})
		var granted []string
		for i, name := range []string{"x", "y", "g"} {
			select {
			case <-ts[i].ready:
				granted = append(granted, name)
			default:
			}
		}
		if !slices.Equal(granted, []string{"x", "g"}) {
			t.Errorf("granted at once: %v, want x and g (the gateway's device before y)", granted)
		}
		for _, tk := range ts {
			rel, err := tk.Wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			rel()
		}
	})
}
