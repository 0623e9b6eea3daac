package forecast

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// readMSTLReference reads testdata/mstl_reference.csv: R's mstl of M4 H1 (700 hourly
// points) as msts(y, seasonal.periods = c(24, 168)), by testdata/mstl_reference.R with
// R 4.2.2 and forecast 8.20, 12 significant digits.
func readMSTLReference(t testing.TB) (y, trend, s24, s168, remainder []float64) {
	_, rows := readRefCSV(t, "testdata/mstl_reference.csv")
	for _, r := range rows {
		y = append(y, parseRef(t, r[1]))
		trend = append(trend, parseRef(t, r[2]))
		s24 = append(s24, parseRef(t, r[3]))
		s168 = append(s168, parseRef(t, r[4]))
		remainder = append(remainder, parseRef(t, r[5]))
	}
	return y, trend, s24, s168, remainder
}

// TestMSTLAgainstR compares every point of the decomposition with R's forecast::mstl.
// DecomposeMSTL runs the same STL passes in the same order (two rounds over periods 24
// and 168 with s.window 11 and 15, not robust), so it matches to rounding: 1e-9
// relative to the series' largest value.
func TestMSTLAgainstR(t *testing.T) {
	y, trend, s24, s168, remainder := readMSTLReference(t)
	d, err := DecomposeMSTL(y, []int{168, 24}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Periods) != 2 || d.Periods[0] != 24 || d.Periods[1] != 168 {
		t.Fatalf("periods %v, want [24 168]", d.Periods)
	}
	scale := 0.0
	for _, v := range y {
		scale = max(scale, math.Abs(v))
	}
	const tol = 1e-9
	comps := []struct {
		name      string
		got, want []float64
	}{
		{"trend", d.Trend, trend},
		{"seasonal24", d.Seasonal[0], s24},
		{"seasonal168", d.Seasonal[1], s168},
		{"remainder", d.Remainder, remainder},
	}
	for _, c := range comps {
		for i := range y {
			if !closeTo(c.got[i], c.want[i], tol, scale) {
				t.Fatalf("%s[%d] = %v, R %v", c.name, i+1, c.got[i], c.want[i])
			}
		}
	}
}

// TestMSTLForecastAgainstR checks the forecast's assembly against R's
// forecast(mstl(y), method = "naive", h = 48): the last adjusted value plus each
// seasonal component's last cycle repeated (testdata/mstl_forecast.csv).
func TestMSTLForecastAgainstR(t *testing.T) {
	y, _, _, _, _ := readMSTLReference(t)
	_, rows := readRefCSV(t, "testdata/mstl_forecast.csv")
	m := &MSTL{Periods: []int{24, 168}, Adjusted: &SeasonalNaive{Period: 1}}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	f, err := m.Forecast(len(rows), []float64{0.1, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if want := parseRef(t, r[1]); !closeTo(f.Mean[i], want, 1e-9, 1000) {
			t.Fatalf("step %d: %v, R %v", i+1, f.Mean[i], want)
		}
	}
	if got, want := m.Name(), "mstl(24,168)+snaive1"; got != want {
		t.Fatalf("name %q, want %q", got, want)
	}
}

func TestMSTLModel(t *testing.T) {
	y, _, _, _, _ := readMSTLReference(t)
	for _, adj := range []Model{nil, &mstlTrend{Kind: mstlLevel}, &mstlTrend{Kind: mstlLinear}} {
		m := &MSTL{Periods: []int{24, 168}, Adjusted: adj}
		if err := m.Fit(y); err != nil {
			t.Fatal(err)
		}
		f, err := m.Forecast(48, []float64{0.05, 0.5, 0.95})
		if err != nil {
			t.Fatal(err)
		}
		if !f.finite() {
			t.Fatalf("%s: non-finite forecast", m.Name())
		}
		// The series is in the hundreds with a clear daily cycle: the forecast must
		// be ordered by quantile, and the median Gaussian quantile is the mean.
		lo, mid, hi := f.Quantile(0.05), f.Quantile(0.5), f.Quantile(0.95)
		for s := range 48 {
			if !(lo[s] < mid[s] && mid[s] < hi[s]) || math.Abs(mid[s]-f.Mean[s]) > 1e-9 {
				t.Fatalf("%s step %d: %v %v %v mean %v", m.Name(), s+1, lo[s], mid[s], hi[s], f.Mean[s])
			}
		}
		if !strings.HasPrefix(m.Name(), "mstl(24,168)+") {
			t.Fatalf("name %q", m.Name())
		}
	}
}

func TestMSTLEdgeCases(t *testing.T) {
	seq := func(n int, f func(int) float64) []float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = f(i)
		}
		return y
	}
	cases := []struct {
		name    string
		periods []int
		y       []float64
		err     error
		used    string // the model's name after Fit
	}{
		{"constant", []int{24, 168}, seq(400, func(int) float64 { return 7 }), nil, "mstl(24,168)+damped"},
		{"zeros", []int{24, 168}, make([]float64, 400), nil, "mstl(24,168)+damped"},
		{"weekly dropped", []int{24, 168}, seq(300, func(i int) float64 { return float64(i % 24) }), nil, "mstl(24)+damped"},
		{"exactly two weeks: weekly dropped", []int{168, 24}, seq(336, func(i int) float64 { return float64(i % 24) }), nil, "mstl(24)+damped"},
		{"too short for any period", []int{24, 168}, seq(48, func(i int) float64 { return float64(i) }), ErrTooShort, ""},
		{"no seasonal period", []int{1}, seq(30, func(i int) float64 { return float64(i) }), nil, "mstl()+damped"},
		{"NaN", []int{24}, seq(100, func(i int) float64 { return map[bool]float64{true: math.NaN()}[i == 50] }), ErrNotFinite, ""},
		{"Inf", []int{24}, seq(100, func(i int) float64 { return map[bool]float64{true: math.Inf(-1)}[i == 0] }), ErrNotFinite, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The registry's model, with AutoETS for the adjusted series, must take
			// the same data; its name depends on the ETS chosen.
			reg := &MSTL{Periods: c.periods, Adjusted: &AutoETS{Period: 1}}
			if err := reg.Fit(c.y); !errors.Is(err, c.err) {
				t.Fatalf("with AutoETS: error %v, want %v", err, c.err)
			} else if err == nil {
				if f, err := reg.Forecast(50, []float64{0.1, 0.9}); err != nil || !f.finite() {
					t.Fatalf("with AutoETS: forecast %v, error %v", f.Mean, err)
				}
			}
			m := &MSTL{Periods: c.periods}
			err := m.Fit(c.y)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if m.Name() != c.used {
				t.Fatalf("name %q, want %q", m.Name(), c.used)
			}
			f, err := m.Forecast(50, []float64{0.1, 0.9})
			if err != nil || !f.finite() {
				t.Fatalf("forecast %v, error %v", f.Mean, err)
			}
			if c.name == "constant" || c.name == "zeros" {
				for s := range f.Mean {
					if math.Abs(f.Mean[s]-c.y[0]) > 1e-9 || math.Abs(f.Values[0][s]-c.y[0]) > 1e-9 || math.Abs(f.Values[1][s]-c.y[0]) > 1e-9 {
						t.Fatalf("step %d: mean %v band %v %v, want %v with no spread (to rounding)", s+1, f.Mean[s], f.Values[0][s], f.Values[1][s], c.y[0])
					}
				}
			}
		})
	}
}

func TestMSTLPeriods(t *testing.T) {
	m, err := New("mstl", 24)
	if err != nil {
		t.Fatal(err)
	}
	if got := NameOf(m); got != "mstl(24,168)" {
		t.Fatalf("name before Fit %q", got)
	}
	y, _, _, _, _ := readMSTLReference(t)
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	if got := NameOf(m); !strings.HasPrefix(got, "mstl(24,168)+") {
		t.Fatalf("name after Fit %q", got)
	}
	if got := MSTLPeriods(12); len(got) != 1 || got[0] != 12 {
		t.Fatalf("MSTLPeriods(12) = %v", got)
	}
}

// TestMSTLTrendRecoversLine checks the default adjusted model on a noiseless line:
// Holt's method follows it exactly, and the damped one at least starts on it.
func TestMSTLTrendRecoversLine(t *testing.T) {
	y := make([]float64, 100)
	for i := range y {
		y[i] = 10 + 2*float64(i)
	}
	m := &mstlTrend{Kind: mstlLinear}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	f, _ := m.Forecast(5, nil)
	for s, v := range f.Mean {
		if want := 10 + 2*float64(100+s); math.Abs(v-want) > 1e-6 {
			t.Fatalf("holt step %d: %v, want %v (%v)", s+1, v, want, m)
		}
	}
	d := &mstlTrend{Kind: mstlDamped}
	if err := d.Fit(y); err != nil {
		t.Fatal(err)
	}
	f, _ = d.Forecast(1, nil)
	if math.Abs(f.Mean[0]-210) > 2 {
		t.Fatalf("damped step 1: %v, want about 210 (%v)", f.Mean[0], d)
	}
}

// BenchmarkMSTLHourly fits and forecasts M4 H1 (700 points) 48 hours ahead with the
// registry's "mstl": periods 24 and 168, AutoETS on the adjusted series.
func BenchmarkMSTLHourly(b *testing.B) {
	benchmarkMSTL(b, func() Model { m, _ := New("mstl", 24); return m })
}

// BenchmarkMSTLHourlyDamped is the same with the nil Adjusted default.
func BenchmarkMSTLHourlyDamped(b *testing.B) {
	benchmarkMSTL(b, func() Model { return &MSTL{Periods: []int{24, 168}} })
}

func benchmarkMSTL(b *testing.B, model func() Model) {
	y, _, _, _, _ := readMSTLReference(b)
	q := []float64{0.05, 0.5, 0.95}
	for b.Loop() {
		m := model()
		if err := m.Fit(y); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Forecast(48, q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMSTLDecomposeHourly(b *testing.B) {
	y, _, _, _, _ := readMSTLReference(b)
	for b.Loop() {
		if _, err := DecomposeMSTL(y, []int{24, 168}, 2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSTLHourly is one STL pass, period 24 and s.window 11, as MSTL's first.
func BenchmarkSTLHourly(b *testing.B) {
	y, _, _, _, _ := readMSTLReference(b)
	s := NewSTL(24, 11, false)
	for b.Loop() {
		if _, err := s.Decompose(y); err != nil {
			b.Fatal(err)
		}
	}
}
