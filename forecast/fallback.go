package forecast

import (
	"fmt"
	"math"
	"slices"
)

// Named is a model that says what it is. A model that chooses among several (AutoETS,
// a combination) says what it chose, after Fit.
type Named interface {
	Name() string
}

// NameOf returns a model's name, or its Go type where it has none.
func NameOf(m Model) string {
	if n, ok := m.(Named); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T", m)
}

// Name returns "snaive<period>".
func (s *SeasonalNaive) Name() string { return fmt.Sprintf("snaive%d", s.Period) }

// Fallback is how a series that a model cannot take still gets a forecast, never a NaN
// one. It fits Primary; when the data is too short for it or the fit fails, it falls
// back to the seasonal naive of Period, then to the naive forecast (the last value, with
// intervals from the one-step differences), and at last, for a single point, to that
// point with no spread. Used and Reason say what answered and why. Missing points (NaN)
// are filled first; only an infinity is refused, with ErrNotFinite, and a series with
// no point at all, with ErrTooShort.
type Fallback struct {
	Primary Model
	// Period is the seasonal period for the seasonal naive fallback.
	Period int
	// NonNegative clips the fallbacks' forecasts at zero, for counts.
	NonNegative bool

	y      []float64
	chain  []Model
	next   int
	active Model
	// Used is the name of the model that answered.
	Used string
	// Reason is why the primary model did not answer, nil when it did.
	Reason error
}

// Fit fills y's missing points (FillMissing) and fits the first model in the chain
// that takes it.
func (f *Fallback) Fit(y []float64) error {
	y, err := FillMissing(y)
	if err != nil {
		return err
	}
	f.y, f.Reason = y, nil
	f.chain = []Model{f.Primary}
	if f.Period > 1 {
		f.chain = append(f.chain, &SeasonalNaive{Period: f.Period, NonNegative: f.NonNegative})
	}
	f.chain = append(f.chain, &SeasonalNaive{Period: 1, NonNegative: f.NonNegative}, &lastValue{})
	f.next = 0
	return f.fitNext()
}

// fitNext fits the chain's models in turn, from f.next, until one takes the series.
func (f *Fallback) fitNext() error {
	for f.next < len(f.chain) {
		m := f.chain[f.next]
		f.next++
		err := m.Fit(f.y)
		if err == nil {
			f.active, f.Used = m, NameOf(m)
			return nil
		}
		f.fail(m, err)
	}
	return f.Reason
}

func (f *Fallback) fail(m Model, err error) {
	if f.Reason == nil {
		f.Reason = fmt.Errorf("%s: %w", NameOf(m), err)
	}
}

// Forecast forecasts with the model that fitted. A model that fitted but then fails
// or returns a non-finite number hands over to the next one in the chain.
func (f *Fallback) Forecast(h int, quantiles []float64) (Forecast, error) {
	if f.active == nil {
		panic("forecast: Forecast called before Fit")
	}
	for {
		fc, err := f.active.Forecast(h, quantiles)
		if err == nil && fc.finite() {
			return fc, nil
		}
		if err == nil {
			err = ErrNotFinite
		}
		f.fail(f.active, err)
		if err := f.fitNext(); err != nil {
			return Forecast{}, err
		}
	}
}

// Active is the model that answered, nil before Fit.
func (f *Fallback) Active() Model { return f.active }

// Name is the name of the model that answered.
func (f *Fallback) Name() string { return f.Used }

func (fc Forecast) finite() bool {
	if requireFinite(fc.Mean) != nil {
		return false
	}
	for _, v := range fc.Values {
		if requireFinite(v) != nil {
			return false
		}
	}
	return true
}

// lastValue carries a single point forward with no spread: all that one point says.
type lastValue struct{ v float64 }

func (l *lastValue) Name() string { return "last" }

func (l *lastValue) Fit(y []float64) error {
	if len(y) == 0 {
		return ErrTooShort
	}
	l.v = y[len(y)-1]
	return nil
}

func (l *lastValue) Forecast(h int, quantiles []float64) (Forecast, error) {
	fc := Forecast{Mean: make([]float64, h), Quantiles: slices.Clone(quantiles), Values: make([][]float64, len(quantiles))}
	for t := range h {
		fc.Mean[t] = l.v
	}
	for i := range quantiles {
		fc.Values[i] = slices.Clone(fc.Mean)
	}
	return fc, nil
}

// requireFinite returns ErrNotFinite if y holds a NaN or an infinity.
func requireFinite(y []float64) error {
	for _, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ErrNotFinite
		}
	}
	return nil
}
