package revops_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/matryer/is"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/workspace"
)

func TestInviteUserCreatesAccount(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	h := wsHdr(e.ws.ID)
	r := e.do("POST", "/users", e.key, map[string]any{"email": "  New.Person@Example.COM ", "display_name": " Platform Operator ", "locale": "en_GB"}, h).must(t, 201)
	is.Equal(r.Body["message"], "User invited successfully.")
	u := r.data()["user"].(map[string]any)
	is.Equal(u["email"], "new.person@example.com")
	is.Equal(u["display_name"], "Platform Operator")
	is.Equal(u["locale"], "en_GB")
	_, hasCreated := r.data()["created"]
	is.True(!hasCreated) // the answer does not tell whether the email had an account
	inv := r.data()["invitation"].(map[string]any)
	token := inv["token"].(string)
	is.Equal(inv["role"], "member")

	// No password yet: no login.
	e.login("new.person@example.com", testPassword).must(t, 401, "unauthorized")
	// Accepting sets the password and joins the workspace.
	e.do("POST", "/invitations/register", "", map[string]any{"token": token, "password": "short"}).must(t, 422, "validation_failed")
	acc := e.do("POST", "/invitations/register", "", map[string]any{"token": token, "password": testPassword}).must(t, 200)
	is.Equal(acc.data()["workspace"].(map[string]any)["id"], float64(e.ws.ID))
	made, err := e.store.UserByEmail(context.Background(), "new.person@example.com")
	is.NoErr(err)
	is.Equal(made.Name, "Platform Operator")
	is.Equal(acc.data()["user"].(map[string]any)["id"], float64(made.ID))
	tok := e.login("New.Person@example.com", testPassword).must(t, 200).str("access_token")
	me := e.do("GET", "/auth/me", tok, nil).must(t, 200).data()
	is.Equal(me["memberships"].([]any)[0].(map[string]any)["role"], "member")
	// Single use; and the email is now a member.
	e.do("POST", "/invitations/register", "", map[string]any{"token": token, "password": testPassword}).must(t, 422, "validation_failed")
	e.do("POST", "/users", e.key, map[string]any{"email": "new.person@example.com", "display_name": "Again"}, h).must(t, 409, "conflict")

	// An existing account is invited, not recreated; it accepts signed in.
	wid, _ := e.newWorkspace("Second")
	r = e.do("POST", "/users", e.key, map[string]any{"email": "new.person@example.com", "display_name": "Ignored"}, wsHdr(wid)).must(t, 201)
	is.Equal(r.data()["user"], map[string]any{"email": "new.person@example.com", "display_name": "Ignored", "locale": "en"}) // shaped as for a new email
	again, err := e.store.UserByEmail(context.Background(), "new.person@example.com")
	is.NoErr(err)
	is.Equal(again.Name, "Platform Operator") // the account is not changed
	token2 := r.data()["invitation"].(map[string]any)["token"].(string)
	e.do("POST", "/invitations/register", "", map[string]any{"token": token2, "password": "an attacker's password"}).must(t, 409, "conflict")
	e.login("new.person@example.com", testPassword).must(t, 200) // password unchanged
	e.do("POST", "/invitations/accept", tok, map[string]any{"token": token2}).must(t, 200)

	// A plain member invitation (POST /workspaces/{id}/members) also becomes an account.
	mi := e.do("POST", fmt.Sprintf("/workspaces/%d/members", e.ws.ID), e.key, map[string]any{"email": "fresh@example.com", "role": "admin"}).must(t, 201)
	r = e.do("POST", "/invitations/register", "", map[string]any{"token": mi.str("token"), "password": testPassword}).must(t, 422)
	is.True(r.fieldErr("display_name") != "")
	e.do("POST", "/invitations/register", "", map[string]any{"token": mi.str("token"), "password": testPassword, "display_name": "Fresh", "locale": "de"}).must(t, 200)
	ftok := e.login("fresh@example.com", testPassword).must(t, 200).str("access_token")
	fme := e.do("GET", "/auth/me", ftok, nil).must(t, 200).data()
	is.Equal(fme["memberships"].([]any)[0].(map[string]any)["role"], "admin")

	created, _, err := e.p.Audit().List(context.Background(), audit.Filter{WorkspaceID: e.ws.ID, Action: audit.UserCreated}, firstPage)
	is.NoErr(err)
	is.Equal(len(created), 2)
}

func TestInviteUserValidation(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	h := wsHdr(e.ws.ID)
	cases := map[string]struct {
		body  map[string]any
		field string
	}{
		"bad email":        {map[string]any{"email": "not an email", "display_name": "X"}, "email"},
		"missing name":     {map[string]any{"email": "a@example.com"}, "display_name"},
		"blank name":       {map[string]any{"email": "a@example.com", "display_name": "   "}, "display_name"},
		"control chars":    {map[string]any{"email": "a@example.com", "display_name": "a\x00b"}, "display_name"},
		"long name":        {map[string]any{"email": "a@example.com", "display_name": string(make([]byte, 300))}, "display_name"},
		"bad locale":       {map[string]any{"email": "a@example.com", "display_name": "A", "locale": "english please"}, "locale"},
		"bad role":         {map[string]any{"email": "a@example.com", "display_name": "A", "role": "god"}, "role"},
		"unknown field":    {map[string]any{"email": "a@example.com", "display_name": "A", "password": "x"}, "password"},
		"email wrong type": {map[string]any{"email": 5, "display_name": "A"}, "email"},
	}
	for name, tc := range cases {
		r := e.do("POST", "/users", e.key, tc.body, h)
		if r.Status != 422 || r.Body["error"] != "validation_failed" || r.fieldErr(tc.field) == "" {
			t.Errorf("%s: %d %s, want 422 with errors.%s", name, r.Status, r.Raw, tc.field)
		}
	}
	// Only owners grant owner, also by invitation.
	u, ukey := e.newUser("admin2@example.com")
	if err := e.store.AddMember(context.Background(), memberOf(e.ws.ID, u.ID, "admin")); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/users", ukey, map[string]any{"email": "b@example.com", "display_name": "B", "role": "owner"}, h).must(t, 422)
	is.True(r.fieldErr("role") != "")
	// Members may not invite.
	m, mkey := e.newUser("member@example.com")
	if err := e.store.AddMember(context.Background(), memberOf(e.ws.ID, m.ID, "member")); err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/users", mkey, map[string]any{"email": "c@example.com", "display_name": "C"}, h).must(t, 403, "access_denied")
	// The register route refuses garbage tokens with the same answer.
	e.do("POST", "/invitations/register", "", map[string]any{"token": "inv_nope", "password": testPassword, "display_name": "Z"}).must(t, 422, "validation_failed")
	e.do("POST", "/invitations/register", "", map[string]any{"password": testPassword}).must(t, 422, "validation_failed")
}

func TestMemberRoleChange(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ws := fmt.Sprintf("/workspaces/%d/members", e.ws.ID)
	m, mkey := e.newUser("m@example.com")
	a, akey := e.newUser("a@example.com")
	for _, x := range []struct {
		id   int64
		role string
	}{{m.ID, "member"}, {a.ID, "admin"}} {
		if err := e.store.AddMember(context.Background(), memberOf(e.ws.ID, x.id, x.role)); err != nil {
			t.Fatal(err)
		}
	}
	// A member cannot change roles; an admin can promote to admin, not to owner.
	e.do("PATCH", fmt.Sprintf("%s/%d", ws, m.ID), mkey, map[string]any{"role": "admin"}).must(t, 403, "access_denied")
	r := e.do("PATCH", fmt.Sprintf("%s/%d", ws, m.ID), akey, map[string]any{"role": "owner"}).must(t, 422)
	is.True(r.fieldErr("role") != "")
	r = e.do("PATCH", fmt.Sprintf("%s/%d", ws, m.ID), akey, map[string]any{"role": "admin"}, auditHdr("promote")).must(t, 200)
	is.Equal(r.data()["role"], "admin")
	is.Equal(r.Body["message"], "Member updated successfully.")
	// An admin cannot demote the owner; bad input is 422; a stranger 404.
	e.do("PATCH", fmt.Sprintf("%s/%d", ws, e.owner.ID), akey, map[string]any{"role": "member"}).must(t, 403, "access_denied")
	e.do("PATCH", fmt.Sprintf("%s/%d", ws, m.ID), e.key, map[string]any{"role": "emperor"}).must(t, 422, "validation_failed")
	e.do("PATCH", fmt.Sprintf("%s/%d", ws, m.ID), e.key, map[string]any{}).must(t, 422, "validation_failed")
	e.do("PATCH", fmt.Sprintf("%s/%d", ws, 999999), e.key, map[string]any{"role": "admin"}).must(t, 404, "not_found")
	// The last owner keeps the role; with a second owner it may step down.
	e.do("PATCH", fmt.Sprintf("%s/%d", ws, e.owner.ID), e.key, map[string]any{"role": "admin"}).must(t, 409, "conflict")
	e.do("PATCH", fmt.Sprintf("%s/%d", ws, a.ID), e.key, map[string]any{"role": "owner"}).must(t, 200)
	e.do("PATCH", fmt.Sprintf("%s/%d", ws, e.owner.ID), akey, map[string]any{"role": "admin"}).must(t, 200)
	// The new role applies at once: the demoted owner cannot delete the workspace.
	e.do("DELETE", fmt.Sprintf("/workspaces/%d", e.ws.ID), e.key, nil).must(t, 403, "access_denied")

	list, _, err := e.p.Audit().List(context.Background(), audit.Filter{WorkspaceID: e.ws.ID, Action: audit.MemberRoleChanged}, firstPage)
	is.NoErr(err)
	is.Equal(len(list), 3)
	last := list[len(list)-1] // newest first: the oldest is the promotion
	is.Equal(last.RequestID, "promote")
	is.Equal(last.Metadata["from"], "member")
	is.Equal(last.Metadata["to"], "admin")
	is.Equal(last.TargetID, fmt.Sprint(m.ID))
}

// TestSendInvitation: with Config.SendInvitation the token goes to the
// invitee only (never in the answer); a failed send leaves no invitation.
func TestSendInvitation(t *testing.T) {
	is := is.New(t)
	var mu sync.Mutex
	sent := map[string]string{} // email -> token
	var fail error
	e := newEnv(t, func(c *revops.Config) {
		c.SendInvitation = func(_ context.Context, inv *workspace.Invitation, token string) error {
			mu.Lock()
			defer mu.Unlock()
			if fail != nil {
				return fail
			}
			sent[inv.Email] = token
			return nil
		}
	})
	members := fmt.Sprintf("/workspaces/%d/members", e.ws.ID)
	r := e.do("POST", members, e.key, map[string]any{"email": "mailed@example.com", "role": "member"}).must(t, 201)
	_, shown := r.data()["token"]
	is.True(!shown) // the inviter never sees it
	r = e.do("POST", "/users", e.key, map[string]any{"email": "mailed-too@example.com", "display_name": "Mailed"}, wsHdr(e.ws.ID)).must(t, 201)
	_, shown = r.data()["invitation"].(map[string]any)["token"]
	is.True(!shown)
	mu.Lock()
	token, token2 := sent["mailed@example.com"], sent["mailed-too@example.com"]
	mu.Unlock()
	is.True(token != "" && token2 != "")
	e.do("POST", "/invitations/register", "", map[string]any{"token": token, "password": testPassword, "display_name": "Mailed"}).must(t, 200)
	e.do("POST", "/invitations/register", "", map[string]any{"token": token2, "password": testPassword}).must(t, 200)

	// A failed send: the request fails and no invitation is left pending.
	mu.Lock()
	fail = errors.New("mailer down")
	mu.Unlock()
	r = e.do("POST", members, e.key, map[string]any{"email": "unlucky@example.com", "role": "member"}).must(t, 503, "service_unavailable")
	is.Equal(r.Body["message"], "The invitation could not be sent, so it was not kept; try again shortly.")
	list := e.do("GET", fmt.Sprintf("/workspaces/%d/invitations", e.ws.ID), e.key, nil).must(t, 200)
	for _, it := range list.Body["data"].([]any) {
		if it.(map[string]any)["email"] == "unlucky@example.com" {
			t.Fatalf("an invitation whose send failed is pending: %v", it)
		}
	}
	// A refusal of the host's own, as a *core.Error, reaches the client.
	mu.Lock()
	fail = core.Invalid("email", "This domain does not accept invitations.")
	mu.Unlock()
	e.do("POST", members, e.key, map[string]any{"email": "unlucky@example.com", "role": "member"}).must(t, 422, "validation_failed")
	mu.Lock()
	fail = nil
	mu.Unlock()
	e.do("POST", members, e.key, map[string]any{"email": "unlucky@example.com", "role": "member"}).must(t, 201) // and may be made again
}
