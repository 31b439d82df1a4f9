package revops

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/login"
)

// SessionsConfig configures web sessions: the cookie POST /auth/login sets
// when asked for {"session": "cookie"}.
type SessionsConfig struct {
	// CookieName names the session cookie (default "revops_session"); the
	// CSRF cookie is CookieName + "_csrf".
	CookieName string
	// PlainHTTP drops the Secure attribute from the cookies, for a host
	// served over plain HTTP (local development only: browsers then send
	// the cookie unencrypted).
	PlainHTTP bool
	// IdleTimeout ends a web session not used for this long (default
	// 24 h); MaxAge ends it this long after login whatever its use
	// (default 14 days; also the cookie's Max-Age).
	IdleTimeout, MaxAge time.Duration
}

func (sc *SessionsConfig) validate() error {
	if sc.CookieName == "" {
		sc.CookieName = "revops_session"
	}
	if !validCookieName(sc.CookieName) {
		return errors.New("revops: Config.Sessions.CookieName must be letters, digits, '_' or '-'")
	}
	if sc.IdleTimeout < 0 || sc.MaxAge < 0 {
		return errors.New("revops: Config.Sessions durations must not be negative (zero means the default)")
	}
	if sc.IdleTimeout == 0 {
		sc.IdleTimeout = 24 * time.Hour
	}
	if sc.MaxAge == 0 {
		sc.MaxAge = 14 * 24 * time.Hour
	}
	return nil
}

func validCookieName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return s != "" && len(s) <= 64
}

// CSRFHeader carries the CSRF token on cookie-authenticated POST, PUT,
// PATCH and DELETE requests.
const CSRFHeader = "X-CSRF-Token"

// Wire shapes of sessions.
type sessionOut struct {
	ID   int64  `json:"id"`   // the login session id
	Kind string `json:"kind"` // "cookie" (a browser) or "token" (an API client with a refresh token)
	// Current marks the session making the request.
	Current   bool      `json:"current"`
	CreatedAt time.Time `json:"created_at"`
	// LastSeenAt is a cookie's last use (to the minute), or a token
	// session's last refresh.
	LastSeenAt time.Time `json:"last_seen_at"`
	// ExpiresAt is when it stops working unless used (a cookie) or
	// refreshed (tokens): never past the session's absolute end.
	ExpiresAt time.Time `json:"expires_at"`
	UserAgent string    `json:"user_agent"` // cookies only
	IP        string    `json:"ip"`         // cookies only
}

// touchEvery is how stale last_seen_at may get before a request writes it.
const touchEvery = time.Minute

func (p *Platform) now() time.Time { return p.cfg.Now().UTC().Truncate(time.Microsecond) }

// minTime is the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// webSessionEnd is when w stops working: idle or absolute, whichever first.
func (p *Platform) webSessionEnd(w *login.WebSession) time.Time {
	return minTime(w.LastSeenAt.Add(p.cfg.Sessions.IdleTimeout), w.ExpiresAt)
}

// startWebSession binds a new cookie token to login session sessionID and
// sets the session and CSRF cookies. It returns the CSRF token.
func (p *Platform) startWebSession(ctx context.Context, c *Call, userID, sessionID int64) (string, time.Time, error) {
	raw, hash := login.NewCookieToken()
	now := p.now()
	ua := c.R.UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	w := &login.WebSession{SessionID: sessionID, UserID: userID, Hash: hash, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(p.cfg.Sessions.MaxAge), UserAgent: ua, IP: p.clientIP(c.R)}
	if err := p.cfg.Store.CreateWebSession(ctx, w); err != nil {
		return "", time.Time{}, err
	}
	csrf := login.CSRFToken(raw)
	p.setSessionCookies(c, raw, csrf, int(p.cfg.Sessions.MaxAge/time.Second))
	return csrf, w.ExpiresAt, nil
}

// setSessionCookies sets (maxAge > 0) or clears (maxAge < 0) the session
// cookie (HttpOnly) and the CSRF cookie (readable by the web app's script),
// both SameSite=Lax, Secure unless PlainHTTP, on the mount prefix.
func (p *Platform) setSessionCookies(c *Call, raw, csrf string, maxAge int) {
	path := httpapi.MountPrefix(c.R)
	if path == "" {
		path = "/"
	}
	sc := p.cfg.Sessions
	for _, ck := range []*http.Cookie{
		{Name: sc.CookieName, Value: raw, HttpOnly: true},
		{Name: sc.CookieName + "_csrf", Value: csrf},
	} {
		ck.Path, ck.MaxAge, ck.Secure, ck.SameSite = path, maxAge, !sc.PlainHTTP, http.SameSiteLaxMode
		http.SetCookie(c.W, ck)
	}
}

func (p *Platform) clearSessionCookies(c *Call) { p.setSessionCookies(c, "", "", -1) }

// errCSRF answers a cookie-authenticated unsafe request without a valid
// CSRF token (or sent cross-site).
func errCSRF() error {
	return core.E(core.CodeAccessDenied, "Cookie-authenticated POST, PUT, PATCH and DELETE requests need the %s header "+
		"(the csrf_token of the login response, also in the session's _csrf cookie) and must not come from another site.", CSRFHeader)
}

// cookieAuth is the kernel's Cookie hook: it authenticates a request by its
// session cookie, and requires the CSRF token on unsafe methods. No cookie:
// nil, nil (the request is unauthenticated).
func (p *Platform) cookieAuth(r *http.Request) (*auth.Principal, error) {
	ck, err := r.Cookie(p.cfg.Sessions.CookieName)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	if unsafeMethod(r.Method) && (r.Header.Get("Sec-Fetch-Site") == "cross-site" || !login.CheckCSRF(ck.Value, r.Header.Get(CSRFHeader))) {
		return nil, errCSRF()
	}
	w, err := p.verifyWebSession(r.Context(), ck.Value)
	if err != nil {
		return nil, err
	}
	return &auth.Principal{Kind: auth.WebSession, UserID: w.UserID, Scopes: []string{"*"}, SessionID: w.SessionID,
		Ref: "user:" + strconv.FormatInt(w.UserID, 10)}, nil
}

// verifyWebSession checks a cookie token: known, not idle or past its end,
// its login session not revoked. It refreshes last_seen_at now and then.
func (p *Platform) verifyWebSession(ctx context.Context, raw string) (*login.WebSession, error) {
	if !strings.HasPrefix(raw, "rs_") || len(raw) > 64 {
		return nil, core.Unauthorized()
	}
	w, err := p.cfg.Store.WebSessionByHash(ctx, login.HashToken(raw))
	if errors.Is(err, core.ErrNotFound) {
		return nil, core.Unauthorized()
	}
	if err != nil {
		return nil, err
	}
	now := p.now()
	if !now.Before(p.webSessionEnd(w)) {
		return nil, core.Unauthorized()
	}
	if w.SessionRevokedAt != nil {
		return nil, core.Unauthorized()
	}
	if now.Sub(w.LastSeenAt) >= touchEvery {
		if err := p.cfg.Store.TouchWebSession(ctx, w.SessionID, now); err != nil {
			p.cfg.Logger.ErrorContext(ctx, "revops: touching a web session", "error", err)
		}
	}
	return w, nil
}

// logoutCookie revokes the session of the request's cookie (CSRF checked);
// ok is false when the request carries none.
func (p *Platform) logoutCookie(ctx context.Context, c *Call) (ok bool, err error) {
	pr, err := p.cookieAuth(c.R)
	if pr == nil || err != nil {
		return false, err
	}
	if err := p.login.RevokeSession(ctx, pr.SessionID); err != nil {
		return true, err
	}
	as := *c
	as.Principal = pr
	p.record(ctx, &as, 0, audit.SessionRevoked, target{"session", pr.SessionID}, map[string]any{"user_id": pr.UserID, "via": "logout"})
	return true, nil
}

func (p *Platform) sessionRoutes() {
	a := p.api
	const tag = "Auth"

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: "/auth/sessions", Tag: tag, Scope: "sessions:read",
		Summary: "Your signed-in sessions, browsers (cookies) and API clients (refresh tokens), newest first; current marks the one making the request"},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*sessionOut, int, error) {
			if err := needUser(c, "have sessions"); err != nil {
				return nil, 0, err
			}
			now := p.now()
			list, err := p.cfg.Store.ListWebSessions(ctx, c.Principal.UserID, now)
			if err != nil {
				return nil, 0, err
			}
			tokens, err := p.cfg.Store.ListTokenSessions(ctx, c.Principal.UserID, now)
			if err != nil {
				return nil, 0, err
			}
			var live []*sessionOut
			add := func(s *sessionOut) {
				if now.Before(s.ExpiresAt) && inWindow(s.CreatedAt, lp.Filter.CreatedAfter, lp.Filter.CreatedBefore) {
					s.Current = s.ID == c.Principal.SessionID
					live = append(live, s)
				}
			}
			for i := range list {
				w := &list[i]
				add(&sessionOut{ID: w.SessionID, Kind: "cookie", CreatedAt: w.CreatedAt, LastSeenAt: w.LastSeenAt, ExpiresAt: p.webSessionEnd(w),
					UserAgent: w.UserAgent, IP: w.IP})
			}
			for _, t := range tokens {
				add(&sessionOut{ID: t.SessionID, Kind: "token", CreatedAt: t.CreatedAt, LastSeenAt: t.LastRefreshAt,
					ExpiresAt: minTime(t.ExpiresAt, t.CreatedAt.Add(p.cfg.Tokens.SessionMaxAge))})
			}
			slices.SortStableFunc(live, func(a, b *sessionOut) int { // newest first, as each list is
				return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
			})
			from := min(lp.Offset(), len(live))
			return live[from:min(from+lp.PerPage, len(live))], len(live), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: "/auth/sessions/{id}", Tag: tag, Scope: "sessions:delete", Status: http.StatusNoContent,
		Summary: "Sign one of your sessions out: its cookie, refresh token and access tokens stop working at once"},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			if err := needUser(c, "have sessions"); err != nil {
				return NoBody{}, err
			}
			id, err := c.PathID("id")
			if err != nil {
				return NoBody{}, err
			}
			s, err := p.cfg.Store.Session(ctx, id)
			if err != nil {
				return NoBody{}, err
			}
			if s.UserID != c.Principal.UserID || s.RevokedAt != nil {
				return NoBody{}, core.NotFound()
			}
			if err := p.login.RevokeSession(ctx, id); err != nil {
				return NoBody{}, err
			}
			p.record(ctx, c, 0, audit.SessionRevoked, target{"session", id}, map[string]any{"user_id": s.UserID})
			if id == c.Principal.SessionID && c.Principal.Kind == auth.WebSession {
				p.clearSessionCookies(c)
			}
			return NoBody{}, nil
		})
}

// cookieLogin finishes a login with {"session": "cookie"}: the session
// cookie and CSRF cookie are set; the body carries the CSRF token, never
// the tokens (the refresh token stays unseen, so only the cookie works).
func (p *Platform) cookieLogin(ctx context.Context, c *Call, t *login.Tokens) (*tokensOut, error) {
	csrf, ends, err := p.startWebSession(ctx, c, t.User.ID, t.SessionID)
	if err != nil {
		return nil, err
	}
	p.recordAs(ctx, c, audit.Actor{Kind: audit.ActorUser, ID: t.User.ID, Display: t.User.Email}, audit.LoginSucceeded,
		target{"user", t.User.ID}, map[string]any{"session_id": t.SessionID, "via": "cookie"})
	return &tokensOut{CSRFToken: csrf, SessionID: t.SessionID, SessionExpiresAt: ends,
		User: toUser(t.User)}, nil
}

// logoutWithCookie is POST /auth/logout without a refresh token: the
// cookie's session is revoked and the cookies cleared.
func (p *Platform) logoutWithCookie(ctx context.Context, c *Call) error {
	ok, err := p.logoutCookie(ctx, c)
	if !ok && err == nil { // no cookie either
		return core.Invalid("refresh_token", "The refresh_token field is required (or send the session cookie).")
	}
	if errors.Is(err, core.ErrUnauthorized) {
		err = nil // an unknown or dead cookie: nothing to revoke, cookies cleared all the same
	}
	if err != nil {
		return err
	}
	p.clearSessionCookies(c)
	return nil
}
