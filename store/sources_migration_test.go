package store_test

import (
	"context"
	"database/sql"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for goose
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/sources"
	"github.com/pmo-dev/pmo/store/storetest"
)

// The migration that gave sites their sources lets each site read from the folders
// its VMs' disks are already in, so that what migrated before still does; disk URIs
// that could not be a list's entry give none.
func TestSourcesMigrationAllowsTheFoldersDisksAreIn(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", storetest.NewDatabase(t))
	require.NoError(t, err)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 16)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `
		INSERT INTO sites (id, name, region, uplink_bytes_per_sec) VALUES ('a', 'A', 'eu', 1e9), ('b', 'B', 'eu', 1e9), ('c', 'C', 'eu', 1e9);
		INSERT INTO sla_tiers (name, max_transfer_seconds, max_downtime_seconds) VALUES ('gold', 3600, 60);
		INSERT INTO vms (id, name, site_id, cpu_cores, ram_bytes, storage_bytes, network_bytes_per_sec, disk_change_bytes_per_sec, sla_tier, disk_uri, disk_bytes) VALUES
			('v1', 'v1', 'a', 1, 1, 1, 1, 1, 'gold', '/srv/disks/a/v1.img', 1),
			('v2', 'v2', 'a', 1, 1, 1, 1, 1, 'gold', 'file:///srv/disks/a/v2.img', 1),
			('v3', 'v3', 'a', 1, 1, 1, 1, 1, 'gold', 'https://nas.example/a/v3.img', 1),
			('v4', 'v4', 'a', 1, 1, 1, 1, 1, 'gold', '', 1),
			('v5', 'v5', 'b', 1, 1, 1, 1, 1, 'gold', '/v5.img', 1),
			('v6', 'v6', 'b', 1, 1, 1, 1, 1, 'gold', '/srv/../etc/v6.img', 1),
			('v7', 'v7', 'b', 1, 1, 1, 1, 1, 'gold', 'https://u:p@nas.example/b/v7.img', 1),
			('v8', 'v8', 'b', 1, 1, 1, 1, 1, 'gold', 'https://nas.example/b/v8.img?sig=x/y', 1)`)
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 17)
	require.NoError(t, err)

	got := map[string][]string{}
	rows, err := db.QueryContext(ctx, `SELECT id, array_to_json(sources)::text FROM sites ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id, list string
		require.NoError(t, rows.Scan(&id, &list))
		got[id] = []string{list}
	}
	require.Equal(t, map[string][]string{
		"a": {`["/srv/disks/a/","https://nas.example/a/"]`},
		"b": {`[]`},
		"c": {`[]`},
	}, got)
	l, err := sources.Parse([]string{"/srv/disks/a/", "https://nas.example/a/"})
	require.NoError(t, err)
	require.Equal(t, []string{"/srv/disks/a/", "https://nas.example/a/"}, l.Entries(), "what the migration writes is in normal form")
}
