// Command mangen writes plcwatch's manual pages, one per command
// (plcwatch.1, plcwatch-check.1, plcwatch-change-start.1, ...), generated
// from the cobra command tree with github.com/spf13/cobra/doc, so the pages
// say exactly what --help says. `make install` runs it:
//
//	go run ./internal/mangen -out DIR [-version V]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra/doc"

	"github.com/plcwatch/plcwatch/app"
)

func main() {
	out := flag.String("out", "man", "directory to write the section 1 pages to")
	version := flag.String("version", app.Version, "version shown in the pages' footer")
	flag.Parse()
	if err := run(*out, *version); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}

func run(out, version string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	root := app.New().RootCommand()
	root.DisableAutoGenTag = true // no generation date: reproducible pages
	// A fixed date (the epoch of SOURCE_DATE_EPOCH when set) keeps the
	// pages byte-identical between builds.
	date := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", s)
		}
		date = time.Unix(sec, 0).UTC()
	}
	hdr := &doc.GenManHeader{Title: "PLCWATCH", Section: "1", Source: "plcwatch " + version, Manual: "plcwatch manual", Date: &date}
	if err := doc.GenManTree(root, hdr, out); err != nil {
		return fmt.Errorf("writing the manual pages to %s: %w", out, err)
	}
	return nil
}
