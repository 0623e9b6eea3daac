package demo

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
)

// now is a Tuesday, mid-morning, not on the hour: Generate truncates it.
var now = time.Date(2026, 11, 24, 10, 17, 0, 0, time.UTC)

const tracePath = "../../shared/data/traces/azure2019-vm-cpu-5min.csv"

func params(t *testing.T) Params {
	return Params{Now: now, Seed: 1, VMs: 600, DisksDir: t.TempDir()}
}

func TestGenerateIsDeterministic(t *testing.T) {
	p := params(t)
	a, err := Generate(p, FlatShape())
	require.NoError(t, err)
	b, err := Generate(p, FlatShape())
	require.NoError(t, err)
	require.Equal(t, a, b, "the same parameters give the same data set")

	p.Seed = 2
	c, err := Generate(p, FlatShape())
	require.NoError(t, err)
	require.NotEqual(t, a.VMs, c.VMs, "another seed gives another inventory")
	require.NotEqual(t, a.History, c.History, "and another history")
}

func TestInventoryDrawsGeneratesVMs(t *testing.T) {
	p := params(t)
	d, err := Generate(p, FlatShape())
	require.NoError(t, err)
	vms := Inventory(p.Seed, p.VMs)
	require.Len(t, vms, len(d.VMs))
	for i, v := range vms {
		require.Empty(t, v.DiskURI, v.ID)
		v.DiskURI = d.VMs[i].DiskURI
		require.Equal(t, d.VMs[i], v, "the same seed and count give Generate's VMs")
	}
}

func TestGenerateBuildsTheDemo(t *testing.T) {
	p := params(t)
	shape, err := LoadShape(tracePath)
	require.NoError(t, err)
	d, err := Generate(p, shape)
	require.NoError(t, err)
	end := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

	require.Len(t, d.Sites, 3)
	siteIDs := []string{d.Sites[0].ID, d.Sites[1].ID, d.Sites[2].ID}
	for _, site := range d.Sites {
		require.Equal(t, []string{p.DisksDir + "/"}, site.Sources, "%s reads its disks from the disks folder alone", site.ID)
	}
	require.Equal(t, []string{"ams1", "fra1", "lon1"}, siteIDs)
	require.Len(t, d.Tiers, 3)
	require.Equal(t, "gold", d.Tiers[0].Name)
	require.Equal(t, 120*time.Second, d.Tiers[0].MaxTransfer)
	require.Equal(t, 10*time.Second, d.Tiers[0].MaxDowntime)
	require.Equal(t, 0.9, d.Tiers[0].PlanQuantile)

	require.GreaterOrEqual(t, len(d.VMs), 500)
	vmByID := map[string]planning.InventoryVM{}
	perSite := map[string]int{}
	for _, v := range d.VMs {
		vmByID[v.ID] = v
		perSite[v.Site]++
		require.Contains(t, siteIDs, v.Site)
		require.GreaterOrEqual(t, v.StorageBytes, int64(8)<<30, v.ID)
		require.LessOrEqual(t, v.StorageBytes, int64(2)<<40, v.ID)
		require.Zero(t, v.StorageBytes%DemoScale, "%s: the image is the storage scaled exactly", v.ID)
		require.Equal(t, v.StorageBytes/DemoScale, v.DiskBytes, v.ID)
		require.Equal(t, filepath.Join(p.DisksDir, v.ID+".img"), v.DiskURI)
		require.Positive(t, v.CPUCores)
		require.Positive(t, v.RAMBytes)
		require.Positive(t, v.NetworkBytesSec)
		require.Positive(t, v.DiskChangeBytesSec)
		require.NotZero(t, v.MaxTransfer, "the tier's bounds come with the VM")
	}
	require.Len(t, vmByID, len(d.VMs), "VM IDs are unique")
	require.Equal(t, map[string]int{"ams1": 240, "fra1": 210, "lon1": 150}, perSite)

	start := end.Add(-HistoryDays * 24 * time.Hour)
	first, last := end, start
	ids := map[string]bool{}
	outcomes := map[string]int{}
	for _, m := range d.History {
		require.False(t, ids[m.ID], "duplicate ID %s", m.ID)
		ids[m.ID] = true
		require.True(t, strings.HasPrefix(m.ID, "hist-"+m.Site+"-"), m.ID)
		require.True(t, strings.HasPrefix(m.ConnectorID, "hist-"+m.Site+"-c"), m.ConnectorID)
		vm, ok := vmByID[m.VMID]
		require.True(t, ok, "%s: unknown VM %s", m.ID, m.VMID)
		require.Equal(t, vm.Site, m.Site, m.ID)
		require.Equal(t, vm.SLATier, m.SLATier, m.ID)
		require.False(t, m.StartedAt.Before(start), m.ID)
		require.False(t, m.EndedAt.After(end), "%s: history holds finished migrations", m.ID)
		require.True(t, m.EndedAt.After(m.StartedAt), m.ID)
		outcomes[m.Outcome]++
		switch m.Outcome {
		case "failed":
			require.Zero(t, m.Bytes, m.ID)
			require.Zero(t, m.DowntimeSeconds, m.ID)
		default:
			require.Equal(t, vm.DiskBytes, m.Bytes, m.ID)
			require.InDelta(t, float64(m.Bytes)/m.EndedAt.Sub(m.StartedAt).Seconds(), m.AvgBytesSec, 1e-6*m.AvgBytesSec, m.ID)
			require.Positive(t, m.DowntimeSeconds, m.ID)
			require.LessOrEqual(t, m.DowntimeSeconds, vm.MaxDowntime.Seconds(), m.ID)
		}
		if m.Outcome == "sla_breached" {
			require.Greater(t, m.EndedAt.Sub(m.StartedAt), vm.MaxTransfer, m.ID)
		}
		first, last = minTime(first, m.StartedAt), maxTime(last, m.StartedAt)
	}
	require.Less(t, first.Sub(start), 2*time.Hour, "the history starts 28 days back")
	require.Less(t, end.Sub(last), 2*time.Hour, "and runs up to now")
	require.Greater(t, outcomes["succeeded"], 9*len(d.History)/10)
	require.Positive(t, outcomes["failed"])
	require.Positive(t, outcomes["sla_breached"])

	require.Len(t, d.Events, 1)
	e := d.Events[0]
	require.Equal(t, "fra1", e.Site)
	require.Equal(t, "maintenance", e.Kind)
	require.NotEmpty(t, e.Key)
	require.True(t, e.Starts.After(end))
	require.Less(t, e.Starts.Sub(end), 48*time.Hour, "inside the fleet's forecast horizon")
	require.Equal(t, 4*time.Hour, e.Ends.Sub(e.Starts))
}

func TestGenerateRefusesBadParameters(t *testing.T) {
	p := params(t)
	p.VMs = 0
	_, err := Generate(p, FlatShape())
	require.ErrorContains(t, err, "at least 1 VM")

	p = params(t)
	p.DisksDir = "relative/disks"
	_, err = Generate(p, FlatShape())
	require.ErrorContains(t, err, "absolute")

	p = params(t)
	p.VMs = 1
	d, err := Generate(p, FlatShape())
	require.NoError(t, err, "one VM is enough: the other sites have no VMs and no history")
	for _, m := range d.History {
		require.Equal(t, "vm-0001", m.VMID)
	}
}

// arrivalsByHourOfWeek counts the history's arrivals in each hour-of-week bucket.
func arrivalsByHourOfWeek(d planning.SeedData) Shape {
	var n Shape
	for _, m := range d.History {
		n[HourOfWeek(m.StartedAt)]++
	}
	return n
}

func TestArrivalsFollowTheShape(t *testing.T) {
	// A sharp shape: each bucket's weight is its index, so the busiest bucket (167,
	// Sunday 23:00) expects four weeks × 7 arrivals × 2 and the quietest (0) none.
	var sharp Shape
	for b := range sharp {
		sharp[b] = float64(b) / (HoursPerWeek - 1) * 2
	}
	d, err := Generate(params(t), sharp)
	require.NoError(t, err)
	n := arrivalsByHourOfWeek(d)
	require.Greater(t, n[HoursPerWeek-1], n[0], "the busiest hour of the week gets more arrivals than the quietest")
	require.Zero(t, n[0])

	// The real trace's shape is gentle (its buckets are within 12% of the mean), so
	// one bucket's four Poisson draws are noisy; the busiest quarter of the week
	// against the quietest quarter is not. Expected ratio about 1.17; over seeds 1–30
	// it ran from 1.09 to 1.28.
	shape, err := LoadShape(tracePath)
	require.NoError(t, err)
	d, err = Generate(params(t), shape)
	require.NoError(t, err)
	n = arrivalsByHourOfWeek(d)
	order := make([]int, HoursPerWeek)
	for b := range order {
		order[b] = b
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(shape[a], shape[b]) })
	var quiet, busy float64
	for _, b := range order[:HoursPerWeek/4] {
		quiet += n[b]
	}
	for _, b := range order[3*HoursPerWeek/4:] {
		busy += n[b]
	}
	require.Greater(t, busy, 1.05*quiet, "the busiest quarter of the week gets more arrivals than the quietest")
}

func TestReadShapeOfTheAzureTrace(t *testing.T) {
	shape, err := LoadShape(tracePath)
	require.NoError(t, err)
	var sum, weekday, weekend float64
	for b, v := range shape {
		require.Positive(t, v, "bucket %d", b)
		sum += v
		if b < 5*24 {
			weekday += v / (5 * 24)
		} else {
			weekend += v / (2 * 24)
		}
	}
	require.InDelta(t, 1, sum/HoursPerWeek, 1e-12, "the shape has mean 1")
	// With day 0 taken as a Friday the quiet days fall on the weekend (see TraceStart).
	require.Less(t, weekend, 0.95*weekday, "weekends are quieter than weekdays")
}

func TestReadShapeRefusesBadTraces(t *testing.T) {
	week := func(value string) string {
		var b strings.Builder
		b.WriteString("timestamp,cpu_usage\n")
		for h := range HoursPerWeek {
			fmt.Fprintf(&b, "%d,%s\n", h*3600, value)
		}
		return b.String()
	}
	s, err := ReadShape(strings.NewReader(week("5")))
	require.NoError(t, err)
	require.Equal(t, FlatShape(), s)

	for name, in := range map[string]string{
		"no cpu column":    "timestamp,mem\n0,1\n",
		"empty":            "",
		"a day only":       "timestamp,cpu_usage\n0,1\n3600,2\n",
		"negative value":   week("-1"),
		"not a number":     week("lots"),
		"zero throughout":  week("0"),
		"bad timestamp":    "timestamp,cpu_usage\nyesterday,1\n",
		"ragged csv lines": "timestamp,cpu_usage\n0,1,2\n",
	} {
		_, err := ReadShape(strings.NewReader(in))
		require.ErrorIs(t, err, ErrBadShape, name)
	}
	_, err = LoadShape(filepath.Join(t.TempDir(), "missing.csv"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestHourOfWeek(t *testing.T) {
	require.Equal(t, 0, HourOfWeek(time.Date(2026, 11, 23, 0, 30, 0, 0, time.UTC)), "Monday 00:30")
	require.Equal(t, 34, HourOfWeek(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)), "Tuesday 10:00")
	require.Equal(t, 167, HourOfWeek(time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC)), "Sunday 23:59")
	cet := time.FixedZone("CET", 3600)
	require.Equal(t, 167, HourOfWeek(time.Date(2026, 11, 30, 0, 30, 0, 0, cet)), "Monday 00:30 CET is Sunday 23:30 UTC")
}

func TestPoissonMean(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, lambda := range []float64{0.3, 2.5, 27} {
		const draws = 20000
		var sum float64
		for range draws {
			sum += float64(Poisson(rng, lambda))
		}
		// The mean of 20,000 draws has standard error √(λ/20000); allow five of them.
		require.InDelta(t, lambda, sum/draws, 5*math.Sqrt(lambda/draws), "λ = %g", lambda)
	}
}

func TestWriteDisksWritesExactSizesOnce(t *testing.T) {
	ctx := context.Background()
	vms := func(dir string) []planning.InventoryVM {
		var out []planning.InventoryVM
		for i, size := range []int64{1, 131072, 1<<20 + 7} {
			id := fmt.Sprintf("vm-%d", i+1)
			out = append(out, planning.InventoryVM{VM: planning.VM{ID: id, DiskURI: filepath.Join(dir, id+".img"), DiskBytes: size}})
		}
		return out
	}
	dir := filepath.Join(t.TempDir(), "disks") // WriteDisks makes the folder
	a := vms(dir)
	st, err := WriteDisks(ctx, a, 1)
	require.NoError(t, err)
	require.Equal(t, DiskStats{Files: 3, Bytes: 1 + 131072 + 1<<20 + 7, Written: 3}, st)
	for _, v := range a {
		fi, err := os.Stat(v.DiskURI)
		require.NoError(t, err)
		require.Equal(t, v.DiskBytes, fi.Size(), v.ID)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 3, "no temporary files are left behind")

	// The same seed gives the same bytes; another seed other bytes.
	b := vms(t.TempDir())
	_, err = WriteDisks(ctx, b, 1)
	require.NoError(t, err)
	c := vms(t.TempDir())
	_, err = WriteDisks(ctx, c, 2)
	require.NoError(t, err)
	big := func(vs []planning.InventoryVM) []byte {
		data, err := os.ReadFile(vs[2].DiskURI)
		require.NoError(t, err)
		return data
	}
	require.Equal(t, big(a), big(b))
	require.NotEqual(t, big(a), big(c))
	require.NotEqual(t, make([]byte, len(big(a))), big(a), "the content is not zeros")

	// A file of the right size is left alone; one of the wrong size is written again.
	marker := bytes.Repeat([]byte{0xAB}, 131072)
	require.NoError(t, os.WriteFile(a[1].DiskURI, marker, 0o644))
	require.NoError(t, os.WriteFile(a[2].DiskURI, []byte("short"), 0o644))
	st, err = WriteDisks(ctx, a, 1)
	require.NoError(t, err)
	require.Equal(t, 1, st.Written)
	got, err := os.ReadFile(a[1].DiskURI)
	require.NoError(t, err)
	require.Equal(t, marker, got, "a present image is not rewritten")
	require.Equal(t, big(b), big(a), "a wrong-sized image is replaced")

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = WriteDisks(canceled, vms(t.TempDir()), 1)
	require.ErrorIs(t, err, context.Canceled)
}

func TestWriteDisksRefusesRelativePaths(t *testing.T) {
	_, err := WriteDisks(context.Background(), []planning.InventoryVM{{VM: planning.VM{ID: "vm-1", DiskURI: "disks/vm-1.img", DiskBytes: 1}}}, 1)
	require.ErrorContains(t, err, "absolute")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
