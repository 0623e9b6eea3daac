// Package planning is PMO's planning core: demand, sizing, placement, scaling policy and
// assignment. It is plain deterministic Go with no Temporal and no SQL. Tick makes a
// tick's decisions in one place, so that the fleet (its Plan activity), the simulator
// and the what-if run exactly the same decisions.
//
// Units: bytes, bytes per second, seconds, millicores. In the demo, disk images are a
// scale model of the inventory (see docs/demo.md); the arithmetic does not care.
package planning

import (
	"fmt"
	"slices"
	"time"
)

// Size is what a connector is allocated.
type Size struct {
	Name              string  `json:"name"`
	CPUMillis         int     `json:"cpu_millis"`
	RAMBytes          int64   `json:"ram_bytes"`
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	StorageBytes      int64   `json:"storage_bytes"`
	// MaxTasks caps how many migrations run on the connector at once.
	MaxTasks int `json:"max_tasks"`
}

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// Sizes are the connector sizes the fleet provisions, smallest first. The bandwidths
// are real byte rates of the connector process.
var Sizes = []Size{
	{Name: "small", CPUMillis: 500, RAMBytes: 256 * mib, BandwidthBytesSec: float64(1 * mib), StorageBytes: 2 * gib, MaxTasks: 2},
	{Name: "medium", CPUMillis: 1000, RAMBytes: 512 * mib, BandwidthBytesSec: float64(4 * mib), StorageBytes: 8 * gib, MaxTasks: 4},
	{Name: "large", CPUMillis: 2000, RAMBytes: 1 * gib, BandwidthBytesSec: float64(16 * mib), StorageBytes: 32 * gib, MaxTasks: 8},
}

// DefaultSize is the size the fleet provisions when nothing asks for another.
const DefaultSize = "medium"

// SizeNamed returns the standard size with that name.
func SizeNamed(name string) (Size, bool) {
	for _, s := range Sizes {
		if s.Name == name {
			return s, true
		}
	}
	return Size{}, false
}

// ConnectorState is where a connector is in its life.
type ConnectorState string

// Connector states. Warm means running and polling with minimal allocation; active
// means it has migrations assigned; draining takes no new work and stops when idle.
const (
	StateWarming  ConnectorState = "warming"
	StateWarm     ConnectorState = "warm"
	StateActive   ConnectorState = "active"
	StateDraining ConnectorState = "draining"
	StateStopped  ConnectorState = "stopped"
	StateFailed   ConnectorState = "failed"
	// StateUnhealthy is an external connector whose metrics stopped coming: it takes
	// no work until they return.
	StateUnhealthy ConnectorState = "unhealthy"
)

// DefaultStaleAfter is how long an external connector may go without reporting
// metrics before the fleet stops giving it work.
const DefaultStaleAfter = 2 * time.Minute

// Connector is the fleet's view of one connector.
type Connector struct {
	ID         string         `json:"id"`
	Site       string         `json:"site"`
	State      ConnectorState `json:"state"`
	Size       Size           `json:"size"`
	TaskQueue  string         `json:"task_queue"`
	Migrations []Task         `json:"migrations"`
	CreatedAt  time.Time      `json:"created_at"`
	ReadyAt    time.Time      `json:"ready_at,omitzero"`
	Usage      Usage          `json:"usage"`
	// Manual connectors were asked for by an operator; autoscaling never drains them.
	Manual bool `json:"manual"`
	// IdleSince is when the connector last had no migration; zero while it has some.
	IdleSince time.Time `json:"idle_since,omitzero"`
	// Reason is why the connector was started, or, once it drains, why it drains.
	Reason string `json:"reason,omitempty"`
	// External connectors run at a customer site and were registered, not started, by
	// PMO: the fleet never starts, restarts, resizes, stops or scales them in, and
	// judges their health by the metrics they post.
	External bool `json:"external,omitempty"`
	// StaleAfter is how long an external connector may stay silent before it is
	// unhealthy; LastSeen is when the fleet last received its metrics.
	StaleAfter time.Duration `json:"stale_after,omitempty"`
	LastSeen   time.Time     `json:"last_seen,omitzero"`
	// Unreachable says that the process of one of PMO's connectors runs but its last
	// report is older than UnreachableAfter: PMO cannot reach it, as when its site's
	// link is down. It is shown, not acted on: the connector's work waits for it.
	Unreachable bool `json:"unreachable,omitempty"`
}

// UnreachableAfter is how long a running connector of PMO's may go without a metrics
// sample (it takes one every 2 s) before it counts as unreachable.
const UnreachableAfter = 30 * time.Second

// UnreachableSites are the sites whose live connectors of PMO's are all unreachable,
// in order: sites cut off from the cloud.
func UnreachableSites(conns []Connector) []string {
	seen := map[string]bool{} // site: all unreachable so far
	for _, c := range conns {
		if c.External || !c.Live() {
			continue
		}
		all, ok := seen[c.Site]
		seen[c.Site] = c.Unreachable && (all || !ok)
	}
	var sites []string
	for site, all := range seen {
		if all {
			sites = append(sites, site)
		}
	}
	slices.Sort(sites)
	return sites
}

// Stale reports whether an external connector's metrics are missing or older than
// its StaleAfter at now; always false for PMO's own connectors.
func (c Connector) Stale(now time.Time) bool {
	return c.External && (c.LastSeen.IsZero() || now.Sub(c.LastSeen) > c.StaleAfter)
}

// Live reports whether the connector counts towards its site's capacity.
func (c Connector) Live() bool {
	return c.State == StateWarming || c.State == StateWarm || c.State == StateActive
}

// Accepting reports whether new migrations may be assigned to the connector.
func (c Connector) Accepting() bool {
	return (c.State == StateWarm || c.State == StateActive) && len(c.Migrations) < c.Size.MaxTasks
}

// Task is a migration assigned to a connector, with the bandwidth it was given.
type Task struct {
	MigrationID       string    `json:"migration_id"`
	BandwidthBytesSec float64   `json:"bandwidth_bytes_per_sec"`
	Bytes             int64     `json:"bytes"`
	Deadline          time.Time `json:"deadline"`
}

// Usage is what a connector reported about itself most recently.
type Usage struct {
	At                    time.Time `json:"at,omitzero"`
	CPUPercent            float64   `json:"cpu_percent"`
	RAMBytes              int64     `json:"ram_bytes"`
	BandwidthUsedBytesSec float64   `json:"bandwidth_used_bytes_per_sec"`
	ActiveTasks           int       `json:"active_tasks"`
	// StorageUsedBytes is what the connector holds for transfers not yet cut over.
	StorageUsedBytes int64 `json:"storage_used_bytes"`
	// TargetFreeBytes is the free space of the target storage the connector writes
	// to; zero where it has not been measured.
	TargetFreeBytes int64 `json:"target_free_bytes,omitempty"`
	// ReadLatencySeconds is the mean time the connector's reads from the VMs' disks
	// took over the last interval; zero where it read nothing.
	ReadLatencySeconds float64 `json:"read_latency_seconds,omitempty"`
	// CPUThrottledPercent is the time its CPU limit held the connector back over the
	// last interval, as a percentage of that interval; zero where it has no limit or
	// was never held back.
	CPUThrottledPercent float64 `json:"cpu_throttled_percent,omitempty"`
}

// Reservation is a migration waiting for a connector at its site.
type Reservation struct {
	MigrationID string    `json:"migration_id"`
	WorkflowID  string    `json:"workflow_id"`
	Site        string    `json:"site"`
	Bytes       int64     `json:"bytes"`
	Deadline    time.Time `json:"deadline"`
	Priority    int       `json:"priority"`
	RequestedAt time.Time `json:"requested_at"`
	// Avoid are connectors that failed under this migration and must not get it again.
	Avoid []string `json:"avoid,omitempty"`
	// Planned is set by the fleet, not the migration: the reservation is for work
	// planned through a forecast, which the assignment then tells the migration.
	Planned bool `json:"planned,omitempty"`
}

// CanWait reports whether the migration can still wait replace for a connector to
// boot: its deadline leaves that long beyond its copy at one task's share of size.
// A migration without a deadline cannot tell, so it cannot wait.
func (r Reservation) CanWait(now time.Time, replace time.Duration, size Size) bool {
	if r.Deadline.IsZero() || size.MaxTasks < 1 || size.BandwidthBytesSec <= 0 {
		return false
	}
	copying := time.Duration(float64(r.Bytes) / (size.BandwidthBytesSec / float64(size.MaxTasks)) * float64(time.Second))
	return r.Deadline.Sub(now)-copying >= replace
}

// PlannedMigration is known future work: it enters demand as it is, not forecast.
type PlannedMigration struct {
	ID            string    `json:"id"`
	VMID          string    `json:"vm_id"`
	Site          string    `json:"site"`
	Bytes         int64     `json:"bytes"`
	SLATier       string    `json:"sla_tier"`
	EarliestStart time.Time `json:"earliest_start"`
	Deadline      time.Time `json:"deadline"`
	// Wave is the forecast request it was planned in, which a wave workflow starts.
	Wave string `json:"wave,omitempty"`
}

// PlannedBatch is a forecast request's batch as known work, every migration between
// start and deadline: the inventory's VMs as <id>-<vm>, in their own tier unless tier
// is set, then the VMs given by site and size as <id>-<i>, in tier.
func PlannedBatch(id string, vms []VM, specs []VMSpec, tier string, start, deadline time.Time) []PlannedMigration {
	batch := make([]PlannedMigration, 0, len(vms)+len(specs))
	for _, vm := range vms {
		t := vm.SLATier
		if tier != "" {
			t = tier
		}
		batch = append(batch, PlannedMigration{ID: id + "-" + vm.ID, VMID: vm.ID, Site: vm.Site, Bytes: vm.DiskBytes,
			SLATier: t, EarliestStart: start, Deadline: deadline, Wave: id})
	}
	for i, spec := range specs {
		batch = append(batch, PlannedMigration{ID: fmt.Sprintf("%s-%d", id, i), Site: spec.Site, Bytes: spec.DiskBytes,
			SLATier: tier, EarliestStart: start, Deadline: deadline, Wave: id})
	}
	return batch
}

// VMSpec describes a VM that is not (yet) in the inventory, for a forecast.
type VMSpec struct {
	Site      string `json:"site"`
	DiskBytes int64  `json:"disk_bytes"`
}

// SLATier bounds transfer time and downtime, and says which demand quantile to size for.
type SLATier struct {
	Name         string        `json:"name"`
	MaxTransfer  time.Duration `json:"max_transfer"`
	MaxDowntime  time.Duration `json:"max_downtime"`
	PlanQuantile float64       `json:"plan_quantile"`
}

// Demand is the expected number of migration arrivals at a site in one hour.
type Demand struct {
	Site string    `json:"site"`
	Hour time.Time `json:"hour"`
	// Planned is known work that starts in this hour.
	Planned float64 `json:"planned"`
	// PlannedBytes is the bytes of the known work.
	PlannedBytes float64 `json:"planned_bytes"`
	// AdhocMean, AdhocLo and AdhocHi are the forecast of other arrivals: the mean and
	// the 10% and 90% quantiles.
	AdhocMean float64 `json:"adhoc_mean"`
	AdhocLo   float64 `json:"adhoc_lo"`
	AdhocHi   float64 `json:"adhoc_hi"`
	// AdhocBytesMean, AdhocBytesLo and AdhocBytesHi forecast the bytes those arrivals
	// bring, at the same levels; all zero where no volume forecast was made.
	AdhocBytesMean float64 `json:"adhoc_bytes_mean"`
	AdhocBytesLo   float64 `json:"adhoc_bytes_lo"`
	AdhocBytesHi   float64 `json:"adhoc_bytes_hi"`
	// BaselineLo and BaselineHi are the same quantiles of the plainest forecast of
	// those arrivals, each hour of day's mean over the last four weeks as a Poisson
	// rate: the baseline the forecast's skill is scored against (ForecastAccuracy).
	BaselineLo float64 `json:"baseline_lo"`
	BaselineHi float64 `json:"baseline_hi"`
	// Model is the forecasting model that answered for the site, and Fallback why the
	// model asked for did not, if it did not.
	Model    string `json:"model,omitempty"`
	Fallback string `json:"fallback,omitempty"`
}

// ForecastAccuracy is how one site's forecasts did once their hours had passed: the
// realised error of arrivals per hour (planned plus ad-hoc) against what started.
type ForecastAccuracy struct {
	Site string `json:"site"`
	// Scored is how many forecast hours were compared.
	Scored int `json:"scored"`
	// MAE is the mean absolute error in migrations per hour; Bias the mean of forecast
	// minus actual.
	MAE  float64 `json:"mae"`
	Bias float64 `json:"bias"`
	// Coverage is the share of hours whose actual fell within the forecast's band,
	// which runs from the LoLevel to the HiLevel quantile.
	Coverage float64 `json:"coverage"`
	LoLevel  float64 `json:"lo_level"`
	HiLevel  float64 `json:"hi_level"`
	// Pinball is the forecasts' mean pinball loss at the band's two quantiles, and
	// BaselinePinball the hour-of-day rate's (Demand.BaselineLo and BaselineHi), both
	// over the SkillScored hours that stored the baseline. Skill is 1 − Pinball /
	// BaselinePinball: above 0 the forecast beats the plainest one, at or below 0 it
	// has no skill; 0 where nothing was scored.
	SkillScored     int     `json:"skill_scored"`
	Pinball         float64 `json:"pinball"`
	BaselinePinball float64 `json:"baseline_pinball"`
	Skill           float64 `json:"skill"`
}

// Override kinds.
const (
	OverridePin    = "pin"
	OverridePause  = "pause"
	OverrideResume = "resume"
	OverrideDrain  = "drain"
)

// Override is an operator's instruction to the fleet: pin a site's connector count,
// pause or resume autoscaling, or drain a connector. It says who, why and until when.
type Override struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Site        string    `json:"site,omitempty"`
	ConnectorID string    `json:"connector_id,omitempty"`
	Min         int       `json:"min,omitempty"`
	Max         int       `json:"max,omitempty"`
	Who         string    `json:"who"`
	Why         string    `json:"why"`
	At          time.Time `json:"at"`
	Expires     time.Time `json:"expires"`
}
