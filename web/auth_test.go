package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/workflows"
)

func TestEveryRouteHasARole(t *testing.T) {
	e := echo.New()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Routes: %v", r)
			}
		}()
		(&Server{Pool: "default"}).Routes(e)
	}()
	registered := map[string]bool{}
	for _, r := range e.Routes() {
		k := routeKey(r.Method, r.Path)
		registered[k] = true
		if _, ok := routeRoles[k]; !ok {
			t.Errorf("route %s has no role in routeRoles", k)
		}
	}
	for k, role := range routeRoles {
		if !registered[k] {
			t.Errorf("routeRoles names %s, which is not a route", k)
		}
		if _, err := apikey.ParseRole(string(role)); err != nil && role != anyone {
			t.Errorf("%s: %v", k, err)
		}
		// Decoding payloads is a POST by Temporal's codec protocol, but it only reads.
		if method, _, _ := strings.Cut(k, " "); !isRead(method) && k != "POST "+codecDecodePath && role != apikey.Operator && role != apikey.Admin {
			t.Errorf("%s changes things and needs only %s", k, role)
		}
	}

	// A route added without a role stops the server from starting.
	e = echo.New()
	e.DELETE("/migrations/:id", func(echo.Context) error { return nil })
	require.PanicsWithValue(t, "web: routes without a role in routeRoles: DELETE /migrations/:id", func() {
		(&Server{Pool: "default"}).Routes(e)
	})
}

// newKey stores a new key with the role and returns its ID and the key.
func newKey(t *testing.T, s *store.Store, role apikey.Role) (string, string) {
	t.Helper()
	id, key, hash, err := apikey.New()
	require.NoError(t, err)
	require.NoError(t, s.CreateAPIKey(context.Background(), id, "test "+string(role), role, hash))
	return id, key
}

// serve sends a JSON request with the Authorization header (none if empty) and the
// request ID, and returns the recorder.
func serve(e *echo.Echo, authorization, requestID, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("X-Request-Id", requestID)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// The server talks to a real PostgreSQL for its keys and audit trail, and to the real
// Temporal dev server: the fleet "workflow" is started on a task queue no worker
// polls, so that signals to it are accepted and nothing runs.
func TestKeysAndRolesGuardTheAPI(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	tc, namespace := devServer(t)
	pool := fmt.Sprintf("auth%d", time.Now().UnixNano()%1_000_000_000)
	idleFleet(t, tc, pool)

	var logs bytes.Buffer
	e := echo.New()
	(&Server{Temporal: tc, Store: st, Pool: pool, Namespace: namespace, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		KeyCacheTTL: 100 * time.Millisecond}).Routes(e)
	viewerID, viewer := newKey(t, st, apikey.Viewer)
	operatorID, operator := newKey(t, st, apikey.Operator)
	adminID, admin := newKey(t, st, apikey.Admin)

	override := `{"kind":"pause","who":"ann","why":"freeze","ttl":"1h"}`
	badScale := `{"action":"explode","who":"ann","why":"test"}`
	cases := []struct {
		name, key, method, path, body string
		status                        int
		detail                        string
	}{
		{"health needs no key", "", "GET", "/healthz", "", 200, ""},
		{"no key", "", "GET", "/migrations", "", 401, "needs an API key"},
		{"not a bearer token", "Basic " + viewer, "GET", "/migrations", "", 401, "needs an API key"},
		{"unknown key", "pmo_000000000000_" + strings.Repeat("A", 43), "GET", "/migrations", "", 401, "not known"},
		{"viewer reads", viewer, "GET", "/migrations", "", 200, ""},
		{"viewer cannot override", viewer, "POST", "/overrides", override, 403, "needs the operator role"},
		{"operator overrides", operator, "POST", "/overrides", override, 202, ""},
		{"operator's bad body is checked", operator, "POST", "/scale", badScale, 422, "action"},
		{"operator cannot set the policy", operator, "POST", "/policy", `{"mode":"active","who":"ann","why":"x"}`, 403, "needs the admin role"},
		{"admin sets the policy (checked first)", admin, "POST", "/policy", `{"mode":"yolo","why":"x"}`, 422, "who"},
		{"admin overrides", admin, "POST", "/overrides", override, 202, ""},
		{"no route, no key", "", "GET", "/nowhere", "", 401, "needs an API key"},
		{"no route", viewer, "GET", "/nowhere", "", 404, ""},
		{"no such method", viewer, "DELETE", "/migrations", "", 405, ""},
		{"no key, no change", "", "POST", "/overrides", override, 401, "needs an API key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth := c.key
			if auth != "" && !strings.HasPrefix(auth, "Basic ") {
				auth = "Bearer " + auth
			}
			rec := serve(e, auth, "req-"+c.name, c.method, c.path, c.body)
			require.Equal(t, c.status, rec.Code, rec.Body.String())
			if c.status == 401 {
				require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
			}
			if c.status >= 400 {
				require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
				var p Problem
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
				require.Equal(t, c.status, p.Status)
				require.Contains(t, p.Detail, c.detail)
			}
		})
	}

	// Readiness needs no key. The test's fleet runs, but no worker answers it: the fleet
	// routes could not be served, so the server is not ready, and says why.
	rec := serve(e, "", "", "GET", "/readyz", "")
	require.Equal(t, 503, rec.Code, rec.Body.String())
	var ready ReadyAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ready))
	require.Equal(t, "ok", ready.Temporal)
	require.Equal(t, "ok", ready.Postgres)
	require.Contains(t, ready.Fleet, "fleet-"+pool+" does not answer (is a worker running?)")

	// Every call that is not a read and came with a valid key is audited with its
	// key, role, route and result; reads and calls without a key are not.
	type row struct {
		Key, Role, Method, Path, Route, RequestID string
		Status                                    int
	}
	rows, err := st.Pool.Query(ctx, `SELECT key_id, role, method, path, route, request_id, status FROM api_audit ORDER BY id`)
	require.NoError(t, err)
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.Key, &r.Role, &r.Method, &r.Path, &r.Route, &r.RequestID, &r.Status))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []row{
		{viewerID, "viewer", "POST", "/overrides", "/overrides", "req-viewer cannot override", 403},
		{operatorID, "operator", "POST", "/overrides", "/overrides", "req-operator overrides", 202},
		{operatorID, "operator", "POST", "/scale", "/scale", "req-operator's bad body is checked", 422},
		{operatorID, "operator", "POST", "/policy", "/policy", "req-operator cannot set the policy", 403},
		{adminID, "admin", "POST", "/policy", "/policy", "req-admin sets the policy (checked first)", 422},
		{adminID, "admin", "POST", "/overrides", "/overrides", "req-admin overrides", 202},
		{viewerID, "viewer", "DELETE", "/migrations", "/migrations", "req-no such method", 405},
	}, got)

	// Use is recorded on the key.
	keys, err := st.APIKeys(ctx)
	require.NoError(t, err)
	for _, k := range keys {
		require.False(t, k.LastUsedAt.IsZero(), "key %s was used", k.ID)
	}

	// A revoked key stops working once the cache lets it go.
	_, _, err = st.RevokeAPIKey(ctx, operatorID)
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond)
	rec = serve(e, "Bearer "+operator, "revoked", "POST", "/overrides", override)
	require.Equal(t, 401, rec.Code)
	require.Contains(t, rec.Body.String(), "was revoked")
	require.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`)

	// A connector's key posts its own connector's metrics, and nothing else: another
	// connector's are refused, as are the other routes. (The bad sample shows the call
	// reached the handler, which checks it.)
	connectorKeyID, connectorKey, hash, err := apikey.New()
	require.NoError(t, err)
	require.NoError(t, st.CreateConnectorAPIKey(ctx, connectorKeyID, "ams1 appliance", "appliance-1", hash))
	rec = serve(e, "Bearer "+connectorKey, "own-metrics", "POST", "/connectors/appliance-1/metrics", `{"cpu_percent": -1}`)
	require.Equal(t, 422, rec.Code, rec.Body.String())
	for _, c := range []struct{ method, path string }{
		{"POST", "/connectors/appliance-2/metrics"}, {"GET", "/migrations"}, {"POST", "/overrides"}, {"POST", "/connectors/appliance-1/deregister"},
	} {
		rec = serve(e, "Bearer "+connectorKey, "", c.method, c.path, `{}`)
		require.Equal(t, 403, rec.Code, "%s %s: %s", c.method, c.path, rec.Body.String())
		require.Contains(t, rec.Body.String(), "belongs to connector appliance-1")
	}
	rec = serve(e, "Bearer "+connectorKey, "", "GET", "/me", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var me Me
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &me))
	require.Equal(t, "connector", me.Role)
	require.Equal(t, "appliance-1", me.Connector, "a connector's key says whose it is")

	// A client's request ID that is not a short run of safe characters (here bytes
	// that are not UTF-8, which PostgreSQL refuses) is replaced before anything logs
	// or audits it, and a long path is cut: the call is audited all the same.
	signals := func() int {
		t.Helper()
		n := 0
		it := tc.GetWorkflowHistory(ctx, workflows.FleetWorkflowID(pool), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
				n++
			}
		}
		return n
	}
	before := signals()
	for _, id := range []string{"a\xff", "a" + strings.Repeat("é", 100), strings.Repeat("x", 129)} {
		rec = serve(e, "Bearer "+admin, id, "POST", "/overrides", override)
		require.Equal(t, 202, rec.Code, rec.Body.String())
	}
	long := "/" + strings.Repeat("x", 100_000)
	rec = serve(e, "Bearer "+viewer, "long-path", "POST", long, "")
	require.Equal(t, 404, rec.Code)
	require.Equal(t, before+3, signals())
	var ids []string
	rows, err = st.Pool.Query(ctx, `SELECT request_id FROM api_audit WHERE key_id = $1 AND route = '/overrides' ORDER BY id DESC LIMIT 3`, adminID)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		require.True(t, validRequestID(id), "audited request ID %q", id)
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	require.Len(t, ids, 3)
	var path string
	require.NoError(t, st.Pool.QueryRow(ctx, `SELECT path FROM api_audit WHERE request_id = 'long-path'`).Scan(&path))
	require.Equal(t, long[:maxAuditPath]+"...", path)

	// A call that cannot be audited is refused and does nothing: the override's signal
	// never reaches the fleet. The failure is logged with who tried.
	_, err = st.Pool.Exec(ctx, `ALTER TABLE api_audit RENAME TO api_audit_away`)
	require.NoError(t, err)
	rec = serve(e, "Bearer "+admin, "unaudited", "POST", "/overrides", override)
	require.Equal(t, 503, rec.Code, rec.Body.String())
	require.Equal(t, "5", rec.Header().Get("Retry-After"))
	require.Contains(t, rec.Body.String(), "cannot be audited")
	require.Equal(t, before+3, signals(), "a refused call sent no signal")
	require.Contains(t, logs.String(), "audit entry not written; the call is refused")
	require.Contains(t, logs.String(), "key_id="+adminID)
	// Reads are not audited, so they are still served.
	rec = serve(e, "Bearer "+admin, "read", "GET", "/migrations", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
}

// A call that panics half-way is still audited, as the 500 it answers.
func TestAPanickingCallIsAudited(t *testing.T) {
	st := storetest.New(t)
	e := echo.New()
	(&Server{Pool: "default", Store: st, Logger: slog.New(slog.DiscardHandler)}).Routes(e)
	id, key := newKey(t, st, apikey.Operator)
	// A valid override reaches the missing Temporal client.
	require.Panics(t, func() {
		serve(e, "Bearer "+key, "boom", "POST", "/overrides", `{"kind":"pause","who":"ann","why":"x","ttl":"1h"}`)
	})
	var keyID string
	var status int
	require.NoError(t, st.Pool.QueryRow(context.Background(), `SELECT key_id, status FROM api_audit WHERE request_id = 'boom'`).Scan(&keyID, &status))
	require.Equal(t, id, keyID)
	require.Equal(t, 500, status)
}
