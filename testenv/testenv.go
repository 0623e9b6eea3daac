// Package testenv reads the services that make test starts for the tests: PostgreSQL
// (DATABASE_URL) and the Temporal dev server (TEMPORAL_ADDRESS).
package testenv

import (
	"os"
	"testing"
)

// Require returns the environment variable's value. When it is unset the test is
// skipped, or fails under CI, where make test always sets it.
func Require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; run the tests through make test", name)
		}
		t.Skipf("%s is not set; run the tests through make test", name)
	}
	return v
}

// TemporalAddress is Require(t, "TEMPORAL_ADDRESS").
func TemporalAddress(t testing.TB) string {
	t.Helper()
	return Require(t, "TEMPORAL_ADDRESS")
}
