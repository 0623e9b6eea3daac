package forecast

import (
	"errors"
	"math"
	"testing"
)

func TestSeasonalNaive(t *testing.T) {
	// Hand-computed: period 3, y = 1 2 3 | 2 3 4 | 3 4 5. The last season is 3 4 5 and
	// the seasonal differences are all 1; centred on their mean they are all 0, so every
	// quantile equals the point forecast.
	y := []float64{1, 2, 3, 2, 3, 4, 3, 4, 5}
	m := &SeasonalNaive{Period: 3}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	f, err := m.Forecast(5, []float64{0.1, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{3, 4, 5, 3, 4}
	for i, w := range want {
		if f.Mean[i] != w || f.Quantile(0.1)[i] != w || f.Quantile(0.9)[i] != w {
			t.Fatalf("step %d: mean %v lo %v hi %v, want %v", i, f.Mean[i], f.Quantile(0.1)[i], f.Quantile(0.9)[i], w)
		}
	}
}

func TestSeasonalNaiveQuantilesWidenPastOneSeason(t *testing.T) {
	// Differences y[t]-y[t-2] are -1, 1, -1, 1, ... so the 10% and 90% quantiles are -1
	// and 1 (LinInterp on a two-valued sample); past one season they widen by √2.
	y := []float64{5, 5, 4, 6, 5, 5, 4, 6, 5, 5}
	m := &SeasonalNaive{Period: 2}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	f, err := m.Forecast(4, []float64{0.1, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := f.Quantile(0.1), f.Quantile(0.9)
	if lo[0] >= f.Mean[0] || hi[0] <= f.Mean[0] {
		t.Fatalf("band does not bracket the mean: %v %v %v", lo[0], f.Mean[0], hi[0])
	}
	w0, w2 := hi[0]-lo[0], hi[2]-lo[2]
	if math.Abs(w2/w0-math.Sqrt2) > 1e-9 {
		t.Fatalf("width ratio %v, want √2", w2/w0)
	}
}

func TestSeasonalNaiveDataErrors(t *testing.T) {
	cases := []struct {
		name string
		y    []float64
		want error
	}{
		{"shorter than two seasons", []float64{1, 2, 3}, ErrTooShort},
		{"NaN", []float64{1, math.NaN(), 3, 4}, ErrNotFinite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &SeasonalNaive{Period: 2}
			if err := m.Fit(c.y); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestSeasonalNaiveNonNegative(t *testing.T) {
	y := []float64{0, 0, 5, 0, 0, 0}
	m := &SeasonalNaive{Period: 3, NonNegative: true}
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	f, _ := m.Forecast(3, []float64{0.1})
	for i, v := range f.Quantile(0.1) {
		if v < 0 {
			t.Fatalf("step %d: negative forecast %v", i, v)
		}
	}
}
