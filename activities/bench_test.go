package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/provisioner"
	"github.com/pmo-dev/pmo/store"
)

// planTickPool sets up BenchmarkPlanTick's pool in PostgreSQL and returns the fleet
// activities and the Plan input that sends its 100 connectors.
func planTickPool(b *testing.B) (*Fleet, *store.Store, contract.PlanInput) {
	b.Helper()
	a, s := fleetFixture(b)
	ctx := context.Background()
	sites := []string{"ams1", "fra1"}
	for i := range 3 {
		id := fmt.Sprint("bench", i)
		_, err := s.Pool.Exec(ctx, `INSERT INTO sites (id, name, region, uplink_bytes_per_sec) VALUES ($1, $1, 'eu', 1e9)`, id)
		require.NoError(b, err)
		sites = append(sites, id)
	}
	// Four weeks at each site, busier in office hours.
	var rows [][]any
	start := now.Add(-HistoryWindow)
	for _, site := range sites {
		for h := range int(HistoryWindow / time.Hour) {
			at := start.Add(time.Duration(h) * time.Hour)
			n := 1
			if at.Hour() >= 8 && at.Hour() < 18 {
				n = 5
			}
			for k := range n {
				t0 := at.Add(time.Duration(k*9) * time.Minute)
				rows = append(rows, []any{fmt.Sprintf("b-%s-%d-%d", site, h, k), "vm-1", site, "c-" + site, "bronze", int64(8 << 30),
					t0, t0.Add(20 * time.Minute), float64(8<<30) / 1200, "succeeded"})
			}
		}
	}
	_, err := s.Pool.CopyFrom(ctx, pgx.Identifier{"migrations"},
		[]string{"id", "vm_id", "site_id", "connector_id", "sla_tier", "bytes", "started_at", "ended_at", "avg_bytes_per_sec", "outcome"},
		pgx.CopyFromRows(rows))
	require.NoError(b, err)
	// 100 connectors, each with a day of samples a minute apart.
	size, _ := planning.SizeNamed("medium")
	var conns []planning.Connector
	for i := range 100 {
		c := planning.Connector{ID: fmt.Sprint("default-c", i), Site: sites[i%len(sites)], State: planning.StateWarm, Size: size,
			TaskQueue: fmt.Sprint("pmo.connector.default-c", i), CreatedAt: now.Add(-24 * time.Hour)}
		require.NoError(b, s.UpsertConnector(ctx, "default", c))
		conns = append(conns, c)
		var samples []planning.MetricSample
		for m := range 24 * 60 {
			samples = append(samples, planning.MetricSample{At: now.Add(-time.Duration(m) * time.Minute), CPUPercent: float64(10 + i%50),
				RAMBytes: 300 << 20, BandwidthUsedBytesSec: float64(int64(i%4) << 20), ActiveTasks: i % 4})
		}
		_, err := s.InsertConnectorMetrics(ctx, c.ID, samples)
		require.NoError(b, err)
	}
	var planned []planning.PlannedMigration
	for i := range 1000 {
		at := now.Add(time.Hour + time.Duration(i)*time.Minute)
		planned = append(planned, planning.PlannedMigration{ID: fmt.Sprint("w-", i), Site: sites[i%len(sites)], Bytes: int64(1+i%64) << 30,
			SLATier: "bronze", EarliestStart: at, Deadline: at.Add(24 * time.Hour)})
	}
	require.NoError(b, s.SavePlanned(ctx, "default", planned, now))

	return a, s, contract.PlanInput{Pool: "default", Sites: sites, Now: now, Hours: 48, Size: "medium", LeadTime: 15 * time.Minute,
		Tick: 30 * time.Second, Fleet: &planning.Fleet{Connectors: conns, Policy: planning.DefaultPolicy(), Sites: sites}}
}

// BenchmarkPlanTick is one tick's planning activity for the pool that issue 10 names:
// five sites with four weeks of history (about 3 migrations an hour each), 100
// connectors with a day of metrics, and 1,000 planned migrations. It runs the real
// Plan activity on PostgreSQL, its reads and writes included: the target is 1 s.
//
//	DATABASE_URL=… go test ./activities -run '^$' -bench PlanTick -benchtime 20x
func BenchmarkPlanTick(b *testing.B) {
	a, _, in := planTickPool(b)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	// The tick decides on the fleet the workflow sends: its 100 connectors.
	// The first tick of a worker trains the rate model, which then serves an hour.
	_, err := aenv.ExecuteActivity(a.Plan, in)
	require.NoError(b, err)
	var d planning.Decision
	// Ticks within an hour reuse the hour's fitted forecast; the first of each hour
	// fits the forecasting models again, and trains the rate model, which serves an
	// hour. Each reports what a tick puts into the fleet's history: the activity's
	// input (the fleet it sends) and its decision.
	for _, c := range []struct {
		name string
		step time.Duration
	}{{"within-an-hour", 30 * time.Second}, {"first-of-each-hour", time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			for i := range b.N {
				in.Now = now.Add(time.Duration(i) * c.step)
				v, err := aenv.ExecuteActivity(a.Plan, in)
				if err != nil {
					b.Fatal(err)
				}
				require.NoError(b, v.Get(&d))
			}
			b.StopTimer()
			input, err := json.Marshal(in)
			require.NoError(b, err)
			decision, err := json.Marshal(d)
			require.NoError(b, err)
			b.ReportMetric(float64(len(input)), "input-bytes")
			b.ReportMetric(float64(len(decision)), "decision-bytes")
		})
	}
}

// BenchmarkTickUnderExternalPosts is a tick, Collect then Plan, of BenchmarkPlanTick's
// pool with 200 external connectors besides its own 100, while 2,000 external
// connectors (the other 1,800 in another pool) post their metrics every 15 s: 133
// posts a second, each stored as POST /connectors/{id}/metrics stores it. The
// target is 1 s a tick on a quiet machine.
//
//	DATABASE_URL=… go test ./activities -run '^$' -bench TickUnderExternalPosts -benchtime 20x
func BenchmarkTickUnderExternalPosts(b *testing.B) {
	a, s, in := planTickPool(b)
	// Collect asks the process driver whether the pool's own connectors run: none do.
	p, err := provisioner.NewProcess("connector", b.TempDir(), nil, nil)
	require.NoError(b, err)
	a.Provisioner = p
	ctx := context.Background()
	size, _ := planning.SizeNamed("medium")
	var own, ids, external []string
	for _, c := range in.Fleet.Connectors {
		own = append(own, c.ID)
	}
	for i := range 2000 {
		pool, site := "default", in.Sites[i%len(in.Sites)]
		if i >= 200 {
			pool = "elsewhere"
		}
		c := planning.Connector{ID: fmt.Sprint("ext-", i), Site: site, State: planning.StateWarm, Size: size, External: true,
			TaskQueue: fmt.Sprint("pmo.connector.ext-", i), CreatedAt: now.Add(-24 * time.Hour), StaleAfter: time.Minute}
		require.NoError(b, s.UpsertConnector(ctx, pool, c))
		ids = append(ids, c.ID)
		if pool == "default" {
			in.Fleet.Connectors = append(in.Fleet.Connectors, c)
			external = append(external, c.ID)
		}
	}
	// The posts, from their own goroutine, as the web server's handlers make them.
	var posted atomic.Int64
	postCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		every := time.NewTicker(15 * time.Second / 2000)
		defer every.Stop()
		for n := 0; ; n++ {
			select {
			case <-postCtx.Done():
				return
			case t := <-every.C:
				sample := planning.MetricSample{At: t, CPUPercent: 20, RAMBytes: 300 << 20, BandwidthUsedBytesSec: 1 << 20, ActiveTasks: 1}
				if _, err := s.RecordExternalMetrics(postCtx, ids[n%len(ids)], []planning.MetricSample{sample}); err == nil {
					posted.Add(1)
				}
			}
		}
	}()
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	collect := contract.CollectInput{Pool: "default", ConnectorIDs: own, External: external, ConnectorSites: in.Sites}
	_, err = aenv.ExecuteActivity(a.Plan, in)
	require.NoError(b, err)
	for _, c := range []struct {
		name string
		step time.Duration
	}{{"within-an-hour", 30 * time.Second}, {"first-of-each-hour", time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			began, before := time.Now(), posted.Load()
			for i := range b.N {
				in.Now = now.Add(time.Duration(i) * c.step)
				if _, err := aenv.ExecuteActivity(a.Collect, collect); err != nil {
					b.Fatal(err)
				}
				if _, err := aenv.ExecuteActivity(a.Plan, in); err != nil {
					b.Fatal(err)
				}
			}
			took := time.Since(began)
			rate := float64(posted.Load()-before) / took.Seconds()
			b.ReportMetric(rate, "posts/s")
			if took > time.Second && rate < 100 {
				b.Fatalf("%.0f posts a second, not the 133 of 2,000 connectors every 15 s", rate)
			}
		})
	}
}
