package app

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoTellsTheStory runs the demo as `make demo` does (on free loopback
// ports) and holds it to issue 11: at most about 200 lines, every chapter
// of the story told, ending with nothing open and the evidence chain
// verified, and no write or control request reaching a simulator.
func TestDemoTellsTheStory(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo reads three simulated PLCs at their rate limits")
	}
	var out bytes.Buffer
	a := &App{Stdout: &out, Stderr: &out, Now: time.Now, OSUser: func() string { return "tester" }}
	err := a.runDemo(context.Background(), demoOptions{
		example: filepath.Join("..", "plcwatch.example.yaml"), dir: filepath.Join(t.TempDir(), "demo-run"), ephemeral: true,
	})
	text := out.String()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, text)
	}
	lines := strings.Count(text, "\n")
	if lines > 200 {
		t.Errorf("the demo printed %d lines, want at most 200", lines)
	}
	for _, want := range []string{
		"$ plcwatch check --all",                                // commissioning
		"--summary",                                             // long snapshots summarised
		"whole     plcwatch show ",                              // with the command that shows them whole
		"--ticket CHG-1001",                                     // baselines approved
		"UNAPPROVED CHANGES",                                    // the nightly check's finding
		"setpoints/TankHighLimit: 85 % -> 97.5 %",               // an unauthorized setpoint
		"logic changed: blocks/FC7",                             // and logic change
		"acknowledged by Shift Lead",                            // acknowledgement
		"$ plcwatch change start line3-logix --ticket CHG-1234", // a planned change
		"+ tags/BypassInterlock",                                // its before/after diff
		"16#5555_5555_5555_5555",                                // the AuditValue as Rockwell shows it
		"ticket CHG-1234)",                                      // approved with its ticket
		"$ plcwatch alerts --open\nno alerts\n(exit 0)",         // nothing open at the end
		"$ plcwatch verify\nok: 3 chain(s) intact",              // verify ok
		"write/control requests: 0",                             // read-only
		"console, then open http://127.0.0.1:8686/",             // the console to look at it all
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo does not show %q", want)
		}
	}
	final := text[strings.LastIndex(text, "$ plcwatch check --all"):]
	if strings.Count(final, "no unapproved change") != 3 || !strings.Contains(final, "(exit 0)") {
		t.Errorf("the final check is not clean:\n%s", final)
	}
	if t.Failed() {
		t.Logf("demo output (%d lines):\n%s", lines, text)
	}
}
