package opcua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/plcwatch/plcwatch/snapshots"
)

// Request sizes used when a server advertises no limit (OperationLimits
// absent or 0 means "no limit" in OPC UA Part 5 §6.3.11): small enough for
// old servers and for the smallest message size servers must accept.
const (
	defaultReadOps   = 240 // ReadValueIds per Read (80 variables of 3 attributes)
	defaultBrowseOps = 50  // BrowseDescriptions per Browse
	// requestBudget bounds the encoded size of one request's node list,
	// well inside the 64 KiB a server accepts in one chunk.
	requestBudget = 48 << 10
	// maxOps caps an advertised per-request limit: beyond it a response
	// (2 MiB at most by gopcua's default message size) risks being refused
	// as too large more often than a request is saved.
	maxOps = 5000
)

// opLimits are the request sizes of one snapshot: the server's advertised
// OperationLimits and MaxArrayLength where it gives them, conservative
// defaults where it does not, lowered further when the server refuses a
// request as too large.
type opLimits struct {
	readOps, browseOps int
	// advertised holds the limits the server gave, by their BrowseName; 0
	// means it advertised none.
	advertised map[string]uint32
	// learned says why a size was lowered during the snapshot.
	learned []string
	// kept says the sizes started from an earlier snapshot's (keep).
	kept string
	// nodeRefs, when > 0, bounds the references one node's paging may
	// collect: the browsed root's max_nodes (more fails the root anyway).
	nodeRefs int
}

func newLimits() *opLimits {
	return &opLimits{readOps: defaultReadOps, browseOps: defaultBrowseOps, advertised: map[string]uint32{}}
}

// limitNodes are the Server object's variables that bound request sizes
// (Part 5 §6.3.2 ServerCapabilities, §6.3.11 OperationLimitsType).
var limitNodes = []struct {
	name string
	id   uint32
}{
	{"MaxNodesPerRead", id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead},
	{"MaxNodesPerBrowse", id.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse},
	{"MaxArrayLength", id.Server_ServerCapabilities_MaxArrayLength},
	{"MaxStringLength", id.Server_ServerCapabilities_MaxStringLength},
	{"MaxByteStringLength", id.Server_ServerCapabilities_MaxByteStringLength},
}

// apply takes the advertised limits from their read results (in
// limitNodes order). A limit that could not be read counts as not
// advertised.
func (l *opLimits) apply(res []readResult) {
	for i, n := range limitNodes {
		var v uint32
		if r := res[i]; r.dv != nil && statusGood(r.dv.Status) && r.dv.Value != nil {
			switch x := r.dv.Value.Value().(type) {
			case uint32:
				v = x
			case uint16:
				v = uint32(x)
			case int32:
				v = uint32(max(x, 0))
			case uint64:
				v = uint32(min(x, 1<<31))
			}
		}
		l.advertised[n.name] = v
	}
	bound := func(cur int, lims ...uint32) int {
		for _, x := range lims {
			if x > 0 && int64(x) < int64(cur) {
				cur = int(x)
			}
		}
		return max(cur, 1)
	}
	// An advertised limit is used up to maxOps: a server that says it
	// takes 1,000 operations per request gets 1,000, so a large address
	// space costs as few requests as the server allows. requestBudget
	// still bounds each request's bytes, and a response the server or the
	// client finds too large is split as any refused request is. A
	// server's MaxArrayLength bounds every array in a message, the
	// request's own node list included.
	use := func(cur int, limit uint32) int {
		if limit > 0 {
			return int(min(limit, maxOps))
		}
		return cur
	}
	l.readOps = bound(use(l.readOps, l.advertised["MaxNodesPerRead"]), l.advertised["MaxArrayLength"])
	l.browseOps = bound(use(l.browseOps, l.advertised["MaxNodesPerBrowse"]), l.advertised["MaxArrayLength"])
}

// item records the limits used, so that a snapshot says how its requests
// were sized and the plan made from it stays exact. It is information
// only: a server that changes its limits is not a configuration change of
// the controller.
func (l *opLimits) item() snapshots.Item {
	attrs := map[string]string{"read_ops": strconv.Itoa(l.readOps), "browse_ops": strconv.Itoa(l.browseOps)}
	for k, v := range l.advertised {
		attrs["advertised."+k] = strconv.FormatUint(uint64(v), 10)
	}
	if len(l.learned) > 0 {
		attrs["lowered"] = strings.Join(l.learned, "; ")
	}
	if l.kept != "" {
		attrs["kept"] = l.kept
	}
	return snapshots.Item{Path: "server/request_limits", Kind: snapshots.KindInfo,
		Value: snapshots.String(fmt.Sprintf("read %d, browse %d operations per request", l.readOps, l.browseOps)), Attrs: attrs}
}

// keep starts from the request sizes an earlier snapshot of the same
// endpoint had to lower (its server/request_limits item), where they are
// below this snapshot's: a server that refuses large requests, or closes
// the connection on them, is not sent one again on every check. A full
// read (no previous snapshot) starts from the advertised sizes again.
func (l *opLimits) keep(prev *snapshots.Snapshot, endpoint string) {
	if prev == nil || prev.Endpoint != endpoint {
		return
	}
	it := prev.Item("server/request_limits")
	if it == nil || it.Attrs["lowered"] == "" && it.Attrs["kept"] == "" {
		return
	}
	kept := false
	for _, x := range []struct {
		ops *int
		key string
	}{{&l.readOps, "read_ops"}, {&l.browseOps, "browse_ops"}} {
		if n, err := strconv.Atoi(it.Attrs[x.key]); err == nil && n > 0 && n < *x.ops {
			*x.ops, kept = n, true
		}
	}
	if kept {
		l.kept = fmt.Sprintf("read %d, browse %d as lowered by an earlier snapshot", l.readOps, l.browseOps)
	}
}

// lower records that the server refused n operations in one request.
func (l *opLimits) lower(ops *int, what string, n int, why ua.StatusCode) {
	l.lowerAfter(ops, what, n, statusName(why))
}

// lowerAfter records that n operations in one request failed for why.
func (l *opLimits) lowerAfter(ops *int, what string, n int, why string) {
	if max(n/2, 1) < *ops {
		*ops = max(n/2, 1)
		l.learned = append(l.learned, fmt.Sprintf("%s to %d after %s", what, *ops, why))
	}
}

// channelLost reports whether err says the connection is gone (the
// server closed it).
func channelLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, ua.StatusBadConnectionClosed) || errors.Is(err, ua.StatusBadSecureChannelClosed)
}

// reopened reports whether a request that failed because the server
// closed the connection may be sent again in halves: sess could open a
// new session (see reopening).
func (c *Connector) reopened(ctx context.Context, sess session, err error) bool {
	r, ok := sess.(*reopening)
	return ok && channelLost(err) && r.reopen(ctx)
}

// readResult is one operation's outcome: a DataValue, or the reason the
// operation could not be read at all.
type readResult struct {
	dv     *ua.DataValue
	reason string
	// whole, when set, is the canonical value of an array read in parts
	// (readInParts); dv is then Good and empty.
	whole *snapshots.Value
}

// failure reports why an operation failed, or "" for a Good or
// not-Bad/not-Uncertain value.
func (r readResult) failure() string {
	switch {
	case r.dv == nil && r.reason != "":
		return r.reason
	case r.dv == nil:
		return "not read"
	case !statusGood(r.dv.Status):
		return statusName(r.dv.Status)
	}
	return ""
}

// errAborted marks a failure after which no further request is sent in
// this snapshot (the connection or session is gone, the context ended, or
// the gate refused to send).
type abortError struct{ err error }

func (e *abortError) Error() string { return e.err.Error() }
func (e *abortError) Unwrap() error { return e.err }

// splittable reports whether a request that failed as a whole may succeed
// when sent in smaller parts: the server refused it as too large or too
// many (BadTooManyOperations, BadEncodingLimitsExceeded,
// BadResponseTooLarge, BadRequestTooLarge), timed out (one huge value), or
// its reply could not be decoded. A closed channel or session, or an ended
// context, is not.
func splittable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return false
	}
	var sc ua.StatusCode
	if errors.As(err, &sc) {
		switch sc {
		case ua.StatusBadServerNotConnected, ua.StatusBadConnectionClosed, ua.StatusBadSecureChannelClosed,
			ua.StatusBadSessionClosed, ua.StatusBadSessionIDInvalid, ua.StatusBadSecureChannelIDInvalid,
			ua.StatusBadNotConnected, ua.StatusBadShutdown, ua.StatusBadServerHalted, ua.StatusBadCommunicationError,
			ua.StatusBadSessionNotActivated, ua.StatusBadUserAccessDenied, ua.StatusBadServiceUnsupported:
			return false
		}
		return true
	}
	var ne net.Error
	return !errors.As(err, &ne)
}

// tooMany reports whether err says the request itself held too many
// operations or bytes, so later requests should be smaller from the start.
// A response too large (BadResponseTooLarge, BadEncodingLimitsExceeded)
// may be one huge value: it is split, but lowers nothing for the rest.
func tooMany(err error) (ua.StatusCode, bool) {
	var sc ua.StatusCode
	if errors.As(err, &sc) {
		switch sc {
		case ua.StatusBadTooManyOperations, ua.StatusBadRequestTooLarge:
			return sc, true
		}
	}
	return 0, false
}

// answering tells a request that timed out because of what it asked for
// (one huge or slow value) from a server that stopped answering: after a
// timeout it reads one small variable (ServerStatus/State). Only when that
// answers is the timed-out request split and retried; otherwise reading
// stops, instead of sending every half of every request into a silent
// server. Any other error needs no probe.
func (c *Connector) answering(ctx context.Context, sess session, err error) bool {
	if !errors.Is(err, ua.StatusBadTimeout) && !errors.Is(err, ua.StatusBadRequestTimeout) {
		return true
	}
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither, NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_State), AttributeID: ua.AttributeIDValue}}}
	return c.do(ctx, KindRead, "ServerStatus", 0, func(ctx context.Context) error {
		_, e := sess.Read(ctx, req)
		return e
	}) == nil
}

func errReason(err error) string {
	var sc ua.StatusCode
	if errors.As(err, &sc) {
		return statusName(sc)
	}
	return err.Error()
}

// chunks cuts n operations into requests of at most ops operations whose
// encoded node ids stay within requestBudget.
func chunks(n, ops int, size func(i int) int) [][2]int {
	var out [][2]int
	for i := 0; i < n; {
		j, bytes := i, 0
		for j < n && j-i < ops && (j == i || bytes+size(j) <= requestBudget) {
			bytes += size(j)
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

func nodeIDSize(n *ua.NodeID) int {
	if n == nil {
		return 4
	}
	b, err := n.Encode()
	if err != nil {
		return 64
	}
	return len(b)
}

// read reads ops in requests sized to the server's limits. A request that
// fails as a whole is split in halves and retried, down to single
// operations, so only operations that really cannot be read fail; a failed
// request never stops the ones after it. It returns one result per
// operation, and an error only when reading had to stop (the results not
// read then carry that reason).
func (c *Connector) read(ctx context.Context, sess session, object string, ops []*ua.ReadValueID, lim *opLimits) ([]readResult, error) {
	res := make([]readResult, len(ops))
	var stop error
	var readRange func(lo, hi int)
	readRange = func(lo, hi int) {
		if stop != nil {
			return
		}
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither, NodesToRead: ops[lo:hi]}
		var resp *ua.ReadResponse
		sent := false
		err := c.do(ctx, KindRead, object, 0, func(ctx context.Context) error {
			sent = true
			var e error
			resp, e = sess.Read(ctx, req)
			return e
		})
		if err == nil && len(resp.Results) != hi-lo {
			err = fmt.Errorf("read: %d results for %d operations", len(resp.Results), hi-lo)
		}
		if err == nil {
			for i, dv := range resp.Results {
				res[lo+i] = readResult{dv: dv}
			}
			if c.observe != nil {
				c.observe(req, resp, c.lastOut, c.lastIn)
			}
			return
		}
		switch {
		case sent && hi-lo > 1 && c.reopened(ctx, sess, err):
			lim.lowerAfter(&lim.readOps, "read", hi-lo, "the server closed the connection")
		case !sent || !splittable(err) || !c.answering(ctx, sess, err):
			stop = &abortError{err}
			return
		}
		if sc, ok := tooMany(err); ok {
			lim.lower(&lim.readOps, "read", hi-lo, sc)
		}
		if hi-lo == 1 {
			res[lo] = readResult{reason: errReason(err)}
			return
		}
		mid := lo + (hi-lo)/2
		readRange(lo, mid)
		readRange(mid, hi)
	}
	for _, ch := range chunks(len(ops), lim.readOps, func(i int) int { return nodeIDSize(ops[i].NodeID) + 10 }) {
		// A lowered limit applies to the rest of this chunk too.
		for lo := ch[0]; lo < ch[1]; {
			hi := min(lo+lim.readOps, ch[1])
			readRange(lo, hi)
			lo = hi
		}
	}
	if stop != nil {
		for i := range res {
			if res[i].dv == nil && res[i].reason == "" {
				res[i].reason = "not read: " + errReason(stop)
			}
		}
		return res, stop
	}
	return res, nil
}

// browseResult is one node's browse outcome.
type browseResult struct {
	refs   []*ua.ReferenceDescription
	reason string // why the node's references could not be browsed
}

// pagedReferences is the RequestedMaxReferencesPerNode of a node whose
// references did not fit one response.
const pagedReferences = 1000

// browseNodes browses descs in requests sized to the server's limits,
// splitting a request that fails as a whole as read does, and follows
// continuation points with BrowseNext. It asks for every reference of a
// node at once (RequestedMaxReferencesPerNode 0, "no limit", Part 4
// §5.8.2): a server still pages what exceeds its own limits, and a node
// 10,000 variables hang from then costs one request instead of ten. A
// single node whose answer is refused as too large is asked again for
// pagedReferences at a time.
func (c *Connector) browseNodes(ctx context.Context, sess session, descs []*ua.BrowseDescription, lim *opLimits) ([]browseResult, error) {
	res := make([]browseResult, len(descs))
	var stop error
	var browseRange func(lo, hi int, maxRefs uint32)
	browseRange = func(lo, hi int, maxRefs uint32) {
		if stop != nil {
			return
		}
		req := &ua.BrowseRequest{RequestedMaxReferencesPerNode: maxRefs, NodesToBrowse: descs[lo:hi]}
		var resp *ua.BrowseResponse
		sent := false
		err := c.do(ctx, KindBrowse, "address space", 0, func(ctx context.Context) error {
			sent = true
			var e error
			resp, e = sess.Browse(ctx, req)
			return e
		})
		if err == nil && len(resp.Results) != hi-lo {
			err = fmt.Errorf("browse: %d results for %d nodes", len(resp.Results), hi-lo)
		}
		if err == nil {
			for i, r := range resp.Results {
				res[lo+i] = c.browseRest(ctx, sess, r, &stop, lim)
			}
			return
		}
		switch {
		case sent && hi-lo > 1 && c.reopened(ctx, sess, err):
			lim.lowerAfter(&lim.browseOps, "browse", hi-lo, "the server closed the connection")
		case !sent || !splittable(err) || !c.answering(ctx, sess, err):
			stop = &abortError{err}
			return
		}
		if sc, ok := tooMany(err); ok {
			lim.lower(&lim.browseOps, "browse", hi-lo, sc)
		}
		if hi-lo == 1 && maxRefs == 0 {
			// One node whose references do not fit one response: page them
			// with continuation points.
			browseRange(lo, hi, pagedReferences)
			return
		}
		if hi-lo == 1 {
			res[lo] = browseResult{reason: errReason(err)}
			return
		}
		mid := lo + (hi-lo)/2
		browseRange(lo, mid, maxRefs)
		browseRange(mid, hi, maxRefs)
	}
	for _, ch := range chunks(len(descs), lim.browseOps, func(i int) int { return nodeIDSize(descs[i].NodeID) + 20 }) {
		for lo := ch[0]; lo < ch[1]; {
			hi := min(lo+lim.browseOps, ch[1])
			browseRange(lo, hi, 0)
			lo = hi
		}
	}
	if stop != nil {
		for i := range res {
			if res[i].refs == nil && res[i].reason == "" {
				res[i].reason = "not browsed: " + errReason(stop)
			}
		}
		return res, stop
	}
	return res, nil
}

// staleBrowseNext is how many BrowseNext answers in a row that bring no
// reference not seen before (a fresh continuation point and no
// references, or the same page again) end the paging of a node. A server
// may legitimately answer a page or two empty (references it filtered
// after paging); ten in a row is one that will never finish.
const staleBrowseNext = 10

// browseRest follows one result's continuation points. A server whose
// continuation points never end (staleBrowseNext answers without a new
// reference, or more references than lim.nodeRefs) costs that node's
// remaining references, with the reason, never the snapshot; its last
// continuation point is released (BrowseNext with
// ReleaseContinuationPoints, Part 4 §5.8.3) so the server can free it.
func (c *Connector) browseRest(ctx context.Context, sess session, r *ua.BrowseResult, stop *error, lim *opLimits) browseResult {
	if r == nil {
		return browseResult{reason: "no result"}
	}
	if !statusGood(r.StatusCode) {
		return browseResult{reason: statusName(r.StatusCode)}
	}
	var refs []*ua.ReferenceDescription
	seen := map[string]bool{}
	fresh := func(page []*ua.ReferenceDescription) int {
		n := 0
		for _, ref := range page {
			key := ""
			if ref != nil && ref.NodeID != nil && ref.NodeID.NodeID != nil {
				key = ref.NodeID.NodeID.String()
			}
			if ref != nil && ref.ReferenceTypeID != nil {
				key += " " + ref.ReferenceTypeID.String()
			}
			if !seen[key] {
				seen[key] = true
				refs = append(refs, ref)
				n++
			}
		}
		return n
	}
	fresh(r.References)
	cp := r.ContinuationPoint
	for pages, stale := 0, 0; len(cp) > 0; pages++ {
		if *stop != nil {
			return browseResult{refs: refs, reason: "BrowseNext not sent: " + errReason(*stop)}
		}
		if stale >= staleBrowseNext || lim.nodeRefs > 0 && len(refs) > lim.nodeRefs {
			c.releaseContinuation(ctx, sess, cp)
			return browseResult{refs: refs, reason: fmt.Sprintf("BrowseNext: continuation points without end (%d BrowseNext, the last %d without a new reference; %d references kept, the rest not browsed)", pages, stale, len(refs))}
		}
		var nr *ua.BrowseNextResponse
		sent := false
		err := c.do(ctx, KindBrowseNext, "address space", 0, func(ctx context.Context) error {
			sent = true
			var e error
			nr, e = sess.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
			return e
		})
		if err != nil {
			if !sent || !splittable(err) {
				*stop = &abortError{err}
			}
			return browseResult{refs: refs, reason: "BrowseNext: " + errReason(err)}
		}
		if len(nr.Results) != 1 || nr.Results[0] == nil || !statusGood(nr.Results[0].StatusCode) {
			why := "no result"
			if len(nr.Results) == 1 && nr.Results[0] != nil {
				why = statusName(nr.Results[0].StatusCode)
			}
			return browseResult{refs: refs, reason: "BrowseNext: " + why}
		}
		if fresh(nr.Results[0].References) == 0 {
			stale++
		} else {
			stale = 0
		}
		cp = nr.Results[0].ContinuationPoint
	}
	return browseResult{refs: refs}
}

// releaseContinuation asks the server to free a continuation point the
// connector will not follow; an error changes nothing.
func (c *Connector) releaseContinuation(ctx context.Context, sess session, cp []byte) {
	c.do(ctx, KindBrowseNext, "address space", 0, func(ctx context.Context) error {
		_, e := sess.BrowseNext(ctx, &ua.BrowseNextRequest{ReleaseContinuationPoints: true, ContinuationPoints: [][]byte{cp}})
		return e
	})
}

// tooLarge reports whether one Value read failed because its answer does
// not fit one response (BadEncodingLimitsExceeded, BadResponseTooLarge,
// BadTcpMessageTooLarge), as the status of the operation or of the
// request of it alone.
func tooLarge(r readResult) bool {
	switch r.failure() {
	case statusName(ua.StatusBadEncodingLimitsExceeded), statusName(ua.StatusBadResponseTooLarge), statusName(ua.StatusBadTCPMessageTooLarge):
		return true
	}
	return false
}

// Array parts: the first part asks for partElements elements; a part
// refused as too large is asked again for half as many, down to
// minPartElements.
const (
	partElements    = 65536
	minPartElements = 256
)

// readInParts reads an array Value too large for one response in parts
// (ReadValueId.IndexRange "lo:hi", OPC UA Part 4 §7.27), one element
// first, then partElements at a time, until the server answers
// BadIndexRangeNoData or a short part, and returns its canonical
// text as one read would give it (arrayText): memory holds one part at a
// time. reason says why it could not, "" when it could.
func (c *Connector) readInParts(ctx context.Context, sess session, nid *ua.NodeID, unit string) (snapshots.Value, string) {
	var a arrayText
	// The first part is one element: a value too large by itself (a
	// scalar, one huge element) or no array at all costs one request.
	size := 1
	for lo := 0; ; {
		op := readOp(nid, ua.AttributeIDValue)
		op.IndexRange = fmt.Sprintf("%d:%d", lo, lo+size-1)
		if size == 1 {
			op.IndexRange = strconv.Itoa(lo) // "lo:lo" is invalid (Part 4 §7.27)
		}
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither, NodesToRead: []*ua.ReadValueID{op}}
		var resp *ua.ReadResponse
		err := c.do(ctx, KindRead, "array parts", 0, func(ctx context.Context) error {
			var e error
			resp, e = sess.Read(ctx, req)
			return e
		})
		var dv *ua.DataValue
		if err == nil && len(resp.Results) == 1 && resp.Results[0] != nil {
			dv = resp.Results[0]
		}
		switch {
		case err != nil && tooLarge(readResult{reason: errReason(err)}) && size > minPartElements,
			dv != nil && tooLarge(readResult{dv: dv}) && size > minPartElements:
			size /= 2
			continue
		case err != nil:
			return snapshots.Value{}, "array in parts: " + errReason(err)
		case dv == nil:
			return snapshots.Value{}, "array in parts: no result"
		case dv.Status == ua.StatusBadIndexRangeNoData && lo > 0:
			return summarised(a.value(unit)), ""
		case !statusGood(dv.Status):
			return snapshots.Value{}, "array in parts: " + statusName(dv.Status)
		}
		if dv.Value == nil {
			return snapshots.Value{}, "array in parts: an empty part"
		}
		rv := reflect.ValueOf(dv.Value.Value())
		if rv.Kind() != reflect.Slice {
			return snapshots.Value{}, "array in parts: the server answered a part that is not an array"
		}
		for i := 0; i < rv.Len(); i++ {
			if why := a.add(rv.Index(i).Interface(), 1); why != "" {
				return snapshots.Value{}, why
			}
		}
		if rv.Len() < size {
			return summarised(a.value(unit)), ""
		}
		lo += size
		if lo == 1 {
			size = partElements
		}
	}
}
