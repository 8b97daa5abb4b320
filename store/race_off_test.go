//go:build !race

package store_test

// raceEnabled is true when the race detector is on.
const raceEnabled = false
