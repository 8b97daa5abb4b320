package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	s7sim "github.com/plcwatch/plcwatch/simulators/s7"
	"github.com/plcwatch/plcwatch/store"
)

// fleetFigures is `plcwatch check --all` on simulated S7 controllers,
// against the floor the per-device rate and the device cap impose.
type fleetFigures struct {
	Devices, Cap int
	RPS          float64
	Requests     int           // TPKT frames all devices received
	Floor        time.Duration // see fleetFloor
	Run          run           // the run of median wall time (peak RSS and CPU: the maxima)
	// Ratios are every run's wall time over the floor, in run order: the
	// spread.
	Ratios      []float64
	MaxInSecond int // most frames one device received in any one-second window, over all runs
	Refused     int // write and control requests the simulators refused
	// SnapshotBytes is what one device's snapshot sent and received (its
	// recorded cost); UploadBytes the sum of its user blocks' load sizes
	// (OB, FB, FC, DB, SDB), the least a full upload of every block sends.
	SnapshotBytes, UploadBytes int64
}

// fleetFloor is the least time the limits allow: a device's n requests are
// at least 1/rps apart, so it needs (n-1)/rps, and at most cap devices are
// read at once, so the fleet needs at least the sum of those over cap.
func fleetFloor(perDevice []int, rps float64, capDevices int) time.Duration {
	var sum, longest float64
	for _, n := range perDevice {
		t := float64(max(n-1, 0)) / rps
		sum += t
		longest = max(longest, t)
	}
	return time.Duration(max(longest, sum/float64(capDevices)) * float64(time.Second))
}

// benchFleet starts n S7 simulators, each behind a proxy that timestamps
// every TPKT frame the device receives, and runs check --all reps times,
// each on a fresh store (so each is a first check, reading everything).
func benchFleet(ctx context.Context, bin, dir string, n, capDevices int, rps float64, reps int) (fleetFigures, error) {
	f := fleetFigures{Devices: n, Cap: capDevices, RPS: rps}
	var sims []*s7sim.Server
	var proxies []*frameProxy
	defer func() {
		for _, p := range proxies {
			p.Close()
		}
		for _, s := range sims {
			s.Close()
		}
	}()
	var devs strings.Builder
	for i := range n {
		s, err := s7sim.Start(ctx, s7sim.Options{Listen: "127.0.0.1:0"})
		if err != nil {
			return f, err
		}
		sims = append(sims, s)
		p, err := newFrameProxy(s.Addr(), tpktFrame)
		if err != nil {
			return f, err
		}
		proxies = append(proxies, p)
		fmt.Fprintf(&devs, "  - {name: plc%03d, protocol: s7, endpoint: %s, s7: {rack: 0, slot: 2}}\n", i, p.Addr())
	}
	cfg := filepath.Join(dir, "plcwatch.yaml")
	y := fmt.Sprintf(`store: {path: plcwatch.db}
alerts: {console: {enabled: false}}
defaults: {requests_per_second: %g, max_in_flight: 1}
daemon: {max_concurrent_devices: %d}
devices:
%s`, rps, capDevices, devs.String())
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		return f, err
	}
	var runs []run
	for range max(reps, 1) {
		// A fresh store, alert log and lock folder: all but the config.
		ents, err := os.ReadDir(dir)
		if err != nil {
			return f, err
		}
		for _, e := range ents {
			if e.Name() != "plcwatch.yaml" {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
		for _, p := range proxies {
			p.Reset()
		}
		// The first check stores a snapshot per device and says it has
		// no baseline yet: exit 1.
		r, err := measure(ctx, io.Discard, 1, bin, "--config", cfg, "--log-level", "error", "check", "--all")
		if err != nil {
			return f, err
		}
		var per []int
		f.Requests = 0
		for _, p := range proxies {
			ts := p.Frames()
			per = append(per, len(ts))
			f.Requests += len(ts)
			f.MaxInSecond = max(f.MaxInSecond, maxInWindow(ts, time.Second))
		}
		f.Floor = fleetFloor(per, rps, capDevices)
		f.Ratios = append(f.Ratios, ratio(r.Wall, f.Floor))
		runs = append(runs, r)
	}
	for _, s := range sims {
		f.Refused += s.Refused()
	}
	f.Run = medianRun(runs)
	st, err := store.Open(filepath.Join(dir, "plcwatch.db"), store.ReadOnly())
	if err != nil {
		return f, err
	}
	defer st.Close()
	snap, err := st.Resolve(ctx, "plc000@latest")
	if err != nil {
		return f, err
	}
	f.SnapshotBytes = snap.Cost.BytesOut + snap.Cost.BytesIn
	for _, it := range snap.Items {
		switch it.Attrs["type"] {
		case "OB", "FB", "FC", "DB", "SDB":
			n, err := strconv.ParseInt(it.Attrs["load_size"], 10, 64)
			if err == nil {
				f.UploadBytes += n
			}
		}
	}
	return f, nil
}

// maxInWindow returns the most timestamps in any window of length w.
func maxInWindow(ts []time.Time, w time.Duration) int {
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// framing says how a protocol's request frames are delimited: a header of
// hdr bytes from which size returns the whole frame's length.
type framing struct {
	hdr  int
	size func(hdr []byte) int
}

// tpktFrame: S7comm over ISO-on-TCP, a TPKT header of 4 bytes whose length
// (bytes 2..3, big-endian) counts the whole frame (RFC 1006).
var tpktFrame = framing{hdr: 4, size: func(h []byte) int { return int(binary.BigEndian.Uint16(h[2:4])) }}

// encapFrame: EtherNet/IP, a 24-byte encapsulation header whose length
// (bytes 2..3, little-endian) counts the data after it.
var encapFrame = framing{hdr: 24, size: func(h []byte) int { return 24 + int(binary.LittleEndian.Uint16(h[2:4])) }}

// frameProxy forwards TCP connections to a simulator and records the time
// each complete request frame arrived from the client.
type frameProxy struct {
	ln     net.Listener
	target string
	fr     framing
	mu     sync.Mutex
	frames []time.Time
	wg     sync.WaitGroup
}

func newFrameProxy(target string, fr framing) (*frameProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &frameProxy{ln: ln, target: target, fr: fr}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *frameProxy) Addr() string { return p.ln.Addr().String() }

func (p *frameProxy) Close() {
	p.ln.Close()
	p.wg.Wait()
}

// Reset forgets the frames recorded so far.
func (p *frameProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames = nil
}

// Frames returns the arrival times, in order.
func (p *frameProxy) Frames() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.frames...)
}

func (p *frameProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *frameProxy) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		io.Copy(c, up)
		c.Close()
	}()
	hdr := make([]byte, p.fr.hdr)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		n := p.fr.size(hdr)
		if n < p.fr.hdr || n > 1<<24 {
			return
		}
		body := make([]byte, n-p.fr.hdr)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		p.mu.Lock()
		p.frames = append(p.frames, time.Now())
		p.mu.Unlock()
		if _, err := up.Write(append(hdr, body...)); err != nil {
			return
		}
	}
}
