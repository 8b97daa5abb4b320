package isolate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/classify"
	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/limits"
	"github.com/plcwatch/plcwatch/snapshots"
)

// The test binary is its own session process: the parent starts
// `<test binary> __session`, and TestMain serves it before any test runs.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Command {
		os.Exit(ServeChild(func(err error) string { return "class of " + err.Error() }))
	}
	os.Exit(m.Run())
}

const (
	kindRead  = "fake.Read"
	kindWrite = "fake.Write"
)

// fake is a connector whose behaviour its endpoint chooses. It stands for a
// protocol library gone wrong in each of the ways isolation must contain.
type fake struct {
	dev  *config.Device
	gate *connectors.Gate
	log  zerolog.Logger
}

func init() {
	connectors.Register(connectors.Factory{
		Protocol:  "fake",
		Allowlist: []string{kindRead},
		New: func(dev *config.Device, env connectors.Env) (connectors.Connector, error) {
			return &fake{dev: dev, gate: env.Gate, log: env.Log}, nil
		},
	})
}

func (f *fake) Plan(*snapshots.Snapshot) (*connectors.Plan, error) {
	return &connectors.Plan{Device: f.dev.Name}, nil
}

func (f *fake) Close() error { return nil }

func (f *fake) Snapshot(ctx context.Context, prev *snapshots.Snapshot) (*snapshots.Snapshot, error) {
	s := &snapshots.Snapshot{Device: f.dev.Name, Protocol: "fake", Status: snapshots.Status{Complete: true}}
	add := func(path, v string) {
		s.Items = append(s.Items, snapshots.Item{Path: path, Kind: snapshots.KindInfo, Value: snapshots.String(v)})
	}
	add("pid", strconv.Itoa(os.Getpid()))
	read := func(n int) error {
		return f.gate.Do(ctx, connectors.Request{Kind: kindRead, Object: "x", Size: 10}, func(ctx context.Context) (int, error) {
			_, ok := ctx.Deadline()
			add("deadline", strconv.FormatBool(ok))
			return n, nil
		})
	}
	switch strings.TrimPrefix(f.dev.Endpoint, "fake://") {
	case "ok":
		for i := 0; i < 3; i++ {
			if err := read(100); err != nil {
				return nil, err
			}
		}
		user, pw, err := f.dev.Credentials.Resolve()
		if err != nil {
			return nil, err
		}
		add("user", user)
		add("password_matches", strconv.FormatBool(pw.Reveal() == "s3cret-planted"))
		add("environ", strconv.Itoa(len(os.Environ())))
		f.log.Info().Str("probe", "hello").Msg("fake session says hello")
		fmt.Println("a library printing to stdout")
	case "write":
		err := f.gate.Do(ctx, connectors.Request{Kind: kindWrite}, func(context.Context) (int, error) {
			add("wrote", "yes")
			return 0, nil
		})
		add("write_refused", strconv.FormatBool(errors.Is(err, connectors.ErrNotAllowed)))
	case "panic":
		// As gopcua does: a panic in the library's own receive goroutine,
		// which nothing can recover.
		if err := read(1); err != nil {
			return nil, err
		}
		go func() {
			panic(fmt.Sprintf("reflect.MakeSlice: negative len (pid %d)", os.Getpid()))
		}()
		select {} // the caller waits for a reply that never comes
	case "stall":
		// A library that ignores its context inside a request.
		f.gate.Do(ctx, connectors.Request{Kind: kindRead, Object: "x"}, func(context.Context) (int, error) {
			select {}
		})
	case "alloc":
		// A library that believes an absurd length in a reply: it
		// allocates, and uses, far more than any real reply needs.
		var keep [][]byte
		for i := 0; i < 16; i++ {
			b := make([]byte, 64<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		add("survived", strconv.Itoa(len(keep)))
	case "slow":
		// A library that honours nothing at all, outside any request.
		select {}
	case "error":
		return nil, errors.New("the device said no")
	}
	return s, nil
}

// logBuf collects the parent's log output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openFake(t *testing.T, endpoint string, requestTimeout time.Duration) (connectors.Connector, *connectors.Gate, *logBuf) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	os.Setenv("PLCWATCH_TEST_PW", "s3cret-planted")
	dev := &config.Device{Name: "dev1", Protocol: "fake", Endpoint: endpoint,
		Credentials: config.Credentials{Username: "operator", PasswordEnv: "PLCWATCH_TEST_PW"}}
	cfg := &config.Config{Defaults: config.Limits{RequestsPerSecond: 1000, MaxInFlight: 1,
		RequestTimeout: config.Duration(requestTimeout), BreakerFailures: 5}, Devices: []*config.Device{dev}}
	lb := &logBuf{}
	log := zerolog.New(lb).Level(zerolog.DebugLevel)
	conn, gate, err := Opener(exe, Options{MemoryLimit: 256 << 20})(dev, nil, log, limits.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return conn, gate, lb
}

// sessionGoroutines returns the stacks of goroutines the session code
// started that are still alive.
func sessionGoroutines() string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "created by github.com/plcwatch/plcwatch/connectors/isolate.") && !strings.Contains(g, "runtime.goexit1") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

var pidRE = regexp.MustCompile(`pid (\d+)`)

// reaped reports whether the process is gone (not a zombie).
func reaped(t *testing.T, pid string) {
	t.Helper()
	if pid == "" {
		t.Fatal("no child pid seen")
	}
	if _, err := os.Stat("/proc/" + pid); err == nil {
		st, _ := os.ReadFile("/proc/" + pid + "/stat")
		t.Errorf("child %s still exists after Snapshot returned: %s", pid, st)
	}
}

func TestSession(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		timeout  time.Duration // request_timeout
		deadline time.Duration // snapshot deadline (0: none)
		wantErr  error
		wantMsg  []string
		items    map[string]string
		requests int64
		logs     []string
		class    string // the error's ErrorClass, for alert fingerprints
	}{
		{name: "healthy session returns its snapshot, cost counted by the parent's gate", endpoint: "fake://ok", timeout: time.Second,
			items:    map[string]string{"user": "operator", "password_matches": "true", "environ": "0", "deadline": "true"},
			requests: 3, logs: []string{`"message":"fake session says hello"`, `"device":"dev1"`, `"probe":"hello"`, "a library printing to stdout"}},
		{name: "a kind off the allowlist is refused in the child", endpoint: "fake://write", timeout: time.Second,
			items: map[string]string{"write_refused": "true"}},
		{name: "panic in a library goroutine costs the snapshot only", endpoint: "fake://panic", timeout: time.Second,
			wantErr: ErrCrashed, wantMsg: []string{"fake session for device dev1 crashed: panic: reflect.MakeSlice: negative len", "(a reply the protocol library could not decode)"},
			class: "protocol session crashed"},
		{name: "a runaway allocation ends the session at its memory limit", endpoint: "fake://alloc", timeout: time.Second,
			wantErr: ErrCrashed, wantMsg: []string{"fake session for device dev1 crashed: fatal error: ", "out of memory", "(the protocol library ran out of memory"}},
		{name: "a request that ignores its deadline is killed by the watchdog", endpoint: "fake://stall", timeout: 200 * time.Millisecond,
			wantErr: ErrKilled, wantMsg: []string{"did not end within request_timeout 200ms"}, class: "protocol session killed"},
		{name: "a session past the snapshot deadline is killed", endpoint: "fake://slow", deadline: 300 * time.Millisecond,
			wantErr: context.DeadlineExceeded, wantMsg: []string{"after the snapshot was cut off"}},
		{name: "a connector's error is returned as is", endpoint: "fake://error", timeout: time.Second,
			wantMsg: []string{"the device said no"}, class: "class of the device said no"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if raceEnabled && tc.endpoint == "fake://alloc" {
				t.Skip("the race detector's shadow memory does not fit a data-segment limit")
			}
			defer func() {
				// Snapshot joins every goroutine it started before it
				// returns: none may be left behind, whatever the child did.
				// A joined one may still be between its last statement
				// and its exit: let it run, without sleeping.
				left := sessionGoroutines()
				for i := 0; i < 1000 && left != ""; i++ {
					runtime.Gosched()
					left = sessionGoroutines()
				}
				if left != "" {
					t.Errorf("goroutines of the session left behind:\n%s", left)
				}
			}()
			conn, gate, lb := openFake(t, tc.endpoint, tc.timeout)
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			snap, err := conn.Snapshot(ctx, nil)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Snapshot error = %v, want %v", err, tc.wantErr)
			}
			for _, w := range tc.wantMsg {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Snapshot error = %v, want it to say %q", err, w)
				}
			}
			if tc.class != "" {
				var c interface{ ErrorClass() string }
				if !errors.As(err, &c) || c.ErrorClass() != tc.class {
					t.Errorf("error class of %v: want %q", err, tc.class)
				}
			}
			if len(tc.wantMsg) == 0 && err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			pid := ""
			if snap != nil {
				got := map[string]string{}
				for _, it := range snap.Items {
					got[it.Path] = it.Value.Raw
				}
				pid = got["pid"]
				for k, v := range tc.items {
					if got[k] != v {
						t.Errorf("item %s = %q, want %q", k, got[k], v)
					}
				}
				if got["wrote"] != "" {
					t.Error("a refused request was sent")
				}
				if snap.Cost.Requests != tc.requests || gate.Cost().Requests != tc.requests {
					t.Errorf("cost = %d requests (gate %d), want %d", snap.Cost.Requests, gate.Cost().Requests, tc.requests)
				}
			} else if m := pidRE.FindStringSubmatch(err.Error() + lb.String()); m != nil {
				pid = m[1]
			}
			if pid != "" || snap != nil {
				reaped(t, pid)
			}
			for _, w := range tc.logs {
				if !strings.Contains(lb.String(), w) {
					t.Errorf("parent log lacks %s:\n%s", w, lb.String())
				}
			}
			if strings.Contains(lb.String(), "s3cret-planted") {
				t.Error("the password reached the parent's log")
			}
		})
	}
}

// BenchmarkSnapshot measures what isolation costs per snapshot: starting
// the session process, the start frame, one round trip per request and
// reaping, against the same fake connector in-process.
func BenchmarkSnapshot(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	os.Setenv("PLCWATCH_TEST_PW", "s3cret-planted")
	dev := &config.Device{Name: "dev1", Protocol: "fake", Endpoint: "fake://ok",
		Credentials: config.Credentials{Username: "operator", PasswordEnv: "PLCWATCH_TEST_PW"}}
	cfg := &config.Config{Defaults: config.Limits{RequestsPerSecond: 1e6, MaxInFlight: 1, RequestTimeout: config.Duration(time.Second)}, Devices: []*config.Device{dev}}
	for _, bc := range []struct {
		name string
		open func(*config.Device, classify.Rules, zerolog.Logger, connectors.Limiter) (connectors.Connector, *connectors.Gate, error)
	}{{"in-process", connectors.Open}, {"isolated", Opener(exe, Options{})}} {
		b.Run(bc.name, func(b *testing.B) {
			conn, _, err := bc.open(dev, nil, zerolog.Nop(), limits.New(cfg))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := conn.Snapshot(context.Background(), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzFrame: the parent reads frames a crashed or confused child may have
// torn or filled with anything; reading never panics and never allocates
// more than the frame limit.
func FuzzFrame(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzFrame (two real frames, a torn one, an
	// absurd length, a zero length).
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newReader(bytes.NewReader(b))
		for i := 0; i < 16; i++ {
			if _, err := r.next(); err != nil {
				return
			}
		}
	})
}
