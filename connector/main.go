// Command connector runs one PMO connector: a Temporal worker on the connector's own
// task queue (pmo.connector.<id>) that moves disk images within its bandwidth limit,
// records its readiness and reports its metrics to PostgreSQL. The process
// provisioner starts one per connector:
//
//	connector -id default-ams1-1 -pool default -site ams1 -bandwidth 4194304 -max-tasks 4
//
// An appliance at a customer site, which PMO did not start and which cannot reach
// PostgreSQL, runs it with -report-url: it then posts its metrics to PMO's API
// (docs/connectors.md), and an operator registers it with `starter connector register`:
//
//	connector -id appliance-ams1 -site ams1 -bandwidth 33554432 -max-tasks 8 -report-url http://pmo:8080
//
// TEMPORAL_ADDRESS, DATABASE_URL (not with -report-url) and PMO_DATA_DIR come from the
// environment (see config), and so does PMO_API_KEY, the operator API key that
// -report-url needs (docs/security.md). SIGTERM stops it gracefully: running transfers are cancelled and keep their
// partial files, and their retries resume from the last heartbeat's offset.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/fx"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/objectstore"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/sources"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/transfer"
	"github.com/pmo-dev/pmo/workflows"
)

// controlSlots are activity slots beyond max-tasks, so that a resize (ApplySize) or a
// pre-warm (Prepare) is not stuck behind a full set of transfers. Transfers themselves
// are capped at max-tasks inside the activity.
const controlSlots = 2

// stopGrace is how long a stopping worker lets running activities finish before it
// cancels them. Short activities finish; transfers are cancelled and resume elsewhere.
// It stays well inside the provisioner's 10 s between SIGTERM and SIGKILL.
const stopGrace = 3 * time.Second

// options are the connector's command-line flags.
type options struct {
	ID   string
	Pool string
	Site string
	// Sources is the connector's own list of where disks may be read (-source);
	// empty means the migration's site's list alone.
	Sources         []string
	TaskQueue       string
	Bandwidth       float64
	MaxTasks        int
	TargetDir       string
	MetricsInterval time.Duration
	// ReportEvery is how often samples are posted to ReportURL, several at a time.
	ReportEvery time.Duration
	// ReportURL is PMO's API, where an external connector posts its metrics; empty
	// means PostgreSQL.
	ReportURL string
	// APIKey is the operator key sent to ReportURL, from PMO_API_KEY: an environment
	// variable, not a flag, so that it is not in the process list.
	APIKey string
	// MetricsAddr, when set, is where the connector serves its Prometheus metrics
	// (port 0 takes a free one); MetricsTargets, a folder where it then writes a
	// Prometheus file_sd file naming that address.
	MetricsAddr, MetricsTargets string
}

// parseFlags reads and checks the flags.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("connector", flag.ContinueOnError)
	fs.StringVar(&o.ID, "id", "", "connector ID (required)")
	fs.StringVar(&o.Pool, "pool", "default", "connector pool, for logs")
	fs.StringVar(&o.Site, "site", "", "site the connector serves: it refuses other sites' transfers")
	fs.Func("source", "a folder or http(s) URL prefix disks may be read from; repeat for each (default: whatever the migration's site allows)", func(v string) error {
		e, err := sources.Entry(v)
		o.Sources = append(o.Sources, e)
		return err
	})
	fs.StringVar(&o.TaskQueue, "task-queue", "", "task queue to poll (default pmo.connector.<id>)")
	fs.Float64Var(&o.Bandwidth, "bandwidth", 0, "bandwidth limit in bytes per second shared by all transfers; 0 means unlimited")
	fs.IntVar(&o.MaxTasks, "max-tasks", 4, "transfers that may run at once")
	fs.StringVar(&o.TargetDir, "target-dir", "", "where destinations are written (default $PMO_DATA_DIR/target)")
	fs.DurationVar(&o.MetricsInterval, "metrics-interval", 2*time.Second, "how often to record metrics")
	fs.StringVar(&o.ReportURL, "report-url", "", "PMO's API base URL: post metrics there instead of writing PostgreSQL, as an appliance PMO did not start does")
	fs.DurationVar(&o.ReportEvery, "report-every", 30*time.Second, "with -report-url, how often to post the samples taken since the last post (each post is an update of the fleet's workflow); keep it well under the connector's stale_after")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics here, e.g. 127.0.0.1:9465 (port 0: any free one)")
	fs.StringVar(&o.MetricsTargets, "metrics-targets", "", "write a Prometheus file_sd file with the metrics address into this folder (needs -metrics-addr)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	switch {
	case fs.NArg() > 0:
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.ID == "":
		return options{}, errors.New("-id is required")
	case o.Bandwidth < 0:
		return options{}, fmt.Errorf("-bandwidth must not be negative, got %v", o.Bandwidth)
	case o.MaxTasks < 1:
		return options{}, fmt.Errorf("-max-tasks must be at least 1, got %d", o.MaxTasks)
	case o.MetricsInterval < 100*time.Millisecond:
		return options{}, fmt.Errorf("-metrics-interval must be at least 100ms, got %s", o.MetricsInterval)
	case o.ReportEvery < o.MetricsInterval || o.ReportEvery > time.Duration(MaxPending)*o.MetricsInterval:
		return options{}, fmt.Errorf("-report-every must be from -metrics-interval (%s) to %d of them, what one post carries, got %s",
			o.MetricsInterval, MaxPending, o.ReportEvery)
	case o.MetricsTargets != "" && o.MetricsAddr == "":
		return options{}, errors.New("-metrics-targets needs -metrics-addr")
	}
	if o.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.MetricsAddr); err != nil {
			return options{}, fmt.Errorf("-metrics-addr must be host:port such as 127.0.0.1:9465, got %q", o.MetricsAddr)
		}
	}
	if o.ReportURL != "" {
		if u, err := url.Parse(o.ReportURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return options{}, fmt.Errorf("-report-url must be an http or https URL such as http://pmo:8080, got %q", o.ReportURL)
		}
		if o.APIKey = os.Getenv("PMO_API_KEY"); o.APIKey == "" {
			return options{}, errors.New("-report-url needs PMO_API_KEY set to the connector's API key (starter apikey create -role connector -connector " + o.ID + ")")
		}
	}
	if o.TaskQueue == "" {
		o.TaskQueue = workflows.ConnectorTaskQueue(o.ID)
	}
	return o, nil
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "connector:", err)
		os.Exit(2)
	}
	fx.New(
		platform.Module,
		fx.Supply(opts),
		// Every log line, the Temporal SDK's included, names the connector.
		fx.Decorate(func(l *slog.Logger) *slog.Logger {
			return l.With("connector", opts.ID, "pool", opts.Pool, "site", opts.Site)
		}),
		fx.Provide(NewActivities, NewWorker, NewReporter),
		// Only the database sink needs PostgreSQL: an appliance never connects to it.
		sinkOption(opts),
		fx.Invoke(func(*Reporter) {}, serveMetrics, followLimits),
		fx.WithLogger(platform.FxLogger),
	).Run()
}

// NewActivities builds the connector's activities with its throttle and where its
// copies go: the object store where one is set (under the prefix and with the keys
// the provisioner gave it), else the target directory, which it creates so that a bad
// directory fails the start.
func NewActivities(opts options, cfg config.Config, logger *slog.Logger) (*activities.Connector, error) {
	var dir string
	var store *objectstore.Store
	if cfg.ObjectStore.On() {
		if cfg.ObjectStore.Prefix == "" {
			return nil, errors.New("PMO_S3_BUCKET needs PMO_S3_PREFIX, the <pool>/<site> the connector writes under")
		}
		var err error
		if store, err = objectstore.New(cfg.ObjectStore.Store()); err != nil {
			return nil, err
		}
		logger.Info("copies go to the object store", "endpoint", cfg.ObjectStore.Endpoint, "bucket", store.Bucket, "prefix", cfg.ObjectStore.Prefix)
	} else {
		dir = opts.TargetDir
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "target")
		}
		var err error
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, fmt.Errorf("target directory: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("target directory: %w", err)
		}
	}
	conn := activities.NewConnector(opts.ID, transfer.NewThrottle(opts.Bandwidth), dir, opts.MaxTasks, logger)
	conn.Site = opts.Site
	if store != nil {
		conn.Objects, conn.ObjectPrefix = store, cfg.ObjectStore.Prefix
	}
	if len(opts.Sources) > 0 {
		own, err := sources.Parse(opts.Sources)
		if err != nil {
			return nil, fmt.Errorf("-source: %w", err)
		}
		conn.Sources = &own
	}
	return conn, nil
}

// heartbeatThrottle is the most time between two heartbeats a transfer sends: how long
// a pause or a cancel takes to reach it, at one call to Temporal per transfer per
// interval.
const heartbeatThrottle = 2 * time.Second

// NewWorker registers the connector's activities on its task queue; it polls from
// start to stop.
func NewWorker(lc fx.Lifecycle, tc client.Client, opts options, conn *activities.Connector, logger *slog.Logger) worker.Worker {
	host, _ := os.Hostname()
	w := worker.New(tc, opts.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: opts.MaxTasks + controlSlots,
		WorkerStopTimeout:                  stopGrace,
		// The connector runs no workflows; the worker on "pmo" does.
		DisableWorkflowWorker: true,
		// A transfer learns that it was paused or cancelled from its next heartbeat's
		// answer. The SDK would send one only every 0.8 of the heartbeat timeout (16 s),
		// so that a copy shorter than that could not be paused at all.
		MaxHeartbeatThrottleInterval: heartbeatThrottle,
		Identity:                     fmt.Sprintf("connector-%s@%s:%d", opts.ID, host, os.Getpid()),
	})
	w.RegisterActivity(conn)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			if err := w.Start(); err != nil {
				return fmt.Errorf("start worker on %s: %w", opts.TaskQueue, err)
			}
			logger.Info("connector polling", "task_queue", opts.TaskQueue, "bandwidth_bytes_per_sec", conn.Throttle.BytesPerSec(),
				"max_tasks", opts.MaxTasks, "target_dir", conn.TargetDir, "sources", opts.Sources)
			return nil
		},
		OnStop: func(context.Context) error {
			w.Stop()
			logger.Info("connector stopped")
			return nil
		},
	})
	return w
}

// sinkOption provides where the reporter sends metrics: PMO's API with -report-url,
// PostgreSQL otherwise.
func sinkOption(opts options) fx.Option {
	if opts.ReportURL != "" {
		return fx.Provide(func() Sink {
			return APISink{URL: opts.ReportURL, Key: opts.APIKey, Client: &http.Client{Timeout: 10 * time.Second}}
		})
	}
	return fx.Provide(func(s *store.Store) Sink { return StoreSink{Store: s} })
}

// NewReporter records readiness and metrics once the worker polls. Taking the worker
// as a parameter orders the hooks: the reporter starts after the worker and stops
// before it.
func NewReporter(lc fx.Lifecycle, _ worker.Worker, opts options, sink Sink, conn *activities.Connector, logger *slog.Logger) *Reporter {
	r := &Reporter{ID: opts.ID, Sink: sink, Stats: &conn.Stats, Interval: opts.MetricsInterval, Logger: logger}
	if opts.ReportURL != "" {
		r.WriteEvery = opts.ReportEvery
	}
	var cancel context.CancelFunc
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			go func() {
				defer close(done)
				r.Run(ctx)
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			cancel()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("metrics reporter: %w", ctx.Err())
			}
		},
	})
	return r
}

// serveMetrics serves the connector's metrics (the Temporal SDK's for its activity
// worker, and the Go runtime's) when -metrics-addr is set, and with -metrics-targets
// writes a Prometheus file_sd file naming the address, removed when it stops, so that
// Prometheus finds connectors as the fleet starts and stops them.
func serveMetrics(lc fx.Lifecycle, opts options, m *platform.Metrics, logger *slog.Logger) {
	if opts.MetricsAddr == "" {
		return
	}
	file := filepath.Join(opts.MetricsTargets, "connector-"+opts.ID+".json")
	platform.ServeMetricsOn(lc, opts.MetricsAddr, m, logger, func(addr net.Addr) error {
		if opts.MetricsTargets == "" {
			return nil
		}
		return writeTarget(file, addr.String(), map[string]string{"pool": opts.Pool, "site": opts.Site, "connector": opts.ID})
	})
	if opts.MetricsTargets != "" {
		lc.Append(fx.StopHook(func() {
			if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
				logger.Warn("metrics target file not removed", "file", file, "error", err)
			}
		}))
	}
}

// writeTarget writes a Prometheus file_sd file with one target, whole or not at all:
// Prometheus may read the folder at any moment.
func writeTarget(file, addr string, labels map[string]string) error {
	body, err := json.Marshal([]map[string]any{{"targets": []string{addr}, "labels": labels}})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("metrics targets: %w", err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		return fmt.Errorf("metrics targets: %w", err)
	}
	return os.Rename(tmp, file)
}
