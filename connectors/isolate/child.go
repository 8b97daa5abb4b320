package isolate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
)

// ServeChild is the body of `plcwatch __session`: it reads the start frame
// from fd 3, takes the snapshot with the registered connector, asking the
// parent on fd 4 before each request, and writes the result there. Its
// logs go to stderr as JSON lines. It returns the process exit code. A
// panic anywhere (in the connector or in a protocol library's goroutine)
// ends the process, which is the point: the parent reports it. classOf,
// when not nil, gives a failed snapshot's error its stable class (the
// parent's error then reports it through ErrorClass), computed here where
// the typed error still is.
func ServeChild(classOf func(error) string) int {
	in := os.NewFile(3, "session-in")
	out := os.NewFile(4, "session-out")
	if in == nil || out == nil {
		fmt.Fprintln(os.Stderr, "plcwatch __session: run by plcwatch only (fd 3 and 4 are its pipes)")
		return 2
	}
	if err := Serve(in, out, os.Stderr, classOf); err != nil {
		fmt.Fprintln(os.Stderr, "plcwatch __session:", err)
		return 2
	}
	return 0
}

// Serve runs one session on the given pipes (in: parent -> child frames,
// out: child -> parent frames) and logs to logw; classOf is as for
// ServeChild.
func Serve(in io.Reader, out io.Writer, logw io.Writer, classOf func(error) string) error {
	fail := func(w *writer, err error) error {
		m := &message{Type: msgResult, Err: err.Error(), ErrClass: classOfErr(err)}
		if classOf != nil {
			m.Class = classOf(err)
		}
		return w.send(m)
	}
	r := newReader(in)
	w := &writer{w: out}
	m, err := r.next()
	if err != nil {
		return fmt.Errorf("reading the start frame: %w", err)
	}
	if m.Type != msgStart || m.Start == nil {
		return fmt.Errorf("first frame is %q, want %q", m.Type, msgStart)
	}
	st := m.Start
	lvl, err := zerolog.ParseLevel(st.LogLevel)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	log := zerolog.New(logw).Level(lvl).With().Timestamp().Logger()
	if st.MemoryLimit > 0 {
		if err := limitMemory(st.MemoryLimit); err != nil {
			log.Warn().Err(err).Int64("bytes", st.MemoryLimit).Msg("could not cap the session's memory")
		}
	}
	dev := st.Device
	if dev == nil {
		return errors.New("start frame without a device")
	}
	dev.Credentials.Provide(st.User, config.NewSecret(st.Password))
	for i := range st.Global {
		if i < len(st.Sources) {
			st.Global[i].Source = st.Sources[i]
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !st.Deadline.IsZero() {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, st.Deadline)
		defer c2()
	}
	rl := &remote{w: w, timeout: st.RequestTimeout, waiting: map[uint64]chan *message{}}
	// Frames from the parent: grants, a cancel, or EOF (the parent is gone
	// or the session is over).
	parentDone := make(chan struct{})
	go func() {
		defer close(parentDone)
		for {
			m, err := r.next()
			if err != nil {
				rl.closeAll()
				cancel()
				return
			}
			switch m.Type {
			case msgGrant:
				rl.deliver(m)
			case msgCancel:
				cancel()
			}
		}
	}()
	conn, _, err := connectors.Open(dev, st.Global, log, rl)
	if err != nil {
		return fail(w, err)
	}
	defer conn.Close()
	snap, err := conn.Snapshot(ctx, st.Prev)
	if err != nil {
		err = fail(w, err)
		// The error may be the symptom of a panic in a library goroutine
		// whose deferred cleanup woke the connector: stay until the
		// parent closes the session, so that the panic, not a clean exit,
		// ends this process and the parent can report it.
		<-parentDone
		return err
	}
	return w.send(&message{Type: msgResult, Snapshot: snap})
}

// remote is the child's limiter: it asks the parent before each request and
// tells it how the request ended. It implements connectors.Limiter,
// connectors.RequestLimiter and connectors.RequestBounder.
type remote struct {
	w       *writer
	timeout time.Duration

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan *message
	closed  bool
}

var errParentGone = errors.New("the plcwatch parent process closed the session")

// Acquire is never called: the gate prefers AcquireRequest.
func (l *remote) Acquire(ctx context.Context, device string) (func(error), error) {
	return nil, errors.New("isolate: Acquire without a request")
}

// AcquireRequest implements connectors.RequestLimiter.
func (l *remote) AcquireRequest(ctx context.Context, device string, req connectors.Request) (func(int, error), error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errParentGone
	}
	l.next++
	id := l.next
	ch := make(chan *message, 1)
	l.waiting[id] = ch
	l.mu.Unlock()
	if err := l.w.send(&message{Type: msgAsk, ID: id, Kind: req.Kind, Object: req.Object, Size: req.Size}); err != nil {
		return nil, fmt.Errorf("asking the parent for %s: %w", req.Kind, err)
	}
	var g *message
	select {
	case g = <-ch:
	case <-ctx.Done():
		// The parent answers anyway (its admission ends with the same
		// context); a late grant is released at once.
		go func() {
			if g := <-ch; g != nil && g.Err == "" {
				l.w.send(&message{Type: msgDone, ID: id, Err: ctx.Err().Error(), ErrClass: classOfErr(ctx.Err())})
			}
		}()
		return nil, ctx.Err()
	}
	if g == nil {
		return nil, errParentGone
	}
	if g.Err != "" {
		return nil, errorOf(g)
	}
	return func(in int, err error) {
		m := &message{Type: msgDone, ID: id, BytesIn: in}
		if err != nil {
			m.Err, m.ErrClass = err.Error(), classOfErr(err)
		}
		l.w.send(m)
	}, nil
}

// RequestContext implements connectors.RequestBounder with the
// request_timeout the parent sent.
func (l *remote) RequestContext(ctx context.Context, device string) (context.Context, context.CancelFunc) {
	if l.timeout > 0 {
		return context.WithTimeout(ctx, l.timeout)
	}
	return context.WithCancel(ctx)
}

func (l *remote) deliver(m *message) {
	l.mu.Lock()
	ch := l.waiting[m.ID]
	delete(l.waiting, m.ID)
	l.mu.Unlock()
	if ch != nil {
		ch <- m
	}
}

func (l *remote) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for id, ch := range l.waiting {
		close(ch)
		delete(l.waiting, id)
	}
}
