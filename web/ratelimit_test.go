package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/testenv"
	"github.com/pmo-dev/pmo/workflows"
)

// unlimited is a rate limit that tests about other things never reach: they send
// hundreds of calls a second with one key.
var unlimited = config.RateLimit{PerKey: 1e9, Burst: 1 << 30, Unauthenticated: 1e9, UnauthenticatedBurst: 1 << 30}

// limitedServer serves the real routes and middleware over HTTP, with the given rate
// limits, a real PostgreSQL and the real Temporal dev server.
func limitedServer(t *testing.T, limit config.RateLimit) (*httptest.Server, *Server, *bytes.Buffer) {
	t.Helper()
	st := storetest.New(t)
	tc, namespace := devServer(t)
	var logs bytes.Buffer
	srv := &Server{Temporal: tc, Store: st, Pool: "ratelimit", Namespace: namespace,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)), RateLimit: limit}
	e := echo.New()
	srv.Routes(e)
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)
	return ts, srv, &logs
}

// devServer dials the Temporal dev server that make test starts, in a namespace of the
// test's own that knows PMO's search attributes; nothing the test starts there outlives
// it. The client is closed when the test ends.
func devServer(t *testing.T) (client.Client, string) {
	t.Helper()
	addr := testenv.TemporalAddress(t)
	namespace := testenv.Namespace(t, addr)
	tc, err := client.Dial(client.Options{HostPort: addr, Namespace: namespace})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	require.NoError(t, platform.EnsureSearchAttributes(context.Background(), tc, namespace, workflows.SearchAttributes()))
	return tc, namespace
}

// idleFleet starts the pool's fleet workflow on a task queue no worker polls: signals
// to it are accepted, an update is never, and nothing runs.
func idleFleet(t *testing.T, tc client.Client, pool string) {
	t.Helper()
	_, err := tc.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: workflows.FleetWorkflowID(pool), TaskQueue: pool + "-no-worker"},
		workflows.FleetWorkflow, workflows.FleetInput{Pool: pool})
	require.NoError(t, err)
}

// syncWriter lets the server's goroutines log into one buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// call sends a request with the key (none if empty) and returns the response, its body
// read.
func call(t *testing.T, ts *httptest.Server, key, method, path string) (*http.Response, Problem) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var p Problem
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	}
	return resp, p
}

func TestEachKeyHasItsOwnRateLimit(t *testing.T) {
	limit := config.RateLimit{PerKey: 2, Burst: 3, Unauthenticated: 1, UnauthenticatedBurst: 2}
	ts, srv, _ := limitedServer(t, limit)
	aID, a := newKey(t, srv.Store, apikey.Viewer)
	_, b := newKey(t, srv.Store, apikey.Viewer)

	// A key gets its burst, then 429 with when to come back.
	for i := range limit.Burst {
		resp, p := call(t, ts, a, "GET", "/migrations")
		require.Equal(t, 200, resp.StatusCode, "call %d: %+v", i, p)
	}
	resp, p := call(t, ts, a, "GET", "/migrations")
	require.Equal(t, 429, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Equal(t, 429, p.Status)
	require.Contains(t, p.Detail, "the API key "+apikey.Display(aID)+" made more than 2 requests a second (burst 3")
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", resp.Header.Get("Retry-After"))
	// One token comes back in half a second, which rounds up to a whole second.
	require.Equal(t, 1, retry)

	// Another key is not slowed by the first, and neither are health and readiness,
	// which need no key.
	for range limit.Burst {
		resp, _ = call(t, ts, b, "GET", "/migrations")
		require.Equal(t, 200, resp.StatusCode)
	}
	for range 3 * limit.Burst {
		resp, _ = call(t, ts, "", "GET", "/healthz")
		require.Equal(t, 200, resp.StatusCode)
	}
	// Answered, not limited: not ready, since no fleet runs for this test's pool.
	resp, _ = call(t, ts, "", "GET", "/readyz")
	require.Equal(t, 503, resp.StatusCode)

	// After the wait it names, the key gets through again.
	time.Sleep(time.Duration(retry) * time.Second)
	resp, p = call(t, ts, a, "GET", "/migrations")
	require.Equal(t, 200, resp.StatusCode, "%+v", p)

	// A refused call did nothing and is not audited: a flood of them must not become
	// a flood of rows. The calls let through are.
	opID, op := newKey(t, srv.Store, apikey.Operator)
	statuses := []int{}
	for range limit.Burst + 2 {
		resp, _ = call(t, ts, op, "POST", "/nowhere")
		statuses = append(statuses, resp.StatusCode)
	}
	require.Equal(t, []int{404, 404, 404, 429, 429}, statuses)
	var audited int
	require.NoError(t, srv.Store.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM api_audit WHERE key_id = $1`, opID).Scan(&audited))
	require.Equal(t, limit.Burst, audited)
}

func TestCallsWithoutAValidKeyAreLimitedPerAddress(t *testing.T) {
	// A failure's token comes back in 20 s, longer than the test takes: a made-up key
	// is answered once the keys' hashes have been read after it arrived, up to a second
	// later.
	limit := config.RateLimit{PerKey: 100, Burst: 100, Unauthenticated: 0.05, UnauthenticatedBurst: 2}
	ts, srv, logs := limitedServer(t, limit)
	_, good := newKey(t, srv.Store, apikey.Viewer)
	resp, _ := call(t, ts, good, "GET", "/migrations")
	require.Equal(t, 200, resp.StatusCode)

	unknown := "pmo_000000000000_" + strings.Repeat("A", 43)
	resp, _ = call(t, ts, unknown, "GET", "/migrations")
	require.Equal(t, 401, resp.StatusCode)
	resp, _ = call(t, ts, "", "GET", "/migrations")
	require.Equal(t, 401, resp.StatusCode)
	// The address has spent its burst of failures: unknown keys and calls without a key
	// are refused, and a flood of made-up keys costs one read of the keys' hashes a
	// second, not a query each.
	readsBefore := srv.keys.readCount()
	start := time.Now()
	for i := range 5 {
		resp, p := call(t, ts, "pmo_00000000000"+strconv.Itoa(i)+"_"+strings.Repeat("B", 43), "GET", "/migrations")
		require.Equal(t, 429, resp.StatusCode)
		require.Contains(t, p.Detail, "this address made more than 0.05 requests a second without a valid API key (burst 2")
		require.Empty(t, resp.Header.Get("WWW-Authenticate"), "a 429 is not a challenge")
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		require.NoError(t, err)
		require.True(t, retry > 0 && retry <= 20, "Retry-After %d: a token comes back within 20 s", retry)
	}
	resp, _ = call(t, ts, "", "GET", "/migrations")
	require.Equal(t, 429, resp.StatusCode)
	reads := srv.keys.readCount() - readsBefore
	require.LessOrEqual(t, reads, int(time.Since(start)/knownReloadEvery)+1, "reads of the keys' hashes in %s", time.Since(start))
	require.Equal(t, 6, strings.Count(logs.String(), "unknown API key"), "each unknown key is logged:\n%s", logs)

	// A key the server knows still gets through from the same address, and so does a
	// key made a moment ago that this server has never seen: the failure budget is
	// charged to bad keys, never to a valid one.
	resp, _ = call(t, ts, good, "GET", "/migrations")
	require.Equal(t, 200, resp.StatusCode)
	_, fresh := newKey(t, srv.Store, apikey.Operator)
	resp, p := call(t, ts, fresh, "GET", "/migrations")
	require.Equal(t, 200, resp.StatusCode, "%+v", p)
}

// Buckets unused long enough to be full again are forgotten, and beyond the bound
// new addresses share one bucket, so a flood from many addresses holds little memory.
func TestIdleBucketsAreForgotten(t *testing.T) {
	b := newBuckets(10, 10, 3)
	require.Equal(t, time.Second+time.Minute, b.idle)
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"a", "b", "c"} {
		_, ok := b.take(name, t0)
		require.True(t, ok)
	}
	require.Equal(t, 3, b.size())
	// d and e find no room and share the overflow bucket.
	for range 10 {
		_, ok := b.take("d", t0)
		require.True(t, ok)
	}
	wait, ok := b.take("e", t0)
	require.False(t, ok, "e shares d's spent bucket")
	require.Equal(t, 100*time.Millisecond, wait)
	require.Equal(t, 4, b.size())

	// a keeps being used; the rest go idle and are forgotten at the next call.
	_, ok = b.take("a", t0.Add(b.idle/2))
	require.True(t, ok)
	_, ok = b.take("f", t0.Add(b.idle))
	require.True(t, ok)
	require.Equal(t, 2, b.size(), "a and f are held")
}
