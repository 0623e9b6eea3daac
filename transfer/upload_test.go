package transfer

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/objectstore"
	"github.com/pmo-dev/pmo/testenv"
)

// objectStore is a bucket of the test's own in the object store make test runs.
func objectStore(t *testing.T) *objectstore.Store {
	t.Helper()
	s, err := objectstore.New(testenv.ObjectStore(t))
	require.NoError(t, err)
	return s
}

// A disk goes up in parts, is read back and verified, and its SHA-256 is kept beside
// it; uploading it again finds it done and sends nothing.
func TestUploadSendsTheDiskInPartsAndVerifiesIt(t *testing.T) {
	ctx := context.Background()
	store := objectStore(t)
	src, data := disk(t, 2*objectstore.PartSize+5<<20+7, 11)
	res, err := Upload(ctx, src, store, "pool/c1/vm-1/disk.img", Options{ExpectedSize: int64(len(data))})
	require.NoError(t, err)
	require.Equal(t, sum(data), res.SHA256)
	require.Equal(t, int64(len(data)), res.Bytes)
	require.Equal(t, int64(len(data)), res.Copied)
	require.Zero(t, res.ResumedFrom)

	got, n, err := store.SHA256(ctx, "pool/c1/vm-1/disk.img", nil)
	require.NoError(t, err)
	require.Equal(t, sum(data), got, "the object holds the disk's bytes")
	require.Equal(t, int64(len(data)), n)
	m, ok, err := readManifest(ctx, store, "pool/c1/vm-1/disk.img")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, Manifest{Size: int64(len(data)), SHA256: sum(data), PartSize: objectstore.PartSize, Parts: []string{
		objectstore.PartSHA256(data[:objectstore.PartSize]), objectstore.PartSHA256(data[objectstore.PartSize : 2*objectstore.PartSize]),
		objectstore.PartSHA256(data[2*objectstore.PartSize:])}}, m, "the manifest says what the copy holds")
	_, left, err := store.FindUpload(ctx, "pool/c1/vm-1/disk.img")
	require.NoError(t, err)
	require.False(t, left, "no upload is left open")

	again, err := Upload(ctx, src, store, "pool/c1/vm-1/disk.img", Options{})
	require.NoError(t, err)
	require.True(t, again.AlreadyComplete)
	require.Zero(t, again.Copied)
	require.Equal(t, sum(data), again.SHA256)
}

// An upload cut off after its first part (a connector killed) is found by the next
// attempt, which keeps that part and sends the rest; a kept part that no longer
// matches the source is sent again.
func TestUploadResumesFromTheLastWholePart(t *testing.T) {
	ctx := context.Background()
	store := objectStore(t)
	src, data := disk(t, 3*objectstore.PartSize+1<<20, 12)
	const key = "pool/c1/vm-2/disk.img"

	cut, cancel := context.WithCancel(ctx)
	_, err := Upload(cut, src, store, key, Options{Progress: func(pos int64) {
		if pos > objectstore.PartSize+objectstore.PartSize/2 {
			cancel() // mid-way through the second part
		}
	}, ProgressInterval: 1})
	cancel()
	require.ErrorIs(t, err, context.Canceled)
	up, found, err := store.FindUpload(ctx, key)
	require.NoError(t, err)
	require.True(t, found, "the upload is left for the next attempt")
	parts, err := store.Parts(ctx, up)
	require.NoError(t, err)
	require.Len(t, parts, 1, "one whole part went up")
	_, exists, err := store.Size(ctx, key)
	require.NoError(t, err)
	require.False(t, exists, "no object before the upload completes")

	res, err := Upload(ctx, src, store, key, Options{})
	require.NoError(t, err)
	require.Equal(t, int64(objectstore.PartSize), res.ResumedFrom, "the first part was kept")
	require.Equal(t, int64(len(data)-objectstore.PartSize), res.Copied, "the rest was sent once")
	require.Equal(t, sum(data), res.SHA256)
	got, _, err := store.SHA256(ctx, key, nil)
	require.NoError(t, err)
	require.Equal(t, sum(data), got)

	// The same again, but the disk's first part changes between the attempts.
	const key2 = "pool/c1/vm-3/disk.img"
	cut, cancel = context.WithCancel(ctx)
	_, err = Upload(cut, src, store, key2, Options{Progress: func(pos int64) {
		if pos > objectstore.PartSize+objectstore.PartSize/2 {
			cancel()
		}
	}, ProgressInterval: 1})
	cancel()
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
	data[100] ^= 0xff
	require.NoError(t, os.WriteFile(src, data, 0o644))
	res, err = Upload(ctx, src, store, key2, Options{})
	require.NoError(t, err)
	require.Zero(t, res.ResumedFrom, "the changed part and all after it were sent again")
	require.Equal(t, int64(len(data)), res.Copied)
	require.Equal(t, sum(data), res.SHA256)
}

// A disk whose size is not what the migration expects is refused before anything is
// sent.
func TestUploadRefusesAWrongSize(t *testing.T) {
	store := objectStore(t)
	src, data := disk(t, 1<<20, 13)
	_, err := Upload(context.Background(), src, store, "pool/c1/vm-4/disk.img", Options{ExpectedSize: int64(len(data)) + 1})
	require.ErrorIs(t, err, ErrSizeMismatch)
	_, found, err := store.FindUpload(context.Background(), "pool/c1/vm-4/disk.img")
	require.NoError(t, err)
	require.False(t, found)
}

// The cutover's delta sync of a copy in the store sends only the parts that changed
// and copies the rest inside the store; cancelled, it leaves the copy as it was.
func TestSyncObjectSendsOnlyTheChangedParts(t *testing.T) {
	ctx := context.Background()
	store := objectStore(t)
	src, data := disk(t, 3*objectstore.PartSize+3<<20, 14)
	const key = "pool/c1/vm-5/disk.img"
	_, err := Upload(ctx, src, store, key, Options{})
	require.NoError(t, err)

	// The VM wrote to its second part after the bulk copy.
	data[objectstore.PartSize+5] ^= 0xff
	require.NoError(t, os.WriteFile(src, data, 0o644))
	cut, cancel := context.WithCancel(ctx)
	cancel()
	_, err = SyncObject(cut, src, store, key, SyncOptions{})
	require.Error(t, err)
	got, _, err := store.SHA256(ctx, key, nil)
	require.NoError(t, err)
	require.NotEqual(t, sum(data), got, "a cancelled sync leaves the copy as it was")
	_, left, err := store.FindUpload(ctx, key)
	require.NoError(t, err)
	require.False(t, left, "and drops its upload")

	var sent int
	res, err := SyncObject(ctx, src, store, key, SyncOptions{OnCopy: func(n int) { sent += n }})
	require.NoError(t, err)
	require.Equal(t, 4, res.Blocks)
	require.Equal(t, 1, res.ChangedBlocks, "one part changed")
	require.Equal(t, int64(objectstore.PartSize), res.BytesCopied)
	require.Equal(t, objectstore.PartSize, sent)
	require.Equal(t, sum(data), res.SHA256)
	got, _, err = store.SHA256(ctx, key, nil)
	require.NoError(t, err)
	require.Equal(t, sum(data), got, "the copy now holds the changed disk")

	again, err := SyncObject(ctx, src, store, key, SyncOptions{})
	require.NoError(t, err)
	require.Zero(t, again.ChangedBlocks, "an up-to-date copy has nothing to send")
}
