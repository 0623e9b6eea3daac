package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pmo-dev/pmo/apikey"
)

// ErrUnknownAPIKey means no key has that hash or ID.
var ErrUnknownAPIKey = errors.New("store: unknown API key")

// APIKey is an API key as stored: everything but the key itself, of which only the
// hash is kept.
type APIKey struct {
	ID        string
	Name      string
	Role      apikey.Role
	CreatedAt time.Time
	// RevokedAt is zero while the key is valid.
	RevokedAt time.Time
	// LastUsedAt is zero until the web server first looks the key up.
	LastUsedAt time.Time
	// ConnectorID is the connector a key of the connector role belongs to.
	ConnectorID string
}

// Revoked reports whether the key has been revoked.
func (k APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

const apiKeyColumns = `id, name, role, created_at, revoked_at, last_used_at, coalesce(connector_id, '')`

// scanAPIKey reads apiKeyColumns, then any extra columns into extra.
func scanAPIKey(r pgx.Row, extra ...any) (APIKey, error) {
	var k APIKey
	var revoked, used *time.Time
	if err := r.Scan(append([]any{&k.ID, &k.Name, &k.Role, &k.CreatedAt, &revoked, &used, &k.ConnectorID}, extra...)...); err != nil {
		return APIKey{}, err
	}
	if revoked != nil {
		k.RevokedAt = *revoked
	}
	if used != nil {
		k.LastUsedAt = *used
	}
	return k, nil
}

// CreateAPIKey stores a key's ID, name, role and hash.
func (s *Store) CreateAPIKey(ctx context.Context, id, name string, role apikey.Role, hash []byte) error {
	if _, err := s.Pool.Exec(ctx, `INSERT INTO api_keys (id, name, role, hash) VALUES ($1, $2, $3, $4)`, id, name, role, hash); err != nil {
		return fmt.Errorf("store: create API key: %w", err)
	}
	return nil
}

// CreateConnectorAPIKey stores a key of the connector role for one connector: it may
// only post that connector's metrics.
func (s *Store) CreateConnectorAPIKey(ctx context.Context, id, name, connectorID string, hash []byte) error {
	if _, err := s.Pool.Exec(ctx, `INSERT INTO api_keys (id, name, role, hash, connector_id) VALUES ($1, $2, 'connector', $3, $4)`,
		id, name, hash, connectorID); err != nil {
		return fmt.Errorf("store: create API key: %w", err)
	}
	return nil
}

// CreateFirstAPIKey stores the key only if the database holds no key at all, revoked
// or not, and reports whether it did. Two callers at once create one key between them.
func (s *Store) CreateFirstAPIKey(ctx context.Context, id, name string, role apikey.Role, hash []byte) (bool, error) {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("store: create first API key: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// The lock makes "none yet" and the insert one step; readers are not blocked.
	if _, err := tx.Exec(ctx, `LOCK TABLE api_keys IN EXCLUSIVE MODE`); err != nil {
		return false, fmt.Errorf("store: create first API key: %w", err)
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO api_keys (id, name, role, hash) SELECT $1, $2, $3, $4
		WHERE NOT EXISTS (SELECT 1 FROM api_keys)`, id, name, role, hash)
	if err != nil {
		return false, fmt.Errorf("store: create first API key: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("store: create first API key: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// UseAPIKey finds the key with the hash and, unless it is revoked, records that it was
// used now. It returns ErrUnknownAPIKey when no key has the hash; a revoked key is
// returned with RevokedAt set.
func (s *Store) UseAPIKey(ctx context.Context, hash []byte) (APIKey, error) {
	k, err := scanAPIKey(s.Pool.QueryRow(ctx, `
		UPDATE api_keys SET last_used_at = CASE WHEN revoked_at IS NULL THEN now() ELSE last_used_at END
		WHERE hash = $1 RETURNING `+apiKeyColumns, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrUnknownAPIKey
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("store: look up API key: %w", err)
	}
	return k, nil
}

// APIKeyHashes returns the hash of every key, revoked ones too: the web server answers
// a token whose hash is not among them without a query of its own.
func (s *Store) APIKeyHashes(ctx context.Context) ([][]byte, error) {
	rows, err := s.Pool.Query(ctx, `SELECT hash FROM api_keys`)
	if err != nil {
		return nil, fmt.Errorf("store: list API key hashes: %w", err)
	}
	hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("store: list API key hashes: %w", err)
	}
	return hashes, nil
}

// APIKeys lists every key, revoked ones too, oldest first.
func (s *Store) APIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list API keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list API keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes the key with the ID and returns it, saying whether this call
// revoked it: revoking a revoked key keeps its first revocation time. It returns
// ErrUnknownAPIKey when there is no such key.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (APIKey, bool, error) {
	var now bool
	k, err := scanAPIKey(s.Pool.QueryRow(ctx, `
		UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
		RETURNING `+apiKeyColumns+`, revoked_at = now()`, id), &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, false, fmt.Errorf("%w %q", ErrUnknownAPIKey, id)
	}
	if err != nil {
		return APIKey{}, false, fmt.Errorf("store: revoke API key: %w", err)
	}
	return k, now, nil
}

// AuditEntry is one mutating HTTP call: who made it, what it was and how it ended.
type AuditEntry struct {
	KeyID  string      `json:"key_id"`
	Role   apikey.Role `json:"role"`
	Method string      `json:"method"`
	// Path is the path called; Route the pattern it matched, such as
	// /migrations/:id/cancel.
	Path  string `json:"path"`
	Route string `json:"route"`
	// Status is the HTTP status the call answered; 0 while it runs, or when its
	// answer was not recorded.
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
}

// BeginAudit appends an entry to the audit trail, timed now, before the call it
// records runs; its status is left for FinishAudit. It returns the entry's ID.
func (s *Store) BeginAudit(ctx context.Context, e AuditEntry) (int64, error) {
	var id int64
	err := s.Pool.QueryRow(ctx, `
		INSERT INTO api_audit (key_id, role, method, path, route, request_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		e.KeyID, e.Role, e.Method, e.Path, e.Route, e.RequestID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: audit %s %s: %w", e.Method, e.Route, err)
	}
	return id, nil
}

// FinishAudit records the status a call answered in the entry BeginAudit made for it.
func (s *Store) FinishAudit(ctx context.Context, id int64, status int) error {
	if _, err := s.Pool.Exec(ctx, `UPDATE api_audit SET status = $2 WHERE id = $1`, id, status); err != nil {
		return fmt.Errorf("store: audit entry %d: %w", id, err)
	}
	return nil
}

// AuditRecord is an audit entry as it is read back: when it was made, and the name
// of its key.
type AuditRecord struct {
	AuditEntry
	At      time.Time `json:"at"`
	KeyName string    `json:"key_name"`
}

// RecentAudit returns the newest entries of the audit trail, newest first, at most
// limit of them.
func (s *Store) RecentAudit(ctx context.Context, limit int) ([]AuditRecord, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT a.at, a.key_id, k.name, a.role, a.method, a.path, a.route, coalesce(a.status, 0), a.request_id
		FROM api_audit a JOIN api_keys k ON k.id = a.key_id
		ORDER BY a.at DESC, a.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: read the audit trail: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditRecord, error) {
		var r AuditRecord
		err := row.Scan(&r.At, &r.KeyID, &r.KeyName, &r.Role, &r.Method, &r.Path, &r.Route, &r.Status, &r.RequestID)
		return r, err
	})
}
