package main

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

func (s *Server) plan(c echo.Context) error {
	var p planning.Plan
	if err := s.query(c, workflows.QueryPlan, &p); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// PolicyView is the pool's scaling policy with the cooldown as a duration string, or
// "auto" where it is derived from the boots (planning.Policy.Cooldown).
type PolicyView struct {
	planning.Policy
	ScaleInCooldown string `json:"scale_in_cooldown"`
}

func policyView(p planning.Policy) PolicyView {
	return PolicyView{Policy: p, ScaleInCooldown: p.CooldownSetting()}
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
	if err := workflows.CheckWhoWhy(req.Who, req.Why, true); err != nil {
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
