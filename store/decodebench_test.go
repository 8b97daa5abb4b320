package store_test

import (
	"fmt"
	"testing"

	"github.com/plcwatch/plcwatch/store"
	"github.com/plcwatch/plcwatch/store/storetest"
)

// generatedBlobs returns the stored blobs of the items of a generated
// snapshot of n items (storetest's mix of blocks, setpoints and counters).
func generatedBlobs(tb testing.TB, n int) [][]byte {
	tb.Helper()
	s := storetest.NewGenerator("plc", n, storetest.T0).Next(0)
	out := make([][]byte, len(s.Items))
	for i := range s.Items {
		b, err := store.CanonicalItem(&s.Items[i])
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// BenchmarkDecodeItems decodes n stored item blobs as loading a snapshot
// does: 200 is what a diff of two 10,000-item snapshots with 1% changed
// decodes, 10,000 what show decodes of such a snapshot. The per-item time
// is reported as ns/item.
func BenchmarkDecodeItems(b *testing.B) {
	for _, n := range []int{200, 10000} {
		blobs := generatedBlobs(b, n)
		var size int64
		for _, bl := range blobs {
			size += int64(len(bl))
		}
		decode := store.ItemBlobsDecoder(blobs)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				if _, err := decode(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
}
