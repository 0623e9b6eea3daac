// Package transfer copies a disk image from a source (a local path, a file:// URI or an
// http(s) URL) to a destination file, within a bandwidth limit that may change while it
// runs. A copy is resumable and verified: bytes go to "<dest>.partial", an interrupted
// copy continues from a given offset, and the destination appears, by an atomic rename,
// only once the SHA-256 of everything written matches the source's.
package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pmo-dev/pmo/sources"
)

// PartialSuffix is appended to the destination while the copy is incomplete.
const PartialSuffix = ".partial"

// Errors a caller may need to tell apart. Retrying ErrNotFound, ErrBadSource and
// ErrSizeMismatch will not help; ErrChecksumMismatch removes the partial file, so a
// retry starts again from byte 0; ErrBusy and ErrStalled are transient.
var (
	ErrNotFound         = errors.New("transfer: source not found")
	ErrBadSource        = errors.New("transfer: bad source")
	ErrSizeMismatch     = errors.New("transfer: source size differs from the expected size")
	ErrChecksumMismatch = errors.New("transfer: checksum mismatch")
	ErrBusy             = errors.New("transfer: another copy is writing the destination")
	ErrStalled          = errors.New("transfer: source stalled")
)

// Defaults for Options.
const (
	DefaultProgressInterval = 500 * time.Millisecond
	DefaultStallTimeout     = 30 * time.Second
)

// Options tune one copy. The zero value copies from byte 0 without a limit.
type Options struct {
	// Offset is where to resume: the partial file is cut to this length and the copy
	// continues from there. A partial file shorter than Offset lowers it, since only
	// bytes on disk can be kept.
	Offset int64
	// ExpectedSize, when positive, is the size the source must have.
	ExpectedSize int64
	// ExpectedSHA256, when set, is the source's known checksum (hex); the source is
	// then not read a second time to verify a resumed copy.
	ExpectedSHA256 string
	// Throttle paces the copy, and the verification reads of a remote source. Nil
	// means unlimited.
	Throttle *Throttle
	// Progress receives the byte offset written so far, at most every
	// ProgressInterval, at the end of the copy, and periodically while the result is
	// verified (so that a caller heartbeating from it stays alive).
	Progress func(offset int64)
	// ProgressInterval defaults to DefaultProgressInterval.
	ProgressInterval time.Duration
	// OnCopy, if set, is called with the size of every chunk written, for counters.
	OnCopy func(n int)
	// OnRead, if set, is called with the duration of every read from the source
	// that returned data (the copy's and the verification's), for latency metrics.
	// Waiting for the throttle is not part of a read.
	OnRead func(d time.Duration)
	// StallTimeout aborts a copy that moves no byte for this long, so that a hung
	// connection cannot hold the partial file forever. It defaults to
	// DefaultStallTimeout.
	StallTimeout time.Duration
	// HTTPClient fetches http(s) sources; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Sources, when not nil, must hold the source (and every redirect's target)
	// before it is opened; a source outside is ErrBadSource. Nil reads any source,
	// for callers that checked it themselves.
	Sources *sources.List
	// Live says the source is a running VM's disk, which changes while it is read:
	// the copy is then not checked against the source (it cannot match), and the
	// cutover's Sync makes it exact and verifies it.
	Live bool
}

// withDefaults fills in the intervals left zero.
func (o Options) withDefaults() Options {
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	return o
}

// Result describes a finished copy.
type Result struct {
	// Bytes is the destination's size.
	Bytes int64
	// SHA256 is the destination's checksum, in hex.
	SHA256 string
	// Duration is how long this call took, verification included.
	Duration time.Duration
	// ResumedFrom is the offset the copy continued from.
	ResumedFrom int64
	// Copied is how many bytes this call wrote.
	Copied int64
	// AlreadyComplete is true when the destination already held the source's bytes
	// and nothing was copied.
	AlreadyComplete bool
}

// Copy copies src to dest as the package comment describes. On cancellation or a
// read error it returns promptly and keeps the partial file for a resume; on a
// checksum mismatch it removes the partial file. If dest already holds the source's
// bytes, Copy does nothing, so it is safe to repeat.
func Copy(ctx context.Context, src, dest string, opt Options) (Result, error) {
	began := time.Now()
	opt = opt.withDefaults()
	s, err := openSource(src, opt.Sources, opt.HTTPClient, opt.OnRead)
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return Result{}, fmt.Errorf("transfer: destination directory: %w", err)
	}
	c := &copier{src: s, dest: dest, partial: dest + PartialSuffix, opt: opt,
		progress: progress{fn: opt.Progress, every: opt.ProgressInterval, last: began}}
	res, err := c.run(ctx)
	res.Duration = time.Since(began)
	return res, err
}

type copier struct {
	src      source
	dest     string
	partial  string
	opt      Options
	progress progress
}

func (c *copier) run(ctx context.Context) (Result, error) {
	if res, done, err := c.alreadyComplete(ctx); err != nil || done {
		return res, err
	}

	f, err := os.OpenFile(c.partial, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return Result{}, fmt.Errorf("transfer: open %s: %w", c.partial, err)
	}
	defer f.Close()
	// One writer per partial file: a retry that starts while an abandoned attempt
	// still runs must not interleave its bytes with the old one's.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return Result{}, fmt.Errorf("%w: %s", ErrBusy, c.partial)
		}
		return Result{}, fmt.Errorf("transfer: lock %s: %w", c.partial, err)
	}
	st, err := f.Stat()
	if err != nil {
		return Result{}, fmt.Errorf("transfer: stat %s: %w", c.partial, err)
	}
	offset := max(min(c.opt.Offset, st.Size()), 0)

	// The watchdog cancels the copy when no byte moves for StallTimeout.
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(c.opt.StallTimeout, func() {
		cancel(fmt.Errorf("%w: no progress from %s for %s", ErrStalled, c.src, c.opt.StallTimeout))
	})
	defer watchdog.Stop()

	r, start, size, err := c.src.Open(cctx, offset)
	if err != nil {
		return Result{}, interrupted(cctx, err)
	}
	defer r.Close()
	if c.opt.ExpectedSize > 0 && size >= 0 && size != c.opt.ExpectedSize {
		return Result{}, fmt.Errorf("%w: %s has %d bytes, expected %d", ErrSizeMismatch, c.src, size, c.opt.ExpectedSize)
	}
	offset = start
	if err := f.Truncate(offset); err != nil {
		return Result{}, fmt.Errorf("transfer: truncate %s to %d: %w", c.partial, offset, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("transfer: seek %s to %d: %w", c.partial, offset, err)
	}
	// A remote source read from byte 0 is hashed as it streams, which saves reading
	// it again. A local source is re-read after the copy: that is cheap and also
	// catches a source that changed underneath.
	var stream hash.Hash
	if offset == 0 && c.src.Remote() && c.opt.ExpectedSHA256 == "" {
		stream = sha256.New()
	}

	res := Result{ResumedFrom: offset}
	pos := offset
	buf := make([]byte, MaxChunk)
	for {
		if err := cctx.Err(); err != nil {
			c.progress.force(pos)
			return res, fmt.Errorf("transfer: copy to %s interrupted at byte %d: %w", c.partial, pos, context.Cause(cctx))
		}
		n, rerr := io.ReadFull(r, buf[:c.opt.Throttle.chunk()])
		if n > 0 {
			if err := c.opt.Throttle.wait(cctx, n); err != nil {
				c.progress.force(pos)
				return res, fmt.Errorf("transfer: copy to %s interrupted at byte %d: %w", c.partial, pos, err)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				c.progress.force(pos)
				return res, fmt.Errorf("transfer: write %s at byte %d: %w", c.partial, pos, err)
			}
			if stream != nil {
				stream.Write(buf[:n])
			}
			pos += int64(n)
			res.Copied += int64(n)
			if c.opt.OnCopy != nil {
				c.opt.OnCopy(n)
			}
			watchdog.Reset(c.opt.StallTimeout)
			c.progress.maybe(pos)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			c.progress.force(pos)
			return res, fmt.Errorf("transfer: read %s at byte %d: %w", c.src, pos, interrupted(cctx, rerr))
		}
	}
	if size >= 0 && pos != size {
		// Short: a dropped connection or a truncated file; long: a source that grew.
		// Either way the partial is kept and a retry resumes or re-verifies it.
		c.progress.force(pos)
		return res, fmt.Errorf("transfer: %s gave %d bytes, but its size was %d when the copy started", c.src, pos, size)
	}
	if c.opt.ExpectedSize > 0 && pos != c.opt.ExpectedSize {
		// Only reachable when the server did not say the size up front.
		return res, fmt.Errorf("%w: %s has %d bytes, expected %d", ErrSizeMismatch, c.src, pos, c.opt.ExpectedSize)
	}
	c.progress.force(pos)
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("transfer: fsync %s: %w", c.partial, err)
	}

	// Verify everything written, not just this call's bytes: a resume trusts the
	// partial file's first bytes, and only the whole-file hash shows they are right.
	tick := func(int64) { watchdog.Reset(c.opt.StallTimeout); c.progress.maybe(pos) }
	got, err := hashReader(cctx, io.NewSectionReader(f, 0, pos), nil, tick)
	if err != nil {
		return res, fmt.Errorf("transfer: hash %s: %w", c.partial, interrupted(cctx, err))
	}
	want := got
	if !c.opt.Live {
		if want, err = c.sourceHash(cctx, stream, tick); err != nil {
			return res, err
		}
	}
	if got != want {
		// Removed while still locked, so a concurrent attempt cannot adopt it.
		if err := os.Remove(c.partial); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("%w: %s has sha256 %s, source %s has %s; removing the partial file also failed: %v",
				ErrChecksumMismatch, c.partial, got, c.src, want, err)
		}
		return res, fmt.Errorf("%w: %d bytes written (resumed at byte %d) hash to %s, source %s hashes to %s; partial file removed, a retry starts from byte 0",
			ErrChecksumMismatch, pos, offset, got, c.src, want)
	}
	// Rename while still holding the lock, so no other attempt can open the partial
	// file between the check and the rename.
	if err := os.Rename(c.partial, c.dest); err != nil {
		return res, fmt.Errorf("transfer: rename %s to %s: %w", c.partial, c.dest, err)
	}
	if err := syncDir(filepath.Dir(c.dest)); err != nil {
		return res, err
	}
	res.Bytes, res.SHA256 = pos, got
	return res, nil
}

// alreadyComplete reports whether dest already holds the source's bytes; if so it
// removes any stale partial file.
func (c *copier) alreadyComplete(ctx context.Context) (Result, bool, error) {
	st, err := os.Stat(c.dest)
	if err != nil || !st.Mode().IsRegular() {
		return Result{}, false, nil
	}
	size, err := c.src.Size(ctx)
	if err != nil || size < 0 || size != st.Size() || (c.opt.ExpectedSize > 0 && size != c.opt.ExpectedSize) {
		// Let the copy report a missing or wrong source.
		return Result{}, false, nil
	}
	tick := func(int64) { c.progress.maybe(size) }
	f, err := os.Open(c.dest)
	if err != nil {
		return Result{}, false, fmt.Errorf("transfer: open %s: %w", c.dest, err)
	}
	defer f.Close()
	got, err := hashReader(ctx, f, nil, tick)
	if err != nil {
		return Result{}, false, fmt.Errorf("transfer: hash %s: %w", c.dest, err)
	}
	// A live source has moved on since; the earlier copy is what the bulk copy makes,
	// and the cutover brings it up to date.
	if !c.opt.Live {
		want, err := c.sourceHash(ctx, nil, tick)
		if err != nil || got != want {
			return Result{}, false, err
		}
	}
	if err := os.Remove(c.partial); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Result{}, false, fmt.Errorf("transfer: remove stale %s: %w", c.partial, err)
	}
	c.progress.force(size)
	return Result{Bytes: size, SHA256: got, AlreadyComplete: true}, true, nil
}

// sourceHash returns the source's checksum: the known one, the one hashed while
// streaming, or one computed by reading the source again (paced if remote).
func (c *copier) sourceHash(ctx context.Context, stream hash.Hash, tick func(int64)) (string, error) {
	switch {
	case c.opt.ExpectedSHA256 != "":
		return c.opt.ExpectedSHA256, nil
	case stream != nil:
		return hex.EncodeToString(stream.Sum(nil)), nil
	}
	r, start, _, err := c.src.Open(ctx, 0)
	if err != nil {
		return "", fmt.Errorf("transfer: reopen %s to verify: %w", c.src, interrupted(ctx, err))
	}
	defer r.Close()
	if start != 0 {
		return "", fmt.Errorf("transfer: reopen %s to verify: started at %d", c.src, start)
	}
	var throttle *Throttle
	if c.src.Remote() {
		throttle = c.opt.Throttle
	}
	sum, err := hashReader(ctx, r, throttle, tick)
	if err != nil {
		return "", fmt.Errorf("transfer: hash %s: %w", c.src, interrupted(ctx, err))
	}
	return sum, nil
}

// interrupted prefers the context's cause (a cancellation or a stall) to the error it
// provoked further down.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			return fmt.Errorf("%w (%v)", cause, err)
		}
	}
	return err
}

// hashReader returns the hex SHA-256 of r, paced by throttle if not nil, calling tick
// with the running count after every chunk.
func hashReader(ctx context.Context, r io.Reader, throttle *Throttle, tick func(int64)) (string, error) {
	h := sha256.New()
	buf := make([]byte, MaxChunk)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return "", context.Cause(ctx)
		}
		n, err := io.ReadFull(r, buf[:throttle.chunk()])
		if n > 0 {
			if err := throttle.wait(ctx, n); err != nil {
				return "", err
			}
			h.Write(buf[:n])
			total += int64(n)
			tick(total)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("transfer: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("transfer: fsync %s: %w", dir, err)
	}
	return nil
}

// progress rate-limits the caller's progress callback.
type progress struct {
	fn    func(int64)
	every time.Duration
	last  time.Time
}

func (p *progress) maybe(offset int64) {
	if p.fn == nil {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.fn(offset)
	}
}

func (p *progress) force(offset int64) {
	if p.fn == nil {
		return
	}
	p.last = time.Now()
	p.fn(offset)
}
