package forecast

import (
	"errors"
	"math"
	"slices"

	"gonum.org/v1/gonum/optimize"
)

// errETSStart means the likelihood is not finite at the starting values, so the model
// cannot be fitted to this series.
var errETSStart = errors.New("forecast: ETS likelihood not finite at the starting values")

// fitETS estimates sp on y, which is known to be finite.
func fitETS(y []float64, sp etsSpec, optInit bool) (*etsFit, error) {
	if len(y) < sp.minLen() {
		return nil, ErrTooShort
	}
	if sp.err == ETSMultiplicative || sp.season == ETSMultiplicative {
		if slices.Min(y) <= 0 {
			return nil, ErrNonPositive
		}
	}
	if isConstant(y) {
		return flatETS(y, sp), nil
	}
	init := etsInitStates(y, sp)
	o := etsObjective{y: y, sp: sp, optInit: optInit, init: init, work: slices.Clone(init)}
	x0 := o.start()
	if math.IsInf(o.eval(x0), 1) {
		return nil, errETSStart
	}
	x := o.minimize(x0)
	par, st := o.decode(x)
	return finishETS(y, sp, par, slices.Clone(st), sp.nSmooth()+sp.nStates())
}

// finishETS runs the recursion once more at the chosen parameters to keep the final
// states, residual variance and information criteria (R's etsmodel). np counts the
// estimated parameters without σ.
func finishETS(y []float64, sp etsSpec, par etsParams, init []float64, np int) (*etsFit, error) {
	f := &etsFit{spec: sp, par: par, init: init}
	resid := make([]float64, len(y))
	lik := etsLik(y, sp, par, init, f, resid)
	if math.IsInf(lik, 1) {
		return nil, errETSStart
	}
	n := float64(len(y))
	sse := 0.0
	for _, e := range resid {
		sse += e * e
	}
	k := float64(np + 1) // + σ
	aic := lik + 2*k
	f.res = ETSResult{
		Spec:   sp.String(),
		Alpha:  par.alpha,
		Beta:   par.beta,
		Gamma:  par.gamma,
		Phi:    par.phi,
		Init:   init,
		LogLik: -0.5 * lik,
		AIC:    aic,
		AICc:   aic + 2*k*(k+1)/(n-k-1),
		BIC:    lik + math.Log(n)*k,
		Sigma2: sse / (n - float64(np)),
		N:      len(y),
	}
	f.sigma = math.Sqrt(f.res.Sigma2)
	return f, nil
}

// flatETS is the fit of a constant series: R's ets falls back to simple exponential
// smoothing with α near 1, whose forecasts repeat the constant with zero variance.
// Sigma2 is 0 so every quantile equals the point forecast.
func flatETS(y []float64, sp etsSpec) *etsFit {
	par := etsParams{alpha: etsUpper, phi: 1}
	if sp.damped {
		par.phi = etsPhiUpper
	}
	if sp.trend != ETSNone {
		par.beta = etsLower
	}
	if sp.season != ETSNone {
		par.gamma = etsLower
	}
	init := []float64{y[0]}
	if sp.trend != ETSNone {
		init = append(init, 0)
	}
	if sp.season != ETSNone {
		neutral := 0.0
		if sp.season == ETSMultiplicative {
			neutral = 1
		}
		for range sp.m {
			init = append(init, neutral)
		}
	}
	f := &etsFit{spec: sp, par: par, init: init}
	lik := etsLik(y, sp, par, init, f, nil)
	k := float64(sp.nSmooth() + sp.nStates() + 1)
	n := float64(len(y))
	aic := lik + 2*k
	f.res = ETSResult{
		Spec: sp.String(), Alpha: par.alpha, Beta: par.beta, Gamma: par.gamma, Phi: par.phi,
		Init: init, LogLik: -0.5 * lik, AIC: aic, AICc: aic + 2*k*(k+1)/(n-k-1),
		BIC: lik + math.Log(n)*k, N: len(y),
	}
	return f
}

// etsInitStates is R's initstate heuristic (forecast 8.20): for a seasonal model a
// classical decomposition (centred moving average of order m, 2×m when m is even) of
// the whole series gives the seasonal figure; the level and slope come from the
// mean of, or a least-squares line through, the first max(10, 2m) seasonally adjusted
// points. The states are returned in R's order: ℓ₀, b₀, s₀ (newest) … s₋ₘ₊₁.
//
// R clamps multiplicative seasonal states at 0.01 and fixes the last from the sum; we
// clamp the whole figure and rescale it to mean 1, so no state can start negative.
func etsInitStates(y []float64, sp etsSpec) []float64 {
	m := sp.m
	ysa := y
	var fig []float64 // fig[k] is the seasonal effect at times ≡ k+1 (mod m), t = 1..n
	if sp.season != ETSNone {
		fig = etsSeasonalFigure(y, m, sp.season == ETSMultiplicative)
		ysa = make([]float64, len(y))
		for t, v := range y {
			if sp.season == ETSAdditive {
				ysa[t] = v - fig[t%m]
			} else {
				ysa[t] = v / fig[t%m]
			}
		}
	}
	maxn := min(max(10, 2*m), len(y))
	var st []float64
	if sp.trend == ETSNone {
		sum := 0.0
		for _, v := range ysa[:maxn] {
			sum += v
		}
		st = []float64{sum / float64(maxn)}
	} else {
		// Least squares of ysa[t] on t = 1..maxn: ℓ₀ is the intercept (time 0).
		var sx, sy, sxx, sxy float64
		for t, v := range ysa[:maxn] {
			x := float64(t + 1)
			sx += x
			sy += v
			sxx += x * x
			sxy += x * v
		}
		nn := float64(maxn)
		b0 := (nn*sxy - sx*sy) / (nn*sxx - sx*sx)
		l0 := (sy - b0*sx) / nn
		if math.Abs(l0+b0) < 1e-8 { // keep ŷ₁ off zero for multiplicative error
			l0 *= 1 + 1e-3
			b0 *= 1 - 1e-3
		}
		st = []float64{l0, b0}
	}
	for j := range m * etsBtoi(sp.season != ETSNone) {
		st = append(st, fig[m-1-j])
	}
	return st
}

func etsBtoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// seasonalFigure is the seasonal figure of R's decompose(): the mean by season of y
// minus (or over) its centred moving average, normalised to sum 0 (or mean 1).
func etsSeasonalFigure(y []float64, m int, mult bool) []float64 {
	n := len(y)
	sum := make([]float64, m)
	cnt := make([]float64, m)
	half := m / 2
	for t := half; t < n-half; t++ {
		var tr float64
		if m%2 == 0 {
			tr = 0.5*y[t-half] + 0.5*y[t+half]
			for k := t - half + 1; k < t+half; k++ {
				tr += y[k]
			}
		} else {
			for k := t - half; k <= t+half; k++ {
				tr += y[k]
			}
		}
		tr /= float64(m)
		if mult {
			sum[t%m] += y[t] / tr
		} else {
			sum[t%m] += y[t] - tr
		}
		cnt[t%m]++
	}
	fig := make([]float64, m)
	mean := 0.0
	for k := range m {
		fig[k] = sum[k] / cnt[k]
		if mult {
			fig[k] = max(fig[k], 1e-2)
		}
		mean += fig[k] / float64(m)
	}
	for k := range fig {
		if mult {
			fig[k] /= mean
		} else {
			fig[k] -= mean
		}
	}
	return fig
}

// etsObjective is R's criterion as a function of unconstrained coordinates. The
// bounds 0.0001 ≤ α ≤ 0.9999, 0.0001 ≤ β ≤ α, 0.0001 ≤ γ ≤ 1-α, 0.8 ≤ φ ≤ 0.98 are
// enforced by mapping each coordinate through a logistic function onto its interval
// (β's and γ's intervals depend on α), so Nelder-Mead searches without walls. R's
// further "admissible" test (the roots of the characteristic polynomial, Hyndman et
// al. 2008 ch. 10) is not applied; within these bounds it rarely binds.
type etsObjective struct {
	y       []float64
	sp      etsSpec
	optInit bool
	init    []float64 // heuristic initial states, all m seasonal ones
	work    []float64 // scratch initial states
}

func etsLogistic(u float64) float64 { return 1 / (1 + math.Exp(-u)) }

func etsLogit(p float64) float64 { return math.Log(p / (1 - p)) }

// start returns R's starting values (initparam): α = 0.2/m of its range, β at 10% of
// its range, γ at 5%, φ at 99%; then the heuristic states when they are optimised.
func (o *etsObjective) start() []float64 {
	alpha := etsLower + 0.2*(etsUpper-etsLower)/float64(o.sp.m)
	x := []float64{etsLogit((alpha - etsLower) / (etsUpper - etsLower))}
	if o.sp.trend != ETSNone {
		x = append(x, etsLogit(0.1))
	}
	if o.sp.season != ETSNone {
		x = append(x, etsLogit(0.05))
	}
	if o.sp.damped {
		x = append(x, etsLogit(0.99))
	}
	if o.optInit {
		// The last seasonal state is implied by the others, as in R.
		x = append(x, o.init[:o.sp.nStates()]...)
	}
	return x
}

// decode maps coordinates to parameters and initial states (the latter in o.work).
func (o *etsObjective) decode(x []float64) (etsParams, []float64) {
	sp := o.sp
	p := etsParams{phi: 1}
	p.alpha = etsLower + (etsUpper-etsLower)*etsLogistic(x[0])
	k := 1
	if sp.trend != ETSNone {
		p.beta = etsLower + max(min(etsUpper, p.alpha)-etsLower, 0)*etsLogistic(x[k])
		k++
	}
	if sp.season != ETSNone {
		p.gamma = etsLower + max(min(etsUpper, 1-p.alpha)-etsLower, 0)*etsLogistic(x[k])
		k++
	}
	if sp.damped {
		p.phi = etsPhiLower + (etsPhiUpper-etsPhiLower)*etsLogistic(x[k])
		k++
	}
	st := o.init
	if o.optInit {
		st = o.work
		ns := sp.nStates()
		copy(st, x[k:k+ns])
		if sp.season != ETSNone {
			// s₋ₘ₊₁ makes the seasonal states sum to 0 (additive) or m (multiplicative).
			last := 0.0
			if sp.season == ETSMultiplicative {
				last = float64(sp.m)
			}
			for _, v := range st[ns-sp.m+1 : ns] {
				last -= v
			}
			st[ns] = last
		}
	}
	return p, st
}

func (o *etsObjective) eval(x []float64) float64 {
	p, st := o.decode(x)
	if o.optInit && o.sp.season == ETSMultiplicative {
		for _, v := range st[len(st)-o.sp.m:] {
			if v < 0 { // R rejects negative seasonal indices
				return math.Inf(1)
			}
		}
	}
	return etsLik(o.y, o.sp, p, st, nil, nil)
}

// minimize runs gonum's Nelder–Mead from x0 and returns the best point. The smoothing
// coordinates start with a simplex step of 1 on the logit scale; state coordinates
// with 10% of their size (R's optim uses 10% of the largest coordinate).
func (o *etsObjective) minimize(x0 []float64) []float64 {
	dim := len(x0)
	ns := o.sp.nSmooth()
	scale := 0.0
	for _, v := range o.y {
		scale += math.Abs(v)
	}
	scale /= float64(len(o.y))
	steps := make([]float64, dim)
	for i := range dim {
		steps[i] = 1
		if i >= ns {
			steps[i] = max(0.1*math.Abs(x0[i]), 1e-3*scale)
			if o.sp.season == ETSMultiplicative && i >= ns+1+etsBtoi(o.sp.trend != ETSNone) {
				steps[i] = 0.05 // seasonal indices are near 1
			}
		}
	}
	maxEval := 200 * dim
	if o.optInit {
		maxEval = 2000 + 200*dim
	}
	verts := make([][]float64, dim+1)
	vals := make([]float64, dim+1)
	for i := range verts {
		verts[i] = slices.Clone(x0)
		if i > 0 {
			verts[i][i-1] += steps[i-1]
		}
		vals[i] = o.eval(verts[i])
	}
	// Lagarias et al. (1998) coefficients, as R's optim and forecast's etsNelderMead:
	// reflection 1, expansion 2, contraction ½, shrink ½.
	method := &optimize.NelderMead{InitialVertices: verts, InitialValues: vals, Reflection: 1, Expansion: 2, Contraction: 0.5, Shrink: 0.5}
	settings := &optimize.Settings{
		FuncEvaluations: maxEval,
		// R's nmmin stops when the simplex's values agree to 1e-8; gonum's convergers see
		// only the best point, so stop when it has not gained 1e-8 (relative) for 3·dim
		// iterations. Measured against R's fits (ets_test.go): 2·dim stops short of R's
		// optima on 5 of them, 3·dim reaches them at 1.3 times the evaluations of a
		// simplex-spread rule.
		Converger: &optimize.FunctionConverge{Relative: 1e-8, Absolute: 1e-10, Iterations: 3 * dim},
	}
	res, err := optimize.Minimize(optimize.Problem{Func: o.eval}, x0, settings, method)
	if res == nil || (err != nil && res.F >= o.eval(x0)) {
		return x0
	}
	return res.X
}
