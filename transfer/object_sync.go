package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/pmo-dev/pmo/objectstore"
)

// SyncObject is Sync for a copy in the object store, the cutover's final delta sync:
// it uploads the object anew, part by part, copying inside the store each part that
// the manifest says it already holds and sending only the parts that changed, paced
// by the throttle. The object is replaced only when the new upload completes, and is
// verified by reading it back, so a cancel before that leaves the copy as it was (the
// cutover's rollback): the unfinished upload is dropped. A copy without a manifest is
// not verified, and SyncObject refuses it.
func SyncObject(ctx context.Context, src string, store *objectstore.Store, key string, opt SyncOptions) (SyncResult, error) {
	began := time.Now()
	if opt.ProgressInterval <= 0 {
		opt.ProgressInterval = DefaultProgressInterval
	}
	s, err := openSource(src, opt.Sources, opt.HTTPClient, opt.OnRead)
	if err != nil {
		return SyncResult{}, err
	}
	m, ok, err := readManifest(ctx, store, key)
	if err != nil {
		return SyncResult{}, err
	}
	if !ok {
		return SyncResult{}, fmt.Errorf("transfer: %s has no manifest: the bulk copy did not finish", key)
	}
	// An upload left by a cutover that was rolled back starts over.
	if old, found, err := store.FindUpload(ctx, key); err != nil {
		return SyncResult{}, err
	} else if found {
		if err := store.Abort(ctx, old); err != nil {
			return SyncResult{}, err
		}
	}
	size, err := knownSize(ctx, s)
	if err != nil {
		return SyncResult{}, err
	}
	up, err := store.StartUpload(ctx, key)
	if err != nil {
		return SyncResult{}, err
	}
	res, m2, err := syncParts(ctx, s, store, up, m, size, opt)
	res.Duration = time.Since(began)
	if err != nil {
		// The object is as it was; the parts sent so far go with the upload.
		_ = store.Abort(context.WithoutCancel(ctx), up)
		return res, err
	}
	if err := writeManifest(ctx, store, key, m2); err != nil {
		return res, err
	}
	return res, nil
}

// syncParts uploads the parts of the new copy, completes it and verifies it.
func syncParts(ctx context.Context, s source, store *objectstore.Store, up objectstore.Upload, m Manifest, size int64,
	opt SyncOptions) (SyncResult, Manifest, error) {
	r, err := openFromStart(ctx, s)
	if err != nil {
		return SyncResult{}, Manifest{}, err
	}
	defer r.Close()
	prog := progress{fn: opt.Progress, every: opt.ProgressInterval, last: time.Now()}
	whole := sha256.New()
	buf := make([]byte, m.PartSize)
	var res SyncResult
	var done []objectstore.Part
	var pos int64
	for n := int32(1); pos < size; n++ {
		want := min(m.PartSize, size-pos)
		i := int(n) - 1
		// Reading the source is not paced: the connector has it at hand.
		if err := readPart(ctx, s, r, buf[:want], whole, nil, func(k int64) { prog.maybe(pos + k) }); err != nil {
			return res, Manifest{}, err
		}
		sum := objectstore.PartSHA256(buf[:want])
		res.Blocks++
		var p objectstore.Part
		if i < len(m.Parts) && m.Parts[i] == sum && pos+want <= m.Size {
			p, err = store.CopyPart(ctx, up, n, up.Key, pos, pos+want, sum)
		} else {
			// A changed part crosses the link, paced like any copy.
			if err = opt.Throttle.waitAll(ctx, int(want)); err == nil {
				p, err = store.PutPart(ctx, up, n, buf[:want], func() { prog.maybe(pos) })
			}
			res.ChangedBlocks++
			res.BytesCopied += want
			if err == nil && opt.OnCopy != nil {
				opt.OnCopy(int(want))
			}
		}
		if err != nil {
			return res, Manifest{}, interrupted(ctx, err)
		}
		done = append(done, p)
		pos += want
		prog.maybe(pos)
	}
	res.SHA256 = hex.EncodeToString(whole.Sum(nil))
	if err := store.Complete(ctx, up, done); err != nil {
		return res, Manifest{}, interrupted(ctx, err)
	}
	got, n, err := store.SHA256(context.WithoutCancel(ctx), up.Key, nil)
	if err != nil {
		return res, Manifest{}, err
	}
	if got != res.SHA256 || n != size {
		return res, Manifest{}, fmt.Errorf("%w: %s after the delta sync holds %d bytes hashing to %s, the source read as %s (did it change during cutover?)",
			ErrChecksumMismatch, up.Key, n, got, res.SHA256)
	}
	prog.force(pos)
	return res, Manifest{Size: size, SHA256: res.SHA256, PartSize: m.PartSize, Parts: partSums(done)}, nil
}
