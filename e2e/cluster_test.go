package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/store/storetest"
)

// PMO on Temporal's production server with PostgreSQL persistence and visibility,
// which scripts/cluster.sh (make test-cluster, part of make test) starts and names in
// PMO_CLUSTER_ADDRESS: two workers, the web server and the connectors they start run a
// wave of migrations, and one worker is killed while it runs. Every migration
// succeeds once, with its destination matching its source and one history row.
func TestClusterRunsAWaveWithAWorkerKilled(t *testing.T) {
	t.Parallel()
	addr := os.Getenv("PMO_CLUSTER_ADDRESS")
	if addr == "" {
		t.Skip("PMO_CLUSTER_ADDRESS is not set: make test runs this test through scripts/cluster.sh")
	}
	s := startSystemOn(t, addr, storetest.NewDatabase(t))
	// A second worker on the same task queues.
	s.spawn("worker")
	require.Len(t, s.procs, 3, "worker, web, worker")
	db := s.connect()
	// The site's largest disks, so that the wave is still copying when a worker dies.
	vms, disks := s.vmsBySize(db, "fra1", 8, true)
	ids := make([]string, len(vms))
	for i, vm := range vms {
		ids[i] = fmt.Sprintf("cluster-%s-%s", s.pool, vm)
		require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": ids[i], "vm_id": vm}, nil))
	}
	// Kill the first worker while the wave runs: the other takes over its workflow and
	// activity tasks.
	s.eventually(time.Minute, "the wave is under way", func() bool {
		var list struct {
			Migrations []listedMigration `json:"migrations"`
		}
		s.call("GET", "/migrations?limit=100", nil, &list)
		copying := 0
		for _, m := range list.Migrations {
			if m.Phase == "transferring" {
				copying++
			}
		}
		return copying > 0
	})
	require.NoError(t, s.procs[0].Process.Signal(syscall.SIGKILL))
	_, _ = s.procs[0].Process.Wait()
	s.procs = s.procs[1:]

	for i, id := range ids {
		var v migrationView
		s.eventually(4*time.Minute, id+" ends", func() bool {
			s.call("GET", "/migrations/"+id, nil, &v)
			return v.WorkflowStatus != "" && v.WorkflowStatus != "Running"
		})
		require.Equal(t, "succeeded", v.Outcome, "%s: %+v", id, v)
		require.Equal(t, fileSHA(t, disks[i]), v.SHA256, id)
		require.Equal(t, fileSHA(t, disks[i]), fileSHA(t, filepath.Join(s.dataDir, "target", v.Destination)), "%s: the destination holds the source's bytes", id)
	}
	var rows, distinct int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT id) FROM migrations WHERE id = ANY($1)`, ids).Scan(&rows, &distinct))
	require.Equal(t, len(ids), rows, "one history row each")
	require.Equal(t, len(ids), distinct)
}
