package e2e

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/provisioner"
)

// connectorUse is a connector's last report as GET /connectors shows it.
type connectorUse struct {
	ID   string `json:"id"`
	Size string `json:"size"`
	Used struct {
		CPUMillis         int     `json:"cpu_millis"`
		BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	} `json:"used"`
	ReportedAt time.Time `json:"reported_at"`
}

// growDisk makes the VM's disk n random bytes, on disk and in the inventory: a disk
// that copies for a while, or in several parts.
func (s *system) growDisk(db *pgx.Conn, vm, disk string, n int) {
	s.t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	require.NoError(s.t, os.WriteFile(disk, data, 0o644))
	_, err := db.Exec(context.Background(), `UPDATE vms SET disk_bytes = $1 WHERE id = $2`, n, vm)
	require.NoError(s.t, err)
}

// provision starts count connectors of a size at a site through the API and waits
// until they are warm; it returns their IDs.
func (s *system) provision(site string, count int, size, why string) []string {
	s.t.Helper()
	var scaled struct {
		Connectors []struct{ ID string } `json:"connectors"`
	}
	require.Equal(s.t, 200, s.call("POST", "/scale", map[string]any{"action": "provision", "site": site, "count": count, "size": size,
		"who": "e2e", "why": why}, &scaled))
	var ids []string
	for _, c := range scaled.Connectors {
		s.waitWarm(c.ID)
		ids = append(ids, c.ID)
	}
	return ids
}

// reportAfter waits for a report of the connector taken after t and returns it.
func (s *system) reportAfter(id string, t time.Time) connectorUse {
	s.t.Helper()
	var got connectorUse
	s.eventually(30*time.Second, "a report of "+id+" after "+t.Format(time.RFC3339Nano), func() bool {
		var conns []connectorUse
		s.call("GET", "/connectors", nil, &conns)
		for _, c := range conns {
			if c.ID == id && c.ReportedAt.After(t) {
				got = c
				return true
			}
		}
		return false
	})
	return got
}

// An operator's resize of a connector mid-copy changes the limits of its control
// group at once, and what it measurably moves and uses within a tick; neither the
// connector nor its transfer restarts.
func TestAResizeChangesARunningConnectorsLimitsInPlace(t *testing.T) {
	var limits provisioner.Limits
	if on, why := limits.Enforced(); !on {
		t.Skip("connectors run unlimited on this machine: " + why)
	}
	t.Parallel()
	s := startSystem(t)
	db := s.connect()
	vms, disks := s.vmsBySize(db, "fra1", 1, true)
	vm, disk := vms[0], disks[0]
	// A disk that copies for a while at either size: 40 s at 1 MiB/s.
	s.growDisk(db, vm, disk, 40<<20)

	s.slowSite("fra1")
	id := "resize-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vm}, nil))
	conn := s.transferring(id).ConnectorID
	s.slowDown(conn)
	pid := s.connectorPIDs()[conn]
	require.Positive(t, pid)
	lim, err := limits.Read(conn)
	require.NoError(t, err)
	require.Equal(t, provisioner.Limit{CPUQuota: 50_000, CPUPeriod: 100_000, MemoryBytes: 256 << 20}, lim, "small: half a core and 256 MiB")

	// Two reports at the small size, the first a whole interval after the resize.
	slowed := time.Now()
	first := s.reportAfter(conn, slowed.Add(2*time.Second))
	second := s.reportAfter(conn, first.ReportedAt)
	before := (first.Used.BandwidthBytesSec + second.Used.BandwidthBytesSec) / 2
	beforeCPU := first.Used.CPUMillis + second.Used.CPUMillis

	require.Equal(t, 200, s.call("POST", "/scale", map[string]any{"action": "resize", "connector_id": conn,
		"size": "medium", "who": "e2e", "why": "more room"}, nil))
	resized := time.Now()
	lim, err = limits.Read(conn)
	require.NoError(t, err)
	require.Equal(t, provisioner.Limit{CPUQuota: 100_000, CPUPeriod: 100_000, MemoryBytes: 512 << 20}, lim,
		"medium: a core and 512 MiB, set before the resize answered")
	// The fleet's run that resized, before it continues as new.
	s.replayHistories(map[string]string{"fleet-resize": "fleet-" + s.pool})

	// The first two reports whose whole interval (2 s) is at the new size, as the
	// fleet's next tick shows them: not a later one.
	first = s.reportAfter(conn, resized.Add(2*time.Second))
	second = s.reportAfter(conn, first.ReportedAt)
	after := (first.Used.BandwidthBytesSec + second.Used.BandwidthBytesSec) / 2
	afterCPU := first.Used.CPUMillis + second.Used.CPUMillis
	t.Logf("small: %.2f MiB/s, %d millicores; medium: %.2f MiB/s, %d millicores",
		before/(1<<20), beforeCPU/2, after/(1<<20), afterCPU/2)
	require.Greater(t, after, 2*before, "the copy moves at the new bandwidth")
	require.Greater(t, afterCPU, beforeCPU, "and uses more CPU to do it")

	require.Equal(t, pid, s.connectorPIDs()[conn], "the same process")
	s.ranOnce(s.dialTemporal(), id, disk)
}
