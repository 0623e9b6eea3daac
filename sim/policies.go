package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/forecast"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/trace"
)

// live counts a site's connectors that are paid for and not draining.
func live(conns []planning.Connector, site string) []planning.Connector {
	var out []planning.Connector
	for _, c := range conns {
		if c.Site == site && c.Live() {
			out = append(out, c)
		}
	}
	return out
}

// work is the migrations running and waiting at a site.
func work(v *View, site string) int {
	n := 0
	for _, c := range v.Connectors {
		if c.Site == site {
			n += len(c.Migrations)
		}
	}
	for _, r := range v.Waiting {
		if r.Site == site {
			n++
		}
	}
	return n
}

// countLive counts a site's connectors that are paid for and not draining.
func countLive(conns []planning.Connector, site string) int {
	n := 0
	for _, c := range conns {
		if c.Site == site && c.Live() {
			n++
		}
	}
	return n
}

// scaleTo starts or drains a site's connectors towards want: idle ones drain, newest
// first, as the fleet drains them. why says why a start is made.
func scaleTo(d *Decision, conns []planning.Connector, site string, want int, why func() string) {
	if n := countLive(conns, site); n == want {
		return // most ticks change nothing
	}
	have := live(conns, site)
	for i := len(have); i < want; i++ {
		d.Start = append(d.Start, planning.StartDecision{Site: site, Reason: why()})
	}
	if len(have) <= want {
		return
	}
	var idle []planning.Connector
	for _, c := range have {
		if len(c.Migrations) == 0 {
			idle = append(idle, c)
		}
	}
	slices.SortFunc(idle, func(a, b planning.Connector) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for i := 0; i < len(have)-want && i < len(idle); i++ {
		d.Drain = append(d.Drain, idle[i].ID)
	}
}

// Reactive is target-utilisation scaling as Kubernetes' HPA does it with a queue
// metric from KEDA: each site wants ⌈(running + waiting + Headroom) / (task cap ×
// target)⌉ connectors, at least MinPerSite; it scales up at once, and down only to the
// highest want of the last Cooldown (HPA's scale-down stabilisation window). With Waves
// it is the reactive+waves baseline: a cron-like pre-warm of announced waves beside the
// queue's scaling (a KEDA cron scaler in the same autoscaler), each site wanting the
// larger of the two.
type Reactive struct {
	TargetUtilization float64
	Cooldown          time.Duration
	MinPerSite        int
	// Headroom is the spare task slots each site keeps beyond its work.
	Headroom int
	// Waves, if set, pre-warms announced waves as the scheduled policy does.
	Waves  *Scheduled
	recent map[string][]want
}

type want struct {
	at time.Time
	n  int
}

// Name is "reactive", or "reactive+waves" with Waves.
func (p *Reactive) Name() string {
	if p.Waves != nil {
		return "reactive+waves"
	}
	return "reactive"
}

// Reset forgets the wants of an earlier run.
func (p *Reactive) Reset(*World) error {
	if p.TargetUtilization <= 0 || p.TargetUtilization > 1 {
		return fmt.Errorf("%s: target utilisation %.2f must be in (0, 1]", p.Name(), p.TargetUtilization)
	}
	if p.Headroom < 0 {
		return fmt.Errorf("%s: headroom %d must not be negative", p.Name(), p.Headroom)
	}
	p.recent = map[string][]want{}
	return nil
}

// Decide scales each site on its work.
func (p *Reactive) Decide(v *View) (Decision, error) {
	var d Decision
	tasks := float64(v.world.Config.Size.MaxTasks)
	var waves map[string]int
	if p.Waves != nil {
		waves = p.Waves.wants(v)
	}
	for _, site := range v.world.Sites {
		busy := work(v, site)
		n := max(int(math.Ceil(float64(busy+p.Headroom)/(tasks*p.TargetUtilization)-1e-9)), p.MinPerSite)
		fromWaves := false
		if p.Waves != nil {
			if wave := p.Waves.connectors(v, waves[site]); wave > n {
				n, fromWaves = wave, true
			}
		}
		// The reason is only read when a connector starts: most ticks start none.
		why := func() string {
			if fromWaves {
				return fmt.Sprintf("reactive+waves: %d wave migration(s)", waves[site])
			}
			return fmt.Sprintf("reactive: %d running and waiting, %d spare, at %.0f%% target", busy, p.Headroom, 100*p.TargetUtilization)
		}
		hist := append(p.recent[site], want{v.Now, n})
		hist = slices.DeleteFunc(hist, func(w want) bool { return v.Now.Sub(w.at) > p.Cooldown })
		p.recent[site] = hist
		stable := 0
		for _, w := range hist {
			stable = max(stable, w.n)
		}
		scaleTo(&d, v.Connectors, site, max(n, min(stable, countLive(v.Connectors, site))), why)
	}
	return d, nil
}

// Scheduled provisions for known waves only: from LeadTime before a wave starts until
// its work is done, a site has enough connectors to run the wave side by side, and
// MinPerSite otherwise. Ad-hoc work takes what capacity there is.
type Scheduled struct {
	LeadTime   time.Duration
	MinPerSite int
}

// Name is "scheduled".
func (p *Scheduled) Name() string { return "scheduled" }

// Reset has nothing to forget.
func (p *Scheduled) Reset(*World) error { return nil }

// Decide sizes each site for its waves.
func (p *Scheduled) Decide(v *View) (Decision, error) {
	var d Decision
	waves := p.wants(v)
	for _, site := range v.world.Sites {
		wave := waves[site]
		scaleTo(&d, v.Connectors, site, max(p.connectors(v, wave), p.MinPerSite), func() string {
			return fmt.Sprintf("scheduled: %d wave migration(s)", wave)
		})
	}
	return d, nil
}

// wants is each site's wave migrations that need a connector now: those about to start
// within the lead time, waiting or running, side by side.
func (p *Scheduled) wants(v *View) map[string]int {
	n := map[string]int{}
	soon := v.Now.Add(p.LeadTime)
	for _, k := range v.Known {
		if !k.EarliestStart.After(soon) {
			n[k.Site]++
		}
	}
	for _, r := range v.Waiting {
		if v.world.isWave(r.MigrationID) {
			n[r.Site]++
		}
	}
	for _, c := range v.Connectors {
		for _, t := range c.Migrations {
			if v.world.isWave(t.MigrationID) {
				n[c.Site]++
			}
		}
	}
	return n
}

// connectors is how many connectors run that many migrations side by side.
func (p *Scheduled) connectors(v *View, migrations int) int {
	tasks := v.world.Config.Size.MaxTasks
	return (migrations + tasks - 1) / tasks
}

// Predictive is PMO's planner, the fleet's own tick: every tick it runs
// planning.Tick on the simulated world, as the fleet's Plan activity runs it on the
// real one, and starts and drains what the decision says. It forecasts each site's
// ad-hoc arrivals and bytes from the history so far (planning.ForecastDemand) every
// ForecastEvery, and counts the known waves in that forecast as they stand at each
// tick. What the simulated world cannot supply is left out of the world it plans in
// (see docs/simulator.md): the SLA tiers' fixed transfer bounds (a trace's SLA scales
// with the disk), anomalies in outcomes, the rate model and the connectors' metrics.
type Predictive struct {
	Policy planning.Policy
	// LeadTime is the operator's setting, the floor of the learned one.
	LeadTime time.Duration
	// Model is the forecasting model; empty is the engine's default.
	Model string
	// Horizon is how many hours ahead it forecasts.
	Horizon int
	// Quantile, when set, is the demand quantile every site plans for instead of its
	// strictest tier's.
	Quantile float64
	// Rates, if set, are the true rates of ad-hoc arrivals (trace.Intensity), and the
	// policy plans with them instead of its forecast: a perfect forecast, to measure
	// the most that forecasting better could gain.
	Rates func(site string, hour time.Time) float64
	// ForecastEvery is how often it forecasts again. The fleet forecasts every tick,
	// but the hourly history changes once an hour; a 48-hour forecast a few hours old
	// plans nearly as well and simulates far faster.
	ForecastEvery time.Duration
	// History, if set, is what the fleet saw before the run: each site's ad-hoc
	// arrivals and bytes per hour, oldest first, the last hour ending at HistoryEnd (on
	// the hour, not after the run's first hour). The forecast reads it ahead of the
	// run's own hours, as the fleet reads its own past; the hours between HistoryEnd
	// and the run's start had no arrivals. Without it the policy knows only the run.
	History    map[string]Hourly
	HistoryEnd time.Time
	// Sites, if set, are the sites' profiles as the fleet reads them from its history
	// and inventory; otherwise Reset learns them from the trace. Tiers are the SLA
	// tiers with their fixed bounds, which a trace's tiers lack.
	Sites []planning.Site
	Tiers []planning.SLATier
	// Overrides are the operators' pins and pause, Events the system events (such as
	// maintenance windows) and Accuracy the forecast error the policy's gate judges
	// by: what the fleet would plan with. The simulator has none of its own.
	Overrides []planning.Override
	Events    []planning.KeyedEvent
	Accuracy  []planning.ForecastAccuracy
	// Last is the latest tick's whole decision: the plan and what it started, drained
	// and placed.
	Last planning.Decision
	// plan is the latest tick's published plan, which placement holds work by (as the
	// fleet's), kept rather than assembled again on every event.
	plan planning.Plan

	sites    []planning.Site
	learned  []string          // the sites whose profiles it learns, as the fleet does from its history
	adhoc    []planning.Demand // the latest forecast, without known work
	forecast time.Time         // the hour it was made for
	tiers    map[string]trace.Tier
	// beforeArrivals and beforeBytes are History for each of the world's sites,
	// padded to one length and up to the run's start.
	beforeArrivals, beforeBytes [][]float64
}

// Hourly is a site's ad-hoc arrivals and bytes per hour, oldest first.
type Hourly struct {
	Arrivals, Bytes []float64
}

// Name is "predictive".
func (p *Predictive) Name() string { return "predictive" }

// Reset learns the profiles of the sites Sites does not give from the trace's
// inventory: mean bytes and the strictest tier at each.
func (p *Predictive) Reset(w *World) error {
	if err := p.Policy.Validate(); err != nil {
		return fmt.Errorf("predictive: %w", err)
	}
	if p.ForecastEvery < time.Hour || p.Horizon < 1 {
		return fmt.Errorf("predictive: forecast every %s for %d hours: want at least an hour, for at least one hour", p.ForecastEvery, p.Horizon)
	}
	p.adhoc, p.forecast, p.sites, p.learned, p.Last, p.plan = nil, time.Time{}, nil, nil, planning.Decision{}, planning.Plan{}
	if err := p.before(w); err != nil {
		return err
	}
	p.tiers = map[string]trace.Tier{}
	for _, t := range trace.Tiers {
		p.tiers[t.Name] = t
	}
	for _, site := range w.Sites {
		if i := slices.IndexFunc(p.Sites, func(s planning.Site) bool { return s.ID == site }); i >= 0 {
			p.sites = append(p.sites, p.Sites[i])
			continue
		}
		// The trace's VMs are the inventory, known from the start as the fleet's is:
		// their mean size serves until there is history, their strictest tier sets
		// the quantile, and their tiers' grace says how many may wait for a boot.
		s := planning.Site{ID: site, StrictestQuantile: 0.5}
		var bytes, n, patient float64
		seen := map[string]bool{}
		for _, r := range w.Requests {
			if r.Site != site || seen[r.VMID] {
				continue
			}
			seen[r.VMID] = true
			bytes, n = bytes+float64(r.Bytes), n+1
			tier := p.tiers[r.SLATier]
			s.StrictestQuantile = max(s.StrictestQuantile, tier.PlanQuantile)
			if planning.Patient(tier.Grace) {
				patient++
			}
		}
		s.MeanBytes, s.PatientShare = bytes/n, patient/n
		p.learned = append(p.learned, site)
		if p.Quantile > 0 {
			s.StrictestQuantile = p.Quantile
		}
		p.sites = append(p.sites, s)
	}
	return nil
}

// before lays History out for the world's sites: every site's series as long as the
// longest (a shorter one had nothing in its earlier hours), and zeros from HistoryEnd
// to the run's start.
func (p *Predictive) before(w *World) error {
	p.beforeArrivals, p.beforeBytes = nil, nil
	if len(p.History) == 0 {
		return nil
	}
	end := p.HistoryEnd.Truncate(time.Hour)
	if end.After(w.start) {
		return fmt.Errorf("predictive: the history ends at %s, after the run starts at %s", end.Format(time.RFC3339), w.start.Format(time.RFC3339))
	}
	n := 0
	for site, h := range p.History {
		if len(h.Bytes) != len(h.Arrivals) {
			return fmt.Errorf("predictive: the history of %s has %d hours of arrivals and %d of bytes", site, len(h.Arrivals), len(h.Bytes))
		}
		n = max(n, len(h.Arrivals))
	}
	gap := int(w.start.Sub(end) / time.Hour)
	for _, site := range w.Sites {
		h := p.History[site]
		arrivals, bytes := make([]float64, n+gap), make([]float64, n+gap)
		copy(arrivals[n-len(h.Arrivals):], h.Arrivals)
		copy(bytes[n-len(h.Bytes):], h.Bytes)
		p.beforeArrivals = append(p.beforeArrivals, arrivals)
		p.beforeBytes = append(p.beforeBytes, bytes)
	}
	return nil
}

// Decide runs the production planning core.
func (p *Predictive) Decide(v *View) (Decision, error) {
	if p.forecast.IsZero() || v.Now.Sub(p.forecast) >= p.ForecastEvery {
		arrivals, bytes := v.Hourly()
		for i := range p.beforeArrivals {
			arrivals[i] = append(slices.Clip(p.beforeArrivals[i]), arrivals[i]...)
			bytes[i] = append(slices.Clip(p.beforeBytes[i]), bytes[i]...)
		}
		if len(arrivals[0]) > 0 {
			demand, err := p.demand(v, arrivals, bytes)
			if err != nil {
				return Decision{}, err
			}
			p.adhoc = demand
			p.forecast = v.Now.Truncate(time.Hour)
			p.learnSizes(v.world.Sites, arrivals, bytes)
		}
	}
	// The forecast may be hours old: its hours before now's go, and the known work is
	// counted as it stands now.
	hour := v.Now.Truncate(time.Hour)
	p.adhoc = slices.DeleteFunc(p.adhoc, func(d planning.Demand) bool { return d.Hour.Before(hour) })
	demand := planning.WithPlanned(p.adhoc, v.Known)
	t := planning.Tick(planning.World{
		Now: v.Now, Size: v.world.Config.Size, LeadTime: p.LeadTime, Tick: v.world.Config.Tick, Sites: p.sites, Tiers: p.Tiers,
		Demand: demand, Planned: v.Known, Accuracy: p.Accuracy, Events: p.Events, ReadyDelays: v.ReadyDelays,
		Fleet: new(p.fleet(v)),
	})
	p.Last, p.plan = t, t.Published()
	d := Decision{Start: append(slices.Clip(t.Scale.Start), t.Place.Start...)}
	for _, x := range t.Scale.Drain {
		d.Drain = append(d.Drain, x.ID)
	}
	return d, nil
}

// demand is the ad-hoc demand of the hours from now's: the forecast from the history,
// or where Rates is set, the true rates with Poisson quantiles.
func (p *Predictive) demand(v *View, arrivals, bytes [][]float64) ([]planning.Demand, error) {
	if p.Rates == nil {
		demand, _, err := planning.ForecastDemand(planning.DemandInput{Sites: v.world.Sites, Arrivals: arrivals, Bytes: bytes,
			Now: v.Now, From: v.Now, Hours: p.Horizon, Model: p.Model})
		return demand, err
	}
	var out []planning.Demand
	for _, site := range v.world.Sites {
		for h := range p.Horizon {
			hour := v.Now.Truncate(time.Hour).Add(time.Duration(h) * time.Hour)
			rate := p.Rates(site, hour)
			out = append(out, planning.Demand{Site: site, Hour: hour, AdhocMean: rate,
				AdhocLo: forecast.CountQuantile(rate, 0, 0.1), AdhocHi: forecast.CountQuantile(rate, 0, 0.9)})
		}
	}
	return out, nil
}

// Place is the fleet's placement (planning.Place) on the simulated fleet as it is,
// with the latest tick's plan: its bottlenecks and, with SLA slack, its held slots.
func (p *Predictive) Place(v *View) planning.Placement {
	return planning.Place(p.fleet(v), p.plan, v.world.Config.Size, nil, v.Now)
}

// fleet is the simulated fleet as a tick's decision sees it, with the overrides that
// have not expired, as the fleet drops them when they do.
func (p *Predictive) fleet(v *View) planning.Fleet {
	overrides := slices.DeleteFunc(slices.Clone(p.Overrides), func(o planning.Override) bool { return !o.Expires.After(v.Now) })
	return planning.Fleet{Connectors: v.Connectors, Waiting: v.Waiting, Policy: p.Policy, Overrides: overrides, Sites: v.world.Sites}
}

// learnSizes sets each learned site's mean migration size from the last four weeks
// of its history (arrivals and bytes per hour, in the order of sites), as the fleet's
// site profiles do, where there was any.
func (p *Predictive) learnSizes(sites []string, arrivals, bytes [][]float64) {
	const window = 28 * 24
	for i, site := range sites {
		if !slices.Contains(p.learned, site) {
			continue
		}
		j := slices.IndexFunc(p.sites, func(s planning.Site) bool { return s.ID == site })
		k := len(arrivals[i])
		n, b := 0.0, 0.0
		for h := max(k-window, 0); h < k; h++ {
			n, b = n+arrivals[i][h], b+bytes[i][h]
		}
		if n > 0 {
			p.sites[j].MeanBytes = b / n
		}
	}
}

// Oracle knows every migration's arrival, how long it will take, and how long each
// connector it starts will take to boot: it has each site's connectors ready just as
// work needs them and keeps them exactly while it does, so nothing waits. Its
// connector-hours are the floor any policy could reach without making work wait.
//
// With Spare it also keeps that many task slots free at every site, ready at all
// times: the floor of a policy that cannot see when the next migration arrives. Such a
// policy must have a free slot whenever one might (arrivals are Poisson, so at any
// moment), or make that migration wait a boot; the oracle with a spare slot pays for
// it as cheaply as foresight of everything else allows.
type Oracle struct {
	Spare int

	// need is, per site, the task count over time: at changes[i] it becomes count[i].
	changes map[string][]time.Time
	count   map[string][]int
	tick    time.Duration
}

// Name is "oracle", or "oracle+spare" with Spare.
func (p *Oracle) Name() string {
	if p.Spare > 0 {
		return "oracle+spare"
	}
	return "oracle"
}

// Reset lays out every site's running migrations over time, as if none waited.
func (p *Oracle) Reset(w *World) error {
	if p.Spare < 0 {
		return fmt.Errorf("oracle: %d spare slots must not be negative", p.Spare)
	}
	p.changes, p.count, p.tick = map[string][]time.Time{}, map[string][]int{}, w.Config.Tick
	type edge struct {
		at time.Time
		d  int
	}
	bySite := map[string][]edge{}
	for i, r := range w.Requests {
		bySite[r.Site] = append(bySite[r.Site], edge{r.Arrival, 1}, edge{r.Arrival.Add(w.Duration(i)), -1})
	}
	for _, site := range w.Sites {
		edges := bySite[site]
		slices.SortStableFunc(edges, func(a, b edge) int { return a.at.Compare(b.at) })
		n := 0
		for _, e := range edges {
			n += e.d
			p.changes[site] = append(p.changes[site], e.at)
			p.count[site] = append(p.count[site], n)
		}
	}
	return nil
}

// Decide has each site hold the connectors its work needs: those the work in force
// needs; those it has while the work within the longest boot and a tick needs them
// (one stopped now might come back no sooner);
// and, started now, as many more as the last one the work needs within its own boot
// and a tick (the m-th start from now takes the site's m-th boot, so the ones before
// it start too, and are ready early).
func (p *Oracle) Decide(v *View) (Decision, error) {
	var d Decision
	tasks := v.world.Config.Size.MaxTasks
	connectors := func(taskCount int) int { return (taskCount + p.Spare + tasks - 1) / tasks }
	// No boot the world draws is longer than this (4σ).
	longest := seconds(v.world.Config.ProvisionDelay.Seconds()*math.Exp(4*v.world.Config.ProvisionSpread)) + p.tick
	for _, site := range v.world.Sites {
		have := len(live(v.Connectors, site))
		need := connectors(max(p.peak(site, v.Now, 0), work(v, site)))
		most := connectors(p.peak(site, v.Now, longest)) // what any start now could be needed for
		need = max(need, min(have, most))
		for m := 0; have+m < most; m++ {
			if connectors(p.peak(site, v.Now, v.nextBoot(site, m)+p.tick)) > have+m {
				need = max(need, have+m+1)
			}
		}
		scaleTo(&d, v.Connectors, site, need, func() string { return fmt.Sprintf("oracle: %d connector(s) for the work within their boots", need) })
	}
	return d, nil
}

// peak is the most tasks a site's work runs at once from now to within lead.
func (p *Oracle) peak(site string, now time.Time, lead time.Duration) int {
	changes, count := p.changes[site], p.count[site]
	i, _ := slices.BinarySearchFunc(changes, now, func(t, now time.Time) int {
		if t.After(now) {
			return 1
		}
		return -1
	})
	peak := 0
	if i > 0 {
		peak = count[i-1] // the count in force now
	}
	for j := i; j < len(changes) && !changes[j].After(now.Add(lead)); j++ {
		peak = max(peak, count[j])
	}
	return peak
}

// Knobs are the policies' settings, as starter simulate's flags set them.
type Knobs struct {
	// LeadTime is the predictive policy's lead time floor (it learns a longer one
	// from boots) and the scheduled policy's lead time.
	LeadTime time.Duration
	// Predictive: the pool's policy (bounds, scale-in cooldown, SLA slack), the forecasting
	// model, how often it forecasts, and a demand quantile for every site (0: each
	// site's strictest tier's).
	Policy        planning.Policy
	Model         string
	ForecastEvery time.Duration
	Quantile      float64
	// Reactive and reactive+waves: the target utilisation of task slots, the spare
	// slots kept per site and the scale-down window.
	TargetUtilization float64
	ReactiveHeadroom  int
	ReactiveCooldown  time.Duration
	// MinPerSite is what the reactive and scheduled policies keep at each site.
	MinPerSite int
	// OracleSpare is the task slots the oracle keeps free at every site (0: none).
	OracleSpare int
}

// DefaultKnobs are the fleet's defaults for the predictive policy (planning's: its
// scale-in cooldown derived from the boots it measures, its lead time's floor) and
// HPA's defaults for the reactive policy with KEDA's queue metric.
func DefaultKnobs() Knobs {
	return Knobs{LeadTime: planning.DefaultLeadTime, Policy: planning.DefaultPolicy(), ForecastEvery: 6 * time.Hour,
		TargetUtilization: 0.8, ReactiveCooldown: 5 * time.Minute, MinPerSite: 1}
}

// PolicyNames are the simulator's policies, in the order results are shown.
var PolicyNames = []string{"reactive", "reactive+waves", "scheduled", "predictive", "oracle"}

// Policies returns the named policies with these knobs, or an error naming an unknown one.
func (k Knobs) Policies(names []string) ([]Policy, error) {
	var out []Policy
	for _, name := range names {
		switch name {
		case "reactive":
			out = append(out, &Reactive{TargetUtilization: k.TargetUtilization, Cooldown: k.ReactiveCooldown, MinPerSite: k.MinPerSite,
				Headroom: k.ReactiveHeadroom})
		case "reactive+waves":
			out = append(out, &Reactive{TargetUtilization: k.TargetUtilization, Cooldown: k.ReactiveCooldown, MinPerSite: k.MinPerSite,
				Headroom: k.ReactiveHeadroom, Waves: &Scheduled{LeadTime: k.LeadTime}})
		case "scheduled":
			out = append(out, &Scheduled{LeadTime: k.LeadTime, MinPerSite: k.MinPerSite})
		case "predictive":
			out = append(out, &Predictive{Policy: k.Policy, LeadTime: k.LeadTime, Model: k.Model, Horizon: 48,
				Quantile: k.Quantile, ForecastEvery: k.ForecastEvery})
		case "oracle":
			out = append(out, &Oracle{Spare: k.OracleSpare})
		default:
			return nil, fmt.Errorf("unknown policy %q; want some of %s", name, strings.Join(PolicyNames, ", "))
		}
	}
	return out, nil
}
