package oauth

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/login"
)

// storage is fosite's storage over the login store. A fosite request is a
// login session (request id = session id); refresh tokens are rows keyed by
// the HMAC signature; access tokens are self-contained JWTs and are not
// stored: revoking their session (the "sid" claim, checked on every request
// by login.Service.Verify) revokes them.
type storage struct {
	store    Store
	client   fosite.Client
	now      func() time.Time
	audience string
	maxAge   time.Duration // of a session, from its login; 0: none
}

var (
	_ fosite.ClientManager          = (*storage)(nil)
	_ oauth2.TokenRevocationStorage = (*storage)(nil)
)

// GetClient knows the one first-party client.
func (s *storage) GetClient(_ context.Context, id string) (fosite.Client, error) {
	if id != s.client.GetID() {
		return nil, fosite.ErrNotFound
	}
	return s.client, nil
}

// ClientAssertionJWTValid and SetClientAssertionJWT serve JWT client
// authentication, which the public first-party client never uses.
func (s *storage) ClientAssertionJWTValid(context.Context, string) error { return nil }

func (s *storage) SetClientAssertionJWT(context.Context, string, time.Time) error { return nil }

// CreateAccessTokenSession stores nothing: see storage.
func (s *storage) CreateAccessTokenSession(context.Context, string, fosite.Requester) error {
	return nil
}

// GetAccessTokenSession finds nothing: access tokens are not stored.
func (s *storage) GetAccessTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}

func (s *storage) DeleteAccessTokenSession(context.Context, string) error { return nil }

// sessionID parses a request id.
func sessionID(r fosite.Requester) (int64, error) {
	id, err := strconv.ParseInt(r.GetID(), 10, 64)
	if err != nil || id <= 0 {
		return 0, errors.New("oauth: a request id is not a session id: " + r.GetID())
	}
	return id, nil
}

// CreateRefreshTokenSession stores a refresh token of the request's session.
func (s *storage) CreateRefreshTokenSession(ctx context.Context, signature, _ string, r fosite.Requester) error {
	sid, err := sessionID(r)
	if err != nil {
		return err
	}
	uid, err := strconv.ParseInt(r.GetSession().GetSubject(), 10, 64)
	if err != nil {
		return errors.New("oauth: the session's subject is not a user id")
	}
	exp := r.GetSession().GetExpiresAt(fosite.RefreshToken)
	if exp.IsZero() {
		return errors.New("oauth: a refresh token without an expiry")
	}
	if s.maxAge > 0 {
		sess, err := s.store.Session(ctx, sid)
		if err != nil {
			return err
		}
		if end := sess.CreatedAt.Add(s.maxAge); end.Before(exp) {
			// The response reports the session's expiry too: same object.
			exp = end
			r.GetSession().SetExpiresAt(fosite.RefreshToken, exp)
		}
	}
	return s.store.CreateRefreshToken(ctx, &login.RefreshToken{SessionID: sid, UserID: uid, Hash: signature, CreatedAt: s.now(), ExpiresAt: exp})
}

// GetRefreshTokenSession returns the request of a refresh token. A spent
// token, or one whose session is revoked, is returned WITH
// fosite.ErrInactiveToken: that is what makes fosite's refresh handler
// detect reuse and revoke the family (a plain not-found would not).
func (s *storage) GetRefreshTokenSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	t, err := s.store.RefreshToken(ctx, signature)
	if errors.Is(err, core.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	sess, err := s.store.Session(ctx, t.SessionID)
	if err != nil {
		return nil, err
	}
	if s.maxAge > 0 && !s.now().Before(sess.CreatedAt.Add(s.maxAge)) {
		// The session is over (its tokens were capped at its end): an
		// unknown token, not a reused one.
		return nil, fosite.ErrNotFound
	}
	r := s.request(t)
	pr := probeOf(ctx)
	if pr != nil {
		pr.token = t
	}
	if t.UsedAt != nil || sess.RevokedAt != nil {
		if pr != nil {
			pr.inactive, pr.reused = true, t.UsedAt != nil
		}
		return r, fosite.ErrInactiveToken
	}
	return r, nil
}

// request rebuilds the fosite request of a stored refresh token.
func (s *storage) request(t *login.RefreshToken) *fosite.Request {
	sess := &oauth2.JWTSession{Subject: strconv.FormatInt(t.UserID, 10)}
	sess.SetExpiresAt(fosite.RefreshToken, t.ExpiresAt)
	r := fosite.NewRequest()
	r.SetID(strconv.FormatInt(t.SessionID, 10))
	r.Client = s.client
	r.RequestedAt = t.CreatedAt
	r.SetSession(sess)
	r.SetRequestedScopes(fosite.Arguments{scopeAll})
	r.GrantScope(scopeAll)
	if s.audience != "" {
		r.SetRequestedAudience(fosite.Arguments{s.audience})
		r.GrantAudience(s.audience)
	}
	return r
}

// DeleteRefreshTokenSession removes a (reused) refresh token; already gone
// is fine.
func (s *storage) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	if err := s.store.DeleteRefreshToken(ctx, signature); err != nil && !errors.Is(err, core.ErrNotFound) {
		return err
	}
	return nil
}

// RotateRefreshToken spends the presented token. The store's conditional
// update lets exactly one of concurrent rotations win; the others get
// fosite.ErrInactiveToken and are treated as reuse by Provider.Refresh.
func (s *storage) RotateRefreshToken(ctx context.Context, _ string, signature string) error {
	_, err := s.store.UseRefreshToken(ctx, signature, s.now())
	switch {
	case errors.Is(err, core.ErrConflict):
		if pr := probeOf(ctx); pr != nil {
			pr.lostRace = true
		}
		return fosite.ErrInactiveToken
	case errors.Is(err, core.ErrNotFound):
		return fosite.ErrNotFound
	}
	return err
}

// RevokeRefreshToken and RevokeAccessToken revoke the session: its refresh
// tokens become inactive and its access tokens fail verification.
func (s *storage) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.revoke(ctx, requestID)
}

func (s *storage) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.revoke(ctx, requestID)
}

func (s *storage) revoke(ctx context.Context, requestID string) error {
	id, err := strconv.ParseInt(requestID, 10, 64)
	if err != nil {
		return fosite.ErrNotFound
	}
	err = s.store.RevokeSession(ctx, id, s.now())
	if errors.Is(err, core.ErrNotFound) {
		return fosite.ErrNotFound
	}
	return err
}
