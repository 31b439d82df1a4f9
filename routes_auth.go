package revops

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/internal/oauth"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/ratelimit"
	"github.com/revopsdev/revops/scope"
	"github.com/revopsdev/revops/token"
	"github.com/revopsdev/revops/workspace"
)

// Wire shapes of login and tokens.
type (
	loginIn struct {
		Email    string `json:"email" validate:"required,max=254"`
		Password string `json:"password" validate:"required,max=256"`
		// TOTPCode is required when the user has two-factor authentication:
		// the current code or a recovery code.
		TOTPCode string `json:"totp_code,omitempty" validate:"max=64"`
		// Session "cookie" signs a browser in: a session cookie instead of tokens.
		Session string `json:"session" validate:"omitempty,oneof=cookie token"`
	}
	logoutIn struct {
		RefreshToken string `json:"refresh_token" validate:"omitempty,max=255"` // or the session cookie
	}
	refreshIn struct {
		RefreshToken string `json:"refresh_token" validate:"required,max=255"`
	}
	// tokensOut: a cookie login has no tokens, but a CSRF token and the
	// session's id and absolute end instead.
	tokensOut struct {
		AccessToken           string    `json:"access_token,omitempty"`
		TokenType             string    `json:"token_type,omitempty"` // Bearer
		ExpiresIn             int64     `json:"expires_in,omitempty"` // seconds
		ExpiresAt             time.Time `json:"expires_at,omitzero"`
		RefreshToken          string    `json:"refresh_token,omitempty"`
		RefreshTokenExpiresAt time.Time `json:"refresh_token_expires_at,omitzero"`
		CSRFToken             string    `json:"csrf_token,omitempty"`
		SessionID             int64     `json:"session_id,omitempty"`
		SessionExpiresAt      time.Time `json:"session_expires_at,omitzero"`
		User                  userOut   `json:"user"`
	}
	membershipOut struct {
		WorkspaceID int64    `json:"workspace_id"`
		Name        string   `json:"name"`
		Slug        string   `json:"slug"`
		Role        string   `json:"role"`
		Permissions []string `json:"permissions"` // the caller's scopes ∩ the role, expanded
	}
	meOut struct {
		User        userOut         `json:"user"`
		Principal   string          `json:"principal"` // user_token, personal_key
		Scopes      []string        `json:"scopes"`
		Memberships []membershipOut `json:"memberships"`
	}
	jwksOut struct {
		Keys []token.JWK `json:"keys"`
	}
)

// initLogin builds the token signer, the fosite provider that mints and
// rotates tokens, and the login service.
func (p *Platform) initLogin() error {
	tc := p.cfg.Tokens
	keys := tc.SigningKeys
	if len(keys) == 0 {
		// None configured: the store's shared key (created by the first
		// instance, loaded by the others).
		_, candidate, err := ed25519.GenerateKey(nil)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared, err := p.cfg.Store.SharedSigningKey(ctx, candidate)
		if err != nil {
			return fmt.Errorf("revops: the shared signing key: %w", err)
		}
		keys = []token.Key{{Private: shared}}
	}
	signer, err := token.NewSigner(token.Config{Keys: keys, Issuer: tc.Issuer, TTL: tc.AccessTTL, Leeway: 30 * time.Second, Now: p.cfg.Now})
	if err != nil {
		return fmt.Errorf("revops: Config.Tokens: %w", err)
	}
	issuer, err := oauth.New(oauth.Config{Store: p.cfg.Store, Signer: signer, RefreshTTL: tc.RefreshTTL, SessionMaxAge: tc.SessionMaxAge, Now: p.cfg.Now,
		Memberships: p.membershipClaims})
	if err != nil {
		return fmt.Errorf("revops: %w", err)
	}
	p.login, err = login.NewService(login.Config{Store: p.cfg.Store, Signer: signer, Issuer: issuer, Now: p.cfg.Now})
	if err != nil {
		return fmt.Errorf("revops: %w", err)
	}
	p.signer = signer
	return nil
}

// maxMemberships bounds the workspaces listed in a token and by /auth/me.
const maxMemberships = 100

// memberships lists the user's workspaces with their role in each.
func (p *Platform) memberships(ctx context.Context, userID int64) ([]workspace.Workspace, []string, error) {
	ws, _, err := p.cfg.Store.ListWorkspaces(ctx, workspace.ListFilter{MemberUserID: userID}, core.ListParams{Page: 1, PerPage: maxMemberships, Sort: []core.Sort{{Field: "id"}}})
	if err != nil {
		return nil, nil, err
	}
	roles := make([]string, len(ws))
	for i := range ws {
		m, err := p.cfg.Store.Member(ctx, ws[i].ID, userID)
		if err != nil {
			return nil, nil, err
		}
		roles[i] = m.Role
	}
	return ws, roles, nil
}

func (p *Platform) membershipClaims(ctx context.Context, userID int64) ([]token.WorkspaceClaim, error) {
	ws, roles, err := p.memberships(ctx, userID)
	out := make([]token.WorkspaceClaim, len(ws))
	for i := range ws {
		out[i] = token.WorkspaceClaim{ID: ws[i].ID, Role: roles[i]}
	}
	return out, err
}

// VerifyToken implements auth.TokenVerifier: a valid access token of a live
// session is its user, with the token's scopes (a request's permission in a
// workspace is then those scopes ∩ the user's role there, as for personal
// keys). The token's workspace claims are informational: membership is
// checked on every request.
func (p *Platform) VerifyToken(ctx context.Context, tok string) (*auth.Principal, error) {
	c, err := p.login.Verify(ctx, tok)
	if err != nil {
		return nil, err
	}
	// ExpiresAt stays nil: keys a signed-in user creates are not bound to
	// the lifetime of the access token that created them.
	return &auth.Principal{Kind: auth.UserToken, UserID: c.UserID(), Scopes: c.Scopes(), SessionID: c.Session,
		Ref: "user:" + strconv.FormatInt(c.UserID(), 10)}, nil
}

// SetPassword sets a user's password (argon2id), for host code and the
// reference server's bootstrap user.
func (p *Platform) SetPassword(ctx context.Context, userID int64, password string) error {
	return p.login.SetPassword(ctx, userID, password)
}

// loginBuckets are the email's and the client IP's login buckets.
func (p *Platform) loginBuckets(c *Call, email string) []loginBucket {
	tc := p.cfg.Tokens
	return []loginBucket{
		{"login:account:" + login.NormalizeEmail(email), tc.LoginPerAccount},
		{"login:ip:" + p.clientIP(c.R), tc.LoginPerIP},
	}
}

// loginSeed spreads emails over Platform.loginTurns.
var loginSeed = maphash.MakeSeed()

type loginBucket struct {
	key string
	pol ratelimit.Policy
}

// throttleLogin refuses a login (429 with Retry-After) when the email's or
// the client IP's login bucket is empty. It spends nothing: failures spend
// (loginFailed), successful logins do not. Unknown emails have buckets too,
// so the answer never tells whether an account exists.
func (p *Platform) throttleLogin(ctx context.Context, c *Call, email string) error {
	for _, b := range p.loginBuckets(c, email) {
		d, err := p.limiter.Peek(ctx, b.key, b.pol)
		if err != nil {
			return err
		}
		if !d.Allowed {
			return p.rateLimited(c.W.Header(), b.pol, d)
		}
	}
	return nil
}

// loginFailed spends one attempt from both login buckets.
func (p *Platform) loginFailed(ctx context.Context, c *Call, email string) {
	for _, b := range p.loginBuckets(c, email) {
		if _, err := p.limiter.Allow(ctx, b.key, b.pol); err != nil {
			p.cfg.Logger.ErrorContext(ctx, "revops: counting a failed login", "error", err)
		}
	}
}

func (p *Platform) toTokens(t *login.Tokens) *tokensOut {
	return &tokensOut{AccessToken: t.Access, TokenType: "Bearer", ExpiresIn: int64(p.cfg.Tokens.AccessTTL / time.Second), ExpiresAt: t.AccessExpiresAt,
		RefreshToken: t.Refresh, RefreshTokenExpiresAt: t.RefreshExpiresAt, User: toUser(t.User)}
}

// recordAs writes an audit event with an explicit actor (login routes are
// public: the call has no principal).
func (p *Platform) recordAs(ctx context.Context, c *Call, actor audit.Actor, action string, tg target, meta map[string]any) {
	e := &audit.Event{Actor: actor, Action: action, Metadata: meta, RequestID: c.RequestID, IP: p.clientIP(c.R), UserAgent: c.R.UserAgent()}
	if tg.typ != "" {
		e.TargetType, e.TargetID = tg.typ, strconv.FormatInt(tg.id, 10)
	}
	p.writeAudit(ctx, e)
}

func (p *Platform) authRoutes() {
	a := p.api
	const tag = "Auth"

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/auth/login", Tag: tag, Public: true,
		Summary: "Exchange email and password for an access token (EdDSA JWT) and a refresh token (shown once)"},
		func(ctx context.Context, c *Call, in *loginIn) (*tokensOut, error) {
			turn := p.loginTurns[maphash.String(loginSeed, login.NormalizeEmail(in.Email))%uint64(len(p.loginTurns))]
			select {
			case turn <- struct{}{}:
				defer func() { <-turn }()
			case <-ctx.Done(): // the client left while other logins of the account ran
				return nil, ctx.Err()
			}
			if err := p.throttleLogin(ctx, c, in.Email); err != nil {
				var ce *core.Error
				if errors.As(err, &ce) && ce.Code == core.CodeRateLimited {
					p.recordAs(ctx, c, audit.Actor{Kind: audit.ActorAnonymous}, audit.LoginFailed, target{},
						map[string]any{"email": login.NormalizeEmail(in.Email), "reason": "throttled"})
				}
				return nil, err
			}
			t, err := p.login.LoginWithCode(ctx, in.Email, in.Password, in.TOTPCode)
			var f *login.Failure
			if errors.As(err, &f) {
				tg := target{}
				if f.UserID != 0 {
					tg = target{"user", f.UserID}
				}
				p.loginFailed(ctx, c, in.Email)
				p.recordAs(ctx, c, audit.Actor{Kind: audit.ActorAnonymous}, audit.LoginFailed, tg,
					map[string]any{"email": login.NormalizeEmail(in.Email), "reason": f.Reason})
				return nil, err // its *core.Error: bad credentials, or a second-factor answer
			}
			if err != nil {
				return nil, err
			}
			if in.Session == "cookie" {
				return p.cookieLogin(ctx, c, t)
			}
			p.recordAs(ctx, c, audit.Actor{Kind: audit.ActorUser, ID: t.User.ID, Display: t.User.Email}, audit.LoginSucceeded,
				target{"user", t.User.ID}, map[string]any{"session_id": t.SessionID})
			return p.toTokens(t), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/auth/refresh", Tag: tag, Public: true,
		Summary: "Rotate a refresh token: returns a new access token and a new refresh token; presenting a used one revokes its session"},
		func(ctx context.Context, c *Call, in *refreshIn) (*tokensOut, error) {
			t, err := p.login.Refresh(ctx, in.RefreshToken)
			var reuse *login.ReuseError
			if errors.As(err, &reuse) {
				u, _ := p.cfg.Store.User(ctx, reuse.UserID)
				actor := audit.Actor{Kind: audit.ActorAnonymous}
				meta := map[string]any{"session_id": reuse.SessionID, "user_id": reuse.UserID}
				if u != nil {
					meta["email"] = u.Email
				}
				p.recordAs(ctx, c, actor, audit.TokenReuseDetected, target{"session", reuse.SessionID}, meta)
				return nil, login.ErrInvalidRefresh()
			}
			if err != nil {
				return nil, err
			}
			return p.toTokens(t), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/auth/logout", Tag: tag, Public: true, Status: http.StatusNoContent,
		Summary: "Revoke the session of a refresh token, of the access token sent as Authorization, or of the session cookie (CSRF-checked, cookies cleared): its tokens and cookie stop working"},
		func(ctx context.Context, c *Call, in *logoutIn) (NoBody, error) {
			if in.RefreshToken != "" {
				sid, err := p.login.Logout(ctx, in.RefreshToken)
				if err == nil && sid != 0 {
					p.loggedOut(ctx, c, sid, "refresh_token")
				}
				return NoBody{}, err
			}
			if scheme, tok, ok := strings.Cut(c.R.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") &&
				strings.Count(strings.TrimSpace(tok), ".") == 2 {
				// A client holding only its access token signs out with it.
				claims, err := p.login.Verify(ctx, strings.TrimSpace(tok))
				if err != nil {
					return NoBody{}, err // a dead or forged token: 401
				}
				if err := p.login.RevokeSession(ctx, claims.Session); err != nil {
					return NoBody{}, err
				}
				p.loggedOut(ctx, c, claims.Session, "access_token")
				return NoBody{}, nil
			}
			return NoBody{}, p.logoutWithCookie(ctx, c)
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/auth/me", Tag: tag, Scope: "workspaces:read",
		Summary: "The signed-in user, their memberships and effective permissions in each workspace"},
		func(ctx context.Context, c *Call, _ *NoBody) (*meOut, error) {
			if err := needUser(c, "have a user profile"); err != nil {
				return nil, err
			}
			u, err := p.cfg.Store.User(ctx, c.Principal.UserID)
			if err != nil {
				return nil, err
			}
			ws, roles, err := p.memberships(ctx, u.ID)
			if err != nil {
				return nil, err
			}
			out := &meOut{User: toUser(u), Principal: string(c.Principal.Kind),
				Scopes: append([]string{}, c.Principal.Scopes...), Memberships: []membershipOut{}}
			for i := range ws {
				role, _ := p.workspaces.Role(roles[i])
				out.Memberships = append(out.Memberships, membershipOut{WorkspaceID: ws[i].ID, Name: ws[i].Name, Slug: ws[i].Slug, Role: roles[i],
					Permissions: p.permissions(scope.Grant{c.Principal.Scopes, role})})
			}
			return out, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/.well-known/jwks.json", Tag: tag, Public: true, Bare: true,
		Summary: "The public keys that verify access tokens (JWK Set, Ed25519)"},
		func(ctx context.Context, c *Call, _ *NoBody) (*jwksOut, error) {
			return &jwksOut{Keys: p.signer.JWKS()}, nil
		})
}

// permissions expands a grant into every concrete resource:action it allows.
func (p *Platform) permissions(g scope.Grant) []string {
	out := []string{}
	for _, r := range p.catalog.Resources() {
		for _, act := range scope.Actions {
			if s := r + ":" + act; g.Allows(s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// loggedOut audits a session signed out with a token (the cookie's logout
// records its own), as its user.
func (p *Platform) loggedOut(ctx context.Context, c *Call, sessionID int64, via string) {
	s, err := p.cfg.Store.Session(ctx, sessionID)
	if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "revops: reading a signed-out session for the audit trail", "error", err)
		return
	}
	actor := audit.Actor{Kind: audit.ActorUser, ID: s.UserID}
	if u, err := p.cfg.Store.User(ctx, s.UserID); err == nil {
		actor.Display = u.Email
	}
	p.recordAs(ctx, c, actor, audit.SessionRevoked, target{"session", sessionID}, map[string]any{"user_id": s.UserID, "via": "logout", "with": via})
}
