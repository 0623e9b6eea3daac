package contract

import (
	"time"

	"github.com/pmo-dev/pmo/planning"
)

// WavePageInput asks for a page of a wave's planned migrations, by ID after After and
// up to Through (to the end when empty). Retry asks only for those whose every attempt
// failed.
type WavePageInput struct {
	Wave    string
	After   string
	Through string `json:",omitempty"`
	Limit   int
	Retry   bool `json:",omitempty"`
}

// WaveMigration is a planned migration of a wave and its VM's inventory row.
type WaveMigration struct {
	Planned planning.PlannedMigration
	VM      planning.VM
}

// WavePage is a page of a wave's migrations, by ID. Missing are those whose VM has
// left the inventory since it was planned; Next is the cursor of the next page, empty
// at the wave's end.
type WavePage struct {
	Migrations []WaveMigration
	Missing    []string
	Next       string
}

// WaveBatchesInput asks how a wave's planned migrations split into batches of Size;
// Retry counts only those whose every attempt failed.
type WaveBatchesInput struct {
	Wave  string
	Size  int
	Retry bool `json:",omitempty"`
}

// WaveBatches is how a wave splits: each batch runs the migrations with IDs after the
// previous bound, up to its own (the last bound is empty: to the end). Count and
// Bytes add up the migrations; EarliestStart and Deadline span them.
type WaveBatches struct {
	Bounds        []string
	Count         int
	Bytes         int64
	EarliestStart time.Time
	Deadline      time.Time
}

// ControlEvent is an operator's action on a migration or a wave: who, why and when.
type ControlEvent struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Who    string    `json:"who"`
	Why    string    `json:"why"`
	// Ignored says why the action changed nothing, if it did not.
	Ignored string `json:"ignored,omitempty"`
}

// WaveReportInput is what the wave itself knows at its end; the rest of the report
// comes from the migrations' history.
type WaveReportInput struct {
	Wave      string
	Pool      string
	StartedAt time.Time
	EndedAt   time.Time
	// Attempts counts the passes: the first, then one per retry.
	Attempts  int
	Cancelled bool
	Controls  []ControlEvent
}

// WaveReport is a wave's end: how each planned migration ended (its last attempt),
// the bytes copied, the time taken against the plan, the breaches, and the connectors
// that served it.
type WaveReport struct {
	Wave      string         `json:"wave"`
	Pool      string         `json:"pool"`
	StartedAt time.Time      `json:"started_at"`
	EndedAt   time.Time      `json:"ended_at"`
	Attempts  int            `json:"attempts"`
	Cancelled bool           `json:"cancelled"`
	Controls  []ControlEvent `json:"controls,omitempty"`
	// PlannedStart and PlannedDeadline span the plan: the earliest start and the
	// latest deadline of its migrations. Late says by how many seconds the wave ended
	// after its deadline (zero when it did not).
	PlannedStart    time.Time `json:"planned_start"`
	PlannedDeadline time.Time `json:"planned_deadline"`
	LateSeconds     float64   `json:"late_seconds"`
	Planned         int       `json:"planned"`
	// Outcomes count the planned migrations by how their last attempt ended.
	Outcomes WaveOutcomes `json:"outcomes"`
	// Retried counts the planned migrations that ran more than once.
	Retried int   `json:"retried"`
	Bytes   int64 `json:"bytes"`
	// Connectors are those that served the wave, by ID.
	Connectors []WaveConnector `json:"connectors"`
	// Failures are the failed migrations' last errors, by ID, at most MaxWaveFailures.
	Failures []WaveFailure `json:"failures,omitempty"`
}

// WaveOutcomes count a wave's planned migrations by how their last attempt ended;
// NotRun are those never started (refused, or left when the wave was cancelled).
type WaveOutcomes struct {
	Succeeded int `json:"succeeded"`
	Breached  int `json:"sla_breached"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	NotRun    int `json:"not_run"`
}

// MaxWaveFailures bounds the failures a report names; the counts hold them all.
const MaxWaveFailures = 100

// WaveConnector is a connector that served a wave: how many of its migrations' tries
// ran there and the bytes they copied.
type WaveConnector struct {
	ID         string `json:"id"`
	Migrations int    `json:"migrations"`
	Bytes      int64  `json:"bytes"`
}

// WaveFailure is a failed migration of a wave and why its last attempt failed.
type WaveFailure struct {
	ID     string `json:"id"`
	VMID   string `json:"vm_id"`
	Detail string `json:"detail"`
}
