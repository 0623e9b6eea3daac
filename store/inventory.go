package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/inventory"
)

// ImportCounts says what an inventory import did to each of its rows.
type ImportCounts struct {
	Rows      int `json:"rows"`
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// vmColumns are the vms columns an import writes, in the order importRow gives them.
var vmColumns = []string{"id", "name", "site_id", "cpu_cores", "ram_bytes", "storage_bytes",
	"network_bytes_per_sec", "disk_change_bytes_per_sec", "sla_tier", "disk_uri", "disk_bytes"}

// upsertVMs inserts the staged rows and updates a VM only where a column differs, so
// that importing the same file again writes nothing. xmax is 0 on a freshly inserted
// row, which tells inserts from updates.
const upsertVMs = `
WITH up AS (
	INSERT INTO vms (id, name, site_id, cpu_cores, ram_bytes, storage_bytes, network_bytes_per_sec,
	                 disk_change_bytes_per_sec, sla_tier, disk_uri, disk_bytes)
	SELECT id, name, site_id, cpu_cores, ram_bytes, storage_bytes, network_bytes_per_sec,
	       disk_change_bytes_per_sec, sla_tier, disk_uri, disk_bytes
	FROM vms_import
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

// UpsertInventory writes the VMs of one file in one transaction: all of them or none.
// A VM whose site or SLA tier is unknown rejects the file with inventory.Errors, before
// anything is written. progress, if not nil, hears how many rows have been staged.
func (s *Store) UpsertInventory(ctx context.Context, vms []inventory.VM, progress func(done int)) (ImportCounts, error) {
	counts := ImportCounts{Rows: len(vms)}
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
	if err := inventory.CheckRefs(vms, sites, tiers); err != nil {
		return counts, err
	}
	// COPY has no ON CONFLICT, so the rows are staged in a temporary table first.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE vms_import (LIKE vms) ON COMMIT DROP`); err != nil {
		return counts, fmt.Errorf("store: import inventory: %w", err)
	}
	src := &progressRows{vms: vms, i: -1, progress: progress}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"vms_import"}, vmColumns, src); err != nil {
		return counts, fmt.Errorf("store: import inventory: stage: %w", err)
	}
	if err := tx.QueryRow(ctx, upsertVMs).Scan(&counts.Inserted, &counts.Updated); err != nil {
		return counts, fmt.Errorf("store: import inventory: upsert: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return counts, fmt.Errorf("store: import inventory: %w", err)
	}
	counts.Unchanged = counts.Rows - counts.Inserted - counts.Updated
	return counts, nil
}

// progressRows feeds VMs to COPY and reports every thousandth row and the last.
type progressRows struct {
	vms      []inventory.VM
	i        int
	progress func(done int)
}

func (p *progressRows) Next() bool {
	p.i++
	if p.progress != nil && p.i > 0 && (p.i%1000 == 0 || p.i == len(p.vms)) {
		p.progress(p.i)
	}
	return p.i < len(p.vms)
}

func (p *progressRows) Values() ([]any, error) {
	v := p.vms[p.i]
	return []any{v.ID, v.Name, v.Site, v.CPUCores, v.RAMBytes, v.StorageBytes,
		v.NetworkBytesSec, v.DiskChangeBytesSec, v.SLATier, v.DiskURI, v.DiskBytes}, nil
}

func (p *progressRows) Err() error { return nil }
