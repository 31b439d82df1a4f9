package sqlstore

import (
	"context"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/login"
)

var _ login.WebSessionStore = (*Store)(nil)

type webSessionRow struct {
	SessionID  int64     `bun:"session_id"`
	UserID     int64     `bun:"user_id"`
	TokenHash  string    `bun:"token_hash"`
	CreatedAt  time.Time `bun:"created_at"`
	LastSeenAt time.Time `bun:"last_seen_at"`
	ExpiresAt  time.Time `bun:"expires_at"`
	UserAgent  string    `bun:"user_agent"`
	IP         string    `bun:"ip"`
}

const webSessionColumns = "w.session_id, w.user_id, w.token_hash, w.created_at, w.last_seen_at, w.expires_at, w.user_agent, w.ip"

func (r *webSessionRow) webSession() login.WebSession {
	return login.WebSession{SessionID: r.SessionID, UserID: r.UserID, Hash: r.TokenHash, CreatedAt: utc(r.CreatedAt),
		LastSeenAt: utc(r.LastSeenAt), ExpiresAt: utc(r.ExpiresAt), UserAgent: r.UserAgent, IP: r.IP}
}

// CreateWebSession inserts a web session of an existing login session.
func (s *Store) CreateWebSession(ctx context.Context, w *login.WebSession) error {
	w.CreatedAt, w.ExpiresAt = orNow(w.CreatedAt), ts(w.ExpiresAt)
	if w.LastSeenAt.IsZero() {
		w.LastSeenAt = w.CreatedAt
	}
	w.LastSeenAt = ts(w.LastSeenAt)
	// The session must exist and belong to the user: a foreign key alone
	// would accept another user's session.
	var owner int64
	if err := s.db.NewRaw("SELECT user_id FROM revops_sessions WHERE id = ?", w.SessionID).Scan(ctx, &owner); err != nil {
		return fail("create web session", err, "")
	}
	if owner != w.UserID {
		return core.NotFound()
	}
	_, err := s.db.NewRaw(`INSERT INTO revops_web_sessions (session_id, user_id, token_hash, created_at, last_seen_at, expires_at, user_agent, ip)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, w.SessionID, w.UserID, w.Hash, w.CreatedAt, w.LastSeenAt, w.ExpiresAt, w.UserAgent, w.IP).Exec(ctx)
	return fail("create web session", err, "This web session exists.")
}

// WebSessionByHash finds a web session by its token hash, with its login
// session's revocation: every cookie request reads this, in one query.
func (s *Store) WebSessionByHash(ctx context.Context, hash string) (*login.WebSession, error) {
	var r struct {
		webSessionRow
		RevokedAt *time.Time `bun:"revoked_at"`
	}
	if err := s.db.NewRaw("SELECT "+webSessionColumns+", s.revoked_at FROM revops_web_sessions w JOIN revops_sessions s ON s.id = w.session_id WHERE w.token_hash = ?",
		hash).Scan(ctx, &r); err != nil {
		return nil, fail("get web session", err, "")
	}
	w := r.webSession()
	if r.RevokedAt != nil {
		w.SessionRevokedAt = ptrTo(utc(*r.RevokedAt))
	}
	return &w, nil
}

// TouchWebSession moves last_seen_at forward (never back).
func (s *Store) TouchWebSession(ctx context.Context, sessionID int64, at time.Time) error {
	at = ts(at)
	res, err := s.db.NewRaw("UPDATE revops_web_sessions SET last_seen_at = ? WHERE session_id = ? AND last_seen_at < ?", at, sessionID, at).Exec(ctx)
	if err != nil {
		return fail("touch web session", err, "")
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return fail("touch web session", err, "")
	}
	var one int
	return fail("touch web session", s.db.NewRaw("SELECT 1 FROM revops_web_sessions WHERE session_id = ?", sessionID).Scan(ctx, &one), "")
}

// maxWebSessions bounds ListWebSessions.
const maxWebSessions = 1000

// ListWebSessions lists the user's live web sessions, newest first.
func (s *Store) ListWebSessions(ctx context.Context, userID int64, now time.Time) ([]login.WebSession, error) {
	var rows []webSessionRow
	err := s.db.NewRaw(`SELECT `+webSessionColumns+` FROM revops_web_sessions w JOIN revops_sessions se ON se.id = w.session_id
WHERE w.user_id = ? AND se.user_id = ? AND se.revoked_at IS NULL AND w.expires_at > ?
ORDER BY w.created_at DESC, w.session_id DESC LIMIT ?`, userID, userID, ts(now), maxWebSessions).Scan(ctx, &rows)
	if err != nil {
		return nil, fail("list web sessions", err, "")
	}
	out := make([]login.WebSession, len(rows))
	for i := range rows {
		out[i] = rows[i].webSession()
	}
	return out, nil
}
