package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/planning"
)

// vmSelect reads inventory rows with their tier's limits, for scanVM.
const vmSelect = `SELECT v.id, v.name, v.site_id, s.pool, s.sources, v.sla_tier, v.disk_uri, v.disk_bytes, t.max_transfer_seconds, t.max_downtime_seconds
		FROM vms v JOIN sla_tiers t ON t.name = v.sla_tier JOIN sites s ON s.id = v.site_id`

// scanVM scans a row of vmSelect.
func scanVM(row pgx.Row) (planning.VM, error) {
	var v planning.VM
	var transfer, downtime int
	err := row.Scan(&v.ID, &v.Name, &v.Site, &v.Pool, &v.Sources, &v.SLATier, &v.DiskURI, &v.DiskBytes, &transfer, &downtime)
	v.MaxTransfer, v.MaxDowntime = time.Duration(transfer)*time.Second, time.Duration(downtime)*time.Second
	return v, err
}

// VM returns the inventory row with that ID, or planning.ErrNotFound.
func (s *Store) VM(ctx context.Context, id string) (planning.VM, error) {
	v, err := scanVM(s.Pool.QueryRow(ctx, vmSelect+` WHERE v.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return planning.VM{}, planning.ErrNotFound
	}
	if err != nil {
		return planning.VM{}, fmt.Errorf("store: vm %s: %w", id, err)
	}
	return v, nil
}

// VMs returns the inventory rows of the IDs given that exist, in one query, in no
// particular order; the caller sees which are missing.
func (s *Store) VMs(ctx context.Context, ids []string) ([]planning.VM, error) {
	rows, err := s.Pool.Query(ctx, vmSelect+` WHERE v.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: vms: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.VM, error) { return scanVM(r) })
	if err != nil {
		return nil, fmt.Errorf("store: vms: %w", err)
	}
	return out, nil
}

// SmallestVMs returns up to n inventory rows with the smallest disks, smallest first
// (then by ID): what a load test migrates.
func (s *Store) SmallestVMs(ctx context.Context, n int) ([]planning.VM, error) {
	rows, err := s.Pool.Query(ctx, vmSelect+` ORDER BY v.disk_bytes, v.id LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("store: smallest vms: %w", err)
	}
	defer rows.Close()
	var out []planning.VM
	for rows.Next() {
		v, err := scanVM(rows)
		if err != nil {
			return nil, fmt.Errorf("store: smallest vms: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: smallest vms: %w", err)
	}
	return out, nil
}

// InsertMigration records a finished migration that PMO ran. A second insert of the
// same ID is ignored, so a retried activity writes one row; it replaces a row of the
// same ID that an imported file wrote, since PMO's own outcome is the one that
// happened. A migration that was planned (a row of planned_migrations has its ID) is
// recorded as planned work.
func (s *Store) InsertMigration(ctx context.Context, m planning.MigrationRecord) error {
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO migrations (id, vm_id, site_id, connector_id, sla_tier, bytes, started_at, ended_at,
			avg_bytes_per_sec, outcome, downtime_seconds, detail, connector_bandwidth_bytes_per_sec, planned, recorded_by, wave)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
			coalesce($13, (SELECT bandwidth_bytes_per_sec FROM connectors WHERE id = $4)),
			$14 OR EXISTS (SELECT 1 FROM planned_migrations WHERE id = $1), 'pmo', $15)
		ON CONFLICT (id) DO UPDATE SET vm_id = EXCLUDED.vm_id, site_id = EXCLUDED.site_id, connector_id = EXCLUDED.connector_id,
			sla_tier = EXCLUDED.sla_tier, bytes = EXCLUDED.bytes, started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
			avg_bytes_per_sec = EXCLUDED.avg_bytes_per_sec, outcome = EXCLUDED.outcome, downtime_seconds = EXCLUDED.downtime_seconds,
			detail = EXCLUDED.detail, connector_bandwidth_bytes_per_sec = EXCLUDED.connector_bandwidth_bytes_per_sec,
			planned = EXCLUDED.planned, recorded_by = 'pmo', wave = EXCLUDED.wave
		WHERE migrations.recorded_by = 'import'`,
		m.ID, m.VMID, m.Site, m.ConnectorID, m.SLATier, m.Bytes, m.StartedAt, m.EndedAt,
		m.AvgBytesSec, m.Outcome, m.DowntimeSeconds, m.Detail, positiveOrNil(m.ConnectorBandwidthBytesSec), m.Planned, m.Wave)
	if err != nil {
		return fmt.Errorf("store: insert migration %s: %w", m.ID, err)
	}
	return nil
}

// MigrationByID returns one history row, or planning.ErrNotFound.
func (s *Store) MigrationByID(ctx context.Context, id string) (planning.MigrationRecord, error) {
	var m planning.MigrationRecord
	err := s.Pool.QueryRow(ctx, `
		SELECT id, vm_id, site_id, connector_id, sla_tier, bytes, started_at, ended_at, avg_bytes_per_sec, outcome, downtime_seconds, detail,
			coalesce(connector_bandwidth_bytes_per_sec, 0), planned, wave
		FROM migrations WHERE id = $1`, id).
		Scan(&m.ID, &m.VMID, &m.Site, &m.ConnectorID, &m.SLATier, &m.Bytes, &m.StartedAt, &m.EndedAt, &m.AvgBytesSec, &m.Outcome, &m.DowntimeSeconds, &m.Detail,
			&m.ConnectorBandwidthBytesSec, &m.Planned, &m.Wave)
	if errors.Is(err, pgx.ErrNoRows) {
		return planning.MigrationRecord{}, planning.ErrNotFound
	}
	if err != nil {
		return planning.MigrationRecord{}, fmt.Errorf("store: migration %s: %w", id, err)
	}
	return m, nil
}

// positiveOrNil is a measure for a nullable column: NULL where it is not known.
func positiveOrNil(v float64) *float64 {
	if v > 0 {
		return &v
	}
	return nil
}
