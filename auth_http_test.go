package revops_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"golang.org/x/crypto/argon2"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/ratelimit"
)

const testPassword = "correct horse battery staple"

// login signs the bootstrap owner in and returns the token response's data.
func (e *env) login(email, password string, h ...hdr) *resp {
	e.t.Helper()
	return e.do("POST", "/auth/login", "", map[string]any{"email": email, "password": password}, h...)
}

func (e *env) withPassword(uid int64) {
	e.t.Helper()
	if err := e.p.SetPassword(context.Background(), uid, testPassword); err != nil {
		e.t.Fatal(err)
	}
}

var b64 = base64.RawURLEncoding

// verifyWithJWKS checks a token the way any client could: plain
// crypto/ed25519 against the published JWK Set, nothing of revops.
func verifyWithJWKS(t *testing.T, e *env, tok string) map[string]any {
	t.Helper()
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg, Use string }
	}
	r := e.do("GET", "/.well-known/jwks.json", "", nil).must(t, 200)
	if err := json.Unmarshal(r.Raw, &set); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	var h struct{ Alg, Kid string }
	hb, _ := b64.DecodeString(parts[0])
	json.Unmarshal(hb, &h)
	if h.Alg != "EdDSA" {
		t.Fatalf("alg %q, want EdDSA", h.Alg)
	}
	for _, k := range set.Keys {
		if k.Kid != h.Kid {
			continue
		}
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" {
			t.Fatalf("JWK %+v", k)
		}
		pub, err := b64.DecodeString(k.X)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("JWK x: %v", err)
		}
		sig, _ := b64.DecodeString(parts[2])
		if !ed25519.Verify(ed25519.PublicKey(pub), []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatal("the signature does not verify with the published key")
		}
		var claims map[string]any
		pb, _ := b64.DecodeString(parts[1])
		if err := json.Unmarshal(pb, &claims); err != nil {
			t.Fatal(err)
		}
		return claims
	}
	t.Fatalf("kid %q is not in the JWK Set %s", h.Kid, r.Raw)
	return nil
}

func TestLoginAccessTokens(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withPassword(e.owner.ID)
	r := e.login("Admin@Localhost ", testPassword).must(t, 200)
	tok := r.str("access_token")
	is.Equal(r.str("token_type"), "Bearer")
	is.Equal(r.data()["expires_in"], float64(15*60))
	is.True(strings.HasPrefix(r.str("refresh_token"), "rt_"))

	claims := verifyWithJWKS(t, e, tok)
	is.Equal(claims["sub"], fmt.Sprint(e.owner.ID))
	is.True(claims["jti"] != "" && claims["jti"] != nil)
	is.Equal(claims["exp"].(float64)-claims["iat"].(float64), float64(15*60))
	ws := claims["workspaces"].([]any)
	is.Equal(ws[0], map[string]any{"id": float64(e.ws.ID), "role": "owner"})

	// Accepted wherever keys are: path and header tenancy, writes included.
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), tok, nil).must(t, 200)
	e.do("POST", "/api-keys", tok, map[string]any{"name": "from a token"}, wsHdr(e.ws.ID)).must(t, 201)
	e.do("GET", "/audit/events", tok, nil, wsHdr(e.ws.ID)).must(t, 200)
	e.do("GET", "/workspaces/999999", tok, nil).must(t, 404, "not_found")

	me := e.do("GET", "/auth/me", tok, nil).must(t, 200).data()
	is.Equal(me["user"].(map[string]any)["email"], "admin@localhost")
	is.Equal(me["user"].(map[string]any)["display_name"], e.owner.Name) // spec 002's name for it
	is.Equal(me["principal"], "user_token")
	m := me["memberships"].([]any)[0].(map[string]any)
	is.Equal(m["role"], "owner")
	is.True(containsAll(m["permissions"].([]any), "workspaces:delete", "audit:read", "posts:write"))

	// A member's token: scopes ∩ role.
	u, _ := e.newUser("member@example.com")
	if err := e.store.AddMember(context.Background(), memberOf(e.ws.ID, u.ID, "member")); err != nil {
		t.Fatal(err)
	}
	e.withPassword(u.ID)
	mtok := e.login("member@example.com", testPassword).must(t, 200).str("access_token")
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), mtok, nil).must(t, 200)
	e.do("DELETE", fmt.Sprintf("/workspaces/%d", e.ws.ID), mtok, nil).must(t, 403, "access_denied")
	e.do("GET", fmt.Sprintf("/workspaces/%d/audit/events", e.ws.ID), mtok, nil).must(t, 403, "access_denied")
	mm := e.do("GET", "/auth/me", mtok, nil).must(t, 200).data()["memberships"].([]any)[0].(map[string]any)
	perms := mm["permissions"].([]any)
	is.True(containsAll(perms, "workspaces:read", "posts:write"))
	is.True(!containsAll(perms, "audit:read") && !containsAll(perms, "members:write"))
}

func containsAll(l []any, want ...string) bool {
	for _, w := range want {
		found := false
		for _, v := range l {
			found = found || v == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestAccessTokensRefused(t *testing.T) {
	e := newEnv(t)
	e.withPassword(e.owner.ID)
	tok := e.login("admin@localhost", testPassword).must(t, 200).str("access_token")
	path := fmt.Sprintf("/workspaces/%d", e.ws.ID)
	e.do("GET", path, tok, nil).must(t, 200)
	parts := strings.Split(tok, ".")
	payload, _ := b64.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	hdrOf := func(alg string) string {
		var h map[string]any
		hb, _ := b64.DecodeString(parts[0])
		json.Unmarshal(hb, &h)
		h["alg"] = alg
		j, _ := json.Marshal(h)
		return b64.EncodeToString(j)
	}
	with := func(mod func(map[string]any)) string {
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		mod(c)
		j, _ := json.Marshal(c)
		return b64.EncodeToString(j)
	}
	// The public key, as an attacker would fetch it, for the HS256 confusion.
	var set struct{ Keys []struct{ X string } }
	json.Unmarshal(e.do("GET", "/.well-known/jwks.json", "", nil).Raw, &set)
	pub, _ := b64.DecodeString(set.Keys[0].X)
	hs := func(key []byte, signing string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(signing))
		return b64.EncodeToString(m.Sum(nil))
	}
	other := fmt.Sprint(e.owner.ID + 1)
	tampered := parts[0] + "." + with(func(c map[string]any) { c["sub"] = other }) + "." + parts[2]
	noneTok := hdrOf("none") + "." + parts[1] + "."
	noneSigned := hdrOf("none") + "." + parts[1] + "." + parts[2]
	hsSigning := hdrOf("HS256") + "." + parts[1]
	hsPub := hsSigning + "." + hs(pub, hsSigning)
	hsJWK := hsSigning + "." + hs([]byte(set.Keys[0].X), hsSigning)
	cases := map[string]string{
		"tampered payload": tampered, "alg none": noneTok, "alg none with a signature": noneSigned,
		"HS256 with the public key": hsPub, "HS256 with the JWK x": hsJWK,
		"truncated signature": parts[0] + "." + parts[1] + "." + parts[2][:20],
		"garbage":             "eyJhbGciOiJFZERTQSJ9.e30.AAAA",
	}
	for name, bad := range cases {
		r := e.do("GET", path, bad, nil)
		if r.Status != 401 || r.Body["error"] != "unauthorized" || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s, want 401 unauthorized", name, r.Status, r.Raw)
		}
	}
	// Expired: past exp and the 30 s leeway.
	e.clock.Advance(15*time.Minute + 31*time.Second)
	e.do("GET", path, tok, nil).must(t, 401, "unauthorized")
}

func TestRefreshRotationAndReuse(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withPassword(e.owner.ID)
	first := e.login("admin@localhost", testPassword).must(t, 200)
	rt1 := first.str("refresh_token")
	second := e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": rt1}).must(t, 200)
	rt2, at2 := second.str("refresh_token"), second.str("access_token")
	is.True(rt2 != rt1 && at2 != first.str("access_token"))
	verifyWithJWKS(t, e, at2)
	e.do("GET", "/auth/me", at2, nil).must(t, 200)

	// rt1 again: reuse. The whole session dies: rt2 and both access tokens.
	e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": rt1}, auditHdr("reuse-1")).must(t, 401, "unauthorized")
	e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": rt2}).must(t, 401, "unauthorized")
	e.do("GET", "/auth/me", at2, nil).must(t, 401)
	e.do("GET", "/auth/me", first.str("access_token"), nil).must(t, 401)
	list, _, err := e.p.Audit().List(context.Background(), audit.Filter{Action: audit.TokenReuseDetected}, firstPage)
	is.NoErr(err)
	is.Equal(len(list), 1)
	is.Equal(list[0].RequestID, "reuse-1")
	is.Equal(list[0].Metadata["user_id"], float64(e.owner.ID))

	// Another login is another session, unaffected; garbage is refused.
	other := e.login("admin@localhost", testPassword).must(t, 200)
	e.do("GET", "/auth/me", other.str("access_token"), nil).must(t, 200)
	e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": "rt_nope"}).must(t, 401, "unauthorized")

	// Logout revokes the session: its refresh and access tokens stop working.
	e.do("POST", "/auth/logout", "", map[string]any{"refresh_token": other.str("refresh_token")}).must(t, 204)
	e.do("GET", "/auth/me", other.str("access_token"), nil).must(t, 401, "unauthorized")
	e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": other.str("refresh_token")}).must(t, 401, "unauthorized")
	out := e.lastEvent(audit.SessionRevoked)
	is.Equal(out.Metadata["with"], "refresh_token")
	is.Equal(out.Actor.ID, e.owner.ID)

	// A client holding only its access token signs out with it.
	third := e.login("admin@localhost", testPassword).must(t, 200)
	e.do("POST", "/auth/logout", "garbage.not.jwt", nil).must(t, 401, "unauthorized")
	e.do("POST", "/auth/logout", third.str("access_token"), nil).must(t, 204)
	e.do("GET", "/auth/me", third.str("access_token"), nil).must(t, 401, "unauthorized")
	e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": third.str("refresh_token")}).must(t, 401, "unauthorized")
	is.Equal(e.lastEvent(audit.SessionRevoked).Metadata["with"], "access_token")

	// A refresh token expires after RefreshTTL.
	late := e.login("admin@localhost", testPassword).must(t, 200).str("refresh_token")
	e.clock.Advance(30*24*time.Hour + time.Second)
	e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": late}).must(t, 401, "unauthorized")
}

func TestLoginFailuresAndThrottling(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *revops.Config) {
		c.Tokens.LoginPerAccount = ratelimit.Policy{PerMinute: 3}
		c.Tokens.LoginPerIP = ratelimit.Policy{PerMinute: 8}
	})
	e.withPassword(e.owner.ID)
	_, _ = e.newUser("nopass@example.com") // exists, no password

	// Wrong password, unknown email and password-less account answer alike.
	bodies := map[string]string{}
	for _, email := range []string{"admin@localhost", "ghost@example.com", "nopass@example.com"} {
		r := e.login(email, "wrong password!").must(t, 401, "unauthorized")
		bodies[email] = string(r.Raw)
	}
	is.Equal(bodies["admin@localhost"], bodies["ghost@example.com"])
	is.Equal(bodies["admin@localhost"], bodies["nopass@example.com"])
	fails, _, err := e.p.Audit().List(context.Background(), audit.Filter{Action: audit.LoginFailed}, firstPage)
	is.NoErr(err)
	is.Equal(len(fails), 3)
	reasons := map[string]bool{}
	for _, f := range fails {
		reasons[f.Metadata["reason"].(string)] = true
		is.Equal(f.Actor.Kind, audit.ActorAnonymous)
	}
	is.Equal(reasons, map[string]bool{"wrong_password": true, "unknown_email": true, "no_password": true})

	// Per account: the 4th attempt on one email within the minute is 429,
	// for an unknown email too, even with the right password afterwards.
	e.login("admin@localhost", "wrong again!!").must(t, 401)
	e.login("admin@localhost", "wrong again!!").must(t, 401)
	r := e.login("admin@localhost", testPassword).must(t, 429, "rate_limit_exceeded")
	is.True(r.Body["retry_after"].(float64) >= 1)
	e.login("ghost@example.com", "x-x-x-x-x").must(t, 401)
	e.login("ghost@example.com", "x-x-x-x-x").must(t, 401)
	e.login("ghost@example.com", "x-x-x-x-x").must(t, 429, "rate_limit_exceeded")

	// Per IP: 8 attempts from this address in all, whatever the email (the
	// refused ones above spent nothing from it).
	e.login("someone@example.com", "x-x-x-x-x").must(t, 401)
	e.login("else@example.com", "x-x-x-x-x").must(t, 429, "rate_limit_exceeded")

	// A minute later the owner gets in.
	e.clock.Advance(time.Minute)
	e.login("admin@localhost", testPassword).must(t, 200)
	ok, _, err := e.p.Audit().List(context.Background(), audit.Filter{Action: audit.LoginSucceeded}, firstPage)
	is.NoErr(err)
	is.Equal(len(ok), 1)
	is.Equal(ok[0].Actor.ID, e.owner.ID)
}

func TestLoginThrottleCountsFailuresOnly(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *revops.Config) {
		c.Tokens.LoginPerAccount = ratelimit.Policy{PerMinute: 3}
		c.Tokens.LoginPerIP = ratelimit.Policy{PerMinute: 100}
	})
	e.withPassword(e.owner.ID)
	// Successful logins spend nothing: a busy user is never locked out.
	for range 4 { // one more than the account's bucket holds
		e.login("admin@localhost", testPassword).must(t, 200)
	}
	// Three failures empty the account's bucket; the fourth attempt is 429
	// with Retry-After, even with the right password.
	for range 3 {
		e.login("admin@localhost", "wrong password!").must(t, 401)
	}
	r := e.login("admin@localhost", testPassword).must(t, 429, "rate_limit_exceeded")
	after := r.Header.Get("Retry-After")
	is.True(after != "")
	is.Equal(after, fmt.Sprint(r.Body["retry_after"]))
	is.Equal(r.Header.Get("X-RateLimit-Limit"), "3")
	// One failure refills in 20 s (3 per minute): then one attempt is let in.
	e.clock.Advance(21 * time.Second)
	e.login("admin@localhost", testPassword).must(t, 200)
}

// TestLoginThrottleConcurrentGuesses: guesses racing on one account are
// checked one at a time, so each sees the failures before it: of 12
// concurrent wrong passwords against a bucket of 3, exactly 3 are checked.
func TestLoginThrottleConcurrentGuesses(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *revops.Config) {
		c.Tokens.LoginPerAccount = ratelimit.Policy{PerMinute: 3}
		c.Tokens.LoginPerIP = ratelimit.Policy{PerMinute: 100}
	})
	e.withPassword(e.owner.ID)
	statuses := make(chan int, 12)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() { statuses <- e.login("admin@localhost", "wrong password!").Status })
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	is.Equal(count, map[int]int{401: 3, 429: 9})
}

// TestLoginWaitEndsWithClient: a login waiting for its account's turn
// (another login of the account is verifying a password) gives up when its
// client does, instead of waiting on.
func TestLoginWaitEndsWithClient(t *testing.T) {
	e := newEnv(t)
	// A costly hash (64 MiB, 8 passes): the first login holds the turn
	// for far longer than the second waits.
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(testPassword), salt, 8, 64*1024, 1, 32)
	b64 := base64.RawStdEncoding
	hash := fmt.Sprintf("$argon2id$v=%d$m=%d,t=8,p=1$%s$%s", argon2.Version, 64*1024, b64.EncodeToString(salt), b64.EncodeToString(key))
	if err := e.store.SetUserPassword(context.Background(), e.owner.ID, hash); err != nil {
		t.Fatal(err)
	}
	h := e.p.Handler()
	post := func(ctx context.Context) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, "POST", "/auth/login",
			strings.NewReader(`{"email":"admin@localhost","password":"`+testPassword+`"}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var firstDone atomic.Bool
	first := make(chan int, 1)
	go func() {
		w := post(context.Background())
		firstDone.Store(true)
		first <- w.Code
	}()
	time.Sleep(200 * time.Millisecond) // the first login has taken the turn (and hashes for far longer)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	w := post(ctx)
	if firstDone.Load() {
		t.Fatal("the second login returned only after the first ended: it waited on after its client left (or the hash is too cheap to tell)")
	}
	if w.Code != 400 || !strings.Contains(w.Body.String(), "The request was cancelled.") {
		t.Fatalf("the waiting login whose client left: %d %s, want the cancelled request's 400", w.Code, w.Body)
	}
	if code := <-first; code != 200 {
		t.Fatalf("the first login: %d, want 200", code)
	}
}
