package planning

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// World is everything one planning tick knows. The fleet's Plan activity reads it
// from PostgreSQL and the fleet's state; the simulator's predictive policy builds it
// from its simulated world; a what-if is the same world changed.
type World struct {
	Now time.Time
	// Size is the size new connectors get.
	Size Size
	// LeadTime is the operator's lead time, the floor of the learned one; Tick is the
	// fleet's planning interval, which the lead time allows for.
	LeadTime time.Duration
	Tick     time.Duration
	// Sites are the pool's sites' profiles and Tiers the SLA tiers.
	Sites []Site
	Tiers []SLATier
	// Demand is the forecast over the horizon with the planned work in it
	// (ForecastDemand), and Planned that work, not yet arrived.
	Demand  []Demand
	Planned []PlannedMigration
	// Models says which forecasting model answered at each site; empty adds no reason.
	Models string
	// Accuracy is each site's realised forecast error over the past week, for the
	// policy's accuracy gate; nil where no forecast was scored.
	Accuracy []ForecastAccuracy
	// Events are the pool's system events that overlap the horizon.
	Events []KeyedEvent
	// Outcomes are each site's migration outcomes, recent and over the history, in
	// which the tick looks for anomalies.
	Outcomes []SiteOutcomes
	// ReadyDelays are how long recent connectors took to become ready, in seconds.
	ReadyDelays []float64
	// Resources and Target are what the pool's connectors measured of themselves: the
	// resource model (nil while there are too few samples) and the target storage.
	Resources *ResourceModel
	Target    TargetSpace
	// Rate is the model of the rate a migration moves at; nil while there is too
	// little history, and RateWhy then says so. RateAccuracy is how it did on held-out
	// history.
	Rate         *RateModel
	RateAccuracy RateAccuracy
	RateWhy      string
	// WhatIf, if set, changes the world before planning.
	WhatIf *WhatIf
	// Fleet is the pool's connectors, work and rules: with it the tick also decides
	// what to start, drain, stop and place; without it (an estimate's what-if) it only
	// plans.
	Fleet *Fleet
}

// Fleet is what a tick's decision needs of the fleet's own state.
type Fleet struct {
	Connectors []Connector   `json:"connectors"`
	Waiting    []Reservation `json:"waiting"`
	Policy     Policy        `json:"policy"`
	// Overrides are the operators' pins and pause in force.
	Overrides []Override `json:"overrides"`
	// Sites are the pool's sites: a connector is started at no other.
	Sites []string `json:"sites"`
}

// Clone copies the fleet, so that a copy kept stays as it was while the fleet changes.
func (f Fleet) Clone() Fleet {
	f.Connectors, f.Waiting, f.Overrides, f.Sites = slices.Clone(f.Connectors), slices.Clone(f.Waiting), slices.Clone(f.Overrides), slices.Clone(f.Sites)
	return f
}

// Decision is what a tick decides: the plan, and with a fleet what to change in it.
// The plan is embedded, so that a plan from before decisions were made with it still
// reads as a decision, with Decided unset.
type Decision struct {
	Plan
	// Scale is what to start, drain and stop, and why.
	Scale ScaleDecision `json:"scale"`
	// Place is which waiting migrations go to which connector, and the connectors to
	// start for work waiting at a site with none.
	Place Placement `json:"place"`
	// Detected are the anomalies found in the sites' outcomes, which the fleet records
	// as events.
	Detected []Anomaly `json:"detected,omitempty"`
	// Decided says that Scale and Place were decided (the tick had a fleet).
	Decided bool `json:"decided,omitempty"`
}

// Published is the plan as the fleet shows it: the tick's plan with the scaling
// decision's reasons and shortfalls.
func (d Decision) Published() Plan {
	p := d.Plan
	p.Reasons = append(slices.Clip(p.Reasons), d.Scale.Reasons...)
	p.Bottlenecks = append(slices.Clip(p.Bottlenecks), d.Scale.Bottlenecks...)
	return p
}

// Placement is where waiting migrations go.
type Placement struct {
	Assignments []Assignment `json:"assignments,omitempty"`
	// Start are connectors to start at once, where work waits with no live connector.
	Start []StartDecision `json:"start,omitempty"`
	// Connectors are the fleet's connectors with the assignments made.
	Connectors []Connector `json:"-"`
}

// Tick is the planning tick, the one place its decisions are made: the lead time
// learned from connector starts, anomalies, the demand sized into connector targets
// per site (Predict), the rate model's expected durations, and, with a fleet, the
// scaling decision and the placement of waiting work (Decide).
func Tick(w World) Decision {
	w.ReadyDelays = slices.Sorted(slices.Values(w.ReadyDelays)) // one sort for the boot's quantiles below
	lead, leadWhy := LeadTime(w.LeadTime, w.Tick, w.ReadyDelays)
	detected := Anomalies(w.Outcomes)
	// Anomalies that operators and their monitoring report widen demand like detected ones.
	anomalies := append(slices.Clone(detected), EventAnomalies(w.Events, w.Now)...)
	in := PredictInput{
		Now: w.Now, Demand: w.Demand, Sites: w.Sites, Events: Events(w.Events), Planned: w.Planned, Tiers: w.Tiers,
		Size: w.Size, LeadTime: lead, Anomalies: anomalies, ReplaceTime: ReplaceTime(w.Tick, w.ReadyDelays),
		WaveLeadTime: WaveLeadTime(lead, w.Tick, w.ReadyDelays), Resources: w.Resources, Target: w.Target,
		SLASlack: w.Fleet != nil && w.Fleet.Policy.SLASlack,
	}
	if w.WhatIf != nil {
		in = w.WhatIf.Apply(in)
	}
	plan := Predict(in)
	plan.Events = EventStates(w.Events)
	plan.Reasons = append(plan.Reasons, rateReasons(plan.Targets, w)...)
	plan.LeadTimeSeconds = lead.Seconds()
	plan.BootSeconds = BootTime(w.ReadyDelays).Seconds()
	plan.ReplaceSeconds = in.ReplaceTime.Seconds()
	if _, measured := readyQuantile(0.9, w.ReadyDelays); !measured {
		// Until boots are measured, a migration that may wait for one must be able
		// to wait the lead time, not a tick.
		plan.ReplaceSeconds = lead.Seconds()
	}
	plan.Reasons = append(plan.Reasons, leadWhy)
	if w.Models != "" {
		plan.Reasons = append(plan.Reasons, "forecast model: "+w.Models)
	}
	if w.Accuracy != nil {
		plan.ForecastAccuracy = w.Accuracy
	}
	d := Decision{Plan: plan, Detected: detected}
	if w.Fleet != nil {
		d.Scale, d.Place = Decide(plan, *w.Fleet, w.Size, w.Now)
		d.Decided = true
		// Shown, not acted on: the site's work waits for its link.
		for _, site := range UnreachableSites(w.Fleet.Connectors) {
			d.Plan.Bottlenecks = append(d.Plan.Bottlenecks, Bottleneck{Site: site, Kind: "unreachable", From: w.Now, To: w.Now,
				Detail: fmt.Sprintf("no connector at %s has reported for over %s: the site's link to the cloud may be down; its migrations wait for it",
					site, UnreachableAfter)})
		}
	}
	return d
}

// rateReasons sets each target's expected duration by the rate model, and says so.
func rateReasons(targets []SiteTarget, w World) []string {
	if w.Rate == nil {
		if w.RateWhy == "" {
			return nil
		}
		return []string{w.RateWhy}
	}
	reasons := []string{w.RateAccuracy.String()}
	for i, t := range targets {
		if t.Connectors == 0 {
			continue
		}
		bytes := meanBytes(w.Sites, t.Site)
		_, mid, hi := w.Rate.Predict(RateObservation{Site: t.Site, Bytes: bytes, StartedAt: w.Now, ConnectorBandwidthBytesSec: w.Size.BandwidthBytesSec})
		targets[i].ExpectedSeconds = math.Round(float64(bytes) / mid)
		reasons = append(reasons, fmt.Sprintf("%s: a typical migration moves at %s (p90 %s) by the rate model: about %.0f s",
			t.Site, rate(mid), rate(hi), targets[i].ExpectedSeconds))
	}
	return reasons
}

// meanBytes is a site's mean migration size from its profile.
func meanBytes(sites []Site, id string) int64 {
	for _, s := range sites {
		if s.ID == id {
			return int64(s.MeanBytes)
		}
	}
	return 0
}

// Decide is the fleet's half of a tick: the scaling policy on the plan, for connectors
// of the given size, then the placement of waiting work on the fleet as the scaling
// leaves it. The fleet workflow decides with it again when its state changed while
// the plan was made.
func Decide(plan Plan, f Fleet, size Size, now time.Time) (ScaleDecision, Placement) {
	s := Scale(ScaleInput{
		Now: now, Size: size, Targets: plan.Targets, Connectors: f.Connectors, Waiting: f.Waiting, Policy: f.Policy, Boot: seconds(plan.BootSeconds),
		Replace:  seconds(plan.ReplaceSeconds),
		Accuracy: plan.ForecastAccuracy, Paused: Paused(f.Overrides), Pins: Pins(f.Overrides), Bottlenecks: plan.Bottlenecks,
	})
	// Drained connectors take no work; stopped ones are drained with none, so they
	// change no placement.
	f.Connectors = slices.Clone(f.Connectors)
	for _, x := range s.Drain {
		if i := slices.IndexFunc(f.Connectors, func(c Connector) bool { return c.ID == x.ID }); i >= 0 {
			f.Connectors[i].State = StateDraining
		}
	}
	return s, Place(f, plan, size, s.Start, now)
}

// Place gives waiting migrations a connector (Assign), except at sites in a
// maintenance window, which wait for its end; with the policy's SLA slack, a migration
// that can wait a replacement's boot (Reservation.CanWait, for connectors of size)
// leaves its site's headroom free for those that cannot. Then, unless autoscaling is
// paused, it starts a connector where work waits with none live and none among
// pending starts (Stranded), at a site of the pool that is open and not pinned to
// none. The fleet places with it on every reservation, between ticks too.
func Place(f Fleet, plan Plan, size Size, pending []StartDecision, now time.Time) Placement {
	if len(f.Waiting) == 0 {
		return Placement{Connectors: f.Connectors}
	}
	closed := func(site string) bool {
		_, closed := UnderMaintenance(plan.Bottlenecks, site, now)
		return closed
	}
	var leave func(Reservation) int
	if f.Policy.SLASlack {
		replace := seconds(plan.ReplaceSeconds)
		held := make(map[string]int, len(plan.Targets))
		for _, t := range plan.Targets {
			held[t.Site] = t.Headroom
		}
		leave = func(r Reservation) int {
			if !r.CanWait(now, replace, size) {
				return 0
			}
			return held[r.Site]
		}
	}
	open := slices.DeleteFunc(slices.Clone(f.Waiting), func(r Reservation) bool { return closed(r.Site) })
	assigned, conns := Assign(f.Connectors, open, leave)
	p := Placement{Assignments: assigned, Connectors: conns}
	if Paused(f.Overrides) {
		return p
	}
	left := slices.DeleteFunc(slices.Clone(f.Waiting), func(r Reservation) bool {
		return slices.ContainsFunc(assigned, func(a Assignment) bool { return a.MigrationID == r.MigrationID })
	})
	pins := Pins(f.Overrides)
	may := func(site string) bool {
		return !closed(site) && slices.Contains(f.Sites, site) && !pinnedToNone(pins, site)
	}
	p.Start = Stranded(conns, pending, left, f.Policy, may)
	return p
}

// Paused reports whether an operator paused autoscaling.
func Paused(overrides []Override) bool {
	return slices.ContainsFunc(overrides, func(o Override) bool { return o.Kind == OverridePause })
}

// Pins are the operators' pins among the overrides.
func Pins(overrides []Override) []Pin {
	var pins []Pin
	for _, o := range overrides {
		if o.Kind == OverridePin {
			pins = append(pins, Pin{Site: o.Site, Min: o.Min, Max: o.Max, Who: o.Who, Why: o.Why, Until: o.Expires})
		}
	}
	return pins
}

// pinnedToNone reports whether a pin holds the site at no connectors.
func pinnedToNone(pins []Pin, site string) bool {
	return slices.ContainsFunc(pins, func(p Pin) bool { return p.Site == site && p.Min == 0 && p.Max == 0 })
}
