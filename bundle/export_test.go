package bundle

import "crypto/ed25519"

// RawKeyForTest gives tests the raw key, to sign what Export would not.
func RawKeyForTest(k PrivateKey) ed25519.PrivateKey { return k.k }
