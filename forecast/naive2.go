package forecast

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Naive2 is the M4 competition's Naive2 benchmark, the yardstick of OWA: the naive
// forecast (the last value carried forward) of the seasonally adjusted series, adjusted
// as the M4 benchmarks adjust (m4Deseasonalise), multiplied back by the seasonal index.
// Its intervals are those of the random walk on the adjusted series, ±z·σ·√h with σ
// the standard deviation of its one-step differences, multiplied by the seasonal index
// like the point. Fit needs 2 points.
type Naive2 struct {
	// Period is the seasonal period m, at least 1.
	Period int

	n        int
	last     float64
	sigma    float64
	seasonal []float64
}

// Name returns "naive2".
func (s *Naive2) Name() string { return "naive2" }

// Fit adjusts y and keeps its last value and the spread of its differences.
func (s *Naive2) Fit(y []float64) error {
	if s.Period < 1 {
		panic("forecast: Naive2.Period must be at least 1")
	}
	if len(y) < 2 {
		return ErrTooShort
	}
	if err := requireFinite(y); err != nil {
		return err
	}
	x, idx := m4Deseasonalise(y, s.Period)
	var ss float64
	for t := 1; t < len(x); t++ {
		d := x[t] - x[t-1]
		ss += d * d
	}
	s.n, s.last, s.seasonal = len(y), x[len(x)-1], idx
	s.sigma = math.Sqrt(ss / float64(len(x)-1))
	return nil
}

// Forecast projects h steps with the given quantiles.
func (s *Naive2) Forecast(h int, quantiles []float64) (Forecast, error) {
	checkForecastCall(s.n > 0, h, quantiles)
	f := newForecast(h, quantiles)
	for t := range h {
		index := 1.0
		if s.seasonal != nil {
			index = s.seasonal[(s.n+t)%s.Period]
		}
		f.Mean[t] = s.last * index
		se := s.sigma * math.Sqrt(float64(t+1))
		for i, q := range quantiles {
			f.Values[i][t] = (s.last + distuv.UnitNormal.Quantile(q)*se) * index
		}
	}
	return f, nil
}
