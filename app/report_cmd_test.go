package app

import (
	"strings"
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Time
		err      string
	}{
		{name: "days", in: "35d", want: now.AddDate(0, 0, -35)},
		{name: "zero days", in: "0d", want: now},
		{name: "hours", in: "12h", want: now.Add(-12 * time.Hour)},
		{name: "date", in: "2026-03-01", want: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{name: "rfc3339", in: "2026-03-01T10:00:00+02:00", want: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)},
		{name: "garbage", in: "last week", err: `--since "last week": want a span back from now`},
		{name: "negative days", in: "-3d", err: "want a span"},
		{name: "negative duration", in: "-3h", err: "want a span"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWhen("--since", tc.in, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
