package storetest

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"

	"github.com/plcwatch/plcwatch/snapshots"
)

// Generator builds successive snapshots of one simulated device, changing a
// few items each time, for tests, benchmarks and size measurements. Its
// output is deterministic.
type Generator struct {
	// Device names the device; Label is copied into each snapshot.
	Device string
	Label  string
	// At is the TakenAt of the next snapshot; each one advances it by Step.
	At   time.Time
	Step time.Duration
	// salt enters every item's value (see NewDistinctGenerator).
	salt string

	items   []snapshots.Item
	version int
	cursor  int
}

// NewGenerator returns a generator of snapshots with n items, the first
// taken at start and the next ones every 10 minutes.
func NewGenerator(device string, n int, start time.Time) *Generator {
	g := &Generator{Device: device, At: start, Step: 10 * time.Minute}
	g.items = make([]snapshots.Item, n)
	for i := range g.items {
		g.items[i] = item(i, 0, "")
	}
	return g
}

// NewDistinctGenerator is NewGenerator with the device name in every item's
// value, so that no two devices share an item (as real controllers do not);
// NewGenerator gives every device the same items, which a store keeps once.
func NewDistinctGenerator(device string, n int, start time.Time) *Generator {
	g := NewGenerator(device, n, start)
	g.salt = device
	for i := range g.items {
		g.items[i] = item(i, 0, g.salt)
	}
	return g
}

// Next returns the next finalized snapshot, after giving `changes` items
// (taken round-robin) a new value.
func (g *Generator) Next(changes int) *snapshots.Snapshot {
	g.version++
	for c := 0; c < changes && len(g.items) > 0; c++ {
		i := g.cursor % len(g.items)
		g.items[i] = item(i, g.version, g.salt)
		g.cursor++
	}
	s := &snapshots.Snapshot{
		Device:   g.Device,
		Protocol: "s7",
		Endpoint: "127.0.0.1:102",
		Label:    g.Label,
		TakenAt:  g.At,
		Identity: snapshots.Identity{Vendor: "Siemens", Model: "CPU 1516-3 PN/DP", Serial: "S C-X4U421302016", Firmware: "V2.9.4", Name: g.Device},
		Status:   snapshots.Status{Complete: true},
		Cost: snapshots.Cost{Requests: int64(len(g.items)/20 + 3), BytesOut: 4096, BytesIn: int64(len(g.items)) * 64, Duration: 1500 * time.Millisecond,
			ByKind: []snapshots.RequestCount{{Kind: "szl", Object: "SZL 0x0011", Count: 1, BytesOut: 33, BytesIn: 180}}},
		Items: append([]snapshots.Item(nil), g.items...),
	}
	g.At = g.At.Add(g.Step)
	if err := s.Finalize(); err != nil {
		panic(fmt.Sprintf("storetest: generated snapshot does not finalize: %v", err))
	}
	return s
}

// item returns item i at a version: a mix of logic blocks, setpoints and
// informational values shaped like what connectors read. A salt enters the
// value of every item.
func item(i, version int, salt string) snapshots.Item {
	key := strconv.Itoa(i) + "/" + strconv.Itoa(version)
	if salt != "" {
		key = salt + "/" + key
	}
	sum := sha256.Sum256([]byte(key))
	it := baseItem(i, version, sum)
	if salt != "" {
		it.Attrs["controller"] = salt
	}
	return it
}

func baseItem(i, version int, sum [sha256.Size]byte) snapshots.Item {
	switch i % 4 {
	case 0, 1:
		return snapshots.Item{
			Path:  fmt.Sprintf("blocks/DB%05d", i),
			Kind:  snapshots.KindLogic,
			Value: snapshots.Bytes(sum[:16]),
			Attrs: map[string]string{
				"language":           "SCL",
				"size":               strconv.Itoa(200 + i%700),
				"meta.code_time":     time.Date(2024, 3, 1, 8, 0, version, 0, time.UTC).Format(time.RFC3339),
				snapshots.AttrRole:   "data",
				"checksum_algorithm": "crc32",
			},
			Provenance: snapshots.Provenance{Source: snapshots.SourceRead},
		}
	case 2:
		return snapshots.Item{
			Path:       fmt.Sprintf("setpoints/Line%d.Tank%03d.HighLimit", i%7, i),
			Kind:       snapshots.KindSetpoint,
			Value:      snapshots.Float(float64(i)+float64(version)/10, "degC"),
			Attrs:      map[string]string{snapshots.AttrDataType: "REAL", "access": "read_write"},
			Deadband:   0.5,
			Provenance: snapshots.Provenance{Source: snapshots.SourceRead},
		}
	}
	return snapshots.Item{
		Path:       fmt.Sprintf("info/Diag%05d.Counter", i),
		Kind:       snapshots.KindInfo,
		Value:      snapshots.None(),
		Volatile:   true,
		Attrs:      map[string]string{snapshots.AttrDataType: "DINT", "revision": strconv.Itoa(version)},
		Provenance: snapshots.Provenance{Source: snapshots.SourceRead},
	}
}
