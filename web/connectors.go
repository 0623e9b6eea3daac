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
	"github.com/pmo-dev/pmo/store"
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
	if err := workflows.CheckWhoWhy(ctl.Who, ctl.Why, true); err != nil {
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
// JSON object) or several (an array), checked and stored here with the time it was
// seen. The fleet reads them at its next tick and renews the connector's health then:
// thousands of appliances posting every few seconds never touch its history.
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
	r, err := s.Store.RecordExternalMetrics(c.Request().Context(), req.ConnectorID, req.Samples)
	switch {
	case errors.Is(err, store.ErrUnknownConnector):
		return fieldProblem(http.StatusNotFound, &validation.Error{Field: "connector_id", Reason: fmt.Sprintf("no connector %q is registered", req.ConnectorID)})
	case errors.Is(err, store.ErrNotExternal):
		return fieldProblem(http.StatusConflict, &validation.Error{Field: "connector_id", Reason: fmt.Sprintf(
			"connector %q was started by PMO, not registered; PMO reads its metrics itself and drains it through POST /scale", req.ConnectorID)})
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, workflows.ConnectorMetricsResult{ConnectorID: req.ConnectorID, Received: len(req.Samples), Stored: r.Stored,
		State: r.State, LastSeen: r.LastSeen})
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
	TargetFreeBytes int64 `json:"target_free_bytes,omitempty"`
	// CPUThrottledPercent is how long its CPU limit held the connector back in its
	// last report, as a percentage of the interval; absent where it never was.
	CPUThrottledPercent float64 `json:"cpu_throttled_percent,omitempty"`
	// Bound is what held the connector back in its last report: "cpu" or
	// "bandwidth"; absent where neither did.
	Bound string `json:"bound,omitempty"`
	// Unreachable says that the connector's process runs but it has not reported for
	// over planning.UnreachableAfter, as when its site's link is down.
	Unreachable bool      `json:"unreachable,omitempty"`
	ReportedAt  time.Time `json:"reported_at,omitzero"`
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
		TargetFreeBytes: c.Usage.TargetFreeBytes, CPUThrottledPercent: c.Usage.CPUThrottledPercent, Bound: c.Bound(), Unreachable: c.Unreachable,
		ReportedAt: c.Usage.At, Reason: c.Reason,
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
