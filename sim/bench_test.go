package sim

import (
	"os"
	"testing"

	"github.com/pmo-dev/pmo/trace"
)

// azureTrace is 28 days of requests shaped by the Azure trace, with gen-trace's
// defaults: about 13,500 migrations.
func azureTrace(b testing.TB) []trace.Request {
	b.Helper()
	f, err := os.Open("../../shared/data/traces/azure2019-vm-cpu-5min.csv")
	if err != nil {
		b.Fatalf("the Azure trace is not beside the repository: %v", err)
	}
	defer f.Close()
	_, series, err := trace.ReadSeries(f, "")
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
