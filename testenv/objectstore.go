package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmo-dev/pmo/objectstore"
)

// buckets numbers the buckets this test binary makes, so that no two tests share one.
var buckets atomic.Int64

// ObjectStore returns the S3-compatible store make test starts (PMO_TEST_S3_ENDPOINT,
// with the admin's PMO_TEST_S3_ACCESS_KEY and PMO_TEST_S3_SECRET_KEY) and a bucket of
// the test's own, made empty.
func ObjectStore(t testing.TB) objectstore.Config {
	t.Helper()
	endpoint := os.Getenv("PMO_TEST_S3_ENDPOINT")
	if endpoint == "" {
		Unavailable(t, "no S3 object store: make test starts one; or set PMO_TEST_S3_ENDPOINT, PMO_TEST_S3_ACCESS_KEY and PMO_TEST_S3_SECRET_KEY")
	}
	name := strings.ToLower(fmt.Sprintf("t%d-%d-%s", time.Now().UnixNano()%1e9, buckets.Add(1), t.Name()))
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name)
	if len(name) > 63 {
		name = name[:63]
	}
	cfg := objectstore.Config{Endpoint: endpoint, Bucket: strings.TrimRight(name, "-"),
		AccessKey: os.Getenv("PMO_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("PMO_TEST_S3_SECRET_KEY")}
	s, err := objectstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A store just started may refuse its first bucket for a moment.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.EnsureBucket(ctx)
		cancel()
		if err == nil {
			return cfg
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
