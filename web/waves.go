package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// waveBody is POST /waves: the wave to start, a POST /forecast request's ID planned
// with "plan": true, and how to run it.
type waveBody struct {
	ID string `json:"id"`
	// RequireApproval makes each migration's cutover wait for POST /waves/{id}/approve.
	RequireApproval bool `json:"require_approval,omitempty"`
	// MaxRunning bounds the wave's migrations running at once; by default, what the
	// pool's connectors can run at once (see poolTasks).
	MaxRunning int `json:"max_running,omitempty"`
}

// maxWaveRunning bounds max_running: more than the Temporal namespace's default limit
// of a workflow's pending children times the batches would buy nothing.
const maxWaveRunning = 100000

// WaveView is a wave's progress and its workflow in the Temporal Web UI, whose
// children are its batches and theirs its migrations.
type WaveView struct {
	workflows.WaveProgress
	WorkflowID string `json:"workflow_id"`
	WebUI      string `json:"web_ui"`
	// Status is the wave workflow's: Running, Completed, Failed, Terminated...
	Status string `json:"status,omitempty"`
	// ETA is when the wave should end at the rate it has copied so far, and
	// LateSeconds how far past its deadline that is (zero when it is not).
	ETA         time.Time `json:"eta,omitzero"`
	LateSeconds float64   `json:"late_seconds,omitempty"`
	// Report is the end-of-wave report, once the wave has ended.
	Report *contract.WaveReport `json:"report,omitempty"`
}

// startWave starts a planned wave's workflow, once: a second call starts nothing and
// answers the same.
func (s *Server) startWave(c echo.Context) error {
	var b waveBody
	if err := decode(c, &b); err != nil {
		return err
	}
	if err := validation.ID("id", b.ID); err != nil {
		return err
	}
	if b.MaxRunning < 0 || b.MaxRunning > maxWaveRunning {
		return validation.Field("max_running", "must be 0 (the default, %d) to %d, got %d", workflows.DefaultWaveMaxRunning, maxWaveRunning, b.MaxRunning)
	}
	pool, err := s.fleetPool(c)
	if err != nil {
		return err
	}
	if b.MaxRunning == 0 {
		if b.MaxRunning, err = s.poolTasks(c); err != nil {
			return err
		}
	}
	id := workflows.WaveWorkflowID(b.ID)
	_, err = s.Temporal.ExecuteWorkflow(c.Request().Context(), client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.WaveWorkflow, workflows.WaveInput{ID: b.ID, Pool: pool, RequireApproval: b.RequireApproval, MaxRunning: b.MaxRunning})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return err
	}
	return c.JSON(http.StatusAccepted, WaveView{WaveProgress: workflows.WaveProgress{ID: b.ID, Pool: pool}, WorkflowID: id, WebUI: s.workflowURL(id)})
}

// poolTasks is a wave's max_running when the request gives none: as many migrations
// as the pool's connectors can run at once (its connector limit, times the tasks of the
// size it provisions), at most DefaultWaveMaxRunning. More would wait for a connector
// with their SLA timers running: a wave of 10,000 at 1,000 running on 40 connectors
// broke the 2-minute gold tier 48 times (docs/scaling.md).
func (s *Server) poolTasks(c echo.Context) (int, error) {
	var policy planning.Policy
	if err := s.query(c, workflows.QueryPolicy, &policy); err != nil {
		return 0, err
	}
	size, _ := planning.SizeNamed(planning.DefaultSize)
	return min(workflows.DefaultWaveMaxRunning, policy.ConnectorLimit()*size.MaxTasks), nil
}

// wave is GET /waves/{id}: the wave's progress, from its workflow and its running
// batches, with its report once it has ended.
func (s *Server) wave(c echo.Context) error {
	id := c.Param("id")
	if err := validation.ID("id", id); err != nil {
		return err
	}
	ctx := c.Request().Context()
	desc, err := s.describeWave(ctx, id)
	if err != nil {
		return err
	}
	v, err := s.waveView(ctx, id, desc.WorkflowExecutionInfo.GetStatus())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// describeWave describes a wave's workflow; NotFound names the id.
func (s *Server) describeWave(ctx context.Context, id string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, workflows.WaveWorkflowID(id), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, fieldProblem(http.StatusNotFound, &validation.Error{Field: "id", Reason: "no wave " + id + " was started"})
	}
	return desc, err
}

// waveView is a wave's progress: a running wave's from its query and its running
// batches' queries, an ended wave's from its last run's result and its report.
func (s *Server) waveView(ctx context.Context, id string, status enumspb.WorkflowExecutionStatus) (WaveView, error) {
	wid := workflows.WaveWorkflowID(id)
	view := WaveView{WorkflowID: wid, WebUI: s.workflowURL(wid), Status: statusName(status)}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if err := s.Temporal.GetWorkflow(ctx, wid, "").Get(ctx, &view.WaveProgress); err != nil {
			view.WaveProgress = workflows.WaveProgress{ID: id, Done: true, RefusedCount: 1,
				Refused: []string{"the wave's workflow ended without a result: " + err.Error()}}
		}
		r, err := s.Store.WaveReport(ctx, id)
		if err == nil {
			view.Report = &r
		} else if !errors.Is(err, planning.ErrNotFound) {
			return view, err
		}
		return view, nil
	}
	q, err := s.Temporal.QueryWorkflow(ctx, wid, "", workflows.QueryWave)
	if err != nil {
		return view, err
	}
	if err := q.Get(&view.WaveProgress); err != nil {
		return view, err
	}
	// Each running batch answers for its own migrations; one that ended meanwhile is
	// counted by the wave's next answer, so a missed one is left out, not an error.
	shares := make([]workflows.WaveProgress, len(view.Batches))
	var wg sync.WaitGroup
	for i, b := range view.Batches {
		wg.Go(func() {
			if q, err := s.Temporal.QueryWorkflow(ctx, b, "", workflows.QueryWave); err == nil {
				_ = q.Get(&shares[i])
			}
		})
	}
	wg.Wait()
	for _, share := range shares {
		view.Add(share)
	}
	view.ETA, view.LateSeconds = waveETA(view.WaveProgress, time.Now())
	return view, nil
}

// waveETA is when a running wave should end at the rate it has copied since it began
// (or since its earliest start, if later), and how far past its deadline that is.
func waveETA(p workflows.WaveProgress, now time.Time) (time.Time, float64) {
	from := p.StartedAt
	if p.EarliestStart.After(from) {
		from = p.EarliestStart
	}
	elapsed := now.Sub(from)
	if p.BytesDone <= 0 || elapsed <= 0 || p.BytesPlanned <= p.BytesDone {
		return time.Time{}, 0
	}
	left := time.Duration(float64(elapsed) * float64(p.BytesPlanned-p.BytesDone) / float64(p.BytesDone))
	eta := now.Add(left).UTC().Truncate(time.Second)
	return eta, max(0, eta.Sub(p.Deadline).Seconds())
}

// statusName is a workflow status as the Web UI names it: Running, Completed...
func statusName(s enumspb.WorkflowExecutionStatus) string {
	name := s.String()
	if name == "Unspecified" {
		return ""
	}
	return name
}

// waveAction returns the handler of an operator's action on a whole wave: pause,
// resume, cancel, approve or retry, with who and why. A retry of a wave that has
// ended starts a new run of it for its failed migrations.
func (s *Server) waveAction(action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		if err := validation.ID("id", id); err != nil {
			return err
		}
		var ctl workflows.Control
		if err := decode(c, &ctl); err != nil {
			return err
		}
		if err := workflows.CheckWhoWhy(ctl.Who, ctl.Why, true); err != nil {
			return err
		}
		ctx := c.Request().Context()
		desc, err := s.describeWave(ctx, id)
		if err != nil {
			return err
		}
		wid := workflows.WaveWorkflowID(id)
		status := desc.WorkflowExecutionInfo.GetStatus()
		switch {
		case status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && action == workflows.WaveRetry:
			if err := s.retryEndedWave(ctx, id, ctl); err != nil {
				return err
			}
		case status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			return problem(http.StatusConflict, fmt.Sprintf("wave %s has ended (%s); there is nothing to %s", id, statusName(status), action))
		default:
			h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: workflows.UpdateWaveControl,
				Args: []any{workflows.WaveControl{Action: action, Control: ctl}}, WaitForStage: client.WorkflowUpdateStageCompleted})
			if err == nil {
				err = h.Get(ctx, nil)
			}
			if err != nil {
				return err
			}
		}
		desc, err = s.describeWave(ctx, id)
		if err != nil {
			return err
		}
		v, err := s.waveView(ctx, id, desc.WorkflowExecutionInfo.GetStatus())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	}
}

// retryEndedWave starts a new run of an ended wave for its failed migrations, as its
// next attempt, carrying the audit on.
func (s *Server) retryEndedWave(ctx context.Context, id string, ctl workflows.Control) error {
	wid := workflows.WaveWorkflowID(id)
	var last workflows.WaveProgress
	if err := s.Temporal.GetWorkflow(ctx, wid, "").Get(ctx, &last); err != nil {
		return problem(http.StatusConflict, fmt.Sprintf("wave %s ended without a result (%v); start it again with POST /waves", id, err))
	}
	r, err := s.Store.WaveReport(ctx, id)
	if err != nil && !errors.Is(err, planning.ErrNotFound) {
		return err
	}
	if err == nil && r.Outcomes.Failed == 0 {
		return problem(http.StatusConflict, fmt.Sprintf("wave %s has no failed migrations to retry", id))
	}
	controls := append(last.Controls, workflows.ControlEvent{At: time.Now().UTC(), Action: workflows.WaveRetry, Who: ctl.Who, Why: ctl.Why})
	_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.WaveWorkflow, workflows.WaveInput{ID: id, Pool: last.Pool, RequireApproval: last.RequireApproval,
		MaxRunning: last.MaxRunning, Attempt: last.Attempt + 1, Controls: controls})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return problem(http.StatusConflict, fmt.Sprintf("wave %s is running again already", id))
	}
	return err
}

// waveReport is GET /waves/{id}/report: the end-of-wave report.
func (s *Server) waveReport(c echo.Context) error {
	id := c.Param("id")
	if err := validation.ID("id", id); err != nil {
		return err
	}
	r, err := s.Store.WaveReport(c.Request().Context(), id)
	if errors.Is(err, planning.ErrNotFound) {
		return fieldProblem(http.StatusNotFound, &validation.Error{Field: "id", Reason: "wave " + id + " has no report: it has not ended, or was never started"})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// waves is GET /waves: the newest waves, each with its progress (a running one's from
// its workflow, an ended one's from its last run and report).
func (s *Server) waves(c echo.Context) error {
	limit, err := queryInt(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var ids []string
	statuses := map[string]enumspb.WorkflowExecutionStatus{}
	var token []byte
	for len(ids) < limit {
		resp, err := s.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: "WorkflowType = 'WaveWorkflow'", PageSize: int32(limit), NextPageToken: token})
		if err != nil {
			return err
		}
		for _, e := range resp.GetExecutions() {
			// A retried wave has a run per attempt: the newest stands for it.
			wid := e.GetExecution().GetWorkflowId()
			if _, seen := statuses[wid]; seen || !strings.HasPrefix(wid, "wave-") || len(ids) == limit {
				continue
			}
			statuses[wid] = e.GetStatus()
			ids = append(ids, strings.TrimPrefix(wid, "wave-"))
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	out := make([]WaveView, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { out[i], errs[i] = s.waveView(ctx, id, statuses[workflows.WaveWorkflowID(id)]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
