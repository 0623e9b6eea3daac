package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/objectstore"
	"github.com/pmo-dev/pmo/sources"
	"github.com/pmo-dev/pmo/transfer"
)

// Application error types of the connector's activities, for retry policies and for
// the workflow to tell failures apart.
const (
	ErrTypeInsufficientStorage = "InsufficientStorage"
	ErrTypeBadDestination      = "BadDestination"
	ErrTypeBadSource           = "BadSource"
	ErrTypeSizeMismatch        = "SizeMismatch"
	ErrTypeChecksumMismatch    = "ChecksumMismatch"
	ErrTypeBadSize             = "BadSize"
)

// slotHeartbeat is how often a transfer waiting for a free slot heartbeats, well
// inside any sensible heartbeat timeout.
const slotHeartbeat = 2 * time.Second

// Connector holds the data-plane activities that run in one connector process, on
// that connector's own task queue, and the counters its metrics reporter reads.
type Connector struct {
	// ID names the connector in logs and results.
	ID string
	// Throttle is the connector's bandwidth, shared by all its transfers.
	Throttle *transfer.Throttle
	// TargetDir is where destinations are written.
	TargetDir string
	// MaxTasks caps concurrent transfers; 0 means no cap. The worker leaves a few
	// activity slots above it, so a resize or a pre-warm still runs while every
	// transfer slot is busy.
	MaxTasks int
	// Logger logs with the connector's attributes; nil means slog.Default().
	Logger *slog.Logger
	// Site, when set, is the only site whose transfers the connector runs.
	Site string
	// Sources, when not nil, is the connector's own list of where disks may be read
	// (an appliance's -source flags): a source must be under it as well as under the
	// migration's site's list, and redirects stay within it.
	Sources *sources.List
	// Objects, when not nil, is the object store copies go to instead of TargetDir,
	// under ObjectPrefix (<pool>/<site>), with the connector's own credentials.
	Objects      *objectstore.Store
	ObjectPrefix string

	// Stats are the counters the metrics reporter reads. They sit in a field rather
	// than behind methods of Connector because the worker registers every exported
	// method of Connector as an activity.
	Stats ConnectorStats

	slotsOnce sync.Once
	slots     chan struct{}
	// pending is the bytes that running transfers have still to write, so that
	// Prepare does not promise the same free space twice.
	pending atomic.Int64
}

// ConnectorStats counts a connector's work. It is safe for concurrent use.
type ConnectorStats struct {
	active atomic.Int64
	moved  atomic.Int64
	// targetDir is the connector's TargetDir, whose free space TargetFreeBytes reports.
	targetDir string

	mu sync.Mutex
	// held is the size of each destination's copy awaiting cutover, by destination
	// path. Sizes are set, never added to, so a retried activity cannot count the
	// same bytes twice.
	held map[string]int64
	// reads and readTime are the source reads since the last TakeReadLatency.
	reads    int64
	readTime time.Duration
}

// ActiveTasks is how many transfers are running now.
func (s *ConnectorStats) ActiveTasks() int { return int(s.active.Load()) }

// BytesMoved is how many bytes this process has written to destinations.
func (s *ConnectorStats) BytesMoved() int64 { return s.moved.Load() }

// StorageUsedBytes is what the connector's copies awaiting cutover hold: partial and
// complete copies that have been neither cut over nor discarded.
func (s *ConnectorStats) StorageUsedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, b := range s.held {
		n += b
	}
	return n
}

// TakeReadLatency returns the mean duration of the reads from the VMs' disks since
// the previous call, or zero if there were none, and starts counting afresh.
func (s *ConnectorStats) TakeReadLatency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var mean time.Duration
	if s.reads > 0 {
		mean = s.readTime / time.Duration(s.reads)
	}
	s.reads, s.readTime = 0, 0
	return mean
}

// TargetFreeBytes is the free space of the filesystem the connector writes to.
func (s *ConnectorStats) TargetFreeBytes() (int64, error) {
	return freeBytes(s.targetDir)
}

// hold records that dest's copy is now n bytes long.
func (s *ConnectorStats) hold(dest string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(map[string]int64)
	}
	s.held[dest] = n
}

// release forgets dest's copy: it was cut over or removed.
func (s *ConnectorStats) release(dest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, dest)
}

// recordRead counts one read from a source that took d.
func (s *ConnectorStats) recordRead(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	s.readTime += d
}

// freeBytes is the space an unprivileged writer may still use in dir's filesystem.
func freeBytes(dir string) (int64, error) {
	if dir == "" {
		return 0, errors.New("no target directory")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// NewConnector returns the connector activities for connector id.
func NewConnector(id string, throttle *transfer.Throttle, targetDir string, maxTasks int, logger *slog.Logger) *Connector {
	return &Connector{ID: id, Throttle: throttle, TargetDir: targetDir, MaxTasks: maxTasks, Logger: logger,
		Stats: ConnectorStats{targetDir: targetDir}}
}

func (c *Connector) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Prepare is the pre-warm step: it makes sure the target directory exists, is
// writable and has room for the migration's bytes beside the transfers already
// running. Not enough room is a non-retryable InsufficientStorage error. It changes
// nothing but the directory's existence, so it is safe to repeat.
func (c *Connector) Prepare(ctx context.Context, in contract.PrepareInput) (contract.PrepareResult, error) {
	if in.Bytes < 0 {
		return contract.PrepareResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("prepare %s: bytes must not be negative, got %d", in.MigrationID, in.Bytes), ErrTypeBadSize, nil)
	}
	if c.Objects != nil {
		// An object store has no free space to count; whether it takes this
		// connector's writes is what can fail.
		probe := c.ObjectPrefix + "/.prepare-" + c.ID
		if err := c.Objects.Put(ctx, probe, nil); err != nil {
			return contract.PrepareResult{}, fmt.Errorf("prepare %s: the object store refuses connector %s's writes under %s: %w",
				in.MigrationID, c.ID, c.ObjectPrefix, err)
		}
		if err := c.Objects.Delete(ctx, probe); err != nil {
			return contract.PrepareResult{}, fmt.Errorf("prepare %s: %w", in.MigrationID, err)
		}
		c.logger().Info("prepared", "migration", in.MigrationID, "bytes", in.Bytes, "bucket", c.Objects.Bucket, "prefix", c.ObjectPrefix)
		return contract.PrepareResult{ConnectorID: c.ID}, nil
	}
	if err := os.MkdirAll(c.TargetDir, 0o700); err != nil {
		return contract.PrepareResult{}, fmt.Errorf("prepare %s: target directory: %w", in.MigrationID, err)
	}
	probe, err := os.CreateTemp(c.TargetDir, ".prepare-*")
	if err != nil {
		return contract.PrepareResult{}, fmt.Errorf("prepare %s: target directory %s is not writable: %w", in.MigrationID, c.TargetDir, err)
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return contract.PrepareResult{}, fmt.Errorf("prepare %s: remove probe: %w", in.MigrationID, err)
	}
	free, err := freeBytes(c.TargetDir)
	if err != nil {
		return contract.PrepareResult{}, fmt.Errorf("prepare %s: %w", in.MigrationID, err)
	}
	free = max(free-c.pending.Load(), 0)
	if in.Bytes > free {
		return contract.PrepareResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("prepare %s: connector %s has %d bytes free in %s, the migration needs %d",
				in.MigrationID, c.ID, free, c.TargetDir, in.Bytes), ErrTypeInsufficientStorage, nil)
	}
	c.logger().Info("prepared", "migration", in.MigrationID, "bytes", in.Bytes, "free_bytes", free)
	return contract.PrepareResult{ConnectorID: c.ID, FreeStorageBytes: free}, nil
}

// Transfer copies the migration's disk image into the target directory within the
// connector's bandwidth. It heartbeats the byte offset written, and a retry resumes
// from the last heartbeat's offset. A destination that already holds the source's
// bytes is not copied again. Bad input, a missing source and a size mismatch fail
// without retry; a checksum mismatch removes the partial file and lets the retry
// start over.
func (c *Connector) Transfer(ctx context.Context, in contract.TransferInput) (contract.TransferResult, error) {
	dest, err := c.destination(in.Destination)
	if err != nil {
		return contract.TransferResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("transfer %s: %v", in.MigrationID, err), ErrTypeBadDestination, nil)
	}
	allowed, err := c.allowed(in.Site, in.Sources, in.Source)
	if err != nil {
		c.logger().Warn("transfer refused", "migration", in.MigrationID, "error", err)
		return contract.TransferResult{}, classify(in.MigrationID, err)
	}
	var offset int64
	if in.Resume {
		offset = math.MaxInt64 // Copy keeps what the partial file holds
	}
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &offset); err != nil {
			c.logger().Warn("unreadable heartbeat details; starting from byte 0", "migration", in.MigrationID, "error", err)
			offset = 0
		}
	}
	log := c.logger().With("migration", in.MigrationID, "source", in.Source, "destination", dest)

	release, err := c.acquireSlot(ctx, offset)
	if err != nil {
		return contract.TransferResult{}, fmt.Errorf("transfer %s: waiting for a transfer slot: %w", in.MigrationID, err)
	}
	defer release()
	c.Stats.active.Add(1)
	defer c.Stats.active.Add(-1)
	// Count the remaining bytes as pending until written; whatever is not written
	// when the attempt ends is given back.
	remaining := max(in.ExpectedBytes-offset, 0)
	c.pending.Add(remaining)
	var written int64
	defer func() { c.pending.Add(-(remaining - min(written, remaining))) }()

	log.Info("transfer starting", "offset", offset, "expected_bytes", in.ExpectedBytes, "bytes_per_sec", c.Throttle.BytesPerSec())
	copyTo := func(ctx context.Context, src string, opt transfer.Options) (transfer.Result, error) {
		return transfer.Copy(ctx, src, dest, opt)
	}
	if c.Objects != nil {
		// The store's parts, not the heartbeat's offset, say where the copy goes on.
		copyTo = func(ctx context.Context, src string, opt transfer.Options) (transfer.Result, error) {
			return transfer.Upload(ctx, src, c.Objects, dest, opt)
		}
	}
	res, err := copyTo(ctx, in.Source, transfer.Options{
		Offset:         offset,
		ExpectedSize:   in.ExpectedBytes,
		ExpectedSHA256: in.SHA256,
		Live:           in.Live,
		Sources:        allowed,
		Throttle:       c.Throttle,
		// The heartbeat carries the offset (what a retry resumes from) and, second,
		// where this attempt began, so that watchers can tell its rate. The offset
		// is also how long the copy on disk is.
		Progress: func(off int64) {
			c.Stats.hold(dest, off)
			activity.RecordHeartbeat(ctx, off, off-written)
		},
		OnRead: c.Stats.recordRead,
		OnCopy: func(n int) {
			c.Stats.moved.Add(int64(n))
			before := written
			written += int64(n)
			c.pending.Add(-(min(written, remaining) - min(before, remaining)))
		},
	})
	if err != nil && ctx.Err() != nil {
		// Cancelled (a pause or a cancel): the partial copy stays for a resume.
		log.Info("transfer stopped", "copied", res.Copied)
		return contract.TransferResult{}, temporal.NewCanceledError(res.ResumedFrom + res.Copied)
	}
	if err != nil {
		if errors.Is(err, transfer.ErrChecksumMismatch) {
			c.Stats.release(dest) // Copy removed the partial file
		}
		log.Warn("transfer failed", "error", err, "copied", res.Copied)
		return contract.TransferResult{}, classify(in.MigrationID, err)
	}
	out := contract.TransferResult{Bytes: res.Bytes, SHA256: res.SHA256, Seconds: res.Duration.Seconds()}
	if out.Seconds > 0 {
		out.AvgBytesPerSec = float64(res.Copied) / out.Seconds
	}
	log.Info("transfer done", "bytes", res.Bytes, "copied", res.Copied, "resumed_from", res.ResumedFrom,
		"already_complete", res.AlreadyComplete, "seconds", out.Seconds, "sha256", res.SHA256)
	return out, nil
}

// allowed is the list a source of a migration at site, whose site allows entries, is
// read under: the connector's own list where it has one (the source must then be
// under both), else the migration's. A transfer for another site than the
// connector's, or whose site allows nothing, is refused.
func (c *Connector) allowed(site string, entries []string, source string) (*sources.List, error) {
	if c.Site != "" && site != c.Site {
		return nil, fmt.Errorf("%w: the migration is at site %q; connector %s serves only %q", transfer.ErrBadSource, site, c.ID, c.Site)
	}
	l, err := sources.Parse(entries)
	if err != nil {
		return nil, fmt.Errorf("%w: the site's sources: %w", transfer.ErrBadSource, err)
	}
	if l.Empty() {
		return nil, fmt.Errorf("%w: site %q allows no sources (a migration started before PMO checked sources: submit it again)",
			transfer.ErrBadSource, site)
	}
	if c.Sources == nil {
		return &l, nil
	}
	if err := l.Check(source); err != nil {
		return nil, fmt.Errorf("%w: %w", transfer.ErrBadSource, err)
	}
	return c.Sources, nil
}

// destination resolves a relative destination inside the target directory, or to its
// key under the connector's prefix in the object store, refusing anything that could
// escape either.
func (c *Connector) destination(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("destination is required")
	case filepath.IsAbs(name):
		return "", fmt.Errorf("destination %q must be relative to the target directory", name)
	case !filepath.IsLocal(name):
		return "", fmt.Errorf("destination %q must stay inside the target directory (no \"..\")", name)
	case filepath.Ext(name) == transfer.PartialSuffix:
		return "", fmt.Errorf("destination %q must not end in %s", name, transfer.PartialSuffix)
	}
	if c.Objects != nil {
		return c.ObjectPrefix + "/" + filepath.ToSlash(filepath.Clean(name)), nil
	}
	if c.TargetDir == "" {
		return "", errors.New("the connector has no target directory")
	}
	return filepath.Join(c.TargetDir, name), nil
}

// acquireSlot waits for one of MaxTasks transfer slots, heartbeating the resume offset
// meanwhile so the wait does not look like a dead connector.
func (c *Connector) acquireSlot(ctx context.Context, offset int64) (func(), error) {
	if c.MaxTasks <= 0 {
		return func() {}, nil
	}
	c.slotsOnce.Do(func() { c.slots = make(chan struct{}, c.MaxTasks) })
	tick := time.NewTicker(slotHeartbeat)
	defer tick.Stop()
	for {
		select {
		case c.slots <- struct{}{}:
			return func() { <-c.slots }, nil
		case <-tick.C:
			activity.RecordHeartbeat(ctx, offset)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// classify turns a copy error into what Temporal should do about it.
func classify(migrationID string, err error) error {
	msg := fmt.Sprintf("transfer %s: %v", migrationID, err)
	switch {
	case errors.Is(err, transfer.ErrNotFound), errors.Is(err, transfer.ErrBadSource):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeBadSource, err)
	case errors.Is(err, transfer.ErrSizeMismatch):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeSizeMismatch, err)
	case errors.Is(err, transfer.ErrChecksumMismatch):
		// The partial file is gone, so the retry copies from byte 0.
		return temporal.NewApplicationErrorWithCause(msg, ErrTypeChecksumMismatch, err)
	default:
		return fmt.Errorf("transfer %s: %w", migrationID, err)
	}
}

// Discard removes a cancelled migration's partial copy from the target directory. A
// copy that is not there is fine: a second run, or a cancel before any byte moved.
func (c *Connector) Discard(ctx context.Context, in contract.DiscardInput) error {
	dest, err := c.destination(in.Destination)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("discard %s: %v", in.MigrationID, err), ErrTypeBadDestination, nil)
	}
	if c.Objects != nil {
		if err := c.discardObject(ctx, dest, in.Complete); err != nil {
			return fmt.Errorf("discard %s: %w", in.MigrationID, err)
		}
		c.logger().Info("partial copy discarded", "migration", in.MigrationID, "destination", dest)
		return nil
	}
	files := []string{dest + transfer.PartialSuffix, dest + transfer.DeltaSuffix}
	if in.Complete {
		files = append(files, dest)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("discard %s: %w", in.MigrationID, err)
		}
	}
	// A complete copy that is kept still awaits its cutover.
	if st, err := os.Stat(dest); err == nil {
		c.Stats.hold(dest, st.Size())
	} else {
		c.Stats.release(dest)
	}
	c.logger().Info("partial copy discarded", "migration", in.MigrationID, "destination", dest)
	return nil
}

// discardObject drops the copy's unfinished upload and, if complete, the copy and its
// manifest.
func (c *Connector) discardObject(ctx context.Context, key string, complete bool) error {
	if up, found, err := c.Objects.FindUpload(ctx, key); err != nil {
		return err
	} else if found {
		if err := c.Objects.Abort(ctx, up); err != nil {
			return err
		}
	}
	if complete {
		for _, k := range []string{key, key + transfer.ManifestSuffix} {
			if err := c.Objects.Delete(ctx, k); err != nil {
				return err
			}
		}
	}
	// A complete copy that is kept still awaits its cutover.
	size, ok, err := c.Objects.Size(ctx, key)
	if err != nil {
		return err
	}
	if ok {
		c.Stats.hold(key, size)
	} else {
		c.Stats.release(key)
	}
	return nil
}

// Cutover is the final delta sync while the VM is stopped: it copies the blocks of the
// source that changed since the bulk copy, within the connector's bandwidth, and
// verifies the result (see transfer.Sync). Cancelled before it applies the changes, it
// leaves the copy as it was: the workflow's downtime timer rolls a cutover back so.
// Running it again is harmless: an up-to-date copy has no changed blocks.
func (c *Connector) Cutover(ctx context.Context, in contract.CutoverInput) (contract.CutoverResult, error) {
	dest, err := c.destination(in.Destination)
	if err != nil {
		return contract.CutoverResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cutover %s: %v", in.MigrationID, err), ErrTypeBadDestination, nil)
	}
	log := c.logger().With("migration", in.MigrationID, "destination", dest)
	allowed, err := c.allowed(in.Site, in.Sources, in.Source)
	if err != nil {
		log.Warn("cutover refused", "error", err)
		return contract.CutoverResult{}, classify(in.MigrationID, err)
	}
	sync := transfer.Sync
	if c.Objects != nil {
		sync = func(ctx context.Context, src, key string, opt transfer.SyncOptions) (transfer.SyncResult, error) {
			return transfer.SyncObject(ctx, src, c.Objects, key, opt)
		}
	}
	res, err := sync(ctx, in.Source, dest, transfer.SyncOptions{
		Sources:  allowed,
		Throttle: c.Throttle,
		Progress: func(off int64) { activity.RecordHeartbeat(ctx, off) },
		OnCopy:   func(n int) { c.Stats.moved.Add(int64(n)) },
		OnRead:   c.Stats.recordRead,
	})
	if err != nil && ctx.Err() != nil {
		log.Info("cutover stopped; the copy is as it was", "changed_blocks_sent", res.ChangedBlocks)
		return contract.CutoverResult{}, temporal.NewCanceledError(res.ChangedBlocks)
	}
	if err != nil {
		log.Warn("cutover failed", "error", err)
		return contract.CutoverResult{}, classify(in.MigrationID, err)
	}
	// The copy is the provider's now; the connector no longer holds it.
	c.Stats.release(dest)
	log.Info("cutover synced", "blocks", res.Blocks, "changed_blocks", res.ChangedBlocks, "bytes", res.BytesCopied,
		"seconds", res.Duration.Seconds(), "sha256", res.SHA256)
	return contract.CutoverResult{Blocks: res.Blocks, ChangedBlocks: res.ChangedBlocks, BytesCopied: res.BytesCopied,
		SHA256: res.SHA256, Seconds: res.Duration.Seconds()}, nil
}

// ApplySize changes the connector's bandwidth now; running transfers feel it within a
// second. Setting the same value twice is harmless.
func (c *Connector) ApplySize(ctx context.Context, in contract.ApplySizeInput) (contract.ApplySizeResult, error) {
	if !(in.BandwidthBytesSec > 0) || math.IsInf(in.BandwidthBytesSec, 0) {
		return contract.ApplySizeResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("apply size to connector %s: bandwidth must be a positive number of bytes per second, got %v", c.ID, in.BandwidthBytesSec),
			ErrTypeBadSize, nil)
	}
	if c.Throttle == nil {
		return contract.ApplySizeResult{}, fmt.Errorf("apply size to connector %s: no throttle", c.ID)
	}
	before := c.Throttle.BytesPerSec()
	c.Throttle.SetBytesPerSec(in.BandwidthBytesSec)
	c.logger().Info("bandwidth changed", "from_bytes_per_sec", before, "to_bytes_per_sec", in.BandwidthBytesSec, "active_tasks", c.Stats.ActiveTasks())
	return contract.ApplySizeResult{BandwidthBytesSec: c.Throttle.BytesPerSec()}, nil
}
