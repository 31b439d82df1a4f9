package revops_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"
	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/ratelimit"
)

func mustGenerate() string { return keys.Generate(keys.DefaultPrefix) }

func TestMethodNotAllowed(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	r := e.do("PATCH", "/workspaces", e.key, map[string]any{}).must(t, 405, "method_not_allowed")
	is.Equal(r.Header.Get("Allow"), "GET, HEAD, OPTIONS, POST")
	r = e.do("GET", "/workspaces/join", e.key, nil).must(t, 405)
	is.Equal(r.Header.Get("Allow"), "OPTIONS, POST")
	e.do("GET", "/nothing/here", e.key, nil).must(t, 404, "not_found")
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/workspaces", e.key, nil, hdr{"X-Request-ID": "trace-abc.123"})
	if r.Header.Get("X-Request-ID") != "trace-abc.123" {
		t.Fatal("valid request id not echoed")
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 200), "<script>"} {
		r = e.do("GET", "/nothing", "", nil, hdr{"X-Request-ID": bad})
		if got := r.Header.Get("X-Request-ID"); !strings.HasPrefix(got, "req_") {
			t.Errorf("%q: got %q", bad, got)
		}
	}
}

func TestPanicBecomesServerError(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	revops.Handle(e.p, revops.Route{Method: "GET", Path: "/boom", Scope: "posts:read", Tenant: revops.TenantContext},
		func(ctx context.Context, c *revops.Call, _ *revops.NoBody) (revops.NoBody, error) {
			panic("secret database password in panic")
		})
	r := e.do("GET", "/boom", e.key, nil, wsHdr(e.ws.ID)).must(t, 500, "server_error")
	is.Equal(r.Body["message"], "An unexpected error occurred.")
	is.Equal(r.Body["request_id"], r.Header.Get("X-Request-ID"))
	is.True(!strings.Contains(string(r.Raw), "secret"))
}

func TestRouteWithoutScopeIsRefused(t *testing.T) {
	e := newEnv(t)
	defer func() {
		if recover() == nil {
			t.Fatal("registering a route without a scope must panic")
		}
	}()
	revops.Handle(e.p, revops.Route{Method: "GET", Path: "/open"}, func(ctx context.Context, c *revops.Call, _ *revops.NoBody) (revops.NoBody, error) {
		return revops.NoBody{}, nil
	})
}

func TestEveryRouteDeclaresAScope(t *testing.T) {
	e := newEnv(t)
	public := map[string]bool{"GET /openapi.json": true, "GET /pixel/config": true, "POST /pixel/track": true,
		// Login takes credentials, not a key; the JWK Set is public by nature.
		"POST /auth/login": true, "POST /auth/refresh": true, "POST /auth/logout": true, "GET /.well-known/jwks.json": true,
		// The invitation token is the credential of an invitee without an account.
		"POST /invitations/register": true}
	n := 0
	for _, rt := range e.p.Routes() {
		n++
		name := rt.Method + " " + rt.Path
		if rt.Public != public[name] {
			t.Errorf("%s: public=%v, but the allow-list of public routes says %v", name, rt.Public, public[name])
		}
		if !rt.Public && !strings.Contains(rt.Scope, ":") {
			t.Errorf("%s: scope %q is not resource:action", name, rt.Scope)
		}
	}
	if n < 20 {
		t.Fatalf("only %d routes registered", n)
	}
}

// The handler works under any prefix, including StripPrefix leaving an empty
// or slash-less path, and links keep the prefix.
func TestMountPrefixes(t *testing.T) {
	e := newEnv(t)
	for _, mount := range []struct{ pattern, strip string }{
		{"/", ""}, {"/v2/", "/v2"}, {"/deep/api/", "/deep/api/"},
	} {
		mux := http.NewServeMux()
		h := e.p.Handler()
		if mount.strip != "" {
			h = http.StripPrefix(mount.strip, h)
		}
		mux.Handle(mount.pattern, h)
		srv := httptest.NewServer(mux)
		base := strings.TrimSuffix(srv.URL+mount.pattern, "/")
		req, _ := http.NewRequest("GET", base+"/workspaces?per_page=1", nil)
		req.Header.Set("Authorization", "Bearer "+e.key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", mount.pattern, res.StatusCode)
		}
		// The bare mount point: a JSON 404, not a panic or redirect loop.
		res, err = http.Get(srv.URL + mount.pattern)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s bare: %d %s", mount.pattern, res.StatusCode, res.Header.Get("Content-Type"))
		}
		srv.Close()
	}
}

func TestConfigErrorsSayHowToFix(t *testing.T) {
	_, err := revops.New(revops.Config{})
	if err == nil || !strings.Contains(err.Error(), "sqlstore.Open") {
		t.Fatalf("got %v", err)
	}
	e := newEnv(t)
	for name, cfg := range map[string]revops.Config{
		"prefix":   {Store: e.store, KeyPrefix: "bad prefix"},
		"tiers":    {Store: e.store, Tiers: []string{"a", "a"}},
		"resource": {Store: e.store, Resources: []string{"workspaces"}},
		"badres":   {Store: e.store, Resources: []string{"Bad Name"}},
		"negative": {Store: e.store, KeyCacheTTL: -1},
		"totpkey":  {Store: e.store, TOTP: revops.TOTPConfig{EncryptionKey: []byte("sixteen byte key")}},
		"totprate": {Store: e.store, TOTP: revops.TOTPConfig{PerUser: ratelimit.Policy{PerMinute: -1}}},
	} {
		if _, err := revops.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
