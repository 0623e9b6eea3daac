package forecast

import (
	"context"
	"errors"
	"math"
	"testing"
)

// fuzzSeries turns fuzzed bytes into a series that holds what real input can: two
// bytes a point, the first picking a special value (NaN, ±Inf, the smallest
// subnormal, ±MaxFloat64, zero) or, otherwise, the second times a scale picked by
// scale (from 1e-300 to 1e300), so that tiny, huge, constant and short series all come
// up. It is at most 400 points long.
func fuzzSeries(scale uint8, data []byte) []float64 {
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64, 0}
	scales := []float64{1e-300, 1e-6, 1, 1e3, 1e6, 1e300}
	s := scales[int(scale)%len(scales)]
	var y []float64
	for i := 0; i+1 < len(data) && len(y) < 400; i += 2 {
		if int(data[i]) < len(specials) {
			y = append(y, specials[data[i]])
			continue
		}
		y = append(y, float64(int8(data[i+1]))*s)
	}
	return y
}

// periods are the seasonal periods the fuzz target picks from.
var fuzzPeriods = []int{1, 2, 4, 7, 12, 24}

// FuzzForecastInput fits and forecasts fuzzed series with every model, as a batch does
// (Prepare, then Batch through the Fallback chain) and directly (New, Fit, Forecast).
// Bad data is a data error, never a panic: the batch answers a finite forecast or
// ErrNotFinite or ErrTooShort, and a model's Fit and Forecast return errors. Only the
// programmer errors that the package documents panic, and the target makes none.
func FuzzForecastInput(f *testing.F) {
	seasonal := make([]byte, 0, 200)
	for i := range 100 {
		seasonal = append(seasonal, 100, byte(10+i%24))
	}
	f.Add(uint8(0), uint8(2), uint8(5), uint8(12), seasonal)
	f.Add(uint8(1), uint8(3), uint8(2), uint8(8), []byte{100, 5, 100, 5, 100, 5, 100, 5}) // constant
	f.Add(uint8(2), uint8(1), uint8(5), uint8(4), []byte{100, 1})                         // one point
	f.Add(uint8(3), uint8(5), uint8(1), uint8(6), []byte{100, 1, 0, 0, 100, 3, 100, 4, 100, 9, 100, 2})
	f.Add(uint8(4), uint8(4), uint8(0), uint8(24), []byte{4, 0, 5, 0, 4, 0, 5, 0, 4, 0, 5, 0, 4, 0, 5, 0})
	f.Add(uint8(5), uint8(0), uint8(3), uint8(1), []byte{1, 0, 100, 2, 100, 3})
	f.Fuzz(func(t *testing.T, model, period, scale, horizon uint8, data []byte) {
		names := ModelNames()
		name := names[int(model)%len(names)]
		m := fuzzPeriods[int(period)%len(fuzzPeriods)]
		h := 1 + int(horizon)%48
		y := fuzzSeries(scale, data)
		quantiles := []float64{0.1, 0.5, 0.9}

		newModel, err := Prepare(name, [][]float64{y}, m, h)
		if err != nil {
			t.Fatalf("Prepare %s: %v", name, err)
		}
		res, err := Batch{NewModel: newModel, Horizon: h, Quantiles: quantiles, Workers: 1}.Run(context.Background(), []Job{{Y: y, Period: m}})
		switch {
		case errors.Is(err, ErrNotFinite) || errors.Is(err, ErrTooShort):
		case err != nil:
			t.Fatalf("%s: batch error %v is not a data error", name, err)
		default:
			fc := res[0].Forecast
			if len(fc.Mean) != h || !fc.finite() {
				t.Fatalf("%s (answered by %s): %d steps, finite %v: %v", name, res[0].Model, len(fc.Mean), fc.finite(), fc.Mean)
			}
		}

		direct, err := New(name, m)
		if err != nil {
			return // a global model: Prepare covered it
		}
		if err := direct.Fit(y); err != nil {
			return
		}
		if fc, err := direct.Forecast(h, quantiles); err == nil && len(fc.Mean) != h {
			t.Fatalf("%s: %d steps for a horizon of %d", name, len(fc.Mean), h)
		}
	})
}
