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

// grant runs n requests from workers goroutines against one device, each
// taking hold of the wire for hold, and returns the grant times and the peak
// in-flight count.
func grant(t *testing.T, l *Limiter, devices []string, n, workers int, hold time.Duration) ([]time.Time, int) {
	var mu sync.Mutex
	var times []time.Time
	var inflight, peak atomic.Int32
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
					times = append(times, time.Now())
					mu.Unlock()
					if v := inflight.Add(1); v > peak.Load() {
						peak.Store(v)
					}
					time.Sleep(hold)
					inflight.Add(-1)
					rel(nil)
				}
			}()
		}
	}
	wg.Wait()
	return times, int(peak.Load())
}

func TestRateAndInFlight(t *testing.T) {
	tests := []struct {
		name     string
		devices  []string
		perSec   int // most grants in any one second
		inflight int
	}{
		{"device a: 2/s, 1 in flight", []string{"a"}, 2, 1},
		{"device b: 10/s, 2 in flight", []string{"b"}, 10, 2},
		{"gateway shared by c and d: 3/s, 1 in flight", []string{"c", "d"}, 3, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(cfg(t, twoDevices))
				times, peak := grant(t, l, tc.devices, 40, 4, 20*time.Millisecond)
				if got := MaxInWindow(times, time.Second); got > tc.perSec {
					t.Errorf("%d grants in one second, limit %d", got, tc.perSec)
				}
				if got := MaxInWindow(times, time.Second); got < tc.perSec {
					t.Errorf("only %d grants in the busiest second: the limit %d is not used", got, tc.perSec)
				}
				if peak > tc.inflight {
					t.Errorf("%d requests in flight, cap %d", peak, tc.inflight)
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
