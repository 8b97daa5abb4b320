package store

import "github.com/plcwatch/plcwatch/snapshots"

// ItemBlobsDecoder returns a function that decodes item blobs as loading a
// snapshot does (every one of them, keyed by index), for the external tests
// and benchmarks that build their items with storetest, which imports this
// package. The blobs are keyed once, outside the function.
func ItemBlobsDecoder(blobs [][]byte) func() ([]snapshots.Item, error) {
	ks, idx, vb := itemsInput(blobs)
	return func() ([]snapshots.Item, error) { return decodeItems(ks, idx, vb) }
}

// CanonicalItem returns the canonical encoding of an item, the bytes the
// store keeps as its blob.
func CanonicalItem(it *snapshots.Item) ([]byte, error) {
	return canonical(it)
}

// ReadInParallel makes ResolveDiff read the two sides on two connections
// from n blobs a side on (default 500) until the test ends.
func ReadInParallel(t interface{ Cleanup(func()) }, n int) {
	old := parallelReads
	parallelReads = n
	t.Cleanup(func() { parallelReads = old })
}

// ConnsInUse returns how many of the store's SQLite connections are taken
// out of its pool (a statement that was never closed keeps one).
func ConnsInUse(d *DB) int { return d.db.Stats().InUse }
