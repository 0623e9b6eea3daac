package main

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// waveBody is POST /waves: the wave to start, a POST /forecast request's ID planned
// with "plan": true.
type waveBody struct {
	ID string `json:"id"`
}

// WaveView is a wave's progress and its workflow in the Temporal Web UI, whose
// children are its migrations.
type WaveView struct {
	workflows.WaveProgress
	WorkflowID string `json:"workflow_id"`
	WebUI      string `json:"web_ui"`
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
	pool, err := s.fleetPool(c)
	if err != nil {
		return err
	}
	id := workflows.WaveWorkflowID(b.ID)
	_, err = s.Temporal.ExecuteWorkflow(c.Request().Context(), client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.WaveWorkflow, workflows.WaveInput{ID: b.ID, Pool: pool})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return err
	}
	return c.JSON(http.StatusAccepted, WaveView{WaveProgress: workflows.WaveProgress{ID: b.ID, Pool: pool}, WorkflowID: id, WebUI: s.workflowURL(id)})
}

// wave is GET /waves/{id}: the wave's progress, from its workflow.
func (s *Server) wave(c echo.Context) error {
	id := c.Param("id")
	if err := validation.ID("id", id); err != nil {
		return err
	}
	wid := workflows.WaveWorkflowID(id)
	v, err := s.Temporal.QueryWorkflow(c.Request().Context(), wid, "", workflows.QueryWave)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fieldProblem(http.StatusNotFound, &validation.Error{Field: "id", Reason: "no wave " + id + " was started"})
	}
	if err != nil {
		return err
	}
	view := WaveView{WorkflowID: wid, WebUI: s.workflowURL(wid)}
	if err := v.Get(&view.WaveProgress); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view)
}
