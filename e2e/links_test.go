package e2e

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/objectstore"
	"github.com/pmo-dev/pmo/sitenet"
	"github.com/pmo-dev/pmo/testenv"
)

// startLinkedSystem starts a system whose sites sit behind links of their own and
// whose connectors copy to the object store, and removes the links when the test ends.
func startLinkedSystem(t *testing.T) (*system, objectstore.Config) {
	t.Helper()
	if ok, why := sitenet.Available(); !ok {
		testenv.Unavailable(t, "no site links here: %s", why)
	}
	admin := testenv.ObjectStore(t)
	s := startSystem(t, "PMO_SITE_LINKS=1", "PMO_S3_ENDPOINT="+admin.Endpoint, "PMO_S3_BUCKET="+admin.Bucket,
		"PMO_S3_ACCESS_KEY="+admin.AccessKey, "PMO_S3_SECRET_KEY="+admin.SecretKey)
	// After the system's own cleanup, which stops its connectors (cleanups run last
	// first).
	t.Cleanup(func() {
		for _, site := range []string{"ams1", "fra1", "lon1"} {
			_ = sitenet.Remove(s.pool, site)
		}
	})
	return s, admin
}

// setUplink sets a site's uplink, which the links of connectors started from now on
// are shaped to.
func (s *system) setUplink(db *pgx.Conn, site string, bytesPerSec float64) {
	s.t.Helper()
	_, err := db.Exec(context.Background(), `UPDATE sites SET uplink_bytes_per_sec = $1 WHERE id = $2`, bytesPerSec, site)
	require.NoError(s.t, err)
}

// reachability is a connector as GET /connectors shows whether PMO reaches it.
type reachability struct {
	ID, Site, State string
	Unreachable     bool `json:"unreachable"`
}

// bottleneck is one of the plan's bottlenecks as GET /plan shows it.
type bottleneck struct{ Site, Kind, Detail string }

// inOtherNamespace says whether the process runs in another network namespace than
// this test.
func inOtherNamespace(t *testing.T, pid int) bool {
	t.Helper()
	theirs, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	require.NoError(t, err)
	ours, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	return theirs != ours
}

// Two connectors at a site behind a 4 MiB/s link, each of a size allowed 16 MiB/s,
// copy to the object store at most 4 MiB/s together: the link, not their sizes,
// holds them back. Each copy still reads back with its disk's SHA-256.
func TestTwoConnectorsBehindOneLinkShareIt(t *testing.T) {
	t.Parallel()
	s, admin := startLinkedSystem(t)
	ctx := context.Background()
	db := s.connect()
	const mib = 1 << 20
	s.setUplink(db, "fra1", 4*mib)

	// Warm means it polls Temporal and reports to PostgreSQL, through the link's relays.
	for _, id := range s.provision("fra1", 2, "large", "two behind one link") {
		require.True(t, inOtherNamespace(t, s.connectorPIDs()[id]), "connector %s runs in its site's namespace", id)
	}
	vms, disks := s.vmsBySize(db, "fra1", 2, true)
	for i, disk := range disks {
		s.growDisk(db, vms[i], disk, 2*objectstore.PartSize)
	}
	ids := []string{"link-a-" + s.pool, "link-b-" + s.pool}
	began := time.Now()
	for i, id := range ids {
		require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vms[i]}, nil))
	}
	a, b := s.transferring(ids[0]), s.transferring(ids[1])
	require.NotEqual(t, a.ConnectorID, b.ConnectorID, "each on a connector of its own, for the most free bandwidth")
	for _, id := range ids {
		s.eventually(3*time.Minute, id+" is done", func() bool {
			var v migrationView
			s.call("GET", "/migrations/"+id, nil, &v)
			return v.Phase == "done"
		})
	}
	took := time.Since(began)
	rate := float64(2*2*objectstore.PartSize) / took.Seconds()
	t.Logf("two connectors behind a 4 MiB/s link: 64 MiB in %s, %.2f MiB/s together", took.Round(time.Millisecond), rate/mib)
	require.LessOrEqual(t, rate, 4.2*mib, "at most the link's rate together")

	store, err := objectstore.New(admin)
	require.NoError(t, err)
	for i, id := range ids {
		var v migrationView
		require.Equal(t, 200, s.call("GET", "/migrations/"+id, nil, &v))
		require.Equal(t, "succeeded", v.Outcome, "%+v", v)
		got, _, err := store.SHA256(ctx, s.pool+"/fra1/"+v.Destination, nil)
		require.NoError(t, err)
		require.Equal(t, fileSHA(t, disks[i]), got, id)
	}
}

// A site whose link is cut for a minute mid-copy loses nothing: its connector falls
// silent, the migration waits for one that can reach the cloud again, and that one
// goes on from the parts already in the store; the object reads back with the disk's
// SHA-256. Meanwhile GET /connectors and the plan (both on the dashboard) show the
// site unreachable, and stop once it reports again.
func TestASiteCutOffForAMinuteLosesNothing(t *testing.T) {
	t.Parallel()
	s, admin := startLinkedSystem(t)
	ctx := context.Background()
	db := s.connect()
	const mib = 1 << 20
	s.setUplink(db, "fra1", 2*mib)
	store, err := objectstore.New(admin)
	require.NoError(t, err)
	ids := s.provision("fra1", 1, "large", "behind a 2 MiB/s link")
	vms, disks := s.vmsBySize(db, "fra1", 1, true)
	size := 3 * objectstore.PartSize
	s.growDisk(db, vms[0], disks[0], size)

	id := "cut-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vms[0]}, nil))
	v := s.transferring(id)
	key := s.pool + "/fra1/" + v.Destination
	s.partStored(store, key)

	// The worker's link of the site, taken over as it is.
	link, err := sitenet.Open(s.pool, "fra1", 2*mib, nil)
	require.NoError(t, err)
	require.NoError(t, link.Down())
	cut := time.Now()
	// Meanwhile the fleet shows fra1's connectors, and the plan the site, unreachable.
	var shown, planned bool
	for time.Since(cut) < 60*time.Second {
		var conns []reachability
		s.call("GET", "/connectors", nil, &conns)
		var plan struct {
			Bottlenecks []bottleneck `json:"bottlenecks"`
		}
		s.call("GET", "/plan", nil, &plan)
		for _, c := range conns {
			if c.Site == "fra1" && c.Unreachable && !shown {
				shown = true
				t.Logf("after %s: %+v", time.Since(cut).Round(time.Second), conns)
			}
		}
		for _, b := range plan.Bottlenecks {
			if b.Site == "fra1" && b.Kind == "unreachable" && !planned {
				planned = true
				t.Logf("after %s, the plan: %s", time.Since(cut).Round(time.Second), b.Detail)
			}
		}
		time.Sleep(time.Second)
	}
	require.NoError(t, link.Up())
	require.True(t, shown, "GET /connectors showed fra1's connectors unreachable during the cut")
	require.True(t, planned, "the plan showed fra1 unreachable during the cut")
	t.Logf("link restored after %s; connectors at fra1: %v, the migration's: %s", time.Since(cut).Round(time.Second), ids, v.ConnectorID)

	s.eventually(4*time.Minute, id+" is done", func() bool {
		s.call("GET", "/migrations/"+id, nil, &v)
		return v.Phase == "done"
	})
	require.Equal(t, "succeeded", v.Outcome, "%+v", v)
	s.eventually(30*time.Second, "fra1 is reachable again", func() bool {
		var conns []reachability
		s.call("GET", "/connectors", nil, &conns)
		var plan struct {
			Bottlenecks []bottleneck `json:"bottlenecks"`
		}
		s.call("GET", "/plan", nil, &plan)
		return !slices.ContainsFunc(conns, func(c reachability) bool { return c.Unreachable }) &&
			!slices.ContainsFunc(plan.Bottlenecks, func(b bottleneck) bool { return b.Kind == "unreachable" })
	})
	got, n, err := store.SHA256(ctx, key, nil)
	require.NoError(t, err)
	require.Equal(t, fileSHA(t, disks[0]), got, "the object reads back as the disk")
	require.Equal(t, int64(size), n)
	done := s.transfersDone(id)
	require.Len(t, done, 1, "%+v", done)
	require.GreaterOrEqual(t, done[0].ResumedFrom, int64(objectstore.PartSize), "the parts sent before the cut were kept")
	require.Equal(t, int64(size), done[0].ResumedFrom+done[0].Copied, "and the rest sent once")
}
