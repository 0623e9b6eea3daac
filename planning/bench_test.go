package planning

import (
	"fmt"
	"testing"
	"time"
)

// poolOf builds a pool of the given size for the benchmarks: 20 sites, 48 hours of
// forecast demand each, the planned migrations spread over the sites and the next
// 24 hours, the connectors spread over the sites with half of their slots busy, and
// as many migrations waiting as there are connectors.
func poolOf(connectors, planned int) (PredictInput, []Connector, []Reservation) {
	const sites = 20
	size, _ := SizeNamed(DefaultSize)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	in := PredictInput{Now: now, Size: size, LeadTime: 15 * time.Minute}
	for s := range sites {
		id := fmt.Sprintf("site-%02d", s)
		in.Sites = append(in.Sites, Site{ID: id, UplinkBytesSec: 1.25e9, MeanBytes: 8 << 30, MeanRateBytesSec: 50 << 20,
			StrictestQuantile: 0.9, StrictestTier: "gold", MaxTransfer: 4 * time.Hour})
		for h := range 48 {
			in.Demand = append(in.Demand, Demand{Site: id, Hour: now.Truncate(time.Hour).Add(time.Duration(h) * time.Hour),
				AdhocMean: 20, AdhocLo: 10, AdhocHi: 35, AdhocBytesMean: 160 << 30, AdhocBytesLo: 80 << 30, AdhocBytesHi: 280 << 30})
		}
	}
	in.Tiers = []SLATier{{Name: "gold", MaxTransfer: 4 * time.Hour, MaxDowntime: time.Minute, PlanQuantile: 0.9}}
	for i := range planned {
		start := now.Add(time.Duration(i%24) * time.Hour)
		in.Planned = append(in.Planned, PlannedMigration{ID: fmt.Sprintf("p%d", i), VMID: fmt.Sprintf("vm-%d", i),
			Site: in.Sites[i%sites].ID, Bytes: 8 << 30, SLATier: "gold", EarliestStart: start, Deadline: start.Add(4 * time.Hour)})
	}
	conns := make([]Connector, connectors)
	for i := range conns {
		c := Connector{ID: fmt.Sprintf("c%d", i), Site: in.Sites[i%sites].ID, State: StateActive, Size: size,
			TaskQueue: fmt.Sprintf("q%d", i), CreatedAt: now.Add(-time.Hour), ReadyAt: now.Add(-time.Hour)}
		for t := range size.MaxTasks / 2 {
			c.Migrations = append(c.Migrations, Task{MigrationID: fmt.Sprintf("m%d-%d", i, t), BandwidthBytesSec: size.BandwidthBytesSec / float64(size.MaxTasks),
				Bytes: 8 << 30, Deadline: now.Add(time.Hour)})
		}
		conns[i] = c
	}
	waiting := make([]Reservation, connectors)
	for i := range waiting {
		waiting[i] = Reservation{MigrationID: fmt.Sprintf("w%d", i), WorkflowID: fmt.Sprintf("migration-w%d", i), Site: in.Sites[i%sites].ID,
			Bytes: 8 << 30, Deadline: now.Add(4 * time.Hour), RequestedAt: now}
	}
	return in, conns, waiting
}

// BenchmarkPlanningTick is the planning a fleet tick does on a pool, once its demand
// is forecast: Predict the connectors per site and hour, Scale by the policy, Assign
// the waiting migrations. The forecast itself is benchmarked in forecast/, and the
// database reads in store/ (BenchmarkForecastingReads). docs/scaling.md has the figures.
func BenchmarkPlanningTick(b *testing.B) {
	for _, connectors := range []int{10, 100, 1000} {
		for _, planned := range []int{100, 1000, 10000} {
			b.Run(fmt.Sprintf("connectors=%d/planned=%d", connectors, planned), func(b *testing.B) {
				in, conns, waiting := poolOf(connectors, planned)
				b.ReportAllocs()
				for b.Loop() {
					plan := Predict(in)
					d := Scale(ScaleInput{Now: in.Now, Targets: plan.Targets, Connectors: conns, Waiting: waiting, Policy: DefaultPolicy(),
						Bottlenecks: plan.Bottlenecks})
					if len(plan.Targets) != len(in.Sites) || d.Reasons == nil {
						b.Fatal("no plan")
					}
					Assign(conns, waiting, nil)
				}
			})
		}
	}
}

// BenchmarkAssign is one placement of a pool's waiting migrations: connectors spread
// over 20 sites with half of their slots busy, and many more migrations waiting than
// there are free slots, as when a wave of 10,000 is submitted at once. docs/scaling.md
// has the figures.
func BenchmarkAssign(b *testing.B) {
	for _, connectors := range []int{100, 1000} {
		for _, waiting := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("connectors=%d/waiting=%d", connectors, waiting), func(b *testing.B) {
				_, conns, _ := poolOf(connectors, 0)
				_, _, queue := poolOf(waiting, 0)
				b.ReportAllocs()
				for b.Loop() {
					if got, _ := Assign(conns, queue, nil); len(got) != min(connectors*conns[0].Size.MaxTasks/2, waiting) {
						b.Fatalf("%d assigned, want every free slot taken", len(got))
					}
				}
			})
		}
	}
}
