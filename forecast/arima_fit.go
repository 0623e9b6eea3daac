package forecast

import (
	"errors"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// errARIMAFit means the CSS estimate is not finite.
var errARIMAFit = errors.New("forecast: ARIMA estimate not finite")

// arimaPolys expands the multiplicative polynomials into the full AR and MA
// coefficients of the differenced series, as R's ArimaTransPars does:
//
//	1 − Σ a_k B^k = (1 − Σ φ_i B^i)(1 − Σ Φ_j B^{mj}),
//	1 + Σ b_k B^k = (1 + Σ θ_i B^i)(1 + Σ Θ_j B^{mj}),
//
// a[k−1] = a_k, b[k−1] = b_k.
func arimaPolys(par []float64, s arimaSpec) (a, b []float64) {
	a = make([]float64, s.p+s.m*s.sp)
	b = make([]float64, s.q+s.m*s.sq)
	expandPolys(par, s, a, b)
	return a, b
}

// expandPolys is arimaPolys into buffers of the right lengths.
func expandPolys(par []float64, s arimaSpec, a, b []float64) {
	clear(a)
	clear(b)
	phi, theta := par[:s.p], par[s.p:s.p+s.q]
	sphi, stheta := par[s.p+s.q:s.p+s.q+s.sp], par[s.p+s.q+s.sp:s.p+s.q+s.sp+s.sq]
	for i, v := range phi {
		a[i] += v
	}
	for j, v := range sphi {
		a[(j+1)*s.m-1] += v
		for i, u := range phi {
			a[(j+1)*s.m+i] -= u * v
		}
	}
	for i, v := range theta {
		b[i] += v
	}
	for j, v := range stheta {
		b[(j+1)*s.m-1] += v
		for i, u := range theta {
			b[(j+1)*s.m+i] += u * v
		}
	}
}

// lagsOf lists the lags (0-based, k−1) that expandPolys can make non-zero, so that
// the CSS recursion skips the zeros of a seasonal polynomial (for m = 24, an
// ARIMA(2,·,2)(1,·,1) has 5 AR lags out of 26).
func lagsOf(n, ns, m int) []int {
	var lags []int
	for i := range n {
		lags = append(lags, i)
	}
	for j := 1; j <= ns; j++ {
		for i := 0; i <= n; i++ {
			lags = append(lags, j*m+i-1)
		}
	}
	slices.Sort(lags)
	return slices.Compact(lags)
}

// cssProblem is the CSS objective for one model on one differenced series: R's
// ARIMA_CSS. Innovations e_t for t < p+mP are zero; afterwards
//
//	e_t = (w_t − μ) − Σ a_k (w_{t−k} − μ) − Σ b_k e_{t−k},
//
// and the objective is Σ e_t² over the ν = n′ − p − mP innovations computed.
type cssProblem struct {
	s            arimaSpec
	w, wc        []float64
	a, b, e      []float64
	aLags, bLags []int
}

func newCSSProblem(w []float64, s arimaSpec) *cssProblem {
	return &cssProblem{
		s: s, w: w,
		a: make([]float64, s.p+s.m*s.sp), b: make([]float64, s.q+s.m*s.sq),
		e: make([]float64, len(w)), wc: make([]float64, len(w)),
		aLags: lagsOf(s.p, s.sp, s.m), bLags: lagsOf(s.q, s.sq, s.m),
	}
}

// ssq computes the innovations into c.e and returns their sum of squares, +Inf when
// they explode (a far non-invertible MA).
func (c *cssProblem) ssq(par []float64) float64 {
	s := c.s
	expandPolys(par, s, c.a, c.b)
	mu := 0.0
	if s.constant {
		mu = par[len(par)-1] * s.constScale()
	}
	// Centre once per evaluation: the inner loops are all of CSS's time.
	wc, e, a, b := c.wc, c.e, c.a, c.b
	for t, v := range c.w {
		wc[t] = v - mu
	}
	nc := s.nCond()
	clear(e[:nc])
	var sum float64
	for t := nc; t < len(wc); t++ {
		v := wc[t]
		for _, k := range c.aLags {
			v -= a[k] * wc[t-k-1]
		}
		for _, k := range c.bLags {
			if t-k-1 < nc {
				break
			}
			v -= b[k] * e[t-k-1]
		}
		e[t] = v
		sum += v * v
	}
	if math.IsNaN(sum) || sum > 1e300 {
		return math.Inf(1)
	}
	return sum
}

// minimize finds the CSS estimate from x0 by Levenberg–Marquardt (Nocedal and
// Wright, "Numerical Optimization", §10.3, with Marquardt's diagonal scaling) on the
// innovations, the Jacobian by forward differences. CSS is a nonlinear least-squares
// problem, so Gauss–Newton steps take some ten iterations of k+1 evaluations each
// where R's BFGS on ½·log(SSE/ν) takes a hundred or more: this is where auto.arima's
// time goes. It stops when an iteration lowers the sum of squares by less than
// tol relative to it, or after maxIter iterations.
func (c *cssProblem) minimize(x0 []float64, tol float64, maxIter int) ([]float64, float64) {
	k := len(x0)
	x := slices.Clone(x0)
	S := c.ssq(x)
	if k == 0 || math.IsInf(S, 1) {
		return x, S
	}
	nc := c.s.nCond()
	nu := len(c.w) - nc
	r := slices.Clone(c.e[nc:])
	J := make([]float64, k*nu) // column j at J[j*nu:]
	A := make([]float64, k*k)
	M := make([]float64, k*k)
	g := make([]float64, k)
	delta := make([]float64, k)
	xn := make([]float64, k)
	lambda := 1e-3
	for iter := 0; iter < maxIter; iter++ {
		for j := range k {
			h := 1e-7 * max(1, math.Abs(x[j]))
			xj := x[j]
			x[j] += h
			Sj := c.ssq(x)
			x[j] = xj
			col := J[j*nu : (j+1)*nu]
			if math.IsInf(Sj, 1) {
				clear(col)
				continue
			}
			for t := range nu {
				col[t] = (c.e[nc+t] - r[t]) / h
			}
		}
		for i := range k {
			ci := J[i*nu : (i+1)*nu]
			var gi float64
			for t, v := range ci {
				gi += v * r[t]
			}
			g[i] = -gi
			for j := 0; j <= i; j++ {
				cj := J[j*nu : (j+1)*nu]
				var s float64
				for t, v := range ci {
					s += v * cj[t]
				}
				A[i*k+j], A[j*k+i] = s, s
			}
		}
		accepted := false
		var Sn float64
		for lambda < 1e12 {
			copy(M, A)
			for i := range k {
				M[i*k+i] += lambda*A[i*k+i] + 1e-12
			}
			if !cholSolve(M, g, delta, k) {
				lambda *= 10
				continue
			}
			for i := range k {
				xn[i] = x[i] + delta[i]
			}
			Sn = c.ssq(xn)
			if Sn < S {
				accepted = true
				break
			}
			lambda *= 10
		}
		if !accepted {
			break
		}
		lambda = max(lambda/10, 1e-10)
		copy(x, xn)
		copy(r, c.e[nc:])
		done := S-Sn <= tol*S
		S = Sn
		if done {
			break
		}
	}
	c.ssq(x) // leave c.e at the estimate
	return x, S
}

// cholSolve solves M x = g for symmetric positive definite M (k×k, row-major) with
// gonum's Cholesky factorisation; false if M is not positive definite.
func cholSolve(M, g, x []float64, k int) bool {
	var c mat.Cholesky
	if !c.Factorize(mat.NewSymDense(k, M)) {
		return false
	}
	return c.SolveVecTo(mat.NewVecDense(k, x), mat.NewVecDense(k, g)) == nil
}

// cssOffset is auto.arima's offset for approximation = TRUE: −2·loglik − n·log σ²
// of the exact-likelihood fit of ARIMA(0,d,0)(0,D,0)_m (with a mean when d+D = 0),
// n the series' length. That model is white noise on the differenced series, so its
// ML fit is σ² = mean square of the (centred) differenced values and loglik =
// −n′/2·(log(2πσ²) + 1), in closed form.
func cssOffset(y []float64, s arimaSpec) float64 {
	w := difference(y, s.d, s.sd, s.m)
	nw := float64(len(w))
	mean := 0.0
	if s.d+s.sd == 0 {
		for _, v := range w {
			mean += v
		}
		mean /= nw
	}
	var s2 float64
	for _, v := range w {
		s2 += (v - mean) * (v - mean)
	}
	s2 /= nw
	if !(s2 > 0) {
		return 0
	}
	loglik := -0.5 * nw * (math.Log(2*math.Pi*s2) + 1)
	return -2*loglik - float64(len(y))*math.Log(s2)
}

// CSS tolerances. A fixed model is fitted to the precision of R's optim (reltol 1e-8
// on ½·log(SSE/ν), about 5e-8 on SSE), and so is the model auto.arima keeps; the
// search ranks models with a looser tolerance: 1e-6 of SSE moves the AICc by n′·1e-6,
// a few thousandths, and saves the slow last iterations of the many candidates that
// crawl along a ridge (near-cancelling AR and MA roots) or towards non-invertibility.
const (
	cssTolFine, cssIterFine     = 1e-9, 100
	cssTolSearch, cssIterSearch = 1e-5, 15
)

// fitARIMA fits s to y by CSS and computes R's criteria with the given offset (see
// cssIC); tol and maxIter are the optimiser's (see cssProblem.minimize).
func fitARIMA(y []float64, s arimaSpec, offset, tol float64, maxIter int) (*arimaFit, error) {
	w := difference(y, s.d, s.sd, s.m)
	k := s.nCoef()
	nc := s.nCond()
	if len(y) <= s.nDiff() || len(w)-nc < k+3 {
		return nil, ErrTooShort
	}
	f := &arimaFit{spec: s, y: y, w: w, par: make([]float64, k)}
	mean := 0.0
	for _, v := range w {
		mean += v
	}
	mean /= float64(len(w))
	if isConstant(w) {
		// No innovations to fit: the differenced series is its constant, as
		// auto.arima's fit with the constant fixed at mean(dx).
		f.spec = arimaSpec{d: s.d, sd: s.sd, m: s.m, constant: s.d+s.sd <= 1 && mean != 0}.normalise()
		f.par = nil
		if f.spec.constant {
			f.par = []float64{mean / f.spec.constScale()}
		}
		f.resid = make([]float64, len(w))
		f.flat = true
		f.aicc = math.Inf(-1)
		return f, nil
	}
	if s.constant {
		// R starts the regression coefficient at its least-squares value on the
		// differenced data; the ARMA coefficients start at zero.
		f.par[k-1] = mean / s.constScale()
	}
	c := newCSSProblem(w, s)
	par, ssq := c.minimize(f.par, tol, maxIter)
	if math.IsInf(ssq, 0) || math.IsNaN(ssq) || requireFinite(par) != nil {
		return nil, errARIMAFit
	}
	f.par, f.ssq, f.resid, f.nu = par, ssq, c.e, len(w)-nc
	f.cssIC(offset)
	return f, nil
}

// cssIC fills in R's criteria for a CSS fit. With n′ = n − d − mD values after
// differencing, ν = n′ − p − mP residuals and k coefficients (npar = k+1, σ² counted):
//
//	loglik = −n′/2·(log(2π·SSE/ν) + 1)                 (stats::arima, method "CSS")
//	AIC    = offset + n′·log(SSE/ν) + 2·npar             (auto.arima's myarima)
//	AICc   = AIC + 2·npar(npar+1)/(n′ − npar − 1)
//	σ²     = SSE/(n′ − npar + 1)                          (forecast::Arima)
//
// The offset (cssOffset) makes the CSS AIC comparable across models with the same
// differencing, which is all the stepwise search compares (Hyndman and Khandakar
// 2008, §3.2, "approximation").
func (f *arimaFit) cssIC(offset float64) {
	nstar := float64(len(f.w))
	npar := float64(f.spec.nCoef() + 1)
	s2 := f.ssq / float64(f.nu)
	f.loglik = -0.5 * nstar * (math.Log(2*math.Pi*s2) + 1)
	aic := offset + nstar*math.Log(s2) + 2*npar
	f.aicc = aic + 2*npar*(npar+1)/(nstar-npar-1)
	f.sigma2 = f.ssq / (nstar - npar + 1)
}

// arimaAdmissible reports whether the fitted AR part is stationary and the MA part
// invertible with auto.arima's margin: every root of φ(z)Φ(z^m) and of θ(z)Θ(z^m)
// outside the circle of radius 1.01 (myarima's minroot test). Instead of R's
// polyroot it runs the Schur–Cohn step-down recursion (the Levinson–Durbin recursion
// backwards, Box et al. §3.2.3) on the polynomial in z/1.01: roots outside radius
// 1.01 ⟺ every reflection coefficient below 1 in modulus. That needs no root finder
// for the degree-53 polynomials of m = 24.
func arimaAdmissible(par []float64, s arimaSpec) bool {
	a, b := arimaPolys(par, s)
	for i := range b {
		b[i] = -b[i] // 1 + Σ b z^k is 1 − Σ (−b) z^k
	}
	return stepDownStable(a, 1.01) && stepDownStable(b, 1.01)
}

// stepDownStable reports whether 1 − Σ a_k z^k has all roots outside radius r.
func stepDownStable(a []float64, r float64) bool {
	n := len(a)
	for n > 0 && math.Abs(a[n-1]) <= 1e-8 {
		n-- // R drops trailing coefficients below 1e-8 before polyroot
	}
	if n == 0 {
		return true
	}
	c := make([]float64, n)
	scale := 1.0
	for k := range n {
		scale *= r
		c[k] = a[k] * scale
	}
	tmp := make([]float64, n)
	for k := n; k >= 1; k-- {
		rc := c[k-1]
		if !(math.Abs(rc) < 1) {
			return false
		}
		den := 1 - rc*rc
		for j := 1; j < k; j++ {
			tmp[j-1] = (c[j-1] + rc*c[k-j-1]) / den
		}
		copy(c[:k-1], tmp[:k-1])
	}
	return true
}
