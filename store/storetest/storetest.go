// Package storetest gives tests a private, migrated PostgreSQL database on the server
// named by DATABASE_URL, and drops it when the test ends.
package storetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/testenv"
)

var counter atomic.Int64

// URL returns the server's connection string from DATABASE_URL (see testenv.Require).
func URL(t testing.TB) string {
	t.Helper()
	return testenv.Require(t, "DATABASE_URL")
}

// NewDatabase creates an empty database with a unique name and returns its URL. The
// database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := URL(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("storetest: connect: %v", err)
	}
	name := fmt.Sprintf("pmo_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, counter.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = admin.Close(context.Background())
	})
	return withDatabase(base, name)
}

// New returns a Store on a fresh, migrated database.
func New(t testing.TB) *store.Store {
	t.Helper()
	return Open(t, NewDatabase(t))
}

// Open returns a Store on the database at url, migrated, closed when the test ends.
func Open(t testing.TB, url string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return s
}

// withDatabase swaps the database name in a URL-form connection string.
func withDatabase(url, name string) string {
	i := strings.Index(url, "://")
	rest := url[i+3:]
	q := ""
	if j := strings.IndexByte(rest, '?'); j >= 0 {
		rest, q = rest[:j], rest[j:]
	}
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return url[:i+3] + rest + "/" + name + q
}
