package main

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/config"
)

// maxAddresses bounds how many client addresses the unauthenticated limiter tracks at
// once; beyond it, new addresses share one bucket, so that a flood from many addresses
// cannot grow the server's memory.
const maxAddresses = 10_000

// buckets is a set of token buckets, one per name (an API key's ID or a client
// address), all with the same rate and burst. A bucket left alone long enough to fill
// up again is forgotten: a new one starts full too, so forgetting it changes nothing
// but the memory held.
type buckets struct {
	limit rate.Limit
	burst int
	// idle is how long a bucket must go unused before it is forgotten.
	idle time.Duration
	// max bounds the buckets held; 0 means no bound (API keys, which exist in the
	// table before they get a bucket).
	max int

	mu        sync.Mutex
	byName    map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// overflow is the bucket that addresses share once max is reached.
const overflow = "\x00overflow"

func newBuckets(perSecond float64, burst, max int) *buckets {
	// A bucket refills in burst/perSecond; a minute more keeps a steady client's bucket.
	idle := time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Minute
	return &buckets{limit: rate.Limit(perSecond), burst: burst, idle: idle, max: max, byName: map[string]*bucket{}}
}

// get returns name's bucket, making it if needed, and sweeps idle buckets at most once
// per idle period. Callers hold b.mu.
func (b *buckets) get(name string, now time.Time) *bucket {
	if now.Sub(b.lastSweep) >= b.idle {
		b.sweep(now)
	}
	bk, ok := b.byName[name]
	if !ok {
		if b.max > 0 && name != overflow && len(b.byName) >= b.max {
			b.sweep(now)
			if len(b.byName) >= b.max {
				return b.get(overflow, now)
			}
		}
		bk = &bucket{lim: rate.NewLimiter(b.limit, b.burst)}
		b.byName[name] = bk
	}
	bk.seen = now
	return bk
}

// sweep forgets the buckets unused for idle. Callers hold b.mu.
func (b *buckets) sweep(now time.Time) {
	b.lastSweep = now
	for name, bk := range b.byName {
		if now.Sub(bk.seen) >= b.idle {
			delete(b.byName, name)
		}
	}
}

// take spends a token of name's bucket; when there is none it returns how long until
// there is one.
func (b *buckets) take(name string, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.get(name, now)
	if bk.lim.AllowN(now, 1) {
		return 0, true
	}
	return b.wait(bk, now), false
}

// wait is how long until bk holds a whole token.
func (b *buckets) wait(bk *bucket, now time.Time) time.Duration {
	missing := 1 - bk.lim.TokensAt(now)
	return time.Duration(missing / float64(b.limit) * float64(time.Second))
}

// size is how many buckets are held.
func (b *buckets) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byName)
}

// limits are the web server's rate limits: a bucket per API key, spent by every call
// made with the key, and a bucket per client address, spent by every call answered 401.
type limits struct {
	cfg     config.RateLimit
	keys    *buckets
	address *buckets
}

func newLimits(cfg config.RateLimit) *limits {
	return &limits{cfg: cfg,
		keys:    newBuckets(cfg.PerKey, cfg.Burst, 0),
		address: newBuckets(cfg.Unauthenticated, cfg.UnauthenticatedBurst, maxAddresses)}
}

// key spends a token of the key's bucket, or returns the 429 to answer.
func (l *limits) key(c echo.Context, id string) error {
	wait, ok := l.keys.take(id, time.Now())
	if ok {
		return nil
	}
	return tooManyRequests(c, wait, fmt.Sprintf("the API key %s made more than %g requests a second (burst %d; PMO_RATE_LIMIT, PMO_RATE_BURST)",
		apikey.Display(id), l.cfg.PerKey, l.cfg.Burst))
}

// unauthenticated spends a token of the client address's bucket for a call about to
// be answered 401, and returns that 401, or the 429 once the address has spent its
// tokens.
func (l *limits) unauthenticated(c echo.Context, answer error) error {
	wait, ok := l.address.take(clientAddress(c), time.Now())
	if ok {
		return answer
	}
	return l.tooManyFailures(c, wait)
}

func (l *limits) tooManyFailures(c echo.Context, wait time.Duration) error {
	c.Response().Header().Del(echo.HeaderWWWAuthenticate)
	return tooManyRequests(c, wait, fmt.Sprintf("this address made more than %g requests a second without a valid API key (burst %d; PMO_RATE_LIMIT_UNAUTHENTICATED, PMO_RATE_BURST_UNAUTHENTICATED)",
		l.cfg.Unauthenticated, l.cfg.UnauthenticatedBurst))
}

// tooManyRequests is a 429 whose Retry-After says, in whole seconds rounded up, when
// the next call will be let through.
func tooManyRequests(c echo.Context, wait time.Duration, detail string) error {
	seconds := max(1, int(math.Ceil(wait.Seconds())))
	c.Response().Header().Set("Retry-After", strconv.Itoa(seconds))
	return problem(http.StatusTooManyRequests, fmt.Sprintf("%s; retry after %d s", detail, seconds))
}

// clientAddress is the address the request came from, as the connection says: not
// X-Forwarded-For, which the client writes itself and could change on every call to
// get a fresh bucket. Behind a proxy, every failing client shares the proxy's bucket;
// calls with a valid key are not limited by address.
func clientAddress(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}
