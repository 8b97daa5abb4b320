// Package isolate runs a device's snapshot in a child process of the
// plcwatch binary (the hidden `plcwatch __session` command), so that a
// protocol library that panics in a goroutine of its own (gopcua v0.9.0
// does on a variant with a negative array length), allocates without bound,
// leaks goroutines or ignores its deadlines costs that device's snapshot
// only, never the daemon and the other devices.
//
// The parent keeps the one Gate and the limiter. The child builds the real
// connector with a gate whose limiter asks the parent, over a framed pipe,
// before each request (the parent re-checks the allowlist, applies the rate,
// in-flight, gateway and breaker limits, and bounds the request with
// request_timeout) and reports each request's bytes and outcome after it.
// The parent kills the child when the snapshot's context ends and a margin
// has passed, or when a granted request has not ended within its
// request_timeout plus the margin (a watchdog that does not rely on the
// library honouring its context), and always reaps it.
//
// Pipes: fd 3 carries parent -> child frames, fd 4 child -> parent frames;
// the child's stdout and stderr both go to one pipe the parent reads line by
// line: JSON lines are the child's zerolog records, forwarded to the
// parent's logger; anything else (a panic's trace, a library printing to
// stdout) is kept for the crash report and logged at debug level. The child
// gets an empty environment and its credentials only in the start frame.
package isolate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/snapshots"
)

// Command is the hidden subcommand that runs a session in the child.
const Command = "__session"

// Margin is how long past a deadline the parent waits for the child before
// it kills it: past the snapshot's deadline (for the child to return what it
// read) and past a granted request's request_timeout (the watchdog).
const Margin = 2 * time.Second

// crashGrace is how long the parent leaves a child that reported a failed
// snapshot alive, for a panic in a library goroutine (the failure's likely
// cause) to end it and be reported instead of its symptom.
const crashGrace = 500 * time.Millisecond

// ErrCrashed is wrapped by the error of a session whose child process died
// without returning a snapshot (a panic, running out of memory, a signal).
var ErrCrashed = errors.New("protocol session crashed")

// ErrKilled is wrapped by the error of a session the parent killed because
// a request outlived its request_timeout plus Margin.
var ErrKilled = errors.New("protocol session killed by the request watchdog")

// SessionError is the failure of an isolated session: what happened to the
// child process, in words an operator can act on.
type SessionError struct {
	Device   string
	Protocol string
	// What is "crashed" or "killed".
	What string
	// Reason is the child's own last words ("panic: ...") or the watchdog's.
	Reason string
	// Hint says what the reason most likely means.
	Hint string
	err  error
}

func (e *SessionError) Error() string {
	s := fmt.Sprintf("%s session for device %s %s: %s", protocolName(e.Protocol), e.Device, e.What, e.Reason)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns ErrCrashed or ErrKilled.
func (e *SessionError) Unwrap() error { return e.err }

// ErrorClass is the stable class of the failure, for alert fingerprints:
// "protocol session crashed" or "protocol session killed", never the
// panic's text.
func (e *SessionError) ErrorClass() string { return "protocol session " + e.What }

func protocolName(p string) string {
	switch p {
	case "opcua":
		return "OPC UA"
	case "s7":
		return "S7"
	case "logix":
		return "Logix"
	}
	return p
}

// Options tune isolated sessions.
type Options struct {
	// MemoryLimit caps each session process's data segment (RLIMIT_DATA,
	// the heap), in bytes; 0 means none. Ignored by race-detector builds,
	// whose shadow memory counts against it.
	MemoryLimit int64
}

// Opener returns a function with the signature of connectors.Open that
// builds connectors whose snapshots run in a child process started as
// `exe __session`. exe is normally os.Executable().
func Opener(exe string, opt Options) func(dev *config.Device, global classify.Rules, log zerolog.Logger, limiter connectors.Limiter) (connectors.Connector, *connectors.Gate, error) {
	return func(dev *config.Device, global classify.Rules, log zerolog.Logger, limiter connectors.Limiter) (connectors.Connector, *connectors.Gate, error) {
		// The in-process connector validates the config and answers Plan,
		// which never touches the network; only Snapshot is isolated.
		inner, gate, err := connectors.Open(dev, global, log, limiter)
		if err != nil {
			return nil, nil, err
		}
		c := &Connector{exe: exe, opt: opt, dev: dev, global: global, gate: gate, limiter: limiter, inner: inner,
			log: log.With().Str("device", dev.Name).Str("protocol", dev.Protocol).Logger()}
		return c, gate, nil
	}
}

// Connector is a connectors.Connector whose Snapshot runs in a child
// process. Not safe for concurrent use, like every connector.
type Connector struct {
	exe     string
	opt     Options
	dev     *config.Device
	global  classify.Rules
	gate    *connectors.Gate
	limiter connectors.Limiter
	inner   connectors.Connector
	log     zerolog.Logger
}

// Plan implements connectors.Connector in-process: it never touches the
// device.
func (c *Connector) Plan(prev *snapshots.Snapshot) (*connectors.Plan, error) {
	return c.inner.Plan(prev)
}

// Close implements connectors.Connector.
func (c *Connector) Close() error { return c.inner.Close() }

// requestTimeout is the device's request_timeout as the limiter knows it.
func (c *Connector) requestTimeout() time.Duration {
	if l, ok := c.limiter.(interface{ RequestTimeout(string) time.Duration }); ok {
		return l.RequestTimeout(c.dev.Name)
	}
	return 0
}

// Snapshot implements connectors.Connector: it starts the child, serves its
// requests through the gate, and returns its snapshot or the reason it has
// none. The child is reaped before Snapshot returns.
func (c *Connector) Snapshot(ctx context.Context, prev *snapshots.Snapshot) (*snapshots.Snapshot, error) {
	c.gate.Reset()
	user, pw, err := c.dev.Credentials.Resolve()
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", c.dev.Name, err)
	}
	st := &startMsg{Device: c.dev, Global: c.global, Prev: prev, User: user, Password: pw.Reveal(),
		RequestTimeout: c.requestTimeout(), LogLevel: c.log.GetLevel().String(), MemoryLimit: c.opt.MemoryLimit}
	for _, r := range c.global {
		st.Sources = append(st.Sources, r.Source)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.Deadline = dl
	}
	s, err := c.start()
	if err != nil {
		return nil, fmt.Errorf("device %s: starting the %s session process: %w", c.dev.Name, protocolName(c.dev.Protocol), err)
	}
	return s.run(ctx, st)
}

// session is one running child.
type session struct {
	c      *Connector
	cmd    *exec.Cmd
	out    *writer       // parent -> child frames
	in     *os.File      // child -> parent frames
	toChld *os.File      // write end of out, closed to tell the child to end
	logs   *os.File      // the child's stdout and stderr
	tail   *tail         // the child's non-JSON output, for crash reports
	logEnd chan struct{} // closed when the log pipe reached EOF
}

func (c *Connector) start() (*session, error) {
	p2cR, p2cW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c2pR, c2pW, err := os.Pipe()
	if err != nil {
		p2cR.Close()
		p2cW.Close()
		return nil, err
	}
	logR, logW, err := os.Pipe()
	if err != nil {
		p2cR.Close()
		p2cW.Close()
		c2pR.Close()
		c2pW.Close()
		return nil, err
	}
	cmd := exec.Command(c.exe, Command)
	cmd.Env = []string{} // nothing inherited: secrets come over the pipe only
	cmd.Stdin = nil
	cmd.Stdout = logW
	cmd.Stderr = logW
	cmd.ExtraFiles = []*os.File{p2cR, c2pW}
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	// The child holds its own copies now; the parent keeps only its ends,
	// so that EOF arrives when the child exits.
	p2cR.Close()
	c2pW.Close()
	logW.Close()
	if err != nil {
		p2cW.Close()
		c2pR.Close()
		logR.Close()
		return nil, err
	}
	s := &session{c: c, cmd: cmd, out: &writer{w: p2cW}, in: c2pR, toChld: p2cW, logs: logR, tail: &tail{max: 40}, logEnd: make(chan struct{})}
	go s.forwardLogs()
	return s, nil
}

// grantReq is a granted request waiting for its done frame.
type grantReq struct {
	done  func(bytesIn, bytesOut int, err error)
	watch *time.Timer
}

func (s *session) run(ctx context.Context, st *startMsg) (snap *snapshots.Snapshot, err error) {
	waited := make(chan struct{}) // closed once the child is reaped
	var exitErr error
	frames := make(chan *message)
	readDone := make(chan error, 1)
	stopRead := make(chan struct{})
	readerGone := make(chan struct{})
	go func() {
		defer close(readerGone)
		r := newReader(s.in)
		for {
			m, err := r.next()
			if err != nil {
				readDone <- err
				return
			}
			select {
			case frames <- m:
			case <-stopRead:
				return
			}
		}
	}()
	var (
		mu       sync.Mutex
		granted  = map[uint64]*grantReq{}
		admitWG  sync.WaitGroup
		killOnce sync.Once
		killWhy  string
	)
	whyKilled := func() string {
		mu.Lock()
		defer mu.Unlock()
		return killWhy
	}
	killed := make(chan struct{})
	kill := func(why string) {
		killOnce.Do(func() {
			mu.Lock()
			killWhy = why
			mu.Unlock()
			s.cmd.Process.Kill()
			close(killed)
		})
	}
	admitCtx, stopAdmits := context.WithCancel(ctx)
	defer func() {
		// Reap the child and every goroutine of this session.
		stopAdmits()
		s.toChld.Close()
		reap := time.NewTimer(Margin)
		select {
		case <-waited:
		case <-reap.C:
			kill("did not exit after its session ended")
			<-waited
		}
		reap.Stop()
		close(stopRead)
		s.in.Close()
		<-readerGone
		<-s.logEnd
		s.logs.Close()
		admitWG.Wait()
		mu.Lock()
		for id, g := range granted {
			g.watch.Stop()
			g.done(0, 0, errors.New("session ended before the request did"))
			delete(granted, id)
		}
		mu.Unlock()
	}()
	go func() { exitErr = s.cmd.Wait(); close(waited) }()

	if err := s.out.send(&message{Type: msgStart, Start: st}); err != nil {
		// The child may have died already; its exit says why.
		s.c.log.Debug().Err(err).Msg("sending the start frame")
	}
	timeout := st.RequestTimeout
	var ctxDone <-chan struct{} = ctx.Done()
	var cutoff <-chan time.Time
	exited, readErr := (<-chan struct{})(waited), (<-chan error)(readDone)
	childExited := false
	for {
		select {
		case m := <-frames:
			switch m.Type {
			case msgAsk:
				admitWG.Add(1)
				go func(m *message) {
					defer admitWG.Done()
					req := connectors.Request{Kind: m.Kind, Object: m.Object, Size: m.Size}
					_, done, err := s.c.gate.AdmitMeasured(admitCtx, req)
					if err != nil {
						s.out.send(&message{Type: msgGrant, ID: m.ID, Err: err.Error(), ErrClass: classOfErr(err)})
						return
					}
					g := &grantReq{done: done}
					if timeout > 0 {
						id := m.ID
						g.watch = time.AfterFunc(timeout+Margin, func() {
							kill(fmt.Sprintf("request %d (%s %s) did not end within request_timeout %s plus %s", id, req.Kind, req.Object, timeout, Margin))
						})
					} else {
						g.watch = time.NewTimer(time.Hour * 24 * 365)
					}
					mu.Lock()
					granted[m.ID] = g
					mu.Unlock()
					if err := s.out.send(&message{Type: msgGrant, ID: m.ID}); err != nil {
						s.c.log.Debug().Err(err).Msg("sending a grant")
					}
				}(m)
			case msgDone:
				mu.Lock()
				g := granted[m.ID]
				delete(granted, m.ID)
				mu.Unlock()
				if g != nil {
					g.watch.Stop()
					g.done(m.BytesIn, m.BytesOut, errorOf(m))
				}
			case msgResult:
				return s.result(ctx, m, waited, &exitErr, whyKilled)
			default:
				s.c.log.Warn().Str("type", m.Type).Msg("ignoring an unexpected frame from the session process")
			}
		case err := <-readErr:
			if err != io.EOF {
				s.c.log.Debug().Err(err).Msg("reading the session pipe")
			}
			readErr = nil
			if childExited {
				return nil, s.failure(ctx, exitErr, whyKilled())
			}
		case <-exited:
			childExited = true
			exited = nil
			if readErr == nil {
				return nil, s.failure(ctx, exitErr, whyKilled())
			}
			// Read what the child sent before it exited: the pipe ends with EOF.
		case <-ctxDone:
			ctxDone = nil
			if ctx.Err() == context.Canceled {
				s.out.send(&message{Type: msgCancel})
			}
			cutoff = time.After(Margin)
		case <-cutoff:
			kill(fmt.Sprintf("still running %s after the snapshot was cut off (%v)", Margin, context.Cause(ctx)))
			cutoff = nil
		case <-killed:
			killed = nil
		}
	}
}

// result returns the child's answer. A library that panics in its own
// goroutine may first wake the connector with an error (a closed
// connection) that the child reports while the panic is still being
// printed; so the parent lets the child exit (up to Margin) and, if it
// died of a panic, reports that instead of the symptom. A snapshot that
// arrived whole is kept either way.
func (s *session) result(ctx context.Context, m *message, waited <-chan struct{}, exitErr *error, whyKilled func() string) (*snapshots.Snapshot, error) {
	dev := s.c.dev
	exitedInTime := false
	if m.Err != "" {
		// A failed child waits for the pipe to close: give a panic that
		// may have caused the failure crashGrace to end the process.
		g := time.NewTimer(crashGrace)
		select {
		case <-waited:
			exitedInTime = true
		case <-g.C:
		}
		g.Stop()
	}
	s.toChld.Close() // the session is over: the child exits
	t := time.NewTimer(Margin)
	defer t.Stop()
	select {
	case <-waited:
		exitedInTime = true
	case <-t.C:
	}
	crashed := exitedInTime && *exitErr != nil && whyKilled() == ""
	if crashed {
		<-s.logEnd
	}
	if m.Err != "" {
		if crashed {
			if e := s.failure(ctx, *exitErr, ""); s.tail.died() {
				return nil, e
			}
		}
		return nil, errorOf(m) // the connector's error names the device already
	}
	if crashed {
		s.c.log.Warn().Err(*exitErr).Msg("the session process died after returning its snapshot")
	}
	if m.Snapshot == nil {
		return nil, fmt.Errorf("device %s: the session process returned no snapshot", dev.Name)
	}
	snap := m.Snapshot
	// The parent's gate saw every request: its cost is the authoritative
	// one.
	// The child's prediction of the next snapshot (Cost.Next) is kept.
	d, next := snap.Cost.Duration, snap.Cost.Next
	snap.Cost = s.c.gate.Cost()
	snap.Cost.Duration, snap.Cost.Next = d, next
	return snap, nil
}

// failure explains a child that exited without a result.
func (s *session) failure(ctx context.Context, exitErr error, killWhy string) error {
	<-s.logEnd // the last words are in the log pipe
	dev := s.c.dev
	e := &SessionError{Device: dev.Name, Protocol: dev.Protocol}
	switch {
	case killWhy != "" && ctx.Err() != nil:
		return fmt.Errorf("device %s: %s session %s: %w", dev.Name, protocolName(dev.Protocol), killWhy, ctx.Err())
	case killWhy != "":
		e.What, e.Reason, e.err = "killed", killWhy, ErrKilled
		e.Hint = "the device stopped answering and the protocol library did not honour its deadline"
	default:
		e.What, e.err = "crashed", ErrCrashed
		e.Reason, e.Hint = s.tail.lastWords(exitErr)
	}
	return e
}

// classOf names an error's class for the other side of the pipe.
func classOfErr(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return classCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return classDeadline
	}
	var a interface{ DeviceAnswered() bool }
	if errors.As(err, &a) && a.DeviceAnswered() {
		return classAnswered
	}
	return classOther
}

// remoteError is an error that crossed the pipe; it keeps its class.
type remoteError struct {
	msg    string
	class  string // classCanceled, classDeadline or classOther
	stable string // the child's ErrorClass of it, if any
}

func (e *remoteError) Error() string { return e.msg }

// DeviceAnswered reports whether the child's error was the device's own
// answer refusing one request (connectors.Answered), which the parent's
// limiter must not count towards the breaker.
func (e *remoteError) DeviceAnswered() bool { return e.class == classAnswered }

// ErrorClass returns the stable class the child computed ("" if none), so
// that alert fingerprints stay what they are in-process.
func (e *remoteError) ErrorClass() string { return e.stable }

func (e *remoteError) Is(target error) bool {
	switch e.class {
	case classCanceled:
		return target == context.Canceled
	case classDeadline:
		return target == context.DeadlineExceeded
	}
	return false
}

func errorOf(m *message) error {
	if m.Err == "" {
		return nil
	}
	return &remoteError{msg: m.Err, class: m.ErrClass, stable: m.Class}
}

// forwardLogs copies the child's log lines to the parent's logger.
func (s *session) forwardLogs() {
	defer close(s.logEnd)
	sc := bufio.NewScanner(s.logs)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 && line[0] == '{' {
			var f map[string]any
			if json.Unmarshal(line, &f) == nil {
				s.forward(f)
				continue
			}
		}
		s.tail.add(string(line))
		s.c.log.Debug().Str("line", string(line)).Msg("session process output")
	}
	// Drain whatever is left (an over-long line) so the child never blocks.
	io.Copy(io.Discard, s.logs)
}

func (s *session) forward(f map[string]any) {
	lvl, err := zerolog.ParseLevel(fmt.Sprint(f[zerolog.LevelFieldName]))
	if err != nil || lvl == zerolog.NoLevel {
		lvl = zerolog.InfoLevel
	}
	msg, _ := f[zerolog.MessageFieldName].(string)
	for _, k := range []string{zerolog.LevelFieldName, zerolog.MessageFieldName, zerolog.TimestampFieldName, "device", "protocol"} {
		delete(f, k)
	}
	f["session_pid"] = s.cmd.Process.Pid
	s.c.log.WithLevel(lvl).Fields(f).Msg(msg)
}

// tail keeps the last lines a child wrote that were not log records.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
	first string // the first "panic:" or "fatal error:" line seen
}

func (t *tail) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first == "" && (strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ")) {
		t.first = l
	}
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// died reports whether the child printed a panic or a fatal error.
func (t *tail) died() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first != ""
}

// lastWords returns why the child died and what that most likely means.
func (t *tail) lastWords(exitErr error) (reason, hint string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case strings.HasPrefix(t.first, "panic: "):
		r := strings.TrimSuffix(t.first, " [recovered]")
		if len(r) > 300 {
			r = r[:300] + "…"
		}
		return r, "a reply the protocol library could not decode"
	case strings.Contains(t.first, "out of memory"):
		return t.first, "the protocol library ran out of memory, most likely on an absurd length in a reply"
	case t.first != "":
		return t.first, ""
	}
	why := "exited without a snapshot"
	if exitErr != nil {
		why += ": " + exitErr.Error()
	}
	var b bytes.Buffer
	for _, l := range t.lines[max(0, len(t.lines)-3):] {
		b.WriteString("; ")
		b.WriteString(l)
	}
	return why + b.String(), ""
}
