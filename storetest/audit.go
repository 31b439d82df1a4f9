package storetest

import (
	"errors"
	"reflect"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
)

func auditTests() []test {
	return []test{
		{"Audit/RoundTrip", testAuditRoundTrip},
		{"Audit/ListFilters", testAuditListFilters},
		{"Audit/Isolation", testAuditIsolation},
		{"Audit/OutlivesWorkspace", testAuditOutlivesWorkspace},
		{"Audit/AppendOnly", testAuditAppendOnly},
	}
}

func (e *env) auditEvent(wid int64, action string, actor audit.Actor, d time.Duration) *audit.Event {
	e.t.Helper()
	ev := &audit.Event{WorkspaceID: wid, Actor: actor, Action: action, TargetType: "api_key", TargetID: "7",
		IP: "203.0.113.9", UserAgent: "curl/8", RequestID: "req-1", CreatedAt: at(d)}
	e.must(e.s.AppendAuditEvent(e.ctx, ev), "AppendAuditEvent "+action)
	if ev.ID == 0 {
		e.t.Fatal("AppendAuditEvent set no ID")
	}
	return ev
}

func testAuditRoundTrip(e *env) {
	u := e.user("aud")
	w := e.workspace("aud", u.ID)
	ev := &audit.Event{WorkspaceID: w.ID, Actor: audit.Actor{Kind: audit.ActorUser, ID: u.ID, KeyID: 42, Display: u.Email},
		Action: audit.MemberRemoved, TargetType: "user", TargetID: "99", IP: "2001:db8::1", UserAgent: "Mozilla/5.0 ü",
		RequestID: "0123abcd", Metadata: map[string]any{"role": "admin", "n": float64(3), "nested": map[string]any{"ok": true}},
		CreatedAt: at(1500 * time.Microsecond)}
	want := *ev
	e.must(e.s.AppendAuditEvent(e.ctx, ev), "AppendAuditEvent")
	want.ID = ev.ID
	list, total, err := e.s.ListAuditEvents(e.ctx, audit.Filter{WorkspaceID: w.ID}, page(1, 10))
	e.must(err, "ListAuditEvents")
	if total != 1 || len(list) != 1 {
		e.t.Fatalf("list: total %d, %d events, want 1", total, len(list))
	}
	e.same("event", list[0], want)

	// A zero time is filled with now; nil metadata reads back empty.
	bare := &audit.Event{WorkspaceID: 0, Actor: audit.Actor{Kind: audit.ActorSystem}, Action: audit.LoginFailed}
	e.must(e.s.AppendAuditEvent(e.ctx, bare), "AppendAuditEvent bare")
	e.recent("CreatedAt", bare.CreatedAt)
	list, _, err = e.s.ListAuditEvents(e.ctx, audit.Filter{}, page(1, 10))
	e.must(err, "ListAuditEvents workspace 0")
	if len(list) != 1 || list[0].ID != bare.ID || len(list[0].Metadata) != 0 || !list[0].CreatedAt.Equal(bare.CreatedAt) {
		e.t.Fatalf("events outside any workspace: %+v, want the bare one", list)
	}
}

func testAuditListFilters(e *env) {
	u := e.user("audf")
	w := e.workspace("audf", u.ID)
	alice := audit.Actor{Kind: audit.ActorUser, ID: u.ID, KeyID: 5, Display: "alice"} // via personal key 5
	bob := audit.Actor{Kind: audit.ActorUser, ID: u.ID + 1000, Display: "bob"}
	wkey := audit.Actor{Kind: audit.ActorKey, ID: 9, KeyID: 9, Display: "ci"}
	evs := []*audit.Event{
		e.auditEvent(w.ID, audit.APIKeyCreated, alice, 0),
		e.auditEvent(w.ID, audit.APIKeyRevoked, bob, time.Minute),
		e.auditEvent(w.ID, audit.MemberAdded, wkey, 2*time.Minute),
		e.auditEvent(w.ID, audit.APIKeyRotated, wkey, 3*time.Minute),
		e.auditEvent(w.ID, "api_keyx.created", bob, 4*time.Minute), // not of the api_key family
	}
	ids := func(list []audit.Event) []int64 {
		out := []int64{}
		for _, ev := range list {
			out = append(out, ev.ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    audit.Filter
		p    core.ListParams
		want []*audit.Event
	}{
		{"newest first", audit.Filter{}, page(1, 10), []*audit.Event{evs[4], evs[3], evs[2], evs[1], evs[0]}},
		{"sorted ascending", audit.Filter{}, page(1, 10, asc("created_at")), evs},
		{"action", audit.Filter{Action: audit.APIKeyRevoked}, page(1, 10), []*audit.Event{evs[1]}},
		{"action family", audit.Filter{Action: "api_key.*"}, page(1, 10), []*audit.Event{evs[3], evs[1], evs[0]}},
		{"user actor", audit.Filter{ActorKind: audit.ActorUser, ActorID: u.ID + 1000}, page(1, 10), []*audit.Event{evs[4], evs[1]}},
		{"key actor: a workspace key", audit.Filter{ActorKind: audit.ActorKey, ActorID: 9}, page(1, 10), []*audit.Event{evs[3], evs[2]}},
		{"key actor: a personal key", audit.Filter{ActorKind: audit.ActorKey, ActorID: 5}, page(1, 10), []*audit.Event{evs[0]}},
		{"created window (strict)", audit.Filter{}, core.ListParams{Page: 1, PerPage: 10,
			Filter: core.Filter{CreatedAfter: at(time.Minute), CreatedBefore: at(4 * time.Minute)}}, []*audit.Event{evs[3], evs[2]}},
		{"combined", audit.Filter{Action: "api_key.*", ActorKind: audit.ActorKey, ActorID: 9}, page(1, 10), []*audit.Event{evs[3]}},
		{"paged", audit.Filter{}, page(2, 2), []*audit.Event{evs[2], evs[1]}},
	}
	for _, c := range cases {
		c.f.WorkspaceID = w.ID
		list, total, err := e.s.ListAuditEvents(e.ctx, c.f, c.p)
		e.must(err, c.name)
		want := make([]int64, len(c.want))
		for i, ev := range c.want {
			want[i] = ev.ID
		}
		wantTotal := len(want)
		if c.name == "paged" {
			wantTotal = len(evs)
		}
		if got := ids(list); !reflect.DeepEqual(got, want) || total != wantTotal {
			e.t.Errorf("%s: ids %v total %d, want %v total %d", c.name, got, total, want, wantTotal)
		}
	}
	for _, bad := range []core.ListParams{
		{Page: 1, PerPage: 10, Filter: core.Filter{Status: "active"}},
		{Page: 1, PerPage: 10, Filter: core.Filter{UpdatedAfter: at(0)}},
		{Page: 1, PerPage: 10, Filter: core.Filter{Search: "x"}},
		{Page: 1, PerPage: 10, Sort: []core.Sort{{Field: "action"}}},
	} {
		if _, _, err := e.s.ListAuditEvents(e.ctx, audit.Filter{WorkspaceID: w.ID}, bad); !errors.Is(err, core.ErrValidation) {
			e.t.Errorf("ListAuditEvents %+v: %v, want a validation error", bad, err)
		}
	}
}

func testAuditIsolation(e *env) {
	u := e.user("audi")
	a, b := e.workspace("audi-a", u.ID), e.workspace("audi-b", u.ID)
	actor := audit.Actor{Kind: audit.ActorUser, ID: u.ID}
	mine := e.auditEvent(a.ID, audit.MemberAdded, actor, 0)
	e.auditEvent(b.ID, audit.MemberAdded, actor, 0)
	e.auditEvent(0, audit.LoginSucceeded, actor, 0)
	list, total, err := e.s.ListAuditEvents(e.ctx, audit.Filter{WorkspaceID: a.ID, ActorKind: audit.ActorUser, ActorID: u.ID}, page(1, 100))
	e.must(err, "ListAuditEvents")
	if total != 1 || len(list) != 1 || list[0].ID != mine.ID {
		e.t.Fatalf("workspace A's trail: %+v (total %d), want only its own event", list, total)
	}
}

func testAuditOutlivesWorkspace(e *env) {
	u := e.user("audd")
	w := e.workspace("audd", u.ID)
	ev := e.auditEvent(w.ID, audit.APIKeyCreated, audit.Actor{Kind: audit.ActorUser, ID: u.ID}, 0)
	e.must(e.s.DeleteWorkspace(e.ctx, w.ID), "DeleteWorkspace")
	del := e.auditEvent(w.ID, audit.WorkspaceDeleted, audit.Actor{Kind: audit.ActorUser, ID: u.ID}, time.Second)
	list, total, err := e.s.ListAuditEvents(e.ctx, audit.Filter{WorkspaceID: w.ID}, page(1, 10))
	e.must(err, "ListAuditEvents")
	if total != 2 || list[0].ID != del.ID || list[1].ID != ev.ID {
		e.t.Fatalf("trail of a deleted workspace: %+v, want both events kept", list)
	}
}

// testAuditAppendOnly pins the contract down at the type level: a store
// that also offered to change or remove events would break it.
func testAuditAppendOnly(e *env) {
	st := reflect.TypeOf(e.s)
	for i := range st.NumMethod() {
		switch name := st.Method(i).Name; name {
		case "UpdateAuditEvent", "DeleteAuditEvent", "DeleteAuditEvents", "PurgeAuditEvents":
			e.t.Errorf("the store offers %s: audit events must be append-only", name)
		}
	}
	it := reflect.TypeFor[audit.Store]()
	if it.NumMethod() != 2 {
		e.t.Errorf("audit.Store has %d methods, want exactly Append and List", it.NumMethod())
	}
}
