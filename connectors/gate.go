package connectors

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/plcwatch/plcwatch/snapshots"
)

// ErrNotAllowed is returned by the gate for a request kind that is not on the
// connector's read-only allowlist. Such a request never reaches the wire.
var ErrNotAllowed = errors.New("request kind not on the read-only allowlist")

// Request describes one request a connector is about to put on the wire.
type Request struct {
	// Kind is the protocol-qualified request kind, such as "opcua.Read",
	// "s7.ReadVar" or "cip.GetAttributeSingle". The allowlist is checked
	// against it.
	Kind string
	// Object is what is read, for plans and logs, at a coarse grain so that
	// plans stay short: "SZL 0x0011", "DB10", "block info", "Symbol 0x6B".
	// Never one entry per tag or node. Optional.
	Object string
	// Size is the number of bytes sent (0 where the library does not say).
	Size int
}

// Limiter throttles requests to devices. The daemon supplies one that
// enforces per-device rates, in-flight caps, endpoint limits and breakers;
// nil means no throttling.
type Limiter interface {
	// Acquire blocks until device may send one request, or ctx ends. The
	// caller calls release when the response (or an error) has arrived,
	// passing the error so breakers can count failures.
	Acquire(ctx context.Context, device string) (release func(err error), err error)
}

// RequestBounder is implemented by limiters that know a device's
// request_timeout (limits.Limiter does). The gate bounds each request it
// admits with the context RequestContext returns.
type RequestBounder interface {
	// RequestContext returns ctx bounded by the device's request_timeout,
	// for one request.
	RequestContext(ctx context.Context, device string) (context.Context, context.CancelFunc)
}

// RequestLimiter is implemented by limiters that must see each request
// itself, not only the device: an isolated session's child process asks
// its parent for every request this way, and the parent's gate re-checks the
// allowlist, applies the limits and records the cost. When a Gate's limiter
// implements it, Acquire is not called.
type RequestLimiter interface {
	// AcquireRequest waits until req may be sent (or ctx ends). The caller
	// calls release once with the bytes received and the request's outcome.
	AcquireRequest(ctx context.Context, device string, req Request) (release func(bytesIn int, err error), err error)
}

// Gate is the one path from a connector to the wire. It is safe for
// concurrent use.
type Gate struct {
	device  string
	allow   map[string]bool
	limiter Limiter

	mu    sync.Mutex
	costs map[costKey]*snapshots.RequestCount
	order []costKey
	total snapshots.RequestCount
}

type costKey struct{ kind, object string }

// NewGate returns a gate that allows exactly the given request kinds.
// limiter may be nil (no throttling, no request timeout); when it implements
// RequestBounder every request is bounded by the device's request_timeout,
// and when it implements RequestLimiter it is asked per request.
func NewGate(device string, allowlist []string, limiter Limiter) *Gate {
	g := &Gate{device: device, allow: map[string]bool{}, limiter: limiter, costs: map[costKey]*snapshots.RequestCount{}}
	for _, k := range allowlist {
		g.allow[k] = true
	}
	return g
}

// Device returns the name of the device the gate guards.
func (g *Gate) Device() string { return g.device }

// Allowed reports whether kind may be sent.
func (g *Gate) Allowed(kind string) bool { return g.allow[kind] }

// Allowlist returns the allowed kinds, sorted.
func (g *Gate) Allowlist() []string {
	var ks []string
	for k := range g.allow {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Do sends one request through the gate: it refuses kinds not on the
// allowlist, waits for the limiter, calls send with a context bounded by the
// device's request_timeout (when the limiter knows it), and records the
// request and the bytes send reports as received. send must perform exactly
// one request on the wire (one round trip) and honour its context.
func (g *Gate) Do(ctx context.Context, req Request, send func(ctx context.Context) (bytesIn int, err error)) error {
	rctx, done, err := g.Admit(ctx, req)
	if err != nil {
		return err
	}
	in, err := send(rctx)
	done(in, err)
	return err
}

// Admit is the first half of Do, for callers that send the request
// elsewhere (an isolated session's child process): it refuses a kind that is
// not on the allowlist, waits for the limiter and returns the context the
// request must be sent under (bounded by request_timeout). done must be
// called exactly once, with the bytes received and the outcome; it releases
// the limiter, records the cost and cancels the context.
func (g *Gate) Admit(ctx context.Context, req Request) (rctx context.Context, done func(bytesIn int, err error), err error) {
	if !g.allow[req.Kind] {
		return nil, nil, fmt.Errorf("device %s: %s %s: %w", g.device, req.Kind, req.Object, ErrNotAllowed)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	release := func(int, error) {}
	switch l := g.limiter.(type) {
	case nil:
	case RequestLimiter:
		r, err := l.AcquireRequest(ctx, g.device, req)
		if err != nil {
			return nil, nil, err
		}
		release = r
	default:
		r, err := l.Acquire(ctx, g.device)
		if err != nil {
			return nil, nil, err
		}
		release = func(_ int, err error) { r(err) }
	}
	cancel := context.CancelFunc(func() {})
	rctx = ctx
	if b, ok := g.limiter.(RequestBounder); ok {
		rctx, cancel = b.RequestContext(ctx, g.device)
	}
	var once sync.Once
	return rctx, func(in int, err error) {
		once.Do(func() {
			cancel()
			release(in, err)
			g.record(req, in)
		})
	}, nil
}

// Check refuses a request kind that is not allowed, without sending anything.
// Transports that learn the kind only from the bytes call it first.
func (g *Gate) Check(kind string) error {
	if !g.allow[kind] {
		return fmt.Errorf("device %s: %s: %w", g.device, kind, ErrNotAllowed)
	}
	return nil
}

func (g *Gate) record(req Request, in int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := costKey{req.Kind, req.Object}
	c := g.costs[k]
	if c == nil {
		c = &snapshots.RequestCount{Kind: req.Kind, Object: req.Object}
		g.costs[k] = c
		g.order = append(g.order, k)
	}
	c.Count++
	c.BytesOut += int64(req.Size)
	c.BytesIn += int64(in)
	g.total.Count++
	g.total.BytesOut += int64(req.Size)
	g.total.BytesIn += int64(in)
}

// Reset clears the counts; connectors call it at the start of a snapshot.
func (g *Gate) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.costs = map[costKey]*snapshots.RequestCount{}
	g.order = nil
	g.total = snapshots.RequestCount{}
}

// Cost returns the counts since the last Reset, by kind and object, sorted by
// kind then object so the result is deterministic.
func (g *Gate) Cost() snapshots.Cost {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := snapshots.Cost{Requests: int64(g.total.Count), BytesOut: g.total.BytesOut, BytesIn: g.total.BytesIn}
	for _, k := range g.order {
		c.ByKind = append(c.ByKind, *g.costs[k])
	}
	sort.Slice(c.ByKind, func(i, j int) bool {
		a, b := c.ByKind[i], c.ByKind[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Object < b.Object
	})
	return c
}

// Counts returns the number of requests sent per kind since the last Reset.
func (g *Gate) Counts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := map[string]int{}
	for _, c := range g.costs {
		m[c.Kind] += c.Count
	}
	return m
}
