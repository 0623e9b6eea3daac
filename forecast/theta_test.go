package forecast

import (
	"encoding/csv"
	"errors"
	"math"
	"os"
	"strconv"
	"testing"
)

// thetaCase is one series of testdata/theta_series.csv with thetaf's output from
// testdata/theta_reference.csv and theta_params.csv, all written by
// testdata/theta_reference.R (R 4.2.2, forecast 8.20).
type thetaCase struct {
	name     string
	period   int
	h        int
	y        []float64
	mean     []float64
	lo80     []float64
	hi80     []float64
	lo95     []float64
	hi95     []float64
	seasonal bool
	alpha    float64
}

func readThetaCSV(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows[1:] // drop the header
}

func thetaParseFloat(t testing.TB, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// loadThetaCases reads the committed reference files, in the order of the series file.
func loadThetaCases(t testing.TB) []*thetaCase {
	t.Helper()
	byName := map[string]*thetaCase{}
	var cases []*thetaCase
	for _, row := range readThetaCSV(t, "testdata/theta_series.csv") {
		c := byName[row[0]]
		if c == nil {
			p, _ := strconv.Atoi(row[1])
			h, _ := strconv.Atoi(row[2])
			c = &thetaCase{name: row[0], period: p, h: h}
			byName[row[0]] = c
			cases = append(cases, c)
		}
		c.y = append(c.y, thetaParseFloat(t, row[3]))
	}
	for _, row := range readThetaCSV(t, "testdata/theta_reference.csv") {
		c := byName[row[0]]
		c.mean = append(c.mean, thetaParseFloat(t, row[2]))
		c.lo80 = append(c.lo80, thetaParseFloat(t, row[3]))
		c.hi80 = append(c.hi80, thetaParseFloat(t, row[4]))
		c.lo95 = append(c.lo95, thetaParseFloat(t, row[5]))
		c.hi95 = append(c.hi95, thetaParseFloat(t, row[6]))
	}
	for _, row := range readThetaCSV(t, "testdata/theta_params.csv") {
		c := byName[row[0]]
		c.seasonal = row[1] == "TRUE"
		c.alpha = thetaParseFloat(t, row[2])
	}
	return cases
}

func thetaRelErr(got, want float64) float64 {
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-12)
}

func TestThetaMatchesR(t *testing.T) {
	// thetaf is deterministic up to ets' Nelder–Mead, which stops near but not exactly
	// at the SSE minimum that thetaFitSES finds. Observed errors are below 4e-6 (means) and
	// 5e-5 (bounds); the tolerances, tighter than the 0.5% and 2% first aimed at, leave
	// room for that optimiser difference and little else.
	const meanTol, boundTol = 1e-4, 1e-3
	cases := loadThetaCases(t)
	if len(cases) != 4 {
		t.Fatalf("read %d reference series, want 4", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.mean) != c.h {
				t.Fatalf("reference has %d steps, want %d", len(c.mean), c.h)
			}
			m := &Theta{Period: c.period}
			if err := m.Fit(c.y); err != nil {
				t.Fatal(err)
			}
			if got := m.seasonal != nil; got != c.seasonal {
				t.Fatalf("seasonal = %v, thetaf %v", got, c.seasonal)
			}
			f, err := m.Forecast(c.h, []float64{0.025, 0.1, 0.9, 0.975})
			if err != nil {
				t.Fatal(err)
			}
			var worstMean, worstBound float64
			for i := range c.h {
				worstMean = math.Max(worstMean, thetaRelErr(f.Mean[i], c.mean[i]))
				for _, b := range []struct{ got, want float64 }{
					{f.Quantile(0.1)[i], c.lo80[i]}, {f.Quantile(0.9)[i], c.hi80[i]},
					{f.Quantile(0.025)[i], c.lo95[i]}, {f.Quantile(0.975)[i], c.hi95[i]},
				} {
					worstBound = math.Max(worstBound, thetaRelErr(b.got, b.want))
				}
			}
			t.Logf("alpha %.6f (R %.6f), worst relative error: mean %.2e, bounds %.2e",
				m.alpha, c.alpha, worstMean, worstBound)
			if worstMean > meanTol {
				t.Errorf("point forecasts off by up to %.3g, tolerance %v", worstMean, meanTol)
			}
			if worstBound > boundTol {
				t.Errorf("interval bounds off by up to %.3g, tolerance %v", worstBound, boundTol)
			}
		})
	}
}

func TestThetaLinearTrend(t *testing.T) {
	// On an exact line y = 3 + 2t, SES with the best ℓ₀ tracks it only with lag, but
	// the fitted model and its forecast must stay finite and rise with the trend: the
	// drift is half the slope (Hyndman and Billah 2003).
	y := make([]float64, 30)
	for i := range y {
		y[i] = 3 + 2*float64(i)
	}
	m := &Theta{Period: 1}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.drift-1) > 1e-12 {
		t.Fatalf("drift %v, want 1", m.drift)
	}
	f, _ := m.Forecast(5, []float64{0.5})
	for i := 1; i < 5; i++ {
		if !(f.Mean[i] > f.Mean[i-1]) {
			t.Fatalf("forecast not increasing: %v", f.Mean)
		}
		if math.Abs(f.Quantile(0.5)[i]-f.Mean[i]) > 1e-9 {
			t.Fatalf("median %v differs from mean %v", f.Quantile(0.5)[i], f.Mean[i])
		}
	}
}

func TestThetaConstant(t *testing.T) {
	// A constant series skips the seasonality test (as thetaf's is.constant check) and
	// forecasts the constant with a zero-width band, never NaN.
	y := make([]float64, 48)
	for i := range y {
		y[i] = 7
	}
	m := &Theta{Period: 12}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	f, _ := m.Forecast(24, []float64{0.05, 0.95})
	for i := range 24 {
		for _, v := range []float64{f.Mean[i], f.Quantile(0.05)[i], f.Quantile(0.95)[i]} {
			if math.Abs(v-7) > 1e-9 {
				t.Fatalf("step %d: %v, want 7", i, v)
			}
		}
	}
}

func TestThetaNonPositiveSkipsDecomposition(t *testing.T) {
	// A strongly seasonal series with zeros: multiplicative indices are meaningless, so
	// Theta must forecast without them and without NaN.
	y := make([]float64, 60)
	for i := range y {
		y[i] = float64(i % 6 * 10)
	}
	m := &Theta{Period: 6}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	if m.seasonal != nil {
		t.Fatal("deseasonalised a series holding zeros")
	}
	f, _ := m.Forecast(12, []float64{0.1, 0.9})
	for i := range 12 {
		for _, v := range []float64{f.Mean[i], f.Quantile(0.1)[i], f.Quantile(0.9)[i]} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("step %d: %v", i, v)
			}
		}
	}
}

func TestThetaShortSeasonalSeriesIsNotDeseasonalised(t *testing.T) {
	// thetaf tests for seasonality only when n > 2m; exactly two seasons is not enough.
	y := []float64{1, 5, 9, 1, 5, 9}
	m := &Theta{Period: 3}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	if m.seasonal != nil {
		t.Fatal("deseasonalised a series of two seasons")
	}
}

func TestThetaDataErrors(t *testing.T) {
	cases := []struct {
		name string
		y    []float64
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"two points", []float64{1, 2}, ErrTooShort},
		{"NaN", []float64{1, math.NaN(), 3, 4}, ErrNotFinite},
		{"Inf", []float64{1, 2, math.Inf(-1), 4}, ErrNotFinite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &Theta{Period: 1}
			if err := m.Fit(c.y); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	m := &Theta{Period: 1}
	if err := m.Fit([]float64{1, 3, 2}); err != nil {
		t.Fatalf("three points: %v", err)
	}
}

func TestThetaPanics(t *testing.T) {
	fitted := &Theta{Period: 1}
	if err := fitted.Fit([]float64{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		f    func()
	}{
		{"period 0", func() { _ = (&Theta{}).Fit([]float64{1, 2, 3}) }},
		{"before Fit", func() { _, _ = (&Theta{Period: 1}).Forecast(1, nil) }},
		{"horizon 0", func() { _, _ = fitted.Forecast(0, nil) }},
		{"quantile 1", func() { _, _ = fitted.Forecast(1, []float64{1}) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			c.f()
		})
	}
}

// BenchmarkThetaHourly times one fit and a two-day forecast with 80% and 95% bands on
// M4 series H1 (700 hourly points, m = 24).
func BenchmarkThetaHourly(b *testing.B) {
	var y []float64
	for _, c := range loadThetaCases(b) {
		if c.name == "M4-H1" {
			y = c.y
		}
	}
	qs := []float64{0.025, 0.1, 0.9, 0.975}
	for b.Loop() {
		m := &Theta{Period: 24}
		if err := m.Fit(y); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Forecast(48, qs); err != nil {
			b.Fatal(err)
		}
	}
}

func TestThetaSeasonalIndicesMatchDecompose(t *testing.T) {
	// decompose(ts(y, frequency = m), type = "multiplicative")$figure in R 4.2.2, for an
	// odd period (plain m-term MA) and an even one (2×m MA), with partial last seasons.
	cases := []struct {
		m    int
		y    []float64
		want []float64
	}{
		{3, []float64{5, 9, 2, 6, 11, 3, 7, 12, 3, 8, 14, 4, 9},
			[]float64{0.95219427386109590, 1.64424351861026641, 0.40356220752863758}},
		{4, []float64{3, 8, 5, 1.5, 4, 9, 6, 2, 5, 10, 7, 2.5, 6, 11},
			[]float64{0.82852961914505485, 1.69835697546669184, 1.11984845231598440, 0.35326495307226918}},
	}
	for _, c := range cases {
		got := seasonalIndices(c.y, c.m)
		for j, w := range c.want {
			if thetaRelErr(got[j], w) > 1e-12 {
				t.Fatalf("m=%d index %d: %v, want %v", c.m, j, got[j], w)
			}
		}
	}
}
