package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
)

// The forecasting and planning reads, on a database with a long history: each must be
// bounded in time and use an index, so that it stays fast at any retention.

// readsNow is "now" in the seeded history.
var readsNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// bigTables are the tables that grow with time.
var bigTables = []string{"connector_metrics", "migrations", "system_events", "forecasts", "plans"}

// seedHistory fills a database at a scale (1 is 1,008,000 metrics samples and 100,000
// migrations) and analyses it:
//   - 50 connectors at 3 sites, each with a sample a minute over the last 14 days
//     (20,160 each at scale 1);
//   - migrations spread evenly over the last 365 days (28 days hold about 7,700);
//   - system events, one every 2 h over 2 years (a tenth of them still ahead);
//   - forecasts: 3 sites x 48 hours ahead, made every hour for 60 days, all scored but
//     the last day's;
//   - plans, one every 30 s for 30 days.
func seedHistory(t testing.TB, s *store.Store, scale float64) {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := s.Pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO sites VALUES ('ams1', 'A', 'eu', 1e9), ('fra1', 'F', 'eu', 1e9), ('lon1', 'L', 'eu', 1e9)`)
	exec(`INSERT INTO sla_tiers VALUES ('gold', 3600, 60, 0.9)`)
	exec(`INSERT INTO vms SELECT 'vm-' || i, 'vm', (ARRAY['ams1','fra1','lon1'])[i % 3 + 1], 2, 1e9, 1e10, 1e6, 1e4, 'gold', '/d', 1e6
		FROM generate_series(1, 1000) i`)
	exec(`INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue,
			started_at, ready_at)
		SELECT 'c' || i, 'default', (ARRAY['ams1','fra1','lon1'])[i % 3 + 1], 'warm', 1000, 1e9, 1e8, 1e10, 'q',
			$1::timestamptz - i * interval '3 hours', $1::timestamptz - i * interval '3 hours' + interval '20 seconds'
		FROM generate_series(1, 50) i`, readsNow)
	step := time.Duration(float64(time.Minute) / scale)
	exec(`INSERT INTO connector_metrics (connector_id, at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks, bytes_moved,
			storage_used_bytes, target_free_bytes)
		SELECT 'c' || i, at, random() * 100, 1e8, random() * 1e8, (random() * 4)::int, 0, 0, 1e12
		FROM generate_series(1, 50) i, generate_series($1::timestamptz - interval '14 days', $1::timestamptz - $2::interval, $2::interval) at`,
		readsNow, step)
	n := int(100000 * scale)
	exec(`INSERT INTO migrations (id, vm_id, site_id, connector_id, sla_tier, bytes, started_at, ended_at, avg_bytes_per_sec, outcome,
			connector_bandwidth_bytes_per_sec)
		SELECT 'm' || i, 'vm-' || (i % 1000 + 1), (ARRAY['ams1','fra1','lon1'])[i % 1000 % 3 + 1], 'c' || (i % 50 + 1), 'gold', 1e9,
			$1::timestamptz - (i * 365.0 / $2) * interval '1 day',
			$1::timestamptz - (i * 365.0 / $2) * interval '1 day' + interval '20 minutes', 1e6,
			CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'succeeded' END, 1e8
		FROM generate_series(1, $2) i`, readsNow, n)
	exec(`INSERT INTO system_events (site_id, kind, severity, starts_at, ends_at)
		SELECT (ARRAY['ams1','fra1','lon1'])[i % 3 + 1], 'maintenance', 'info',
			$1::timestamptz + interval '73 days' - i * interval '2 hours', $1::timestamptz + interval '73 days' - i * interval '2 hours' + interval '1 hour'
		FROM generate_series(1, 8760) i`, readsNow)
	exec(`INSERT INTO forecasts (pool, site_id, generated_at, target_hour, model, planned, adhoc_mean, adhoc_lo, adhoc_hi, actual_arrivals, actual_bytes)
		SELECT 'default', site, g, g + h * interval '1 hour', 'm', 0, 1, 0, 2,
			CASE WHEN g + h * interval '1 hour' < $1::timestamptz - interval '1 day' THEN 1 END,
			CASE WHEN g + h * interval '1 hour' < $1::timestamptz - interval '1 day' THEN 1e9 END
		FROM unnest(ARRAY['ams1','fra1','lon1']) site,
			generate_series($1::timestamptz - interval '60 days', $1::timestamptz, interval '1 hour') g, generate_series(1, 48) h`, readsNow)
	exec(`INSERT INTO plans (pool, generated_at, body)
		SELECT 'default', g, '{"sites": []}' FROM generate_series($1::timestamptz - interval '30 days', $1::timestamptz, interval '30 seconds') g`, readsNow)
	// As autovacuum would leave them: statistics, and the visibility map that lets
	// index-only scans skip the heap.
	for _, table := range append(slices.Clone(bigTables), "vms", "connectors", "sites") {
		exec(`VACUUM ANALYZE ` + table)
	}
}

// tracer remembers the last statement each store call sent, with its arguments.
type tracer struct {
	mu   sync.Mutex
	sql  string
	args []any
}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !strings.HasPrefix(strings.TrimSpace(d.SQL), "EXPLAIN") {
		tr.sql, tr.args = d.SQL, d.Args
	}
	return ctx
}

func (tr *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// tracedStore opens a second store on the same database whose statements the tracer
// sees.
func tracedStore(t testing.TB, s *store.Store) (*store.Store, *tracer) {
	t.Helper()
	cfg := s.Pool.Config().Copy()
	tr := &tracer{}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &store.Store{Pool: pool}, tr
}

// read is one forecasting or planning read, called as the fleet calls it.
type read struct {
	name string
	call func(ctx context.Context, s *store.Store) error
	// explainArgs, when set, replace the call's arguments in EXPLAIN: a write is
	// called so that it changes nothing and explained as the fleet would run it.
	explainArgs []any
}

var reads = []read{
	{"HourlyHistory", func(ctx context.Context, s *store.Store) error {
		_, _, err := s.HourlyHistory(ctx, []string{"ams1", "fra1", "lon1"}, readsNow.Add(-28*24*time.Hour), 28*24)
		return err
	}, nil},
	{"SiteProfiles", func(ctx context.Context, s *store.Store) error {
		_, err := s.SiteProfiles(ctx, readsNow.Add(-28*24*time.Hour))
		return err
	}, nil},
	{"SiteOutcomes", func(ctx context.Context, s *store.Store) error {
		_, err := s.SiteOutcomes(ctx, readsNow.Add(-28*24*time.Hour), readsNow.Add(-2*time.Hour))
		return err
	}, nil},
	{"RateHistory", func(ctx context.Context, s *store.Store) error {
		_, err := s.RateHistory(ctx, readsNow.Add(-28*24*time.Hour), 20000)
		return err
	}, nil},
	{"Events", func(ctx context.Context, s *store.Store) error {
		_, err := s.Events(ctx, readsNow, readsNow.Add(48*time.Hour))
		return err
	}, nil},
	{"ScoreForecasts", func(ctx context.Context, s *store.Store) error {
		_, err := s.ScoreForecasts(ctx, "default", readsNow.Add(-365*24*time.Hour))
		return err
	}, []any{"default", readsNow}},
	{"ForecastAccuracy", func(ctx context.Context, s *store.Store) error {
		_, err := s.ForecastAccuracy(ctx, "default", readsNow.Add(-7*24*time.Hour))
		return err
	}, nil},
	{"ReadyDelays", func(ctx context.Context, s *store.Store) error {
		_, err := s.ReadyDelays(ctx, "default", readsNow.Add(-7*24*time.Hour), 100)
		return err
	}, nil},
	{"ResourceSamples", func(ctx context.Context, s *store.Store) error {
		_, err := s.ResourceSamples(ctx, "default", readsNow.Add(-7*24*time.Hour), 5000)
		return err
	}, nil},
	{"TargetSpace", func(ctx context.Context, s *store.Store) error {
		_, err := s.TargetSpace(ctx, "default", readsNow.Add(-10*time.Minute))
		return err
	}, nil},
	{"Timeline", func(ctx context.Context, s *store.Store) error {
		_, err := s.Timeline(ctx, "default", "ams1", readsNow.Add(-48*time.Hour), 96, readsNow)
		return err
	}, nil},
	{"ConnectorHealth", func(ctx context.Context, s *store.Store) error {
		_, err := s.ConnectorHealth(ctx, []string{"c1", "c2", "c3", "c4", "c5"})
		return err
	}, nil},
}

// plan is what EXPLAIN ANALYZE says of a statement: the big tables it scanned
// sequentially, the rows it read from them (those it kept and those its filters
// dropped), and how long it took.
type plan struct {
	seqScans []string
	text     string
	rows     float64
	ms       float64
}

// explainTimeout bounds one EXPLAIN ANALYZE: without its index, a read can take
// minutes on the benchmark's data.
const explainTimeout = 3 * time.Minute

// explain runs the statement under EXPLAIN ANALYZE in a transaction it rolls back, so
// that an UPDATE changes nothing. A statement that runs longer than explainTimeout
// comes back with that as its time and no plan.
func explain(t testing.TB, s *store.Store, sql string, args []any) plan {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", explainTimeout.Milliseconds()))
	require.NoError(t, err)
	var out []byte
	err = tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&out)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" { // query_canceled
		return plan{ms: float64(explainTimeout.Milliseconds()), text: "timed out"}
	}
	require.NoError(t, err)
	var doc []struct {
		Plan          map[string]any `json:"Plan"`
		ExecutionTime float64        `json:"Execution Time"`
	}
	require.NoError(t, json.Unmarshal(out, &doc))
	p := plan{ms: doc[0].ExecutionTime, text: string(out)}
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		rel, _ := n["Relation Name"].(string)
		if slices.Contains(bigTables, rel) {
			loops, _ := n["Actual Loops"].(float64)
			rows, _ := n["Actual Rows"].(float64)
			removed, _ := n["Rows Removed by Filter"].(float64)
			p.rows += (rows + removed) * loops
			if n["Node Type"] == "Seq Scan" && loops > 0 {
				p.seqScans = append(p.seqScans, rel)
			}
		}
		kids, _ := n["Plans"].([]any)
		for _, k := range kids {
			walk(k.(map[string]any))
		}
	}
	walk(doc[0].Plan)
	return p
}

// explainReads calls each read and explains the statement it sent.
func explainReads(t testing.TB, s *store.Store) map[string]plan {
	t.Helper()
	traced, tr := tracedStore(t, s)
	out := map[string]plan{}
	for _, r := range reads {
		require.NoError(t, r.call(context.Background(), traced), r.name)
		args := tr.args
		if r.explainArgs != nil {
			args = r.explainArgs
		}
		out[r.name] = explain(t, s, tr.sql, args)
	}
	return out
}

// dropRetentionIndexes removes the indexes migration 00008 added, to measure without.
func dropRetentionIndexes(t testing.TB, s *store.Store) {
	t.Helper()
	for _, ix := range []string{"connector_metrics_at_idx", "connector_metrics_raw_at_idx", "migrations_started_idx",
		"migrations_connector_ended_idx", "system_events_ends_idx", "forecasts_target_idx", "plans_generated_idx"} {
		_, err := s.Pool.Exec(context.Background(), "DROP INDEX "+ix)
		require.NoError(t, err)
	}
}

func TestForecastingReadsUseIndexesOnALongHistory(t *testing.T) {
	s := storetest.New(t)
	seedHistory(t, s, 0.1)
	for name, p := range explainReads(t, s) {
		require.NotEqual(t, "timed out", p.text, name)
		require.Empty(t, p.seqScans, "%s scans a growing table from end to end: %s", name, p.text)
		t.Logf("%-16s %8.0f rows read %8.2f ms", name, p.rows, p.ms)
	}
}

// BenchmarkForecastingReads times each read on 1,008,000 metrics samples and 100,000
// migrations (seedHistory at scale 1), and logs EXPLAIN ANALYZE's rows read and time
// with the indexes of migration 00008 and, once, without them, for docs/retention.md:
//
//	go test -run '^$' -bench ForecastingReads -benchtime 20x -timeout 30m -v ./store
func BenchmarkForecastingReads(b *testing.B) {
	s := storetest.New(b)
	seedHistory(b, s, 1)
	logPlans := func(label string) {
		plans := explainReads(b, s)
		for _, r := range reads {
			p := plans[r.name]
			if p.text == "timed out" {
				b.Logf("%-7s %-16s did not finish in %s", label, r.name, explainTimeout)
				continue
			}
			b.Logf("%-7s %-16s %9.0f rows read %10.2f ms  seq scans %v", label, r.name, p.rows, p.ms, p.seqScans)
		}
	}
	logPlans("indexed")
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			for b.Loop() {
				if err := r.call(context.Background(), s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	dropRetentionIndexes(b, s)
	logPlans("before")
}
