package bundle

import (
	"strings"
	"testing"
)

// TestValidSite checks the site name rule at its bounds.
func TestValidSite(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "site", in: "plant-1", ok: true},
		{name: "63 characters", in: strings.Repeat("s", 63), ok: true},
		{name: "64 characters", in: strings.Repeat("s", 64), ok: false},
		{name: "empty", in: "", ok: false},
		{name: "starts with a dot", in: ".site", ok: false},
		{name: "slash", in: "a/b", ok: false},
	} {
		if err := ValidSite(tc.in); (err == nil) != tc.ok {
			t.Errorf("%s: ValidSite(%q) = %v, want ok %v", tc.name, tc.in, err, tc.ok)
		}
	}
}
