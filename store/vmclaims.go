package store

import (
	"context"
	"fmt"
	"time"
)

// ClaimVM makes migrationID the migration of the VM, unless another migration holds
// it. It returns the holder, which is migrationID when the claim is its own, and when
// the holder claimed it.
func (s *Store) ClaimVM(ctx context.Context, vmID, migrationID string) (holder string, since time.Time, err error) {
	// The no-op update makes the conflicting row come back with RETURNING.
	err = s.Pool.QueryRow(ctx, `
		INSERT INTO vm_migrations (vm_id, migration_id) VALUES ($1, $2)
		ON CONFLICT (vm_id) DO UPDATE SET vm_id = EXCLUDED.vm_id
		RETURNING migration_id, claimed_at`, vmID, migrationID).Scan(&holder, &since)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("store: claim VM %s: %w", vmID, err)
	}
	return holder, since, nil
}

// TakeVM moves the VM's claim from a holder whose migration is over to migrationID.
// It reports false when the holder is no longer from: another migration took it first.
func (s *Store) TakeVM(ctx context.Context, vmID, from, migrationID string) (bool, error) {
	tag, err := s.Pool.Exec(ctx, `
		UPDATE vm_migrations SET migration_id = $3, claimed_at = now() WHERE vm_id = $1 AND migration_id = $2`,
		vmID, from, migrationID)
	if err != nil {
		return false, fmt.Errorf("store: take VM %s: %w", vmID, err)
	}
	return tag.RowsAffected() == 1, nil
}
