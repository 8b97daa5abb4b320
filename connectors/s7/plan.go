package s7

import (
	"fmt"
	"strings"

	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
)

// Plan describes the requests of a snapshot without touching the device.
// With a complete previous snapshot it is that snapshot's recorded
// requests (exact for an unchanged device); otherwise an estimate from the
// config and, when there is one, the previous snapshot's block counts.
func (c *connector) Plan(prev *snapshots.Snapshot) (*connectors.Plan, error) {
	if prev != nil && prev.Status.Complete {
		p := connectors.PlanFromSnapshot(prev)
		if c.cfg.HoldConnection {
			p.Notes = append(p.Notes, "the connection is held between snapshots; a reconnect adds one s7.Connect and one s7.SetupCommunication")
		}
		return p, nil
	}
	p := &connectors.Plan{Device: c.dev.Name, Protocol: "s7", Endpoint: c.addr, Basis: "estimate from config"}
	pdu := c.cfg.PDUSize
	recorded := map[[2]string]int{}
	if prev != nil {
		for _, r := range prev.Cost.ByKind {
			recorded[[2]string{r.Kind, r.Object}] = r.Count
		}
	}
	add := func(kind, object string, n int, out, in int) {
		// Pages depend on the PDU the CPU granted: a previous snapshot knows.
		if r := recorded[[2]string{kind, object}]; r > 0 && (kind == kindSZL || kind == kindList) {
			n = r
		}
		if n > 0 {
			p.Requests = append(p.Requests, snapshots.RequestCount{Kind: kind, Object: object, Count: n, BytesOut: int64(n * out), BytesIn: int64(n * in)})
		}
	}
	pages := func(bytes int) int { return (bytes + pdu - 33) / (pdu - 32) }
	add(kindConnect, "COTP", 1, 22, 22)
	add(kindSetup, "PDU", 1, 25, 27)
	rd := c.cfg.Reads
	if on(rd.Status) {
		add(kindSZL, "SZL 0x0424", 1, 33, 61)
	}
	if on(rd.Protection) {
		add(kindSZL, "SZL 0x0232", 1, 33, 81)
	}
	if on(rd.CPUInfo) {
		n := pages(8 + 10*34)
		add(kindSZL, "SZL 0x001C", n, 33, 33+(8+10*34)/n)
	}
	if on(rd.OrderCode) {
		add(kindSZL, "SZL 0x0011", 1, 33, 33+8+4*28)
	}
	if on(rd.Blocks) {
		add(kindListAll, "block counts", 1, 29, 61)
		counts := map[string]int{}
		if prev != nil {
			p.Basis = "estimate from config and the block counts of snapshot " + prev.ID
			for _, it := range prev.Items {
				if strings.HasPrefix(it.Path, "blocks/") {
					counts[it.Attrs["type"]]++
				}
			}
		}
		for _, t := range blockTypes {
			n := 1
			if prev != nil {
				n = pages(4 * counts[t])
				if counts[t] == 0 {
					continue
				}
			}
			add(kindList, t+" list", n, 31, 33+4*counts[t]/n)
			if hasInfo(t) && on(rd.BlockInfo) {
				add(kindInfo, t+" info", counts[t], 37, 111)
			}
		}
		if prev == nil && on(rd.BlockInfo) {
			p.Notes = append(p.Notes, "plus one s7.BlockInfo per OB, FB, FC and DB: the number is known after the first snapshot")
		}
	}
	if on(rd.ModuleList) {
		add(kindSZL, "SZL 0x0D91", len(c.cfg.Racks), 33, 33+8+16*8)
	}
	if on(rd.Setpoints) && len(c.cfg.setpoints) > 0 {
		ranges := make([]varItem, len(c.cfg.setpoints))
		for i, sp := range c.cfg.setpoints {
			ranges[i] = varItem{area: sp.area, db: sp.db, start: sp.start, count: sp.size}
		}
		for _, pack := range packReads(ranges, pdu, true) {
			in := 21
			for _, it := range pack {
				in += 4 + it.count + it.count%2
			}
			add(kindReadVar, objectOf(pack), 1, 19+12*len(pack), in)
		}
	}
	for range c.cfg.Modules {
		add(kindConnect, "COTP", 1, 22, 22)
		add(kindSetup, "PDU", 1, 25, 27)
		add(kindSZL, "module SZL 0x0011", 1, 33, 117)
	}
	p.Notes = append(p.Notes, fmt.Sprintf("PDU sizes assume the requested %d bytes; a CPU granting less (240 on an S7-300) needs more pages", pdu))
	return p, nil
}
