package contract

import (
	"time"

	"github.com/pmo-dev/pmo/planning"
)

// CollectInput names the connectors whose health the fleet wants: those it started,
// whose processes the provisioner knows, and the external ones, known by what they post.
type CollectInput struct {
	Pool         string
	ConnectorIDs []string
	External     []string `json:",omitempty"`
	// ConnectorSites are the sites the fleet has connectors at: Collect says which of
	// them have moved to another pool.
	ConnectorSites []string `json:",omitempty"`
}

// SitePool is a site and the pool it belongs to.
type SitePool struct {
	Site string
	Pool string
}

// ConnectorHealth is a connector's process state, readiness and latest usage; for an
// external connector, when it last posted metrics instead of its process state.
type ConnectorHealth struct {
	ID       string
	Running  bool
	ReadyAt  time.Time
	Usage    planning.Usage
	LastSeen time.Time `json:",omitzero"`
}

// CollectResult is the Collect step's small summary.
type CollectResult struct {
	Sites      []string
	Connectors []ConnectorHealth
	// Moved are the sites of the fleet's connectors that now belong to another pool,
	// with that pool.
	Moved []SitePool `json:",omitempty"`
}

// ProvisionInput lists connectors to bring up: new ones, or ones whose process died.
type ProvisionInput struct {
	Pool       string
	Connectors []planning.Connector
}

// ProvisionResult reports the process of each connector.
type ProvisionResult struct {
	PIDs []int
}

// DecommissionInput lists connectors to stop.
type DecommissionInput struct {
	Pool       string
	Connectors []planning.Connector
}

// ResizeConnectorInput is a connector's new size, whose CPU and memory its driver
// holds it to.
type ResizeConnectorInput struct {
	ID   string
	Size planning.Size
}

// SyncConnectorsInput mirrors the fleet's view of its connectors into PostgreSQL.
type SyncConnectorsInput struct {
	Pool       string
	Connectors []planning.Connector
}

// RecordConnectorMetricsInput is a batch of samples that an external connector posted.
type RecordConnectorMetricsInput struct {
	ConnectorID string
	Samples     []planning.MetricSample
}

// RecordConnectorMetricsResult says how many of the samples were new.
type RecordConnectorMetricsResult struct {
	Stored int64
}

// RecordOverrideInput is one override and what the fleet did with it.
type RecordOverrideInput struct {
	Pool     string
	Override planning.Override
	// Action is applied, expired or rejected.
	Action string
	Detail string
	At     time.Time
}

// LookupVMInput names a VM.
type LookupVMInput struct {
	VMID string
}

// RecordBreachInput describes an SLA breach.
type RecordBreachInput struct {
	MigrationID string
	Site        string
	ConnectorID string
	Deadline    time.Time
	MaxTransfer time.Duration
}

// PlanInput asks for one tick of a pool: its demand over the horizon, forecast and
// recorded, and the decision the tick makes on it for the fleet as it is.
type PlanInput struct {
	Pool  string
	Sites []string
	Now   time.Time
	// Hours is the forecast horizon.
	Hours    int
	Size     string
	LeadTime time.Duration
	Tick     time.Duration
	// Arrived names the migrations that reserved a connector since the last plan: the
	// planned ones among them leave the known demand first.
	Arrived []string
	// Fleet is the fleet's connectors, waiting work, policy and overrides; nil (a
	// fleet from before) makes the plan alone, which the fleet then decides on.
	Fleet *planning.Fleet
}

// ForecastBatchInput is a forecast request as the fleet checked it: a batch of
// migrations, named by VM or given by site and size, to size against the pool's
// forecast, and, when asked, a what-if change or planning it as known work.
type ForecastBatchInput struct {
	Pool string
	Now  time.Time
	// ID names the batch; its migrations are ID-<vm> (VMIDs) and ID-<i> (VMs).
	ID string
	// Wave is the wave the planned batch joins; ID when empty.
	Wave    string `json:",omitempty"`
	VMIDs   []string
	VMs     []planning.VMSpec
	SLATier string
	// EarliestStart and Deadline bound every migration of the batch.
	EarliestStart time.Time
	Deadline      time.Time
	Sites         []string
	// Size, HorizonHours, LeadTime and Tick are the fleet's settings; Fleet is what
	// bounds and explains the answer.
	Size         string
	HorizonHours int
	LeadTime     time.Duration
	Tick         time.Duration
	Fleet        planning.FleetView
	// WhatIf, if set, asks for the plan as it is and as it would be after the change;
	// AddWave adds the batch itself as a wave.
	WhatIf  *planning.WhatIf
	AddWave bool
	// Plan records the batch as known work.
	Plan bool
}

// ForecastBatchResult is the estimate of a batch and, for a what-if, the two plans.
type ForecastBatchResult struct {
	Estimate planning.Estimate
	Today    *planning.Plan
	WhatIf   *planning.Plan
	// Planned counts the migrations recorded as known work.
	Planned int
}

// SimulateInput asks for a short simulation of the pool's own work from Now: its
// planned migrations that start in the window and the ad-hoc arrivals forecast for it,
// under the current policy and a proposed one.
type SimulateInput struct {
	Pool  string
	Sites []string
	Now   time.Time
	Hours int
	// Seed draws the ad-hoc arrivals and the world's noise: the same seed gives the
	// same answer.
	Seed uint64
	// Size, LeadTime, Tick and HorizonHours are the fleet's settings.
	Size              string
	LeadTime          time.Duration
	Tick              time.Duration
	HorizonHours      int
	Current, Proposed planning.Policy
	// Overrides are the fleet's pins and pause in force, which both policies keep.
	Overrides []planning.Override
}

// SimulateResult is a simulation's answer: the window, what was simulated and how
// each policy did.
type SimulateResult struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Seed uint64    `json:"seed"`
	// Planned and Adhoc count the migrations simulated: the pool's planned ones and
	// the ad-hoc arrivals drawn from the forecast.
	Planned int `json:"planned"`
	Adhoc   int `json:"adhoc"`
	// Size is the connector size and ProvisionDelaySeconds the median boot the
	// simulated connectors take.
	Size                  string  `json:"size"`
	ProvisionDelaySeconds float64 `json:"provision_delay_s"`
	// Results are the current policy's run, the proposed one's, and the baseline's
	// where a setting of it kept the wait.
	Results []PolicyRun `json:"results"`
	// Baseline is what both policies are measured against.
	Baseline Baseline `json:"baseline"`
	// Reasoning holds a sentence a policy.
	Reasoning []string `json:"reasoning"`
}

// Baseline is the competent reactive baseline a simulation measures the policies
// against, on the same work: reactive+waves (queue scaling with a pre-warm of the
// planned waves) at the cheapest of Settings settings whose p99 wait is at most
// MaxWaitSeconds. Setting is that setting as starter simulate's flags; empty when no
// setting kept the wait, and then there is no baseline run.
type Baseline struct {
	Setting        string  `json:"setting"`
	Settings       int     `json:"settings"`
	MaxWaitSeconds float64 `json:"max_wait_s"`
}

// PolicyRun is how one policy did in a simulation: the simulator's figures, each
// copied (sim.Result's JSON, so that histories recorded before replay), so that a
// change inside the simulator cannot change the contract unseen.
type PolicyRun struct {
	Name string `json:"name"`
	// Outcomes are every migration's; Wave and Adhoc the same for the planned
	// migrations and for the others.
	Outcomes
	Wave  Outcomes `json:"wave"`
	Adhoc Outcomes `json:"adhoc"`
	// Tiers are the same for each SLA tier's migrations, strictest first.
	Tiers          []TierOutcomes `json:"tiers"`
	ConnectorHours float64        `json:"connector_hours"`
	// Utilization is the share of paid task slots that moved bytes.
	Utilization float64 `json:"utilization"`
	// ScaleEvents counts connector starts and drains.
	ScaleEvents int `json:"scale_events"`
	// Failures are the transfers that failed and resumed elsewhere.
	Failures int `json:"failures"`
	// Unserved are the migrations a policy left without a connector.
	Unserved int `json:"unserved"`
	// Seconds is how long the run took.
	Seconds float64 `json:"run_seconds"`
	// VersusBaseline is the run's connector-hours over the baseline's; 0 without one.
	VersusBaseline float64 `json:"vs_baseline,omitempty"`
}

// TierOutcomes are how one SLA tier's simulated migrations did.
type TierOutcomes struct {
	Tier string `json:"tier"`
	Outcomes
}

// Outcomes are how a set of simulated migrations did: how many, how many breached
// their SLA, and the quantiles of their waits for a connector, in seconds.
type Outcomes struct {
	Migrations  int     `json:"migrations"`
	SLABreaches int     `json:"sla_breaches"`
	WaitP50     float64 `json:"wait_p50_s"`
	WaitP95     float64 `json:"wait_p95_s"`
	WaitP99     float64 `json:"wait_p99_s"`
}
