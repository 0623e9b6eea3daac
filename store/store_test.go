package store_test

import (
	"context"
	"testing"

	"github.com/pmo-dev/pmo/store/storetest"
)

func TestMigrateTwiceIsHarmless(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var n int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_name IN ('sites','sla_tiers','vms','migrations',
		'system_events','connectors','connector_metrics','forecasts','plans','overrides','override_audit')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 11 {
		t.Fatalf("want 11 tables, got %d", n)
	}
}
