// Command plcwatch watches PLCs for unapproved configuration changes.
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/plcwatch/plcwatch/app"
)

func main() {
	ctx, stop := app.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
