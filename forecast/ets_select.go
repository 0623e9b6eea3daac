package forecast

import (
	"math"
	"slices"
)

// AutoETS fits every admissible ETS model and keeps the one with the smallest AICc,
// as R's ets(y) does by default (Hyndman et al. 2008, §7.2; FPP2 §7.6):
//
//   - error A or M, trend N, A or Ad, season N, A or M;
//   - no multiplicative trend (R's allow.multiplicative.trend = FALSE);
//   - no additive error with multiplicative season (R's restrict = TRUE);
//   - no multiplicative error or season when the series has a value ≤ 0;
//   - no season when Period < 2 or the series is shorter than three seasons (the
//     initial decomposition needs them), and no model shorter than its minimum (see ETS).
//
// That is up to 15 candidates, each fitted like ETS (heuristic initial states,
// optimised smoothing parameters). A constant series gets ETS(A,N,N) with a flat
// forecast and zero-width quantiles, as R's ets does. Fit returns ErrTooShort when no
// candidate fits (fewer than 7 points).
type AutoETS struct {
	// Period is the seasonal period m; 1 or less for non-seasonal data.
	Period int
	// Window, if positive, fits on the last Window points only. ETS forgets the past at
	// the rate 1−α, so the far past costs time and adds little.
	Window int

	best *etsFit
	all  []ETSResult
}

// Fit fits all candidates and keeps the best by AICc.
func (a *AutoETS) Fit(y []float64) error {
	a.best, a.all = nil, nil
	if err := requireFinite(y); err != nil {
		return err
	}
	if a.Window > 0 && len(y) > a.Window {
		y = y[len(y)-a.Window:]
	}
	if len(y) == 0 {
		return ErrTooShort
	}
	if isConstant(y) {
		sp := etsSpec{err: ETSAdditive, trend: ETSNone, season: ETSNone, m: 1}
		if len(y) < sp.minLen() {
			return ErrTooShort
		}
		a.best = flatETS(y, sp)
		a.all = []ETSResult{a.best.res}
		return nil
	}
	bestIC := math.Inf(1)
	for _, sp := range a.candidates(y) {
		f, err := fitETS(y, sp, false)
		if err != nil {
			continue
		}
		a.all = append(a.all, f.res)
		if f.res.AICc < bestIC {
			bestIC, a.best = f.res.AICc, f
		}
	}
	if a.best == nil {
		return ErrTooShort
	}
	return nil
}

// candidates lists the model forms to try on y.
func (a *AutoETS) candidates(y []float64) []etsSpec {
	positive := slices.Min(y) > 0
	seasonal := a.Period >= 2 && len(y) >= 3*a.Period
	var out []etsSpec
	for _, e := range []ETSComponent{ETSAdditive, ETSMultiplicative} {
		if e == ETSMultiplicative && !positive {
			continue
		}
		for _, s := range []ETSComponent{ETSNone, ETSAdditive, ETSMultiplicative} {
			if s != ETSNone && !seasonal {
				continue
			}
			if s == ETSMultiplicative && (e == ETSAdditive || !positive) {
				continue
			}
			m := 1
			if s != ETSNone {
				m = a.Period
			}
			for _, t := range []struct {
				c      ETSComponent
				damped bool
			}{{ETSNone, false}, {ETSAdditive, false}, {ETSAdditive, true}} {
				sp := etsSpec{err: e, trend: t.c, season: s, damped: t.damped, m: m}
				if len(y) >= sp.minLen() {
					out = append(out, sp)
				}
			}
		}
	}
	return out
}

// Spec returns the chosen model's name, like "ETS(M,Ad,M)".
func (a *AutoETS) Spec() string { return a.Result().Spec }

// Result returns the chosen model's parameters and criteria. It panics before Fit.
func (a *AutoETS) Result() ETSResult {
	if a.best == nil {
		panic("forecast: AutoETS used before Fit")
	}
	r := a.best.res
	r.Init = slices.Clone(r.Init)
	return r
}

// Candidates returns every model fitted, in the order tried, for reports.
func (a *AutoETS) Candidates() []ETSResult {
	return slices.Clone(a.all)
}

// Forecast projects h steps with the chosen model; see ETS.Forecast.
func (a *AutoETS) Forecast(h int, quantiles []float64) (Forecast, error) {
	if a.best == nil {
		panic("forecast: Forecast called before Fit")
	}
	return a.best.forecast(h, quantiles), nil
}

// Name is the chosen model, e.g. "ETS(M,N,M)", or "ets" before a successful Fit.
func (a *AutoETS) Name() string {
	if a.best == nil {
		return "ets"
	}
	return a.Spec()
}

// Refit fits y with the model form the last Fit chose, without searching again; before
// a successful Fit, or if that form no longer fits, it searches as Fit does.
func (a *AutoETS) Refit(y []float64) error {
	if a.best == nil || a.best.res.Sigma2 == 0 {
		return a.Fit(y)
	}
	if err := requireFinite(y); err != nil {
		return err
	}
	if a.Window > 0 && len(y) > a.Window {
		y = y[len(y)-a.Window:]
	}
	f, err := fitETS(y, a.best.spec, false)
	if err != nil {
		return a.Fit(y)
	}
	a.best, a.all = f, []ETSResult{f.res}
	return nil
}
