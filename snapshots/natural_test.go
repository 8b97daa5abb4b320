package snapshots

import (
	"slices"
	"testing"
)

func TestNaturalLess(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "S7 data blocks", in: []string{"blocks/DB10", "blocks/DB2", "blocks/DB1"}, want: []string{"blocks/DB1", "blocks/DB2", "blocks/DB10"}},
		{name: "numbers inside names", in: []string{"setpoints/DB10.DBD12", "setpoints/DB10.DBD4", "setpoints/DB2.DBD100"}, want: []string{"setpoints/DB2.DBD100", "setpoints/DB10.DBD4", "setpoints/DB10.DBD12"}},
		{name: "text before and after", in: []string{"b", "a10", "a9", "a"}, want: []string{"a", "a9", "a10", "b"}},
		{name: "leading zeros break ties", in: []string{"x007", "x7", "x07"}, want: []string{"x7", "x07", "x007"}},
		{name: "prefix first", in: []string{"tags/Tank1/High", "tags/Tank1"}, want: []string{"tags/Tank1", "tags/Tank1/High"}},
		{name: "huge numbers do not overflow", in: []string{"n99999999999999999999999", "n100000000000000000000000"}, want: []string{"n99999999999999999999999", "n100000000000000000000000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Clone(tc.in)
			slices.SortFunc(got, func(a, b string) int {
				switch {
				case NaturalLess(a, b):
					return -1
				case NaturalLess(b, a):
					return 1
				}
				return 0
			})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
