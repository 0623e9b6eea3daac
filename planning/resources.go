package planning

import (
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/pmo-dev/pmo/forecast"
)

// ResourceSample is one metrics sample of a connector: what it moved and ran, and
// what that took.
type ResourceSample struct {
	At                time.Time
	BandwidthBytesSec float64
	ActiveTasks       int
	CPUPercent        float64
	RAMBytes          int64
	StorageUsedBytes  int64
}

// ResourceModel is what a connector uses as a linear function of its throughput and
// its concurrent tasks, one fit per resource:
//
//	use = base + per MiB/s · throughput + per task · tasks
//
// fitted by least squares on connector metrics. Connector processes are simple
// (a buffer and a goroutine per task, a copy loop throttled by bytes), so linear is
// enough, and its three numbers can be read and checked by an operator.
type ResourceModel struct {
	CPUMillis    ResourceFit `json:"cpu_millis"`
	RAMBytes     ResourceFit `json:"ram_bytes"`
	StorageBytes ResourceFit `json:"storage_bytes"`
	Samples      int         `json:"samples"`
	// Held is how many of the newest samples were held out to measure the fit.
	Held int `json:"held_out"`
}

// ResourceFit is one resource's line, and how far from the held-out samples it was.
type ResourceFit struct {
	Base    float64 `json:"base"`
	PerMiBs float64 `json:"per_mib_per_sec"`
	PerTask float64 `json:"per_task"`
	// MedianAbsError is the median |predicted − actual| on the held-out samples, in
	// the resource's unit.
	MedianAbsError float64 `json:"median_abs_error"`
}

// At is the fit's prediction for a throughput and a number of tasks, never below zero.
func (f ResourceFit) At(bytesPerSec float64, tasks int) float64 {
	return max(f.Base+f.PerMiBs*bytesPerSec/float64(mib)+f.PerTask*float64(tasks), 0)
}

// minResourceSamples is how many samples a fit needs: a few minutes of one connector.
const minResourceSamples = 30

// FitResources fits the model on the older four fifths of the samples, measures it on
// the newest fifth, then fits it again on all of them for use.
func FitResources(samples []ResourceSample) (ResourceModel, error) {
	if len(samples) < minResourceSamples {
		return ResourceModel{}, fmt.Errorf("resource model: %d connector samples, want at least %d: %w", len(samples), minResourceSamples, forecast.ErrTooShort)
	}
	samples = slices.Clone(samples)
	slices.SortStableFunc(samples, func(a, b ResourceSample) int { return a.At.Compare(b.At) })
	cut := len(samples) * 4 / 5
	held := fitResources(samples[:cut])
	all := fitResources(samples)
	for i, f := range []*ResourceFit{&all.CPUMillis, &all.RAMBytes, &all.StorageBytes} {
		h := []ResourceFit{held.CPUMillis, held.RAMBytes, held.StorageBytes}[i]
		errs := make([]float64, 0, len(samples)-cut)
		for _, s := range samples[cut:] {
			errs = append(errs, math.Abs(h.At(s.BandwidthBytesSec, s.ActiveTasks)-resourceOf(s, i)))
		}
		f.MedianAbsError = median(errs)
	}
	all.Samples, all.Held = len(samples), len(samples)-cut
	return all, nil
}

// resourceOf is a sample's CPU in millicores (i = 0), RAM (1) or storage (2).
func resourceOf(s ResourceSample, i int) float64 {
	switch i {
	case 0:
		return s.CPUPercent * 10 // 100% of one core is 1000 millicores
	case 1:
		return float64(s.RAMBytes)
	default:
		return float64(s.StorageUsedBytes)
	}
}

// fitResources solves the three least-squares problems. A little ridge on the slopes
// keeps them solvable, at zero, when the samples never vary (a fleet of idle, warm
// connectors).
func fitResources(samples []ResourceSample) ResourceModel {
	n := len(samples)
	const ridge = 1e-6
	x := mat.NewDense(n+2, 3, nil)
	for i, s := range samples {
		x.SetRow(i, []float64{1, s.BandwidthBytesSec / float64(mib), float64(s.ActiveTasks)})
	}
	x.SetRow(n, []float64{0, math.Sqrt(ridge * float64(n)), 0})
	x.SetRow(n+1, []float64{0, 0, math.Sqrt(ridge * float64(n))})
	var m ResourceModel
	for i, f := range []*ResourceFit{&m.CPUMillis, &m.RAMBytes, &m.StorageBytes} {
		y := mat.NewVecDense(n+2, nil)
		for j, s := range samples {
			y.SetVec(j, resourceOf(s, i))
		}
		var beta mat.VecDense
		if err := beta.SolveVec(x, y); err != nil {
			// The ridge rows make x full rank; keep the mean if it is not.
			f.Base = mat.Sum(y) / float64(n)
			continue
		}
		f.Base, f.PerMiBs, f.PerTask = beta.AtVec(0), beta.AtVec(1), beta.AtVec(2)
	}
	return m
}

// Need is what a connector of the given size uses at full load, by the model: its
// whole bandwidth with every task slot taken.
func (m ResourceModel) Need(s Size) (cpuMillis, ramBytes, storageBytes float64) {
	return m.CPUMillis.At(s.BandwidthBytesSec, s.MaxTasks), m.RAMBytes.At(s.BandwidthBytesSec, s.MaxTasks),
		m.StorageBytes.At(s.BandwidthBytesSec, s.MaxTasks)
}

// check says what a size uses at full load beside what it is given, and reports each
// resource the size is too small in as a connector bottleneck from now on.
func (m ResourceModel) check(s Size, now time.Time) (string, []Bottleneck) {
	cpu, ram, storage := m.Need(s)
	why := fmt.Sprintf("resources: a %s connector at full load (%s, %d tasks) uses about %.0f millicores, %s RAM and %s storage of its %d, %s and %s (fitted on %d connector samples; held-out median error %.0f millicores, %s, %s)",
		s.Name, rate(s.BandwidthBytesSec), s.MaxTasks, cpu, byteSize(int64(ram)), byteSize(int64(storage)),
		s.CPUMillis, byteSize(s.RAMBytes), byteSize(s.StorageBytes), m.Samples,
		m.CPUMillis.MedianAbsError, byteSize(int64(m.RAMBytes.MedianAbsError)), byteSize(int64(m.StorageBytes.MedianAbsError)))
	var out []Bottleneck
	short := func(what string, need, has float64, unit func(float64) string) {
		if need > has {
			out = append(out, Bottleneck{Kind: "connector", From: now, To: now.Add(24 * time.Hour),
				Detail: fmt.Sprintf("a %s connector at full load needs about %s of %s by the resource model, and is given %s",
					s.Name, unit(need), what, unit(has))})
		}
	}
	millicores := func(v float64) string { return fmt.Sprintf("%.0f millicores", v) }
	bytes := func(v float64) string { return byteSize(int64(v)) }
	short("CPU", cpu, float64(s.CPUMillis), millicores)
	short("RAM", ram, float64(s.RAMBytes), bytes)
	short("storage", storage, float64(s.StorageBytes), bytes)
	return why, out
}
