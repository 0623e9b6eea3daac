package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// registerConnector adds an external connector to the pool: 201 with the connector,
// or 200 when it was registered before with the same values.
func (s *Server) registerConnector(c echo.Context) error {
	var req workflows.RegisterConnectorRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	var res workflows.RegisterConnectorResult
	if err := s.update(c, workflows.UpdateRegisterConnector, "", req, &res); err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Existing {
		status = http.StatusOK
	}
	return c.JSON(status, RegisterAnswer{Connector: viewConnector(res.Connector), Existing: res.Existing})
}

// RegisterAnswer is POST /connectors: the connector, and whether it was there before.
type RegisterAnswer struct {
	Connector ConnectorView `json:"connector"`
	Existing  bool          `json:"existing"`
}

// deregisterConnector takes an external connector out of the pool once its
// migrations are done; its process keeps running.
func (s *Server) deregisterConnector(c echo.Context) error {
	if err := validation.ID("id", c.Param("id")); err != nil {
		return err
	}
	var ctl workflows.Control
	if err := decode(c, &ctl); err != nil {
		return err
	}
	if err := ctl.Validate(); err != nil {
		return err
	}
	if err := workflows.CheckWhoWhy(ctl.Who, ctl.Why); err != nil {
		return err
	}
	req := workflows.DeregisterConnectorRequest{ID: c.Param("id"), Who: ctl.Who, Why: ctl.Why}
	var conn planning.Connector
	if err := s.update(c, workflows.UpdateDeregisterConnector, "", req, &conn); err != nil {
		return notFound(err)
	}
	return c.JSON(http.StatusOK, viewConnector(conn))
}

// connectorMetrics records the metrics an external connector posts: one sample (a
// JSON object) or several (an array), checked here and by the fleet, which stores
// them and renews the connector's health.
func (s *Server) connectorMetrics(c echo.Context) error {
	var raw json.RawMessage
	if err := decode(c, &raw); err != nil {
		return err
	}
	req := workflows.ConnectorMetricsRequest{ConnectorID: c.Param("id")}
	single := !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("["))
	if err := decodeSamples(raw, single, &req.Samples); err != nil {
		return err
	}
	if len(req.Samples) > workflows.MaxMetricSamples {
		return fieldProblem(http.StatusRequestEntityTooLarge, &validation.Error{Field: "samples",
			Reason: fmt.Sprintf("at most %d samples in one request, got %d; send the rest in another", workflows.MaxMetricSamples, len(req.Samples))})
	}
	if err := req.Validate(time.Now()); err != nil {
		var fe *validation.Error
		if single && errors.As(err, &fe) {
			// One object was sent: name its field, not an array's element.
			fe.Field = strings.TrimPrefix(fe.Field, "samples[0].")
		}
		return err
	}
	var res workflows.ConnectorMetricsResult
	if err := s.update(c, workflows.UpdateConnectorMetrics, "", req, &res); err != nil {
		return notFound(err)
	}
	return c.JSON(http.StatusOK, res)
}

// decodeSamples reads one sample or an array of them strictly.
func decodeSamples(raw json.RawMessage, single bool, out *[]planning.MetricSample) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if single {
		var m planning.MetricSample
		if err := dec.Decode(&m); err != nil {
			return decodeProblem(err)
		}
		*out = []planning.MetricSample{m}
		return nil
	}
	if err := dec.Decode(out); err != nil {
		return decodeProblem(err)
	}
	return nil
}

// notFound answers 404 for a connector that the path names and the fleet does not
// know, rather than the 422 of an unknown reference in a body.
func notFound(err error) error {
	var appErr *temporal.ApplicationError
	var fe validation.Error
	if errors.As(err, &appErr) && appErr.Type() == validation.NotFoundErrorType && appErr.HasDetails() && appErr.Details(&fe) == nil {
		return fieldProblem(http.StatusNotFound, &fe)
	}
	return err
}
