package planning

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pmo-dev/pmo/forecast"
)

// Site is what planning needs to know about a site.
type Site struct {
	ID                string        `json:"id"`
	UplinkBytesSec    float64       `json:"uplink_bytes_per_sec"`
	MeanBytes         float64       `json:"mean_bytes"`              // mean bytes per migration, from history or inventory
	MeanRateBytesSec  float64       `json:"mean_rate_bytes_per_sec"` // mean observed transfer rate, from history
	StrictestQuantile float64       `json:"strictest_quantile"`      // plan quantile of the strictest SLA tier in use at the site
	StrictestTier     string        `json:"strictest_tier"`          // that tier's name; empty where the site has no VMs
	MaxTransfer       time.Duration `json:"max_transfer"`            // tightest max transfer time of the tiers in use
	// PatientShare is the share of the site's VMs whose tier lets them wait for a
	// connector to boot (Patient); zero where none can or it is not known.
	PatientShare float64 `json:"patient_share,omitempty"`
}

// Patient reports whether a tier that gives its migrations allowance (the simulator's
// grace beyond the copy; the fleet's max transfer time) lets them wait for a
// connector to boot: at least the lead time's floor.
func Patient(allowance time.Duration) bool { return allowance >= DefaultLeadTime }

// Event is a maintenance window or anomaly that affects planning. A zero Ends means
// the event is open: it lasts until it is closed (see Open).
type Event struct {
	Site     string    `json:"site"`
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Starts   time.Time `json:"starts"`
	Ends     time.Time `json:"ends"`
	Detail   string    `json:"detail"`
	// Source says who reported it: operator, alertmanager, calendar, detector, breach
	// or seed (see EventSources); empty means operator.
	Source string `json:"source,omitempty"`
}

// PredictInput is everything Predict decides from.
type PredictInput struct {
	Now      time.Time
	Demand   []Demand
	Sites    []Site
	Events   []Event
	Planned  []PlannedMigration
	Tiers    []SLATier
	Size     Size
	LeadTime time.Duration
	// Anomalies widen their sites' ad-hoc demand by AnomalyMargin until they clear.
	Anomalies []Anomaly
	// LinkDown are sites whose uplink is gone (a what-if): nothing moves there, so
	// they get no connectors and a bottleneck says why.
	LinkDown []string
	// ReplaceTime is how long a connector started now takes to be ready (see
	// ReplaceTime); headroom covers the arrivals of that long. Zero means LeadTime.
	ReplaceTime time.Duration
	// WaveLeadTime is how long before a planned wave its connectors start (see
	// WaveLeadTime); zero means LeadTime.
	WaveLeadTime time.Duration
	// SLASlack keeps headroom only for the arrivals that cannot wait for a boot: the
	// site's share that is not patient (Policy.SLASlack).
	SLASlack bool
	// Resources, when fitted, says what a connector of Size uses at full load.
	Resources *ResourceModel
	// Target is the target storage's free space as connectors last measured it.
	Target TargetSpace
}

// TargetSpace is the free space of the target storage that the pool's connectors
// write to, as one of them measured it.
type TargetSpace struct {
	FreeBytes  int64     `json:"free_bytes"`
	MeasuredAt time.Time `json:"measured_at,omitzero"`
	By         string    `json:"by,omitempty"` // the connector that measured it
}

// SiteTarget is the capacity a site needs now so that demand arriving within the
// provisioning lead time finds a warm connector.
type SiteTarget struct {
	Site              string  `json:"site"`
	Connectors        int     `json:"connectors"`
	Size              string  `json:"size"`
	CPUMillis         int     `json:"cpu_millis"`
	RAMBytes          int64   `json:"ram_bytes"`
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	StorageBytes      int64   `json:"storage_bytes"`
	// PeakHour is the hour within the horizon that needs the most connectors.
	PeakHour       time.Time `json:"peak_hour"`
	PeakConnectors int       `json:"peak_connectors"`
	// ExpectedSeconds is the expected transfer time of one migration at this site.
	ExpectedSeconds float64 `json:"expected_seconds"`
	// Headroom is the task slots to keep free beyond the work there is: what the
	// arrivals of one replacement time need at the site's quantile (with SLA slack,
	// those that cannot wait for a boot; the slots are then held for them).
	Headroom int    `json:"headroom_slots"`
	Reason   string `json:"reason"`
}

// Bottleneck is something that will limit migrations, reported before they start.
type Bottleneck struct {
	// Site is empty for what limits the whole pool: the target storage, a size too
	// small for its load.
	Site   string    `json:"site"`
	Kind   string    `json:"kind"` // uplink, maintenance, anomaly, sla, connector, connectors, storage, unreachable
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Detail string    `json:"detail"`
}

// Plan is the fleet's decision for one tick: the connectors each site should have now,
// what limits the work, and why.
type Plan struct {
	GeneratedAt time.Time    `json:"generated_at"`
	Targets     []SiteTarget `json:"targets"`
	Bottlenecks []Bottleneck `json:"bottlenecks"`
	Reasons     []string     `json:"reasons"`
	// LeadTimeSeconds is how long before demand connectors are started (see LeadTime).
	LeadTimeSeconds float64 `json:"lead_time_seconds"`
	// ReplaceSeconds is how long a connector started now takes to be ready (see
	// ReplaceTime; the lead time until boots are measured): how long a migration that
	// may wait for one must be able to wait.
	ReplaceSeconds float64 `json:"replace_seconds,omitempty"`
	// BootSeconds is the median of how long recent connectors took to be ready (see
	// BootTime), 0 while too few were measured: an "auto" scale-in cooldown is derived
	// from it (Policy.Cooldown).
	BootSeconds float64 `json:"boot_seconds,omitempty"`
	// ForecastAccuracy is how the pool's forecasts did over the past week, per site.
	ForecastAccuracy []ForecastAccuracy `json:"forecast_accuracy"`
	// Events are the system events the plan saw, each as "<id> open" or "<id> until
	// <RFC 3339 end>" (see EventStates).
	Events []string `json:"events,omitempty"`
	// Hours are the connectors each site needs in each hour of the forecast: the
	// capacity plan ahead, for the dashboard. The fleet keeps the plan without them
	// (they are stored with it), so its history stays small.
	Hours []PlannedHour `json:"hours,omitempty"`
}

// PlannedHour is the connectors a site needs in one hour.
type PlannedHour struct {
	Site       string    `json:"site"`
	Hour       time.Time `json:"hour"`
	Connectors int       `json:"connectors"`
}

// hourNeed is the capacity one site needs in one hour.
type hourNeed struct {
	hour        time.Time
	arrivals    float64 // migrations per hour at the planned quantile
	mean        float64 // migrations per hour expected
	throughput  float64 // bytes per second
	concurrency float64 // migrations in flight (Little's law)
	connectors  int
}

// poissonQuantile is the least k with P(N ≤ k) ≥ q for N Poisson with mean l.
func poissonQuantile(l, q float64) int { return int(forecast.CountQuantile(l, 0, q)) }

// Predict turns demand into connector targets per site. For each hour h:
//
//	arrivals   a = planned + adhoc(q)            (q: the site's strictest tier quantile)
//	throughput B = (planned bytes + adhoc bytes(q)) / 3600 s  (adhoc(q)·mean bytes without a volume forecast)
//	duration   W = mean bytes / per-task rate    (per-task rate = size bandwidth / max tasks)
//	concurrency L = a/3600 · W                   (Little's law)
//	connectors n = max(⌈B / size bandwidth⌉, ⌈L / max tasks⌉), at least 1 when a > 0.05
//
// The target is the largest n over the hours from now to now + lead time, so that
// connectors are warm before the work arrives. Migrations arrive at random, so the
// target also keeps headroom: the task slots that the arrivals of one replacement
// time (a boot and a tick) need at quantile q, which Scale keeps free beyond the work
// there is. They are Poisson with the arrivals expected from now over that time (planned
// and the forecast's mean, not a), hour by hour, so that a rise the next hour brings
// counts as the window reaches it: the quantile is taken once, of the count, where a
// rate already at q would take it twice and keep a slot more than q needs. A burst
// finds them warm, and what it takes is replaced in time for the next.
func Predict(in PredictInput) Plan {
	plan := Plan{GeneratedAt: in.Now, Targets: []SiteTarget{}, Bottlenecks: []Bottleneck{}, Reasons: []string{}, ForecastAccuracy: []ForecastAccuracy{}}
	size := in.Size
	perTask := size.BandwidthBytesSec / float64(size.MaxTasks)
	windowEnd := in.Now.Add(in.LeadTime).Truncate(time.Hour).Add(time.Hour)
	replace := in.ReplaceTime
	if replace <= 0 {
		replace = in.LeadTime
	}
	demand, moved := shiftPlanned(in.Demand, in.Events)
	plan.Reasons = append(plan.Reasons, moved...)
	var written []hourBytes // what each site's demand writes to the target, hour by hour
	for _, site := range in.Sites {
		if slices.Contains(in.LinkDown, site.ID) {
			plan.Targets = append(plan.Targets, SiteTarget{Site: site.ID, Size: size.Name, Reason: site.ID + ": link down, no connectors"})
			plan.Bottlenecks = append(plan.Bottlenecks, Bottleneck{Site: site.ID, Kind: "uplink", From: in.Now, To: in.Now.Add(in.LeadTime),
				Detail: "the site's uplink is down: no migration there can move"})
			plan.Reasons = append(plan.Reasons, site.ID+": link down, no connectors")
			continue
		}
		margin := 1.0
		for _, a := range in.Anomalies {
			if a.Site == site.ID {
				margin = AnomalyMargin
				plan.Bottlenecks = append(plan.Bottlenecks, Bottleneck{Site: site.ID, Kind: "anomaly", From: in.Now, To: in.Now.Add(time.Hour),
					Detail: a.Detail + fmt.Sprintf("; ad-hoc demand × %.1f until it clears", AnomalyMargin)})
				plan.Reasons = append(plan.Reasons, fmt.Sprintf("%s: anomaly (%s): ad-hoc demand × %.1f", site.ID, a.Detail, AnomalyMargin))
			}
		}
		needs := make([]hourNeed, 0, len(demand)/max(len(in.Sites), 1))
		for _, d := range demand {
			if d.Site != site.ID {
				continue
			}
			adhoc, adhocBytes := d.adhocAt(site.StrictestQuantile, site.MeanBytes)
			if margin > 1 {
				adhoc, adhocBytes = adhoc*margin, adhocBytes*margin
			}
			arrivals := d.Planned + adhoc
			bytes := d.PlannedBytes + adhocBytes
			n := hourNeed{hour: d.Hour, arrivals: arrivals, mean: d.Planned + d.AdhocMean*margin, throughput: bytes / 3600}
			if in.Target.FreeBytes > 0 { // only measured storage is checked (targetBottleneck)
				written = append(written, hourBytes{d.Hour, bytes})
			}
			if perTask > 0 && arrivals > 0 {
				meanBytes := bytes / arrivals
				n.concurrency = arrivals / 3600 * (meanBytes / perTask)
			}
			n.connectors = max(ceilPos(n.throughput/size.BandwidthBytesSec), ceilPos(n.concurrency/float64(size.MaxTasks)))
			if n.connectors == 0 && arrivals > 0.05 {
				n.connectors = 1
			}
			needs = append(needs, n)
		}
		slices.SortFunc(needs, func(a, b hourNeed) int { return a.hour.Compare(b.hour) })
		target := SiteTarget{Site: site.ID, Size: size.Name}
		var peak hourNeed
		var expected float64 // the arrivals expected from now to a replacement's readiness
		for _, n := range needs {
			if n.hour.Before(windowEnd) && n.connectors > target.Connectors {
				target.Connectors = n.connectors
			}
			// Each hour the replacement window reaches brings its share: a rise the
			// next hour forecasts is counted as the window reaches it.
			from, to := n.hour, n.hour.Add(time.Hour)
			if from.Before(in.Now) {
				from = in.Now
			}
			if end := in.Now.Add(replace); end.Before(to) {
				to = end
			}
			if to.After(from) {
				expected += n.mean * to.Sub(from).Hours()
			}
			if n.connectors > peak.connectors || peak.hour.IsZero() {
				peak = n
			}
			if site.UplinkBytesSec > 0 && n.throughput > site.UplinkBytesSec {
				plan.Bottlenecks = append(plan.Bottlenecks, Bottleneck{
					Site: site.ID, Kind: "uplink", From: n.hour, To: n.hour.Add(time.Hour),
					Detail: fmt.Sprintf("needs %s, uplink carries %s", rate(n.throughput), rate(site.UplinkBytesSec)),
				})
			}
		}
		var slots string
		if in.SLASlack {
			// Work that can wait fills every other slot, so the held ones are all an
			// urgent arrival finds: the quantile of the others that arrive within a
			// boot ahead of it, and one for itself.
			if urgent := expected * (1 - site.PatientShare); urgent > 0 {
				target.Headroom = poissonQuantile(urgent, site.StrictestQuantile) + 1
			}
			slots = fmt.Sprintf("%d task slot(s) held beyond the work for the arrivals of a %s boot that cannot wait for one (%.0f%% of the site's can)",
				target.Headroom, replace, 100*site.PatientShare)
		} else {
			target.Headroom = poissonQuantile(expected, site.StrictestQuantile)
			slots = fmt.Sprintf("%d task slot(s) free beyond the work for the arrivals of a %s boot", target.Headroom, replace)
		}
		// A planned wave starts at once: its migrations run side by side, so it needs
		// their concurrency and the bandwidth to copy them all within the SLA, not the
		// hour's average.
		waveEnd := windowEnd
		if end := in.Now.Add(in.WaveLeadTime); end.After(waveEnd) {
			waveEnd = end // a wave's connectors start a wave lead time ahead
		}
		wave, waveWhy := waveNeed(in.Planned, site, size, in.Now, waveEnd)
		if wave > target.Connectors {
			target.Connectors = wave
		} else {
			waveWhy = ""
		}
		target.PeakHour, target.PeakConnectors = peak.hour, max(peak.connectors, target.Connectors)
		target.CPUMillis = target.Connectors * size.CPUMillis
		target.RAMBytes = int64(target.Connectors) * size.RAMBytes
		target.BandwidthBytesSec = float64(target.Connectors) * size.BandwidthBytesSec
		target.StorageBytes = int64(target.Connectors) * size.StorageBytes
		if perTask > 0 {
			target.ExpectedSeconds = math.Round(site.MeanBytes / perTask)
		}
		target.Reason = fmt.Sprintf("%s: %d %s connector(s) for the next %s, and %s; peak %d at %s (%.1f arrivals/h at p%.0f, %s, %.1f in flight)",
			site.ID, target.Connectors, size.Name, in.LeadTime, slots, peak.connectors, peak.hour.Format("Mon 15:04"),
			peak.arrivals, site.StrictestQuantile*100, rate(peak.throughput), peak.concurrency)
		if waveWhy != "" {
			target.Reason += "; " + waveWhy
		}
		plan.Targets = append(plan.Targets, target)
		plan.Reasons = append(plan.Reasons, target.Reason)
		for _, n := range needs {
			c := n.connectors
			if n.hour.Before(windowEnd) {
				c = max(c, target.Connectors) // what is provisioned now covers the lead time
			}
			plan.Hours = append(plan.Hours, PlannedHour{Site: site.ID, Hour: n.hour, Connectors: c})
		}
		if site.MaxTransfer > 0 && target.ExpectedSeconds > site.MaxTransfer.Seconds() {
			plan.Bottlenecks = append(plan.Bottlenecks, Bottleneck{
				Site: site.ID, Kind: "sla", From: in.Now, To: in.Now.Add(site.MaxTransfer),
				Detail: fmt.Sprintf("a mean migration takes %s on a %s connector share, over the %s SLA",
					seconds(target.ExpectedSeconds), size.Name, site.MaxTransfer),
			})
		}
	}
	plan.Bottlenecks = append(plan.Bottlenecks, eventBottlenecks(in.Events, demandEnd(in.Demand, windowEnd))...)
	plan.Bottlenecks = append(plan.Bottlenecks, PlannedBottlenecks(in.Planned, in.Tiers, size, in.Events)...)
	if b, ok := targetBottleneck(in.Target, written); ok {
		plan.Bottlenecks = append(plan.Bottlenecks, b)
	}
	if in.Resources != nil {
		why, short := in.Resources.check(size, in.Now)
		plan.Reasons = append(plan.Reasons, why)
		plan.Bottlenecks = append(plan.Bottlenecks, short...)
	}
	return plan
}

// hourBytes is the bytes demand brings in one hour.
type hourBytes struct {
	hour  time.Time
	bytes float64
}

// targetBottleneck finds the hour in which the demand of every site together, at the
// planned quantiles, would have filled the target storage's measured free space.
func targetBottleneck(t TargetSpace, written []hourBytes) (Bottleneck, bool) {
	if t.FreeBytes <= 0 || len(written) == 0 {
		return Bottleneck{}, false // not measured
	}
	written = slices.Clone(written)
	slices.SortStableFunc(written, func(a, b hourBytes) int { return a.hour.Compare(b.hour) })
	var sum float64
	for _, w := range written {
		sum += w.bytes
		if sum > float64(t.FreeBytes) {
			last := written[len(written)-1].hour.Add(time.Hour)
			var total float64
			for _, x := range written {
				total += x.bytes
			}
			return Bottleneck{Kind: "storage", From: w.hour, To: last,
				Detail: fmt.Sprintf("the target storage has %s free (%s measured it at %s); the work planned and forecast fills it in the hour from %s and brings %s by %s",
					byteSize(t.FreeBytes), t.By, t.MeasuredAt.Format("Mon 15:04"), w.hour.Format("Mon 15:04"), byteSize(int64(total)), last.Format("Mon 15:04"))}, true
		}
	}
	return Bottleneck{}, false
}

// PlannedBottlenecks reports, for known work, each SLA that cannot be met: a migration
// whose window is too short for one connector share, or whose window falls inside a
// maintenance window at its site. Migrations of a site that fail for the same cause
// make one bottleneck, which names the first and counts the others, so that a plan
// stays small however much work is planned.
func PlannedBottlenecks(planned []PlannedMigration, tiers []SLATier, size Size, events []Event) []Bottleneck {
	var out []Bottleneck
	var count []int        // migrations behind out[i]
	at := map[string]int{} // site, kind and cause → index in out
	add := func(cause string, b Bottleneck) {
		key := b.Site + "/" + b.Kind + "/" + cause
		i, seen := at[key]
		if !seen {
			at[key] = len(out)
			out, count = append(out, b), append(count, 1)
			return
		}
		count[i]++
		if b.From.Before(out[i].From) {
			out[i].From = b.From
		}
		if b.To.After(out[i].To) {
			out[i].To = b.To
		}
	}
	perTask := size.BandwidthBytesSec / float64(size.MaxTasks)
	for _, p := range planned {
		window := p.Deadline.Sub(p.EarliestStart)
		need := time.Duration(float64(p.Bytes) / size.BandwidthBytesSec * float64(time.Second))
		if need > window {
			add("window", Bottleneck{Site: p.Site, Kind: "sla", From: p.EarliestStart, To: p.Deadline,
				Detail: fmt.Sprintf("migration %s needs at least %s on a whole %s connector, window is %s",
					p.ID, need.Round(time.Second), size.Name, window)})
		} else if shared := time.Duration(float64(p.Bytes) / perTask * float64(time.Second)); shared > window {
			add("shared", Bottleneck{Site: p.Site, Kind: "connector", From: p.EarliestStart, To: p.Deadline,
				Detail: fmt.Sprintf("migration %s needs %s on a shared %s connector, window is %s: it needs a connector to itself",
					p.ID, shared.Round(time.Second), size.Name, window)})
		}
		for _, t := range tiers {
			if t.Name == p.SLATier && t.MaxTransfer > 0 && need > t.MaxTransfer {
				add("tier "+t.Name, Bottleneck{Site: p.Site, Kind: "sla", From: p.EarliestStart, To: p.Deadline,
					Detail: fmt.Sprintf("migration %s needs %s, over tier %s's %s maximum transfer time",
						p.ID, need.Round(time.Second), t.Name, t.MaxTransfer)})
			}
		}
		for i, e := range events {
			if e.Site == p.Site && e.Kind == "maintenance" && e.Overlaps(p.EarliestStart, p.Deadline) {
				add(fmt.Sprint("event ", i), Bottleneck{Site: p.Site, Kind: "maintenance", From: e.Starts, To: e.EndsBy(p.Deadline),
					Detail: fmt.Sprintf("migration %s overlaps maintenance at %s: %s", p.ID, e.Site, e.Detail)})
			}
		}
	}
	for i, n := range count {
		if n > 1 {
			out[i].Detail += fmt.Sprintf("; and %d more planned migration(s) at %s for the same reason", n-1, out[i].Site)
		}
	}
	return out
}

// eventBottlenecks reports every event; an open one lasts, as far as the plan can
// tell, to the end of its horizon.
func eventBottlenecks(events []Event, horizonEnd time.Time) []Bottleneck {
	out := make([]Bottleneck, 0, len(events))
	for _, e := range events {
		out = append(out, Bottleneck{Site: e.Site, Kind: e.Kind, From: e.Starts, To: e.EndsBy(horizonEnd),
			Detail: fmt.Sprintf("%s %s: %s", e.Severity, e.Kind, e.Detail)})
	}
	return out
}

// adhocAt returns the ad-hoc arrivals at quantile q and the bytes they bring: the
// volume forecast where there is one, else the arrivals at meanBytes each.
func (d Demand) adhocAt(q, meanBytes float64) (arrivals, bytes float64) {
	arrivals = quantileOf(q, d.AdhocLo, d.AdhocMean, d.AdhocHi)
	if d.AdhocBytesHi > 0 {
		return arrivals, quantileOf(q, d.AdhocBytesLo, d.AdhocBytesMean, d.AdhocBytesHi)
	}
	return arrivals, arrivals * meanBytes
}

// quantileOf interpolates a forecast at quantile q through the points (0.1, lo),
// (0.5, mean) and (0.9, hi); the mean stands in for the median.
func quantileOf(q, lo, mean, hi float64) float64 {
	switch {
	case q <= 0.1:
		return lo
	case q <= 0.5:
		return lo + (mean-lo)*(q-0.1)/0.4
	case q < 0.9:
		return mean + (hi-mean)*(q-0.5)/0.4
	default:
		return hi
	}
}

func ceilPos(x float64) int {
	if x <= 0 || math.IsNaN(x) {
		return 0
	}
	return int(math.Ceil(x - 1e-9))
}

// rate formats a byte rate for people.
func rate(bytesPerSec float64) string {
	switch {
	case bytesPerSec >= float64(gib):
		return fmt.Sprintf("%.1f GiB/s", bytesPerSec/float64(gib))
	case bytesPerSec >= float64(mib):
		return fmt.Sprintf("%.1f MiB/s", bytesPerSec/float64(mib))
	default:
		return fmt.Sprintf("%.1f KiB/s", bytesPerSec/float64(kib))
	}
}

// seconds prints a number of seconds as a duration, for reasons.
func seconds(s float64) time.Duration { return time.Duration(s) * time.Second }

// waveNeed is the connectors the planned migrations at a site that start before
// windowEnd need at once: for each start minute, as many as run side by side (at the
// size's concurrency) and as copy their bytes within the site's SLA (an hour if it has
// none). Migrations whose start has passed are left to the running fleet.
func waveNeed(planned []PlannedMigration, site Site, size Size, now, windowEnd time.Time) (int, string) {
	type wave struct {
		n     int
		bytes float64
	}
	waves := map[time.Time]*wave{}
	var starts []time.Time
	for _, p := range planned {
		if p.Site != site.ID || p.EarliestStart.Before(now) || !p.EarliestStart.Before(windowEnd) {
			continue
		}
		at := p.EarliestStart.Truncate(time.Minute)
		w := waves[at]
		if w == nil {
			w = &wave{}
			waves[at] = w
			starts = append(starts, at)
		}
		w.n++
		w.bytes += float64(p.Bytes)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	sla := site.MaxTransfer
	if sla <= 0 {
		sla = time.Hour
	}
	best, why := 0, ""
	for _, at := range starts {
		w := waves[at]
		need := max(ceilPos(float64(w.n)/float64(size.MaxTasks)), ceilPos(w.bytes/sla.Seconds()/size.BandwidthBytesSec))
		if need > best {
			best = need
			why = fmt.Sprintf("%s: a planned wave of %d migration(s) (%s) at %s needs %d %s connector(s): %d side by side at %d each, %s within the %s SLA",
				site.ID, w.n, byteSize(int64(w.bytes)), at.Format("Mon 15:04"), need, size.Name, w.n, size.MaxTasks, rate(w.bytes/sla.Seconds()), sla)
		}
	}
	return best, why
}
