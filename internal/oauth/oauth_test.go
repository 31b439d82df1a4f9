package oauth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/testclock"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/token"
	"github.com/revopsdev/revops/workspace"
)

type fixture struct {
	t      *testing.T
	ctx    context.Context
	store  *sqlstore.Store
	clock  *testclock.Clock
	key    ed25519.PrivateKey
	p      *Provider
	user   *workspace.User
	maxAge time.Duration // of sessions, for providers made after it is set
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := sqltest.SQLite(t)
	_, key, _ := ed25519.GenerateKey(nil)
	f := &fixture{t: t, ctx: ctx, store: st, clock: testclock.New(time.Now().UTC()), key: key}
	f.p = f.provider(key)
	f.user = &workspace.User{Email: "ada@example.com", Name: "Ada"}
	if err := st.CreateUser(ctx, f.user); err != nil {
		t.Fatal(err)
	}
	return f
}

// provider is another instance over the same store, signing with key.
func (f *fixture) provider(key ed25519.PrivateKey) *Provider {
	f.t.Helper()
	signer, err := token.NewSigner(token.Config{Keys: []token.Key{{Private: key}}, Issuer: "revops", TTL: 15 * time.Minute, Now: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := New(Config{Store: f.store, Signer: signer, RefreshTTL: 24 * time.Hour, SessionMaxAge: f.maxAge, Now: f.clock.Now,
		Memberships: func(context.Context, int64) ([]token.WorkspaceClaim, error) {
			return []token.WorkspaceClaim{{ID: 7, Role: "owner"}}, nil
		}})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// login starts a session and issues its first tokens.
func (f *fixture) login() *login.Tokens {
	f.t.Helper()
	s := &login.Session{UserID: f.user.ID}
	if err := f.store.CreateSession(f.ctx, s); err != nil {
		f.t.Fatal(err)
	}
	tok, err := f.p.Issue(f.ctx, f.user, s.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fixture) revoked(sessionID int64) bool {
	f.t.Helper()
	s, err := f.store.Session(f.ctx, sessionID)
	if err != nil {
		f.t.Fatal(err)
	}
	return s.RevokedAt != nil
}

func decodePart(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAccessTokenShape: fosite's JWT strategy mints what token.Signer
// verifies: EdDSA with the key's kid, the claims revops documents.
func TestAccessTokenShape(t *testing.T) {
	f := newFixture(t)
	tok := f.login()
	parts := strings.Split(tok.Access, ".")
	h, c := decodePart(t, parts[0]), decodePart(t, parts[1])
	if h["alg"] != "EdDSA" || h["kid"] != token.KeyID(f.key.Public().(ed25519.PublicKey)) || h["typ"] != "JWT" {
		t.Fatalf("header %v", h)
	}
	for _, k := range []string{"sub", "jti", "iat", "nbf", "exp", "iss", "sid", "scope", "workspaces"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %q missing from %v", k, c)
		}
	}
	if c["exp"].(float64)-c["iat"].(float64) != 15*60 || c["scope"] != "*" || c["iss"] != "revops" {
		t.Fatalf("claims %v", c)
	}
	claims, err := f.p.cfg.Signer.Verify(tok.Access)
	if err != nil || claims.UserID() != f.user.ID || claims.Session != tok.SessionID || len(claims.Workspaces) != 1 {
		t.Fatalf("token.Signer.Verify: %+v %v", claims, err)
	}
	if !strings.HasPrefix(tok.Refresh, "rt_") || !tok.RefreshExpiresAt.Equal(f.clock.Now().UTC().Truncate(time.Microsecond).Add(24*time.Hour)) {
		t.Fatalf("refresh %q expires %v", tok.Refresh, tok.RefreshExpiresAt)
	}
	// Two tokens of one session never share a jti.
	next, err := f.p.Refresh(f.ctx, tok.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if decodePart(t, strings.Split(next.Access, ".")[1])["jti"] == c["jti"] {
		t.Fatal("a rotation reused the jti")
	}
}

// TestEdSignerVerifies: fosite's strategy validates EdDSA tokens through
// the override and refuses forged ones; the stock signer cannot verify
// them at all, which is why the override exists.
func TestEdSignerVerifies(t *testing.T) {
	f := newFixture(t)
	tok := f.login().Access
	if err := f.p.strategy.ValidateAccessToken(f.ctx, nil, tok); err != nil {
		t.Fatalf("fosite's strategy refused its own token: %v", err)
	}
	parts := strings.Split(tok, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	for name, bad := range map[string]string{
		"tampered":      parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"2"}`)) + "." + parts[2],
		"alg none":      none + "." + parts[1] + ".",
		"no signature":  parts[0] + "." + parts[1] + ".",
		"not a JWT":     "rt_x.y",
		"bit flipped":   parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"three garbage": "eyJhbGciOiJFZERTQSJ9.e30.AAAA",
	} {
		if err := f.p.strategy.ValidateAccessToken(f.ctx, nil, bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	stock := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) {
		return &jose.JSONWebKey{Key: f.key, Algorithm: string(jose.EdDSA)}, nil
	}}
	if _, err := stock.Validate(f.ctx, tok); err == nil {
		t.Error("fosite's stock signer verifies EdDSA now: edSigner's override may be dropped")
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// TestRefreshReuseRevokesFamily: rotation through fosite's refresh grant;
// presenting a spent token revokes the whole session (RFC 9700).
func TestRefreshReuseRevokesFamily(t *testing.T) {
	f := newFixture(t)
	first := f.login()
	second, err := f.p.Refresh(f.ctx, first.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if second.Refresh == first.Refresh || second.SessionID != first.SessionID || second.User.ID != f.user.ID {
		t.Fatalf("rotation: %+v", second)
	}
	if f.revoked(first.SessionID) {
		t.Fatal("a rotation revoked its session")
	}
	_, err = f.p.Refresh(f.ctx, first.Refresh)
	var reuse *login.ReuseError
	if !errors.As(err, &reuse) || reuse.SessionID != first.SessionID || reuse.UserID != f.user.ID || !errors.Is(err, core.ErrUnauthorized) {
		t.Fatalf("reuse: %v, want a ReuseError of the session and 401", err)
	}
	if !f.revoked(first.SessionID) {
		t.Fatal("reuse did not revoke the session")
	}
	_, err = f.p.Refresh(f.ctx, second.Refresh)
	if !errors.Is(err, core.ErrUnauthorized) || errors.As(err, &reuse) {
		t.Fatalf("the live token of a revoked family: %v, want a plain 401", err)
	}
	// Other sessions are untouched.
	other := f.login()
	if _, err := f.p.Refresh(f.ctx, other.Refresh); err != nil {
		t.Fatalf("another session: %v", err)
	}
	for _, bad := range []string{"rt_nope", "", second.Refresh + "x", strings.TrimPrefix(other.Refresh, "rt_")} {
		if _, err := f.p.Refresh(f.ctx, bad); !errors.Is(err, core.ErrUnauthorized) {
			t.Errorf("refresh %q: %v, want 401", bad, err)
		}
	}
}

// TestConcurrentRefresh: of concurrent rotations of one token at most one
// wins; the others presented it a second time, so the session dies. None
// wins when a loser's reuse detection revokes the session after the winner
// spent the old token and before it stored its new one (the rotation's
// steps are fosite's, one write each): the session dies either way. A loser
// that comes after fosite's reuse handling has deleted the token finds it
// unknown: still 401, just not reported as reuse again.
func TestConcurrentRefresh(t *testing.T) {
	f := newFixture(t)
	rt := f.login()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = f.p.Refresh(f.ctx, rt.Refresh) }()
	}
	wg.Wait()
	wins, reuses := 0, 0
	for _, err := range errs {
		var reuse *login.ReuseError
		switch {
		case err == nil:
			wins++
		case errors.As(err, &reuse):
			reuses++
		case !errors.Is(err, core.ErrUnauthorized):
			t.Errorf("a losing rotation: %v, want 401", err)
		}
	}
	if wins > 1 || reuses == 0 || !f.revoked(rt.SessionID) {
		t.Fatalf("%d rotations won (want at most 1), %d reported reuse (want some); session revoked: %v", wins, reuses, f.revoked(rt.SessionID))
	}
}

// TestRefreshExpiry: the refresh token's expiry is checked on the
// platform's clock (fosite's own check reads time.Now).
func TestRefreshExpiry(t *testing.T) {
	f := newFixture(t)
	rt := f.login()
	f.clock.Advance(24*time.Hour - time.Second)
	next, err := f.p.Refresh(f.ctx, rt.Refresh)
	if err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	f.clock.Advance(24 * time.Hour)
	if _, err := f.p.Refresh(f.ctx, next.Refresh); !errors.Is(err, core.ErrUnauthorized) {
		t.Fatalf("after expiry: %v, want 401", err)
	}
}

// TestSessionMaxAge: a session refreshed every day still ends MaxAge after
// its login: the refresh token issued near the end expires at the end (and
// says so), and after it the token is unknown, not reused.
func TestSessionMaxAge(t *testing.T) {
	f := newFixture(t)
	f.maxAge = 72 * time.Hour
	f.p = f.provider(f.key)
	start := f.clock.Now()
	s := &login.Session{UserID: f.user.ID, CreatedAt: start}
	if err := f.store.CreateSession(f.ctx, s); err != nil {
		t.Fatal(err)
	}
	tok, err := f.p.Issue(f.ctx, f.user, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for day := 1; day <= 2; day++ { // each refresh well within the token's 24 h
		f.clock.Advance(20 * time.Hour)
		if tok, err = f.p.Refresh(f.ctx, tok.Refresh); err != nil {
			t.Fatalf("refresh %d: %v", day, err)
		}
		if want := f.clock.Now().Add(24 * time.Hour); tok.RefreshExpiresAt.Sub(want).Abs() > time.Second {
			t.Fatalf("refresh %d: the new token expires at %s, want %s (not capped yet)", day, tok.RefreshExpiresAt, want)
		}
	}
	f.clock.Advance(10 * time.Hour) // 50 h in: 24 h more would pass the 72 h end
	if tok, err = f.p.Refresh(f.ctx, tok.Refresh); err != nil {
		t.Fatalf("refresh near the end: %v", err)
	}
	end := start.Add(f.maxAge)
	if tok.RefreshExpiresAt.Sub(end).Abs() > time.Second {
		t.Fatalf("refresh near the end: the new token expires at %s, want the session's end %s", tok.RefreshExpiresAt, end)
	}
	f.clock.Advance(22*time.Hour + time.Second)
	_, err = f.p.Refresh(f.ctx, tok.Refresh)
	var reuse *login.ReuseError
	if !errors.Is(err, core.ErrUnauthorized) || errors.As(err, &reuse) {
		t.Fatalf("refresh after the session's end: %v, want a plain 401", err)
	}

	// A token issued before the limit was set (not capped) stops at the
	// session's end too, though it has not expired.
	f.maxAge = 0
	f.p = f.provider(f.key)
	s2 := &login.Session{UserID: f.user.ID, CreatedAt: f.clock.Now()}
	if err := f.store.CreateSession(f.ctx, s2); err != nil {
		t.Fatal(err)
	}
	old, err := f.p.Issue(f.ctx, f.user, s2.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(20 * time.Hour)
	f.maxAge = 12 * time.Hour
	f.p = f.provider(f.key)
	if _, err := f.p.Refresh(f.ctx, old.Refresh); !errors.Is(err, core.ErrUnauthorized) || errors.As(err, &reuse) {
		t.Fatalf("refresh of an uncapped token after its session's end: %v, want a plain 401", err)
	}
}

// TestRevoke: logout through fosite's revocation, with a live or a spent
// token; an unknown token is no error.
func TestRevoke(t *testing.T) {
	f := newFixture(t)
	live := f.login()
	id, err := f.p.Revoke(f.ctx, live.Refresh)
	if err != nil || id != live.SessionID || !f.revoked(live.SessionID) {
		t.Fatalf("revoke a live token: %d %v", id, err)
	}
	if _, err := f.p.Refresh(f.ctx, live.Refresh); !errors.Is(err, core.ErrUnauthorized) {
		t.Fatalf("refresh after logout: %v", err)
	}
	spent := f.login()
	if _, err := f.p.Refresh(f.ctx, spent.Refresh); err != nil {
		t.Fatal(err)
	}
	if id, err := f.p.Revoke(f.ctx, spent.Refresh); err != nil || id != spent.SessionID || !f.revoked(spent.SessionID) {
		t.Fatalf("revoke with a spent token: %d %v", id, err)
	}
	if id, err := f.p.Revoke(f.ctx, "rt_unknown"); err != nil || id != 0 {
		t.Fatalf("revoke an unknown token: %d %v", id, err)
	}
}

// TestInstancesShareRefreshTokens: the HMAC key derives from the signing
// keys, so another instance with the same keys rotates this one's tokens,
// and one with other keys cannot.
func TestInstancesShareRefreshTokens(t *testing.T) {
	f := newFixture(t)
	rt := f.login()
	twin := f.provider(f.key)
	next, err := twin.Refresh(f.ctx, rt.Refresh)
	if err != nil {
		t.Fatalf("another instance with the same key: %v", err)
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	if _, err := f.provider(otherKey).Refresh(f.ctx, next.Refresh); !errors.Is(err, core.ErrUnauthorized) {
		t.Fatalf("an instance with another key: %v, want 401", err)
	}
}
