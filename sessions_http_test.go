package revops_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/audit"
)

// webLogin signs email in with a session cookie and returns the cookie
// header value and the CSRF token.
func (e *env) webLogin(email string) (cookie, csrf string, r *resp) {
	e.t.Helper()
	r = e.do("POST", "/auth/login", "", map[string]any{"email": email, "password": testPassword, "session": "cookie"}).must(e.t, 200)
	for _, c := range cookiesOf(r) {
		if c.Name == "revops_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		e.t.Fatalf("no session cookie: %v", r.Header["Set-Cookie"])
	}
	return cookie, r.str("csrf_token"), r
}

func cookiesOf(r *resp) []*http.Cookie { return (&http.Response{Header: r.Header}).Cookies() }

func withCookie(cookie string, extra ...string) hdr {
	h := hdr{"Cookie": cookie}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func TestSessionCookieLogin(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withPassword(e.owner.ID)
	cookie, csrf, r := e.webLogin("admin@localhost")
	// No tokens in the body of a cookie login: only the cookie works.
	is.Equal(r.data()["access_token"], nil)
	is.Equal(r.data()["refresh_token"], nil)
	is.True(csrf != "")
	is.True(r.data()["session_id"].(float64) > 0)
	var sawSession, sawCSRF bool
	for _, c := range cookiesOf(r) {
		is.Equal(c.Path, "/api/v1") // the mount prefix
		is.True(c.Secure)
		is.Equal(c.SameSite, http.SameSiteLaxMode)
		is.Equal(c.MaxAge, 14*24*3600)
		switch c.Name {
		case "revops_session":
			sawSession = true
			is.True(c.HttpOnly)
		case "revops_session_csrf":
			sawCSRF = true
			is.True(!c.HttpOnly) // the web app's script reads it
			is.Equal(c.Value, csrf)
		}
	}
	is.True(sawSession && sawCSRF)

	// The cookie acts as the user, like an access token.
	me := e.do("GET", "/auth/me", "", nil, withCookie(cookie)).must(t, 200).data()
	is.Equal(me["principal"], "web_session")
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), "", nil, withCookie(cookie)).must(t, 200)
	e.do("GET", "/workspaces/999999", "", nil, withCookie(cookie)).must(t, 404, "not_found")
	e.do("POST", "/api-keys", "", map[string]any{"name": "from a cookie"}, withCookie(cookie, "X-Workspace-ID", fmt.Sprint(e.ws.ID), "X-CSRF-Token", csrf)).must(t, 201)

	// Garbage and missing cookies are 401.
	e.do("GET", "/auth/me", "", nil, withCookie("revops_session=rs_nope")).must(t, 401, "unauthorized")
	e.do("GET", "/auth/me", "", nil, withCookie("other=1")).must(t, 401, "unauthorized")

	// A member's cookie is limited by the member's role.
	u, _ := e.newUser("member@example.com")
	if err := e.store.AddMember(context.Background(), memberOf(e.ws.ID, u.ID, "member")); err != nil {
		t.Fatal(err)
	}
	e.withPassword(u.ID)
	mc, mcsrf, _ := e.webLogin("member@example.com")
	e.do("DELETE", fmt.Sprintf("/workspaces/%d", e.ws.ID), "", nil, withCookie(mc, "X-CSRF-Token", mcsrf)).must(t, 403, "access_denied")
	e.do("GET", fmt.Sprintf("/workspaces/%d/audit/events", e.ws.ID), "", nil, withCookie(mc)).must(t, 403, "access_denied")
}

func TestSessionCSRF(t *testing.T) {
	e := newEnv(t)
	e.withPassword(e.owner.ID)
	cookie, csrf, _ := e.webLogin("admin@localhost")
	path := fmt.Sprintf("/workspaces/%d", e.ws.ID)
	body := map[string]any{"name": "renamed"}

	// A cross-site form post carries only the cookie: refused, nothing changed.
	for name, h := range map[string]hdr{
		"no token":                 withCookie(cookie),
		"wrong token":              withCookie(cookie, "X-CSRF-Token", "AAAA"+csrf[4:]),
		"token of another session": withCookie(cookie, "X-CSRF-Token", func() string { _, c, _ := e.webLogin("admin@localhost"); return c }()),
		"cross-site with token":    withCookie(cookie, "X-CSRF-Token", csrf, "Sec-Fetch-Site", "cross-site"),
	} {
		for _, m := range []string{"PATCH", "PUT", "POST", "DELETE"} {
			var b any = body
			p := path
			if m == "POST" {
				p = "/api-keys"
				h["X-Workspace-ID"] = fmt.Sprint(e.ws.ID)
			}
			if m == "DELETE" {
				b = nil
			}
			r := e.do(m, p, "", b, h)
			if r.Status != 403 || r.Body["error"] != "access_denied" || r.Body["message"] == "" {
				t.Errorf("%s %s: %d %s, want 403 access_denied", name, m, r.Status, r.Raw)
			}
		}
	}
	if got := e.do("GET", path, e.key, nil).must(t, 200).str("name"); got != "Default" {
		t.Fatalf("the workspace changed to %q", got)
	}
	// Same-origin with the token: allowed. Safe methods need none.
	e.do("PATCH", path, "", body, withCookie(cookie, "X-CSRF-Token", csrf, "Sec-Fetch-Site", "same-origin")).must(t, 200)
	e.do("GET", path, "", nil, withCookie(cookie)).must(t, 200)
	// Bearer requests are unaffected, even with a cookie beside them.
	e.do("PATCH", path, e.key, body, withCookie(cookie, "Sec-Fetch-Site", "cross-site")).must(t, 200)
	tok := e.login("admin@localhost", testPassword).must(t, 200).str("access_token")
	e.do("PATCH", path, tok, body).must(t, 200)
	// The CSRF check also guards logout (no forced sign-out).
	e.do("POST", "/auth/logout", "", map[string]any{}, withCookie(cookie)).must(t, 403, "access_denied")
	e.do("GET", "/auth/me", "", nil, withCookie(cookie)).must(t, 200)
}

func TestSessionListRevokeLogout(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *revops.Config) { c.TrustForwardedFor = true })
	e.withPassword(e.owner.ID)
	c1, csrf1, r1 := e.webLogin("admin@localhost")
	c2, csrf2, r2 := e.webLogin("admin@localhost")
	id1, id2 := int64(r1.data()["session_id"].(float64)), int64(r2.data()["session_id"].(float64))

	l := e.do("GET", "/auth/sessions", "", nil, withCookie(c1)).must(t, 200)
	is.Equal(len(l.list()), 2)
	for _, s := range l.list() {
		s := s.(map[string]any)
		is.Equal(s["current"], int64(s["id"].(float64)) == id1)
		is.True(s["user_agent"] != "")
	}
	// Another user sees none of them and cannot revoke them.
	o, okey := e.newUser("other@example.com")
	e.withPassword(o.ID)
	oc, ocsrf, _ := e.webLogin("other@example.com")
	is.Equal(len(e.do("GET", "/auth/sessions", okey, nil).must(t, 200).list()), 1)
	e.do("DELETE", fmt.Sprintf("/auth/sessions/%d", id2), okey, nil).must(t, 404, "not_found")
	e.do("DELETE", fmt.Sprintf("/auth/sessions/%d", id2), "", nil, withCookie(oc, "X-CSRF-Token", ocsrf)).must(t, 404, "not_found")
	e.do("DELETE", "/auth/sessions/999999", e.key, nil).must(t, 404, "not_found")
	e.do("GET", "/auth/me", "", nil, withCookie(c2)).must(t, 200)
	// A workspace key has no sessions.
	_, wkey := e.newWorkspace("W")
	e.do("GET", "/auth/sessions", wkey, nil).must(t, 403, "access_denied")

	// Revoking session 2 from session 1: session 2's cookie is refused at once.
	e.do("DELETE", fmt.Sprintf("/auth/sessions/%d", id2), "", nil, withCookie(c1, "X-CSRF-Token", csrf1), auditHdr("revoke-2")).must(t, 204)
	e.do("GET", "/auth/me", "", nil, withCookie(c2)).must(t, 401, "unauthorized")
	e.do("POST", "/api-keys", "", map[string]any{"name": "x"}, withCookie(c2, "X-CSRF-Token", csrf2, "X-Workspace-ID", fmt.Sprint(e.ws.ID))).must(t, 401, "unauthorized")
	e.do("DELETE", fmt.Sprintf("/auth/sessions/%d", id2), "", nil, withCookie(c1, "X-CSRF-Token", csrf1)).must(t, 404, "not_found")
	ev, _, err := e.p.Audit().List(context.Background(), audit.Filter{Action: audit.SessionRevoked}, firstPage)
	is.NoErr(err)
	is.Equal(len(ev), 1)
	is.Equal(ev[0].TargetID, fmt.Sprint(id2))
	is.Equal(ev[0].RequestID, "revoke-2")
	l = e.do("GET", "/auth/sessions", "", nil, withCookie(c1)).must(t, 200)
	is.Equal(len(l.list()), 1)

	// Logout: session 1 revoked, cookies cleared.
	r := e.do("POST", "/auth/logout", "", map[string]any{}, withCookie(c1, "X-CSRF-Token", csrf1)).must(t, 204)
	cleared := 0
	for _, c := range cookiesOf(r) {
		if c.MaxAge < 0 && c.Value == "" && c.Path == "/api/v1" {
			cleared++
		}
	}
	is.Equal(cleared, 2)
	e.do("GET", "/auth/me", "", nil, withCookie(c1)).must(t, 401, "unauthorized")
	// Logout with neither a refresh token nor a cookie is a validation error.
	is.True(e.do("POST", "/auth/logout", "", map[string]any{}).must(t, 422, "validation_failed").fieldErr("refresh_token") != "")
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, func(c *revops.Config) {
		c.Sessions.IdleTimeout = time.Hour
		c.Sessions.MaxAge = 3 * time.Hour
		c.Sessions.PlainHTTP = true
		c.Tokens.AccessTTL = 10 * time.Hour
	})
	e.withPassword(e.owner.ID)
	cookie, _, r := e.webLogin("admin@localhost")
	for _, c := range cookiesOf(r) {
		if c.Secure {
			t.Fatalf("cookie %s is Secure with PlainHTTP", c.Name)
		}
	}
	// Used every 50 minutes it stays alive, until its absolute end.
	for range 3 {
		e.clock.Advance(50 * time.Minute)
		e.do("GET", "/auth/me", "", nil, withCookie(cookie)).must(t, 200)
	}
	e.clock.Advance(31 * time.Minute) // 3 h 1 min after login
	e.do("GET", "/auth/me", "", nil, withCookie(cookie)).must(t, 401, "unauthorized")
	// Idle for longer than IdleTimeout: over.
	idle, _, _ := e.webLogin("admin@localhost")
	e.clock.Advance(time.Hour + time.Second)
	e.do("GET", "/auth/me", "", nil, withCookie(idle)).must(t, 401, "unauthorized")
}

// TestSessionListTokenSessions: sessions signed in with tokens are listed
// beside cookies (kind "token", current for the access token's own), and
// one signed out, from the list or with its refresh token, drops out.
func TestSessionListTokenSessions(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withFastPassword(e.owner.ID)
	cookie, _, _ := e.webLogin("admin@localhost")
	e.clock.Advance(time.Minute)
	first := e.login("admin@localhost", testPassword).must(t, 200)
	e.clock.Advance(time.Minute)
	second := e.login("admin@localhost", testPassword).must(t, 200)
	access := second.str("access_token")

	l := e.do("GET", "/auth/sessions", access, nil).must(t, 200).list()
	is.Equal(len(l), 3)
	kinds := []string{}
	for _, s := range l {
		kinds = append(kinds, s.(map[string]any)["kind"].(string))
	}
	is.Equal(kinds, []string{"token", "token", "cookie"}) // newest first
	newest := l[0].(map[string]any)
	is.Equal(newest["current"], true)
	is.Equal(newest["expires_at"], second.str("refresh_token_expires_at"))
	is.Equal(l[1].(map[string]any)["current"], false)

	// Refreshing moves last_seen_at; signing the first out drops it.
	e.clock.Advance(10 * time.Minute) // within the access token's 15 min
	e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": first.str("refresh_token")}).must(t, 200)
	l = e.do("GET", "/auth/sessions", access, nil).must(t, 200).list()
	firstID := l[1].(map[string]any)["id"]
	is.Equal(l[1].(map[string]any)["last_seen_at"], e.clock.Now().UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
	e.do("DELETE", fmt.Sprintf("/auth/sessions/%v", firstID), access, nil).must(t, 204)
	e.do("POST", "/auth/logout", "", map[string]any{"refresh_token": second.str("refresh_token")}).must(t, 204)
	l = e.do("GET", "/auth/sessions", "", nil, withCookie(cookie)).must(t, 200).list()
	is.Equal(len(l), 1)
	is.Equal(l[0].(map[string]any)["kind"], "cookie")
}
