// Package oauth mints, rotates and revokes login tokens through ory/fosite
// (v0.49.0) and implements login.Issuer with it:
//
//   - access tokens are EdDSA JWTs from fosite's JWT strategy
//     (oauth2.DefaultJWTStrategy), signed by jwt.DefaultSigner with the
//     active Ed25519 key as a *jose.JSONWebKey; the stock signer cannot
//     verify EdDSA, so edSigner overrides Decode and Validate;
//   - refresh tokens come from fosite's HMAC-SHA512/256 strategy (only the
//     signature is stored), prefixed "rt_" and checked against the
//     platform's clock;
//   - POST /auth/refresh is fosite's refresh-token grant (RFC 6749 §6): the
//     storage answers fosite.ErrInactiveToken for a spent token, so fosite's
//     reuse detection revokes the whole family;
//   - logout is fosite's RFC 7009 revocation.
//
// Password login is a first-party endpoint (fosite's password grant is
// deprecated): after login.Service has checked the password it asks fosite
// for an access response on a private grant type whose token-endpoint side
// refuses every request, so no OAuth2 client can use it.
//
// A fosite request is a login session: the request id is the session id,
// which survives rotations, so revoking "the request" revokes the family.
package oauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/token"
	"github.com/revopsdev/revops/workspace"
)

const (
	// ClientID is the one first-party client the login routes act as.
	ClientID = "revops"
	// loginGrant is the private grant type of a password login.
	loginGrant = "urn:revops:grant-type:first-party-login"
	// scopeAll is what a login grants: the user's own permissions, narrowed
	// per workspace by their role.
	scopeAll = "*"
)

// Store is what the fosite storage needs; login.Store has it.
type Store interface {
	User(ctx context.Context, id int64) (*workspace.User, error)
	Session(ctx context.Context, id int64) (*login.Session, error)
	RevokeSession(ctx context.Context, id int64, at time.Time) error
	CreateRefreshToken(ctx context.Context, t *login.RefreshToken) error
	UseRefreshToken(ctx context.Context, hash string, now time.Time) (*login.RefreshToken, error)
	RefreshToken(ctx context.Context, hash string) (*login.RefreshToken, error)
	DeleteRefreshToken(ctx context.Context, hash string) error
}

// Config configures a Provider.
type Config struct {
	Store      Store
	Signer     *token.Signer // signs and verifies access tokens; its keys also key the refresh-token HMAC
	RefreshTTL time.Duration
	// SessionMaxAge ends a session this long after its login, however often
	// it is refreshed: no refresh token outlives it (0: no end).
	SessionMaxAge time.Duration
	Now           func() time.Time
	// Memberships are the workspace claims of a user's access tokens,
	// read again at every rotation.
	Memberships func(ctx context.Context, userID int64) ([]token.WorkspaceClaim, error)
}

// Provider is a fosite OAuth2 provider with the handlers login uses: the
// refresh-token grant, revocation and the first-party login grant.
type Provider struct {
	cfg      Config
	oauth    fosite.OAuth2Provider
	strategy *oauth2.DefaultJWTStrategy
	store    *storage
	client   *fosite.DefaultClient
}

var _ login.Issuer = (*Provider)(nil)

// New builds the provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Store == nil || cfg.Signer == nil || cfg.RefreshTTL <= 0 || cfg.Now == nil || cfg.Memberships == nil {
		return nil, errors.New("oauth: New needs a store, a signer, a refresh TTL, a clock and memberships")
	}
	p := &Provider{cfg: cfg}
	p.client = &fosite.DefaultClient{ID: ClientID, Public: true, GrantTypes: []string{"refresh_token", loginGrant},
		Scopes: []string{scopeAll}}
	if aud := cfg.Signer.Audience(); aud != "" {
		p.client.Audience = []string{aud}
	}
	secrets := refreshSecrets(cfg.Signer)
	fc := &fosite.Config{
		AccessTokenLifespan:  cfg.Signer.TTL(),
		RefreshTokenLifespan: cfg.RefreshTTL,
		AccessTokenIssuer:    cfg.Signer.Issuer(),
		JWTScopeClaimKey:     jwt.JWTScopeFieldString, // "scope": "a b", as token.Claims reads it
		GlobalSecret:         secrets[0],
		RotatedGlobalSecrets: secrets[1:],
		TokenEntropy:         32,
		RefreshTokenScopes:   []string{}, // every grant gets a refresh token
		// fosite.Config fills these lazily inside its getters, a data race
		// under concurrent requests: set them here.
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.DefaultAudienceMatchingStrategy,
		ClientSecretsHasher:      &fosite.BCrypt{},
	}
	fc.ClientSecretsHasher = &fosite.BCrypt{Config: fc}
	p.strategy = &oauth2.DefaultJWTStrategy{
		Signer:          newEdSigner(cfg.Signer),
		HMACSHAStrategy: &refreshStrategy{HMACSHAStrategyUnPrefixed: oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: fc}, fc), now: p.clock},
		Config:          fc,
	}
	p.store = &storage{store: cfg.Store, client: p.client, now: p.clock, audience: cfg.Signer.Audience(), maxAge: cfg.SessionMaxAge}
	p.oauth = compose.Compose(fc, p.store, p.strategy,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenRevocationFactory,
		func(fosite.Configurator, any, any) any { return &grantHandler{p: p} }, // after the refresh grant: renews its claims
	)
	return p, nil
}

// refreshSecrets derives the HMAC keys of refresh tokens from the Ed25519
// keys (SHA-256 of a label and the seed): the signing key's secret signs,
// the others still verify, so instances sharing keys share refresh tokens
// and a rotated key keeps its refresh tokens valid while it is configured.
func refreshSecrets(s *token.Signer) [][]byte {
	var out [][]byte
	for _, k := range s.Keys() {
		sum := sha256.Sum256(append([]byte("revops refresh-token HMAC key v1\x00"), k.Seed()...))
		out = append(out, sum[:])
	}
	return out
}

func (p *Provider) clock() time.Time { return p.cfg.Now().UTC().Truncate(time.Microsecond) }

// renew sets a session's claims for a new token pair: subject, issuer,
// times from the platform clock, the session id and the user's current
// memberships. fosite keeps the claims with the request, so each rotation
// calls this again (a fresh jti comes from fosite for each token).
func (p *Provider) renew(ctx context.Context, s *oauth2.JWTSession, userID, sessionID int64) error {
	ms, err := p.cfg.Memberships(ctx, userID)
	if err != nil {
		return err
	}
	now := p.clock()
	sub := strconv.FormatInt(userID, 10)
	s.Subject = sub
	s.JWTHeader = &jwt.Headers{}
	s.JWTClaims = &jwt.JWTClaims{Subject: sub, Issuer: p.cfg.Signer.Issuer(), IssuedAt: now, NotBefore: now,
		Extra: map[string]any{"sid": sessionID, "workspaces": ms}}
	s.SetExpiresAt(fosite.AccessToken, now.Add(p.cfg.Signer.TTL()))
	s.SetExpiresAt(fosite.RefreshToken, now.Add(p.cfg.RefreshTTL))
	return nil
}

// Issue mints the first tokens of a session through fosite's access
// response on the first-party login grant.
func (p *Provider) Issue(ctx context.Context, u *workspace.User, sessionID int64) (*login.Tokens, error) {
	sess := &oauth2.JWTSession{}
	if err := p.renew(ctx, sess, u.ID, sessionID); err != nil {
		return nil, err
	}
	ar := fosite.NewAccessRequest(sess)
	ar.SetID(strconv.FormatInt(sessionID, 10))
	ar.Client = p.client
	ar.GrantTypes = fosite.Arguments{loginGrant}
	ar.RequestedAt = p.clock()
	ar.SetRequestedScopes(fosite.Arguments{scopeAll})
	ar.GrantScope(scopeAll)
	for _, a := range p.client.Audience {
		ar.GrantAudience(a)
	}
	resp, err := p.oauth.NewAccessResponse(withProbe(ctx, &probe{issuing: true}), ar)
	if err != nil {
		return nil, fmt.Errorf("oauth: issue: %w", err)
	}
	return tokens(resp, sess, u, sessionID)
}

// Refresh runs fosite's refresh-token grant.
func (p *Provider) Refresh(ctx context.Context, raw string) (*login.Tokens, error) {
	pr := &probe{}
	ctx = withProbe(ctx, pr)
	r, err := formRequest(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {raw}, "client_id": {ClientID}})
	if err != nil {
		return nil, err
	}
	ar, err := p.oauth.NewAccessRequest(ctx, r, &oauth2.JWTSession{})
	if err != nil {
		return nil, p.refreshFailed(ctx, pr, err)
	}
	resp, err := p.oauth.NewAccessResponse(ctx, ar)
	if err != nil {
		return nil, p.refreshFailed(ctx, pr, err)
	}
	sess, ok := ar.GetSession().(*oauth2.JWTSession)
	if !ok || pr.user == nil || pr.token == nil {
		return nil, errors.New("oauth: refresh: the grant handler did not run")
	}
	return tokens(resp, sess, pr.user, pr.token.SessionID)
}

// refreshFailed maps a failed refresh. A spent token has already revoked its
// family inside fosite's reuse detection; a rotation that lost a race to a
// concurrent one presented the same token twice too, so its family is
// revoked here. Both are *login.ReuseError for the audit trail.
func (p *Provider) refreshFailed(ctx context.Context, pr *probe, err error) error {
	switch {
	case pr.token != nil && (pr.reused || pr.lostRace):
		if pr.lostRace {
			if rerr := p.cfg.Store.RevokeSession(ctx, pr.token.SessionID, p.clock()); rerr != nil && !errors.Is(rerr, core.ErrNotFound) {
				return rerr
			}
		}
		return errors.Join(login.ErrInvalidRefresh(), &login.ReuseError{SessionID: pr.token.SessionID, UserID: pr.token.UserID})
	case errors.Is(err, fosite.ErrServerError), errors.Is(err, fosite.ErrTemporarilyUnavailable):
		return fmt.Errorf("oauth: refresh: %w", err)
	}
	return login.ErrInvalidRefresh()
}

// Revoke runs fosite's token revocation on a refresh token. fosite revokes
// the family of an active token; a spent token's session is revoked as well
// (logout with any token of a session ends it).
func (p *Provider) Revoke(ctx context.Context, raw string) (int64, error) {
	pr := &probe{}
	ctx = withProbe(ctx, pr)
	r, err := formRequest(ctx, url.Values{"token": {raw}, "token_type_hint": {"refresh_token"}, "client_id": {ClientID}})
	if err != nil {
		return 0, err
	}
	if err := p.oauth.NewRevocationRequest(ctx, r); err != nil {
		return 0, fmt.Errorf("oauth: revoke: %w", err)
	}
	if pr.token == nil {
		return 0, nil
	}
	if pr.inactive {
		if err := p.cfg.Store.RevokeSession(ctx, pr.token.SessionID, p.clock()); err != nil && !errors.Is(err, core.ErrNotFound) {
			return 0, err
		}
	}
	return pr.token.SessionID, nil
}

// formRequest is the token-endpoint form fosite parses; the login routes
// take JSON, so the form is built here rather than read from the client.
func formRequest(ctx context.Context, form url.Values) (*http.Request, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r, nil
}

func tokens(resp fosite.AccessResponder, s *oauth2.JWTSession, u *workspace.User, sessionID int64) (*login.Tokens, error) {
	rt, _ := resp.GetExtra("refresh_token").(string)
	if resp.GetAccessToken() == "" || rt == "" {
		return nil, errors.New("oauth: fosite returned no access or refresh token")
	}
	return &login.Tokens{Access: resp.GetAccessToken(), AccessExpiresAt: time.Unix(s.GetExpiresAt(fosite.AccessToken).Unix(), 0).UTC(),
		Refresh: rt, RefreshExpiresAt: s.GetExpiresAt(fosite.RefreshToken), User: u, SessionID: sessionID}, nil
}

// grantHandler is the token-endpoint handler revops adds to fosite's: it
// mints the tokens of a first-party login (and refuses that grant type to
// every token-endpoint request), and after fosite's refresh handler has
// checked a refresh token it reloads the user and renews the claims.
type grantHandler struct{ p *Provider }

var _ fosite.TokenEndpointHandler = (*grantHandler)(nil)

func (h *grantHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *grantHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(loginGrant) || r.GetGrantTypes().ExactOne("refresh_token")
}

func (h *grantHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if r.GetGrantTypes().ExactOne(loginGrant) {
		return fosite.ErrUnsupportedGrantType.WithHint("Password login is the first-party POST /auth/login.")
	}
	if !r.GetGrantTypes().ExactOne("refresh_token") {
		return fosite.ErrUnknownRequest
	}
	s, ok := r.GetSession().(*oauth2.JWTSession)
	pr := probeOf(ctx)
	if !ok || pr == nil || pr.token == nil {
		return fosite.ErrServerError.WithDebug("refresh without a stored token")
	}
	u, err := h.p.cfg.Store.User(ctx, pr.token.UserID)
	if errors.Is(err, core.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The user no longer exists.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if err := h.p.renew(ctx, s, u.ID, pr.token.SessionID); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	pr.user = u
	return nil
}

func (h *grantHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if pr := probeOf(ctx); !r.GetGrantTypes().ExactOne(loginGrant) || pr == nil || !pr.issuing {
		return fosite.ErrUnknownRequest
	}
	access, accessSig, err := h.p.strategy.GenerateAccessToken(ctx, r)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	refresh, refreshSig, err := h.p.strategy.GenerateRefreshToken(ctx, r)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	stored := r.Sanitize(nil)
	if err := h.p.store.CreateAccessTokenSession(ctx, accessSig, stored); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if err := h.p.store.CreateRefreshTokenSession(ctx, refreshSig, accessSig, stored); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	resp.SetAccessToken(access)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(r.GetSession().GetExpiresAt(fosite.AccessToken).Sub(h.p.clock()))
	resp.SetScopes(r.GetGrantedScopes())
	resp.SetExtra("refresh_token", refresh)
	return nil
}

// probe carries, through one fosite call, what the storage saw: the stored
// refresh token, whether it was spent, whether our rotation lost a race, and
// the user the grant handler loaded.
type probe struct {
	issuing  bool
	token    *login.RefreshToken
	inactive bool // spent, or its session revoked
	reused   bool // spent: presented a second time
	lostRace bool
	user     *workspace.User
}

type probeKey struct{}

func withProbe(ctx context.Context, p *probe) context.Context {
	return context.WithValue(ctx, probeKey{}, p)
}

func probeOf(ctx context.Context) *probe { p, _ := ctx.Value(probeKey{}).(*probe); return p }
