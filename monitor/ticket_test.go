package monitor

import (
	"strings"
	"testing"
)

// TestValidTicket checks the change ticket rule at its bounds: 1 to 64
// letters, digits or '_.:/#-', starting with a letter or digit.
func TestValidTicket(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{name: "ticket id", in: "CHG-1234", want: true},
		{name: "url-like", in: "jira:OT/42#3", want: true},
		{name: "64 characters", in: strings.Repeat("a", 64), want: true},
		{name: "65 characters", in: strings.Repeat("a", 65), want: false},
		{name: "empty", in: "", want: false},
		{name: "starts with a dash", in: "-1", want: false},
		{name: "space", in: "CHG 1", want: false},
		{name: "newline at the end", in: "CHG-1\n", want: false},
	} {
		if got := validTicket(tc.in); got != tc.want {
			t.Errorf("%s: validTicket(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}
