package planning

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// EstimateInput is a batch of known migrations to size, with the ad-hoc demand
// forecast for the same window and the fleet's state that bounds and explains it.
type EstimateInput struct {
	Planned []PlannedMigration
	Demand  []Demand
	Sites   []Site
	Events  []Event
	Tiers   []SLATier
	Size    Size
	Fleet   FleetView
	// Resources, when fitted, says what a connector of Size uses at full load.
	Resources *ResourceModel
	// Target is the target storage's free space as connectors last measured it.
	Target TargetSpace
}

// FleetView is what the fleet knows that bounds an estimate and explains it. The zero
// value bounds nothing.
type FleetView struct {
	// Policy bounds the batch's sites together, as Scale bounds the plan's sites.
	Policy Policy
	// Paused is an operator's pause; Pins hold sites to a count whatever they need.
	Paused bool
	Pins   []Pin
	// LeadTime is the lead time in force (the fleet's last plan's), LeadTimeSetting the
	// operator's setting under it.
	LeadTime        time.Duration
	LeadTimeSetting time.Duration
	// Accuracy is each site's realised forecast error, from the fleet's last plan.
	Accuracy []ForecastAccuracy
}

// SiteEstimate is what one site needs to finish its share of the batch in time.
type SiteEstimate struct {
	Site              string  `json:"site"`
	Migrations        int     `json:"migrations"`
	Bytes             int64   `json:"bytes"`
	Connectors        int     `json:"connectors"`
	CPUMillis         int     `json:"cpu_millis"`
	RAMBytes          int64   `json:"ram_bytes"`
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	StorageBytes      int64   `json:"storage_bytes"`
	ExpectedSeconds   float64 `json:"expected_seconds"`
	// Arithmetic is how Connectors was reached and what the fleet would run.
	Arithmetic Arithmetic `json:"arithmetic"`
}

// Arithmetic is how a site's estimate was reached, number by number: the work, one
// connector's capacity, the need, when connectors start, what bounded them, and the
// forecast in it with its recent error.
type Arithmetic struct {
	Known    KnownWork         `json:"known"`
	Adhoc    AdhocWork         `json:"adhoc"`
	Capacity ConnectorCapacity `json:"capacity"`
	Need     ConnectorNeed     `json:"need"`
	LeadTime LeadTimeUsed      `json:"lead_time"`
	Bound    BoundApplied      `json:"bound"`
	Model    SiteModel         `json:"model"`
}

// KnownWork is the batch's migrations at a site and the window they must run in.
type KnownWork struct {
	Migrations    int       `json:"migrations"`
	Bytes         int64     `json:"bytes"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	WindowSeconds float64   `json:"window_seconds"`
}

// AdhocWork is the other work forecast at a site within the window, at the quantile
// that the site's strictest SLA tier plans for.
type AdhocWork struct {
	Migrations float64 `json:"migrations"`
	Bytes      int64   `json:"bytes"`
	Quantile   float64 `json:"quantile"`
	// Tier is the strictest SLA tier in use at the site, which set Quantile; empty
	// where the site has none and the median stands.
	Tier string `json:"tier,omitempty"`
	Why  string `json:"why"`
}

// ConnectorCapacity is what one connector of the fleet's size carries.
type ConnectorCapacity struct {
	Size              string  `json:"size"`
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	MaxTasks          int     `json:"max_tasks"`
	// PerTaskBytesSec is one migration's share: the bandwidth over the task cap.
	PerTaskBytesSec float64 `json:"per_task_bytes_per_sec"`
}

// ConnectorNeed is what a site's work needs, and the connectors before and after the
// bounds.
type ConnectorNeed struct {
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	InFlight          float64 `json:"in_flight"`
	Connectors        int     `json:"connectors"`
	// BoundedConnectors is what the fleet would run for it under the pool's policy and
	// the operators' pins.
	BoundedConnectors int `json:"bounded_connectors"`
}

// LeadTimeUsed is how long ahead of its work the fleet starts connectors.
type LeadTimeUsed struct {
	Seconds float64 `json:"seconds"`
	// Source is "learned" (from how long connectors took to become ready) or
	// "setting" (the operator's, when nothing longer was learned).
	Source string `json:"source"`
	// StartAt is when the fleet starts the connectors for a planned batch: the lead
	// time before the hour the batch starts in, as Predict looks ahead.
	StartAt time.Time `json:"start_at"`
}

// BoundApplied is the policy rule or operator override that set a site's connectors
// after its need.
type BoundApplied struct {
	// Kind is one of the Bound constants.
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// SiteModel is the model that forecast a site's ad-hoc work and how its forecasts did.
type SiteModel struct {
	Name string `json:"name"`
	// Fallback is why the model asked for did not answer, if it did not.
	Fallback string `json:"fallback,omitempty"`
	// Accuracy is the site's realised error over the past week, from the fleet's last
	// plan; nil before any hour was scored.
	Accuracy *ForecastAccuracy `json:"accuracy,omitempty"`
	// Error says the same for people, or "not scored yet".
	Error string `json:"error"`
}

// Estimate is the answer for a batch: per-site needs, bottlenecks and reasons.
type Estimate struct {
	Sites           []SiteEstimate `json:"sites"`
	ExpectedSeconds float64        `json:"expected_seconds"`
	Bottlenecks     []Bottleneck   `json:"bottlenecks"`
	Reasons         []string       `json:"reasons"`
}

// EstimateBatch sizes each site for a batch of known migrations that must all run
// between their earliest start and their deadline, on top of the ad-hoc work forecast
// for that window at the quantile of the site's strictest SLA tier. With window W,
// batch bytes B, n migrations and ad-hoc bytes A:
//
//	bandwidth  = (B + A) / W
//	in flight  = n · (B/n / per-task rate) / W
//	connectors = max(⌈bandwidth / size bandwidth⌉, ⌈in flight / max tasks⌉, 1)
//
// and the expected duration is the time those connectors take to move the batch:
// max(B / (connectors · size bandwidth), largest migration / per-task rate).
//
// The fleet's rules then bound the connectors as Scale would: the accuracy gate,
// forecast-only mode or a pause, the pool's bounds over the batch's sites together,
// and pins last. A site that a bound leaves short is a "connectors" bottleneck. Each
// site's Arithmetic and its sentence in Reasons say how it was reached.
func EstimateBatch(in EstimateInput) Estimate {
	// Empty lists, not null, for API clients.
	est := Estimate{Sites: []SiteEstimate{}, Bottlenecks: []Bottleneck{}, Reasons: []string{}}
	size := in.Size
	perTask := size.BandwidthBytesSec / float64(size.MaxTasks)
	var sites []string
	for _, p := range in.Planned {
		if !slices.Contains(sites, p.Site) {
			sites = append(sites, p.Site)
		}
	}
	slices.Sort(sites)
	var bottlenecks []Bottleneck
	var written []hourBytes // what the batch and the ad-hoc work write to the target, hour by hour
	for _, id := range sites {
		var batch []PlannedMigration
		for _, p := range in.Planned {
			if p.Site == id {
				batch = append(batch, p)
			}
		}
		profile := Site{ID: id, StrictestQuantile: 0.5}
		for _, s := range in.Sites {
			if s.ID == id {
				profile = s
			}
		}
		var bytes, largest int64
		start, end := batch[0].EarliestStart, batch[0].Deadline
		for _, p := range batch {
			bytes += p.Bytes
			largest = max(largest, p.Bytes)
			if p.EarliestStart.Before(start) {
				start = p.EarliestStart
			}
			if p.Deadline.After(end) {
				end = p.Deadline
			}
		}
		window := end.Sub(start).Seconds()
		var adhoc, adhocBytes float64
		model := SiteModel{Name: "none"}
		written = append(written, hourBytes{start.Truncate(time.Hour), float64(bytes)})
		for _, d := range in.Demand {
			if d.Site == id && !d.Hour.Before(start.Truncate(time.Hour)) && d.Hour.Before(end) {
				n, b := d.adhocAt(profile.StrictestQuantile, profile.MeanBytes)
				adhoc, adhocBytes = adhoc+n, adhocBytes+b
				written = append(written, hourBytes{d.Hour, b})
				model.Name, model.Fallback = d.Model, d.Fallback
			}
		}
		model.Accuracy, model.Error = accuracyAt(id, in.Fleet.Accuracy)
		bandwidth := (float64(bytes) + adhocBytes) / window
		inFlight := float64(bytes) / perTask / window
		n := max(ceilPos(bandwidth/size.BandwidthBytesSec), ceilPos(inFlight/float64(size.MaxTasks)), 1)
		duration := math.Max(float64(bytes)/(float64(n)*size.BandwidthBytesSec), float64(largest)/perTask)
		se := SiteEstimate{
			Site: id, Migrations: len(batch), Bytes: bytes, Connectors: n,
			CPUMillis: n * size.CPUMillis, RAMBytes: int64(n) * size.RAMBytes,
			BandwidthBytesSec: float64(n) * size.BandwidthBytesSec, StorageBytes: max(int64(n)*size.StorageBytes, bytes),
			ExpectedSeconds: math.Round(duration),
			Arithmetic: Arithmetic{
				Known: KnownWork{Migrations: len(batch), Bytes: bytes, From: start, To: end, WindowSeconds: window},
				Adhoc: AdhocWork{Migrations: adhoc, Bytes: int64(adhocBytes), Quantile: profile.StrictestQuantile,
					Tier: profile.StrictestTier, Why: quantileWhy(profile)},
				Capacity: ConnectorCapacity{Size: size.Name, BandwidthBytesSec: size.BandwidthBytesSec, MaxTasks: size.MaxTasks,
					PerTaskBytesSec: perTask},
				Need:     ConnectorNeed{BandwidthBytesSec: bandwidth, InFlight: inFlight, Connectors: n},
				LeadTime: leadTimeFor(in.Fleet, start),
				Model:    model,
			},
		}
		est.Sites = append(est.Sites, se)
		est.ExpectedSeconds = max(est.ExpectedSeconds, se.ExpectedSeconds)
		if profile.UplinkBytesSec > 0 && bandwidth > profile.UplinkBytesSec {
			bottlenecks = append(bottlenecks, Bottleneck{Site: id, Kind: "uplink", From: start, To: end,
				Detail: fmt.Sprintf("needs %s, uplink carries %s", rate(bandwidth), rate(profile.UplinkBytesSec))})
		}
		for _, e := range in.Events {
			if e.Site == id && e.Overlaps(start, end) && e.Kind != "maintenance" {
				bottlenecks = append(bottlenecks, Bottleneck{Site: id, Kind: e.Kind, From: e.Starts, To: e.EndsBy(end),
					Detail: fmt.Sprintf("%s %s during the window: %s", e.Severity, e.Kind, e.Detail)})
			}
		}
	}
	// The pool's bounds weigh the sites against each other, so every site's need comes first.
	for i, w := range bound(est.Sites, in.Fleet) {
		a := &est.Sites[i].Arithmetic
		a.Need.BoundedConnectors = w.want
		a.Bound = BoundApplied{Kind: w.bound, Detail: w.why}
		if b, short := w.shortfall(a.Known.From, a.Known.To); short {
			est.Bottlenecks = append(est.Bottlenecks, b)
		}
		est.Reasons = append(est.Reasons, est.Sites[i].sentence())
	}
	est.Bottlenecks = append(est.Bottlenecks, bottlenecks...)
	est.Bottlenecks = append(est.Bottlenecks, PlannedBottlenecks(in.Planned, in.Tiers, size, in.Events)...)
	if b, ok := targetBottleneck(in.Target, written); ok {
		est.Bottlenecks = append(est.Bottlenecks, b)
	}
	if in.Resources != nil && len(sites) > 0 {
		why, short := in.Resources.check(size, in.Planned[0].EarliestStart)
		est.Reasons = append(est.Reasons, why)
		est.Bottlenecks = append(est.Bottlenecks, short...)
	}
	return est
}

// bound shapes each site's need by the fleet's rules in Scale's order: the accuracy
// gate, a frozen pool (forecast-only or paused), the pool's bounds, then pins.
func bound(sites []SiteEstimate, f FleetView) []siteWant {
	frozen := f.Paused || f.Policy.Mode == ModeForecastOnly
	wants := make([]siteWant, len(sites))
	for i, se := range sites {
		n := se.Connectors
		w := siteWant{site: se.Site, want: n, peak: n, needed: n, bound: BoundNone, why: "none: the pool allows " + poolBounds(f.Policy)}
		if slices.ContainsFunc(f.Pins, func(p Pin) bool { return p.Site == se.Site }) {
			w.why += " and the pin at " + se.Site + " allows it"
		} else {
			w.why += ", no pin at " + se.Site
		}
		if gated, why := f.Policy.gated(se.Site, f.Accuracy); gated {
			w.bound, w.why = BoundGate, why
		}
		switch {
		case f.Paused:
			w.bound, w.why = BoundPaused, fmt.Sprintf("autoscaling is paused: the fleet starts none of the %d on its own", n)
		case f.Policy.Mode == ModeForecastOnly:
			w.bound, w.why = BoundForecastOnly, fmt.Sprintf("forecast-only: the fleet plans %d but starts none on its own", n)
		}
		wants[i] = w
	}
	boundPool(wants, f.Policy, frozen)
	for i := range wants {
		wants[i].pin(f.Pins)
	}
	return wants
}

// sentence is the site's arithmetic in one sentence, for the answer's reasoning.
func (se SiteEstimate) sentence() string {
	a := se.Arithmetic
	model := a.Model.Name
	if a.Model.Fallback != "" {
		model += " (fallback: " + a.Model.Fallback + ")"
	}
	return fmt.Sprintf("%s: %d migration(s), %s from %s to %s, plus %.1f ad-hoc migration(s) (%s) forecast at p%.0f (%s), need %s and %.1f in flight; "+
		"a %s connector carries %s, %d tasks at %s each: %d connector(s), %d after bounds (%s); "+
		"started from %s, %s ahead (%s lead time); done in about %s; forecast by %s: %s",
		se.Site, a.Known.Migrations, byteSize(a.Known.Bytes), a.Known.From.Format("Mon 15:04"), a.Known.To.Format("Mon 15:04"),
		a.Adhoc.Migrations, byteSize(a.Adhoc.Bytes), a.Adhoc.Quantile*100, a.Adhoc.Why, rate(a.Need.BandwidthBytesSec), a.Need.InFlight,
		a.Capacity.Size, rate(a.Capacity.BandwidthBytesSec), a.Capacity.MaxTasks, rate(a.Capacity.PerTaskBytesSec),
		a.Need.Connectors, a.Need.BoundedConnectors, a.Bound.Detail,
		a.LeadTime.StartAt.Format("Mon 15:04"), seconds(a.LeadTime.Seconds), a.LeadTime.Source, seconds(se.ExpectedSeconds), model, a.Model.Error)
}

// quantileWhy says which tier set a site's planning quantile.
func quantileWhy(s Site) string {
	if s.StrictestTier == "" {
		return fmt.Sprintf("no SLA tier in use at %s: the median", s.ID)
	}
	return fmt.Sprintf("%s, the strictest SLA tier at %s", s.StrictestTier, s.ID)
}

// leadTimeFor is the fleet's lead time and when, by it, the connectors for work that
// starts at start are started: Predict counts an hour's work once it lies within the
// lead time.
func leadTimeFor(f FleetView, start time.Time) LeadTimeUsed {
	source := "setting"
	if f.LeadTime > f.LeadTimeSetting {
		source = "learned"
	}
	return LeadTimeUsed{Seconds: f.LeadTime.Seconds(), Source: source, StartAt: start.Truncate(time.Hour).Add(-f.LeadTime)}
}

// accuracyAt is a site's realised forecast error and the same for people, with its
// skill over the hour-of-day rate where that was scored.
func accuracyAt(site string, acc []ForecastAccuracy) (*ForecastAccuracy, string) {
	for _, a := range acc {
		if a.Site == site && a.Scored > 0 {
			why := fmt.Sprintf("MAE %.2f migrations/h (bias %+.2f), %.0f%% of %d scored hours within its p%.0f–p%.0f band",
				a.MAE, a.Bias, 100*a.Coverage, a.Scored, 100*a.LoLevel, 100*a.HiLevel)
			if a.SkillScored > 0 {
				why += fmt.Sprintf(", skill %.2f over the hour-of-day rate (pinball loss %.3f against its %.3f)", a.Skill, a.Pinball, a.BaselinePinball)
			}
			return &a, why
		}
	}
	return nil, "not scored yet"
}

// poolBounds says how many connectors the pool allows; a maximum of 0 is no bound.
func poolBounds(p Policy) string {
	if p.MaxConnectors == 0 {
		return fmt.Sprintf("%d or more connectors", p.MinConnectors)
	}
	return fmt.Sprintf("%d to %d connectors", p.MinConnectors, p.MaxConnectors)
}

// byteSize formats a byte count for people.
func byteSize(b int64) string {
	switch {
	case b >= gib:
		return fmt.Sprintf("%.1f GiB", float64(b)/float64(gib))
	case b >= mib:
		return fmt.Sprintf("%.1f MiB", float64(b)/float64(mib))
	default:
		return fmt.Sprintf("%.1f KiB", float64(b)/float64(kib))
	}
}
