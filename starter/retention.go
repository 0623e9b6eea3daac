package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/workflows"
)

func retentionCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("retention", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "retention",
		ShortUsage: "starter retention",
		ShortHelp:  "downsample and expire metrics, events, forecasts and plans now, as the pmo-retention schedule does (PMO_RETENTION_* settings)",
		FlagSet:    fs,
		Exec: func(ctx context.Context, _ []string) error {
			return withTemporal(*cfg, func(tc client.Client) error {
				// One operator run at a time: a second starter joins the running one.
				run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
					ID: workflows.RetentionWorkflowID + "-now", TaskQueue: workflows.TaskQueue,
					WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
					WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				}, workflows.RetentionWorkflow, cfg.Retention)
				if err != nil {
					return fmt.Errorf("start retention: %w", err)
				}
				fmt.Printf("retention running: workflow %s, run %s (the worker runs it)\n", run.GetID(), run.GetRunID())
				started := time.Now()
				var res contract.RetentionResult
				if err := run.Get(ctx, &res); err != nil {
					return fmt.Errorf("retention: %w", err)
				}
				fmt.Printf("retention done in %s: metrics %d expired, %d samples downsampled into %d rows; events %d, forecasts %d, plans %d, plan changes %d, audit entries %d expired\n",
					time.Since(started).Round(time.Millisecond), res.MetricsDeleted, res.MetricsFolded, res.MetricsDownsampled,
					res.EventsDeleted, res.ForecastsDeleted, res.PlansDeleted, res.PlanChangesDeleted, res.AuditDeleted)
				return nil
			})
		},
	}
}
