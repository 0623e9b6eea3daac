package planning

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Assignment gives a migration a connector and a bandwidth share.
type Assignment struct {
	MigrationID       string  `json:"migration_id"`
	WorkflowID        string  `json:"workflow_id"`
	ConnectorID       string  `json:"connector_id"`
	TaskQueue         string  `json:"task_queue"`
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	// Reason says why this connector: its free bandwidth and measured latency.
	Reason string `json:"reason,omitempty"`
	// Planned says that the migration was planned work (Reservation.Planned).
	Planned bool `json:"planned,omitempty"`
}

// FarLatency is how many times the best measured read latency among a site's
// candidates a connector's may be before it counts as far from the VMs' disks.
const FarLatency = 2

// Assign packs waiting migrations onto accepting connectors at their own site,
// highest priority first and then earliest deadline first. Each migration takes one
// task slot, a 1/MaxTasks share of the connector's bandwidth, so bandwidth is never
// overcommitted. Among candidates it prefers connectors near the VMs' disks (read
// latency within FarLatency times the best measured), then the most free bandwidth
// (allocation less the larger of what is promised and what was last measured), then
// the lowest latency, then the lowest ID. A reservation for which leave (if set) says
// n waits while its site has n free task slots or fewer: they are held for others. It
// returns the assignments and the updated connectors; reservations that found no room
// are left for later.
func Assign(conns []Connector, waiting []Reservation, leave func(Reservation) int) ([]Assignment, []Connector) {
	conns = slices.Clone(conns)
	// The order is of indices: moving thousands of reservations about costs more than
	// the sort's comparisons.
	order := make([]int, len(waiting))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &waiting[i], &waiting[j]
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		if c := a.Deadline.Compare(b.Deadline); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.MigrationID, b.MigrationID), cmp.Compare(i, j))
	})
	// Each site's accepting connectors: a migration looks at its own site's only, and
	// a connector leaves the list once its slots are full, so that a queue far longer
	// than the free slots costs a lookup per migration, not a pass over the pool.
	open := map[string][]int{}
	free := make([]float64, len(conns)) // each connector's freeBandwidth, kept as it changes
	for i, c := range conns {
		if c.Accepting() {
			open[c.Site] = append(open[c.Site], i)
			free[i] = c.freeBandwidth()
		}
	}
	var out []Assignment
	var cands []int
	for _, k := range order {
		r := waiting[k]
		cands = cands[:0]
		best := 0.0 // the lowest measured latency among the candidates
		for _, i := range open[r.Site] {
			c := &conns[i]
			if slices.Contains(r.Avoid, c.ID) {
				continue
			}
			cands = append(cands, i)
			if l := c.Usage.ReadLatencySeconds; l > 0 && (best == 0 || l < best) {
				best = l
			}
		}
		if len(cands) == 0 || leave != nil && freeSlots(conns, cands) <= leave(r) {
			continue
		}
		far := func(c *Connector) bool { return best > 0 && c.Usage.ReadLatencySeconds > FarLatency*best }
		pick := slices.MinFunc(cands, func(i, j int) int {
			a, b := &conns[i], &conns[j]
			switch {
			case far(a) != far(b):
				if far(a) {
					return 1
				}
				return -1
			case free[i] != free[j]:
				if free[i] > free[j] {
					return -1
				}
				return 1
			case a.Usage.ReadLatencySeconds != b.Usage.ReadLatencySeconds:
				if a.Usage.ReadLatencySeconds < b.Usage.ReadLatencySeconds {
					return -1
				}
				return 1
			}
			return cmp.Compare(a.ID, b.ID)
		})
		c := &conns[pick]
		share := c.Size.BandwidthBytesSec / float64(c.Size.MaxTasks)
		why := fmt.Sprintf("%s: %s free of %s, %d of %d tasks", c.ID, rate(c.freeBandwidth()), rate(c.Size.BandwidthBytesSec), len(c.Migrations), c.Size.MaxTasks)
		if l := c.Usage.ReadLatencySeconds; l > 0 {
			why += fmt.Sprintf(", reads in %s", time.Duration(l*float64(time.Second)).Round(10*time.Microsecond))
		}
		if c.Bound() == BoundCPU {
			why += fmt.Sprintf(", CPU-bound (held back %.0f%% of the time)", c.Usage.CPUThrottledPercent)
		}
		if len(cands) > 1 {
			why += fmt.Sprintf("; the best of %d at %s", len(cands), r.Site)
		}
		c.Migrations = append(slices.Clone(c.Migrations), Task{MigrationID: r.MigrationID, BandwidthBytesSec: share, Bytes: r.Bytes, Deadline: r.Deadline})
		c.State, c.IdleSince = StateActive, time.Time{}
		free[pick] = c.freeBandwidth()
		if !c.Accepting() {
			open[r.Site] = slices.DeleteFunc(open[r.Site], func(i int) bool { return i == pick })
		}
		out = append(out, Assignment{MigrationID: r.MigrationID, WorkflowID: r.WorkflowID, ConnectorID: c.ID, TaskQueue: c.TaskQueue,
			BandwidthBytesSec: share, Reason: why, Planned: r.Planned})
	}
	return out, conns
}

// freeSlots is the task slots free on the connectors at the indices given.
func freeSlots(conns []Connector, at []int) int {
	free := 0
	for _, i := range at {
		free += max(conns[i].Size.MaxTasks-len(conns[i].Migrations), 0)
	}
	return free
}

// CPUBoundPercent is how much of the time a connector's CPU limit must hold it back
// before it counts as CPU-bound: it then moves what its CPU allows, not what its
// bandwidth would.
const CPUBoundPercent = 10

// What bounds a connector, by its last report (Connector.Bound).
const (
	BoundCPU       = "cpu"
	BoundBandwidth = "bandwidth"
)

// bandwidthBound is the share of its bandwidth a connector must move to count as
// bandwidth-bound.
const bandwidthBound = 0.9

// Bound says what held the connector back in its last report: BoundCPU when its CPU
// limit throttled it for CPUBoundPercent of the time or more, BoundBandwidth when it
// moved at least nine tenths of its bandwidth, "" when neither did.
func (c Connector) Bound() string {
	switch {
	case c.Usage.CPUThrottledPercent >= CPUBoundPercent:
		return BoundCPU
	case c.Size.BandwidthBytesSec > 0 && c.Usage.BandwidthUsedBytesSec >= bandwidthBound*c.Size.BandwidthBytesSec:
		return BoundBandwidth
	}
	return ""
}

// freeBandwidth is the connector's bandwidth that is neither promised to its
// migrations nor, by its last report, in use. A CPU-bound connector has none: another
// task would share the CPU its tasks already lack.
func (c Connector) freeBandwidth() float64 {
	if c.Bound() == BoundCPU {
		return 0
	}
	var promised float64
	for _, t := range c.Migrations {
		promised += t.BandwidthBytesSec
	}
	return max(c.Size.BandwidthBytesSec-max(promised, c.Usage.BandwidthUsedBytesSec), 0)
}
