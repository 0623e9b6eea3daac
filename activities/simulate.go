package activities

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// Simulator runs the discrete-event simulator (package sim). The worker wires
// fleetsim.Simulator. It is an interface because sim reads traces, whose VMs are
// store's types, and so links pgx, which this package and the workflows that name its
// activities must not.
type Simulator interface {
	// Simulate runs the workload under each of its policies, in order, and names each
	// run after its policy.
	Simulate(ctx context.Context, w Workload) ([]SimulatedRun, error)
}

// Workload is a world to simulate: the migrations, the connectors that meet them and
// the policies to run the fleet by.
type Workload struct {
	// Requests are in order of arrival, then ID.
	Requests []WorkRequest
	Size     planning.Size
	// ProvisionDelay is the median time a connector takes to become ready.
	ProvisionDelay time.Duration
	// Tick is how often the policies decide; Seed draws the world's noise.
	Tick time.Duration
	Seed uint64
	// LeadTime, HorizonHours and Model are the fleet's planning settings.
	LeadTime     time.Duration
	HorizonHours int
	Model        string
	// Arrivals and Bytes are each site's ad-hoc migrations and bytes per hour before
	// HistoryEnd, oldest first, in the order of Sites: the history the fleet forecasts
	// from.
	Sites           []string
	Arrivals, Bytes [][]float64
	HistoryEnd      time.Time
	Policies        []NamedPolicy
}

// WorkRequest is one migration of a workload, as a trace holds it: known to the
// planner at KnownAt (a planned wave) or when it arrives (ad-hoc work, KnownAt equal
// to Arrival), due by Deadline.
type WorkRequest struct {
	ID       string
	Site     string
	SLATier  string
	Wave     string
	Bytes    int64
	KnownAt  time.Time
	Arrival  time.Time
	Deadline time.Time
}

// NamedPolicy is a scaling policy with the name its run goes by.
type NamedPolicy struct {
	Name   string
	Policy planning.Policy
}

// SimulatedRun is one policy's run, with the simulator's figures.
type SimulatedRun struct {
	Name        string  `json:"name"`
	Migrations  int     `json:"migrations"`
	SLABreaches int     `json:"sla_breaches"`
	WaitP50     float64 `json:"wait_p50_s"`
	WaitP95     float64 `json:"wait_p95_s"`
	WaitP99     float64 `json:"wait_p99_s"`
	// ConnectorHours are paid from each connector's start, boot included, to its stop.
	ConnectorHours float64 `json:"connector_hours"`
	// Utilization is the share of paid task slots that moved bytes.
	Utilization float64 `json:"utilization"`
	// ScaleEvents counts connector starts and drains.
	ScaleEvents int `json:"scale_events"`
	// Seconds is how long the run took.
	Seconds float64 `json:"run_seconds"`
}

// DefaultProvisionDelay is how long a simulated connector takes to boot where the
// pool has measured none: the simulator's default, a real VM's boot.
const DefaultProvisionDelay = 4 * time.Minute

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
	Seed    uint64
	Planned []planning.PlannedMigration
	// Size, LeadTime, Tick and HorizonHours are the fleet's settings.
	Size              string
	LeadTime          time.Duration
	Tick              time.Duration
	HorizonHours      int
	Current, Proposed planning.Policy
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
	Size                  string         `json:"size"`
	ProvisionDelaySeconds float64        `json:"provision_delay_s"`
	Results               []SimulatedRun `json:"results"`
	// Reasoning holds a sentence a policy.
	Reasoning []string `json:"reasoning"`
}

// Simulate runs the simulator on the pool's own work under the current policy and the
// proposed one, with the fleet's connector size, tick and lead time, connectors that
// boot in the median time the pool's recent ones took (DefaultProvisionDelay before
// any did), and no failed transfers. The planned migrations are known from now; the
// ad-hoc arrivals are drawn with the seed (see adhocArrivals). It records nothing.
func (a *Fleet) Simulate(ctx context.Context, in SimulateInput) (SimulateResult, error) {
	if a.Simulator == nil {
		return SimulateResult{}, temporal.NewNonRetryableApplicationError("this worker has no simulator", "NoSimulator", nil)
	}
	size, ok := planning.SizeNamed(in.Size)
	if !ok {
		return SimulateResult{}, temporal.NewNonRetryableApplicationError("unknown connector size "+in.Size, validation.ApplicationErrorType, nil)
	}
	from, to := in.Now, in.Now.Add(time.Duration(in.Hours)*time.Hour)
	arrivals, volume, err := a.history(ctx, in.Sites, in.Now)
	if err != nil {
		return SimulateResult{}, err
	}
	// An hour more than the window: it need not start on the hour.
	demand, _, err := a.forecast(ctx, planning.DemandInput{Sites: in.Sites, Arrivals: arrivals, Bytes: volume,
		Now: in.Now, From: in.Now, Hours: in.Hours + 1})
	if err != nil {
		return SimulateResult{}, err
	}
	profiles, err := a.Store.SiteProfiles(ctx, in.Now.Add(-HistoryWindow))
	if err != nil {
		return SimulateResult{}, err
	}
	delays, err := a.Store.ReadyDelays(ctx, in.Pool, in.Now.Add(-AccuracyWindow), 100)
	if err != nil {
		return SimulateResult{}, err
	}
	boot := DefaultProvisionDelay
	if len(delays) > 0 {
		slices.Sort(delays)
		boot = time.Duration(stat.Quantile(0.5, stat.Empirical, delays, nil) * float64(time.Second))
	}

	reqs := make([]WorkRequest, 0, len(in.Planned))
	for _, p := range in.Planned {
		reqs = append(reqs, WorkRequest{ID: p.ID, Site: p.Site, SLATier: p.SLATier, Wave: "planned", Bytes: p.Bytes,
			KnownAt: in.Now, Arrival: p.EarliestStart, Deadline: p.Deadline})
	}
	adhoc := adhocArrivals(demand, profiles, from, to, in.Seed)
	reqs = append(reqs, adhoc...)
	res := SimulateResult{From: from, To: to, Seed: in.Seed, Planned: len(in.Planned), Adhoc: len(adhoc), Size: size.Name,
		ProvisionDelaySeconds: boot.Seconds()}
	policies := []NamedPolicy{{"current", in.Current}, {"proposed", in.Proposed}}
	if len(reqs) == 0 {
		for _, p := range policies {
			res.Results = append(res.Results, SimulatedRun{Name: p.Name})
			res.Reasoning = append(res.Reasoning, fmt.Sprintf("%s policy, %s: nothing to simulate, as no planned migration starts in the window and no ad-hoc work is forecast", p.Name, p.Policy))
		}
		return res, nil
	}
	slices.SortFunc(reqs, func(x, y WorkRequest) int {
		return cmp.Or(x.Arrival.Compare(y.Arrival), cmp.Compare(x.ID, y.ID))
	})
	res.Results, err = a.Simulator.Simulate(ctx, Workload{Requests: reqs, Size: size, ProvisionDelay: boot, Tick: in.Tick,
		Seed: in.Seed, LeadTime: in.LeadTime, HorizonHours: in.HorizonHours, Model: a.ForecastModel,
		Sites: in.Sites, Arrivals: arrivals, Bytes: volume, HistoryEnd: in.Now.Truncate(time.Hour), Policies: policies})
	if err != nil {
		return SimulateResult{}, err
	}
	for i, r := range res.Results {
		res.Reasoning = append(res.Reasoning, fmt.Sprintf("%s policy, %s: %d migrations, %d past their SLA, waits p50 %.0f s, p95 %.0f s and p99 %.0f s, %.1f connector-hours at %.0f%% utilisation, %d scale events",
			r.Name, policies[i].Policy, r.Migrations, r.SLABreaches, r.WaitP50, r.WaitP95, r.WaitP99, r.ConnectorHours, 100*r.Utilization, r.ScaleEvents))
	}
	return res, nil
}

// adhocArrivals draws the ad-hoc migrations of [from, to) from the forecast: at each
// site and hour, Poisson of the forecast mean, each at a uniform second of the hour.
// Each brings the forecast's bytes per arrival for its hour (the site's mean where the
// forecast has none) and is due within the tightest SLA tier at its site; a site with
// no tier has no VMs to migrate.
func adhocArrivals(demand []planning.Demand, sites []planning.Site, from, to time.Time, seed uint64) []WorkRequest {
	src := rand.NewPCG(seed, 0xad0c)
	rng := rand.New(src)
	var out []WorkRequest
	for _, d := range demand {
		i := slices.IndexFunc(sites, func(s planning.Site) bool { return s.ID == d.Site })
		if i < 0 || sites[i].MaxTransfer <= 0 || d.AdhocMean <= 0 {
			continue
		}
		site := sites[i]
		bytes := site.MeanBytes
		if d.AdhocBytesMean > 0 {
			bytes = d.AdhocBytesMean / d.AdhocMean
		}
		n := int(distuv.Poisson{Lambda: d.AdhocMean, Src: src}.Rand())
		for range n {
			at := d.Hour.Add(time.Duration(rng.IntN(3600)) * time.Second)
			if at.Before(from) || !at.Before(to) {
				continue // thinned: an hour partly in the window keeps its share
			}
			// IDs hold a ':', which planned migrations' IDs cannot.
			out = append(out, WorkRequest{ID: fmt.Sprintf("adhoc:%s:%d", d.Site, len(out)+1), Site: d.Site, SLATier: site.StrictestTier,
				Bytes: int64(bytes), KnownAt: at, Arrival: at, Deadline: at.Add(site.MaxTransfer)})
		}
	}
	return out
}
