package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/workspace"
)

var _ login.Store = (*Store)(nil)

// UserCredentials returns the user with this email and its password hash.
func (s *Store) UserCredentials(ctx context.Context, email string) (*workspace.User, string, error) {
	var r struct {
		userRow
		PasswordHash string `bun:"password_hash"`
	}
	if err := s.db.NewRaw("SELECT "+userColumns+", password_hash FROM revops_users WHERE email = ?", strings.ToLower(email)).Scan(ctx, &r); err != nil {
		return nil, "", fail("get user credentials", err, "")
	}
	return r.user(), r.PasswordHash, nil
}

// SetUserPassword stores a user's password hash.
func (s *Store) SetUserPassword(ctx context.Context, userID int64, hash string) error {
	res, err := s.db.NewRaw("UPDATE revops_users SET password_hash = ?, updated_at = ? WHERE id = ?", hash, ts(time.Now()), userID).Exec(ctx)
	return mustAffect("set user password", res, err)
}

type sessionRow struct {
	ID        int64      `bun:"id"`
	UserID    int64      `bun:"user_id"`
	CreatedAt time.Time  `bun:"created_at"`
	RevokedAt *time.Time `bun:"revoked_at"`
}

// CreateSession inserts a session and sets its ID.
func (s *Store) CreateSession(ctx context.Context, se *login.Session) error {
	se.CreatedAt = orNow(se.CreatedAt)
	err := s.db.NewRaw("INSERT INTO revops_sessions (user_id, created_at) VALUES (?, ?) RETURNING id", se.UserID, se.CreatedAt).Scan(ctx, &se.ID)
	return fail("create session", err, "")
}

// Session returns a session.
func (s *Store) Session(ctx context.Context, id int64) (*login.Session, error) {
	var r sessionRow
	if err := s.db.NewRaw("SELECT id, user_id, created_at, revoked_at FROM revops_sessions WHERE id = ?", id).Scan(ctx, &r); err != nil {
		return nil, fail("get session", err, "")
	}
	return &login.Session{ID: r.ID, UserID: r.UserID, CreatedAt: utc(r.CreatedAt), RevokedAt: utcp(r.RevokedAt)}, nil
}

// RevokeSession sets revoked_at once; revoking again keeps the first time.
func (s *Store) RevokeSession(ctx context.Context, id int64, at time.Time) error {
	res, err := s.db.NewRaw("UPDATE revops_sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", ts(at), id).Exec(ctx)
	return mustAffect("revoke session", res, err)
}

type refreshRow struct {
	ID        int64      `bun:"id"`
	SessionID int64      `bun:"session_id"`
	UserID    int64      `bun:"user_id"`
	TokenHash string     `bun:"token_hash"`
	CreatedAt time.Time  `bun:"created_at"`
	ExpiresAt time.Time  `bun:"expires_at"`
	UsedAt    *time.Time `bun:"used_at"`
}

// CreateRefreshToken inserts a refresh token and sets its ID.
func (s *Store) CreateRefreshToken(ctx context.Context, t *login.RefreshToken) error {
	t.CreatedAt, t.ExpiresAt = orNow(t.CreatedAt), ts(t.ExpiresAt)
	err := s.db.NewRaw("INSERT INTO revops_refresh_tokens (session_id, user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
		t.SessionID, t.UserID, t.Hash, t.CreatedAt, t.ExpiresAt).Scan(ctx, &t.ID)
	return fail("create refresh token", err, "This refresh token exists.")
}

// UseRefreshToken spends a refresh token. The conditional UPDATE is the
// whole race: of concurrent callers only one sees used_at still NULL.
func (s *Store) UseRefreshToken(ctx context.Context, hash string, now time.Time) (*login.RefreshToken, error) {
	res, err := s.db.NewRaw("UPDATE revops_refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL", ts(now), hash).Exec(ctx)
	if err != nil {
		return nil, fail("use refresh token", err, "")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fail("use refresh token", err, "")
	}
	t, err := s.RefreshToken(ctx, hash)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return t, core.Conflict("This refresh token was already used.")
	}
	return t, nil
}

// RefreshToken returns a refresh token by hash, used or not.
func (s *Store) RefreshToken(ctx context.Context, hash string) (*login.RefreshToken, error) {
	var r refreshRow
	if err := s.db.NewRaw("SELECT id, session_id, user_id, token_hash, created_at, expires_at, used_at FROM revops_refresh_tokens WHERE token_hash = ?", hash).Scan(ctx, &r); err != nil {
		return nil, fail("get refresh token", err, "")
	}
	return &login.RefreshToken{ID: r.ID, SessionID: r.SessionID, UserID: r.UserID, Hash: r.TokenHash, CreatedAt: utc(r.CreatedAt),
		ExpiresAt: utc(r.ExpiresAt), UsedAt: utcp(r.UsedAt)}, nil
}

// DeleteRefreshToken removes a refresh token.
func (s *Store) DeleteRefreshToken(ctx context.Context, hash string) error {
	res, err := s.db.NewRaw("DELETE FROM revops_refresh_tokens WHERE token_hash = ?", hash).Exec(ctx)
	return mustAffect("delete refresh token", res, err)
}

// maxTokenSessions bounds ListTokenSessions.
const maxTokenSessions = 1000

// ListTokenSessions lists the user's live token sessions, newest first.
func (s *Store) ListTokenSessions(ctx context.Context, userID int64, now time.Time) ([]login.TokenSession, error) {
	var rows []struct {
		SessionID int64     `bun:"session_id"`
		CreatedAt time.Time `bun:"created_at"`
		IssuedAt  time.Time `bun:"issued_at"`
		ExpiresAt time.Time `bun:"expires_at"`
	}
	err := s.db.NewRaw(`SELECT se.id AS session_id, se.created_at, t.created_at AS issued_at, t.expires_at
FROM revops_sessions se JOIN revops_refresh_tokens t ON t.session_id = se.id
WHERE se.user_id = ? AND se.revoked_at IS NULL AND t.user_id = ? AND t.used_at IS NULL AND t.expires_at > ?
AND NOT EXISTS (SELECT 1 FROM revops_web_sessions w WHERE w.session_id = se.id)
ORDER BY se.created_at DESC, se.id DESC, t.expires_at DESC LIMIT ?`, userID, userID, ts(now), maxTokenSessions).Scan(ctx, &rows)
	if err != nil {
		return nil, fail("list token sessions", err, "")
	}
	out := make([]login.TokenSession, 0, len(rows))
	for _, r := range rows {
		if n := len(out); n > 0 && out[n-1].SessionID == r.SessionID {
			continue // a second live token of one session (a rotation racing): the later-expiring one is kept
		}
		out = append(out, login.TokenSession{SessionID: r.SessionID, UserID: userID, CreatedAt: utc(r.CreatedAt),
			LastRefreshAt: utc(r.IssuedAt), ExpiresAt: utc(r.ExpiresAt)})
	}
	return out, nil
}
