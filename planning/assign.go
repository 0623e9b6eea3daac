package planning

import (
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
}

// Assign packs waiting migrations onto accepting connectors at their own site,
// highest priority first and then earliest deadline first. Each migration takes one
// task slot, a 1/MaxTasks share of the connector's bandwidth, so bandwidth is never
// overcommitted. Among candidates it picks the connector with the fewest tasks, then
// the lowest ID. It returns the assignments and the updated connectors; reservations
// that found no room are left for later.
func Assign(conns []Connector, waiting []Reservation) ([]Assignment, []Connector) {
	conns = slices.Clone(conns)
	order := slices.Clone(waiting)
	slices.SortStableFunc(order, func(a, b Reservation) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		if c := a.Deadline.Compare(b.Deadline); c != 0 {
			return c
		}
		return compareStrings(a.MigrationID, b.MigrationID)
	})
	var out []Assignment
	for _, r := range order {
		best := -1
		for i, c := range conns {
			if c.Site != r.Site || !c.Accepting() || slices.Contains(r.Avoid, c.ID) {
				continue
			}
			if best < 0 || len(c.Migrations) < len(conns[best].Migrations) ||
				(len(c.Migrations) == len(conns[best].Migrations) && c.ID < conns[best].ID) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		c := &conns[best]
		share := c.Size.BandwidthBytesSec / float64(c.Size.MaxTasks)
		c.Migrations = append(slices.Clone(c.Migrations), Task{MigrationID: r.MigrationID, BandwidthBytesSec: share, Bytes: r.Bytes, Deadline: r.Deadline})
		c.State, c.IdleSince = StateActive, time.Time{}
		out = append(out, Assignment{MigrationID: r.MigrationID, WorkflowID: r.WorkflowID, ConnectorID: c.ID, TaskQueue: c.TaskQueue, BandwidthBytesSec: share})
	}
	return out, conns
}
