package config

import (
	"strings"
	"testing"
)

// TestValidName checks the name rule at its bounds: 1 to 63 letters,
// digits, '.', '_' or '-', starting with a letter or digit.
func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{name: "one letter", in: "a", want: true},
		{name: "punctuation inside", in: "plc-1_a.b", want: true},
		{name: "63 characters", in: strings.Repeat("a", 63), want: true},
		{name: "64 characters", in: strings.Repeat("a", 64), want: false},
		{name: "empty", in: "", want: false},
		{name: "starts with a dot", in: ".plc", want: false},
		{name: "space", in: "plc 1", want: false},
		{name: "non-ASCII letter", in: "plcé", want: false},
		{name: "newline at the end", in: "plc\n", want: false},
	} {
		if got := validName(tc.in); got != tc.want {
			t.Errorf("%s: validName(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}
