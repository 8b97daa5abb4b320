package limits

import (
	"context"
	"errors"
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
				// The margin: no 1.05 s interval holds more than the limit either.
				for _, dev := range tc.devices {
					if got := MaxInWindow(times[dev], time.Second+jitterMargin); got > tc.perSec[dev] {
						t.Errorf("%s: %d grants in 1s+margin, limit %d", dev, got, tc.perSec[dev])
					}
				}
			})
		})
	}
}

func TestBreaker(t *testing.T) {
	l := New(cfg(t, twoDevices))
	fail := errors.New("connection reset")
	for i := 0; i < 3; i++ {
		// Cancellations by the caller do not count.
		rel, err := l.Acquire(context.Background(), "a")
		if err != nil {
			t.Fatal(err)
		}
		rel(context.Canceled)
	}
	if l.Open("a") {
		t.Fatal("breaker opened on caller cancellations")
	}
	synctest.Test(t, func(t *testing.T) {
		for i := 0; i < 3; i++ {
			rel, err := l.Acquire(context.Background(), "a")
			if err != nil {
				t.Fatalf("acquire %d: %v", i, err)
			}
			rel(fail)
		}
		if _, err := l.Acquire(context.Background(), "a"); !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("after 3 failures: %v, want ErrBreakerOpen", err)
		}
		if _, err := l.Acquire(context.Background(), "b"); err != nil {
			t.Errorf("another device is affected: %v", err)
		}
		l.Reset("a")
		rel, err := l.Acquire(context.Background(), "a")
		if err != nil {
			t.Fatalf("after reset: %v", err)
		}
		rel(nil)
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name    string
		attempt int
		r       float64
		want    time.Duration
	}{
		{"first, no jitter", 0, 0, 500 * time.Millisecond},
		{"first, half jitter", 0, 0.5, 750 * time.Millisecond},
		{"third", 2, 0, 2 * time.Second},
		{"capped", 10, 0, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Initial: time.Second, Max: 10 * time.Second, Rand: func() float64 { return tc.r }}
			if got := b.Delay(tc.attempt); got.Round(time.Microsecond) != tc.want.Round(time.Microsecond) {
				t.Errorf("Delay(%d) = %v, want %v", tc.attempt, got, tc.want)
			}
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
				rel, _ := s.Acquire(context.Background())
				if v := now.Add(1); v > peak.Load() {
					peak.Store(v)
				}
				time.Sleep(time.Second)
				now.Add(-1)
				rel()
			}()
		}
		wg.Wait()
		if peak.Load() != 2 {
			t.Errorf("peak devices at once = %d, want 2", peak.Load())
		}
	})
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Unix(0, 0)
	ts := []time.Time{t0, t0.Add(100 * time.Millisecond), t0.Add(999 * time.Millisecond), t0.Add(time.Second), t0.Add(1500 * time.Millisecond)}
	if got := MaxInWindow(ts, time.Second); got != 3 {
		t.Errorf("MaxInWindow = %d, want 3", got)
	}
	if MaxInWindow(nil, time.Second) != 0 {
		t.Error("empty")
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(context.Background(), dir, "plc1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, dir, "plc1"); err == nil {
		t.Fatal("second holder got the lock")
	}
	other, err := Lock(context.Background(), dir, "plc2")
	if err != nil {
		t.Fatalf("another device's lock: %v", err)
	}
	other()
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), dir, "plc1")
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Errorf("waiting holder: %v", err)
	}
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
