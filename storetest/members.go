package storetest

import (
	"errors"
	"fmt"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/workspace"
)

func memberTests() []test {
	return []test{
		{"Members/AddGetRemove", testMembers},
		{"Members/RemoveLastOwnerRace", testRemoveLastOwnerRace},
		{"Members/ListPaging", testMemberListPaging},
		{"Members/ListSortSearchFilter", testMemberList},
	}
}

func invitationTests() []test {
	return []test{
		{"Invitations/CreateListRevoke", testInvitations},
		{"Invitations/Accept", testAcceptInvitation},
		{"Invitations/AcceptRace", testAcceptInvitationRace},
		{"Invitations/List", testInvitationList},
	}
}

func joinCodeTests() []test {
	return []test{
		{"JoinCodes/CreateListRevoke", testJoinCodes},
		{"JoinCodes/JoinByCode", testJoinByCode},
		{"JoinCodes/JoinByCodeRace", testJoinByCodeRace},
		{"JoinCodes/List", testJoinCodeList},
	}
}

func memberID(m workspace.Member) int64         { return m.UserID }
func invitationID(i workspace.Invitation) int64 { return i.ID }
func joinCodeID(c workspace.JoinCode) int64     { return c.ID }

func (e *env) listMembers(workspaceID int64) lister[workspace.Member] {
	return func(p core.ListParams) ([]workspace.Member, int, error) {
		return e.s.ListMembers(e.ctx, workspaceID, p)
	}
}

func (e *env) listInvitations(workspaceID int64) lister[workspace.Invitation] {
	return func(p core.ListParams) ([]workspace.Invitation, int, error) {
		return e.s.ListInvitations(e.ctx, workspaceID, p)
	}
}

func (e *env) listJoinCodes(workspaceID int64) lister[workspace.JoinCode] {
	return func(p core.ListParams) ([]workspace.JoinCode, int, error) {
		return e.s.ListJoinCodes(e.ctx, workspaceID, p)
	}
}

// uses returns a join code's use count as listed.
func (e *env) uses(c *workspace.JoinCode) int {
	e.t.Helper()
	codes, _, err := e.s.ListJoinCodes(e.ctx, c.WorkspaceID, page(1, 100))
	e.must(err, "ListJoinCodes")
	for _, x := range codes {
		if x.ID == c.ID {
			return x.Uses
		}
	}
	e.t.Fatalf("join code %d is not listed", c.ID)
	return 0
}

func testMembers(e *env) {
	owner, u1, u2 := e.user("owner"), e.user("u1"), e.user("u2")
	w := e.workspace("m", owner.ID)

	m := &workspace.Member{WorkspaceID: w.ID, UserID: u1.ID, Role: "admin", CreatedAt: at(time.Hour)}
	e.must(e.s.AddMember(e.ctx, m), "AddMember")
	want := workspace.Member{WorkspaceID: w.ID, UserID: u1.ID, Role: "admin", Email: u1.Email, Name: u1.Name, CreatedAt: at(time.Hour)}
	got, err := e.s.Member(e.ctx, w.ID, u1.ID)
	e.must(err, "Member")
	e.same("Member", got, &want)

	e.conflict(e.s.AddMember(e.ctx, &workspace.Member{WorkspaceID: w.ID, UserID: u1.ID, Role: "member"}), "AddMember of a member")
	got, err = e.s.Member(e.ctx, w.ID, u1.ID)
	e.must(err, "Member")
	e.same("Member after a conflicting AddMember", got, &want)

	m2 := &workspace.Member{WorkspaceID: w.ID, UserID: u2.ID, Role: "member"}
	e.must(e.s.AddMember(e.ctx, m2), "AddMember without CreatedAt")
	e.recent("AddMember's CreatedAt", m2.CreatedAt)

	e.notFound(e.s.AddMember(e.ctx, &workspace.Member{WorkspaceID: w.ID, UserID: u2.ID + 1000, Role: "member"}), "AddMember of an unknown user")
	e.notFound(e.s.AddMember(e.ctx, &workspace.Member{WorkspaceID: w.ID + 1000, UserID: u2.ID, Role: "member"}), "AddMember to an unknown workspace")
	_, err = e.s.Member(e.ctx, w.ID, u2.ID+1000)
	e.notFound(err, "Member of an unknown user")
	_, err = e.s.Member(e.ctx, w.ID+1000, u1.ID)
	e.notFound(err, "Member of an unknown workspace")

	list, n, err := e.s.ListMembers(e.ctx, w.ID, core.ListParams{})
	e.must(err, "ListMembers")
	if n != 3 || len(list) != 3 {
		e.t.Fatalf("ListMembers: %d members, total %d, want 3", len(list), n)
	}
	for _, lm := range list {
		one, err := e.s.Member(e.ctx, w.ID, lm.UserID)
		e.must(err, "Member")
		e.same(fmt.Sprintf("listed member %d", lm.UserID), lm, *one)
		if lm.Email == "" || lm.Name == "" {
			e.t.Errorf("listed member %d has no email or name: %+v", lm.UserID, lm)
		}
	}

	e.must(e.s.RemoveMember(e.ctx, w.ID, u2.ID), "RemoveMember")
	_, err = e.s.Member(e.ctx, w.ID, u2.ID)
	e.notFound(err, "Member after RemoveMember")
	e.notFound(e.s.RemoveMember(e.ctx, w.ID, u2.ID), "RemoveMember twice")
	e.notFound(e.s.RemoveMember(e.ctx, w.ID+1000, u1.ID), "RemoveMember from an unknown workspace")

	e.conflict(e.s.RemoveMember(e.ctx, w.ID, owner.ID), "RemoveMember of the last owner")
	_, err = e.s.Member(e.ctx, w.ID, owner.ID)
	e.must(err, "Member (last owner) after a refused RemoveMember")

	// With a second owner, one of them may go; then the other is the last.
	e.must(e.s.RemoveMember(e.ctx, w.ID, u1.ID), "RemoveMember of an admin")
	e.addMember(w.ID, u1.ID, "owner")
	e.must(e.s.RemoveMember(e.ctx, w.ID, owner.ID), "RemoveMember of one of two owners")
	e.conflict(e.s.RemoveMember(e.ctx, w.ID, u1.ID), "RemoveMember of the new last owner")
	// A removed user may be added again.
	e.addMember(w.ID, u2.ID, "member")
}

// testRemoveLastOwnerRace removes every owner of a workspace at once: the
// owner check and the delete must be atomic, so exactly one owner remains.
func testRemoveLastOwnerRace(e *env) {
	for round := range 10 {
		owners := 2 + round%2
		var ids []int64
		for i := range owners {
			ids = append(ids, e.user(fmt.Sprintf("r%do%d", round, i)).ID)
		}
		w := e.workspace(fmt.Sprintf("race%d", round), ids[0])
		for _, id := range ids[1:] {
			e.addMember(w.ID, id, "owner")
		}
		other := e.user(fmt.Sprintf("r%dm", round))
		e.addMember(w.ID, other.ID, "member")

		// Warm up: let the store open a connection per caller first.
		parallel(owners, func(i int) error { _, err := e.s.Member(e.ctx, w.ID, ids[i]); return err })
		errs := parallel(owners, func(i int) error { return e.s.RemoveMember(e.ctx, w.ID, ids[i]) })
		ok, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, core.ErrConflict):
				conflicts++
			default:
				e.t.Errorf("round %d: RemoveMember: unexpected error %v", round, err)
			}
		}
		if ok != owners-1 || conflicts != 1 {
			e.t.Errorf("round %d: removing %d owners at once: %d removed, %d conflicts; want %d removed and 1 conflict", round, owners, ok, conflicts, owners-1)
		}
		list, _, err := e.s.ListMembers(e.ctx, w.ID, page(1, 100))
		e.must(err, "ListMembers")
		left := 0
		for _, m := range list {
			if m.Role == "owner" {
				left++
			}
		}
		if left != 1 {
			e.t.Errorf("round %d: %d owners left, want exactly 1", round, left)
		}
	}
}

func testMemberListPaging(e *env) {
	owner := e.user("owner")
	w := e.workspace("p", owner.ID)
	want := []int64{owner.ID}
	for i := range 5 {
		u := e.user(fmt.Sprintf("p%d", i))
		e.addMember(w.ID, u.ID, "member")
		want = append(want, u.ID)
	}
	checkPaging(e, "ListMembers", e.listMembers(w.ID), memberID, want)
}

func testMemberList(e *env) {
	// Users are created in an order that differs from their emails' order.
	owner := e.user("mc")
	w := e.workspace("list", owner.ID)
	other := e.workspace("other", owner.ID)
	data := []struct {
		name, role string
		created    time.Duration
	}{
		{"ma", "admin", 2},
		{"me", "member", 1},
		{"mb", "admin", 2},
		{"md", "member", 3},
	}
	ids := map[string]int64{"mc": owner.ID}
	for _, d := range data {
		u := e.user(d.name)
		ids[d.name] = u.ID
		e.must(e.s.AddMember(e.ctx, &workspace.Member{WorkspaceID: w.ID, UserID: u.ID, Role: d.role, CreatedAt: at(d.created * time.Hour)}), "AddMember")
		e.addMember(other.ID, u.ID, "member") // must not show up in w's lists
	}
	under := &workspace.User{Email: "mf@example.test", Name: "Under_Score"}
	e.must(e.s.CreateUser(e.ctx, under), "CreateUser")
	e.must(e.s.AddMember(e.ctx, &workspace.Member{WorkspaceID: w.ID, UserID: under.ID, Role: "member", CreatedAt: at(time.Hour)}), "AddMember")
	ids["mf"] = under.ID

	type M = workspace.Member
	checkSorts(e, "ListMembers", 6, e.listMembers(w.ID), memberID,
		byTime("created_at", func(m M) time.Time { return m.CreatedAt }),
		byString("email", func(m M) string { return m.Email }),
		byString("role", func(m M) string { return m.Role }),
	)
	items, _, err := e.s.ListMembers(e.ctx, w.ID, page(1, 100, asc("role"), desc("email")))
	e.must(err, "ListMembers sorted by role, -email")
	checkOrder(e, "ListMembers sorted by role, -email", items, memberID,
		orderKey[M]{byString("role", func(m M) string { return m.Role }), false},
		orderKey[M]{byString("email", func(m M) string { return m.Email }), true})

	list := e.listMembers(w.ID)
	s := func(q string) core.ListParams { return core.ListParams{Filter: core.Filter{Search: q}} }
	checkIDs(e, `search "MB@" (email)`, list, s("MB@"), memberID, ids["mb"])
	checkIDs(e, `search "name md" (name)`, list, s("NAME MD"), memberID, ids["md"])
	checkIDs(e, `search "r_s" (literal _)`, list, s("r_s"), memberID, ids["mf"])
	checkIDs(e, `search "%"`, list, s("%"), memberID)
	p := core.ListParams{Filter: core.Filter{CreatedAfter: at(time.Hour), CreatedBefore: at(3 * time.Hour)}}
	checkIDs(e, "created_after and created_before", list, p, memberID, ids["ma"], ids["mb"])
}

func testInvitations(e *env) {
	owner := e.user("owner")
	w := e.workspace("inv", owner.ID)
	other := e.workspace("other", owner.ID)

	inv := &workspace.Invitation{
		WorkspaceID: w.ID, Email: "new@example.test", Role: "admin", TokenHash: e.hash(),
		InvitedBy: owner.ID, ExpiresAt: at(48 * time.Hour), CreatedAt: at(time.Hour),
	}
	e.must(e.s.CreateInvitation(e.ctx, inv), "CreateInvitation")
	if inv.ID <= 0 {
		e.t.Errorf("CreateInvitation left ID = %d, want it filled", inv.ID)
	}
	inv2 := &workspace.Invitation{WorkspaceID: w.ID, Email: "two@example.test", Role: "member", TokenHash: e.hash(), ExpiresAt: at(48 * time.Hour)}
	e.must(e.s.CreateInvitation(e.ctx, inv2), "CreateInvitation by a workspace key (InvitedBy 0)")
	e.recent("CreateInvitation's CreatedAt", inv2.CreatedAt)

	list, n, err := e.s.ListInvitations(e.ctx, w.ID, core.ListParams{})
	e.must(err, "ListInvitations")
	if n != 2 || len(list) != 2 {
		e.t.Fatalf("ListInvitations: %d, total %d, want 2", len(list), n)
	}
	e.same("listed invitation", list[0], *inv)
	e.same("listed invitation without inviter", list[1], *inv2)

	dup := &workspace.Invitation{WorkspaceID: w.ID, Email: "new@example.test", Role: "member", TokenHash: e.hash(), ExpiresAt: at(48 * time.Hour)}
	e.conflict(e.s.CreateInvitation(e.ctx, dup), "CreateInvitation while one is pending for the email")
	dupHash := &workspace.Invitation{WorkspaceID: w.ID, Email: "three@example.test", Role: "member", TokenHash: inv.TokenHash, ExpiresAt: at(48 * time.Hour)}
	e.conflict(e.s.CreateInvitation(e.ctx, dupHash), "CreateInvitation with a duplicate token hash")
	e.invitation(other.ID, "new@example.test") // another workspace may invite the same email
	ghost := &workspace.Invitation{WorkspaceID: w.ID + other.ID + 1000, Email: "g@example.test", Role: "member", TokenHash: e.hash(), ExpiresAt: at(48 * time.Hour)}
	e.notFound(e.s.CreateInvitation(e.ctx, ghost), "CreateInvitation in an unknown workspace")

	e.must(e.s.RevokeInvitation(e.ctx, w.ID, inv2.ID), "RevokeInvitation")
	checkIDs(e, "ListInvitations after RevokeInvitation", e.listInvitations(w.ID), core.ListParams{}, invitationID, inv.ID)
	e.notFound(e.s.RevokeInvitation(e.ctx, w.ID, inv2.ID), "RevokeInvitation twice")
	e.notFound(e.s.RevokeInvitation(e.ctx, w.ID, inv2.ID+1000), "RevokeInvitation of an unknown id")
	_, err = e.s.AcceptInvitation(e.ctx, inv2.TokenHash, inv2.Email, owner.ID, at(time.Hour))
	e.notFound(err, "AcceptInvitation of a revoked invitation")
	// The email may be invited again once its invitation is gone.
	e.invitation(w.ID, "two@example.test")
}

func testAcceptInvitation(e *env) {
	owner, alice, bob := e.user("owner"), e.user("alice"), e.user("bob")
	w := e.workspace("acc", owner.ID)
	inv := e.invitation(w.ID, alice.Email, func(i *workspace.Invitation) { i.Role, i.ExpiresAt = "admin", at(24*time.Hour) })
	now := at(time.Hour)

	_, err := e.s.AcceptInvitation(e.ctx, e.hash(), alice.Email, alice.ID, now)
	e.notFound(err, "AcceptInvitation with an unknown token")
	_, err = e.s.AcceptInvitation(e.ctx, inv.TokenHash, bob.Email, bob.ID, now)
	e.notFound(err, "AcceptInvitation with another email")
	_, err = e.s.AcceptInvitation(e.ctx, inv.TokenHash, alice.Email, alice.ID, at(24*time.Hour))
	e.notFound(err, "AcceptInvitation at its expiry")
	_, err = e.s.AcceptInvitation(e.ctx, inv.TokenHash, alice.Email, alice.ID, at(25*time.Hour))
	e.notFound(err, "AcceptInvitation after its expiry")
	checkIDs(e, "ListInvitations after failed accepts", e.listInvitations(w.ID), core.ListParams{}, invitationID, inv.ID)

	m, err := e.s.AcceptInvitation(e.ctx, inv.TokenHash, alice.Email, alice.ID, now)
	e.must(err, "AcceptInvitation")
	want := workspace.Member{WorkspaceID: w.ID, UserID: alice.ID, Role: "admin", Email: alice.Email, Name: alice.Name, CreatedAt: now}
	e.same("AcceptInvitation's member", m, &want)
	got, err := e.s.Member(e.ctx, w.ID, alice.ID)
	e.must(err, "Member after AcceptInvitation")
	e.same("Member after AcceptInvitation", got, &want)
	checkIDs(e, "ListInvitations after AcceptInvitation (accepted ones are not pending)", e.listInvitations(w.ID), core.ListParams{}, invitationID)
	_, err = e.s.AcceptInvitation(e.ctx, inv.TokenHash, alice.Email, alice.ID, now)
	e.notFound(err, "AcceptInvitation twice")

	// Accepted invitations do not block a new one; accepting it as a member
	// is a conflict that leaves it pending.
	again := e.invitation(w.ID, alice.Email, func(i *workspace.Invitation) { i.Role = "member" })
	_, err = e.s.AcceptInvitation(e.ctx, again.TokenHash, alice.Email, alice.ID, now)
	e.conflict(err, "AcceptInvitation by a member")
	list, _, err := e.s.ListInvitations(e.ctx, w.ID, core.ListParams{})
	e.must(err, "ListInvitations")
	if len(list) != 1 || list[0].ID != again.ID || list[0].AcceptedAt != nil {
		e.t.Errorf("after a conflicting AcceptInvitation the invitation must stay pending; listed: %+v", list)
	}
	got, err = e.s.Member(e.ctx, w.ID, alice.ID)
	e.must(err, "Member")
	e.same("Member after a conflicting AcceptInvitation", got, &want)

	// A user that does not exist cannot become a member.
	ghost := e.invitation(w.ID, "ghost@example.test")
	_, err = e.s.AcceptInvitation(e.ctx, ghost.TokenHash, ghost.Email, bob.ID+1000, now)
	e.notFound(err, "AcceptInvitation by an unknown user")
	checkIDs(e, "ListInvitations after a failed accept", e.listInvitations(w.ID), core.ListParams{}, invitationID, again.ID, ghost.ID)
}

func testAcceptInvitationRace(e *env) {
	owner, alice := e.user("owner"), e.user("alice")
	w := e.workspace("race", owner.ID)
	inv := e.invitation(w.ID, alice.Email)
	errs := parallel(4, func(int) error {
		_, err := e.s.AcceptInvitation(e.ctx, inv.TokenHash, alice.Email, alice.ID, at(time.Hour))
		return err
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, core.ErrNotFound), errors.Is(err, core.ErrConflict):
		default:
			e.t.Errorf("concurrent AcceptInvitation: unexpected error %v", err)
		}
	}
	if ok != 1 {
		e.t.Errorf("4 concurrent AcceptInvitation of one invitation: %d succeeded, want 1", ok)
	}
	checkIDs(e, "ListMembers after concurrent accepts", e.listMembers(w.ID), core.ListParams{}, memberID, owner.ID, alice.ID)
	checkIDs(e, "ListInvitations after concurrent accepts", e.listInvitations(w.ID), core.ListParams{}, invitationID)
}

func testInvitationList(e *env) {
	owner := e.user("owner")
	w := e.workspace("l", owner.ID)
	other := e.workspace("other", owner.ID)
	var want []int64
	for i, h := range []time.Duration{3, 1, 3, 2, 5, 1} {
		inv := e.invitation(w.ID, fmt.Sprintf("i%d@example.test", i), func(inv *workspace.Invitation) { inv.CreatedAt = at(h * time.Hour) })
		want = append(want, inv.ID)
		e.invitation(other.ID, fmt.Sprintf("i%d@example.test", i))
	}
	checkPaging(e, "ListInvitations", e.listInvitations(w.ID), invitationID, want)
	type I = workspace.Invitation
	checkSorts(e, "ListInvitations", len(want), e.listInvitations(w.ID), invitationID,
		byInt("id", func(i I) int64 { return i.ID }),
		byTime("created_at", func(i I) time.Time { return i.CreatedAt }),
	)
	p := core.ListParams{Filter: core.Filter{CreatedAfter: at(time.Hour), CreatedBefore: at(5 * time.Hour)}}
	checkIDs(e, "ListInvitations created_after and created_before", e.listInvitations(w.ID), p, invitationID, want[0], want[2], want[3])
}

func testJoinCodes(e *env) {
	owner := e.user("owner")
	w := e.workspace("jc", owner.ID)
	other := e.workspace("other", owner.ID)

	c := &workspace.JoinCode{
		WorkspaceID: w.ID, CodeHash: e.hash(), Hint: "ab12", Role: "admin",
		ExpiresAt: ptr(at(48 * time.Hour)), CreatedBy: owner.ID, CreatedAt: at(time.Hour),
	}
	e.must(e.s.CreateJoinCode(e.ctx, c), "CreateJoinCode")
	if c.ID <= 0 {
		e.t.Errorf("CreateJoinCode left ID = %d, want it filled", c.ID)
	}
	c2 := &workspace.JoinCode{WorkspaceID: w.ID, CodeHash: e.hash(), Hint: "cd34", Role: "member"}
	e.must(e.s.CreateJoinCode(e.ctx, c2), "CreateJoinCode without expiry or creator")
	e.recent("CreateJoinCode's CreatedAt", c2.CreatedAt)

	list, n, err := e.s.ListJoinCodes(e.ctx, w.ID, core.ListParams{})
	e.must(err, "ListJoinCodes")
	if n != 2 || len(list) != 2 {
		e.t.Fatalf("ListJoinCodes: %d, total %d, want 2", len(list), n)
	}
	e.same("listed join code", list[0], *c)
	e.same("listed join code without expiry", list[1], *c2)

	e.conflict(e.s.CreateJoinCode(e.ctx, &workspace.JoinCode{WorkspaceID: other.ID, CodeHash: c.CodeHash, Role: "member"}), "CreateJoinCode with a duplicate hash")
	e.notFound(e.s.CreateJoinCode(e.ctx, &workspace.JoinCode{WorkspaceID: w.ID + other.ID + 1000, CodeHash: e.hash(), Role: "member"}), "CreateJoinCode in an unknown workspace")

	e.must(e.s.RevokeJoinCode(e.ctx, w.ID, c2.ID, at(2*time.Hour)), "RevokeJoinCode")
	checkIDs(e, "ListJoinCodes after RevokeJoinCode", e.listJoinCodes(w.ID), core.ListParams{}, joinCodeID, c.ID)
	e.notFound(e.s.RevokeJoinCode(e.ctx, w.ID, c2.ID, at(3*time.Hour)), "RevokeJoinCode twice")
	e.notFound(e.s.RevokeJoinCode(e.ctx, w.ID, c2.ID+1000, at(3*time.Hour)), "RevokeJoinCode of an unknown id")
}

func testJoinByCode(e *env) {
	owner, u1, u2, u3 := e.user("owner"), e.user("u1"), e.user("u2"), e.user("u3")
	w := e.workspace("join", owner.ID)
	c := e.joinCode(w.ID, func(c *workspace.JoinCode) { c.Role, c.ExpiresAt = "admin", ptr(at(24*time.Hour)) })
	now := at(time.Hour)

	_, err := e.s.JoinByCode(e.ctx, e.hash(), u1.ID, now)
	e.notFound(err, "JoinByCode with an unknown code")

	m, err := e.s.JoinByCode(e.ctx, c.CodeHash, u1.ID, now)
	e.must(err, "JoinByCode")
	want := workspace.Member{WorkspaceID: w.ID, UserID: u1.ID, Role: "admin", Email: u1.Email, Name: u1.Name, CreatedAt: now}
	e.same("JoinByCode's member", m, &want)
	got, err := e.s.Member(e.ctx, w.ID, u1.ID)
	e.must(err, "Member after JoinByCode")
	e.same("Member after JoinByCode", got, &want)
	if n := e.uses(c); n != 1 {
		e.t.Errorf("uses after one JoinByCode = %d, want 1", n)
	}

	_, err = e.s.JoinByCode(e.ctx, c.CodeHash, u1.ID, now)
	e.conflict(err, "JoinByCode by a member")
	_, err = e.s.JoinByCode(e.ctx, c.CodeHash, owner.ID, now)
	e.conflict(err, "JoinByCode by the owner")
	_, err = e.s.JoinByCode(e.ctx, c.CodeHash, u3.ID+1000, now)
	e.notFound(err, "JoinByCode by an unknown user")
	_, err = e.s.JoinByCode(e.ctx, c.CodeHash, u2.ID, at(24*time.Hour))
	e.notFound(err, "JoinByCode at the code's expiry")
	_, err = e.s.JoinByCode(e.ctx, c.CodeHash, u2.ID, at(25*time.Hour))
	e.notFound(err, "JoinByCode after the code's expiry")
	if n := e.uses(c); n != 1 {
		e.t.Errorf("uses after failed joins = %d, want still 1", n)
	}
	got, err = e.s.Member(e.ctx, w.ID, u1.ID)
	e.must(err, "Member")
	e.same("Member after a conflicting JoinByCode", got, &want)

	forever := e.joinCode(w.ID)
	m, err = e.s.JoinByCode(e.ctx, forever.CodeHash, u2.ID, at(100000*time.Hour))
	e.must(err, "JoinByCode with a code that never expires")
	if m.Role != "member" {
		e.t.Errorf("JoinByCode's role = %q, want the code's %q", m.Role, "member")
	}
	e.must(e.s.RevokeJoinCode(e.ctx, w.ID, forever.ID, at(2*time.Hour)), "RevokeJoinCode")
	_, err = e.s.JoinByCode(e.ctx, forever.CodeHash, u3.ID, at(3*time.Hour))
	e.notFound(err, "JoinByCode with a revoked code")
	_, err = e.s.Member(e.ctx, w.ID, u3.ID)
	e.notFound(err, "Member after failed joins")
}

// testJoinByCodeRace joins many users through one code at once: every join
// is counted exactly once. Then one user joins twice at once: one conflict,
// counted once.
func testJoinByCodeRace(e *env) {
	owner := e.user("owner")
	w := e.workspace("jrace", owner.ID)
	c := e.joinCode(w.ID)
	const n = 16
	users := make([]int64, n)
	for i := range users {
		users[i] = e.user(fmt.Sprintf("j%02d", i)).ID
	}
	parallel(n, func(i int) error { _, err := e.s.User(e.ctx, users[i]); return err }) // warm up connections
	errs := parallel(n, func(i int) error {
		_, err := e.s.JoinByCode(e.ctx, c.CodeHash, users[i], at(time.Hour))
		return err
	})
	for i, err := range errs {
		if err != nil {
			e.t.Errorf("concurrent JoinByCode %d: %v", i, err)
		}
	}
	if got := e.uses(c); got != n {
		e.t.Errorf("uses after %d concurrent joins = %d, want %d", n, got, n)
	}
	_, total, err := e.s.ListMembers(e.ctx, w.ID, core.ListParams{})
	e.must(err, "ListMembers")
	if total != n+1 {
		e.t.Errorf("members after %d concurrent joins = %d, want %d", n, total, n+1)
	}

	late := e.user("late")
	errs = parallel(2, func(int) error {
		_, err := e.s.JoinByCode(e.ctx, c.CodeHash, late.ID, at(time.Hour))
		return err
	})
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, core.ErrConflict):
			conflicts++
		default:
			e.t.Errorf("concurrent JoinByCode of one user: unexpected error %v", err)
		}
	}
	if ok != 1 || conflicts != 1 {
		e.t.Errorf("one user joining twice at once: %d ok, %d conflicts; want 1 and 1", ok, conflicts)
	}
	if got := e.uses(c); got != n+1 {
		e.t.Errorf("uses = %d, want %d (a conflicting join is not counted)", got, n+1)
	}
}

func testJoinCodeList(e *env) {
	owner := e.user("owner")
	w := e.workspace("l", owner.ID)
	other := e.workspace("other", owner.ID)
	var want []int64
	for _, h := range []time.Duration{3, 1, 3, 2, 5, 1} {
		want = append(want, e.joinCode(w.ID, func(c *workspace.JoinCode) { c.CreatedAt = at(h * time.Hour) }).ID)
		e.joinCode(other.ID)
	}
	revoked := e.joinCode(w.ID)
	e.must(e.s.RevokeJoinCode(e.ctx, w.ID, revoked.ID, at(time.Hour)), "RevokeJoinCode")
	checkPaging(e, "ListJoinCodes", e.listJoinCodes(w.ID), joinCodeID, want)
	type C = workspace.JoinCode
	checkSorts(e, "ListJoinCodes", len(want), e.listJoinCodes(w.ID), joinCodeID,
		byInt("id", func(c C) int64 { return c.ID }),
		byTime("created_at", func(c C) time.Time { return c.CreatedAt }),
	)
	p := core.ListParams{Filter: core.Filter{CreatedAfter: at(time.Hour), CreatedBefore: at(5 * time.Hour)}}
	checkIDs(e, "ListJoinCodes created_after and created_before", e.listJoinCodes(w.ID), p, joinCodeID, want[0], want[2], want[3])
}
