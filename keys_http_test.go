package revops_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestAPIKeyLifecycle(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	h := wsHdr(e.ws.ID)

	r := e.do("POST", "/api-keys", e.key, map[string]any{"name": "Mobile App Key"}, h).must(t, 201)
	is.Equal(r.Body["message"], "API key created successfully.")
	key := r.str("key")
	is.True(strings.HasPrefix(key, "revops_"))
	is.True(strings.HasPrefix(key, r.str("prefix")))
	is.Equal(r.data()["scopes"], []any{"read", "write"})
	is.Equal(r.str("rate_limit_tier"), "free") // from the workspace
	is.Equal(r.data()["expires_at"], nil)
	id := r.id()

	// The key works, lists and gets never show it.
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), key, nil).must(t, 200)
	l := e.do("GET", "/api-keys", key, nil).must(t, 200)
	for _, it := range l.list() {
		if _, ok := it.(map[string]any)["key"]; ok {
			t.Fatal("list returned a key")
		}
	}
	g := e.do("GET", fmt.Sprintf("/api-keys/%d", id), key, nil).must(t, 200)
	_, has := g.data()["key"]
	is.True(!has)
	is.Equal(g.str("status"), "active")

	// The same key under /workspaces/{id}/api-keys.
	e.do("GET", fmt.Sprintf("/workspaces/%d/api-keys/%d", e.ws.ID, id), e.key, nil).must(t, 200)

	// A read/write key cannot delete: scope check names the scope.
	r = e.do("DELETE", fmt.Sprintf("/api-keys/%d", id), key, nil).must(t, 403, "access_denied")
	is.Equal(r.Body["message"], "Insufficient permissions. Required scope: api-keys:delete")

	// Revoke: fails at once although it was just cached.
	e.do("DELETE", fmt.Sprintf("/api-keys/%d", id), e.key, nil, h).must(t, 204)
	r = e.do("GET", "/api-keys", key, nil).must(t, 401, "unauthorized")
	is.Equal(r.Body["message"], "Invalid or missing API key.")
	is.Equal(r.Header.Get("WWW-Authenticate"), "Bearer")
	e.do("GET", fmt.Sprintf("/api-keys/%d", id), e.key, nil, h).must(t, 404, "not_found")
}

func TestAPIKeyCreateValidation(t *testing.T) {
	e := newEnv(t)
	h := wsHdr(e.ws.ID)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for name, c := range map[string]struct {
		body  any
		field string
	}{
		"no name":        {map[string]any{}, "name"},
		"unknown scope":  {map[string]any{"name": "k", "scopes": []string{"posts:read", "rockets:launch"}}, "scopes.1"},
		"unknown res":    {map[string]any{"name": "k", "scopes": []string{"rockets:read"}}, "scopes.0"},
		"empty scopes":   {map[string]any{"name": "k", "scopes": []string{}}, "scopes"},
		"dup scopes":     {map[string]any{"name": "k", "scopes": []string{"read", "read"}}, "scopes.1"},
		"bad tier":       {map[string]any{"name": "k", "rate_limit_tier": "ludicrous"}, "rate_limit_tier"},
		"past expiry":    {map[string]any{"name": "k", "expires_at": past}, "expires_at"},
		"bad expiry":     {map[string]any{"name": "k", "expires_at": "next tuesday"}, "expires_at"},
		"scopes string":  {map[string]any{"name": "k", "scopes": "read"}, "scopes"},
		"unknown fields": {map[string]any{"name": "k", "key": "revops_mine"}, "key"},
	} {
		r := e.do("POST", "/api-keys", e.key, c.body, h)
		if r.Status != 422 || r.fieldErr(c.field) == "" {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
	l := e.do("GET", "/api-keys", e.key, nil, h).must(t, 200)
	if n := l.Body["meta"].(map[string]any)["total"]; n != 0.0 {
		t.Fatalf("rejected creates stored keys: %v", n)
	}
}

func TestAPIKeyCannotExceedIssuer(t *testing.T) {
	e := newEnv(t)
	_, limited := e.newWorkspace("Limited", "api-keys:write", "api-keys:read", "posts:read")
	e.do("POST", "/api-keys", limited, map[string]any{"name": "ok", "scopes": []string{"posts:read"}}).must(t, 201)
	r := e.do("POST", "/api-keys", limited, map[string]any{"name": "escalate", "scopes": []string{"*"}}).must(t, 403, "access_denied")
	if !strings.Contains(r.Body["message"].(string), "Required scope:") {
		t.Fatal(string(r.Raw))
	}
	e.do("POST", "/api-keys", limited, map[string]any{"name": "escalate"}).must(t, 403, "access_denied") // default read,write
}

func TestAPIKeyRotation(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	h := wsHdr(e.ws.ID)
	exp := e.clock.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	c := e.do("POST", "/api-keys", e.key, map[string]any{"name": "CI", "scopes": []string{"read", "posts:write"}, "rate_limit_tier": "pro", "expires_at": exp.Format(time.RFC3339)}, h).must(t, 201)
	oldKey, oldID := c.str("key"), c.id()
	e.do("GET", "/api-keys", oldKey, nil).must(t, 200)

	r := e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", oldID), e.key, nil, h).must(t, 200)
	is.Equal(r.Body["message"], "API key rotated successfully.")
	newKey := r.str("key")
	is.True(r.id() != oldID)
	is.Equal(r.str("name"), "CI")
	is.Equal(r.data()["scopes"], []any{"read", "posts:write"})
	is.Equal(r.str("rate_limit_tier"), "pro")
	is.Equal(r.str("expires_at"), exp.Format(time.RFC3339))
	ends, err := time.Parse(time.RFC3339, r.str("grace_period_ends_at"))
	is.NoErr(err)
	is.True(ends.Sub(e.clock.Now()) > 23*time.Hour && ends.Sub(e.clock.Now()) <= 24*time.Hour)

	// Both work during the grace period; the old one is "rotating".
	e.do("GET", "/api-keys", oldKey, nil).must(t, 200)
	e.do("GET", "/api-keys", newKey, nil).must(t, 200)
	is.Equal(e.do("GET", fmt.Sprintf("/api-keys/%d", oldID), e.key, nil, h).str("status"), "rotating")
	e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", oldID), e.key, nil, h).must(t, 409, "conflict")

	// After the grace period only the new key works.
	e.clock.Advance(25 * time.Hour)
	e.do("GET", "/api-keys", oldKey, nil).must(t, 401)
	e.do("GET", "/api-keys", newKey, nil).must(t, 200)

	// Grace 0 cuts the old key off at once; and rotation never outlives expiry.
	r = e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", r.id()), e.key, map[string]any{"grace_period_hours": 720}, h).must(t, 200)
	ends, _ = time.Parse(time.RFC3339, r.str("grace_period_ends_at"))
	is.True(!ends.After(exp))
	newer := r.str("key")
	r = e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", r.id()), e.key, map[string]any{"grace_period_hours": 0}, h).must(t, 200)
	e.do("GET", "/api-keys", newer, nil).must(t, 401)
	e.do("GET", "/api-keys", r.str("key"), nil).must(t, 200)

	for _, g := range []any{-1, 721, "24", 1.5} {
		e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", r.id()), e.key, map[string]any{"grace_period_hours": g}, h).must(t, 422, "validation_failed")
	}
	// Past its own expiry the key is dead whatever the grace.
	e.clock.Advance(48 * time.Hour)
	e.do("GET", "/api-keys", r.str("key"), nil).must(t, 401)
}

func TestAuthFailures(t *testing.T) {
	e := newEnv(t)
	for name, auth := range map[string]string{
		"none": "", "basic": "Basic Zm9vOmJhcg==", "empty bearer": "Bearer ", "garbage": "Bearer nope",
		"well-formed unknown": "Bearer " + mustGenerate(), "wrong prefix": "Bearer sk_live_abc",
	} {
		h := hdr{}
		if auth != "" {
			h["Authorization"] = auth
		}
		r := e.do("GET", "/workspaces", "", nil, h)
		if r.Status != 401 || r.Body["error"] != "unauthorized" || r.Body["message"] != "Invalid or missing API key." || r.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s: %d %v %s", name, r.Status, r.Header, r.Raw)
		}
	}
	// Expiry is checked at every request, cached or not.
	c := e.do("POST", "/api-keys", e.key, map[string]any{"name": "short", "expires_at": e.clock.Now().Add(time.Hour).Format(time.RFC3339)}, wsHdr(e.ws.ID)).must(t, 201)
	e.do("GET", "/workspaces", c.str("key"), nil).must(t, 200)
	e.clock.Advance(61 * time.Minute)
	e.do("GET", "/workspaces", c.str("key"), nil).must(t, 401, "unauthorized")
}

func TestPersonalKeyWorkspaceSelection(t *testing.T) {
	e := newEnv(t)
	// A user of one workspace may leave it unnamed (spec 002's examples do);
	// once the user has several, the header says which.
	e.do("GET", "/api-keys", e.key, nil).must(t, 200)
	e.newWorkspace("Second")
	r := e.do("GET", "/api-keys", e.key, nil).must(t, 400, "bad_request")
	if !strings.Contains(r.Body["message"].(string), "belongs to several workspaces") {
		t.Fatalf("message: %v", r.Body["message"])
	}
	e.do("GET", "/api-keys", e.key, nil, hdr{"X-Workspace-ID": "abc"}).must(t, 400, "bad_request")
	e.do("GET", "/api-keys", e.key, nil, wsHdr(e.ws.ID)).must(t, 200)
	// A workspace the user is not a member of does not exist for them.
	_, stranger := e.newUser("stranger@example.com")
	e.do("GET", "/api-keys", stranger, nil, wsHdr(e.ws.ID)).must(t, 404, "not_found")
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), stranger, nil).must(t, 404, "not_found")
	l := e.do("GET", "/workspaces", stranger, nil).must(t, 200)
	if len(l.list()) != 0 {
		t.Fatal(string(l.Raw))
	}
	// A workspace key cannot create workspaces.
	_, wkey := e.newWorkspace("Bound")
	e.do("POST", "/workspaces", wkey, map[string]any{"name": "New"}).must(t, 403, "access_denied")
}

func TestLastUsedIsCoalesced(t *testing.T) {
	e := newEnv(t)
	h := wsHdr(e.ws.ID)
	c := e.do("POST", "/api-keys", e.key, map[string]any{"name": "used"}, h).must(t, 201)
	for range 5 {
		e.do("GET", "/workspaces", c.str("key"), nil).must(t, 200)
	}
	// Nothing written yet: the use is batched.
	if g := e.do("GET", fmt.Sprintf("/api-keys/%d", c.id()), e.key, nil, h); g.data()["last_used_at"] != nil {
		t.Fatalf("written per request: %s", g.Raw)
	}
	if err := e.p.Stop(context.Background()); err != nil { // flushes
		t.Fatal(err)
	}
	g := e.do("GET", fmt.Sprintf("/api-keys/%d", c.id()), e.key, nil, h)
	if g.data()["last_used_at"] == nil {
		t.Fatalf("not flushed: %s", g.Raw)
	}
}

func TestPersonalKeys(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	r := e.do("POST", "/user/api-keys", e.key, map[string]any{"name": "laptop", "scopes": []string{"read", "posts:write"}}).must(t, 201)
	laptop := r.str("key")
	is.Equal(r.str("rate_limit_tier"), "") // follows each workspace's tier
	// It acts in the user's workspaces, chosen by the path or X-Workspace-ID.
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), laptop, nil).must(t, 200)
	e.do("GET", "/api-keys", laptop, nil, wsHdr(e.ws.ID)).must(t, 200)
	e.do("PATCH", fmt.Sprintf("/workspaces/%d", e.ws.ID), laptop, map[string]any{"name": "x"}).must(t, 403, "access_denied")

	l := e.do("GET", "/user/api-keys", e.key, nil).must(t, 200)
	is.Equal(len(l.list()), 2) // bootstrap key + laptop
	is.Equal(l.Body["meta"].(map[string]any)["total"], 2.0)
	l = e.do("GET", "/user/api-keys?per_page=1&page=2", e.key, nil).must(t, 200)
	is.Equal(len(l.list()), 1)

	// Another user cannot see or revoke it; a workspace key has no personal keys.
	_, other := e.newUser("other@example.com")
	e.do("DELETE", fmt.Sprintf("/user/api-keys/%d", r.id()), other, nil).must(t, 404, "not_found")
	_, wkey := e.newWorkspace("W")
	e.do("GET", "/user/api-keys", wkey, nil).must(t, 403, "access_denied")
	// The laptop key cannot mint a key with more than it holds.
	e.do("POST", "/user/api-keys", laptop, map[string]any{"name": "more", "scopes": []string{"*"}}).must(t, 403, "access_denied")

	e.do("DELETE", fmt.Sprintf("/user/api-keys/%d", r.id()), e.key, nil).must(t, 204)
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), laptop, nil).must(t, 401, "unauthorized")
	e.do("DELETE", fmt.Sprintf("/user/api-keys/%d", r.id()), e.key, nil).must(t, 404, "not_found")
}

// Rotation must not hand a narrow key (or an admin) a key it could not create.
func TestRotationCannotEscalate(t *testing.T) {
	e := newEnv(t)
	h := wsHdr(e.ws.ID)
	strong := e.do("POST", "/api-keys", e.key, map[string]any{"name": "strong", "scopes": []string{"*"}}, h).must(t, 201)
	narrow := e.do("POST", "/api-keys", e.key, map[string]any{"name": "narrow", "scopes": []string{"api-keys:write", "api-keys:read"}}, h).must(t, 201)
	e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", strong.id()), narrow.str("key"), map[string]any{"grace_period_hours": 0}).must(t, 403, "access_denied")
	e.do("GET", "/api-keys", strong.str("key"), nil).must(t, 200) // untouched
	// An admin cannot rotate the owner's * key either.
	u, admin := e.newUser("admin@example.com")
	if err := e.p.Workspaces().Store().AddMember(t.Context(), memberOf(e.ws.ID, u.ID, "admin")); err != nil {
		t.Fatal(err)
	}
	e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", strong.id()), admin, nil, h).must(t, 403, "access_denied")
	// A narrow key may rotate itself.
	e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", narrow.id()), narrow.str("key"), nil).must(t, 200)
}

func TestIncludeMembersNeedsMembersRead(t *testing.T) {
	e := newEnv(t)
	_, key := e.newWorkspace("Private", "workspaces:read")
	e.do("GET", "/workspaces?include=members", key, nil).must(t, 403, "access_denied")
	e.do("GET", "/workspaces?include=owner", key, nil).must(t, 403, "access_denied")
	r := e.do("GET", "/workspaces", key, nil).must(t, 200)
	if len(r.list()) != 1 {
		t.Fatal(string(r.Raw))
	}
}

func TestPersonalKeyListFilters(t *testing.T) {
	e := newEnv(t)
	future := e.clock.Now().Add(time.Hour).Format(time.RFC3339)
	r := e.do("GET", "/user/api-keys?created_after="+future, e.key, nil).must(t, 200)
	if len(r.list()) != 0 {
		t.Fatalf("created_after was ignored: %s", r.Raw)
	}
	e.do("GET", "/user/api-keys?page=9223372036854775807", e.key, nil).must(t, 422, "validation_failed")
}

func TestKeyCannotOutliveItsIssuer(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	h := wsHdr(e.ws.ID)
	exp := e.clock.Now().Add(time.Hour).UTC().Truncate(time.Second)
	issuer := e.do("POST", "/api-keys", e.key, map[string]any{"name": "temp", "scopes": []string{"read", "api-keys:write"}, "expires_at": exp.Format(time.RFC3339)}, h).must(t, 201)
	child := e.do("POST", "/api-keys", issuer.str("key"), map[string]any{"name": "child", "scopes": []string{"read"}}).must(t, 201)
	is.Equal(child.str("expires_at"), exp.Format(time.RFC3339)) // inherited
	r := e.do("POST", "/api-keys", issuer.str("key"), map[string]any{"name": "forever", "scopes": []string{"read"}, "expires_at": exp.Add(time.Hour).Format(time.RFC3339)}).must(t, 422)
	is.True(r.fieldErr("expires_at") != "")
}
