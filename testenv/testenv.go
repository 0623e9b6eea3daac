// Package testenv reads the services that make test starts for the tests: PostgreSQL
// (DATABASE_URL) and the Temporal dev server (TEMPORAL_ADDRESS). It also starts a
// Temporal dev server or a PostgreSQL cluster of a test's own, for the tests that stop
// and restart them.
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
		Unavailable(t, "%s is not set; run the tests through make test", name)
	}
	return v
}

// TemporalAddress is Require(t, "TEMPORAL_ADDRESS").
func TemporalAddress(t testing.TB) string {
	t.Helper()
	return Require(t, "TEMPORAL_ADDRESS")
}
