package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/planning"
)

// Sites returns every site, ordered by ID.
func (s *Store) Sites(ctx context.Context) ([]planning.SiteInfo, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id, name, region, uplink_bytes_per_sec, pool, sources FROM sites ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: sites: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.SiteInfo, error) {
		var x planning.SiteInfo
		return x, r.Scan(&x.ID, &x.Name, &x.Region, &x.UplinkBytesSec, &x.Pool, &x.Sources)
	})
}

// Pools returns the pools that have sites, ordered by name.
func (s *Store) Pools(ctx context.Context) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT DISTINCT pool FROM sites ORDER BY pool`)
	if err != nil {
		return nil, fmt.Errorf("store: pools: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// SLATiers returns every SLA tier, ordered by name.
func (s *Store) SLATiers(ctx context.Context) ([]planning.SLATier, error) {
	rows, err := s.Pool.Query(ctx, `SELECT name, max_transfer_seconds, max_downtime_seconds, plan_quantile FROM sla_tiers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: sla tiers: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.SLATier, error) {
		var t planning.SLATier
		var transfer, downtime int
		err := r.Scan(&t.Name, &transfer, &downtime, &t.PlanQuantile)
		t.MaxTransfer, t.MaxDowntime = time.Duration(transfer)*time.Second, time.Duration(downtime)*time.Second
		return t, err
	})
}

// SiteProfiles describes each site for planning: the mean bytes and rate of the
// migrations since the given time (falling back to the inventory's mean disk when there
// is no history), the strictest SLA tier among the site's VMs (the one planning for
// the highest quantile, then the tightest transfer time), and the share of its VMs
// whose tier's transfer time lets them wait for a connector to boot (planning.Patient).
func (s *Store) SiteProfiles(ctx context.Context, since time.Time) ([]planning.Site, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT s.id, s.uplink_bytes_per_sec,
		       COALESCE(h.mean_bytes, inv.mean_bytes, 0),
		       COALESCE(h.mean_rate, 0),
		       COALESCE(inv.strictest_quantile, 0.5),
		       COALESCE(inv.strictest_tier, ''),
		       COALESCE(inv.tightest_transfer, 0),
		       COALESCE(inv.patient_share, 0)
		FROM sites s
		LEFT JOIN (
			SELECT site_id, avg(bytes)::float8 AS mean_bytes, avg(avg_bytes_per_sec)::float8 AS mean_rate
			FROM migrations WHERE started_at >= $1 AND outcome IN ('succeeded', 'sla_breached')
			GROUP BY site_id) h ON h.site_id = s.id
		LEFT JOIN (
			SELECT v.site_id, avg(v.disk_bytes)::float8 AS mean_bytes,
			       max(t.plan_quantile) AS strictest_quantile, min(t.max_transfer_seconds) AS tightest_transfer,
			       avg((t.max_transfer_seconds >= $2)::int)::float8 AS patient_share,
			       (array_agg(t.name ORDER BY t.plan_quantile DESC, t.max_transfer_seconds, t.name))[1] AS strictest_tier
			FROM vms v JOIN sla_tiers t ON t.name = v.sla_tier
			GROUP BY v.site_id) inv ON inv.site_id = s.id
		ORDER BY s.id`, since, planning.DefaultLeadTime.Seconds())
	if err != nil {
		return nil, fmt.Errorf("store: site profiles: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.Site, error) {
		var p planning.Site
		var transfer int
		err := r.Scan(&p.ID, &p.UplinkBytesSec, &p.MeanBytes, &p.MeanRateBytesSec, &p.StrictestQuantile, &p.StrictestTier, &transfer, &p.PatientShare)
		p.MaxTransfer = time.Duration(transfer) * time.Second
		return p, err
	})
}

// HourlyHistory returns, per site in the order given, how many ad-hoc migrations
// started in each hour of [from, from+hours) and how many bytes they moved. Planned
// migrations are left out: they are known work, which enters the demand as it is, so a
// wave counted here would echo in the forecast of ad-hoc arrivals.
func (s *Store) HourlyHistory(ctx context.Context, sites []string, from time.Time, hours int) (arrivals, bytes [][]float64, err error) {
	arrivals, bytes = make([][]float64, len(sites)), make([][]float64, len(sites))
	index := make(map[string]int, len(sites))
	for i, id := range sites {
		arrivals[i], bytes[i] = make([]float64, hours), make([]float64, hours)
		index[id] = i
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT site_id, floor(extract(epoch FROM started_at - $1) / 3600)::int AS h, count(*), sum(bytes)
		FROM migrations WHERE started_at >= $1 AND started_at < $2 AND site_id = ANY($3) AND NOT planned
		GROUP BY 1, 2`, from, from.Add(time.Duration(hours)*time.Hour), sites)
	if err != nil {
		return nil, nil, fmt.Errorf("store: hourly history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var site string
		var h int
		var n, b float64
		if err := rows.Scan(&site, &h, &n, &b); err != nil {
			return nil, nil, fmt.Errorf("store: hourly history: %w", err)
		}
		arrivals[index[site]][h], bytes[index[site]][h] = n, b
	}
	return arrivals, bytes, rows.Err()
}

// InsertForecast stores one hour's demand forecast, its band's quantile levels and the
// model per site; a later tick in the same hour, or a retry, overwrites it.
func (s *Store) InsertForecast(ctx context.Context, pool string, generatedAt time.Time, lo, hi float64, demand []planning.Demand) error {
	batch := &pgx.Batch{}
	for _, d := range demand {
		batch.Queue(`
			INSERT INTO forecasts (pool, site_id, generated_at, target_hour, model, fallback, planned, adhoc_mean, adhoc_lo, adhoc_hi,
				bytes_mean, bytes_lo, bytes_hi, lo_level, hi_level, baseline_lo, baseline_hi)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
			ON CONFLICT (pool, site_id, generated_at, target_hour) DO UPDATE SET
				model = EXCLUDED.model, fallback = EXCLUDED.fallback, planned = EXCLUDED.planned,
				adhoc_mean = EXCLUDED.adhoc_mean, adhoc_lo = EXCLUDED.adhoc_lo, adhoc_hi = EXCLUDED.adhoc_hi,
				bytes_mean = EXCLUDED.bytes_mean, bytes_lo = EXCLUDED.bytes_lo, bytes_hi = EXCLUDED.bytes_hi,
				lo_level = EXCLUDED.lo_level, hi_level = EXCLUDED.hi_level,
				baseline_lo = EXCLUDED.baseline_lo, baseline_hi = EXCLUDED.baseline_hi`,
			pool, d.Site, generatedAt, d.Hour, d.Model, d.Fallback, d.Planned, d.AdhocMean, d.AdhocLo, d.AdhocHi,
			d.AdhocBytesMean, d.AdhocBytesLo, d.AdhocBytesHi, lo, hi, d.BaselineLo, d.BaselineHi)
	}
	if err := s.Pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("store: insert forecast: %w", err)
	}
	return nil
}

// ScoreForecasts records what really arrived in every hour that has ended by now, on
// the pool's forecasts of it that are not scored yet. It returns how many it scored.
// Scoring twice is harmless: a scored row is not touched again.
func (s *Store) ScoreForecasts(ctx context.Context, pool string, now time.Time) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `
		UPDATE forecasts f SET actual_arrivals = a.n, actual_bytes = a.b
		FROM (
			-- One index probe of the history per site and hour to score, so that the
			-- cost follows the hours, not the length of the history.
			SELECT t.site_id, t.target_hour, h.n, h.b
			FROM (SELECT DISTINCT site_id, target_hour FROM forecasts
			      WHERE pool = $1 AND actual_arrivals IS NULL AND target_hour <= $2::timestamptz - interval '1 hour') t
			CROSS JOIN LATERAL (
				SELECT count(*) AS n, coalesce(sum(m.bytes), 0) AS b FROM migrations m
				WHERE m.site_id = t.site_id AND m.started_at >= t.target_hour AND m.started_at < t.target_hour + interval '1 hour') h
		) a
		WHERE f.pool = $1 AND f.actual_arrivals IS NULL AND f.site_id = a.site_id AND f.target_hour = a.target_hour`, pool, now)
	if err != nil {
		return 0, fmt.Errorf("store: score forecasts: %w", err)
	}
	return tag.RowsAffected(), nil
}

// bandPinball is the SQL of the mean pinball loss of a band of ad-hoc arrivals (the
// columns lo and hi, at lo_level and hi_level, with the planned work added) over the
// scored hours that stored the baseline band too, so that both bands are compared on
// the same hours. A quantile forecast f at level q of an actual a loses
// max(q(a − f), (q − 1)(a − f)); a band, the mean of its two ends'.
func bandPinball(lo, hi string) string {
	end := func(level, col string) string {
		return fmt.Sprintf("greatest(%[1]s * (actual_arrivals - planned - %[2]s), (%[1]s - 1) * (actual_arrivals - planned - %[2]s))", level, col)
	}
	return fmt.Sprintf("coalesce(avg((%s + %s) / 2) FILTER (WHERE baseline_lo IS NOT NULL), 0)", end("lo_level", lo), end("hi_level", hi))
}

// ForecastAccuracy summarises, per site, the pool's scored forecasts of the hours since
// the given time that were made before their hour began.
func (s *Store) ForecastAccuracy(ctx context.Context, pool string, since time.Time) ([]planning.ForecastAccuracy, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT site_id, count(*)::int,
			avg(abs(planned + adhoc_mean - actual_arrivals)),
			avg(planned + adhoc_mean - actual_arrivals),
			avg(CASE WHEN actual_arrivals BETWEEN planned + adhoc_lo AND planned + adhoc_hi THEN 1.0 ELSE 0.0 END),
			min(lo_level), max(hi_level),
			count(*) FILTER (WHERE baseline_lo IS NOT NULL)::int,
			`+bandPinball("adhoc_lo", "adhoc_hi")+`,
			`+bandPinball("baseline_lo", "baseline_hi")+`
		FROM forecasts
		WHERE pool = $1 AND actual_arrivals IS NOT NULL AND target_hour >= $2 AND target_hour > generated_at
		GROUP BY site_id ORDER BY site_id`, pool, since)
	if err != nil {
		return nil, fmt.Errorf("store: forecast accuracy: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.ForecastAccuracy, error) {
		var a planning.ForecastAccuracy
		err := r.Scan(&a.Site, &a.Scored, &a.MAE, &a.Bias, &a.Coverage, &a.LoLevel, &a.HiLevel, &a.SkillScored, &a.Pinball, &a.BaselinePinball)
		if a.BaselinePinball > 0 {
			a.Skill = 1 - a.Pinball/a.BaselinePinball
		}
		return a, err
	})
}

// InsertPlan stores one tick's plan, its hourly needs in site_plan_hours (a later
// plan's rows are kept over an earlier one's); a retry overwrites it.
func (s *Store) InsertPlan(ctx context.Context, pool string, plan planning.Plan) error {
	hours := plan.Hours
	plan.Hours = nil
	body, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("store: encode plan: %w", err)
	}
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO plans (pool, generated_at, body) VALUES ($1, $2, $3)
		ON CONFLICT (pool, generated_at) DO UPDATE SET body = EXCLUDED.body`, pool, plan.GeneratedAt, body)
	for _, h := range hours {
		batch.Queue(`INSERT INTO site_plan_hours (pool, site_id, hour, connectors, planned_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (pool, site_id, hour) DO UPDATE SET connectors = EXCLUDED.connectors, planned_at = EXCLUDED.planned_at
			WHERE site_plan_hours.planned_at <= EXCLUDED.planned_at`, pool, h.Site, h.Hour, h.Connectors, plan.GeneratedAt)
	}
	if err := s.Pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("store: insert plan: %w", err)
	}
	return nil
}

// UpsertConnector records a connector's pool, identity, size and state, and whether it
// is external; an ID keeps the site and externality it was first recorded with, and
// moves to the pool that records it last (a site moved to another pool takes its
// connectors with it).
func (s *Store) UpsertConnector(ctx context.Context, pool string, c planning.Connector) error {
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue, created_at, external)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET pool = EXCLUDED.pool, state = EXCLUDED.state, cpu_millis = EXCLUDED.cpu_millis,
			ram_bytes = EXCLUDED.ram_bytes, bandwidth_bytes_per_sec = EXCLUDED.bandwidth_bytes_per_sec,
			storage_bytes = EXCLUDED.storage_bytes,
			stopped_at = CASE WHEN EXCLUDED.state IN ('stopped', 'failed') THEN COALESCE(connectors.stopped_at, now()) ELSE NULL END`,
		c.ID, pool, c.Site, string(c.State), c.Size.CPUMillis, c.Size.RAMBytes, c.Size.BandwidthBytesSec, c.Size.StorageBytes, c.TaskQueue, c.CreatedAt, c.External)
	if err != nil {
		return fmt.Errorf("store: upsert connector %s: %w", c.ID, err)
	}
	return nil
}

// ResetConnectorReady clears a connector's readiness before its process is (re)started,
// and records the new process ID once known.
func (s *Store) ResetConnectorReady(ctx context.Context, id string) error {
	// The process is about to start: readiness is measured from now.
	_, err := s.Pool.Exec(ctx, `UPDATE connectors SET ready_at = NULL, pid = NULL, started_at = now() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: reset connector %s: %w", id, err)
	}
	return nil
}

// SiteOutcomes sums, per site, the migrations that started since recent beside all
// those since base: how many, how many failed, and the mean rate of the others.
func (s *Store) SiteOutcomes(ctx context.Context, base, recent time.Time) ([]planning.SiteOutcomes, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT site_id,
			count(*) FILTER (WHERE started_at >= $2)::int,
			count(*) FILTER (WHERE started_at >= $2 AND outcome = 'failed')::int,
			coalesce(avg(avg_bytes_per_sec) FILTER (WHERE started_at >= $2 AND outcome <> 'failed' AND outcome <> 'cancelled'), 0)::float8,
			count(*)::int,
			count(*) FILTER (WHERE outcome = 'failed')::int,
			coalesce(avg(avg_bytes_per_sec) FILTER (WHERE outcome <> 'failed' AND outcome <> 'cancelled'), 0)::float8
		FROM migrations WHERE started_at >= $1 GROUP BY site_id ORDER BY site_id`, base, recent)
	if err != nil {
		return nil, fmt.Errorf("store: site outcomes: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.SiteOutcomes, error) {
		var o planning.SiteOutcomes
		err := r.Scan(&o.Site, &o.RecentN, &o.RecentFailed, &o.RecentRate, &o.BaseN, &o.BaseFailed, &o.BaseRate)
		return o, err
	})
}

// RateHistory returns the newest migrations, at most limit, that moved bytes since
// the given time, oldest first, with what the rate model learns from: the VM's disk
// change rate and how many other migrations shared the connector meanwhile.
func (s *Store) RateHistory(ctx context.Context, since time.Time, limit int) ([]planning.RateObservation, error) {
	// The newest rows are picked first, so that the concurrency count runs on them only.
	rows, err := s.Pool.Query(ctx, `
		WITH recent AS (
			SELECT id, vm_id, site_id, sla_tier, bytes, started_at, ended_at, connector_id, avg_bytes_per_sec, connector_bandwidth_bytes_per_sec
			FROM migrations
			WHERE started_at >= $1 AND outcome IN ('succeeded', 'sla_breached') AND avg_bytes_per_sec > 0
			ORDER BY started_at DESC LIMIT $2)
		SELECT m.site_id, m.sla_tier, m.bytes, coalesce(v.disk_change_bytes_per_sec, 0)::float8, m.started_at,
			(SELECT count(*) FROM migrations o WHERE o.connector_id = m.connector_id AND o.id <> m.id
				AND o.started_at < m.ended_at AND o.ended_at > m.started_at)::int,
			m.avg_bytes_per_sec, coalesce(m.connector_bandwidth_bytes_per_sec, 0)
		FROM recent m LEFT JOIN vms v ON v.id = m.vm_id
		ORDER BY m.started_at`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("store: rate history: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.RateObservation, error) {
		var o planning.RateObservation
		err := r.Scan(&o.Site, &o.Tier, &o.Bytes, &o.DiskChangeBytesSec, &o.StartedAt, &o.Concurrent, &o.RateBytesSec, &o.ConnectorBandwidthBytesSec)
		return o, err
	})
}

// ReadyDelays returns how long the pool's connectors took to become ready after their
// process started, in seconds, for starts since the given time, newest first, at most
// limit of them.
func (s *Store) ReadyDelays(ctx context.Context, pool string, since time.Time, limit int) ([]float64, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT extract(epoch FROM ready_at - started_at)::float8 FROM connectors
		WHERE pool = $1 AND started_at >= $2 AND ready_at >= started_at
		ORDER BY started_at DESC LIMIT $3`, pool, since, limit)
	if err != nil {
		return nil, fmt.Errorf("store: ready delays: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[float64])
}

// ResourceSamples returns the metrics samples of the pool's connectors since the given
// time, the newest limit of them, for the resource model.
func (s *Store) ResourceSamples(ctx context.Context, pool string, since time.Time, limit int) ([]planning.ResourceSample, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT m.at, m.bandwidth_used_bytes_per_sec, m.active_tasks, m.cpu_percent, m.ram_bytes, m.storage_used_bytes
		FROM connector_metrics m JOIN connectors c ON c.id = m.connector_id
		WHERE c.pool = $1 AND m.at >= $2
		ORDER BY m.at DESC LIMIT $3`, pool, since, limit)
	if err != nil {
		return nil, fmt.Errorf("store: resource samples: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.ResourceSample, error) {
		var x planning.ResourceSample
		err := r.Scan(&x.At, &x.BandwidthBytesSec, &x.ActiveTasks, &x.CPUPercent, &x.RAMBytes, &x.StorageUsedBytes)
		return x, err
	})
}

// TargetSpace returns the newest measure of the target storage's free space by any of
// the pool's connectors since the given time; zero when none measured it.
func (s *Store) TargetSpace(ctx context.Context, pool string, since time.Time) (planning.TargetSpace, error) {
	var t planning.TargetSpace
	err := s.Pool.QueryRow(ctx, `
		SELECT m.target_free_bytes, m.at, m.connector_id
		FROM connector_metrics m JOIN connectors c ON c.id = m.connector_id
		WHERE c.pool = $1 AND m.at >= $2 AND m.target_free_bytes IS NOT NULL
		ORDER BY m.at DESC LIMIT 1`, pool, since).Scan(&t.FreeBytes, &t.MeasuredAt, &t.By)
	if errors.Is(err, pgx.ErrNoRows) {
		return planning.TargetSpace{}, nil
	}
	if err != nil {
		return planning.TargetSpace{}, fmt.Errorf("store: target space: %w", err)
	}
	t.MeasuredAt = t.MeasuredAt.UTC()
	return t, nil
}

// SetConnectorPID records the process ID of a connector's process.
func (s *Store) SetConnectorPID(ctx context.Context, id string, pid int) error {
	_, err := s.Pool.Exec(ctx, `UPDATE connectors SET pid = $2 WHERE id = $1`, id, pid)
	if err != nil {
		return fmt.Errorf("store: connector %s pid: %w", id, err)
	}
	return nil
}

// ConnectorHealth returns readiness, the latest metrics and when an external connector
// last posted them, of the given connectors, in the order given. Unknown IDs come
// back empty; unmeasured free space, read latency and throttling come back as zero.
func (s *Store) ConnectorHealth(ctx context.Context, ids []string) ([]planning.ConnectorReport, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT c.id, c.ready_at, c.last_seen, m.at, m.cpu_percent, m.ram_bytes, m.bandwidth_used_bytes_per_sec, m.active_tasks,
			m.storage_used_bytes, coalesce(m.target_free_bytes, 0), coalesce(m.read_latency_seconds, 0),
			coalesce(m.cpu_throttled_percent, 0)
		FROM connectors c
		LEFT JOIN LATERAL (
			SELECT at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks,
				storage_used_bytes, target_free_bytes, read_latency_seconds, cpu_throttled_percent FROM connector_metrics
			WHERE connector_id = c.id ORDER BY at DESC LIMIT 1) m ON true
		WHERE c.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: connector health: %w", err)
	}
	byID := make(map[string]planning.ConnectorReport, len(ids))
	defer rows.Close()
	for rows.Next() {
		var h planning.ConnectorReport
		var ready, seen, at *time.Time
		var cpu, bw, latency, throttled *float64
		var ram, storage, free *int64
		var tasks *int
		if err := rows.Scan(&h.ID, &ready, &seen, &at, &cpu, &ram, &bw, &tasks, &storage, &free, &latency, &throttled); err != nil {
			return nil, fmt.Errorf("store: connector health: %w", err)
		}
		if ready != nil {
			h.ReadyAt = ready.UTC()
		}
		if seen != nil {
			h.LastSeen = seen.UTC()
		}
		if at != nil {
			h.Usage = planning.Usage{At: at.UTC(), CPUPercent: *cpu, RAMBytes: *ram, BandwidthUsedBytesSec: *bw, ActiveTasks: *tasks,
				StorageUsedBytes: *storage, TargetFreeBytes: *free, ReadLatencySeconds: *latency, CPUThrottledPercent: *throttled}
		}
		byID[h.ID] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: connector health: %w", err)
	}
	out := make([]planning.ConnectorReport, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
		out[i].ID = id
	}
	return out, nil
}

// RecordOverride stores an override and one audit entry for what happened to it. Both
// are idempotent per override and action.
func (s *Store) RecordOverride(ctx context.Context, pool string, o planning.Override, action, detail string, at time.Time) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: record override: %w", err)
	}
	defer tx.Rollback(ctx)
	if action == "applied" {
		var expires *time.Time
		if !o.Expires.IsZero() {
			expires = &o.Expires
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO overrides (id, pool, kind, site_id, connector_id, min_connectors, max_connectors, who, why, created_at, expires_at)
			VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
			o.ID, pool, o.Kind, o.Site, o.ConnectorID, o.Min, o.Max, o.Who, o.Why, o.At, expires)
		if err != nil {
			return fmt.Errorf("store: insert override: %w", err)
		}
	}
	d, _ := json.Marshal(map[string]any{"override": o, "detail": detail})
	_, err = tx.Exec(ctx, `
		INSERT INTO override_audit (override_id, pool, action, who, why, at, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (override_id, action) DO NOTHING`,
		o.ID, pool, action, o.Who, o.Why, at, d)
	if err != nil {
		return fmt.Errorf("store: insert override audit: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: record override: %w", err)
	}
	return nil
}
