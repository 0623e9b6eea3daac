// Package workflows holds PMO's deterministic orchestration: the per-pool FleetWorkflow
// and the per-migration MigrationWorkflow. It knows nothing of SQL; every side effect
// is an activity.
package workflows

import "github.com/pmo-dev/pmo/imports"

// TaskQueue is the control-plane task queue that the worker polls.
const TaskQueue = "pmo"

// ConnectorTaskQueue is the task queue that connector id polls; transfers for the
// migrations assigned to it run there.
func ConnectorTaskQueue(connectorID string) string { return "pmo.connector." + connectorID }

// FleetWorkflowID is the workflow ID of a pool's fleet workflow.
func FleetWorkflowID(pool string) string { return "fleet-" + pool }

// All are the workflow functions the worker registers. workflows/replay_test.go needs a
// recorded history of each in testdata/replay.
func All() []any {
	return []any{FleetWorkflow, MigrationWorkflow, WaveWorkflow, WaveBatchWorkflow, ImportWorkflow, EventsWorkflow, RetentionWorkflow}
}

// WaveWorkflowID is the workflow ID of a planned wave, named by its POST /forecast ID.
func WaveWorkflowID(id string) string { return "wave-" + id }

// MigrationWorkflowID is the deterministic workflow ID of a migration.
func MigrationWorkflowID(migrationID string) string { return "migration-" + migrationID }

// ImportWorkflowID is the workflow ID of the import of a file of a kind, named by the
// hash of its content.
func ImportWorkflowID(kind imports.Kind, hash string) string {
	return "import-" + string(kind) + "-" + hash
}

// Query names.
const (
	// QueryConnectors returns []planning.Connector.
	QueryConnectors = "connectors"
	// QueryPlan returns planning.Plan.
	QueryPlan = "plan"
	// QueryOverrides returns the active overrides and the recent audit trail.
	QueryOverrides = "overrides"
	// QueryMigration returns a MigrationStatus.
	QueryMigration = "status"
	// QueryPolicy returns the pool's planning.Policy.
	QueryPolicy = "policy"
	// QueryEvents returns the EventsView: what recent system events did to the plan.
	QueryEvents = "events"
	// QueryWave answers a wave's progress: WaveProgress.
	QueryWave = "wave"
)

// Update names.
const (
	// UpdateScale provisions, resizes or drains connectors: ScaleRequest -> ScaleResult.
	UpdateScale = "scale"
	// UpdateForecast predicts what a batch of migrations needs and, when asked, plans
	// it as known work: ForecastRequest -> ForecastAnswer.
	UpdateForecast = "forecast"
	// UpdatePolicy changes the pool's scaling policy: PolicyRequest -> planning.Policy.
	UpdatePolicy = "policy"
	// UpdateSimulate simulates the pool's planned work of the coming hours under its
	// policy and a proposed change to it, changing nothing: SimulateRequest ->
	// SimulateAnswer.
	UpdateSimulate = "simulate"
	// UpdateRegisterConnector adds an external connector, one PMO did not start, to
	// the pool: RegisterConnectorRequest -> RegisterConnectorResult.
	UpdateRegisterConnector = "register-connector"
	// UpdateDeregisterConnector takes an external connector out of the pool once its
	// migrations are done: DeregisterConnectorRequest -> planning.Connector.
	UpdateDeregisterConnector = "deregister-connector"
	// UpdateWaveControl pauses, resumes, cancels, approves or retries a whole wave:
	// WaveControl -> WaveProgress.
	UpdateWaveControl = "wave-control"
	// UpdateConnectorMetrics records the metrics an external connector posted and
	// renews its health: ConnectorMetricsRequest -> ConnectorMetricsResult. The web
	// server no longer sends it (it stores posts itself, and Collect reads them); it
	// stays for web servers of earlier versions.
	UpdateConnectorMetrics = "connector-metrics"
)

// Signal names.
const (
	// SignalOverride carries an Override from an operator.
	SignalOverride = "override"
	// SignalReserve asks the fleet for a connector: planning.Reservation.
	SignalReserve = "reserve"
	// SignalRelease gives a connector back: Release.
	SignalRelease = "release"
	// SignalBreach tells the fleet that a migration broke its SLA: Breach.
	SignalBreach = "sla-breach"
	// SignalAssigned tells a migration which connector it got: Assignment.
	SignalAssigned = "assigned"
	// SignalCancel stops a migration and discards its partial copy: Control.
	SignalCancel = "cancel"
	// SignalPause stops a migration's transfer, keeping the partial copy: Control.
	SignalPause = "pause"
	// SignalResume continues a paused transfer from its partial copy: Control.
	SignalResume = "resume"
	// SignalApprove lets a migration waiting for approval cut over: Control.
	SignalApprove = "approve"
	// SignalPriority changes a migration's priority: PriorityChange.
	SignalPriority = "priority"
	// SignalConnectorFailed tells the fleet that a connector died under a migration:
	// ConnectorFailure.
	SignalConnectorFailed = "connector-failed"
	// SignalEvents tells the fleet that system events were recorded or closed, so that
	// it re-plans at once: EventsSignal.
	SignalEvents = "events"
	// SignalWaveControl passes a wave's action to its batches: WaveControl.
	SignalWaveControl = "wave-control"
	// SignalWaveBatchLoad tells a wave how much of its max_running a batch that has
	// started all its migrations still holds: WaveBatchLoad.
	SignalWaveBatchLoad = "wave-batch-load"
	// SignalAwaitingOperator tells a wave's batch that one of its migrations waits for
	// an operator, or no longer does: AwaitingOperator.
	SignalAwaitingOperator = "awaiting-operator"
	// SignalAdopt hands a fleet the connectors of a site that moved to its pool from
	// another: Adoption.
	SignalAdopt = "adopt"
)

// EventsWorkflowID is the deterministic workflow ID of a batch of events, from a hash
// of its content: the same batch posted twice at once is recorded once.
func EventsWorkflowID(hash string) string { return "events-" + hash }
