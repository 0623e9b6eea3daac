// Package trace generates the migration requests a simulation replays: a stream of
// ad-hoc requests whose arrival rate follows the shape of a real series, plus scheduled
// waves, for VMs of the demo's inventory. It is plain Go, with no SQL and no Temporal.
// `starter gen-trace` writes a trace file with Write; the simulator reads it with Read.
// docs/simulator.md describes traces for operators.
//
// The model, for Params p and a series x of evenly spaced values at step p.Step:
//
//   - The inventory is demo.Inventory(p.Seed, p.VMs): sites ams1, fra1 and lon1 hold
//     40%, 35% and 25% of the VMs; each VM has a tier (Tiers' shares) and a storage size,
//     lognormal with median 64 GiB and σ 0.8, clipped to [8 GiB, 2 TiB].
//   - The trace runs for p.Days days from p.Start. The series, divided by its mean so that
//     it averages 1, is laid over it from p.Start at its own step, and repeats from its
//     beginning when it is shorter than the trace.
//   - In step i there are Poisson(p.Rate × p.Step/1h × x[i mod len(x)] / mean(x))
//     ad-hoc arrivals, at whole seconds drawn uniformly within the step (the last step
//     drops those past the end). Each asks to migrate a VM drawn uniformly from the
//     inventory, with its site, tier and storage bytes. The planner learns of it when it
//     arrives, and its tier's Deadline is its SLA.
//   - Each 7-day week from p.Start has p.WavesPerWeek scheduled waves (a shorter last week
//     has its share, rounded), on distinct weekdays while there are enough, each starting
//     at a whole hour from 07:00 to 10:00 UTC. A wave is at the site of a VM drawn
//     uniformly from the inventory, so sites come up in proportion to their VMs. It
//     migrates 30 to 150 distinct VMs of that site (fewer if the site has fewer), all
//     arriving at its start. The planner learns of it a notice of 24 to 72 hours before
//     (not before p.Start), and its window is 6 hours: each request's deadline is the
//     later of the wave's end and its tier's Deadline.
//
// Generate draws everything from p.Seed, so the same series and Params give the same
// requests, and Write the same bytes.
package trace

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pmo-dev/pmo/demo"
	"github.com/pmo-dev/pmo/planning"
)

// Request is one migration request of a trace.
type Request struct {
	ID       string    // "m000001"…, in order of Arrival then ID
	Arrival  time.Time // when the migration is asked for and may start
	KnownAt  time.Time // when the planner learns of it: Arrival for ad-hoc work, earlier for a scheduled wave
	VMID     string
	Site     string
	SLATier  string
	Bytes    int64     // the VM's real storage bytes (not demo-scaled)
	Deadline time.Time // when its transfer must be done: the SLA
	Wave     string    // the scheduled wave it belongs to; "" for ad-hoc
}

// Tier is an SLA tier of a trace. A request's transfer must be done within Grace plus
// the time its bytes take at FloorBytesSec (see Deadline).
type Tier struct {
	Name          string
	Share         float64       // of the inventory's VMs: the demo's shares
	Grace         time.Duration // time allowed beyond the copy itself: waiting and cutover
	FloorBytesSec float64       // the slowest copy the SLA allows for
	PlanQuantile  float64       // the quantile of demand the planner provisions for
}

// Tiers are the SLA tiers of traces, strictest first: the SLA is done within
// Grace + Bytes/FloorBytesSec of arrival.
var Tiers = []Tier{
	// Gold leaves a typical VM about three minutes beside its copy at full speed: less
	// than a connector takes to boot, so gold work that waits for one is late.
	{"gold", 0.15, 2 * time.Minute, 90 << 20, 0.9},
	{"silver", 0.45, 15 * time.Minute, 50 << 20, 0.75},
	{"bronze", 0.40, time.Hour, 25 << 20, 0.5},
}

// TierNamed returns the tier of Tiers called name, and whether there is one.
func TierNamed(name string) (Tier, bool) {
	i := slices.IndexFunc(Tiers, func(t Tier) bool { return t.Name == name })
	if i < 0 {
		return Tier{}, false
	}
	return Tiers[i], true
}

// Deadline returns when a transfer of bytes that arrived at arrival must be done:
// arrival + Grace + bytes/FloorBytesSec, the last term rounded up to a whole second
// because trace files keep whole seconds.
func (t Tier) Deadline(arrival time.Time, bytes int64) time.Time {
	copying := time.Duration(math.Ceil(float64(bytes)/t.FloorBytesSec)) * time.Second
	return arrival.Add(t.Grace + copying)
}

// Params are the inputs of Generate besides the series. The starter's gen-trace flags
// set them.
type Params struct {
	Start        time.Time     // default 2026-10-26T00:00:00Z (a Monday); flag -start
	Days         int           // -days, default 28
	Step         time.Duration // the series' step, -step, default 5m
	Seed         uint64        // -seed, default 1
	Rate         float64       // mean ad-hoc migrations per hour over all sites, -rate, default 18
	WavesPerWeek int           // -waves, default 3
	VMs          int           // inventory size, -vms, default 3000
}

// DefaultParams returns the defaults of starter gen-trace.
func DefaultParams() Params {
	return Params{
		Start:        time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC),
		Days:         28,
		Step:         5 * time.Minute,
		Seed:         1,
		Rate:         18,
		WavesPerWeek: 3,
		VMs:          3000,
	}
}

const (
	week       = 7 * 24 * time.Hour // waves are drawn week by week from the start
	waveWindow = 6 * time.Hour
	minWave    = 30
	maxWave    = 150
	minNotice  = 24 * time.Hour
	maxNotice  = 72 * time.Hour
)

// waveHours are the whole hours UTC at which a wave may start.
var waveHours = []int{7, 8, 9, 10}

// Generate draws the requests of a trace whose ad-hoc arrivals follow series; see the
// package comment for the model. Start is truncated to the second. The series must have
// finite, non-negative values and a positive mean; Days, Step (a whole number of seconds)
// and VMs must be positive, and Rate and WavesPerWeek not negative, each within the
// bounds below. It returns an error
// naming the field for bad input, and the requests in order of Arrival then ID.
func Generate(series []float64, p Params) ([]Request, error) {
	shape, err := check(series, p)
	if err != nil {
		return nil, err
	}
	start := p.Start.UTC().Truncate(time.Second)
	end := start.Add(time.Duration(p.Days) * 24 * time.Hour)
	rng := rand.New(rand.NewPCG(p.Seed, 0x706d6f2d74726163)) // "pmo-trac"
	vms := demo.Inventory(p.Seed, p.VMs)

	reqs := adHoc(rng, shape, p.Rate*p.Step.Hours(), p.Step, start, end, vms)
	reqs = append(reqs, waves(rng, p.WavesPerWeek, start, end, vms)...)
	// Requests arriving together are ordered by wave and VM, ad-hoc first, so that IDs
	// do not depend on the order they were drawn in.
	slices.SortStableFunc(reqs, func(a, b Request) int {
		return cmp.Or(a.Arrival.Compare(b.Arrival), cmp.Compare(a.Wave, b.Wave), cmp.Compare(a.VMID, b.VMID))
	})
	for i := range reqs {
		reqs[i].ID = fmt.Sprintf("m%06d", i+1)
	}
	return reqs, nil
}

// Bounds of Generate's input, so that a trace is drawn in bounded time: at most
// MaxRequests ad-hoc requests are expected, the series' step is at most a day, and the
// trace covers at most MaxDays.
const (
	MaxRequests     = 10_000_000
	MaxDays         = 3660
	MaxStep         = 24 * time.Hour
	MaxWavesPerWeek = 100
	MaxVMs          = 1_000_000
)

// check validates Generate's input and returns the series divided by its mean. The
// division is done on the series scaled by its largest value, so that tiny or huge
// values neither underflow nor overflow the mean: the shape's values are at most
// len(series).
func check(series []float64, p Params) ([]float64, error) {
	switch {
	case p.Days < 1 || p.Days > MaxDays:
		return nil, fmt.Errorf("trace: Days: want 1 to %d, got %d", MaxDays, p.Days)
	case p.Step < time.Second || p.Step > MaxStep || p.Step%time.Second != 0:
		return nil, fmt.Errorf("trace: Step: want a whole number of seconds from 1s to %s, got %s", MaxStep, p.Step)
	case !(p.Rate >= 0) || math.IsInf(p.Rate, 0):
		return nil, fmt.Errorf("trace: Rate: want a finite number of migrations an hour, at least 0, got %v", p.Rate)
	case p.Rate*float64(p.Days)*24 > MaxRequests:
		return nil, fmt.Errorf("trace: Rate: %v an hour for %d days is over %d requests", p.Rate, p.Days, MaxRequests)
	case p.WavesPerWeek < 0 || p.WavesPerWeek > MaxWavesPerWeek:
		return nil, fmt.Errorf("trace: WavesPerWeek: want 0 to %d, got %d", MaxWavesPerWeek, p.WavesPerWeek)
	case p.VMs < 1 || p.VMs > MaxVMs:
		return nil, fmt.Errorf("trace: VMs: want 1 to %d, got %d", MaxVMs, p.VMs)
	case len(series) == 0:
		return nil, errors.New("trace: series: empty")
	}
	var top float64
	for i, v := range series {
		if !(v >= 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("trace: series: value %d is %v; want a finite number, at least 0", i+1, v)
		}
		top = max(top, v)
	}
	if top == 0 {
		return nil, errors.New("trace: series: zero throughout, so it has no shape")
	}
	shape := make([]float64, len(series))
	var sum float64
	for i, v := range series {
		shape[i] = v / top
		sum += shape[i]
	}
	mean := sum / float64(len(series)) // at least 1/len(series): the top is 1
	for i := range shape {
		shape[i] /= mean
	}
	return shape, nil
}

// adHoc draws the ad-hoc requests: Poisson(perStep × shape[i mod len]) in step i, where
// the shape is the series divided by its mean.
func adHoc(rng *rand.Rand, shape []float64, perStep float64, step time.Duration, start, end time.Time, vms []planning.InventoryVM) []Request {
	var reqs []Request
	for i := 0; ; i++ {
		from := start.Add(time.Duration(i) * step)
		if !from.Before(end) {
			return reqs
		}
		for range demo.Poisson(rng, perStep*shape[i%len(shape)]) {
			at := from.Add(time.Duration(rng.Int64N(int64(step/time.Second))) * time.Second)
			vm := vms[rng.IntN(len(vms))]
			if !at.Before(end) {
				continue // the last step runs past the end of the trace
			}
			tier := tierOf(vm)
			reqs = append(reqs, Request{
				Arrival: at, KnownAt: at, VMID: vm.ID, Site: vm.Site, SLATier: tier.Name,
				Bytes: vm.StorageBytes, Deadline: tier.Deadline(at, vm.StorageBytes),
			})
		}
	}
}

// waves draws the scheduled waves, perWeek in each week from start; see the package
// comment.
func waves(rng *rand.Rand, perWeek int, start, end time.Time, vms []planning.InventoryVM) []Request {
	var reqs []Request
	n := 0
	for from := start; from.Before(end); from = from.Add(week) {
		to, count := from.Add(week), perWeek
		if to.After(end) {
			to = end
			count = int(math.Round(float64(perWeek) * to.Sub(from).Hours() / week.Hours()))
		}
		for _, at := range waveStarts(rng, count, from, to) {
			n++
			reqs = append(reqs, wave(rng, fmt.Sprintf("w%02d", n), at, start, vms)...)
		}
	}
	return reqs
}

// waveStarts draws the start times of count waves in [from, to): distinct weekdays while
// there are enough, each at one of waveHours. It returns them in order.
func waveStarts(rng *rand.Rand, count int, from, to time.Time) []time.Time {
	var days [][]time.Time // the possible starts on each weekday
	for day := from.Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		var starts []time.Time
		for _, h := range waveHours {
			if at := day.Add(time.Duration(h) * time.Hour); !at.Before(from) && at.Before(to) {
				starts = append(starts, at)
			}
		}
		if len(starts) > 0 {
			days = append(days, starts)
		}
	}
	if len(days) == 0 {
		return nil
	}
	order := rng.Perm(len(days))
	out := make([]time.Time, count)
	for k := range out {
		starts := days[order[k%len(days)]]
		out[k] = starts[rng.IntN(len(starts))]
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// wave draws the requests of the wave called name that starts at at, in a trace that
// starts at traceStart.
func wave(rng *rand.Rand, name string, at, traceStart time.Time, vms []planning.InventoryVM) []Request {
	site := vms[rng.IntN(len(vms))].Site
	var local []planning.InventoryVM
	for _, v := range vms {
		if v.Site == site {
			local = append(local, v)
		}
	}
	size := min(minWave+rng.IntN(maxWave-minWave+1), len(local))
	notice := minNotice + time.Duration(rng.Int64N(int64((maxNotice-minNotice)/time.Second)+1))*time.Second
	known := at.Add(-notice)
	if known.Before(traceStart) {
		known = traceStart // nothing is known before the trace starts
	}
	reqs := make([]Request, 0, size)
	for _, i := range rng.Perm(len(local))[:size] {
		vm := local[i]
		tier := tierOf(vm)
		deadline := at.Add(waveWindow)
		if d := tier.Deadline(at, vm.StorageBytes); d.After(deadline) {
			deadline = d // too big for the window even at the tier's floor rate
		}
		reqs = append(reqs, Request{
			Arrival: at, KnownAt: known, VMID: vm.ID, Site: vm.Site, SLATier: tier.Name,
			Bytes: vm.StorageBytes, Deadline: deadline, Wave: name,
		})
	}
	return reqs
}

// tierOf returns the tier of an inventory VM.
func tierOf(vm planning.InventoryVM) Tier {
	t, ok := TierNamed(vm.SLATier)
	if !ok {
		panic(fmt.Sprintf("trace: inventory VM %s has tier %q, which Tiers lacks", vm.ID, vm.SLATier))
	}
	return t
}

// Intensity is the true rate Generate draws a site's ad-hoc arrivals from: the
// expected arrivals at the site in the hour from hour (truncated to the hour), which
// is p.Rate × the site's share of the inventory × the shape's mean over the hour. It is
// what a perfect forecast would say, for measuring forecasts and policies against; it
// checks series and p as Generate does.
func Intensity(series []float64, p Params) (func(site string, hour time.Time) float64, error) {
	shape, err := check(series, p)
	if err != nil {
		return nil, err
	}
	start := p.Start.UTC().Truncate(time.Second)
	share := map[string]float64{}
	vms := demo.Inventory(p.Seed, p.VMs)
	for _, vm := range vms {
		share[vm.Site] += 1 / float64(len(vms))
	}
	return func(site string, hour time.Time) float64 {
		from := hour.Truncate(time.Hour)
		to := from.Add(time.Hour)
		var expected float64
		// Each step whose span overlaps the hour brings its share of its arrivals.
		first := max(int(from.Sub(start)/p.Step)-1, 0)
		for i := first; ; i++ {
			s := start.Add(time.Duration(i) * p.Step)
			if !s.Before(to) {
				break
			}
			e := s.Add(p.Step)
			if e.After(to) {
				e = to
			}
			if s.Before(from) {
				s = from
			}
			if overlap := e.Sub(s); overlap > 0 {
				expected += p.Rate * shape[i%len(shape)] * overlap.Hours()
			}
		}
		return expected * share[site]
	}, nil
}
