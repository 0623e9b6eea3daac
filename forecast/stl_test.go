package forecast

import (
	"bufio"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// readRefCSV reads a testdata CSV written by testdata/mstl_reference.R: comment lines
// start with #, then a header; it returns the rows as strings.
func readRefCSV(t testing.TB, path string) (header []string, rows [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if header == nil {
			header = strings.Split(line, ",")
			continue
		}
		rows = append(rows, strings.Split(line, ","))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return header, rows
}

func parseRef(t testing.TB, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// closeTo reports whether got is within tol of want, relative to scale (the size of
// the quantity the component belongs to, so that components near zero are not judged
// by their own tiny magnitude).
func closeTo(got, want, tol, scale float64) bool {
	return math.Abs(got-want) <= tol*max(scale, 1e-300)
}

// TestSTLAgainstR compares every point of the decomposition with R's stats::stl, run
// by testdata/mstl_reference.R (R 4.2.2; the numbers are in testdata/stl_reference.csv
// with 12 significant digits). STL here is a port of the Fortran R calls, so the only
// differences are rounding and the digits stored: the tolerance is 1e-9 relative to the
// series' largest value.
//
// The exception is robust STL of a series of even length: there R's Fortran asks its
// partial sort for the two middle order statistics in descending order, which that
// sort does not support, and it can return another one (for nottem, n = 240, the 111th
// smallest |remainder| instead of the 120th), so R's robustness weights are not quite
// the paper's. We use the true median; the even-length nottem case is held to 5e-3 (it differs by up to 1.3e-3),
// and the same series cut to 239 points, where R's median is right, to 1e-9.
func TestSTLAgainstR(t *testing.T) {
	_, rows := readRefCSV(t, "testdata/stl_reference.csv")
	type ref struct{ y, seasonal, trend, remainder []float64 }
	refs := map[string]*ref{}
	for _, r := range rows {
		c := refs[r[0]]
		if c == nil {
			c = &ref{}
			refs[r[0]] = c
		}
		c.y = append(c.y, parseRef(t, r[2]))
		c.seasonal = append(c.seasonal, parseRef(t, r[3]))
		c.trend = append(c.trend, parseRef(t, r[4]))
		c.remainder = append(c.remainder, parseRef(t, r[5]))
	}
	robust := NewSTL(12, 7, true)
	jumps1 := NewSTL(12, 35, false)
	jumps1.SDegree, jumps1.SJump, jumps1.TJump, jumps1.LJump = 1, 1, 1, 1
	cases := []struct {
		name string
		stl  STL
		tol  float64
	}{
		{"co2-periodic", NewSTL(12, STLPeriodic, false), 1e-9}, // stl(co2, s.window = "periodic")
		{"co2-13", NewSTL(12, 13, false), 1e-9},                // stl(co2, s.window = 13)
		{"nottem239-7-robust", robust, 1e-9},                   // stl(nottem[1:239], s.window = 7, robust = TRUE)
		{"nottem-7-robust", robust, 5e-3},                      // the same on all 240 points: see above
		{"co2-35-t1-jumps1", jumps1, 1e-9},                     // s.window = 35, s.degree = 1, all jumps 1
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := refs[c.name]
			if want == nil {
				t.Fatal("no reference rows")
			}
			got, err := c.stl.Decompose(want.y)
			if err != nil {
				t.Fatal(err)
			}
			scale := 0.0
			for _, v := range want.y {
				scale = max(scale, math.Abs(v))
			}
			for i := range want.y {
				if !closeTo(got.Seasonal[i], want.seasonal[i], c.tol, scale) ||
					!closeTo(got.Trend[i], want.trend[i], c.tol, scale) ||
					!closeTo(got.Remainder[i], want.remainder[i], c.tol, scale) {
					t.Fatalf("point %d: seasonal %v trend %v remainder %v, R %v %v %v", i+1,
						got.Seasonal[i], got.Trend[i], got.Remainder[i], want.seasonal[i], want.trend[i], want.remainder[i])
				}
			}
		})
	}
}

func TestSTLPeriodicIsPeriodic(t *testing.T) {
	y := make([]float64, 100)
	for i := range y {
		y[i] = float64(i%7) + 0.1*float64(i) + math.Sin(float64(i))
	}
	r, err := NewSTL(7, STLPeriodic, false).Decompose(y)
	if err != nil {
		t.Fatal(err)
	}
	for i := 7; i < len(y); i++ {
		if r.Seasonal[i] != r.Seasonal[i-7] {
			t.Fatalf("seasonal[%d] = %v, seasonal[%d] = %v", i, r.Seasonal[i], i-7, r.Seasonal[i-7])
		}
	}
}

func TestSTLEdgeCases(t *testing.T) {
	cases := []struct {
		name string
		y    []float64
		err  error
	}{
		{"constant", []float64{5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, nil},
		{"zeros", make([]float64, 10), nil},
		{"two cycles exactly", make([]float64, 8), ErrTooShort},
		{"NaN", []float64{1, 2, 3, 4, math.NaN(), 6, 7, 8, 9, 10}, ErrNotFinite},
		{"Inf", []float64{1, 2, 3, 4, math.Inf(1), 6, 7, 8, 9, 10}, ErrNotFinite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, s := range []STL{NewSTL(4, STLPeriodic, false), NewSTL(4, 7, false), NewSTL(4, 7, true)} {
				r, err := s.Decompose(c.y)
				if !errors.Is(err, c.err) {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				if err != nil {
					continue
				}
				for i, v := range c.y {
					if math.Abs(r.Trend[i]-v) > 1e-12 || math.Abs(r.Seasonal[i]) > 1e-12 || math.Abs(r.Remainder[i]) > 1e-12 {
						t.Fatalf("point %d: trend %v seasonal %v remainder %v, want %v 0 0", i, r.Trend[i], r.Seasonal[i], r.Remainder[i], v)
					}
				}
			}
		})
	}
}

func TestSTLDefaults(t *testing.T) {
	// R: stl(ts(1:100, frequency = 12), s.window = 13)$win is s 13, t 21, l 13, and
	// $jump is 2, 3, 2 (t.window = nextodd(ceiling(18/(1-1.5/13))) = 21).
	p := NewSTL(12, 13, false).params(100)
	if p.ns != 13 || p.nt != 21 || p.nl != 13 || p.nsjump != 2 || p.ntjump != 3 || p.nljump != 2 || p.ni != 2 || p.no != 0 {
		t.Fatalf("got %+v", p)
	}
	// Periodic, n = 700, period 24: s.window = 7001, s.jump = 701, t.window =
	// nextodd(ceiling(36/(1-1.5/7001))) = 37, l.window = 25.
	p = NewSTL(24, STLPeriodic, false).params(700)
	if p.ns != 7001 || p.nsjump != 701 || p.nt != 37 || p.ntjump != 4 || p.nl != 25 || p.nljump != 3 {
		t.Fatalf("got %+v", p)
	}
}
