package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
)

// EventsSignal tells a fleet which events changed: keys, sites, kinds and what
// became of them, never the events themselves.
type EventsSignal struct {
	Events []planning.EventOutcome `json:"events"`
}

// EventsAnswer is what a batch of events did: each event's outcome, the events
// skipped and why, and the fleet workflows that were told.
type EventsAnswer struct {
	Events  []planning.EventOutcome `json:"events"`
	Skipped []planning.SkippedEvent `json:"skipped"`
	Fleets  []string                `json:"fleets"`
}

// EventsView is what recent system events did to a pool's plan, newest last.
type EventsView struct {
	Changes []planning.EventPlanChange `json:"changes"`
}

// MaxEventChanges is how many plan changes a fleet keeps to answer QueryEvents.
const MaxEventChanges = 50

// EventsWorkflow records a batch of system events (and closes) in one transaction,
// then signals every running fleet workflow with a summary of what changed, so that
// each re-plans at once. A batch that changes nothing tells no fleet. Operators' events,
// Alertmanager alerts and imported calendars all come through here.
func EventsWorkflow(ctx workflow.Context, in imports.EventBatch) (EventsAnswer, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 5,
		},
	})
	var rec contract.RecordEventsResult
	if err := workflow.ExecuteActivity(ctx, eventActivities.RecordEvents, in).Get(ctx, &rec); err != nil {
		return EventsAnswer{}, err
	}
	answer := EventsAnswer{Events: rec.Outcomes, Skipped: rec.Skipped, Fleets: []string{}}
	var changed []planning.EventOutcome
	for _, o := range rec.Outcomes {
		if o.Changed() {
			changed = append(changed, o)
		}
	}
	if len(changed) == 0 {
		return answer, nil
	}
	var fleets contract.RunningFleetsResult
	if err := workflow.ExecuteActivity(ctx, eventActivities.RunningFleets, contract.RunningFleetsInput{WorkflowType: "FleetWorkflow"}).Get(ctx, &fleets); err != nil {
		return EventsAnswer{}, err
	}
	logger := workflow.GetLogger(ctx)
	for _, id := range fleets.WorkflowIDs {
		// A fleet that ended since it was listed has nothing to re-plan.
		if err := workflow.SignalExternalWorkflow(ctx, id, "", SignalEvents, EventsSignal{Events: changed}).Get(ctx, nil); err != nil {
			logger.Warn("fleet not told of events", "fleet", id, "error", err)
			continue
		}
		answer.Fleets = append(answer.Fleets, id)
	}
	return answer, nil
}

// EventsStartOptions are the options to start EventsWorkflow on a batch with: its ID is
// a hash of the batch, so the same batch sent twice at once is recorded once.
func EventsStartOptions(in imports.EventBatch) (client.StartWorkflowOptions, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return client.StartWorkflowOptions{}, err
	}
	sum := sha256.Sum256(body)
	return client.StartWorkflowOptions{
		ID: EventsWorkflowID(hex.EncodeToString(sum[:16])), TaskQueue: TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: 5 * time.Minute,
	}, nil
}
