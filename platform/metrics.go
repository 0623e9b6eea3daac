package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.uber.org/fx"

	"github.com/pmo-dev/pmo/config"
)

// Metrics is a process's Prometheus registry and the Temporal metrics handler that
// reports into it. The client gets the handler, so the registry holds the Temporal
// SDK's metrics (workflow and activity task latencies, failures, pollers) and those
// PMO's workflows and activities record through workflow.GetMetricsHandler and
// activity.GetMetricsHandler, which Temporal keeps out of replays.
type Metrics struct {
	Registry *prometheus.Registry
	Handler  client.MetricsHandler
}

// durationBuckets are the histogram buckets of every timer, in seconds: from a fast
// workflow task (5 ms) to a long wait for a connector (2 h).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200}

// NewMetrics makes a registry with the Go runtime's and the process's collectors and
// a Temporal metrics handler on it.
func NewMetrics(logger *slog.Logger) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithView(sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: durationBuckets}},
	)))
	handler := temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: provider.Meter("pmo"), UseMonotonicCounters: true,
		// A metric that cannot be recorded is not worth stopping a worker for.
		OnError: func(err error) { logger.Warn("metric not recorded", "error", err) },
	})
	return &Metrics{Registry: reg, Handler: handler}, nil
}

// HTTPHandler serves the registry in Prometheus's text format.
func (m *Metrics) HTTPHandler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ServeMetrics serves /metrics on cfg.MetricsAddr while the app runs; nothing when
// it is empty.
func ServeMetrics(lc fx.Lifecycle, cfg config.Config, m *Metrics, logger *slog.Logger) {
	if cfg.MetricsAddr != "" {
		ServeMetricsOn(lc, cfg.MetricsAddr, m, logger, nil)
	}
}

// ServeMetricsOn serves /metrics on addr (port 0 takes a free one) while the app
// runs, and calls listening, when set, with the address it got.
func ServeMetricsOn(lc fx.Lifecycle, addr string, m *Metrics, logger *slog.Logger, listening func(net.Addr) error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.HTTPHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("metrics: %w", err)
			}
			logger.Info("metrics listening", "addr", "http://"+ln.Addr().String()+"/metrics")
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					logger.Error("metrics server stopped", "error", err)
				}
			}()
			if listening != nil {
				return listening(ln.Addr())
			}
			return nil
		},
		OnStop: srv.Shutdown,
	})
}
