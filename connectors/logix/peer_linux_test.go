//go:build linux

package logix_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/danomagnum/gologix"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/snapshots"
)

// netnsEnv is set in the test binary re-executed inside a private network
// namespace.
const netnsEnv = "PLCWATCH_TEST_IN_NETNS"

// inPrivateNetwork runs the calling test again, alone, in a new network
// namespace where only a loopback interface exists, and reports its
// result; it returns true in that child, where the test body runs. It
// needs root: it skips without, except under CI=true, where it fails.
func inPrivateNetwork(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		if err := loopbackUp(); err != nil {
			t.Fatalf("bringing lo up in the private network namespace: %v", err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (a private network namespace) and CI=true is set")
		}
		t.Skip("needs root for a private network namespace (runs under CI=true)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run=^" + t.Name() + "$", "-test.count=1", "-test.v"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("in a private network namespace:\n%s", out.String())
	if err != nil {
		t.Fatalf("the test failed in its private network namespace: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+t.Name()) {
		t.Fatal("the test did not run in its private network namespace")
	}
	return false
}

// loopbackUp sets IFF_UP on lo (SIOCGIFFLAGS, SIOCSIFFLAGS): a new network
// namespace starts with lo down.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	for _, req := range []uintptr{syscall.SIOCGIFFLAGS, syscall.SIOCSIFFLAGS} {
		if req == syscall.SIOCSIFFLAGS {
			ifr.flags |= syscall.IFF_UP
		}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&ifr))); e != 0 {
			return e
		}
	}
	return nil
}

// readyHandler discards gologix's log records and closes ready when the
// server reports its TCP listener open.
type readyHandler struct {
	ready chan struct{}
	once  *sync.Once
}

func (h readyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h readyHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "Listening on TCP") {
		h.once.Do(func() { close(h.ready) })
	}
	return nil
}
func (h readyHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h readyHandler) WithGroup(string) slog.Handler      { return h }

// plcwatch against a Logix peer it did not write: gologix v0.41.0-beta's
// server. It serves identity, single tag reads (atomic and STRING),
// Multiple Service Packets of reads and a tag list, but not the
// controller-properties object, templates or the Symbol object's array
// dimensions (it answers every listing with names and types only), and it
// closes the connection after a read of a missing tag. plcwatch must read what it
// serves, mark the rest, and neither crash nor lose the snapshot.
//
// gologix's Serve binds 0.0.0.0:44818 and UDP 2222 with no option, and
// its connection handler is unexported: the test runs in a private
// network namespace where those addresses reach nothing but loopback.
func TestGologixPeer(t *testing.T) {
	if !inPrivateNetwork(t) {
		return
	}
	ready := make(chan struct{})
	var once sync.Once
	provider := &gologix.MapTagProvider{}
	for name, v := range map[string]any{
		"TankHighLimit":  float32(92.5),
		"PumpStartDelay": int32(3000),
		"RecipeName":     "Batch \xb0A",
		"AuditValue":     int64(6148914691236517205),
	} {
		if err := provider.TagWrite(name, v); err != nil {
			t.Fatal(err)
		}
	}
	router := gologix.NewRouter()
	router.Handle([]byte{0x01, 0x00}, provider)
	srv := gologix.NewServer(router)
	srv.Logger = slog.New(readyHandler{ready: ready, once: &once})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	select {
	case <-ready:
	case err := <-serveErr:
		t.Fatalf("gologix server: %v", err)
	}
	serial, _ := srv.Attributes[6].(uint32)

	y := `devices:
  - name: peer
    protocol: logix
    endpoint: 127.0.0.1:44818
    logix:
      slot: 0
      audit_value_tag: AuditValue
      setpoints:
        - {tag: TankHighLimit, type: REAL}
        - {tag: NoSuchTag}
        - {tag: PumpStartDelay}
        - {tag: RecipeName}
      timeout: 2s
`
	cfg, err := config.Parse("peer.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := open(t, cfg.Devices[0])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var snaps []*snapshots.Snapshot
	for i := 0; i < 2; i++ {
		var prev *snapshots.Snapshot
		if i > 0 {
			prev = snaps[0]
		}
		s, err := c.Snapshot(ctx, prev)
		if err != nil {
			t.Fatalf("snapshot %d against gologix's server failed as a whole: %v", i, err)
		}
		if err := s.Finalize(); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, s)
	}
	a, b := snaps[0], snaps[1]
	for _, s := range snaps {
		if s.Status.Complete {
			t.Error("complete, although one setpoint is missing")
		}
	}
	want := map[string]snapshots.Value{
		"identity/vendor":          snapshots.String(vendorOf(0x1776)),
		"identity/product_name":    snapshots.String("Gologix"),
		"identity/serial":          snapshots.String(fmt.Sprintf("0x%08X", serial)),
		"firmware/controller":      snapshots.String("18.20"),
		"setpoints/TankHighLimit":  snapshots.Float32(92.5, ""),
		"setpoints/PumpStartDelay": snapshots.Int(3000, ""),
		"setpoints/RecipeName":     snapshots.String("Batch $B0A"),
		"indicators/audit_value":   snapshots.Int(6148914691236517205, ""),
		// gologix lists its tags (lower-cased) without array dimensions.
		"tags/tankhighlimit":  snapshots.String("REAL"),
		"tags/pumpstartdelay": snapshots.String("DINT"),
		// gologix types its strings 0xFF (its own code), which the
		// listing reports as is.
		"tags/recipename": snapshots.String("type 0x00FF"),
		"tags/auditvalue": snapshots.String("LINT"),
	}
	for p, v := range want {
		it := b.Item(p)
		if it == nil || it.Provenance.Source != snapshots.SourceRead || it.Value != v {
			t.Errorf("%s: %+v, want %v read", p, it, v)
		}
	}
	if it := b.Item("setpoints/NoSuchTag"); it == nil || it.Provenance.Source != snapshots.SourceNotRead || it.Provenance.Reason == "" {
		t.Errorf("setpoints/NoSuchTag: %+v, want not read with a reason", it)
	}
	for _, p := range []string{"indicators/controller_properties/attr3", "indicators/controller_properties/attr10"} {
		if it := b.Item(p); it == nil || it.Provenance.Source == snapshots.SourceRead || it.Provenance.Reason == "" {
			t.Errorf("%s: %+v, want marked not observable or not read, with a reason", p, it)
		}
	}
	for _, it := range a.Items {
		if o := b.Item(it.Path); o == nil || (it.Provenance.Source == snapshots.SourceRead && o.Provenance.Source == snapshots.SourceRead && o.Hash != it.Hash) {
			t.Errorf("%s: unchanged peer, but %+v became %+v", it.Path, it, o)
		}
	}
	// Nothing was written: the peer's values are the ones it started with.
	if v, err := provider.TagRead("TankHighLimit", 1); err != nil || v != float32(92.5) {
		t.Errorf("TankHighLimit on the peer is %v, %v", v, err)
	}
	select {
	case err := <-serveErr:
		t.Errorf("gologix server stopped: %v", err)
	default:
	}
	t.Logf("gologix peer: %d items, %d requests; reasons: %q", len(b.Items), b.Cost.Requests, b.Status.Reasons)
}

func vendorOf(id uint16) string {
	return fmt.Sprintf("%s (%d)", gologix.VendorId(id).Name(), id)
}
