package forecast

import (
	"math"
	"slices"
)

// seasonalIndices returns the seasonal indices of a classical multiplicative
// decomposition of y with period m, as R's stats::decompose(type = "multiplicative")
// computes them (Kendall and Stuart 1983; Hyndman and Athanasopoulos, FPP3 §3.4):
//
//  1. trend: the centred moving average of order m (a 2×m MA when m is even, with
//     weights ½, 1, …, 1, ½ over m+1 points), undefined for the first and last ⌊m/2⌋
//     points;
//  2. detrended ratios y[t]/trend[t];
//  3. index[j] = mean of the ratios at positions t ≡ j (mod m), positions counted
//     from the first observation, as decompose does (it ignores calendar phase);
//  4. indices normalised so that their mean is 1.
//
// The seasonal factor of observation t is index[t%m]. y must hold at least 2m points,
// so that every position has a ratio; the caller checks.
func seasonalIndices(y []float64, m int) []float64 {
	n := len(y)
	half := m / 2
	sum := make([]float64, m)
	count := make([]int, m)
	for t := half; t+half < n; t++ {
		// Direct sums, like R's filter(), rather than a running sum: O(nm) is cheap
		// for the periods we see and keeps the result free of accumulated rounding.
		var s float64
		for k := t - half; k <= t+half; k++ {
			s += y[k]
		}
		if m%2 == 0 {
			// The 2×m MA spans m+1 points with half weight at both ends.
			s -= 0.5 * (y[t-half] + y[t+half])
		}
		j := t % m
		sum[j] += y[t] / (s / float64(m))
		count[j]++
	}
	idx := make([]float64, m)
	var mean float64
	for j := range m {
		idx[j] = sum[j] / float64(count[j])
		mean += idx[j]
	}
	mean /= float64(m)
	for j := range idx {
		idx[j] /= mean
	}
	return idx
}

// seasonalityZ90 is qnorm(0.95), the critical value of the M4 seasonality test.
const seasonalityZ90 = 1.6448536269514722

// m4Deseasonalise is the seasonal adjustment of the M4 benchmarks (Theta, Naive2, as
// in thetaf and M4's benchmark code): when m > 1, n > 2m, the data are positive and not
// constant, and seasonalTest finds seasonality at lag m, y is divided by the indices of
// a classical multiplicative decomposition. It returns the adjusted series and the
// indices by position mod m, or y itself and nil when y is not adjusted. As thetaf, it
// does not adjust when an index is near zero.
func m4Deseasonalise(y []float64, m int) (x, idx []float64) {
	n := len(y)
	if m < 2 || n <= 2*m || isConstant(y) || slices.Min(y) <= 0 || !seasonalTest(y, m) {
		return y, nil
	}
	idx = seasonalIndices(y, m)
	for _, v := range idx {
		if math.Abs(v) < 1e-4 {
			return y, nil
		}
	}
	x = make([]float64, n)
	for t, v := range y {
		x[t] = v / idx[t%m]
	}
	return x, idx
}

// isConstant reports whether every value equals the first, as
// forecast::is.constant.
func isConstant(y []float64) bool {
	for _, v := range y[1:] {
		if v != y[0] {
			return false
		}
	}
	return true
}

// seasonalTest is thetaf's seasonality test at lag m: the lag-m autocorrelation is
// significant at 90% against Bartlett's standard error under an MA(m−1) null,
// √((1 + 2·Σ_{k=1}^{m−1} r_k²)/n). The autocorrelations are those of R's acf():
// the lag-k sum of centred products over the lag-0 sum.
func seasonalTest(y []float64, m int) bool {
	n := len(y)
	var mean float64
	for _, v := range y {
		mean += v
	}
	mean /= float64(n)
	var c0 float64
	for _, v := range y {
		c0 += (v - mean) * (v - mean)
	}
	acf := func(k int) float64 {
		var c float64
		for t := 0; t+k < n; t++ {
			c += (y[t] - mean) * (y[t+k] - mean)
		}
		return c / c0
	}
	var sum2 float64
	for k := 1; k < m; k++ {
		r := acf(k)
		sum2 += r * r
	}
	limit := seasonalityZ90 * math.Sqrt((1+2*sum2)/float64(n))
	return math.Abs(acf(m)) > limit
}
