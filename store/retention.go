package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// retentionLock is the advisory lock key that keeps two retention runs (the schedule's
// and an operator's) from downsampling the same samples at once.
const retentionLock = 0x706d6f72 // "pmor"

// deleteBatch deletes at most limit rows of table that match cond ($1 is the cutoff)
// in one statement, so that a big backlog is many short transactions rather than one
// long lock. It returns how many it deleted.
func (s *Store) deleteBatch(ctx context.Context, table, cond string, before time.Time, limit int) (int64, error) {
	// The ctid list is taken from an index range scan; the condition is repeated so
	// that a row changed meanwhile is judged again.
	tag, err := s.Pool.Exec(ctx, fmt.Sprintf(`
		DELETE FROM %[1]s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %[1]s WHERE %[2]s LIMIT $2)) AND %[2]s`, table, cond),
		before, limit)
	if err != nil {
		return 0, fmt.Errorf("store: expire %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}

// DeleteMetricsBefore deletes at most limit connector metrics rows, raw or
// downsampled, taken before the given time.
func (s *Store) DeleteMetricsBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.deleteBatch(ctx, "connector_metrics", "at < $1", before, limit)
}

// DeleteEventsEndedBefore deletes at most limit system events that ended before the
// given time. An open event (no end) is never deleted.
func (s *Store) DeleteEventsEndedBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.deleteBatch(ctx, "system_events", "ends_at < $1", before, limit)
}

// DeleteForecastsBefore deletes at most limit forecast rows of hours before the given
// time.
func (s *Store) DeleteForecastsBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.deleteBatch(ctx, "forecasts", "target_hour < $1", before, limit)
}

// DeletePlansBefore deletes at most limit recorded plans generated before the given
// time, then the hourly plans of hours before it, then the planned migrations whose
// deadline was before it.
func (s *Store) DeletePlansBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	n, err := s.deleteBatch(ctx, "plans", "generated_at < $1", before, limit)
	if err != nil || n >= int64(limit) {
		return n, err
	}
	m, err := s.deleteBatch(ctx, "site_plan_hours", "hour < $1", before, limit-int(n))
	if err != nil || n+m >= int64(limit) {
		return n + m, err
	}
	k, err := s.deleteBatch(ctx, "planned_migrations", "deadline < $1", before, limit-int(n+m))
	return n + m + k, err
}

// DeletePlanChangesBefore deletes at most limit records of what events did to a plan,
// made before the given time.
func (s *Store) DeletePlanChangesBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.deleteBatch(ctx, "event_plan_changes", "at < $1", before, limit)
}

// DeleteAuditBefore deletes at most limit entries of the API's audit trail made before
// the given time.
func (s *Store) DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.deleteBatch(ctx, "api_audit", "at < $1", before, limit)
}

// DownsampleMetrics folds the oldest raw connector metrics samples taken before the
// given time into one row per connector and bucket, about limit raw samples at a time
// (whole buckets: more when one bucket holds more). It returns how many raw samples it
// folded (zero when none are left) and how many rows stand for them.
//
// A downsampled row is at its bucket's start (buckets are aligned to the Unix epoch)
// and holds, weighted by the samples each input row stands for: the mean CPU, RAM,
// bandwidth used, active tasks (rounded), storage used and read latency; the peak CPU,
// RAM and bandwidth; the highest bytes_moved (a per-process running total); and the
// least target free space. The raw rows are deleted and the aggregates written in one
// statement, so a retry after a failure folds each sample exactly once; a sample that
// arrives late for a bucket already folded is merged into its row by weight.
func (s *Store) DownsampleMetrics(ctx context.Context, before time.Time, bucket time.Duration, limit int) (raw, rows int64, err error) {
	if bucket < time.Second || limit < 1 {
		panic("store: DownsampleMetrics needs a bucket of at least 1s and a positive limit")
	}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, retentionLock); err != nil {
			return err
		}
		// The range: from the bucket of the oldest raw sample to the bucket that holds
		// the limit-th one after it, never past the bucket of the cutoff.
		cut := binStart(before, bucket)
		var oldest *time.Time
		err := tx.QueryRow(ctx, `SELECT min(at) FROM connector_metrics WHERE bucket_seconds IS NULL AND at < $1`, cut).Scan(&oldest)
		if err != nil || oldest == nil {
			return err // nil: nothing raw before the cutoff
		}
		from, to := binStart(*oldest, bucket), cut
		var nth time.Time
		err = tx.QueryRow(ctx, `
			SELECT at FROM connector_metrics WHERE bucket_seconds IS NULL AND at >= $1 AND at < $2
			ORDER BY at OFFSET $3 LIMIT 1`, from, cut, limit).Scan(&nth)
		switch {
		case err == nil:
			// At least one bucket, even one holding more than limit samples.
			to = binStart(nth, bucket)
			if !to.After(from) {
				to = from.Add(bucket)
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		return tx.QueryRow(ctx, `
			WITH raw AS (
				DELETE FROM connector_metrics
				WHERE bucket_seconds IS NULL AND at >= $1 AND at < $2
				RETURNING *, date_bin(make_interval(secs => $3), at, timestamptz '1970-01-01 00:00:00+00') AS bucket_at),
			earlier AS (
				-- rows already downsampled into a bucket that late samples now join
				DELETE FROM connector_metrics m
				WHERE m.bucket_seconds IS NOT NULL AND m.at >= $1 AND m.at < $2
					AND (m.connector_id, m.at) IN (SELECT connector_id, bucket_at FROM raw)
				RETURNING *, at AS bucket_at),
			merged AS (SELECT * FROM raw UNION ALL SELECT * FROM earlier),
			written AS (
				INSERT INTO connector_metrics (connector_id, at, samples, bucket_seconds,
					cpu_percent, cpu_percent_max, ram_bytes, ram_bytes_max,
					bandwidth_used_bytes_per_sec, bandwidth_used_max_bytes_per_sec,
					active_tasks, bytes_moved, storage_used_bytes, target_free_bytes, read_latency_seconds, cpu_throttled_percent)
				SELECT connector_id, bucket_at, sum(samples), $3::int,
					sum(cpu_percent * samples) / sum(samples), max(coalesce(cpu_percent_max, cpu_percent)),
					round(sum(ram_bytes::numeric * samples) / sum(samples))::bigint, max(coalesce(ram_bytes_max, ram_bytes)),
					sum(bandwidth_used_bytes_per_sec * samples) / sum(samples),
					max(coalesce(bandwidth_used_max_bytes_per_sec, bandwidth_used_bytes_per_sec)),
					round(sum(active_tasks::numeric * samples) / sum(samples))::int,
					max(bytes_moved),
					round(sum(storage_used_bytes::numeric * samples) / sum(samples))::bigint,
					min(target_free_bytes),
					sum(read_latency_seconds * samples) / nullif(sum(samples) FILTER (WHERE read_latency_seconds IS NOT NULL), 0),
					sum(cpu_throttled_percent * samples) / nullif(sum(samples) FILTER (WHERE cpu_throttled_percent IS NOT NULL), 0)
				FROM merged GROUP BY connector_id, bucket_at
				RETURNING 1)
			SELECT (SELECT count(*) FROM raw), (SELECT count(*) FROM written)`,
			from, to, int(bucket/time.Second)).Scan(&raw, &rows)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: downsample connector metrics: %w", err)
	}
	return raw, rows, nil
}

// binStart is the start of the bucket that holds t, buckets being aligned to the Unix
// epoch as PostgreSQL's date_bin with origin 1970-01-01 aligns them.
func binStart(t time.Time, bucket time.Duration) time.Time {
	n := t.UnixNano()
	return time.Unix(0, n-((n%int64(bucket))+int64(bucket))%int64(bucket)).UTC()
}
