package widecsv

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadM4LayoutQuotedAndPadded(t *testing.T) {
	in := "\"V1\",\"V2\",\"V3\",\"V4\"\n\"H1\",\"1\",\"2.5\",\"3\"\n\"H2\",\"4\",\"\",\"\"\n"
	got, err := Read(strings.NewReader(in))
	require.NoError(t, err)
	require.Equal(t, []Series{{ID: "H1", Values: []float64{1, 2.5, 3}}, {ID: "H2", Values: []float64{4}}}, got)
}

func TestReadStopsAtTheFirstEmptyCell(t *testing.T) {
	got, err := Read(strings.NewReader("id,a,b,c\nx,1,,3\n"))
	require.NoError(t, err)
	require.Equal(t, []float64{1}, got[0].Values)
}

func TestReadErrorsNameRowAndColumn(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"not a number", "id,a,b\nx,1,2\ny,3,abc\n", `row 3, column 3: "abc" is not a finite number`},
		{"Inf", "id,a\nx,Inf\n", `row 2, column 2: "Inf" is not a finite number`},
		{"words", "id,a\nx,missing\n", `row 2, column 2: "missing" is not a finite number or NA`},
		{"duplicate id", "id,a\nx,1\nx,2\n", `row 3, column 1: series "x" already appeared in row 2`},
		{"no values", "id,a\nx,\n", `row 2, column 2: series "x" has no values`},
		{"empty id", "id,a\n,1\n", "row 2, column 1: the series ID is empty"},
		{"empty file", "", "row 1: the file is empty"},
		{"header only", "id,a\n", "row 2: the file has a header but no series"},
		{"bad quoting", "id,a\nx,\"1\n", "row 2, column"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(c.in))
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestReadMissingPointsAsNaN(t *testing.T) {
	got, err := Read(strings.NewReader("id,a,b,c\nx,1,NA,3\ny,NaN,2,\n"))
	require.NoError(t, err)
	require.True(t, math.IsNaN(got[0].Values[1]) && math.IsNaN(got[1].Values[0]))
	require.Equal(t, 3.0, got[0].Values[2])
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, "F", got[:1]))
	require.Equal(t, "id,F1,F2,F3\nx,1,NA,3\n", buf.String())
}

func TestReadFileNamesThePath(t *testing.T) {
	_, err := ReadFile(filepath.Join("testdata", "bad.csv"))
	require.ErrorContains(t, err, filepath.Join("testdata", "bad.csv")+": row 3, column 4:")
}

func TestWriteRoundTrips(t *testing.T) {
	in := []Series{{ID: "H1", Values: []float64{1.25, -3, 1e-9}}, {ID: "H2", Values: []float64{7}}}
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, "F", in))
	require.True(t, strings.HasPrefix(buf.String(), "id,F1,F2,F3\n"))
	got, err := Read(&buf)
	require.NoError(t, err)
	require.Equal(t, in, got)
}

func TestReadTheM4HourlyFiles(t *testing.T) {
	train, err := ReadFile(filepath.Join("..", "..", "shared", "data", "m4-hourly", "Hourly-train.csv"))
	require.NoError(t, err)
	require.Len(t, train, 414)
	require.Equal(t, "H1", train[0].ID)
	for _, s := range train {
		require.Contains(t, []int{700, 960}, len(s.Values), s.ID)
	}
}
