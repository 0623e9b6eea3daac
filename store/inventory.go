package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/imports"
)

// stageColumns are the columns of the staging table that COPY fills: the vms columns an
// import writes, and the row's place in the file.
var stageColumns = []string{"id", "name", "site_id", "cpu_cores", "ram_bytes", "storage_bytes",
	"network_bytes_per_sec", "disk_change_bytes_per_sec", "sla_tier", "disk_uri", "disk_bytes", "ord"}

// upsertVMs inserts the staged rows and updates a VM only where a column differs, so
// that importing the same file again writes nothing. xmax is 0 on a freshly inserted
// row, which tells inserts from updates.
const upsertVMs = `
WITH up AS (
	INSERT INTO vms (id, name, site_id, cpu_cores, ram_bytes, storage_bytes, network_bytes_per_sec,
	                 disk_change_bytes_per_sec, sla_tier, disk_uri, disk_bytes)
	SELECT id, name, site_id, cpu_cores, ram_bytes, storage_bytes, network_bytes_per_sec,
	       disk_change_bytes_per_sec, sla_tier, disk_uri, disk_bytes
	FROM vms_import WHERE ord >= $1 AND ord < $2
	ON CONFLICT (id) DO UPDATE SET
		name = EXCLUDED.name, site_id = EXCLUDED.site_id, cpu_cores = EXCLUDED.cpu_cores,
		ram_bytes = EXCLUDED.ram_bytes, storage_bytes = EXCLUDED.storage_bytes,
		network_bytes_per_sec = EXCLUDED.network_bytes_per_sec,
		disk_change_bytes_per_sec = EXCLUDED.disk_change_bytes_per_sec,
		sla_tier = EXCLUDED.sla_tier, disk_uri = EXCLUDED.disk_uri, disk_bytes = EXCLUDED.disk_bytes
	WHERE (vms.name, vms.site_id, vms.cpu_cores, vms.ram_bytes, vms.storage_bytes, vms.network_bytes_per_sec,
	       vms.disk_change_bytes_per_sec, vms.sla_tier, vms.disk_uri, vms.disk_bytes)
	      IS DISTINCT FROM
	      (EXCLUDED.name, EXCLUDED.site_id, EXCLUDED.cpu_cores, EXCLUDED.ram_bytes, EXCLUDED.storage_bytes,
	       EXCLUDED.network_bytes_per_sec, EXCLUDED.disk_change_bytes_per_sec, EXCLUDED.sla_tier,
	       EXCLUDED.disk_uri, EXCLUDED.disk_bytes)
	RETURNING xmax = 0 AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`

// upsertChunk is how many staged rows one upsert statement writes, so that progress
// moves on a large file.
const upsertChunk = 10_000

// UpsertInventory writes the VMs of one file in one transaction: all of them or none.
// A VM whose site or SLA tier is unknown rejects the file with imports.Errors, before
// anything is written. progress, if not nil, hears how many rows have been written.
func (s *Store) UpsertInventory(ctx context.Context, vms []imports.VM, progress func(done int)) (imports.Counts, error) {
	counts := imports.Counts{Rows: len(vms)}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return counts, fmt.Errorf("store: import inventory: %w", err)
	}
	defer tx.Rollback(ctx)
	// The rows are checked against the sites and tiers this transaction sees; one
	// removed meanwhile fails the insert on its foreign key, and nothing is written.
	var sites, tiers []string
	if err := tx.QueryRow(ctx, `SELECT ARRAY(SELECT id FROM sites ORDER BY id), ARRAY(SELECT name FROM sla_tiers ORDER BY name)`).
		Scan(&sites, &tiers); err != nil {
		return counts, fmt.Errorf("store: import inventory: %w", err)
	}
	if err := imports.CheckInventoryRefs(vms, sites, tiers); err != nil {
		return counts, err
	}
	// COPY has no ON CONFLICT, so the rows are staged in a temporary table first.
	// ord numbers the rows so that they are upserted in chunks.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE vms_import (LIKE vms, ord integer NOT NULL) ON COMMIT DROP`); err != nil {
		return counts, fmt.Errorf("store: import inventory: %w", err)
	}
	rows := pgx.CopyFromSlice(len(vms), func(i int) ([]any, error) {
		v := vms[i]
		return []any{v.ID, v.Name, v.Site, v.CPUCores, v.RAMBytes, v.StorageBytes,
			v.NetworkBytesSec, v.DiskChangeBytesSec, v.SLATier, v.DiskURI, v.DiskBytes, i}, nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"vms_import"}, stageColumns, rows); err != nil {
		return counts, fmt.Errorf("store: import inventory: stage: %w", err)
	}
	for from := 0; from < len(vms); from += upsertChunk {
		to := min(from+upsertChunk, len(vms))
		var inserted, updated int
		if err := tx.QueryRow(ctx, upsertVMs, from, to).Scan(&inserted, &updated); err != nil {
			return counts, fmt.Errorf("store: import inventory: upsert: %w", err)
		}
		counts.Inserted, counts.Updated = counts.Inserted+inserted, counts.Updated+updated
		if progress != nil {
			progress(to)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return counts, fmt.Errorf("store: import inventory: %w", err)
	}
	counts.Unchanged = counts.Rows - counts.Inserted - counts.Updated
	return counts, nil
}
