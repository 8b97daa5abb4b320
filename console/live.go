package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/plcwatch/plcwatch/alerts"
	"github.com/plcwatch/plcwatch/store"
)

// liveAlert is the data of one "alert" server-sent event.
type liveAlert struct {
	ID       string `json:"id"`
	Device   string `json:"device"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
	URL      string `json:"url"`
}

// hub fans new-alert events out to the open event streams.
type hub struct {
	mu     sync.Mutex
	subs   map[chan liveAlert]struct{}
	closed bool
}

func newHub() *hub { return &hub{subs: map[chan liveAlert]struct{}{}} }

// maxStreams bounds the open event streams (each holds a goroutine and a
// connection); a local console has a handful of viewers.
const maxStreams = 64

func (h *hub) subscribe() (chan liveAlert, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) >= maxStreams {
		return nil, false
	}
	c := make(chan liveAlert, 32)
	h.subs[c] = struct{}{}
	return c, true
}

func (h *hub) unsubscribe(c chan liveAlert) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[c]; ok {
		delete(h.subs, c)
		close(c)
	}
}

// publish sends a to every stream; a stream that is not keeping up loses
// the event (its page still shows the alert on reload).
func (h *hub) publish(a liveAlert) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- a:
		default:
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.subs {
		delete(h.subs, c)
		close(c)
	}
}

// watcher remembers which alerts the live stream has already seen.
type watcher struct {
	seen      map[string]bool
	lastHeads string
}

// scan lists the alerts when a chain head moved and returns the open ones
// it had not seen before.
func (s *Server) scan(ctx context.Context, w *watcher) ([]liveAlert, error) {
	heads, err := s.opt.Store.Heads(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading chain heads: %w", err)
	}
	key := headsKey(heads)
	if key == w.lastHeads {
		return nil, nil
	}
	list, err := alerts.List(ctx, s.opt.Store, alerts.Filter{})
	if err != nil {
		return nil, fmt.Errorf("listing alerts: %w", err)
	}
	w.lastHeads = key
	var out []liveAlert
	for i := len(list) - 1; i >= 0; i-- {
		a := list[i]
		k := a.Device + "/" + a.ID
		if w.seen[k] {
			continue
		}
		w.seen[k] = true
		if a.Open() {
			out = append(out, liveAlert{ID: a.ID, Device: a.Device, Severity: string(a.Severity), Title: a.Title, URL: alertURL(a)})
		}
	}
	return out, nil
}

// poll watches the store for new alerts (raised by the daemon or the CLI,
// in this process or another) every Options.Poll and publishes them. w
// holds what was there when the server started.
func (s *Server) poll(ctx context.Context, w *watcher) {
	t := time.NewTicker(s.opt.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		news, err := s.scan(ctx, w)
		if err != nil {
			if ctx.Err() == nil {
				s.opt.Log.Warn().Err(err).Msg("console: live updates")
			}
			continue
		}
		for _, a := range news {
			s.live.publish(a)
		}
	}
}

func headsKey(hs []store.Head) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "%s:%d:%s;", h.Device, h.Seq, h.Digest)
	}
	return b.String()
}

// events streams new alerts as server-sent events ("event: alert", data
// liveAlert JSON) until the client goes away or the server stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	c, ok := s.live.subscribe()
	if !ok {
		http.Error(w, "console is stopping or has too many live streams open", http.StatusServiceUnavailable)
		return
	}
	defer s.live.unsubscribe(c)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A comment first, so the client knows the stream is open.
	fmt.Fprint(w, ": plcwatch live alerts\nretry: 3000\n\n")
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case a, ok := <-c:
			if !ok {
				return
			}
			b, err := json.Marshal(a)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "event: alert\nid: %s\ndata: %s\n\n", a.ID, b)
			fl.Flush()
		}
	}
}
