// Package keys holds API keys: their format, issuing, hashing, verification
// with a cache, rotation with a grace period and revocation.
package keys

import (
	"context"
	"time"

	"github.com/revopsdev/revops/core"
)

// Key is a stored API key. The secret itself is never stored: only its
// SHA-256 (Hash) and a short display Prefix.
type Key struct {
	ID            int64
	WorkspaceID   int64 // 0 for a personal key
	UserID        int64 // the owner of a personal key; the creator of a workspace key (0 if none)
	Name          string
	Prefix        string // first characters of the key, for display
	Hash          string // hex SHA-256 of the whole key; unique
	Scopes        []string
	RateLimitTier string // "" means the workspace's tier
	ExpiresAt     *time.Time
	GraceEndsAt   *time.Time // set on a key replaced by rotation
	RevokedAt     *time.Time
	LastUsedAt    *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Key statuses, derived from the timestamps at a given instant.
const (
	StatusActive   = "active"
	StatusRotating = "rotating" // replaced by rotation, working until GraceEndsAt
	StatusExpired  = "expired"
	StatusRevoked  = "revoked"
)

// Status derives the key's status at now.
func (k *Key) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return StatusRevoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return StatusExpired
	case k.GraceEndsAt != nil && !now.Before(*k.GraceEndsAt):
		return StatusExpired
	case k.GraceEndsAt != nil:
		return StatusRotating
	}
	return StatusActive
}

// Store persists keys. Contract, checked by storetest:
//   - revoked keys are not found by Key, KeyByHash or ListKeys;
//   - a key of another workspace (or a personal key) is not found by Key;
//   - a duplicate Hash is errors.Is(err, core.ErrConflict).
type Store interface {
	CreateKey(ctx context.Context, k *Key) error
	Key(ctx context.Context, workspaceID, id int64) (*Key, error)
	KeyByHash(ctx context.Context, hash string) (*Key, error)
	// ListKeys lists the workspace's keys (not personal, not revoked); it
	// sorts by id, name, created_at, last_used_at, expires_at; search matches
	// name or prefix; Filter.Status is one of active, rotating, expired,
	// evaluated at now.
	ListKeys(ctx context.Context, workspaceID int64, p core.ListParams, now time.Time) ([]Key, int, error)
	// ListUserKeys lists a user's personal keys that are not revoked.
	ListUserKeys(ctx context.Context, userID int64) ([]Key, error)
	// RotateKey atomically inserts next and sets the old key's GraceEndsAt.
	// The old key must exist in the workspace, not be revoked and not be
	// rotated already (conflict).
	RotateKey(ctx context.Context, workspaceID, id int64, next *Key, graceEndsAt time.Time) error
	RevokeKey(ctx context.Context, workspaceID, id int64, at time.Time) error
	// RevokeUserKey revokes a personal key of userID; workspace keys and
	// other users' keys are not found.
	RevokeUserKey(ctx context.Context, userID, id int64, at time.Time) error
	// RotateUserKey is RotateKey for a personal key of userID (next is made
	// personal to userID); workspace keys and other users' keys are not found.
	RotateUserKey(ctx context.Context, userID, id int64, next *Key, graceEndsAt time.Time) error
	// TouchKeys records last-use times in one batch; unknown ids are ignored.
	TouchKeys(ctx context.Context, used map[int64]time.Time) error
}
