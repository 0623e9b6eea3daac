package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

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
		if err := workflows.CheckWhoWhy(req.Who, req.Why, true); err != nil {
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
