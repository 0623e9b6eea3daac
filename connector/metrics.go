package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/provisioner"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/workflows"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. Linux
// reports 100 on every mainstream architecture, and reading sysconf(_SC_CLK_TCK)
// would need cgo.
const clockTicks = 100

// Reporter marks the connector ready and, every Interval, records a metrics sample
// through its Sink. Failures are logged and the loop goes on: the connector keeps
// moving bytes when it cannot report, keeps up to MaxPending samples meanwhile, and a
// connector the fleet has not recorded yet starts reporting once it has.
type Reporter struct {
	ID       string
	Sink     Sink
	Stats    *activities.ConnectorStats
	Interval time.Duration
	// WriteEvery, when set, is how often the samples taken since the last write are
	// written together; zero writes each as it is taken.
	WriteEvery time.Duration
	Logger     *slog.Logger

	// pending are the samples not recorded yet, oldest first.
	pending []planning.MetricSample
	// lastReadyErr keeps a repeated readiness failure to one log line.
	lastReadyErr string
}

// MaxPending is how many samples a reporter keeps while it cannot record them: what
// one metrics request to the API may carry.
const MaxPending = workflows.MaxMetricSamples

// Sink is where a connector's readiness and metrics go: PostgreSQL for the connectors
// PMO starts, PMO's HTTP API for one that runs at a customer site.
type Sink interface {
	// Ready records that the connector polls its task queue.
	Ready(ctx context.Context, id string) error
	// Write records the samples, all or none.
	Write(ctx context.Context, id string, samples []planning.MetricSample) error
}

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	ready := r.markReady(ctx)
	prev := takeSample(r.Stats)
	tick := time.NewTicker(r.Interval)
	defer tick.Stop()
	var lastErr string
	var lastWrite time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !ready {
			ready = r.markReady(ctx)
		}
		cur := takeSample(r.Stats)
		r.pending = append(r.pending, metric(prev, cur))
		if len(r.pending) > MaxPending {
			r.pending = slices.Delete(r.pending, 0, len(r.pending)-MaxPending)
		}
		prev = cur
		// The first sample goes at once: an external connector takes work from it.
		if r.WriteEvery > 0 && !lastWrite.IsZero() && time.Since(lastWrite) < r.WriteEvery && len(r.pending) < MaxPending {
			continue
		}
		lastWrite = time.Now()
		err := r.write(ctx)
		var rejected *rejectedError
		if errors.As(err, &rejected) {
			// Sending them again would be refused again.
			r.pending = nil
		}
		if err == nil {
			r.pending = r.pending[:0]
		}
		// Log a failure once, not every interval, and say when it clears.
		switch {
		case err != nil && err.Error() != lastErr:
			r.Logger.Warn("cannot record metrics; will keep trying", "error", err, "pending", len(r.pending))
			lastErr = err.Error()
		case err == nil && lastErr != "":
			r.Logger.Info("recording metrics again")
			lastErr = ""
		}
	}
}

func (r *Reporter) write(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(r.Interval, 5*time.Second))
	defer cancel()
	return r.Sink.Write(ctx, r.ID, r.pending)
}

// markReady records readiness and reports whether that is done.
func (r *Reporter) markReady(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, max(r.Interval, 5*time.Second))
	defer cancel()
	err := r.Sink.Ready(ctx, r.ID)
	switch {
	case err == nil:
		r.Logger.Info("connector ready")
		return true
	case ctx.Err() != nil || err.Error() == r.lastReadyErr:
	case errors.Is(err, store.ErrUnknownConnector):
		r.Logger.Warn("connector is not recorded in the database yet; readiness will be retried")
	default:
		r.Logger.Warn("cannot record readiness; will retry", "error", err)
	}
	r.lastReadyErr = err.Error()
	return false
}

// StoreSink writes to PostgreSQL, for the connectors PMO starts.
type StoreSink struct{ Store *store.Store }

// Ready records when the connector first polled.
func (s StoreSink) Ready(ctx context.Context, id string) error {
	return s.Store.MarkConnectorReady(ctx, id)
}

// Write inserts the samples.
func (s StoreSink) Write(ctx context.Context, id string, samples []planning.MetricSample) error {
	_, err := s.Store.InsertConnectorMetrics(ctx, id, samples)
	return err
}

// APISink posts to PMO's HTTP API, POST /connectors/{id}/metrics, for a connector
// that runs where PostgreSQL is out of reach. The fleet counts it ready when its
// first metrics arrive.
type APISink struct {
	// URL is the API's base, such as http://pmo.example:8080.
	URL string
	// Key is the operator API key sent as a bearer token.
	Key    string
	Client *http.Client
}

// rejectedError is the API's refusal of samples that it would refuse again.
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return e.msg }

// Ready does nothing: the fleet learns that an external connector is up from its
// metrics.
func (APISink) Ready(context.Context, string) error { return nil }

// Write posts the samples as one JSON array.
func (s APISink) Write(ctx context.Context, id string, samples []planning.MetricSample) error {
	body, err := json.Marshal(samples)
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	u := strings.TrimRight(s.URL, "/") + "/connectors/" + url.PathEscape(id) + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post metrics: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Key)
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	detail, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := fmt.Sprintf("POST %s: %s: %s", u, resp.Status, bytes.TrimSpace(detail))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errors.New(msg + " (register the connector with `starter connector register`)")
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return &rejectedError{msg}
	}
	return errors.New(msg)
}

// sample is what the process knows about itself at one moment.
type sample struct {
	at         time.Time
	cpuSeconds float64
	rssBytes   int64
	moved      int64
	active     int
	held       int64
	// targetFree is nil where the target's free space could not be read.
	targetFree *int64
	// readLatency is the mean read from the VMs' disks since the previous sample;
	// zero where there was none.
	readLatency time.Duration
	// cpu is what the connector's CPU limit did to it so far.
	cpu provisioner.CPUState
}

// takeSample reads the process's CPU time and resident memory from /proc, falling
// back to the Go runtime's view of memory where /proc is not available. It starts a
// new interval of read latency.
func takeSample(stats *activities.ConnectorStats) sample {
	s := sample{at: time.Now().UTC(), moved: stats.BytesMoved(), active: stats.ActiveTasks(),
		held: stats.StorageUsedBytes(), readLatency: stats.TakeReadLatency()}
	// A target that cannot be measured is reported as unknown; Prepare says why
	// when a migration needs it.
	if free, err := stats.TargetFreeBytes(); err == nil {
		s.targetFree = &free
	}
	// Unreadable is unlimited: the connector reports no throttling rather than none.
	s.cpu, _ = provisioner.CPUStateOf(os.Getpid())
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		s.cpuSeconds, _ = parseStat(string(b))
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if pages, err := parseStatm(string(b)); err == nil {
			s.rssBytes = pages * int64(os.Getpagesize())
		}
	}
	if s.rssBytes == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.rssBytes = int64(ms.Sys)
	}
	return s
}

// metric turns two samples into a row: CPU percent is CPU time over wall time (over
// 100 when several cores are busy), bandwidth is bytes moved over wall time, the read
// latency is the current sample's, which covers the time since prev, and throttling
// is the time the CPU limit held the connector back over wall time, where it was
// limited at both samples (a connector moved into its group in between has no
// interval to compare).
func metric(prev, cur sample) planning.MetricSample {
	m := planning.MetricSample{At: cur.at, RAMBytes: cur.rssBytes, ActiveTasks: cur.active, BytesMoved: cur.moved,
		StorageUsedBytes: cur.held, TargetFreeBytes: cur.targetFree}
	if cur.readLatency > 0 {
		latency := cur.readLatency.Seconds()
		m.ReadLatencySeconds = &latency
	}
	if dt := cur.at.Sub(prev.at).Seconds(); dt > 0 {
		m.CPUPercent = max(cur.cpuSeconds-prev.cpuSeconds, 0) / dt * 100
		m.BandwidthUsedBytesSec = float64(max(cur.moved-prev.moved, 0)) / dt
		if cur.cpu.Limited && prev.cpu.Limited && cur.cpu.Throttled >= prev.cpu.Throttled {
			throttled := (cur.cpu.Throttled - prev.cpu.Throttled).Seconds() / dt * 100
			m.CPUThrottledPercent = &throttled
		}
	}
	return m
}

// parseStat returns utime+stime in seconds from /proc/<pid>/stat. The command name in
// field 2 may hold spaces and parentheses, so fields are counted from the last ')'.
func parseStat(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	// After ") " come field 3 (state) onwards; utime and stime are fields 14 and 15.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return float64(utime+stime) / clockTicks, nil
}

// parseStatm returns the resident set in pages, the second field of /proc/<pid>/statm.
func parseStatm(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, errors.New("statm: too few fields")
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("statm: resident: %w", err)
	}
	return n, nil
}
