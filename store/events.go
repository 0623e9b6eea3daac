package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/planning"
)

// Events returns the system events that overlap [from, to), open ones included and
// cancelled ones left out, ordered by start.
func (s *Store) Events(ctx context.Context, from, to time.Time) ([]planning.KeyedEvent, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT coalesce(source_key, 'event/' || id), site_id, kind, severity, starts_at, ends_at, description, source
		FROM system_events
		WHERE starts_at < $2 AND (ends_at IS NULL OR ends_at > $1) AND cancelled_at IS NULL
		ORDER BY starts_at, id`, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (planning.KeyedEvent, error) {
		var e planning.KeyedEvent
		var ends *time.Time
		err := r.Scan(&e.Key, &e.Site, &e.Kind, &e.Severity, &e.Starts, &ends, &e.Detail, &e.Source)
		if ends != nil {
			e.Ends = *ends
		}
		return e, err
	})
}

// InsertEvent records a system event once per key, so that a retried activity does not
// write it twice.
func (s *Store) InsertEvent(ctx context.Context, key string, e planning.Event) error {
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO system_events (site_id, kind, severity, starts_at, ends_at, description, source_key, source)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source_key) DO NOTHING`,
		e.Site, e.Kind, e.Severity, e.Starts, endsOrNil(e), e.Detail, key, cmp.Or(e.Source, "operator"))
	if err != nil {
		return fmt.Errorf("store: insert event: %w", err)
	}
	return nil
}

// endsOrNil is an event's end as the schema stores it: NULL while it is open.
func endsOrNil(e planning.Event) any {
	if e.Open() {
		return nil
	}
	return e.Ends
}

// RecordEvents records events and closes others in one transaction, and says what it
// did with each (see planning.EventOutcome). It is idempotent: an event whose key is
// known is left as it is, except that an open event is closed by one with the same key
// that has an end (an Alertmanager alert resolved), and that a calendar's event takes
// the window and details the calendar now gives it (an occurrence moved); a close at or before an event's
// start cancels it, a later one ends it, and an event never ends later than it
// already did. Every site must exist.
func (s *Store) RecordEvents(ctx context.Context, events []planning.KeyedEvent, closes []planning.EventClose) ([]planning.EventOutcome, error) {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: record events: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var out []planning.EventOutcome
	for _, e := range events {
		o := planning.EventOutcome{Key: e.Key, Site: e.Site, Kind: e.Kind, Status: planning.EventRecorded}
		tag, err := tx.Exec(ctx, `
			INSERT INTO system_events (site_id, kind, severity, starts_at, ends_at, description, source_key, source)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source_key) DO NOTHING`,
			e.Site, e.Kind, e.Severity, e.Starts, endsOrNil(e.Event), e.Detail, e.Key, cmp.Or(e.Source, "operator"))
		if err != nil {
			return nil, fmt.Errorf("store: record event %s: %w", e.Key, err)
		}
		if tag.RowsAffected() == 0 && e.Source == planning.SourceCalendar {
			if tag, err = tx.Exec(ctx, `
				UPDATE system_events SET site_id = $2, severity = $3, starts_at = $4, ends_at = $5, description = $6, cancelled_at = NULL
				WHERE source_key = $1 AND source = $7
				  AND (site_id, severity, starts_at, ends_at, description, cancelled_at) IS DISTINCT FROM ($2, $3, $4, $5, $6, NULL)`,
				e.Key, e.Site, e.Severity, e.Starts, endsOrNil(e.Event), e.Detail, planning.SourceCalendar); err != nil {
				return nil, fmt.Errorf("store: record event %s: %w", e.Key, err)
			}
			o.Status = planning.EventUpdated
			if tag.RowsAffected() == 0 {
				o.Status = planning.EventUnchanged
			}
		} else if tag.RowsAffected() == 0 {
			o.Status = planning.EventUnchanged
			if !e.Open() {
				if o, err = closeEvent(ctx, tx, e.Key, e.Ends); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, o)
	}
	for _, c := range closes {
		o, err := closeEvent(ctx, tx, c.Key, c.At)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("store: record events: %w", err)
	}
	return out, nil
}

// closeEvent ends the event with key at at, or cancels it when at is not after its
// start; an event that already ended earlier, or was cancelled, is unchanged.
func closeEvent(ctx context.Context, tx pgx.Tx, key string, at time.Time) (planning.EventOutcome, error) {
	o := planning.EventOutcome{Key: key}
	var starts time.Time
	var ends, cancelled *time.Time
	err := tx.QueryRow(ctx, `SELECT site_id, kind, starts_at, ends_at, cancelled_at FROM system_events
		WHERE source_key = $1 FOR UPDATE`, key).Scan(&o.Site, &o.Kind, &starts, &ends, &cancelled)
	if errors.Is(err, pgx.ErrNoRows) {
		o.Status = planning.EventNotFound
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("store: close event %s: %w", key, err)
	}
	switch {
	case cancelled != nil || (ends != nil && !ends.After(at)):
		o.Status = planning.EventUnchanged
	case !at.After(starts):
		o.Status = planning.EventCancelled
		_, err = tx.Exec(ctx, `UPDATE system_events SET cancelled_at = $2 WHERE source_key = $1`, key, at)
	default:
		o.Status = planning.EventClosed
		_, err = tx.Exec(ctx, `UPDATE system_events SET ends_at = $2 WHERE source_key = $1`, key, at)
	}
	if err != nil {
		return o, fmt.Errorf("store: close event %s: %w", key, err)
	}
	return o, nil
}

// InsertPlanChanges records what events did to the pool's plan; a retry, or a change
// recorded already, adds nothing.
func (s *Store) InsertPlanChanges(ctx context.Context, pool string, changes []planning.EventPlanChange) error {
	batch := &pgx.Batch{}
	for _, c := range changes {
		batch.Queue(`INSERT INTO event_plan_changes (pool, event_key, at, site_id, connectors_before, connectors_after, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			pool, c.EventKey, c.At, c.Site, c.Before, c.After, c.Detail)
	}
	if err := s.Pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("store: insert plan changes: %w", err)
	}
	return nil
}
