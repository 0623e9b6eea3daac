package forecast

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// y = 2·x0 + (0.1 + x1)·ε: the median follows 2·x0 and the band widens with x1. On
// held-out rows the 10–90% band should hold about 80% of them.
func TestQuantileRegressorLearnsAConditionalBand(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	row := func() ([]float64, float64) {
		a, b := r.Float64(), r.Float64()
		return []float64{a, b}, 2*a + (0.1+b)*r.NormFloat64()
	}
	var x [][]float64
	var y []float64
	for range 3000 {
		xi, yi := row()
		x, y = append(x, xi), append(y, yi)
	}
	m := DefaultRegressor()
	if err := m.Fit(x, y); err != nil {
		t.Fatal(err)
	}
	inside, n := 0, 2000
	var medErr float64
	for range n {
		xi, yi := row()
		q := m.Predict(xi)
		if q[0] > q[1] || q[1] > q[2] {
			t.Fatalf("quantiles out of order: %v", q)
		}
		if yi >= q[0] && yi <= q[2] {
			inside++
		}
		medErr += math.Abs(q[1] - 2*xi[0])
	}
	if share := float64(inside) / float64(n); math.Abs(share-0.8) > 0.05 {
		t.Errorf("the 10–90%% band held %.3f of held-out rows, want about 0.8", share)
	}
	if mean := medErr / float64(n); mean > 0.15 {
		t.Errorf("the median is %.3f from 2·x0 on average", mean)
	}
	// Deterministic: the same data gives the same model.
	m2 := DefaultRegressor()
	if err := m2.Fit(x, y); err != nil {
		t.Fatal(err)
	}
	if a, b := m.Predict([]float64{0.3, 0.7}), m2.Predict([]float64{0.3, 0.7}); a[1] != b[1] {
		t.Errorf("two fits differ: %v, %v", a, b)
	}
}

func TestQuantileRegressorRefusesTooLittleOrBadData(t *testing.T) {
	m := DefaultRegressor()
	if err := m.Fit([][]float64{{1}}, []float64{1}); !errors.Is(err, ErrTooShort) {
		t.Errorf("got %v, want ErrTooShort", err)
	}
	x := make([][]float64, 30)
	y := make([]float64, 30)
	for i := range x {
		x[i] = []float64{float64(i)}
	}
	y[3] = math.NaN()
	if err := m.Fit(x, y); !errors.Is(err, ErrNotFinite) {
		t.Errorf("got %v, want ErrNotFinite", err)
	}
}
