package planning

import "fmt"

// AnomalyMargin multiplies a site's ad-hoc demand while an anomaly lasts there: the
// safety margin, widened until the site behaves again.
const AnomalyMargin = 1.5

// SiteOutcomes sums a site's recent migrations beside its longer history.
type SiteOutcomes struct {
	Site string
	// RecentN migrations ended recently, RecentFailed of them failed, and the others
	// moved RecentRate bytes per second on average.
	RecentN, RecentFailed int
	RecentRate            float64
	// The same over the whole history window, the baseline.
	BaseN, BaseFailed int
	BaseRate          float64
}

// Anomaly is a site that behaves unlike its history right now.
type Anomaly struct {
	Site   string `json:"site"`
	Detail string `json:"detail"`
}

// minRecent is how many recent migrations a site needs before it can be called
// anomalous: fewer say nothing.
const minRecent = 5

// Anomalies finds the sites whose recent migrations fail far more often than their
// history (three times the rate, and at least 20 points more) or move at under half
// their usual rate.
func Anomalies(outcomes []SiteOutcomes) []Anomaly {
	var out []Anomaly
	for _, o := range outcomes {
		if o.RecentN < minRecent {
			continue
		}
		recent := float64(o.RecentFailed) / float64(o.RecentN)
		base := 0.0
		if o.BaseN > 0 {
			base = float64(o.BaseFailed) / float64(o.BaseN)
		}
		switch {
		case recent > 3*base && recent > base+0.2:
			out = append(out, Anomaly{Site: o.Site, Detail: fmt.Sprintf("%.0f%% of the last %d migrations failed, against %.0f%% over the history",
				100*recent, o.RecentN, 100*base)})
		case o.BaseRate > 0 && o.RecentRate > 0 && o.RecentRate < 0.5*o.BaseRate:
			out = append(out, Anomaly{Site: o.Site, Detail: fmt.Sprintf("recent migrations moved %s, under half the usual %s",
				rate(o.RecentRate), rate(o.BaseRate))})
		}
	}
	return out
}
