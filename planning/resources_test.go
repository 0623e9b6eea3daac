package planning

import (
	"math"
	"strings"
	"testing"
	"time"
)

// linearSamples are n samples of a connector whose CPU is 50 + 30 per MiB/s + 20 per
// task millicores, RAM 20 MiB + 1 MiB per MiB/s + 8 MiB per task, storage 2 MiB per task.
func linearSamples(n int) []ResourceSample {
	var out []ResourceSample
	for i := range n {
		bw := float64(i%5) * float64(mib)
		tasks := i % 4
		out = append(out, ResourceSample{
			At: t0.Add(time.Duration(i) * 10 * time.Second), BandwidthBytesSec: bw, ActiveTasks: tasks,
			CPUPercent:       (50 + 30*bw/float64(mib) + 20*float64(tasks)) / 10,
			RAMBytes:         20*mib + int64(bw) + 8*mib*int64(tasks),
			StorageUsedBytes: 2 * mib * int64(tasks),
		})
	}
	return out
}

func TestFitResourcesRecoversTheLines(t *testing.T) {
	m, err := FitResources(linearSamples(100))
	if err != nil {
		t.Fatal(err)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-3*math.Max(math.Abs(want), 1) {
			t.Errorf("%s: %.4f, want %.4f", what, got, want)
		}
	}
	near("cpu base", m.CPUMillis.Base, 50)
	near("cpu per MiB/s", m.CPUMillis.PerMiBs, 30)
	near("cpu per task", m.CPUMillis.PerTask, 20)
	near("ram base", m.RAMBytes.Base, float64(20*mib))
	near("ram per MiB/s", m.RAMBytes.PerMiBs, float64(mib))
	near("ram per task", m.RAMBytes.PerTask, float64(8*mib))
	near("storage per task", m.StorageBytes.PerTask, float64(2*mib))
	if m.Samples != 100 || m.Held != 20 || m.CPUMillis.MedianAbsError > 0.1 {
		t.Errorf("samples %d, held %d, cpu error %.3f", m.Samples, m.Held, m.CPUMillis.MedianAbsError)
	}
	// Medium at full load: 4 MiB/s and 4 tasks: 50 + 120 + 80 = 250 millicores.
	cpu, ram, storage := m.Need(medium(t))
	near("medium cpu", cpu, 250)
	near("medium ram", ram, float64(56*mib))
	near("medium storage", storage, float64(8*mib))
}

func TestFitResourcesOnIdleConnectors(t *testing.T) {
	var idle []ResourceSample
	for i := range 40 {
		idle = append(idle, ResourceSample{At: t0.Add(time.Duration(i) * time.Second), CPUPercent: 0.5, RAMBytes: 12 * mib})
	}
	m, err := FitResources(idle)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.CPUMillis.Base-5) > 1e-6 || math.Abs(m.CPUMillis.PerMiBs) > 1e-6 || math.Abs(m.RAMBytes.Base-float64(12*mib)) > 1 {
		t.Fatalf("idle fit %+v", m)
	}
	if _, err := FitResources(idle[:10]); err == nil {
		t.Fatal("10 samples fitted a model")
	}
}

func TestPredictReportsASizeTooSmallForItsLoad(t *testing.T) {
	size := medium(t) // 1000 millicores, 512 MiB, 8 GiB
	site := Site{ID: "ams1", MeanBytes: float64(mib), StrictestQuantile: 0.5}
	fits := &ResourceModel{Samples: 50,
		CPUMillis: ResourceFit{Base: 200, PerMiBs: 300, PerTask: 10}, // 200 + 1200 + 40 = 1440 at full load
		RAMBytes:  ResourceFit{Base: float64(64 * mib)}}
	plan := Predict(PredictInput{Now: t0, Size: size, LeadTime: time.Hour, Sites: []Site{site}, Resources: fits})
	var found []Bottleneck
	for _, b := range plan.Bottlenecks {
		if b.Kind == "connector" {
			found = append(found, b)
		}
	}
	if len(found) != 1 || !strings.Contains(found[0].Detail, "1440 millicores of CPU") || !strings.Contains(found[0].Detail, "1000 millicores") {
		t.Fatalf("bottlenecks %+v", plan.Bottlenecks)
	}
	if !strings.Contains(strings.Join(plan.Reasons, " | "), "uses about 1440 millicores, 64.0 MiB RAM") {
		t.Fatalf("reasons %v", plan.Reasons)
	}
}

func TestPredictReportsWhenTheTargetStorageFills(t *testing.T) {
	size := medium(t)
	site := Site{ID: "ams1", MeanBytes: float64(4 * mib), StrictestQuantile: 0.5}
	var demand []Demand
	for h := range 3 { // 4 MiB of planned work in each of three hours
		demand = append(demand, Demand{Site: "ams1", Hour: t0.Add(time.Duration(h) * time.Hour), Planned: 1, PlannedBytes: float64(4 * mib)})
	}
	in := PredictInput{Now: t0, Size: size, LeadTime: time.Hour, Sites: []Site{site}, Demand: demand,
		Target: TargetSpace{FreeBytes: 10 * mib, MeasuredAt: t0, By: "c1"}}
	plan := Predict(in)
	var storage []Bottleneck
	for _, b := range plan.Bottlenecks {
		if b.Kind == "storage" {
			storage = append(storage, b)
		}
	}
	// 4 + 4 + 4 MiB passes 10 MiB in the third hour.
	if len(storage) != 1 || !storage[0].From.Equal(t0.Add(2*time.Hour)) || !strings.Contains(storage[0].Detail, "10.0 MiB free (c1 measured it") {
		t.Fatalf("storage bottlenecks %+v", storage)
	}
	in.Target.FreeBytes = 12 * mib
	for _, b := range Predict(in).Bottlenecks {
		if b.Kind == "storage" {
			t.Fatalf("12 MiB holds 12 MiB of work: %+v", b)
		}
	}
}

func TestEstimateReportsTargetStorageAndConnectorLimits(t *testing.T) {
	size := medium(t)
	planned := []PlannedMigration{
		{ID: "p1", Site: "ams1", Bytes: 3 * mib, EarliestStart: t0, Deadline: t0.Add(time.Hour)},
		{ID: "p2", Site: "fra1", Bytes: 3 * mib, EarliestStart: t0, Deadline: t0.Add(time.Hour)},
	}
	in := EstimateInput{Planned: planned, Size: size, Target: TargetSpace{FreeBytes: 5 * mib, MeasuredAt: t0, By: "c1"},
		Resources: &ResourceModel{Samples: 40, RAMBytes: ResourceFit{Base: float64(600 * mib)}}}
	est := EstimateBatch(in)
	kinds := map[string]string{}
	for _, b := range est.Bottlenecks {
		kinds[b.Kind] = b.Detail
	}
	// 3 + 3 MiB of batch passes the 5 MiB free; 600 MiB of RAM is over medium's 512.
	if !strings.Contains(kinds["storage"], "5.0 MiB free") || !strings.Contains(kinds["connector"], "600.0 MiB of RAM") {
		t.Fatalf("bottlenecks %+v", est.Bottlenecks)
	}
	in.Target.FreeBytes, in.Resources = 6*mib, nil
	for _, b := range EstimateBatch(in).Bottlenecks {
		if b.Kind == "storage" || b.Kind == "connector" {
			t.Fatalf("6 MiB holds the batch and no model was fitted: %+v", b)
		}
	}
}
