package console

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plcwatch/plcwatch/store"
)

var screenshotDir = flag.String("screenshots", "", "directory the browser test saves its page screenshots in (default: a temporary directory); the README's are in ../docs/screenshots")

// chromium finds the browser: Debian's chromium (with chromium-driver), or
// another Chromium build on PATH. Under CI=true a missing browser fails the
// test (.ci/run installs it); elsewhere it skips with a message.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: .ci/run installs the Debian packages chromium and chromium-driver")
	}
	t.Skip("no chromium on PATH: apt-get install chromium chromium-driver to run the browser test")
	return ""
}

// TestBrowser drives the console in headless Chromium over loopback: the
// overview, a planted alert appearing live, its acknowledgement, the diff,
// approving a baseline, and starting and finishing a planned change. Every
// step waits on a DOM condition. It saves a screenshot of each page at
// 1366x768.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	dir := *screenshotDir
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "")
	base := f.check()
	if _, err := f.svc.Approve(f.ctx, approveReq(base.SnapshotID, "CHG-1000", "commissioning")); err != nil {
		t.Fatal(err)
	}

	srv, err := New(func() Options { o := f.consoleOpts(); o.Listen = "127.0.0.1:0"; return o }())
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-served:
		t.Fatalf("console did not start: %v", err)
	}
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("console: %v", err)
		}
	})
	url := "http://" + addr

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	// A bound on the whole test, not a timing assertion: a broken page
	// fails here instead of hanging the suite.
	bctx, cancelTimeout := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelTimeout()

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
		})
	}
	run := func(step string, acts ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, acts...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	read := func(step string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}

	// 1. The overview, with the live stream open.
	run("overview",
		chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#device-tankfarm`)),
		chromedp.WaitReady(chromedp.CSS(`body[data-live="open"]`)),
		shot("overview"))

	// 2. A planted alert appears live: an engineer changes the setpoint
	// and the logic, and a check (as the daemon runs it) finds it.
	f.changeDevice(95)
	res := f.check()
	var alertID string
	for _, a := range res.Raised {
		if a.Category == "setpoint" {
			alertID = a.ID
		}
	}
	if alertID == "" {
		t.Fatalf("no setpoint alert raised: %+v", res.Verdict)
	}
	live := `#live-list a[data-alert="` + alertID + `"]`
	run("live alert",
		chromedp.WaitVisible(chromedp.CSS(live)),
		shot("live-alert"))

	// 3. Acknowledge it.
	run("acknowledge",
		chromedp.Click(chromedp.CSS(live)),
		chromedp.WaitVisible(chromedp.CSS(`#ack-form`)),
		chromedp.SendKeys(chromedp.CSS(`#ack-by`), "Shift Lead"),
		chromedp.SetValue(chromedp.CSS(`#ack-decision`), "investigating"),
		chromedp.SendKeys(chromedp.CSS(`#ack-comment`), "called the engineer"),
		chromedp.Click(chromedp.CSS(`#ack-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
		shot("alert"))
	status := read("alert status", chromedp.Text(chromedp.CSS(`#alert-status`)))
	if status != "acknowledged (investigating)" {
		t.Errorf("alert status after ack %q", status)
	}

	// 4. The diff from the alert, then approve the new snapshot.
	run("diff and approve",
		chromedp.Click(chromedp.CSS(`#alert-diff`)),
		chromedp.WaitVisible(chromedp.CSS(`#kind-setpoint`)),
		chromedp.WaitVisible(chromedp.CSS(`#approve-form`)),
		shot("diff"),
		chromedp.SendKeys(chromedp.CSS(`#approve-by`), "Shift Lead"),
		chromedp.SendKeys(chromedp.CSS(`#approve-ticket`), "CHG-2001"),
		chromedp.SendKeys(chromedp.CSS(`#approve-comment`), "setpoint raised on purpose"),
		chromedp.Click(chromedp.CSS(`#approve-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	notice := read("notice", chromedp.Text(chromedp.CSS(`p.notice`)))
	if !strings.Contains(notice, "baseline is now "+res.SnapshotID) {
		t.Errorf("after approving: notice %q", notice)
	}

	// 5. Start a planned change (recorded only), the engineer's change and
	// plcwatch change finish (the after snapshot), then finish in the
	// console: review the before/after diff and approve it.
	run("start change",
		chromedp.Navigate(url+"/devices/tankfarm/change"),
		chromedp.WaitVisible(chromedp.CSS(`#change-form`)),
		chromedp.SendKeys(chromedp.CSS(`#change-by`), "J. Engineer"),
		chromedp.SendKeys(chromedp.CSS(`#change-ticket`), "CHG-1234"),
		chromedp.Click(chromedp.CSS(`#change-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#change-no-after`)),
		shot("change"))
	f.changeDevice(99)
	f.clk.add(time.Minute)
	_, _, after, err := f.svc.FinishChange(f.ctx, f.device())
	if err != nil {
		t.Fatal(err)
	}
	run("finish change",
		chromedp.Navigate(url+"/devices/tankfarm/change"),
		chromedp.WaitVisible(chromedp.CSS(`#change-after`)),
		chromedp.Click(chromedp.CSS(`#change-diff`)),
		chromedp.WaitVisible(chromedp.CSS(`#approve-form`)))
	ticket := read("ticket", chromedp.Value(chromedp.CSS(`#approve-ticket`)))
	run("approve after",
		chromedp.SendKeys(chromedp.CSS(`#approve-by`), "Shift Lead"),
		chromedp.Click(chromedp.CSS(`#approve-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
		shot("history"))
	notice = read("notice", chromedp.Text(chromedp.CSS(`p.notice`)))
	if ticket != "CHG-1234" || !strings.Contains(notice, "baseline is now "+after.ID) {
		t.Errorf("finishing the change: ticket %q, notice %q", ticket, notice)
	}
	run("alerts page",
		chromedp.Navigate(url+"/alerts"),
		chromedp.WaitVisible(chromedp.CSS(`#alerts-table`)),
		shot("alerts"))

	// The evidence chain holds what the browser did, with the console user.
	if ch, _ := f.svc.OpenChange(f.ctx, "tankfarm"); ch != nil {
		t.Errorf("planned change %s still open", ch.Ticket)
	}
	var ack store.Ack
	if acks := f.records(store.TypeAck); len(acks) != 1 || json.Unmarshal(acks[0].Body, &ack) != nil || ack.ConsoleUser != LocalUser || ack.By != "Shift Lead" {
		t.Errorf("ack records %v", acks)
	}
	if aps := f.records(store.TypeApproval); len(aps) != 3 {
		t.Errorf("%d approvals, want commissioning and two from the console", len(aps))
	}
	f.noWrites()
}
