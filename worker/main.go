// Command worker runs PMO's control plane: the fleet and migration workflows and the
// fleet's activities, on the "pmo" task queue. It also starts connector processes
// through the provisioner.
package main

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/fx"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/provisioner"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/workflows"
)

func main() {
	fx.New(
		platform.Module,
		provisioner.Module,
		fx.Provide(
			fleetStore, eventStore, retentionStore,
			activities.NewFleet, activities.NewEvents, activities.NewRetention, NewWorker),
		fx.Invoke(func(worker.Worker) {}, platform.ServeMetrics),
		fx.WithLogger(platform.FxLogger),
	).Run()
}

// NewWorker registers the workflows and the fleet, events and retention activities on
// the control-plane task queue, makes sure the retention schedule exists with the
// configured settings, starts polling when the app starts and stops when it stops.
func NewWorker(lc fx.Lifecycle, cfg config.Config, tc client.Client, fleet *activities.Fleet, events *activities.Events,
	retention *activities.Retention, s *store.Store, logger *slog.Logger) worker.Worker {
	w := worker.New(tc, workflows.TaskQueue, worker.Options{})
	for _, wf := range workflows.All() {
		w.RegisterWorkflow(wf)
	}
	w.RegisterActivity(fleet)
	w.RegisterActivity(events)
	w.RegisterActivity(retention)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := s.Migrate(ctx); err != nil {
				return err
			}
			if err := platform.EnsureSearchAttributes(ctx, tc, cfg.TemporalNamespace, workflows.SearchAttributes()); err != nil {
				return err
			}
			dc, err := platform.DataConverter(cfg)
			if err != nil {
				return err
			}
			changed, err := platform.EnsureSchedule(ctx, tc, dc, workflows.RetentionSchedule(cfg.Retention))
			if err != nil {
				return err
			}
			if changed {
				logger.Info("retention schedule set", "schedule", workflows.RetentionScheduleID, "every", cfg.Retention.Every.String())
			}
			if err := w.Start(); err != nil {
				return err
			}
			logger.Info("worker polling", "task_queue", workflows.TaskQueue)
			return nil
		},
		OnStop: func(context.Context) error {
			w.Stop()
			return nil
		},
	})
	return w
}

// retentionStore gives the retention activity the PostgreSQL store.
func retentionStore(s *store.Store) activities.RetentionStore { return s }

// fleetStore gives the fleet's activities the PostgreSQL store.
func fleetStore(s *store.Store) activities.Store { return s }

// eventStore gives the events activities the PostgreSQL store.
func eventStore(s *store.Store) activities.EventStore { return s }
