package storetest

import (
	"time"

	"github.com/revopsdev/revops/workspace"
)

func userTests() []test {
	return []test{
		{"Users/Locale", testUserLocale},
		{"Invitations/ByToken", testInvitationByToken},
		{"Members/SetRole", testSetMemberRole},
		{"Members/SetRoleLastOwnerRace", testSetMemberRoleRace},
	}
}

func testUserLocale(e *env) {
	u := &workspace.User{Email: "Loc@Example.test", Name: "Loc", Locale: "en_GB"}
	e.must(e.s.CreateUser(e.ctx, u), "CreateUser with a locale")
	got, err := e.s.User(e.ctx, u.ID)
	e.must(err, "User")
	e.same("user with a locale", got, u)
	got, err = e.s.UserByEmail(e.ctx, "loc@example.test")
	e.must(err, "UserByEmail")
	if got.Locale != "en_GB" || got.Email != "loc@example.test" {
		e.t.Fatalf("UserByEmail: %+v, want locale en_GB and the email lower-case", got)
	}
	cred, _, err := e.s.UserCredentials(e.ctx, "loc@example.test")
	e.must(err, "UserCredentials")
	e.same("UserCredentials' user", cred, u)
}

func testInvitationByToken(e *env) {
	owner := e.user("ibt")
	w := e.workspace("ibt", owner.ID)
	inv := e.invitation(w.ID, "guest@example.test")
	got, err := e.s.InvitationByToken(e.ctx, inv.TokenHash, at(0))
	e.must(err, "InvitationByToken")
	e.same("invitation by token", got, inv)
	_, err = e.s.InvitationByToken(e.ctx, inv.TokenHash, inv.ExpiresAt)
	e.notFound(err, "InvitationByToken at its expiry")
	_, err = e.s.InvitationByToken(e.ctx, e.hash(), at(0))
	e.notFound(err, "InvitationByToken of an unknown token")
	guest := e.user("guest") // guest@example.test
	_, err = e.s.AcceptInvitation(e.ctx, inv.TokenHash, guest.Email, guest.ID, at(time.Minute))
	e.must(err, "AcceptInvitation")
	_, err = e.s.InvitationByToken(e.ctx, inv.TokenHash, at(2*time.Minute))
	e.notFound(err, "InvitationByToken of an accepted invitation")
}

func testSetMemberRole(e *env) {
	owner, other := e.user("sr-owner"), e.user("sr-other")
	w := e.workspace("sr", owner.ID)
	w2 := e.workspace("sr2", other.ID)
	e.addMember(w.ID, other.ID, "member")

	m, err := e.s.SetMemberRole(e.ctx, w.ID, other.ID, "member", "admin")
	e.must(err, "SetMemberRole")
	if m.Role != "admin" || m.UserID != other.ID || m.Email != other.Email {
		e.t.Fatalf("SetMemberRole returned %+v", m)
	}
	got, err := e.s.Member(e.ctx, w.ID, other.ID)
	e.must(err, "Member")
	if got.Role != "admin" {
		e.t.Fatalf("role %q after SetMemberRole, want admin", got.Role)
	}
	// The other workspace's membership is untouched.
	if m2, _ := e.s.Member(e.ctx, w2.ID, other.ID); m2 == nil || m2.Role != "owner" {
		e.t.Fatalf("membership in another workspace changed: %+v", m2)
	}
	_, err = e.s.SetMemberRole(e.ctx, w.ID, 999_999, "member", "admin")
	e.notFound(err, "SetMemberRole of a missing member")
	_, err = e.s.SetMemberRole(e.ctx, w2.ID, owner.ID, "owner", "admin")
	e.notFound(err, "SetMemberRole of a user who is not a member there")
	_, err = e.s.SetMemberRole(e.ctx, w.ID, owner.ID, "owner", "member")
	e.conflict(err, "demoting the last owner")
	// A role that is no longer the expected one: conflict, nothing written.
	_, err = e.s.SetMemberRole(e.ctx, w.ID, other.ID, "member", "owner")
	e.conflict(err, "a role changed meanwhile")
	if got, _ := e.s.Member(e.ctx, w.ID, other.ID); got == nil || got.Role != "admin" {
		e.t.Fatalf("a refused compare-and-set changed the role: %+v", got)
	}
	// With a second owner, the first may step down.
	_, err = e.s.SetMemberRole(e.ctx, w.ID, other.ID, "admin", "owner")
	e.must(err, "SetMemberRole to owner")
	_, err = e.s.SetMemberRole(e.ctx, w.ID, owner.ID, "owner", "member")
	e.must(err, "demoting one of two owners")
}

// testSetMemberRoleRace: two owners demoting each other at once leave one.
func testSetMemberRoleRace(e *env) {
	a, b := e.user("race-a"), e.user("race-b")
	w := e.workspace("srr", a.ID)
	e.addMember(w.ID, b.ID, "owner")
	errs := parallel(2, func(i int) error {
		uid := a.ID
		if i == 1 {
			uid = b.ID
		}
		_, err := e.s.SetMemberRole(e.ctx, w.ID, uid, "owner", "admin")
		return err
	})
	owners := 0
	for _, uid := range []int64{a.ID, b.ID} {
		if m, err := e.s.Member(e.ctx, w.ID, uid); err == nil && m.Role == "owner" {
			owners++
		}
	}
	if owners != 1 {
		e.t.Fatalf("%d owners after concurrent demotions (errors %v), want exactly 1", owners, errs)
	}
}
