package report_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/report"
)

// need returns the path of a program the test needs: under CI=true a
// missing one fails the test, elsewhere it skips it.
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (Debian package %s); .ci/run installs it", prog, pkg)
		}
		t.Skipf("%s is not installed (Debian package %s)", prog, pkg)
	}
	return p
}

// TestPrintToPDF renders the HTML report with headless Chromium, as an
// auditor printing it to PDF would, and checks that every section of every
// device is in the PDF's text and that each device starts a new page. With
// -update it also writes the first page as docs/screenshots/report.png and
// the first page of a device as report-device.png.
func TestPrintToPDF(t *testing.T) {
	chromium := need(t, "chromium", "chromium")
	pdftotext := need(t, "pdftotext", "poppler-utils")
	r := build(t, fixture(t), period)
	dir := t.TempDir()
	html := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := report.WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(html, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pdf := filepath.Join(dir, "report.pdf")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-pdf-header-footer", "--print-to-pdf="+pdf, "file://"+html)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	st, err := os.Stat(pdf)
	if err != nil {
		t.Fatalf("chromium wrote no PDF: %v", err)
	}
	if st.Size() < 10_000 {
		t.Fatalf("the PDF is %d bytes: too small to hold the report", st.Size())
	}
	out, err := exec.CommandContext(ctx, pdftotext, "-layout", pdf, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	text := string(out)
	pages := strings.Split(text, "\f")
	for _, want := range []string{"Configuration monitoring report", "Approved baseline", "Changes in the period", "Monitoring coverage", "Open alerts", "Verification of the evidence chains",
		"Firmware and operating system", "Hardware and modules", "CHG-1002", "A-da06c734e9", "Shift Lead"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF has no %q", want)
		}
	}
	// Each device and the verification start at the top of a page.
	for _, d := range append([]string{}, r.Devices[0].Name, r.Devices[1].Name, "Verification of the evidence chains") {
		found := false
		for _, p := range pages {
			if strings.HasPrefix(strings.TrimSpace(p), d) {
				found = true
			}
		}
		if !found {
			t.Errorf("no page starts with %q", d)
		}
	}
	if *update {
		pdftoppm := need(t, "pdftoppm", "poppler-utils")
		dev := 0 // the page where the richer device starts
		for i, p := range pages {
			if strings.HasPrefix(strings.TrimSpace(p), r.Devices[1].Name) {
				dev = i
			}
		}
		if err := os.MkdirAll(filepath.Join("..", "docs", "screenshots"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, page := range map[string]int{"report": 1, "report-device": dev + 1} {
			png := filepath.Join("..", "docs", "screenshots", name)
			n := strconv.Itoa(page)
			if out, err := exec.CommandContext(ctx, pdftoppm, "-png", "-r", "80", "-f", n, "-l", n, "-singlefile", pdf, png).CombinedOutput(); err != nil {
				t.Fatalf("pdftoppm: %v\n%s", err, out)
			}
		}
	}
}
