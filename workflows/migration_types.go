package workflows

import (
	"strings"
	"time"
	"unicode"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/validation"
)

// MigrationRequest asks the fleet to migrate one VM now.
type MigrationRequest struct {
	ID       string `json:"id"`
	VMID     string `json:"vm_id"`
	Priority int    `json:"priority"`
	// Source overrides the inventory's disk location: a path or an http(s) URL under
	// one of the VM's site's sources.
	Source string `json:"source,omitempty"`
	// RequireApproval makes the cutover wait for POST /migrations/{id}/approve.
	RequireApproval bool `json:"require_approval,omitempty"`
	// CutoverAfter opens the cutover window: the final sync waits until then.
	CutoverAfter time.Time `json:"cutover_after,omitzero"`
	// MaxDowntime tightens the SLA tier's maximum downtime for this migration, as a
	// duration such as "5s"; it cannot loosen it.
	MaxDowntime string `json:"max_downtime,omitempty"`
	// MaxTransfer tightens the SLA tier's maximum transfer time likewise.
	MaxTransfer string `json:"max_transfer,omitempty"`
}

// Transfer parses MaxTransfer; zero when it is not set.
func (r MigrationRequest) Transfer() (time.Duration, error) {
	return positiveDuration("max_transfer", r.MaxTransfer)
}

// Downtime parses MaxDowntime; zero when it is not set.
func (r MigrationRequest) Downtime() (time.Duration, error) {
	return positiveDuration("max_downtime", r.MaxDowntime)
}

// positiveDuration parses an optional duration field; zero when it is empty.
func positiveDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > MaxSLADuration {
		return 0, validation.Field(field, "must be a positive duration such as 5s, at most %s, got %q", MaxSLADuration, v)
	}
	return d, nil
}

// MaxSLADuration bounds the SLA durations a request may set: a migration's maximum
// transfer time or downtime, a what-if's tightened tier.
const MaxSLADuration = 30 * 24 * time.Hour

// MaxSourceLength bounds a migration's source path or URL.
const MaxSourceLength = 2048

// MaxPriority bounds a migration's priority.
const MaxPriority = 100

// Validate checks the request's form.
func (r MigrationRequest) Validate() error {
	if err := validation.ID("id", r.ID); err != nil {
		return err
	}
	if err := validation.ID("vm_id", r.VMID); err != nil {
		return err
	}
	if r.Priority < 0 || r.Priority > MaxPriority {
		return validation.Field("priority", "must be between 0 and %d, got %d", MaxPriority, r.Priority)
	}
	if _, err := r.Downtime(); err != nil {
		return err
	}
	if _, err := r.Transfer(); err != nil {
		return err
	}
	if len(r.Source) > MaxSourceLength || strings.ContainsFunc(r.Source, unicode.IsControl) {
		return validation.Field("source", "must be at most %d bytes with no control character", MaxSourceLength)
	}
	if !r.CutoverAfter.IsZero() {
		if err := validation.Time("cutover_after", r.CutoverAfter); err != nil {
			return err
		}
	}
	if r.Source != "" && !strings.HasPrefix(r.Source, "/") && !strings.HasPrefix(r.Source, "http://") &&
		!strings.HasPrefix(r.Source, "https://") && !strings.HasPrefix(r.Source, "file://") {
		return validation.Field("source", "must be an absolute path or a file, http or https URL")
	}
	return nil
}

// MigrationStarted is the answer to a submitted migration.
type MigrationStarted struct {
	ID         string    `json:"id"`
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	VMID       string    `json:"vm_id"`
	Site       string    `json:"site"`
	SLATier    string    `json:"sla_tier"`
	Bytes      int64     `json:"bytes"`
	Deadline   time.Time `json:"deadline"`
	// Existing says that a migration with this ID was started before; it is the
	// answer, and only ID and WorkflowID are set.
	Existing bool `json:"existing,omitempty"`
}

// MigrationInput is what a migration workflow needs; the fleet fills it from the
// inventory.
type MigrationInput struct {
	ID     string `json:"id"`
	Pool   string `json:"pool"`
	VMID   string `json:"vm_id"`
	Site   string `json:"site"`
	Source string `json:"source"`
	// Sources are the site's list of where disks may be read when the migration
	// started; the connector reads Source only under it. Nil on runs started before
	// sites had sources: the migration looks the list up then.
	Sources     []string      `json:"sources,omitempty"`
	Destination string        `json:"destination"`
	Bytes       int64         `json:"bytes"`
	SLATier     string        `json:"sla_tier"`
	MaxTransfer time.Duration `json:"max_transfer"`
	MaxDowntime time.Duration `json:"max_downtime"`
	Priority    int           `json:"priority"`
	// RequireApproval and CutoverAfter gate the cutover; see MigrationRequest.
	RequireApproval bool      `json:"require_approval,omitempty"`
	CutoverAfter    time.Time `json:"cutover_after,omitzero"`
	// Planned says that the migration was known work, planned through POST /forecast:
	// its history row is kept out of the forecast of ad-hoc arrivals.
	Planned bool `json:"planned,omitempty"`
	// Wave is the wave that started it, if one did: its history row carries it, for
	// the wave's retries and report.
	Wave string `json:"wave,omitempty"`
	// WaveBatch is the workflow ID of the wave's batch that started it: told when a
	// rolled-back cutover leaves the migration waiting for an operator, so that the
	// wave starts another in its place meanwhile.
	WaveBatch string `json:"wave_batch,omitempty"`
	// Continued is what a run that continued as new while it waited for a connector
	// hands to the next; nil on a migration's first run.
	Continued *MigrationCarry `json:"continued,omitempty"`
}

// MigrationCarry is a waiting migration's state, carried over when it continues as new
// so that it can wait as long as its SLA allows without its history growing without
// end.
type MigrationCarry struct {
	Status MigrationStatus `json:"status"`
	// SLAFired says the SLA timer has fired (and the breach was recorded).
	SLAFired bool `json:"sla_fired,omitempty"`
	Paused   bool `json:"paused,omitempty"`
	// Avoid are the connectors that failed under the migration.
	Avoid []string `json:"avoid,omitempty"`
	// Resume says a partial copy exists to continue from; Retries counts the passing
	// failures so far.
	Resume  bool `json:"resume,omitempty"`
	Retries int  `json:"retries,omitempty"`
}

// Migration phases.
const (
	PhaseWaiting      = "waiting"
	PhasePreparing    = "preparing"
	PhaseTransferring = "transferring"
	PhasePaused       = "paused"
	// PhaseAwaitingCutover waits for the cutover window or an operator's approval.
	PhaseAwaitingCutover = "awaiting-cutover"
	// PhaseCutover runs the final delta sync under the downtime timer.
	PhaseCutover   = "cutover"
	PhaseRecording = "recording"
	PhaseDone      = "done"
)

// Migration outcomes, as stored in the history.
const (
	OutcomeSucceeded   = "succeeded"
	OutcomeFailed      = "failed"
	OutcomeSLABreached = "sla_breached"
	OutcomeCancelled   = "cancelled"
)

// Control is an operator's cancel, pause or resume of a migration: who and why, kept in
// the migration's status and its workflow history.
type Control struct {
	Who string `json:"who"`
	Why string `json:"why"`
}

// Validate checks that the operator said who and why.
func (c Control) Validate() error {
	return CheckWhoWhy(c.Who, c.Why, false)
}

// PriorityChange sets a migration's priority; a waiting migration is queued again
// with it.
type PriorityChange struct {
	Control
	Priority int `json:"priority"`
}

// Validate checks the priority's range and who and why.
func (p PriorityChange) Validate() error {
	if p.Priority < 0 || p.Priority > MaxPriority {
		return validation.Field("priority", "must be between 0 and %d, got %d", MaxPriority, p.Priority)
	}
	return p.Control.Validate()
}

// ControlEvent is an operator's action on a migration or a wave.
type ControlEvent = contract.ControlEvent

// MigrationStatus answers the migration's status query.
type MigrationStatus struct {
	ID          string `json:"id"`
	VMID        string `json:"vm_id"`
	Site        string `json:"site"`
	SLATier     string `json:"sla_tier"`
	Phase       string `json:"phase"`
	ConnectorID string `json:"connector_id,omitempty"`
	// Placement says why the fleet chose that connector.
	Placement string    `json:"placement,omitempty"`
	Bytes     int64     `json:"bytes"`
	StartedAt time.Time `json:"started_at"`
	Deadline  time.Time `json:"deadline"`
	Breached  bool      `json:"breached"`
	Priority  int       `json:"priority"`
	// Attempts counts the transfer activities started; a resume after a pause starts
	// one more (retries of one activity are not counted here).
	Attempts int `json:"attempts"`
	// WaitedSeconds is how long the migration waited for its first connector.
	WaitedSeconds float64 `json:"waited_seconds"`
	// DowntimeSeconds is how long the cutover took: the VM's downtime.
	DowntimeSeconds float64 `json:"downtime_seconds"`
	// ChangedBlocks is how many blocks the cutover's delta sync copied.
	ChangedBlocks int `json:"changed_blocks"`
	// Rollbacks counts cutovers rolled back, and CutoverError says why the last was.
	Rollbacks    int    `json:"rollbacks"`
	CutoverError string `json:"cutover_error,omitempty"`
	// Failovers counts the connectors lost under this migration.
	Failovers int `json:"failovers"`
	// Controls are the operators' actions, oldest first.
	Controls    []ControlEvent `json:"controls,omitempty"`
	Outcome     string         `json:"outcome,omitempty"`
	SHA256      string         `json:"sha256,omitempty"`
	Destination string         `json:"destination"`
	EndedAt     time.Time      `json:"ended_at,omitzero"`
	Error       string         `json:"error,omitempty"`
}

// Release gives a connector slot back to the fleet.
type Release struct {
	MigrationID string `json:"migration_id"`
	ConnectorID string `json:"connector_id"`
}

// ConnectorFailure tells the fleet that a connector stopped answering under a
// migration.
type ConnectorFailure struct {
	ConnectorID string `json:"connector_id"`
	MigrationID string `json:"migration_id"`
	Reason      string `json:"reason"`
}

// Breach tells the fleet a migration passed its SLA deadline.
type Breach struct {
	MigrationID string `json:"migration_id"`
	ConnectorID string `json:"connector_id"`
	Site        string `json:"site"`
}
