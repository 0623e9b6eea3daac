package forecast

import (
	"math"
	"testing"
)

// Hand-computed cases; the M4 definitions are in metrics.go.
func TestAccuracyMeasures(t *testing.T) {
	insample := []float64{1, 2, 3, 4, 5, 6} // m=2: |3-1|,|4-2|,|5-3|,|6-4| → scale 2
	y := []float64{10, 20}
	f := []float64{12, 20}
	cases := []struct {
		name      string
		got, want float64
	}{
		{"sMAPE", SMAPE(y, f), (200 * 2.0 / 22) / 2},
		{"sMAPE both zero", SMAPE([]float64{0, 1}, []float64{0, 1}), 0},
		{"naive scale", NaiveScale(insample, 2), 2},
		{"naive scale too short", NaiveScale([]float64{1, 2}, 2), 0},
		{"MASE", MASE(insample, y, f, 2), 1.0 / 2},
		{"MASE zero scale", MASE([]float64{5, 5, 5}, y, f, 1), 0},
		{"OWA of Naive2 itself", OWA(18.383, 2.395, 18.383, 2.395), 1},
		{"OWA", OWA(9, 1.2, 18, 2.4), 0.5},
		{"coverage", Coverage([]float64{1, 5, 9}, []float64{0, 0, 0}, []float64{2, 6, 8}), 2.0 / 3},
		// 0.9·(5−3) = 1.8 above, 0.1·(3−1) = 0.2 below, 0 on the line: 2/3
		{"pinball", Pinball([]float64{5, 1, 3}, []float64{3, 3, 3}, 0.9), 2.0 / 3},
		// width 2 each; y=9 is 1 above hi: 2/0.05*1 = 40 → (2+2+42)/3/2
		{"MSIS", MSIS(insample, []float64{1, 5, 9}, []float64{0, 4, 6}, []float64{2, 6, 8}, 2, 0.05), (2 + 2 + 42.0) / 3 / 2},
	}
	for _, c := range cases {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestMetricsPanicOnMismatchedLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	SMAPE([]float64{1}, []float64{1, 2})
}
