package app

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/plcwatch/plcwatch/store"
)

// Verify problems about the alert log, the chains' outside anchor.
const (
	ProblemAlertLogMissing = "alert_log_missing" // the store wrote heads to an alert log that is gone
	ProblemAlertLogShort   = "alert_log_short"   // the alert log holds fewer heads than the store wrote to it
)

// anchorFindings compares the alert log with the store's count of chain
// heads written to it: a missing or shorter log is a finding (deleting the
// log must not make verify say "ok"). note is not empty when verify has no
// head recorded outside the store at all, so it says so plainly.
func anchorFindings(ctx context.Context, st *store.DB, logPath string, logged []store.Head, extra []string) (fs []store.Finding, note string, err error) {
	n, counted, err := st.HeadsLogged(ctx)
	if err != nil {
		return nil, "", err
	}
	_, statErr := os.Stat(logPath)
	missing := errors.Is(statErr, os.ErrNotExist)
	switch {
	case !counted:
	case n > 0 && missing:
		fs = append(fs, store.Finding{Problem: ProblemAlertLogMissing, Detail: fmt.Sprintf(
			"the store wrote %d chain head(s) to the alert log %s, which is missing: it was deleted or moved", n, logPath)})
	case int64(len(logged)) < n:
		fs = append(fs, store.Finding{Problem: ProblemAlertLogShort, Detail: fmt.Sprintf(
			"the alert log %s holds %d chain head(s), the store wrote %d to it: lines were deleted or the log was replaced", logPath, len(logged), n)})
	}
	if len(logged) == 0 && len(extra) == 0 {
		note = fmt.Sprintf("NO OUTSIDE ANCHOR: no chain head is recorded outside the store (the alert log %s holds none and no --head was given), so a chain truncated or rewritten from scratch would verify clean; keep the heads printed below somewhere this host cannot rewrite", logPath)
	}
	return fs, note, nil
}
