package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnknownConnector means the connectors table has no row for the ID: the fleet has
// not recorded the connector (yet), so the connector cannot report about itself.
var ErrUnknownConnector = errors.New("store: unknown connector")

// foreignKeyViolation is PostgreSQL's SQLSTATE for a broken REFERENCES constraint.
const foreignKeyViolation = "23503"

// MarkConnectorReady records when the connector first polled its task queue. A
// connector that is already ready keeps its first time, so the call is idempotent. It
// returns ErrUnknownConnector when no such connector is recorded.
func (s *Store) MarkConnectorReady(ctx context.Context, id string) error {
	// The CTE's update and the existence check see the same snapshot, so "known but
	// already ready" and "unknown" can be told apart in one round trip.
	var known bool
	err := s.Pool.QueryRow(ctx, `
		WITH marked AS (UPDATE connectors SET ready_at = now() WHERE id = $1 AND ready_at IS NULL RETURNING id)
		SELECT EXISTS (SELECT 1 FROM connectors WHERE id = $1)`, id).Scan(&known)
	if err != nil {
		return fmt.Errorf("store: mark connector %s ready: %w", id, err)
	}
	if !known {
		return fmt.Errorf("%w: %s", ErrUnknownConnector, id)
	}
	return nil
}

// ConnectorMetric is one sample a connector takes of itself.
type ConnectorMetric struct {
	ConnectorID string
	At          time.Time
	CPUPercent  float64
	RAMBytes    int64
	// BandwidthUsedBytesSec is the bytes moved since the previous sample over the
	// time between them.
	BandwidthUsedBytesSec float64
	ActiveTasks           int
	// BytesMoved is the total the connector process has moved since it started.
	BytesMoved int64
	// StorageUsedBytes is what the connector holds for copies not yet cut over or
	// discarded.
	StorageUsedBytes int64
	// TargetFreeBytes is the free space of the storage the connector writes to; nil
	// where it could not be measured.
	TargetFreeBytes *int64
	// ReadLatencySeconds is the mean duration of the connector's reads from the VMs'
	// disks since the previous sample; nil where it read nothing.
	ReadLatencySeconds *float64
}

// InsertConnectorMetric stores a sample; a second sample with the same connector and
// time is ignored. It returns ErrUnknownConnector when no such connector is recorded.
func (s *Store) InsertConnectorMetric(ctx context.Context, m ConnectorMetric) error {
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO connector_metrics (connector_id, at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks, bytes_moved,
			storage_used_bytes, target_free_bytes, read_latency_seconds)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (connector_id, at) DO NOTHING`,
		m.ConnectorID, m.At, m.CPUPercent, m.RAMBytes, m.BandwidthUsedBytesSec, m.ActiveTasks, m.BytesMoved,
		m.StorageUsedBytes, m.TargetFreeBytes, m.ReadLatencySeconds)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation {
			return fmt.Errorf("%w: %s", ErrUnknownConnector, m.ConnectorID)
		}
		return fmt.Errorf("store: insert metric of connector %s: %w", m.ConnectorID, err)
	}
	return nil
}
