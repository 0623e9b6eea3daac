package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// Server answers PMO's HTTP API. It reads and changes state only by starting,
// querying, updating and signalling workflows; PostgreSQL is touched only to report
// readiness, to look up API keys, to append to the audit trail (see auth.go) and to
// read the inventory rows that requests name.
type Server struct {
	Temporal  client.Client
	Store     *store.Store
	Pool      string
	Namespace string
	UIURL     string
	Logger    *slog.Logger
	// Uploads is where imported files are staged for the worker to read: a folder
	// both processes see.
	Uploads string
	// KeyCacheTTL is how long a looked-up API key is trusted; zero means 10 s.
	KeyCacheTTL time.Duration
	// Codec encrypts and decrypts payloads for the codec endpoints (codec.go); nil
	// when PMO_PAYLOAD_KEY is not set.
	Codec *platform.PayloadCodec
	// RateLimit bounds each key's and each failing address's calls; zero means
	// config.DefaultRateLimit.
	RateLimit config.RateLimit
	// Metrics is the process's registry, served at /metrics; nil serves an empty one.
	Metrics *platform.Metrics
	// Timeouts bound a call's wait on Temporal and PostgreSQL (Wait, and Read more
	// for a file's upload); zero means config.DefaultHTTPTimeouts.
	Timeouts config.HTTPTimeouts
	// converter is dataConverter's, made once.
	converter     converter.DataConverter
	converterOnce sync.Once
	// fleetSeen is when each pool's fleet was last seen running: pool → time.Time.
	fleetSeen sync.Map
	// keys is the API keys' cache that authenticate checks tokens with.
	keys *keyCache
}

// Routes registers every endpoint on e.
func (s *Server) Routes(e *echo.Echo) {
	e.HTTPErrorHandler = s.errorHandler
	e.Pre(s.safeRequestID)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.POST("/forecast", s.forecast)
	e.GET("/connectors", s.connectors)
	e.POST("/connectors", s.registerConnector)
	e.POST("/connectors/:id/deregister", s.deregisterConnector)
	e.POST("/connectors/:id/metrics", s.connectorMetrics)
	e.GET("/plan", s.plan)
	e.POST("/scale", s.scale)
	e.GET("/policy", s.policy)
	e.POST("/policy", s.setPolicy)
	e.POST("/simulate", s.simulate)
	e.POST("/overrides", s.override)
	e.GET("/overrides", s.overrides)
	e.POST("/waves", s.startWave)
	e.GET("/waves", s.waves)
	e.GET("/waves/:id", s.wave)
	e.GET("/waves/:id/report", s.waveReport)
	for _, action := range []string{workflows.SignalPause, workflows.SignalResume, workflows.SignalCancel, workflows.SignalApprove, workflows.WaveRetry} {
		e.POST("/waves/:id/"+action, s.waveAction(action))
	}
	e.POST("/migrations", s.submitMigration)
	e.GET("/migrations", s.migrations)
	e.GET("/migrations/:id", s.migration)
	e.POST("/migrations/:id/cancel", s.control(workflows.SignalCancel))
	e.POST("/migrations/:id/pause", s.control(workflows.SignalPause))
	e.POST("/migrations/:id/resume", s.control(workflows.SignalResume))
	e.POST("/migrations/:id/priority", s.control(workflows.SignalPriority))
	e.POST("/migrations/:id/approve", s.control(workflows.SignalApprove))
	e.PUT("/sites", s.importFile(imports.Sites))
	e.PUT("/slas", s.importFile(imports.SLAs))
	e.PUT("/inventory", s.importFile(imports.Inventory))
	e.POST("/history", s.importFile(imports.History))
	e.POST("/events", s.postEvents)
	e.GET("/events", s.events)
	e.POST("/events/close", s.closeEvent)
	e.POST("/events/alertmanager", s.alertmanager)
	e.POST("/events/calendar", s.calendar)
	s.codecRoutes(e)
	s.dashboardRoutes(e)
	s.metricsRoutes(e)
	s.openAPIRoutes(e)
	e.Use(s.deadline())
	s.protect(e)
	checkOperations(e)
}

// HealthAnswer is GET /healthz.
type HealthAnswer struct {
	Status string `json:"status"`
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, HealthAnswer{Status: "ok"})
}

// ReadyAnswer is GET /readyz: "ok", or what is wrong, for each thing the API needs.
type ReadyAnswer struct {
	Temporal string `json:"temporal"`
	Postgres string `json:"postgres"`
	// Fleet is the server's pool's fleet workflow: the fleet routes need it running,
	// with a worker that answers it.
	Fleet string `json:"fleet"`
}

// readyz reports whether the API can serve its routes: Temporal and PostgreSQL answer,
// and the fleet of the server's pool runs and answers a query. A client that waits for
// readiness, as make run and orchestrators do, can then call any route at once.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	checks := ReadyAnswer{Temporal: "ok", Postgres: "ok", Fleet: "ok"}
	status := http.StatusOK
	if err := s.Store.Ping(ctx); err != nil {
		checks.Postgres, status = err.Error(), http.StatusServiceUnavailable
	}
	if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks.Temporal, checks.Fleet, status = err.Error(), "not asked: Temporal does not answer", http.StatusServiceUnavailable
	} else if err := s.fleetAnswers(ctx); err != nil {
		checks.Fleet, status = err.Error(), http.StatusServiceUnavailable
	}
	return c.JSON(status, checks)
}

// fleetAnswers checks that the server's pool's fleet runs and that a worker answers
// it: a query is answered by a worker, as updates and signals are handled.
func (s *Server) fleetAnswers(ctx context.Context) error {
	if err := s.fleetRunning(ctx, s.Pool); err != nil {
		var p *Problem
		if errors.As(err, &p) {
			return errors.New(p.Detail)
		}
		return err
	}
	if _, err := s.Temporal.QueryWorkflow(ctx, workflows.FleetWorkflowID(s.Pool), "", workflows.QueryPolicy); err != nil {
		return fmt.Errorf("the fleet workflow %s does not answer (is a worker running?): %w", workflows.FleetWorkflowID(s.Pool), err)
	}
	return nil
}

// fleetPool is the pool a fleet route addresses: its pool query parameter, or the
// server's pool (PMO_POOL) when there is none.
func (s *Server) fleetPool(c echo.Context) (string, error) {
	pool := c.QueryParam("pool")
	if pool == "" {
		return s.Pool, nil
	}
	if err := validation.ID("pool", pool); err != nil {
		return "", err
	}
	return pool, nil
}

// update runs an update of the request's pool's fleet to completion and decodes its
// result.
func (s *Server) update(c echo.Context, name, updateID string, arg, result any) error {
	pool, err := s.fleetPool(c)
	if err != nil {
		return err
	}
	h, err := s.Temporal.UpdateWorkflow(c.Request().Context(), client.UpdateWorkflowOptions{
		WorkflowID: workflows.FleetWorkflowID(pool), UpdateID: updateID, UpdateName: name,
		Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return fleetError(pool, err)
	}
	return fleetError(pool, h.Get(c.Request().Context(), result))
}

// fleetError explains a missing fleet workflow instead of a bare 404.
func fleetError(pool string, err error) error {
	if err == nil {
		return nil
	}
	if p := toProblem(err); p.Status == http.StatusNotFound {
		return problem(http.StatusServiceUnavailable, fmt.Sprintf(
			"the fleet workflow %s is not running; start it with `starter fleet start -pool %s`", workflows.FleetWorkflowID(pool), pool))
	}
	return err
}

// query asks the request's pool's fleet a query and decodes the answer.
func (s *Server) query(c echo.Context, name string, result any) error {
	pool, err := s.fleetPool(c)
	if err != nil {
		return err
	}
	v, err := s.Temporal.QueryWorkflow(c.Request().Context(), workflows.FleetWorkflowID(pool), "", name)
	if err != nil {
		return fleetError(pool, err)
	}
	return v.Get(result)
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, validation.Field(field, "is required (RFC 3339, e.g. 2026-11-25T08:00:00Z)")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, validation.Field(field, "must be an RFC 3339 time such as 2026-11-25T08:00:00Z, got %q", v)
	}
	return t.UTC(), validation.Time(field, t)
}

func (s *Server) workflowURL(workflowID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", s.UIURL, url.PathEscape(s.Namespace), url.PathEscape(workflowID))
}
