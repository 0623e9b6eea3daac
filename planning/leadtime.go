package planning

import (
	"fmt"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
)

// LeadTime is how long before demand connectors are started: the 90th percentile of
// how long recent connectors really took to become ready, plus one planning tick (the
// fleet notices demand at most a tick late), and never less than floor, the operator's
// setting. With fewer than three starts measured, floor stands. It says how it was
// reached.
func LeadTime(floor, tick time.Duration, readySeconds []float64) (time.Duration, string) {
	if len(readySeconds) < 3 {
		return floor, fmt.Sprintf("lead time %s: the setting (%d connector start(s) measured, too few to learn from)", floor, len(readySeconds))
	}
	sorted := slices.Clone(readySeconds)
	slices.Sort(sorted)
	p90 := time.Duration(stat.Quantile(0.9, stat.Empirical, sorted, nil) * float64(time.Second)).Round(time.Second)
	learned := p90 + tick
	if learned <= floor {
		return floor, fmt.Sprintf("lead time %s: the setting; connectors were ready in %s at p90 over %d starts, %s with a tick",
			floor, p90, len(sorted), learned)
	}
	return learned, fmt.Sprintf("lead time %s: connectors were ready in %s at p90 over %d starts, plus a %s tick (the setting is %s)",
		learned, p90, len(sorted), tick, floor)
}
