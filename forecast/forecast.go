// Package forecast holds PMO's forecasting models: pure numerics on gonum, with no
// Temporal and no SQL, usable as a library on its own.
//
// Every model fits on a series with a seasonal period and forecasts h steps ahead with
// quantiles. Programmer errors (a non-positive horizon, a quantile outside (0, 1))
// panic with "forecast: ..."; problems with the data return the sentinel errors below.
package forecast

import (
	"errors"
	"slices"
)

// Data errors.
var (
	// ErrTooShort means the series has fewer points than the model needs.
	ErrTooShort = errors.New("forecast: series too short")
	// ErrNotFinite means the series holds a NaN or an infinity.
	ErrNotFinite = errors.New("forecast: series holds NaN or Inf")
	// ErrNegative means a series of counts holds a negative value.
	ErrNegative = errors.New("forecast: counts cannot be negative")
)

// Forecast is a point forecast with quantiles. Quantiles[i] is the level of Values[i],
// and Values[i][t] the forecast of that quantile t+1 steps ahead.
type Forecast struct {
	Mean      []float64
	Quantiles []float64
	Values    [][]float64
}

// Quantile returns the forecast for quantile q, which must be one of the levels the
// forecast was made with.
func (f Forecast) Quantile(q float64) []float64 {
	for i, l := range f.Quantiles {
		if l == q {
			return f.Values[i]
		}
	}
	panic("forecast: quantile not computed")
}

// Model is a forecasting model: Fit learns from a series, Forecast projects it.
type Model interface {
	// Fit learns from y, oldest first.
	Fit(y []float64) error
	// Forecast returns h steps ahead with the given quantiles, each in (0, 1).
	Forecast(h int, quantiles []float64) (Forecast, error)
}

// checkForecastCall panics on a programmer's error in a call to Forecast, as the
// package promises: a model that did not fit, a horizon under 1, a quantile outside
// (0, 1).
func checkForecastCall(fitted bool, h int, quantiles []float64) {
	if h < 1 {
		panic("forecast: horizon must be at least 1")
	}
	if !fitted {
		panic("forecast: Forecast called before Fit")
	}
	for _, q := range quantiles {
		if !(q > 0 && q < 1) {
			panic("forecast: quantile outside (0, 1)")
		}
	}
}

// newForecast returns a forecast of h zero steps for the quantiles, to be filled in.
func newForecast(h int, quantiles []float64) Forecast {
	f := Forecast{Mean: make([]float64, h), Quantiles: slices.Clone(quantiles), Values: make([][]float64, len(quantiles))}
	for i := range quantiles {
		f.Values[i] = make([]float64, h)
	}
	return f
}
