// Package connectortest is the conformance suite every connector passes
// against its protocol simulator, over loopback, speaking the real protocol.
package connectortest

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
)

// Sim is what the suite needs to see of a running simulator.
type Sim interface {
	// Requests returns the requests the simulator received since it started,
	// by the simulator's name for each request kind.
	Requests() map[string]int
	// Refused returns how many requests outside the simulator's read-only
	// allowlist (writes, control, downloads, clock sets) it received.
	Refused() int
}

// Harness is one connector wired to one freshly started simulator.
type Harness struct {
	// Device is a config pointing at the simulator.
	Device *config.Device
	// Rules are global classification rules (device rules live in Device).
	Rules classify.Rules
	Sim   Sim
	// ReadKinds are the simulator's request kinds that are reads; every
	// kind the simulator saw must be one of them.
	ReadKinds []string
	// ExactCounts: the gate's request count equals the simulator's for a
	// snapshot (false where the library sends requests the gate cannot see
	// one by one, such as an OPC UA session handshake).
	ExactCounts bool
	// WirePlan: the plan counts requests on the wire (Plan.Steps the gated
	// steps), so its total equals what the simulator counts for the next
	// snapshot, and its bytes sent what the simulator received when the
	// simulator reports bytes (a Bytes() (in, out int64) method).
	WirePlan bool

	// ChangeSetpoint changes one setpoint well beyond its deadband, as an
	// engineer would, and returns the item path that must change.
	ChangeSetpoint func(t *testing.T) string
	// ChangeLogic changes program content and returns the item path that
	// must change.
	ChangeLogic func(t *testing.T) string
	// ChurnLive changes live process values; no non-volatile item may change.
	ChurnLive func(t *testing.T)
	// BreakNext makes the next snapshot fail part way (the simulator drops
	// the connection after some requests) and returns a func that heals it.
	BreakNext func(t *testing.T) (heal func())
}

// Run runs the conformance suite. newHarness is called once per subtest and
// must start a fresh simulator (stopped with t.Cleanup).
func Run(t *testing.T, newHarness func(t *testing.T) *Harness) {
	t.Run("complete snapshot", func(t *testing.T) {
		h := newHarness(t)
		c, gate := open(t, h)
		s := snap(t, c, nil)
		if !s.Status.Complete {
			t.Fatalf("snapshot not complete: %v", s.Status.Reasons)
		}
		if len(s.Items) == 0 {
			t.Fatal("snapshot has no items")
		}
		if s.Identity == (snapshots.Identity{}) {
			t.Error("snapshot has no identity")
		}
		if s.Cost.Requests == 0 || s.Cost.BytesIn == 0 || s.Cost.BytesOut == 0 {
			// plan tells a change-control board what will be sent: bytes
			// out are part of it.
			t.Errorf("snapshot cost not recorded: %+v", s.Cost)
		}
		for _, c := range s.Cost.ByKind {
			// Where the reply's bytes were counted, the request's were too.
			if c.Count > 0 && c.BytesIn > 0 && c.BytesOut == 0 {
				t.Errorf("%s %s: %d request(s) with %d bytes received and 0 sent", c.Kind, c.Object, c.Count, c.BytesIn)
			}
		}
		kinds := map[snapshots.Kind]bool{}
		for _, it := range s.Items {
			kinds[it.Kind] = true
			if it.Provenance.Source == "" {
				t.Errorf("item %s has no provenance", it.Path)
			}
		}
		for _, k := range []snapshots.Kind{snapshots.KindLogic, snapshots.KindSetpoint} {
			if !kinds[k] {
				t.Errorf("no %s items in the snapshot", k)
			}
		}
		checkReadOnly(t, h)
		if h.ExactCounts {
			if got, want := int(gate.Cost().Requests), total(h.Sim.Requests()); got != want {
				t.Errorf("gate counted %d requests, simulator received %d", got, want)
			}
		}
	})

	t.Run("unchanged device gives identical content", func(t *testing.T) {
		h := newHarness(t)
		c, _ := open(t, h)
		a := snap(t, c, nil)
		b := snap(t, c, a)
		if d := changedPaths(a, b); len(d) > 0 {
			t.Errorf("unchanged device: items differ: %v", d)
		}
		checkReadOnly(t, h)
	})

	t.Run("setpoint change", func(t *testing.T) {
		h := newHarness(t)
		c, _ := open(t, h)
		a := snap(t, c, nil)
		path := h.ChangeSetpoint(t)
		b := snap(t, c, a)
		expectChanged(t, a, b, path, snapshots.KindSetpoint)
		checkReadOnly(t, h)
	})

	t.Run("logic change", func(t *testing.T) {
		h := newHarness(t)
		c, _ := open(t, h)
		a := snap(t, c, nil)
		path := h.ChangeLogic(t)
		b := snap(t, c, a)
		expectChanged(t, a, b, path, snapshots.KindLogic)
		checkReadOnly(t, h)
	})

	{
		t.Run("live values are not changes", func(t *testing.T) {
			h := newHarness(t)
			if h.ChurnLive == nil {
				t.Skip("this simulator has no live values")
			}
			c, _ := open(t, h)
			a := snap(t, c, nil)
			h.ChurnLive(t)
			b := snap(t, c, a)
			if d := changedPaths(a, b); len(d) > 0 {
				t.Errorf("live value churn changed items: %v", d)
			}
		})
	}

	t.Run("cut-off read is partial, never an error-free complete", func(t *testing.T) {
		h := newHarness(t)
		c, _ := open(t, h)
		a := snap(t, c, nil)
		heal := h.BreakNext(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := c.Snapshot(ctx, a)
		heal()
		if err == nil {
			if b.Status.Complete {
				t.Fatal("snapshot cut off part way reports complete")
			}
			if len(b.Status.Reasons) == 0 {
				t.Error("partial snapshot gives no reason")
			}
			if err := b.Finalize(); err != nil {
				t.Fatal(err)
			}
			for _, it := range b.Items {
				if it.Provenance.Source == snapshots.SourceRead {
					continue
				}
				if old := a.Item(it.Path); old == nil && it.Provenance.Source == snapshots.SourceNotRead {
					t.Errorf("not-read item %s did not exist before", it.Path)
				}
			}
		}
		// After healing, the next snapshot is complete again (no stale state).
		d := snap(t, c, a)
		if !d.Status.Complete {
			t.Errorf("snapshot after the fault healed is not complete: %v", d.Status.Reasons)
		}
		checkReadOnly(t, h)
	})

	t.Run("plan of an unchanged device matches the snapshot", func(t *testing.T) {
		h := newHarness(t)
		c, gate := open(t, h)
		est, err := c.Plan(nil)
		if err != nil {
			t.Fatalf("estimate plan: %v", err)
		}
		if est.Exact {
			t.Error("a plan without a stored snapshot claims to be exact")
		}
		// The plan made from the first (full) snapshot predicts the second,
		// and the plan made from the second the third: exact from the
		// first snapshot on, whatever the connector carries forward.
		prev := snap(t, c, nil)
		for _, after := range []string{"the first snapshot", "the second snapshot"} {
			p, err := c.Plan(prev)
			if err != nil {
				t.Fatal(err)
			}
			settle(t, h.Sim)
			before := h.Sim.Requests()
			bsim, hasBytes := h.Sim.(interface{ Bytes() (in, out int64) })
			var inBefore int64
			if hasBytes {
				inBefore, _ = bsim.Bytes()
			}
			gate.Reset()
			s := snap(t, c, prev)
			settle(t, h.Sim)
			n, out, _ := p.Totals()
			steps := n
			if p.Steps > 0 {
				steps = p.Steps // the gate counts steps; the plan, requests on the wire
			}
			if got := int(s.Cost.Requests); got != steps {
				t.Errorf("plan after %s says %d gated steps, the snapshot sent %d", after, steps, got)
			}
			if h.ExactCounts || h.WirePlan {
				if got := total(h.Sim.Requests()) - total(before); got != n {
					t.Errorf("plan after %s says %d requests, the simulator received %d", after, n, got)
				}
			}
			if h.WirePlan && hasBytes {
				if in, _ := bsim.Bytes(); in-inBefore != out {
					t.Errorf("plan after %s says %d bytes sent, the simulator received %d", after, out, in-inBefore)
				}
			}
			prev = s
		}
	})

	t.Run("requests off the allowlist never reach the wire", func(t *testing.T) {
		h := newHarness(t)
		_, gate := open(t, h)
		before := total(h.Sim.Requests())
		err := gate.Do(context.Background(), connectors.Request{Kind: "write"}, func(context.Context) (int, error) {
			t.Fatal("send called for a refused request")
			return 0, nil
		})
		if !errors.Is(err, connectors.ErrNotAllowed) {
			t.Errorf("gate.Do(write) = %v, want ErrNotAllowed", err)
		}
		if total(h.Sim.Requests()) != before {
			t.Error("the simulator saw a request")
		}
	})
}

func open(t *testing.T, h *Harness) (connectors.Connector, *connectors.Gate) {
	t.Helper()
	c, gate, err := connectors.Open(h.Device, h.Rules, zerolog.Nop(), nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, gate
}

func snap(t *testing.T, c connectors.Connector, prev *snapshots.Snapshot) *snapshots.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := c.Snapshot(ctx, prev)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if err := s.Finalize(); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	return s
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func checkReadOnly(t *testing.T, h *Harness) {
	t.Helper()
	if n := h.Sim.Refused(); n != 0 {
		t.Errorf("simulator received %d write or control requests, want 0", n)
	}
	ok := map[string]bool{}
	for _, k := range h.ReadKinds {
		ok[k] = true
	}
	for k, n := range h.Sim.Requests() {
		if !ok[k] && n > 0 {
			t.Errorf("simulator received %d %q requests, which are not on the read list %v", n, k, h.ReadKinds)
		}
	}
}

// changedPaths lists non-volatile items whose content differs, or that exist
// in only one of a and b.
func changedPaths(a, b *snapshots.Snapshot) []string {
	var out []string
	seen := map[string]bool{}
	for _, it := range a.Items {
		seen[it.Path] = true
		o := b.Item(it.Path)
		if o == nil || o.Hash != it.Hash {
			out = append(out, it.Path)
		}
	}
	for _, it := range b.Items {
		if !seen[it.Path] {
			out = append(out, it.Path)
		}
	}
	sort.Strings(out)
	return out
}

func expectChanged(t *testing.T, a, b *snapshots.Snapshot, path string, kind snapshots.Kind) {
	t.Helper()
	old, cur := a.Item(path), b.Item(path)
	if cur == nil {
		t.Fatalf("item %s missing after the change; items: %d", path, len(b.Items))
	}
	if cur.Kind != kind {
		t.Errorf("item %s has kind %s, want %s", path, cur.Kind, kind)
	}
	if old != nil && old.Hash == cur.Hash {
		t.Errorf("item %s did not change: %v", path, cur.Value)
	}
	if d := changedPaths(a, b); len(d) == 0 {
		t.Error("no item changed")
	}
}

// settle waits, when the simulator can tell, until every connection a
// snapshot opened is closed, so that messages a library sends without
// waiting for an answer (OPC UA's CloseSecureChannel) are counted in the
// snapshot that sent them.
func settle(t *testing.T, sim Sim) {
	t.Helper()
	if w, ok := sim.(interface{ WaitIdle(context.Context) error }); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
