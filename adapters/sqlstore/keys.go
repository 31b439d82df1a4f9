package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/keys"
)

type keyRow struct {
	ID            int64      `bun:"id"`
	WorkspaceID   int64      `bun:"workspace_id"` // NULL (0) for a personal key
	UserID        int64      `bun:"user_id"`
	Name          string     `bun:"name"`
	Prefix        string     `bun:"prefix"`
	Hash          string     `bun:"hash"`
	Scopes        string     `bun:"scopes"` // JSON array
	RateLimitTier string     `bun:"rate_limit_tier"`
	ExpiresAt     *time.Time `bun:"expires_at"`
	GraceEndsAt   *time.Time `bun:"grace_ends_at"`
	RevokedAt     *time.Time `bun:"revoked_at"`
	LastUsedAt    *time.Time `bun:"last_used_at"`
	CreatedAt     time.Time  `bun:"created_at"`
	UpdatedAt     time.Time  `bun:"updated_at"`
}

const keyColumns = "k.id, k.workspace_id, k.user_id, k.name, k.prefix, k.hash, k.scopes, k.rate_limit_tier, " +
	"k.expires_at, k.grace_ends_at, k.revoked_at, k.last_used_at, k.created_at, k.updated_at"

func (r *keyRow) key() (keys.Key, error) {
	var scopes []string
	if r.Scopes != "" {
		if err := json.Unmarshal([]byte(r.Scopes), &scopes); err != nil {
			return keys.Key{}, fmt.Errorf("sqlstore: api key %d: malformed scopes %q: %w", r.ID, r.Scopes, err)
		}
	}
	return keys.Key{
		ID: r.ID, WorkspaceID: r.WorkspaceID, UserID: r.UserID, Name: r.Name, Prefix: r.Prefix, Hash: r.Hash,
		Scopes: scopes, RateLimitTier: r.RateLimitTier,
		ExpiresAt: utcp(r.ExpiresAt), GraceEndsAt: utcp(r.GraceEndsAt), RevokedAt: utcp(r.RevokedAt), LastUsedAt: utcp(r.LastUsedAt),
		CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt),
	}, nil
}

const hashConflict = "An API key with this hash already exists."

// insertKey inserts k (WorkspaceID 0: a personal key) and fills its ID and
// times.
func insertKey(ctx context.Context, db bun.IDB, k *keys.Key) error {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	scopesJSON, err := json.Marshal(scopes)
	if err != nil {
		return fmt.Errorf("sqlstore: encode scopes: %w", err)
	}
	created := orNow(k.CreatedAt)
	updated := created
	if !k.UpdatedAt.IsZero() {
		updated = ts(k.UpdatedAt)
	}
	var id int64
	err = db.NewRaw(`INSERT INTO revops_api_keys (workspace_id, user_id, name, prefix, hash, scopes, rate_limit_tier,
expires_at, grace_ends_at, revoked_at, last_used_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		nullID(k.WorkspaceID), nullID(k.UserID), k.Name, k.Prefix, k.Hash, string(scopesJSON), k.RateLimitTier,
		tsp(k.ExpiresAt), tsp(k.GraceEndsAt), tsp(k.RevokedAt), tsp(k.LastUsedAt), created, updated).Scan(ctx, &id)
	if err != nil {
		return fail("create api key", err, hashConflict)
	}
	k.ID, k.CreatedAt, k.UpdatedAt = id, created, updated
	k.ExpiresAt, k.GraceEndsAt, k.RevokedAt, k.LastUsedAt = tsp(k.ExpiresAt), tsp(k.GraceEndsAt), tsp(k.RevokedAt), tsp(k.LastUsedAt)
	return nil
}

// CreateKey inserts k. A duplicate hash is a conflict; an unknown workspace
// is not found.
func (s *Store) CreateKey(ctx context.Context, k *keys.Key) error {
	return insertKey(ctx, s.db, k)
}

func (s *Store) oneKey(ctx context.Context, op, where string, args ...any) (*keys.Key, error) {
	var r keyRow
	if err := s.db.NewRaw("SELECT "+keyColumns+" FROM revops_api_keys k WHERE "+where, args...).Scan(ctx, &r); err != nil {
		return nil, fail(op, err, "")
	}
	k, err := r.key()
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// Key returns a workspace key that is not revoked.
func (s *Store) Key(ctx context.Context, workspaceID, id int64) (*keys.Key, error) {
	return s.oneKey(ctx, "get api key", "k.workspace_id = ? AND k.id = ? AND k.revoked_at IS NULL", workspaceID, id)
}

// KeyByHash returns the workspace or personal key with hash unless it is
// revoked. Expired and rotating keys are returned; the caller judges them
// with Key.Status.
func (s *Store) KeyByHash(ctx context.Context, hash string) (*keys.Key, error) {
	return s.oneKey(ctx, "get api key by hash", "k.hash = ? AND k.revoked_at IS NULL", hash)
}

var keyList = listSpec{
	columns: keyColumns,
	from:    "revops_api_keys k",
	sorts: map[string]string{
		"id": "k.id", "name": "k.name", "created_at": "k.created_at",
		"last_used_at": "k.last_used_at", "expires_at": "k.expires_at",
	},
	tieBreak: "k.id",
	search:   []string{"k.name", "k.prefix"},
	created:  "k.created_at",
	updated:  "k.updated_at",
}

// ListKeys lists the workspace's keys that are not revoked. The status
// filter follows keys.Key.Status at now.
func (s *Store) ListKeys(ctx context.Context, workspaceID int64, p core.ListParams, now time.Time) ([]keys.Key, int, error) {
	now = ts(now)
	var q listQuery
	q.add("k.workspace_id = ?", workspaceID)
	q.add("k.revoked_at IS NULL")
	switch p.Filter.Status {
	case "":
	case keys.StatusActive:
		q.add("(k.expires_at IS NULL OR k.expires_at > ?) AND k.grace_ends_at IS NULL", now)
	case keys.StatusRotating:
		q.add("(k.expires_at IS NULL OR k.expires_at > ?) AND k.grace_ends_at > ?", now, now)
	case keys.StatusExpired:
		q.add("(k.expires_at <= ? OR k.grace_ends_at <= ?)", now, now)
	default:
		return nil, 0, core.Invalid("status", fmt.Sprintf("Unknown status %q: use active, rotating or expired.", p.Filter.Status))
	}
	if err := keyList.applyFilter(&q, p.Filter); err != nil {
		return nil, 0, err
	}
	var rows []keyRow
	total, err := keyList.run(ctx, s.db, &q, p, &rows)
	if err != nil {
		return nil, 0, fail("list api keys", err, "")
	}
	out := make([]keys.Key, len(rows))
	for i := range rows {
		if out[i], err = rows[i].key(); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// ListUserKeys lists the user's personal keys that are not revoked, by id.
func (s *Store) ListUserKeys(ctx context.Context, userID int64) ([]keys.Key, error) {
	var rows []keyRow
	err := s.db.NewRaw("SELECT "+keyColumns+" FROM revops_api_keys k WHERE k.workspace_id IS NULL AND k.user_id = ? AND k.revoked_at IS NULL ORDER BY k.id",
		userID).Scan(ctx, &rows)
	if err != nil {
		return nil, fail("list user api keys", err, "")
	}
	out := make([]keys.Key, len(rows))
	for i := range rows {
		if out[i], err = rows[i].key(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RotateKey marks the old key rotated with a conditional update (only one
// concurrent rotation can match it) and inserts next into the same
// workspace, in one transaction: a duplicate hash for next leaves the old
// key untouched.
func (s *Store) RotateKey(ctx context.Context, workspaceID, id int64, next *keys.Key, graceEndsAt time.Time) error {
	candidate := *next
	candidate.WorkspaceID = workspaceID
	return s.rotateKey(ctx, "workspace_id = ?", workspaceID, id, next, &candidate, graceEndsAt)
}

// RotateUserKey is RotateKey for a personal key of userID: the new key is
// personal to the same user.
func (s *Store) RotateUserKey(ctx context.Context, userID, id int64, next *keys.Key, graceEndsAt time.Time) error {
	candidate := *next
	candidate.WorkspaceID, candidate.UserID = 0, userID
	return s.rotateKey(ctx, "workspace_id IS NULL AND user_id = ?", userID, id, next, &candidate, graceEndsAt)
}

// rotateKey rotates the key id matching owner (a condition on one
// argument, owned) into candidate, and copies candidate to next.
func (s *Store) rotateKey(ctx context.Context, owner string, owned, id int64, next, candidate *keys.Key, graceEndsAt time.Time) error {
	grace := ts(graceEndsAt)
	candidate.CreatedAt = orNow(candidate.CreatedAt)
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewRaw(`UPDATE revops_api_keys SET grace_ends_at = ?, updated_at = ?
WHERE `+owner+` AND id = ? AND revoked_at IS NULL AND grace_ends_at IS NULL`,
			grace, candidate.CreatedAt, owned, id).Exec(ctx)
		if err := mustAffect("rotate api key", res, err); err != nil {
			if !errors.Is(err, core.ErrNotFound) {
				return err
			}
			// Tell "already rotated" from "missing or revoked".
			var n int
			err := tx.NewRaw("SELECT COUNT(*) FROM revops_api_keys WHERE "+owner+" AND id = ? AND revoked_at IS NULL", owned, id).Scan(ctx, &n)
			if err != nil {
				return fail("rotate api key", err, "")
			}
			if n > 0 {
				return core.Conflict("The API key has already been rotated.")
			}
			return core.NotFound()
		}
		return insertKey(ctx, tx, candidate)
	})
	if err != nil {
		return err
	}
	*next = *candidate
	return nil
}

// RevokeKey revokes a workspace key; a revoked key is not found.
func (s *Store) RevokeKey(ctx context.Context, workspaceID, id int64, at time.Time) error {
	at = orNow(at)
	res, err := s.db.NewRaw("UPDATE revops_api_keys SET revoked_at = ?, updated_at = ? WHERE workspace_id = ? AND id = ? AND revoked_at IS NULL",
		at, at, workspaceID, id).Exec(ctx)
	return mustAffect("revoke api key", res, err)
}

// RevokeUserKey revokes a personal key of userID.
func (s *Store) RevokeUserKey(ctx context.Context, userID, id int64, at time.Time) error {
	at = orNow(at)
	res, err := s.db.NewRaw("UPDATE revops_api_keys SET revoked_at = ?, updated_at = ? WHERE workspace_id IS NULL AND user_id = ? AND id = ? AND revoked_at IS NULL",
		at, at, userID, id).Exec(ctx)
	return mustAffect("revoke personal api key", res, err)
}

// TouchKeys sets last_used_at in one transaction, in id order (so that
// concurrent batches cannot deadlock), never moving it backwards. Unknown ids
// are ignored.
func (s *Store) TouchKeys(ctx context.Context, used map[int64]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(used))
	for id := range used {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		for _, id := range ids {
			at := ts(used[id])
			_, err := tx.NewRaw("UPDATE revops_api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
				at, id, at).Exec(ctx)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return fail("touch api keys", err, "")
}
