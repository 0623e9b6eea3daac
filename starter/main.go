// Command starter is PMO's operator CLI: apply the schema, seed the demo, start the
// fleet, submit, watch and operate migrations and waves, override the fleet, forecast, backtest, generate traces, simulate, import operator
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
	err := run(ctx, os.Args[1:])
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "starter:", err)
	}
	os.Exit(exitCode(err))
}

func run(ctx context.Context, args []string) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	root := &ffcli.Command{
		ShortUsage: "starter <command> [flags]",
		LongHelp: "Exit status: 0 when the command did what it was asked; 1 when it could not (the API or the\n" +
			"database refused, a migration watched did not succeed); 2 when it was used wrongly (flags,\n" +
			"arguments, an input file), before anything was sent. Every command has -h.",
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
			migrationCommand(&cfg, os.Stdout, os.Stderr),
			waveCommands(&cfg, os.Stdout),
			overrideCommand(&cfg, os.Stdout),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
	// A flag that does not parse is a usage error (exit 2); what the command then does
	// either works (0) or fails (1).
	if err := root.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	return root.Run(ctx)
}
