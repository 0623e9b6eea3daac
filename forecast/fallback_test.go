package forecast

import (
	"errors"
	"math"
	"testing"
)

// brokenModel fits anything and forecasts NaN: the fault Fallback exists for, which no
// model of ours should produce.
type brokenModel struct{}

func (brokenModel) Fit([]float64) error { return nil }
func (brokenModel) Forecast(h int, q []float64) (Forecast, error) {
	fc := Forecast{Mean: make([]float64, h), Quantiles: q, Values: make([][]float64, len(q))}
	for i := range q {
		fc.Values[i] = make([]float64, h)
	}
	fc.Mean[0] = math.NaN()
	return fc, nil
}

func TestFallbackChain(t *testing.T) {
	season := func(n int) []float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = float64(i%4) + 10
		}
		return y
	}
	cases := []struct {
		name     string
		primary  Model
		y        []float64
		used     string
		reason   error
		wantMean float64 // first step
	}{
		{"primary fits", &SeasonalNaive{Period: 4}, season(12), "snaive4", nil, 10},
		{"too short for the primary", &SeasonalNaive{Period: 8}, season(12), "snaive4", ErrTooShort, 10},
		{"too short for a season", &SeasonalNaive{Period: 8}, season(5), "snaive1", ErrTooShort, 10},
		{"one point", &SeasonalNaive{Period: 8}, []float64{7}, "last", ErrTooShort, 7},
		{"primary forecasts NaN", brokenModel{}, season(12), "snaive4", ErrNotFinite, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &Fallback{Primary: c.primary, Period: 4}
			if err := f.Fit(c.y); err != nil {
				t.Fatal(err)
			}
			fc, err := f.Forecast(6, []float64{0.05, 0.95})
			if err != nil {
				t.Fatal(err)
			}
			if f.Used != c.used || f.Name() != c.used {
				t.Errorf("used %s, want %s", f.Used, c.used)
			}
			if c.reason == nil && f.Reason != nil || c.reason != nil && !errors.Is(f.Reason, c.reason) {
				t.Errorf("reason %v, want %v", f.Reason, c.reason)
			}
			if fc.Mean[0] != c.wantMean {
				t.Errorf("first step %v, want %v", fc.Mean[0], c.wantMean)
			}
			if !fc.finite() {
				t.Error("non-finite forecast")
			}
		})
	}
}

func TestFallbackRefusesNonFiniteData(t *testing.T) {
	f := &Fallback{Primary: &SeasonalNaive{Period: 2}, Period: 2}
	if err := f.Fit([]float64{1, math.Inf(1), 3, 4}); !errors.Is(err, ErrNotFinite) {
		t.Fatalf("got %v, want ErrNotFinite", err)
	}
}
