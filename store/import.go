package store

import (
	"cmp"
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

// stage is a temporary copy of a table that a file's rows are copied into, a batch at
// a time, before they are merged into the table: COPY has no ON CONFLICT, and a
// file's repeated keys are found there without holding every key in memory. ord
// numbers the rows from 0, line is the file's line of each.
type stage[T any] struct {
	t    table[T]
	name string
	rows int
}

// newStage creates t's stage in tx; it is dropped when tx ends.
func newStage[T any](ctx context.Context, tx pgx.Tx, t table[T]) (*stage[T], error) {
	st := &stage[T]{t: t, name: t.name + "_import"}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TEMP TABLE %s (LIKE %s INCLUDING DEFAULTS, ord integer NOT NULL, line integer NOT NULL) ON COMMIT DROP`,
		st.name, t.name)); err != nil {
		return nil, fmt.Errorf("stage %s: %w", t.name, err)
	}
	for _, c := range t.columns {
		if _, ok := t.optional[c]; ok {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL`, st.name, c)); err != nil {
				return nil, fmt.Errorf("stage %s: %w", t.name, err)
			}
		}
	}
	return st, nil
}

// add copies rows, which came from lines of the file, into the stage.
func (st *stage[T]) add(ctx context.Context, tx pgx.Tx, rows []T, lines []int) error {
	base := st.rows
	src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) { return append(st.t.values(rows[i]), base+i, lines[i]), nil })
	cols := append(st.t.columns[:len(st.t.columns):len(st.t.columns)], "ord", "line")
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{st.name}, cols, src); err != nil {
		return fmt.Errorf("stage %s: %w", st.t.name, err)
	}
	st.rows += len(rows)
	return nil
}

// repeated lists the rows whose key an earlier row of the file has, at most
// imports.MaxListed of them.
func (st *stage[T]) repeated(ctx context.Context, tx pgx.Tx) (imports.Errors, error) {
	key := st.t.columns[0]
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT line, %[2]s, first FROM (
			SELECT line, %[2]s, min(line) OVER (PARTITION BY %[2]s) AS first FROM %[1]s) r
		WHERE line <> first ORDER BY line LIMIT $1`, st.name, key), imports.MaxListed)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", st.t.name, err)
	}
	bad, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (imports.RowError, error) {
		var line, first int
		var id string
		err := r.Scan(&line, &id, &first)
		return imports.RowError{Line: line, Column: key, Reason: fmt.Sprintf("%q is also on line %d", id, first)}, err
	})
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", st.t.name, err)
	}
	return bad, nil
}

// merge writes the staged rows into the table: a row is inserted if its key is new,
// updated only where a column differs and the row in the table is not one to keep
// (t.keep), and left alone otherwise, so that writing the same rows again changes
// nothing. A column the file left out (t.optional) takes the table's value, or a new
// row's. It returns the rows left alone because the table's row is one to keep, by
// line and key, at most imports.MaxListed of them, and how many there were.
// progress, if not nil, hears how many rows are merged.
func (st *stage[T]) merge(ctx context.Context, tx pgx.Tx, progress func(done int)) (inserted, updated int, kept []imports.KeptRow, nKept int, err error) {
	t := st.t
	for _, c := range t.columns {
		if value, ok := t.optional[c]; ok {
			fill := fmt.Sprintf(`UPDATE %[1]s s SET %[3]s = coalesce((SELECT t.%[3]s FROM %[2]s t WHERE t.%[4]s = s.%[4]s), %[5]s) WHERE s.%[3]s IS NULL`,
				st.name, t.name, c, t.columns[0], value)
			if _, err := tx.Exec(ctx, fill); err != nil {
				return 0, 0, nil, 0, fmt.Errorf("stage %s: %w", t.name, err)
			}
		}
	}
	// xmax is 0 on a freshly inserted row, which tells inserts from updates.
	cols, key := strings.Join(t.columns, ", "), t.columns[0]
	var set, old, excluded, staged []string
	for _, c := range t.columns[1:] {
		set = append(set, c+" = EXCLUDED."+c)
		old, excluded, staged = append(old, t.name+"."+c), append(excluded, "EXCLUDED."+c), append(staged, "s."+c)
	}
	keep := cmp.Or(t.keep, "false")
	query := fmt.Sprintf(`
		WITH up AS (
			INSERT INTO %[1]s (%[2]s) SELECT %[2]s FROM %[3]s WHERE ord >= $1 AND ord < $2
			ON CONFLICT (%[4]s) DO UPDATE SET %[5]s
			WHERE (%[6]s) IS DISTINCT FROM (%[7]s) AND NOT (%[8]s)
			RETURNING xmax = 0 AS inserted
		)
		SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`,
		t.name, cols, st.name, key, strings.Join(set, ", "), strings.Join(old, ", "), strings.Join(excluded, ", "), keep)
	keptQuery := fmt.Sprintf(`SELECT s.line, s.%[3]s FROM %[1]s s JOIN %[2]s ON %[2]s.%[3]s = s.%[3]s
		WHERE s.ord >= $1 AND s.ord < $2 AND (%[4]s) AND (%[5]s) IS DISTINCT FROM (%[6]s) ORDER BY s.ord`,
		st.name, t.name, key, keep, strings.Join(old, ", "), strings.Join(staged, ", "))
	for from := 0; from < st.rows; from += upsertChunk {
		to := min(from+upsertChunk, st.rows)
		if t.keep != "" {
			rows, err := tx.Query(ctx, keptQuery, from, to)
			if err != nil {
				return inserted, updated, kept, nKept, fmt.Errorf("upsert %s: %w", t.name, err)
			}
			found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (imports.KeptRow, error) {
				var k imports.KeptRow
				return k, r.Scan(&k.Line, &k.ID)
			})
			if err != nil {
				return inserted, updated, kept, nKept, fmt.Errorf("upsert %s: %w", t.name, err)
			}
			nKept += len(found)
			kept = append(kept, found[:min(len(found), imports.MaxListed-len(kept))]...)
		}
		var ins, upd int
		if err := tx.QueryRow(ctx, query, from, to).Scan(&ins, &upd); err != nil {
			return inserted, updated, kept, nKept, fmt.Errorf("upsert %s: %w", t.name, err)
		}
		inserted, updated = inserted+ins, updated+upd
		if progress != nil {
			progress(to)
		}
	}
	return inserted, updated, kept, nKept, nil
}

// upsert writes rows into t in tx through a stage, as merge says; the seed's data
// have no repeated keys.
func upsert[T any](ctx context.Context, tx pgx.Tx, t table[T], rows []T, progress func(done int)) (inserted, updated int, err error) {
	if len(rows) == 0 {
		return 0, 0, nil
	}
	st, err := newStage(ctx, tx, t)
	if err != nil {
		return 0, 0, err
	}
	lines := make([]int, len(rows))
	for i := range lines {
		lines[i] = i + 1
	}
	if err := st.add(ctx, tx, rows, lines); err != nil {
		return 0, 0, err
	}
	inserted, updated, _, _, err = st.merge(ctx, tx, progress)
	return inserted, updated, err
}

// write upserts every row of a data set, parents before children for the foreign
// keys, and returns how many rows it inserted and updated.
func write(ctx context.Context, tx pgx.Tx, d planning.SeedData, progress func(done int)) (inserted, updated int, err error) {
	add := func(ins, upd int, err error) error {
		inserted, updated = inserted+ins, updated+upd
		return err
	}
	if err := add(upsert(ctx, tx, sitesTable, d.Sites, progress)); err != nil {
		return inserted, updated, err
	}
	if err := add(upsert(ctx, tx, tiersTable, d.Tiers, progress)); err != nil {
		return inserted, updated, err
	}
	if err := add(upsert(ctx, tx, vmsTable, d.VMs, progress)); err != nil {
		return inserted, updated, err
	}
	return inserted, updated, add(upsert(ctx, tx, migrationsTable, d.History, progress))
}

// Import writes the rows of one file in one transaction: all of them or none. It
// reads the file a batch at a time (imports.Source), so that a file of any size takes
// the memory of a batch. A bad row, a VM or migration whose site or SLA tier is
// unknown, or a key that an earlier row has, rejects the file with imports.Errors, and
// nothing is written. progress, if not nil, hears how many rows have been read, then
// how many written.
func (s *Store) Import(ctx context.Context, src imports.Source, progress func(done int)) (imports.Counts, error) {
	var counts imports.Counts
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		// The rows are checked against the sites and tiers this transaction sees; one
		// removed meanwhile fails the insert on its foreign key, and nothing is written.
		var opt imports.Options
		if err := tx.QueryRow(ctx, `SELECT ARRAY(SELECT id FROM sites ORDER BY id), ARRAY(SELECT name FROM sla_tiers ORDER BY name)`).
			Scan(&opt.Sites, &opt.Tiers); err != nil {
			return err
		}
		var err error
		switch src.Kind {
		case imports.Sites:
			counts, err = importRows(ctx, tx, sitesTable, func(f imports.File) []planning.SiteInfo { return f.Sites }, src, opt, progress)
		case imports.SLAs:
			counts, err = importRows(ctx, tx, tiersTable, func(f imports.File) []planning.SLATier { return f.Tiers }, src, opt, progress)
		case imports.Inventory:
			counts, err = importRows(ctx, tx, vmsTable, func(f imports.File) []planning.InventoryVM { return f.VMs }, src, opt, progress)
		case imports.History:
			counts, err = importRows(ctx, tx, migrationsTable, func(f imports.File) []planning.MigrationRecord { return f.History }, src, opt, progress)
			for i := range counts.Kept {
				counts.Kept[i].Reason = "PMO recorded this migration's outcome itself; an import does not overwrite it"
			}
		default:
			err = fmt.Errorf("unknown kind of file %q", src.Kind)
		}
		return err
	})
	var bad imports.Errors
	if errors.As(err, &bad) {
		return imports.Counts{Rows: counts.Rows}, err
	}
	if err != nil {
		return imports.Counts{Rows: counts.Rows}, fmt.Errorf("store: import %s: %w", src.Kind, err)
	}
	return counts, nil
}

// importRows stages a file's rows of one table as it reads them, refuses repeated
// keys, and merges the rows.
func importRows[T any](ctx context.Context, tx pgx.Tx, t table[T], rows func(imports.File) []T, src imports.Source, opt imports.Options,
	progress func(done int)) (imports.Counts, error) {
	var counts imports.Counts
	st, err := newStage(ctx, tx, t)
	if err != nil {
		return counts, err
	}
	counts.Rows, err = src.Scan(opt, func(f imports.File) error {
		if err := st.add(ctx, tx, rows(f), f.Lines); err != nil {
			return err
		}
		if progress != nil {
			progress(st.rows)
		}
		return nil
	})
	if err != nil {
		return counts, err
	}
	bad, err := st.repeated(ctx, tx)
	if err != nil {
		return counts, err
	}
	if len(bad) > 0 {
		return counts, bad
	}
	var nKept int
	counts.Inserted, counts.Updated, counts.Kept, nKept, err = st.merge(ctx, tx, progress)
	counts.KeptMore = nKept - len(counts.Kept)
	counts.Unchanged = counts.Rows - counts.Inserted - counts.Updated - nKept
	return counts, err
}
