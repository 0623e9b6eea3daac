package forecast

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// MSTLDecomposition is y = Trend + Σ Seasonal[i] + Remainder, with Seasonal[i] the
// component of period Periods[i].
type MSTLDecomposition struct {
	// Periods are the periods decomposed, ascending: those asked for that are at
	// least 2 and fit more than two cycles in the series.
	Periods   []int
	Trend     []float64
	Seasonal  [][]float64
	Remainder []float64
}

// Adjusted returns the seasonally adjusted series, Trend + Remainder.
func (d MSTLDecomposition) Adjusted() []float64 {
	a := make([]float64, len(d.Trend))
	for t := range a {
		a[t] = d.Trend[t] + d.Remainder[t]
	}
	return a
}

// DecomposeMSTL decomposes y into a trend, one seasonal component for each of periods
// and a remainder by MSTL (Bandara, Hyndman and Bergmeir, "MSTL: A Seasonal-Trend
// Decomposition Algorithm for Time Series with Multiple Seasonal Patterns", 2021, §3,
// Algorithm 1), as R's forecast::mstl does it:
//
//   - periods are sorted ascending; a period below 2 is no seasonality and is ignored,
//     and one with fewer than two full cycles in y (2·period ≥ n) is dropped, as R
//     drops it (its stl could not decompose it);
//   - each seasonal component is estimated in turn by STL of period p_i with
//     s.window = 7 + 4i (i from 1, R's default 7 + 4·seq(6)) on the series less the
//     other seasonal components, and the whole round is repeated iterate times (R's
//     iterate = 2; at least 1, and only once for a single period, where a second
//     round would repeat the first);
//   - the trend is that of the last STL, and the remainder what is left.
//
// With no seasonal period asked for, it returns y as the trend and a zero remainder
// (R smooths it with supsmu; only their sum, the adjusted series, matters to a
// forecast). It returns ErrNotFinite for a NaN or infinity, and ErrTooShort when every
// seasonal period asked for was dropped.
func DecomposeMSTL(y []float64, periods []int, iterate int) (MSTLDecomposition, error) {
	if err := requireFinite(y); err != nil {
		return MSTLDecomposition{}, err
	}
	n := len(y)
	var used []int
	asked := false
	for _, p := range periods {
		if p < 2 {
			continue
		}
		asked = true
		if 2*p < n && !slices.Contains(used, p) {
			used = append(used, p)
		}
	}
	slices.Sort(used)
	d := MSTLDecomposition{Periods: used, Seasonal: make([][]float64, len(used)), Remainder: make([]float64, n)}
	if len(used) == 0 {
		if asked || n == 0 {
			return MSTLDecomposition{}, ErrTooShort
		}
		d.Trend = slices.Clone(y)
		return d, nil
	}
	if len(used) == 1 {
		iterate = 1
	}
	deseas := slices.Clone(y)
	for i := range used {
		d.Seasonal[i] = make([]float64, n)
	}
	var fit STLResult
	for range max(1, iterate) {
		for i, p := range used {
			// Put this component back, re-estimate it from the series less the
			// others, and take it out again (Algorithm 1, lines 6–9).
			for t := range deseas {
				deseas[t] += d.Seasonal[i][t]
			}
			var err error
			fit, err = NewSTL(p, 7+4*(i+1), false).Decompose(deseas)
			if err != nil {
				return MSTLDecomposition{}, err
			}
			d.Seasonal[i] = fit.Seasonal
			for t := range deseas {
				deseas[t] -= d.Seasonal[i][t]
			}
		}
	}
	d.Trend = fit.Trend
	for t := range deseas {
		d.Remainder[t] = deseas[t] - d.Trend[t]
	}
	return d, nil
}

// MSTL forecasts a series with several seasonal periods, such as hourly data with a
// daily (24) and a weekly (168) cycle, as R's forecast(mstl(y)) does (Hyndman and
// Athanasopoulos, FPP3 §12.1; forecast::forecast.mstl): it decomposes the series by
// DecomposeMSTL, forecasts the seasonally adjusted series (trend + remainder) with a
// non-seasonal model, and adds to it each seasonal component continued by the
// seasonal naive method, its last cycle repeated. The seasonal components are treated
// as known, so the quantiles are the adjusted model's shifted by the seasonal parts.
//
// A series too short for even the smallest period (two full cycles are needed) is
// refused with ErrTooShort, as R's stl refuses it, so that a Fallback can answer with
// something simpler; a longer period that does not fit twice is dropped. With no
// period of at least 2 (a non-seasonal series), MSTL is the Adjusted model alone.
//
// New("mstl", period) uses MSTLPeriods(period) and, for the adjusted series, AutoETS
// restricted to non-seasonal models (Period 1), which is what R's forecast.mstl does by
// default (method = "ets", etsmodel = "ZZN"). On the 414 M4 hourly series it scored
// OWA 0.609 against 0.627 for the nil default below, 0.615 with Theta and 0.643 with
// the naive method (the seasonal naive alone: 0.628).
type MSTL struct {
	// Periods are the seasonal periods, in any order.
	Periods []int
	// Adjusted forecasts the seasonally adjusted series; it should be non-seasonal.
	// Nil means a damped trend method (additive-error ETS(A,Ad,N), Hyndman et al.
	// 2008, Table 2.1) fitted by least squares, with Gaussian quantiles.
	Adjusted Model

	dec MSTLDecomposition
	adj Model
	n   int
}

// Fit decomposes y and fits the adjusted model to its seasonally adjusted part.
func (m *MSTL) Fit(y []float64) error {
	m.adj = nil
	d, err := DecomposeMSTL(y, m.Periods, 2)
	if err != nil {
		return err
	}
	adj := m.Adjusted
	if adj == nil {
		adj = &mstlTrend{Kind: mstlDamped}
	}
	if err := adj.Fit(d.Adjusted()); err != nil {
		return err
	}
	m.dec, m.adj, m.n = d, adj, len(y)
	return nil
}

// Refit decomposes y again and refits the adjusted model in the form it chose last
// (see Refitter).
func (m *MSTL) Refit(y []float64) error {
	if m.adj == nil {
		return m.Fit(y)
	}
	d, err := DecomposeMSTL(y, m.Periods, 2)
	if err != nil {
		return err
	}
	if err := refit(m.adj, d.Adjusted()); err != nil {
		return err
	}
	m.dec, m.n = d, len(y)
	return nil
}

// Forecast forecasts the adjusted series and adds each seasonal component's last cycle,
// repeated. It returns ErrNotFinite if the adjusted model's forecast is not finite.
func (m *MSTL) Forecast(h int, quantiles []float64) (Forecast, error) {
	checkForecastCall(m.adj != nil, h, quantiles)
	f, err := m.adj.Forecast(h, quantiles)
	if err != nil {
		return Forecast{}, err
	}
	if !f.finite() {
		return Forecast{}, ErrNotFinite
	}
	seasonal := make([]float64, h)
	for i, p := range m.dec.Periods {
		s := m.dec.Seasonal[i]
		for t := range h {
			seasonal[t] += s[m.n-p+t%p]
		}
	}
	for t := range h {
		f.Mean[t] += seasonal[t]
		for i := range f.Values {
			f.Values[i][t] += seasonal[t]
		}
	}
	return f, nil
}

// Decomposition returns the decomposition of the series last fitted.
func (m *MSTL) Decomposition() MSTLDecomposition { return m.dec }

// Name returns "mstl(p1,p2,…)+<adjusted model>" after Fit, with the periods used, and
// "mstl(p1,p2,…)" before (a model such as AutoETS can name itself only once fitted).
func (m *MSTL) Name() string {
	periods := m.Periods
	if m.adj != nil {
		periods = m.dec.Periods
	}
	s := make([]string, len(periods))
	for i, p := range periods {
		s[i] = strconv.Itoa(p)
	}
	name := "mstl(" + strings.Join(s, ",") + ")"
	if m.adj != nil {
		name += "+" + NameOf(m.adj)
	}
	return name
}

// MSTLPeriods are the seasonal periods the "mstl" model of New uses for a series of
// the given period: hourly data (24) also gets the weekly cycle, 7·24 = 168, as in
// Bandara et al.'s and FPP3's hourly examples; any other period is used alone.
func MSTLPeriods(period int) []int {
	if period == 24 {
		return []int{24, 7 * 24}
	}
	return []int{period}
}

// mstlTrendKind is the trend of mstlTrend.
type mstlTrendKind int

const (
	mstlLevel  mstlTrendKind = iota // simple exponential smoothing, ETS(A,N,N)
	mstlLinear                      // Holt's linear trend, ETS(A,A,N)
	mstlDamped                      // damped trend, ETS(A,Ad,N)
	mstlAuto                        // level or damped trend, by AICc
)

// mstlTrend is MSTL's default model of the seasonally adjusted series: exponential
// smoothing with an additive, optionally damped, trend, in the state-space form of
// Hyndman, Koehler, Ord and Snyder, "Forecasting with Exponential Smoothing" (2008),
// Table 2.1 (class 1):
//
//	ŷ[t] = ℓ[t−1] + φ b[t−1],  e[t] = y[t] − ŷ[t]
//	ℓ[t] = ℓ[t−1] + φ b[t−1] + α e[t]
//	b[t] = φ b[t−1] + β e[t]
//
// with φ = 1 for Holt's linear trend and b ≡ 0 for simple exponential smoothing. It is
// deliberately small: the initial level and slope are those of a least-squares line
// through the first 10 points (as R's ets starts them) rather than estimated, and α, β, φ minimise the one-step
// squared errors by a grid and then a compass search within R's ets bounds (α, β in
// [1e-4, 1), β ≤ α, φ in [0.8, 0.98]). mstlAuto fits the level and the damped trend
// and keeps the one with the lower AICc, n log(SSE/n) + 2kn/(n−k−1) with k the
// parameters, initial states and σ (op. cit. §7.1), as R's ets chooses. The h-step
// variance is σ²(1 + Σ_{j<h} c_j²) with c_j = α + β(φ + … + φ^j) (op. cit. §6.1), σ²
// the residual mean square, and the quantiles Gaussian.
type mstlTrend struct {
	Kind mstlTrendKind

	fit mstlTrendFit
}

// mstlTrendFit is one fitted trend kind.
type mstlTrendFit struct {
	kind             mstlTrendKind
	alpha, beta, phi float64
	level, slope     float64
	sigma, aicc      float64
}

func (m *mstlTrend) Name() string {
	kind := m.Kind
	if m.fit.sigma != 0 || m.fit.alpha != 0 {
		kind = m.fit.kind
	}
	switch kind {
	case mstlLevel:
		return "ses"
	case mstlLinear:
		return "holt"
	case mstlDamped:
		return "damped"
	default:
		return "ses|damped"
	}
}

// Fit fits the smoothing parameters to y. It needs 4 points.
func (m *mstlTrend) Fit(y []float64) error {
	if err := requireFinite(y); err != nil {
		return err
	}
	if len(y) < 4 {
		return ErrTooShort
	}
	kinds := []mstlTrendKind{m.Kind}
	if m.Kind == mstlAuto {
		kinds = []mstlTrendKind{mstlLevel, mstlDamped}
	}
	for i, k := range kinds {
		f := mstlFitTrend(y, k)
		if i == 0 || f.aicc < m.fit.aicc {
			m.fit = f
		}
	}
	return nil
}

// mstlFitTrend fits one kind of trend to y.
func mstlFitTrend(y []float64, kind mstlTrendKind) mstlTrendFit {
	l0, b0 := mstlInitialLine(y)
	dims := 3 // free coordinates: α, then β, then φ
	switch kind {
	case mstlLevel:
		b0, dims = 0, 1
	case mstlLinear:
		dims = 2
	}
	cost := func(x [3]float64) float64 {
		a, b, p := mstlTrendParams(kind, x)
		sse, _, _ := mstlTrendRun(y, a, b, p, l0, b0)
		return sse
	}
	// Coarse grid over (α, β/α, φ), then a compass search: halve the step in every
	// coordinate until it is small. Each evaluation is one pass over y.
	best, bestCost := [3]float64{0.5, 0.1, 0.5}, math.Inf(1)
	for _, a := range []float64{0.05, 0.2, 0.5, 0.8, 0.99} {
		for _, b := range []float64{0.01, 0.1, 0.5} {
			for _, p := range []float64{0.1, 0.5, 0.9} {
				x := [3]float64{a, b, p}
				if c := cost(x); c < bestCost {
					best, bestCost = x, c
				}
			}
		}
	}
	for step := 0.1; step > 1e-3; step /= 2 {
		for improved := true; improved; {
			improved = false
			for k := range dims {
				for _, s := range []float64{-step, step} {
					x := best
					x[k] = min(1, max(0, x[k]+s))
					if c := cost(x); c < bestCost {
						best, bestCost, improved = x, c, true
					}
				}
			}
		}
	}
	f := mstlTrendFit{kind: kind}
	f.alpha, f.beta, f.phi = mstlTrendParams(kind, best)
	sse, l, b := mstlTrendRun(y, f.alpha, f.beta, f.phi, l0, b0)
	f.level, f.slope = l, b
	n := float64(len(y))
	k := float64(dims + 2) // the smoothing parameters, ℓ0 and σ
	if kind != mstlLevel {
		k++ // b0
	}
	f.sigma = math.Sqrt(sse / max(1, n-k))
	// A perfect fit (a constant or a line) has SSE 0; floor it so that AICc stays
	// finite and the simpler model wins the tie.
	f.aicc = n*math.Log(max(sse, 1e-300)/n) + 2*k*n/max(1, n-k-1)
	return f
}

// mstlTrendParams maps the search coordinates, each in [0, 1], into the parameter
// bounds: α in [1e-4, 0.9999], β = x₁·α (so β ≤ α), φ in [0.8, 0.98].
func mstlTrendParams(kind mstlTrendKind, x [3]float64) (alpha, beta, phi float64) {
	alpha = 1e-4 + x[0]*(0.9999-1e-4)
	switch kind {
	case mstlLevel:
		return alpha, 0, 1
	case mstlLinear:
		return alpha, max(1e-4, x[1]*alpha), 1
	default:
		return alpha, max(1e-4, x[1]*alpha), 0.8 + x[2]*0.18
	}
}

// mstlInitialLine returns the intercept (at t = 0, one step before y[0]) and slope of
// the least-squares line through the first min(n, 10) points.
func mstlInitialLine(y []float64) (level, slope float64) {
	k := min(len(y), 10)
	var st, sy, stt, sty float64
	for t := range k {
		ft := float64(t + 1)
		st += ft
		sy += y[t]
		stt += ft * ft
		sty += ft * y[t]
	}
	fk := float64(k)
	den := fk*stt - st*st
	slope = (fk*sty - st*sy) / den
	return (sy - slope*st) / fk, slope
}

// mstlTrendRun runs the recursion over y and returns the one-step sum of squared
// errors and the final level and slope.
func mstlTrendRun(y []float64, alpha, beta, phi, l, b float64) (sse, level, slope float64) {
	for _, v := range y {
		e := v - (l + phi*b)
		l = l + phi*b + alpha*e
		b = phi*b + beta*e
		sse += e * e
	}
	return sse, l, b
}

// Forecast returns ℓ + (φ + … + φ^h) b with Gaussian quantiles.
func (m *mstlTrend) Forecast(h int, quantiles []float64) (Forecast, error) {
	checkForecastCall(true, h, quantiles)
	f := newForecast(h, quantiles)
	z := make([]float64, len(quantiles))
	for i, q := range quantiles {
		z[i] = distuv.UnitNormal.Quantile(q)
	}
	p := m.fit
	var phiSum, phiPow, cum float64 // φ_j = φ + … + φ^j, Σ c_j² for j < step
	phiPow = 1
	for t := range h {
		if t > 0 {
			c := p.alpha + p.beta*phiSum
			cum += c * c
		}
		phiPow *= p.phi
		phiSum += phiPow
		f.Mean[t] = p.level + phiSum*p.slope
		sd := p.sigma * math.Sqrt(1+cum)
		for i := range quantiles {
			f.Values[i][t] = f.Mean[t] + z[i]*sd
		}
	}
	return f, nil
}

// String describes the fitted parameters, for tests and logs.
func (m *mstlTrend) String() string {
	return fmt.Sprintf("%s(α=%.4g β=%.4g φ=%.4g σ=%.4g)", m.Name(), m.fit.alpha, m.fit.beta, m.fit.phi, m.fit.sigma)
}
