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
// and returns ErrNotEmpty. Rows go in with COPY, which is what makes thousands of
// history rows take milliseconds; COPY has no ON CONFLICT, and needs none on an
// empty database.
func (s *Store) Seed(ctx context.Context, d planning.SeedData) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: seed: %w", err)
	}
	defer tx.Rollback(ctx)
	// Two seeders started together must not both find the database empty: the second
	// waits here for the first to commit and then finds its sites. Readers are not
	// blocked.
	if _, err := tx.Exec(ctx, `LOCK TABLE sites IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("store: seed: lock sites: %w", err)
	}
	var seeded bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sites)`).Scan(&seeded); err != nil {
		return fmt.Errorf("store: seed: %w", err)
	}
	if seeded {
		return ErrNotEmpty
	}

	// Parents before children, for the foreign keys.
	copies := []struct {
		table   string
		columns []string
		rows    pgx.CopyFromSource
	}{
		{"sites", []string{"id", "name", "region", "uplink_bytes_per_sec"},
			pgx.CopyFromSlice(len(d.Sites), func(i int) ([]any, error) {
				x := d.Sites[i]
				return []any{x.ID, x.Name, x.Region, x.UplinkBytesSec}, nil
			})},
		{"sla_tiers", []string{"name", "max_transfer_seconds", "max_downtime_seconds", "plan_quantile"},
			pgx.CopyFromSlice(len(d.Tiers), func(i int) ([]any, error) {
				t := d.Tiers[i]
				return []any{t.Name, wholeSeconds(t.MaxTransfer), wholeSeconds(t.MaxDowntime), t.PlanQuantile}, nil
			})},
		{"vms", []string{"id", "name", "site_id", "cpu_cores", "ram_bytes", "storage_bytes",
			"network_bytes_per_sec", "disk_change_bytes_per_sec", "sla_tier", "disk_uri", "disk_bytes"},
			pgx.CopyFromSlice(len(d.VMs), func(i int) ([]any, error) {
				v := d.VMs[i]
				return []any{v.ID, v.Name, v.Site, v.CPUCores, v.RAMBytes, v.StorageBytes,
					v.NetworkBytesSec, v.DiskChangeBytesSec, v.SLATier, v.DiskURI, v.DiskBytes}, nil
			})},
		{"migrations", []string{"id", "vm_id", "site_id", "connector_id", "sla_tier", "bytes", "started_at",
			"ended_at", "avg_bytes_per_sec", "outcome", "downtime_seconds", "detail", "connector_bandwidth_bytes_per_sec"},
			pgx.CopyFromSlice(len(d.History), func(i int) ([]any, error) {
				m := d.History[i]
				return []any{m.ID, m.VMID, m.Site, m.ConnectorID, m.SLATier, m.Bytes, m.StartedAt,
					m.EndedAt, m.AvgBytesSec, m.Outcome, m.DowntimeSeconds, m.Detail, positiveOrNil(m.ConnectorBandwidthBytesSec)}, nil
			})},
		{"system_events", []string{"site_id", "kind", "severity", "starts_at", "ends_at", "description", "source_key", "source"},
			pgx.CopyFromSlice(len(d.Events), func(i int) ([]any, error) {
				e := d.Events[i]
				return []any{e.Site, e.Kind, e.Severity, e.Starts, endsOrNil(e.Event), e.Detail, e.Key, cmp.Or(e.Source, "seed")}, nil
			})},
	}
	for _, c := range copies {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.columns, c.rows); err != nil {
			return fmt.Errorf("store: seed %s: %w", c.table, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: seed: %w", err)
	}
	return nil
}

// wholeSeconds is a tier bound as the schema stores it.
func wholeSeconds(d time.Duration) int { return int(d / time.Second) }
