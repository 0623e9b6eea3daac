package widecsv

import (
	"bytes"
	"errors"
	"math"
	"os"
	"testing"
)

// FuzzRead reads fuzzed wide CSV files, the input of starter forecast and backtest: no
// panic; an error names a row (from 1), and each series read has an ID seen once and
// values that are finite or NaN (missing).
func FuzzRead(f *testing.F) {
	bad, err := os.ReadFile("testdata/bad.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bad)
	f.Add([]byte("id,v1,v2\nH1,1,NA\nH2,nan,2.5e3\n\n"))
	f.Add([]byte("id\n,1\n\"x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		series, err := Read(bytes.NewReader(data))
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Row < 1 {
				t.Fatalf("error on row %d: %v", e.Row, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, s := range series {
			if s.ID == "" || seen[s.ID] || len(s.Values) == 0 {
				t.Fatalf("bad series %q with %d values", s.ID, len(s.Values))
			}
			seen[s.ID] = true
			for _, v := range s.Values {
				if math.IsInf(v, 0) {
					t.Fatalf("series %q holds %v", s.ID, v)
				}
			}
		}
	})
}
