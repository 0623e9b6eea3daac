package forecast

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Theta is the standard Theta method of Assimakopoulos and Nikolopoulos (2000), the
// M4 competition's benchmark, computed as R's forecast::thetaf (forecast 8.20) does.
// Hyndman and Billah (2003) showed that it is simple exponential smoothing (SES) with
// a drift of half the slope of the linear trend, which is how it is computed here:
//
//  1. Seasonality test (Assimakopoulos and Nikolopoulos 2000; thetaf): when m > 1, the
//     series is not constant and n > 2m, the series is seasonal if
//     |r_m| > 1.645·√((1 + 2·Σ_{k<m} r_k²)/n), r_k the lag-k autocorrelation (a 90%
//     one-sided test).
//  2. A seasonal series is divided by the indices of a classical multiplicative
//     decomposition (see seasonalIndices); the forecasts are multiplied back.
//  3. On the adjusted series x: SES with α and the initial level ℓ₀ chosen to
//     minimise the in-sample sum of squared one-step errors, as ses() does through
//     ets(x, "ANN", opt.crit = "mse"), with α in [1e-4, 0.9999] like ets' bounds.
//  4. ŷ[n+h] = ℓ_n + b/2·(h − 1 + (1 − (1−α)ⁿ)/α), b the OLS slope of x on t.
//  5. Prediction intervals are those of SES, ŷ ± z·σ·√(1 + α²(h−1)), σ² = SSE/(n−2)
//     as in ets. Like thetaf, the standard error is that of the adjusted series and is
//     not multiplied by the seasonal index: the band is centred on the reseasonalised
//     forecast with the width of the adjusted one.
//
// Deviations from thetaf, all outside the data it is usually used on:
//   - multiplicative decomposition needs positive data, so a series holding a value
//     ≤ 0 is never deseasonalised (thetaf would divide by meaningless indices);
//   - α is found by a profile search (ℓ₀ in closed form, α by a grid and Brent's
//     method) rather than ets' Nelder–Mead; both aim at the same minimum, so results
//     agree to optimiser tolerance;
//   - for n ≤ 6, ets falls back to HoltWinters (ℓ₀ = y₁); Theta keeps the same SES
//     fit for every length.
//
// Fit needs at least 3 points, so that σ² has a degree of freedom.
type Theta struct {
	// Period is the seasonal period m, at least 1; 1 means non-seasonal.
	Period int

	n        int       // length of the fitted series
	alpha    float64   // SES smoothing parameter
	level    float64   // SES level after the last observation
	drift    float64   // half the OLS slope of the adjusted series
	sigma2   float64   // one-step error variance of the SES fit
	seasonal []float64 // multiplicative indices by position mod m, nil if not seasonal
}

// ThetaMinLength is the fewest points Theta.Fit accepts: SES estimates two
// parameters (α and ℓ₀), and σ² = SSE/(n−2) needs n > 2.
const ThetaMinLength = 3

// Bounds on α, those of ets' "usual" region (lower = 1e-4, upper = 0.9999).
const (
	thetaAlphaMin = 1e-4
	thetaAlphaMax = 0.9999
)

// Fit tests y for seasonality, deseasonalises it if needed and fits SES with drift.
func (s *Theta) Fit(y []float64) error {
	m := s.Period
	if m < 1 {
		panic("forecast: Theta.Period must be at least 1")
	}
	n := len(y)
	if n < ThetaMinLength {
		return ErrTooShort
	}
	if err := requireFinite(y); err != nil {
		return err
	}

	x, idx := m4Deseasonalise(y, m)
	alpha, level, sse := thetaFitSES(x)
	s.n = n
	s.alpha = alpha
	s.level = level
	s.drift = thetaSlope(x) / 2
	s.sigma2 = sse / float64(n-2)
	s.seasonal = idx
	return nil
}

// Forecast projects h steps with the given quantiles.
func (s *Theta) Forecast(h int, quantiles []float64) (Forecast, error) {
	checkForecastCall(s.n > 0, h, quantiles)
	f := newForecast(h, quantiles)
	z := make([]float64, len(quantiles))
	for i, q := range quantiles {
		z[i] = distuv.UnitNormal.Quantile(q)
	}
	a := s.alpha
	// Hyndman and Billah (2003): averaging the θ=0 line (the OLS trend) with SES on
	// the θ=2 line gives SES plus b/2·(h−1+(1−(1−α)ⁿ)/α); thetaf codes it so.
	offset := (1 - math.Pow(1-a, float64(s.n))) / a
	sigma := math.Sqrt(s.sigma2)
	for t := range h {
		point := s.level + s.drift*(float64(t)+offset)
		if s.seasonal != nil {
			point *= s.seasonal[(s.n+t)%s.Period]
		}
		f.Mean[t] = point
		se := sigma * math.Sqrt(1+a*a*float64(t))
		for i := range quantiles {
			f.Values[i][t] = point + z[i]*se
		}
	}
	return f, nil
}

// thetaSlope is the least-squares slope of x on t = 0, …, n−1 (thetaf's
// lsfit(0:(n-1), x)); n ≥ 2.
func thetaSlope(x []float64) float64 {
	n := float64(len(x))
	tbar := (n - 1) / 2
	var xbar float64
	for _, v := range x {
		xbar += v
	}
	xbar /= n
	var sxy float64
	for t, v := range x {
		sxy += (float64(t) - tbar) * (v - xbar)
	}
	stt := n * (n*n - 1) / 12 // Σ (t − t̄)² for t = 0, …, n−1
	return sxy / stt
}

// thetaFitSES fits simple exponential smoothing ℓ_t = ℓ_{t−1} + α(x_t − ℓ_{t−1})
// by least squares on the one-step errors, returning α, the level after the last
// point and the sum of squared errors.
//
// For fixed α the errors are linear in ℓ₀, e_t = a_t − (1−α)^t·ℓ₀ with a_t the errors
// of a run started at ℓ₀ = 0, so the best ℓ₀ has a closed form and the SSE profile in α
// is a 1-D function (thetaSESProfile). It is minimised by a grid over [1e-4, 0.9999] and
// Brent's method around the best grid point: deterministic, O(n) per step, and
// the joint minimum that ets' Nelder–Mead looks for.
func thetaFitSES(x []float64) (alpha, level, sse float64) {
	// Work relative to the first value: the profile subtracts two sums of squares,
	// and a level far from zero would cost precision there.
	shift := x[0]
	profile := func(a float64) float64 {
		v, _ := thetaSESProfile(x, shift, a)
		return v
	}

	// The grid guards against a local minimum (the profile need not be unimodal);
	// Brent then refines within the two cells around the best grid point.
	const grid = 10
	best, bestV := 0, math.Inf(1)
	pts := make([]float64, grid+1)
	for i := range pts {
		pts[i] = thetaAlphaMin + (thetaAlphaMax-thetaAlphaMin)*float64(i)/grid
		if v := profile(pts[i]); v < bestV {
			best, bestV = i, v
		}
	}
	alpha = pts[best]
	// A minimum on a bound is common (α → 0.9999 for persistent hourly series).
	// Brent only creeps up to a bound, so when the profile still falls at the bound,
	// take it, as ets does; otherwise refine.
	atBound := false
	switch best {
	case 0:
		atBound = bestV <= profile(alpha+1e-7)
	case grid:
		atBound = bestV <= profile(alpha-1e-7)
	}
	if !atBound {
		a := brentMin(profile, pts[max(best-1, 0)], pts[min(best+1, grid)], 1e-8)
		if profile(a) < bestV {
			alpha = a
		}
	}

	_, l0 := thetaSESProfile(x, shift, alpha)
	level = l0 + shift
	for _, v := range x {
		e := v - level
		sse += e * e
		level += alpha * e
	}
	return alpha, level, sse
}

// thetaSESProfile returns the SSE of SES with smoothing α on x − shift at the best
// initial level, and that level (on the shifted scale).
func thetaSESProfile(x []float64, shift, alpha float64) (sse, l0 float64) {
	var la, saa, sac, scc float64
	c, beta := 1.0, 1-alpha
	for _, v := range x {
		a := v - shift - la
		saa += a * a
		sac += a * c
		scc += c * c
		la += alpha * a
		// Flush (1−α)^t to zero long before c² turns subnormal: its weight is nil
		// beside c₀ = 1, and subnormal arithmetic is many times slower.
		if c *= beta; c < 1e-100 {
			c = 0
		}
	}
	l0 = sac / scc
	return max(saa-sac*l0, 0), l0
}

// brentMin minimises f on [a, b] by Brent's method (golden-section steps with
// parabolic interpolation), as R's optimize() does (Brent 1973, the Forsythe, Malcolm
// and Moler fmin routine). It converges in far fewer evaluations than golden-section
// alone on the smooth SSE profile.
func brentMin(f func(float64) float64, a, b, tol float64) float64 {
	const (
		cgold = 0.3819660112501051     // (3 − √5)/2
		eps   = 1.4901161193847656e-08 // √(machine epsilon)
	)
	x := a + cgold*(b-a)
	w, v := x, x
	fx := f(x)
	fw, fv := fx, fx
	var d, e float64
	for {
		xm := (a + b) / 2
		tol1 := eps*math.Abs(x) + tol/3
		tol2 := 2 * tol1
		if math.Abs(x-xm) <= tol2-(b-a)/2 {
			return x
		}
		golden := true
		if math.Abs(e) > tol1 {
			// Parabola through (v, fv), (w, fw), (x, fx).
			r := (x - w) * (fx - fv)
			q := (x - v) * (fx - fw)
			p := (x-v)*q - (x-w)*r
			q = 2 * (q - r)
			if q > 0 {
				p = -p
			} else {
				q = -q
			}
			r, e = e, d
			if math.Abs(p) < math.Abs(q*r/2) && p > q*(a-x) && p < q*(b-x) {
				golden = false
				d = p / q
				if u := x + d; u-a < tol2 || b-u < tol2 {
					d = math.Copysign(tol1, xm-x)
				}
			}
		}
		if golden {
			if x < xm {
				e = b - x
			} else {
				e = a - x
			}
			d = cgold * e
		}
		u := x + d
		if math.Abs(d) < tol1 {
			u = x + math.Copysign(tol1, d)
		}
		fu := f(u)
		if fu <= fx {
			if u < x {
				b = x
			} else {
				a = x
			}
			v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
			continue
		}
		if u < x {
			a = u
		} else {
			b = u
		}
		if fu <= fw || w == x {
			v, fv, w, fw = w, fw, u, fu
		} else if fu <= fv || v == x || v == w {
			v, fv = u, fu
		}
	}
}

// Name returns "theta".
func (s *Theta) Name() string { return "theta" }
