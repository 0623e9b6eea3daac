package forecast

import (
	"math"
	"strings"
	"testing"
)

// Rolling-origin validation (Tashman 2000) on series whose best model is known by
// construction picks that model.
func TestCombinationSelectsTheMemberThatValidatesBest(t *testing.T) {
	day := func(i int) float64 { return 10 * math.Sin(2*math.Pi*float64(i%24)/24) }
	week := func(i int) float64 { return 20 * float64(i%168/24) } // a level per weekday
	cases := []struct {
		name  string
		truth func(i int) float64
		best  string
	}{
		// Seasonal naive lags a trend by a day; Theta's drift follows it.
		{"daily pattern on a trend", func(i int) float64 { return 100 + 0.5*float64(i) + day(i) }, "theta"},
		// A day that repeats exactly: seasonal naive is exact, Theta smooths it.
		{"repeating day", func(i int) float64 { return 100 + day(i) }, "snaive"},
		// Each weekday has its own level: only the weekly seasonal naive knows it.
		{"weekday levels", func(i int) float64 { return 100 + day(i) + week(i) }, "snaive-long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := make([]float64, 24*7*4)
			for i := range y {
				y[i] = c.truth(i)
			}
			comb := &Combination{Members: []string{"snaive", "snaive-long", "theta"}, Period: 24, Horizon: 48, Origins: 2, Top: 1}
			if err := comb.Fit(y); err != nil {
				t.Fatal(err)
			}
			if got := comb.Chosen(); len(got) != 1 || got[0] != c.best {
				t.Fatalf("chose %v (validation MASE %v), want %s", got, comb.errors, c.best)
			}
			fc, err := comb.Forecast(48, []float64{0.05, 0.95})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 48 {
				if want := c.truth(len(y) + i); math.Abs(fc.Mean[i]-want) > 0.05*math.Abs(want)+1 {
					t.Fatalf("step %d: %v, want about %v", i, fc.Mean[i], want)
				}
			}
		})
	}
}

// Top 2 averages the two best, weighted by 1/MASE, and the quantiles with them.
func TestCombinationWeightsTheMemberThatValidatesBest(t *testing.T) {
	truth := func(i int) float64 { return 100 + 0.5*float64(i) + 10*math.Sin(2*math.Pi*float64(i%24)/24) }
	y := make([]float64, 24*10)
	for i := range y {
		y[i] = truth(i)
	}
	c := &Combination{Members: []string{"snaive", "naive2", "theta"}, Period: 24, Horizon: 48, Origins: 1, Top: 2}
	if err := c.Fit(y); err != nil {
		t.Fatal(err)
	}
	if !(c.errors[2] < c.errors[0] && c.errors[2] < c.errors[1]) {
		t.Fatalf("validation MASE %v: Theta should be best", c.errors)
	}
	if !(c.weights[2] > c.weights[0] && c.weights[2] > c.weights[1]) {
		t.Fatalf("weights %v: Theta should weigh most", c.weights)
	}
	var sum float64
	for _, w := range c.weights {
		sum += w
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Fatalf("weights %v sum to %v", c.weights, sum)
	}
	if nonzero := countNonzero(c.weights); nonzero != 2 {
		t.Fatalf("Top 2 should keep two members, got %v", c.weights)
	}
	fc, err := c.Forecast(24, []float64{0.05, 0.95})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 24 {
		if want := truth(len(y) + i); math.Abs(fc.Mean[i]-want) > 0.05*want {
			t.Fatalf("step %d: %v, want about %v", i, fc.Mean[i], want)
		}
		if !(fc.Values[0][i] <= fc.Mean[i]+1e-9 && fc.Mean[i] <= fc.Values[1][i]+1e-9) {
			t.Fatalf("step %d: quantiles %v %v around %v", i, fc.Values[0][i], fc.Values[1][i], fc.Mean[i])
		}
	}
	if !strings.HasPrefix(c.Name(), "combo(") || !strings.Contains(c.Name(), "theta 0.") {
		t.Fatalf("name %q", c.Name())
	}
}

// Too short to validate: every member that fits the whole series gets an equal weight.
func TestCombinationWithoutValidationAveragesEqually(t *testing.T) {
	y := []float64{5, 6, 7, 8, 9, 10}
	c := &Combination{Members: []string{"snaive", "theta"}, Period: 1, Horizon: 48, Origins: 1, Top: 2}
	if err := c.Fit(y); err != nil {
		t.Fatal(err)
	}
	if c.weights[0] != 0.5 || c.weights[1] != 0.5 {
		t.Fatalf("weights %v", c.weights)
	}
}

func countNonzero(w []float64) int {
	n := 0
	for _, v := range w {
		if v > 0 {
			n++
		}
	}
	return n
}
