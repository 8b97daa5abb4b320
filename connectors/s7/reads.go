package s7

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// wire is what the reads need from a connection: one gated round trip per
// call and the negotiated PDU size. *transport implements it.
type wire interface {
	exchange(ctx context.Context, object string, req []byte) ([]byte, error)
	pduSize() int
}

// maxPages bounds the continuation pages of one SZL read or block list.
const maxPages = 2048

// readPages sends the first request of a userdata function and follows the
// continuation replies, returning the payloads concatenated. gos7 stops at
// the first page (block lists) or reassembles the pages wrongly (SZL).
func readPages(ctx context.Context, w wire, object string, group, subfn byte, first []byte) ([]byte, error) {
	req := first
	var out []byte
	for page := 0; ; page++ {
		b, err := w.exchange(ctx, object, req)
		if err != nil {
			if page > 0 {
				return nil, fmt.Errorf("page %d: %w", page+1, err)
			}
			return nil, err
		}
		r, err := parseUserdataReply(b, group, subfn)
		if err != nil {
			return nil, err
		}
		out = append(out, r.payload...)
		if !r.more {
			return out, nil
		}
		if page+1 >= maxPages {
			return nil, fmt.Errorf("more than %d pages", maxPages)
		}
		req = continuationRequest(group, subfn, r.seq)
	}
}

// readSZL reads a whole SZL partial list.
func readSZL(ctx context.Context, w wire, id, index uint16) (szlList, error) {
	return readSZLAs(ctx, w, fmt.Sprintf("SZL 0x%04X", id), id, index)
}

// readSZLAs is readSZL with the gate's object named by the caller.
func readSZLAs(ctx context.Context, w wire, object string, id, index uint16) (szlList, error) {
	b, err := readPages(ctx, w, object, grpCPU, subSZL, szlRequest(id, index))
	if err != nil {
		return szlList{}, fmt.Errorf("reading SZL 0x%04X: %w", id, err)
	}
	l, err := parseSZL(b, id)
	if err != nil {
		return szlList{}, fmt.Errorf("reading SZL 0x%04X: %w", id, err)
	}
	return l, nil
}

// listAll reads the number of blocks of each type.
func listAll(ctx context.Context, w wire) (map[string]int, error) {
	b, err := w.exchange(ctx, "block counts", userdataRequest(grpBlock, subListAll, nil))
	if err != nil {
		return nil, fmt.Errorf("listing block counts: %w", err)
	}
	r, err := parseUserdataReply(b, grpBlock, subListAll)
	if err == nil {
		var counts map[string]int
		if counts, err = parseListAll(r.payload); err == nil {
			return counts, nil
		}
	}
	return nil, fmt.Errorf("listing block counts: %w", err)
}

// listBlocks reads the numbers of all blocks of one type, following
// continuation pages, sorted and each once. "No block of this type" is an
// empty list. A block listed twice (a CPU whose list moved between two
// pages repeats an entry) is one block: the caller compares the distinct
// numbers with the CPU's count.
func listBlocks(ctx context.Context, w wire, typ string) ([]int, error) {
	b, err := readPages(ctx, w, typ+" list", grpBlock, subListType, blockListRequest(typ))
	var de *DeviceError
	if errors.As(err, &de) && de.Code == 0xD20E {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s blocks: %w", typ, err)
	}
	nums, err := parseBlockList(b)
	if err != nil {
		return nil, fmt.Errorf("listing %s blocks: %w", typ, err)
	}
	sort.Ints(nums)
	return slices.Compact(nums), nil
}

// readBlockInfo reads one block's header.
func readBlockInfo(ctx context.Context, w wire, typ string, num int) (blockInfo, error) {
	b, err := w.exchange(ctx, typ+" info", blockInfoRequest(typ, num))
	if err != nil {
		return blockInfo{}, fmt.Errorf("reading block info %s%d: %w", typ, num, err)
	}
	r, err := parseUserdataReply(b, grpBlock, subInfo)
	if err != nil {
		return blockInfo{}, fmt.Errorf("reading block info %s%d: %w", typ, num, err)
	}
	bi, err := parseBlockInfo(r.payload, typ, num)
	if err != nil {
		return blockInfo{}, fmt.Errorf("reading block info %s%d: %w", typ, num, err)
	}
	return bi, nil
}

// Read Var sizes: a job header of 10 bytes, parameters 2 + 12 per item; a
// reply header of 12 bytes, parameters 2, then per item 4 bytes of header
// and its data padded to an even length. At most 20 items per request.
const (
	maxItems    = 20
	reqOverhead = 10 + 2
	reqPerItem  = 12
	resOverhead = 12 + 2
	resPerItem  = 4
)

// packReads merges touching or overlapping byte ranges of the same area
// (when merge is set), splits ranges too big for one reply, and packs them
// into as few Read Var requests as fit the PDU in both directions.
func packReads(ranges []varItem, pdu int, merge bool) [][]varItem {
	rs := append([]varItem(nil), ranges...)
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.area != b.area {
			return a.area < b.area
		}
		if a.db != b.db {
			return a.db < b.db
		}
		return a.start < b.start
	})
	var merged []varItem
	for _, r := range rs {
		if n := len(merged); n > 0 {
			m := &merged[n-1]
			if merge && m.area == r.area && m.db == r.db && r.start <= m.start+m.count {
				if end := r.start + r.count; end > m.start+m.count {
					m.count = end - m.start
				}
				continue
			}
		}
		merged = append(merged, r)
	}
	maxData := pdu - resOverhead - resPerItem
	var items []varItem
	for _, m := range merged {
		for m.count > maxData {
			items = append(items, varItem{m.area, m.db, m.start, maxData})
			m.start += maxData
			m.count -= maxData
		}
		items = append(items, m)
	}
	var out [][]varItem
	var cur []varItem
	req, res := reqOverhead, resOverhead
	for _, it := range items {
		need := resPerItem + it.count + it.count%2
		if len(cur) > 0 && (len(cur) == maxItems || req+reqPerItem > pdu || res+need > pdu) {
			out = append(out, cur)
			cur, req, res = nil, reqOverhead, resOverhead
		}
		cur = append(cur, it)
		req += reqPerItem
		res += need
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// readVars sends one Read Var for items that packReads put together.
func readVars(ctx context.Context, w wire, object string, items []varItem) ([][]byte, []byte, error) {
	b, err := w.exchange(ctx, object, readVarRequest(items))
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", object, err)
	}
	data, codes, err := parseReadVarReply(b, items)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", object, err)
	}
	return data, codes, nil
}
