package s7

import (
	"strings"
	"testing"
)

// TestValidName checks the marker and setpoint name rule at its bounds: 1
// to 64 letters, digits, '.', '_' or '-'.
func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{name: "one letter", in: "a", want: true},
		{name: "leading punctuation allowed", in: "_tank.level-1", want: true},
		{name: "64 characters", in: strings.Repeat("a", 64), want: true},
		{name: "65 characters", in: strings.Repeat("a", 65), want: false},
		{name: "empty", in: "", want: false},
		{name: "space", in: "tank level", want: false},
		{name: "newline at the end", in: "tank\n", want: false},
	} {
		if got := validName(tc.in); got != tc.want {
			t.Errorf("%s: validName(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}
