package activities

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/sources"
	"github.com/pmo-dev/pmo/transfer"
)

// sourceDisk writes n seeded pseudo-random bytes and returns the path and content.
func sourceDisk(t *testing.T, n int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 42))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "source.img")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path, data
}

// testSources allows every test's disks: they are under the system's temporary folder.
var testSources = []string{os.TempDir()}

func newConnector(t *testing.T, bytesPerSec float64) *Connector {
	t.Helper()
	return NewConnector("c1", transfer.NewThrottle(bytesPerSec), filepath.Join(t.TempDir(), "target"), 2, nil)
}

// activityEnv returns a test environment for c that records every heartbeat offset.
func activityEnv(c *Connector) (*testsuite.TestActivityEnvironment, func() []int64) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(c)
	var mu sync.Mutex
	var beats []int64
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var off int64
		if details.Get(&off) == nil {
			mu.Lock()
			beats = append(beats, off)
			mu.Unlock()
		}
	})
	return env, func() []int64 { mu.Lock(); defer mu.Unlock(); return append([]int64(nil), beats...) }
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// appError digs the application error out of an activity failure.
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "want an application error, got %v", err)
	return app
}

func TestTransferCopiesIntoTheTargetDirectory(t *testing.T) {
	c := newConnector(t, 0)
	env, beats := activityEnv(c)
	src, data := sourceDisk(t, 700_000, 1)

	v, err := env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m1", Sources: testSources, Source: src, Destination: "vm-1/disk.img", ExpectedBytes: int64(len(data))})
	require.NoError(t, err)
	var res contract.TransferResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, int64(len(data)), res.Bytes)
	require.Equal(t, hexSum(data), res.SHA256)
	require.Positive(t, res.Seconds)
	require.Positive(t, res.AvgBytesPerSec)

	got, err := os.ReadFile(filepath.Join(c.TargetDir, "vm-1", "disk.img"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	require.Equal(t, int64(len(data)), c.Stats.BytesMoved())
	require.Zero(t, c.Stats.ActiveTasks())
	require.Zero(t, c.pending.Load(), "all pending bytes are accounted for")
	require.NotEmpty(t, beats())
	require.Equal(t, int64(len(data)), beats()[len(beats())-1], "the last heartbeat carries the full offset")

	// A retry after success copies nothing.
	v, err = env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m1", Sources: testSources, Source: src, Destination: "vm-1/disk.img", ExpectedBytes: int64(len(data))})
	require.NoError(t, err)
	require.NoError(t, v.Get(&res))
	require.Equal(t, hexSum(data), res.SHA256)
	require.Equal(t, int64(len(data)), c.Stats.BytesMoved(), "the repeat moved no bytes")
}

func TestTransferResumesFromTheHeartbeatOffset(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	src, data := sourceDisk(t, 500_000, 2)
	const offset = 300_000
	require.NoError(t, os.MkdirAll(c.TargetDir, 0o755))
	// Bytes past the heartbeat offset are garbage from the failed attempt.
	partial := append(append([]byte{}, data[:offset]...), make([]byte, 10_000)...)
	require.NoError(t, os.WriteFile(filepath.Join(c.TargetDir, "vm.img"+transfer.PartialSuffix), partial, 0o644))
	env.SetHeartbeatDetails(int64(offset))

	v, err := env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m2", Sources: testSources, Source: src, Destination: "vm.img", ExpectedBytes: int64(len(data))})
	require.NoError(t, err)
	var res contract.TransferResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, hexSum(data), res.SHA256)
	require.Equal(t, int64(len(data)-offset), c.Stats.BytesMoved(), "only the bytes after the offset were copied")
	got, err := os.ReadFile(filepath.Join(c.TargetDir, "vm.img"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

func TestTransferWithCorruptPartialFailsRetryablyAndStartsOver(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	src, data := sourceDisk(t, 200_000, 3)
	require.NoError(t, os.MkdirAll(c.TargetDir, 0o755))
	bad := append([]byte{}, data[:100_000]...)
	bad[10] ^= 0x55
	partial := filepath.Join(c.TargetDir, "vm.img"+transfer.PartialSuffix)
	require.NoError(t, os.WriteFile(partial, bad, 0o644))
	env.SetHeartbeatDetails(int64(100_000))

	in := contract.TransferInput{MigrationID: "m3", Sources: testSources, Source: src, Destination: "vm.img", ExpectedBytes: int64(len(data))}
	_, err := env.ExecuteActivity(c.Transfer, in)
	app := appError(t, err)
	require.Equal(t, ErrTypeChecksumMismatch, app.Type())
	require.False(t, app.NonRetryable(), "a retry can succeed from byte 0")
	require.NoFileExists(t, partial)

	// Temporal's retry still carries the old offset; with the partial gone it starts at 0.
	v, err := env.ExecuteActivity(c.Transfer, in)
	require.NoError(t, err)
	var res contract.TransferResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, hexSum(data), res.SHA256)
}

func TestTransferRejectsBadDestinations(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	src, _ := sourceDisk(t, 1000, 4)
	for _, dest := range []string{"", "../escape.img", "a/../../escape.img", "/etc/passwd", "..", "vm.img.partial"} {
		_, err := env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m4", Sources: testSources, Source: src, Destination: dest})
		app := appError(t, err)
		require.Equal(t, ErrTypeBadDestination, app.Type(), dest)
		require.True(t, app.NonRetryable(), dest)
	}
	entries, _ := os.ReadDir(filepath.Dir(c.TargetDir))
	for _, e := range entries {
		require.NotEqual(t, "escape.img", e.Name())
	}
}

func TestTransferFailsWithoutRetryOnMissingSourceOrWrongSize(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	_, err := env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m5", Sources: testSources, Source: filepath.Join(t.TempDir(), "missing.img"), Destination: "vm.img"})
	app := appError(t, err)
	require.Equal(t, ErrTypeBadSource, app.Type())
	require.True(t, app.NonRetryable())

	src, data := sourceDisk(t, 1000, 5)
	_, err = env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m5", Sources: testSources, Source: src, Destination: "vm.img", ExpectedBytes: int64(len(data)) * 2})
	app = appError(t, err)
	require.Equal(t, ErrTypeSizeMismatch, app.Type())
	require.True(t, app.NonRetryable())
	require.Zero(t, c.pending.Load())
}

func TestTransfersBeyondMaxTasksWaitForASlot(t *testing.T) {
	c := NewConnector("c1", transfer.NewThrottle(512<<10), filepath.Join(t.TempDir(), "target"), 1, nil)
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if n := int64(c.Stats.ActiveTasks()); n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			env, _ := activityEnv(c)
			src, data := sourceDisk(t, 256<<10, uint64(10+i))
			v, err := env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m", Sources: testSources, Source: src, Destination: filepath.Join("vm", string(rune('a'+i))+".img")})
			require.NoError(t, err)
			var res contract.TransferResult
			require.NoError(t, v.Get(&res))
			require.Equal(t, hexSum(data), res.SHA256)
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	require.Equal(t, int64(1), peak.Load(), "with MaxTasks 1 only one transfer runs at a time")
	require.Equal(t, int64(2*256<<10), c.Stats.BytesMoved())
}

func TestPrepareChecksRoom(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	v, err := env.ExecuteActivity(c.Prepare, contract.PrepareInput{MigrationID: "m6", Bytes: 1 << 20})
	require.NoError(t, err)
	var res contract.PrepareResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, "c1", res.ConnectorID)
	require.GreaterOrEqual(t, res.FreeStorageBytes, int64(1<<20))
	require.DirExists(t, c.TargetDir, "the target directory is created")

	_, err = env.ExecuteActivity(c.Prepare, contract.PrepareInput{MigrationID: "m7", Bytes: 1 << 62})
	app := appError(t, err)
	require.Equal(t, ErrTypeInsufficientStorage, app.Type())
	require.True(t, app.NonRetryable())

	// Room promised to running transfers is not offered again.
	c.pending.Store(res.FreeStorageBytes)
	_, err = env.ExecuteActivity(c.Prepare, contract.PrepareInput{MigrationID: "m8", Bytes: 1})
	require.Equal(t, ErrTypeInsufficientStorage, appError(t, err).Type())
}

func TestPrepareFailsWhenTheTargetIsNotADirectory(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	require.NoError(t, os.WriteFile(target, []byte("x"), 0o644))
	c := NewConnector("c1", transfer.NewThrottle(0), target, 1, nil)
	env, _ := activityEnv(c)
	_, err := env.ExecuteActivity(c.Prepare, contract.PrepareInput{MigrationID: "m9", Bytes: 1})
	require.ErrorContains(t, err, "target directory")
}

func TestApplySizeChangesTheThrottleNow(t *testing.T) {
	c := newConnector(t, 1<<20)
	env, _ := activityEnv(c)
	v, err := env.ExecuteActivity(c.ApplySize, contract.ApplySizeInput{BandwidthBytesSec: 4 << 20})
	require.NoError(t, err)
	var res contract.ApplySizeResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, float64(4<<20), res.BandwidthBytesSec)
	require.Equal(t, float64(4<<20), c.Throttle.BytesPerSec())

	_, err = env.ExecuteActivity(c.ApplySize, contract.ApplySizeInput{BandwidthBytesSec: 0})
	app := appError(t, err)
	require.Equal(t, ErrTypeBadSize, app.Type())
	require.Equal(t, float64(4<<20), c.Throttle.BytesPerSec(), "a refused size changes nothing")
}

// A new attempt after a pause has no heartbeat of its own: Resume continues from what
// the partial copy holds, and the result is still verified against the source.
func TestTransferResumeContinuesFromThePartialCopy(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	src, data := sourceDisk(t, 400_000, 5)
	const kept = 150_000
	require.NoError(t, os.MkdirAll(c.TargetDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(c.TargetDir, "vm.img"+transfer.PartialSuffix), data[:kept], 0o644))

	v, err := env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m5", Sources: testSources, Source: src, Destination: "vm.img", ExpectedBytes: int64(len(data)), Resume: true})
	require.NoError(t, err)
	var res contract.TransferResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, hexSum(data), res.SHA256)
	require.Equal(t, int64(len(data)-kept), c.Stats.BytesMoved(), "only the bytes after the partial copy were moved")
}

func TestDiscardRemovesThePartialCopyAndIsIdempotent(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	require.NoError(t, os.MkdirAll(c.TargetDir, 0o755))
	partial := filepath.Join(c.TargetDir, "vm.img"+transfer.PartialSuffix)
	require.NoError(t, os.WriteFile(partial, []byte("half a disk"), 0o644))
	for range 2 {
		_, err := env.ExecuteActivity(c.Discard, contract.DiscardInput{MigrationID: "m6", Destination: "vm.img"})
		require.NoError(t, err)
		_, err = os.Stat(partial)
		require.True(t, os.IsNotExist(err))
	}
	_, err := env.ExecuteActivity(c.Discard, contract.DiscardInput{MigrationID: "m6", Destination: "../escape"})
	require.True(t, appError(t, err).NonRetryable(), "a bad destination is not retried")
}

// The bytes a connector holds are each copy's size on disk, set rather than added, so
// a retry, a resume or a repeat does not count the same bytes twice; a cutover or a
// discard gives them back.
func TestStorageHeldFollowsEachCopyUntilCutoverOrDiscard(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	srcA, a := sourceDisk(t, 700_000, 30)
	srcB, b := sourceDisk(t, 500_000, 31)
	inA := contract.TransferInput{MigrationID: "ma", Sources: testSources, Source: srcA, Destination: "a.img", ExpectedBytes: int64(len(a))}
	inB := contract.TransferInput{MigrationID: "mb", Sources: testSources, Source: srcB, Destination: "b.img", ExpectedBytes: int64(len(b))}

	_, err := env.ExecuteActivity(c.Transfer, inA)
	require.NoError(t, err)
	require.Equal(t, int64(len(a)), c.Stats.StorageUsedBytes())
	_, err = env.ExecuteActivity(c.Transfer, inA)
	require.NoError(t, err)
	require.Equal(t, int64(len(a)), c.Stats.StorageUsedBytes(), "a repeated transfer holds no more")

	// A retry that resumes from its heartbeat holds the whole copy, not just what it
	// wrote itself; a corrupt partial is removed and held no more.
	const offset = 200_000
	corrupt := append([]byte{}, b[:offset]...)
	corrupt[7] ^= 0x55
	require.NoError(t, os.WriteFile(filepath.Join(c.TargetDir, "b.img"+transfer.PartialSuffix), corrupt, 0o644))
	envB, _ := activityEnv(c)
	envB.SetHeartbeatDetails(int64(offset))
	_, err = envB.ExecuteActivity(c.Transfer, inB)
	require.Equal(t, ErrTypeChecksumMismatch, appError(t, err).Type())
	require.Equal(t, int64(len(a)), c.Stats.StorageUsedBytes(), "the removed partial copy is not held")
	require.NoError(t, os.WriteFile(filepath.Join(c.TargetDir, "b.img"+transfer.PartialSuffix), b[:offset], 0o644))
	_, err = envB.ExecuteActivity(c.Transfer, inB)
	require.NoError(t, err)
	require.Equal(t, int64(len(a)+len(b)), c.Stats.StorageUsedBytes())

	// Discarding only the partial files keeps the complete copy, which awaits cutover.
	_, err = env.ExecuteActivity(c.Discard, contract.DiscardInput{MigrationID: "mb", Destination: "b.img"})
	require.NoError(t, err)
	require.Equal(t, int64(len(a)+len(b)), c.Stats.StorageUsedBytes())
	_, err = env.ExecuteActivity(c.Discard, contract.DiscardInput{MigrationID: "mb", Destination: "b.img", Complete: true})
	require.NoError(t, err)
	require.Equal(t, int64(len(a)), c.Stats.StorageUsedBytes())

	_, err = env.ExecuteActivity(c.Cutover, contract.CutoverInput{MigrationID: "ma", Sources: testSources, Source: srcA, Destination: "a.img"})
	require.NoError(t, err)
	require.Zero(t, c.Stats.StorageUsedBytes(), "a cut over copy is the provider's")
	_, err = env.ExecuteActivity(c.Cutover, contract.CutoverInput{MigrationID: "ma", Sources: testSources, Source: srcA, Destination: "a.img"})
	require.NoError(t, err)
	require.Zero(t, c.Stats.StorageUsedBytes(), "a repeated cutover changes nothing")
}

func TestReadLatencyIsTheMeanSinceTheLastSample(t *testing.T) {
	var s ConnectorStats
	require.Zero(t, s.TakeReadLatency(), "nothing read")
	s.recordRead(time.Millisecond)
	s.recordRead(3 * time.Millisecond)
	require.Equal(t, 2*time.Millisecond, s.TakeReadLatency())
	require.Zero(t, s.TakeReadLatency(), "each sample starts afresh")
	s.recordRead(5 * time.Millisecond)
	require.Equal(t, 5*time.Millisecond, s.TakeReadLatency())

	// A real transfer's reads of its source are counted, and a cutover's too.
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	src, data := sourceDisk(t, 300_000, 32)
	_, err := env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m", Sources: testSources, Source: src, Destination: "vm.img", ExpectedBytes: int64(len(data))})
	require.NoError(t, err)
	require.Positive(t, c.Stats.TakeReadLatency())
	require.Zero(t, c.Stats.TakeReadLatency())
	_, err = env.ExecuteActivity(c.Cutover, contract.CutoverInput{MigrationID: "m", Sources: testSources, Source: src, Destination: "vm.img"})
	require.NoError(t, err)
	require.Positive(t, c.Stats.TakeReadLatency())
}

func TestTargetFreeBytesIsTheTargetFilesystems(t *testing.T) {
	c := newConnector(t, 0)
	_, err := c.Stats.TargetFreeBytes()
	require.Error(t, err, "the target directory does not exist yet")
	env, _ := activityEnv(c)
	_, err = env.ExecuteActivity(c.Prepare, contract.PrepareInput{MigrationID: "m", Bytes: 1})
	require.NoError(t, err)
	free, err := c.Stats.TargetFreeBytes()
	require.NoError(t, err)
	require.Positive(t, free)

	var none ConnectorStats
	_, err = none.TargetFreeBytes()
	require.Error(t, err, "stats without a target directory cannot say")
}

// A connector reads only under the migration's site's sources and, where it has its
// own list, under that too; it runs only its own site's transfers. Each refusal is a
// BadSource that Temporal does not retry, and nothing is written.
func TestTransferReadsOnlyAllowedSources(t *testing.T) {
	c := newConnector(t, 0)
	env, _ := activityEnv(c)
	src, data := sourceDisk(t, 10_000, 9)
	other, _ := sourceDisk(t, 17, 10)
	site := []string{filepath.Dir(src)}
	refused := func(in contract.TransferInput, why string) {
		t.Helper()
		_, err := env.ExecuteActivity(c.Transfer, in)
		require.Error(t, err, why)
		app := appError(t, err)
		require.Equal(t, ErrTypeBadSource, app.Type(), why)
		require.True(t, app.NonRetryable(), why)
		require.NotContains(t, err.Error(), "17 bytes", "what is outside is not described")
		require.NoFileExists(t, filepath.Join(c.TargetDir, in.Destination+transfer.PartialSuffix))
	}
	refused(contract.TransferInput{MigrationID: "m1", Site: "ams1", Sources: site, Source: other, Destination: "vm/m1.img", ExpectedBytes: 1 << 20},
		"a source outside the site's list")
	refused(contract.TransferInput{MigrationID: "m2", Site: "ams1", Source: src, Destination: "vm/m2.img"}, "a site that allows nothing")

	c.Site = "ams1"
	refused(contract.TransferInput{MigrationID: "m3", Site: "fra1", Sources: site, Source: src, Destination: "vm/m3.img"}, "another site's transfer")
	own, err := sources.Parse([]string{filepath.Dir(other)})
	require.NoError(t, err)
	c.Sources = &own
	refused(contract.TransferInput{MigrationID: "m4", Site: "ams1", Sources: site, Source: src, Destination: "vm/m4.img"},
		"allowed by the site but not by the connector's own list")
	refused(contract.TransferInput{MigrationID: "m5", Site: "ams1", Sources: site, Source: other, Destination: "vm/m5.img"},
		"allowed by the connector but not by the site")

	c.Sources = nil
	_, err = env.ExecuteActivity(c.Transfer, contract.TransferInput{MigrationID: "m6", Site: "ams1", Sources: site, Source: src,
		Destination: "vm/m6.img", ExpectedBytes: int64(len(data))})
	require.NoError(t, err, "the site's own source, on its own connector")
	_, err = env.ExecuteActivity(c.Cutover, contract.CutoverInput{MigrationID: "m6", Site: "ams1", Sources: []string{filepath.Dir(other)},
		Source: src, Destination: "vm/m6.img"})
	require.Equal(t, ErrTypeBadSource, appError(t, err).Type(), "the cutover checks its source too")
}
