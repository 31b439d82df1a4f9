// Package login signs users in with email and password and keeps their
// sessions: a short-lived access token (package token) and a long-lived,
// rotating refresh token stored only as a signature. Each login starts a
// session (a refresh-token family); presenting an already used refresh token
// revokes the whole family and every access token issued in it (RFC 9700
// §4.14.2), since either the client or an attacker holds a stolen copy.
//
// The tokens themselves are minted, rotated and revoked by an Issuer; the
// root package wires one over ory/fosite (internal/oauth), which keeps that
// framework out of this domain package.
package login

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/token"
	"github.com/revopsdev/revops/workspace"
)

// Session is a refresh-token family: one login and its rotations.
type Session struct {
	ID        int64
	UserID    int64
	CreatedAt time.Time
	RevokedAt *time.Time
}

// RefreshToken is one refresh token of a session. Hash is what the token
// strategy derives from the token to look it up (fosite's HMAC signature);
// the token itself is shown once and never stored.
type RefreshToken struct {
	ID        int64
	SessionID int64
	UserID    int64
	Hash      string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// Store persists credentials and sessions. Contract, checked by storetest:
//   - UserCredentials finds a user by lower-case email, with its password
//     hash ("" when it has none); unknown: not found;
//   - SetUserPassword on a missing user: not found;
//   - UseRefreshToken marks the unused token with hash used and returns it:
//     of concurrent callers exactly one succeeds; an already used token is
//     returned WITH an error that errors.Is core.ErrConflict (so the caller
//     can revoke its session); an unknown hash is not found;
//   - RefreshToken finds a token by hash, used or not; DeleteRefreshToken
//     removes one; an unknown hash is not found for both;
//   - RevokeSession is idempotent (the first revocation time is kept);
//   - ListTokenSessions lists the user's sessions that are not revoked, have
//     no web session (a cookie login's refresh token never leaves the
//     server) and hold an unused refresh token expiring after now, one
//     entry per session, newest first (by CreatedAt, then SessionID);
//     other users' never appear.
type Store interface {
	UserCredentials(ctx context.Context, email string) (*workspace.User, string, error)
	User(ctx context.Context, id int64) (*workspace.User, error)
	SetUserPassword(ctx context.Context, userID int64, hash string) error
	CreateSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, id int64) (*Session, error)
	RevokeSession(ctx context.Context, id int64, at time.Time) error
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	UseRefreshToken(ctx context.Context, hash string, now time.Time) (*RefreshToken, error)
	RefreshToken(ctx context.Context, hash string) (*RefreshToken, error)
	DeleteRefreshToken(ctx context.Context, hash string) error
	ListTokenSessions(ctx context.Context, userID int64, now time.Time) ([]TokenSession, error)
}

// TokenSession is a session signed in with tokens, as its live refresh
// token shows it.
type TokenSession struct {
	SessionID     int64
	UserID        int64
	CreatedAt     time.Time // the login
	LastRefreshAt time.Time // when its live refresh token was issued
	ExpiresAt     time.Time // when that token expires
}

// Issuer mints, rotates and revokes a session's tokens. Contract:
//   - Issue mints the first access and refresh tokens of a new session;
//   - Refresh spends a refresh token and returns the next pair; an unknown,
//     expired or revoked token is ErrInvalidRefresh; a spent one revokes its
//     session and is a *ReuseError joined with ErrInvalidRefresh;
//   - Revoke revokes the session of a refresh token, used or not, and
//     returns its id (0 and no error for an unknown token).
type Issuer interface {
	Issue(ctx context.Context, u *workspace.User, sessionID int64) (*Tokens, error)
	Refresh(ctx context.Context, refresh string) (*Tokens, error)
	Revoke(ctx context.Context, refresh string) (sessionID int64, err error)
}

// Config configures a Service.
type Config struct {
	Store  Store
	Signer *token.Signer // verifies access tokens
	Issuer Issuer
	Now    func() time.Time
}

// Service logs users in and out and rotates their tokens.
type Service struct {
	cfg    Config
	second SecondFactor
}

// SecondFactor is asked after the password is verified and before a
// session starts, with the code the client sent ("" if none): nil lets the
// login go on; an error ends it and is returned as is (join a *Failure to
// it for the audit trail).
type SecondFactor func(ctx context.Context, u *workspace.User, code string) error

// SetSecondFactor installs the second-factor check. Call it before serving.
func (s *Service) SetSecondFactor(f SecondFactor) { s.second = f }

// NewService checks cfg.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Signer == nil || cfg.Issuer == nil || cfg.Now == nil {
		return nil, errors.New("login: NewService needs a store, a signer, an issuer and a clock")
	}
	return &Service{cfg: cfg}, nil
}

// Tokens are what a login or a refresh returns. Refresh is shown once.
type Tokens struct {
	Access           string
	AccessExpiresAt  time.Time
	Refresh          string
	RefreshExpiresAt time.Time
	User             *workspace.User
	SessionID        int64
}

// ErrBadCredentials is the one answer to an unknown email, a wrong password
// or an account without one: it never says which.
func ErrBadCredentials() error {
	return core.E(core.CodeUnauthorized, "Invalid email or password.")
}

// ErrInvalidRefresh is the one answer to an unknown, expired, used or
// revoked refresh token.
func ErrInvalidRefresh() error {
	return core.E(core.CodeUnauthorized, "Invalid or expired refresh token.")
}

// ReuseError reports a refresh token presented twice; its session has been
// revoked. It is an ErrInvalidRefresh to the client.
type ReuseError struct{ SessionID, UserID int64 }

func (e *ReuseError) Error() string { return "login: refresh token reused; session revoked" }

// Failure says why a login failed, for the audit trail (never the client).
type Failure struct {
	UserID int64  // 0 when the email is unknown
	Reason string // "unknown_email", "no_password", "wrong_password", or the SecondFactor's ("totp_required" …)
}

func (f *Failure) Error() string { return "login failed: " + f.Reason }

// NormalizeEmail is how emails are compared.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// SetPassword sets a user's password after checking it.
func (s *Service) SetPassword(ctx context.Context, userID int64, password string) error {
	if err := CheckPassword(password); err != nil {
		return core.Invalid("password", "The password must be "+strings.TrimPrefix(err.Error(), "a password is ")+".")
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	return s.cfg.Store.SetUserPassword(ctx, userID, h)
}

// Login checks email and password and starts a session. On failure the
// error is ErrBadCredentials, joined with a *Failure for the audit trail.
// Every failure costs one argon2id verification, so timing does not tell
// whether the email exists.
func (s *Service) Login(ctx context.Context, email, password string) (*Tokens, error) {
	return s.LoginWithCode(ctx, email, password, "")
}

// LoginWithCode is Login with a second-factor code (a TOTP code or a
// recovery code), checked by the SecondFactor after the password.
func (s *Service) LoginWithCode(ctx context.Context, email, password, code string) (*Tokens, error) {
	u, hash, err := s.cfg.Store.UserCredentials(ctx, NormalizeEmail(email))
	switch {
	case errors.Is(err, core.ErrNotFound):
		VerifyPassword(password, dummyHash)
		return nil, errors.Join(ErrBadCredentials(), &Failure{Reason: "unknown_email"})
	case err != nil:
		return nil, err
	case hash == "":
		VerifyPassword(password, dummyHash)
		return nil, errors.Join(ErrBadCredentials(), &Failure{UserID: u.ID, Reason: "no_password"})
	case len(password) > MaxPassword:
		VerifyPassword(password, dummyHash) // the same work as an unknown email: no timing tell
		return nil, errors.Join(ErrBadCredentials(), &Failure{UserID: u.ID, Reason: "wrong_password"})
	case !VerifyPassword(password, hash):
		return nil, errors.Join(ErrBadCredentials(), &Failure{UserID: u.ID, Reason: "wrong_password"})
	}
	if s.second != nil {
		if err := s.second(ctx, u, code); err != nil {
			return nil, err
		}
	}
	now := s.clock()
	sess := &Session{UserID: u.ID, CreatedAt: now}
	if err := s.cfg.Store.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	return s.cfg.Issuer.Issue(ctx, u, sess.ID)
}

// Refresh rotates a refresh token: the presented one is spent and a new one
// and a new access token are returned. A token presented a second time
// revokes its session and returns a *ReuseError joined with
// ErrInvalidRefresh.
func (s *Service) Refresh(ctx context.Context, raw string) (*Tokens, error) {
	return s.cfg.Issuer.Refresh(ctx, raw)
}

// Logout revokes the session of a refresh token (used or not), and with it
// every access token issued in it. An unknown token is not an error.
func (s *Service) Logout(ctx context.Context, raw string) (sessionID int64, err error) {
	return s.cfg.Issuer.Revoke(ctx, raw)
}

// RevokeSession revokes a session by id (logout with an access token).
func (s *Service) RevokeSession(ctx context.Context, id int64) error {
	return s.cfg.Store.RevokeSession(ctx, id, s.clock())
}

// Verify checks an access token and that its session is not revoked.
func (s *Service) Verify(ctx context.Context, tok string) (*token.Claims, error) {
	c, err := s.cfg.Signer.Verify(tok)
	if err != nil {
		return nil, core.Unauthorized()
	}
	sess, err := s.cfg.Store.Session(ctx, c.Session)
	if errors.Is(err, core.ErrNotFound) || (err == nil && (sess.RevokedAt != nil || sess.UserID != c.UserID())) {
		return nil, core.Unauthorized()
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Service) clock() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }
