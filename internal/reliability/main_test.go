package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseFigures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		out   string
		figs  map[string]string
		order []string
	}{
		{"none", "=== RUN TestX\n--- PASS: TestX\n", map[string]string{}, nil},
		{"one line, two keys", "    hostile_test.go:88: RELIABILITY opcua_hostile=12 opcua_crashes=0\n", map[string]string{"opcua_hostile": "12", "opcua_crashes": "0"}, []string{"opcua_hostile", "opcua_crashes"}},
		{"later value wins, order kept", "RELIABILITY s7_hostile=3\nnoise\nRELIABILITY secret_found=0 s7_hostile=5\n", map[string]string{"s7_hostile": "5", "secret_found": "0"}, []string{"s7_hostile", "secret_found"}},
		{"a line without pairs is ignored", "RELIABILITY\nRELIABILITY: nothing\n", map[string]string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			figs, order := parseFigures(strings.NewReader(tc.out))
			if !reflect.DeepEqual(figs, tc.figs) || !reflect.DeepEqual(order, tc.order) {
				t.Errorf("parseFigures = %v %v, want %v %v", figs, order, tc.figs, tc.order)
			}
		})
	}
}

func TestLastExecs(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
		ok              bool
	}{
		{"progress lines", "fuzz: elapsed: 0s, gathering baseline coverage: 9/9 completed\nfuzz: elapsed: 3s, execs: 100 (33/sec)\nfuzz: elapsed: 5s, execs: 2838 (946/sec), new interesting: 1\nPASS\n", "2838", true},
		{"no progress line", "ok  \tpkg\t0.1s\n", "?", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := lastExecs(tc.out)
			if got != tc.want || ok != tc.ok {
				t.Errorf("lastExecs = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestFigureOf(t *testing.T) {
	for _, tc := range []struct{ name, key, want string }{
		{"protocol as the last word", "hostile_replies_s7", "s7"},
		{"protocol as the first word", "opcua_hostile", "opcua"},
		{"logix", "hostile_replies_logix", "logix"},
		{"secrets", "planted_secrets_found", "secret"},
		{"no protocol", "hostile_devices", ""},
		{"a word that only contains a protocol name", "s7x_count", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := figureOf(tc.key); got != tc.want {
				t.Errorf("figureOf(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}
