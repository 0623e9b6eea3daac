package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/pmo-dev/pmo/objectstore"
)

// ManifestSuffix names the object beside a verified copy that says what it holds (a
// Manifest): a repeated Upload finds the copy done without reading it back, and the
// cutover's SyncObject finds which parts changed.
const ManifestSuffix = ".manifest.json"

// Manifest is what a verified copy in the object store holds.
type Manifest struct {
	Size int64 `json:"size"`
	// SHA256 is the whole object's, in hex.
	SHA256   string `json:"sha256"`
	PartSize int64  `json:"part_size"`
	// Parts are each part's SHA-256, base64 as S3 gives it, in order.
	Parts []string `json:"parts"`
}

// readManifest returns the manifest kept beside key, and false when there is none or
// it cannot be read (the copy is then treated as unverified).
func readManifest(ctx context.Context, store *objectstore.Store, key string) (Manifest, bool, error) {
	b, ok, err := store.Get(ctx, key+ManifestSuffix)
	if err != nil || !ok {
		return Manifest{}, false, err
	}
	var m Manifest
	if json.Unmarshal(b, &m) != nil || m.PartSize <= 0 {
		return Manifest{}, false, nil
	}
	return m, true, nil
}

// writeManifest keeps the manifest of a verified copy beside it.
func writeManifest(ctx context.Context, store *objectstore.Store, key string, m Manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return store.Put(ctx, key+ManifestSuffix, b)
}

// partSums is the parts' SHA-256s, for a manifest.
func partSums(parts []objectstore.Part) []string {
	sums := make([]string, len(parts))
	for i, p := range parts {
		sums[i] = p.SHA256
	}
	return sums
}

// Upload copies src to the object key of store as a multipart upload, resumable part
// by part: it finds the upload an earlier attempt left (this connector's or a dead
// one's), keeps each whole part that still matches the source, and sends the rest.
// The store checks every part against its SHA-256. The copy counts as done only once
// the object, read back from the store, hashes to what was read from the source; then
// its manifest is kept beside it (ManifestSuffix). Options.Offset is not used: the
// parts in the store say where to go on.
func Upload(ctx context.Context, src string, store *objectstore.Store, key string, opt Options) (Result, error) {
	began := time.Now()
	opt = opt.withDefaults()
	s, err := openSource(src, opt.Sources, opt.HTTPClient, opt.OnRead)
	if err != nil {
		return Result{}, err
	}
	u := &uploader{src: s, store: store, key: key, opt: opt,
		progress: progress{fn: opt.Progress, every: opt.ProgressInterval, last: began}}
	res, err := u.run(ctx)
	res.Duration = time.Since(began)
	return res, err
}

type uploader struct {
	src      source
	store    *objectstore.Store
	key      string
	opt      Options
	progress progress
}

func (u *uploader) run(ctx context.Context) (Result, error) {
	size, err := knownSize(ctx, u.src)
	if err != nil {
		return Result{}, err
	}
	if u.opt.ExpectedSize > 0 && size != u.opt.ExpectedSize {
		return Result{}, fmt.Errorf("%w: %s has %d bytes, expected %d", ErrSizeMismatch, u.src, size, u.opt.ExpectedSize)
	}
	if parts := (size + objectstore.PartSize - 1) / objectstore.PartSize; parts > objectstore.MaxParts {
		return Result{}, fmt.Errorf("%w: %s has %d bytes, more than %d parts of %d", ErrBadSource, u.src, size, objectstore.MaxParts, objectstore.PartSize)
	}
	if res, done, err := u.alreadyComplete(ctx, size); err != nil || done {
		return res, err
	}

	// The watchdog cancels the copy when no byte moves for StallTimeout.
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(u.opt.StallTimeout, func() {
		cancel(fmt.Errorf("%w: no progress uploading %s for %s", ErrStalled, u.src, u.opt.StallTimeout))
	})
	defer watchdog.Stop()
	tick := func(pos int64) { watchdog.Reset(u.opt.StallTimeout); u.progress.maybe(pos) }

	up, found, err := u.store.FindUpload(cctx, u.key)
	if err != nil {
		return Result{}, err
	}
	var have []objectstore.Part
	if found {
		if have, err = u.store.Parts(cctx, up); err != nil {
			return Result{}, err
		}
	} else if up, err = u.store.StartUpload(cctx, u.key); err != nil {
		return Result{}, err
	}

	// The source is read from its start: the parts kept are checked against it, and
	// the whole object's hash needs every byte.
	r, err := openFromStart(cctx, u.src)
	if err != nil {
		return Result{}, err
	}
	defer r.Close()
	whole := sha256.New()
	buf := make([]byte, objectstore.PartSize)
	var done []objectstore.Part
	var pos int64
	res := Result{}
	for n := int32(1); pos < size; n++ {
		want := min(objectstore.PartSize, size-pos)
		// A kept part is read at full speed: it does not cross the link again.
		kept := keptPart(have, n, want)
		throttle := u.opt.Throttle
		if kept != nil {
			throttle = nil
		}
		if err := readPart(cctx, u.src, r, buf[:want], whole, throttle, func(k int64) { tick(pos + k) }); err != nil {
			u.progress.force(pos)
			return res, fmt.Errorf("transfer: upload to %s: %w", u.key, err)
		}
		part := buf[:want]
		if kept != nil {
			if sum := objectstore.PartSHA256(part); kept.Matches(part, sum) {
				k := *kept
				k.SHA256 = sum // for the manifest, where the listing left it out
				done = append(done, k)
				pos += want
				res.ResumedFrom = pos
				tick(pos)
				continue
			}
		}
		have = nil // a part that differs ends the run of kept ones
		p, err := u.store.PutPart(cctx, up, n, part, func() { tick(pos) })
		if err != nil {
			u.progress.force(pos)
			return res, fmt.Errorf("transfer: upload to %s interrupted at byte %d: %w", u.key, pos, interrupted(cctx, err))
		}
		done = append(done, p)
		pos += want
		res.Copied += want
		if u.opt.OnCopy != nil {
			u.opt.OnCopy(int(want))
		}
		tick(pos)
	}
	u.progress.force(pos)
	if err := u.store.Complete(cctx, up, done); err != nil {
		return res, interrupted(cctx, err)
	}

	sent := hex.EncodeToString(whole.Sum(nil))
	got, n, err := u.store.SHA256(cctx, u.key, func(int64) { tick(pos) })
	if err != nil {
		return res, interrupted(cctx, err)
	}
	if got != sent || n != size {
		// A retry starts afresh rather than trust any of it.
		if err := u.store.Delete(ctx, u.key); err != nil {
			return res, fmt.Errorf("%w: %s holds %d bytes hashing to %s, %d read from %s hash to %s; deleting it also failed: %v",
				ErrChecksumMismatch, u.key, n, got, size, u.src, sent, err)
		}
		return res, fmt.Errorf("%w: %s holds %d bytes hashing to %s, %d read from %s hash to %s; deleted, a retry starts from byte 0",
			ErrChecksumMismatch, u.key, n, got, size, u.src, sent)
	}
	if !u.opt.Live && u.opt.ExpectedSHA256 != "" && sent != u.opt.ExpectedSHA256 {
		return res, fmt.Errorf("%w: %s hashes to %s, expected %s", ErrChecksumMismatch, u.src, sent, u.opt.ExpectedSHA256)
	}
	m := Manifest{Size: size, SHA256: sent, PartSize: objectstore.PartSize, Parts: partSums(done)}
	if err := writeManifest(cctx, u.store, u.key, m); err != nil {
		return res, interrupted(cctx, err)
	}
	res.Bytes, res.SHA256 = size, sent
	return res, nil
}

// keptPart is part n of an earlier attempt if it has the size that part must have.
func keptPart(have []objectstore.Part, n int32, size int64) *objectstore.Part {
	for i := range have {
		if have[i].Number == n && have[i].Size == size {
			return &have[i]
		}
	}
	return nil
}

// readPart fills b from src's reader r, adding every byte to whole and calling tick
// with the count read so far, paced by throttle (nil: at full speed).
func readPart(ctx context.Context, src source, r io.Reader, b []byte, whole hash.Hash, throttle *Throttle, tick func(int64)) error {
	var got int64
	for got < int64(len(b)) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("transfer: read %s interrupted: %w", src, context.Cause(ctx))
		}
		end := min(got+int64(throttle.chunk()), int64(len(b)))
		if err := throttle.wait(ctx, int(end-got)); err != nil {
			return fmt.Errorf("transfer: read %s interrupted: %w", src, err)
		}
		k, err := io.ReadFull(r, b[got:end])
		whole.Write(b[got : got+int64(k)])
		got += int64(k)
		tick(got)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("transfer: %s ended %d bytes into a part of %d, before the size it gave", src, got, len(b))
			}
			return fmt.Errorf("transfer: read %s: %w", src, interrupted(ctx, err))
		}
	}
	return nil
}

// knownSize is the source's size, which a multipart upload needs up front.
func knownSize(ctx context.Context, s source) (int64, error) {
	size, err := s.Size(ctx)
	if err == nil && size < 0 {
		err = fmt.Errorf("%w: %s does not say its size, which a multipart upload needs", ErrBadSource, s)
	}
	return size, err
}

// openFromStart opens the source at byte 0: an upload hashes the whole source.
func openFromStart(ctx context.Context, s source) (io.ReadCloser, error) {
	r, start, _, err := s.Open(ctx, 0)
	if err != nil {
		return nil, interrupted(ctx, err)
	}
	if start != 0 {
		r.Close()
		return nil, fmt.Errorf("transfer: %s opened at byte %d, not 0", s, start)
	}
	return r, nil
}

// alreadyComplete reports whether the object is there, verified by an earlier attempt
// (its manifest kept beside it), and still the source's bytes; if so it drops any
// upload left behind.
func (u *uploader) alreadyComplete(ctx context.Context, size int64) (Result, bool, error) {
	m, ok, err := readManifest(ctx, u.store, u.key)
	if err != nil || !ok || m.Size != size {
		return Result{}, false, err
	}
	n, ok, err := u.store.Size(ctx, u.key)
	if err != nil || !ok || n != size {
		return Result{}, false, err
	}
	kept := m.SHA256
	// A live source has moved on since; the cutover brings the copy up to date.
	if !u.opt.Live {
		want := u.opt.ExpectedSHA256
		if want == "" {
			r, _, _, err := u.src.Open(ctx, 0)
			if err != nil {
				return Result{}, false, err
			}
			defer r.Close()
			if want, err = hashReader(ctx, r, nil, func(int64) { u.progress.maybe(0) }); err != nil {
				return Result{}, false, fmt.Errorf("transfer: hash %s: %w", u.src, err)
			}
		}
		if want != kept {
			return Result{}, false, nil
		}
	}
	if up, found, err := u.store.FindUpload(ctx, u.key); err != nil {
		return Result{}, false, err
	} else if found {
		if err := u.store.Abort(ctx, up); err != nil {
			return Result{}, false, err
		}
	}
	u.progress.force(size)
	return Result{Bytes: size, SHA256: kept, AlreadyComplete: true}, true, nil
}
