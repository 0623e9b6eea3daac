package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the Chromium (or Chrome) binary for browser tests: CHROMIUM, which
// make test sets, or the first of Debian's and the usual names on the PATH.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Unavailable(t, "no Chromium for the browser test; install it (apt-get install chromium) or set CHROMIUM")
	return ""
}
