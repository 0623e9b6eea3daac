// Package objectstore is the provider's cloud storage that connectors write disk
// images to: an S3-compatible object store (AWS S3, or the SeaweedFS gateway the tests
// and the compose stack run). A disk goes up as a multipart upload whose parts the
// store checks against their SHA-256; the upload and its parts live in the store
// itself, so whichever connector takes a copy over finds them and goes on from the
// last whole part. Each connector writes with credentials of its own, scoped to its
// own prefix (Credentials).
package objectstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// PartSize is the size of every part of an upload but the last: large enough that a
// 100 GiB disk fits S3's 10,000 parts (at 16 MiB, 156 GiB), small enough that a
// connector killed mid-part loses little and holds little in memory.
const PartSize = 16 << 20

// MaxParts is S3's limit on the parts of one upload.
const MaxParts = 10_000

// Config says where the store is and who writes to it.
type Config struct {
	// Endpoint is the store's URL, such as http://127.0.0.1:8333; empty means AWS's.
	Endpoint string
	// Region defaults to us-east-1.
	Region string
	Bucket string
	// AccessKey and SecretKey are the writer's credentials.
	AccessKey, SecretKey string
}

// Validate names the first field that is missing or malformed.
func (c Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("objectstore: bucket is required")
	case c.AccessKey == "" || c.SecretKey == "":
		return errors.New("objectstore: an access key and a secret key are required")
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("objectstore: endpoint must be an http or https URL such as http://127.0.0.1:8333, got %q", c.Endpoint)
		}
	}
	return nil
}

func (c Config) region() string { return cmp.Or(c.Region, "us-east-1") }

func (c Config) credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, "")
}

// Store is one bucket of the object store, as one writer sees it.
type Store struct {
	Client *s3.Client
	Bucket string
}

// New connects to the store. It sends nothing until it is used.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{Client: s3.New(s3.Options{
		Region:      cfg.region(),
		Credentials: cfg.credentials(),
		// An S3-compatible store serves its buckets as paths, not as host names.
		UsePathStyle: cfg.Endpoint != "",
		BaseEndpoint: nilIfEmpty(cfg.Endpoint),
		// PMO sends each part's SHA-256 itself; the SDK's own checksums (CRC32 in a
		// streamed trailer by default) would be a second, weaker one that not every
		// S3-compatible store takes.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}), Bucket: cfg.Bucket}, nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// EnsureBucket makes the bucket unless it exists.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.Bucket})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("objectstore: create bucket %s: %w", s.Bucket, err)
	}
	return nil
}

// Part is one uploaded part: its number (from 1), size and the SHA-256 the store
// checked it against, base64 as S3 gives it.
type Part struct {
	Number int32
	Size   int64
	ETag   string
	SHA256 string
}

// Upload is a multipart upload under way.
type Upload struct {
	Key string
	ID  string
}

// FindUpload returns the newest unfinished upload of key, if there is one: where a
// connector that died left it.
func (s *Store) FindUpload(ctx context.Context, key string) (Upload, bool, error) {
	var newest types.MultipartUpload
	in := &s3.ListMultipartUploadsInput{Bucket: &s.Bucket, Prefix: &key}
	for {
		out, err := s.Client.ListMultipartUploads(ctx, in)
		if err != nil {
			return Upload{}, false, fmt.Errorf("objectstore: list uploads of %s: %w", key, err)
		}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) == key && (newest.UploadId == nil || aws.ToTime(u.Initiated).After(aws.ToTime(newest.Initiated))) {
				newest = u
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	if newest.UploadId == nil {
		return Upload{}, false, nil
	}
	return Upload{Key: key, ID: aws.ToString(newest.UploadId)}, true, nil
}

// StartUpload begins a multipart upload of key whose parts are checked against their
// SHA-256.
func (s *Store) StartUpload(ctx context.Context, key string) (Upload, error) {
	out, err := s.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.Bucket, Key: &key,
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if err != nil {
		return Upload{}, fmt.Errorf("objectstore: start upload of %s: %w", key, err)
	}
	return Upload{Key: key, ID: aws.ToString(out.UploadId)}, nil
}

// Parts lists the upload's parts in order.
func (s *Store) Parts(ctx context.Context, u Upload) ([]Part, error) {
	var parts []Part
	in := &s3.ListPartsInput{Bucket: &s.Bucket, Key: &u.Key, UploadId: &u.ID}
	for {
		out, err := s.Client.ListParts(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("objectstore: list parts of %s: %w", u.Key, err)
		}
		for _, p := range out.Parts {
			parts = append(parts, Part{Number: aws.ToInt32(p.PartNumber), Size: aws.ToInt64(p.Size),
				ETag: aws.ToString(p.ETag), SHA256: aws.ToString(p.ChecksumSHA256)})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.PartNumberMarker = out.NextPartNumberMarker
	}
	slices.SortFunc(parts, func(a, b Part) int { return cmp.Compare(a.Number, b.Number) })
	return parts, nil
}

// Matches says whether the part holds b, whose SHA-256 (PartSHA256) is sum: by its
// SHA-256 where the store listed it (AWS does), else by its ETag, which S3 stores make
// the MD5 of an unencrypted part's bytes (SeaweedFS lists no checksums).
func (p Part) Matches(b []byte, sum string) bool {
	if int64(len(b)) != p.Size {
		return false
	}
	if p.SHA256 != "" {
		return p.SHA256 == sum
	}
	md := md5.Sum(b)
	return strings.Trim(p.ETag, `"`) == hex.EncodeToString(md[:])
}

// PartSHA256 is the SHA-256 of b as S3 takes it: base64.
func PartSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// PutPart uploads part n of the upload. The store refuses bytes that do not hash to
// the SHA-256 sent with them, so a part it keeps is the part that was read. sending,
// if not nil, is called as the part's bytes are read to be sent, so that a caller can
// show it is alive while a part crosses a slow link.
func (s *Store) PutPart(ctx context.Context, u Upload, n int32, b []byte, sending func()) (Part, error) {
	sum := PartSHA256(b)
	out, err := s.Client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.Bucket, Key: &u.Key, UploadId: &u.ID,
		PartNumber: &n, Body: &sendReader{Reader: bytes.NewReader(b), sending: sending}, ContentLength: aws.Int64(int64(len(b))),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: &sum})
	if err != nil {
		return Part{}, fmt.Errorf("objectstore: upload part %d of %s: %w", n, u.Key, err)
	}
	if got := aws.ToString(out.ChecksumSHA256); got != "" && got != sum {
		return Part{}, fmt.Errorf("%w: part %d of %s: the store computed %s, sent %s", ErrChecksumMismatch, n, u.Key, got, sum)
	}
	return Part{Number: n, Size: int64(len(b)), ETag: aws.ToString(out.ETag), SHA256: sum}, nil
}

// CopyPart makes part n of the upload from bytes [from, to) of the object src, inside
// the store: nothing crosses the link. sha256 is those bytes' SHA-256 (base64), which
// the caller knows from the object's manifest.
func (s *Store) CopyPart(ctx context.Context, u Upload, n int32, src string, from, to int64, sha256 string) (Part, error) {
	out, err := s.Client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &s.Bucket, Key: &u.Key, UploadId: &u.ID,
		PartNumber: &n, CopySource: aws.String(s.Bucket + "/" + escapeKey(src)),
		CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", from, to-1))})
	if err != nil {
		return Part{}, fmt.Errorf("objectstore: copy part %d of %s from %s: %w", n, u.Key, src, err)
	}
	var etag string
	if out.CopyPartResult != nil {
		etag = aws.ToString(out.CopyPartResult.ETag)
	}
	return Part{Number: n, Size: to - from, ETag: etag, SHA256: sha256}, nil
}

// escapeKey escapes each segment of a key for a copy source, keeping its slashes.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// sendReader calls sending on every read of a part's body. It stays seekable, as
// the SDK needs to sign the body and to send it again on a retry.
type sendReader struct {
	*bytes.Reader
	sending func()
}

func (r *sendReader) Read(p []byte) (int, error) {
	if r.sending != nil {
		r.sending()
	}
	return r.Reader.Read(p)
}

// Complete joins the parts into the object.
func (s *Store) Complete(ctx context.Context, u Upload, parts []Part) error {
	done := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		done[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag), ChecksumSHA256: nilIfEmpty(p.SHA256)}
	}
	_, err := s.Client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.Bucket, Key: &u.Key, UploadId: &u.ID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		return fmt.Errorf("objectstore: complete upload of %s: %w", u.Key, err)
	}
	return nil
}

// Abort drops the upload and its parts.
func (s *Store) Abort(ctx context.Context, u Upload) error {
	_, err := s.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.Bucket, Key: &u.Key, UploadId: &u.ID})
	if err != nil && !notFound(err) {
		return fmt.Errorf("objectstore: abort upload of %s: %w", u.Key, err)
	}
	return nil
}

// ErrChecksumMismatch says that what the store holds is not what was sent.
var ErrChecksumMismatch = errors.New("objectstore: checksum mismatch")

// Size returns the object's size, and false when there is no such object.
func (s *Store) Size(ctx context.Context, key string) (int64, bool, error) {
	out, err := s.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key})
	if notFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("objectstore: head %s: %w", key, err)
	}
	return aws.ToInt64(out.ContentLength), true, nil
}

// SHA256 reads the object back and returns its SHA-256 (hex) and size, calling tick
// with the running count as it reads.
func (s *Store) SHA256(ctx context.Context, key string, tick func(int64)) (string, int64, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return "", 0, fmt.Errorf("objectstore: read %s: %w", key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		k, err := out.Body.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if tick != nil && k > 0 {
			tick(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", n, fmt.Errorf("objectstore: read %s at byte %d: %w", key, n, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Put writes a small object whole.
func (s *Store) Put(ctx context.Context, key string, b []byte) error {
	sum := PartSHA256(b)
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(b),
		ContentLength: aws.Int64(int64(len(b))), ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: &sum})
	if err != nil {
		return fmt.Errorf("objectstore: put %s: %w", key, err)
	}
	return nil
}

// Get reads a small object whole, and reports false when there is none.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if notFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("objectstore: get %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, false, fmt.Errorf("objectstore: get %s: %w", key, err)
	}
	return b, true, nil
}

// Delete removes the object; a missing one is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil && !notFound(err) {
		return fmt.Errorf("objectstore: delete %s: %w", key, err)
	}
	return nil
}

// notFound says the store answered that the object, upload or bucket is not there.
func notFound(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NotFound", "NoSuchKey", "NoSuchUpload", "NoSuchBucket":
			return true
		}
	}
	return false
}

// Denied says the store refused the credentials: unknown (revoked or replaced), or
// not allowed what was asked.
func Denied(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return true
	}
	return false
}
