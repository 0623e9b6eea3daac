package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
)

func TestAPIKeysAreFoundByHashUntilRevoked(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	id, key, hash, err := apikey.New()
	require.NoError(t, err)
	require.NoError(t, s.CreateAPIKey(ctx, id, "ci", apikey.Operator, hash))

	// Only the hash is stored: the key itself is nowhere in the table.
	var stored int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE hash = $1 AND position($2 in name || id) = 0`, hash, key).Scan(&stored))
	require.Equal(t, 1, stored)

	k, err := s.UseAPIKey(ctx, apikey.Hash(key))
	require.NoError(t, err)
	require.Equal(t, id, k.ID)
	require.Equal(t, "ci", k.Name)
	require.Equal(t, apikey.Operator, k.Role)
	require.False(t, k.Revoked())
	require.False(t, k.LastUsedAt.IsZero(), "a lookup records the use")
	_, err = s.UseAPIKey(ctx, apikey.Hash(key+"x"))
	require.ErrorIs(t, err, store.ErrUnknownAPIKey)

	revoked, now, err := s.RevokeAPIKey(ctx, id)
	require.NoError(t, err)
	require.True(t, revoked.Revoked())
	require.True(t, now)
	again, now, err := s.RevokeAPIKey(ctx, id)
	require.NoError(t, err)
	require.False(t, now)
	require.Equal(t, revoked.RevokedAt, again.RevokedAt, "a second revocation keeps the first time")
	k, err = s.UseAPIKey(ctx, apikey.Hash(key))
	require.NoError(t, err)
	require.True(t, k.Revoked(), "a revoked key is found, and says so")
	_, _, err = s.RevokeAPIKey(ctx, "nosuchkey")
	require.ErrorIs(t, err, store.ErrUnknownAPIKey)

	// A role outside the three, or a second key with the same hash, is refused.
	require.Error(t, s.CreateAPIKey(ctx, "other", "x", apikey.Role("root"), apikey.Hash("y")))
	require.Error(t, s.CreateAPIKey(ctx, "other", "x", apikey.Viewer, hash))

	keys, err := s.APIKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Equal(t, id, keys[0].ID)
}

func TestOnlyTheFirstKeyIsCreatedByCreateFirst(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	created, err := s.CreateFirstAPIKey(ctx, "a", "make run", apikey.Admin, apikey.Hash("a"))
	require.NoError(t, err)
	require.True(t, created)
	created, err = s.CreateFirstAPIKey(ctx, "b", "make run", apikey.Admin, apikey.Hash("b"))
	require.NoError(t, err)
	require.False(t, created)
	keys, err := s.APIKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1)
}

func TestAuditEntriesNameTheirKey(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	require.NoError(t, s.CreateAPIKey(ctx, "k1", "ci", apikey.Operator, apikey.Hash("k1")))
	e := store.AuditEntry{KeyID: "k1", Role: apikey.Operator, Method: "POST", Path: "/migrations/m1/cancel",
		Route: "/migrations/:id/cancel", RequestID: "r1"}
	id, err := s.BeginAudit(ctx, e)
	require.NoError(t, err)
	// Written before the call runs, without an answer yet.
	recent, err := s.RecentAudit(ctx, 10)
	require.NoError(t, err)
	require.Len(t, recent, 1)
	require.Equal(t, e, recent[0].AuditEntry)
	require.NoError(t, s.FinishAudit(ctx, id, 202))
	e.Status = 202
	var got store.AuditEntry
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT key_id, role, method, path, route, status, request_id FROM api_audit`).
		Scan(&got.KeyID, &got.Role, &got.Method, &got.Path, &got.Route, &got.Status, &got.RequestID))
	require.Equal(t, e, got)
	e.KeyID = "nobody"
	_, err = s.BeginAudit(ctx, e)
	require.Error(t, err, "an entry names a key that exists")

	// Read back newest first, with the key's name, at most the limit.
	later := store.AuditEntry{KeyID: "k1", Role: apikey.Operator, Method: "POST", Path: "/scale", Route: "/scale", RequestID: "r2"}
	id, err = s.BeginAudit(ctx, later)
	require.NoError(t, err)
	require.NoError(t, s.FinishAudit(ctx, id, 422))
	later.Status = 422
	recent, err = s.RecentAudit(ctx, 10)
	require.NoError(t, err)
	require.Len(t, recent, 2)
	require.Equal(t, later, recent[0].AuditEntry)
	require.Equal(t, "ci", recent[0].KeyName)
	require.False(t, recent[0].At.Before(recent[1].At))
	one, err := s.RecentAudit(ctx, 1)
	require.NoError(t, err)
	require.Len(t, one, 1)

	// The trail is kept for the retention's time, then deleted.
	_, err = s.Pool.Exec(ctx, `UPDATE api_audit SET at = now() - interval '400 days' WHERE request_id = 'r1'`)
	require.NoError(t, err)
	n, err := s.DeleteAuditBefore(ctx, time.Now().Add(-365*24*time.Hour), 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	recent, err = s.RecentAudit(ctx, 10)
	require.NoError(t, err)
	require.Len(t, recent, 1)
	require.Equal(t, "r2", recent[0].RequestID)
}
