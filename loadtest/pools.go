package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/workflows"
)

// poolOptions are the flags of `loadtest pools`.
type poolOptions struct {
	url, key                     string
	pools, sites, conns, planned int
	tick, duration, metricsEvery time.Duration
	maxTicks                     int
	maxPayload, maxEvents        int
	maxHistoryBytes              int64
	tickTarget                   time.Duration
	historyDays, arrivalsPerHour int
	concurrency                  int
	prefix                       string
}

func parsePools(args []string, cfg config.Config) (poolOptions, error) {
	var o poolOptions
	fs := flag.NewFlagSet("loadtest pools", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "http://"+cfg.HTTPAddr, "the web server's base URL")
	fs.StringVar(&o.key, "key", os.Getenv("PMO_API_KEY"), "an admin API key, to import sites (default $PMO_API_KEY)")
	fs.StringVar(&o.prefix, "prefix", "pool", "the pools' name prefix: pool-00, pool-01, …")
	fs.IntVar(&o.pools, "pools", 20, "how many pools, each with its own fleet workflow")
	fs.IntVar(&o.sites, "sites", 5, "sites per pool")
	fs.IntVar(&o.conns, "connectors", 100, "external connectors registered per pool")
	fs.IntVar(&o.planned, "planned", 1000, "migrations planned per pool through POST /forecast")
	fs.IntVar(&o.historyDays, "history-days", 28, "days of migration history per site, for the forecast to learn from")
	fs.IntVar(&o.arrivalsPerHour, "arrivals", 3, "mean migrations per site and hour in that history")
	fs.DurationVar(&o.tick, "tick", 30*time.Second, "the fleets' planning interval (PMO_TICK's default)")
	fs.IntVar(&o.maxTicks, "max-ticks", 4, "ticks per run before a fleet continues as new")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "how long the fleets run under load once everything is registered and planned")
	fs.DurationVar(&o.metricsEvery, "metrics-every", 15*time.Second, "how often each connector posts its metrics (the web server stores each post; the fleets read them at Collect)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "HTTP requests in flight")
	fs.IntVar(&o.maxPayload, "max-payload", 256<<10, "the largest history event allowed, in bytes")
	fs.IntVar(&o.maxEvents, "max-events", 10240, "the longest run allowed, in events (Temporal warns at 10,240 and stops at 51,200)")
	fs.Int64Var(&o.maxHistoryBytes, "max-history", 10<<20, "the largest run allowed, in bytes (Temporal warns at 10 MB and stops at 50 MB)")
	fs.DurationVar(&o.tickTarget, "tick-target", time.Second, "the planning activity time allowed per tick that reuses its hour's forecast (Collect and Plan), at the 99th percentile")
	if err := fs.Parse(args); err != nil {
		return poolOptions{}, err
	}
	switch {
	case fs.NArg() > 0:
		return poolOptions{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.key == "":
		return poolOptions{}, errors.New("-key or PMO_API_KEY: an admin API key is needed")
	case o.pools < 1 || o.sites < 1 || o.conns < 0 || o.planned < 0:
		return poolOptions{}, errors.New("-pools and -sites must be at least 1, -connectors and -planned at least 0")
	}
	return o, nil
}

// runPools is `loadtest pools`: PMO sharded into many pools, each a fleet workflow with
// its own connectors and planned work, run under load; then every fleet's history is
// read back and judged against Temporal's limits and the tick target. It sets up:
// sites in -pools pools (PUT /sites), -history-days of hourly history per site
// (written straight into PostgreSQL: the past needs no API), one fleet per pool in
// forecast-only mode (so that it plans but starts no processes), -connectors external
// connectors per pool (POST /connectors, then metrics), and -planned migrations per
// pool (POST /forecast with plan=true). It then lets the fleets tick for -duration
// while the connectors post metrics, and reports.
func runPools(ctx context.Context, args []string, out io.Writer) (bool, error) {
	cfg, err := config.Load()
	if err != nil {
		return false, err
	}
	o, err := parsePools(args, cfg)
	if err != nil {
		return false, err
	}
	tc, err := platform.DialTemporal(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return false, err
	}
	defer tc.Close()
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return false, err
	}
	defer st.Close()
	l := &load{client: &http.Client{Timeout: 2 * time.Minute}, lat: map[string][]time.Duration{}}
	l.o.url, l.o.key = o.url, o.key
	b := &poolBench{o: o, l: l, tc: tc, st: st, started: time.Now()}
	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{"sites", b.importSites}, {"history", b.writeHistory}, {"fleets", b.startFleets},
		{"connectors", b.registerConnectors}, {"planned work", b.planWork}, {"load", b.runLoad},
	}
	for _, s := range steps {
		began := time.Now()
		if err := s.do(ctx); err != nil {
			return false, fmt.Errorf("%s: %w", s.what, err)
		}
		fmt.Fprintf(out, "%-13s %.1f s\n", s.what, time.Since(began).Seconds())
		if len(l.errors) > 0 {
			break
		}
	}
	var r poolResult
	if len(l.errors) == 0 {
		if r, err = b.measure(ctx); err != nil {
			return false, fmt.Errorf("reading the histories: %w", err)
		}
	}
	return r.print(out, o, l), nil
}

// poolBench is one run of `loadtest pools`.
type poolBench struct {
	o       poolOptions
	l       *load
	tc      client.Client
	st      *store.Store
	started time.Time
}

func (b *poolBench) pool(i int) string    { return fmt.Sprintf("%s-%02d", b.o.prefix, i) }
func (b *poolBench) site(i, j int) string { return fmt.Sprintf("%s-%02d-s%d", b.o.prefix, i, j) }

// parallel runs do(i) for i in [0, n) with -concurrency in flight.
func (b *poolBench) parallel(n int, do func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, b.o.concurrency)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			do(i)
		}()
	}
	wg.Wait()
}

func (b *poolBench) importSites(ctx context.Context) error {
	type siteRow struct {
		ID     string  `json:"id"`
		Name   string  `json:"name"`
		Region string  `json:"region"`
		Uplink float64 `json:"uplink_bytes_per_sec"`
		Pool   string  `json:"pool"`
	}
	var rows []siteRow
	for i := range b.o.pools {
		for j := range b.o.sites {
			rows = append(rows, siteRow{ID: b.site(i, j), Name: b.site(i, j), Region: b.pool(i), Uplink: 1.25e9, Pool: b.pool(i)})
		}
	}
	b.l.call(ctx, "PUT /sites", "PUT", "/sites", rows, nil)
	return nil
}

// writeHistory writes each site's past: arrivals that follow the day (busier in
// office hours), so that the forecast has a season to fit. Rows from an earlier run
// under the same IDs are kept.
func (b *poolBench) writeHistory(ctx context.Context) error {
	end := b.started.Truncate(time.Hour)
	begin := end.Add(-time.Duration(b.o.historyDays) * 24 * time.Hour)
	var rows [][]any
	for i := range b.o.pools {
		for j := range b.o.sites {
			site := b.site(i, j)
			n := 0
			for at := begin; at.Before(end); at = at.Add(time.Hour) {
				count := b.o.arrivalsPerHour / 2
				if h := at.Hour(); h >= 8 && h < 18 {
					count = b.o.arrivalsPerHour * 3 / 2
				}
				for k := range count {
					n++
					started := at.Add(time.Duration(k*7) * time.Minute)
					rows = append(rows, []any{fmt.Sprintf("%s-h%d", site, n), "vm-" + site, site, "hist-" + site, "bronze",
						int64(8 << 30), started, started.Add(20 * time.Minute), float64(8<<30) / 1200, "succeeded"})
				}
			}
		}
	}
	tx, err := b.st.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE history_bench (LIKE migrations INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
		return err
	}
	cols := []string{"id", "vm_id", "site_id", "connector_id", "sla_tier", "bytes", "started_at", "ended_at", "avg_bytes_per_sec", "outcome"}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"history_bench"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO migrations SELECT * FROM history_bench ON CONFLICT (id) DO NOTHING`); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (b *poolBench) startFleets(ctx context.Context) error {
	policy := planning.DefaultPolicy()
	policy.Mode = planning.ModeForecastOnly
	for i := range b.o.pools {
		in := workflows.FleetInput{Pool: b.pool(i), Tick: b.o.tick, MaxTicksPerRun: b.o.maxTicks, Policy: &policy}
		_, err := b.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: workflows.FleetWorkflowID(in.Pool), TaskQueue: workflows.TaskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		}, workflows.FleetWorkflow, in)
		if err != nil {
			return err
		}
	}
	return nil
}

// connector is connector k of pool i, at one of the pool's sites in turn.
func (b *poolBench) connector(i, k int) (id, site string) {
	return fmt.Sprintf("ext-%s-c%03d", b.pool(i), k), b.site(i, k%b.o.sites)
}

func (b *poolBench) registerConnectors(ctx context.Context) error {
	b.parallel(b.o.pools*b.o.conns, func(n int) {
		i, k := n%b.o.pools, n/b.o.pools
		id, site := b.connector(i, k)
		req := workflows.RegisterConnectorRequest{ID: id, Site: site, Size: "medium", StaleAfter: (3 * b.o.metricsEvery).String(),
			Who: "loadtest", Why: "pools benchmark"}
		b.l.call(ctx, "POST /connectors", "POST", "/connectors?pool="+b.pool(i), req, nil)
	})
	b.postMetrics(ctx, 0)
	return nil
}

// postMetrics posts one sample for every connector, spread over spread.
func (b *poolBench) postMetrics(ctx context.Context, spread time.Duration) {
	n := b.o.pools * b.o.conns
	if n == 0 {
		return
	}
	every := spread / time.Duration(n)
	began := time.Now()
	b.parallel(n, func(x int) {
		if wait := time.Until(began.Add(time.Duration(x) * every)); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		i, k := x%b.o.pools, x/b.o.pools
		id, _ := b.connector(i, k)
		sample := planning.MetricSample{At: time.Now().UTC(), CPUPercent: 20 + float64(k%50), RAMBytes: 400 << 20,
			BandwidthUsedBytesSec: float64(int64(k%4) << 20), ActiveTasks: k % 4, BytesMoved: int64(k) << 30}
		b.l.call(ctx, "POST /connectors/{id}/metrics", "POST", "/connectors/"+id+"/metrics?pool="+b.pool(i), sample, nil)
	})
}

// planWork plans each pool's migrations in requests of at most MaxForecastVMs, all
// starting within the next day.
func (b *poolBench) planWork(ctx context.Context) error {
	type batch struct {
		pool int
		req  map[string]any
	}
	var batches []batch
	from := b.started.Add(time.Hour).Truncate(time.Hour)
	for i := range b.o.pools {
		for first := 0; first < b.o.planned; first += workflows.MaxForecastVMs {
			var vms []planning.VMSpec
			for k := first; k < min(first+workflows.MaxForecastVMs, b.o.planned); k++ {
				vms = append(vms, planning.VMSpec{Site: b.site(i, k%b.o.sites), DiskBytes: int64(1+k%64) << 30})
			}
			start := from.Add(time.Duration(first/workflows.MaxForecastVMs) * time.Hour)
			batches = append(batches, batch{i, map[string]any{"id": fmt.Sprintf("%s-wave%d", b.pool(i), first), "vms": vms,
				"earliest_start": start.Format(time.RFC3339), "deadline": start.Add(24 * time.Hour).Format(time.RFC3339), "plan": true}})
		}
	}
	b.parallel(len(batches), func(n int) {
		b.l.call(ctx, "POST /forecast", "POST", "/forecast?pool="+b.pool(batches[n].pool), batches[n].req, nil)
	})
	return nil
}

// runLoad lets the fleets tick for -duration while every connector posts metrics
// every -metrics-every.
func (b *poolBench) runLoad(ctx context.Context) error {
	end := time.Now().Add(b.o.duration)
	for time.Until(end) > b.o.metricsEvery/2 && ctx.Err() == nil {
		b.postMetrics(ctx, min(b.o.metricsEvery, time.Until(end)))
	}
	return ctx.Err()
}

// runStats is what one run of a fleet's history holds.
type runStats struct {
	events          int
	bytes           int64
	largest         *historypb.HistoryEvent
	largestSize     int
	plans, collects []time.Duration
	// planned are the ticks: Collect plus the Plan after it, with the worker that
	// planned and when.
	planned        []tickRecord
	continuedAsNew bool
	// metrics are the events connectors' metrics put in the run: updates that carried
	// posts, and the activities that stored them. There should be none.
	metrics int
}

// tickRecord is one tick of a fleet: when its Plan started, on which worker, and how
// long Collect and Plan took.
type tickRecord struct {
	fleet, worker string
	at            time.Time
	took          time.Duration
}

// ticks are the run's tick times, Collect plus Plan.
func (s runStats) ticks() []time.Duration {
	var d []time.Duration
	for _, t := range s.planned {
		d = append(d, t.took)
	}
	return d
}

// splitFits sorts ticks into those that fitted their pool's forecast, the first of
// each fleet on each worker in each hour (a worker keeps an hour's fitted forecasts,
// and trains its rate model in one of those ticks), and those that reused it.
func splitFits(runs []runStats) (fitted, reused []time.Duration) {
	var all []tickRecord
	for _, s := range runs {
		all = append(all, s.planned...)
	}
	slices.SortFunc(all, func(a, b tickRecord) int { return a.at.Compare(b.at) })
	seen := map[string]bool{}
	for _, t := range all {
		key := t.fleet + " " + t.worker + " " + t.at.Truncate(time.Hour).String()
		if seen[key] {
			reused = append(reused, t.took)
			continue
		}
		seen[key] = true
		fitted = append(fitted, t.took)
	}
	slices.Sort(fitted)
	slices.Sort(reused)
	return fitted, reused
}

// poolResult is what measure read.
type poolResult struct {
	runs []runStats
}

// measure reads every run of every pool's fleet since the benchmark started.
func (b *poolBench) measure(ctx context.Context) (poolResult, error) {
	var r poolResult
	for i := range b.o.pools {
		query := fmt.Sprintf("WorkflowId = '%s' AND StartTime >= '%s'", workflows.FleetWorkflowID(b.pool(i)), b.started.UTC().Format(time.RFC3339))
		var token []byte
		for {
			page, err := b.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
			if err != nil {
				return r, err
			}
			for _, e := range page.GetExecutions() {
				s, err := readRun(ctx, b.tc, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
				if err != nil {
					return r, err
				}
				r.runs = append(r.runs, s)
			}
			if token = page.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	return r, nil
}

// readRun reads one run's history: its length and size, its largest event, and the
// time its Collect and Plan activities took.
func readRun(ctx context.Context, tc client.Client, workflowID, runID string) (runStats, error) {
	var s runStats
	it := tc.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	startedAt := map[int64]time.Time{}
	worker := map[int64]string{}
	var lastCollect time.Duration
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return s, err
		}
		s.events++
		size := proto.Size(e)
		s.bytes += int64(size)
		if size > s.largestSize {
			s.largest, s.largestSize = e, size
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			if e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput().GetName() == workflows.UpdateConnectorMetrics {
				s.metrics++
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			if scheduled[e.GetEventId()] == "RecordConnectorMetrics" {
				s.metrics++
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			startedAt[a.GetScheduledEventId()], worker[a.GetScheduledEventId()] = e.GetEventTime().AsTime(), a.GetIdentity()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			took := e.GetEventTime().AsTime().Sub(startedAt[id])
			switch scheduled[id] {
			case "Collect":
				s.collects = append(s.collects, took)
				lastCollect = took
			case "Plan":
				s.plans = append(s.plans, took)
				s.planned = append(s.planned, tickRecord{fleet: workflowID, worker: worker[id], at: startedAt[id], took: lastCollect + took})
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			s.continuedAsNew = true
		}
	}
	return s, nil
}

// print reports the runs and judges them; it says whether every target was met and
// no call failed.
func (r poolResult) print(w io.Writer, o poolOptions, l *load) bool {
	var plans, collects, ticks []time.Duration
	var events []int
	var sizes []int64
	var largest *historypb.HistoryEvent
	largestSize, continued, metrics := 0, 0, 0
	for _, s := range r.runs {
		metrics += s.metrics
		plans = append(plans, s.plans...)
		collects = append(collects, s.collects...)
		ticks = append(ticks, s.ticks()...)
		events = append(events, s.events)
		sizes = append(sizes, s.bytes)
		if s.largestSize > largestSize {
			largest, largestSize = s.largest, s.largestSize
		}
		if s.continuedAsNew {
			continued++
		}
	}
	slices.Sort(plans)
	slices.Sort(collects)
	slices.Sort(ticks)
	slices.Sort(events)
	slices.Sort(sizes)
	fmt.Fprintf(w, "setup        %d pools × %d sites, %d connectors, %d planned migrations; tick %s, %d ticks a run\n",
		o.pools, o.sites, o.pools*o.conns, o.pools*o.planned, o.tick, o.maxTicks)
	fmt.Fprintf(w, "runs         %d fleet runs read, %d of them continued as new\n", len(r.runs), continued)
	ok := len(l.errors) == 0 && len(r.runs) > 0
	judge := func(met bool) string {
		if met {
			return "met"
		}
		ok = false
		return "MISSED"
	}
	if len(r.runs) > 0 {
		fmt.Fprintf(w, "history      events per run p50 %d, max %d (at most %d: %s); bytes per run p50 %.0f KiB, max %.0f KiB (at most %d KiB: %s)\n",
			events[len(events)/2], events[len(events)-1], o.maxEvents, judge(events[len(events)-1] <= o.maxEvents),
			float64(sizes[len(sizes)/2])/1024, float64(sizes[len(sizes)-1])/1024, o.maxHistoryBytes>>10, judge(sizes[len(sizes)-1] <= o.maxHistoryBytes))
		fmt.Fprintf(w, "payloads     largest event %.1f KiB (%s), at most %d KiB: %s\n", float64(largestSize)/1024,
			largest.GetEventType(), o.maxPayload>>10, judge(largestSize <= o.maxPayload))
		if p := parts(largest); p != "" {
			fmt.Fprintf(w, "             its input's largest parts: %s\n", p)
		}
	}
	fmt.Fprintf(w, "metrics      %d events of connectors' metrics posts in the fleets' histories (none: %s)\n", metrics, judge(metrics == 0))
	for _, a := range []struct {
		name string
		d    []time.Duration
	}{{"Collect", collects}, {"Plan", plans}, {"tick", ticks}} {
		if len(a.d) == 0 {
			fmt.Fprintf(w, "%-12s none recorded\n", a.name)
			ok = false
			continue
		}
		fmt.Fprintf(w, "%-12s %d, p50 %s, p90 %s, p99 %s, max %s\n", a.name, len(a.d), ms(percentile(a.d, 50)), ms(percentile(a.d, 90)),
			ms(percentile(a.d, 99)), ms(a.d[len(a.d)-1]))
	}
	fitted, reused := splitFits(r.runs)
	for _, a := range []struct {
		name string
		d    []time.Duration
	}{{"  fitting", fitted}, {"  reusing", reused}} {
		if len(a.d) > 0 {
			fmt.Fprintf(w, "%-12s %d, p50 %s, p90 %s, p99 %s, max %s\n", a.name, len(a.d), ms(percentile(a.d, 50)), ms(percentile(a.d, 90)),
				ms(percentile(a.d, 99)), ms(a.d[len(a.d)-1]))
		}
	}
	fmt.Fprintln(w, "             (fitting: the first tick of a fleet on a worker in an hour, which fits its forecast; reusing: the others)")
	if len(reused) > 0 {
		fmt.Fprintf(w, "target       planning activity time per tick reusing the hour's forecast at most %s (p99): %s\n", ms(o.tickTarget),
			judge(percentile(reused, 99) <= o.tickTarget))
	}
	printLatency(w, l.lat, "PUT /sites", "POST /connectors", "POST /connectors/{id}/metrics", "POST /forecast")
	printErrors(w, l.errors)
	return ok
}

// parts names the biggest fields of a workflow's input (a fleet's state, carried
// across continue-as-new), with their sizes: what makes a started event large.
func parts(e *historypb.HistoryEvent) string {
	payloads := e.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(payloads) == 0 {
		return ""
	}
	var in map[string]json.RawMessage
	if json.Unmarshal(payloads[0].GetData(), &in) != nil {
		return ""
	}
	var state map[string]json.RawMessage
	if json.Unmarshal(in["state"], &state) != nil {
		return ""
	}
	type part struct {
		name string
		size int
	}
	var ps []part
	for name, raw := range state {
		ps = append(ps, part{"state." + name, len(raw)})
	}
	slices.SortFunc(ps, func(a, b part) int { return b.size - a.size })
	var out []string
	for _, p := range ps[:min(4, len(ps))] {
		out = append(out, fmt.Sprintf("%s %.1f KiB", p.name, float64(p.size)/1024))
	}
	return strings.Join(out, ", ")
}
