package forecast

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// SeasonalNaive forecasts each step as the value one season earlier:
//
//	ŷ[T+h] = y[T+h-m(k+1)],  k = ⌊(h-1)/m⌋
//
// Quantiles come from the empirical distribution of the in-sample seasonal
// differences e[t] = y[t] - y[t-m], centred on their mean and widened by √(k+1) for horizons beyond one season
// (the random-walk growth of Hyndman and Athanasopoulos, FPP3 §5.5). Fit needs at
// least two seasons, so that there is at least one season of residuals.
type SeasonalNaive struct {
	// Period is the seasonal period m, at least 1.
	Period int
	// NonNegative clips forecasts at zero, for counts.
	NonNegative bool

	last      []float64 // the last season of the series
	residuals []float64 // sorted seasonal differences
}

// Fit stores the last season and the seasonal differences of y.
func (s *SeasonalNaive) Fit(y []float64) error {
	m := s.Period
	if m < 1 {
		panic("forecast: SeasonalNaive.Period must be at least 1")
	}
	if len(y) < 2*m {
		return ErrTooShort
	}
	if err := requireFinite(y); err != nil {
		return err
	}
	s.last = slices.Clone(y[len(y)-m:])
	s.residuals = make([]float64, 0, len(y)-m)
	for t := m; t < len(y); t++ {
		s.residuals = append(s.residuals, y[t]-y[t-m])
	}
	slices.Sort(s.residuals)
	return nil
}

// Forecast projects h steps with the given quantiles.
func (s *SeasonalNaive) Forecast(h int, quantiles []float64) (Forecast, error) {
	checkForecastCall(s.last != nil, h, quantiles)
	m := s.Period
	f := newForecast(h, quantiles)
	// Seasonal naive assumes no drift, so the residuals are centred on their mean:
	// the band sits around the point forecast instead of being shifted by past trend.
	centre := stat.Mean(s.residuals, nil)
	offsets := make([]float64, len(quantiles))
	for i, q := range quantiles {
		offsets[i] = stat.Quantile(q, stat.LinInterp, s.residuals, nil) - centre
	}
	for t := range h {
		point := s.last[t%m]
		widen := math.Sqrt(float64(t/m + 1))
		f.Mean[t] = s.clip(point)
		for i := range quantiles {
			f.Values[i][t] = s.clip(point + widen*offsets[i])
		}
	}
	return f, nil
}

func (s *SeasonalNaive) clip(v float64) float64 {
	if s.NonNegative && v < 0 {
		return 0
	}
	return v
}
