package forecast

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/pmo-dev/pmo/widecsv"
)

// The default model's targets on the M4 hourly set (see docs/forecasting.md): OWA at
// most 0.41, better than the best M4 hourly entry, and 90% intervals that hold 85–95%
// of the test points. make bench-forecast prints the full table and the timings.
func TestDefaultModelMeetsTheM4HourlyTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("fits all 414 M4 hourly series")
	}
	dir := filepath.Join("..", "..", "shared", "data", "m4-hourly")
	train, err := widecsv.ReadFile(filepath.Join(dir, "Hourly-train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	test, err := widecsv.ReadFile(filepath.Join(dir, "Hourly-test.csv"))
	if err != nil {
		t.Fatal(err)
	}
	ys := make([][]float64, len(train))
	jobs := make([]Job, len(train))
	for i, s := range train {
		ys[i] = s.Values
		jobs[i] = Job{Y: s.Values, Period: 24}
	}
	newModel, err := Prepare(DefaultModel, ys, 24, 48)
	if err != nil {
		t.Fatal(err)
	}
	results, err := Batch{NewModel: newModel, Horizon: 48, Quantiles: []float64{0.05, 0.95}, Workers: runtime.GOMAXPROCS(0)}.Run(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	var smape, mase, coverage float64
	for i, r := range results {
		y := test[i].Values
		smape += SMAPE(y, r.Forecast.Mean)
		mase += MASE(train[i].Values, y, r.Forecast.Mean, 24)
		coverage += Coverage(y, r.Forecast.Values[0], r.Forecast.Values[1])
	}
	n := float64(len(results))
	owa := OWA(smape/n, mase/n, M4HourlyNaive2.SMAPE, M4HourlyNaive2.MASE)
	t.Logf("sMAPE %.3f, MASE %.3f, OWA %.3f, 90%% coverage %.1f%%", smape/n, mase/n, owa, 100*coverage/n)
	if owa > 0.41 {
		t.Errorf("OWA %.3f, want at most 0.41", owa)
	}
	if c := coverage / n; c < 0.85 || c > 0.95 {
		t.Errorf("90%% intervals cover %.1f%% of test points, want 85–95%%", 100*c)
	}
}
