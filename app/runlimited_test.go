package app

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/plcwatch/plcwatch/limits"
)

// TestRunLimited checks that check --all's fan-out runs exactly
// min(limit, waiting) devices at once: in a synctest bubble every started
// call blocks until released, so after synctest.Wait the number running is
// what the cap allows, never more and never fewer.
func TestRunLimited(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, limit int
	}{
		{name: "one at a time", n: 3, limit: 1},
		{name: "two of five", n: 5, limit: 2},
		{name: "cap above the devices", n: 3, limit: 8},
		{name: "zero means one", n: 2, limit: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				running, ran := map[int]chan struct{}{}, map[int]bool{}
				finished := make(chan struct{})
				go func() {
					runLimited(context.Background(), limits.NewDeviceSlots(tc.limit), make([]string, tc.n), func(_ context.Context, i int, _ func()) {
						release := make(chan struct{})
						mu.Lock()
						running[i], ran[i] = release, true
						mu.Unlock()
						<-release
						mu.Lock()
						delete(running, i)
						mu.Unlock()
					})
					close(finished)
				}()
				capacity := max(tc.limit, 1)
				for left := tc.n; left > 0; left-- {
					synctest.Wait()
					mu.Lock()
					want := min(capacity, left)
					if len(running) != want {
						t.Fatalf("%d devices read at once with %d waiting, want %d", len(running), left, want)
					}
					lowest := -1
					for i := range running {
						if lowest < 0 || i < lowest {
							lowest = i
						}
					}
					close(running[lowest])
					mu.Unlock()
				}
				<-finished
				if len(ran) != tc.n {
					t.Errorf("%d devices read, want %d", len(ran), tc.n)
				}
			})
		})
	}
}

// TestRunLimitedStops: calls not started when the context ends are skipped.
func TestRunLimitedStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls []int
	runLimited(ctx, limits.NewDeviceSlots(1), make([]string, 4), func(_ context.Context, i int, _ func()) {
		calls = append(calls, i)
		if i == 1 {
			cancel()
		}
	})
	if len(calls) != 2 {
		t.Errorf("calls %v, want devices 0 and 1 only", calls)
	}
}

// TestRunLimitedFreesSlotWhenCollected: a device that has been read (it
// called collected) and is still being stored, compared and alerted on no
// longer holds its slot: the next device is read meanwhile, and the cap
// still bounds the devices being read.
func TestRunLimitedFreesSlotWhenCollected(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, limit int
	}{
		{name: "one at a time", n: 4, limit: 1},
		{name: "two at a time", n: 5, limit: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				reading, storing := map[int]chan struct{}{}, map[int]chan struct{}{}
				finished := make(chan struct{})
				go func() {
					runLimited(context.Background(), limits.NewDeviceSlots(tc.limit), make([]string, tc.n), func(_ context.Context, i int, collected func()) {
						read, store := make(chan struct{}), make(chan struct{})
						mu.Lock()
						reading[i] = read
						mu.Unlock()
						<-read
						mu.Lock()
						delete(reading, i)
						storing[i] = store
						mu.Unlock()
						collected()
						collected() // a second call frees nothing more
						<-store
						mu.Lock()
						delete(storing, i)
						mu.Unlock()
					})
					close(finished)
				}()
				// Finish each read in turn and leave every device storing:
				// the next ones are read meanwhile, never more than the cap.
				for done := 0; done < tc.n; done++ {
					synctest.Wait()
					mu.Lock()
					if want := min(tc.limit, tc.n-done); len(reading) != want {
						t.Fatalf("after %d reads: %d devices being read (%d storing), want %d", done, len(reading), len(storing), want)
					}
					if len(storing) != done {
						t.Fatalf("after %d reads: %d devices storing", done, len(storing))
					}
					lowest := -1
					for i := range reading {
						if lowest < 0 || i < lowest {
							lowest = i
						}
					}
					close(reading[lowest])
					mu.Unlock()
				}
				synctest.Wait()
				mu.Lock()
				for _, ch := range storing {
					close(ch)
				}
				mu.Unlock()
				<-finished
			})
		})
	}
}
