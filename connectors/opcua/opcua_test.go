package opcua_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"github.com/plcwatch/plcwatch/config"
	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/connectors/connectortest"
	"github.com/plcwatch/plcwatch/connectors/opcua"
	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/limits"
	sim "github.com/plcwatch/plcwatch/simulators/opcua"
	"github.com/plcwatch/plcwatch/snapshots"
)

func device(t *testing.T, endpoint, section string) (*config.Device, *config.Config) {
	t.Helper()
	y := fmt.Sprintf(`classification:
  - path: "opcua/**/Programs/**"
    kind: logic
devices:
  - name: skid
    protocol: opcua
    endpoint: %s
    opcua:
%s
`, endpoint, section)
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Devices[0], cfg
}

func start(t *testing.T, opt sim.Options) *sim.Server {
	t.Helper()
	if opt.Listen == "" {
		opt.Listen = "127.0.0.1:0"
	}
	s, err := sim.Start(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) *connectortest.Harness {
		s := start(t, sim.Options{})
		dev, cfg := device(t, s.Endpoint(), "      timeout: 5s\n      browse: [{root: \"i=85\", max_depth: 8, max_nodes: 2000}]")
		return &connectortest.Harness{
			Device: dev, Rules: cfg.Classification, Sim: s, ReadKinds: sim.ReadKinds, WirePlan: true,
			ChangeSetpoint: func(t *testing.T) string {
				if err := s.SetValue("Plant/Tank1/HighLimit", 4.9); err != nil {
					t.Fatal(err)
				}
				return "opcua/Plant/Tank1/HighLimit"
			},
			ChangeLogic: func(t *testing.T) string {
				if err := s.SetProgram("Plant/Controller/Programs/TankControl", "changed := TRUE;", "2.0.4"); err != nil {
					t.Fatal(err)
				}
				return "opcua/Plant/Controller/Programs/TankControl/CodeHash"
			},
			ChurnLive: func(t *testing.T) { s.ChurnLive() },
			BreakNext: func(t *testing.T) func() {
				s.DropAfter(8)
				return s.Heal
			},
		}
	})
}

func snapshot(t *testing.T, dev *config.Device, cfg *config.Config) (*snapshots.Snapshot, error) {
	t.Helper()
	return snapshotWith(t, dev, cfg, nil)
}

// snapshotWith reads through lim, the request limiter (nil: none).
func snapshotWith(t *testing.T, dev *config.Device, cfg *config.Config, lim connectors.Limiter) (*snapshots.Snapshot, error) {
	t.Helper()
	c, _, err := connectors.Open(dev, cfg.Classification, zerolog.Nop(), lim)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Snapshot(ctx, nil)
	if err == nil {
		err = s.Finalize()
	}
	return s, err
}

// TestEveryRequestCountsItsBytes: plan shows a change-control board the
// bytes each request sends and receives: every kind counts both ways,
// GetEndpoints and CloseSession too, whose socket gopcua closes inside the
// call (the meter reads a duplicate of its descriptor).
func TestEveryRequestCountsItsBytes(t *testing.T) {
	s := start(t, sim.Options{})
	dev, cfg := device(t, s.Endpoint(), "      browse: [{root: \"i=85\"}]")
	snap, err := snapshot(t, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range snap.Cost.ByKind {
		if c.BytesOut == 0 || c.BytesIn == 0 {
			t.Errorf("%s %s: %d request(s), %d bytes out, %d in", c.Kind, c.Object, c.Count, c.BytesOut, c.BytesIn)
		}
	}
}

func TestSnapshotContent(t *testing.T) {
	s := start(t, sim.Options{})
	dev, cfg := device(t, s.Endpoint(), "      browse: [{root: \"i=85\"}]")
	snap, err := snapshot(t, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		kind     snapshots.Kind
		volatile bool
		unit     string
	}{
		{"opcua/Plant/Tank1/HighLimit", snapshots.KindSetpoint, false, "m"},
		{"opcua/Plant/Tank1/Level", snapshots.KindInfo, true, ""},
		{"opcua/Plant/Controller/Programs/Main/CodeHash", snapshots.KindLogic, false, ""},
		{"server/software_version", snapshots.KindFirmware, false, ""},
		{"security/server_certificate", snapshots.KindSecurity, false, ""},
		{"security/endpoints/None/None", snapshots.KindSecurity, false, ""},
	}
	for _, tc := range tests {
		it := snap.Item(tc.path)
		if it == nil {
			t.Errorf("no item %s", tc.path)
			continue
		}
		if it.Kind != tc.kind || it.Volatile != tc.volatile || it.Value.Unit != tc.unit {
			t.Errorf("%s: kind %s volatile %v unit %q; want %s %v %q", tc.path, it.Kind, it.Volatile, it.Value.Unit, tc.kind, tc.volatile, tc.unit)
		}
	}
	if snap.Identity.Vendor == "" || snap.Identity.Firmware == "" {
		t.Errorf("identity %+v", snap.Identity)
	}
	// gopcua's server advertises MaxNodesPerRead 32 (and enforces nothing):
	// requests follow what the server says.
	if lim := snap.Item("server/request_limits"); lim == nil || lim.Attrs["read_ops"] != "32" || lim.Kind != snapshots.KindInfo {
		t.Errorf("server/request_limits %+v: want read_ops 32, as gopcua's server advertises", lim)
	}
	for _, c := range snap.Cost.ByKind {
		if c.Kind == opcua.KindRead && c.Object == "variables" && c.Count < 3 {
			t.Errorf("%d variable reads: want requests of at most 32 operations", c.Count)
		}
	}
	if !snap.Status.Complete {
		t.Errorf("partial: %v", snap.Status.Reasons)
	}
	if s.Refused() != 0 {
		t.Errorf("%d refused requests", s.Refused())
	}
}

func TestBounds(t *testing.T) {
	s := start(t, sim.Options{})
	dev, cfg := device(t, s.Endpoint(), "      browse: [{root: \"i=85\", max_nodes: 5}]")
	snap, err := snapshot(t, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Status.Complete || !strings.Contains(strings.Join(snap.Status.Reasons, ";"), "max_nodes") {
		t.Errorf("node bound exceeded silently: %+v", snap.Status)
	}
}

// TestSecurity: Basic256Sha256 SignAndEncrypt with the server certificate
// pinned works; a wrong pin, or no pin at all, is refused.
func TestSecurity(t *testing.T) {
	s := start(t, sim.Options{Security: []string{"None/None", "Basic256Sha256/Sign", "Basic256Sha256/SignAndEncrypt"}})
	good := s.Thumbprint()
	wrong := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		section string
		wantErr error
	}{
		{"pinned", "      security_policy: Basic256Sha256\n      security_mode: SignAndEncrypt\n      trusted_thumbprints: [\"" + good + "\"]", nil},
		{"pinned, Sign", "      security_policy: Basic256Sha256\n      security_mode: Sign\n      trusted_thumbprints: [\"" + good + "\"]", nil},
		{"wrong pin", "      security_policy: Basic256Sha256\n      security_mode: SignAndEncrypt\n      trusted_thumbprints: [\"" + wrong + "\"]", opcua.ErrUntrustedCertificate},
		{"wrong pin on None too", "      trusted_thumbprints: [\"" + wrong + "\"]", opcua.ErrUntrustedCertificate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, cfg := device(t, s.Endpoint(), tc.section+"\n      browse: [{root: \"i=85\"}]")
			snap, err := snapshot(t, dev, cfg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !snap.Status.Complete || snap.Item("opcua/Plant/Tank1/HighLimit") == nil {
				t.Errorf("secure snapshot incomplete: %v", snap.Status)
			}
		})
	}
	if s.Refused() != 0 {
		t.Errorf("%d refused requests", s.Refused())
	}
}

// TestSecureNeedsTrust: a secure channel without a trust list or pin is a
// config error (no trust on first use).
func TestSecureNeedsTrust(t *testing.T) {
	y := "devices:\n  - name: skid\n    protocol: opcua\n    endpoint: opc.tcp://127.0.0.1:4840\n    opcua:\n      security_policy: Basic256Sha256\n      security_mode: SignAndEncrypt\n"
	_, err := config.Parse("t.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:7") || !strings.Contains(err.Error(), "trusted_thumbprints") {
		t.Errorf("config without trust for a secure channel: %v", err)
	}
}

// TestRequestFaults: requests sized to what the server takes, a request
// refused as a whole split down to single operations, and per-item
// statuses that cost only their item.
func TestRequestFaults(t *testing.T) {
	tests := []struct {
		name    string
		opt     sim.Options
		section string // extra opcua: settings
		// stallAtRead makes the server stop answering at the read of the
		// variables (a request of many operations), found by counting the
		// service requests of a first snapshot.
		stallAtRead bool
		arm         func(t *testing.T, s *sim.Server)
		partial     string // a reason the snapshot must give; "" for complete
		faults      bool   // whether the server refuses requests as a whole
		check       func(t *testing.T, snap *snapshots.Snapshot)
		// breaker reads through the real request limiter with this
		// breaker_failures (0: no limiter).
		breaker int
	}{
		{name: "MaxNodesPerRead enforced but not advertised", opt: sim.Options{MaxNodesPerRead: 10}, faults: true,
			check: func(t *testing.T, snap *snapshots.Snapshot) {
				lim := snap.Item("server/request_limits")
				if n, _ := strconv.Atoi(lim.Attrs["read_ops"]); n < 1 || n > 10 || !strings.Contains(lim.Attrs["lowered"], "BadTooManyOperations") {
					t.Errorf("request_limits %v: want read_ops lowered to at most 10 after BadTooManyOperations", lim.Attrs)
				}
			}},
		{name: "MaxNodesPerRead advertised", opt: sim.Options{MaxNodesPerRead: 10, MaxNodesPerBrowse: 3, AdvertiseLimits: true}, faults: false,
			check: func(t *testing.T, snap *snapshots.Snapshot) {
				lim := snap.Item("server/request_limits")
				if lim.Attrs["read_ops"] != "10" || lim.Attrs["browse_ops"] != "3" || lim.Attrs["advertised.MaxNodesPerRead"] != "10" {
					t.Errorf("request_limits %v: want the advertised 10 and 3", lim.Attrs)
				}
			}},
		{name: "one value too large to send", arm: func(t *testing.T, s *sim.Server) {
			if err := s.SetHuge("Plant/Tank1/Setpoint", true); err != nil {
				t.Fatal(err)
			}
		}, partial: "opcua/Plant/Tank1/Setpoint: BadResponseTooLarge", faults: true,
			check: func(t *testing.T, snap *snapshots.Snapshot) {
				wantNotRead(t, snap, "opcua/Plant/Tank1/Setpoint", "BadResponseTooLarge")
			}},
		{name: "a failed batch does not stop the batches after it", opt: sim.Options{MaxNodesPerRead: 10, AdvertiseLimits: true}, arm: func(t *testing.T, s *sim.Server) {
			if err := s.SetHuge("Plant/Dosing/ChlorineSetpoint", true); err != nil {
				t.Fatal(err)
			}
		}, partial: "opcua/Plant/Dosing/ChlorineSetpoint: BadResponseTooLarge", faults: true,
			check: func(t *testing.T, snap *snapshots.Snapshot) {
				wantNotRead(t, snap, "opcua/Plant/Dosing/ChlorineSetpoint", "BadResponseTooLarge")
				if lim := snap.Item("server/request_limits"); lim.Attrs["read_ops"] != "10" {
					t.Errorf("a value too large lowered the request size: %v", lim.Attrs)
				}
			}},
		{name: "one huge value does not open the breaker", breaker: 2, arm: func(t *testing.T, s *sim.Server) {
			if err := s.SetHuge("Plant/Tank1/Setpoint", true); err != nil {
				t.Fatal(err)
			}
		}, partial: "opcua/Plant/Tank1/Setpoint: BadResponseTooLarge", faults: true,
			check: func(t *testing.T, snap *snapshots.Snapshot) {
				wantNotRead(t, snap, "opcua/Plant/Tank1/Setpoint", "BadResponseTooLarge")
				if n := len(snap.Status.Reasons); n != 1 {
					t.Errorf("%d reasons, want only the huge value's: %q", n, snap.Status.Reasons)
				}
			}},
		{name: "Bad status on a setpoint", arm: func(t *testing.T, s *sim.Server) {
			if err := s.SetStatus("Plant/Tank1/HighLimit", ua.StatusBadWaitingForInitialData); err != nil {
				t.Fatal(err)
			}
		}, partial: "opcua/Plant/Tank1/HighLimit: BadWaitingForInitialData",
			check: func(t *testing.T, snap *snapshots.Snapshot) {
				wantNotRead(t, snap, "opcua/Plant/Tank1/HighLimit", "BadWaitingForInitialData")
			}},
		{name: "Bad status on a setpoint's EngineeringUnits", arm: func(t *testing.T, s *sim.Server) {
			if err := s.SetStatus("Plant/Tank1/HighLimit/EngineeringUnits", ua.StatusBadWaitingForInitialData); err != nil {
				t.Fatal(err)
			}
		}, partial: "opcua/Plant/Tank1/HighLimit: EngineeringUnits: BadWaitingForInitialData",
			check: func(t *testing.T, snap *snapshots.Snapshot) {
				// Recorded without its unit ("4.5", not "4.5 m"), the setpoint read as changed.
				wantNotRead(t, snap, "opcua/Plant/Tank1/HighLimit", "EngineeringUnits: BadWaitingForInitialData")
			}},
		{name: "Uncertain status on a setpoint", arm: func(t *testing.T, s *sim.Server) {
			if err := s.SetStatus("Plant/Tank1/LowLimit", ua.StatusUncertainLastUsableValue); err != nil {
				t.Fatal(err)
			}
		}, partial: "opcua/Plant/Tank1/LowLimit: UncertainLastUsableValue",
			check: func(t *testing.T, snap *snapshots.Snapshot) {
				wantNotRead(t, snap, "opcua/Plant/Tank1/LowLimit", "UncertainLastUsableValue")
			}},
		{name: "a server that stops answering is not asked again and again", section: "      timeout: 1s\n", stallAtRead: true, partial: "BadTimeout"},
		{name: "Bad status on a live value costs nothing", arm: func(t *testing.T, s *sim.Server) {
			if err := s.SetStatus("Plant/Tank1/Level", ua.StatusBadNoCommunication); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.opt)
			if tc.arm != nil {
				tc.arm(t, s)
			}
			dev, cfg := device(t, s.Endpoint(), tc.section+"      browse: [{root: \"i=85\"}]")
			reads := func(snap *snapshots.Snapshot) int {
				return snap.Cost.Count(opcua.KindRead)
			}
			normalReads := 0
			if tc.stallAtRead {
				before := s.Requests()
				first, err := snapshot(t, dev, cfg)
				if err != nil {
					t.Fatal(err)
				}
				normalReads = reads(first)
				after, n := s.Requests(), 0
				for _, k := range []string{"GetEndpoints", "CreateSession", "ActivateSession", "Read", "Browse", "BrowseNext", "CloseSession"} {
					n += after[k] - before[k]
				}
				s.StallAfter(n - 2) // the last two: the variables' Read, CloseSession
			}
			var lim connectors.Limiter
			if tc.breaker > 0 {
				c := *cfg
				c.Defaults.RequestsPerSecond, c.Defaults.MaxInFlight, c.Defaults.BreakerFailures = 10000, 1, tc.breaker
				lim = limits.New(&c)
			}
			snap, err := snapshotWith(t, dev, cfg, lim)
			if err != nil {
				t.Fatal(err)
			}
			reasons := strings.Join(snap.Status.Reasons, "; ")
			if tc.stallAtRead {
				// The read that timed out and one probe that found the
				// server silent; no halves of halves.
				if got := reads(snap); s.Stalled() == 0 || got > normalReads+1 {
					t.Errorf("%d reads (%d held by the server), want at most %d", got, s.Stalled(), normalReads+1)
				}
				s.Heal()
				if snap.Status.Complete || !strings.Contains(reasons, tc.partial) {
					t.Errorf("status %+v: want partial naming %q", snap.Status, tc.partial)
				}
				return
			}
			switch {
			case tc.partial == "" && !snap.Status.Complete:
				t.Errorf("partial: %s", reasons)
			case tc.partial != "" && (snap.Status.Complete || !strings.Contains(reasons, tc.partial)):
				t.Errorf("status %+v: want partial naming %q", snap.Status, tc.partial)
			}
			// Every other setpoint is read, whatever failed around it.
			for _, p := range []string{"opcua/Plant/Tank1/HighLimit", "opcua/Plant/Pump1/MaxSpeed", "opcua/Plant/Dosing/Recipe"} {
				it := snap.Item(p)
				if it == nil {
					t.Errorf("no item %s", p)
				} else if it.Provenance.Source != snapshots.SourceRead && !strings.Contains(tc.partial, p) {
					t.Errorf("%s: %s %q", p, it.Provenance.Source, it.Provenance.Reason)
				}
			}
			if (s.Faults() > 0) != tc.faults {
				t.Errorf("%d requests refused as a whole, want faults=%v", s.Faults(), tc.faults)
			}
			if s.Refused() != 0 {
				t.Errorf("%d refused requests", s.Refused())
			}
			if tc.check != nil {
				tc.check(t, snap)
			}
		})
	}
}

func wantNotRead(t *testing.T, snap *snapshots.Snapshot, path, reason string) {
	t.Helper()
	it := snap.Item(path)
	if it == nil {
		t.Fatalf("no item %s", path)
	}
	if it.Provenance.Source != snapshots.SourceNotRead || it.Provenance.Reason != reason || it.Value.Type != snapshots.TypeNone {
		t.Errorf("%s: %s %q value %+v; want not_read %q", path, it.Provenance.Source, it.Provenance.Reason, it.Value, reason)
	}
}

// TestRestartRaisesNothing: a simulator restarted with its state directory
// presents the same certificate and build info; nothing but information
// changes, whether each snapshot reads in full or carries from the one
// before (the restart then forces a full read).
func TestRestartRaisesNothing(t *testing.T) {
	dir := t.TempDir()
	var snaps []*snapshots.Snapshot
	for i := 0; i < 2; i++ {
		s := start(t, sim.Options{StateDir: dir})
		dev, cfg := device(t, s.Endpoint(), "      browse: [{root: \"i=85\"}]")
		snap, err := snapshot(t, dev, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !snap.Status.Complete {
			t.Fatalf("partial: %v", snap.Status.Reasons)
		}
		snaps = append(snaps, snap)
		s.Close()
	}
	rep := diffing.Compare(snaps[0], snaps[1], diffing.Options{IgnoreInfo: true})
	for _, c := range rep.Changes {
		t.Errorf("after a restart: %s %s (%s)", c.Type, c.Path, c.Kind)
	}
	// Carried: before the restart, across it, and after it.
	var chain []*snapshots.Snapshot
	var prev *snapshots.Snapshot
	for i := 0; i < 2; i++ {
		s := start(t, sim.Options{StateDir: dir})
		dev, cfg := device(t, s.Endpoint(), "      browse: [{root: \"i=85\"}]")
		for j := 0; j < 2; j++ {
			snap, _, _, _ := snapshotAfter(t, s, dev, cfg, prev)
			chain, prev = append(chain, snap), snap
		}
		s.Close()
	}
	for i := 1; i < len(chain); i++ {
		carried := 0
		for _, it := range chain[i].Items {
			if it.Provenance.Source == snapshots.SourceCarried {
				carried++
			}
		}
		if wantCarried := i != 2; (carried > 0) != wantCarried {
			t.Errorf("snapshot %d: %d items carried, want carried %v (the restart forces a full read)", i, carried, wantCarried)
		}
		for _, c := range diffing.Compare(chain[i-1], chain[i], diffing.Options{IgnoreInfo: true}).Changes {
			t.Errorf("carried chain, snapshot %d: %s %s (%s)", i, c.Type, c.Path, c.Kind)
		}
	}
	if st := snaps[1].Item("server/state"); st == nil || st.Attrs[snapshots.AttrValueName] != "Running" {
		t.Errorf("server/state %+v: want it named Running", st)
	}
	for _, tc := range []struct {
		name, path, raw string
		kind            snapshots.Kind
	}{
		{"ServerState", "server/state", "0", snapshots.KindInfo},
		{"BuildDate fixed", "server/build_date", "2026-01-15T00:00:00Z", snapshots.KindInfo},
		{"ProgramHash outside Programs compared as logic", "opcua/Plant/Controller/ProgramHash", "5e0c7a91d2b4", snapshots.KindLogic},
	} {
		it := snaps[1].Item(tc.path)
		if it == nil || it.Value.Raw != tc.raw || it.Kind != tc.kind || it.Volatile {
			t.Errorf("%s: %s = %+v, want %s %q", tc.name, tc.path, it, tc.kind, tc.raw)
		}
	}
}
