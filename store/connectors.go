package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pmo-dev/pmo/planning"
)

// ErrUnknownConnector means the connectors table has no row for the ID: the fleet has
// not recorded the connector (yet), so the connector cannot report about itself.
var ErrUnknownConnector = errors.New("store: unknown connector")

// ErrNotExternal means the connector was started by PMO, which reads its metrics
// itself: it has no business posting them.
var ErrNotExternal = errors.New("store: connector was started by PMO, not registered")

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

// InsertConnectorMetrics stores a connector's samples in one statement, so that none
// or all of them are written; a sample whose connector and time are already stored is
// ignored, so that a retry writes nothing twice. It returns how many rows are new, and
// ErrUnknownConnector when no such connector is recorded.
func (s *Store) InsertConnectorMetrics(ctx context.Context, id string, samples []planning.MetricSample) (int64, error) {
	n, err := insertMetrics(ctx, s.Pool, id, samples)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation {
			return 0, fmt.Errorf("%w: %s", ErrUnknownConnector, id)
		}
		return 0, fmt.Errorf("store: insert metrics of connector %s: %w", id, err)
	}
	return n, nil
}

// ExternalReport is what became of the samples an external connector posted: how
// many were new, and the connector's state (as the fleet last recorded it) and when it
// was last seen.
type ExternalReport struct {
	Stored   int64
	State    planning.ConnectorState
	LastSeen time.Time
}

// RecordExternalMetrics stores the samples an external connector posted and marks it
// seen now, in one transaction: ErrUnknownConnector when there is no such connector
// (or it has left), ErrNotExternal when PMO started it. Connector IDs are unique across
// pools, so the connector is found wherever it is, also after its site moved to
// another pool. The fleet reads the samples and the time at its next Collect.
func (s *Store) RecordExternalMetrics(ctx context.Context, id string, samples []planning.MetricSample) (ExternalReport, error) {
	var r ExternalReport
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var external bool
		err := tx.QueryRow(ctx, `
			UPDATE connectors SET last_seen = now() WHERE id = $1 AND state <> 'stopped'
			RETURNING external, state, last_seen`, id).Scan(&external, &r.State, &r.LastSeen)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: %s", ErrUnknownConnector, id)
		case err != nil:
			return err
		case !external:
			return fmt.Errorf("%w: %s", ErrNotExternal, id)
		}
		r.LastSeen = r.LastSeen.UTC()
		r.Stored, err = insertMetrics(ctx, tx, id, samples)
		return err
	})
	if err != nil && !errors.Is(err, ErrUnknownConnector) && !errors.Is(err, ErrNotExternal) {
		return ExternalReport{}, fmt.Errorf("store: metrics of external connector %s: %w", id, err)
	}
	return r, err
}

// execer is what insertMetrics writes through: the pool, or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// insertMetrics writes a connector's samples in one statement, skipping those already
// stored, and returns how many are new.
func insertMetrics(ctx context.Context, db execer, id string, samples []planning.MetricSample) (int64, error) {
	if len(samples) == 0 {
		return 0, nil
	}
	n := len(samples)
	at, cpu, ram, bw := make([]time.Time, n), make([]float64, n), make([]int64, n), make([]float64, n)
	tasks, moved, used := make([]int64, n), make([]int64, n), make([]int64, n)
	free, latency, throttled := make([]*int64, n), make([]*float64, n), make([]*float64, n)
	for i, m := range samples {
		at[i], cpu[i], ram[i], bw[i] = m.At, m.CPUPercent, m.RAMBytes, m.BandwidthUsedBytesSec
		tasks[i], moved[i], used[i] = int64(m.ActiveTasks), m.BytesMoved, m.StorageUsedBytes
		free[i], latency[i], throttled[i] = m.TargetFreeBytes, m.ReadLatencySeconds, m.CPUThrottledPercent
	}
	tag, err := db.Exec(ctx, `
		INSERT INTO connector_metrics (connector_id, at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks, bytes_moved,
			storage_used_bytes, target_free_bytes, read_latency_seconds, cpu_throttled_percent)
		SELECT $1, * FROM unnest($2::timestamptz[], $3::float8[], $4::int8[], $5::float8[], $6::int8[], $7::int8[], $8::int8[],
			$9::int8[], $10::float8[], $11::float8[])
		ON CONFLICT (connector_id, at) DO NOTHING`,
		id, at, cpu, ram, bw, tasks, moved, used, free, latency, throttled)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
