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
}

// VM is one VM of the inventory, with its SLA tier's bounds.
type VM struct {
	ID          string
	Name        string
	Site        string
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
}

// ConnectorReport is the latest a connector process said about itself: when it became
// ready and what it uses.
type ConnectorReport struct {
	ID      string
	ReadyAt time.Time
	Usage   Usage
}
