package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/pmo-dev/pmo/sources"
)

// DeltaSuffix names the journal of changed blocks that Sync collects before it
// applies them.
const DeltaSuffix = ".delta"

// DefaultBlockSize is the block Sync compares by checksum.
const DefaultBlockSize = 64 << 10

// SyncOptions tune one Sync. The zero value uses DefaultBlockSize and no limit.
type SyncOptions struct {
	// BlockSize is the unit compared and copied; DefaultBlockSize if zero.
	BlockSize int
	// Throttle paces the changed blocks sent over the link; reading the source, which
	// the connector has at hand, is not paced.
	Throttle *Throttle
	// Progress receives the source offset compared so far, at most every
	// ProgressInterval.
	Progress func(offset int64)
	// ProgressInterval defaults to DefaultProgressInterval.
	ProgressInterval time.Duration
	// OnCopy, if set, is called with the size of every changed block sent.
	OnCopy func(n int)
	// OnRead, if set, is called with the duration of every read from the source
	// that returned data, for latency metrics.
	OnRead func(d time.Duration)
	// HTTPClient fetches http(s) sources; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Sources is as Options.Sources.
	Sources *sources.List
}

// SyncResult describes a finished Sync.
type SyncResult struct {
	Blocks        int
	ChangedBlocks int
	BytesCopied   int64
	SHA256        string
	Duration      time.Duration
}

// Sync brings an earlier copy dest up to date with src by copying only the blocks
// that changed since: the cutover's final delta sync. It computes the SHA-256 of each
// of dest's blocks (what the provider's side holds), streams the source, hashing each
// block and the whole, and collects the blocks whose checksums differ in a journal,
// "<dest>.delta", paced by the throttle: this is the part that crosses the link and
// that the downtime timer bounds. Only then does it write the journal's blocks into
// dest and verify dest against the source's SHA-256.
//
// Cancelled before the journal is complete, Sync removes it and leaves dest as it was:
// that is the cutover's rollback. Once it starts writing, it finishes, so that dest is
// never left half-updated by a cancel; a crash there is repaired by running Sync
// again. A source that changes while Sync reads it fails the final check with
// ErrChecksumMismatch: the source must be quiescent (the VM stopped) during cutover.
func Sync(ctx context.Context, src, dest string, opt SyncOptions) (SyncResult, error) {
	began := time.Now()
	if opt.BlockSize <= 0 {
		opt.BlockSize = DefaultBlockSize
	}
	if opt.ProgressInterval <= 0 {
		opt.ProgressInterval = DefaultProgressInterval
	}
	s, err := openSource(src, opt.Sources, opt.HTTPClient, opt.OnRead)
	if err != nil {
		return SyncResult{}, err
	}
	have, err := blockSums(dest, opt.BlockSize)
	if err != nil {
		return SyncResult{}, err
	}
	journal := dest + DeltaSuffix
	res, err := collect(ctx, s, journal, have, opt)
	if err != nil {
		os.Remove(journal)
		res.Duration = time.Since(began)
		return res, err
	}
	// From here on there is no going back: apply the whole journal, then check.
	if err := apply(journal, dest, opt.BlockSize); err != nil {
		return res, err
	}
	os.Remove(journal)
	got, err := FileSHA256(dest)
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(began)
	if got != res.SHA256 {
		return res, fmt.Errorf("%w: %s after the delta sync is %s, the source read as %s (did it change during cutover?)",
			ErrChecksumMismatch, dest, got, res.SHA256)
	}
	return res, nil
}

// blockSums returns the SHA-256 of every block of path.
func blockSums(path string, block int) ([][sha256.Size]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("transfer: sync needs the earlier copy: %w", err)
	}
	defer f.Close()
	var sums [][sha256.Size]byte
	buf := make([]byte, block)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			sums = append(sums, sha256.Sum256(buf[:n]))
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return sums, nil
		}
		if err != nil {
			return nil, fmt.Errorf("transfer: read %s: %w", path, err)
		}
	}
}

// collect streams the source and writes the blocks whose checksums differ from have to
// the journal: each entry is the block's index (8 bytes, big-endian), its length
// (4 bytes) and its data.
func collect(ctx context.Context, s source, journal string, have [][sha256.Size]byte, opt SyncOptions) (SyncResult, error) {
	var res SyncResult
	r, start, _, err := s.Open(ctx, 0)
	if err != nil {
		return res, err
	}
	defer r.Close()
	if start != 0 {
		return res, fmt.Errorf("%w: %s did not start at byte 0", ErrBadSource, s)
	}
	j, err := os.OpenFile(journal, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return res, fmt.Errorf("transfer: journal: %w", err)
	}
	defer j.Close()
	whole := sha256.New()
	p := progress{fn: opt.Progress, every: opt.ProgressInterval, last: time.Now()}
	buf := make([]byte, opt.BlockSize)
	var head [12]byte
	var offset int64
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("transfer: sync interrupted at byte %d: %w", offset, context.Cause(ctx))
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			whole.Write(buf[:n])
			res.Blocks++
			if sum := sha256.Sum256(buf[:n]); i >= len(have) || !bytes.Equal(sum[:], have[i][:]) {
				if err := opt.Throttle.wait(ctx, n); err != nil {
					return res, fmt.Errorf("transfer: sync interrupted at byte %d: %w", offset, err)
				}
				binary.BigEndian.PutUint64(head[:8], uint64(i))
				binary.BigEndian.PutUint32(head[8:], uint32(n))
				if _, err := j.Write(head[:]); err != nil {
					return res, fmt.Errorf("transfer: journal: %w", err)
				}
				if _, err := j.Write(buf[:n]); err != nil {
					return res, fmt.Errorf("transfer: journal: %w", err)
				}
				res.ChangedBlocks++
				res.BytesCopied += int64(n)
				if opt.OnCopy != nil {
					opt.OnCopy(n)
				}
			}
			offset += int64(n)
			p.maybe(offset)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return res, fmt.Errorf("transfer: read %s at byte %d: %w", s, offset, rerr)
		}
	}
	if res.Blocks < len(have) {
		return res, fmt.Errorf("%w: the source has %d blocks, the copy %d; a disk does not shrink", ErrSizeMismatch, res.Blocks, len(have))
	}
	if err := j.Sync(); err != nil {
		return res, fmt.Errorf("transfer: journal: %w", err)
	}
	res.SHA256 = hex.EncodeToString(whole.Sum(nil))
	p.force(offset)
	return res, nil
}

// apply writes the journal's blocks into dest, in place.
func apply(journal, dest string, block int) error {
	j, err := os.Open(journal)
	if err != nil {
		return fmt.Errorf("transfer: journal: %w", err)
	}
	defer j.Close()
	f, err := os.OpenFile(dest, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("transfer: apply delta: %w", err)
	}
	defer f.Close()
	var head [12]byte
	buf := make([]byte, block)
	for {
		if _, err := io.ReadFull(j, head[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("transfer: journal: %w", err)
		}
		i, n := int64(binary.BigEndian.Uint64(head[:8])), int(binary.BigEndian.Uint32(head[8:]))
		if _, err := io.ReadFull(j, buf[:n]); err != nil {
			return fmt.Errorf("transfer: journal: %w", err)
		}
		if _, err := f.WriteAt(buf[:n], i*int64(block)); err != nil {
			return fmt.Errorf("transfer: apply delta to %s: %w", dest, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("transfer: apply delta to %s: %w", dest, err)
	}
	return nil
}

// FileSHA256 is the SHA-256 of a file, in hex.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
