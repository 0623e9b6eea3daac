package forecast

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// ARIMA is a seasonal ARIMA(p,d,q)(P,D,Q)_m model of fixed orders,
//
//	φ(B)Φ(B^m)(∇^d ∇_m^D y_t − μ) = θ(B)Θ(B^m) ε_t,  ε_t ~ N(0, σ²),
//
// with φ(B) = 1 − φ₁B − … − φ_pB^p, θ(B) = 1 + θ₁B + … + θ_qB^q and Φ, Θ the same in
// B^m (Box, Jenkins and Reinsel, "Time Series Analysis", §9.1; R's stats::arima sign
// conventions). μ is the constant: the mean of y when d+D = 0, and the drift when d+D
// = 1, as R's forecast::Arima(include.drift = TRUE) has it (a regression on t = 1…n
// whose slope, after differencing, becomes the mean of ∇^d∇_m^D y: the slope itself
// when d = 1, m times it when D = 1).
//
// Fit estimates the coefficients by conditional sum of squares (CSS), as R's
// arima(method = "CSS") does: the AR part conditions on the first p + mP differenced
// values, earlier innovations are taken as zero, and the sum of squared innovations
// is minimised (here by Levenberg–Marquardt rather than R's BFGS: both reach the same
// least-squares minimum). R's default is "CSS-ML", CSS followed by exact Gaussian
// maximum likelihood through the Kalman filter; that refinement is not implemented, so
// coefficients differ from R's defaults by the CSS–ML gap (a few percent on 100–150
// points, less on longer series; the tests state the tolerances).
//
// Forecasts follow the difference equation with future innovations zero and past ones
// the CSS residuals; their variance is σ²·Σ_{j<h} ψ_j², ψ the weights of the MA(∞)
// form of the whole model, differencing included (Box et al., §5.2), with σ² =
// SSE/(n − d − mD − k) for k coefficients, as forecast::Arima reports it. Quantiles
// are Gaussian.
//
// Fit returns ErrTooShort when fewer than k+3 differenced values remain after the AR
// conditioning, and an error when the estimate is not finite. A fit whose AR part is
// not stationary is kept (R's CSS does not constrain it either); its intervals grow.
type ARIMA struct {
	// Order is (p, d, q).
	Order [3]int
	// Seasonal is (P, D, Q); ignored when Period < 2.
	Seasonal [3]int
	// Period is the seasonal period m.
	Period int
	// IncludeConstant adds the mean (d+D = 0) or the drift (d+D = 1); ignored when
	// d+D ≥ 2, as in R.
	IncludeConstant bool

	fit *arimaFit
}

// ARIMAResult is a fitted ARIMA model's coefficients and criteria, in R's terms.
type ARIMAResult struct {
	// Spec is the model, as R's arima.string: "ARIMA(1,1,1)(0,1,1)[12] with drift".
	Spec string
	// AR, MA, SAR, SMA are φ, θ, Φ, Θ in R's signs.
	AR, MA, SAR, SMA []float64
	// Constant is the intercept (d+D = 0) or drift (d+D = 1), 0 without one.
	Constant float64
	// Sigma2 is the innovation variance used for intervals, SSE/(n−d−mD−k) as in
	// forecast::Arima.
	Sigma2 float64
	// LogLik is R's CSS log-likelihood, −n′/2·(log(2π·SSE/ν) + 1), with n′ = n−d−mD
	// and ν the number of residuals summed.
	LogLik float64
	// AICc is auto.arima's approximate AICc for CSS fits (see cssIC).
	AICc float64
}

// arimaSpec is an ARIMA(p,d,q)(P,D,Q)_m form, with or without a constant.
type arimaSpec struct {
	p, d, q    int
	sp, sd, sq int
	m          int
	constant   bool
}

func (s arimaSpec) String() string {
	str := fmt.Sprintf("ARIMA(%d,%d,%d)", s.p, s.d, s.q)
	if s.m > 1 && s.sp+s.sd+s.sq > 0 {
		str += fmt.Sprintf("(%d,%d,%d)[%d]", s.sp, s.sd, s.sq, s.m)
	}
	// The suffixes of R's arima.string.
	switch {
	case s.constant && s.d+s.sd == 0:
		str += " with non-zero mean"
	case s.constant && s.d+s.sd == 1:
		str += " with drift"
	case !s.constant && s.d+s.sd == 0:
		str += " with zero mean"
	}
	return str
}

// nDiff is the number of values differencing loses, d + mD.
func (s arimaSpec) nDiff() int { return s.d + s.sd*s.m }

// nCond is the number of differenced values CSS conditions on, p + mP.
func (s arimaSpec) nCond() int { return s.p + s.sp*s.m }

// nCoef is the number of estimated coefficients, the constant included.
func (s arimaSpec) nCoef() int { return s.p + s.q + s.sp + s.sq + etsBtoi(s.constant) }

// constScale is what the constant is multiplied by to give the mean of the
// differenced series: 1 for a mean or a drift with d = 1, m for a drift with D = 1
// (∇_m of b·t is b·m).
func (s arimaSpec) constScale() float64 {
	if s.sd == 1 && s.d == 0 {
		return float64(s.m)
	}
	return 1
}

// normalise drops the seasonal part when there is no season and the constant when
// d+D ≥ 2, as R does.
func (s arimaSpec) normalise() arimaSpec {
	if s.m < 2 {
		s.m, s.sp, s.sd, s.sq = 1, 0, 0, 0
	}
	if s.d+s.sd > 1 {
		s.constant = false
	}
	return s
}

func (a *ARIMA) spec() arimaSpec {
	for _, v := range append(a.Order[:], a.Seasonal[:]...) {
		if v < 0 {
			panic("forecast: ARIMA orders must be non-negative")
		}
	}
	return arimaSpec{
		p: a.Order[0], d: a.Order[1], q: a.Order[2],
		sp: a.Seasonal[0], sd: a.Seasonal[1], sq: a.Seasonal[2],
		m: a.Period, constant: a.IncludeConstant,
	}.normalise()
}

// Fit estimates the model on y by CSS.
func (a *ARIMA) Fit(y []float64) error {
	a.fit = nil
	if err := requireFinite(y); err != nil {
		return err
	}
	s := a.spec()
	f, err := fitARIMA(y, s, cssOffset(y, s), cssTolFine, cssIterFine)
	if err != nil {
		return err
	}
	a.fit = f
	return nil
}

// Forecast projects h steps with the given quantiles.
func (a *ARIMA) Forecast(h int, quantiles []float64) (Forecast, error) {
	if a.fit == nil {
		checkForecastCall(false, h, quantiles)
	}
	return a.fit.forecast(h, quantiles)
}

// Name is the model, e.g. "ARIMA(2,0,1)(1,1,0)[24] with drift", as R's arima.string.
func (a *ARIMA) Name() string {
	if a.fit != nil {
		return a.fit.spec.String()
	}
	return a.spec().String()
}

// Result returns the fitted coefficients and criteria. It panics before Fit.
func (a *ARIMA) Result() ARIMAResult {
	if a.fit == nil {
		panic("forecast: ARIMA used before Fit")
	}
	return a.fit.result()
}

// arimaFit is a model fitted by CSS.
type arimaFit struct {
	spec arimaSpec
	par  []float64 // φ, θ, Φ, Θ, constant: R's coefficient order
	// y is the series fitted; w its differenced form; resid the CSS innovations of w
	// (zero for the first nCond).
	y, w, resid []float64
	ssq         float64
	nu          int
	sigma2      float64 // SSE/(n′ − k), forecast::Arima's σ²
	loglik      float64
	aicc        float64
	flat        bool // a constant differenced series: zero-width intervals
}

func (f *arimaFit) result() ARIMAResult {
	s := f.spec
	r := ARIMAResult{Spec: s.String(), Sigma2: f.sigma2, LogLik: f.loglik, AICc: f.aicc}
	i := 0
	take := func(k int) []float64 {
		v := slices.Clone(f.par[i : i+k])
		i += k
		return v
	}
	r.AR, r.MA, r.SAR, r.SMA = take(s.p), take(s.q), take(s.sp), take(s.sq)
	if s.constant {
		r.Constant = f.par[i]
	}
	return r
}

// difference returns ∇^d ∇_m^D y.
func difference(y []float64, d, sd, m int) []float64 {
	w := slices.Clone(y)
	for range sd {
		for t := len(w) - 1; t >= m; t-- {
			w[t] -= w[t-m]
		}
		w = w[m:]
	}
	for range d {
		for t := len(w) - 1; t >= 1; t-- {
			w[t] -= w[t-1]
		}
		w = w[1:]
	}
	return w
}

// forecast projects h steps: the point forecasts by the difference equation of the
// differenced series, integrated back; the variance from the ψ-weights.
func (f *arimaFit) forecast(h int, quantiles []float64) (Forecast, error) {
	checkForecastCall(len(f.y) > 0, h, quantiles)
	s := f.spec
	a, b := arimaPolys(f.par, s)
	mu := 0.0
	if s.constant {
		mu = f.par[len(f.par)-1] * s.constScale()
	}
	// Differenced series: w_t − μ = Σ a_k (w_{t−k} − μ) + e_t + Σ b_k e_{t−k}.
	nw := len(f.w)
	w := append(slices.Clone(f.w), make([]float64, h)...)
	e := append(slices.Clone(f.resid), make([]float64, h)...)
	for t := nw; t < nw+h; t++ {
		v := mu
		for k, ak := range a {
			if ak != 0 && t-k-1 >= 0 {
				v += ak * (w[t-k-1] - mu)
			}
		}
		for k, bk := range b {
			if bk != 0 && t-k-1 >= 0 {
				v += bk * e[t-k-1]
			}
		}
		w[t] = v
	}
	// Integrate: y_t = w_t + Σ c_k y_{t−k}, 1 − Σ c_k B^k = (1−B)^d (1−B^m)^D.
	c := diffPoly(s)
	n := len(f.y)
	y := append(slices.Clone(f.y), make([]float64, h)...)
	for t := n; t < n+h; t++ {
		v := w[nw+t-n]
		for k, ck := range c {
			v += ck * y[t-k-1]
		}
		y[t] = v
	}
	// ψ-weights of the full model: (1 − Σ a*_k B^k) ψ(B) = 1 + Σ b_k B^k, with a*
	// the AR polynomial times the differencing polynomial (Box et al., eq. 5.2.3).
	full := polyMul(negOnePoly(a), negOnePoly(c)) // 1 − Σ a*_k B^k as coefficients
	psi := make([]float64, h)
	psi[0] = 1
	for j := 1; j < h; j++ {
		v := 0.0
		if j <= len(b) {
			v = b[j-1]
		}
		for k := 1; k < len(full) && k <= j; k++ {
			v -= full[k] * psi[j-k]
		}
		psi[j] = v
	}
	fc := Forecast{Mean: y[n:], Quantiles: slices.Clone(quantiles), Values: make([][]float64, len(quantiles))}
	for i := range quantiles {
		fc.Values[i] = make([]float64, h)
	}
	var cum float64
	for t := range h {
		cum += psi[t] * psi[t]
		se := math.Sqrt(f.sigma2 * cum)
		if f.flat {
			se = 0
		}
		for i, q := range quantiles {
			fc.Values[i][t] = fc.Mean[t] + distuv.UnitNormal.Quantile(q)*se
		}
	}
	if !fc.finite() {
		return Forecast{}, ErrNotFinite
	}
	return fc, nil
}

// negOnePoly returns the coefficients of 1 − Σ a_k B^k, constant first.
func negOnePoly(a []float64) []float64 {
	p := make([]float64, len(a)+1)
	p[0] = 1
	for k, v := range a {
		p[k+1] = -v
	}
	return p
}

// polyMul multiplies two polynomials given constant term first.
func polyMul(x, y []float64) []float64 {
	out := make([]float64, len(x)+len(y)-1)
	for i, u := range x {
		if u == 0 {
			continue
		}
		for j, v := range y {
			out[i+j] += u * v
		}
	}
	return out
}

// diffPoly returns c with 1 − Σ c_k B^k = (1−B)^d (1−B^m)^D, c[k−1] = c_k.
func diffPoly(s arimaSpec) []float64 {
	p := []float64{1}
	for range s.d {
		p = polyMul(p, []float64{1, -1})
	}
	for range s.sd {
		q := make([]float64, s.m+1)
		q[0], q[s.m] = 1, -1
		p = polyMul(p, q)
	}
	c := make([]float64, len(p)-1)
	for k := range c {
		c[k] = -p[k+1]
	}
	return c
}
