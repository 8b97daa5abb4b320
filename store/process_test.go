package store_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

const (
	childEnv     = "PLCWATCH_STORE_TEST_CHILD" // store path for TestChildAppender
	childNameEnv = "PLCWATCH_STORE_TEST_CHILD_NAME"
	perProcess   = 40
)

// TestChildAppender is run by TestSeveralProcesses in child processes; on
// its own it does nothing.
func TestChildAppender(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("runs only as a child of TestSeveralProcesses")
	}
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	appendMany(t, s, os.Getenv(childNameEnv))
}

func appendMany(t *testing.T, s store.Store, name string) {
	g := storetest.NewGenerator("snap", 20, storetest.T0)
	g.Label = name
	for i := 0; i < perProcess; i++ {
		at := storetest.T0.Add(time.Duration(i) * time.Second)
		if _, err := s.Append(context.Background(), "shared", store.TypeAlert, at, map[string]any{"by": name, "i": i}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), name, store.TypeAlertSeen, at, map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := s.PutSnapshot(context.Background(), g.Next(1), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSeveralProcesses runs two child processes and this one appending to
// the same store file at once (the daemon and CLI commands), starting them
// together, and checks no append was lost and no chain forked.
func TestSeveralProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "plcwatch.db")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	var children []child
	for i := 0; i < 2; i++ {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChildAppender$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path, childNameEnv+"=proc-"+strconv.Itoa(i))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)})
	}
	s := open(t, path)
	for i, c := range children {
		line, err := c.out.ReadString('\n')
		if err != nil || line != "ready\n" {
			t.Fatalf("child %d said %q, %v; want ready", i, line, err)
		}
	}
	var wg sync.WaitGroup
	for i, c := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(io.Discard, c.out)
			if err := c.cmd.Wait(); err != nil {
				t.Errorf("child %d: %v", i, err)
			}
		}()
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	appendMany(t, s, "proc-parent")
	wg.Wait()

	for _, dev := range []string{"shared", "proc-0", "proc-1", "proc-parent", "snap"} {
		recs, err := s.Records(t.Context(), dev)
		if err != nil {
			t.Fatal(err)
		}
		want := perProcess
		switch dev {
		case "shared":
			want = 3 * perProcess
		case "snap":
			want = 3 * perProcess / 10
		}
		if len(recs) != want {
			t.Errorf("%s has %d records, want %d", dev, len(recs), want)
		}
		for i, r := range recs {
			if r.Seq != int64(i+1) || (i > 0 && r.Prev != recs[i-1].Digest) {
				t.Fatalf("%s record %d: seq %d prev %s: chain forked or has a gap", dev, i, r.Seq, r.Prev)
			}
		}
	}
	fs, err := s.Verify(t.Context(), nil, nil)
	if err != nil || len(fs) != 0 {
		t.Fatalf("Verify after several processes wrote = %+v, %v", fs, err)
	}
}
