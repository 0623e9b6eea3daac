package activities

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/objectstore"
	"github.com/pmo-dev/pmo/testenv"
	"github.com/pmo-dev/pmo/transfer"
)

// A connector that copies to the object store: prepare checks that the store takes
// its writes, the transfer puts the disk under its prefix, the cutover sends what
// changed, and a discard of a complete copy leaves nothing behind.
func TestAConnectorCopiesToTheObjectStore(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.ObjectStore(t)
	store, err := objectstore.New(cfg)
	require.NoError(t, err)
	c := NewConnector("c1", transfer.NewThrottle(0), "", 2, nil)
	c.Objects, c.ObjectPrefix = store, "default/ams1"
	env, _ := activityEnv(c)

	v, err := env.ExecuteActivity(c.Prepare, contract.PrepareInput{MigrationID: "m1", Bytes: 1 << 40})
	require.NoError(t, err, "a bucket has no free space to run out of")
	var prep contract.PrepareResult
	require.NoError(t, v.Get(&prep))
	require.Equal(t, "c1", prep.ConnectorID)
	_, err = c.Stats.TargetFreeBytes()
	require.Error(t, err, "a store's free space is not measured")

	src, data := sourceDisk(t, objectstore.PartSize+3<<20, 7)
	in := contract.TransferInput{MigrationID: "m1", Sources: testSources, Source: src, Destination: "vm-1/disk.img", ExpectedBytes: int64(len(data))}
	v, err = env.ExecuteActivity(c.Transfer, in)
	require.NoError(t, err)
	var res contract.TransferResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, hexSum(data), res.SHA256)
	const key = "default/ams1/vm-1/disk.img"
	got, n, err := store.SHA256(ctx, key, nil)
	require.NoError(t, err)
	require.Equal(t, hexSum(data), got)
	require.Equal(t, int64(len(data)), n)
	require.Equal(t, int64(len(data)), c.Stats.StorageUsedBytes(), "the copy awaits its cutover")

	data[len(data)-1] ^= 0xff
	require.NoError(t, os.WriteFile(src, data, 0o644))
	v, err = env.ExecuteActivity(c.Cutover, contract.CutoverInput{MigrationID: "m1", Site: "", Sources: testSources, Source: src, Destination: "vm-1/disk.img"})
	require.NoError(t, err)
	var cut contract.CutoverResult
	require.NoError(t, v.Get(&cut))
	require.Equal(t, 1, cut.ChangedBlocks, "only the changed tail part was sent")
	require.Equal(t, hexSum(data), cut.SHA256)
	require.Zero(t, c.Stats.StorageUsedBytes(), "cut over, it is the provider's")

	_, err = env.ExecuteActivity(c.Discard, contract.DiscardInput{MigrationID: "m1", Destination: "vm-1/disk.img", Complete: true})
	require.NoError(t, err)
	for _, k := range []string{key, key + transfer.ManifestSuffix} {
		_, ok, err := store.Size(ctx, k)
		require.NoError(t, err)
		require.False(t, ok, "%s is gone", k)
	}
}

// A connector whose keys are scoped to another site's prefix is refused at prepare,
// before any transfer is started.
func TestPrepareRefusesAStoreThatRefusesTheConnector(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.ObjectStore(t)
	admin, err := objectstore.NewAdmin(cfg)
	require.NoError(t, err)
	user := "pmo-connector-prep-" + cfg.Bucket[:min(len(cfg.Bucket), 12)]
	t.Cleanup(func() { _ = admin.Revoke(context.Background(), user) })
	ak, sk, err := admin.Grant(ctx, user, "default/fra1")
	require.NoError(t, err)
	cfg.AccessKey, cfg.SecretKey = ak, sk
	store, err := objectstore.New(cfg)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return store.Put(ctx, "default/fra1/probe", nil) == nil }, 10*time.Second, 100*time.Millisecond)

	c := NewConnector("c2", transfer.NewThrottle(0), "", 2, nil)
	c.Objects, c.ObjectPrefix = store, "default/ams1"
	env, _ := activityEnv(c)
	_, err = env.ExecuteActivity(c.Prepare, contract.PrepareInput{MigrationID: "m2", Bytes: 1})
	require.ErrorContains(t, err, "refuses connector c2's writes under default/ams1")
}
