// Command starter is PMO's operator CLI: apply the schema, seed the demo, start the
// fleet, submit migrations, forecast, backtest, generate traces, simulate, import operator
// files, register external connectors, apply retention, manage the API keys and serve
// the codec endpoint to the Temporal Web UI with a key (codec-proxy).
//
//	go run ./starter <command> [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	root := &ffcli.Command{
		ShortUsage: "starter <command> [flags]",
		Subcommands: []*ffcli.Command{
			migrateCommand(&cfg),
			seedCommand(&cfg),
			fleetCommand(&cfg),
			forecastCommand(),
			backtestCommand(),
			modelsCommand(&cfg),
			vmWritesCommand(&cfg),
			genTraceCommand(),
			simulateCommand(),
			importCommand(&cfg),
			connectorCommand(&cfg),
			retentionCommand(&cfg),
			apikeyCommand(&cfg, os.Stdout, os.Stderr),
			codecProxyCommand(&cfg),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
	return root.ParseAndRun(ctx, args)
}
