// Package sim is PMO's discrete-event simulator. It replays a trace of migration
// requests against a connector fleet that a scaling policy runs, on a simulated clock
// that goes as fast as the CPU allows, and measures how long migrations waited for a
// connector, how many missed their SLA, and how many connector-hours that took.
//
// The world it models: connectors take a provisioning delay to become ready (lognormal
// around Config.ProvisionDelay), have a bandwidth and a task cap, and give each task an
// equal share; a migration's transfer takes its bytes over that share times its own
// noise (lognormal, drawn once per request so that every policy meets the same
// migrations); some transfers fail part-way and resume; a migration's SLA
// is its trace deadline. Placement is planning.Assign, the production code, for every
// policy. The predictive policy is the production planning core itself
// (planning.ForecastDemand, Predict and Scale), called as the fleet calls it.
package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/trace"
)

const mib = 1 << 20

// Config is the simulated world.
type Config struct {
	// Size is the connector size every policy provisions.
	Size planning.Size
	// ProvisionDelay is the median time from a connector's start to its readiness, and
	// ProvisionSpread the σ of its lognormal noise.
	ProvisionDelay  time.Duration
	ProvisionSpread float64
	// RateNoise is the σ of the lognormal noise on each migration's transfer rate.
	RateNoise float64
	// FailureRate is the share of transfers that fail part-way; they resume from where
	// they stopped on the next connector with room.
	FailureRate float64
	// Tick is how often the policy decides, as the fleet's planning interval.
	Tick time.Duration
	// Sample is the step of the demand and capacity series in the result.
	Sample time.Duration
	// Seed draws the world's noise; the same seed gives the same run.
	Seed uint64
	// GiveUpAfter is how long after the last arrival a run gives up on migrations
	// that no connector takes, and reports them unserved.
	GiveUpAfter time.Duration
	// Progress, if set, is told the simulated time as the run goes, about once per
	// simulated hour.
	Progress func(now, end time.Time)
}

// DefaultConfig is a world of real sizes: a medium connector moves 400 MiB/s over four
// tasks (100 MiB/s each, so a 64 GiB VM takes about 11 minutes) and takes about four
// minutes to boot.
func DefaultConfig() Config {
	return Config{
		Size: planning.Size{Name: "medium", CPUMillis: 4000, RAMBytes: 8 << 30, BandwidthBytesSec: 400 * mib,
			StorageBytes: 512 << 30, MaxTasks: 4},
		ProvisionDelay: 4 * time.Minute, ProvisionSpread: 0.25, RateNoise: 0.1, FailureRate: 0.02,
		Tick: planning.DefaultTick, Sample: time.Minute, Seed: 1, GiveUpAfter: 7 * 24 * time.Hour,
	}
}

// Validate reports the first field that cannot run, naming it.
func (c Config) Validate() error {
	switch {
	case c.Size.BandwidthBytesSec <= 0 || c.Size.MaxTasks < 1:
		return errors.New("size: needs a positive bandwidth and at least one task")
	case c.ProvisionDelay < 0:
		return errors.New("provision delay: must not be negative")
	case c.ProvisionSpread < 0 || c.RateNoise < 0:
		return errors.New("noise: must not be negative")
	case c.FailureRate < 0 || c.FailureRate >= 1:
		return errors.New("failure rate: must be in [0, 1)")
	case c.Tick <= 0:
		return errors.New("tick: must be positive")
	case c.Sample < c.Tick:
		return errors.New("sample: must be at least one tick")
	case c.GiveUpAfter < c.Tick:
		return errors.New("give up after: must be at least one tick")
	}
	return nil
}

// Point is the fleet at one moment of the run.
type Point struct {
	At time.Time `json:"at"`
	// Demand is the migrations running or waiting; Capacity the task slots of ready
	// connectors; Connectors the connectors paid for (warming, ready or draining).
	Demand     int `json:"demand"`
	Capacity   int `json:"capacity"`
	Connectors int `json:"connectors"`
}

// Result is one policy's run.
type Result struct {
	Name string `json:"name"`
	// Outcomes are every migration's: how many, how many breached their SLA, and how
	// long they waited for a connector, each wait counted (a migration waits again
	// after a failed transfer). Wave and Adhoc are the same for the scheduled waves'
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
	// Unserved are the migrations still not done GiveUpAfter after the last arrival: the
	// policy left them no connector. They count as SLA breaches.
	Unserved int `json:"unserved"`
	// Waits are every migration's waits for a connector, summed, in seconds, in trace
	// order; Series is the fleet every Sample.
	Waits  []float64 `json:"-"`
	Series []Point   `json:"-"`
	// Seconds is how long the run took on this machine.
	Seconds float64 `json:"run_seconds"`
}

// TierOutcomes are how one SLA tier's migrations did.
type TierOutcomes struct {
	Tier string `json:"tier"`
	Outcomes
}

// Outcomes are how a set of migrations did.
type Outcomes struct {
	Migrations  int     `json:"migrations"`
	SLABreaches int     `json:"sla_breaches"`
	WaitP50     float64 `json:"wait_p50_s"`
	WaitP95     float64 `json:"wait_p95_s"`
	WaitP99     float64 `json:"wait_p99_s"`
}

// Policy decides, every tick, which connectors to start and which idle ones to drain.
type Policy interface {
	// Name is the policy's name in results.
	Name() string
	// Decide looks at the fleet and says what to change. A policy may keep state
	// between calls; Run calls Reset first.
	Decide(v *View) (Decision, error)
	// Reset prepares the policy for a new run of the given world.
	Reset(w *World) error
}

// Placer is a policy that places waiting work itself, on every event and not only at
// its ticks, as the fleet does (planning.Place): its placement may hold work back (a
// maintenance window) or start a connector for work waiting with none.
type Placer interface {
	Place(v *View) planning.Placement
}

// Decision is what a policy changes now.
type Decision struct {
	Start []planning.StartDecision
	Drain []string
}

// View is the fleet as a policy sees it at one tick.
type View struct {
	Now        time.Time
	Connectors []planning.Connector
	Waiting    []planning.Reservation
	// Known are requests announced but not yet arrived: scheduled waves.
	Known []planning.PlannedMigration
	// ReadyDelays are how long started connectors took to become ready, in seconds.
	ReadyDelays []float64
	starts      map[string]int
	world       *World
}

// nextBoot is how long the n-th connector started at a site from now on (0 the next)
// will take to be ready: what only the oracle may know.
func (v *View) nextBoot(site string, n int) time.Duration {
	return v.world.bootDelay(site, v.starts[site]+n)
}

// Hourly returns each site's ad-hoc arrivals and bytes per whole hour from the start
// of the run to Now's hour, oldest first: the history the fleet forecasts from. Known
// work is kept out of it, as it is planned, not forecast.
func (v *View) Hourly() (arrivals, bytes [][]float64) {
	w := v.world
	hours := min(int(v.Now.Truncate(time.Hour).Sub(w.start)/time.Hour), len(w.hourArrivals[0]))
	arrivals = make([][]float64, len(w.Sites))
	bytes = make([][]float64, len(w.Sites))
	for i := range w.Sites {
		arrivals[i] = slices.Clone(w.hourArrivals[i][:hours])
		bytes[i] = slices.Clone(w.hourBytes[i][:hours])
	}
	return arrivals, bytes
}

// World is a trace ready to run: the requests with the noise each will meet.
type World struct {
	Config   Config
	Requests []trace.Request
	Sites    []string
	// rateFactor and failAt are drawn once per request, so every policy meets the same
	// migrations: the rate noise, and the share of its bytes at which its first
	// transfer fails (0: it does not).
	rateFactor, failAt []float64
	start              time.Time
	// hourArrivals and hourBytes count ad-hoc arrivals per site and hour of the trace.
	hourArrivals, hourBytes [][]float64
	// waves are the IDs of the requests that belong to a scheduled wave; index is each
	// request's place in Requests by ID.
	waves map[string]bool
	index map[string]int
}

func (w *World) isWave(id string) bool { return w.waves[id] }

// NewWorld draws the noise of each request. Requests must be in order of arrival.
func NewWorld(reqs []trace.Request, cfg Config) (*World, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, errors.New("trace: no requests")
	}
	// The run starts with the first thing known: a wave announced before any arrival
	// must find the fleet running to prepare for it.
	first := reqs[0].Arrival
	for _, r := range reqs {
		if r.KnownAt.Before(first) {
			first = r.KnownAt
		}
	}
	w := &World{Config: cfg, Requests: reqs, start: first.Truncate(time.Hour), waves: map[string]bool{}, index: map[string]int{}}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5157))
	hours := int(reqs[len(reqs)-1].Arrival.Sub(w.start)/time.Hour) + 1
	for _, r := range reqs {
		if !slices.Contains(w.Sites, r.Site) {
			w.Sites = append(w.Sites, r.Site)
		}
	}
	slices.Sort(w.Sites)
	w.hourArrivals = make([][]float64, len(w.Sites))
	w.hourBytes = make([][]float64, len(w.Sites))
	for i := range w.Sites {
		w.hourArrivals[i] = make([]float64, hours)
		w.hourBytes[i] = make([]float64, hours)
	}
	for i, r := range reqs {
		if _, dup := w.index[r.ID]; dup {
			return nil, fmt.Errorf("trace: request %s appears twice", r.ID)
		}
		w.index[r.ID] = i
		if i > 0 && r.Arrival.Before(reqs[i-1].Arrival) {
			return nil, fmt.Errorf("trace: request %s arrives before %s, which comes first", r.ID, reqs[i-1].ID)
		}
		w.rateFactor = append(w.rateFactor, math.Exp(cfg.RateNoise*rng.NormFloat64()))
		fail := 0.0
		if rng.Float64() < cfg.FailureRate {
			fail = 0.05 + 0.9*rng.Float64()
		}
		w.failAt = append(w.failAt, fail)
		if r.Wave != "" {
			w.waves[r.ID] = true
		} else {
			s, h := slices.Index(w.Sites, r.Site), int(r.Arrival.Sub(w.start)/time.Hour)
			w.hourArrivals[s][h]++
			w.hourBytes[s][h] += float64(r.Bytes)
		}
	}
	return w, nil
}

// bootDelay is how long the k-th connector started at a site takes to be ready:
// lognormal around the provisioning delay, drawn from the seed, the site and k alone,
// so that every policy's k-th start at a site meets the same boot.
func (w *World) bootDelay(site string, k int) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(site))
	rng := rand.New(rand.NewPCG(w.Config.Seed^h.Sum64(), uint64(k)))
	return seconds(w.Config.ProvisionDelay.Seconds() * math.Exp(w.Config.ProvisionSpread*rng.NormFloat64()))
}

// Duration is how long request i's transfer takes on one task of a connector of the
// world's size, without failures or waiting.
func (w *World) Duration(i int) time.Duration {
	share := w.Config.Size.BandwidthBytesSec / float64(w.Config.Size.MaxTasks)
	return seconds(float64(w.Requests[i].Bytes) / (share * w.rateFactor[i]))
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
