package main

import (
	"strings"
	"testing"
)

func TestOPCUAMarkdown(t *testing.T) {
	large := []opcuaFigures{{Variables: 10000, Limit: 1000,
		Full:      countFigures{Requests: 56},
		Unchanged: countFigures{Requests: 36, ByKind: map[string]int{"Read": 13, "Browse": 13}}}}
	for _, tc := range []struct {
		name  string
		f     []opcuaFigures
		plans []planFigures
		want  []string
	}{
		{name: "not measured: no section", want: nil},
		{name: "target met", f: large, want: []string{"| 10000 | 1000 | 56 | 36 | 0.64 | 40 | yes | Browse 13, Read 13 |"}},
		{name: "target missed", f: []opcuaFigures{{Variables: 10000, Limit: 1000, Full: countFigures{Requests: 60}, Unchanged: countFigures{Requests: 41}}},
			want: []string{"| 10000 | 1000 | 60 | 41 | 0.68 | 40 | " + yes(false) + " |"}},
		{name: "plan equal", f: large, plans: []planFigures{{Protocol: "s7", Scenario: "demo", After: "first", Planned: 77, PlannedOut: 2754, Counted: countFigures{Requests: 77, BytesIn: 2754}}},
			want: []string{"| s7 | demo | first snapshot | 77 | 77 | 2754 | 2754 | yes |"}},
		{name: "plan bytes off", f: large, plans: []planFigures{{Protocol: "opcua", Scenario: "demo", After: "second", Planned: 21, PlannedOut: 7000, Counted: countFigures{Requests: 21, BytesIn: 7221}}},
			want: []string{"| opcua | demo | second snapshot | 21 | 21 | 7000 | 7221 | " + yes(false) + " |"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := opcuaMarkdown(tc.f, tc.plans)
			if tc.want == nil && md != "" {
				t.Errorf("section written without figures:\n%s", md)
			}
			for _, w := range tc.want {
				if !strings.Contains(md, w) {
					t.Errorf("section lacks %q:\n%s", w, md)
				}
			}
		})
	}
}
