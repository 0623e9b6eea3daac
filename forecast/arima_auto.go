package forecast

import (
	"errors"
	"math"
)

// errNoARIMA means every model the stepwise search tried failed or was rejected.
var errNoARIMA = errors.New("forecast: no admissible ARIMA model")

// AutoARIMA chooses a seasonal ARIMA model as R's forecast::auto.arima does with its
// defaults (Hyndman and Khandakar 2008, "Automatic time series forecasting: the
// forecast package for R", JSS 27(3), §3.2; forecast 8.20):
//
//  1. D, the seasonal differences (0 or 1), by nsdiffs' default "seas" test: D = 1
//     when the seasonal strength of an STL decomposition exceeds 0.64 (see
//     seasonalStrength); D = 0 when m = 1 or n ≤ 2m.
//  2. d, the first differences (0 to 2) of the seasonally differenced series, by
//     ndiffs' repeated KPSS level tests at 5% (see kpssStat).
//  3. A constant (a mean when d+D = 0, a drift when d+D = 1) is allowed when d+D ≤ 1.
//  4. The stepwise search of §3.2: the four starting models ARIMA(2,d,2)(1,D,1),
//     (0,d,0)(0,D,0), (1,d,0)(1,D,0), (0,d,1)(0,D,1) with the constant, and
//     (0,d,0)(0,D,0) without it; then, from the best so far, the neighbours that
//     change P and/or Q by ±1, then p and/or q by ±1, then the constant, in
//     auto.arima's order, moving to the first that lowers the AICc, until none does
//     or 94 models have been fitted. max.p = max.q = 5 (at most m−1 when seasonal),
//     max.P = max.Q = 2. As in auto.arima's stepwise code, max.order is not applied.
//  5. A model is rejected when a root of its AR or MA polynomial lies within radius
//     1.01 (myarima's test; see arimaAdmissible).
//
// Deviations from auto.arima, for speed (a fit must take tens of milliseconds on 500
// hourly points, where auto.arima takes 2–49 s):
//   - Every model is fitted by CSS and ranked by auto.arima's CSS approximation to
//     the AICc (approximation = TRUE; see cssIC), whatever the length or period: R
//     uses CSS only for n > 150 or m > 12 and then refits the winner by exact ML;
//     here the CSS fit is kept. On short series this can pick a different, nearly as
//     good model than R.
//   - myarima's check that the Hessian-based variances are finite is not made.
//   - Window, when set, fits on the last Window points only (R's "truncate" applies
//     only to the offset fit).
//
// Fit returns ErrTooShort when the series is too short for any model.
type AutoARIMA struct {
	// Period is the seasonal period m; 1 or less for non-seasonal data.
	Period int
	// Window, if positive, fits on the last Window points only.
	Window int

	best  *arimaFit
	tried []ARIMAResult
}

// Fit chooses the differencing, searches the orders and keeps the best model.
func (a *AutoARIMA) Fit(y []float64) error {
	a.best, a.tried = nil, nil
	if err := requireFinite(y); err != nil {
		return err
	}
	if a.Window > 0 && len(y) > a.Window {
		y = y[len(y)-a.Window:]
	}
	if len(y) < 3 {
		return ErrTooShort
	}
	m := max(a.Period, 1)
	if isConstant(y) {
		f, err := fitARIMA(y, arimaSpec{m: 1, constant: true}, 0, cssTolFine, cssIterFine)
		if err != nil {
			return err
		}
		a.best = f
		return nil
	}
	D := 0
	if m > 1 && len(y) > 2*m && seasonalStrength(y, m) > 0.64 {
		D = 1
	}
	dx := difference(y, 0, D, m)
	d := ndiffs(dx, 2)
	base := arimaSpec{d: d, sd: D, m: m}.normalise()
	if dx = difference(dx, d, 0, 1); len(dx) < 3 {
		return ErrTooShort
	}
	if isConstant(dx) {
		base.constant = true
		f, err := fitARIMA(y, base.normalise(), 0, cssTolFine, cssIterFine)
		if err != nil {
			return err
		}
		a.best = f
		return nil
	}
	maxp, maxq, maxP, maxQ := 5, 5, 2, 2
	if m == 1 {
		maxP, maxQ = 0, 0
	} else {
		maxp, maxq = min(maxp, m-1), min(maxq, m-1)
	}
	allowConst := d+D <= 1
	base.constant = allowConst
	offset := cssOffset(y, base)

	bestIC := math.Inf(1)
	seen := map[arimaSpec]bool{}
	try := func(s arimaSpec) float64 {
		s = s.normalise()
		seen[s] = true
		f, err := fitARIMA(y, s, offset, cssTolSearch, cssIterSearch)
		if err != nil {
			return math.Inf(1)
		}
		ic := f.aicc
		if math.IsNaN(ic) || !arimaAdmissible(f.par, s) {
			ic = math.Inf(1)
		}
		r := f.result()
		r.AICc = ic
		a.tried = append(a.tried, r)
		if ic < bestIC {
			bestIC, a.best = ic, f
		}
		return ic
	}
	isNew := func(s arimaSpec) bool { return !seen[s.normalise()] }

	// The starting models (§3.2 step 1), in auto.arima's order.
	cur := base
	cur.p, cur.q, cur.sp, cur.sq = min(2, maxp), min(2, maxq), min(1, maxP), min(1, maxQ)
	if len(y) < 10 {
		cur.p, cur.q, cur.sp, cur.sq = min(cur.p, 1), min(cur.q, 1), 0, 0
	}
	curIC := try(cur)
	starts := []arimaSpec{base}
	if maxp > 0 || maxP > 0 {
		s := base
		s.p, s.sp = min(1, maxp), min(1, maxP)
		starts = append(starts, s)
	}
	if maxq > 0 || maxQ > 0 {
		s := base
		s.q, s.sq = min(1, maxq), min(1, maxQ)
		starts = append(starts, s)
	}
	if allowConst {
		s := base
		s.constant = false
		starts = append(starts, s)
	}
	for _, s := range starts {
		if ic := try(s); ic < curIC {
			cur, curIC = s, ic
		}
	}
	k := 1 + len(starts)

	// The neighbourhood search (§3.2 step 2), in auto.arima's order.
	const nmodels = 94
	moves := [][4]int{ // Δp, Δq, ΔP, ΔQ
		{0, 0, -1, 0}, {0, 0, 0, -1}, {0, 0, 1, 0}, {0, 0, 0, 1},
		{0, 0, -1, -1}, {0, 0, -1, 1}, {0, 0, 1, -1}, {0, 0, 1, 1},
		{-1, 0, 0, 0}, {0, -1, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0},
		{-1, -1, 0, 0}, {-1, 1, 0, 0}, {1, -1, 0, 0}, {1, 1, 0, 0},
	}
	for startk := 0; startk < k && k < nmodels; {
		startk = k
		moved := false
		for _, mv := range moves {
			s := cur
			s.p, s.q, s.sp, s.sq = s.p+mv[0], s.q+mv[1], s.sp+mv[2], s.sq+mv[3]
			if s.p < 0 || s.q < 0 || s.sp < 0 || s.sq < 0 || s.p > maxp || s.q > maxq || s.sp > maxP || s.sq > maxQ {
				continue
			}
			if !isNew(s) {
				continue
			}
			if k++; k > nmodels {
				break
			}
			if ic := try(s); ic < curIC {
				cur, curIC, moved = s, ic, true
				break
			}
		}
		if moved || k > nmodels || !allowConst {
			continue
		}
		s := cur
		s.constant = !s.constant
		if isNew(s) {
			if k++; k > nmodels {
				continue
			}
			if ic := try(s); ic < curIC {
				cur, curIC = s, ic
			}
		}
	}
	if a.best == nil {
		if len(a.tried) == 0 {
			return ErrTooShort
		}
		return errNoARIMA
	}
	// Refit the winner to full precision, as auto.arima refits its winner without
	// the approximation; keep the search's fit if the refit is not admissible.
	if f, err := fitARIMA(y, a.best.spec, offset, cssTolFine, cssIterFine); err == nil && arimaAdmissible(f.par, f.spec) {
		a.best = f
	}
	return nil
}

// Forecast projects h steps with the chosen model; see ARIMA.
func (a *AutoARIMA) Forecast(h int, quantiles []float64) (Forecast, error) {
	if a.best == nil {
		panic("forecast: Forecast called before Fit")
	}
	return a.best.forecast(h, quantiles)
}

// Name is the chosen model, e.g. "ARIMA(3,0,1)(2,1,0)[24] with drift".
func (a *AutoARIMA) Name() string {
	if a.best == nil {
		return "auto.arima"
	}
	return a.best.spec.String()
}

// Result returns the chosen model's coefficients and criteria. It panics before Fit.
func (a *AutoARIMA) Result() ARIMAResult {
	if a.best == nil {
		panic("forecast: AutoARIMA used before Fit")
	}
	return a.best.result()
}

// Tried returns every model the search fitted, in order, with its AICc (+Inf when
// rejected), for reports and tests.
func (a *AutoARIMA) Tried() []ARIMAResult { return a.tried }

// seasonalStrength is nsdiffs' "seas" statistic (forecast:::seas.heuristic; Wang,
// Smith and Hyndman 2006): max(0, 1 − Var(R)/Var(S + R)) for the seasonal S and
// remainder R of R's mstl on a single-period series, which is stl with s.window = 11.
func seasonalStrength(y []float64, m int) float64 {
	r, err := NewSTL(m, 11, false).Decompose(y)
	if err != nil {
		return 0
	}
	sr := make([]float64, len(y))
	for i := range sr {
		sr[i] = r.Seasonal[i] + r.Remainder[i]
	}
	vs := variance(sr)
	if !(vs > 0) {
		return 0
	}
	return max(0, min(1, 1-variance(r.Remainder)/vs))
}

func variance(x []float64) float64 {
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	var s float64
	for _, v := range x {
		s += (v - mean) * (v - mean)
	}
	return s / float64(len(x)-1)
}

// kpssCrit5 is the 5% critical value of the KPSS level statistic (Kwiatkowski et al.
// 1992, Table 1). ndiffs differences when urca's interpolated p-value is below 0.05,
// which is exactly when the statistic exceeds it.
const kpssCrit5 = 0.463

// kpssStat is the KPSS statistic for level stationarity (Kwiatkowski, Phillips,
// Schmidt and Shin 1992, eq. 11), as urca::ur.kpss(type = "mu") computes it with
// ndiffs' lag truncation l = ⌊3√n/13⌋: η = Σ S_t²/(n²·s²(l)), S_t the partial sums of
// the demeaned series e and s²(l) = (Σe²)/n + (2/n)·Σ_{i=1}^{l} (1 − i/(l+1))·
// Σ_{t>i} e_t e_{t−i} the Newey–West long-run variance with Bartlett weights.
func kpssStat(x []float64) float64 {
	n := len(x)
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(n)
	e := make([]float64, n)
	var eta, S, s2 float64
	for t, v := range x {
		e[t] = v - mean
		S += e[t]
		eta += S * S
		s2 += e[t] * e[t]
	}
	eta /= float64(n) * float64(n)
	l := int(3 * math.Sqrt(float64(n)) / 13)
	for i := 1; i <= l; i++ {
		var c float64
		for t := i; t < n; t++ {
			c += e[t] * e[t-i]
		}
		s2 += 2 * (1 - float64(i)/float64(l+1)) * c
	}
	s2 /= float64(n)
	return eta / s2
}

// ndiffs is forecast::ndiffs with its defaults: difference while the KPSS test
// rejects level stationarity at 5%, at most maxD times, stopping at a constant series.
func ndiffs(x []float64, maxD int) int {
	d := 0
	if len(x) < 2 || isConstant(x) {
		return 0
	}
	for d < maxD && kpssStat(x) > kpssCrit5 {
		d++
		x = difference(x, 1, 0, 1)
		if len(x) < 2 || isConstant(x) {
			return d
		}
	}
	return d
}
