package planning

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pmo-dev/pmo/forecast"
)

// RateObservation is one finished migration, as the rate model learns from it.
type RateObservation struct {
	Site               string
	Tier               string
	Bytes              int64
	DiskChangeBytesSec float64
	StartedAt          time.Time
	// Concurrent is how many other migrations ran on its connector meanwhile.
	Concurrent int
	// ConnectorBandwidthBytesSec is the whole bandwidth of its connector; zero where
	// the history does not say.
	ConnectorBandwidthBytesSec float64
	RateBytesSec               float64
	// RecentRateBytesSec is the median rate of the site's last recentOutcomes
	// migrations that had ended when it started: how the site has been doing lately.
	// Training fills it from the history; Predict does where it is zero.
	RecentRateBytesSec float64
}

// recentOutcomes is how many of a site's latest migrations make its recent rate.
const recentOutcomes = 20

// ended is when the observed migration ended, from its bytes and average rate.
func (o RateObservation) ended() time.Time {
	return o.StartedAt.Add(time.Duration(float64(o.Bytes) / o.RateBytesSec * float64(time.Second)))
}

// withRecentRates fills each observation's RecentRateBytesSec from the ones at its
// site that had ended when it started, and returns the site's latest rates, newest
// last, for predictions. obs must be in order of start.
func withRecentRates(obs []RateObservation) map[string][]float64 {
	bySite := map[string][]int{}
	var sites []string
	for i, o := range obs {
		if _, ok := bySite[o.Site]; !ok {
			sites = append(sites, o.Site)
		}
		bySite[o.Site] = append(bySite[o.Site], i)
	}
	latest := map[string][]float64{}
	for _, site := range sites {
		idx := bySite[site]
		byEnd := slices.Clone(idx)
		slices.SortStableFunc(byEnd, func(a, b int) int { return obs[a].ended().Compare(obs[b].ended()) })
		var recent []float64
		next := 0
		for _, i := range idx {
			for next < len(byEnd) && !obs[byEnd[next]].ended().After(obs[i].StartedAt) {
				recent = append(recent, obs[byEnd[next]].RateBytesSec)
				next++
			}
			recent = recent[max(len(recent)-recentOutcomes, 0):]
			obs[i].RecentRateBytesSec = median(recent)
		}
		for ; next < len(byEnd); next++ {
			recent = append(recent, obs[byEnd[next]].RateBytesSec)
		}
		latest[site] = recent[max(len(recent)-recentOutcomes, 0):]
	}
	return latest
}

// RateModel predicts the quantiles of a migration's transfer rate from what it is and
// where and when it runs: its size, its disk's change rate, its site and SLA tier, the
// hour of day and day of week, its connector's bandwidth and load, and the rates of the
// site's latest migrations (past outcomes). It is gradient-boosted
// trees with pinball loss (forecast.QuantileRegressor) on the logarithm of the rate.
type RateModel struct {
	sites, tiers []string
	// recent are each site's latest rates in the history it learned from.
	recent map[string][]float64
	reg    *forecast.QuantileRegressor
}

// RateAccuracy is how the model did on the newest fifth of the history, held out of
// its training, beside the site's median rate as a baseline.
type RateAccuracy struct {
	Held            int     `json:"held_out"`
	MedianError     float64 `json:"median_error"`          // median |predicted − actual| / actual of the median
	BaselineError   float64 `json:"baseline_median_error"` // the same for the site's median rate
	BandCoverage    float64 `json:"band_coverage"`         // share of actual rates in the 10–90% band
	TrainingRows    int     `json:"training_rows"`
	TrainingSeconds float64 `json:"training_seconds"`
}

// String says it in a sentence, for the plan's reasons.
func (a RateAccuracy) String() string {
	return fmt.Sprintf("rate model: median error %.0f%% on %d held-out migrations (the site median: %.0f%%), 10–90%% band held %.0f%%",
		100*a.MedianError, a.Held, 100*a.BaselineError, 100*a.BandCoverage)
}

// TrainRateModel measures the model on the newest fifth of obs, trained on the rest,
// then trains it on all of obs for use. It needs 50 observations.
func TrainRateModel(obs []RateObservation) (*RateModel, RateAccuracy, error) {
	if len(obs) < 50 {
		return nil, RateAccuracy{}, fmt.Errorf("rate model: %d migrations of history, want at least 50: %w", len(obs), forecast.ErrTooShort)
	}
	began := time.Now()
	obs = slices.Clone(obs)
	slices.SortStableFunc(obs, func(a, b RateObservation) int { return a.StartedAt.Compare(b.StartedAt) })
	latest := withRecentRates(obs)
	cut := len(obs) * 4 / 5
	held, err := fitRate(obs[:cut])
	if err != nil {
		return nil, RateAccuracy{}, err
	}
	acc := RateAccuracy{Held: len(obs) - cut}
	siteMedian := map[string]float64{}
	for _, s := range held.sites {
		var rates []float64
		for _, o := range obs[:cut] {
			if o.Site == s {
				rates = append(rates, o.RateBytesSec)
			}
		}
		siteMedian[s] = median(rates)
	}
	var errs, base []float64
	inside := 0
	for _, o := range obs[cut:] {
		lo, mid, hi := held.Predict(o)
		errs = append(errs, math.Abs(mid-o.RateBytesSec)/o.RateBytesSec)
		base = append(base, math.Abs(siteMedian[o.Site]-o.RateBytesSec)/o.RateBytesSec)
		if o.RateBytesSec >= lo && o.RateBytesSec <= hi {
			inside++
		}
	}
	acc.MedianError, acc.BaselineError = median(errs), median(base)
	acc.BandCoverage = float64(inside) / float64(acc.Held)
	m, err := fitRate(obs)
	if err != nil {
		return nil, RateAccuracy{}, err
	}
	m.recent = latest
	acc.TrainingRows, acc.TrainingSeconds = len(obs), time.Since(began).Seconds()
	return m, acc, nil
}

func fitRate(obs []RateObservation) (*RateModel, error) {
	m := &RateModel{reg: forecast.DefaultRegressor()}
	for _, o := range obs {
		if !slices.Contains(m.sites, o.Site) {
			m.sites = append(m.sites, o.Site)
		}
		if !slices.Contains(m.tiers, o.Tier) {
			m.tiers = append(m.tiers, o.Tier)
		}
	}
	slices.Sort(m.sites)
	slices.Sort(m.tiers)
	x := make([][]float64, len(obs))
	y := make([]float64, len(obs))
	for i, o := range obs {
		x[i] = m.features(o)
		y[i] = math.Log(o.RateBytesSec)
	}
	return m, m.reg.Fit(x, y)
}

// features encodes an observation; unknown sites and tiers get their own index.
func (m *RateModel) features(o RateObservation) []float64 {
	return []float64{
		math.Log1p(float64(o.Bytes)), math.Log1p(o.DiskChangeBytesSec),
		float64(index(m.sites, o.Site)), float64(index(m.tiers, o.Tier)),
		float64(o.StartedAt.UTC().Hour()), float64(o.StartedAt.UTC().Weekday()), float64(o.Concurrent),
		math.Log1p(o.ConnectorBandwidthBytesSec), math.Log1p(o.RecentRateBytesSec),
	}
}

func index(names []string, name string) int {
	if i := slices.Index(names, name); i >= 0 {
		return i
	}
	return len(names)
}

// Predict returns the 10%, 50% and 90% quantiles of the rate, in bytes per second, of
// a migration like o (its RateBytesSec is ignored). Without a RecentRateBytesSec it
// takes the site's latest rates in the history the model learned from.
func (m *RateModel) Predict(o RateObservation) (lo, mid, hi float64) {
	if o.RecentRateBytesSec == 0 {
		o.RecentRateBytesSec = median(m.recent[o.Site])
	}
	q := m.reg.Predict(m.features(o))
	return math.Exp(q[0]), math.Exp(q[1]), math.Exp(q[2])
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
