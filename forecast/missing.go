package forecast

import (
	"math"
	"slices"
)

// FillMissing returns y with its missing points (NaN) filled, so that every model can
// take it: an interior gap by linear interpolation between its neighbours, a gap at
// the start with the first value seen, and a gap at the end with the last, so the
// forecast origin stays where the series ends. y itself is not changed. It returns
// ErrTooShort when no point is present and ErrNotFinite for an infinity.
//
// Linear interpolation is what R's na.interp does for non-seasonal series; for a long
// gap in a seasonal series it flattens a few cycles, which the models then see as
// noise. Short gaps, the common case in operational data, lose almost nothing.
func FillMissing(y []float64) ([]float64, error) {
	first := -1
	for i, v := range y {
		if math.IsInf(v, 0) {
			return nil, ErrNotFinite
		}
		if first < 0 && !math.IsNaN(v) {
			first = i
		}
	}
	if first < 0 {
		return nil, ErrTooShort
	}
	if !slices.ContainsFunc(y, math.IsNaN) {
		return y, nil
	}
	out := slices.Clone(y)
	for i := range first {
		out[i] = y[first]
	}
	prev := first // last present point
	for i := first + 1; i < len(out); i++ {
		if math.IsNaN(out[i]) {
			continue
		}
		for j := prev + 1; j < i; j++ {
			out[j] = y[prev] + (y[i]-y[prev])*float64(j-prev)/float64(i-prev)
		}
		prev = i
	}
	for j := prev + 1; j < len(out); j++ {
		out[j] = y[prev]
	}
	return out, nil
}
