package main

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// dashboardFiles are the dashboard's page, script and styles, built into the binary:
// the dashboard works with no network but the API's.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardPolicy keeps the page to its own script, styles and API: nothing inline,
// nothing from elsewhere, and no framing by another site.
const dashboardPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// dashboardRoutes serves the dashboard: its page at / and its assets under
// /dashboard/. They hold no data and need no key; the page asks for one and sends it
// with every call to the API, so it can do what the key's role allows and no more.
func (s *Server) dashboardRoutes(e *echo.Echo) {
	assets, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic(err) // the embedded folder is there, or the build failed
	}
	files := http.FileServer(http.FS(assets))
	secure := func(c echo.Context) {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", dashboardPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
	}
	page, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic(err)
	}
	e.GET("/", func(c echo.Context) error {
		secure(c)
		return c.HTMLBlob(http.StatusOK, page)
	})
	e.GET("/dashboard/*", func(c echo.Context) error {
		secure(c)
		http.StripPrefix("/dashboard/", files).ServeHTTP(c.Response(), c.Request())
		return nil
	})
	e.GET("/me", s.me)
	e.GET("/pools", s.pools)
	e.GET("/audit", s.auditTrail)
	e.GET("/sites/:site/timeline", s.timeline)
}

// metricsRoutes serves the process's Prometheus metrics at /metrics: the Temporal
// client's and the Go runtime's. Prometheus scrapes it with a viewer key
// (docs/operations.md).
func (s *Server) metricsRoutes(e *echo.Echo) {
	m := s.Metrics
	if m == nil {
		m = &platform.Metrics{Registry: prometheus.NewRegistry()}
	}
	e.GET("/metrics", echo.WrapHandler(m.HTTPHandler()))
}

// Me is GET /me: the caller's key, and where the pool's workflows are in the Temporal
// Web UI. The dashboard signs in with it.
type Me struct {
	KeyID string `json:"key_id"`
	Name  string `json:"name"`
	Role  string `json:"role"`
	// Connector is the connector a key of the connector role belongs to.
	Connector string `json:"connector,omitempty"`
	Pool      string `json:"pool"`
	// FleetWebUI is the fleet workflow's page in the Temporal Web UI.
	FleetWebUI string `json:"fleet_web_ui"`
}

func (s *Server) me(c echo.Context) error {
	key, ok := c.Get(apiKeyContext).(store.APIKey)
	if !ok {
		return problem(http.StatusUnauthorized, "this call needs an API key")
	}
	return c.JSON(http.StatusOK, Me{KeyID: key.ID, Name: key.Name, Role: string(key.Role), Connector: key.ConnectorID, Pool: s.Pool,
		FleetWebUI: s.workflowURL(workflows.FleetWorkflowID(s.Pool))})
}

// PoolView is one pool of GET /pools: its sites, and its fleet workflow in the
// Temporal Web UI. The fleet's own routes take the pool as ?pool=.
type PoolView struct {
	Pool  string   `json:"pool"`
	Sites []string `json:"sites"`
	// Default says that it is the pool this web server addresses without ?pool=.
	Default         bool   `json:"default"`
	FleetWorkflowID string `json:"fleet_workflow_id"`
	FleetWebUI      string `json:"fleet_web_ui"`
}

// pools is GET /pools: every pool that has sites, by name, and the web server's own
// even before it has any.
func (s *Server) pools(c echo.Context) error {
	sites, err := s.Store.Sites(c.Request().Context())
	if err != nil {
		return err
	}
	var out []PoolView
	view := func(pool string) *PoolView {
		i := slices.IndexFunc(out, func(p PoolView) bool { return p.Pool == pool })
		if i < 0 {
			id := workflows.FleetWorkflowID(pool)
			out = append(out, PoolView{Pool: pool, Sites: []string{}, Default: pool == s.Pool, FleetWorkflowID: id, FleetWebUI: s.workflowURL(id)})
			i = len(out) - 1
		}
		return &out[i]
	}
	view(s.Pool)
	for _, site := range sites {
		p := view(site.Pool)
		p.Sites = append(p.Sites, site.ID)
	}
	slices.SortFunc(out, func(a, b PoolView) int { return strings.Compare(a.Pool, b.Pool) })
	return c.JSON(http.StatusOK, out)
}

// auditTrail is GET /audit: the newest mutating calls, newest first (limit, 1 to
// 1,000, default 100).
func (s *Server) auditTrail(c echo.Context) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	recs, err := s.Store.RecentAudit(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, recs)
}

// Timeline is GET /sites/{site}/timeline: the site's hours around now.
type Timeline struct {
	Site string    `json:"site"`
	Now  time.Time `json:"now"`
	// Hours are the site's hours around now; an absent field has no value for the
	// hour (no forecast made, an hour ahead, nothing ran).
	Hours []store.SiteHour `json:"hours"`
}

// maxTimelineHours bounds how far GET /sites/{site}/timeline looks back and ahead.
const maxTimelineHours = 168

// timeline is GET /sites/{site}/timeline: the site's hours from ?hours= (1 to 168,
// default 48) ago to as many ahead: arrivals forecast (with the band of the forecast's
// quantiles) against those that came, and the connectors the plan wanted against those
// that ran. It reads the history PostgreSQL keeps; no workflow holds it.
func (s *Server) timeline(c echo.Context) error {
	site := c.Param("site")
	if err := validation.ID("site", site); err != nil {
		return err
	}
	hours, err := queryInt(c, "hours", 48, 1, maxTimelineHours)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	sites, err := s.Store.Sites(ctx)
	if err != nil {
		return fmt.Errorf("read the sites: %w", err)
	}
	// The forecasts and plans of a site are its pool's.
	i := slices.IndexFunc(sites, func(x planning.SiteInfo) bool { return x.ID == site })
	if i < 0 {
		return problem(http.StatusNotFound, fmt.Sprintf("no site %q (known: %s)", site, strings.Join(planning.SiteIDs(sites), ", ")))
	}
	now := time.Now().UTC()
	rows, err := s.Store.Timeline(ctx, sites[i].Pool, site, now.Add(-time.Duration(hours)*time.Hour), 2*hours+1, now)
	if err != nil {
		return err
	}
	out := Timeline{Site: site, Now: now, Hours: rows}
	return c.JSON(http.StatusOK, out)
}
