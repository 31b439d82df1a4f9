package revops_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/revopsdev/revops"
)

// tenantFixture is one workspace with one of every resource in it.
type tenantFixture struct {
	ws     int64
	key    string // workspace key, scope *
	ids    map[string]int64
	member int64
}

func (e *env) fixture(name, email string) tenantFixture {
	e.t.Helper()
	wid, key := e.newWorkspace(name)
	f := tenantFixture{ws: wid, key: key, ids: map[string]int64{}}
	base := fmt.Sprintf("/workspaces/%d", wid)
	f.ids["key"] = e.do("POST", base+"/api-keys", key, map[string]any{"name": "victim"}).must(e.t, 201).id()
	f.ids["invitation"] = e.do("POST", base+"/members", key, map[string]any{"email": "inv-" + email}).must(e.t, 201).id()
	code := e.do("POST", base+"/join-codes", key, map[string]any{}).must(e.t, 201)
	f.ids["code"] = code.id()
	u, ukey := e.newUser(email)
	e.do("POST", "/workspaces/join", ukey, map[string]any{"code": code.str("code")}).must(e.t, 200)
	f.ids["user"] = u.ID
	e.do("PUT", base+"/icon", key, pngBytes).must(e.t, 200)
	// A webhook endpoint, and a delivery to it (of api_key.created).
	f.ids["webhook"] = e.do("POST", base+"/webhooks", key, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"api_key.*"}}).must(e.t, 201).id()
	e.do("POST", base+"/api-keys", key, map[string]any{"name": "emits"}).must(e.t, 201)
	ds := e.do("GET", fmt.Sprintf("%s/webhooks/%d/deliveries", base, f.ids["webhook"]), key, nil).must(e.t, 200).list()
	if len(ds) != 1 {
		e.t.Fatalf("fixture: %d deliveries, want 1", len(ds))
	}
	f.ids["delivery"] = int64(ds[0].(map[string]any)["id"].(float64))
	// A billing account of its own beside the creator's default, with money.
	f.ids["account"] = e.do("POST", base+"/billing/accounts", key, map[string]any{"name": "victim " + name}).must(e.t, 201).id()
	def, err := e.p.Ledger().WorkspaceAccount(context.Background(), wid, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.p.Ledger().Credit(context.Background(), def.ID, 500, def.Currency, "fixture", "fixture-"+name); err != nil {
		e.t.Fatal(err)
	}
	return f
}

// snapshot reads everything of a workspace through its own key.
func (e *env) snapshot(f tenantFixture) []byte {
	e.t.Helper()
	var buf bytes.Buffer
	base := fmt.Sprintf("/workspaces/%d", f.ws)
	for _, p := range []string{base, base + "/api-keys?sort=id", base + "/members?sort=email", base + "/invitations?sort=id", base + "/join-codes?sort=id", base + "/icon",
		base + "/webhooks?sort=id", fmt.Sprintf("%s/webhooks/%d/deliveries", base, f.ids["webhook"]), "/entitlements/summary",
		base + "/billing/accounts?sort=id", base + "/billing/balance", base + "/billing/transactions", base + "/billing/summary",
		base + "/audit/events"} {
		r := e.do("GET", p, f.key, nil).must(e.t, 200)
		buf.Write(r.Raw)
	}
	return buf.Bytes()
}

var paramRE = regexp.MustCompile(`\{(\w+)\}`)

// bodies are valid bodies for every write route, so that a 404 cannot hide
// behind a 422.
var bodies = map[string]any{
	"POST /api-keys":                                                            map[string]any{"name": "x"},
	"POST /api-keys/{id}/rotate":                                                map[string]any{},
	"POST /entitlements/usage":                                                  map[string]any{"feature": "api_calls", "quantity": 5},
	"PATCH /workspaces/{id}":                                                    map[string]any{"name": "hijacked"},
	"PUT /workspaces/{id}":                                                      map[string]any{"name": "hijacked"},
	"PUT /workspaces/{id}/totp-policy":                                          map[string]any{"policy": "required"},
	"PUT /workspaces/{id}/icon":                                                 append([]byte("GIF89a"), 1, 2, 3),
	"POST /workspaces/{id}/members":                                             map[string]any{"email": "intruder@example.com"},
	"PATCH /workspaces/{id}/members/{userId}":                                   map[string]any{"role": "admin"},
	"POST /users":                                                               map[string]any{"email": "intruder2@example.com", "display_name": "Intruder"},
	"POST /workspaces/{id}/join-codes":                                          map[string]any{},
	"POST /workspaces/{id}/api-keys":                                            map[string]any{"name": "x"},
	"POST /workspaces/{id}/api-keys/{keyId}/rotate":                             map[string]any{},
	"POST /workspaces/{id}/rate-limits/refresh":                                 map[string]any{},
	"PUT /workspaces/{id}/pixel":                                                map[string]any{"enabled": false},
	"POST /webhooks":                                                            map[string]any{"url": "http://127.0.0.1:9/x", "events": []string{"*"}},
	"PATCH /webhooks/{id}":                                                      map[string]any{"is_active": false},
	"POST /webhooks/{id}/rotate-secret":                                         map[string]any{},
	"POST /webhooks/{id}/test":                                                  map[string]any{},
	"POST /webhooks/{id}/deliveries/{delivery_id}/retry":                        map[string]any{},
	"POST /workspaces/{id}/webhooks":                                            map[string]any{"url": "http://127.0.0.1:9/x", "events": []string{"*"}},
	"PATCH /workspaces/{id}/webhooks/{webhookId}":                               map[string]any{"is_active": false},
	"POST /workspaces/{id}/webhooks/{webhookId}/rotate-secret":                  map[string]any{},
	"POST /workspaces/{id}/webhooks/{webhookId}/test":                           map[string]any{},
	"POST /workspaces/{id}/webhooks/{webhookId}/deliveries/{delivery_id}/retry": map[string]any{},
	"POST /workspaces/{id}/billing/accounts":                                    map[string]any{"name": "x"},
	"POST /workspaces/{id}/billing/accounts/link":                               map[string]any{"billingAccountId": 1},
	"POST /workspaces/{id}/billing/accounts/{accountId}/default":                map[string]any{},
	"POST /workspaces/{id}/billing/checkout":                                    map[string]any{"tier": "pro"},
	"POST /workspaces/{id}/billing/portal":                                      map[string]any{},
}

// fill substitutes path parameters: the workspace parameter with ws, the
// others with the ids of fixture f.
func fill(t *testing.T, rt *revops.Route, ws int64, f tenantFixture) string {
	return paramRE.ReplaceAllStringFunc(rt.Path, func(m string) string {
		name := m[1 : len(m)-1]
		if rt.Tenant == revops.TenantPath && name == rt.WorkspaceParam {
			return fmt.Sprint(ws)
		}
		key := map[string]string{"id": "key", "keyId": "key", "userId": "user", "invitationId": "invitation", "codeId": "code",
			"webhookId": "webhook", "delivery_id": "delivery", "accountId": "account"}[name]
		if name == "id" && strings.HasPrefix(rt.Path, "/webhooks/") {
			key = "webhook"
		}
		id, ok := f.ids[key]
		if !ok {
			t.Fatalf("route %s %s: the tenancy matrix has no fixture for {%s}; add one", rt.Method, rt.Path, name)
		}
		return fmt.Sprint(id)
	})
}

func TestTenantIsolationMatrix(t *testing.T) {
	e := newEnv(t, withBilling())
	a := e.fixture("Tenant A", "a@example.com")
	b := e.fixture("Tenant B", "b@example.com")
	before := e.snapshot(b)

	checked := 0
	for _, rt := range e.p.Routes() {
		if rt.Tenant == revops.TenantNone {
			continue
		}
		name := rt.Method + " " + rt.Path
		body, ok := bodies[name]
		if !ok && (rt.Method == "POST" || rt.Method == "PUT" || rt.Method == "PATCH") {
			t.Fatalf("%s: no valid body in the tenancy matrix; add one", name)
		}
		type attempt struct {
			path string
			h    hdr
		}
		var attempts []attempt
		// 1. B's workspace, named by path or header, with A's key.
		if rt.Tenant == revops.TenantPath {
			attempts = append(attempts, attempt{fill(t, rt, b.ws, b), nil})
		} else {
			attempts = append(attempts, attempt{fill(t, rt, b.ws, b), wsHdr(b.ws)})
		}
		// 2. A's own workspace, but B's resource ids.
		if strings.Count(rt.Path, "{") > btoi(rt.Tenant == revops.TenantPath) {
			attempts = append(attempts, attempt{fill(t, rt, a.ws, b), nil})
		}
		for _, at := range attempts {
			r := e.do(rt.Method, at.path, a.key, body, at.h)
			if r.Status != 404 || r.Body["error"] != "not_found" {
				t.Errorf("%s as %s: A's key got %d, want 404: %s", name, at.path, r.Status, r.Raw)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("only %d cross-tenant attempts checked", checked)
	}
	if after := e.snapshot(b); !bytes.Equal(before, after) {
		t.Fatalf("workspace B changed:\nbefore %s\nafter  %s", before, after)
	}
	// And A's key still works in A (the matrix did not just break auth).
	e.do("GET", fmt.Sprintf("/workspaces/%d", a.ws), a.key, nil).must(t, 200)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// totpRoutesCovered are the two-factor routes TestTenantIsolationTOTP
// drives. They take no ids: each acts on the caller's own user only.
var totpRoutesCovered = map[string]bool{"GET /auth/totp": true, "POST /auth/totp/enroll": true, "POST /auth/totp/confirm": true, "POST /auth/totp/disable": true,
	"POST /auth/totp/recovery-codes": true}

// TestTenantIsolationTOTP: user X can never see or change user Y's
// two-factor state, nor spend Y's codes.
func TestTenantIsolationTOTP(t *testing.T) {
	e := newEnv(t)
	for _, rt := range e.p.Routes() {
		if !strings.HasPrefix(rt.Path, "/auth/totp") {
			continue
		}
		name := rt.Method + " " + rt.Path
		if !totpRoutesCovered[name] {
			t.Fatalf("%s: not covered by TestTenantIsolationTOTP; add it", name)
		}
		if rt.Tenant != revops.TenantNone || !strings.HasPrefix(rt.Scope, "totp:") || strings.Contains(rt.Path, "{") {
			t.Fatalf("%s: tenant %v scope %q: two-factor routes act on the caller, with a totp scope, and take no ids", name, rt.Tenant, rt.Scope)
		}
	}
	_, xkey := e.newUser("x@example.com")
	y, ykey := e.newUser("y@example.com")
	ysecret, yrecovery := e.enableTOTP(ykey)
	ycode := e.nextCode(ysecret)

	if d := e.do("GET", "/auth/totp", xkey, nil).must(t, 200).data(); d["enabled"] != false || d["pending"] != false {
		t.Fatalf("X sees %v, want its own (empty) state", d)
	}
	e.do("POST", "/auth/totp/disable", xkey, map[string]any{"code": ycode}).must(t, 409, "conflict")
	e.do("POST", "/auth/totp/recovery-codes", xkey, map[string]any{"code": ycode}).must(t, 409, "conflict")
	xsecret := e.do("POST", "/auth/totp/enroll", xkey, nil).must(t, 201).str("secret")
	if xsecret == ysecret {
		t.Fatal("X's enrolment returned Y's secret")
	}
	if codeAt(t, xsecret, e.clock.Now()) != ycode { // one in a million they coincide
		e.do("POST", "/auth/totp/confirm", xkey, map[string]any{"code": ycode}).must(t, 422, "validation_failed")
	}
	e.do("POST", "/auth/totp/confirm", xkey, map[string]any{"code": codeAt(t, xsecret, e.clock.Now())}).must(t, 200)
	e.do("POST", "/auth/totp/disable", xkey, map[string]any{"code": yrecovery[0]}).must(t, 422, "validation_failed")
	if codeAt(t, xsecret, e.clock.Now()) != ycode {
		e.do("POST", "/auth/totp/recovery-codes", xkey, map[string]any{"code": ycode}).must(t, 422, "validation_failed")
	}

	// Y is untouched: still enabled, every recovery code left, and the code
	// X tried is still Y's to use.
	d := e.do("GET", "/auth/totp", ykey, nil).must(t, 200).data()
	if d["enabled"] != true || d["recovery_codes_remaining"] != 10.0 {
		t.Fatalf("Y's state after X's attempts: %v", d)
	}
	e.do("POST", "/auth/totp/disable", ykey, map[string]any{"code": ycode}).must(t, 200)
	if on, _ := e.p.TOTP().Enabled(context.Background(), y.ID); on {
		t.Fatal("Y still enabled after disabling")
	}
	if d := e.do("GET", "/auth/totp", xkey, nil).must(t, 200).data(); d["enabled"] != true {
		t.Fatalf("Y's disable changed X: %v", d)
	}
}

// userBodies are valid bodies for user-bound write routes with ids.
var userBodies = map[string]any{
	"POST /user/api-keys/{id}/rotate": map[string]any{},
}

// TestUserIsolationMatrix: every user-bound route that names a resource by
// id (a personal key, a session) answers 404 to another user, with a
// personal key, an access token or a session cookie, and changes nothing.
func TestUserIsolationMatrix(t *testing.T) {
	e := newEnv(t)
	x, _ := e.newUser("x@example.com")
	e.withPassword(x.ID)
	xLogin := e.do("POST", "/auth/login", "", map[string]any{"email": "x@example.com", "password": testPassword, "session": "cookie"}).must(t, 200)
	xTok := e.login("x@example.com", testPassword).must(t, 200).str("access_token")
	ids := map[string]int64{
		"/user/api-keys/": e.do("POST", "/user/api-keys", xTok, map[string]any{"name": "x's"}).must(t, 201).id(),
		"/auth/sessions/": int64(xLogin.data()["session_id"].(float64)),
	}
	y, ykey := e.newUser("y@example.com")
	e.withPassword(y.ID)
	ytok := e.login("y@example.com", testPassword).must(t, 200).str("access_token")
	ycookie, ycsrf, _ := e.webLogin("y@example.com")
	xView := func() string {
		keys := e.do("GET", "/user/api-keys", xTok, nil).must(t, 200).Raw
		sess := e.do("GET", "/auth/sessions", xTok, nil).must(t, 200).Raw
		return string(keys) + string(sess)
	}
	before := xView()

	checked := 0
	for _, rt := range e.p.Routes() {
		if rt.Tenant != revops.TenantNone || rt.Public || !strings.Contains(rt.Path, "{") {
			continue
		}
		name := rt.Method + " " + rt.Path
		var id int64
		for prefix, v := range ids {
			if strings.HasPrefix(rt.Path, prefix) {
				id = v
			}
		}
		if id == 0 {
			t.Fatalf("%s: the user isolation matrix has no fixture for it; add one", name)
		}
		body, ok := userBodies[name]
		if !ok && (rt.Method == "POST" || rt.Method == "PUT" || rt.Method == "PATCH") {
			t.Fatalf("%s: no valid body in the user isolation matrix; add one", name)
		}
		path := paramRE.ReplaceAllString(rt.Path, fmt.Sprint(id))
		for who, try := range map[string]func() *resp{
			"personal key": func() *resp { return e.do(rt.Method, path, ykey, body) },
			"access token": func() *resp { return e.do(rt.Method, path, ytok, body) },
			"cookie":       func() *resp { return e.do(rt.Method, path, "", body, withCookie(ycookie, "X-CSRF-Token", ycsrf)) },
		} {
			if r := try(); r.Status != 404 || r.Body["error"] != "not_found" {
				t.Errorf("%s by y's %s: %d %s, want 404", name, who, r.Status, r.Raw)
			}
			checked++
		}
	}
	if checked < 12 {
		t.Fatalf("only %d cross-user attempts checked", checked)
	}
	if after := xView(); after != before {
		t.Fatalf("x's keys or sessions changed:\nbefore %s\nafter  %s", before, after)
	}
}
