package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// FleetInput starts or continues a pool's fleet workflow.
type FleetInput struct {
	Pool string `json:"pool"`
	// Tick is the planning interval.
	Tick time.Duration `json:"tick"`
	// FastTick is the interval while migrations wait or connectors warm up, so that a
	// ready connector is used at once.
	FastTick time.Duration `json:"fast_tick"`
	// HorizonHours is how far ahead the forecast looks.
	HorizonHours int `json:"horizon_hours"`
	// LeadTime is how long before demand connectors are started.
	LeadTime time.Duration `json:"lead_time"`
	// Size is the connector size the autoscaler provisions.
	Size string `json:"size"`
	// MaxTicksPerRun bounds the history of one run: the workflow continues as new after
	// this many ticks, or earlier when Temporal suggests it.
	MaxTicksPerRun int `json:"max_ticks_per_run"`
	// Policy is the pool's scaling policy at first start; nil means
	// planning.DefaultPolicy. Later changes go through the policy update.
	Policy *planning.Policy `json:"policy,omitempty"`
	// State is carried across continue-as-new; nil on first start.
	State *FleetState `json:"state,omitempty"`
}

// withDefaults fills unset fields.
func (in FleetInput) withDefaults() FleetInput {
	if in.Tick <= 0 {
		in.Tick = planning.DefaultTick
	}
	if in.FastTick <= 0 {
		in.FastTick = 2 * time.Second
	}
	if in.HorizonHours <= 0 {
		in.HorizonHours = 48
	}
	if in.LeadTime <= 0 {
		in.LeadTime = planning.DefaultLeadTime
	}
	if in.Size == "" {
		in.Size = planning.DefaultSize
	}
	if in.MaxTicksPerRun <= 0 {
		in.MaxTicksPerRun = 500
	}
	return in
}

// Forward is a migration that waited for a connector at a site that moved to Pool.
type Forward struct {
	MigrationID string `json:"migration_id"`
	Pool        string `json:"pool"`
}

// FleetState is the fleet's desired state, small enough to carry across
// continue-as-new.
type FleetState struct {
	Sites []string `json:"sites"`
	// SiteReports is when any of PMO's connectors at each site last reported: a
	// site none has reported from for planning.UnreachableAfter is cut off, even
	// after the connectors it had were replaced. Read by key only.
	SiteReports map[string]time.Time   `json:"site_reports,omitempty"`
	Connectors  []planning.Connector   `json:"connectors"`
	Waiting     []planning.Reservation `json:"waiting"`
	// Arrived names the migrations that reserved since the last plan, which takes
	// the planned ones among them out of the known demand.
	Arrived []string `json:"arrived,omitempty"`
	// Forwarded are the migrations whose reservation went to another pool's fleet with
	// their site (handOver): their release goes there too.
	Forwarded []Forward           `json:"forwarded,omitempty"`
	Overrides []planning.Override `json:"overrides"`
	Audit     []AuditEntry        `json:"audit"`
	Plan      planning.Plan       `json:"plan"`
	NextSeq   int                 `json:"next_seq"`
	LastTick  time.Time           `json:"last_tick"`
	// Policy is the scaling policy in force; zero until the first run sets it.
	Policy planning.Policy `json:"policy"`
	// EventChanges are the last MaxEventChanges plan changes that system events
	// caused, oldest first.
	EventChanges []planning.EventPlanChange `json:"event_changes,omitempty"`
}

// PolicyRequest changes a pool's scaling policy: the fields given replace the current
// ones, the others stay. Who and why go to the audit trail; a simulation of the change
// needs neither.
type PolicyRequest struct {
	Mode            *string  `json:"mode,omitempty"`
	MinConnectors   *int     `json:"min_connectors,omitempty"`
	MaxConnectors   *int     `json:"max_connectors,omitempty"`
	ScaleInCooldown *string  `json:"scale_in_cooldown,omitempty"`
	GateMinCoverage *float64 `json:"gate_min_coverage,omitempty"`
	GateMinScored   *int     `json:"gate_min_scored,omitempty"`
	SLASlack        *bool    `json:"sla_slack,omitempty"`
	Who             string   `json:"who"`
	Why             string   `json:"why"`
}

// Apply returns p changed by the request, checked; who and why are not.
func (r PolicyRequest) Apply(p planning.Policy) (planning.Policy, error) {
	if r.Mode != nil {
		p.Mode = *r.Mode
	}
	if r.MinConnectors != nil {
		p.MinConnectors = *r.MinConnectors
	}
	if r.MaxConnectors != nil {
		p.MaxConnectors = *r.MaxConnectors
	}
	if r.ScaleInCooldown != nil {
		d, err := time.Duration(0), error(nil)
		if *r.ScaleInCooldown != planning.AutoCooldown {
			d, err = time.ParseDuration(*r.ScaleInCooldown)
		}
		if err != nil {
			return p, validation.Field("scale_in_cooldown", "must be %q or a duration such as 10m, got %q", planning.AutoCooldown, *r.ScaleInCooldown)
		}
		p.ScaleInCooldown = d
	}
	if r.GateMinCoverage != nil {
		p.GateMinCoverage = *r.GateMinCoverage
	}
	if r.GateMinScored != nil {
		p.GateMinScored = *r.GateMinScored
	}
	if r.SLASlack != nil {
		p.SLASlack = *r.SLASlack
	}
	if err := p.Validate(); err != nil {
		field, reason, _ := strings.Cut(err.Error(), ": ")
		return p, validation.Field(field, "%s", reason)
	}
	return p, nil
}

// MaxSimulateHours bounds a simulation's window to a week.
const MaxSimulateHours = 168

// SimulateRequest asks for a short simulation of the pool's planned work under its
// policy and under a proposed change to it.
type SimulateRequest struct {
	// Policy is the proposed change: its fields replace those of the policy in force.
	// Who and why are not needed, as nothing changes.
	Policy PolicyRequest `json:"policy"`
	// Hours is the window from now, 1 to MaxSimulateHours.
	Hours int `json:"hours"`
	// Seed draws the ad-hoc arrivals and the world's noise.
	Seed uint64 `json:"seed"`
}

// Validate names the first field that is wrong whatever the policy in force: the
// change is checked against the default policy, whose connector bounds are the
// loosest (no minimum, no maximum). The fleet checks it again against its own.
func (r SimulateRequest) Validate() error {
	if r.Hours < 1 || r.Hours > MaxSimulateHours {
		return validation.Field("hours", "must be between 1 and %d, got %d", MaxSimulateHours, r.Hours)
	}
	_, err := r.Proposed(planning.DefaultPolicy())
	return err
}

// Proposed is the given policy changed by the request; a bad field is named within
// "policy".
func (r SimulateRequest) Proposed(current planning.Policy) (planning.Policy, error) {
	p, err := r.Policy.Apply(current)
	var fe *validation.Error
	if errors.As(err, &fe) {
		return p, validation.Field("policy."+fe.Field, "%s", fe.Reason)
	}
	return p, err
}

// SimulateAnswer is the simulate update's answer: the policies compared and how each
// did.
type SimulateAnswer struct {
	Current  planning.Policy         `json:"current"`
	Proposed planning.Policy         `json:"proposed"`
	Result   contract.SimulateResult `json:"result"`
}

// AuditEntry is one thing an operator or the fleet did, kept for the overrides query.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Who    string    `json:"who"`
	Why    string    `json:"why"`
	Detail string    `json:"detail"`
}

// maxAudit bounds the audit trail kept in the workflow; PostgreSQL keeps all of it.
const maxAudit = 50

// OverridesView answers the overrides query.
type OverridesView struct {
	Active []planning.Override `json:"active"`
	Paused bool                `json:"paused"`
	Audit  []AuditEntry        `json:"audit"`
}

// Scale actions.
const (
	ScaleProvision = "provision"
	ScaleResize    = "resize"
	ScaleDrain     = "drain"
)

// ScaleRequest asks the fleet to provision connectors at a site, resize one, or drain one.
type ScaleRequest struct {
	Action      string `json:"action"`
	Site        string `json:"site,omitempty"`
	Count       int    `json:"count,omitempty"`
	ConnectorID string `json:"connector_id,omitempty"`
	Size        string `json:"size,omitempty"`
	Who         string `json:"who"`
	Why         string `json:"why"`
}

// MaxProvisionCount bounds one provision request.
const MaxProvisionCount = 50

// Validate checks the request's form; the fleet checks it against its state.
func (r ScaleRequest) Validate() error {
	if err := CheckWhoWhy(r.Who, r.Why, false); err != nil {
		return err
	}
	if err := checkNames(r.Who, r.Why, r.Site, r.ConnectorID); err != nil {
		return err
	}
	switch r.Action {
	case ScaleProvision:
		if r.Site == "" {
			return validation.Field("site", "is required to provision")
		}
		if r.Count < 1 || r.Count > MaxProvisionCount {
			return validation.Field("count", "must be between 1 and %d, got %d", MaxProvisionCount, r.Count)
		}
		if r.Size != "" {
			if _, ok := planning.SizeNamed(r.Size); !ok {
				return validation.Field("size", "must be one of %s, got %q", sizeNames(), r.Size)
			}
		}
	case ScaleResize:
		if r.ConnectorID == "" {
			return validation.Field("connector_id", "is required to resize")
		}
		if _, ok := planning.SizeNamed(r.Size); !ok {
			return validation.Field("size", "must be one of %s, got %q", sizeNames(), r.Size)
		}
	case ScaleDrain:
		if r.ConnectorID == "" {
			return validation.Field("connector_id", "is required to drain")
		}
	default:
		return validation.Field("action", "must be provision, resize or drain, got %q", r.Action)
	}
	return nil
}

// ScaleResult is what a scale request changed.
type ScaleResult struct {
	Action     string               `json:"action"`
	Connectors []planning.Connector `json:"connectors"`
}

// MaxOverrideDuration bounds how long an override lasts.
const MaxOverrideDuration = 7 * 24 * time.Hour

// MaxPinConnectors bounds a pin's min and max, as the policy bounds the pool's.
const MaxPinConnectors = 1000

// CheckOverrideText bounds what ValidateOverride leaves open: the names' length and
// characters, and a pin's counts. The API calls it; the workflow does not, see
// CheckWhoWhy.
func CheckOverrideText(o planning.Override) error {
	if err := checkNames(o.Who, o.Why, o.Site, o.ConnectorID); err != nil {
		return err
	}
	if o.Min > MaxPinConnectors {
		return validation.Field("min", "must be at most %d, got %d", MaxPinConnectors, o.Min)
	}
	if o.Max > MaxPinConnectors {
		return validation.Field("max", "must be at most %d, got %d", MaxPinConnectors, o.Max)
	}
	return nil
}

// checkNames bounds the who, why, site and connector of a scale request or override.
func checkNames(who, why, site, connectorID string) error {
	if err := CheckWhoWhy(who, why, true); err != nil {
		return err
	}
	if err := validation.Name("site", site); err != nil {
		return err
	}
	return validation.Name("connector_id", connectorID)
}

// ValidateOverride checks an override's form. At and Expires must be set by the caller.
func ValidateOverride(o planning.Override) error {
	if o.ID == "" {
		return validation.Field("id", "is required")
	}
	if err := CheckWhoWhy(o.Who, o.Why, false); err != nil {
		return err
	}
	if !o.Expires.After(o.At) {
		return validation.Field("expires", "must be after the override is made")
	}
	if o.Expires.Sub(o.At) > MaxOverrideDuration {
		return validation.Field("expires", "must be within %s", MaxOverrideDuration)
	}
	switch o.Kind {
	case planning.OverridePin:
		if o.Site == "" {
			return validation.Field("site", "is required to pin")
		}
		if o.Min < 0 {
			return validation.Field("min", "must not be negative")
		}
		if o.Max < 0 || (o.Max > 0 && o.Max < o.Min) {
			return validation.Field("max", "must be 0 (no limit) or at least min")
		}
		if o.Min == 0 && o.Max == 0 {
			return validation.Field("min", "a pin needs min or max")
		}
	case planning.OverridePause, planning.OverrideResume:
	case planning.OverrideDrain:
		if o.ConnectorID == "" {
			return validation.Field("connector_id", "is required to drain")
		}
	default:
		return validation.Field("kind", "must be pin, pause, resume or drain, got %q", o.Kind)
	}
	return nil
}

// CheckWhoWhy checks who asks and why, which every operator action records: both
// must be given. Bounded also bounds them as audit trails and logs need (a name, a
// note). The workflows check with bounded false, since they check again signals and
// updates already in their histories, which a bound added later must not refuse on
// replay; the API, which sees each request before any history does, checks with
// bounded true.
func CheckWhoWhy(who, why string, bounded bool) error {
	if strings.TrimSpace(who) == "" {
		return validation.Field("who", "is required: say who is acting")
	}
	if strings.TrimSpace(why) == "" {
		return validation.Field("why", "is required: say why, for the record")
	}
	if !bounded {
		return nil
	}
	if err := validation.Name("who", who); err != nil {
		return err
	}
	return validation.Note("why", why)
}

func sizeNames() string {
	names := make([]string, len(planning.Sizes))
	for i, s := range planning.Sizes {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// ForecastRequest asks what a set of migrations needs, and optionally plans them.
type ForecastRequest struct {
	ID            string            `json:"id"`
	VMIDs         []string          `json:"vm_ids,omitempty"`
	VMs           []planning.VMSpec `json:"vms,omitempty"`
	EarliestStart time.Time         `json:"earliest_start"`
	Deadline      time.Time         `json:"deadline"`
	SLATier       string            `json:"sla_tier,omitempty"`
	Plan          bool              `json:"plan"`
	// Wave is the wave a planned batch joins (POST /waves starts it): this request's
	// ID when empty. A wave of more than MaxForecastVMs is planned in several
	// requests, each with its own ID and the same wave.
	Wave string `json:"wave,omitempty"`
	// WhatIf asks for the plan that would follow a change, beside today's; nothing
	// changes, so it cannot be combined with Plan.
	WhatIf *WhatIfRequest `json:"what_if,omitempty"`
}

// WhatIfRequest is the change a what-if forecast plans for.
type WhatIfRequest struct {
	// AddWave adds this request's migrations as a wave.
	AddWave bool `json:"add_wave,omitempty"`
	// LoseLink names sites whose uplink goes down.
	LoseLink []string `json:"lose_link,omitempty"`
	// TightenSLA sets tiers' maximum transfer times.
	TightenSLA []planning.TierChange `json:"tighten_sla,omitempty"`
	// Blackout adds maintenance windows.
	Blackout []planning.Event `json:"blackout,omitempty"`
}

// MaxForecastVMs bounds one forecast request. The request is the fleet update's input,
// kept in its history: 2,000 VMs given by site and size are about 90 KB, well under
// Temporal's 256 KB for a payload. A bigger wave is planned in several requests.
const MaxForecastVMs = 2000

// MaxDiskBytes bounds a VM's disk in a forecast: 1 PiB.
const MaxDiskBytes = 1 << 50

// MaxWhatIfChanges bounds each list of a what-if: links lost, tiers tightened,
// blackouts.
const MaxWhatIfChanges = 100

// Validate checks the request's form.
func (r ForecastRequest) Validate() error {
	if err := validation.ID("id", r.ID); err != nil {
		return err
	}
	if r.Wave != "" {
		if !r.Plan {
			return validation.Field("wave", "needs \"plan\": true: only planned work joins a wave")
		}
		if err := validation.ID("wave", r.Wave); err != nil {
			return err
		}
	}
	n := len(r.VMIDs) + len(r.VMs)
	if n == 0 {
		return validation.Field("vm_ids", "give vm_ids or vms")
	}
	if n > MaxForecastVMs {
		return validation.Field("vm_ids", "at most %d VMs in one request, got %d", MaxForecastVMs, n)
	}
	for i, id := range r.VMIDs {
		if err := validation.ID(fmt.Sprintf("vm_ids[%d]", i), id); err != nil {
			return err
		}
	}
	for i, v := range r.VMs {
		if v.Site == "" {
			return validation.Field(fmt.Sprintf("vms[%d].site", i), "is required")
		}
		if err := validation.Name(fmt.Sprintf("vms[%d].site", i), v.Site); err != nil {
			return err
		}
		if v.DiskBytes <= 0 || v.DiskBytes > MaxDiskBytes {
			return validation.Field(fmt.Sprintf("vms[%d].disk_bytes", i), "must be positive and at most %d (1 PiB)", int64(MaxDiskBytes))
		}
	}
	if err := validation.Name("sla_tier", r.SLATier); err != nil {
		return err
	}
	if r.EarliestStart.IsZero() {
		return validation.Field("earliest_start", "is required (RFC 3339)")
	}
	if err := validation.Time("earliest_start", r.EarliestStart); err != nil {
		return err
	}
	if err := validation.Time("deadline", r.Deadline); err != nil {
		return err
	}
	if w := r.WhatIf; w != nil {
		if r.Plan {
			return validation.Field("plan", "a what-if changes nothing, so it cannot be planned; leave plan out")
		}
		for _, l := range []struct {
			field string
			n     int
		}{{"what_if.lose_link", len(w.LoseLink)}, {"what_if.tighten_sla", len(w.TightenSLA)}, {"what_if.blackout", len(w.Blackout)}} {
			if l.n > MaxWhatIfChanges {
				return validation.Field(l.field, "at most %d in one request, got %d", MaxWhatIfChanges, l.n)
			}
		}
		for i, site := range w.LoseLink {
			if err := validation.Name(fmt.Sprintf("what_if.lose_link[%d]", i), site); err != nil {
				return err
			}
		}
		for i, b := range w.Blackout {
			field := fmt.Sprintf("what_if.blackout[%d].", i)
			if b.Site == "" {
				return validation.Field(field+"site", "is required")
			}
			if err := validation.Name(field+"site", b.Site); err != nil {
				return err
			}
			if err := validation.Note(field+"detail", b.Detail); err != nil {
				return err
			}
			if err := validation.Time(field+"from", b.Starts); err != nil {
				return err
			}
			if err := validation.Time(field+"to", b.Ends); err != nil {
				return err
			}
			if !b.Ends.After(b.Starts) {
				return validation.Field(field+"to", "must be after from")
			}
		}
		for i, c := range w.TightenSLA {
			if c.Tier == "" || c.MaxTransfer <= 0 || c.MaxTransfer > MaxSLADuration {
				return validation.Field(fmt.Sprintf("what_if.tighten_sla[%d]", i), "needs a tier and a positive max_transfer of at most %s", MaxSLADuration)
			}
			if err := validation.Name(fmt.Sprintf("what_if.tighten_sla[%d].tier", i), c.Tier); err != nil {
				return err
			}
		}
	}
	if !r.Deadline.After(r.EarliestStart) {
		return validation.Field("deadline", "must be after earliest_start")
	}
	if r.Deadline.Sub(r.EarliestStart) > 30*24*time.Hour {
		return validation.Field("deadline", "must be within 30 days of earliest_start")
	}
	return nil
}

// SiteNeed is what one site needs for a forecast request.
type SiteNeed = planning.SiteEstimate

// ForecastAnswer is the predicted resources for a forecast request.
type ForecastAnswer struct {
	ID              string                `json:"id"`
	Sites           []SiteNeed            `json:"sites"`
	ExpectedSeconds float64               `json:"expected_seconds"`
	Bottlenecks     []planning.Bottleneck `json:"bottlenecks"`
	Reasoning       []string              `json:"reasoning"`
	Planned         bool                  `json:"planned"`
	// Today and WhatIf are the fleet's plan as it is and as it would be, for a
	// what-if request.
	Today  *planning.Plan `json:"today,omitempty"`
	WhatIf *planning.Plan `json:"what_if,omitempty"`
}
