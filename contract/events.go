package contract

import "github.com/pmo-dev/pmo/planning"

// RecordEventsResult says what became of each event and which were skipped.
type RecordEventsResult struct {
	Outcomes []planning.EventOutcome
	Skipped  []planning.SkippedEvent
}

// RunningFleetsInput asks for the running fleet workflows.
type RunningFleetsInput struct {
	// WorkflowType is the fleet workflow's type name.
	WorkflowType string
}

// RunningFleetsResult lists the running fleet workflows by ID.
type RunningFleetsResult struct {
	WorkflowIDs []string
}

// RecordPlanChangesInput is what events did to a pool's plan.
type RecordPlanChangesInput struct {
	Pool    string
	Changes []planning.EventPlanChange
}
