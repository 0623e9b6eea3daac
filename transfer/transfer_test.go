package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/sources"
)

// disk writes n seeded pseudo-random bytes to a file and returns its path and content.
func disk(t *testing.T, n int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path, data
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// serve serves data over HTTP with http.ServeContent, which honours Range, and counts
// the requests that asked for a range.
func serve(t *testing.T, data []byte) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var ranged atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranged.Add(1)
		}
		http.ServeContent(w, r, "disk.img", time.Unix(1_700_000_000, 0), bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv, &ranged
}

func TestCopyLocalFileProducesIdenticalBytesAndHash(t *testing.T) {
	src, data := disk(t, 1<<20+123, 1)
	dest := filepath.Join(t.TempDir(), "sub", "vm.img")
	var last atomic.Int64
	var moved atomic.Int64
	res, err := Copy(context.Background(), src, dest, Options{
		Progress: func(off int64) { last.Store(off) },
		OnCopy:   func(n int) { moved.Add(int64(n)) },
	})
	require.NoError(t, err)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "destination differs from source")
	require.Equal(t, int64(len(data)), res.Bytes)
	require.Equal(t, int64(len(data)), res.Copied)
	require.Equal(t, sum(data), res.SHA256)
	require.Equal(t, int64(len(data)), last.Load(), "the last progress report is the full size")
	require.Equal(t, int64(len(data)), moved.Load())
	require.NoFileExists(t, dest+PartialSuffix)
	// A copy is a customer's disk: only the connector's user may read it.
	info, err := os.Stat(dest)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(filepath.Dir(dest))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
}

func TestCopyAcceptsFileURI(t *testing.T) {
	src, data := disk(t, 70_000, 2)
	dest := filepath.Join(t.TempDir(), "vm.img")
	res, err := Copy(context.Background(), "file://"+src, dest, Options{})
	require.NoError(t, err)
	require.Equal(t, sum(data), res.SHA256)
}

func TestCopyOfCompleteDestinationIsANoOp(t *testing.T) {
	src, data := disk(t, 300_000, 3)
	dest := filepath.Join(t.TempDir(), "vm.img")
	_, err := Copy(context.Background(), src, dest, Options{})
	require.NoError(t, err)
	// A stale partial from an earlier attempt is cleaned up by the no-op.
	require.NoError(t, os.WriteFile(dest+PartialSuffix, []byte("stale"), 0o644))

	res, err := Copy(context.Background(), src, dest, Options{Offset: 12345})
	require.NoError(t, err)
	require.True(t, res.AlreadyComplete)
	require.Zero(t, res.Copied)
	require.Equal(t, sum(data), res.SHA256)
	require.NoFileExists(t, dest+PartialSuffix)
}

func TestCopyReplacesADestinationWithOtherBytes(t *testing.T) {
	src, data := disk(t, 100_000, 4)
	dest := filepath.Join(t.TempDir(), "vm.img")
	require.NoError(t, os.WriteFile(dest, make([]byte, len(data)), 0o644))
	res, err := Copy(context.Background(), src, dest, Options{})
	require.NoError(t, err)
	require.False(t, res.AlreadyComplete)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

func TestResumeFromOffsetProducesIdenticalBytes(t *testing.T) {
	src, data := disk(t, 500_000, 5)
	dest := filepath.Join(t.TempDir(), "vm.img")
	const offset = 200_000
	// The partial holds the right first bytes and then garbage written after the last
	// reported offset, which the resume must cut off.
	partial := append(append([]byte{}, data[:offset]...), bytes.Repeat([]byte{0xAA}, 50_000)...)
	require.NoError(t, os.WriteFile(dest+PartialSuffix, partial, 0o644))

	res, err := Copy(context.Background(), src, dest, Options{Offset: offset})
	require.NoError(t, err)
	require.Equal(t, int64(offset), res.ResumedFrom)
	require.Equal(t, int64(len(data)-offset), res.Copied)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "resumed copy differs from source")
	require.Equal(t, sum(data), res.SHA256)
}

func TestResumeBeyondPartialFileStartsFromItsEnd(t *testing.T) {
	src, data := disk(t, 200_000, 6)
	dest := filepath.Join(t.TempDir(), "vm.img")
	require.NoError(t, os.WriteFile(dest+PartialSuffix, data[:1000], 0o644))
	res, err := Copy(context.Background(), src, dest, Options{Offset: 150_000})
	require.NoError(t, err)
	require.Equal(t, int64(1000), res.ResumedFrom)
	require.Equal(t, sum(data), res.SHA256)
}

func TestCorruptPartialIsDetectedAndRemoved(t *testing.T) {
	src, data := disk(t, 400_000, 7)
	dest := filepath.Join(t.TempDir(), "vm.img")
	const offset = 100_000
	bad := append([]byte{}, data[:offset]...)
	bad[5000] ^= 0xFF // one flipped byte before the resume offset
	require.NoError(t, os.WriteFile(dest+PartialSuffix, bad, 0o644))

	_, err := Copy(context.Background(), src, dest, Options{Offset: offset})
	require.ErrorIs(t, err, ErrChecksumMismatch)
	require.Contains(t, err.Error(), "retry starts from byte 0")
	require.NoFileExists(t, dest, "a corrupt copy must not become the destination")
	require.NoFileExists(t, dest+PartialSuffix, "the corrupt partial is removed")

	// The retry carries the same (stale) offset, but with no partial file it starts
	// from 0 and succeeds.
	res, err := Copy(context.Background(), src, dest, Options{Offset: offset})
	require.NoError(t, err)
	require.Zero(t, res.ResumedFrom)
	require.Equal(t, sum(data), res.SHA256)
}

func TestMissingSourceIsNotFound(t *testing.T) {
	_, err := Copy(context.Background(), filepath.Join(t.TempDir(), "nope.img"), filepath.Join(t.TempDir(), "vm.img"), Options{})
	require.ErrorIs(t, err, ErrNotFound)
}

func TestUnsupportedSchemeIsBadSource(t *testing.T) {
	_, err := Copy(context.Background(), "ftp://example.com/disk.img", filepath.Join(t.TempDir(), "vm.img"), Options{})
	require.ErrorIs(t, err, ErrBadSource)
}

func TestExpectedSizeIsChecked(t *testing.T) {
	src, data := disk(t, 10_000, 8)
	dest := filepath.Join(t.TempDir(), "vm.img")
	_, err := Copy(context.Background(), src, dest, Options{ExpectedSize: int64(len(data)) + 1})
	require.ErrorIs(t, err, ErrSizeMismatch)
	require.NoFileExists(t, dest)
}

func TestRateLimitPacesTheCopy(t *testing.T) {
	src, data := disk(t, 256<<10, 9)
	dest := filepath.Join(t.TempDir(), "vm.img")
	start := time.Now()
	res, err := Copy(context.Background(), src, dest, Options{Throttle: NewThrottle(128 << 10)})
	require.NoError(t, err)
	require.Equal(t, sum(data), res.SHA256)
	// 256 KiB at 128 KiB/s with at most a 64 KiB burst up front: at least 1.5 s.
	require.GreaterOrEqual(t, time.Since(start), 1500*time.Millisecond)
}

func TestOneThrottleIsSharedByConcurrentCopies(t *testing.T) {
	throttle := NewThrottle(128 << 10)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			src, data := disk(t, 128<<10, uint64(20+i))
			res, err := Copy(context.Background(), src, filepath.Join(t.TempDir(), "vm.img"), Options{Throttle: throttle})
			require.NoError(t, err)
			require.Equal(t, sum(data), res.SHA256)
		})
	}
	wg.Wait()
	// Together they move 256 KiB through one 128 KiB/s bucket: the same bound as one
	// copy of 256 KiB. Separate buckets would finish in about 0.5 s.
	require.GreaterOrEqual(t, time.Since(start), 1500*time.Millisecond)
}

func TestLimitChangeMidCopyTakesEffect(t *testing.T) {
	src, data := disk(t, 512<<10, 10)
	dest := filepath.Join(t.TempDir(), "vm.img")
	// At 64 KiB/s this copy would take about 7 s.
	throttle := NewThrottle(64 << 10)
	require.Equal(t, float64(64<<10), throttle.BytesPerSec())
	var at atomic.Int64
	go func() {
		time.Sleep(500 * time.Millisecond)
		throttle.SetBytesPerSec(64 << 20)
		at.Store(time.Now().UnixNano())
	}()
	start := time.Now()
	res, err := Copy(context.Background(), src, dest, Options{Throttle: throttle})
	require.NoError(t, err)
	require.Equal(t, sum(data), res.SHA256)
	elapsed := time.Since(start)
	require.NotZero(t, at.Load(), "the copy finished before the limit was raised")
	require.Less(t, elapsed, 4*time.Second, "raising the limit did not speed the copy up")
	require.Less(t, time.Since(time.Unix(0, at.Load())), 1500*time.Millisecond, "the new limit took more than a second to apply")

	// Lowering works too: after a drop to 64 KiB/s, 256 KiB more takes over 2 s.
	src2, _ := disk(t, 256<<10, 11)
	throttle.SetBytesPerSec(64 << 10)
	start = time.Now()
	_, err = Copy(context.Background(), src2, filepath.Join(t.TempDir(), "vm2.img"), Options{Throttle: throttle})
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second)
}

func TestUnlimitedThrottleReportsZero(t *testing.T) {
	th := NewThrottle(0)
	require.Zero(t, th.BytesPerSec())
	th.SetBytesPerSec(1 << 20)
	require.Equal(t, float64(1<<20), th.BytesPerSec())
	th.SetBytesPerSec(-1)
	require.Zero(t, th.BytesPerSec())
}

func TestCancellationStopsPromptlyAndKeepsThePartial(t *testing.T) {
	src, data := disk(t, 1<<20, 12)
	dest := filepath.Join(t.TempDir(), "vm.img")
	ctx, cancel := context.WithCancel(context.Background())
	var last atomic.Int64
	go func() {
		time.Sleep(700 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	_, err := Copy(ctx, src, dest, Options{Throttle: NewThrottle(256 << 10), Progress: func(o int64) { last.Store(o) }})
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 2*time.Second, "cancellation was not prompt")
	st, err := os.Stat(dest + PartialSuffix)
	require.NoError(t, err, "the partial file is kept for a resume")
	require.Positive(t, st.Size())
	require.Less(t, st.Size(), int64(len(data)))
	require.Equal(t, st.Size(), last.Load(), "the last progress report names the bytes on disk")
	require.NoFileExists(t, dest)

	// Resuming from the reported offset completes the copy.
	res, err := Copy(context.Background(), src, dest, Options{Offset: last.Load()})
	require.NoError(t, err)
	require.Equal(t, last.Load(), res.ResumedFrom)
	require.Equal(t, sum(data), res.SHA256)
}

func TestProgressIsReportedAboutEveryHalfSecond(t *testing.T) {
	src, _ := disk(t, 384<<10, 13)
	var mu sync.Mutex
	var calls []time.Time
	_, err := Copy(context.Background(), src, filepath.Join(t.TempDir(), "vm.img"), Options{
		Throttle: NewThrottle(256 << 10),
		Progress: func(int64) { mu.Lock(); calls = append(calls, time.Now()); mu.Unlock() },
	})
	require.NoError(t, err)
	// About 1.25 s of copying: a couple of periodic reports plus the final one.
	require.GreaterOrEqual(t, len(calls), 2)
	require.LessOrEqual(t, len(calls), 6)
	for i := 1; i < len(calls)-1; i++ {
		require.GreaterOrEqual(t, calls[i].Sub(calls[i-1]), 450*time.Millisecond, "reports come too often")
	}
}

func TestHTTPSourceCopiesAndResumesWithRange(t *testing.T) {
	_, data := disk(t, 600_000, 14)
	srv, ranged := serve(t, data)
	url := srv.URL + "/disk.img"

	dest := filepath.Join(t.TempDir(), "vm.img")
	res, err := Copy(context.Background(), url, dest, Options{ExpectedSize: int64(len(data))})
	require.NoError(t, err)
	require.Equal(t, sum(data), res.SHA256)
	require.Zero(t, ranged.Load(), "a copy from byte 0 needs no range")

	dest2 := filepath.Join(t.TempDir(), "vm.img")
	const offset = 250_000
	require.NoError(t, os.WriteFile(dest2+PartialSuffix, data[:offset], 0o644))
	res, err = Copy(context.Background(), url, dest2, Options{Offset: offset})
	require.NoError(t, err)
	require.Equal(t, int64(offset), res.ResumedFrom)
	require.Equal(t, int64(len(data)-offset), res.Copied)
	require.Equal(t, int64(1), ranged.Load(), "the resume asked for the rest with a Range request")
	got, err := os.ReadFile(dest2)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

func TestHTTPResumeAtTheEndOnlyVerifies(t *testing.T) {
	_, data := disk(t, 100_000, 15)
	srv, _ := serve(t, data)
	dest := filepath.Join(t.TempDir(), "vm.img")
	require.NoError(t, os.WriteFile(dest+PartialSuffix, data, 0o644))
	res, err := Copy(context.Background(), srv.URL, dest, Options{Offset: int64(len(data))})
	require.NoError(t, err)
	require.Zero(t, res.Copied)
	require.Equal(t, sum(data), res.SHA256)
}

func TestHTTPCorruptPartialIsDetected(t *testing.T) {
	_, data := disk(t, 300_000, 16)
	srv, _ := serve(t, data)
	dest := filepath.Join(t.TempDir(), "vm.img")
	bad := append([]byte{}, data[:150_000]...)
	bad[0] ^= 1
	require.NoError(t, os.WriteFile(dest+PartialSuffix, bad, 0o644))
	_, err := Copy(context.Background(), srv.URL, dest, Options{Offset: 150_000})
	require.ErrorIs(t, err, ErrChecksumMismatch)
	require.NoFileExists(t, dest+PartialSuffix)
}

func TestHTTPServerIgnoringRangeRestartsFromZero(t *testing.T) {
	_, data := disk(t, 200_000, 17)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(data) // 200 with the whole body, whatever the Range says
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "vm.img")
	require.NoError(t, os.WriteFile(dest+PartialSuffix, data[:50_000], 0o644))
	res, err := Copy(context.Background(), srv.URL, dest, Options{Offset: 50_000})
	require.NoError(t, err)
	require.Zero(t, res.ResumedFrom)
	require.Equal(t, sum(data), res.SHA256)
}

func TestHTTPNotFoundIsNotFound(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Copy(context.Background(), srv.URL+"/gone.img", filepath.Join(t.TempDir(), "vm.img"), Options{})
	require.ErrorIs(t, err, ErrNotFound)
}

func TestStalledSourceIsAborted(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		select { // then hang
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	dest := filepath.Join(t.TempDir(), "vm.img")
	_, err := Copy(context.Background(), srv.URL, dest, Options{StallTimeout: 300 * time.Millisecond})
	require.ErrorIs(t, err, ErrStalled)
	require.FileExists(t, dest+PartialSuffix)
}

func TestConcurrentCopiesToOneDestinationAreRefused(t *testing.T) {
	src, _ := disk(t, 256<<10, 18)
	dest := filepath.Join(t.TempDir(), "vm.img")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := Copy(ctx, src, dest, Options{Throttle: NewThrottle(64 << 10), ProgressInterval: time.Millisecond,
			Progress: func(int64) { once.Do(func() { close(started) }) }})
		done <- err
	}()
	<-started
	_, err := Copy(context.Background(), src, dest, Options{})
	require.ErrorIs(t, err, ErrBusy)
	cancel()
	require.True(t, errors.Is(<-done, context.Canceled))
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */1000", -1, 1000, true},
		{"bytes */*", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes x-2/3", 0, 0, false},
	} {
		start, total, ok := parseContentRange(tc.in)
		require.Equal(t, tc.ok, ok, tc.in)
		if ok {
			require.Equal(t, tc.start, start, tc.in)
			require.Equal(t, tc.total, total, tc.in)
		}
	}
}

func TestHTTPConnectionDroppedMidwayKeepsThePartialForAResume(t *testing.T) {
	_, data := disk(t, 300_000, 19)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// Promise everything, send a third, hang up.
			w.Header().Set("Content-Length", "300000")
			_, _ = w.Write(data[:100_000])
			return
		}
		http.ServeContent(w, r, "disk.img", time.Unix(1_700_000_000, 0), bytes.NewReader(data))
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "vm.img")
	var last atomic.Int64
	_, err := Copy(context.Background(), srv.URL, dest, Options{Progress: func(o int64) { last.Store(o) }})
	require.Error(t, err)
	require.Equal(t, int64(100_000), last.Load(), "progress names the bytes that arrived")
	st, err := os.Stat(dest + PartialSuffix)
	require.NoError(t, err)
	require.Equal(t, int64(100_000), st.Size())

	res, err := Copy(context.Background(), srv.URL, dest, Options{Offset: last.Load()})
	require.NoError(t, err)
	require.Equal(t, int64(100_000), res.ResumedFrom)
	require.Equal(t, sum(data), res.SHA256)
}

func TestOnReadTimesEverySourceRead(t *testing.T) {
	src, data := disk(t, 1<<20+123, 20)
	var reads []time.Duration
	res, err := Copy(context.Background(), src, filepath.Join(t.TempDir(), "vm.img"), Options{
		OnRead: func(d time.Duration) { reads = append(reads, d) },
	})
	require.NoError(t, err)
	require.Equal(t, sum(data), res.SHA256)
	// 17 chunks for the copy and 17 more for the verification's second reading.
	chunks := (len(data) + MaxChunk - 1) / MaxChunk
	require.GreaterOrEqual(t, len(reads), 2*chunks)
	var total time.Duration
	for _, d := range reads {
		total += d
	}
	require.Positive(t, total)
}

// A source that makes the copy wait shows in the read it made wait, and nowhere else
// could that time come from: the copy is not throttled.
func TestOnReadSeesASlowSource(t *testing.T) {
	_, data := disk(t, 200_000, 21)
	const stall = 150 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "200000")
		_, _ = w.Write(data[:100_000])
		w.(http.Flusher).Flush()
		time.Sleep(stall)
		_, _ = w.Write(data[100_000:])
	}))
	defer srv.Close()
	var longest time.Duration
	res, err := Copy(context.Background(), srv.URL, filepath.Join(t.TempDir(), "vm.img"), Options{
		OnRead: func(d time.Duration) { longest = max(longest, d) },
	})
	require.NoError(t, err)
	require.Equal(t, sum(data), res.SHA256)
	// The copy reaches the stall within milliseconds, so the waiting read lasts most of it.
	require.GreaterOrEqual(t, longest, stall/2)
}

// allowOnly is a list of the given entries.
func allowOnly(t *testing.T, entries ...string) *sources.List {
	t.Helper()
	l, err := sources.Parse(entries)
	require.NoError(t, err)
	return &l
}

// A source outside the allowed list is refused before it is opened, whether it exists
// or not, so the error cannot tell a caller which files exist; a link inside the list
// that leads outside is refused the same way.
func TestSourceOutsideTheListIsRefusedUnopened(t *testing.T) {
	src, data := disk(t, 4096, 30)
	other := t.TempDir()
	allowed := allowOnly(t, filepath.Dir(src))
	dest := filepath.Join(t.TempDir(), "vm.img")

	res, err := Copy(context.Background(), src, dest, Options{Sources: allowed, ExpectedSize: int64(len(data))})
	require.NoError(t, err, "inside the list")
	require.Equal(t, sum(data), res.SHA256)

	secret := filepath.Join(other, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("seventeen bytes!!"), 0o600))
	var msgs []string
	for _, s := range []string{secret, filepath.Join(other, "missing"), "file://" + secret} {
		_, err := Copy(context.Background(), s, filepath.Join(t.TempDir(), "x.img"), Options{Sources: allowed, ExpectedSize: 1 << 20})
		require.ErrorIs(t, err, ErrBadSource, s)
		require.ErrorIs(t, err, sources.ErrOutside, s)
		// The folders' random names may hold the digits; what is told beside them may not.
		told := strings.NewReplacer(other, "OTHER", filepath.Dir(src), "ALLOWED").Replace(err.Error())
		require.NotContains(t, told, "17", "the size of what is outside is not told")
		msgs = append(msgs, strings.ReplaceAll(err.Error(), s, "SOURCE"))
	}
	require.Equal(t, msgs[0], msgs[1], "a file outside that exists and one that does not are refused alike")

	link := filepath.Join(filepath.Dir(src), "escape.img")
	require.NoError(t, os.Symlink(secret, link))
	_, err = Copy(context.Background(), link, filepath.Join(t.TempDir(), "x.img"), Options{Sources: allowed})
	require.ErrorIs(t, err, sources.ErrOutside)
	require.NoFileExists(t, filepath.Join(t.TempDir(), "x.img"))
}

// An http source is read only under the listed prefixes, and a redirect is followed
// only to a URL the list allows.
func TestHTTPRedirectsStayWithinTheList(t *testing.T) {
	_, data := disk(t, 100_000, 31)
	disks, _ := serve(t, data)
	var secretHits atomic.Int64
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		secretHits.Add(1)
		_, _ = w.Write([]byte("metadata"))
	}))
	defer secret.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := disks.URL + "/disk.img"
		if r.URL.Path == "/ams1/escape.img" {
			to = secret.URL + "/latest/meta-data"
		}
		http.Redirect(w, r, to, http.StatusFound)
	}))
	defer redirector.Close()
	allowed := allowOnly(t, redirector.URL+"/ams1/", disks.URL+"/")

	res, err := Copy(context.Background(), redirector.URL+"/ams1/vm-1.img", filepath.Join(t.TempDir(), "vm.img"), Options{Sources: allowed})
	require.NoError(t, err, "a redirect to another allowed prefix is followed")
	require.Equal(t, sum(data), res.SHA256)

	_, err = Copy(context.Background(), redirector.URL+"/ams1/escape.img", filepath.Join(t.TempDir(), "vm.img"), Options{Sources: allowed})
	require.ErrorIs(t, err, ErrBadSource)
	require.ErrorIs(t, err, sources.ErrOutside)
	_, err = Copy(context.Background(), secret.URL+"/latest/meta-data", filepath.Join(t.TempDir(), "vm.img"), Options{Sources: allowed})
	require.ErrorIs(t, err, sources.ErrOutside)
	require.Zero(t, secretHits.Load(), "nothing outside the list was ever asked for")
}
