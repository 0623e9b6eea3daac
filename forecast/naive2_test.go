package forecast

import (
	"path/filepath"
	"testing"

	"github.com/pmo-dev/pmo/widecsv"
)

// Naive2 on the M4 hourly set scores exactly M4's published Naive2 row (sMAPE 18.383,
// MASE 2.395, from M4's "Evaluation and Ranks" sheet): the check that our seasonal
// adjustment and our scoring are M4's.
func TestNaive2ReproducesM4sPublishedHourlyScores(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "data", "m4-hourly")
	train, err := widecsv.ReadFile(filepath.Join(dir, "Hourly-train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	test, err := widecsv.ReadFile(filepath.Join(dir, "Hourly-test.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var smape, mase float64
	for i, s := range train {
		m := &Naive2{Period: 24}
		if err := m.Fit(s.Values); err != nil {
			t.Fatal(err)
		}
		fc, err := m.Forecast(48, []float64{0.05, 0.95})
		if err != nil {
			t.Fatal(err)
		}
		smape += SMAPE(test[i].Values, fc.Mean)
		mase += MASE(s.Values, test[i].Values, fc.Mean, 24)
	}
	smape /= float64(len(train))
	mase /= float64(len(train))
	if got := round3(smape); got != M4HourlyNaive2.SMAPE {
		t.Errorf("sMAPE %.4f, M4 published %.3f", smape, M4HourlyNaive2.SMAPE)
	}
	if got := round3(mase); got != M4HourlyNaive2.MASE {
		t.Errorf("MASE %.4f, M4 published %.3f", mase, M4HourlyNaive2.MASE)
	}
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
