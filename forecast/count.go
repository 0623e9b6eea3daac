package forecast

import (
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// CountRate forecasts small counts, such as migrations arriving at a site each hour:
// its mean is the expected count (a rate), and its quantiles are those of a negative
// binomial around that rate. The rate of step j is
//
//	λ[j] = s[p(j)]·ℓ
//
// with s the seasonal rate of j's phase p in the longest cycle the history holds two
// of (Week, else Period) and ℓ the recent level relative to s. Each layer is an
// empirical-Bayes estimate shrunk towards the one below it:
//
//  1. Counts above 1.5λ + 2(√λ + 1), λ the plain mean of their phase of the period,
//     are clipped, so that one burst does not recur in every forecast cycle.
//  2. Phase-of-period means d[i] weigh each period by 2^(−age/28 periods). They are
//     shrunk towards 0.1·mean(d) + 0.9·(d[i−1] + d[i+1])/2, a smoothed profile:
//     d̂ = prior + B·(d − prior), B = τ²/(τ² + σ²), σ² = mean(d[i]/n_eff) the Poisson
//     noise of a mean and τ² = max(0, mean((d − prior)²) − σ²) the true spread
//     (the James–Stein, Efron–Morris estimator).
//  3. With two cycles of Week, phase-of-week means w[p] are shrunk in the same way
//     towards d̂[p mod Period]·ĝ[p], ĝ a local weekly factor: observed over expected
//     within ±2 steps of p, itself shrunk towards 1 by its own Poisson noise.
//  4. ℓ = Σ v·y / Σ v·s, observed over expected, weighted by 2^(−age/H) with the
//     half-life H = 20/√(count per period) periods, within [0.5, 28]: where counts are
//     few the level needs a long memory to be more than noise, where they are many it
//     can follow changes quickly (a local level's smoothing weight grows about as the
//     square root of its signal-to-noise ratio, which Poisson noise makes proportional
//     to the count).
//
// The dispersion α (variance λ + αλ²) is estimated out of sample, by maximum
// likelihood on rolling forecasts of 2·Period steps from up to 7 origins in the
// second half of the history, each fitted on the points before it: so it covers the
// error of the rate as well as the count's own noise, and the intervals are
// calibrated on data the rate did not see. α is 0 (Poisson) when the history is too
// short for any origin.
//
// The constants were chosen on simulated Poisson counts with the shapes of half the
// M4 hourly series (docs/forecasting.md). A history shorter than one period is
// forecast at its mean; one shorter than two weeks by its phase-of-period rates. Fit
// refuses negative values with ErrNegative; non-integer values are taken as rates.
type CountRate struct {
	// Period is the seasonal period m, at least 1 (24 for hourly data).
	Period int
	// Week is the longer cycle used once the history holds two of it (168 for
	// hourly data); 0 means none.
	Week int

	rates []float64 // one cycle of forecast rates, from the first step ahead
	alpha float64   // negative binomial dispersion
	cycle string    // what the rates follow, for Name
}

// NewCountRate returns the count model for a seasonal period; hourly data (24) also
// gets the weekly cycle, as MSTLPeriods gives it.
func NewCountRate(period int) *CountRate {
	p := MSTLPeriods(period)
	c := &CountRate{Period: period}
	if long := p[len(p)-1]; long > period {
		c.Week = long
	}
	return c
}

// Name returns "count", with the cycle the rates follow: week, period or level.
func (c *CountRate) Name() string { return "count(" + c.cycle + ")" }

// Constants of the rate, chosen on the tuning half of the count evaluation
// (TestCountModelOnSimulatedArrivals).
const (
	// Counts above countClipScale·λ + countClipNoise·(√λ + 1) are clipped.
	countClipScale = 1.5
	countClipNoise = 2.0
	// countProfileLife is the half-life of the profile's weights, in periods.
	countProfileLife = 28.0
	// countSmooth is the weight of the neighbouring phases in the profile's prior.
	countSmooth = 0.9
	// countWeekWindow is the half-width of the local weekly factor, in steps.
	countWeekWindow = 2
	// The level's half-life is countLevelLife/√(count per period) periods, within
	// countMinLevelLife and countMaxLevelLife.
	countLevelLife    = 20.0
	countMinLevelLife = 0.5
	countMaxLevelLife = 28.0
	// countMaxOrigins is how many validation forecasts the dispersion is fitted on.
	countMaxOrigins = 7
)

// Fit estimates the rates and the dispersion from y.
func (c *CountRate) Fit(y []float64) error {
	if c.Period < 1 {
		panic("forecast: CountRate.Period must be at least 1")
	}
	if len(y) == 0 {
		return ErrTooShort
	}
	if err := requireFinite(y); err != nil {
		return err
	}
	for _, v := range y {
		if v < 0 {
			return ErrNegative
		}
	}
	var mus, obs []float64
	h := 2 * c.Period
	for k := 1; k <= countMaxOrigins; k++ {
		o := len(y) - k*h
		if o < len(y)/2 || o < 1 {
			break
		}
		r, _ := c.rateCycle(y[:o])
		for j := range h {
			mus = append(mus, r[j%len(r)])
			obs = append(obs, y[o+j])
		}
	}
	c.alpha = nbDispersion(mus, obs)
	c.rates, c.cycle = c.rateCycle(y)
	return nil
}

// Forecast returns the rates as the mean and the negative binomial quantiles.
func (c *CountRate) Forecast(h int, quantiles []float64) (Forecast, error) {
	checkForecastCall(c.rates != nil, h, quantiles)
	f := newForecast(h, quantiles)
	n := len(c.rates)
	for t := range h {
		f.Mean[t] = c.rates[t%n]
		for i, q := range quantiles {
			if t < n {
				f.Values[i][t] = CountQuantile(f.Mean[t], c.alpha, q)
			} else {
				f.Values[i][t] = f.Values[i][t-n] // the rates repeat each cycle
			}
		}
	}
	return f, nil
}

// rateCycle returns one cycle of rates for the steps after y, and which cycle it is.
func (c *CountRate) rateCycle(y []float64) ([]float64, string) {
	n, m := len(y), c.Period
	if n < m {
		return []float64{stat.Mean(y, nil)}, "level"
	}
	y = clipBursts(y, m)
	// Phase 0 is the first step ahead; a point's phase in a cycle of k is (t−n) mod k.
	phase := func(t, k int) int { return ((t-n)%k + k) % k }
	weight := func(t int) float64 { return math.Exp2(-float64(n-1-t) / float64(m) / countProfileLife) }

	day := weightedMeans(y, m, phase, weight)
	prior := make([]float64, m)
	grand := stat.Mean(day.mean, nil)
	for i := range m {
		neighbours := (day.mean[(i+m-1)%m] + day.mean[(i+1)%m]) / 2
		prior[i] = (1-countSmooth)*grand + countSmooth*neighbours
	}
	season := day.shrink(prior)
	cycle := "period"

	if w := c.Week; w > m && w%m == 0 && n >= 2*w {
		week := weightedMeans(y, w, phase, weight)
		// The local weekly factor: observed over expected within ±countWeekWindow steps.
		factor := make([]float64, w)
		noise := make([]float64, w)
		var spread, meanNoise float64
		for p := range w {
			var obs, exp, v float64
			for i := -countWeekWindow; i <= countWeekWindow; i++ {
				q := (p + i + w) % w
				obs += week.sum[q]
				exp += season[q%m] * week.w[q]
				v += season[q%m] * week.w2[q] // Poisson variance of the weighted sum
			}
			factor[p] = 1
			if exp > 0 {
				factor[p], noise[p] = obs/exp, v/(exp*exp)
			}
			spread += (factor[p] - 1) * (factor[p] - 1) / float64(w)
			meanNoise += noise[p] / float64(w)
		}
		tau2 := max(spread-meanNoise, 0)
		wprior := make([]float64, w)
		for p := range w {
			b := 0.0
			if tau2 > 0 {
				b = tau2 / (tau2 + noise[p])
			}
			wprior[p] = season[p%m] * (1 + b*(factor[p]-1))
		}
		season, cycle = week.shrink(wprior), "week"
	}

	// The recent level, observed over expected, with a memory that shortens as the
	// counts grow.
	life := min(max(countLevelLife/math.Sqrt(max(stat.Mean(y, nil)*float64(m), 1e-9)), countMinLevelLife), countMaxLevelLife)
	k := len(season)
	var obs, exp float64
	for t := range n {
		v := math.Exp2(-float64(n-1-t) / float64(m) / life)
		obs += v * y[t]
		exp += v * season[phase(t, k)]
	}
	level := 1.0
	if exp > 0 {
		level = obs / exp
	}
	for i := range season {
		season[i] = max(season[i]*level, 0)
	}
	return season, cycle
}

// clipBursts returns y with each count above 1.5λ + 2(√λ + 1) clipped to that bound,
// λ the mean of its phase of the period m.
func clipBursts(y []float64, m int) []float64 {
	sum := make([]float64, m)
	cnt := make([]float64, m)
	for t, v := range y {
		sum[t%m] += v
		cnt[t%m]++
	}
	out := make([]float64, len(y))
	for t, v := range y {
		l := sum[t%m] / cnt[t%m]
		out[t] = min(v, countClipScale*l+countClipNoise*(math.Sqrt(l)+1))
	}
	return out
}

// phaseMeans are the weighted means of a series by phase of a cycle: sum[p]/w[p], with
// w2[p] the sum of squared weights, for the Poisson noise of the mean, mean[p]/n_eff
// with n_eff = w²/w2.
type phaseMeans struct {
	sum, w, w2, mean []float64
}

func weightedMeans(y []float64, k int, phase func(t, k int) int, weight func(t int) float64) phaseMeans {
	pm := phaseMeans{make([]float64, k), make([]float64, k), make([]float64, k), make([]float64, k)}
	for t, v := range y {
		p, u := phase(t, k), weight(t)
		pm.sum[p] += u * v
		pm.w[p] += u
		pm.w2[p] += u * u
	}
	for p := range k {
		pm.mean[p] = pm.sum[p] / pm.w[p]
	}
	return pm
}

// shrink returns the means shrunk towards prior by the empirical-Bayes factor
// B = τ²/(τ² + σ²): σ² the mean Poisson noise of a phase's mean, τ² the spread of the
// means about the prior less that noise.
func (pm phaseMeans) shrink(prior []float64) []float64 {
	k := len(pm.mean)
	var spread, noise float64
	for p := range k {
		d := pm.mean[p] - prior[p]
		spread += d * d / float64(k)
		noise += pm.mean[p] * pm.w2[p] / (pm.w[p] * pm.w[p]) / float64(k)
	}
	tau2 := max(spread-noise, 0)
	b := 1.0
	if tau2+noise > 0 {
		b = tau2 / (tau2 + noise)
	}
	out := make([]float64, k)
	for p := range k {
		out[p] = prior[p] + b*(pm.mean[p]-prior[p])
	}
	return out
}

// nbDispersions are the dispersions nbDispersion chooses from: Poisson, then a
// geometric grid from 0.005 to about 4.
var nbDispersions = func() []float64 {
	a := []float64{0}
	for v := 0.005; v < 5; v *= 1.4 {
		a = append(a, v)
	}
	return a
}()

// nbDispersion returns the dispersion α of nbDispersions under which the counts ys
// are likeliest, each negative binomial with mean mus[i] and variance μ + αμ²; 0 when
// there are none.
func nbDispersion(mus, ys []float64) float64 {
	best, bestLL := 0.0, math.Inf(-1)
	for _, a := range nbDispersions {
		var ll float64
		for i, mu := range mus {
			ll += nbLogProb(ys[i], mu, a)
		}
		if ll > bestLL {
			best, bestLL = a, ll
		}
	}
	return best
}

// nbLogProb is the log-probability of the count y under a negative binomial with mean
// μ and dispersion α (Poisson when α is 0):
//
//	log Γ(y+r) − log Γ(r) − log Γ(y+1) + r·log(r/(r+μ)) + y·log(μ/(r+μ)),  r = 1/α
//
// A mean under 0.001 counts as 0.001, so that a count where none was expected costs a
// finite amount.
func nbLogProb(y, mu, alpha float64) float64 {
	mu = max(mu, 1e-3)
	lgy, _ := math.Lgamma(y + 1)
	if alpha == 0 {
		return y*math.Log(mu) - mu - lgy
	}
	r := 1 / alpha
	lgyr, _ := math.Lgamma(y + r)
	lgr, _ := math.Lgamma(r)
	return lgyr - lgr - lgy + r*math.Log(r/(r+mu)) + y*math.Log(mu/(r+mu))
}

// CountQuantile returns the q-quantile of a count with the given mean and dispersion
// α ≥ 0: the least k with P(N ≤ k) ≥ q, for N negative binomial with variance
// μ + αμ² (Poisson when α is 0). The negative binomial of size r = 1/α has
//
//	P(N ≤ k) = I_p(r, k+1),  p = r/(r+μ)
//
// (the regularised incomplete beta), and the Poisson P(N ≤ k) = Q(k+1, μ) (the upper
// regularised incomplete gamma). The search brackets k around the normal approximation
// and bisects, so it costs a few dozen evaluations. Above a mean of 10⁶ the count is
// as good as continuous, and the incomplete functions lose their precision, so the
// quantile is that of the normal (Poisson) or the gamma of shape r and mean μ (the
// negative binomial's limit), rounded.
func CountQuantile(mean, alpha, q float64) float64 {
	if !(mean > 0) {
		return 0
	}
	if mean > 1e6 {
		if alpha == 0 {
			return math.Max(0, math.Round(mean+distuv.UnitNormal.Quantile(q)*math.Sqrt(mean)))
		}
		return math.Round(distuv.Gamma{Alpha: 1 / alpha, Beta: 1 / (alpha * mean)}.Quantile(q))
	}
	cdf := func(k float64) float64 { return mathext.GammaIncRegComp(k+1, mean) }
	if alpha > 0 {
		r := 1 / alpha
		p := r / (r + mean)
		cdf = func(k float64) float64 { return mathext.RegIncBeta(r, k+1, p) }
	}
	sd := math.Sqrt(mean + alpha*mean*mean)
	step := math.Max(1, math.Ceil(sd)) // whole steps keep every k an integer
	// Bracket cdf(lo) < q ≤ cdf(hi); lo = −1 stands for below zero.
	hi := math.Max(0, math.Floor(mean+distuv.UnitNormal.Quantile(q)*sd))
	lo := hi - 1
	for s := step; lo >= 0 && cdf(lo) >= q; s *= 2 {
		hi, lo = lo, math.Max(-1, lo-s)
	}
	for s := step; cdf(hi) < q; s *= 2 {
		lo, hi = hi, hi+s
	}
	for hi-lo > 1 {
		mid := math.Floor((lo + hi) / 2)
		if cdf(mid) >= q {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}
