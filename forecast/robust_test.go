package forecast

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestFillMissing(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name string
		in   []float64
		want []float64
		err  error
	}{
		{"none missing", []float64{1, 2, 3}, []float64{1, 2, 3}, nil},
		{"interior gap", []float64{1, nan, nan, 4}, []float64{1, 2, 3, 4}, nil},
		{"leading gap", []float64{nan, nan, 5, 6}, []float64{5, 5, 5, 6}, nil},
		{"trailing gap", []float64{1, 2, nan}, []float64{1, 2, 2}, nil},
		{"all missing", []float64{nan, nan}, nil, ErrTooShort},
		{"infinity", []float64{1, math.Inf(-1)}, nil, ErrNotFinite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FillMissing(c.in)
			if !errors.Is(err, c.err) || c.err == nil && !slices.Equal(got, c.want) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, c.want, c.err)
			}
		})
	}
}

// Every model, behind the Fallback that the CLI and the fleet use, gives a finite
// forecast with ordered quantiles for the awkward series real data brings.
func TestEveryModelForecastsAwkwardSeriesFinitely(t *testing.T) {
	const n = 24 * 21
	daily := func(i int) float64 { return 100 + 30*math.Sin(2*math.Pi*float64(i%24)/24) }
	series := map[string][]float64{}
	gen := func(name string, f func(i int) float64, length int) {
		y := make([]float64, length)
		for i := range y {
			y[i] = f(i)
		}
		series[name] = y
	}
	gen("seasonal", daily, n)
	gen("zeros", func(int) float64 { return 0 }, n)
	gen("constant", func(int) float64 { return 7 }, n)
	gen("sparse counts", func(i int) float64 { return float64(i % 24 / 23) }, n) // one arrival a day
	gen("short", daily, 5)
	gen("one point", daily, 1)
	gen("under two seasons", daily, 30)
	gen("negative", func(i int) float64 { return daily(i) - 150 }, n)
	gen("outlier", func(i int) float64 {
		if i == n-30 {
			return 1e6
		}
		return daily(i)
	}, n)
	gen("level shift", func(i int) float64 {
		if i > n-72 {
			return daily(i) + 500
		}
		return daily(i)
	}, n)
	gen("missing points", func(i int) float64 {
		if i%17 == 3 || i > n-5 {
			return math.NaN()
		}
		return daily(i)
	}, n)
	quantiles := []float64{0.05, 0.5, 0.95}
	var batch [][]float64
	for _, name := range sortedNames(series) {
		batch = append(batch, series[name])
	}
	for _, model := range ModelNames() {
		// As the CLI does: global models learn from the whole batch first.
		newModel, err := Prepare(model, batch, 24, 48)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		for _, name := range sortedNames(series) {
			t.Run(model+"/"+name, func(t *testing.T) {
				f := &Fallback{Primary: newModel(24), Period: 24}
				if err := f.Fit(series[name]); err != nil {
					t.Fatalf("fit: %v", err)
				}
				fc, err := f.Forecast(48, quantiles)
				if err != nil {
					t.Fatalf("forecast: %v", err)
				}
				if !fc.finite() {
					t.Fatalf("%s gave a non-finite forecast", f.Used)
				}
				for s := range 48 {
					if fc.Values[0][s] > fc.Values[1][s]+1e-9 || fc.Values[1][s] > fc.Values[2][s]+1e-9 {
						t.Fatalf("%s: step %d quantiles out of order: %v %v %v", f.Used, s, fc.Values[0][s], fc.Values[1][s], fc.Values[2][s])
					}
				}
			})
		}
	}
}

func sortedNames(m map[string][]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
