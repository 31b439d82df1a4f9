package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/workspace"
)

func workspaceTests() []test {
	return []test{
		{"Users", testUsers},
		{"Times/RoundTrip", testTimesRoundTrip},
		{"Workspaces/CreateGetUpdateDelete", testWorkspaceCRUD},
		{"Workspaces/Icon", testIcon},
		{"Workspaces/DeleteCascades", testDeleteCascades},
		{"Workspaces/ListPaging", testWorkspaceListPaging},
		{"Workspaces/ListSort", testWorkspaceListSort},
		{"Workspaces/ListTimeFilters", testWorkspaceListTimeFilters},
		{"Workspaces/ListSearch", testWorkspaceListSearch},
		{"Workspaces/ListFilter", testWorkspaceListFilter},
	}
}

func workspaceID(w workspace.Workspace) int64 { return w.ID }

func (e *env) listWorkspaces(f workspace.ListFilter) lister[workspace.Workspace] {
	return func(p core.ListParams) ([]workspace.Workspace, int, error) {
		return e.s.ListWorkspaces(e.ctx, f, p)
	}
}

func testUsers(e *env) {
	n, err := e.s.CountUsers(e.ctx)
	e.must(err, "CountUsers")
	if n != 0 {
		e.t.Errorf("CountUsers on an empty store = %d, want 0", n)
	}

	u := &workspace.User{Email: "alice@example.test", Name: "Alice"}
	e.must(e.s.CreateUser(e.ctx, u), "CreateUser")
	if u.ID <= 0 {
		e.t.Errorf("CreateUser left ID = %d, want it filled", u.ID)
	}
	e.recent("CreateUser's CreatedAt", u.CreatedAt)
	e.recent("CreateUser's UpdatedAt", u.UpdatedAt)

	got, err := e.s.User(e.ctx, u.ID)
	e.must(err, "User")
	e.same("User", got, u)
	got, err = e.s.UserByEmail(e.ctx, "alice@example.test")
	e.must(err, "UserByEmail")
	e.same("UserByEmail", got, u)

	_, err = e.s.User(e.ctx, u.ID+1000)
	e.notFound(err, "User of an unknown id")
	_, err = e.s.UserByEmail(e.ctx, "nobody@example.test")
	e.notFound(err, "UserByEmail of an unknown email")

	err = e.s.CreateUser(e.ctx, &workspace.User{Email: "alice@example.test", Name: "Other Alice"})
	e.conflict(err, "CreateUser with a duplicate email")

	// Explicit times are kept.
	b := &workspace.User{Email: "bob@example.test", Name: "Bob", CreatedAt: at(time.Hour), UpdatedAt: at(2 * time.Hour)}
	e.must(e.s.CreateUser(e.ctx, b), "CreateUser with times")
	if b.ID == u.ID {
		e.t.Errorf("two users got the same id %d", b.ID)
	}
	got, err = e.s.User(e.ctx, b.ID)
	e.must(err, "User")
	e.same("User with explicit times", got, &workspace.User{ID: b.ID, Email: "bob@example.test", Name: "Bob", CreatedAt: at(time.Hour), UpdatedAt: at(2 * time.Hour)})

	n, err = e.s.CountUsers(e.ctx)
	e.must(err, "CountUsers")
	if n != 2 {
		e.t.Errorf("CountUsers = %d, want 2", n)
	}
}

// testTimesRoundTrip writes times with nanoseconds in a non-UTC zone: they
// come back in UTC, within a microsecond, and equal to what Create left in
// the struct.
func testTimesRoundTrip(e *env) {
	zone := time.FixedZone("UTC+05:30", 5*3600+30*60)
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 123456789, zone)
	near := func(what string, got, want time.Time) {
		e.t.Helper()
		if d := got.Sub(want); d <= -time.Microsecond || d >= time.Microsecond {
			e.t.Errorf("%s = %s, want %s within a microsecond", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
		if got.Location() != time.UTC {
			e.t.Errorf("%s = %s, want UTC", what, got)
		}
	}

	u := &workspace.User{Email: "t@example.test", CreatedAt: t0, UpdatedAt: t0.Add(999 * time.Nanosecond)}
	e.must(e.s.CreateUser(e.ctx, u), "CreateUser")
	gu, err := e.s.User(e.ctx, u.ID)
	e.must(err, "User")
	near("User.CreatedAt", gu.CreatedAt, t0)
	near("User.UpdatedAt", gu.UpdatedAt, t0.Add(999*time.Nanosecond))
	e.same("User after CreateUser", gu, u)

	w := e.workspace("times", u.ID, func(w *workspace.Workspace) { w.CreatedAt, w.UpdatedAt = t0, t0.Add(time.Hour) })
	gw, err := e.s.Workspace(e.ctx, w.ID)
	e.must(err, "Workspace")
	near("Workspace.CreatedAt", gw.CreatedAt, t0)
	e.same("Workspace after CreateWorkspace", gw, w)

	past := time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC)
	future := time.Date(2999, 12, 31, 23, 59, 59, 999999000, zone)
	k := e.key(w.ID, u.ID, func(k *keys.Key) {
		k.CreatedAt, k.UpdatedAt = t0, t0
		k.ExpiresAt, k.LastUsedAt = ptr(future), ptr(past)
	})
	gk, err := e.s.Key(e.ctx, w.ID, k.ID)
	e.must(err, "Key")
	near("Key.ExpiresAt", *gk.ExpiresAt, future)
	near("Key.LastUsedAt", *gk.LastUsedAt, past)
	e.same("Key after CreateKey", gk, k)

	inv := e.invitation(w.ID, "inv@example.test", func(i *workspace.Invitation) { i.ExpiresAt, i.CreatedAt = future, t0 })
	invs, _, err := e.s.ListInvitations(e.ctx, w.ID, core.ListParams{})
	e.must(err, "ListInvitations")
	if len(invs) == 1 {
		near("Invitation.ExpiresAt", invs[0].ExpiresAt, future)
		e.same("Invitation after CreateInvitation", invs[0], *inv)
	} else {
		e.t.Errorf("ListInvitations returned %d invitations, want 1", len(invs))
	}
}

func testWorkspaceCRUD(e *env) {
	owner := e.user("owner")
	w := &workspace.Workspace{
		Name: "Acme", Slug: "acme", Tier: "pro",
		Settings:   workspace.Settings{Timezone: "America/New_York", Locale: "en_US"},
		TOTPPolicy: workspace.TOTPRequired,
	}
	e.must(e.s.CreateWorkspace(e.ctx, w, owner.ID), "CreateWorkspace")
	if w.ID <= 0 {
		e.t.Errorf("CreateWorkspace left ID = %d, want it filled", w.ID)
	}
	e.recent("CreateWorkspace's CreatedAt", w.CreatedAt)
	e.recent("CreateWorkspace's UpdatedAt", w.UpdatedAt)
	got, err := e.s.Workspace(e.ctx, w.ID)
	e.must(err, "Workspace")
	e.same("Workspace", got, w)

	m, err := e.s.Member(e.ctx, w.ID, owner.ID)
	e.must(err, "Member (the owner made by CreateWorkspace)")
	if m.Role != "owner" || m.Email != owner.Email || m.Name != owner.Name || m.WorkspaceID != w.ID || m.UserID != owner.ID {
		e.t.Errorf("CreateWorkspace's owner membership = %+v, want role owner of user %d", m, owner.ID)
	}

	err = e.s.CreateWorkspace(e.ctx, &workspace.Workspace{Name: "Other", Slug: "acme"}, owner.ID)
	e.conflict(err, "CreateWorkspace with a duplicate slug")

	err = e.s.CreateWorkspace(e.ctx, &workspace.Workspace{Name: "Ghost", Slug: "ghost"}, owner.ID+1000)
	e.notFound(err, "CreateWorkspace with an unknown owner")
	checkIDs(e, "ListWorkspaces after a failed CreateWorkspace (it must be atomic)", e.listWorkspaces(workspace.ListFilter{}), core.ListParams{}, workspaceID, w.ID)

	_, err = e.s.Workspace(e.ctx, w.ID+1000)
	e.notFound(err, "Workspace of an unknown id")

	// Update writes every field fn leaves but ID and CreatedAt.
	upd := *got
	upd.Name, upd.Slug, upd.Tier = "Acme Two", "acme2", "team"
	upd.Settings = workspace.Settings{Timezone: "Asia/Tokyo", Locale: "ja_JP"}
	upd.TOTPPolicy = workspace.TOTPOff
	upd.UpdatedAt = at(5 * time.Hour)
	set := func(v workspace.Workspace) func(*workspace.Workspace) error {
		return func(x *workspace.Workspace) error {
			v.ID, v.CreatedAt = x.ID+7, at(-100*time.Hour) // both must be ignored
			*x = v
			return nil
		}
	}
	res, err := e.s.UpdateWorkspace(e.ctx, w.ID, set(upd))
	e.must(err, "UpdateWorkspace")
	want := upd
	want.ID, want.CreatedAt = w.ID, w.CreatedAt
	e.same("UpdateWorkspace result", res, &want)
	got, err = e.s.Workspace(e.ctx, w.ID)
	e.must(err, "Workspace after UpdateWorkspace")
	e.same("Workspace after UpdateWorkspace", got, &want)

	beta := e.workspace("beta", owner.ID)
	dup := want
	dup.Slug = "beta"
	_, err = e.s.UpdateWorkspace(e.ctx, w.ID, set(dup))
	e.conflict(err, "UpdateWorkspace to another workspace's slug")
	got, err = e.s.Workspace(e.ctx, w.ID)
	e.must(err, "Workspace")
	e.same("Workspace after a conflicting UpdateWorkspace", got, &want)

	// An error from fn aborts with nothing written.
	boom := errors.New("boom")
	_, err = e.s.UpdateWorkspace(e.ctx, w.ID, func(x *workspace.Workspace) error { x.Name = "half"; return boom })
	if !errors.Is(err, boom) {
		e.t.Errorf("UpdateWorkspace returned %v, want fn's error", err)
	}
	got, err = e.s.Workspace(e.ctx, w.ID)
	e.must(err, "Workspace")
	e.same("Workspace after an aborted UpdateWorkspace", got, &want)

	_, err = e.s.UpdateWorkspace(e.ctx, w.ID+1000, set(want))
	e.notFound(err, "UpdateWorkspace of an unknown id")

	// Concurrent read-modify-writes never lose one another.
	const writers = 12
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.s.UpdateWorkspace(e.ctx, beta.ID, func(x *workspace.Workspace) error { x.Name += "+"; return nil })
			e.must(err, "concurrent UpdateWorkspace")
		}()
	}
	wg.Wait()
	got, err = e.s.Workspace(e.ctx, beta.ID)
	e.must(err, "Workspace")
	if want := beta.Name + strings.Repeat("+", writers); got.Name != want {
		e.t.Errorf("after %d concurrent updates the name is %q, want %q: updates were lost", writers, got.Name, want)
	}

	e.must(e.s.DeleteWorkspace(e.ctx, w.ID), "DeleteWorkspace")
	_, err = e.s.Workspace(e.ctx, w.ID)
	e.notFound(err, "Workspace after DeleteWorkspace")
	e.notFound(e.s.DeleteWorkspace(e.ctx, w.ID), "DeleteWorkspace twice")
	_, err = e.s.Workspace(e.ctx, beta.ID)
	e.must(err, "another Workspace after DeleteWorkspace")

	// A deleted workspace's slug is free again.
	e.workspace("acme2", owner.ID)
}

func testIcon(e *env) {
	owner := e.user("owner")
	w := e.workspace("icon", owner.ID)
	other := e.workspace("other", owner.ID)

	_, err := e.s.Icon(e.ctx, w.ID)
	e.notFound(err, "Icon before PutIcon")
	e.notFound(e.s.DeleteIcon(e.ctx, w.ID), "DeleteIcon before PutIcon")

	data := make([]byte, 70000) // every byte value, and more than a page
	for i := range data {
		data[i] = byte(i * 7)
	}
	ic := &workspace.Icon{WorkspaceID: w.ID, ContentType: "image/png", Data: data, ETag: `"v1"`, UpdatedAt: at(time.Hour)}
	e.must(e.s.PutIcon(e.ctx, ic), "PutIcon")
	got, err := e.s.Icon(e.ctx, w.ID)
	e.must(err, "Icon")
	e.same("Icon", got, ic)

	ic2 := &workspace.Icon{WorkspaceID: w.ID, ContentType: "image/svg+xml", Data: []byte("<svg/>"), ETag: `"v2"`, UpdatedAt: at(2 * time.Hour)}
	e.must(e.s.PutIcon(e.ctx, ic2), "PutIcon replacing the icon")
	got, err = e.s.Icon(e.ctx, w.ID)
	e.must(err, "Icon")
	e.same("Icon after replacing it", got, ic2)

	_, err = e.s.Icon(e.ctx, other.ID)
	e.notFound(err, "Icon of a workspace without one")
	err = e.s.PutIcon(e.ctx, &workspace.Icon{WorkspaceID: w.ID + other.ID + 1000, ContentType: "image/png", Data: []byte{1}, ETag: `"x"`, UpdatedAt: at(0)})
	e.notFound(err, "PutIcon for an unknown workspace")

	e.must(e.s.DeleteIcon(e.ctx, w.ID), "DeleteIcon")
	_, err = e.s.Icon(e.ctx, w.ID)
	e.notFound(err, "Icon after DeleteIcon")
	e.notFound(e.s.DeleteIcon(e.ctx, w.ID), "DeleteIcon twice")
}

func testDeleteCascades(e *env) {
	owner, user := e.user("owner"), e.user("user")
	type owned struct {
		w    *workspace.Workspace
		inv  *workspace.Invitation
		code *workspace.JoinCode
		key  *keys.Key
	}
	setup := func(slug string) owned {
		w := e.workspace(slug, owner.ID)
		e.addMember(w.ID, user.ID, "member")
		o := owned{
			w:    w,
			inv:  e.invitation(w.ID, "invitee@example.test"),
			code: e.joinCode(w.ID),
			key:  e.key(w.ID, owner.ID),
		}
		e.must(e.s.PutIcon(e.ctx, &workspace.Icon{WorkspaceID: w.ID, ContentType: "image/png", Data: []byte{1, 2}, ETag: `"e"`, UpdatedAt: at(0)}), "PutIcon")
		return o
	}
	a, b := setup("a"), setup("b")
	personal := e.key(0, owner.ID)

	e.must(e.s.DeleteWorkspace(e.ctx, a.w.ID), "DeleteWorkspace")

	_, err := e.s.Workspace(e.ctx, a.w.ID)
	e.notFound(err, "Workspace after DeleteWorkspace")
	_, err = e.s.Member(e.ctx, a.w.ID, owner.ID)
	e.notFound(err, "Member (owner) after DeleteWorkspace")
	_, err = e.s.Member(e.ctx, a.w.ID, user.ID)
	e.notFound(err, "Member after DeleteWorkspace")
	_, err = e.s.Icon(e.ctx, a.w.ID)
	e.notFound(err, "Icon after DeleteWorkspace")
	_, err = e.s.Key(e.ctx, a.w.ID, a.key.ID)
	e.notFound(err, "Key after DeleteWorkspace")
	_, err = e.s.KeyByHash(e.ctx, a.key.Hash)
	e.notFound(err, "KeyByHash after DeleteWorkspace")
	_, err = e.s.AcceptInvitation(e.ctx, a.inv.TokenHash, a.inv.Email, user.ID, at(time.Hour))
	e.notFound(err, "AcceptInvitation after DeleteWorkspace")
	_, err = e.s.JoinByCode(e.ctx, a.code.CodeHash, e.user("late").ID, at(time.Hour))
	e.notFound(err, "JoinByCode after DeleteWorkspace")
	checkIDs(e, "ListMembers after DeleteWorkspace", func(p core.ListParams) ([]workspace.Member, int, error) {
		return e.s.ListMembers(e.ctx, a.w.ID, p)
	}, core.ListParams{}, memberID)
	checkIDs(e, "ListInvitations after DeleteWorkspace", func(p core.ListParams) ([]workspace.Invitation, int, error) {
		return e.s.ListInvitations(e.ctx, a.w.ID, p)
	}, core.ListParams{}, invitationID)
	checkIDs(e, "ListJoinCodes after DeleteWorkspace", func(p core.ListParams) ([]workspace.JoinCode, int, error) {
		return e.s.ListJoinCodes(e.ctx, a.w.ID, p)
	}, core.ListParams{}, joinCodeID)
	checkIDs(e, "ListKeys after DeleteWorkspace", func(p core.ListParams) ([]keys.Key, int, error) {
		return e.s.ListKeys(e.ctx, a.w.ID, p, at(time.Hour))
	}, core.ListParams{}, keyID)

	// The rows are gone, not hidden: their unique hashes are free again.
	e.key(b.w.ID, owner.ID, func(k *keys.Key) { k.Hash = a.key.Hash })
	e.invitation(b.w.ID, "other@example.test", func(i *workspace.Invitation) { i.TokenHash = a.inv.TokenHash })
	e.joinCode(b.w.ID, func(c *workspace.JoinCode) { c.CodeHash = a.code.CodeHash })

	// The other workspace, the users and personal keys are untouched.
	_, err = e.s.Workspace(e.ctx, b.w.ID)
	e.must(err, "other Workspace after DeleteWorkspace")
	_, err = e.s.Member(e.ctx, b.w.ID, user.ID)
	e.must(err, "other workspace's Member after DeleteWorkspace")
	_, err = e.s.Icon(e.ctx, b.w.ID)
	e.must(err, "other workspace's Icon after DeleteWorkspace")
	got, err := e.s.KeyByHash(e.ctx, b.key.Hash)
	e.must(err, "other workspace's key after DeleteWorkspace")
	e.same("other workspace's key after DeleteWorkspace", got, b.key)
	got, err = e.s.KeyByHash(e.ctx, personal.Hash)
	e.must(err, "personal key after DeleteWorkspace")
	e.same("personal key after DeleteWorkspace", got, personal)
	_, err = e.s.User(e.ctx, user.ID)
	e.must(err, "User after DeleteWorkspace")
	invs, n, err := e.s.ListInvitations(e.ctx, b.w.ID, core.ListParams{})
	e.must(err, "ListInvitations")
	if n != 2 || len(invs) != 2 || invs[0].ID != b.inv.ID {
		e.t.Errorf("other workspace's invitations after DeleteWorkspace: %d (total %d), want its own and the new one", len(invs), n)
	}
	codes, n, err := e.s.ListJoinCodes(e.ctx, b.w.ID, core.ListParams{})
	e.must(err, "ListJoinCodes")
	if n != 2 || len(codes) != 2 || codes[0].ID != b.code.ID {
		e.t.Errorf("other workspace's join codes after DeleteWorkspace: %d (total %d), want its own and the new one", len(codes), n)
	}
}

func testWorkspaceListPaging(e *env) {
	owner := e.user("owner")
	var want []int64
	for i := range 7 {
		want = append(want, e.workspace(fmt.Sprintf("w%d", i), owner.ID).ID)
	}
	checkPaging(e, "ListWorkspaces", e.listWorkspaces(workspace.ListFilter{}), workspaceID, want)
}

func testWorkspaceListSort(e *env) {
	owner := e.user("owner")
	data := []struct {
		name, slug, tier string
		created, updated time.Duration
	}{
		{"bravo", "s5", "pro", 3, 10},
		{"alpha", "s3", "free", 1, 12},
		{"bravo", "s1", "team", 3, 10},
		{"delta", "s6", "free", 2, 11},
		{"alpha", "s2", "pro", 1, 13},
		{"charlie", "s4", "free", 5, 10},
	}
	for _, d := range data {
		e.workspace(d.slug, owner.ID, func(w *workspace.Workspace) {
			w.Name, w.Tier = d.name, d.tier
			w.CreatedAt, w.UpdatedAt = at(d.created*time.Hour), at(d.updated*time.Hour)
		})
	}
	type W = workspace.Workspace
	checkSorts(e, "ListWorkspaces", len(data), e.listWorkspaces(workspace.ListFilter{}), workspaceID,
		byInt("id", func(w W) int64 { return w.ID }),
		byString("name", func(w W) string { return w.Name }),
		byString("slug", func(w W) string { return w.Slug }),
		byString("tier", func(w W) string { return w.Tier }),
		byTime("created_at", func(w W) time.Time { return w.CreatedAt }),
		byTime("updated_at", func(w W) time.Time { return w.UpdatedAt }),
	)
	// Several sort keys apply in order.
	items, _, err := e.s.ListWorkspaces(e.ctx, workspace.ListFilter{}, page(1, 100, asc("tier"), desc("name")))
	e.must(err, "ListWorkspaces sorted by tier, -name")
	checkOrder(e, "ListWorkspaces sorted by tier, -name", items, workspaceID,
		orderKey[W]{byString("tier", func(w W) string { return w.Tier }), false},
		orderKey[W]{byString("name", func(w W) string { return w.Name }), true})
}

func testWorkspaceListTimeFilters(e *env) {
	owner := e.user("owner")
	var ws []int64
	for i := range 5 {
		w := e.workspace(fmt.Sprintf("t%d", i), owner.ID, func(w *workspace.Workspace) {
			w.CreatedAt = at(time.Duration(i) * time.Hour)
			w.UpdatedAt = at(time.Duration(14-i) * time.Hour)
		})
		ws = append(ws, w.ID)
	}
	list := e.listWorkspaces(workspace.ListFilter{})
	f := func(mod func(*core.Filter)) core.ListParams {
		var p core.ListParams
		mod(&p.Filter)
		return p
	}
	checkIDs(e, "created_after (strict)", list, f(func(f *core.Filter) { f.CreatedAfter = at(time.Hour) }), workspaceID, ws[2], ws[3], ws[4])
	checkIDs(e, "created_before (strict)", list, f(func(f *core.Filter) { f.CreatedBefore = at(3 * time.Hour) }), workspaceID, ws[0], ws[1], ws[2])
	checkIDs(e, "created_after and created_before", list, f(func(f *core.Filter) {
		f.CreatedAfter, f.CreatedBefore = at(time.Hour), at(3*time.Hour)
	}), workspaceID, ws[2])
	checkIDs(e, "updated_after (strict)", list, f(func(f *core.Filter) { f.UpdatedAfter = at(11 * time.Hour) }), workspaceID, ws[0], ws[1], ws[2])
	checkIDs(e, "updated_before (strict)", list, f(func(f *core.Filter) { f.UpdatedBefore = at(13 * time.Hour) }), workspaceID, ws[2], ws[3], ws[4])
	checkIDs(e, "created_after and updated_after", list, f(func(f *core.Filter) {
		f.CreatedAfter, f.UpdatedAfter = at(0), at(12*time.Hour)
	}), workspaceID, ws[1])
	checkIDs(e, "created_after in another time zone", list, f(func(f *core.Filter) {
		f.CreatedAfter = at(3 * time.Hour).In(time.FixedZone("UTC-8", -8*3600))
	}), workspaceID, ws[4])
}

func testWorkspaceListSearch(e *env) {
	owner := e.user("owner")
	mk := func(name, slug string) int64 {
		return e.workspace(slug, owner.ID, func(w *workspace.Workspace) { w.Name = name }).ID
	}
	pct := mk("Acme 100% Real", "acme-real")
	under := mk("Acme_Corp", "acme-corp")
	x := mk("AcmeXCorp", "acmexcorp")
	zeta := mk("Zeta", "findme-zeta")
	bang := mk(`Hey!Yo back\slash`, "hey")
	list := e.listWorkspaces(workspace.ListFilter{})
	s := func(q string) core.ListParams { return core.ListParams{Filter: core.Filter{Search: q}} }
	checkIDs(e, `search "ACME" (case-insensitive)`, list, s("ACME"), workspaceID, pct, under, x)
	checkIDs(e, `search "100%"`, list, s("100%"), workspaceID, pct)
	checkIDs(e, `search "%" (literal)`, list, s("%"), workspaceID, pct)
	checkIDs(e, `search "_" (literal)`, list, s("_"), workspaceID, under)
	checkIDs(e, `search "e_c" (literal _)`, list, s("e_c"), workspaceID, under)
	checkIDs(e, `search "FINDME" (matches the slug)`, list, s("FINDME"), workspaceID, zeta)
	checkIDs(e, `search "y!y"`, list, s("y!y"), workspaceID, bang)
	checkIDs(e, `search "k\s"`, list, s(`k\s`), workspaceID, bang)
	checkIDs(e, `search "no match"`, list, s("no match"), workspaceID)
	p := s("acme")
	p.Page, p.PerPage = 2, 2
	checkPage(e, `search "acme", page 2 of 2 per page`, list, p, workspaceID, 3, x)
}

func testWorkspaceListFilter(e *env) {
	u, v, nobody := e.user("u"), e.user("v"), e.user("nobody")
	w1 := e.workspace("w1", u.ID).ID
	w2 := e.workspace("w2", v.ID).ID
	e.addMember(w2, u.ID, "member")
	w3 := e.workspace("w3", v.ID).ID
	w4 := e.workspace("w4", v.ID).ID
	l := func(f workspace.ListFilter) lister[workspace.Workspace] { return e.listWorkspaces(f) }
	all := core.ListParams{}
	checkIDs(e, "ListFilter{}", l(workspace.ListFilter{}), all, workspaceID, w1, w2, w3, w4)
	checkIDs(e, "MemberUserID", l(workspace.ListFilter{MemberUserID: u.ID}), all, workspaceID, w1, w2)
	checkIDs(e, "MemberUserID of a user without workspaces", l(workspace.ListFilter{MemberUserID: nobody.ID}), all, workspaceID)
	checkIDs(e, "IDs", l(workspace.ListFilter{IDs: []int64{w3, w2}}), all, workspaceID, w2, w3)
	checkIDs(e, "IDs with an unknown id", l(workspace.ListFilter{IDs: []int64{w4, w4 + 1000}}), all, workspaceID, w4)
	checkIDs(e, "MemberUserID and IDs", l(workspace.ListFilter{MemberUserID: u.ID, IDs: []int64{w2, w3}}), all, workspaceID, w2)
	checkIDs(e, "empty IDs", l(workspace.ListFilter{IDs: []int64{}}), all, workspaceID)
	checkIDs(e, "empty IDs and MemberUserID", l(workspace.ListFilter{IDs: []int64{}, MemberUserID: u.ID}), all, workspaceID)
	checkPage(e, "MemberUserID, page 1 of 2 per page", l(workspace.ListFilter{MemberUserID: v.ID}), page(1, 2), workspaceID, 3, w2, w3)
}
