package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/objectstore"
	"github.com/pmo-dev/pmo/testenv"
)

// connectorEnv reads a variable of a running connector's environment.
func connectorEnv(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	require.NoError(t, err)
	val := ""
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			val = v // the last one wins, as for the process
		}
	}
	return val
}

// partStored waits until a whole part of the upload of key is in the store.
func (s *system) partStored(store *objectstore.Store, key string) {
	s.t.Helper()
	s.eventually(60*time.Second, "a whole part of "+key+" is in the store", func() bool {
		up, found, err := store.FindUpload(context.Background(), key)
		if err != nil || !found {
			return false
		}
		parts, err := store.Parts(context.Background(), up)
		return err == nil && len(parts) >= 1
	})
}

// A migration to the object store survives its connector's SIGKILL mid-upload: a
// connector at the same site takes it over, finds the upload and its parts in the
// store, keeps the whole parts and sends the rest, and the object read back is the
// disk. Each connector writes with keys of its own, scoped to its pool and site, and
// the dead one's keys are revoked when the fleet takes it out.
func TestAMigrationToTheObjectStoreSurvivesItsConnectorBeingKilled(t *testing.T) {
	t.Parallel()
	admin := testenv.ObjectStore(t)
	s := startSystem(t, "PMO_S3_ENDPOINT="+admin.Endpoint, "PMO_S3_BUCKET="+admin.Bucket,
		"PMO_S3_ACCESS_KEY="+admin.AccessKey, "PMO_S3_SECRET_KEY="+admin.SecretKey)
	store, err := objectstore.New(admin)
	require.NoError(t, err)
	ctx := context.Background()
	db := s.connect()
	vms, disks := s.vmsBySize(db, "fra1", 1, true)
	vm, disk := vms[0], disks[0]
	// Three parts: two whole ones and a tail.
	size := 2*objectstore.PartSize + 8<<20
	s.growDisk(db, vm, disk, size)
	s.provision("fra1", 2, "small", "spares")
	s.slowSite("fra1")
	id := "s3-failover-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vm}, nil))
	v := s.transferring(id)
	victim := v.ConnectorID
	key := s.pool + "/fra1/" + v.Destination
	pid := s.connectorPIDs()[victim]
	require.Positive(t, pid)

	// Its own keys, scoped to its pool and site, in place of the worker's.
	own := connectorEnv(t, pid, "PMO_S3_ACCESS_KEY")
	require.NotEmpty(t, own)
	require.NotEqual(t, admin.AccessKey, own, "the connector does not hold the worker's keys")
	require.Equal(t, s.pool+"/fra1", connectorEnv(t, pid, "PMO_S3_PREFIX"))
	victimCfg := admin
	victimCfg.AccessKey, victimCfg.SecretKey = own, connectorEnv(t, pid, "PMO_S3_SECRET_KEY")
	victimStore, err := objectstore.New(victimCfg)
	require.NoError(t, err)
	require.True(t, objectstore.Denied(victimStore.Put(ctx, s.pool+"/ams1/stray.img", []byte("x"))), "another site's prefix is closed to it")

	// A medium connector sends a part in 4 s: kill it once one is in the store.
	require.Equal(t, 200, s.call("POST", "/scale", map[string]any{"action": "resize", "connector_id": victim, "size": "medium",
		"who": "e2e", "why": "a part at a time"}, nil))
	s.partStored(store, key)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	st := s.failedOver(id, victim)
	sum := fileSHA(t, disk)
	require.Equal(t, sum, st.SHA256)
	got, n, err := store.SHA256(ctx, key, nil)
	require.NoError(t, err)
	require.Equal(t, sum, got, "the object read back is the disk")
	require.Equal(t, int64(size), n)

	done := s.transfersDone(id)
	require.Len(t, done, 1, "%+v", done)
	require.GreaterOrEqual(t, done[0].ResumedFrom, int64(objectstore.PartSize), "the new connector kept the parts the dead one sent")
	require.Equal(t, int64(size), done[0].ResumedFrom+done[0].Copied, "and sent the rest once")
	_, left, err := store.FindUpload(ctx, key)
	require.NoError(t, err)
	require.False(t, left)

	s.eventually(60*time.Second, "the dead connector's keys are revoked", func() bool {
		return objectstore.Denied(victimStore.Put(ctx, s.pool+"/fra1/stray.img", []byte("x")))
	})
}
