package store

import "github.com/plcwatch/plcwatch/snapshots"

// DecodeItemBlobs decodes item blobs as loading a snapshot does (every one
// of them, keyed by index), for the external tests and benchmarks that
// build their items with storetest, which imports this package.
func DecodeItemBlobs(blobs [][]byte) ([]snapshots.Item, error) {
	return decodeItems(itemsInput(blobs))
}

// CanonicalItem returns the canonical encoding of an item, the bytes the
// store keeps as its blob.
func CanonicalItem(it *snapshots.Item) ([]byte, error) {
	return canonical(it)
}
