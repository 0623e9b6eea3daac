package planning

import (
	"errors"
	"time"
)

// ErrNotFound means the record asked for does not exist.
var ErrNotFound = errors.New("not found")

// SiteInfo is a site as the inventory knows it.
type SiteInfo struct {
	ID             string
	Name           string
	Region         string
	UplinkBytesSec float64
	// Pool is the connector pool whose fleet plans for the site.
	Pool string
	// Sources are where the site's disks may be read: folders and http(s) URL
	// prefixes (package sources). Nil, when a file gives none, keeps what the site
	// had.
	Sources []string
}

// DefaultPool is the pool of a site that names none.
const DefaultPool = "default"

// SiteIDs are the sites' IDs, in their order.
func SiteIDs(sites []SiteInfo) []string {
	ids := make([]string, len(sites))
	for i, s := range sites {
		ids[i] = s.ID
	}
	return ids
}

// VM is one VM of the inventory, with its SLA tier's bounds.
type VM struct {
	ID   string
	Name string
	Site string
	// Pool is the site's connector pool, whose fleet gives the VM's migration a
	// connector.
	Pool string
	// Sources are the site's: where the VM's disk may be read from.
	Sources     []string
	SLATier     string
	DiskURI     string
	DiskBytes   int64
	MaxTransfer time.Duration
	MaxDowntime time.Duration
}

// MigrationRecord is one finished migration in the history.
type MigrationRecord struct {
	ID              string
	VMID            string
	Site            string
	ConnectorID     string
	SLATier         string
	Bytes           int64
	StartedAt       time.Time
	EndedAt         time.Time
	AvgBytesSec     float64
	Outcome         string
	DowntimeSeconds float64
	Detail          string
	// ConnectorBandwidthBytesSec is the whole bandwidth of the connector it ran on;
	// zero where unknown. InsertMigration fills it from the connector's record.
	ConnectorBandwidthBytesSec float64
	// Planned says that the migration was known work (a batch planned through
	// POST /forecast) rather than an ad-hoc arrival: the forecast of ad-hoc arrivals
	// leaves it out, as planned work enters the demand as it is.
	Planned bool
	// Wave is the wave that started it, if one did.
	Wave string
}

// ConnectorReport is the latest a connector process said about itself: when it became
// ready and what it uses, and for an external connector when it last posted metrics.
type ConnectorReport struct {
	ID       string
	ReadyAt  time.Time
	Usage    Usage
	LastSeen time.Time
}

// MetricSample is one sample a connector takes of itself, as connector_metrics holds
// it: PMO's own connectors write it to PostgreSQL, external ones post it to the API.
type MetricSample struct {
	At         time.Time `json:"at"`
	CPUPercent float64   `json:"cpu_percent"`
	RAMBytes   int64     `json:"ram_bytes"`
	// BandwidthUsedBytesSec is the bytes moved since the previous sample over the
	// time between them.
	BandwidthUsedBytesSec float64 `json:"bandwidth_used_bytes_per_sec"`
	ActiveTasks           int     `json:"active_tasks"`
	// BytesMoved is the total the connector has moved since it started.
	BytesMoved int64 `json:"bytes_moved"`
	// StorageUsedBytes is what the connector holds for copies not yet cut over or
	// discarded.
	StorageUsedBytes int64 `json:"storage_used_bytes"`
	// TargetFreeBytes is the free space of the storage the connector writes to; nil
	// where it could not be measured.
	TargetFreeBytes *int64 `json:"target_free_bytes,omitempty"`
	// ReadLatencySeconds is the mean duration of the connector's reads from the VMs'
	// disks since the previous sample; nil where it read nothing.
	ReadLatencySeconds *float64 `json:"read_latency_seconds,omitempty"`
	// CPUThrottledPercent is the time the connector's CPU limit held it back since
	// the previous sample, over the time between them, as a percentage (over 100 where
	// it is held back on several cores at once); nil where it runs without a CPU limit.
	CPUThrottledPercent *float64 `json:"cpu_throttled_percent,omitempty"`
}

// Usage is the sample as the fleet keeps it: unmeasured values are zero.
func (m MetricSample) Usage() Usage {
	u := Usage{At: m.At, CPUPercent: m.CPUPercent, RAMBytes: m.RAMBytes, BandwidthUsedBytesSec: m.BandwidthUsedBytesSec,
		ActiveTasks: m.ActiveTasks, StorageUsedBytes: m.StorageUsedBytes}
	if m.TargetFreeBytes != nil {
		u.TargetFreeBytes = *m.TargetFreeBytes
	}
	if m.ReadLatencySeconds != nil {
		u.ReadLatencySeconds = *m.ReadLatencySeconds
	}
	if m.CPUThrottledPercent != nil {
		u.CPUThrottledPercent = *m.CPUThrottledPercent
	}
	return u
}

// InventoryVM is a VM with everything the inventory holds about it. The embedded VM's
// MaxTransfer and MaxDowntime belong to its SLA tier and are not stored with the VM.
type InventoryVM struct {
	VM
	CPUCores           int
	RAMBytes           int64
	StorageBytes       int64 // the VM's real size; DiskBytes is the image that is moved
	NetworkBytesSec    float64
	DiskChangeBytesSec float64
}

// KeyedEvent is a system event with the source key that makes its insert idempotent.
type KeyedEvent struct {
	Key string
	Event
}

// SeedData is a whole data set for an empty database: what the demo seed generates.
type SeedData struct {
	Sites   []SiteInfo
	Tiers   []SLATier
	VMs     []InventoryVM
	History []MigrationRecord
	Events  []KeyedEvent
}
