package revops_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
)

// auditPending are actions of audit.Actions with no route to drive yet, and
// why. Whoever adds the route moves the action into the drivers below.
var auditPending = map[string]string{
	audit.SecretRevealed: "no secrets yet (later issues)",
}

// firstPage is the newest ten.
var firstPage = core.ListParams{Page: 1, PerPage: 10}

// auditHdr makes a request recognisable in the trail.
func auditHdr(reqID string) hdr {
	return hdr{"User-Agent": "audit-test/1.0 (" + reqID + ")", "X-Request-ID": reqID}
}

// TestAuditTrailRecordsEveryAction drives every action revops records
// through the HTTP API and finds its event, with actor, target, address,
// user agent and request id.
func TestAuditTrailRecordsEveryAction(t *testing.T) {
	e := newEnv(t, func(c *revops.Config) { c.TrustForwardedFor = true })
	ctx := context.Background()
	wid, wkey := e.newWorkspace("Audited")
	ws := fmt.Sprintf("/workspaces/%d", wid)
	// Every request comes "through a proxy" that appended this address.
	const ip = "198.51.100.23"
	with := func(reqID string) hdr {
		h := auditHdr(reqID)
		h["X-Forwarded-For"] = "10.9.9.9, " + ip
		return h
	}
	owner := audit.Actor{Kind: audit.ActorUser, ID: e.owner.ID, Display: "admin@localhost"}
	e.withPassword(e.owner.ID)

	type expect struct {
		workspace int64
		actor     audit.Actor // KeyID checked when non-zero
		target    string      // "type:id"
	}
	drivers := map[string]func(reqID string) expect{
		audit.APIKeyCreated: func(reqID string) expect {
			id := e.do("POST", ws+"/api-keys", e.key, map[string]any{"name": "made"}, with(reqID)).must(t, 201).id()
			return expect{wid, owner, fmt.Sprintf("api_key:%d", id)}
		},
		audit.APIKeyRotated: func(reqID string) expect {
			id := e.do("POST", "/api-keys", wkey, map[string]any{"name": "to rotate"}).must(t, 201).id()
			nid := e.do("POST", fmt.Sprintf("/api-keys/%d/rotate", id), wkey, map[string]any{}, with(reqID)).must(t, 200).id()
			return expect{wid, audit.Actor{Kind: audit.ActorKey}, fmt.Sprintf("api_key:%d", nid)}
		},
		audit.APIKeyRevoked: func(reqID string) expect {
			id := e.do("POST", ws+"/api-keys", e.key, map[string]any{"name": "to revoke"}).must(t, 201).id()
			e.do("DELETE", fmt.Sprintf("%s/api-keys/%d", ws, id), e.key, nil, with(reqID)).must(t, 204)
			return expect{wid, owner, fmt.Sprintf("api_key:%d", id)}
		},
		audit.MemberAdded: func(reqID string) expect {
			code := e.do("POST", ws+"/join-codes", wkey, map[string]any{}).must(t, 201).str("code")
			u, ukey := e.newUser("joiner@example.com")
			e.do("POST", "/workspaces/join", ukey, map[string]any{"code": code}, with(reqID)).must(t, 200)
			return expect{wid, audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: "joiner@example.com"}, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.MemberRemoved: func(reqID string) expect {
			u, _ := e.newUser("leaver@example.com")
			if err := e.store.AddMember(ctx, memberOf(wid, u.ID, "member")); err != nil {
				t.Fatal(err)
			}
			e.do("DELETE", fmt.Sprintf("%s/members/%d", ws, u.ID), e.key, nil, with(reqID)).must(t, 204)
			return expect{wid, owner, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.WorkspaceTOTPPolicyChanged: func(reqID string) expect {
			e.do("PUT", ws+"/totp-policy", e.key, map[string]any{"policy": "required"}, with(reqID)).must(t, 200)
			return expect{wid, owner, fmt.Sprintf("workspace:%d", wid)}
		},
		audit.LoginSucceeded: func(reqID string) expect {
			e.login("admin@localhost", testPassword, with(reqID)).must(t, 200)
			return expect{0, owner, fmt.Sprintf("user:%d", e.owner.ID)}
		},
		audit.LoginFailed: func(reqID string) expect {
			e.login("admin@localhost", "not the password", with(reqID)).must(t, 401)
			return expect{0, audit.Actor{Kind: audit.ActorAnonymous}, fmt.Sprintf("user:%d", e.owner.ID)}
		},
		audit.TokenReuseDetected: func(reqID string) expect {
			rt := e.login("admin@localhost", testPassword).must(t, 200).str("refresh_token")
			e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": rt}).must(t, 200)
			e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": rt}, with(reqID)).must(t, 401)
			list, _, _ := e.p.Audit().List(ctx, audit.Filter{Action: audit.LoginSucceeded}, firstPage)
			return expect{0, audit.Actor{Kind: audit.ActorAnonymous}, fmt.Sprintf("session:%v", list[0].Metadata["session_id"])}
		},
		// Two-factor changes are the user's own, outside any workspace;
		// each driver has a user of its own.
		audit.TOTPEnrolled: func(reqID string) expect {
			u, ukey := e.newUser("enrols@example.com")
			e.do("POST", "/auth/totp/enroll", ukey, nil, with(reqID)).must(t, 201)
			return expect{0, audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: u.Email}, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.TOTPEnabled: func(reqID string) expect {
			u, ukey := e.newUser("confirms@example.com")
			secret := e.do("POST", "/auth/totp/enroll", ukey, nil).must(t, 201).str("secret")
			e.do("POST", "/auth/totp/confirm", ukey, map[string]any{"code": e.nextCode(secret)}, with(reqID)).must(t, 200)
			return expect{0, audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: u.Email}, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.TOTPDisabled: func(reqID string) expect {
			u, ukey := e.newUser("disables@example.com")
			secret, _ := e.enableTOTP(ukey)
			e.do("POST", "/auth/totp/disable", ukey, map[string]any{"code": e.nextCode(secret)}, with(reqID)).must(t, 200)
			return expect{0, audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: u.Email}, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.TOTPRecoveryCodesReplaced: func(reqID string) expect {
			u, ukey := e.newUser("replaces@example.com")
			secret, _ := e.enableTOTP(ukey)
			e.do("POST", "/auth/totp/recovery-codes", ukey, map[string]any{"code": e.nextCode(secret)}, with(reqID)).must(t, 200)
			return expect{0, audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: u.Email}, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.TOTPRecoveryCodeUsed: func(reqID string) expect {
			u, ukey := e.newUser("recovers@example.com")
			e.withFastPassword(u.ID)
			_, codes := e.enableTOTP(ukey)
			e.do("POST", "/auth/login", "", map[string]any{"email": u.Email, "password": testPassword, "totp_code": codes[0]}, with(reqID)).must(t, 200)
			return expect{0, audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: u.Email}, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.SessionRevoked: func(reqID string) expect {
			_, _, r := e.webLogin("admin@localhost")
			id := int64(r.data()["session_id"].(float64))
			e.do("DELETE", fmt.Sprintf("/auth/sessions/%d", id), e.key, nil, with(reqID)).must(t, 204)
			return expect{0, owner, fmt.Sprintf("session:%d", id)}
		},
		audit.MemberRoleChanged: func(reqID string) expect {
			u, _ := e.newUser("promoted@example.com")
			if err := e.store.AddMember(ctx, memberOf(wid, u.ID, "member")); err != nil {
				t.Fatal(err)
			}
			e.do("PATCH", fmt.Sprintf("%s/members/%d", ws, u.ID), e.key, map[string]any{"role": "admin"}, with(reqID)).must(t, 200)
			return expect{wid, owner, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.UserCreated: func(reqID string) expect {
			e.do("POST", "/users", wkey, map[string]any{"email": "invitee@example.com", "display_name": "Invitee"}, with(reqID)).must(t, 201)
			u, err := e.store.UserByEmail(ctx, "invitee@example.com")
			if err != nil {
				t.Fatal(err)
			}
			return expect{wid, audit.Actor{Kind: audit.ActorKey}, fmt.Sprintf("user:%d", u.ID)}
		},
		audit.WorkspaceDeleted: func(reqID string) expect {
			doomed := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Doomed"}).must(t, 201).id()
			e.do("DELETE", fmt.Sprintf("/workspaces/%d", doomed), e.key, nil, with(reqID)).must(t, 204)
			return expect{doomed, owner, fmt.Sprintf("workspace:%d", doomed)}
		},
	}

	covered := 0
	for i, action := range audit.Actions {
		drive, ok := drivers[action]
		if !ok {
			if _, pending := auditPending[action]; !pending {
				t.Errorf("%s: no test drives this action; add a driver (or a reason to auditPending)", action)
			}
			continue
		}
		if reason, pending := auditPending[action]; pending {
			t.Errorf("%s is driven but still listed as pending (%s): remove it from auditPending", action, reason)
		}
		reqID := fmt.Sprintf("audit-%02d", i)
		want := drive(reqID)
		// Read through the store: a deleted workspace's trail has no route.
		list, _, err := e.p.Audit().List(ctx, audit.Filter{WorkspaceID: want.workspace, Action: action}, firstPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			t.Errorf("%s: no event recorded", action)
			continue
		}
		ev := list[0]
		got := ev.TargetType + ":" + ev.TargetID
		if got != want.target || ev.Actor.Kind != want.actor.Kind || (want.actor.ID != 0 && ev.Actor.ID != want.actor.ID) ||
			(want.actor.Display != "" && ev.Actor.Display != want.actor.Display) {
			t.Errorf("%s: target %s actor %+v, want %s %+v", action, got, ev.Actor, want.target, want.actor)
		}
		if ev.IP != ip || ev.RequestID != reqID || !strings.Contains(ev.UserAgent, reqID) {
			t.Errorf("%s: ip %q request id %q user agent %q, want %s, %s and ours", action, ev.IP, ev.RequestID, ev.UserAgent, ip, reqID)
		}
		if d := time.Since(ev.CreatedAt); d < -time.Hour || d > time.Hour {
			t.Errorf("%s: created_at %s", action, ev.CreatedAt)
		}
		covered++
	}
	if covered+len(auditPending) != len(audit.Actions) {
		t.Fatalf("covered %d, pending %d, of %d actions", covered, len(auditPending), len(audit.Actions))
	}
}

func TestAuditEventsRoute(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	wid, wkey := e.newWorkspace("Trail")
	ws := fmt.Sprintf("/workspaces/%d", wid)
	var made []int64
	for i := range 3 {
		made = append(made, e.do("POST", ws+"/api-keys", e.key, map[string]any{"name": fmt.Sprintf("k%d", i)}).must(t, 201).id())
		e.clock.Advance(time.Minute)
	}
	e.do("DELETE", fmt.Sprintf("%s/api-keys/%d", ws, made[0]), wkey, nil).must(t, 204)

	// Newest first, spec 001's list shape, under both paths.
	r := e.do("GET", ws+"/audit/events", e.key, nil).must(t, 200)
	l := r.list()
	is.Equal(len(l), 5) // the workspace key's creation, three keys, one revocation
	first := l[0].(map[string]any)
	is.Equal(first["action"], "api_key.revoked")
	actor := first["actor"].(map[string]any)
	is.Equal(actor["type"], "key")
	is.True(strings.Contains(actor["display"].(string), "ws key"))
	is.Equal(first["target"], map[string]any{"type": "api_key", "id": fmt.Sprint(made[0])})
	is.Equal(first["workspace_id"], float64(wid))
	is.Equal(r.Body["meta"].(map[string]any)["total"], 5.0)
	ctxList := e.do("GET", "/audit/events?per_page=2", wkey, nil).must(t, 200)
	is.Equal(len(ctxList.list()), 2)
	is.True(ctxList.Body["links"].(map[string]any)["next"] != nil)

	// Filters: action (exact and family), actor, time.
	count := func(q string) int {
		t.Helper()
		return int(e.do("GET", ws+"/audit/events?"+q, e.key, nil).must(t, 200).Body["meta"].(map[string]any)["total"].(float64))
	}
	is.Equal(count("action=api_key.created"), 4)
	is.Equal(count("action=api_key.*"), 5)
	is.Equal(count("action=member.*"), 0)
	is.Equal(count(fmt.Sprintf("actor=user:%d", e.owner.ID)), 4)
	keyID := int64(first["actor"].(map[string]any)["id"].(float64))
	is.Equal(count(fmt.Sprintf("actor=key:%d", keyID)), 1)
	mid := e.clock.Now().Add(-150 * time.Second).UTC().Format(time.RFC3339Nano)
	is.Equal(count("created_after="+url.QueryEscape(mid)), 3) // the last two creations and the revocation
	is.Equal(count("created_before="+url.QueryEscape(mid)), 2)

	for _, q := range []string{"action=DROP TABLE", "action=.*", "actor=user:x", "actor=root:1", "sort=action", "updated_after=2026-01-01", "search=x", "status=active"} {
		e.do("GET", ws+"/audit/events?"+strings.ReplaceAll(q, " ", "%20"), e.key, nil).must(t, 422, "validation_failed")
	}

	// Owners and admins read the trail; a member is refused, naming the scope.
	u, ukey := e.newUser("member@example.com")
	if err := e.store.AddMember(context.Background(), memberOf(wid, u.ID, "member")); err != nil {
		t.Fatal(err)
	}
	d := e.do("GET", ws+"/audit/events", ukey, nil).must(t, 403, "access_denied")
	is.True(strings.Contains(d.Body["message"].(string), "audit:read"))
	a, akey := e.newUser("admin@example.com")
	if err := e.store.AddMember(context.Background(), memberOf(wid, a.ID, "admin")); err != nil {
		t.Fatal(err)
	}
	e.do("GET", ws+"/audit/events", akey, nil).must(t, 200)
	// A key without the scope is refused too.
	ro := e.do("POST", ws+"/api-keys", e.key, map[string]any{"name": "ro", "scopes": []string{"read"}}).must(t, 201).str("key")
	e.do("GET", "/audit/events", ro, nil).must(t, 200) // "read" grants every read
	narrow := e.do("POST", ws+"/api-keys", e.key, map[string]any{"name": "narrow", "scopes": []string{"api-keys:read"}}).must(t, 201).str("key")
	e.do("GET", "/audit/events", narrow, nil).must(t, 403, "access_denied")

	// Personal key events are outside any workspace: not in this trail.
	e.do("POST", "/user/api-keys", e.key, map[string]any{"name": "mine"}).must(t, 201)
	before := count("")
	list, _, err := e.p.Audit().List(context.Background(), audit.Filter{WorkspaceID: 0, Action: audit.APIKeyCreated}, firstPage)
	is.NoErr(err)
	is.True(len(list) >= 2) // the bootstrap key (system) and this one
	is.Equal(list[0].Actor.Kind, audit.ActorUser)
	is.Equal(list[len(list)-1].Actor.Kind, audit.ActorSystem)
	is.Equal(count(""), before)
}

// TestUserAuditTrail: a user reads their own account's events outside any
// workspace (sign-ins, personal keys) at /user/audit/events, and nobody
// else's.
func TestUserAuditTrail(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withPassword(e.owner.ID)
	tok := e.login("admin@localhost", testPassword).must(t, 200).str("access_token")
	e.do("POST", "/user/api-keys", tok, map[string]any{"name": "mine"}).must(t, 201)
	other, otherKey := e.newUser("other@example.com")
	e.do("POST", "/user/api-keys", otherKey, map[string]any{"name": "theirs"}).must(t, 201)

	list := e.do("GET", "/user/audit/events?per_page=100", tok, nil).must(t, 200).list()
	actions := map[string]bool{}
	for _, x := range list {
		ev := x.(map[string]any)
		actions[ev["action"].(string)] = true
		actor := ev["actor"].(map[string]any)
		if actor["type"] != "user" || actor["id"] != float64(e.owner.ID) || ev["workspace_id"] != nil { // null: outside any workspace
			t.Fatalf("an event not of this user's account: %v", ev)
		}
	}
	is.True(actions["login.succeeded"] && actions["api_key.created"])
	only := e.do("GET", "/user/audit/events?action=login.*", tok, nil).must(t, 200).list()
	is.True(len(only) >= 1)
	for _, x := range only {
		is.True(strings.HasPrefix(x.(map[string]any)["action"].(string), "login."))
	}
	theirs := e.do("GET", "/user/audit/events", otherKey, nil).must(t, 200).list()
	is.Equal(len(theirs), 1)
	is.Equal(theirs[0].(map[string]any)["actor"].(map[string]any)["id"], float64(other.ID))

	e.do("GET", fmt.Sprintf("/user/audit/events?actor=user:%d", other.ID), tok, nil).must(t, 422, "validation_failed")
	_, wkey := e.newWorkspace("W")
	e.do("GET", "/user/audit/events", wkey, nil).must(t, 403, "access_denied")
}
