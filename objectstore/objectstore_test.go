package objectstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/objectstore"
	"github.com/pmo-dev/pmo/testenv"
)

// A connector's credentials write under its prefix and nowhere else; granted again,
// the earlier key stops working; revoked, none works.
func TestACredentialWritesOnlyUnderItsPrefix(t *testing.T) {
	ctx := context.Background()
	admin := testenv.ObjectStore(t)
	a, err := objectstore.NewAdmin(admin)
	require.NoError(t, err)
	user := "pmo-connector-" + admin.Bucket[:min(len(admin.Bucket), 20)]
	t.Cleanup(func() { _ = a.Revoke(context.Background(), user) })

	ak, sk, err := a.Grant(ctx, user, "default/ams1")
	require.NoError(t, err)
	cfg := admin
	cfg.AccessKey, cfg.SecretKey = ak, sk
	own, err := objectstore.New(cfg)
	require.NoError(t, err)
	// The store takes a moment to hand a new key to its S3 gateway.
	require.Eventually(t, func() bool {
		return own.Put(ctx, "default/ams1/vm-1/disk.img", []byte("mine")) == nil
	}, 10*time.Second, 100*time.Millisecond, "the connector writes under its prefix")
	b, ok, err := own.Get(ctx, "default/ams1/vm-1/disk.img")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "mine", string(b))
	up, err := own.StartUpload(ctx, "default/ams1/vm-2/disk.img")
	require.NoError(t, err)
	found, ok, err := own.FindUpload(ctx, "default/ams1/vm-2/disk.img")
	require.NoError(t, err)
	require.True(t, ok, "it finds the uploads under its prefix")
	require.Equal(t, up.ID, found.ID)

	for _, key := range []string{"default/fra1/vm-1/disk.img", "other/ams1/vm-1/disk.img", "default/ams1-evil/x"} {
		err := own.Put(ctx, key, []byte("not mine"))
		require.Error(t, err, key)
		require.True(t, objectstore.Denied(err), "%s: %v", key, err)
	}

	// Granted again (a connector started anew): a new key, and the old one is dead.
	ak2, sk2, err := a.Grant(ctx, user, "default/ams1")
	require.NoError(t, err)
	require.NotEqual(t, ak, ak2)
	require.Eventually(t, func() bool {
		return objectstore.Denied(own.Put(ctx, "default/ams1/vm-1/again.img", []byte("old key")))
	}, 10*time.Second, 100*time.Millisecond, "the earlier key stops working")
	cfg.AccessKey, cfg.SecretKey = ak2, sk2
	renewed, err := objectstore.New(cfg)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return renewed.Put(ctx, "default/ams1/vm-1/again.img", []byte("new key")) == nil
	}, 10*time.Second, 100*time.Millisecond)

	require.NoError(t, a.Revoke(ctx, user))
	require.NoError(t, a.Revoke(ctx, user), "revoking twice is no error")
	require.Eventually(t, func() bool {
		return objectstore.Denied(renewed.Put(ctx, "default/ams1/vm-1/late.img", []byte("revoked")))
	}, 10*time.Second, 100*time.Millisecond, "a revoked connector writes nothing")
}

func TestConfigNamesWhatIsMissing(t *testing.T) {
	for _, c := range []struct {
		cfg  objectstore.Config
		want string
	}{
		{objectstore.Config{AccessKey: "a", SecretKey: "s"}, "bucket"},
		{objectstore.Config{Bucket: "b", AccessKey: "a"}, "secret key"},
		{objectstore.Config{Bucket: "b", AccessKey: "a", SecretKey: "s", Endpoint: "127.0.0.1:8333"}, "endpoint"},
	} {
		_, err := objectstore.New(c.cfg)
		require.ErrorContains(t, err, c.want)
	}
}
