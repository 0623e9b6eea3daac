package trace

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/demo"
)

const azurePath = "../../shared/data/traces/azure2019-vm-cpu-5min.csv"

// flat is a series with no shape.
var flat = []float64{1}

func write(t *testing.T, reqs []Request) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, Write(&b, reqs))
	return b.Bytes()
}

func TestGenerateIsDeterministic(t *testing.T) {
	p := DefaultParams()
	p.Days = 7
	series := []float64{1, 2, 3, 2}
	a, err := Generate(series, p)
	require.NoError(t, err)
	b, err := Generate(series, p)
	require.NoError(t, err)
	require.Equal(t, write(t, a), write(t, b), "the same series and parameters give the same file")

	p.Seed = 2
	c, err := Generate(series, p)
	require.NoError(t, err)
	require.NotEqual(t, write(t, a), write(t, c), "another seed gives another trace")
}

func TestWriteThenReadGivesTheRequestsBack(t *testing.T) {
	p := DefaultParams()
	p.Days = 7
	reqs, err := Generate(flat, p)
	require.NoError(t, err)
	require.NotEmpty(t, reqs)
	got, err := Read(bytes.NewReader(write(t, reqs)))
	require.NoError(t, err)
	require.Equal(t, reqs, got)
}

func TestReadSortsByArrivalThenID(t *testing.T) {
	file := "id,arrival,known_at,vm_id,site,sla_tier,bytes,deadline,wave\n" +
		"b,2026-10-26T09:00:00Z,2026-10-25T09:00:00Z,vm-0002,ams1,gold,1,2026-10-26T15:00:00Z,w01\n" +
		"c,2026-10-26T08:00:00+01:00,2026-10-26T07:00:00Z,vm-0003,fra1,bronze,1,2026-10-26T08:00:00Z,\n" +
		"a,2026-10-26T09:00:00Z,2026-10-25T09:00:00Z,vm-0001,ams1,gold,1,2026-10-26T15:00:00Z,w01\n"
	reqs, err := Read(bytes.NewReader([]byte(file)))
	require.NoError(t, err)
	var ids []string
	for _, r := range reqs {
		ids = append(ids, r.ID)
	}
	require.Equal(t, []string{"c", "a", "b"}, ids, "08:00+01:00 is 07:00Z")
	require.Equal(t, time.UTC, reqs[0].Arrival.Location(), "times come back in UTC")
}

func TestReadNamesTheLineAndColumnOfABadField(t *testing.T) {
	const head = "id,arrival,known_at,vm_id,site,sla_tier,bytes,deadline,wave\n"
	const good = "m000001,2026-10-26T10:00:00Z,2026-10-26T10:00:00Z,vm-0001,ams1,gold,1073741824,2026-10-26T10:03:13Z,\n"
	for _, c := range []struct{ name, file, want string }{
		{"empty", "", "trace: empty file; want the header id,arrival,known_at,vm_id,site,sla_tier,bytes,deadline,wave"},
		{"header", "id,arrival\n", "trace: line 1: header is id,arrival; want id,arrival,known_at,vm_id,site,sla_tier,bytes,deadline,wave"},
		{"short row", head + good + "m000002,2026-10-26T10:00:00Z\n", "trace: line 3: 2 fields; want 9"},
		{"empty id", head + ",2026-10-26T10:00:00Z,2026-10-26T10:00:00Z,vm-0001,ams1,gold,1,2026-10-26T11:00:00Z,\n", "trace: line 2: id: empty"},
		{"arrival", head + good + "m000002,26/10/2026,2026-10-26T10:00:00Z,vm-0001,ams1,gold,1,2026-10-26T11:00:00Z,\n",
			`trace: line 3: arrival: "26/10/2026" is not an RFC 3339 time`},
		{"tier", head + "m000001,2026-10-26T10:00:00Z,2026-10-26T10:00:00Z,vm-0001,ams1,platinum,1,2026-10-26T11:00:00Z,\n",
			`trace: line 2: sla_tier: "platinum" is not one of gold, silver, bronze`},
		{"bytes", head + "m000001,2026-10-26T10:00:00Z,2026-10-26T10:00:00Z,vm-0001,ams1,gold,-5,2026-10-26T11:00:00Z,\n",
			`trace: line 2: bytes: "-5" is not a positive whole number`},
		{"known after arrival", head + "m000001,2026-10-26T10:00:00Z,2026-10-26T10:00:01Z,vm-0001,ams1,gold,1,2026-10-26T11:00:00Z,\n",
			"trace: line 2: known_at: after arrival"},
		{"deadline", head + good + "m000002,2026-10-26T10:00:00Z,2026-10-26T10:00:00Z,vm-0001,ams1,gold,1,2026-10-26T09:00:00Z,\n",
			"trace: line 3: deadline: before arrival"},
		{"repeated id", head + good + good, "trace: line 3: id: m000001 is also on line 2"},
		// A row that spans lines is named by the line it starts on.
		{"quoted newline", head + "\"m\n1\",x,y,vm-0001,ams1,gold,1,z,\n", `trace: line 2: arrival: "x" is not an RFC 3339 time`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader([]byte(c.file)))
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestReadSeriesPicksTheColumn(t *testing.T) {
	const file = "Timestamp,host,cpu_usage,assigned_mem\n0,a,1.5,7\n300,b,2.5,8\n"
	for _, c := range []struct {
		name, file, column, want string
		values                   []float64
		err                      string
	}{
		{name: "first numeric after the time index", file: file, want: "cpu_usage", values: []float64{1.5, 2.5}},
		{name: "named", file: file, column: "assigned_mem", want: "assigned_mem", values: []float64{7, 8}},
		{name: "a time index when named", file: file, column: "Timestamp", want: "Timestamp", values: []float64{0, 300}},
		{name: "other time indexes", file: "ts,DATE, time ,datetime,v\n1,2,3,4,5\n", want: "v", values: []float64{5}},
		{name: "byte-order mark", file: "\ufefftimestamp,v\n1,2\n", want: "v", values: []float64{2}},
		{name: "unknown", file: file, column: "disk", err: `trace: column "disk" is not in the header Timestamp,host,cpu_usage,assigned_mem`},
		{name: "not numeric", file: file, column: "host", err: `trace: line 2: host: "a" is not a finite number`},
		{name: "bad value", file: file + "600,c,NaN,9\n", err: `trace: line 4: cpu_usage: "NaN" is not a finite number`},
		{name: "no numeric column", file: "timestamp,host\n0,a\n", err: "trace: no numeric column in the header timestamp,host besides a time index"},
		{name: "no rows", file: "timestamp,v\n", err: "trace: no rows under the header"},
		{name: "empty", file: "", err: "trace: empty file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, values, err := ReadSeries(bytes.NewReader([]byte(c.file)), c.column)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, name)
			require.Equal(t, c.values, values)
		})
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		name   string
		series []float64
		change func(*Params)
		want   string
	}{
		{"days", flat, func(p *Params) { p.Days = 0 }, "trace: Days: want 1 to 3660, got 0"},
		{"step", flat, func(p *Params) { p.Step = 1500 * time.Millisecond }, "trace: Step: want a whole number of seconds"},
		{"rate", flat, func(p *Params) { p.Rate = math.NaN() }, "trace: Rate:"},
		{"waves", flat, func(p *Params) { p.WavesPerWeek = -1 }, "trace: WavesPerWeek: want 0 to 100, got -1"},
		{"vms", flat, func(p *Params) { p.VMs = 0 }, "trace: VMs: want 1 to 1000000, got 0"},
		{"too many days", flat, func(p *Params) { p.Days = 3661 }, "trace: Days: want 1 to 3660, got 3661"},
		{"step over a day", flat, func(p *Params) { p.Step = 25 * time.Hour }, "trace: Step:"},
		{"too many requests", flat, func(p *Params) { p.Rate = 1e9 }, "trace: Rate: 1e+09 an hour for 28 days is over 10000000 requests"},
		{"too many waves", flat, func(p *Params) { p.WavesPerWeek = 101 }, "trace: WavesPerWeek: want 0 to 100, got 101"},
		{"too many vms", flat, func(p *Params) { p.VMs = 1_000_001 }, "trace: VMs: want 1 to 1000000, got 1000001"},
		{"empty series", nil, func(*Params) {}, "trace: series: empty"},
		{"negative value", []float64{1, -1}, func(*Params) {}, "trace: series: value 2 is -1"},
		{"zero series", []float64{0, 0}, func(*Params) {}, "trace: series: zero throughout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultParams()
			c.change(&p)
			_, err := Generate(c.series, p)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestTierDeadline(t *testing.T) {
	at := time.Date(2026, 10, 26, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		tier  string
		bytes int64
		want  time.Duration
	}{
		// Grace plus bytes at the floor rate: 900 MiB at 90 MiB/s is 10 s.
		{"gold", 900 << 20, 2*time.Minute + 10*time.Second},
		{"gold", 900<<20 + 1, 2*time.Minute + 11*time.Second},   // a part second rounds up
		{"silver", 64 << 30, 15*time.Minute + 1311*time.Second}, // 65536 MiB / 50 MiB/s = 1310.72 s
		{"bronze", 2 << 40, time.Hour + 83887*time.Second},      // 2097152 MiB / 25 MiB/s = 83886.08 s
	} {
		tier, ok := TierNamed(c.tier)
		require.True(t, ok, c.tier)
		require.Equal(t, at.Add(c.want), tier.Deadline(at, c.bytes), "%s, %d bytes", c.tier, c.bytes)
	}
	_, ok := TierNamed("platinum")
	require.False(t, ok)
}

func TestAdHocRequestsAreDueByTheirTier(t *testing.T) {
	p := DefaultParams()
	p.Days, p.WavesPerWeek = 7, 0
	reqs, err := Generate(flat, p)
	require.NoError(t, err)
	inventory := map[string]string{} // VM ID -> site, tier and bytes
	for _, v := range demo.Inventory(p.Seed, p.VMs) {
		inventory[v.ID] = fmt.Sprint(v.Site, "/", v.SLATier, "/", v.StorageBytes)
	}
	for _, r := range reqs {
		require.Empty(t, r.Wave, r.ID)
		require.Equal(t, r.Arrival, r.KnownAt, "%s: ad-hoc work is known when it arrives", r.ID)
		tier, _ := TierNamed(r.SLATier)
		require.Equal(t, tier.Deadline(r.Arrival, r.Bytes), r.Deadline, r.ID)
		require.Equal(t, inventory[r.VMID], fmt.Sprint(r.Site, "/", r.SLATier, "/", r.Bytes), "%s: the VM's own site, tier and size", r.ID)
	}
}

func TestInventoryTiersHaveTheirShares(t *testing.T) {
	n := map[string]int{}
	vms := demo.Inventory(1, 3000)
	for _, v := range vms {
		n[v.SLATier]++
	}
	for _, tier := range Tiers {
		// A share of 3,000 draws has a standard error of at most 0.009; allow four.
		require.InDelta(t, tier.Share, float64(n[tier.Name])/float64(len(vms)), 0.036, tier.Name)
	}
}

func TestArrivalsFollowTheShape(t *testing.T) {
	// A square wave at hourly steps: busy (3) for 12 hours, quiet (1) for 12. The busy
	// half should get 3/(3+1) = 75% of the arrivals.
	series := make([]float64, 24)
	for i := range series {
		series[i] = 1
		if i < 12 {
			series[i] = 3
		}
	}
	p := DefaultParams()
	p.Step, p.WavesPerWeek = time.Hour, 0
	reqs, err := Generate(series, p)
	require.NoError(t, err)

	expected := p.Rate * 24 * float64(p.Days)
	n := float64(len(reqs))
	// A Poisson count's standard deviation is √mean; allow five.
	require.InDelta(t, expected, n, 5*math.Sqrt(expected), "the mean rate is Rate")
	var busy float64
	for i, r := range reqs {
		require.False(t, r.Arrival.Before(p.Start), r.ID)
		require.True(t, r.Arrival.Before(p.Start.AddDate(0, 0, p.Days)), r.ID)
		require.Zero(t, r.Arrival.Nanosecond(), "%s: whole seconds", r.ID)
		if i > 0 {
			require.False(t, r.Arrival.Before(reqs[i-1].Arrival), "%s: in order of arrival", r.ID)
		}
		if r.Arrival.Hour() < 12 {
			busy++
		}
	}
	// A binomial share's standard error is √(p(1-p)/n), about 0.004 here; allow five.
	require.InDelta(t, 0.75, busy/n, 5*math.Sqrt(0.75*0.25/n))
}

func TestTheSeriesRepeatsWhenShorterThanTheTrace(t *testing.T) {
	// One busy hour, then 23 idle ones, at hourly steps: every day's arrivals are in its
	// first hour.
	series := make([]float64, 24)
	series[0] = 1
	p := DefaultParams()
	p.Step, p.WavesPerWeek, p.Days = time.Hour, 0, 3
	reqs, err := Generate(series, p)
	require.NoError(t, err)
	days := map[int]int{}
	for _, r := range reqs {
		require.Zero(t, r.Arrival.Hour(), r.ID)
		days[r.Arrival.Day()]++
	}
	require.Len(t, days, 3, "each day has arrivals")
}

func TestWaves(t *testing.T) {
	p := DefaultParams()
	reqs, err := Generate(flat, p)
	require.NoError(t, err)
	inventory := map[string]string{} // VM ID -> site
	for _, v := range demo.Inventory(p.Seed, p.VMs) {
		inventory[v.ID] = v.Site
	}
	byWave := map[string][]Request{}
	var names []string
	for _, r := range reqs {
		if r.Wave == "" {
			continue
		}
		if byWave[r.Wave] == nil {
			names = append(names, r.Wave)
		}
		byWave[r.Wave] = append(byWave[r.Wave], r)
	}
	require.Equal(t, []string{"w01", "w02", "w03", "w04", "w05", "w06", "w07", "w08", "w09", "w10", "w11", "w12"}, names,
		"3 waves a week for 4 weeks, named in order of start")

	perWeek := map[int][]time.Weekday{}
	for _, name := range names {
		w := byWave[name]
		at, known, site := w[0].Arrival, w[0].KnownAt, w[0].Site
		require.True(t, at.Weekday() >= time.Monday && at.Weekday() <= time.Friday, "%s starts on a weekday, %s", name, at)
		require.Contains(t, waveHours, at.Hour(), "%s starts at 07:00-10:00, %s", name, at)
		require.Zero(t, at.Minute()+at.Second(), "%s starts on the hour", name)
		notice := at.Sub(known)
		if known.Equal(p.Start) {
			require.LessOrEqual(t, notice, maxNotice, name)
		} else {
			require.True(t, notice >= minNotice && notice <= maxNotice, "%s: notice %s", name, notice)
		}
		require.GreaterOrEqual(t, len(w), minWave, name)
		require.LessOrEqual(t, len(w), maxWave, name)
		vms := map[string]bool{}
		for _, r := range w {
			require.Equal(t, at, r.Arrival, "%s arrives at once", name)
			require.Equal(t, known, r.KnownAt, "%s is announced at once", name)
			require.Equal(t, site, r.Site, "%s is at one site", name)
			require.Equal(t, site, inventory[r.VMID], "%s: %s is at its site", name, r.VMID)
			require.False(t, vms[r.VMID], "%s: %s twice", name, r.VMID)
			vms[r.VMID] = true
			tier, _ := TierNamed(r.SLATier)
			want := at.Add(waveWindow)
			if d := tier.Deadline(at, r.Bytes); d.After(want) {
				want = d
			}
			require.Equal(t, want, r.Deadline, "%s: %s", name, r.ID)
		}
		wk := int(at.Sub(p.Start) / week)
		require.NotContains(t, perWeek[wk], at.Weekday(), "%s: one wave a day while there are enough days", name)
		perWeek[wk] = append(perWeek[wk], at.Weekday())
	}
	for w := range 4 {
		require.Len(t, perWeek[w], 3, "week %d", w)
	}
}

func TestAShortLastWeekHasItsShareOfWaves(t *testing.T) {
	p := DefaultParams()
	p.Days, p.Rate = 10, 0 // a week, then Monday to Wednesday: 3 × 3/7 rounds to 1 wave
	reqs, err := Generate(flat, p)
	require.NoError(t, err)
	var waves []string
	for _, r := range reqs {
		waves = append(waves, r.Wave)
	}
	require.Equal(t, []string{"w01", "w02", "w03", "w04"}, slices.Compact(waves))
	require.True(t, reqs[len(reqs)-1].Arrival.Before(p.Start.AddDate(0, 0, 10)))
}

func TestTheAzureTraceGivesEnoughRequests(t *testing.T) {
	f, err := os.Open(azurePath)
	require.NoError(t, err)
	defer f.Close()
	name, series, err := ReadSeries(f, "")
	require.NoError(t, err)
	require.Equal(t, "cpu_usage", name, "the timestamp column is skipped")
	require.Len(t, series, 30*24*12, "30 days at 5-minute steps")
	reqs, err := Generate(series, DefaultParams())
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(reqs), 10000)
	got, err := Read(bytes.NewReader(write(t, reqs)))
	require.NoError(t, err, "Read accepts what Generate makes")
	require.Equal(t, reqs, got)
}

// The intensity is the rate arrivals are drawn at: over a long trace, each site's
// arrivals in each hour of the day average what it says, within sampling error.
func TestIntensityIsTheRateArrivalsAreDrawnAt(t *testing.T) {
	series := make([]float64, 24*12) // a day at 5 minutes: quiet nights, busy days
	for i := range series {
		series[i] = 1 + math.Sin(2*math.Pi*float64(i)/float64(len(series)))
	}
	p := DefaultParams()
	p.Days, p.WavesPerWeek, p.Rate = 200, 0, 30
	reqs, err := Generate(series, p)
	if err != nil {
		t.Fatal(err)
	}
	rate, err := Intensity(series, p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*[24]float64{}
	for _, r := range reqs {
		if got[r.Site] == nil {
			got[r.Site] = new([24]float64)
		}
		got[r.Site][r.Arrival.Hour()] += 1 / float64(p.Days)
	}
	var sum float64
	for site, hours := range got {
		for h, mean := range hours {
			want := rate(site, p.Start.Add(time.Duration(h)*time.Hour+17*time.Minute))
			sum += want
			// Poisson: the mean of 200 days has a standard error of √(want/200).
			if se := math.Sqrt(want / float64(p.Days)); math.Abs(mean-want) > 4*se {
				t.Errorf("%s at %02d:00: %.3f arrivals an hour, the intensity says %.3f (±%.3f)", site, h, mean, want, se)
			}
		}
	}
	if math.Abs(sum/24-p.Rate) > 1e-9 {
		t.Errorf("the sites' intensities average %.6f an hour over the day, want the rate %v", sum/24, p.Rate)
	}
	if _, err := Intensity(nil, p); err == nil || !strings.Contains(err.Error(), "series") {
		t.Errorf("an empty series gave %v, want an error naming the series", err)
	}
}
