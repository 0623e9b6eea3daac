package workflows

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// External connectors run at a customer site: PMO did not start them and never
// starts, restarts, resizes, stops or scales them in. An operator registers one with
// the pool; it posts its metrics to the API, and it takes work only while they are
// fresh (planning.Connector.Stale).

// CustomSize names the size of an external connector registered with explicit amounts.
const CustomSize = "custom"

// MaxStaleAfter bounds how long an external connector may be silent and still count
// as healthy.
const MaxStaleAfter = 24 * time.Hour

// RegisterConnectorRequest adds an external connector to the pool. Its size is either
// a standard size's name or every amount given.
type RegisterConnectorRequest struct {
	ID   string `json:"id"`
	Site string `json:"site"`
	// Size names a standard size (small, medium, large); leave it out to give the
	// amounts instead.
	Size              string  `json:"size,omitempty"`
	CPUMillis         int     `json:"cpu_millis,omitempty"`
	RAMBytes          int64   `json:"ram_bytes,omitempty"`
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec,omitempty"`
	StorageBytes      int64   `json:"storage_bytes,omitempty"`
	MaxTasks          int     `json:"max_tasks,omitempty"`
	// TaskQueue is the queue the connector polls; default ConnectorTaskQueue(ID).
	TaskQueue string `json:"task_queue,omitempty"`
	// StaleAfter is how long the connector may go without posting metrics before it
	// takes no work, as a duration such as "2m"; default planning.DefaultStaleAfter.
	StaleAfter string `json:"stale_after,omitempty"`
	Who        string `json:"who"`
	Why        string `json:"why"`
}

// MaxExternalTasks bounds an external connector's concurrency.
const MaxExternalTasks = 64

// Validate checks the request's form; the fleet checks it against its state.
func (r RegisterConnectorRequest) Validate() error {
	if err := validation.ID("id", r.ID); err != nil {
		return err
	}
	if r.Site == "" {
		return validation.Field("site", "is required")
	}
	if _, err := r.spec(); err != nil {
		return err
	}
	if err := validation.Name("task_queue", r.TaskQueue); err != nil {
		return err
	}
	if err := CheckWhoWhy(r.Who, r.Why, false); err != nil {
		return err
	}
	return checkNames(r.Who, r.Why, r.Site, "")
}

// spec is the connector the request describes, in the state it starts in: unhealthy
// until its first metrics arrive.
func (r RegisterConnectorRequest) spec() (planning.Connector, error) {
	c := planning.Connector{ID: r.ID, Site: r.Site, State: planning.StateUnhealthy, TaskQueue: r.TaskQueue, External: true,
		StaleAfter: planning.DefaultStaleAfter}
	amounts := r.CPUMillis != 0 || r.RAMBytes != 0 || r.BandwidthBytesSec != 0 || r.StorageBytes != 0 || r.MaxTasks != 0
	switch {
	case r.Size != "" && amounts:
		return c, validation.Field("size", "give a size or the amounts (cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, max_tasks), not both")
	case r.Size != "":
		size, ok := planning.SizeNamed(r.Size)
		if !ok {
			return c, validation.Field("size", "must be one of %s, got %q", sizeNames(), r.Size)
		}
		c.Size = size
	case !amounts:
		return c, validation.Field("size", "give a size (%s) or the amounts (cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, max_tasks)", sizeNames())
	case r.CPUMillis <= 0:
		return c, validation.Field("cpu_millis", "must be positive, got %d", r.CPUMillis)
	case r.RAMBytes <= 0:
		return c, validation.Field("ram_bytes", "must be positive, got %d", r.RAMBytes)
	case !(r.BandwidthBytesSec > 0) || math.IsInf(r.BandwidthBytesSec, 0):
		return c, validation.Field("bandwidth_bytes_per_sec", "must be a positive number, got %v", r.BandwidthBytesSec)
	case r.StorageBytes <= 0:
		return c, validation.Field("storage_bytes", "must be positive, got %d", r.StorageBytes)
	case r.MaxTasks < 1 || r.MaxTasks > MaxExternalTasks:
		return c, validation.Field("max_tasks", "must be between 1 and %d, got %d", MaxExternalTasks, r.MaxTasks)
	default:
		c.Size = planning.Size{Name: CustomSize, CPUMillis: r.CPUMillis, RAMBytes: r.RAMBytes, BandwidthBytesSec: r.BandwidthBytesSec,
			StorageBytes: r.StorageBytes, MaxTasks: r.MaxTasks}
	}
	if c.TaskQueue == "" {
		c.TaskQueue = ConnectorTaskQueue(r.ID)
	}
	if len(c.TaskQueue) > 255 || strings.ContainsFunc(c.TaskQueue, func(r rune) bool { return r <= ' ' }) {
		return c, validation.Field("task_queue", "must be at most 255 characters with no spaces, got %q", c.TaskQueue)
	}
	if r.StaleAfter != "" {
		d, err := time.ParseDuration(r.StaleAfter)
		if err != nil || d < time.Second || d > MaxStaleAfter {
			return c, validation.Field("stale_after", "must be a duration from 1s to %s such as 2m, got %q", MaxStaleAfter, r.StaleAfter)
		}
		c.StaleAfter = d
	}
	return c, nil
}

// RegisterConnectorResult is the registered connector; Existing says that it was
// registered before with the same values, and nothing changed.
type RegisterConnectorResult struct {
	Connector planning.Connector `json:"connector"`
	Existing  bool               `json:"existing,omitempty"`
}

// DeregisterConnectorRequest takes an external connector out of the pool.
type DeregisterConnectorRequest struct {
	ID  string `json:"id"`
	Who string `json:"who"`
	Why string `json:"why"`
}

// MaxMetricSamples bounds the samples of one metrics update, which enters the fleet's
// history.
const MaxMetricSamples = 100

// MetricsFuture is how far ahead of the fleet's clock a sample's time may be: clocks
// at a customer site drift.
const MetricsFuture = 5 * time.Minute

// MetricsPast is how old a posted sample may be: an appliance may send what it kept
// while it could not reach PMO.
const MetricsPast = 7 * 24 * time.Hour

// ConnectorMetricsRequest carries samples an external connector took of itself.
type ConnectorMetricsRequest struct {
	ConnectorID string                  `json:"connector_id"`
	Samples     []planning.MetricSample `json:"samples"`
}

// Validate checks the request's form at now; each sample's fields are named
// samples[i].field.
func (r ConnectorMetricsRequest) Validate(now time.Time) error {
	if err := validation.ID("connector_id", r.ConnectorID); err != nil {
		return err
	}
	if len(r.Samples) == 0 {
		return validation.Field("samples", "give at least one sample")
	}
	if len(r.Samples) > MaxMetricSamples {
		return validation.Field("samples", "at most %d samples in one request, got %d", MaxMetricSamples, len(r.Samples))
	}
	for i, m := range r.Samples {
		if err := ValidateMetricSample(fmt.Sprintf("samples[%d].", i), m, now); err != nil {
			return err
		}
	}
	return nil
}

// ValidateMetricSample range-checks a sample at now; prefix goes before each field's
// name.
func ValidateMetricSample(prefix string, m planning.MetricSample, now time.Time) error {
	bad := func(field, format string, args ...any) error { return validation.Field(prefix+field, format, args...) }
	number := func(field string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return bad(field, "must be a number of at least 0, got %v", v)
		}
		return nil
	}
	switch {
	case m.At.IsZero():
		return bad("at", "is required (RFC 3339)")
	case m.At.After(now.Add(MetricsFuture)):
		return bad("at", "is %s in the future; clocks may differ by %s at most", m.At.Sub(now).Round(time.Second), MetricsFuture)
	case m.At.Before(now.Add(-MetricsPast)):
		return bad("at", "is older than %s", MetricsPast)
	case m.RAMBytes < 0:
		return bad("ram_bytes", "must not be negative, got %d", m.RAMBytes)
	case m.ActiveTasks < 0:
		return bad("active_tasks", "must not be negative, got %d", m.ActiveTasks)
	case m.BytesMoved < 0:
		return bad("bytes_moved", "must not be negative, got %d", m.BytesMoved)
	case m.StorageUsedBytes < 0:
		return bad("storage_used_bytes", "must not be negative, got %d", m.StorageUsedBytes)
	case m.TargetFreeBytes != nil && *m.TargetFreeBytes < 0:
		return bad("target_free_bytes", "must not be negative, got %d", *m.TargetFreeBytes)
	}
	if err := number("cpu_percent", m.CPUPercent); err != nil {
		return err
	}
	if err := number("bandwidth_used_bytes_per_sec", m.BandwidthUsedBytesSec); err != nil {
		return err
	}
	if m.ReadLatencySeconds != nil {
		if err := number("read_latency_seconds", *m.ReadLatencySeconds); err != nil {
			return err
		}
	}
	if m.CPUThrottledPercent != nil {
		return number("cpu_throttled_percent", *m.CPUThrottledPercent)
	}
	return nil
}

// ConnectorMetricsResult says what became of posted samples: how many were new (a
// repeated sample is stored once) and the connector's state after them.
type ConnectorMetricsResult struct {
	ConnectorID string                  `json:"connector_id"`
	Received    int                     `json:"received"`
	Stored      int64                   `json:"stored"`
	State       planning.ConnectorState `json:"state"`
	LastSeen    time.Time               `json:"last_seen"`
}

// setupExternal registers the updates for external connectors.
func (f *fleet) setupExternal(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRegisterConnector, f.registerConnector,
		workflow.UpdateHandlerOptions{Validator: f.validateRegister}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDeregisterConnector, f.deregisterConnector,
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r DeregisterConnectorRequest) error {
			if err := CheckWhoWhy(r.Who, r.Why, false); err != nil {
				return invalid(err)
			}
			_, err := f.externalIndex("id", r.ID)
			return err
		}}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateConnectorMetrics, f.connectorMetrics,
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r ConnectorMetricsRequest) error {
			if err := r.Validate(workflow.Now(ctx)); err != nil {
				return invalid(err)
			}
			_, err := f.externalIndex("connector_id", r.ConnectorID)
			return err
		}})
}

// failure is a non-retryable error of the given type that names the field.
func failure(errType, field, format string, args ...any) error {
	fe := &validation.Error{Field: field, Reason: fmt.Sprintf(format, args...)}
	return temporal.NewNonRetryableApplicationError(fe.Error(), errType, nil, fe)
}

// externalIndex finds an external connector of the pool: NotFound when there is none
// with that ID, Conflict when PMO started it.
func (f *fleet) externalIndex(field, id string) (int, error) {
	i := f.connectorIndex(id)
	if i < 0 {
		return i, failure(validation.NotFoundErrorType, field, "no connector %q in pool %s", id, f.in.Pool)
	}
	if !f.st.Connectors[i].External {
		return i, failure(validation.ConflictErrorType, field, "connector %q was started by PMO, not registered; PMO reads its metrics itself and drains it through POST /scale", id)
	}
	return i, nil
}

// validateRegister refuses a bad registration before it enters history. Registering
// an external connector again with the same values is accepted, and changes nothing.
func (f *fleet) validateRegister(ctx workflow.Context, r RegisterConnectorRequest) error {
	if err := r.Validate(); err != nil {
		return invalid(err)
	}
	if strings.HasPrefix(r.ID, f.in.Pool+"-") {
		return invalid(validation.Field("id", "IDs that begin with %q are those of the connectors PMO starts; name the connector otherwise", f.in.Pool+"-"))
	}
	if len(f.st.Sites) > 0 {
		if err := f.checkSite("site", r.Site); err != nil {
			return err
		}
	}
	if err := f.checkTaskQueue(r); err != nil {
		return err
	}
	have, err := f.registered(r)
	if err != nil || have != nil {
		return err // the same registration again changes nothing
	}
	return f.checkRoom("id", 1)
}

// checkTaskQueue refuses a task queue that is PMO's or another connector's: work sent
// there would reach the wrong poller (the worker, or another site's connector).
func (f *fleet) checkTaskQueue(r RegisterConnectorRequest) error {
	want, err := r.spec()
	if err != nil {
		return invalid(err)
	}
	tq := want.TaskQueue
	if tq == TaskQueue || (strings.HasPrefix(tq, ConnectorTaskQueue("")) && tq != ConnectorTaskQueue(r.ID)) {
		return invalid(validation.Field("task_queue", "%q is PMO's; leave task_queue out (the connector polls %s) or name a queue of its own",
			tq, ConnectorTaskQueue(r.ID)))
	}
	for _, c := range f.st.Connectors {
		if c.ID != r.ID && c.TaskQueue == tq {
			return failure(validation.ConflictErrorType, "task_queue", "connector %q polls %q; each connector needs a task queue of its own", c.ID, tq)
		}
	}
	return nil
}

// registered returns the connector already in the pool under the request's ID, if it
// is the same external connector, or a Conflict error that names what differs.
func (f *fleet) registered(r RegisterConnectorRequest) (*planning.Connector, error) {
	i := f.connectorIndex(r.ID)
	if i < 0 {
		return nil, nil
	}
	have := f.st.Connectors[i]
	if !have.External {
		return nil, failure(validation.ConflictErrorType, "id", "connector %q was started by PMO; choose another ID", r.ID)
	}
	want, err := r.spec()
	if err != nil {
		return nil, invalid(err)
	}
	differ := func(field string, have, want any) error {
		return failure(validation.ConflictErrorType, field, "connector %q is registered with %s %v, not %v; deregister it first to change it",
			r.ID, field, have, want)
	}
	switch {
	case have.Site != want.Site:
		return nil, differ("site", have.Site, want.Site)
	case have.Size != want.Size:
		return nil, differ("size", describeSize(have.Size), describeSize(want.Size))
	case have.TaskQueue != want.TaskQueue:
		return nil, differ("task_queue", have.TaskQueue, want.TaskQueue)
	case have.StaleAfter != want.StaleAfter:
		return nil, differ("stale_after", have.StaleAfter, want.StaleAfter)
	case have.State == planning.StateDraining:
		return nil, failure(validation.ConflictErrorType, "id", "connector %q is being deregistered; register it again once it has left", r.ID)
	}
	return &have, nil
}

// describeSize prints a size's name and amounts, so that a conflict says what differs.
func describeSize(s planning.Size) string {
	return fmt.Sprintf("%s (%d millicores, %d B RAM, %.0f B/s, %d B storage, %d tasks)", s.Name, s.CPUMillis, s.RAMBytes,
		s.BandwidthBytesSec, s.StorageBytes, s.MaxTasks)
}

// registerConnector adds the external connector to the pool and records it. It takes
// no work until its first metrics arrive.
func (f *fleet) registerConnector(ctx workflow.Context, r RegisterConnectorRequest) (RegisterConnectorResult, error) {
	if err := f.awaitSites(ctx); err != nil {
		return RegisterConnectorResult{}, err
	}
	if err := f.checkSite("site", r.Site); err != nil {
		return RegisterConnectorResult{}, err
	}
	// Another registration may have run while this one waited for the sites.
	have, err := f.registered(r)
	if err != nil {
		return RegisterConnectorResult{}, err
	}
	if have != nil {
		return RegisterConnectorResult{Connector: *have, Existing: true}, nil
	}
	c, err := r.spec()
	if err != nil {
		return RegisterConnectorResult{}, invalid(err)
	}
	c.CreatedAt = workflow.Now(ctx)
	c.Reason = fmt.Sprintf("external connector registered by %s (%s): no metrics yet; it takes no work until they come", r.Who, r.Why)
	f.st.Connectors = append(f.st.Connectors, c)
	f.sync(ctx, []planning.Connector{c})
	f.audit(ctx, AuditEntry{Action: "register connector", Who: r.Who, Why: r.Why,
		Detail: fmt.Sprintf("external connector %s at %s, %s, task queue %s, stale after %s", c.ID, c.Site, describeSize(c.Size), c.TaskQueue, c.StaleAfter)})
	f.logger.Info("external connector registered", "connector", c.ID, "site", c.Site)
	return RegisterConnectorResult{Connector: c}, nil
}

// deregisterConnector drains an external connector: it takes no new work and leaves
// the pool once its migrations are done, at once if it has none. Its process is the
// customer's and keeps running.
func (f *fleet) deregisterConnector(ctx workflow.Context, r DeregisterConnectorRequest) (planning.Connector, error) {
	i, err := f.externalIndex("id", r.ID)
	if err != nil {
		return planning.Connector{}, err
	}
	c := &f.st.Connectors[i]
	c.State, c.Reason = planning.StateDraining, fmt.Sprintf("deregistered by %s: %s", r.Who, r.Why)
	out := *c
	f.audit(ctx, AuditEntry{Action: "deregister connector", Who: r.Who, Why: r.Why,
		Detail: fmt.Sprintf("external connector %s at %s, %d migration(s) to finish", c.ID, c.Site, len(c.Migrations))})
	if len(c.Migrations) == 0 {
		f.stop(ctx, []string{r.ID})
		out.State = planning.StateStopped
	} else {
		f.sync(ctx, []planning.Connector{out})
	}
	return out, nil
}

// connectorMetrics stores what an external connector posted and renews its health,
// for a web server of an earlier version (today's stores posts itself).
func (f *fleet) connectorMetrics(ctx workflow.Context, r ConnectorMetricsRequest) (ConnectorMetricsResult, error) {
	var stored contract.RecordConnectorMetricsResult
	if err := workflow.ExecuteActivity(controlOptions(ctx, 30*time.Second), fleetActivities.RecordConnectorMetrics, contract.RecordConnectorMetricsInput{
		ConnectorID: r.ConnectorID, Samples: r.Samples,
	}).Get(ctx, &stored); err != nil {
		return ConnectorMetricsResult{}, err
	}
	// The connector may have left while the samples were written.
	i, err := f.externalIndex("connector_id", r.ConnectorID)
	if err != nil {
		return ConnectorMetricsResult{}, err
	}
	now := workflow.Now(ctx)
	c := &f.st.Connectors[i]
	c.LastSeen = now
	newest := slices.MaxFunc(r.Samples, func(a, b planning.MetricSample) int { return a.At.Compare(b.At) })
	if !newest.At.Before(c.Usage.At) {
		c.Usage = newest.Usage()
	}
	if f.judgeExternal(c, now) {
		f.sync(ctx, []planning.Connector{*c})
	}
	return ConnectorMetricsResult{ConnectorID: c.ID, Received: len(r.Samples), Stored: stored.Stored, State: c.State, LastSeen: now}, nil
}

// judgeExternal applies the health rule to an external connector at now: fresh
// metrics make it take work, stale ones stop that until they return. It reports
// whether the state changed.
func (f *fleet) judgeExternal(c *planning.Connector, now time.Time) bool {
	switch stale := c.Stale(now); {
	case stale && (c.State == planning.StateWarm || c.State == planning.StateActive):
		c.State = planning.StateUnhealthy
		c.Reason = fmt.Sprintf("external connector: no metrics since %s (stale after %s); it takes no work until they return",
			c.LastSeen.Format(time.RFC3339), c.StaleAfter)
		f.logger.Warn("external connector is silent; it takes no work", "connector", c.ID, "last_seen", c.LastSeen)
	case !stale && c.State == planning.StateUnhealthy:
		c.State = planning.StateWarm
		if len(c.Migrations) > 0 {
			c.State = planning.StateActive
		}
		if c.ReadyAt.IsZero() {
			c.ReadyAt = now
		}
		c.Reason = "external connector: reporting metrics; PMO never starts, resizes or stops it"
		f.logger.Info("external connector reports; it takes work", "connector", c.ID)
	default:
		return false
	}
	return true
}

// checkExternal judges every external connector's health and records the changes.
func (f *fleet) checkExternal(ctx workflow.Context) {
	now := workflow.Now(ctx)
	var changed []planning.Connector
	for i := range f.st.Connectors {
		c := &f.st.Connectors[i]
		if c.External && f.judgeExternal(c, now) {
			changed = append(changed, *c)
		}
	}
	if len(changed) > 0 {
		f.sync(ctx, changed)
	}
}

// removeExternal takes external connectors out of the pool without stopping anything
// (their processes are the customer's) and records them as stopped; it returns the
// IDs of PMO's own connectors among ids.
func (f *fleet) removeExternal(ctx workflow.Context, ids []string) []string {
	var own []string
	var gone []planning.Connector
	for _, id := range ids {
		i := f.connectorIndex(id)
		if i < 0 || !f.st.Connectors[i].External {
			own = append(own, id)
			continue
		}
		if len(f.st.Connectors[i].Migrations) > 0 {
			continue
		}
		c := f.st.Connectors[i]
		c.State = planning.StateStopped
		gone = append(gone, c)
		f.logger.Info("external connector left the pool", "connector", id)
	}
	if len(gone) == 0 {
		return own
	}
	f.sync(ctx, gone)
	f.st.Connectors = slices.DeleteFunc(f.st.Connectors, func(c planning.Connector) bool {
		return slices.ContainsFunc(gone, func(g planning.Connector) bool { return g.ID == c.ID })
	})
	return own
}
