package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
)

// waveRows are a wave's planned migrations of inventory VMs, optionally only those
// to retry: tried, and every try failed. $1 is the wave, $2 whether to retry.
const waveRows = `FROM planned_migrations p WHERE p.wave = $1 AND p.vm_id <> ''
	AND (NOT $2 OR (EXISTS (SELECT 1 FROM migrations m WHERE m.wave = p.wave AND m.vm_id = p.vm_id AND m.outcome = 'failed')
		AND NOT EXISTS (SELECT 1 FROM migrations m WHERE m.wave = p.wave AND m.vm_id = p.vm_id AND m.outcome <> 'failed')))`

// WaveMigrations returns up to limit of a wave's planned migrations of inventory VMs
// whose IDs sort after after and, unless through is empty, not after through, by ID:
// a wave's batch reads its share page by page. With retry, only those whose every
// attempt failed.
func (s *Store) WaveMigrations(ctx context.Context, wave, after, through string, limit int, retry bool) ([]planning.PlannedMigration, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT p.id, p.vm_id, p.site_id, p.bytes, p.sla_tier, p.earliest_start, p.deadline, p.wave `+waveRows+`
			AND p.id > $3 AND ($4 = '' OR p.id <= $4)
		ORDER BY p.id LIMIT $5`, wave, retry, after, through, limit)
	if err != nil {
		return nil, fmt.Errorf("store: migrations of wave %s: %w", wave, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.PlannedMigration, error) {
		var p planning.PlannedMigration
		err := r.Scan(&p.ID, &p.VMID, &p.Site, &p.Bytes, &p.SLATier, &p.EarliestStart, &p.Deadline, &p.Wave)
		p.EarliestStart, p.Deadline = p.EarliestStart.UTC(), p.Deadline.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: migrations of wave %s: %w", wave, err)
	}
	return out, nil
}

// WaveBatches splits a wave's planned migrations (with retry, those to retry) into
// batches of size by ID, and adds them up.
func (s *Store) WaveBatches(ctx context.Context, in contract.WaveBatchesInput) (contract.WaveBatches, error) {
	if in.Size < 1 {
		return contract.WaveBatches{}, fmt.Errorf("store: batches of wave %s: size %d", in.Wave, in.Size)
	}
	var b contract.WaveBatches
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return b, fmt.Errorf("store: batches of wave %s: %w", in.Wave, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	err = tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(p.bytes), 0), coalesce(min(p.earliest_start), 'epoch'), coalesce(max(p.deadline), 'epoch') `+
		waveRows, in.Wave, in.Retry).Scan(&b.Count, &b.Bytes, &b.EarliestStart, &b.Deadline)
	if err != nil {
		return b, fmt.Errorf("store: batches of wave %s: %w", in.Wave, err)
	}
	b.EarliestStart, b.Deadline = b.EarliestStart.UTC(), b.Deadline.UTC()
	if b.Count == 0 {
		return b, nil
	}
	// Every size-th ID bounds a batch; the last batch runs to the end.
	rows, err := tx.Query(ctx, `SELECT id FROM (SELECT p.id, row_number() OVER (ORDER BY p.id) AS n `+waveRows+`) r
		WHERE n % $3 = 0 AND n < $4 ORDER BY id`, in.Wave, in.Retry, in.Size, b.Count)
	if err != nil {
		return b, fmt.Errorf("store: batches of wave %s: %w", in.Wave, err)
	}
	b.Bounds, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return b, fmt.Errorf("store: batches of wave %s: %w", in.Wave, err)
	}
	b.Bounds = append(b.Bounds, "")
	return b, nil
}

// RecordWaveReport writes a wave's report from what the wave knows and its
// migrations' history, and returns it; written again, it is replaced.
func (s *Store) RecordWaveReport(ctx context.Context, in contract.WaveReportInput) (contract.WaveReport, error) {
	r := contract.WaveReport{Wave: in.Wave, Pool: in.Pool, StartedAt: in.StartedAt.UTC(), EndedAt: in.EndedAt.UTC(),
		Attempts: in.Attempts, Cancelled: in.Cancelled, Controls: in.Controls}
	fail := func(err error) (contract.WaveReport, error) {
		return contract.WaveReport{}, fmt.Errorf("store: report of wave %s: %w", in.Wave, err)
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
	// Each planned migration's last attempt: the latest started of the wave's tries at
	// its VM.
	const last = `WITH p AS (SELECT id, vm_id, earliest_start, deadline FROM planned_migrations WHERE wave = $1 AND vm_id <> ''),
		tries AS (SELECT vm_id, count(*) AS n FROM migrations WHERE wave = $1 GROUP BY vm_id),
		last AS (SELECT DISTINCT ON (vm_id) vm_id, id, outcome, bytes, detail FROM migrations WHERE wave = $1
			ORDER BY vm_id, started_at DESC, ended_at DESC, id DESC) `
	err = tx.QueryRow(ctx, last+`SELECT count(*),
			count(*) FILTER (WHERE l.outcome = 'succeeded'), count(*) FILTER (WHERE l.outcome = 'sla_breached'),
			count(*) FILTER (WHERE l.outcome = 'failed'), count(*) FILTER (WHERE l.outcome = 'cancelled'),
			count(*) FILTER (WHERE l.outcome IS NULL), count(*) FILTER (WHERE t.n > 1),
			coalesce(sum(l.bytes) FILTER (WHERE l.outcome IN ('succeeded', 'sla_breached')), 0),
			coalesce(min(p.earliest_start), $2), coalesce(max(p.deadline), $2)
		FROM p LEFT JOIN last l ON l.vm_id = p.vm_id LEFT JOIN tries t ON t.vm_id = p.vm_id`, in.Wave, r.StartedAt).
		Scan(&r.Planned, &r.Outcomes.Succeeded, &r.Outcomes.Breached, &r.Outcomes.Failed, &r.Outcomes.Cancelled, &r.Outcomes.NotRun,
			&r.Retried, &r.Bytes, &r.PlannedStart, &r.PlannedDeadline)
	if err != nil {
		return fail(err)
	}
	r.PlannedStart, r.PlannedDeadline = r.PlannedStart.UTC(), r.PlannedDeadline.UTC()
	if late := r.EndedAt.Sub(r.PlannedDeadline).Seconds(); late > 0 {
		r.LateSeconds = late
	}
	rows, err := tx.Query(ctx, `SELECT connector_id, count(*), sum(bytes) FROM migrations
		WHERE wave = $1 AND connector_id <> 'none' GROUP BY connector_id ORDER BY connector_id`, in.Wave)
	if err != nil {
		return fail(err)
	}
	r.Connectors, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (contract.WaveConnector, error) {
		var c contract.WaveConnector
		return c, row.Scan(&c.ID, &c.Migrations, &c.Bytes)
	})
	if err != nil {
		return fail(err)
	}
	rows, err = tx.Query(ctx, last+`SELECT id, vm_id, detail FROM last WHERE outcome = 'failed' ORDER BY id LIMIT $2`,
		in.Wave, contract.MaxWaveFailures)
	if err != nil {
		return fail(err)
	}
	r.Failures, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (contract.WaveFailure, error) {
		var f contract.WaveFailure
		return f, row.Scan(&f.ID, &f.VMID, &f.Detail)
	})
	if err != nil {
		return fail(err)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fail(err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO wave_reports (wave, pool, started_at, ended_at, body) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (wave) DO UPDATE SET pool = EXCLUDED.pool, started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, body = EXCLUDED.body`,
		r.Wave, r.Pool, r.StartedAt, r.EndedAt, body)
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(err)
	}
	return r, nil
}

// WaveReport returns a wave's report, or planning.ErrNotFound while it has none.
func (s *Store) WaveReport(ctx context.Context, wave string) (contract.WaveReport, error) {
	var r contract.WaveReport
	err := s.Pool.QueryRow(ctx, `SELECT body FROM wave_reports WHERE wave = $1`, wave).Scan(&r)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, planning.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("store: report of wave %s: %w", wave, err)
	}
	return r, nil
}
