package s7

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/snapshots"
)

func withKeys(keys string) func(string) string {
	return func(y string) string { return strings.Replace(y, "s7:\n", "s7:\n"+keys, 1) }
}

// TestFaultOnSecondPageOfListing cuts the connection on the second page of
// the FC list: the snapshot is partial, and nothing it could not read
// looks removed.
func TestFaultOnSecondPageOfListing(t *testing.T) {
	sim := startSim(t, scenario("s7-300", 240, many("FC", 150, 40)...), s7sim.Options{})
	c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), nil))
	a := snap(t, c, nil)
	sim.SetFault(s7sim.Fault{Action: s7sim.FaultDrop, Kind: "ListBlocksOfType", Continuation: true, Count: 1})
	b := snap(t, c, a)
	if b.Status.Complete {
		t.Fatal("snapshot cut off on page 2 reports complete")
	}
	if !strings.Contains(strings.Join(b.Status.Reasons, "; "), "page 2") {
		t.Errorf("reasons %v do not say where it failed", b.Status.Reasons)
	}
	for _, it := range a.Items {
		o := b.Item(it.Path)
		if o == nil {
			t.Errorf("%s is missing from the partial snapshot: it would read as removed", it.Path)
			continue
		}
		if strings.HasPrefix(it.Path, "blocks/FC") && o.Provenance.Source != snapshots.SourceNotRead {
			t.Errorf("%s: provenance %s, want not_read", it.Path, o.Provenance.Source)
		}
	}
	if r := diffing.Compare(a, b, diffing.Options{}); r.Counts[diffing.Removed] != 0 || r.Counts[diffing.NotRead] < 150 {
		t.Errorf("diff of the partial snapshot: %v, want no removal and the FCs not read", r.Counts)
	}
	if it := b.Item("identity/module_type"); it == nil || it.Provenance.Source != snapshots.SourceRead {
		t.Error("items read before the fault were not kept")
	}
	d := snap(t, c, b)
	if !d.Status.Complete || len(changed(a, d)) != 0 {
		t.Errorf("after the fault: complete %v, changed %v", d.Status.Complete, changed(a, d))
	}
}

// TestBlockListedTwice answers every continuation page of the FC list
// with the last block of the page before repeated, as a CPU whose list
// moved between two pages does: each block is recorded once and its block
// info read once, the snapshot is complete, and nothing changed.
func TestBlockListedTwice(t *testing.T) {
	sim := startSim(t, scenario("s7-300", 240, many("FC", 150, 40)...), s7sim.Options{})
	c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), nil))
	a := snap(t, c, nil)
	infos := sim.Requests()["BlockInfo"]
	sim.ResetStats()
	sim.SetFault(s7sim.Fault{Action: s7sim.FaultRepeatEntry, Kind: "ListBlocksOfType", Continuation: true})
	b := snap(t, c, a)
	sim.ClearFault()
	if !b.Status.Complete {
		t.Fatalf("a block listed twice makes the snapshot partial: %v", b.Status.Reasons)
	}
	if got := sim.Requests()["BlockInfo"]; got != infos {
		t.Errorf("%d block info requests, want %d (one per block)", got, infos)
	}
	if p := withoutInfo(b, changed(a, b)); len(p) != 0 {
		t.Errorf("changed: %v", p)
	}
	if sim.Refused() != 0 {
		t.Errorf("the CPU refused %d requests", sim.Refused())
	}
}

// TestBlockMissingFromList has the CPU's lists leave FC5 out for one read,
// with counts that agree, while FC5 still answers its block info: FC5 is
// recorded unchanged, the snapshot is partial with the reason, and nothing
// looks removed. A block really deleted (the CPU says it does not exist)
// is still removed.
func TestBlockMissingFromList(t *testing.T) {
	sim := startSim(t, scenario("s7-300", 240, many("FC", 10, 40)...), s7sim.Options{})
	c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), nil))
	a := snap(t, c, nil)
	sim.HideFromLists("FC5")
	b := snap(t, c, a)
	sim.HideFromLists("")
	if it, old := b.Item("blocks/FC5"), a.Item("blocks/FC5"); it == nil || it.Provenance.Source != snapshots.SourceRead || it.Hash != old.Hash {
		t.Errorf("blocks/FC5 = %+v, want it read as before", it)
	}
	if b.Status.Complete || !strings.Contains(strings.Join(b.Status.Reasons, "; "), "did not list FC5") {
		t.Errorf("complete %v, reasons %v: want partial, naming FC5", b.Status.Complete, b.Status.Reasons)
	}
	if r := diffing.Compare(a, b, diffing.Options{}); r.Counts[diffing.Removed] != 0 || len(withoutInfo(b, changed(a, b))) != 0 {
		t.Errorf("a block left out of one listing: %v, changed %v", r.Counts, withoutInfo(b, changed(a, b)))
	}
	must(t, sim.RemoveBlock("FC", 6))
	d := snap(t, c, b)
	if r := diffing.Compare(a, d, diffing.Options{}); !d.Status.Complete || d.Item("blocks/FC6") != nil || r.Counts[diffing.Removed] != 1 {
		t.Errorf("FC6 deleted: complete %v (%v), diff %v: want FC6 removed", d.Status.Complete, d.Status.Reasons, r.Counts)
	}
	if sim.Refused() != 0 {
		t.Errorf("the CPU refused %d requests", sim.Refused())
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		keys  string // added to the s7 section
		fault s7sim.Fault
		check func(t *testing.T, s *snapshots.Snapshot, err error)
	}{
		{
			name:  "stall on a block info times out",
			keys:  "      timeout: 300ms\n",
			fault: s7sim.Fault{Action: s7sim.FaultStall, Kind: "BlockInfo", Skip: 3},
			check: partial("timeout"),
		},
		{
			name:  "garbage instead of an SZL reply",
			fault: s7sim.Fault{Action: s7sim.FaultGarbage, Kind: "SZL", Skip: 1},
			check: partial("not a TPKT packet"),
		},
		{
			name:  "truncated block info keeps the connection",
			fault: s7sim.Fault{Action: s7sim.FaultTruncate, Kind: "BlockInfo", Skip: 2, Count: 1},
			check: func(t *testing.T, s *snapshots.Snapshot, err error) {
				partial("shorter than its header")(t, s, err)
				went := false
				for _, r := range s.Cost.ByKind {
					went = went || r.Object == "SZL 0x0D91"
				}
				if !went {
					t.Error("reads after the bad reply did not go on")
				}
			},
		},
		{
			name:  "connection dropped at connect",
			fault: s7sim.Fault{Action: s7sim.FaultDrop, Kind: "Connect"},
			check: func(t *testing.T, s *snapshots.Snapshot, err error) {
				if err == nil {
					t.Error("snapshot without a connection gave no error")
				}
			},
		},
		{
			name: "connection to a slot nobody answers on",
			keys: "      remote_tsap: 0x0309\n",
			check: func(t *testing.T, s *snapshots.Snapshot, err error) {
				if err == nil || !strings.Contains(err.Error(), "refused the connection") {
					t.Errorf("error %v: want the CPU's refusal", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, scenario("s7-300", 240, many("FC", 10, 40)...), s7sim.Options{})
			edit := withKeys(tc.keys)
			if strings.Contains(tc.keys, "remote_tsap") {
				edit = func(y string) string {
					return strings.Replace(strings.Replace(y, "      rack: 0\n      slot: 2\n", "", 1), "s7:\n", "s7:\n"+tc.keys, 1)
				}
			}
			c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), edit))
			if tc.fault.Action != 0 {
				sim.SetFault(tc.fault)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			s, err := c.Snapshot(ctx, nil)
			if time.Since(start) > 10*time.Second {
				t.Errorf("snapshot took %v", time.Since(start))
			}
			tc.check(t, s, err)
			if sim.Refused() != 0 {
				t.Errorf("the CPU refused %d requests", sim.Refused())
			}
			sim.ClearFault()
		})
	}
}

func partial(reason string) func(t *testing.T, s *snapshots.Snapshot, err error) {
	return func(t *testing.T, s *snapshots.Snapshot, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		if s.Status.Complete {
			t.Fatal("snapshot complete despite the fault")
		}
		if r := strings.Join(s.Status.Reasons, "; "); !strings.Contains(r, reason) {
			t.Errorf("reasons %q: want %q", r, reason)
		}
	}
}

// TestIdleCloseReconnects holds the connection between snapshots; the CPU
// closes it while idle and the next snapshot reconnects.
func TestIdleCloseReconnects(t *testing.T) {
	sim := startSim(t, scenario("s7-300", 240), s7sim.Options{})
	c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), withKeys("      hold_connection: true\n")))
	a := snap(t, c, nil)
	held := snap(t, c, a)
	if n := held.Cost.Count(kindConnect); n != 0 {
		t.Errorf("a held connection reconnected (%d connects)", n)
	}
	sim.CloseConnections()
	b := snap(t, c, held)
	if !b.Status.Complete {
		t.Fatalf("snapshot after an idle close: %v", b.Status.Reasons)
	}
	if n := b.Cost.Count(kindConnect); n != 1 {
		t.Errorf("%d connects after the idle close, want 1", n)
	}
	if got := sim.Stats().Connections; got != 2 {
		t.Errorf("the CPU saw %d connections, want 2", got)
	}
}

// TestS71500NotObservable reads a CPU that refuses block functions and
// the module list: those parts are "not observable", the rest is read and
// the snapshot is complete.
func TestS71500NotObservable(t *testing.T) {
	sc := scenario("s7-1500", 960, s7sim.Block{Type: "DB", Number: 10, Size: 16, Values: []s7sim.Value{{Offset: 4, Type: "REAL", Value: "85"}}})
	sc.UnsupportedSZL = []int{0x0D91}
	sim := startSim(t, sc, s7sim.Options{})
	dev := loadDevice(t, bareDevice, sim.Addr(), func(y string) string {
		return strings.Replace(y, "slot: 2", "slot: 1\n      setpoints: [{name: TankHighLimit, address: DB10.DBD4, type: REAL}]", 1)
	})
	c, _ := open(t, dev)
	s := snap(t, c, nil)
	if !s.Status.Complete {
		t.Fatalf("snapshot partial: %v", s.Status.Reasons)
	}
	for _, p := range []string{"blocks", "modules"} {
		it := s.Item(p)
		if it == nil || it.Provenance.Source != snapshots.SourceNotObservable || !strings.Contains(it.Provenance.Reason, "not") {
			t.Errorf("%s: %+v, want not observable with a reason", p, it)
		}
	}
	if it := s.Item("setpoints/TankHighLimit"); it == nil || it.Value.Raw != "85" {
		t.Errorf("setpoint %+v", it)
	}
	if s.Identity.Model != "CPU 315-2 PN/DP" {
		t.Errorf("identity %+v", s.Identity)
	}

	// The same CPU with PUT/GET access not permitted refuses every Read
	// Var with "function not available" (0x8104): its setpoints are not
	// observable, with the reason, and the snapshot is complete, as for
	// the block functions it does not offer; a read setpoint it later
	// refuses is not read, never a change.
	sc.NoPutGet = true
	sim2 := startSim(t, sc, s7sim.Options{})
	c2, _ := open(t, loadDevice(t, bareDevice, sim2.Addr(), func(y string) string {
		return strings.Replace(y, "slot: 2", "slot: 1\n      setpoints: [{name: TankHighLimit, address: DB10.DBD4, type: REAL}]", 1)
	}))
	s2 := snap(t, c2, s)
	if !s2.Status.Complete {
		t.Fatalf("PUT/GET refused: snapshot partial: %v", s2.Status.Reasons)
	}
	it := s2.Item("setpoints/TankHighLimit")
	if it == nil || it.Provenance.Source != snapshots.SourceNotObservable || !strings.Contains(it.Provenance.Reason, "PUT/GET") {
		t.Errorf("PUT/GET refused: setpoint %+v, want not observable naming PUT/GET", it)
	}
	for _, ch := range diffing.Compare(s, s2, diffing.Options{}).Changes {
		if ch.Type != diffing.NotRead && !ch.Info {
			t.Errorf("PUT/GET refused: %s %s, want not read", ch.Type, ch.Path)
		}
	}
	if sim2.Refused() != 0 {
		t.Errorf("the CPU refused %d requests", sim2.Refused())
	}
}

func TestConnectionAddressing(t *testing.T) {
	tests := []struct {
		name string
		keys string
		tsap uint16
	}{
		{"default: S7 basic connection", "      rack: 0\n      slot: 2\n", 0x0302},
		{"OP connection", "      rack: 0\n      slot: 2\n      connection_type: op\n", 0x0202},
		{"PG connection", "      rack: 0\n      slot: 2\n      connection_type: pg\n", 0x0102},
		{"remote TSAP", "      remote_tsap: 0x1002\n      local_tsap: 0x1000\n", 0x1002},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, scenario("s7-300", 240), s7sim.Options{})
			c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), func(y string) string {
				return strings.Replace(y, "      rack: 0\n      slot: 2\n", tc.keys, 1)
			}))
			snap(t, c, nil)
			if got := sim.Stats().CalledTSAPs; got[tc.tsap] != 1 || len(got) != 1 {
				t.Errorf("called TSAPs %v, want 0x%04X once", got, tc.tsap)
			}
		})
	}
}

// TestCOTPFragments reads a CPU that splits every reply into small COTP
// data units: the snapshot is the same.
func TestCOTPFragments(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	var snaps []*snapshots.Snapshot
	for _, frag := range []int{0, 37} {
		sim := startSim(t, s7sim.DemoScenario(), s7sim.Options{COTPFragment: frag, Now: now})
		c, _ := open(t, loadDevice(t, "demo-device.yaml", sim.Addr(), nil))
		snaps = append(snaps, snap(t, c, nil))
	}
	if d := changed(snaps[0], snaps[1]); len(d) != 0 {
		t.Errorf("fragmented replies change %v", d)
	}
}

// TestSetpointPacking declares many setpoints, a long STRING and one in a
// DB that does not exist, at PDU 240.
func TestSetpointPacking(t *testing.T) {
	sc := scenario("s7-300", 240, s7sim.Block{Type: "DB", Number: 12, Size: 700,
		Values: []s7sim.Value{{Offset: 400, Type: "STRING", Length: 200, Value: strings.Repeat("x", 150)}}})
	var vals []string
	var sps strings.Builder
	sps.WriteString("      setpoints:\n")
	for i := 0; i < 30; i++ {
		off := i * 12
		f := float32(i) + 0.5
		sc.Blocks[1].Values = append(sc.Blocks[1].Values, s7sim.Value{Offset: off, Type: "REAL", Value: fmt.Sprint(f)})
		fmt.Fprintf(&sps, "        - {name: R%d, address: DB12.DBD%d, type: REAL}\n", i, off)
		vals = append(vals, fmt.Sprint(f))
	}
	sps.WriteString("        - {name: Long, address: DB12.DBB400, type: STRING, length: 200}\n")
	sps.WriteString("        - {name: Missing, address: DB99.DBW0, type: INT}\n")
	// Edge ends where DB12 ends; Past, which touches it, reaches beyond
	// (as after a download that shortened the DB): the CPU refuses a
	// range that holds both, and that must cost Past only.
	sps.WriteString("        - {name: Edge, address: DB12.DBW698, type: INT}\n")
	sps.WriteString("        - {name: Past, address: DB12.DBW700, type: INT}\n")
	sc.Blocks[1].Values = append(sc.Blocks[1].Values, s7sim.Value{Offset: 698, Type: "INT", Value: "-7"})
	must(t, sc.Validate())
	sim := startSim(t, sc, s7sim.Options{})
	c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), func(y string) string { return y + sps.String() }))
	s := snap(t, c, nil)
	// The one setpoint in a DB that does not exist, and the one beyond the
	// end of its DB, cost those items only.
	if r := strings.Join(s.Status.Reasons, "; "); s.Status.Complete || len(s.Status.Reasons) != 2 || !strings.Contains(r, "setpoints/Missing") || !strings.Contains(r, "setpoints/Past") {
		t.Fatalf("complete %v, reasons %v: want partial because of setpoints/Missing and setpoints/Past only", s.Status.Complete, s.Status.Reasons)
	}
	if it := s.Item("setpoints/Edge"); it == nil || it.Provenance.Source != snapshots.SourceRead || it.Value.Raw != "-7" {
		t.Errorf("Edge = %+v, want -7 read (only its neighbour is beyond the DB)", it)
	}
	if it := s.Item("setpoints/Past"); it == nil || it.Provenance.Source != snapshots.SourceNotRead || !strings.Contains(it.Provenance.Reason, "0x05: address out of range") {
		t.Errorf("Past = %+v, want not read with the S7 return code", it)
	}
	for i, v := range vals {
		if it := s.Item(fmt.Sprintf("setpoints/R%d", i)); it == nil || it.Value.Raw != v {
			t.Errorf("R%d = %+v, want %s", i, it, v)
		}
	}
	if it := s.Item("setpoints/Long"); it == nil || it.Value.Raw != strings.Repeat("x", 150) {
		t.Errorf("Long = %+v", it)
	}
	if it := s.Item("setpoints/Missing"); it == nil || it.Provenance.Source != snapshots.SourceNotRead || !strings.Contains(it.Provenance.Reason, "0x0A: object does not exist") {
		t.Errorf("Missing = %+v, want not read with the S7 return code", it)
	}
	cc := c.(*connector)
	var ranges []varItem
	for _, sp := range cc.cfg.setpoints {
		ranges = append(ranges, varItem{sp.area, sp.db, sp.start, sp.size})
	}
	// One more Read Var asks for Edge and Past alone, after the CPU refused
	// the range that held both.
	if got, want := s.Cost.Count(kindReadVar), len(packReads(ranges, 240, true))+1; got != want || got < 4 {
		t.Errorf("%d Read Var requests, packing says %d", got, want)
	}
}

// TestItemFailures makes the CPU refuse one item, one SZL or one block's
// info: that item is not read, with the S7 error as its reason, the
// snapshot is partial, and everything else is read and unchanged.
func TestItemFailures(t *testing.T) {
	tests := []struct {
		name   string
		fault  s7sim.Fault
		paths  []string // not read
		reason string
	}{
		{"Read Var item: access denied",
			s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "ReadVar", Object: "DB20", Code: 0x03},
			[]string{"setpoints/A"}, "S7 return code 0x03: object access not allowed"},
		{"Read Var item: data type not supported",
			s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "ReadVar", Object: "DB20", Code: 0x06},
			[]string{"setpoints/A"}, "S7 return code 0x06: data type not supported"},
		{"Read Var item: object does not exist",
			s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "ReadVar", Object: "DB20", Code: 0x0A},
			[]string{"setpoints/A"}, "S7 return code 0x0A: object does not exist"},
		{"SZL refused: protection level too low",
			s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "SZL", Object: "SZL 0x0232", Code: 0xD241},
			[]string{"protection/level", "mode/key_switch"}, "S7 error 0xD241: protection level too low"},
		{"SZL refused: access to object not permitted",
			s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "SZL", Object: "SZL 0x0424", Code: 0x8103},
			[]string{"mode/cpu", pathModeTransition}, "S7 error 0x8103: access to object not permitted"},
		{"block info refused for one block",
			s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "BlockInfo", Object: "FC5", Code: 0xD241},
			[]string{"blocks/FC5"}, "reading block info FC5: S7 error 0xD241"},
		{"block info: listed, then 'block does not exist'",
			s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "BlockInfo", Object: "FC5", Code: 0xD209},
			[]string{"blocks/FC5"}, "S7 error 0xD209: block does not exist"},
		{"block info of one block cut short",
			s7sim.Fault{Action: s7sim.FaultTruncate, Kind: "BlockInfo", Object: "FC7"},
			[]string{"blocks/FC7"}, "shorter than its header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := scenario("s7-300", 240, append(many("FC", 10, 40),
				s7sim.Block{Type: "DB", Number: 20, Size: 8, Values: []s7sim.Value{{Offset: 0, Type: "INT", Value: "42"}}},
				s7sim.Block{Type: "DB", Number: 21, Size: 8, Values: []s7sim.Value{{Offset: 0, Type: "INT", Value: "7"}}})...)
			sim := startSim(t, sc, s7sim.Options{})
			c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), func(y string) string {
				return y + "      setpoints:\n        - {name: A, address: DB20.DBW0, type: INT}\n        - {name: B, address: DB21.DBW0, type: INT}\n"
			}))
			a := snap(t, c, nil)
			if !a.Status.Complete {
				t.Fatalf("first snapshot partial: %v", a.Status.Reasons)
			}
			sim.SetFault(tc.fault)
			b := snap(t, c, a)
			sim.ClearFault()
			if b.Status.Complete || !strings.Contains(strings.Join(b.Status.Reasons, "; "), tc.reason) {
				t.Errorf("complete %v, reasons %v: want partial because of %q", b.Status.Complete, b.Status.Reasons, tc.reason)
			}
			for _, p := range tc.paths {
				it := b.Item(p)
				if it == nil || it.Provenance.Source != snapshots.SourceNotRead || !strings.Contains(it.Provenance.Reason, tc.reason) || it.Value.Type != snapshots.TypeNone {
					t.Errorf("%s = %+v: want not read because of %q", p, it, tc.reason)
				} else if strings.HasPrefix(it.Provenance.Reason, "not read") {
					// show prints "(not read: REASON)": the reason must not say it again.
					t.Errorf("%s: reason %q repeats its source", p, it.Provenance.Reason)
				}
			}
			for _, it := range a.Items {
				if o := b.Item(it.Path); !contains(tc.paths, it.Path) && (o == nil || o.Provenance.Source != snapshots.SourceRead) {
					t.Errorf("%s was lost: %+v", it.Path, o)
				}
			}
			r := diffing.Compare(a, b, diffing.Options{})
			for _, ch := range r.Changes {
				if ch.Type != diffing.NotRead && !ch.Info {
					t.Errorf("%s %s: a failed read must not be a change", ch.Type, ch.Path)
				}
			}
			if r.Counts[diffing.NotRead] != len(tc.paths) {
				t.Errorf("%d items not read, want %d", r.Counts[diffing.NotRead], len(tc.paths))
			}
			if d := snap(t, c, b); !d.Status.Complete || len(withoutInfo(d, changed(a, d))) != 0 {
				t.Errorf("after the fault: complete %v, changed %v", d.Status.Complete, changed(a, d))
			}
			if sim.Refused() != 0 {
				t.Errorf("the CPU refused %d requests", sim.Refused())
			}
		})
	}
}

// TestEveryRequestBounded stalls or trickles (one byte per second) each
// step of a snapshot, from the COTP connection request on: the request's
// deadline ends it, from the s7 timeout or from the context the gate
// passes down, and the snapshot fails or is partial with a timeout.
func TestEveryRequestBounded(t *testing.T) {
	tests := []struct {
		name    string
		timeout string        // s7.timeout
		ctx     time.Duration // deadline of the snapshot's context; 0: 30s
		fault   s7sim.Fault
		connect bool // the snapshot fails to connect (else: partial)
	}{
		{name: "stall on the COTP connection request", timeout: "300ms",
			fault: s7sim.Fault{Action: s7sim.FaultStall, Kind: "Connect"}, connect: true},
		{name: "trickle on the COTP connection request", timeout: "300ms",
			fault: s7sim.Fault{Action: s7sim.FaultTrickle, Interval: 100 * time.Millisecond, Kind: "Connect"}, connect: true},
		{name: "stall on Setup Communication", timeout: "300ms",
			fault: s7sim.Fault{Action: s7sim.FaultStall, Kind: "SetupCommunication"}, connect: true},
		{name: "trickle on Setup Communication", timeout: "300ms",
			fault: s7sim.Fault{Action: s7sim.FaultTrickle, Interval: 100 * time.Millisecond, Kind: "SetupCommunication"}, connect: true},
		{name: "trickle on an SZL read", timeout: "300ms",
			fault: s7sim.Fault{Action: s7sim.FaultTrickle, Interval: 100 * time.Millisecond, Kind: "SZL", Object: "SZL 0x0232"}},
		{name: "trickle on the second page of a block list", timeout: "300ms",
			fault: s7sim.Fault{Action: s7sim.FaultTrickle, Interval: 100 * time.Millisecond, Kind: "ListBlocksOfType", Continuation: true}},
		{name: "stall on a block info", timeout: "300ms",
			fault: s7sim.Fault{Action: s7sim.FaultStall, Kind: "BlockInfo", Skip: 4}},
		{name: "trickle on a Read Var", timeout: "300ms",
			fault: s7sim.Fault{Action: s7sim.FaultTrickle, Interval: 100 * time.Millisecond, Kind: "ReadVar"}},
		{name: "the context's deadline bounds the connection request", timeout: "10m", ctx: 300 * time.Millisecond,
			fault: s7sim.Fault{Action: s7sim.FaultStall, Kind: "Connect"}, connect: true},
		{name: "the context's deadline bounds a trickled read", timeout: "10m", ctx: 300 * time.Millisecond,
			fault: s7sim.Fault{Action: s7sim.FaultTrickle, Kind: "SZL", Object: "SZL 0x0011"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, scenario("s7-300", 240, append(many("FC", 150, 40),
				s7sim.Block{Type: "DB", Number: 20, Size: 8})...), s7sim.Options{})
			c, _ := open(t, loadDevice(t, bareDevice, sim.Addr(), func(y string) string {
				return strings.Replace(y, "s7:\n", "s7:\n      timeout: "+tc.timeout+"\n", 1) +
					"      setpoints:\n        - {name: A, address: DB20.DBW0, type: INT}\n"
			}))
			sim.SetFault(tc.fault)
			defer sim.ClearFault()
			d := tc.ctx
			if d == 0 {
				d = 30 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			s, err := c.Snapshot(ctx, nil)
			timedOut := func(text string) bool {
				return strings.Contains(text, "timeout") || strings.Contains(text, "deadline exceeded")
			}
			if tc.connect {
				if err == nil || !timedOut(err.Error()) {
					t.Fatalf("snapshot error %v: want a timeout while connecting", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			if s.Status.Complete || !timedOut(strings.Join(s.Status.Reasons, "; ")) {
				t.Errorf("complete %v, reasons %v: want partial with a timeout", s.Status.Complete, s.Status.Reasons)
			}
			if sim.Refused() != 0 {
				t.Errorf("the CPU refused %d requests", sim.Refused())
			}
		})
	}
}

// TestFunctionNoLongerOffered: a CPU that answered a read before says once
// that it does not offer it ("function not available"). What it answered
// before is not observable now, never removed, and no item appears that
// the previous snapshot did not have: the refusal is no change.
func TestFunctionNoLongerOffered(t *testing.T) {
	tests := []struct {
		name  string
		fault s7sim.Fault
		paths []string // items of the previous snapshot that must be not observable now
	}{
		{"CPU identification (SZL 0x001C)", s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "SZL", Object: "SZL 0x001C", Code: 0x8104, Count: 1},
			[]string{"identity/module_type", "identity/as_name"}},
		{"module list (SZL 0x0D91)", s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "SZL", Object: "SZL 0x0D91", Code: 0x8104, Count: 1},
			[]string{"modules/R0S5"}},
		{"block counts", s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "ListBlocks", Code: 0x8104, Count: 1},
			[]string{"blocks/OB1", "blocks/FC7"}},
		{"list of one block type", s7sim.Fault{Action: s7sim.FaultRefuse, Kind: "ListBlocksOfType", Code: 0x8104, Count: 1},
			[]string{"blocks/OB1", "blocks/DB10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, s7sim.DemoScenario(), s7sim.Options{})
			c, _ := open(t, loadDevice(t, "demo-device.yaml", sim.Addr(), nil))
			a := snap(t, c, nil)
			if !a.Status.Complete {
				t.Fatalf("first snapshot partial: %v", a.Status.Reasons)
			}
			sim.SetFault(tc.fault)
			b := snap(t, c, a)
			sim.ClearFault()
			for _, p := range tc.paths {
				if it := b.Item(p); it == nil || it.Provenance.Source != snapshots.SourceNotObservable || it.Provenance.Reason == "" {
					t.Errorf("%s = %+v: want not observable with the reason", p, it)
				}
			}
			for _, ch := range diffing.Compare(a, b, diffing.Options{}).Changes {
				if ch.Type != diffing.NotRead && !ch.Info {
					t.Errorf("%s %s: a refused read must not be a change", ch.Type, ch.Path)
				}
			}
			if d := snap(t, c, b); !d.Status.Complete || len(withoutInfo(d, changed(a, d))) != 0 {
				t.Errorf("after the refusal: complete %v, changed %v", d.Status.Complete, withoutInfo(d, changed(a, d)))
			}
		})
	}
}
