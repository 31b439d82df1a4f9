package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// WebSession is the browser side of a login session: an opaque cookie
// token (stored only as its hex SHA-256) bound to one Session. Revoking the
// Session ends the cookie too. A web session stops working at ExpiresAt
// (absolute) or once idle for the configured idle timeout after LastSeenAt.
type WebSession struct {
	SessionID  int64 // the login Session (refresh-token family) it belongs to
	UserID     int64
	Hash       string // hex SHA-256 of the cookie token
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	UserAgent  string
	IP         string
	// SessionRevokedAt is when the login Session was revoked (read only,
	// filled by WebSessionByHash; nil while it is live).
	SessionRevokedAt *time.Time
}

// WebSessionStore persists web sessions. Contract, checked by storetest:
//   - CreateWebSession: a session that does not exist is not found; a
//     duplicate hash or a second web session of one session is a conflict;
//   - WebSessionByHash: unknown hash is not found (revoked and expired web
//     sessions are returned: the caller judges them), with its Session's
//     revocation time in one read;
//   - TouchWebSession sets LastSeenAt, never moving it backwards; a missing
//     web session is not found;
//   - ListWebSessions lists the user's web sessions whose Session is not
//     revoked and whose ExpiresAt is after now, newest first (by
//     CreatedAt, then SessionID); other users' never appear.
type WebSessionStore interface {
	CreateWebSession(ctx context.Context, ws *WebSession) error
	WebSessionByHash(ctx context.Context, hash string) (*WebSession, error)
	TouchWebSession(ctx context.Context, sessionID int64, at time.Time) error
	ListWebSessions(ctx context.Context, userID int64, now time.Time) ([]WebSession, error)
}

// NewCookieToken returns a new web-session token ("rs_" and 256 random
// bits) and the hash it is stored under.
func NewCookieToken() (raw, hash string) {
	var b [32]byte
	rand.Read(b[:])
	raw = "rs_" + base64.RawURLEncoding.EncodeToString(b[:])
	return raw, HashToken(raw)
}

// CSRFToken is the anti-CSRF token of a cookie token: derived from it, so
// the server keeps nothing more, and unguessable without it. A page of the
// web app learns it from the login response or the readable CSRF cookie; a
// cross-site page can learn neither.
func CSRFToken(cookieToken string) string {
	sum := sha256.Sum256([]byte("revops-csrf\x00" + cookieToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckCSRF compares a presented CSRF token with the cookie's, in constant time.
func CheckCSRF(cookieToken, presented string) bool {
	want := CSRFToken(cookieToken)
	return presented != "" && subtle.ConstantTimeCompare([]byte(want), []byte(presented)) == 1
}

// HashToken is how web session tokens are stored: hex SHA-256.
func HashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}
