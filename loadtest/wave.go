package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/workflows"
)

// waveOptions are the flags of `loadtest wave`.
type waveOptions struct {
	url, key, wave, pool string
	vms, maxRunning      int
	maxConnectors        int
	startIn, window      time.Duration
	poll, timeout        time.Duration
	workerPIDs           []int
}

func parseWave(args []string, cfg config.Config) (waveOptions, error) {
	var o waveOptions
	var pids string
	fs := flag.NewFlagSet("loadtest wave", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "http://"+cfg.HTTPAddr, "the web server's base URL")
	fs.StringVar(&o.key, "key", os.Getenv("PMO_API_KEY"), "an admin API key, or an operator's with -max-connectors 0 (default $PMO_API_KEY)")
	fs.StringVar(&o.wave, "wave", "bench-"+time.Now().UTC().Format("20060102-150405"), "the wave's ID")
	fs.StringVar(&o.pool, "pool", cfg.Pool, "the pool whose fleet plans the wave")
	fs.IntVar(&o.vms, "vms", 10000, "the wave's size: the inventory's smallest VMs")
	fs.IntVar(&o.maxRunning, "max-running", 0, "the wave's max_running (0: its default)")
	fs.IntVar(&o.maxConnectors, "max-connectors", 40, "the pool's max_connectors, set first (POST /policy, an admin key): what the machine can run; 0 leaves the policy as it is")
	fs.DurationVar(&o.startIn, "start-in", 2*time.Minute, "the wave's earliest start, from now: the fleet's time to pre-warm")
	fs.DurationVar(&o.window, "window", 6*time.Hour, "from the earliest start to the wave's deadline")
	fs.DurationVar(&o.poll, "poll", 5*time.Second, "how often to read the wave's progress and the workers' memory")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Hour, "give up on the wave after this long")
	fs.StringVar(&pids, "worker-pids", "", "the workers' process IDs, comma-separated, whose memory is measured")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, p := range strings.FieldsFunc(pids, func(r rune) bool { return r == ',' }) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid < 1 {
			return o, fmt.Errorf("-worker-pids: %q is not a process ID", p)
		}
		o.workerPIDs = append(o.workerPIDs, pid)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.key == "":
		return o, errors.New("-key or PMO_API_KEY: an operator API key is needed")
	case o.vms < 1:
		return o, fmt.Errorf("-vms must be at least 1, got %d", o.vms)
	case o.maxConnectors < 0:
		return o, fmt.Errorf("-max-connectors must be at least 0, got %d", o.maxConnectors)
	}
	return o, nil
}

// runWave is `loadtest wave`: the inventory's -vms smallest VMs planned as one wave
// (POST /forecast, MaxForecastVMs a request), submitted with one POST /waves, followed
// to its end; then the histories of the wave, its batches, its migrations and the
// fleet are read and reported with the time from the submission to the last child
// started, the planning tick's time and the workers' memory.
func runWave(ctx context.Context, args []string, out io.Writer) (bool, error) {
	cfg, err := config.Load()
	if err != nil {
		return false, err
	}
	o, err := parseWave(args, cfg)
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
	vms, err := st.SmallestVMs(ctx, o.vms)
	st.Close()
	if err != nil {
		return false, err
	}
	if len(vms) < o.vms {
		return false, fmt.Errorf("the inventory holds %d VMs, fewer than -vms %d (seed more: starter seed -vms N)", len(vms), o.vms)
	}
	l := &load{client: &http.Client{Timeout: 5 * time.Minute}, lat: map[string][]time.Duration{}}
	l.o.url, l.o.key = o.url, o.key
	if o.maxConnectors > 0 {
		req := map[string]any{"max_connectors": o.maxConnectors, "who": "loadtest", "why": "what this machine can run"}
		if !l.call(ctx, "POST /policy", "POST", "/policy?pool="+o.pool, req, nil) {
			return false, fmt.Errorf("setting max_connectors: %s", strings.Join(l.errors, "; "))
		}
	}
	before := readyConnectors(ctx, l, o.pool)
	began := time.Now()
	start := began.Add(o.startIn).UTC().Truncate(time.Second)
	sites := map[string]int{}
	var bytes int64
	for i := 0; i < len(vms); i += workflows.MaxForecastVMs {
		var ids []string
		for _, vm := range vms[i:min(i+workflows.MaxForecastVMs, len(vms))] {
			ids = append(ids, vm.ID)
			sites[vm.Site]++
			bytes += vm.DiskBytes
		}
		req := map[string]any{"id": fmt.Sprintf("%s-p%d", o.wave, i/workflows.MaxForecastVMs+1), "wave": o.wave, "vm_ids": ids,
			"earliest_start": start.Format(time.RFC3339), "deadline": start.Add(o.window).Format(time.RFC3339), "plan": true}
		if !l.call(ctx, "POST /forecast", "POST", "/forecast?pool="+o.pool, req, nil) {
			return false, fmt.Errorf("planning the wave: %s", strings.Join(l.errors, "; "))
		}
	}
	fmt.Fprintf(out, "pool         %s, max_connectors %d (0: unchanged)\n", o.pool, o.maxConnectors)
	fmt.Fprintf(out, "planned      %d VMs (%.1f MiB) at %d sites in %d requests, %.1f s; earliest start in %s\n",
		len(vms), float64(bytes)/(1<<20), len(sites), (len(vms)+workflows.MaxForecastVMs-1)/workflows.MaxForecastVMs,
		time.Since(began).Seconds(), o.startIn)

	submitted := time.Now()
	if !l.call(ctx, "POST /waves", "POST", "/waves?pool="+o.pool, map[string]any{"id": o.wave, "max_running": o.maxRunning}, nil) {
		return false, fmt.Errorf("submitting the wave: %s", strings.Join(l.errors, "; "))
	}
	w, err := followWave(ctx, l, o, submitted, start, out)
	if err != nil {
		return false, err
	}
	var report contract.WaveReport
	l.call(ctx, "GET /waves/{id}/report", "GET", "/waves/"+o.wave+"/report", nil, &report)
	m, err := measureWave(ctx, tc, o.wave, workflows.FleetWorkflowID(o.pool), submitted)
	if err != nil {
		return false, fmt.Errorf("reading the histories: %w", err)
	}
	fmt.Fprintf(out, "wave         %d started, %d succeeded, %d failed (%d past their SLA), %d refused; %.1f MiB copied by %d connectors\n",
		w.Started, w.Succeeded, w.Failed, w.Breached, w.RefusedCount, float64(report.Bytes)/(1<<20), len(report.Connectors))
	count := func(n int) string {
		if n < 0 {
			return "? (GET /connectors did not answer)"
		}
		return strconv.Itoa(n)
	}
	fmt.Fprintf(out, "pre-warm     %s connectors warm or busy at the earliest start, %s before the wave was planned\n",
		count(w.readyAtStart), count(before))
	fmt.Fprintf(out, "times        submission to the last child started %s (%s after the earliest start); to the end %s\n",
		w.lastStarted.Round(time.Second), (w.lastStarted - o.startIn).Round(time.Second), w.ended.Round(time.Second))
	m.print(out)
	fmt.Fprintf(out, "workers      peak resident memory %s\n", w.memory())
	printLatency(out, l.lat, "POST /forecast", "POST /waves", "GET /waves/{id}")
	printErrors(out, l.errors)
	ok := len(l.errors) == 0 && w.Done && w.Failed == 0 && w.RefusedCount == 0
	return ok, nil
}

// waveRun is what following the wave saw.
type waveRun struct {
	workflows.WaveProgress
	lastStarted, ended time.Duration // since the submission
	peakRSS            map[int]int64 // by worker PID, in bytes
	readyAtStart       int           // connectors warm or busy at the earliest start; -1 unknown
	measuredStart      bool
}

// readyConnectors counts the pool's connectors that can take work now, or -1 if
// GET /connectors did not answer in three tries (it asks the fleet, which may be busy).
func readyConnectors(ctx context.Context, l *load, pool string) int {
	for try := range 3 {
		var conns []struct {
			State planning.ConnectorState `json:"state"`
		}
		if l.call(ctx, "GET /connectors", "GET", "/connectors?pool="+pool, nil, &conns) {
			n := 0
			for _, c := range conns {
				if c.State == planning.StateWarm || c.State == planning.StateActive {
					n++
				}
			}
			return n
		}
		if try < 2 {
			time.Sleep(2 * time.Second)
		}
	}
	return -1
}

func (w waveRun) memory() string {
	if len(w.peakRSS) == 0 {
		return "not measured (give -worker-pids)"
	}
	var parts []string
	for _, pid := range slices.Sorted(maps.Keys(w.peakRSS)) {
		parts = append(parts, fmt.Sprintf("%d: %.0f MiB", pid, float64(w.peakRSS[pid])/(1<<20)))
	}
	return strings.Join(parts, ", ")
}

// followWave reads the wave's progress every -poll until it ends, printing it every
// half minute, and the workers' peak memory.
func followWave(ctx context.Context, l *load, o waveOptions, submitted, start time.Time, out io.Writer) (waveRun, error) {
	w := waveRun{peakRSS: map[int]int64{}, readyAtStart: -1}
	deadline := submitted.Add(o.timeout)
	lastPrint := time.Time{}
	for {
		var v workflows.WaveProgress
		if l.call(ctx, "GET /waves/{id}", "GET", "/waves/"+o.wave, nil, &v) {
			w.WaveProgress = v
		}
		for _, pid := range o.workerPIDs {
			if rss, err := residentBytes(pid); err == nil {
				w.peakRSS[pid] = max(w.peakRSS[pid], rss)
			}
		}
		since := time.Since(submitted)
		if !w.measuredStart && !time.Now().Before(start) {
			w.readyAtStart, w.measuredStart = readyConnectors(ctx, l, o.pool), true
		}
		if w.lastStarted == 0 && w.Planned > 0 && w.Started+w.RefusedCount >= w.Planned {
			w.lastStarted = since
		}
		if time.Since(lastPrint) >= 30*time.Second || w.Done {
			waiting := ""
			if w.AwaitingOperator > 0 {
				// A rolled-back cutover waits for POST /migrations/{id}/approve; the
				// wave runs others meanwhile but ends only once it is approved.
				waiting = fmt.Sprintf(" (%d awaiting an operator)", w.AwaitingOperator)
			}
			fmt.Fprintf(out, "  %6.0f s  %d of %d started, %d running%s, %d succeeded, %d failed\n",
				since.Seconds(), w.Started, w.Planned, w.Running, waiting, w.Succeeded, w.Failed)
			lastPrint = time.Now()
		}
		if w.Done {
			w.ended = since
			return w, nil
		}
		if time.Now().After(deadline) {
			return w, fmt.Errorf("the wave had not ended after -timeout %s: %d of %d started, %d running", o.timeout, w.Started, w.Planned, w.Running)
		}
		select {
		case <-ctx.Done():
			return w, ctx.Err()
		case <-time.After(o.poll):
		}
	}
}

// residentBytes is a process's peak resident set (VmHWM), from /proc.
func residentBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM")
}

// waveHistories are the largest histories of the wave's workflows and the fleet's.
type waveHistories struct {
	wave, batch, migration, fleet historyMax
	ticks                         []time.Duration
}

// historyMax is the largest run of a kind of workflow, by events and by bytes.
type historyMax struct {
	runs     int
	events   int64
	bytes    int64
	eventsID string
	bytesID  string
}

func (h *historyMax) add(id string, events, bytes int64) {
	h.runs++
	if events > h.events {
		h.events, h.eventsID = events, id
	}
	if bytes > h.bytes {
		h.bytes, h.bytesID = bytes, id
	}
}

func (h historyMax) String() string {
	if h.runs == 0 {
		return "none read"
	}
	return fmt.Sprintf("%d runs; most events %d (%s), largest %.1f KiB (%s)", h.runs, h.events, h.eventsID,
		float64(h.bytes)/1024, h.bytesID)
}

// measureWave reads the wave's and its batches' histories whole, the migrations'
// sizes from visibility, and the fleet's runs since the submission with their ticks.
func measureWave(ctx context.Context, tc client.Client, wave, fleet string, since time.Time) (waveHistories, error) {
	var m waveHistories
	read := func(h *historyMax, query string, whole bool) error {
		var token []byte
		for {
			page, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 1000})
			if err != nil {
				return err
			}
			for _, e := range page.GetExecutions() {
				id := e.GetExecution().GetWorkflowId()
				if !whole {
					h.add(id, e.GetHistoryLength(), e.GetHistorySizeBytes())
					continue
				}
				s, err := readRun(ctx, tc, id, e.GetExecution().GetRunId())
				if err != nil {
					return err
				}
				h.add(id, int64(s.events), s.bytes)
				if h == &m.fleet {
					m.ticks = append(m.ticks, s.ticks()...)
				}
			}
			if token = page.GetNextPageToken(); len(token) == 0 {
				return nil
			}
		}
	}
	waveID := workflows.WaveWorkflowID(wave)
	after := since.UTC().Add(-time.Minute).Format(time.RFC3339)
	for _, q := range []struct {
		h     *historyMax
		query string
		whole bool
	}{
		{&m.wave, fmt.Sprintf("WorkflowId = '%s'", waveID), true},
		{&m.batch, fmt.Sprintf("ParentWorkflowId = '%s'", waveID), true},
		{&m.migration, fmt.Sprintf("WorkflowType = 'MigrationWorkflow' AND StartTime >= '%s'", after), false},
		{&m.fleet, fmt.Sprintf("WorkflowId = '%s' AND StartTime >= '%s'", fleet, after), true},
	} {
		if err := read(q.h, q.query, q.whole); err != nil {
			return m, err
		}
	}
	slices.Sort(m.ticks)
	return m, nil
}

func (m waveHistories) print(w io.Writer) {
	fmt.Fprintf(w, "history      wave: %s\n", m.wave)
	fmt.Fprintf(w, "             batches: %s\n", m.batch)
	fmt.Fprintf(w, "             migrations: %s\n", m.migration)
	fmt.Fprintf(w, "             fleet: %s\n", m.fleet)
	if len(m.ticks) == 0 {
		fmt.Fprintln(w, "tick         none recorded")
		return
	}
	fmt.Fprintf(w, "tick         %d (Collect and Plan), p50 %s, p90 %s, p99 %s, max %s\n", len(m.ticks), ms(percentile(m.ticks, 50)),
		ms(percentile(m.ticks, 90)), ms(percentile(m.ticks, 99)), ms(m.ticks[len(m.ticks)-1]))
}
