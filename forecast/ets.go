package forecast

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// ErrNonPositive means a model with multiplicative error or season was asked to fit a
// series holding a zero or negative value: the relative error (y-ŷ)/ŷ and the seasonal
// ratios of those models are only defined for positive data (Hyndman et al. 2008, §2.5).
var ErrNonPositive = errors.New("forecast: multiplicative ETS needs positive data")

// ETSComponent is the form of one ETS component: none, additive or multiplicative.
type ETSComponent byte

// ETS component forms, written as in the ETS(error, trend, season) taxonomy of Hyndman
// et al. (2008) Table 2.1. Multiplicative trend is not offered: R's ets excludes it from
// automatic selection by default as its forecasts explode too easily.
const (
	ETSNone           ETSComponent = 'N'
	ETSAdditive       ETSComponent = 'A'
	ETSMultiplicative ETSComponent = 'M'
)

// String returns "N", "A" or "M".
func (c ETSComponent) String() string { return string(rune(c)) }

// Parameter bounds, R's ets defaults ("usual" bounds): 0.0001 ≤ α ≤ 0.9999,
// 0.0001 ≤ β ≤ α, 0.0001 ≤ γ ≤ 1-α and 0.8 ≤ φ ≤ 0.98.
const (
	etsLower    = 1e-4
	etsUpper    = 0.9999
	etsPhiLower = 0.8
	etsPhiUpper = 0.98
)

// Guards copied from R's etscalc.c: a divisor below etsTol is replaced by etsHuge.
const (
	etsTol  = 1e-10
	etsHuge = 1e10
)

// etsPaths is the number of simulated sample paths behind the quantiles of the
// models without an analytic forecast variance; the generator is seeded with a
// constant so forecasts are reproducible.
const etsPaths = 1000

// ETS is one exponential smoothing state space model with a fixed form, ETS(Error,
// Trend, Season) in the notation of Hyndman, Koehler, Ord and Snyder, "Forecasting with
// Exponential Smoothing: The State Space Approach" (2008), fitted by maximum likelihood
// like R's forecast::ets.
//
// The smoothing parameters α, β, γ and φ are estimated by gonum/optimize's Nelder–Mead on the
// likelihood (Hyndman et al. 2008, eq. 5.3, as R computes it). The initial states are
// set by R's heuristic (a classical decomposition of the whole series, then a
// regression on the first max(10, 2m) seasonally adjusted points); by default they are
// not optimised further, since adding the m+1 state coordinates to the simplex costs
// tens of times more likelihood evaluations for m=24. Set OptimizeInit to optimise
// them as R does. Either way the AIC counts the initial states as parameters, as R
// does, so that models compare on the same footing.
//
// Minimum lengths, as in R: n > p+4 where p = 2 (α, ℓ₀), +2 with a trend (β, b₀), +1
// when damped, +m with a season (γ and m seasonal states); so 7 points for
// ETS(A,N,N) and 10 for ETS(A,Ad,N). A seasonal model also needs three full seasons,
// n ≥ 3m, for its initial decomposition. Shorter series return ErrTooShort.
type ETS struct {
	// Error is ETSAdditive or ETSMultiplicative.
	Error ETSComponent
	// Trend is ETSNone or ETSAdditive.
	Trend ETSComponent
	// Season is ETSNone, ETSAdditive or ETSMultiplicative. A seasonal model needs
	// Period ≥ 2. Additive error with multiplicative season is refused (as R's
	// restrict=TRUE does): it is numerically unstable.
	Season ETSComponent
	// Damped damps the trend by φ; only with an additive trend.
	Damped bool
	// Period is the seasonal period m; ignored when Season is ETSNone.
	Period int
	// OptimizeInit also optimises the initial states by maximum likelihood.
	OptimizeInit bool

	fit *etsFit
}

// ETSResult describes a fitted ETS model.
type ETSResult struct {
	// Spec names the model, as R prints it: "ETS(M,Ad,M)".
	Spec string
	// Alpha, Beta, Gamma and Phi are the smoothing parameters in error-correction
	// form (Hyndman et al. 2008, Table 2.3); Beta and Gamma are 0 without a trend or
	// season, Phi is 1 without damping.
	Alpha, Beta, Gamma, Phi float64
	// Init holds the initial states in R's order: ℓ₀, b₀ (with a trend), then the
	// seasonal states s₀ (most recent) ... s₋ₘ₊₁.
	Init []float64
	// LogLik is R's ets log-likelihood, -½(n log Σe² + 2 Σ log|ŷ|), the Gaussian
	// likelihood with σ² concentrated out and constants dropped (Hyndman et al. 2008,
	// eq. 5.3); the log|ŷ| term only for multiplicative error.
	LogLik float64
	// AIC, AICc and BIC count the smoothing parameters, the initial states and σ.
	AIC, AICc, BIC float64
	// Sigma2 is Σe²/(n-p), e the (relative, for multiplicative error) residuals and p
	// the number of parameters without σ, as R's ets.
	Sigma2 float64
	// N is the number of observations fitted.
	N int
}

// etsSpec is a validated model form; m is 1 for non-seasonal models.
type etsSpec struct {
	err, trend, season ETSComponent
	damped             bool
	m                  int
}

func (s etsSpec) String() string {
	d := ""
	if s.damped {
		d = "d"
	}
	return fmt.Sprintf("ETS(%v,%v%s,%v)", s.err, s.trend, d, s.season)
}

// nStates is the number of free initial states: ℓ₀, b₀ and m-1 seasonal states (the
// last is fixed by the seasonal states summing to 0, or m when multiplicative).
func (s etsSpec) nStates() int {
	k := 1
	if s.trend != ETSNone {
		k++
	}
	if s.season != ETSNone {
		k += s.m - 1
	}
	return k
}

// nSmooth is the number of smoothing parameters.
func (s etsSpec) nSmooth() int {
	k := 1
	if s.trend != ETSNone {
		k++
	}
	if s.season != ETSNone {
		k++
	}
	if s.damped {
		k++
	}
	return k
}

// minLen is the shortest series the model fits, as in R's ets (n > npars+4) plus three
// seasons for the decomposition behind the initial seasonal states.
func (s etsSpec) minLen() int {
	npars := 2
	if s.trend != ETSNone {
		npars += 2
	}
	if s.damped {
		npars++
	}
	n := npars + 5
	if s.season != ETSNone {
		n = max(npars+s.m+5, 3*s.m)
	}
	return n
}

// linear reports whether the model has the closed-form forecast variance of
// Hyndman et al. (2008) class 1: additive error, no multiplicative component.
func (s etsSpec) linear() bool {
	return s.err == ETSAdditive && s.season != ETSMultiplicative
}

// etsParams are the smoothing parameters; beta, gamma are 0 and phi is 1 when unused.
type etsParams struct {
	alpha, beta, gamma, phi float64
}

// etsFit is what Fit learns.
type etsFit struct {
	spec  etsSpec
	par   etsParams
	init  []float64 // initial states, R's order
	res   ETSResult
	l, b  float64   // final level and slope
	s     []float64 // final seasonal states, seasonal index of time t at s[t%m]
	n     int       // observations
	sigma float64
}

func (e *ETS) spec() etsSpec {
	s := etsSpec{err: e.Error, trend: e.Trend, season: e.Season, damped: e.Damped, m: 1}
	if s.err != ETSAdditive && s.err != ETSMultiplicative {
		panic("forecast: ETS.Error must be ETSAdditive or ETSMultiplicative")
	}
	if s.trend != ETSNone && s.trend != ETSAdditive {
		panic("forecast: ETS.Trend must be ETSNone or ETSAdditive")
	}
	if s.season != ETSNone && s.season != ETSAdditive && s.season != ETSMultiplicative {
		panic("forecast: ETS.Season must be ETSNone, ETSAdditive or ETSMultiplicative")
	}
	if s.damped && s.trend == ETSNone {
		panic("forecast: ETS.Damped needs a trend")
	}
	if s.err == ETSAdditive && s.season == ETSMultiplicative {
		panic("forecast: ETS(A,*,M) is unstable and not supported")
	}
	if s.season != ETSNone {
		if e.Period < 2 {
			panic("forecast: a seasonal ETS needs Period of at least 2")
		}
		s.m = e.Period
	}
	return s
}

// Fit estimates the model on y. It returns ErrNotFinite for NaN or Inf, ErrTooShort
// below the minimum length (see ETS) and ErrNonPositive when a multiplicative
// component meets a value ≤ 0.
func (e *ETS) Fit(y []float64) error {
	s := e.spec()
	e.fit = nil
	if err := requireFinite(y); err != nil {
		return err
	}
	f, err := fitETS(y, s, e.OptimizeInit)
	if err != nil {
		return err
	}
	e.fit = f
	return nil
}

// Spec returns the fitted model's name, like "ETS(A,Ad,M)".
func (e *ETS) Spec() string { return e.Result().Spec }

// Result returns the fitted parameters and criteria. It panics before Fit.
func (e *ETS) Result() ETSResult {
	if e.fit == nil {
		panic("forecast: ETS used before Fit")
	}
	r := e.fit.res
	r.Init = slices.Clone(r.Init)
	return r
}

// Forecast projects h steps. Point forecasts are the model's forecast function
// (Hyndman et al. 2008, Table 2.3, as R's forecast.ets). Quantiles of the additive
// models come from the Gaussian forecast variance of class 1 (eq. 6.1 and Table 6.2,
// FPP2 Table 7.8):
//
//	σ²ₕ = σ² [1 + Σⱼ₌₁ʰ⁻¹ (α + β φⱼ + γ dⱼ,ₘ)²],  φⱼ = φ + … + φʲ,  dⱼ,ₘ = 1 if m | j,
//
// and those of the multiplicative ones from 1000 simulated sample paths with Gaussian
// errors of variance σ² (Hyndman et al. 2008, §6.1), drawn from a fixed seed.
func (e *ETS) Forecast(h int, quantiles []float64) (Forecast, error) {
	if e.fit == nil {
		panic("forecast: Forecast called before Fit")
	}
	return e.fit.forecast(h, quantiles), nil
}

// etsLik runs the state space recursion of Hyndman et al. (2008) Table 2.3 over y, as
// R's etscalc does, and returns R's criterion
//
//	-2 log L = n log Σ eₜ² + 2 Σ log|ŷₜ|   (the second sum for multiplicative error only),
//
// with eₜ = yₜ-ŷₜ (additive) or (yₜ-ŷₜ)/ŷₜ (multiplicative). init holds the initial
// states in R's order (ℓ₀, b₀, s₀, s₋₁, …, s₋ₘ₊₁ where s₀ is the newest); the seasonal
// states are kept in a ring where s[t%m] is the one for time t+1, so each step is O(1)
// instead of R's O(m) shift. If st is not nil the final states are stored in it and
// resid receives the residuals when not nil. It returns +Inf where R returns NA.
func etsLik(y []float64, sp etsSpec, p etsParams, init []float64, st *etsFit, resid []float64) float64 {
	m := sp.m
	l := init[0]
	b := 0.0
	k := 1
	if sp.trend != ETSNone {
		b = init[1]
		k = 2
	}
	var sbuf [64]float64
	var s []float64
	if sp.season != ETSNone {
		if m <= len(sbuf) {
			s = sbuf[:m]
		} else {
			s = make([]float64, m)
		}
		// R's s₀ is the newest state, s₋ₘ₊₁ the oldest: reverse into time order.
		for j := range m {
			s[j] = init[k+m-1-j]
		}
	}
	phi := p.phi
	if !sp.damped {
		phi = 1
	}
	// R updates the slope as b = φb + (β/α)(ℓₜ - ℓₜ₋₁ - φb), the error-correction form
	// b = φb + βεₜ written in terms of the level change.
	bRatio := p.beta / p.alpha
	sse, logf := 0.0, 0.0
	j := 0
	for i, yt := range y {
		phib := 0.0
		if sp.trend != ETSNone {
			phib = phi * b
		}
		q := l + phib // ℓₜ₋₁ + φbₜ₋₁
		f := q
		var sj float64
		switch sp.season {
		case ETSAdditive:
			sj = s[j]
			f = q + sj
		case ETSMultiplicative:
			sj = s[j]
			f = q * sj
		}
		e := yt - f
		if sp.err == ETSMultiplicative {
			e /= f
			logf += math.Log(math.Abs(f))
		}
		if resid != nil {
			resid[i] = e
		}
		sse += e * e
		// Level: ℓₜ = q + α(p - q) with p the seasonally adjusted observation.
		pt := yt
		switch sp.season {
		case ETSAdditive:
			pt = yt - sj
		case ETSMultiplicative:
			if math.Abs(sj) < etsTol {
				pt = etsHuge
			} else {
				pt = yt / sj
			}
		}
		lnew := q + p.alpha*(pt-q)
		if sp.trend != ETSNone {
			b = phib + bRatio*(lnew-l-phib)
		}
		switch sp.season {
		case ETSAdditive:
			s[j] = sj + p.gamma*(yt-q-sj)
		case ETSMultiplicative:
			t := etsHuge
			if math.Abs(q) >= etsTol {
				t = yt / q
			}
			s[j] = sj + p.gamma*(t-sj)
		}
		l = lnew
		j++
		if j == m {
			j = 0
		}
	}
	lik := float64(len(y)) * math.Log(sse)
	if sp.err == ETSMultiplicative {
		lik += 2 * logf
	}
	if math.IsNaN(lik) || math.IsInf(lik, 1) {
		lik = math.Inf(1)
	}
	if lik < -1e10 { // a perfect fit: R caps it the same way
		lik = -1e10
	}
	if st != nil {
		st.l, st.b = l, b
		st.s = slices.Clone(s)
		st.n = len(y)
	}
	return lik
}

// point returns the forecast function h steps (1-based) past the final states:
// ℓ + φₕb, then plus or times the seasonal state of that time.
func (f *etsFit) point(h int, phiSum float64) float64 {
	v := f.l + phiSum*f.b
	if f.spec.season != ETSNone {
		s := f.s[(f.n+h-1)%f.spec.m]
		if f.spec.season == ETSAdditive {
			v += s
		} else {
			v *= s
		}
	}
	return v
}

func (f *etsFit) forecast(h int, quantiles []float64) Forecast {
	checkForecastCall(true, h, quantiles)
	sp, p := f.spec, f.par
	out := newForecast(h, quantiles)
	phiSum, phiPow := 0.0, 1.0
	for t := range h {
		phiPow *= p.phi
		phiSum += phiPow
		out.Mean[t] = f.point(t+1, phiSum)
	}
	if len(quantiles) == 0 {
		return out
	}
	if f.sigma == 0 || sp.linear() {
		// Class 1 variance: σ²ₕ = σ²(1 + Σⱼ₌₁ʰ⁻¹ cⱼ²), cⱼ = α + βφⱼ + γdⱼ,ₘ.
		z := make([]float64, len(quantiles))
		for i, q := range quantiles {
			z[i] = distuv.UnitNormal.Quantile(q)
		}
		sum, phiSum, phiPow := 1.0, 0.0, 1.0
		for t := range h {
			sd := f.sigma * math.Sqrt(sum)
			for i := range quantiles {
				out.Values[i][t] = out.Mean[t] + z[i]*sd
			}
			phiPow *= p.phi
			phiSum += phiPow
			c := p.alpha + p.beta*phiSum
			if sp.season != ETSNone && (t+1)%sp.m == 0 {
				c += p.gamma
			}
			sum += c * c
		}
		return out
	}
	f.simulate(h, quantiles, out.Values)
	return out
}

// simulate fills vals with quantiles of etsPaths sample paths yₜ = ŷₜ + εₜ or ŷₜ(1+εₜ),
// εₜ ~ N(0, σ²), each path updating its states with its own draws as in R's
// simulate.ets. Non-finite path values (an exploding multiplicative path) are
// dropped; if fewer than half the paths remain at a step every quantile falls back
// to the point forecast so no NaN ever escapes.
func (f *etsFit) simulate(h int, quantiles []float64, vals [][]float64) {
	sp, p := f.spec, f.par
	rng := rand.New(rand.NewPCG(0x45545321, 0x9e3779b97f4a7c15))
	draws := make([][]float64, h)
	for t := range draws {
		draws[t] = make([]float64, 0, etsPaths)
	}
	s := make([]float64, len(f.s))
	bRatio := p.beta / p.alpha
	for range etsPaths {
		l, b := f.l, f.b
		copy(s, f.s)
		j := f.n % sp.m
		for t := range h {
			phib := p.phi * b
			q := l + phib
			yhat := q
			var sj float64
			switch sp.season {
			case ETSAdditive:
				sj = s[j]
				yhat = q + sj
			case ETSMultiplicative:
				sj = s[j]
				yhat = q * sj
			}
			e := f.sigma * rng.NormFloat64()
			yt := yhat + e
			if sp.err == ETSMultiplicative {
				yt = yhat * (1 + e)
			}
			if !math.IsNaN(yt) && !math.IsInf(yt, 0) {
				draws[t] = append(draws[t], yt)
			}
			pt := yt
			switch sp.season {
			case ETSAdditive:
				pt = yt - sj
			case ETSMultiplicative:
				pt = etsHuge
				if math.Abs(sj) >= etsTol {
					pt = yt / sj
				}
			}
			lnew := q + p.alpha*(pt-q)
			if sp.trend != ETSNone {
				b = phib + bRatio*(lnew-l-phib)
			}
			switch sp.season {
			case ETSAdditive:
				s[j] = sj + p.gamma*(yt-q-sj)
			case ETSMultiplicative:
				r := etsHuge
				if math.Abs(q) >= etsTol {
					r = yt / q
				}
				s[j] = sj + p.gamma*(r-sj)
			}
			l = lnew
			j++
			if j == sp.m {
				j = 0
			}
		}
	}
	phiSum, phiPow := 0.0, 1.0
	for t := range h {
		phiPow *= p.phi
		phiSum += phiPow
		d := draws[t]
		if len(d) < etsPaths/2 {
			for i := range quantiles {
				vals[i][t] = f.point(t+1, phiSum)
			}
			continue
		}
		slices.Sort(d)
		for i, q := range quantiles {
			vals[i][t] = stat.Quantile(q, stat.LinInterp, d, nil)
		}
	}
}

// Name is the model's specification, e.g. "ETS(A,Ad,N)".
func (e *ETS) Name() string { return e.spec().String() }
