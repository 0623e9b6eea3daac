package activities

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/sim"
	"github.com/pmo-dev/pmo/trace"
	"github.com/pmo-dev/pmo/validation"
)

// Simulate runs the simulator on the pool's own work under the current policy and the
// proposed one, each the fleet's own tick (sim.Predictive) with the pool's site
// profiles, events, forecast error and overrides, and with the fleet's connector size,
// tick and lead time, connectors that boot in the median time the pool's recent ones
// took (the simulator's default before any did), and no failed transfers. It measures
// both against reactive+waves tuned on the same work: the cheapest of
// sim.ReactiveGrid's settings whose p99 wait is within BaselineMaxWait. The planned
// migrations are known from now; the ad-hoc arrivals are drawn with the seed (see
// adhocArrivals). It records nothing.
func (a *Fleet) Simulate(ctx context.Context, in contract.SimulateInput) (contract.SimulateResult, error) {
	size, ok := planning.SizeNamed(in.Size)
	if !ok {
		return contract.SimulateResult{}, temporal.NewNonRetryableApplicationError("unknown connector size "+in.Size, validation.ApplicationErrorType, nil)
	}
	from, to := in.Now, in.Now.Add(time.Duration(in.Hours)*time.Hour)
	arrivals, volume, err := a.history(ctx, in.Sites, in.Now)
	if err != nil {
		return contract.SimulateResult{}, err
	}
	// An hour more than the window: it need not start on the hour.
	demand, _, err := a.forecast(ctx, planning.DemandInput{Sites: in.Sites, Arrivals: arrivals, Bytes: volume,
		Now: in.Now, From: in.Now, Hours: in.Hours + 1})
	if err != nil {
		return contract.SimulateResult{}, err
	}
	profiles, err := a.Store.SiteProfiles(ctx, in.Now.Add(-HistoryWindow))
	if err != nil {
		return contract.SimulateResult{}, err
	}
	delays, err := a.Store.ReadyDelays(ctx, in.Pool, in.Now.Add(-AccuracyWindow), 100)
	if err != nil {
		return contract.SimulateResult{}, err
	}
	boot := sim.DefaultConfig().ProvisionDelay
	if len(delays) > 0 {
		slices.Sort(delays)
		boot = time.Duration(stat.Quantile(0.5, stat.Empirical, delays, nil) * float64(time.Second))
	}

	known, err := a.Store.Planned(ctx, in.Pool, in.Now)
	if err != nil {
		return contract.SimulateResult{}, err
	}
	var planned []planning.PlannedMigration
	for _, p := range known {
		if !p.EarliestStart.Before(from) && p.EarliestStart.Before(to) {
			planned = append(planned, p)
		}
	}
	reqs := make([]trace.Request, 0, len(planned))
	for _, p := range planned {
		reqs = append(reqs, trace.Request{ID: p.ID, Site: p.Site, SLATier: p.SLATier, Wave: "planned", Bytes: p.Bytes,
			KnownAt: in.Now, Arrival: p.EarliestStart, Deadline: p.Deadline})
	}
	adhoc := adhocArrivals(demand, profiles, from, to, in.Seed)
	reqs = append(reqs, adhoc...)
	res := contract.SimulateResult{From: from, To: to, Seed: in.Seed, Planned: len(planned), Adhoc: len(adhoc), Size: size.Name,
		ProvisionDelaySeconds: boot.Seconds()}
	policies := []namedPolicy{{"current", in.Current}, {"proposed", in.Proposed}}
	if len(reqs) == 0 {
		for _, p := range policies {
			res.Results = append(res.Results, contract.PolicyRun{Name: p.name})
			res.Reasoning = append(res.Reasoning, fmt.Sprintf("%s policy, %s: nothing to simulate, as no planned migration starts in the window and no ad-hoc work is forecast", p.name, p.policy))
		}
		return res, nil
	}
	slices.SortFunc(reqs, func(x, y trace.Request) int {
		return cmp.Or(x.Arrival.Compare(y.Arrival), cmp.Compare(x.ID, y.ID))
	})
	cfg := sim.DefaultConfig()
	cfg.Size, cfg.ProvisionDelay, cfg.Tick, cfg.Seed, cfg.FailureRate = size, boot, in.Tick, in.Seed, 0
	// A policy that leaves work waiting (a pause or a pin to none in force, say) says so
	// within a day of simulated time, not the simulator's week: the answer is awaited.
	cfg.GiveUpAfter = 24 * time.Hour
	// The series is not reported; a sample per tick at most is the simulator's rule.
	cfg.Sample = max(cfg.Sample, in.Tick)
	cfg.Progress = func(now, _ time.Time) { activity.RecordHeartbeat(ctx, now) }
	world, err := sim.NewWorld(reqs, cfg)
	if err != nil {
		return contract.SimulateResult{}, simulationFailed(err)
	}
	// The simulated ticks plan with what the fleet's ticks plan with: the sites' profiles,
	// the SLA tiers, the events in the window, the forecasts' recent error and the overrides.
	events, err := a.Store.Events(ctx, from, to)
	if err != nil {
		return contract.SimulateResult{}, err
	}
	events = slices.DeleteFunc(events, func(e planning.KeyedEvent) bool { return !slices.Contains(in.Sites, e.Site) })
	accuracy, err := a.Store.ForecastAccuracy(ctx, in.Pool, in.Now.Add(-AccuracyWindow))
	if err != nil {
		return contract.SimulateResult{}, err
	}
	tiers, err := a.Store.SLATiers(ctx)
	if err != nil {
		return contract.SimulateResult{}, err
	}
	history := map[string]sim.Hourly{}
	for i, site := range in.Sites {
		history[site] = sim.Hourly{Arrivals: arrivals[i], Bytes: volume[i]}
	}
	// Every policy runs on one world, so that each meets the same migrations with the
	// same noise.
	for _, p := range policies {
		r, err := sim.Run(world, &sim.Predictive{Policy: p.policy, LeadTime: in.LeadTime, Model: a.ForecastModel, Horizon: in.HorizonHours,
			ForecastEvery: sim.DefaultKnobs().ForecastEvery, History: history, HistoryEnd: in.Now.Truncate(time.Hour),
			Sites: profiles, Tiers: tiers, Overrides: in.Overrides, Events: events, Accuracy: accuracy})
		if err != nil {
			return contract.SimulateResult{}, simulationFailed(err)
		}
		res.Results = append(res.Results, policyRun(p.name, r))
	}
	// The competent reactive baseline, tuned on this same work as hard as the
	// simulator tunes it (docs/simulator.md): what a policy should beat.
	var heartbeat sync.Mutex
	swept, err := sim.Sweep(world, sim.DefaultKnobs(), sim.ReactiveGrid(), runtime.GOMAXPROCS(0), func() {
		heartbeat.Lock()
		defer heartbeat.Unlock()
		activity.RecordHeartbeat(ctx, "baseline")
	})
	if err != nil {
		return contract.SimulateResult{}, simulationFailed(err)
	}
	res.Baseline = contract.Baseline{Settings: len(swept), MaxWaitSeconds: BaselineMaxWait.Seconds()}
	best, found := sim.Cheapest(swept, BaselineMaxWait)
	if found {
		res.Baseline.Setting = best.Setting.String()
		for i := range res.Results {
			if paid := best.Result.ConnectorHours; paid > 0 {
				res.Results[i].VersusBaseline = res.Results[i].ConnectorHours / paid
			}
		}
		res.Results = append(res.Results, policyRun(baselineName, best.Result))
	}
	for i, r := range res.Results {
		// The policies' runs come first, the baseline's last.
		what := fmt.Sprintf("%s, the baseline (the cheapest of its %d settings with a p99 wait within %s on this work: %s)",
			r.Name, len(swept), BaselineMaxWait, res.Baseline.Setting)
		if i < len(policies) {
			what = fmt.Sprintf("%s policy, %s", r.Name, policies[i].policy)
		}
		line := fmt.Sprintf("%s: %d migrations, %d past their SLA, waits p50 %.0f s, p95 %.0f s and p99 %.0f s, %.1f connector-hours at %.0f%% utilisation, %d scale events",
			what, r.Migrations, r.SLABreaches, r.WaitP50, r.WaitP95, r.WaitP99, r.ConnectorHours, 100*r.Utilization, r.ScaleEvents)
		if r.VersusBaseline > 0 {
			line += fmt.Sprintf("; %.2f × the baseline's connector-hours", r.VersusBaseline)
		}
		if r.Unserved > 0 {
			line += fmt.Sprintf("; %d never served: the policy leaves them no connector", r.Unserved)
		}
		res.Reasoning = append(res.Reasoning, line)
	}
	if !found {
		res.Reasoning = append(res.Reasoning, fmt.Sprintf("%s, the baseline: none of its %d settings keeps the p99 wait within %s on this work",
			baselineName, len(swept), BaselineMaxWait))
	}
	return res, nil
}

// BaselineMaxWait is the p99 wait the baseline of a simulation must keep: the
// simulator's default (starter simulate -max-wait).
const BaselineMaxWait = time.Minute

// baselineName is the baseline's run in a simulation's results.
const baselineName = "reactive+waves"

// policyRun is a simulator's run as the contract carries it.
func policyRun(name string, r sim.Result) contract.PolicyRun {
	run := contract.PolicyRun{Name: name, Outcomes: contract.Outcomes(r.Outcomes), Wave: contract.Outcomes(r.Wave), Adhoc: contract.Outcomes(r.Adhoc),
		ConnectorHours: r.ConnectorHours, Utilization: r.Utilization, ScaleEvents: r.ScaleEvents, Failures: r.Failures, Unserved: r.Unserved, Seconds: r.Seconds}
	for _, t := range r.Tiers {
		run.Tiers = append(run.Tiers, contract.TierOutcomes{Tier: t.Tier, Outcomes: contract.Outcomes(t.Outcomes)})
	}
	return run
}

// adhocArrivals draws the ad-hoc migrations of [from, to) from the forecast: at each
// site and hour, Poisson of the forecast mean, each at a uniform second of the hour.
// Each brings the forecast's bytes per arrival for its hour (the site's mean where the
// forecast has none) and is due within the tightest SLA tier at its site; a site with
// no tier has no VMs to migrate.
func adhocArrivals(demand []planning.Demand, sites []planning.Site, from, to time.Time, seed uint64) []trace.Request {
	src := rand.NewPCG(seed, 0xad0c)
	rng := rand.New(src)
	var out []trace.Request
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
			out = append(out, trace.Request{ID: fmt.Sprintf("adhoc:%s:%d", d.Site, len(out)+1), Site: d.Site, SLATier: site.StrictestTier,
				Bytes: int64(bytes), KnownAt: at, Arrival: at, Deadline: at.Add(site.MaxTransfer)})
		}
	}
	return out
}

// namedPolicy is a scaling policy with the name its run goes by.
type namedPolicy struct {
	name   string
	policy planning.Policy
}

// simulationFailed is a simulation's error: it fails the same way every time, so it is
// not retried.
func simulationFailed(err error) error {
	return temporal.NewNonRetryableApplicationError("simulation: "+err.Error(), "SimulationFailed", err)
}
