package forecast

import (
	"fmt"
	"slices"
)

// QuantileRegressor is gradient-boosted trees for plain regression, on the same tree
// learner as GBRT: rows of features in, chosen quantiles of the target out, one
// pinball-loss booster per quantile (Friedman 2001 §4.6). The planner uses it for the
// transfer rate and duration of a migration from what it is and where it runs.
type QuantileRegressor struct {
	// Quantiles are the levels to learn, each in (0, 1).
	Quantiles []float64
	// Boosting sets the trees; zero fields take the defaults of DefaultRegressor.
	Boosting Boosting
	// Bins quantises each feature; 64 if zero.
	Bins int
	// Seed makes training deterministic.
	Seed uint64

	nf     int
	models []*booster
}

// DefaultRegressor returns a regressor for the 10%, 50% and 90% quantiles with
// settings that suit a few thousand rows.
func DefaultRegressor() *QuantileRegressor {
	return &QuantileRegressor{Quantiles: []float64{0.1, 0.5, 0.9},
		Boosting: Boosting{Trees: 100, Depth: 3, LearningRate: 0.1, MinLeaf: 30, Subsample: 0.8}, Bins: 64, Seed: 1}
}

// Fit learns each quantile from rows x (all the same width) and targets y. It returns
// ErrTooShort with fewer than 20 rows and ErrNotFinite for a NaN or an infinity.
func (r *QuantileRegressor) Fit(x [][]float64, y []float64) error {
	if len(x) != len(y) {
		panic("forecast: rows and targets differ in number")
	}
	if len(x) < 20 {
		return ErrTooShort
	}
	if err := requireFinite(y); err != nil {
		return err
	}
	for _, q := range r.Quantiles {
		if !(q > 0 && q < 1) {
			panic("forecast: quantile outside (0, 1)")
		}
	}
	nf := len(x[0])
	t := &table{n: len(x), nf: nf, y: y, offset: make([]float64, len(x)), x: make([]float32, 0, len(x)*nf)}
	for _, row := range x {
		if len(row) != nf {
			panic("forecast: rows differ in width")
		}
		if err := requireFinite(row); err != nil {
			return err
		}
		for _, v := range row {
			t.x = append(t.x, float32(v))
		}
	}
	bins := r.Bins
	if bins == 0 {
		bins = 64
	}
	b := quantise(t, bins, r.Seed)
	settings := r.Boosting.or(DefaultRegressor().Boosting)
	r.nf, r.models = nf, nil
	for i, q := range r.Quantiles {
		m, _ := boost(t, b, settings.params(LossPinball, q, r.Seed+uint64(i)))
		r.models = append(r.models, m)
	}
	return nil
}

// Predict returns the quantiles of the target for one row, in the order of
// Quantiles and never decreasing.
func (r *QuantileRegressor) Predict(x []float64) []float64 {
	if r.models == nil {
		panic("forecast: Predict called before Fit")
	}
	if len(x) != r.nf {
		panic(fmt.Sprintf("forecast: a row of %d features, the model has %d", len(x), r.nf))
	}
	row := make([]float32, len(x))
	for i, v := range x {
		row[i] = float32(v)
	}
	out := make([]float64, len(r.models))
	for i, m := range r.models {
		out[i] = m.predict(row)
	}
	// Boosters learn each level apart, so they can cross a little; sorted, they are
	// quantiles again.
	if slices.IsSorted(r.Quantiles) {
		slices.Sort(out)
	}
	return out
}
