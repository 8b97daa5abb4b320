//go:build race

package store_test

// raceEnabled is true when the race detector is on: the slowest measurement
// tests skip then, since they measure sizes, not concurrency.
const raceEnabled = true
