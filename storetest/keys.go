package storetest

import (
	"errors"
	"slices"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/keys"
)

func keyTests() []test {
	return []test{
		{"Keys/CreateGet", testKeys},
		{"Keys/Personal", testPersonalKeys},
		{"Keys/Rotate", testRotateKey},
		{"Keys/RotateRace", testRotateKeyRace},
		{"Keys/RotateUserKey", testRotateUserKey},
		{"Keys/Revoke", testRevokeKey},
		{"Keys/Touch", testTouchKeys},
		{"Keys/ListStatus", testListKeysStatus},
		{"Keys/ListPaging", testListKeysPaging},
		{"Keys/ListSort", testListKeysSort},
		{"Keys/ListSearchAndTimeFilters", testListKeysSearch},
	}
}

func keyID(k keys.Key) int64 { return k.ID }

func (e *env) listKeys(workspaceID int64, now time.Time) lister[keys.Key] {
	return func(p core.ListParams) ([]keys.Key, int, error) { return e.s.ListKeys(e.ctx, workspaceID, p, now) }
}

func (e *env) getKey(workspaceID, id int64) *keys.Key {
	e.t.Helper()
	k, err := e.s.Key(e.ctx, workspaceID, id)
	e.must(err, "Key")
	return k
}

func testKeys(e *env) {
	owner := e.user("owner")
	w := e.workspace("k", owner.ID)
	w2 := e.workspace("k2", owner.ID)

	k := &keys.Key{
		WorkspaceID: w.ID, UserID: owner.ID, Name: "CI", Prefix: "revops_ab", Hash: e.hash(),
		Scopes: []string{"read", "posts:write"}, RateLimitTier: "pro",
		ExpiresAt: ptr(at(720 * time.Hour)), CreatedAt: at(time.Hour), UpdatedAt: at(2 * time.Hour),
	}
	e.must(e.s.CreateKey(e.ctx, k), "CreateKey")
	if k.ID <= 0 {
		e.t.Errorf("CreateKey left ID = %d, want it filled", k.ID)
	}
	e.same("Key", e.getKey(w.ID, k.ID), k)
	got, err := e.s.KeyByHash(e.ctx, k.Hash)
	e.must(err, "KeyByHash")
	e.same("KeyByHash", got, k)

	bare := &keys.Key{WorkspaceID: w.ID, Name: "bare", Prefix: "revops_cd", Hash: e.hash()}
	e.must(e.s.CreateKey(e.ctx, bare), "CreateKey without scopes, creator or times")
	e.recent("CreateKey's CreatedAt", bare.CreatedAt)
	e.recent("CreateKey's UpdatedAt", bare.UpdatedAt)
	e.same("Key without scopes or creator", e.getKey(w.ID, bare.ID), bare)

	e.conflict(e.s.CreateKey(e.ctx, &keys.Key{WorkspaceID: w2.ID, Name: "dup", Hash: k.Hash}), "CreateKey with a duplicate hash")
	e.conflict(e.s.CreateKey(e.ctx, &keys.Key{UserID: owner.ID, Name: "dup", Hash: k.Hash}), "CreateKey of a personal key with a duplicate hash")
	e.notFound(e.s.CreateKey(e.ctx, &keys.Key{WorkspaceID: w.ID + w2.ID + 1000, Name: "ghost", Hash: e.hash()}), "CreateKey in an unknown workspace")

	_, err = e.s.Key(e.ctx, w2.ID, k.ID)
	e.notFound(err, "Key of another workspace")
	_, err = e.s.Key(e.ctx, 0, k.ID)
	e.notFound(err, "Key with workspace 0")
	_, err = e.s.Key(e.ctx, w.ID, bare.ID+1000)
	e.notFound(err, "Key of an unknown id")
	_, err = e.s.KeyByHash(e.ctx, e.hash())
	e.notFound(err, "KeyByHash of an unknown hash")

	list, n, err := e.s.ListKeys(e.ctx, w.ID, core.ListParams{}, at(time.Hour))
	e.must(err, "ListKeys")
	if n != 2 || len(list) != 2 {
		e.t.Fatalf("ListKeys: %d keys, total %d, want 2", len(list), n)
	}
	e.same("listed key", list[0], *k)
	e.same("listed bare key", list[1], *bare)
}

func testPersonalKeys(e *env) {
	alice, bob := e.user("alice"), e.user("bob")
	w := e.workspace("p", alice.ID)
	pk := e.key(0, alice.ID)
	wk := e.key(w.ID, alice.ID)
	pk2 := e.key(0, alice.ID, func(k *keys.Key) { k.Scopes = []string{"*"} })
	revoked := e.key(0, alice.ID, func(k *keys.Key) { k.RevokedAt = ptr(at(time.Hour)) })
	bobs := e.key(0, bob.ID)

	_, err := e.s.Key(e.ctx, 0, pk.ID)
	e.notFound(err, "Key(0, personal key)")
	_, err = e.s.Key(e.ctx, w.ID, pk.ID)
	e.notFound(err, "Key(workspace, personal key)")
	checkIDs(e, "ListKeys (personal keys are not listed)", e.listKeys(w.ID, at(time.Hour)), core.ListParams{}, keyID, wk.ID)

	got, err := e.s.KeyByHash(e.ctx, pk.Hash)
	e.must(err, "KeyByHash of a personal key")
	e.same("KeyByHash of a personal key", got, pk)
	if got.WorkspaceID != 0 || got.UserID != alice.ID {
		e.t.Errorf("personal key: WorkspaceID %d UserID %d, want 0 and %d", got.WorkspaceID, got.UserID, alice.ID)
	}
	_, err = e.s.KeyByHash(e.ctx, revoked.Hash)
	e.notFound(err, "KeyByHash of a revoked personal key")

	mine, err := e.s.ListUserKeys(e.ctx, alice.ID)
	e.must(err, "ListUserKeys")
	slices.SortFunc(mine, func(a, b keys.Key) int { return int(a.ID - b.ID) })
	e.same("ListUserKeys (personal, not revoked)", mine, []keys.Key{*pk, *pk2})
	theirs, err := e.s.ListUserKeys(e.ctx, bob.ID)
	e.must(err, "ListUserKeys")
	e.same("ListUserKeys of another user", theirs, []keys.Key{*bobs})
	none, err := e.s.ListUserKeys(e.ctx, bob.ID+1000)
	e.must(err, "ListUserKeys of an unknown user")
	if len(none) != 0 {
		e.t.Errorf("ListUserKeys of an unknown user: %d keys, want none", len(none))
	}

	// Workspace-scoped methods cannot reach a personal key.
	e.notFound(e.s.RevokeKey(e.ctx, w.ID, pk.ID, at(time.Hour)), "RevokeKey(workspace, personal key)")
	e.notFound(e.s.RotateKey(e.ctx, w.ID, pk.ID, &keys.Key{WorkspaceID: w.ID, Name: "n", Hash: e.hash()}, at(time.Hour)), "RotateKey(workspace, personal key)")
	got, err = e.s.KeyByHash(e.ctx, pk.Hash)
	e.must(err, "KeyByHash")
	e.same("personal key after refused workspace calls", got, pk)

	// RevokeUserKey reaches only the user's own personal keys.
	e.notFound(e.s.RevokeUserKey(e.ctx, bob.ID, pk.ID, at(time.Hour)), "RevokeUserKey of another user's key")
	e.notFound(e.s.RevokeUserKey(e.ctx, alice.ID, wk.ID, at(time.Hour)), "RevokeUserKey of a workspace key")
	e.notFound(e.s.RevokeUserKey(e.ctx, alice.ID, revoked.ID, at(time.Hour)), "RevokeUserKey of a revoked key")
	e.same("workspace key after refused RevokeUserKey", e.getKey(w.ID, wk.ID), wk)
	e.must(e.s.RevokeUserKey(e.ctx, alice.ID, pk.ID, at(time.Hour)), "RevokeUserKey")
	_, err = e.s.KeyByHash(e.ctx, pk.Hash)
	e.notFound(err, "KeyByHash after RevokeUserKey")
	mine, err = e.s.ListUserKeys(e.ctx, alice.ID)
	e.must(err, "ListUserKeys")
	e.same("ListUserKeys after RevokeUserKey", mine, []keys.Key{*pk2})
	e.notFound(e.s.RevokeUserKey(e.ctx, alice.ID, pk.ID, at(time.Hour)), "RevokeUserKey twice")
}

func testRotateKey(e *env) {
	owner := e.user("owner")
	w := e.workspace("r", owner.ID)
	old := e.key(w.ID, owner.ID, func(k *keys.Key) { k.ExpiresAt = ptr(at(1000 * time.Hour)) })

	next := &keys.Key{WorkspaceID: w.ID, UserID: owner.ID, Name: "rotated", Prefix: "revops_nx", Hash: e.hash(), Scopes: old.Scopes, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)}
	e.must(e.s.RotateKey(e.ctx, w.ID, old.ID, next, at(24*time.Hour)), "RotateKey")
	if next.ID <= 0 || next.ID == old.ID {
		e.t.Errorf("RotateKey left next.ID = %d, want a new id", next.ID)
	}
	gotOld := e.getKey(w.ID, old.ID)
	if gotOld.GraceEndsAt == nil || !gotOld.GraceEndsAt.Equal(at(24*time.Hour)) {
		e.t.Errorf("rotated key's GraceEndsAt = %v, want %s", gotOld.GraceEndsAt, at(24*time.Hour))
	}
	if s := gotOld.Status(at(time.Hour)); s != keys.StatusRotating {
		e.t.Errorf("rotated key's status = %s, want rotating", s)
	}
	gotNext := e.getKey(w.ID, next.ID)
	e.same("new key after RotateKey", gotNext, next)
	if s := gotNext.Status(at(time.Hour)); s != keys.StatusActive {
		e.t.Errorf("new key's status = %s, want active", s)
	}
	got, err := e.s.KeyByHash(e.ctx, old.Hash)
	e.must(err, "KeyByHash of a rotating key")
	if got.ID != old.ID {
		e.t.Errorf("KeyByHash of the rotating key gave id %d, want %d", got.ID, old.ID)
	}

	third := &keys.Key{WorkspaceID: w.ID, Name: "third", Hash: e.hash()}
	e.conflict(e.s.RotateKey(e.ctx, w.ID, old.ID, third, at(48*time.Hour)), "RotateKey of a rotated key")
	_, err = e.s.KeyByHash(e.ctx, third.Hash)
	e.notFound(err, "the new key of a refused RotateKey")
	if g := e.getKey(w.ID, old.ID).GraceEndsAt; g == nil || !g.Equal(at(24*time.Hour)) {
		e.t.Errorf("GraceEndsAt after a refused second rotation = %v, want unchanged %s", g, at(24*time.Hour))
	}

	// The new key can be rotated in its turn.
	fourth := &keys.Key{WorkspaceID: w.ID, Name: "fourth", Hash: e.hash()}
	e.must(e.s.RotateKey(e.ctx, w.ID, next.ID, fourth, at(48*time.Hour)), "RotateKey of the new key")

	e.notFound(e.s.RotateKey(e.ctx, w.ID, fourth.ID+1000, &keys.Key{WorkspaceID: w.ID, Name: "x", Hash: e.hash()}, at(time.Hour)), "RotateKey of an unknown key")
	revoked := e.key(w.ID, owner.ID)
	e.must(e.s.RevokeKey(e.ctx, w.ID, revoked.ID, at(time.Hour)), "RevokeKey")
	e.notFound(e.s.RotateKey(e.ctx, w.ID, revoked.ID, &keys.Key{WorkspaceID: w.ID, Name: "x", Hash: e.hash()}, at(time.Hour)), "RotateKey of a revoked key")

	// Atomic: when the new key cannot be inserted, the old one is not rotated.
	o := e.key(w.ID, owner.ID)
	e.conflict(e.s.RotateKey(e.ctx, w.ID, o.ID, &keys.Key{WorkspaceID: w.ID, Name: "dup", Hash: old.Hash}, at(time.Hour)), "RotateKey with a duplicate new hash")
	e.same("key after a failed RotateKey", e.getKey(w.ID, o.ID), o)
}

func testRotateKeyRace(e *env) {
	owner := e.user("owner")
	w := e.workspace("rr", owner.ID)
	for round := range 3 {
		k := e.key(w.ID, owner.ID)
		nexts := []*keys.Key{
			{WorkspaceID: w.ID, Name: "a", Hash: e.hash()},
			{WorkspaceID: w.ID, Name: "b", Hash: e.hash()},
		}
		errs := parallel(2, func(i int) error { return e.s.RotateKey(e.ctx, w.ID, k.ID, nexts[i], at(24*time.Hour)) })
		ok, conflicts, winner := 0, 0, -1
		for i, err := range errs {
			switch {
			case err == nil:
				ok, winner = ok+1, i
			case errors.Is(err, core.ErrConflict):
				conflicts++
			default:
				e.t.Errorf("round %d: concurrent RotateKey: unexpected error %v", round, err)
			}
		}
		if ok != 1 || conflicts != 1 {
			e.t.Errorf("round %d: two concurrent RotateKey: %d ok, %d conflicts; want 1 and 1", round, ok, conflicts)
			continue
		}
		loser := nexts[1-winner]
		if _, err := e.s.KeyByHash(e.ctx, loser.Hash); !errors.Is(err, core.ErrNotFound) {
			e.t.Errorf("round %d: the losing rotation's key exists (err %v)", round, err)
		}
		if _, err := e.s.KeyByHash(e.ctx, nexts[winner].Hash); err != nil {
			e.t.Errorf("round %d: the winning rotation's key: %v", round, err)
		}
	}
}

func testRevokeKey(e *env) {
	owner := e.user("owner")
	w := e.workspace("rv", owner.ID)
	k, k2 := e.key(w.ID, owner.ID), e.key(w.ID, owner.ID)
	e.must(e.s.RevokeKey(e.ctx, w.ID, k.ID, at(3*time.Hour)), "RevokeKey")
	_, err := e.s.Key(e.ctx, w.ID, k.ID)
	e.notFound(err, "Key after RevokeKey")
	_, err = e.s.KeyByHash(e.ctx, k.Hash)
	e.notFound(err, "KeyByHash after RevokeKey")
	checkIDs(e, "ListKeys after RevokeKey", e.listKeys(w.ID, at(time.Hour)), core.ListParams{}, keyID, k2.ID)
	later := e.listKeys(w.ID, at(10000*time.Hour))
	checkIDs(e, "ListKeys status active after RevokeKey", later, core.ListParams{Filter: core.Filter{Status: keys.StatusActive}}, keyID, k2.ID)
	checkIDs(e, "ListKeys status expired after RevokeKey", later, core.ListParams{Filter: core.Filter{Status: keys.StatusExpired}}, keyID)
	e.notFound(e.s.RevokeKey(e.ctx, w.ID, k.ID, at(4*time.Hour)), "RevokeKey twice")
	e.notFound(e.s.RevokeKey(e.ctx, w.ID, k2.ID+1000, at(4*time.Hour)), "RevokeKey of an unknown id")
	e.same("other key after RevokeKey", e.getKey(w.ID, k2.ID), k2)
	// A revoked key's hash stays taken.
	e.conflict(e.s.CreateKey(e.ctx, &keys.Key{WorkspaceID: w.ID, Name: "reuse", Hash: k.Hash}), "CreateKey reusing a revoked key's hash")
}

func testTouchKeys(e *env) {
	owner := e.user("owner")
	w := e.workspace("t", owner.ID)
	k1, k2 := e.key(w.ID, owner.ID), e.key(w.ID, owner.ID)
	pk := e.key(0, owner.ID)

	e.must(e.s.TouchKeys(e.ctx, nil), "TouchKeys(nil)")
	e.must(e.s.TouchKeys(e.ctx, map[int64]time.Time{}), "TouchKeys(empty)")
	e.must(e.s.TouchKeys(e.ctx, map[int64]time.Time{k1.ID: at(5 * time.Hour), pk.ID: at(6 * time.Hour), pk.ID + 1000: at(7 * time.Hour)}), "TouchKeys")

	got := e.getKey(w.ID, k1.ID)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(at(5*time.Hour)) {
		e.t.Errorf("LastUsedAt after TouchKeys = %v, want %s", got.LastUsedAt, at(5*time.Hour))
	}
	want := *k1
	want.LastUsedAt, want.UpdatedAt = got.LastUsedAt, got.UpdatedAt
	e.same("key after TouchKeys (only LastUsedAt changes)", got, &want)
	if g := e.getKey(w.ID, k2.ID).LastUsedAt; g != nil {
		e.t.Errorf("LastUsedAt of an untouched key = %s, want nil", g)
	}
	gp, err := e.s.KeyByHash(e.ctx, pk.Hash)
	e.must(err, "KeyByHash")
	if gp.LastUsedAt == nil || !gp.LastUsedAt.Equal(at(6*time.Hour)) {
		e.t.Errorf("personal key's LastUsedAt after TouchKeys = %v, want %s", gp.LastUsedAt, at(6*time.Hour))
	}

	e.must(e.s.TouchKeys(e.ctx, map[int64]time.Time{k1.ID: at(8 * time.Hour)}), "TouchKeys again")
	if g := e.getKey(w.ID, k1.ID).LastUsedAt; g == nil || !g.Equal(at(8*time.Hour)) {
		e.t.Errorf("LastUsedAt after a later TouchKeys = %v, want %s", g, at(8*time.Hour))
	}
}

// testListKeysStatus filters by status at a given instant, as Key.Status
// derives it.
func testListKeysStatus(e *env) {
	owner := e.user("owner")
	w := e.workspace("s", owner.ID)
	other := e.workspace("other", owner.ID)
	now := at(240 * time.Hour)
	exp := func(d time.Duration) func(*keys.Key) { return func(k *keys.Key) { k.ExpiresAt = ptr(now.Add(d)) } }

	active := e.key(w.ID, owner.ID)
	activeExp := e.key(w.ID, owner.ID, exp(time.Hour))
	expired := e.key(w.ID, owner.ID, exp(-time.Hour))
	expiredNow := e.key(w.ID, owner.ID, exp(0))
	rotating := e.key(w.ID, owner.ID)
	rotatingNext := &keys.Key{WorkspaceID: w.ID, Name: "rn", Hash: e.hash()}
	e.must(e.s.RotateKey(e.ctx, w.ID, rotating.ID, rotatingNext, now.Add(time.Hour)), "RotateKey")
	graceOver := e.key(w.ID, owner.ID)
	graceOverNext := &keys.Key{WorkspaceID: w.ID, Name: "gn", Hash: e.hash()}
	e.must(e.s.RotateKey(e.ctx, w.ID, graceOver.ID, graceOverNext, now), "RotateKey")
	rotatingExpired := e.key(w.ID, owner.ID, exp(-time.Minute))
	e.must(e.s.RotateKey(e.ctx, w.ID, rotatingExpired.ID, &keys.Key{WorkspaceID: w.ID, Name: "ren", Hash: e.hash()}, now.Add(time.Hour)), "RotateKey")
	revoked := e.key(w.ID, owner.ID)
	e.must(e.s.RevokeKey(e.ctx, w.ID, revoked.ID, at(time.Hour)), "RevokeKey")
	e.key(0, owner.ID) // personal: never listed
	e.key(other.ID, 0) // another workspace's
	all, total, err := e.s.ListKeys(e.ctx, w.ID, page(1, 100), now)
	e.must(err, "ListKeys")
	if total != 10 || len(all) != 10 {
		e.t.Errorf("ListKeys without status: %d keys, total %d, want 10 (all but the revoked one)", len(all), total)
	}

	want := map[string][]int64{
		keys.StatusActive:   {active.ID, activeExp.ID, rotatingNext.ID, graceOverNext.ID},
		keys.StatusRotating: {rotating.ID},
		keys.StatusExpired:  {expired.ID, expiredNow.ID, graceOver.ID, rotatingExpired.ID},
	}
	// The next key of rotatingExpired is active too.
	for _, k := range all {
		if k.Name == "ren" {
			want[keys.StatusActive] = append(want[keys.StatusActive], k.ID)
		}
	}
	slices.Sort(want[keys.StatusActive])
	for _, st := range []string{keys.StatusActive, keys.StatusRotating, keys.StatusExpired} {
		p := core.ListParams{PerPage: 100, Filter: core.Filter{Status: st}}
		checkIDs(e, "ListKeys status "+st, e.listKeys(w.ID, now), p, keyID, want[st]...)
		items, _, err := e.s.ListKeys(e.ctx, w.ID, p, now)
		e.must(err, "ListKeys")
		for _, k := range items {
			if got := k.Status(now); got != st {
				e.t.Errorf("ListKeys status %s returned key %d whose Status(now) is %s", st, k.ID, got)
			}
		}
	}
	// Status is evaluated at the given instant, not the clock.
	checkIDs(e, "ListKeys status rotating an hour later", e.listKeys(w.ID, now.Add(time.Hour)),
		core.ListParams{Filter: core.Filter{Status: keys.StatusRotating}}, keyID)
	checkIDs(e, "ListKeys status expired two hours earlier", e.listKeys(w.ID, now.Add(-2*time.Hour)),
		core.ListParams{Filter: core.Filter{Status: keys.StatusExpired}}, keyID)
	p := core.ListParams{Page: 2, PerPage: 3, Filter: core.Filter{Status: keys.StatusActive}}
	checkPage(e, "ListKeys status active page 2 of 3 per page", e.listKeys(w.ID, now), p, keyID, 5, want[keys.StatusActive][3:]...)
}

func testListKeysPaging(e *env) {
	owner := e.user("owner")
	w := e.workspace("p", owner.ID)
	other := e.workspace("o", owner.ID)
	var want []int64
	for range 7 {
		want = append(want, e.key(w.ID, owner.ID).ID)
		e.key(other.ID, owner.ID)
	}
	checkPaging(e, "ListKeys", e.listKeys(w.ID, at(time.Hour)), keyID, want)
}

func testListKeysSort(e *env) {
	owner := e.user("owner")
	w := e.workspace("sort", owner.ID)
	hour := func(h int) *time.Time {
		if h < 0 {
			return nil
		}
		return ptr(at(time.Duration(h) * time.Hour))
	}
	data := []struct {
		name             string
		created, expires int
		lastUsed         int
	}{
		{"beta", 3, -1, 10},
		{"alpha", 1, 500, -1},
		{"beta", 3, 400, 12},
		{"gamma", 2, -1, 10},
		{"alpha", 1, 500, -1},
		{"delta", 4, 600, 11},
	}
	touch := map[int64]time.Time{}
	for _, d := range data {
		k := e.key(w.ID, owner.ID, func(k *keys.Key) {
			k.Name = d.name
			k.CreatedAt, k.UpdatedAt = *hour(d.created), *hour(d.created)
			k.ExpiresAt = hour(d.expires)
		})
		if d.lastUsed >= 0 {
			touch[k.ID] = *hour(d.lastUsed)
		}
	}
	e.must(e.s.TouchKeys(e.ctx, touch), "TouchKeys")
	checkSorts(e, "ListKeys", len(data), e.listKeys(w.ID, at(time.Hour)), keyID,
		byInt("id", func(k keys.Key) int64 { return k.ID }),
		byString("name", func(k keys.Key) string { return k.Name }),
		byTime("created_at", func(k keys.Key) time.Time { return k.CreatedAt }),
		byTimePtr("last_used_at", func(k keys.Key) *time.Time { return k.LastUsedAt }),
		byTimePtr("expires_at", func(k keys.Key) *time.Time { return k.ExpiresAt }),
	)
}

func testListKeysSearch(e *env) {
	owner := e.user("owner")
	w := e.workspace("search", owner.ID)
	mk := func(name, prefix string, h int) int64 {
		return e.key(w.ID, owner.ID, func(k *keys.Key) {
			k.Name, k.Prefix = name, prefix
			k.CreatedAt = at(time.Duration(h) * time.Hour)
			k.UpdatedAt = at(time.Duration(10-h) * time.Hour)
		}).ID
	}
	deploy := mk("Deploy 50%", "abc", 1)
	ciBot := mk("ci_bot", "def", 2)
	cixBot := mk("cixbot", "ghi", 3)
	xyz := mk("other", "XY_Z", 4)
	list := e.listKeys(w.ID, at(time.Hour))
	s := func(q string) core.ListParams { return core.ListParams{Filter: core.Filter{Search: q}} }
	checkIDs(e, `search "50%"`, list, s("50%"), keyID, deploy)
	checkIDs(e, `search "%"`, list, s("%"), keyID, deploy)
	checkIDs(e, `search "i_b" (literal _)`, list, s("i_b"), keyID, ciBot)
	checkIDs(e, `search "CI"`, list, s("CI"), keyID, ciBot, cixBot)
	checkIDs(e, `search "y_z" (prefix, case-insensitive)`, list, s("y_z"), keyID, xyz)
	checkIDs(e, `search "nothing"`, list, s("nothing"), keyID)

	f := func(mod func(*core.Filter)) core.ListParams {
		var p core.ListParams
		mod(&p.Filter)
		return p
	}
	checkIDs(e, "created_after", list, f(func(f *core.Filter) { f.CreatedAfter = at(2 * time.Hour) }), keyID, cixBot, xyz)
	checkIDs(e, "created_before", list, f(func(f *core.Filter) { f.CreatedBefore = at(2 * time.Hour) }), keyID, deploy)
	checkIDs(e, "updated_after", list, f(func(f *core.Filter) { f.UpdatedAfter = at(8 * time.Hour) }), keyID, deploy)
	checkIDs(e, "updated_before", list, f(func(f *core.Filter) { f.UpdatedBefore = at(8 * time.Hour) }), keyID, cixBot, xyz)
	checkIDs(e, "search and created_after", list, f(func(f *core.Filter) { f.Search, f.CreatedAfter = "ci", at(2*time.Hour) }), keyID, cixBot)
}

func testRotateUserKey(e *env) {
	alice, bob := e.user("alice"), e.user("bob")
	w := e.workspace("ruk", alice.ID)
	pk := e.key(0, alice.ID)
	wk := e.key(w.ID, alice.ID)
	bobs := e.key(0, bob.ID)

	// Only the user's own personal keys.
	e.notFound(e.s.RotateUserKey(e.ctx, bob.ID, pk.ID, &keys.Key{Name: "x", Hash: e.hash()}, at(time.Hour)), "RotateUserKey of another user's key")
	e.notFound(e.s.RotateUserKey(e.ctx, alice.ID, wk.ID, &keys.Key{Name: "x", Hash: e.hash()}, at(time.Hour)), "RotateUserKey of a workspace key")
	e.notFound(e.s.RotateUserKey(e.ctx, alice.ID, 999_999, &keys.Key{Name: "x", Hash: e.hash()}, at(time.Hour)), "RotateUserKey of an unknown key")
	e.same("workspace key after a refused RotateUserKey", e.getKey(w.ID, wk.ID), wk)

	// next is made personal to the user, whatever it said.
	next := &keys.Key{WorkspaceID: w.ID, UserID: bob.ID, Name: pk.Name, Prefix: "revops_nu", Hash: e.hash(), Scopes: pk.Scopes, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)}
	e.must(e.s.RotateUserKey(e.ctx, alice.ID, pk.ID, next, at(24*time.Hour)), "RotateUserKey")
	if next.ID <= 0 || next.ID == pk.ID || next.WorkspaceID != 0 || next.UserID != alice.ID {
		e.t.Fatalf("RotateUserKey left next = %+v, want a new personal key of alice", next)
	}
	got, err := e.s.KeyByHash(e.ctx, next.Hash)
	e.must(err, "KeyByHash of the new key")
	e.same("new personal key", got, next)
	old, err := e.s.KeyByHash(e.ctx, pk.Hash)
	e.must(err, "KeyByHash of the rotated key")
	if old.GraceEndsAt == nil || !old.GraceEndsAt.Equal(at(24*time.Hour)) {
		e.t.Fatalf("rotated personal key's GraceEndsAt = %v, want %s", old.GraceEndsAt, at(24*time.Hour))
	}
	e.conflict(e.s.RotateUserKey(e.ctx, alice.ID, pk.ID, &keys.Key{Name: "again", Hash: e.hash()}, at(time.Hour)), "RotateUserKey of a rotated key")
	mine, err := e.s.ListUserKeys(e.ctx, alice.ID)
	e.must(err, "ListUserKeys")
	if len(mine) != 2 {
		e.t.Fatalf("alice has %d personal keys after rotation, want the old and the new", len(mine))
	}
	e.must(e.s.RevokeUserKey(e.ctx, alice.ID, next.ID, at(2*time.Hour)), "RevokeUserKey")
	e.notFound(e.s.RotateUserKey(e.ctx, alice.ID, next.ID, &keys.Key{Name: "x", Hash: e.hash()}, at(time.Hour)), "RotateUserKey of a revoked key")
	theirs, _ := e.s.ListUserKeys(e.ctx, bob.ID)
	e.same("bob's keys untouched", theirs, []keys.Key{*bobs})
}
