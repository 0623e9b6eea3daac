package imports

import (
	"slices"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/planning"
)

// outcomes are how a migration may end, as the history stores it.
var outcomes = []string{"succeeded", "failed", "sla_breached", "cancelled"}

// ExternalConnector is the connector of a migration whose file names none: one that
// PMO did not run.
const ExternalConnector = "external"

// historySpec reads finished migrations: the columns of the migrations table.
var historySpec = spec[planning.MigrationRecord]{
	kind: History,
	fields: []field{
		{"id", []string{"id"}, 1},
		{"vm_id", []string{"vm_id"}, 1},
		{"site", []string{"site", "site_id"}, 1},
		{"connector_id", []string{"connector_id"}, 1},
		{"sla_tier", []string{"sla_tier", "tier"}, 1},
		{"bytes", []string{"bytes"}, 1},
		{"started_at", []string{"started_at"}, 1},
		{"ended_at", []string{"ended_at"}, 1},
		{"avg_bytes_per_sec", []string{"avg_bytes_per_sec"}, 1},
		{"outcome", []string{"outcome"}, 1},
		{"downtime_seconds", []string{"downtime_seconds"}, 1},
		{"detail", []string{"detail"}, 1},
		{"connector_bandwidth_bytes_per_sec", []string{"connector_bandwidth_bytes_per_sec"}, 1},
		{"planned", []string{"planned"}, 1},
	},
	optional: func(name string) bool {
		switch name {
		case "connector_id", "avg_bytes_per_sec", "downtime_seconds", "detail", "connector_bandwidth_bytes_per_sec", "planned":
			return true
		}
		return false
	},
	parse: func(c *cells) planning.MigrationRecord {
		m := planning.MigrationRecord{
			ID: c.id("id", ""), VMID: c.id("vm_id", ""), Site: c.id("site", ""),
			ConnectorID: c.id("connector_id", ExternalConnector), SLATier: c.text("sla_tier", ""),
			Bytes: c.whole("bytes", false), StartedAt: c.time("started_at"), EndedAt: c.time("ended_at"),
		}
		if !m.StartedAt.IsZero() && !m.EndedAt.IsZero() && m.EndedAt.Before(m.StartedAt) {
			c.bad("ended_at", "%s is before started_at %s", m.EndedAt.Format(time.RFC3339), m.StartedAt.Format(time.RFC3339))
		}
		// Unless the file says, the rate is the bytes over the whole time taken.
		if c.text("avg_bytes_per_sec", "") != "" {
			m.AvgBytesSec = c.number("avg_bytes_per_sec", false, 0)
		} else if d := m.EndedAt.Sub(m.StartedAt).Seconds(); d > 0 {
			m.AvgBytesSec = float64(m.Bytes) / d
		}
		m.Outcome = c.text("outcome", "")
		if m.Outcome != "" && !slices.Contains(outcomes, m.Outcome) {
			c.bad("outcome", "%q is not an outcome: want %s", m.Outcome, strings.Join(outcomes, ", "))
		}
		m.DowntimeSeconds = c.number("downtime_seconds", false, 0)
		m.Detail = c.text("detail", "")
		m.ConnectorBandwidthBytesSec = c.number("connector_bandwidth_bytes_per_sec", true, 0)
		m.Planned = c.boolean("planned")
		return m
	},
}
