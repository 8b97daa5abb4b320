package app

import (
	"strings"
	"testing"
)

// TestValidLabel checks the snapshot label rule at its bounds and the
// reserved reference words.
func TestValidLabel(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{name: "label", in: "pre-outage_2026.1", want: true},
		{name: "32 characters", in: strings.Repeat("l", 32), want: true},
		{name: "33 characters", in: strings.Repeat("l", 33), want: false},
		{name: "empty", in: "", want: false},
		{name: "starts with a dash", in: "-x", want: false},
		{name: "reserved latest", in: "latest", want: false},
		{name: "reserved baseline", in: "baseline", want: false},
	} {
		if got := validLabel(tc.in); got != tc.want {
			t.Errorf("%s: validLabel(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}
