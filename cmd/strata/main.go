// Command strata runs one or more Strata components; with no flags, a complete single-process cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/strata-metrics/strata/pkg/app"
	"github.com/strata-metrics/strata/pkg/version"
)

func main() {
	if app.VerifyRequested(os.Args[1:]) {
		os.Exit(verifyConfig(os.Args[1:], os.Stdout, os.Stderr))
	}
	cfg, flags, err := app.LoadConfig(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "strata: invalid configuration:", err)
		os.Exit(2)
	}
	if cfg.PrintVersion {
		fmt.Print(version.Get())
		os.Exit(0)
	}
	logger, err := app.NewLogger(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(2)
	}
	a, err := app.New(cfg, flags, logger)
	if err != nil {
		logger.Error("failed to build strata", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		logger.Error("strata stopped with an error", "err", err)
		os.Exit(1)
	}
}
