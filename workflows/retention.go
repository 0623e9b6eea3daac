package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/contract"
)

// RetentionScheduleID is the Temporal Schedule that runs RetentionWorkflow; it is
// listed on the Web UI's Schedules page.
const RetentionScheduleID = "pmo-retention"

// RetentionWorkflowID is the ID of the retention runs the schedule starts (Temporal
// appends the scheduled time) and the prefix of those an operator starts.
const RetentionWorkflowID = "retention"

// RetentionWorkflow downsamples and expires metrics, events, forecasts and plans by the
// given settings, measured back from the workflow's start. Migration history is kept.
// Bad settings fail the run without touching anything.
func RetentionWorkflow(ctx workflow.Context, settings config.Retention) (contract.RetentionResult, error) {
	if err := settings.Check(); err != nil {
		return contract.RetentionResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidSettings", err)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: TaskQueue,
		// A first run on a big backlog goes through millions of rows in batches;
		// each batch heartbeats.
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 10,
		},
	})
	var res contract.RetentionResult
	err := workflow.ExecuteActivity(ctx, retentionActivities.ApplyRetention, contract.RetentionInput{Settings: settings, Now: workflow.Now(ctx)}).Get(ctx, &res)
	if err == nil {
		workflow.GetLogger(ctx).Info("retention applied", "metrics_expired", res.MetricsDeleted, "metrics_folded", res.MetricsFolded,
			"events_expired", res.EventsDeleted, "forecasts_expired", res.ForecastsDeleted, "plans_expired", res.PlansDeleted,
			"plan_changes_expired", res.PlanChangesDeleted, "audit_expired", res.AuditDeleted)
	}
	return res, err
}

// RetentionSchedule is the schedule that runs RetentionWorkflow every settings.Every
// with these settings. Runs do not overlap: one still running when the next is due
// makes the schedule skip that one. After an outage only the last missed run is
// made up: each run does all that is due.
func RetentionSchedule(settings config.Retention) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:   RetentionScheduleID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: settings.Every}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        RetentionWorkflowID,
			Workflow:  RetentionWorkflow,
			Args:      []any{settings},
			TaskQueue: TaskQueue,
		},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: settings.Every,
		Note:          "PMO retention: downsamples and expires connector metrics, events, forecasts and plans (docs/retention.md)",
	}
}
