// Package platform connects a PMO process to the services it runs on: configuration,
// logging, PostgreSQL and Temporal. Each main wires it with fx.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store"
)

// Module provides config.Config, *slog.Logger, *store.Store and client.Client, and
// closes the connections on stop.
var Module = fx.Module("platform",
	fx.Provide(
		config.Load,
		NewLogger,
		NewStore,
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

// DialTemporal connects to the Temporal frontend named by the configuration.
func DialTemporal(cfg config.Config, logger *slog.Logger) (client.Client, error) {
	c, err := client.Dial(client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// NewTemporalClient dials Temporal and closes the client when the app stops.
func NewTemporalClient(lc fx.Lifecycle, cfg config.Config, logger *slog.Logger) (client.Client, error) {
	c, err := DialTemporal(cfg, logger)
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
	return nil
}
