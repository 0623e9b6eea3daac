package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
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

// forecastBody is POST /forecast's body; times are strings so that a bad one is
// reported with its field.
type forecastBody struct {
	ID            string            `json:"id"`
	VMIDs         []string          `json:"vm_ids"`
	VMs           []planning.VMSpec `json:"vms"`
	EarliestStart string            `json:"earliest_start"`
	Deadline      string            `json:"deadline"`
	SLATier       string            `json:"sla_tier"`
	Plan          bool              `json:"plan"`
	WhatIf        *whatIfBody       `json:"what_if"`
}

// whatIfBody is POST /forecast's what_if section, with times and durations as strings.
type whatIfBody struct {
	AddWave    bool     `json:"add_wave"`
	LoseLink   []string `json:"lose_link"`
	TightenSLA []struct {
		Tier        string `json:"tier"`
		MaxTransfer string `json:"max_transfer"`
	} `json:"tighten_sla"`
	Blackout []struct {
		Site   string `json:"site"`
		From   string `json:"from"`
		To     string `json:"to"`
		Detail string `json:"detail"`
	} `json:"blackout"`
}

// request converts the section, naming any bad field.
func (b whatIfBody) request() (*workflows.WhatIfRequest, error) {
	w := &workflows.WhatIfRequest{AddWave: b.AddWave, LoseLink: b.LoseLink}
	for i, t := range b.TightenSLA {
		d, err := time.ParseDuration(t.MaxTransfer)
		if err != nil || d <= 0 {
			return nil, validation.Field(fmt.Sprintf("what_if.tighten_sla[%d].max_transfer", i), "must be a positive duration such as 1m, got %q", t.MaxTransfer)
		}
		w.TightenSLA = append(w.TightenSLA, planning.TierChange{Tier: t.Tier, MaxTransfer: d})
	}
	for i, bo := range b.Blackout {
		from, err := parseTime(fmt.Sprintf("what_if.blackout[%d].from", i), bo.From)
		if err != nil {
			return nil, err
		}
		to, err := parseTime(fmt.Sprintf("what_if.blackout[%d].to", i), bo.To)
		if err != nil {
			return nil, err
		}
		w.Blackout = append(w.Blackout, planning.Event{Site: bo.Site, Starts: from, Ends: to, Detail: "what-if blackout " + bo.Detail})
	}
	return w, nil
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

func (s *Server) forecast(c echo.Context) error {
	var b forecastBody
	if err := decode(c, &b); err != nil {
		return err
	}
	if b.ID == "" {
		b.ID = "fc-" + uuid.NewString()[:8]
	}
	req := workflows.ForecastRequest{ID: b.ID, VMIDs: b.VMIDs, VMs: b.VMs, SLATier: b.SLATier, Plan: b.Plan}
	var err error
	if req.EarliestStart, err = parseTime("earliest_start", b.EarliestStart); err != nil {
		return err
	}
	if req.Deadline, err = parseTime("deadline", b.Deadline); err != nil {
		return err
	}
	if b.WhatIf != nil {
		if req.WhatIf, err = b.WhatIf.request(); err != nil {
			return err
		}
	}
	if err := req.Validate(); err != nil {
		return err
	}
	var answer workflows.ForecastAnswer
	if err := s.update(c, workflows.UpdateForecast, "forecast-"+req.ID, req, &answer); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, answer)
}

// Resources is an amount of each resource a connector has.
type Resources struct {
	CPUMillis         int     `json:"cpu_millis"`
	RAMBytes          int64   `json:"ram_bytes"`
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	StorageBytes      int64   `json:"storage_bytes"`
	Tasks             int     `json:"tasks"`
}

// ConnectorView is one connector as GET /connectors shows it.
type ConnectorView struct {
	ID         string    `json:"id"`
	Site       string    `json:"site"`
	State      string    `json:"state"`
	Size       string    `json:"size"`
	TaskQueue  string    `json:"task_queue"`
	Manual     bool      `json:"manual"`
	Allocated  Resources `json:"allocated"`
	Used       Resources `json:"used"`
	Free       Resources `json:"free"`
	Migrations []string  `json:"migrations"`
	// ReadLatencySeconds is the mean time the connector's reads from the VMs' disks
	// took in its last report; absent where it read nothing.
	ReadLatencySeconds float64 `json:"read_latency_seconds,omitempty"`
	// TargetFreeBytes is the free space of the storage the connector writes to;
	// absent where it has not been measured.
	TargetFreeBytes int64     `json:"target_free_bytes,omitempty"`
	ReportedAt      time.Time `json:"reported_at,omitzero"`
	// Reason is why the fleet started the connector, or why it drains; for an
	// external connector, its health.
	Reason string `json:"reason,omitempty"`
	// External says that PMO did not start the connector: it was registered, posts
	// its metrics, and is never started, resized or stopped by PMO. LastSeen is when
	// its metrics last arrived, and StaleAfterSeconds how long it may be silent
	// before it takes no work.
	External          bool      `json:"external,omitempty"`
	LastSeen          time.Time `json:"last_seen,omitzero"`
	StaleAfterSeconds float64   `json:"stale_after_seconds,omitempty"`
}

func viewConnector(c planning.Connector) ConnectorView {
	alloc := Resources{CPUMillis: c.Size.CPUMillis, RAMBytes: c.Size.RAMBytes, BandwidthBytesSec: c.Size.BandwidthBytesSec,
		StorageBytes: c.Size.StorageBytes, Tasks: c.Size.MaxTasks}
	used := Resources{CPUMillis: int(c.Usage.CPUPercent * 10), RAMBytes: c.Usage.RAMBytes,
		BandwidthBytesSec: c.Usage.BandwidthUsedBytesSec, StorageBytes: c.Usage.StorageUsedBytes, Tasks: len(c.Migrations)}
	v := ConnectorView{ID: c.ID, Site: c.Site, State: string(c.State), Size: c.Size.Name, TaskQueue: c.TaskQueue, Manual: c.Manual,
		Allocated: alloc, Used: used, Migrations: []string{}, ReadLatencySeconds: c.Usage.ReadLatencySeconds,
		TargetFreeBytes: c.Usage.TargetFreeBytes, ReportedAt: c.Usage.At, Reason: c.Reason,
		External: c.External, LastSeen: c.LastSeen, StaleAfterSeconds: c.StaleAfter.Seconds()}
	var assigned float64
	var reserved int64
	for _, t := range c.Migrations {
		v.Migrations = append(v.Migrations, t.MigrationID)
		assigned += t.BandwidthBytesSec
		reserved += t.Bytes
	}
	// Free capacity is what is not promised to assigned migrations.
	v.Free = Resources{
		CPUMillis: max(alloc.CPUMillis-used.CPUMillis, 0), RAMBytes: max(alloc.RAMBytes-used.RAMBytes, 0),
		BandwidthBytesSec: max(alloc.BandwidthBytesSec-assigned, 0), StorageBytes: max(alloc.StorageBytes-reserved, 0),
		Tasks: max(alloc.Tasks-len(c.Migrations), 0),
	}
	return v
}

func (s *Server) connectors(c echo.Context) error {
	var conns []planning.Connector
	if err := s.query(c, workflows.QueryConnectors, &conns); err != nil {
		return err
	}
	out := make([]ConnectorView, 0, len(conns))
	for _, conn := range conns {
		out = append(out, viewConnector(conn))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) plan(c echo.Context) error {
	var p planning.Plan
	if err := s.query(c, workflows.QueryPlan, &p); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// PolicyView is the pool's scaling policy with the cooldown as a duration string.
type PolicyView struct {
	planning.Policy
	ScaleInCooldown string `json:"scale_in_cooldown"`
}

func policyView(p planning.Policy) PolicyView {
	return PolicyView{Policy: p, ScaleInCooldown: p.ScaleInCooldown.String()}
}

func (s *Server) policy(c echo.Context) error {
	var p planning.Policy
	if err := s.query(c, workflows.QueryPolicy, &p); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, policyView(p))
}

// setPolicy changes the fields of the pool's scaling policy that the body gives.
func (s *Server) setPolicy(c echo.Context) error {
	var req workflows.PolicyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	// The fleet checks the values against the policy in force; who and why are
	// checked here, so that they are asked for first.
	if err := (workflows.Control{Who: req.Who, Why: req.Why}).Validate(); err != nil {
		return err
	}
	if err := workflows.CheckWhoWhy(req.Who, req.Why); err != nil {
		return err
	}
	// Each value's own range, checked against the default policy, whose connector
	// bounds are the loosest; the fleet checks the values together with its own.
	if _, err := req.Apply(planning.DefaultPolicy()); err != nil {
		return err
	}
	var p planning.Policy
	if err := s.update(c, workflows.UpdatePolicy, "", req, &p); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, policyView(p))
}

// simulateBody is POST /simulate's body. Hours and seed are pointers, so that one
// left out takes its default while a zero is checked.
type simulateBody struct {
	Policy workflows.PolicyRequest `json:"policy"`
	Hours  *int                    `json:"hours"`
	Seed   *uint64                 `json:"seed"`
}

// SimulationView is POST /simulate's answer: the policies compared, with the cooldown
// as a duration string, and the simulation.
type SimulationView struct {
	Current  PolicyView `json:"current"`
	Proposed PolicyView `json:"proposed"`
	activities.SimulateResult
}

// simulate runs a short simulation of the pool's planned work under its policy and a
// proposed change to it; nothing changes.
func (s *Server) simulate(c echo.Context) error {
	var b simulateBody
	if err := decode(c, &b); err != nil {
		return err
	}
	req := workflows.SimulateRequest{Policy: b.Policy, Hours: 24, Seed: 1}
	if b.Hours != nil {
		req.Hours = *b.Hours
	}
	if b.Seed != nil {
		req.Seed = *b.Seed
	}
	if err := req.Validate(); err != nil {
		return err
	}
	var answer workflows.SimulateAnswer
	if err := s.update(c, workflows.UpdateSimulate, "", req, &answer); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, SimulationView{Current: policyView(answer.Current), Proposed: policyView(answer.Proposed),
		SimulateResult: answer.Result})
}

func (s *Server) scale(c echo.Context) error {
	var req workflows.ScaleRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	var res workflows.ScaleResult
	if err := s.update(c, workflows.UpdateScale, "", req, &res); err != nil {
		return err
	}
	views := make([]ConnectorView, 0, len(res.Connectors))
	for _, conn := range res.Connectors {
		views = append(views, viewConnector(conn))
	}
	return c.JSON(http.StatusOK, ScaleAnswer{Action: res.Action, Connectors: views})
}

// overrideBody is POST /overrides's body.
type overrideBody struct {
	Kind        string `json:"kind"`
	Site        string `json:"site"`
	ConnectorID string `json:"connector_id"`
	Min         int    `json:"min"`
	Max         int    `json:"max"`
	Who         string `json:"who"`
	Why         string `json:"why"`
	// Expires is an RFC 3339 time; TTL a Go duration such as "2h". One is needed.
	Expires string `json:"expires"`
	TTL     string `json:"ttl"`
}

func (s *Server) override(c echo.Context) error {
	var b overrideBody
	if err := decode(c, &b); err != nil {
		return err
	}
	now := time.Now().UTC()
	o := planning.Override{ID: "ovr-" + uuid.NewString(), Kind: b.Kind, Site: b.Site, ConnectorID: b.ConnectorID,
		Min: b.Min, Max: b.Max, Who: b.Who, Why: b.Why, At: now}
	switch {
	case b.Expires != "" && b.TTL != "":
		return validation.Field("ttl", "give expires or ttl, not both")
	case b.Expires != "":
		t, err := parseTime("expires", b.Expires)
		if err != nil {
			return err
		}
		o.Expires = t
	case b.TTL != "":
		d, err := time.ParseDuration(b.TTL)
		if err != nil || d <= 0 {
			return validation.Field("ttl", "must be a positive duration such as 30m or 2h, got %q", b.TTL)
		}
		o.Expires = now.Add(d)
	default:
		return validation.Field("expires", "give expires (RFC 3339) or ttl (e.g. 2h): every override ends")
	}
	if err := workflows.ValidateOverride(o); err != nil {
		return err
	}
	if err := workflows.CheckOverrideText(o); err != nil {
		return err
	}
	pool, err := s.fleetPool(c)
	if err != nil {
		return err
	}
	if err := s.Temporal.SignalWorkflow(c.Request().Context(), workflows.FleetWorkflowID(pool), "", workflows.SignalOverride, o); err != nil {
		return fleetError(pool, err)
	}
	return c.JSON(http.StatusAccepted, o)
}

func (s *Server) overrides(c echo.Context) error {
	var v workflows.OverridesView
	if err := s.query(c, workflows.QueryOverrides, &v); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) submitMigration(c echo.Context) error {
	var req workflows.MigrationRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.ID == "" {
		id, err := idempotentID(c)
		if err != nil {
			return err
		}
		req.ID = id
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	// The web server starts the migration itself: one call to Temporal, and the fleet
	// hears of it when the migration asks for a connector (docs/load.md).
	vm, err := s.Store.VM(ctx, req.VMID)
	if errors.Is(err, planning.ErrNotFound) {
		return validation.Field("vm_id", "no VM %s in the inventory", req.VMID)
	}
	if err != nil {
		return err
	}
	// The migration belongs to the pool of its VM's site, whose fleet gives it a
	// connector.
	if err := workflows.CheckSource(req, vm); err != nil {
		return err
	}
	in, err := workflows.NewMigrationInput(vm.Pool, req, vm)
	if err != nil {
		return err
	}
	if err := s.fleetRunning(ctx, vm.Pool); err != nil {
		return err
	}
	// A digest of the request goes into the migration's memo, so that a retry of
	// this request gets the first answer, while another request under a used ID
	// gets the migration as it is.
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(body)
	request := hex.EncodeToString(digest[:16])
	// An ID already in the history whose workflow Temporal has forgotten (its
	// retention is over) is not used again: the new run's outcome could not be
	// recorded under it.
	if rec, err := s.Store.MigrationByID(ctx, req.ID); err == nil {
		err := s.existingMigration(c, req.ID, request)
		var gone *serviceerror.NotFound
		if errors.As(err, &gone) {
			return fieldProblem(http.StatusConflict, &validation.Error{Field: "id", Reason: fmt.Sprintf(
				"migration %s is in the history (%s, ended %s); choose another id", req.ID, rec.Outcome, rec.EndedAt.UTC().Format(time.RFC3339))})
		}
		return err
	} else if !errors.Is(err, planning.ErrNotFound) {
		return err
	}
	if err := s.claimVM(ctx, in.VMID, in.ID); err != nil {
		return err
	}
	deadline := time.Now().Add(in.MaxTransfer)
	run, err := s.Temporal.ExecuteWorkflow(ctx, workflows.MigrationStartOptions(in, request), workflows.MigrationWorkflow, in)
	var dup *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &dup) {
		return s.existingMigration(c, req.ID, request)
	}
	if err != nil {
		return err
	}
	s.Logger.Info("migration started", "migration", in.ID, "vm", in.VMID, "site", in.Site, "run_id", run.GetRunID())
	c.Response().Header().Set(echo.HeaderLocation, "/migrations/"+url.PathEscape(req.ID))
	started := workflows.MigrationStarted{
		ID: in.ID, WorkflowID: run.GetID(), RunID: run.GetRunID(), VMID: in.VMID, Site: in.Site, SLATier: in.SLATier,
		Bytes: in.Bytes, Deadline: deadline,
	}
	return c.JSON(http.StatusCreated, SubmitAnswer{Migration: started, WebUI: s.workflowURL(started.WorkflowID)})
}

// maxIdempotencyKey is the longest Idempotency-Key a client may send.
const maxIdempotencyKey = 255

// idempotencyIDs is the UUID namespace of the migration IDs made from an
// Idempotency-Key.
var idempotencyIDs = uuid.MustParse("4f1d6a8e-3c2b-4d7e-9a51-6b0c2e8f7d13")

// idempotentID is the ID of a migration requested without one: made from the
// request's Idempotency-Key and the caller's API key, so that a client's retry names
// the migration its first try started, or a new UUID when the request has no key.
func idempotentID(c echo.Context) (string, error) {
	k := c.Request().Header.Get("Idempotency-Key")
	if k == "" {
		return uuid.NewString(), nil
	}
	if len(k) > maxIdempotencyKey || !printableASCII(k) {
		return "", validation.Field("Idempotency-Key", "must be 1 to %d printable ASCII characters", maxIdempotencyKey)
	}
	key, _ := c.Get(apiKeyContext).(store.APIKey)
	return uuid.NewSHA1(idempotencyIDs, []byte(key.ID+"\x00"+k)).String(), nil
}

// claimGrace is how long a VM's claim holds for a migration Temporal does not know: one
// that is being started. A start that failed frees the VM after it.
const claimGrace = time.Minute

// claimVM makes the migration the VM's one migration, or answers 409 naming the
// migration that holds it while that one runs: two migrations of a VM would write
// over each other's copy and cancel each other's.
func (s *Server) claimVM(ctx context.Context, vmID, migrationID string) error {
	holder, since, err := s.Store.ClaimVM(ctx, vmID, migrationID)
	if err != nil || holder == migrationID {
		return err
	}
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, workflows.MigrationWorkflowID(holder), "")
	var gone *serviceerror.NotFound
	switch {
	case errors.As(err, &gone):
		if time.Since(since) < claimGrace {
			return s.vmBusy(vmID, holder, "being started")
		}
	case err != nil:
		return err
	case desc.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return s.vmBusy(vmID, holder, "running")
	}
	took, err := s.Store.TakeVM(ctx, vmID, holder, migrationID)
	if err != nil {
		return err
	}
	if !took {
		return s.vmBusy(vmID, "another", "just started")
	}
	return nil
}

// vmBusy is the 409 of a VM another migration holds.
func (s *Server) vmBusy(vmID, holder, state string) error {
	return fieldProblem(http.StatusConflict, &validation.Error{Field: "vm_id", Reason: fmt.Sprintf(
		"%s is being migrated by migration %s (%s); a VM has one migration at a time: wait for it to end or cancel it", vmID, holder, state)})
}

// fleetSeenFor is how long a fleet seen running is trusted to be, so that most
// submissions do not ask Temporal again.
const fleetSeenFor = 5 * time.Second

// fleetRunning refuses work while the pool's fleet workflow is not running: a
// migration started then would find no one to give it a connector.
func (s *Server) fleetRunning(ctx context.Context, pool string) error {
	if seen, ok := s.fleetSeen.Load(pool); ok && time.Since(seen.(time.Time)) < fleetSeenFor {
		return nil
	}
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, workflows.FleetWorkflowID(pool), "")
	if err != nil {
		return fleetError(pool, err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return fleetError(pool, serviceerror.NewNotFound("fleet workflow "+st.String()))
	}
	s.fleetSeen.Store(pool, time.Now())
	return nil
}

// ScaleAnswer is POST /scale: what was done, and the connectors it touched.
type ScaleAnswer struct {
	Action     string          `json:"action"`
	Connectors []ConnectorView `json:"connectors"`
}

// SubmitAnswer is POST /migrations: the migration, and its page in the Web UI.
type SubmitAnswer struct {
	Migration workflows.MigrationStarted `json:"migration"`
	WebUI     string                     `json:"web_ui"`
}

// ControlAnswer is an operator's action on a migration, sent: Status is where to
// watch it take effect.
type ControlAnswer struct {
	Migration string `json:"migration"`
	Action    string `json:"action"`
	Status    string `json:"status"`
	WebUI     string `json:"web_ui"`
}

// MigrationList is GET /migrations: a page, and the token of the next one.
type MigrationList struct {
	Migrations []MigrationSummary `json:"migrations"`
	NextPage   string             `json:"next_page,omitempty"`
}

// MigrationSummary is one migration in GET /migrations, from the visibility store.
type MigrationSummary struct {
	ID         string    `json:"id"`
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	VMID       string    `json:"vm_id"`
	Site       string    `json:"site"`
	SLATier    string    `json:"sla_tier"`
	Phase      string    `json:"phase"`
	Connector  string    `json:"connector,omitempty"`
	Status     string    `json:"workflow_status"`
	StartedAt  time.Time `json:"started_at"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`
	WebUI      string    `json:"web_ui"`
}

// filterValue is what a list filter may hold: a name, so that it cannot change the
// visibility query it is put into.
var filterValue = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// migrationPhases are the values the state filter takes.
var migrationPhases = []string{workflows.PhaseWaiting, workflows.PhasePreparing, workflows.PhaseTransferring,
	workflows.PhasePaused, workflows.PhaseAwaitingCutover, workflows.PhaseCutover, workflows.PhaseRecording, workflows.PhaseDone}

// migrations lists the pool's migrations, newest first, filtered by state (phase),
// site and SLA tier, a page at a time.
func (s *Server) migrations(c echo.Context) error {
	pool, err := s.fleetPool(c)
	if err != nil {
		return err
	}
	q := fmt.Sprintf("WorkflowType = 'MigrationWorkflow' AND %s = '%s'", workflows.SearchPool.GetName(), pool)
	for _, f := range []struct {
		param string
		key   string
	}{{"state", workflows.SearchPhase.GetName()}, {"site", workflows.SearchSite.GetName()}, {"sla_tier", workflows.SearchSLATier.GetName()}} {
		v := c.QueryParam(f.param)
		if v == "" {
			continue
		}
		if !filterValue.MatchString(v) {
			return fieldProblem(http.StatusUnprocessableEntity, &validation.Error{Field: f.param, Reason: "must be a name of letters, digits, '.', '_' or '-'"})
		}
		if f.param == "state" && !slices.Contains(migrationPhases, v) {
			return fieldProblem(http.StatusUnprocessableEntity, &validation.Error{Field: "state", Reason: fmt.Sprintf("must be one of %s", strings.Join(migrationPhases, ", "))})
		}
		q += fmt.Sprintf(" AND %s = '%s'", f.key, v)
	}
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	var token []byte
	if v := c.QueryParam("page"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return fieldProblem(http.StatusUnprocessableEntity, &validation.Error{Field: "page", Reason: "is not a page token this API gave out"})
		}
		token = b
	}
	resp, err := s.Temporal.ListWorkflow(c.Request().Context(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: s.Namespace, PageSize: int32(limit), NextPageToken: token, Query: q,
	})
	if err != nil {
		return err
	}
	out := MigrationList{Migrations: []MigrationSummary{}, NextPage: base64.RawURLEncoding.EncodeToString(resp.GetNextPageToken())}
	for _, e := range resp.GetExecutions() {
		wid := e.GetExecution().GetWorkflowId()
		sa := e.GetSearchAttributes().GetIndexedFields()
		keyword := func(name string) string {
			var v string
			if p, ok := sa[name]; ok {
				_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
			}
			return v
		}
		m := MigrationSummary{
			ID: strings.TrimPrefix(wid, workflows.MigrationWorkflowID("")), WorkflowID: wid, RunID: e.GetExecution().GetRunId(),
			Site: keyword(workflows.SearchSite.GetName()), SLATier: keyword(workflows.SearchSLATier.GetName()),
			Phase: keyword(workflows.SearchPhase.GetName()), Connector: keyword(workflows.SearchConnector.GetName()),
			Status: e.GetStatus().String(), StartedAt: e.GetStartTime().AsTime(), WebUI: s.workflowURL(wid),
		}
		if e.GetCloseTime() != nil {
			m.ClosedAt = e.GetCloseTime().AsTime()
		}
		if p := e.GetMemo().GetFields()["vm"]; p != nil {
			_ = s.dataConverter().FromPayload(p, &m.VMID)
		}
		out.Migrations = append(out.Migrations, m)
	}
	return c.JSON(http.StatusOK, out)
}

// control returns the handler that sends an operator's signal to a running migration:
// cancel, pause, resume or priority. The body says who and why (and the priority).
func (s *Server) control(signal string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		if err := validation.ID("id", id); err != nil {
			return err
		}
		var req workflows.PriorityChange
		var arg any
		if signal == workflows.SignalPriority {
			if err := decode(c, &req); err != nil {
				return err
			}
			if err := req.Validate(); err != nil {
				return err
			}
			arg = req
		} else {
			if err := decode(c, &req.Control); err != nil {
				return err
			}
			if err := req.Control.Validate(); err != nil {
				return err
			}
			arg = req.Control
		}
		if err := workflows.CheckWhoWhy(req.Who, req.Why); err != nil {
			return err
		}
		ctx := c.Request().Context()
		wid, desc, err := s.describeMigration(ctx, id)
		if err != nil {
			return err
		}
		if st := desc.WorkflowExecutionInfo.GetStatus(); st != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return problem(http.StatusConflict, fmt.Sprintf("migration %q has finished (%s); there is nothing to %s", id, st, signal))
		}
		if err := s.Temporal.SignalWorkflow(ctx, wid, "", signal, arg); err != nil {
			return err
		}
		return c.JSON(http.StatusAccepted, ControlAnswer{Migration: id, Action: signal, Status: "/migrations/" + url.PathEscape(id), WebUI: s.workflowURL(wid)})
	}
}

// existingMigration answers a submission under a used migration ID with that
// migration: 201, as the first time, when the submission is a retry of the request that
// started it (request is its digest); 200 with existing set when it is another. It
// reads what Temporal holds (the run, its memo and its input) rather than querying the
// workflow: a query needs a worker to answer it and can time out while the migration
// has only just started, which is when a client's retry comes.
func (s *Server) existingMigration(c echo.Context, id, request string) error {
	ctx := c.Request().Context()
	wid := workflows.MigrationWorkflowID(id)
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, wid, "")
	if err != nil {
		return err
	}
	info := desc.GetWorkflowExecutionInfo()
	hist, err := s.Temporal.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
		Namespace: s.Namespace, Execution: info.GetExecution(), MaximumPageSize: 1})
	if err != nil {
		return err
	}
	var in workflows.MigrationInput
	events := hist.GetHistory().GetEvents()
	if len(events) == 0 || events[0].GetWorkflowExecutionStartedEventAttributes() == nil {
		return fmt.Errorf("migration %s: its history does not begin with its start", id)
	}
	if err := s.dataConverter().FromPayloads(events[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
		return fmt.Errorf("migration %s: its input: %w", id, err)
	}
	var first string
	if p := info.GetMemo().GetFields()[workflows.MemoRequest]; p != nil {
		// Migrations started before the digest was kept have none: never a retry.
		_ = s.dataConverter().FromPayload(p, &first)
	}
	retry := first == request
	deadline := info.GetStartTime().AsTime().Add(in.MaxTransfer)
	if in.Continued != nil { // a run that continued as new keeps the first run's deadline
		deadline = in.Continued.Status.Deadline
	}
	started := workflows.MigrationStarted{
		ID: id, WorkflowID: wid, RunID: info.GetExecution().GetRunId(), VMID: in.VMID, Site: in.Site, SLATier: in.SLATier,
		Bytes: in.Bytes, Deadline: deadline, Existing: !retry,
	}
	c.Response().Header().Set(echo.HeaderLocation, "/migrations/"+url.PathEscape(id))
	status := http.StatusOK
	if retry {
		status = http.StatusCreated
	}
	return c.JSON(status, SubmitAnswer{Migration: started, WebUI: s.workflowURL(wid)})
}

// MigrationView is GET /migrations/{id}: the workflow's status plus the transfer's
// progress from its last heartbeat.
type MigrationView struct {
	workflows.MigrationStatus
	WorkflowStatus string  `json:"workflow_status"`
	BytesDone      int64   `json:"bytes_done"`
	Progress       float64 `json:"progress"`
	SLASecondsLeft float64 `json:"sla_seconds_left"`
	// BytesPerSec is the current attempt's rate so far and ETASeconds the time left
	// at that rate; both zero when no copy runs.
	BytesPerSec      float64 `json:"bytes_per_sec"`
	ETASeconds       float64 `json:"eta_seconds"`
	TransferAttempts int32   `json:"transfer_attempts,omitempty"`
	WebUI            string  `json:"web_ui"`
}

func (s *Server) migration(c echo.Context) error {
	id := c.Param("id")
	if err := validation.ID("id", id); err != nil {
		return err
	}
	ctx := c.Request().Context()
	wid, desc, err := s.describeMigration(ctx, id)
	if err != nil {
		return err
	}
	v, err := s.Temporal.QueryWorkflow(ctx, wid, "", workflows.QueryMigration)
	if err != nil {
		return err
	}
	view := MigrationView{WebUI: s.workflowURL(wid)}
	if err := v.Get(&view.MigrationStatus); err != nil {
		return err
	}
	view.WorkflowStatus = desc.WorkflowExecutionInfo.GetStatus().String()
	switch {
	case view.Outcome == workflows.OutcomeSucceeded || view.Outcome == workflows.OutcomeSLABreached:
		view.BytesDone = view.Bytes
	default:
		for _, pa := range desc.PendingActivities {
			if pa.GetActivityType().GetName() != "Transfer" || pa.GetHeartbeatDetails() == nil {
				continue
			}
			var offset, began int64
			if err := s.dataConverter().FromPayloads(pa.GetHeartbeatDetails(), &offset, &began); err == nil {
				view.BytesDone = offset
				// The rate between the attempt's start and its last heartbeat: the
				// SDK sends heartbeats at intervals, so "now" would understate it.
				secs := pa.GetLastHeartbeatTime().AsTime().Sub(pa.GetLastStartedTime().AsTime()).Seconds()
				if secs > 0 && offset > began {
					view.BytesPerSec = float64(offset-began) / secs
					view.ETASeconds = float64(view.Bytes-offset) / view.BytesPerSec
				}
			}
			view.TransferAttempts = pa.GetAttempt()
		}
	}
	if view.Bytes > 0 {
		view.Progress = float64(view.BytesDone) / float64(view.Bytes)
	}
	if view.WorkflowStatus == enums.WORKFLOW_EXECUTION_STATUS_RUNNING.String() {
		view.SLASecondsLeft = time.Until(view.Deadline).Seconds()
	}
	return c.JSON(http.StatusOK, view)
}

func (s *Server) workflowURL(workflowID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", s.UIURL, url.PathEscape(s.Namespace), url.PathEscape(workflowID))
}

// describeMigration describes migration id's workflow, returning its workflow ID; an
// unknown migration is a 404 that names it.
func (s *Server) describeMigration(ctx context.Context, id string) (string, *workflowservice.DescribeWorkflowExecutionResponse, error) {
	wid := workflows.MigrationWorkflowID(id)
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, wid, "")
	if err != nil {
		if toProblem(err).Status == http.StatusNotFound {
			return wid, nil, problem(http.StatusNotFound, fmt.Sprintf("no migration %q", id))
		}
		return wid, nil, err
	}
	return wid, desc, nil
}
