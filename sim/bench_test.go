package sim

import (
	"fmt"
	"os"
	"testing"

	"github.com/pmo-dev/pmo/trace"
)

// azureSeries is the Azure trace's CPU series, the shape of the trace below.
func azureSeries() ([]float64, error) {
	f, err := os.Open("../../shared/data/traces/azure2019-vm-cpu-5min.csv")
	if err != nil {
		return nil, fmt.Errorf("the Azure trace is not beside the repository: %w", err)
	}
	defer f.Close()
	_, series, err := trace.ReadSeries(f, "")
	return series, err
}

// azureTrace is 28 days of requests shaped by the Azure trace, with gen-trace's
// defaults: about 13,500 migrations.
func azureTrace(b testing.TB) []trace.Request {
	b.Helper()
	series, err := azureSeries()
	if err != nil {
		b.Fatal(err)
	}
	reqs, err := trace.Generate(series, trace.DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	return reqs
}

// BenchmarkSimulate28Days runs every policy, with starter simulate's defaults,
// over 28 days of the Azure-shaped trace: one op is the whole comparison.
func BenchmarkSimulate28Days(b *testing.B) {
	reqs := azureTrace(b)
	w, err := NewWorld(reqs, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		policies, err := DefaultKnobs().Policies(PolicyNames)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range policies {
			if _, err := Run(w, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(reqs)), "migrations")
}
