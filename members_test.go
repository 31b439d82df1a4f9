package revops_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestInvitations(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	path := fmt.Sprintf("/workspaces/%d/members", e.ws.ID)
	r := e.do("POST", path, e.key, map[string]any{"email": "Bob@Example.com", "role": "admin"}).must(t, 201)
	is.Equal(r.Body["message"], "Invitation created successfully.")
	is.Equal(r.str("email"), "bob@example.com")
	is.Equal(r.str("status"), "pending")
	token := r.str("token")
	is.True(token != "")
	e.do("POST", path, e.key, map[string]any{"email": "bob@example.com"}).must(t, 409, "conflict")
	e.do("POST", path, e.key, map[string]any{"email": "not-an-email"}).must(t, 422, "validation_failed")
	e.do("POST", path, e.key, map[string]any{"email": "x@example.com", "role": "god"}).must(t, 422, "validation_failed")

	l := e.do("GET", fmt.Sprintf("/workspaces/%d/invitations", e.ws.ID), e.key, nil).must(t, 200)
	is.Equal(len(l.list()), 1)
	_, hasToken := l.list()[0].(map[string]any)["token"]
	is.True(!hasToken)

	// Someone else cannot use it; bob can, once.
	_, eve := e.newUser("eve@example.com")
	e.do("POST", "/invitations/accept", eve, map[string]any{"token": token}).must(t, 422, "validation_failed")
	bob, bobKey := e.newUser("bob@example.com")
	a := e.do("POST", "/invitations/accept", bobKey, map[string]any{"token": token}).must(t, 200)
	is.Equal(a.id(), e.ws.ID)
	e.do("POST", "/invitations/accept", bobKey, map[string]any{"token": token}).must(t, 422, "validation_failed")

	m := e.do("GET", path+"?sort=email", e.key, nil).must(t, 200)
	is.Equal(len(m.list()), 2)
	first := m.list()[0].(map[string]any)
	is.Equal(first["email"], "admin@localhost")
	second := m.list()[1].(map[string]any)
	is.Equal(second["role"], "admin")

	// Bob (admin) cannot remove the owner; the owner can remove Bob.
	e.do("DELETE", fmt.Sprintf("%s/%d", path, e.owner.ID), bobKey, nil).must(t, 403, "access_denied")
	e.do("DELETE", fmt.Sprintf("%s/%d", path, bob.ID), e.key, nil).must(t, 204)
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), bobKey, nil).must(t, 404)
	// The last owner cannot leave.
	e.do("DELETE", fmt.Sprintf("%s/%d", path, e.owner.ID), e.key, nil).must(t, 409, "conflict")

	// Revoking an invitation.
	r = e.do("POST", path, e.key, map[string]any{"email": "carol@example.com"}).must(t, 201)
	e.do("DELETE", fmt.Sprintf("/workspaces/%d/invitations/%d", e.ws.ID, r.id()), e.key, nil).must(t, 204)
	_, carol := e.newUser("carol@example.com")
	e.do("POST", "/invitations/accept", carol, map[string]any{"token": r.str("token")}).must(t, 422)
}

func TestJoinCodes(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	base := fmt.Sprintf("/workspaces/%d/join-codes", e.ws.ID)
	r := e.do("POST", base, e.key, map[string]any{}).must(t, 201)
	is.Equal(r.Body["message"], "Join code created successfully.")
	code := r.str("code")
	is.Equal(r.str("role"), "member")
	e.do("POST", base, e.key, map[string]any{"role": "owner"}).must(t, 422)
	e.do("POST", base, e.key, map[string]any{"expires_at": "2001-01-01T00:00:00Z"}).must(t, 422)

	_, dan := e.newUser("dan@example.com")
	j := e.do("POST", "/workspaces/join", dan, map[string]any{"code": code}).must(t, 200)
	is.Equal(j.Body["message"], "Joined workspace successfully.")
	is.Equal(j.id(), e.ws.ID)
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), dan, nil).must(t, 200)
	e.do("POST", "/workspaces/join", dan, map[string]any{"code": code}).must(t, 409, "conflict")
	// A member may not administer keys (role limits a * personal key).
	e.do("POST", fmt.Sprintf("/workspaces/%d/api-keys", e.ws.ID), dan, map[string]any{"name": "x"}).must(t, 403, "access_denied")

	l := e.do("GET", base, e.key, nil).must(t, 200)
	is.Equal(l.list()[0].(map[string]any)["uses"], 1.0)
	_, hasCode := l.list()[0].(map[string]any)["code"]
	is.True(!hasCode)

	e.do("DELETE", fmt.Sprintf("%s/%d", base, r.id()), e.key, nil).must(t, 204)
	_, erin := e.newUser("erin@example.com")
	e.do("POST", "/workspaces/join", erin, map[string]any{"code": code}).must(t, 422, "validation_failed")
	e.do("POST", "/workspaces/join", erin, map[string]any{"code": "join_nonsense"}).must(t, 422, "validation_failed")

	// Expiring codes stop working at their expiry.
	r = e.do("POST", base, e.key, map[string]any{"expires_at": e.clock.Now().Add(time.Hour).Format(time.RFC3339)}).must(t, 201)
	e.clock.Advance(2 * time.Hour)
	e.do("POST", "/workspaces/join", erin, map[string]any{"code": r.str("code")}).must(t, 422, "validation_failed")
	// Workspace keys cannot join: they are not people.
	_, wkey := e.newWorkspace("Bound")
	e.do("POST", "/workspaces/join", wkey, map[string]any{"code": r.str("code")}).must(t, 403, "access_denied")
}

func TestExpiredInvitationDoesNotBlockANewOne(t *testing.T) {
	e := newEnv(t)
	path := fmt.Sprintf("/workspaces/%d/members", e.ws.ID)
	old := e.do("POST", path, e.key, map[string]any{"email": "late@example.com"}).must(t, 201)
	e.do("POST", path, e.key, map[string]any{"email": "late@example.com"}).must(t, 409, "conflict")
	e.clock.Advance(8 * 24 * time.Hour)
	fresh := e.do("POST", path, e.key, map[string]any{"email": "late@example.com"}).must(t, 201)
	_, late := e.newUser("late@example.com")
	e.do("POST", "/invitations/accept", late, map[string]any{"token": old.str("token")}).must(t, 422)
	e.do("POST", "/invitations/accept", late, map[string]any{"token": fresh.str("token")}).must(t, 200)
}
