package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/imports"
)

// ImportWorkflow imports a file that the web process staged (sites, SLA tiers, an
// inventory or history): the Import activity reads it and upserts its rows in one
// transaction. The file itself stays out of history. Its ID is ImportWorkflowID of the
// file's content hash, so one file posted twice at once imports once.
func ImportWorkflow(ctx workflow.Context, in imports.StagedFile) (imports.Counts, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5,
		},
	})
	var counts imports.Counts
	err := workflow.ExecuteActivity(ctx, fleetActivities.Import, in).Get(ctx, &counts)
	return counts, err
}
