package storetest

import (
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/workspace"
)

func isolationTests() []test {
	return []test{
		{"TenantIsolation", testTenantIsolation},
	}
}

// tenantSnapshot is everything a workspace-scoped caller can see of one
// workspace.
type tenantSnapshot struct {
	Workspace   *workspace.Workspace
	Members     []workspace.Member
	Invitations []workspace.Invitation
	JoinCodes   []workspace.JoinCode
	Keys        []keys.Key
	Icon        *workspace.Icon
}

func (e *env) snapshot(workspaceID int64) tenantSnapshot {
	e.t.Helper()
	var s tenantSnapshot
	var err error
	s.Workspace, err = e.s.Workspace(e.ctx, workspaceID)
	e.must(err, "Workspace")
	s.Members, _, err = e.s.ListMembers(e.ctx, workspaceID, page(1, 100))
	e.must(err, "ListMembers")
	s.Invitations, _, err = e.s.ListInvitations(e.ctx, workspaceID, page(1, 100))
	e.must(err, "ListInvitations")
	s.JoinCodes, _, err = e.s.ListJoinCodes(e.ctx, workspaceID, page(1, 100))
	e.must(err, "ListJoinCodes")
	s.Keys, _, err = e.s.ListKeys(e.ctx, workspaceID, page(1, 100), at(time.Hour))
	e.must(err, "ListKeys")
	s.Icon, err = e.s.Icon(e.ctx, workspaceID)
	e.must(err, "Icon")
	return s
}

// testTenantIsolation calls every workspace-scoped method with workspace A's
// id on rows of workspace B: each is not found, and B is unchanged.
func testTenantIsolation(e *env) {
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	a := e.workspace("a", alice.ID)
	b := e.workspace("b", bob.ID)
	e.addMember(b.ID, carol.ID, "admin")
	invA, invB := e.invitation(a.ID, "x@example.test"), e.invitation(b.ID, "y@example.test")
	codeA, codeB := e.joinCode(a.ID), e.joinCode(b.ID)
	keyA, keyB := e.key(a.ID, alice.ID), e.key(b.ID, bob.ID)
	for _, w := range []int64{a.ID, b.ID} {
		e.must(e.s.PutIcon(e.ctx, &workspace.Icon{WorkspaceID: w, ContentType: "image/png", Data: []byte{byte(w)}, ETag: `"i"`, UpdatedAt: at(0)}), "PutIcon")
	}
	before := e.snapshot(b.ID)

	_, err := e.s.Member(e.ctx, a.ID, carol.ID)
	e.notFound(err, "Member(A, B's member)")
	e.notFound(e.s.RemoveMember(e.ctx, a.ID, carol.ID), "RemoveMember(A, B's member)")
	e.notFound(e.s.RemoveMember(e.ctx, a.ID, bob.ID), "RemoveMember(A, B's owner)")
	e.notFound(e.s.RevokeInvitation(e.ctx, a.ID, invB.ID), "RevokeInvitation(A, B's invitation)")
	e.notFound(e.s.RevokeJoinCode(e.ctx, a.ID, codeB.ID, at(time.Hour)), "RevokeJoinCode(A, B's code)")
	_, err = e.s.Key(e.ctx, a.ID, keyB.ID)
	e.notFound(err, "Key(A, B's key)")
	next := &keys.Key{WorkspaceID: a.ID, Name: "stolen", Hash: e.hash()}
	e.notFound(e.s.RotateKey(e.ctx, a.ID, keyB.ID, next, at(time.Hour)), "RotateKey(A, B's key)")
	_, err = e.s.KeyByHash(e.ctx, next.Hash)
	e.notFound(err, "the new key of a refused cross-workspace RotateKey")
	e.notFound(e.s.RevokeKey(e.ctx, a.ID, keyB.ID, at(time.Hour)), "RevokeKey(A, B's key)")

	// A's lists hold only A's rows.
	checkIDs(e, "ListMembers(A)", e.listMembers(a.ID), core.ListParams{}, memberID, alice.ID)
	checkIDs(e, "ListInvitations(A)", e.listInvitations(a.ID), core.ListParams{}, invitationID, invA.ID)
	checkIDs(e, "ListJoinCodes(A)", e.listJoinCodes(a.ID), core.ListParams{}, joinCodeID, codeA.ID)
	checkIDs(e, "ListKeys(A)", e.listKeys(a.ID, at(time.Hour)), core.ListParams{}, keyID, keyA.ID)

	// Writes to A leave B alone, up to deleting A.
	e.addMember(a.ID, carol.ID, "member")
	e.must(e.s.RemoveMember(e.ctx, a.ID, carol.ID), "RemoveMember(A, carol)")
	e.must(e.s.DeleteIcon(e.ctx, a.ID), "DeleteIcon(A)")
	e.notFound(e.s.DeleteIcon(e.ctx, a.ID), "DeleteIcon(A) twice")
	e.conflict(e.s.RemoveMember(e.ctx, a.ID, alice.ID), "RemoveMember(A, A's last owner)")
	e.must(e.s.DeleteWorkspace(e.ctx, a.ID), "DeleteWorkspace(A)")

	e.same("workspace B after calls on workspace A", e.snapshot(b.ID), before)
	got, err := e.s.KeyByHash(e.ctx, keyB.Hash)
	e.must(err, "KeyByHash(B's key)")
	e.same("B's key", got, keyB)
}
