package planning

import (
	"fmt"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
)

// minStarts is how many measured connector starts the fleet learns its boot time from.
const minStarts = 3

// readyQuantile is the q-quantile of how long connectors took to become ready, and
// whether enough starts were measured to say.
func readyQuantile(q float64, readySeconds []float64) (time.Duration, bool) {
	if len(readySeconds) < minStarts {
		return 0, false
	}
	sorted := readySeconds
	if !slices.IsSorted(sorted) { // a tick sorts them once for its four quantiles
		sorted = slices.Clone(readySeconds)
		slices.Sort(sorted)
	}
	return time.Duration(stat.Quantile(q, stat.Empirical, sorted, nil) * float64(time.Second)).Round(time.Second), true
}

// LeadTime is how long before demand connectors are started: the 90th percentile of
// how long recent connectors really took to become ready, plus one planning tick (the
// fleet notices demand at most a tick late), and never less than floor, the operator's
// setting. With fewer than three starts measured, floor stands. It says how it was
// reached.
func LeadTime(floor, tick time.Duration, readySeconds []float64) (time.Duration, string) {
	p90, ok := readyQuantile(0.9, readySeconds)
	if !ok {
		return floor, fmt.Sprintf("lead time %s: the setting (%d connector start(s) measured, too few to learn from)", floor, len(readySeconds))
	}
	learned := p90 + tick
	if learned <= floor {
		return floor, fmt.Sprintf("lead time %s: the setting; connectors were ready in %s at p90 over %d starts, %s with a tick",
			floor, p90, len(readySeconds), learned)
	}
	return learned, fmt.Sprintf("lead time %s: connectors were ready in %s at p90 over %d starts, plus a %s tick (the setting is %s)",
		learned, p90, len(readySeconds), tick, floor)
}

// WaveLeadTime is how long before a planned wave its connectors are started: a wave
// needs all of them at once, so the 99th percentile of how long recent connectors took
// to become ready, not the 90th, plus a tick, and never less than the lead time.
func WaveLeadTime(lead, tick time.Duration, readySeconds []float64) time.Duration {
	p99, ok := readyQuantile(0.99, readySeconds)
	if !ok {
		return lead
	}
	return max(lead, p99+tick)
}

// BootTime is the median of how long recent connectors took to become ready; 0 while
// fewer than three starts were measured.
func BootTime(readySeconds []float64) time.Duration {
	p50, _ := readyQuantile(0.5, readySeconds)
	return p50
}

// ReplaceTime is how long a site waits for a connector started now: the 90th
// percentile of how long recent connectors took to become ready, plus a tick. With
// fewer than three starts measured it is a tick: the boots are not known yet, and the
// lead time's setting is what covers them. Headroom is sized for the arrivals of this
// long (see Predict).
func ReplaceTime(tick time.Duration, readySeconds []float64) time.Duration {
	p90, _ := readyQuantile(0.9, readySeconds)
	return p90 + tick
}
