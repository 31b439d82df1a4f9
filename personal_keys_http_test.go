package revops_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/revopsdev/revops/audit"
)

// A signed-in user manages their personal keys with an access token or a
// session cookie: create, list, get, rotate, revoke.
func TestPersonalKeysSignedIn(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withPassword(e.owner.ID)
	tok := e.login("admin@localhost", testPassword).must(t, 200).str("access_token")
	cookie, csrf, _ := e.webLogin("admin@localhost")
	write := withCookie(cookie, "X-CSRF-Token", csrf)

	made := e.do("POST", "/user/api-keys", tok, map[string]any{"name": "cli", "scopes": []string{"read", "api-keys:write"}}).must(t, 201)
	id, raw := made.id(), made.str("key")
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), raw, nil).must(t, 200)
	fromCookie := e.do("POST", "/user/api-keys", "", map[string]any{"name": "browser"}, write).must(t, 201)
	is.True(fromCookie.str("key") != "")

	got := e.do("GET", fmt.Sprintf("/user/api-keys/%d", id), "", nil, withCookie(cookie)).must(t, 200)
	is.Equal(got.str("name"), "cli")
	is.Equal(got.str("key"), "")                                                  // never shown again
	is.Equal(len(e.do("GET", "/user/api-keys", tok, nil).must(t, 200).list()), 3) // bootstrap, cli, browser

	// Rotate with a cookie: a new key at once, the old one until the grace ends.
	rot := e.do("POST", fmt.Sprintf("/user/api-keys/%d/rotate", id), "", map[string]any{"grace_period_hours": 1}, write).must(t, 200)
	nid, nraw := rot.id(), rot.str("key")
	is.True(nid != id && nraw != "" && nraw != raw)
	is.Equal(rot.data()["scopes"], []any{"read", "api-keys:write"})
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), nraw, nil).must(t, 200)
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), raw, nil).must(t, 200)
	e.do("POST", fmt.Sprintf("/user/api-keys/%d/rotate", id), tok, map[string]any{}).must(t, 409, "conflict")
	e.do("POST", fmt.Sprintf("/user/api-keys/%d/rotate", nid), tok, map[string]any{"grace_period_hours": -1}).must(t, 422, "validation_failed")
	e.clock.Advance(time.Hour + time.Second)
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), raw, nil).must(t, 401, "unauthorized")
	tok = e.login("admin@localhost", testPassword).must(t, 200).str("access_token") // the first one expired

	// A narrow key cannot rotate (or create) a key broader than itself.
	e.do("POST", fmt.Sprintf("/user/api-keys/%d/rotate", fromCookie.id()), nraw, map[string]any{}).must(t, 403, "access_denied")
	e.do("POST", "/user/api-keys", nraw, map[string]any{"name": "wider", "scopes": []string{"*"}}).must(t, 403, "access_denied")

	// Another user: not found, whatever the route.
	_, other := e.newUser("other@example.com")
	for _, rq := range []struct{ m, p string }{{"GET", "/user/api-keys/%d"}, {"POST", "/user/api-keys/%d/rotate"}, {"DELETE", "/user/api-keys/%d"}} {
		var body any
		if rq.m == "POST" {
			body = map[string]any{}
		}
		e.do(rq.m, fmt.Sprintf(rq.p, nid), other, body).must(t, 404, "not_found")
	}
	// A workspace key has no personal keys.
	_, wkey := e.newWorkspace("W")
	e.do("POST", fmt.Sprintf("/user/api-keys/%d/rotate", nid), wkey, map[string]any{}).must(t, 403, "access_denied")

	e.do("DELETE", fmt.Sprintf("/user/api-keys/%d", nid), "", nil, write).must(t, 204)
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), nraw, nil).must(t, 401, "unauthorized")
	e.do("GET", fmt.Sprintf("/user/api-keys/%d", nid), tok, nil).must(t, 404, "not_found")

	// Each change is in the trail, outside any workspace, as the user.
	for action, n := range map[string]int{audit.APIKeyCreated: 2, audit.APIKeyRotated: 1, audit.APIKeyRevoked: 1} {
		list, _, err := e.p.Audit().List(context.Background(), audit.Filter{Action: action, WorkspaceID: 0}, firstPage)
		is.NoErr(err)
		mine := 0
		for _, ev := range list {
			if ev.Actor.Kind == audit.ActorUser && ev.Actor.ID == e.owner.ID && ev.WorkspaceID == 0 {
				mine++
				if ev.Metadata["name"] == nil || ev.Metadata["prefix"] == nil { // which key, never the key
					t.Errorf("%s: metadata %v, want the key's name and prefix", action, ev.Metadata)
				}
			}
		}
		if mine < n {
			t.Errorf("%s: %d events of the user outside workspaces, want %d", action, mine, n)
		}
	}
}
