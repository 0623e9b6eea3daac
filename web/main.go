// Command web serves PMO's HTTP API on PMO_HTTP_ADDR (default 127.0.0.1:8080).
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/workflows"
)

func main() {
	fx.New(
		platform.Module,
		fx.Provide(NewServer, NewEcho),
		fx.Invoke(func(*echo.Echo) {}),
		fx.WithLogger(platform.FxLogger),
	).Run()
}

// NewServer builds the API server from its dependencies.
func NewServer(cfg config.Config, tc client.Client, s *store.Store, logger *slog.Logger, m *platform.Metrics) (*Server, error) {
	codec, err := platform.NewPayloadCodecFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{Codec: codec, Temporal: tc, Store: s, Pool: cfg.Pool, Namespace: cfg.TemporalNamespace, UIURL: cfg.TemporalUIURL, Logger: logger,
		Uploads: config.UploadsDir(cfg), RateLimit: cfg.RateLimit, Timeouts: cfg.HTTP, Metrics: m}, nil
}

// NewEcho listens on the configured address when the app starts and serves in the
// background; it shuts down gracefully when the app stops.
func NewEcho(lc fx.Lifecycle, cfg config.Config, srv *Server, logger *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	limitConnections(e.Server, cfg.HTTP)
	e.Use(middleware.Recover())
	// Each handler bounds its own body (maxBody for JSON, maxImportBody for a file,
	// imports.MaxCalendarBytes for a calendar); this is the backstop, and so the
	// largest of them, or it would refuse an import over it. "M" would be 10⁶ bytes.
	e.Use(middleware.BodyLimit(strconv.Itoa(maxImportBody>>20) + "MiB"))
	// Every request gets an ID (the client's X-Request-Id if it sends one), answered in
	// the same header, logged and kept in the audit trail.
	e.Use(middleware.RequestID())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogURI: true, LogStatus: true, LogLatency: true, LogError: true, HandleError: true, LogRequestID: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			attrs := []any{"method", v.Method, "uri", v.URI, "status", v.Status, "latency_ms", v.Latency.Milliseconds(), "request_id", v.RequestID}
			if v.Error != nil {
				attrs = append(attrs, "error", v.Error.Error())
			}
			logger.Info("request", attrs...)
			return nil
		},
	}))
	srv.Routes(e)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			// Migrations start here with PMO's search attributes, and a start naming
			// one Temporal does not know fails: the worker, which registers them too,
			// may not be up yet.
			if err := platform.EnsureSearchAttributes(ctx, srv.Temporal, cfg.TemporalNamespace, workflows.SearchAttributes()); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.HTTPAddr)
			if err != nil {
				return err
			}
			e.Listener = ln
			go func() {
				if err := e.Start(""); err != nil && !errors.Is(err, http.ErrServerClosed) {
					logger.Error("http server stopped", "error", err)
				}
			}()
			logger.Info("PMO API listening", "addr", "http://"+ln.Addr().String(), "temporal_ui", cfg.TemporalUIURL)
			return nil
		},
		OnStop: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return e.Shutdown(ctx)
		},
	})
	return e
}
