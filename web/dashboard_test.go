package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/stretchr/testify/require"
)

func TestDashboardAssetsAreServedWithTheirPolicy(t *testing.T) {
	e := echo.New()
	(&Server{Pool: "default"}).Routes(e)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	for path, contentType := range map[string]string{
		"/": "text/html", "/dashboard/app.js": "text/javascript", "/dashboard/app.css": "text/css",
	} {
		rec := get(path)
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.Contains(t, rec.Header().Get("Content-Type"), contentType, path)
		require.Equal(t, dashboardPolicy, rec.Header().Get("Content-Security-Policy"), path)
		require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), path)
	}
	require.Equal(t, http.StatusNotFound, get("/dashboard/nothing.js").Code)
	// The page's data needs a key; the page itself does not.
	require.Equal(t, http.StatusUnauthorized, get("/me").Code)
	require.Equal(t, http.StatusUnauthorized, get("/audit").Code)

	// The policy allows no inline script, so the page has none, and the script never
	// turns data into HTML.
	page := get("/").Body.String()
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		require.Contains(t, tag, `src="/dashboard/`, "every script is a file of the dashboard's own")
	}
	require.NotRegexp(t, `<script[^>]*>\s*[^<\s]`, page, "no inline script")
	require.NotContains(t, page, "style=", "no inline styles")
	js, err := io.ReadAll(get("/dashboard/app.js").Body)
	require.NoError(t, err)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		require.False(t, strings.Contains(string(js), sink), "app.js uses %s", sink)
	}
}

// GET /pools lists every pool that has sites, by name, each with its sites and its
// fleet's page in the Temporal Web UI, and the server's own pool even without sites.
func TestPoolsListsEveryPoolWithItsSites(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	for _, site := range []struct{ id, pool string }{{"ams1", "north"}, {"fra1", "north"}, {"mad1", "south"}} {
		_, err := st.Pool.Exec(ctx, `INSERT INTO sites (id, name, region, uplink_bytes_per_sec, pool) VALUES ($1, $1, 'eu', 1e9, $2)`, site.id, site.pool)
		require.NoError(t, err)
	}
	e := echo.New()
	(&Server{Store: st, Pool: "default", Namespace: "pmo", UIURL: "http://ui:8233", Logger: slog.New(slog.DiscardHandler)}).Routes(e)
	_, viewer := newKey(t, st, apikey.Viewer)
	rec := serve(e, "Bearer "+viewer, "pools", "GET", "/pools", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var pools []PoolView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &pools))
	require.Equal(t, []PoolView{
		{Pool: "default", Sites: []string{}, Default: true, FleetWorkflowID: "fleet-default", FleetWebUI: "http://ui:8233/namespaces/pmo/workflows/fleet-default"},
		{Pool: "north", Sites: []string{"ams1", "fra1"}, FleetWorkflowID: "fleet-north", FleetWebUI: "http://ui:8233/namespaces/pmo/workflows/fleet-north"},
		{Pool: "south", Sites: []string{"mad1"}, FleetWorkflowID: "fleet-south", FleetWebUI: "http://ui:8233/namespaces/pmo/workflows/fleet-south"},
	}, pools)
}
