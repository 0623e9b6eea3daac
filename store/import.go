package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
)

// table is how rows of one kind are written: the table, its columns (the key first)
// and a row's values in that order. keep, if set, is a condition on a row already in
// the table under which a file's row of the same key does not overwrite it.
type table[T any] struct {
	name    string
	columns []string
	values  func(T) []any
	keep    string
	// optional names the columns a file may leave out (a nil value): a row already
	// in the table keeps its value, and a new row gets the one given here.
	optional map[string]string
}

var (
	sitesTable = table[planning.SiteInfo]{"sites", []string{"id", "name", "region", "uplink_bytes_per_sec", "pool", "sources"},
		func(x planning.SiteInfo) []any {
			return []any{x.ID, x.Name, x.Region, x.UplinkBytesSec, x.Pool, x.Sources}
		}, "",
		// A sites file written before sites had sources does not take them away.
		map[string]string{"sources": "'{}'"}}
	tiersTable = table[planning.SLATier]{"sla_tiers", []string{"name", "max_transfer_seconds", "max_downtime_seconds", "plan_quantile"},
		func(t planning.SLATier) []any {
			return []any{t.Name, wholeSeconds(t.MaxTransfer), wholeSeconds(t.MaxDowntime), t.PlanQuantile}
		}, "", nil}
	vmsTable = table[planning.InventoryVM]{"vms", []string{"id", "name", "site_id", "cpu_cores", "ram_bytes", "storage_bytes",
		"network_bytes_per_sec", "disk_change_bytes_per_sec", "sla_tier", "disk_uri", "disk_bytes"},
		func(v planning.InventoryVM) []any {
			return []any{v.ID, v.Name, v.Site, v.CPUCores, v.RAMBytes, v.StorageBytes,
				v.NetworkBytesSec, v.DiskChangeBytesSec, v.SLATier, v.DiskURI, v.DiskBytes}
		}, "", nil}
	migrationsTable = table[planning.MigrationRecord]{"migrations", []string{"id", "vm_id", "site_id", "connector_id", "sla_tier", "bytes",
		"started_at", "ended_at", "avg_bytes_per_sec", "outcome", "downtime_seconds", "detail", "connector_bandwidth_bytes_per_sec", "planned"},
		func(m planning.MigrationRecord) []any {
			return []any{m.ID, m.VMID, m.Site, m.ConnectorID, m.SLATier, m.Bytes, m.StartedAt, m.EndedAt,
				m.AvgBytesSec, m.Outcome, m.DowntimeSeconds, m.Detail, positiveOrNil(m.ConnectorBandwidthBytesSec), m.Planned}
		},
		// PMO's own outcome of a migration it ran is what happened: a file does not
		// overwrite it (InsertMigration, the other way, replaces an imported row).
		"migrations.recorded_by = 'pmo'", nil}
)

// upsertChunk is how many staged rows one upsert statement writes, so that progress
// moves on a large file.
const upsertChunk = 10_000

// upsert writes rows into t in tx: a row is inserted if its key is new, updated only
// where a column differs and the row in the table is not one to keep (t.keep), and
// left alone otherwise, so that writing the same rows again changes nothing. It
// returns the indexes of the rows left alone because the table's row is one to keep.
// progress, if not nil, hears how many rows are written.
func upsert[T any](ctx context.Context, tx pgx.Tx, t table[T], rows []T, progress func(done int)) (inserted, updated int, kept []int, err error) {
	if len(rows) == 0 {
		return 0, 0, nil, nil
	}
	// COPY has no ON CONFLICT, so the rows are staged in a temporary table first.
	// ord numbers the rows so that they are upserted in chunks.
	stage := t.name + "_import"
	if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TEMP TABLE %s (LIKE %s INCLUDING DEFAULTS, ord integer NOT NULL) ON COMMIT DROP`, stage, t.name)); err != nil {
		return 0, 0, nil, fmt.Errorf("stage %s: %w", t.name, err)
	}
	for _, c := range t.columns {
		if _, ok := t.optional[c]; ok {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL`, stage, c)); err != nil {
				return 0, 0, nil, fmt.Errorf("stage %s: %w", t.name, err)
			}
		}
	}
	src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) { return append(t.values(rows[i]), i), nil })
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, append(t.columns[:len(t.columns):len(t.columns)], "ord"), src); err != nil {
		return 0, 0, nil, fmt.Errorf("stage %s: %w", t.name, err)
	}
	// A column the file left out takes the table's value, or a new row's.
	for _, c := range t.columns {
		if value, ok := t.optional[c]; ok {
			fill := fmt.Sprintf(`UPDATE %[1]s s SET %[3]s = coalesce((SELECT t.%[3]s FROM %[2]s t WHERE t.%[4]s = s.%[4]s), %[5]s) WHERE s.%[3]s IS NULL`,
				stage, t.name, c, t.columns[0], value)
			if _, err := tx.Exec(ctx, fill); err != nil {
				return 0, 0, nil, fmt.Errorf("stage %s: %w", t.name, err)
			}
		}
	}
	// xmax is 0 on a freshly inserted row, which tells inserts from updates.
	cols, key := strings.Join(t.columns, ", "), t.columns[0]
	var set, old, excluded []string
	for _, c := range t.columns[1:] {
		set = append(set, c+" = EXCLUDED."+c)
		old, excluded = append(old, t.name+"."+c), append(excluded, "EXCLUDED."+c)
	}
	keep := "false"
	if t.keep != "" {
		keep = t.keep
	}
	query := fmt.Sprintf(`
		WITH up AS (
			INSERT INTO %[1]s (%[2]s) SELECT %[2]s FROM %[3]s WHERE ord >= $1 AND ord < $2
			ON CONFLICT (%[4]s) DO UPDATE SET %[5]s
			WHERE (%[6]s) IS DISTINCT FROM (%[7]s) AND NOT (%[8]s)
			RETURNING xmax = 0 AS inserted
		)
		SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`,
		t.name, cols, stage, key, strings.Join(set, ", "), strings.Join(old, ", "), strings.Join(excluded, ", "), keep)
	var staged []string
	for _, c := range t.columns[1:] {
		staged = append(staged, "s."+c)
	}
	keptQuery := fmt.Sprintf(`SELECT ARRAY(SELECT s.ord FROM %[1]s s JOIN %[2]s ON %[2]s.%[3]s = s.%[3]s
		WHERE s.ord >= $1 AND s.ord < $2 AND (%[4]s) AND (%[5]s) IS DISTINCT FROM (%[6]s) ORDER BY s.ord)`,
		stage, t.name, key, keep, strings.Join(old, ", "), strings.Join(staged, ", "))
	for from := 0; from < len(rows); from += upsertChunk {
		to := min(from+upsertChunk, len(rows))
		if t.keep != "" {
			var ords []int
			if err := tx.QueryRow(ctx, keptQuery, from, to).Scan(&ords); err != nil {
				return inserted, updated, kept, fmt.Errorf("upsert %s: %w", t.name, err)
			}
			kept = append(kept, ords...)
		}
		var ins, upd int
		if err := tx.QueryRow(ctx, query, from, to).Scan(&ins, &upd); err != nil {
			return inserted, updated, kept, fmt.Errorf("upsert %s: %w", t.name, err)
		}
		inserted, updated = inserted+ins, updated+upd
		if progress != nil {
			progress(to)
		}
	}
	return inserted, updated, kept, nil
}

// written counts what write did: rows inserted and updated, and the indexes of the
// history rows kept as PMO recorded them.
type written struct {
	inserted, updated int
	keptHistory       []int
}

// write upserts every row of a data set, parents before children for the foreign
// keys: the demo seed and an imported file are written the same way.
func write(ctx context.Context, tx pgx.Tx, d planning.SeedData, progress func(done int)) (written, error) {
	var w written
	add := func(ins, upd int, _ []int, err error) error {
		w.inserted, w.updated = w.inserted+ins, w.updated+upd
		return err
	}
	if err := add(upsert(ctx, tx, sitesTable, d.Sites, progress)); err != nil {
		return w, err
	}
	if err := add(upsert(ctx, tx, tiersTable, d.Tiers, progress)); err != nil {
		return w, err
	}
	if err := add(upsert(ctx, tx, vmsTable, d.VMs, progress)); err != nil {
		return w, err
	}
	ins, upd, kept, err := upsert(ctx, tx, migrationsTable, d.History, progress)
	w.keptHistory = kept
	return w, add(ins, upd, nil, err)
}

// Import writes the rows of one file in one transaction: all of them or none. A VM or
// migration whose site or SLA tier is unknown rejects the file with imports.Errors,
// before anything is written. progress, if not nil, hears how many rows have been
// written.
func (s *Store) Import(ctx context.Context, f imports.File, progress func(done int)) (imports.Counts, error) {
	counts := imports.Counts{Rows: f.Len()}
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		// The rows are checked against the sites and tiers this transaction sees; one
		// removed meanwhile fails the insert on its foreign key, and nothing is written.
		var sites, tiers []string
		if err := tx.QueryRow(ctx, `SELECT ARRAY(SELECT id FROM sites ORDER BY id), ARRAY(SELECT name FROM sla_tiers ORDER BY name)`).
			Scan(&sites, &tiers); err != nil {
			return err
		}
		if err := f.CheckRefs(sites, tiers); err != nil {
			return err
		}
		w, err := write(ctx, tx, f.SeedData, progress)
		counts.Inserted, counts.Updated = w.inserted, w.updated
		for _, i := range w.keptHistory {
			counts.Kept = append(counts.Kept, imports.KeptRow{Line: f.Lines[i], ID: f.History[i].ID,
				Reason: "PMO recorded this migration's outcome itself; an import does not overwrite it"})
		}
		return err
	})
	var bad imports.Errors
	if errors.As(err, &bad) {
		return counts, err
	}
	if err != nil {
		return counts, fmt.Errorf("store: import %s: %w", f.Kind, err)
	}
	counts.Unchanged = counts.Rows - counts.Inserted - counts.Updated - len(counts.Kept)
	return counts, nil
}
