// Package plcwatch holds what the whole repository ships inside the binary:
// the commented example configuration, so that `plcwatch demo` and a new
// user's first config work without the source tree.
package plcwatch

import _ "embed"

// ExampleConfig is plcwatch.example.yaml as it was at build time: a working,
// commented configuration for the demo's three simulated controllers.
//
//go:embed plcwatch.example.yaml
var ExampleConfig []byte
