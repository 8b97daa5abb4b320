package connectors

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/limits"
)

type countingLimiter struct {
	mu       sync.Mutex
	acquired int
	failures int
}

func (l *countingLimiter) Acquire(ctx context.Context, device string) (func(error), error) {
	l.mu.Lock()
	l.acquired++
	l.mu.Unlock()
	return func(err error) {
		if err != nil {
			l.mu.Lock()
			l.failures++
			l.mu.Unlock()
		}
	}, nil
}

func TestGate(t *testing.T) {
	lim := &countingLimiter{}
	g := NewGate("d1", []string{"x.Read", "x.Browse"}, lim)
	sends := 0
	send := func(n int, err error) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { sends++; return n, err }
	}
	ctx := context.Background()
	tests := []struct {
		name    string
		req     Request
		n       int
		sendErr error
		wantErr error
		sent    bool
	}{
		{"allowed", Request{Kind: "x.Read", Object: "DB1", Size: 10}, 100, nil, nil, true},
		{"allowed again", Request{Kind: "x.Read", Object: "DB1", Size: 10}, 50, nil, nil, true},
		{"other object", Request{Kind: "x.Browse", Object: "root", Size: 5}, 7, nil, nil, true},
		{"refused write", Request{Kind: "x.Write", Object: "DB1", Size: 10}, 0, nil, ErrNotAllowed, false},
		{"send fails", Request{Kind: "x.Read", Object: "DB2", Size: 1}, 0, errors.New("reset"), nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := sends
			err := g.Do(ctx, tc.req, send(tc.n, tc.sendErr))
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Do = %v, want %v", err, tc.wantErr)
			}
			if tc.sendErr != nil && !errors.Is(err, tc.sendErr) {
				t.Errorf("Do = %v, want the send error", err)
			}
			if (sends > before) != tc.sent {
				t.Errorf("sent = %v, want %v", sends > before, tc.sent)
			}
		})
	}
	c := g.Cost()
	if c.Requests != 4 || c.BytesOut != 26 || c.BytesIn != 157 {
		t.Errorf("cost = %+v, want 4 requests, 26 out, 157 in", c)
	}
	if len(c.ByKind) != 3 || c.ByKind[0].Kind != "x.Browse" || c.ByKind[1].Object != "DB1" || c.ByKind[1].Count != 2 {
		t.Errorf("by kind = %+v", c.ByKind)
	}
	if lim.acquired != 4 || lim.failures != 1 {
		t.Errorf("limiter acquired %d, failures %d; want 4, 1", lim.acquired, lim.failures)
	}
	if g.Counts()["x.Read"] != 3 {
		t.Errorf("counts = %v", g.Counts())
	}
	g.Reset()
	if g.Cost().Requests != 0 {
		t.Error("reset kept counts")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.Do(cctx, Request{Kind: "x.Read"}, send(1, nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

// TestGateRequestTimeout: the gate bounds every request with the device's
// request_timeout when its limiter knows one, whatever the connector does.
func TestGateRequestTimeout(t *testing.T) {
	cfg := &config.Config{Defaults: config.Limits{RequestsPerSecond: 1000, MaxInFlight: 1,
		RequestTimeout: config.Duration(20 * time.Millisecond)}}
	tests := []struct {
		name         string
		limiter      Limiter
		wantDeadline bool
	}{
		{name: "limits.Limiter bounds the request", limiter: limits.New(cfg), wantDeadline: true},
		{name: "no limiter, no bound", limiter: nil, wantDeadline: false},
		{name: "a limiter without request_timeout", limiter: &countingLimiter{}, wantDeadline: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGate("d1", []string{"x.Read"}, tc.limiter)
			var had bool
			err := g.Do(context.Background(), Request{Kind: "x.Read"}, func(ctx context.Context) (int, error) {
				_, had = ctx.Deadline()
				if !had {
					return 0, nil
				}
				<-ctx.Done() // a stalled device: only the bound ends the wait
				return 0, ctx.Err()
			})
			if had != tc.wantDeadline {
				t.Fatalf("send's context has a deadline = %v, want %v", had, tc.wantDeadline)
			}
			if tc.wantDeadline && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Do = %v, want context.DeadlineExceeded", err)
			}
		})
	}
}
