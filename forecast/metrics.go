package forecast

import "math"

// Accuracy measures, as the M4 competition defined them (Makridakis, Spiliotis and
// Assimakopoulos, "The M4 Competition: 100,000 time series and 61 forecasting methods",
// IJF 36(1), 2020, §2.3). ../shared/tools/m4score.py computes the same.

// SMAPE is the symmetric mean absolute percentage error of f against the actuals y, in
// percent: the mean of 200|y−f|/(|y|+|f|). A step where both are zero counts as no error.
func SMAPE(y, f []float64) float64 {
	checkSameLength(y, f)
	var sum float64
	for t := range y {
		if d := math.Abs(y[t]) + math.Abs(f[t]); d > 0 {
			sum += 200 * math.Abs(y[t]-f[t]) / d
		}
	}
	return sum / float64(len(y))
}

// NaiveScale is MASE's denominator: the in-sample mean absolute error of the seasonal
// naive forecast, mean |x[t]−x[t−m]|. It is 0 when the series repeats exactly or is
// shorter than m+1 points.
func NaiveScale(insample []float64, m int) float64 {
	if m < 1 {
		panic("forecast: period must be at least 1")
	}
	if len(insample) <= m {
		return 0
	}
	var sum float64
	for t := m; t < len(insample); t++ {
		sum += math.Abs(insample[t] - insample[t-m])
	}
	return sum / float64(len(insample)-m)
}

// MASE is the mean absolute scaled error of f against y, scaled by NaiveScale of the
// in-sample data with period m. Where the scale is 0 it returns 0, as M4's scorer does,
// so that a perfectly repeating series does not make the mean infinite.
func MASE(insample, y, f []float64, m int) float64 {
	checkSameLength(y, f)
	scale := NaiveScale(insample, m)
	if scale == 0 {
		return 0
	}
	var sum float64
	for t := range y {
		sum += math.Abs(y[t] - f[t])
	}
	return sum / float64(len(y)) / scale
}

// OWA is the overall weighted average of M4: the mean of sMAPE and MASE, each relative
// to the Naive2 benchmark's on the same data. Below 1 beats Naive2.
func OWA(smape, mase, naive2SMAPE, naive2MASE float64) float64 {
	return (smape/naive2SMAPE + mase/naive2MASE) / 2
}

// M4HourlyNaive2 are Naive2's published scores on the M4 hourly set, which OWA on that
// set is relative to (M4's "Evaluation and Ranks" sheet).
var M4HourlyNaive2 = struct{ SMAPE, MASE float64 }{SMAPE: 18.383, MASE: 2.395}

// Coverage is the share of the actuals y that fall within [lo, hi].
func Coverage(y, lo, hi []float64) float64 {
	checkSameLength(y, lo)
	checkSameLength(y, hi)
	in := 0
	for t := range y {
		if y[t] >= lo[t] && y[t] <= hi[t] {
			in++
		}
	}
	return float64(in) / float64(len(y))
}

// Pinball is the mean pinball (quantile) loss of the q-quantile forecast f against the
// actuals y: the mean of q(y−f) where y ≥ f and (1−q)(f−y) where y < f. It is a proper
// scoring rule for quantiles: the true q-quantile minimises its expectation (Gneiting
// and Raftery, "Strictly proper scoring rules", JASA 102(477), 2007, §6).
func Pinball(y, f []float64, q float64) float64 {
	checkSameLength(y, f)
	var sum float64
	for t := range y {
		if d := y[t] - f[t]; d >= 0 {
			sum += q * d
		} else {
			sum -= (1 - q) * d
		}
	}
	return sum / float64(len(y))
}

// MSIS is M4's mean scaled interval score of the central (1−a) interval [lo, hi]: its
// width, plus 2/a times how far each actual falls outside it, scaled like MASE. Narrow
// intervals that still hold the actuals score low. It returns 0 where the scale is 0.
func MSIS(insample, y, lo, hi []float64, m int, a float64) float64 {
	checkSameLength(y, lo)
	checkSameLength(y, hi)
	scale := NaiveScale(insample, m)
	if scale == 0 {
		return 0
	}
	var sum float64
	for t := range y {
		sum += hi[t] - lo[t]
		if y[t] < lo[t] {
			sum += 2 / a * (lo[t] - y[t])
		}
		if y[t] > hi[t] {
			sum += 2 / a * (y[t] - hi[t])
		}
	}
	return sum / float64(len(y)) / scale
}

func checkSameLength(a, b []float64) {
	if len(a) != len(b) || len(a) == 0 {
		panic("forecast: actuals and forecast must have the same, non-zero length")
	}
}
