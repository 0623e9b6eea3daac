package forecast

import (
	"math"
	"slices"
)

// STL is the seasonal-trend decomposition by loess of Cleveland, Cleveland, McRae and
// Terpenning, "STL: A Seasonal-Trend Decomposition Procedure Based on Loess", Journal
// of Official Statistics 6(1), 1990, 3–73: y = seasonal + trend + remainder.
//
// It follows the authors' Fortran as R's stats::stl runs it, step for step, so that it
// gives R's numbers: the inner loop (§2.2) of detrending, cycle-subseries loess (step
// 2), the low-pass filter of moving averages of lengths np, np, 3 and a loess (step 3),
// detrending the smoothed cycle-subseries (step 4), deseasonalising (step 5) and trend
// loess (step 6); the outer loop (§2.3) of robustness weights B((|R|/(6 median|R|))),
// with B the bisquare. Loess (§2.1) uses tricube weights and degree 0 or 1, evaluated
// every Jump points and linearly interpolated between them (§2.4's "jump"), which
// is what makes it fast.
//
// Make one with NewSTL, which fills in R's defaults; a zero window or jump is also
// replaced by R's default when decomposing.
type STL struct {
	// Period is the number of observations per cycle, np; at least 2.
	Period int
	// Periodic makes the seasonal component exactly periodic: R's s.window = "periodic",
	// a seasonal window of 10n+1 and degree 0, followed by the mean of each cycle
	// position. SWindow and SDegree are then ignored.
	Periodic bool
	// SWindow is the span (in cycles, odd, at least 7 advised) of the cycle-subseries
	// loess, ns; SDegree its degree, 0 or 1; SJump its jump, R's ceiling(ns/10) if 0.
	SWindow, SDegree, SJump int
	// TWindow is the span of the trend loess, nt; R's nextodd(ceiling(1.5 np /
	// (1 − 1.5/ns))) (§3.5's condition (3)) if 0. TDegree is its degree, TJump its jump.
	TWindow, TDegree, TJump int
	// LWindow is the span of the low-pass loess, nl; the least odd integer ≥ np if 0.
	// LDegree is its degree, LJump its jump.
	LWindow, LDegree, LJump int
	// Inner is the number of passes of the inner loop, ni; Outer the number of
	// robustness iterations, no (0: no robustness weights).
	Inner, Outer int
}

// STLPeriodic is the seasonal window that asks NewSTL for a periodic seasonal component,
// as R's s.window = "periodic".
const STLPeriodic = 0

// NewSTL returns R's stl defaults for a series with the given period and seasonal
// window (STLPeriodic for a periodic seasonal): seasonal degree 0, trend and low-pass
// degree 1, windows and jumps left at 0 to be derived from the data's length and the
// other windows, and inner = 2, outer = 0 (or inner = 1, outer = 15 when robust), as in
// R's stats::stl.
func NewSTL(period, sWindow int, robust bool) STL {
	s := STL{Period: period, Periodic: sWindow == STLPeriodic, SWindow: sWindow, TDegree: 1, LDegree: 1, Inner: 2}
	if robust {
		s.Inner, s.Outer = 1, 15
	}
	return s
}

// STLResult is a decomposition y = Seasonal + Trend + Remainder. Weights are the
// robustness weights of the last outer iteration, all 1 without robustness.
type STLResult struct {
	Seasonal, Trend, Remainder, Weights []float64
}

// Decompose decomposes y. It returns ErrNotFinite for a NaN or infinity and ErrTooShort
// when y does not hold more than two cycles (R's stl refuses n ≤ 2·period).
func (s STL) Decompose(y []float64) (STLResult, error) {
	if s.Period < 2 {
		panic("forecast: STL.Period must be at least 2")
	}
	if s.Inner < 1 || s.Outer < 0 {
		panic("forecast: STL.Inner must be at least 1 and Outer at least 0; use NewSTL")
	}
	for _, d := range []int{s.SDegree, s.TDegree, s.LDegree} {
		if d != 0 && d != 1 {
			panic("forecast: STL degrees must be 0 or 1")
		}
	}
	if err := requireFinite(y); err != nil {
		return STLResult{}, err
	}
	n, np := len(y), s.Period
	if n <= 2*np {
		return STLResult{}, ErrTooShort
	}
	p := s.params(n)
	r := STLResult{
		Seasonal:  make([]float64, n),
		Trend:     make([]float64, n),
		Remainder: make([]float64, n),
		Weights:   make([]float64, n),
	}
	w := newSTLWork(n, p.np)
	w.run(y, p, r.Seasonal, r.Trend, r.Weights)
	if s.Periodic {
		// R replaces the seasonal by the mean of each cycle position, counted from
		// the first observation, so that it repeats exactly.
		mean := make([]float64, np)
		count := make([]int, np)
		for i, v := range r.Seasonal {
			mean[i%np] += v
			count[i%np]++
		}
		for j := range mean {
			mean[j] /= float64(count[j])
		}
		for i := range r.Seasonal {
			r.Seasonal[i] = mean[i%np]
		}
	}
	for i := range y {
		r.Remainder[i] = y[i] - r.Seasonal[i] - r.Trend[i]
	}
	return r, nil
}

// stlParams are the values the Fortran routine stl receives, already made odd and at
// least 3 as it makes them.
type stlParams struct {
	np                     int
	ns, nt, nl             int
	isdeg, itdeg, ildeg    int
	nsjump, ntjump, nljump int
	ni, no                 int
}

// params derives R's defaults for a series of length n, in the order R evaluates them:
// s.window (10n+1 when periodic), then t.window from it, then the jumps from the
// windows as given (before the Fortran makes them odd).
func (s STL) params(n int) stlParams {
	ns, sdeg := s.SWindow, s.SDegree
	if s.Periodic {
		ns, sdeg = 10*n+1, 0
	}
	if ns < 1 {
		panic("forecast: STL.SWindow must be at least 1 unless Periodic")
	}
	nt := s.TWindow
	if nt == 0 {
		nt = stlNextOdd(math.Ceil(1.5 * float64(s.Period) / (1 - 1.5/float64(ns))))
	}
	nl := s.LWindow
	if nl == 0 {
		nl = stlNextOdd(float64(s.Period))
	}
	jump := func(j, window int) int {
		if j > 0 {
			return j
		}
		return (window + 9) / 10 // ceiling(window/10)
	}
	odd := func(w int) int {
		w = max(3, w)
		if w%2 == 0 {
			w++
		}
		return w
	}
	return stlParams{
		np: max(2, s.Period),
		ns: odd(ns), nt: odd(nt), nl: odd(nl),
		isdeg: sdeg, itdeg: s.TDegree, ildeg: s.LDegree,
		nsjump: jump(s.SJump, ns), ntjump: jump(s.TJump, nt), nljump: jump(s.LJump, nl),
		ni: s.Inner, no: s.Outer,
	}
}

// stlNextOdd is R's nextodd: x rounded, plus one if even.
func stlNextOdd(x float64) int {
	k := int(math.RoundToEven(x))
	if k%2 == 0 {
		k++
	}
	return k
}

// stlWork holds the Fortran's work array (the three of its five columns of n+2np that
// a one-pass loess still needs) and room for one cycle-subseries, so that a
// decomposition allocates once.
type stlWork struct {
	w1, w2, w3 []float64
	// sub and subW hold one cycle-subseries and its robustness weights, subOut its
	// smoothed values with one extension at each end.
	sub, subW, subOut []float64
}

func newSTLWork(n, np int) *stlWork {
	m := n + 2*np
	k := n/np + 1
	buf := make([]float64, 3*m+3*k+2)
	w := &stlWork{}
	w.w1, buf = buf[:m], buf[m:]
	w.w2, buf = buf[:m], buf[m:]
	w.w3, buf = buf[:m], buf[m:]
	w.sub, buf = buf[:k], buf[k:]
	w.subW, buf = buf[:k], buf[k:]
	w.subOut = buf[:k+2]
	return w
}

// run is the Fortran's stl: the inner loop, then, no times, robustness weights from
// the remainder and the inner loop again with them.
func (w *stlWork) run(y []float64, p stlParams, season, trend, rw []float64) {
	for i := range trend {
		trend[i] = 0
	}
	userw := false
	for k := 0; ; k++ {
		w.inner(y, p, userw, rw, season, trend)
		if k+1 > p.no {
			break
		}
		fit := w.w1[:len(y)]
		for i := range y {
			fit[i] = trend[i] + season[i]
		}
		stlRobustWeights(y, fit, rw)
		userw = true
	}
	if p.no <= 0 {
		for i := range rw {
			rw[i] = 1
		}
	}
}

// inner is the Fortran's stlstp, ni passes of the inner loop (§2.2, steps 1–6).
func (w *stlWork) inner(y []float64, p stlParams, userw bool, rw, season, trend []float64) {
	n, np := len(y), p.np
	for range p.ni {
		// Step 1: detrending.
		for i := range n {
			w.w1[i] = y[i] - trend[i]
		}
		// Step 2: cycle-subseries smoothing, into w2 (n+2np long: one extra
		// cycle at each end).
		w.subseries(w.w1[:n], np, p.ns, p.isdeg, p.nsjump, userw, rw, w.w2)
		// Step 3: low-pass filter of the smoothed cycle-subseries: moving averages
		// of lengths np, np, 3, then loess of span nl, into w1.
		stlMovingAverage(w.w2[:n+2*np], np, w.w3)
		stlMovingAverage(w.w3[:n+np+1], np, w.w1)
		stlMovingAverage(w.w1[:n+2], 3, w.w3)
		stlLoess(w.w3[:n], p.nl, p.ildeg, p.nljump, false, nil, w.w1[:n])
		// Step 4: detrending of the smoothed cycle-subseries.
		for i := range n {
			season[i] = w.w2[np+i] - w.w1[i]
		}
		// Step 5: deseasonalising; step 6: trend smoothing.
		for i := range n {
			w.w1[i] = y[i] - season[i]
		}
		stlLoess(w.w1[:n], p.nt, p.itdeg, p.ntjump, userw, rw, trend)
	}
}

// subseries is the Fortran's stlss: each cycle-subseries (the values at one position
// of the cycle) is smoothed by loess of span ns and extended by one value at each end,
// the loess evaluated at positions 0 and k+1; out receives the np+n+np values.
func (w *stlWork) subseries(y []float64, np, ns, deg, jump int, userw bool, rw, out []float64) {
	n := len(y)
	for j := range np {
		k := (n-j-1)/np + 1
		sub, subW := w.sub[:k], w.subW[:k]
		for i := range k {
			sub[i] = y[i*np+j]
		}
		if userw {
			for i := range k {
				subW[i] = rw[i*np+j]
			}
		}
		ext := w.subOut[:k+2]
		stlLoess(sub, ns, deg, jump, userw, subW, ext[1:k+1])
		v, ok := stlEstimate(sub, ns, deg, 0, 1, min(ns, k), userw, subW)
		if !ok {
			v = ext[1]
		}
		ext[0] = v
		v, ok = stlEstimate(sub, ns, deg, float64(k+1), max(1, k-ns+1), k, userw, subW)
		if !ok {
			v = ext[k]
		}
		ext[k+1] = v
		for m := range k + 2 {
			out[m*np+j] = ext[m]
		}
	}
}

// stlMovingAverage is the Fortran's stlma: ave[j] is the mean of x[j:j+length], for
// the len(x)−length+1 positions, by a running sum as the Fortran does.
func stlMovingAverage(x []float64, length int, ave []float64) {
	newn := len(x) - length + 1
	flen := float64(length)
	var v float64
	for i := range length {
		v += x[i]
	}
	ave[0] = v / flen
	for j := 1; j < newn; j++ {
		v = v - x[j-1] + x[j+length-1]
		ave[j] = v / flen
	}
}

// stlLoess is the Fortran's stless: loess of y (at positions 1..n) with span length
// and degree deg, evaluated at every jump-th position and at the last, and linearly
// interpolated in between, into ys.
func stlLoess(y []float64, length, deg, jump int, userw bool, rw, ys []float64) {
	n := len(y)
	if n < 2 {
		ys[0] = y[0]
		return
	}
	newnj := min(jump, n-1)
	var nleft, nright int
	switch {
	case length >= n:
		nleft, nright = 1, n
		for i := 1; i <= n; i += newnj {
			v, ok := stlEstimate(y, length, deg, float64(i), nleft, nright, userw, rw)
			if !ok {
				v = y[i-1]
			}
			ys[i-1] = v
		}
	case newnj == 1:
		nsh := (length + 1) / 2
		nleft, nright = 1, length
		for i := 1; i <= n; i++ {
			if i > nsh && nright != n {
				nleft++
				nright++
			}
			v, ok := stlEstimate(y, length, deg, float64(i), nleft, nright, userw, rw)
			if !ok {
				v = y[i-1]
			}
			ys[i-1] = v
		}
	default:
		nsh := (length + 1) / 2
		for i := 1; i <= n; i += newnj {
			switch {
			case i < nsh:
				nleft, nright = 1, length
			case i >= n-nsh+1:
				nleft, nright = n-length+1, n
			default:
				nleft, nright = i-nsh+1, length+i-nsh
			}
			v, ok := stlEstimate(y, length, deg, float64(i), nleft, nright, userw, rw)
			if !ok {
				v = y[i-1]
			}
			ys[i-1] = v
		}
	}
	if newnj == 1 {
		return
	}
	// Linear interpolation between the evaluated points (1-based i, i+newnj).
	for i := 1; i <= n-newnj; i += newnj {
		delta := (ys[i+newnj-1] - ys[i-1]) / float64(newnj)
		for j := i + 1; j <= i+newnj-1; j++ {
			ys[j-1] = ys[i-1] + delta*float64(j-i)
		}
	}
	k := ((n-1)/newnj)*newnj + 1
	if k != n {
		// The last point was not on the grid: evaluate it, with the last window
		// as the Fortran does, and interpolate back to k.
		v, ok := stlEstimate(y, length, deg, float64(n), nleft, nright, userw, rw)
		if !ok {
			v = y[n-1]
		}
		ys[n-1] = v
		if k != n-1 {
			delta := (ys[n-1] - ys[k-1]) / float64(n-k)
			for j := k + 1; j <= n-1; j++ {
				ys[j-1] = ys[k-1] + delta*float64(j-k)
			}
		}
	}
}

// stlEstimate is the Fortran's stlest: the loess fit at position xs (1-based) from the
// points nleft..nright (1-based, inclusive) of y, with tricube weights of bandwidth
// h = the farther of the window's ends, widened by (length−n)/2 when the span exceeds
// the series (§2.1), times the robustness weights rw when userw. Degree 1 fits a local
// line unless the points' weighted spread is tiny. ok is false when every weight is
// zero.
//
// The Fortran normalises the weights, then makes a second and third pass for the
// line; here one pass gathers the weighted sums of 1, d, d², y and d·y with d = j − xs
// (centred, so that the variance does not cancel badly) and the line follows in closed
// form. That is the same fit with sums taken in another order: R's numbers to ~1e-14.
func stlEstimate(y []float64, length, deg int, xs float64, nleft, nright int, userw bool, rw []float64) (ys float64, ok bool) {
	n := len(y)
	h := max(xs-float64(nleft), float64(nright)-xs)
	if length > n {
		h += float64((length - n) / 2)
	}
	h9, h1, invH := 0.999*h, 0.001*h, 1/h
	var sw, swd, swdd, swy, swdy float64
	for j := nleft; j <= nright; j++ {
		d := float64(j) - xs
		r := math.Abs(d)
		if r > h9 {
			continue
		}
		w := 1.0
		if r > h1 {
			q := r * invH
			q = 1 - q*q*q
			w = q * q * q
		}
		if userw {
			w *= rw[j-1]
		}
		v := y[j-1]
		sw += w
		swd += w * d
		swdd += w * d * d
		swy += w * v
		swdy += w * d * v
	}
	if sw <= 0 {
		return 0, false
	}
	ys = swy / sw
	if h > 0 && deg > 0 {
		// With normalised weights, a = Σ w j is the weighted mean position and c =
		// Σ w (j − a)² the spread; the fitted line at xs is Σ w (1 + b (j − a)) y
		// with b = (xs − a)/c. In terms of d: a − xs = md, Σ w (j − a) y = Σ w d y
		// − md Σ w y.
		md := swd / sw
		c := swdd/sw - md*md
		if math.Sqrt(c) > 0.001*(float64(n)-1) {
			ys += -md / c * (swdy/sw - md*ys)
		}
	}
	return ys, true
}

// stlRobustWeights is the Fortran's stlrwt (§2.3): rw = B(|y−fit| / h) with h six
// times the median absolute remainder and B the bisquare, 1 near zero and 0 beyond
// 0.999h.
func stlRobustWeights(y, fit, rw []float64) {
	n := len(y)
	for i := range y {
		rw[i] = math.Abs(y[i] - fit[i])
	}
	// cmad is six times the median |remainder|, the mean of the two middle values
	// when n is even. (R's Fortran asks its partial sort for those two positions in
	// descending order, which that sort does not support, so for even n R can take
	// another order statistic; we keep the paper's median. See stl_test.go.)
	sorted := slices.Clone(rw)
	slices.Sort(sorted)
	cmad := 3 * (sorted[n/2] + sorted[n-n/2-1])
	c9, c1 := 0.999*cmad, 0.001*cmad
	for i := range y {
		r := math.Abs(y[i] - fit[i])
		switch {
		case r <= c1:
			rw[i] = 1
		case r <= c9:
			q := r / cmad
			q = 1 - q*q
			rw[i] = q * q
		default:
			rw[i] = 0
		}
	}
}
