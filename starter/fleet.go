package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/workflows"
)

// startFleet starts a pool's fleet workflow unless it runs, and says which.
func startFleet(ctx context.Context, tc client.Client, in workflows.FleetInput) error {
	id := workflows.FleetWorkflowID(in.Pool)
	if d, err := tc.DescribeWorkflowExecution(ctx, id, ""); err == nil &&
		d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		fmt.Printf("fleet %s already running: workflow %s, run %s; it keeps its settings (stop and start it to change them)\n",
			in.Pool, id, d.GetWorkflowExecutionInfo().GetExecution().GetRunId())
		return nil
	}
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.FleetWorkflow, in)
	if err != nil {
		return fmt.Errorf("start fleet %s: %w", in.Pool, err)
	}
	fmt.Printf("fleet %s running: workflow %s, run %s\n", in.Pool, run.GetID(), run.GetRunID())
	return nil
}

// sitePools reads the pools that have sites.
func sitePools(ctx context.Context, cfg config.Config) ([]string, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	pools, err := st.Pools(ctx)
	if err == nil && len(pools) == 0 {
		err = errors.New("no sites yet: import them first (PUT /sites, docs/import.md)")
	}
	return pools, err
}

func fleetCommand(cfg *config.Config) *ffcli.Command {
	startFlags := flag.NewFlagSet("fleet start", flag.ContinueOnError)
	pool := startFlags.String("pool", cfg.Pool, "connector pool")
	tick := startFlags.Duration("tick", cfg.Tick, "planning interval")
	lead := startFlags.Duration("lead-time", planning.DefaultLeadTime, "how long before forecast demand connectors are started, at least: the fleet learns a longer one from its connectors' boots")
	size := startFlags.String("size", "", "connector size the autoscaler provisions (small, medium, large; default medium)")
	all := startFlags.Bool("all", false, "start the fleet of every pool that has sites (from the database), not only -pool")
	start := &ffcli.Command{
		Name:       "start",
		ShortUsage: "starter fleet start [-pool P | -all] [-tick 30s] [-lead-time 5m] [-size medium]",
		ShortHelp:  "start the pool's fleet workflow, or every pool's; a running fleet is left as it is",
		FlagSet:    startFlags,
		Exec: func(ctx context.Context, _ []string) error {
			pools := []string{*pool}
			if *all {
				var err error
				if pools, err = sitePools(ctx, *cfg); err != nil {
					return err
				}
			}
			return withTemporal(*cfg, func(tc client.Client) error {
				for _, p := range pools {
					if err := startFleet(ctx, tc, workflows.FleetInput{Pool: p, Tick: *tick, LeadTime: *lead, Size: *size}); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	stopFlags := flag.NewFlagSet("fleet stop", flag.ContinueOnError)
	stopPool := stopFlags.String("pool", cfg.Pool, "connector pool")
	reason := stopFlags.String("reason", "stopped by operator", "why, for the workflow history")
	stop := &ffcli.Command{
		Name:       "stop",
		ShortUsage: "starter fleet stop [-pool P] [-reason R]",
		ShortHelp:  "terminate the pool's fleet workflow (running migrations go on)",
		FlagSet:    stopFlags,
		Exec: func(ctx context.Context, _ []string) error {
			return withTemporal(*cfg, func(tc client.Client) error {
				err := tc.TerminateWorkflow(ctx, workflows.FleetWorkflowID(*stopPool), "", *reason)
				var nf *serviceerror.NotFound
				if errors.As(err, &nf) {
					fmt.Printf("fleet %s is not running\n", *stopPool)
					return nil
				}
				if err != nil {
					return fmt.Errorf("stop fleet %s: %w", *stopPool, err)
				}
				fmt.Printf("fleet %s stopped\n", *stopPool)
				return nil
			})
		},
	}
	return &ffcli.Command{
		Name:        "fleet",
		ShortUsage:  "starter fleet <start|stop> [flags]",
		ShortHelp:   "start or stop a pool's fleet workflow",
		Subcommands: []*ffcli.Command{start, stop},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// withTemporal dials Temporal, runs f and closes the client.
func withTemporal(cfg config.Config, f func(client.Client) error) error {
	tc, err := platform.DialTemporal(cfg, platform.NewLogger())
	if err != nil {
		return err
	}
	defer tc.Close()
	return f(tc)
}
