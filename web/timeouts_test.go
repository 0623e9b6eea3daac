package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store/storetest"
)

// Five hundred connections that send no headers, or half of them, hold the server for
// at most the read-header timeout: each is closed by then, with no key and no call.
func TestSlowClientsAreClosedAfterTheReadHeaderTimeout(t *testing.T) {
	timeouts := config.DefaultHTTPTimeouts()
	timeouts.ReadHeader = 2 * time.Second
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	(&Server{Pool: "default", Logger: slog.New(slog.DiscardHandler)}).Routes(e)
	limitConnections(e.Server, timeouts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.Listener = ln
	go func() { _ = e.Start("") }()
	t.Cleanup(func() { _ = e.Close() })

	const clients = 500
	conns := make([]net.Conn, 0, clients)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	start := time.Now()
	for i := range clients {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		conns = append(conns, c)
		if i%2 == 1 { // half a request: a header line and no end
			_, err := io.WriteString(c, "GET /migrations HTTP/1.1\r\nHost: pmo\r\nAuthorization: Bea")
			require.NoError(t, err)
		}
	}
	opened := time.Since(start)

	// Each read ends when the server closes the connection; our own deadline, well
	// past the server's, would mean it held on.
	giveUp := start.Add(opened + timeouts.ReadHeader + 5*time.Second)
	var latest time.Duration
	for i, c := range conns {
		require.NoError(t, c.SetReadDeadline(giveUp))
		_, err := io.ReadAll(c)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection %d still open after %s", i, time.Since(start))
		latest = max(latest, time.Since(start))
	}
	// Closed by the timeout, not sooner: a connection is given its read-header time.
	require.GreaterOrEqual(t, latest, timeouts.ReadHeader)
	t.Logf("%d connections opened in %s, all closed %s after the first opened (read-header timeout %s)", clients, opened, latest, timeouts.ReadHeader)
}

// A call that waits on a workflow waits at most PMO_HTTP_WAIT_TIMEOUT, then answers
// 504 with a Retry-After; an unexpected failure is a 500 that shows no internal text,
// only the request ID under which the log keeps it.
func TestAWaitThatRunsOutIs504AndAFailureShowsNoInternals(t *testing.T) {
	st := storetest.New(t)
	tc, namespace := devServer(t)
	// The pool's fleet runs on a task queue no worker polls: an update to it is never
	// accepted.
	pool := fmt.Sprintf("wait%d", time.Now().UnixNano()%1_000_000_000)
	idleFleet(t, tc, pool)
	var logs bytes.Buffer
	timeouts := config.DefaultHTTPTimeouts()
	timeouts.Wait = time.Second
	e := echo.New()
	(&Server{Temporal: tc, Store: st, Pool: pool, Namespace: namespace, Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)),
		RateLimit: unlimited, Timeouts: timeouts}).Routes(e)
	_, operator := newKey(t, st, apikey.Operator)

	start := time.Now()
	rec := serve(e, "Bearer "+operator, "slow-scale", "POST", "/scale", `{"action":"provision","site":"ams1","count":1,"who":"ann","why":"test"}`)
	require.Equal(t, http.StatusGatewayTimeout, rec.Code, rec.Body.String())
	require.Less(t, time.Since(start), 30*time.Second, "the call waited past its timeout")
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", rec.Header().Get("Retry-After"))
	require.Positive(t, retry)
	require.Contains(t, rec.Body.String(), "PMO_HTTP_WAIT_TIMEOUT")

	// PostgreSQL gone from under a call that reads it: a 500 naming the request ID,
	// and the cause in the log, not in the answer.
	rec = serve(e, "Bearer "+operator, "warm-cache", "GET", "/audit", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	st.Pool.Close()
	rec = serve(e, "Bearer "+operator, "req-closed-pool", "GET", "/audit", "")
	require.Equal(t, http.StatusInternalServerError, rec.Code, rec.Body.String())
	var p Problem
	require.NoError(t, json.NewDecoder(rec.Body).Decode(&p))
	require.Equal(t, "the server could not answer; its log says why under request ID req-closed-pool", p.Detail)
	require.Contains(t, logs.String(), "request_id=req-closed-pool")
	require.Contains(t, logs.String(), "closed pool")
}
