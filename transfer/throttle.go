package transfer

import (
	"context"
	"fmt"
	"math"
	"sync"

	"golang.org/x/time/rate"
)

// MaxChunk is the largest piece a copy reads, paces and writes at once. The limiter's
// burst is never below it, so a chunk always fits in one reservation.
const MaxChunk = 64 << 10

// chunksPerSecond sets the chunk size at low rates: a chunk is at most 1/16 s of the
// current limit, so a waiter never sleeps long on an old rate and a new limit takes
// effect well within a second, even with several transfers queued on the limiter.
const chunksPerSecond = 16

// Throttle paces every transfer of one connector through a single token bucket in
// bytes per second, so that all of them together stay within the connector's
// bandwidth. The limit can change while transfers run. It is safe for concurrent use.
type Throttle struct {
	mu  sync.Mutex
	lim *rate.Limiter
}

// NewThrottle returns a throttle at bytesPerSec; zero or less means unlimited.
func NewThrottle(bytesPerSec float64) *Throttle {
	t := &Throttle{lim: rate.NewLimiter(rate.Inf, MaxChunk)}
	t.SetBytesPerSec(bytesPerSec)
	return t
}

// SetBytesPerSec changes the limit now; zero or less (or NaN) means unlimited. The
// burst is max(MaxChunk, limit/10): big enough for a whole chunk, small enough that an
// idle connector cannot exceed its allocation by more than a tenth of a second's worth.
func (t *Throttle) SetBytesPerSec(bytesPerSec float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !(bytesPerSec > 0) || math.IsInf(bytesPerSec, 1) {
		t.lim.SetLimit(rate.Inf)
		return
	}
	limit := rate.Limit(bytesPerSec)
	burst := max(MaxChunk, int(min(bytesPerSec/10, math.MaxInt32)))
	if t.lim.Limit() == rate.Inf {
		// Leaving "unlimited" starts a new bucket: the limiter's bookkeeping
		// multiplies elapsed time by the old rate, and Inf times zero is NaN.
		// Waiters on the old bucket were not waiting anyway.
		t.lim = rate.NewLimiter(limit, burst)
		return
	}
	t.lim.SetLimit(limit)
	t.lim.SetBurst(burst)
}

// BytesPerSec returns the current limit, or 0 when unlimited (a nil throttle is
// unlimited).
func (t *Throttle) BytesPerSec() float64 {
	if t == nil {
		return 0
	}
	l := t.limiter().Limit()
	if l == rate.Inf {
		return 0
	}
	return float64(l)
}

func (t *Throttle) limiter() *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lim
}

// chunk is how many bytes to move before asking the limiter again.
func (t *Throttle) chunk() int {
	if t == nil {
		return MaxChunk
	}
	l := t.limiter().Limit()
	if l == rate.Inf {
		return MaxChunk
	}
	return int(min(max(float64(l)/chunksPerSecond, 1), MaxChunk))
}

// wait blocks until n bytes may pass or ctx ends. A nil throttle never waits.
func (t *Throttle) wait(ctx context.Context, n int) error {
	if t == nil || n <= 0 {
		return nil
	}
	if err := t.limiter().WaitN(ctx, n); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		// The limiter refuses up front when the wait would pass the context's
		// deadline. The copy cannot finish in time either way, so wait for the
		// deadline and leave the partial file for a resume.
		<-ctx.Done()
		return fmt.Errorf("transfer: throttle: %w", context.Cause(ctx))
	}
	return nil
}

// waitAll is wait for n bytes of any size, asked for a chunk at a time: the limiter
// refuses more than its burst at once.
func (t *Throttle) waitAll(ctx context.Context, n int) error {
	for n > 0 {
		k := min(n, t.chunk())
		if err := t.wait(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
