package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/store"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. Linux
// reports 100 on every mainstream architecture, and reading sysconf(_SC_CLK_TCK)
// would need cgo.
const clockTicks = 100

// Reporter marks the connector ready and, every Interval, records a metrics sample.
// Database errors are logged and the loop goes on: the connector keeps moving bytes
// when it cannot report, and a connector the fleet has not recorded yet (a foreign
// key failure) starts reporting once it has.
type Reporter struct {
	ID       string
	Store    *store.Store
	Stats    *activities.ConnectorStats
	Interval time.Duration
	Logger   *slog.Logger

	// lastReadyErr keeps a repeated readiness failure to one log line.
	lastReadyErr string
}

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	ready := r.markReady(ctx)
	prev := takeSample(r.Stats)
	tick := time.NewTicker(r.Interval)
	defer tick.Stop()
	var lastErr string
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
		m := metric(r.ID, prev, cur)
		prev = cur
		err := r.write(ctx, m)
		// Log a failure once, not every interval, and say when it clears.
		switch {
		case err != nil && err.Error() != lastErr:
			r.Logger.Warn("cannot record metrics; will keep trying", "error", err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			r.Logger.Info("recording metrics again")
			lastErr = ""
		}
	}
}

func (r *Reporter) write(ctx context.Context, m store.ConnectorMetric) error {
	ctx, cancel := context.WithTimeout(ctx, max(r.Interval, 5*time.Second))
	defer cancel()
	return r.Store.InsertConnectorMetric(ctx, m)
}

// markReady records readiness and reports whether that is done.
func (r *Reporter) markReady(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, max(r.Interval, 5*time.Second))
	defer cancel()
	err := r.Store.MarkConnectorReady(ctx, r.ID)
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
// 100 when several cores are busy), bandwidth is bytes moved over wall time, and the
// read latency is the current sample's, which covers the time since prev.
func metric(id string, prev, cur sample) store.ConnectorMetric {
	m := store.ConnectorMetric{ConnectorID: id, At: cur.at, RAMBytes: cur.rssBytes, ActiveTasks: cur.active, BytesMoved: cur.moved,
		StorageUsedBytes: cur.held, TargetFreeBytes: cur.targetFree}
	if cur.readLatency > 0 {
		latency := cur.readLatency.Seconds()
		m.ReadLatencySeconds = &latency
	}
	if dt := cur.at.Sub(prev.at).Seconds(); dt > 0 {
		m.CPUPercent = max(cur.cpuSeconds-prev.cpuSeconds, 0) / dt * 100
		m.BandwidthUsedBytesSec = float64(max(cur.moved-prev.moved, 0)) / dt
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
