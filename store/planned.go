package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/planning"
)

// SavePlanned records a pool's planned migrations; planning one again replaces it, so a
// retried activity writes each once.
func (s *Store) SavePlanned(ctx context.Context, pool string, planned []planning.PlannedMigration, at time.Time) error {
	batch := &pgx.Batch{}
	for _, p := range planned {
		batch.Queue(`INSERT INTO planned_migrations (id, pool, vm_id, site_id, bytes, sla_tier, earliest_start, deadline, planned_at, wave)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (id) DO UPDATE SET pool = EXCLUDED.pool, vm_id = EXCLUDED.vm_id, site_id = EXCLUDED.site_id,
				bytes = EXCLUDED.bytes, sla_tier = EXCLUDED.sla_tier, earliest_start = EXCLUDED.earliest_start,
				deadline = EXCLUDED.deadline, planned_at = EXCLUDED.planned_at, wave = EXCLUDED.wave`,
			p.ID, pool, p.VMID, p.Site, p.Bytes, p.SLATier, p.EarliestStart, p.Deadline, at, p.Wave)
	}
	if err := s.Pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("store: save planned migrations: %w", err)
	}
	return nil
}

// Planned returns a pool's planned migrations that have not arrived and whose deadline
// is after now, by earliest start.
func (s *Store) Planned(ctx context.Context, pool string, now time.Time) ([]planning.PlannedMigration, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT id, vm_id, site_id, bytes, sla_tier, earliest_start, deadline
		FROM planned_migrations WHERE pool = $1 AND arrived_at IS NULL AND deadline > $2
		ORDER BY earliest_start, id`, pool, now)
	if err != nil {
		return nil, fmt.Errorf("store: planned migrations of %s: %w", pool, err)
	}
	planned, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.PlannedMigration, error) {
		var p planning.PlannedMigration
		err := r.Scan(&p.ID, &p.VMID, &p.Site, &p.Bytes, &p.SLATier, &p.EarliestStart, &p.Deadline)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: planned migrations of %s: %w", pool, err)
	}
	return planned, nil
}

// PlannedArrived marks planned migrations as arrived, which takes them out of the known
// demand; IDs that were not planned are ignored. The first arrival's time stays.
func (s *Store) PlannedArrived(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.Pool.Exec(ctx, `UPDATE planned_migrations SET arrived_at = $2 WHERE id = ANY($1) AND arrived_at IS NULL`, ids, at)
	if err != nil {
		return fmt.Errorf("store: mark planned migrations arrived: %w", err)
	}
	return nil
}
