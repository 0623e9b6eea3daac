package planning

import (
	"fmt"
	"slices"
	"time"
)

// UnderMaintenance returns the maintenance window at site that covers at, if any. A
// site in maintenance takes no new placements: migrations wait, connectors are not
// started there.
func UnderMaintenance(b []Bottleneck, site string, at time.Time) (Bottleneck, bool) {
	for _, w := range b {
		if w.Kind == "maintenance" && w.Site == site && !at.Before(w.From) && at.Before(w.To) {
			return w, true
		}
	}
	return Bottleneck{}, false
}

// shiftPlanned moves the planned migrations of hours that fall in a maintenance window
// at their site to the first hour after it, where they can run. It returns the new
// demand and a reason for each move.
func shiftPlanned(demand []Demand, events []Event) ([]Demand, []string) {
	if !slices.ContainsFunc(events, func(e Event) bool { return e.Kind == "maintenance" }) {
		return demand, nil // nothing moves: most ticks
	}
	out := make([]Demand, len(demand))
	copy(out, demand)
	var reasons []string
	for _, e := range events {
		if e.Kind != "maintenance" {
			continue
		}
		// An open window holds the planned work to the end of the horizon: nothing
		// is known to be free after it.
		ends := e.EndsBy(demandEnd(demand, e.Starts))
		after := ends.Truncate(time.Hour)
		if after.Before(ends) {
			after = after.Add(time.Hour)
		}
		target := -1
		for i, d := range out {
			if d.Site == e.Site && d.Hour.Equal(after) {
				target = i
			}
		}
		var moved, bytes float64
		for i := range out {
			d := &out[i]
			if d.Site != e.Site || d.Planned == 0 || !e.Overlaps(d.Hour, d.Hour.Add(time.Hour)) || i == target {
				continue
			}
			moved, bytes = moved+d.Planned, bytes+d.PlannedBytes
			d.Planned, d.PlannedBytes = 0, 0
		}
		if moved == 0 {
			continue
		}
		if target >= 0 {
			out[target].Planned += moved
			out[target].PlannedBytes += bytes
		}
		reasons = append(reasons, fmt.Sprintf("%s: %.0f planned migration(s) moved out of maintenance %s–%s to %s",
			e.Site, moved, e.Starts.Format("Mon 15:04"), ends.Format("Mon 15:04"), after.Format("Mon 15:04")))
	}
	return out, reasons
}
