package forecast

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Hand-computed quantiles: Poisson P(N ≤ k) = e^−μ Σ μ^i/i!; the negative binomial of
// dispersion 1 is geometric, P(N ≤ k) = 1 − (μ/(1+μ))^(k+1).
func TestCountQuantile(t *testing.T) {
	cases := []struct {
		name           string
		mean, alpha, q float64
		want           float64
	}{
		{"zero mean", 0, 0, 0.9, 0},
		{"Poisson 1 at 0.1: P(0) = 0.368", 1, 0, 0.1, 0},
		{"Poisson 1 at 0.5: P(≤0) = 0.368, P(≤1) = 0.736", 1, 0, 0.5, 1},
		{"Poisson 1 at 0.9: P(≤1) = 0.736, P(≤2) = 0.920", 1, 0, 0.9, 2},
		{"Poisson 0.5 at 0.9: P(≤0) = 0.607, P(≤1) = 0.910", 0.5, 0, 0.9, 1},
		{"Poisson 0.5 at 0.95: P(≤1) = 0.910, P(≤2) = 0.986", 0.5, 0, 0.95, 2},
		{"Poisson median is the integer mean", 1e6, 0, 0.5, 1e6},
		{"geometric 4 at 0.5: 1−0.8³ = 0.488, 1−0.8⁴ = 0.590", 4, 1, 0.5, 3},
		{"geometric 4 at 0.9: 1−0.8¹⁰ = 0.893, 1−0.8¹¹ = 0.914", 4, 1, 0.9, 10},
		{"geometric 1e6 at 0.5: k+1 ≥ ln 2/ln(1+1e-6)", 1e6, 1, 0.5, 693147},
		// Above 10⁶, the continuous limits: the normal, and the exponential (gamma of
		// shape 1), whose median is μ·ln 2.
		{"Poisson 1e8 at 0.5", 1e8, 0, 0.5, 1e8},
		{"geometric 1e8 at 0.5", 1e8, 1, 0.5, 69314718},
		{"huge", math.MaxFloat64, 0.5, 0.9, math.Inf(1)},
	}
	for _, c := range cases {
		if got := CountQuantile(c.mean, c.alpha, c.q); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// Against gonum's Poisson CDF: the least k with CDF(k) ≥ q.
	for _, mu := range []float64{0.01, 0.3, 2.5, 7, 30, 250} {
		p := distuv.Poisson{Lambda: mu}
		for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99} {
			k := CountQuantile(mu, 0, q)
			if p.CDF(k) < q || k > 0 && p.CDF(k-1) >= q {
				t.Errorf("Poisson %v at %v: got %v, CDF %v, CDF below %v", mu, q, k, p.CDF(k), p.CDF(k-1))
			}
		}
	}
}

// poissonCounts draws counts at the rates rate(t) from a seeded generator; with
// alpha > 0 each rate is first drawn from a gamma of mean rate(t) and variance
// alpha·rate(t)², so the counts are negative binomial.
func poissonCounts(n int, rate func(t int) float64, alpha float64, seed uint64) []float64 {
	src := rand.NewPCG(seed, 1)
	y := make([]float64, n)
	for t := range y {
		l := rate(t)
		if alpha > 0 && l > 0 {
			l = distuv.Gamma{Alpha: 1 / alpha, Beta: 1 / (alpha * l), Src: src}.Rand()
		}
		if l > 0 {
			y[t] = distuv.Poisson{Lambda: l, Src: src}.Rand()
		}
	}
	return y
}

// weeklyRate is busy on weekday working hours, quiet at night and on two days of
// the week, as migrations scheduled by people are.
func weeklyRate(t int) float64 {
	hour, day := t%24, t/24%7
	switch {
	case day >= 5:
		return 0.2
	case hour >= 8 && hour < 18:
		return 6
	default:
		return 0.5
	}
}

func TestCountRateLearnsTheWeek(t *testing.T) {
	const n = 4 * 168
	y := poissonCounts(n, weeklyRate, 0, 1)
	m := NewCountRate(24)
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	f, err := m.Forecast(168, []float64{0.1, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "count(week)" {
		t.Errorf("model %s, want count(week)", m.Name())
	}
	// The hour-of-day mean (the baseline) cannot tell the weekend from a weekday:
	// on this rate its mean absolute error is about 1.1 arrivals an hour.
	var mae float64
	for s := range 168 {
		mae += math.Abs(f.Mean[s]-weeklyRate(n+s)) / 168
		if f.Values[0][s] > f.Values[1][s] || f.Values[0][s] != math.Floor(f.Values[0][s]) {
			t.Fatalf("step %d: quantiles %v, %v are not ordered whole counts", s, f.Values[0][s], f.Values[1][s])
		}
	}
	if mae > 0.4 {
		t.Errorf("mean absolute error against the true rate %.3f, want under 0.4", mae)
	}
}

func TestCountRateDispersionFollowsTheData(t *testing.T) {
	const n = 4 * 168
	rate := func(t int) float64 { return 3 + 2*math.Sin(2*math.Pi*float64(t%24)/24) }
	for _, c := range []struct {
		name       string
		alpha      float64
		minA, maxA float64
	}{
		// The rate's own estimation error leaves a little dispersion on Poisson counts.
		{"Poisson", 0, 0, 0.05},
		{"negative binomial", 0.5, 0.3, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := poissonCounts(n+48*20, rate, c.alpha, 2)
			m := NewCountRate(24)
			if err := m.Fit(y[:n]); err != nil {
				t.Fatal(err)
			}
			if m.alpha < c.minA || m.alpha > c.maxA {
				t.Errorf("dispersion %.3f, want %.2f to %.2f", m.alpha, c.minA, c.maxA)
			}
			// The 80% interval on 20 fresh 48-hour windows: whole-count quantiles hold
			// at least 80%, and not much more on counts this large. Poisson quantiles
			// would hold about 70% of the negative binomial counts.
			f, err := m.Forecast(48, []float64{0.1, 0.9})
			if err != nil {
				t.Fatal(err)
			}
			var in float64
			for k := range 20 {
				in += Coverage(y[n+48*k:n+48*(k+1)], f.Values[0], f.Values[1]) / 20
			}
			if in < 0.8 || in > 0.95 {
				t.Errorf("80%% interval holds %.1f%% of fresh counts", 100*in)
			}
		})
	}
}

func TestCountRateOnShortAndAwkwardSeries(t *testing.T) {
	daily := func(t int) float64 { return 1 + math.Sin(2*math.Pi*float64(t)/24) }
	cases := []struct {
		name  string
		y     []float64
		model string
		err   error
	}{
		{"empty", nil, "", ErrTooShort},
		{"negative", []float64{1, -1, 2}, "", ErrNegative},
		{"NaN", []float64{1, math.NaN()}, "", ErrNotFinite},
		{"under a day", []float64{0, 2, 1, 0, 3}, "count(level)", nil},
		{"five days", poissonCounts(5*24, daily, 0, 3), "count(period)", nil},
		{"all zeros", make([]float64, 4*168), "count(week)", nil},
		{"rates, not counts", []float64{0.5, 1.25, 0.75, 2.5, 0.5, 1.25, 0.75, 2.5}, "count(level)", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewCountRate(24)
			err := m.Fit(c.y)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if m.Name() != c.model {
				t.Errorf("model %s, want %s", m.Name(), c.model)
			}
			f, err := m.Forecast(400, []float64{0.1, 0.5, 0.9})
			if err != nil {
				t.Fatal(err)
			}
			if !f.finite() {
				t.Fatal("non-finite forecast")
			}
			for s := range 400 {
				if f.Mean[s] < 0 || f.Values[0][s] > f.Values[1][s] || f.Values[1][s] > f.Values[2][s] {
					t.Fatalf("step %d: mean %v, quantiles %v %v %v", s, f.Mean[s], f.Values[0][s], f.Values[1][s], f.Values[2][s])
				}
			}
			if c.name == "all zeros" && (f.Mean[0] != 0 || f.Values[2][0] != 0) {
				t.Errorf("all zeros forecast mean %v, 0.9 quantile %v", f.Mean[0], f.Values[2][0])
			}
			if c.model == "count(level)" && math.Abs(f.Mean[0]-stat.Mean(c.y, nil)) > 1e-12 {
				t.Errorf("level forecast %v, want the mean %v", f.Mean[0], stat.Mean(c.y, nil))
			}
		})
	}
}
