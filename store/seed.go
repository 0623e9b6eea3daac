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

// ErrNotEmpty means Seed was asked to write into a database that already has sites.
var ErrNotEmpty = errors.New("store: database already seeded")

// IsEmpty reports whether the database has no sites, which is how the seed knows that
// it has not run: nothing else can exist without a site.
func (s *Store) IsEmpty(ctx context.Context) (bool, error) {
	var found bool
	if err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sites)`).Scan(&found); err != nil {
		return false, fmt.Errorf("store: is empty: %w", err)
	}
	return !found, nil
}

// Seed writes a whole data set into an empty database in one transaction, so that a
// failure leaves nothing behind. If the database already has sites it writes nothing
// and returns ErrNotEmpty. Sites, tiers, VMs and history are written as an imported
// file is (see Import), so the import formats carry everything the seed writes; the
// events go in with COPY, which has no ON CONFLICT and needs none on an empty database.
func (s *Store) Seed(ctx context.Context, d planning.SeedData) error {
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		// Two seeders started together must not both find the database empty: the
		// second waits here for the first to commit and then finds its sites. Readers
		// are not blocked.
		if _, err := tx.Exec(ctx, `LOCK TABLE sites IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock sites: %w", err)
		}
		var seeded bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sites)`).Scan(&seeded); err != nil {
			return err
		}
		if seeded {
			return ErrNotEmpty
		}
		if _, _, err := write(ctx, tx, d, nil); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"system_events"}, []string{"site_id", "kind", "severity", "starts_at", "ends_at", "description", "source_key", "source"},
			pgx.CopyFromSlice(len(d.Events), func(i int) ([]any, error) {
				e := d.Events[i]
				return []any{e.Site, e.Kind, e.Severity, e.Starts, endsOrNil(e.Event), e.Detail, e.Key, cmp.Or(e.Source, "seed")}, nil
			}))
		return err
	})
	if errors.Is(err, ErrNotEmpty) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: seed: %w", err)
	}
	return nil
}

// wholeSeconds is a tier bound as the schema stores it.
func wholeSeconds(d time.Duration) int { return int(d / time.Second) }
