// Package platform connects a PMO process to the services it runs on: configuration,
// logging, PostgreSQL and Temporal. Each main wires it with fx.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store"
)

// Module provides config.Config, *slog.Logger, *store.Store, *Metrics and
// client.Client, and closes the connections on stop.
var Module = fx.Module("platform",
	fx.Provide(
		config.Load,
		NewLogger,
		NewStore,
		NewMetrics,
		NewTemporalClient,
	),
)

// NewLogger returns a JSON logger on stderr; PMO_LOG_LEVEL=debug shows more.
func NewLogger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("PMO_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// NewStore opens the PostgreSQL store and closes it when the app stops.
func NewStore(lc fx.Lifecycle, cfg config.Config) (*store.Store, error) {
	s, err := store.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(s.Close))
	return s, nil
}

// DialTemporal connects to the Temporal frontend named by the configuration: over TLS
// (with a client certificate, or a Temporal Cloud API key) when TEMPORAL_TLS_* or
// TEMPORAL_API_KEY say so, and encrypting payloads when PMO_PAYLOAD_KEY is set. Every
// PMO process dials through it, so that all of them read and write the same payloads.
func DialTemporal(cfg config.Config, logger *slog.Logger) (client.Client, error) {
	return dialTemporal(cfg, logger, nil)
}

// dialTemporal is DialTemporal, recording the client's metrics in m when it is set.
func dialTemporal(cfg config.Config, logger *slog.Logger, m *Metrics) (client.Client, error) {
	opts, err := temporalOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	if m != nil {
		opts.MetricsHandler = m.Handler
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// temporalOptions are the client options DialTemporal dials with.
func temporalOptions(cfg config.Config, logger *slog.Logger) (client.Options, error) {
	tlsConfig, err := cfg.TemporalTLS.Config()
	if err != nil {
		return client.Options{}, fmt.Errorf("config: %w", err)
	}
	dc, err := DataConverter(cfg)
	if err != nil {
		return client.Options{}, fmt.Errorf("config: %w", err)
	}
	opts := client.Options{
		HostPort:          cfg.TemporalAddress,
		Namespace:         cfg.TemporalNamespace,
		Logger:            tlog.NewStructuredLogger(logger),
		ConnectionOptions: client.ConnectionOptions{TLS: tlsConfig},
		DataConverter:     dc,
	}
	if cfg.TemporalTLS.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalTLS.APIKey)
	}
	return opts, nil
}

// NewTemporalClient dials Temporal, recording its metrics in m, and closes the client
// when the app stops.
func NewTemporalClient(lc fx.Lifecycle, cfg config.Config, logger *slog.Logger, m *Metrics) (client.Client, error) {
	c, err := dialTemporal(cfg, logger, m)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(c.Close))
	return c, nil
}

// FxLogger routes fx's own events to the JSON logger, so that start-up failures are
// logged like everything else. Wiring details are debug-level noise; errors stay errors.
func FxLogger(logger *slog.Logger) fxevent.Logger {
	l := &fxevent.SlogLogger{Logger: logger}
	l.UseLogLevel(slog.LevelDebug)
	return l
}

// EnsureSearchAttributes registers the custom search attributes the workflows set,
// those the namespace does not have yet. Registering is idempotent, so every worker
// does it at start.
func EnsureSearchAttributes(ctx context.Context, tc client.Client, namespace string, want map[string]enumspb.IndexedValueType) error {
	have, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = tc.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return awaitSearchAttributes(ctx, tc, namespace, missing)
}

// searchAttributesWait bounds how long EnsureSearchAttributes waits for attributes it
// added to become usable.
const searchAttributesWait = time.Minute

// awaitSearchAttributes waits until Temporal's frontend accepts a query on the
// attributes just added. A server with SQL visibility maps them to columns in the
// namespace's record, which each frontend reads again only when it refreshes its
// namespace cache (every 10 s); until then it refuses a workflow started with them.
// A visibility query is checked against the same cache, so it tells when they work.
func awaitSearchAttributes(ctx context.Context, tc client.Client, namespace string, added map[string]enumspb.IndexedValueType) error {
	names := make([]string, 0, len(added))
	for name, typ := range added {
		if typ == enumspb.INDEXED_VALUE_TYPE_KEYWORD || typ == enumspb.INDEXED_VALUE_TYPE_TEXT {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil
	}
	query := make([]string, len(names))
	for i, name := range names {
		query[i] = name + " = 'pmo-probe'"
	}
	deadline := time.Now().Add(searchAttributesWait)
	for {
		_, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: strings.Join(query, " AND ")})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("search attributes %s were added but Temporal does not accept them after %s: %w", strings.Join(names, ", "), searchAttributesWait, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// EnsureSchedule creates the schedule unless one with its ID exists. An existing one
// whose intervals, workflow or arguments differ (the settings changed) is updated to
// match; its pause state and history stay. Every worker does it at start, so it must
// be idempotent. It reports whether it created or changed the schedule. dc is the
// client's data converter (DataConverter), which reads the stored arguments: they are
// encrypted when PMO_PAYLOAD_KEY is set.
func EnsureSchedule(ctx context.Context, tc client.Client, dc converter.DataConverter, want client.ScheduleOptions) (bool, error) {
	_, err := tc.ScheduleClient().Create(ctx, want)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, fmt.Errorf("create schedule %s: %w", want.ID, err)
	}
	action, ok := want.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		return false, fmt.Errorf("schedule %s: only workflow actions are supported", want.ID)
	}
	changed := false
	err = tc.ScheduleClient().GetHandle(ctx, want.ID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			have := in.Description.Schedule
			if sameSchedule(have, want.Spec, action, dc) {
				return nil, temporal.ErrSkipScheduleUpdate
			}
			changed = true
			spec := want.Spec
			return &client.ScheduleUpdate{Schedule: &client.Schedule{
				Action: want.Action, Spec: &spec, Policy: have.Policy, State: have.State,
			}}, nil
		},
	})
	if err != nil {
		return false, fmt.Errorf("update schedule %s: %w", want.ID, err)
	}
	return changed, nil
}

// sameSchedule reports whether an existing schedule has the intervals, workflow, task
// queue and arguments wanted. Arguments are compared decoded: encrypted payloads of
// equal values differ byte for byte.
func sameSchedule(have client.Schedule, spec client.ScheduleSpec, want *client.ScheduleWorkflowAction, dc converter.DataConverter) bool {
	got, ok := have.Action.(*client.ScheduleWorkflowAction)
	if !ok || have.Spec == nil || got.TaskQueue != want.TaskQueue || got.ID != want.ID ||
		len(have.Spec.Calendars) != len(spec.Calendars) || len(have.Spec.CronExpressions) != 0 ||
		!slices.Equal(have.Spec.Intervals, spec.Intervals) || len(got.Args) != len(want.Args) {
		return false
	}
	if name, ok := got.Workflow.(string); !ok || name != workflowName(want.Workflow) {
		return false
	}
	for i, a := range got.Args {
		p, ok := a.(*commonpb.Payload)
		if !ok {
			return false
		}
		v := reflect.New(reflect.TypeOf(want.Args[i]))
		if err := dc.FromPayload(p, v.Interface()); err != nil || !reflect.DeepEqual(v.Elem().Interface(), want.Args[i]) {
			return false
		}
	}
	return true
}

// workflowName is the workflow type name of a workflow function or name.
func workflowName(w any) string {
	if name, ok := w.(string); ok {
		return name
	}
	full := runtime.FuncForPC(reflect.ValueOf(w).Pointer()).Name()
	return full[strings.LastIndex(full, ".")+1:]
}
