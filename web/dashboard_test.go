package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
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
