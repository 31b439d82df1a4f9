package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/webhooks"
)

func webhookTests() []test {
	return []test{
		{"Webhooks/Endpoints", testWebhookEndpoints},
		{"Webhooks/EndpointUpdate", testWebhookEndpointUpdate},
		{"Webhooks/EndpointUpdateConcurrent", testWebhookEndpointUpdateConcurrent},
		{"Webhooks/EndpointListPaging", testWebhookEndpointListPaging},
		{"Webhooks/EndpointListSortFilter", testWebhookEndpointListSortFilter},
		{"Webhooks/EndpointListSearch", testWebhookEndpointListSearch},
		{"Webhooks/EndpointDeleteCascades", testWebhookEndpointDeleteCascades},
		{"Webhooks/Events", testWebhookEvents},
		{"Webhooks/EventAtomic", testWebhookEventAtomic},
		{"Webhooks/DeliveryUpdate", testWebhookDeliveryUpdate},
		{"Webhooks/DeliveryList", testWebhookDeliveryList},
		{"Webhooks/Claim", testWebhookClaim},
		{"Webhooks/ClaimRace", testWebhookClaimRace},
		{"Webhooks/Finish", testWebhookFinish},
		{"Webhooks/FinishRefused", testWebhookFinishRefused},
		{"Webhooks/FinishDisable", testWebhookFinishDisable},
		{"Webhooks/FinishGiveBack", testWebhookFinishGiveBack},
		{"Webhooks/FinishConcurrent", testWebhookFinishConcurrent},
		{"Webhooks/ClaimBatch", testWebhookClaimBatch},
		{"Webhooks/ClaimBatchRace", testWebhookClaimBatchRace},
		{"Webhooks/FinishBatch", testWebhookFinishBatch},
		{"Webhooks/FinishBatchDisable", testWebhookFinishBatchDisable},
		{"Webhooks/Due", testWebhookDue},
		{"Webhooks/TenantIsolation", testWebhookTenantIsolation},
		{"Webhooks/DeleteWorkspaceCascades", testWebhookDeleteWorkspaceCascades},
	}
}

func endpointID(x webhooks.Endpoint) int64 { return x.ID }
func deliveryID(x webhooks.Delivery) int64 { return x.ID }

func (e *env) listEndpoints(workspaceID int64) lister[webhooks.Endpoint] {
	return func(p core.ListParams) ([]webhooks.Endpoint, int, error) {
		return e.s.ListWebhookEndpoints(e.ctx, workspaceID, p)
	}
}

func (e *env) listDeliveries(workspaceID int64, f webhooks.DeliveryFilter) lister[webhooks.Delivery] {
	return func(p core.ListParams) ([]webhooks.Delivery, int, error) {
		return e.s.ListWebhookDeliveries(e.ctx, workspaceID, f, p)
	}
}

// endpoint creates an active endpoint subscribed to post.*.
func (e *env) endpoint(workspaceID int64, mods ...func(*webhooks.Endpoint)) *webhooks.Endpoint {
	e.t.Helper()
	n := e.next()
	ep := &webhooks.Endpoint{
		WorkspaceID: workspaceID, URL: fmt.Sprintf("https://hooks.example.test/in/%03d", n),
		Events: []string{"post.*"}, Secret: fmt.Sprintf("whsec_secret%03d", n), IsActive: true,
	}
	for _, m := range mods {
		m(ep)
	}
	e.must(e.s.CreateWebhookEndpoint(e.ctx, ep), "CreateWebhookEndpoint")
	return ep
}

func (e *env) getEndpoint(workspaceID, id int64) *webhooks.Endpoint {
	e.t.Helper()
	got, err := e.s.WebhookEndpoint(e.ctx, workspaceID, id)
	e.must(err, "WebhookEndpoint")
	return got
}

func (e *env) getDelivery(workspaceID, id int64) *webhooks.Delivery {
	e.t.Helper()
	got, err := e.s.WebhookDelivery(e.ctx, workspaceID, id)
	e.must(err, "WebhookDelivery")
	return got
}

// deliver publishes an event of workspaceID (created at base) with one
// pending delivery to endpointID, due at base unless mods say otherwise,
// and returns the stored delivery.
func (e *env) deliver(workspaceID, endpointID int64, mods ...func(*webhooks.Delivery)) webhooks.Delivery {
	e.t.Helper()
	ev := &webhooks.Event{ID: fmt.Sprintf("evt_storetest%06d", e.next()), WorkspaceID: workspaceID, Type: "post.created",
		Payload: json.RawMessage(`{"id":1}`), CreatedAt: at(0)}
	d := webhooks.Delivery{WorkspaceID: workspaceID, EndpointID: endpointID, EventID: ev.ID, EventType: ev.Type,
		Status: webhooks.StatusPending, NextAttemptAt: ptr(at(0)), CreatedAt: at(0), UpdatedAt: at(0)}
	for _, m := range mods {
		m(&d)
	}
	ds, err := e.s.CreateWebhookEvent(e.ctx, ev, []webhooks.Delivery{d})
	e.must(err, "CreateWebhookEvent")
	if len(ds) != 1 {
		e.t.Fatalf("CreateWebhookEvent with one delivery returned %d", len(ds))
	}
	return ds[0]
}

// claimWebhook claims a delivery that must be claimable.
func (e *env) claimWebhook(id int64, now, until time.Time) webhooks.Claim {
	e.t.Helper()
	cs, err := e.s.ClaimWebhookDeliveries(e.ctx, []int64{id}, now, until)
	e.must(err, "ClaimWebhookDeliveries")
	if len(cs) != 1 || cs[0].Delivery.ID != id {
		e.t.Fatalf("ClaimWebhookDeliveries([%d], now %s) = %+v; want the claimed delivery", id, now.Format(time.RFC3339Nano), cs)
	}
	return cs[0]
}

// claimDelivery claims a delivery that must be claimable and returns it.
func (e *env) claimDelivery(id int64, now, until time.Time) webhooks.Delivery {
	e.t.Helper()
	return e.claimWebhook(id, now, until).Delivery
}

// finishOne calls FinishWebhookAttempts with the one attempt d.
func (e *env) finishOne(d *webhooks.Delivery, o *webhooks.AttemptOutcome) (webhooks.FinishResult, error) {
	e.t.Helper()
	res, err := e.s.FinishWebhookAttempts(e.ctx, []webhooks.Finish{{Delivery: d, Outcome: o}})
	if err == nil && len(res) != 1 {
		err = fmt.Errorf("FinishWebhookAttempts of one attempt returned %d results", len(res))
	}
	if err != nil {
		return webhooks.FinishResult{}, err
	}
	return res[0], nil
}

// finish ends the one attempt d (FinishWebhookAttempts) and requires it to
// be done.
func (e *env) finish(what string, d *webhooks.Delivery, o *webhooks.AttemptOutcome) (disabled bool) {
	e.t.Helper()
	res, err := e.finishOne(d, o)
	e.must(err, what)
	if !res.Done {
		e.t.Fatalf("%s: FinishWebhookAttempts returned not done; want the leased delivery finished", what)
	}
	return res.Disabled
}

// refused ends the one attempt d and requires it to be refused.
func (e *env) refused(what string, d *webhooks.Delivery, o *webhooks.AttemptOutcome) {
	e.t.Helper()
	in := *d
	res, err := e.finishOne(d, o)
	if err != nil || res.Done || res.Disabled {
		e.t.Errorf("%s: FinishWebhookAttempts = %+v, %v; want not done, not disabled, no error", what, res, err)
	}
	e.same(what+": the caller's delivery after a refused FinishWebhookAttempts", *d, in)
}

// notClaimable requires a claim of id at now to be refused.
func (e *env) notClaimable(what string, id int64, now time.Time) {
	e.t.Helper()
	cs, err := e.s.ClaimWebhookDeliveries(e.ctx, []int64{id}, now, now.Add(time.Minute))
	if err != nil || len(cs) != 0 {
		e.t.Errorf("%s: ClaimWebhookDeliveries = %+v, %v; want none", what, cs, err)
	}
}

func testWebhookEndpoints(e *env) {
	u := e.user("wh")
	w, other := e.workspace("wh", u.ID), e.workspace("wh-other", u.ID)

	ep := &webhooks.Endpoint{WorkspaceID: w.ID, URL: "https://hooks.example.test/a", Events: []string{"post.created", "user.*"},
		Secret: "whsec_a", IsActive: true}
	e.must(e.s.CreateWebhookEndpoint(e.ctx, ep), "CreateWebhookEndpoint")
	if ep.ID <= 0 {
		e.t.Errorf("CreateWebhookEndpoint left ID = %d, want it filled", ep.ID)
	}
	e.recent("CreateWebhookEndpoint's CreatedAt", ep.CreatedAt)
	e.recent("CreateWebhookEndpoint's UpdatedAt", ep.UpdatedAt)
	e.same("WebhookEndpoint", e.getEndpoint(w.ID, ep.ID), ep)

	// Every field round-trips; times come back in UTC within a microsecond,
	// equal to what Create left in the struct.
	zone := time.FixedZone("UTC-03:00", -3*3600)
	t0 := time.Date(2026, 2, 3, 4, 5, 6, 123456789, zone)
	full := &webhooks.Endpoint{
		WorkspaceID: w.ID, URL: "https://hooks.example.test/b?x=1&y='2'", Events: []string{"*"},
		Secret: "whsec_b", PrevSecret: "whsec_old", PrevSecretUntil: ptr(t0.Add(24 * time.Hour)),
		IsActive: false, DisabledReason: webhooks.DisabledFailing,
		SuccessCount: 1 << 40, FailureCount: 7, ConsecutiveFailures: 3,
		FailingSince: ptr(t0.Add(-time.Hour)), LastDeliveryAt: ptr(t0),
		CreatedAt: t0, UpdatedAt: t0.Add(time.Minute),
	}
	e.must(e.s.CreateWebhookEndpoint(e.ctx, full), "CreateWebhookEndpoint with every field")
	got := e.getEndpoint(w.ID, full.ID)
	e.same("WebhookEndpoint with every field", got, full)
	if d := got.LastDeliveryAt.Sub(t0); d <= -time.Microsecond || d >= time.Microsecond {
		e.t.Errorf("LastDeliveryAt = %s, want %s within a microsecond", got.LastDeliveryAt, t0)
	}
	if got.SuccessCount != 1<<40 || got.DisabledReason != webhooks.DisabledFailing || got.IsActive {
		e.t.Errorf("WebhookEndpoint = %+v, want the counters and disabled state written", got)
	}

	_, err := e.s.WebhookEndpoint(e.ctx, w.ID, full.ID+1000)
	e.notFound(err, "WebhookEndpoint of an unknown id")
	e.notFound(e.s.CreateWebhookEndpoint(e.ctx, &webhooks.Endpoint{WorkspaceID: 999_999, URL: "https://x.test", Secret: "whsec_x", IsActive: true}),
		"CreateWebhookEndpoint in a missing workspace")

	// ActiveWebhookEndpoints: the workspace's active endpoints only.
	third := e.endpoint(w.ID)
	e.endpoint(other.ID)
	active, err := e.s.ActiveWebhookEndpoints(e.ctx, w.ID)
	e.must(err, "ActiveWebhookEndpoints")
	if fmt.Sprint(ids(active, endpointID)) != fmt.Sprint([]int64{ep.ID, third.ID}) {
		e.t.Errorf("ActiveWebhookEndpoints = ids %v, want %v (active ones of the workspace, by id)", ids(active, endpointID), []int64{ep.ID, third.ID})
	} else {
		e.same("ActiveWebhookEndpoints[0]", active[0], *ep)
	}
	none, err := e.s.ActiveWebhookEndpoints(e.ctx, 999_999)
	e.must(err, "ActiveWebhookEndpoints of a missing workspace")
	if len(none) != 0 {
		e.t.Errorf("ActiveWebhookEndpoints of a missing workspace = %d endpoints", len(none))
	}

	e.must(e.s.DeleteWebhookEndpoint(e.ctx, w.ID, ep.ID), "DeleteWebhookEndpoint")
	_, err = e.s.WebhookEndpoint(e.ctx, w.ID, ep.ID)
	e.notFound(err, "WebhookEndpoint after DeleteWebhookEndpoint")
	e.notFound(e.s.DeleteWebhookEndpoint(e.ctx, w.ID, ep.ID), "DeleteWebhookEndpoint twice")
	active, err = e.s.ActiveWebhookEndpoints(e.ctx, w.ID)
	e.must(err, "ActiveWebhookEndpoints")
	if fmt.Sprint(ids(active, endpointID)) != fmt.Sprint([]int64{third.ID}) {
		e.t.Errorf("ActiveWebhookEndpoints after a delete = ids %v, want %v", ids(active, endpointID), []int64{third.ID})
	}
	e.same("another endpoint after DeleteWebhookEndpoint", e.getEndpoint(w.ID, full.ID), full)
}

func testWebhookEndpointUpdate(e *env) {
	u := e.user("whu")
	w, other := e.workspace("whu", u.ID), e.workspace("whu-other", u.ID)
	ep := e.endpoint(w.ID)

	// Update writes every field fn leaves but ID, WorkspaceID and CreatedAt.
	zone := time.FixedZone("UTC+09:00", 9*3600)
	upd := *ep
	upd.URL, upd.Events, upd.Secret = "https://hooks.example.test/new", []string{"user.*", "post.deleted"}, "whsec_new"
	upd.PrevSecret, upd.PrevSecretUntil = ep.Secret, ptr(time.Date(2026, 5, 6, 7, 8, 9, 987654000, zone))
	upd.IsActive, upd.DisabledReason = false, webhooks.DisabledGone
	upd.SuccessCount, upd.FailureCount, upd.ConsecutiveFailures = 10, 20, 5
	upd.FailingSince, upd.LastDeliveryAt = ptr(at(-time.Hour)), ptr(at(time.Hour))
	upd.UpdatedAt = at(5 * time.Hour)
	var seen webhooks.Endpoint
	res, err := e.s.UpdateWebhookEndpoint(e.ctx, w.ID, ep.ID, func(x *webhooks.Endpoint) error {
		seen = *x
		v := upd
		v.ID, v.WorkspaceID, v.CreatedAt = x.ID+7, other.ID, at(-100*time.Hour) // all must be ignored
		*x = v
		return nil
	})
	e.must(err, "UpdateWebhookEndpoint")
	if seen.ID != ep.ID || seen.URL != ep.URL || seen.Secret != ep.Secret || fmt.Sprint(seen.Events) != fmt.Sprint(ep.Events) {
		e.t.Errorf("fn saw %+v, want the stored endpoint %+v", seen, *ep)
	}
	want := upd
	want.ID, want.WorkspaceID, want.CreatedAt = ep.ID, w.ID, ep.CreatedAt
	e.same("UpdateWebhookEndpoint result", res, &want)
	e.same("WebhookEndpoint after UpdateWebhookEndpoint", e.getEndpoint(w.ID, ep.ID), &want)
	list, _, err := e.s.ListWebhookEndpoints(e.ctx, other.ID, page(1, 100))
	e.must(err, "ListWebhookEndpoints")
	if len(list) != 0 {
		e.t.Errorf("UpdateWebhookEndpoint moved the endpoint to another workspace: %+v", list)
	}

	// Clearing optional fields.
	res, err = e.s.UpdateWebhookEndpoint(e.ctx, w.ID, ep.ID, func(x *webhooks.Endpoint) error {
		x.PrevSecret, x.PrevSecretUntil, x.FailingSince, x.DisabledReason, x.IsActive = "", nil, nil, "", true
		return nil
	})
	e.must(err, "UpdateWebhookEndpoint clearing fields")
	if res.PrevSecretUntil != nil || res.FailingSince != nil || !res.IsActive {
		e.t.Errorf("UpdateWebhookEndpoint clearing fields = %+v", res)
	}
	e.recent("UpdatedAt of an update that did not set it", res.UpdatedAt)
	e.same("WebhookEndpoint after clearing fields", e.getEndpoint(w.ID, ep.ID), res)
	want = *res

	// An error from fn aborts with nothing written.
	boom := errors.New("boom")
	_, err = e.s.UpdateWebhookEndpoint(e.ctx, w.ID, ep.ID, func(x *webhooks.Endpoint) error {
		x.URL, x.SuccessCount = "https://half.test", 99
		return boom
	})
	if !errors.Is(err, boom) {
		e.t.Errorf("UpdateWebhookEndpoint returned %v, want fn's error", err)
	}
	e.same("WebhookEndpoint after an aborted UpdateWebhookEndpoint", e.getEndpoint(w.ID, ep.ID), &want)

	called := false
	_, err = e.s.UpdateWebhookEndpoint(e.ctx, w.ID, ep.ID+1000, func(*webhooks.Endpoint) error { called = true; return nil })
	e.notFound(err, "UpdateWebhookEndpoint of an unknown id")
	if called {
		e.t.Error("UpdateWebhookEndpoint of an unknown id called fn")
	}
}

func testWebhookEndpointUpdateConcurrent(e *env) {
	u := e.user("whc")
	w := e.workspace("whc", u.ID)
	ep := e.endpoint(w.ID)
	const writers = 12
	errs := parallel(writers, func(int) error {
		_, err := e.s.UpdateWebhookEndpoint(e.ctx, w.ID, ep.ID, func(x *webhooks.Endpoint) error {
			x.SuccessCount++
			x.ConsecutiveFailures += 2
			return nil
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			e.t.Errorf("concurrent UpdateWebhookEndpoint %d: %v", i, err)
		}
	}
	got := e.getEndpoint(w.ID, ep.ID)
	if got.SuccessCount != writers || got.ConsecutiveFailures != 2*writers {
		e.t.Errorf("after %d concurrent increments: SuccessCount %d, ConsecutiveFailures %d; want %d and %d: updates were lost",
			writers, got.SuccessCount, got.ConsecutiveFailures, writers, 2*writers)
	}
}

func testWebhookEndpointListPaging(e *env) {
	u := e.user("whl")
	w, other := e.workspace("whl", u.ID), e.workspace("whl-other", u.ID)
	var want []int64
	for i := range 7 {
		want = append(want, e.endpoint(w.ID).ID)
		if i%3 == 0 {
			e.endpoint(other.ID)
		}
	}
	checkPaging(e, "ListWebhookEndpoints", e.listEndpoints(w.ID), endpointID, want)
}

func testWebhookEndpointListSortFilter(e *env) {
	u := e.user("whs")
	w := e.workspace("whs", u.ID)
	created := []time.Duration{3 * time.Hour, time.Hour, 5 * time.Hour, time.Hour, 4 * time.Hour, 0}
	var eps []*webhooks.Endpoint
	for _, c := range created {
		eps = append(eps, e.endpoint(w.ID, func(x *webhooks.Endpoint) { x.CreatedAt, x.UpdatedAt = at(c), at(c+time.Minute) }))
	}
	list := e.listEndpoints(w.ID)
	checkSorts(e, "ListWebhookEndpoints", len(eps), list, endpointID,
		byInt("id", endpointID),
		byTime("created_at", func(x webhooks.Endpoint) time.Time { return x.CreatedAt }),
	)
	// Created filters are strict.
	checkIDs(e, "ListWebhookEndpoints created_after 3h", list, core.ListParams{Filter: core.Filter{CreatedAfter: at(3 * time.Hour)}},
		endpointID, eps[2].ID, eps[4].ID)
	checkIDs(e, "ListWebhookEndpoints created_before 1h", list, core.ListParams{Filter: core.Filter{CreatedBefore: at(time.Hour)}},
		endpointID, eps[5].ID)
}

func testWebhookEndpointListSearch(e *env) {
	u := e.user("whq")
	w, other := e.workspace("whq", u.ID), e.workspace("whq-other", u.ID)
	mk := func(url string) int64 { return e.endpoint(w.ID, func(x *webhooks.Endpoint) { x.URL = url }).ID }
	pct := mk("https://Hooks.Example.test/100%25/done")
	under := mk("https://hooks.example.test/a_b")
	x := mk("https://hooks.example.test/aXb")
	plain := mk("https://receiver.test/in")
	e.endpoint(other.ID, func(x *webhooks.Endpoint) { x.URL = "https://hooks.example.test/other" })
	list := e.listEndpoints(w.ID)
	s := func(q string) core.ListParams { return core.ListParams{Filter: core.Filter{Search: q}} }
	checkIDs(e, `search "HOOKS.example" (case-insensitive)`, list, s("HOOKS.example"), endpointID, pct, under, x)
	checkIDs(e, `search "%" (literal)`, list, s("%"), endpointID, pct)
	checkIDs(e, `search "a_b" (literal _)`, list, s("a_b"), endpointID, under)
	checkIDs(e, `search "receiver"`, list, s("receiver"), endpointID, plain)
	checkIDs(e, `search "whsec" (the secret is not searched)`, list, s("whsec"), endpointID)
	p := s("hooks")
	p.Page, p.PerPage = 2, 2
	checkPage(e, `search "hooks", page 2 of 2 per page`, list, p, endpointID, 3, x)
}

func testWebhookEndpointDeleteCascades(e *env) {
	u := e.user("whd")
	w := e.workspace("whd", u.ID)
	a, b := e.endpoint(w.ID), e.endpoint(w.ID)
	da1, da2 := e.deliver(w.ID, a.ID), e.deliver(w.ID, a.ID)
	db := e.deliver(w.ID, b.ID)

	e.must(e.s.DeleteWebhookEndpoint(e.ctx, w.ID, a.ID), "DeleteWebhookEndpoint")
	for _, d := range []webhooks.Delivery{da1, da2} {
		_, err := e.s.WebhookDelivery(e.ctx, w.ID, d.ID)
		e.notFound(err, "WebhookDelivery of a deleted endpoint")
		e.notClaimable("a delivery of a deleted endpoint", d.ID, at(time.Hour))
	}
	_, _, err := e.s.ListWebhookDeliveries(e.ctx, w.ID, webhooks.DeliveryFilter{EndpointID: a.ID}, page(1, 10))
	e.notFound(err, "ListWebhookDeliveries of a deleted endpoint")
	due, err := e.s.DueWebhookDeliveries(e.ctx, at(time.Hour), 100)
	e.must(err, "DueWebhookDeliveries")
	if fmt.Sprint(ids(due, deliveryID)) != fmt.Sprint([]int64{db.ID}) {
		e.t.Errorf("DueWebhookDeliveries after deleting an endpoint = ids %v, want only the other endpoint's %d", ids(due, deliveryID), db.ID)
	}
	e.same("the other endpoint's delivery", e.getDelivery(w.ID, db.ID), &db)
	// The events stay: they are the workspace's, not the endpoint's.
	_, err = e.s.WebhookEvent(e.ctx, w.ID, da1.EventID)
	e.must(err, "WebhookEvent of a deleted endpoint's delivery")
}

func testWebhookEvents(e *env) {
	u := e.user("whe")
	w, other := e.workspace("whe", u.ID), e.workspace("whe-other", u.ID)
	a, b := e.endpoint(w.ID), e.endpoint(w.ID)

	zone := time.FixedZone("UTC+01:00", 3600)
	t0 := time.Date(2026, 1, 15, 11, 30, 0, 123456789, zone)
	ev := &webhooks.Event{ID: "evt_storetest_events1", WorkspaceID: w.ID, Type: "post.created",
		Payload: json.RawMessage(`{"id":1,"title":"Hello \"world\" ✓","tags":["a","b"]}`), CreatedAt: t0}
	in := []webhooks.Delivery{
		{WorkspaceID: w.ID, EndpointID: a.ID, EventID: ev.ID, EventType: ev.Type, Status: webhooks.StatusPending, NextAttemptAt: ptr(t0)},
		{WorkspaceID: w.ID, EndpointID: b.ID, EventID: ev.ID, EventType: ev.Type, Status: webhooks.StatusPending, NextAttemptAt: ptr(t0.Add(time.Second))},
	}
	ds, err := e.s.CreateWebhookEvent(e.ctx, ev, in)
	e.must(err, "CreateWebhookEvent")
	if len(ds) != 2 {
		e.t.Fatalf("CreateWebhookEvent returned %d deliveries, want 2", len(ds))
	}
	if ds[0].ID <= 0 || ds[1].ID <= 0 || ds[0].ID == ds[1].ID {
		e.t.Errorf("delivery ids %d, %d: want two distinct ids", ds[0].ID, ds[1].ID)
	}
	for i, d := range ds {
		if d.EndpointID != in[i].EndpointID || d.EventID != ev.ID || d.EventType != ev.Type || d.WorkspaceID != w.ID ||
			d.Status != webhooks.StatusPending || d.Attempt != 0 || d.LockedUntil != nil || d.NextAttemptAt == nil {
			e.t.Errorf("delivery %d = %+v, want a pending delivery of the event to endpoint %d", i, d, in[i].EndpointID)
		}
		if d.CreatedAt.IsZero() || d.UpdatedAt.IsZero() {
			e.t.Errorf("delivery %d has no CreatedAt/UpdatedAt: %+v", i, d)
		}
		e.same(fmt.Sprintf("WebhookDelivery %d after CreateWebhookEvent", i), e.getDelivery(w.ID, d.ID), &d)
	}
	if nd := ds[1].NextAttemptAt; nd == nil || nd.Sub(t0.Add(time.Second)).Abs() >= time.Microsecond {
		e.t.Errorf("NextAttemptAt = %v, want %s within a microsecond", nd, t0.Add(time.Second))
	}

	got, err := e.s.WebhookEvent(e.ctx, w.ID, ev.ID)
	e.must(err, "WebhookEvent")
	e.same("WebhookEvent", got, ev)
	if d := got.CreatedAt.Sub(t0); d <= -time.Microsecond || d >= time.Microsecond {
		e.t.Errorf("Event.CreatedAt = %s, want %s within a microsecond", got.CreatedAt, t0)
	}
	var v map[string]any
	if err := json.Unmarshal(got.Payload, &v); err != nil || v["title"] != `Hello "world" ✓` {
		e.t.Errorf("Payload = %s (%v), want the published JSON", got.Payload, err)
	}
	_, err = e.s.WebhookEvent(e.ctx, w.ID, "evt_missing")
	e.notFound(err, "WebhookEvent of an unknown id")
	_, err = e.s.WebhookEvent(e.ctx, other.ID, ev.ID)
	e.notFound(err, "WebhookEvent of another workspace")

	// An event no endpoint subscribes to is stored with no deliveries.
	quiet := &webhooks.Event{ID: "evt_storetest_events2", WorkspaceID: w.ID, Type: "user.created", Payload: json.RawMessage(`{}`), CreatedAt: at(0)}
	ds, err = e.s.CreateWebhookEvent(e.ctx, quiet, nil)
	e.must(err, "CreateWebhookEvent without deliveries")
	if len(ds) != 0 {
		e.t.Errorf("CreateWebhookEvent without deliveries returned %d", len(ds))
	}
	got, err = e.s.WebhookEvent(e.ctx, w.ID, quiet.ID)
	e.must(err, "WebhookEvent without deliveries")
	e.same("WebhookEvent without deliveries", got, quiet)

	// The same event id twice is refused.
	if _, err := e.s.CreateWebhookEvent(e.ctx, &webhooks.Event{ID: ev.ID, WorkspaceID: w.ID, Type: "post.created", Payload: json.RawMessage(`{}`)}, nil); err == nil {
		e.t.Error("CreateWebhookEvent with an existing event id succeeded")
	}
	_, err = e.s.CreateWebhookEvent(e.ctx, &webhooks.Event{ID: "evt_storetest_ghost", WorkspaceID: 999_999, Type: "post.created", Payload: json.RawMessage(`{}`)}, nil)
	e.notFound(err, "CreateWebhookEvent in a missing workspace")
}

// testWebhookEventAtomic: a delivery that cannot be stored (an endpoint of
// another workspace, or none) stores nothing of the event.
func testWebhookEventAtomic(e *env) {
	u := e.user("wha")
	w, other := e.workspace("wha", u.ID), e.workspace("wha-other", u.ID)
	mine, theirs := e.endpoint(w.ID), e.endpoint(other.ID)
	for _, bad := range []struct {
		what       string
		endpointID int64
	}{{"an endpoint of another workspace", theirs.ID}, {"a missing endpoint", theirs.ID + 1000}} {
		ev := &webhooks.Event{ID: fmt.Sprintf("evt_storetest_atomic%d", bad.endpointID), WorkspaceID: w.ID, Type: "post.created",
			Payload: json.RawMessage(`{}`), CreatedAt: at(0)}
		ds := []webhooks.Delivery{
			{WorkspaceID: w.ID, EndpointID: mine.ID, EventID: ev.ID, EventType: ev.Type, Status: webhooks.StatusPending, NextAttemptAt: ptr(at(0))},
			{WorkspaceID: w.ID, EndpointID: bad.endpointID, EventID: ev.ID, EventType: ev.Type, Status: webhooks.StatusPending, NextAttemptAt: ptr(at(0))},
		}
		_, err := e.s.CreateWebhookEvent(e.ctx, ev, ds)
		e.notFound(err, "CreateWebhookEvent with a delivery to "+bad.what)
		_, err = e.s.WebhookEvent(e.ctx, w.ID, ev.ID)
		e.notFound(err, "the event of a refused CreateWebhookEvent")
	}
	checkIDs(e, "deliveries after refused CreateWebhookEvents", e.listDeliveries(w.ID, webhooks.DeliveryFilter{EndpointID: mine.ID}), page(1, 10), deliveryID)
	checkIDs(e, "other workspace's deliveries after refused CreateWebhookEvents", e.listDeliveries(other.ID, webhooks.DeliveryFilter{EndpointID: theirs.ID}), page(1, 10), deliveryID)
	due, err := e.s.DueWebhookDeliveries(e.ctx, at(time.Hour), 10)
	e.must(err, "DueWebhookDeliveries")
	if len(due) != 0 {
		e.t.Errorf("DueWebhookDeliveries after refused CreateWebhookEvents = %d deliveries, want none", len(due))
	}
}

func testWebhookDeliveryUpdate(e *env) {
	u := e.user("whdu")
	w, other := e.workspace("whdu", u.ID), e.workspace("whdu-other", u.ID)
	ep, ep2 := e.endpoint(w.ID), e.endpoint(w.ID)
	d := e.deliver(w.ID, ep.ID, func(d *webhooks.Delivery) {
		d.Status, d.Attempt, d.NextAttemptAt = webhooks.StatusFailed, 8, nil
		d.ResponseCode, d.ResponseBody, d.ResponseTimeMs, d.Error = 500, "oops", 120, ""
	})
	e.same("WebhookDelivery", e.getDelivery(w.ID, d.ID), &d)

	// A manual retry: every field fn changes is written but the identity
	// and the creation time.
	zone := time.FixedZone("UTC-07:00", -7*3600)
	next := time.Date(2026, 1, 16, 1, 2, 3, 456789123, zone)
	var seen webhooks.Delivery
	res, err := e.s.UpdateWebhookDelivery(e.ctx, w.ID, d.ID, func(x *webhooks.Delivery) error {
		seen = *x
		x.Status, x.Attempt, x.NextAttemptAt = webhooks.StatusPending, 0, ptr(next)
		x.ResponseCode, x.ResponseBody, x.ResponseTimeMs, x.Error = 0, "", 0, "manual retry"
		x.DeliveredAt, x.UpdatedAt = ptr(at(time.Hour)), at(2*time.Hour)
		x.ID, x.WorkspaceID, x.EndpointID, x.CreatedAt = x.ID+9, other.ID, ep2.ID, at(-time.Hour) // ignored
		return nil
	})
	e.must(err, "UpdateWebhookDelivery")
	if seen.ID != d.ID || seen.Status != webhooks.StatusFailed || seen.Attempt != 8 || seen.ResponseBody != "oops" {
		e.t.Errorf("fn saw %+v, want the stored delivery", seen)
	}
	want := d
	want.Status, want.Attempt, want.NextAttemptAt = webhooks.StatusPending, 0, ptr(next.Truncate(time.Microsecond))
	want.ResponseCode, want.ResponseBody, want.ResponseTimeMs, want.Error = 0, "", 0, "manual retry"
	want.DeliveredAt, want.UpdatedAt = ptr(at(time.Hour)), at(2*time.Hour)
	if res.NextAttemptAt != nil && res.NextAttemptAt.Equal(next) {
		want.NextAttemptAt = ptr(next) // a store keeping nanoseconds
	}
	e.same("UpdateWebhookDelivery result", res, &want)
	e.same("WebhookDelivery after UpdateWebhookDelivery", e.getDelivery(w.ID, d.ID), &want)
	checkIDs(e, "the endpoint's deliveries after UpdateWebhookDelivery", e.listDeliveries(w.ID, webhooks.DeliveryFilter{EndpointID: ep.ID}), page(1, 10), deliveryID, d.ID)
	e.claimDelivery(d.ID, next, next.Add(time.Minute)) // due again

	// An error from fn aborts with nothing written.
	before := e.getDelivery(w.ID, d.ID)
	boom := errors.New("boom")
	_, err = e.s.UpdateWebhookDelivery(e.ctx, w.ID, d.ID, func(x *webhooks.Delivery) error {
		x.Status, x.Attempt = webhooks.StatusSuccess, 99
		return boom
	})
	if !errors.Is(err, boom) {
		e.t.Errorf("UpdateWebhookDelivery returned %v, want fn's error", err)
	}
	e.same("WebhookDelivery after an aborted UpdateWebhookDelivery", e.getDelivery(w.ID, d.ID), before)

	called := false
	_, err = e.s.UpdateWebhookDelivery(e.ctx, w.ID, d.ID+1000, func(*webhooks.Delivery) error { called = true; return nil })
	e.notFound(err, "UpdateWebhookDelivery of an unknown id")
	if called {
		e.t.Error("UpdateWebhookDelivery of an unknown id called fn")
	}
	_, err = e.s.WebhookDelivery(e.ctx, w.ID, d.ID+1000)
	e.notFound(err, "WebhookDelivery of an unknown id")
}

func testWebhookDeliveryList(e *env) {
	u := e.user("whdl")
	w := e.workspace("whdl", u.ID)
	ep, ep2 := e.endpoint(w.ID), e.endpoint(w.ID)
	statuses := []string{webhooks.StatusPending, webhooks.StatusSuccess, webhooks.StatusFailed, webhooks.StatusRetrying,
		webhooks.StatusSuccess, webhooks.StatusSuccess}
	created := []time.Duration{2 * time.Hour, 0, 5 * time.Hour, time.Hour, 3 * time.Hour, time.Hour}
	var all []int64
	byStatus := map[string][]int64{}
	for i, st := range statuses {
		d := e.deliver(w.ID, ep.ID, func(d *webhooks.Delivery) {
			d.Status, d.CreatedAt, d.UpdatedAt = st, at(created[i]), at(created[i])
		})
		e.deliver(w.ID, ep2.ID) // another endpoint's, never listed
		all = append([]int64{d.ID}, all...)
		byStatus[st] = append([]int64{d.ID}, byStatus[st]...)
	}
	list := e.listDeliveries(w.ID, webhooks.DeliveryFilter{EndpointID: ep.ID})

	// Newest first unless sorted, paged.
	checkIDs(e, "ListWebhookDeliveries (newest first)", list, core.ListParams{}, deliveryID, all...)
	checkPage(e, "ListWebhookDeliveries page 2 of 4 per page", list, page(2, 4), deliveryID, len(all), all[4:]...)
	checkPage(e, "ListWebhookDeliveries page 9", list, page(9, 4), deliveryID, len(all))
	checkSorts(e, "ListWebhookDeliveries", len(all), list, deliveryID,
		byInt("id", deliveryID),
		byTime("created_at", func(x webhooks.Delivery) time.Time { return x.CreatedAt }),
	)

	// Filtered by status, still newest first.
	for _, st := range webhooks.Statuses {
		checkIDs(e, "ListWebhookDeliveries status "+st, e.listDeliveries(w.ID, webhooks.DeliveryFilter{EndpointID: ep.ID, Status: st}),
			core.ListParams{}, deliveryID, byStatus[st]...)
	}
	checkPage(e, "ListWebhookDeliveries status success, page 1 of 2 per page",
		e.listDeliveries(w.ID, webhooks.DeliveryFilter{EndpointID: ep.ID, Status: webhooks.StatusSuccess}), page(1, 2),
		deliveryID, 3, byStatus[webhooks.StatusSuccess][:2]...)

	// Listed rows equal what a read returns.
	got, _, err := list(page(1, 1))
	e.must(err, "ListWebhookDeliveries")
	if len(got) == 1 {
		e.same("listed delivery", got[0], *e.getDelivery(w.ID, got[0].ID))
	}

	_, _, err = e.s.ListWebhookDeliveries(e.ctx, w.ID, webhooks.DeliveryFilter{EndpointID: ep.ID + 1000}, page(1, 10))
	e.notFound(err, "ListWebhookDeliveries of an unknown endpoint")
}

func testWebhookClaim(e *env) {
	u := e.user("whcl")
	w := e.workspace("whcl", u.ID)
	ep := e.endpoint(w.ID)
	d := e.deliver(w.ID, ep.ID) // pending, due at base

	e.notClaimable("a delivery not yet due", d.ID, at(-time.Microsecond))
	cl := e.claimWebhook(d.ID, at(0), at(time.Minute)) // due exactly now
	c := cl.Delivery
	want := d
	want.Attempt, want.LockedUntil, want.UpdatedAt = 1, ptr(at(time.Minute)), c.UpdatedAt
	e.same("claimed delivery", c, want)
	e.same("WebhookDelivery after a claim", e.getDelivery(w.ID, d.ID), &c)
	// The claim brings what the attempt sends: the delivery's endpoint and
	// event, as stored.
	e.same("claimed delivery's endpoint", cl.Endpoint, *e.getEndpoint(w.ID, ep.ID))
	ev, err := e.s.WebhookEvent(e.ctx, w.ID, d.EventID)
	e.must(err, "WebhookEvent")
	e.same("claimed delivery's event", cl.Event, *ev)

	e.notClaimable("a delivery leased to another worker", d.ID, at(30*time.Second))
	e.notClaimable("a delivery leased to another worker, just before the lease ends", d.ID, at(time.Minute-time.Microsecond))
	c2 := e.claimDelivery(d.ID, at(time.Minute), at(2*time.Minute)) // the lease ended
	if c2.Attempt != 2 || c2.LockedUntil == nil || !c2.LockedUntil.Equal(at(2*time.Minute)) {
		e.t.Errorf("reclaim after the lease ended: attempt %d lease %v, want 2 and %s", c2.Attempt, c2.LockedUntil, at(2*time.Minute))
	}

	e.notClaimable("an unknown delivery", d.ID+1000, at(time.Hour))

	for _, st := range []string{webhooks.StatusSuccess, webhooks.StatusFailed} {
		x := e.deliver(w.ID, ep.ID, func(d *webhooks.Delivery) { d.Status = st })
		e.notClaimable("a delivery in status "+st, x.ID, at(time.Hour))
	}
	// A delivery of an endpoint its owner disabled is claimed all the same
	// (the caller decides), with the endpoint as it is now, of another
	// workspace's delivery too (a claim names only the delivery).
	other := e.workspace("whcl-other", u.ID)
	off := e.endpoint(other.ID, func(x *webhooks.Endpoint) { x.IsActive, x.ConsecutiveFailures = false, 2 })
	od := e.deliver(other.ID, off.ID)
	oc := e.claimWebhook(od.ID, at(time.Hour), at(2*time.Hour))
	e.same("claimed delivery of a disabled endpoint: its endpoint", oc.Endpoint, *e.getEndpoint(other.ID, off.ID))
	if oc.Delivery.WorkspaceID != other.ID || oc.Event.ID != od.EventID || oc.Event.WorkspaceID != other.ID {
		e.t.Errorf("claim of another workspace's delivery = %+v, want its own workspace's rows", oc)
	}

	r := e.deliver(w.ID, ep.ID, func(d *webhooks.Delivery) {
		d.Status, d.Attempt, d.NextAttemptAt = webhooks.StatusRetrying, 3, ptr(at(5*time.Minute))
	})
	e.notClaimable("a retrying delivery not yet due", r.ID, at(4*time.Minute))
	if c := e.claimDelivery(r.ID, at(6*time.Minute), at(7*time.Minute)); c.Attempt != 4 || c.Status != webhooks.StatusRetrying {
		e.t.Errorf("claimed retrying delivery: attempt %d status %q, want 4 and retrying", c.Attempt, c.Status)
	}

	// Times with nanoseconds in another zone come back in UTC.
	zone := time.FixedZone("UTC+05:45", 5*3600+45*60)
	n := e.deliver(w.ID, ep.ID)
	until := time.Date(2026, 1, 15, 16, 20, 1, 999999999, zone)
	c3 := e.claimDelivery(n.ID, at(time.Second).In(zone), until)
	if c3.LockedUntil == nil || c3.LockedUntil.Location() != time.UTC || c3.LockedUntil.Sub(until).Abs() >= time.Microsecond {
		e.t.Errorf("LockedUntil = %v, want %s in UTC within a microsecond", c3.LockedUntil, until)
	}
}

func testWebhookClaimRace(e *env) {
	u := e.user("whr")
	w := e.workspace("whr", u.ID)
	ep := e.endpoint(w.ID)
	const workers = 16
	race := func(round string, id int64, now time.Time, wantAttempt int) {
		e.t.Helper()
		var mu sync.Mutex
		var winners []webhooks.Delivery
		errs := parallel(workers, func(i int) error {
			cs, err := e.s.ClaimWebhookDeliveries(e.ctx, []int64{id}, now, now.Add(time.Duration(i+1)*time.Minute))
			if len(cs) == 1 {
				mu.Lock()
				winners = append(winners, cs[0].Delivery)
				mu.Unlock()
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				e.t.Errorf("%s: claimer %d: %v", round, i, err)
			}
		}
		if len(winners) != 1 {
			e.t.Errorf("%s: %d of %d concurrent claimers won, want exactly 1", round, len(winners), workers)
			return
		}
		got := e.getDelivery(w.ID, id)
		if got.Attempt != wantAttempt || winners[0].Attempt != wantAttempt {
			e.t.Errorf("%s: attempt %d (winner saw %d), want %d: each claim must count once", round, got.Attempt, winners[0].Attempt, wantAttempt)
		}
		if got.LockedUntil == nil || winners[0].LockedUntil == nil || !got.LockedUntil.Equal(*winners[0].LockedUntil) {
			e.t.Errorf("%s: stored lease %v, winner's %v: want the winner's", round, got.LockedUntil, winners[0].LockedUntil)
		}
	}
	for i := range 3 {
		d := e.deliver(w.ID, ep.ID)
		race(fmt.Sprintf("round %d", i), d.ID, at(0), 1)
		// Once every lease has ended, they race again.
		race(fmt.Sprintf("round %d after the lease ended", i), d.ID, at(time.Hour), 2)
	}
}

func testWebhookFinish(e *env) {
	u := e.user("whf")
	w := e.workspace("whf", u.ID)
	// An endpoint in a run of failures: a success ends it.
	ep := e.endpoint(w.ID, func(x *webhooks.Endpoint) {
		x.SuccessCount, x.FailureCount, x.ConsecutiveFailures, x.FailingSince = 5, 7, 3, ptr(at(-time.Hour))
	})
	d := e.deliver(w.ID, ep.ID)
	c := e.claimDelivery(d.ID, at(0), at(time.Minute))

	// A success: the delivery and the endpoint are written together.
	zone := time.FixedZone("UTC-02:00", -2*3600)
	delivered := time.Date(2026, 1, 15, 8, 30, 1, 500000000, zone)
	out := c
	out.Status, out.NextAttemptAt, out.DeliveredAt = webhooks.StatusSuccess, nil, ptr(delivered)
	out.ResponseCode, out.ResponseBody, out.ResponseTimeMs, out.Error = 200, `{"ok":true}`, 42, ""
	if e.finish("FinishWebhookAttempts of a success", &out, &webhooks.AttemptOutcome{Success: true, At: delivered}) {
		e.t.Error("FinishWebhookAttempts of a success reported the endpoint disabled")
	}
	got := e.getDelivery(w.ID, d.ID)
	if got.Status != webhooks.StatusSuccess || got.LockedUntil != nil || got.NextAttemptAt != nil || got.Attempt != 1 ||
		got.ResponseCode != 200 || got.ResponseBody != `{"ok":true}` || got.ResponseTimeMs != 42 || got.Error != "" ||
		got.DeliveredAt == nil || !got.DeliveredAt.Equal(delivered) || got.DeliveredAt.Location() != time.UTC {
		e.t.Errorf("delivery after FinishWebhookAttempts = %+v, want the outcome written, lease cleared, attempt 1, times in UTC", got)
	}
	e.same("the caller's delivery after FinishWebhookAttempts (set to the stored row)", out, *got)
	e.recent("the delivery's UpdatedAt after FinishWebhookAttempts", got.UpdatedAt)
	want := *ep
	want.SuccessCount, want.ConsecutiveFailures, want.FailingSince, want.LastDeliveryAt = 6, 0, nil, ptr(delivered)
	gotEp := e.getEndpoint(w.ID, ep.ID)
	e.recent("the endpoint's UpdatedAt after FinishWebhookAttempts", gotEp.UpdatedAt)
	want.UpdatedAt = gotEp.UpdatedAt
	e.same("endpoint after a success (SuccessCount+1, the failure run ended, LastDeliveryAt)", gotEp, &want)
	e.notClaimable("a delivered delivery", d.ID, at(time.Hour))

	// Finishing the same attempt again is refused: the lease is gone.
	again := c
	again.Status = webhooks.StatusFailed
	e.refused("FinishWebhookAttempts of a finished attempt", &again, &webhooks.AttemptOutcome{At: at(time.Minute)})
	e.same("delivery after a refused FinishWebhookAttempts", e.getDelivery(w.ID, d.ID), got)
	e.same("endpoint after a refused FinishWebhookAttempts", e.getEndpoint(w.ID, ep.ID), gotEp)

	// A failure scheduling a retry makes the delivery due then, and starts
	// a run of failures at its end; the lease is compared at the store's
	// precision, so the worker's own `until` (nanoseconds, any zone)
	// matches it.
	r := e.deliver(w.ID, ep.ID)
	until := time.Date(2026, 1, 15, 19, 31, 2, 123456789, time.FixedZone("UTC+09:00", 9*3600))
	rc := e.claimDelivery(r.ID, at(0), until)
	rc.LockedUntil = ptr(until)
	rc.Status, rc.NextAttemptAt, rc.ResponseCode, rc.ResponseBody, rc.Error = webhooks.StatusRetrying, ptr(at(5*time.Minute)), 0, "", "timeout"
	failed := at(time.Second)
	e.finish("FinishWebhookAttempts with a retry (the claim's own until: nanoseconds, another zone)", &rc, &webhooks.AttemptOutcome{At: failed})
	got = e.getDelivery(w.ID, r.ID)
	if got.Status != webhooks.StatusRetrying || got.LockedUntil != nil || got.Error != "timeout" || got.NextAttemptAt == nil || !got.NextAttemptAt.Equal(at(5*time.Minute)) {
		e.t.Errorf("delivery after a failed attempt = %+v, want retrying at %s, lease cleared", got, at(5*time.Minute))
	}
	gotEp = e.getEndpoint(w.ID, ep.ID)
	if gotEp.SuccessCount != 6 || gotEp.FailureCount != 8 || gotEp.ConsecutiveFailures != 1 || !gotEp.IsActive ||
		gotEp.FailingSince == nil || !gotEp.FailingSince.Equal(failed) || gotEp.LastDeliveryAt == nil || !gotEp.LastDeliveryAt.Equal(failed) {
		e.t.Errorf("endpoint after a failure: %+v; want success 6, failure 8, consecutive 1, failing and last delivery since %s, active", gotEp, failed)
	}
	e.notClaimable("a retrying delivery before its next attempt", r.ID, at(5*time.Minute-time.Microsecond))
	rc2 := e.claimDelivery(r.ID, at(5*time.Minute), at(6*time.Minute))
	if rc2.Attempt != 2 {
		e.t.Errorf("second attempt: Attempt = %d, want 2", rc2.Attempt)
	}

	// A second failure keeps the run's start.
	rc2.Status, rc2.NextAttemptAt = webhooks.StatusFailed, nil
	e.finish("FinishWebhookAttempts of a second failure", &rc2, &webhooks.AttemptOutcome{At: at(5*time.Minute + time.Second)})
	gotEp = e.getEndpoint(w.ID, ep.ID)
	if gotEp.FailureCount != 9 || gotEp.ConsecutiveFailures != 2 || gotEp.FailingSince == nil || !gotEp.FailingSince.Equal(failed) ||
		!gotEp.LastDeliveryAt.Equal(at(5*time.Minute+time.Second)) {
		e.t.Errorf("endpoint after a second failure: %+v; want failure 9, consecutive 2, failing since %s still", gotEp, failed)
	}

	// Without an outcome only the delivery is written.
	n := e.deliver(w.ID, ep.ID)
	nc := e.claimDelivery(n.ID, at(0), at(time.Minute))
	nc.Status, nc.NextAttemptAt, nc.Error = webhooks.StatusFailed, nil, "disabled"
	e.finish("FinishWebhookAttempts without an outcome", &nc, nil)
	if got := e.getDelivery(w.ID, n.ID); got.Status != webhooks.StatusFailed || got.Error != "disabled" || got.LockedUntil != nil {
		e.t.Errorf("delivery after a FinishWebhookAttempts without an outcome = %+v", got)
	}
	e.same("endpoint after a FinishWebhookAttempts without an outcome", e.getEndpoint(w.ID, ep.ID), gotEp)
}

func testWebhookFinishRefused(e *env) {
	u := e.user("whfr")
	w := e.workspace("whfr", u.ID)
	ep := e.endpoint(w.ID)
	fail := &webhooks.AttemptOutcome{At: at(time.Minute), Disable: webhooks.DisabledGone}

	// Worker A's lease ends, worker B claims: A's finish is refused and
	// writes nothing (neither the delivery nor the endpoint, which it would
	// have disabled), B's goes through.
	d := e.deliver(w.ID, ep.ID)
	a := e.claimDelivery(d.ID, at(0), at(time.Minute))
	b := e.claimDelivery(d.ID, at(2*time.Minute), at(3*time.Minute))
	beforeEp := e.getEndpoint(w.ID, ep.ID)
	a.Status, a.ResponseCode, a.NextAttemptAt = webhooks.StatusFailed, 410, nil
	e.refused("FinishWebhookAttempts after another claim", &a, fail)
	e.refused("FinishWebhookAttempts after another claim, without an outcome", &a, nil)
	e.same("delivery after a refused FinishWebhookAttempts", e.getDelivery(w.ID, d.ID), &b)
	e.same("endpoint after a refused FinishWebhookAttempts", e.getEndpoint(w.ID, ep.ID), beforeEp)
	b.Status, b.ResponseCode, b.NextAttemptAt = webhooks.StatusSuccess, 204, nil
	e.finish("FinishWebhookAttempts of the current lease", &b, &webhooks.AttemptOutcome{Success: true, At: at(3 * time.Minute)})
	if got := e.getDelivery(w.ID, d.ID); got.Status != webhooks.StatusSuccess || got.ResponseCode != 204 || got.Attempt != 2 {
		e.t.Errorf("delivery after the current lease finished = %+v", got)
	}
	if got := e.getEndpoint(w.ID, ep.ID); got.SuccessCount != beforeEp.SuccessCount+1 || got.FailureCount != beforeEp.FailureCount || !got.IsActive {
		e.t.Errorf("endpoint after the current lease finished = %+v; want one success counted, for the current lease only", got)
	}

	// A delivery named with another endpoint (of the same workspace) is
	// refused, and neither endpoint is counted.
	ep2 := e.endpoint(w.ID)
	d2 := e.deliver(w.ID, ep.ID)
	c2 := e.claimDelivery(d2.ID, at(0), at(time.Minute))
	beforeEp, beforeEp2 := e.getEndpoint(w.ID, ep.ID), e.getEndpoint(w.ID, ep2.ID)
	wrong := c2
	wrong.EndpointID = ep2.ID
	wrong.Status = webhooks.StatusFailed
	e.refused("FinishWebhookAttempts naming another endpoint", &wrong, fail)
	e.same("delivery after FinishWebhookAttempts naming another endpoint", e.getDelivery(w.ID, d2.ID), &c2)
	e.same("its endpoint after FinishWebhookAttempts naming another endpoint", e.getEndpoint(w.ID, ep.ID), beforeEp)
	e.same("the other endpoint after FinishWebhookAttempts naming it", e.getEndpoint(w.ID, ep2.ID), beforeEp2)

	// A delivery without a lease.
	nolease := c2
	nolease.LockedUntil = nil
	e.refused("FinishWebhookAttempts without a lease", &nolease, fail)
	e.same("delivery after FinishWebhookAttempts without a lease", e.getDelivery(w.ID, d2.ID), &c2)

	// A delivery deleted with its endpoint mid-attempt.
	gone := e.endpoint(w.ID)
	d3 := e.deliver(w.ID, gone.ID)
	c3 := e.claimDelivery(d3.ID, at(0), at(time.Minute))
	e.must(e.s.DeleteWebhookEndpoint(e.ctx, w.ID, gone.ID), "DeleteWebhookEndpoint")
	c3.Status = webhooks.StatusSuccess
	e.refused("FinishWebhookAttempts of a deleted delivery", &c3, &webhooks.AttemptOutcome{Success: true, At: at(time.Minute)})
	e.refused("FinishWebhookAttempts of a deleted delivery, without an outcome", &c3, nil)
}

// testWebhookFinishDisable: a failure with Disable disables an active
// endpoint once; the reason of an endpoint already disabled stays.
func testWebhookFinishDisable(e *env) {
	u := e.user("whfd")
	w := e.workspace("whfd", u.ID)
	ep := e.endpoint(w.ID)
	attempt := func(endpointID int64, o *webhooks.AttemptOutcome) bool {
		e.t.Helper()
		d := e.claimDelivery(e.deliver(w.ID, endpointID).ID, at(0), at(time.Minute))
		d.Status, d.NextAttemptAt = webhooks.StatusFailed, nil
		return e.finish("FinishWebhookAttempts", &d, o)
	}

	// A success ignores Disable.
	if attempt(ep.ID, &webhooks.AttemptOutcome{Success: true, At: at(time.Second), Disable: webhooks.DisabledGone}) {
		e.t.Error("a success with Disable reported the endpoint disabled")
	}
	if got := e.getEndpoint(w.ID, ep.ID); !got.IsActive || got.DisabledReason != "" || got.SuccessCount != 1 {
		e.t.Errorf("endpoint after a success with Disable = %+v, want it active, the success counted", got)
	}

	if !attempt(ep.ID, &webhooks.AttemptOutcome{At: at(2 * time.Second), Disable: webhooks.DisabledGone}) {
		e.t.Error("a failure with Disable on an active endpoint did not report it disabled")
	}
	got := e.getEndpoint(w.ID, ep.ID)
	if got.IsActive || got.DisabledReason != webhooks.DisabledGone || got.FailureCount != 1 || got.ConsecutiveFailures != 1 ||
		got.FailingSince == nil || !got.FailingSince.Equal(at(2*time.Second)) {
		e.t.Errorf("endpoint after a failure with Disable = %+v, want it disabled (gone), the failure counted", got)
	}
	// Already disabled: counted, not disabled again, the first reason kept.
	if attempt(ep.ID, &webhooks.AttemptOutcome{At: at(3 * time.Second), Disable: webhooks.DisabledFailing}) {
		e.t.Error("a failure with Disable on a disabled endpoint reported it disabled again")
	}
	if got := e.getEndpoint(w.ID, ep.ID); got.IsActive || got.DisabledReason != webhooks.DisabledGone || got.FailureCount != 2 {
		e.t.Errorf("endpoint after a second disabling failure = %+v, want the first reason kept, 2 failures", got)
	}

	// An endpoint its owner disabled keeps its empty reason.
	off := e.endpoint(w.ID, func(x *webhooks.Endpoint) { x.IsActive = false })
	if attempt(off.ID, &webhooks.AttemptOutcome{At: at(time.Second), Disable: webhooks.DisabledFailing}) {
		e.t.Error("a failure with Disable on an endpoint its owner disabled reported it disabled")
	}
	if got := e.getEndpoint(w.ID, off.ID); got.IsActive || got.DisabledReason != "" || got.FailureCount != 1 {
		e.t.Errorf("owner-disabled endpoint after a disabling failure = %+v, want no reason, 1 failure", got)
	}
}

// testWebhookFinishGiveBack: claims given back unsent store the Attempt
// as given, one less than the claim counted, and are due again, lease
// cleared; without an outcome the endpoint is left alone.
func testWebhookFinishGiveBack(e *env) {
	u := e.user("whfg")
	w := e.workspace("whfg", u.ID)
	ep := e.endpoint(w.ID)
	p := e.claimDelivery(e.deliver(w.ID, ep.ID).ID, at(time.Second), at(time.Minute))
	r := e.claimDelivery(e.deliver(w.ID, ep.ID, func(d *webhooks.Delivery) {
		d.Status, d.Attempt, d.NextAttemptAt = webhooks.StatusRetrying, 3, ptr(at(time.Second))
	}).ID, at(time.Second), at(time.Minute))
	if p.Attempt != 1 || r.Attempt != 4 {
		e.t.Fatalf("claimed attempts %d and %d, want 1 and 4", p.Attempt, r.Attempt)
	}
	beforeEp := e.getEndpoint(w.ID, ep.ID)
	backP, backR := p, r
	backP.Attempt, backP.NextAttemptAt = p.Attempt-1, ptr(at(2*time.Second))
	backR.Attempt, backR.NextAttemptAt = r.Attempt-1, ptr(at(3*time.Second))
	res, err := e.s.FinishWebhookAttempts(e.ctx, []webhooks.Finish{{Delivery: &backP}, {Delivery: &backR}})
	e.must(err, "FinishWebhookAttempts giving claims back")
	if len(res) != 2 || !res[0].Done || !res[1].Done || res[0].Disabled || res[1].Disabled {
		e.t.Fatalf("FinishWebhookAttempts giving claims back = %+v, want both done", res)
	}
	for _, x := range []struct {
		claimed, back webhooks.Delivery
		next          time.Time
	}{{p, backP, at(2 * time.Second)}, {r, backR, at(3 * time.Second)}} {
		got := e.getDelivery(w.ID, x.claimed.ID)
		want := x.claimed
		want.Attempt, want.LockedUntil, want.NextAttemptAt, want.UpdatedAt = x.claimed.Attempt-1, nil, ptr(x.next), got.UpdatedAt
		e.same(fmt.Sprintf("delivery %d given back (Attempt as given, lease cleared, due again)", x.claimed.ID), got, &want)
		e.same(fmt.Sprintf("the caller's delivery %d given back (set to the stored row)", x.claimed.ID), x.back, *got)
		e.recent("the UpdatedAt of a delivery given back", got.UpdatedAt)
	}
	e.same("endpoint after claims given back without an outcome", e.getEndpoint(w.ID, ep.ID), beforeEp)
	// Due again: the next claim counts the attempt it makes.
	e.notClaimable("a delivery given back, before it is due again", p.ID, at(2*time.Second-time.Microsecond))
	if c := e.claimDelivery(p.ID, at(2*time.Second), at(2*time.Minute)); c.Attempt != 1 || c.Status != webhooks.StatusPending {
		e.t.Errorf("claim of a delivery given back: attempt %d status %q, want 1 and pending", c.Attempt, c.Status)
	}
	if c := e.claimDelivery(r.ID, at(3*time.Second), at(2*time.Minute)); c.Attempt != 4 || c.Status != webhooks.StatusRetrying {
		e.t.Errorf("claim of a retrying delivery given back: attempt %d status %q, want 4 and retrying", c.Attempt, c.Status)
	}
}

// testWebhookFinishConcurrent finishes many attempts of one endpoint at
// once: no count is lost, and of the failures that would disable it
// exactly one reports doing so.
func testWebhookFinishConcurrent(e *env) {
	u := e.user("whfc")
	w := e.workspace("whfc", u.ID)
	const n = 12
	run := func(ep *webhooks.Endpoint, outcome func(i int) *webhooks.AttemptOutcome) (disabled int) {
		e.t.Helper()
		ds := make([]webhooks.Delivery, n)
		for i := range ds {
			ds[i] = e.claimDelivery(e.deliver(w.ID, ep.ID).ID, at(0), at(time.Minute))
			ds[i].Status, ds[i].NextAttemptAt = webhooks.StatusFailed, nil
		}
		var mu sync.Mutex
		errs := parallel(n, func(i int) error {
			res, err := e.finishOne(&ds[i], outcome(i))
			if err == nil && !res.Done {
				err = errors.New("not finished")
			}
			if res.Disabled {
				mu.Lock()
				disabled++
				mu.Unlock()
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				e.t.Errorf("concurrent FinishWebhookAttempts %d: %v", i, err)
			}
		}
		return disabled
	}

	ep := e.endpoint(w.ID)
	if got := run(ep, func(i int) *webhooks.AttemptOutcome {
		return &webhooks.AttemptOutcome{At: at(time.Duration(i+1) * time.Second), Disable: webhooks.DisabledFailing}
	}); got != 1 {
		e.t.Errorf("%d concurrent disabling failures: %d reported disabling the endpoint, want exactly 1", n, got)
	}
	got := e.getEndpoint(w.ID, ep.ID)
	if got.IsActive || got.DisabledReason != webhooks.DisabledFailing || got.FailureCount != n || got.ConsecutiveFailures != n || got.FailingSince == nil {
		e.t.Errorf("endpoint after %d concurrent disabling failures = %+v; want disabled (failing), %d failures, %d consecutive", n, got, n, n)
	}

	mixed := e.endpoint(w.ID)
	if got := run(mixed, func(i int) *webhooks.AttemptOutcome {
		return &webhooks.AttemptOutcome{Success: i%3 == 0, At: at(time.Duration(i+1) * time.Second)}
	}); got != 0 {
		e.t.Errorf("concurrent attempts without Disable: %d reported disabling the endpoint", got)
	}
	got = e.getEndpoint(w.ID, mixed.ID)
	if got.SuccessCount != n/3 || got.FailureCount != n-n/3 || !got.IsActive || got.LastDeliveryAt == nil {
		e.t.Errorf("endpoint after %d concurrent attempts: success %d, failure %d; want %d and %d: counts were lost",
			n, got.SuccessCount, got.FailureCount, n/3, n-n/3)
	}
}

func testWebhookDue(e *env) {
	u := e.user("whdue")
	w, other := e.workspace("whdue", u.ID), e.workspace("whdue-other", u.ID)
	ep, epOther := e.endpoint(w.ID), e.endpoint(other.ID)
	due := func(st string, next time.Duration) func(*webhooks.Delivery) {
		return func(d *webhooks.Delivery) { d.Status, d.NextAttemptAt = st, ptr(at(next)) }
	}
	now := at(150 * time.Second)
	d1 := e.deliver(w.ID, ep.ID, due(webhooks.StatusPending, 2*time.Minute))
	d2 := e.deliver(other.ID, epOther.ID, due(webhooks.StatusPending, time.Minute)) // another workspace: listed too
	e.deliver(w.ID, ep.ID, due(webhooks.StatusPending, 3*time.Minute))              // not yet due
	e.deliver(w.ID, ep.ID, due(webhooks.StatusSuccess, 0))
	e.deliver(w.ID, ep.ID, due(webhooks.StatusFailed, 0))
	d6 := e.deliver(w.ID, ep.ID, due(webhooks.StatusRetrying, 0))
	d7 := e.deliver(w.ID, ep.ID, due(webhooks.StatusPending, 10*time.Second))
	e.claimDelivery(d7.ID, at(10*time.Second), at(10*time.Minute)) // leased
	d8 := e.deliver(w.ID, ep.ID, due(webhooks.StatusPending, 30*time.Second))
	e.claimDelivery(d8.ID, at(30*time.Second), at(time.Minute))            // lease ended
	d9 := e.deliver(w.ID, ep.ID, due(webhooks.StatusPending, time.Minute)) // same time as d2: by id
	d10 := e.deliver(w.ID, ep.ID, due(webhooks.StatusPending, 150*time.Second))

	want := []int64{d6.ID, d8.ID, d2.ID, d9.ID, d1.ID, d10.ID}
	got, err := e.s.DueWebhookDeliveries(e.ctx, now, 100)
	e.must(err, "DueWebhookDeliveries")
	if fmt.Sprint(ids(got, deliveryID)) != fmt.Sprint(want) {
		e.t.Errorf("DueWebhookDeliveries = ids %v, want %v (due, not leased, oldest NextAttemptAt first)", ids(got, deliveryID), want)
	} else {
		e.same("a due delivery", got[2], *e.getDelivery(other.ID, d2.ID))
	}
	got, err = e.s.DueWebhookDeliveries(e.ctx, now, 2)
	e.must(err, "DueWebhookDeliveries limit 2")
	if fmt.Sprint(ids(got, deliveryID)) != fmt.Sprint(want[:2]) {
		e.t.Errorf("DueWebhookDeliveries limit 2 = ids %v, want %v", ids(got, deliveryID), want[:2])
	}
	got, err = e.s.DueWebhookDeliveries(e.ctx, at(-time.Hour), 100)
	e.must(err, "DueWebhookDeliveries before anything is due")
	if len(got) != 0 {
		e.t.Errorf("DueWebhookDeliveries before anything is due = ids %v", ids(got, deliveryID))
	}
	// Every listed delivery is claimable at now.
	for _, id := range want {
		e.claimDelivery(id, now, now.Add(time.Minute))
	}
	got, err = e.s.DueWebhookDeliveries(e.ctx, now, 100)
	e.must(err, "DueWebhookDeliveries after claiming them")
	if len(got) != 0 {
		e.t.Errorf("DueWebhookDeliveries after claiming every due delivery = ids %v, want none", ids(got, deliveryID))
	}
}

// testWebhookTenantIsolation calls every workspace-scoped webhook method
// with workspace A's id on rows of workspace B: each is not found, and B is
// unchanged.
func testWebhookTenantIsolation(e *env) {
	u := e.user("whti")
	a, b := e.workspace("whti-a", u.ID), e.workspace("whti-b", u.ID)
	epA, epB := e.endpoint(a.ID), e.endpoint(b.ID)
	dA, dB := e.deliver(a.ID, epA.ID), e.deliver(b.ID, epB.ID)
	evB, err := e.s.WebhookEvent(e.ctx, b.ID, dB.EventID)
	e.must(err, "WebhookEvent")

	called := false
	fnE := func(*webhooks.Endpoint) error { called = true; return nil }
	fnD := func(*webhooks.Delivery) error { called = true; return nil }

	_, err = e.s.WebhookEndpoint(e.ctx, a.ID, epB.ID)
	e.notFound(err, "WebhookEndpoint(A, B's endpoint)")
	_, err = e.s.UpdateWebhookEndpoint(e.ctx, a.ID, epB.ID, fnE)
	e.notFound(err, "UpdateWebhookEndpoint(A, B's endpoint)")
	e.notFound(e.s.DeleteWebhookEndpoint(e.ctx, a.ID, epB.ID), "DeleteWebhookEndpoint(A, B's endpoint)")
	_, err = e.s.WebhookEvent(e.ctx, a.ID, evB.ID)
	e.notFound(err, "WebhookEvent(A, B's event)")
	_, err = e.s.WebhookDelivery(e.ctx, a.ID, dB.ID)
	e.notFound(err, "WebhookDelivery(A, B's delivery)")
	_, err = e.s.UpdateWebhookDelivery(e.ctx, a.ID, dB.ID, fnD)
	e.notFound(err, "UpdateWebhookDelivery(A, B's delivery)")
	_, _, err = e.s.ListWebhookDeliveries(e.ctx, a.ID, webhooks.DeliveryFilter{EndpointID: epB.ID}, page(1, 10))
	e.notFound(err, "ListWebhookDeliveries(A, B's endpoint)")
	if called {
		e.t.Error("an update of another workspace's row called fn")
	}
	// Finishing B's attempt under A's id is refused: neither B's delivery
	// nor B's endpoint is written.
	cB := e.claimDelivery(dB.ID, at(0), at(time.Minute))
	epB = e.getEndpoint(b.ID, epB.ID)
	asA := cB
	asA.WorkspaceID, asA.Status, asA.NextAttemptAt = a.ID, webhooks.StatusFailed, nil
	e.refused("FinishWebhookAttempts(A, B's delivery)", &asA, &webhooks.AttemptOutcome{At: at(time.Second), Disable: webhooks.DisabledGone})
	e.refused("FinishWebhookAttempts(A, B's delivery) without an outcome", &asA, nil)
	dB = cB
	ev := &webhooks.Event{ID: "evt_storetest_cross", WorkspaceID: a.ID, Type: "post.created", Payload: json.RawMessage(`{}`)}
	_, err = e.s.CreateWebhookEvent(e.ctx, ev, []webhooks.Delivery{{WorkspaceID: a.ID, EndpointID: epB.ID, EventID: ev.ID,
		EventType: ev.Type, Status: webhooks.StatusPending, NextAttemptAt: ptr(at(0))}})
	e.notFound(err, "CreateWebhookEvent(A, a delivery to B's endpoint)")

	// A's lists hold only A's rows.
	checkIDs(e, "ListWebhookEndpoints(A)", e.listEndpoints(a.ID), core.ListParams{}, endpointID, epA.ID)
	checkIDs(e, "ListWebhookDeliveries(A)", e.listDeliveries(a.ID, webhooks.DeliveryFilter{EndpointID: epA.ID}), core.ListParams{}, deliveryID, dA.ID)
	active, err := e.s.ActiveWebhookEndpoints(e.ctx, a.ID)
	e.must(err, "ActiveWebhookEndpoints(A)")
	if fmt.Sprint(ids(active, endpointID)) != fmt.Sprint([]int64{epA.ID}) {
		e.t.Errorf("ActiveWebhookEndpoints(A) = ids %v, want %v", ids(active, endpointID), []int64{epA.ID})
	}

	// B is unchanged.
	e.same("B's endpoint", e.getEndpoint(b.ID, epB.ID), epB)
	e.same("B's delivery", e.getDelivery(b.ID, dB.ID), &dB)
	gotEv, err := e.s.WebhookEvent(e.ctx, b.ID, evB.ID)
	e.must(err, "WebhookEvent(B)")
	e.same("B's event", gotEv, evB)
}

func testWebhookDeleteWorkspaceCascades(e *env) {
	u := e.user("whdw")
	a, b := e.workspace("whdw-a", u.ID), e.workspace("whdw-b", u.ID)
	epA, epB := e.endpoint(a.ID), e.endpoint(b.ID)
	dA, dB := e.deliver(a.ID, epA.ID), e.deliver(b.ID, epB.ID)

	e.must(e.s.DeleteWorkspace(e.ctx, a.ID), "DeleteWorkspace")
	_, err := e.s.WebhookEndpoint(e.ctx, a.ID, epA.ID)
	e.notFound(err, "WebhookEndpoint after DeleteWorkspace")
	_, err = e.s.WebhookDelivery(e.ctx, a.ID, dA.ID)
	e.notFound(err, "WebhookDelivery after DeleteWorkspace")
	_, err = e.s.WebhookEvent(e.ctx, a.ID, dA.EventID)
	e.notFound(err, "WebhookEvent after DeleteWorkspace")
	due, err := e.s.DueWebhookDeliveries(e.ctx, at(time.Hour), 100)
	e.must(err, "DueWebhookDeliveries")
	if fmt.Sprint(ids(due, deliveryID)) != fmt.Sprint([]int64{dB.ID}) {
		e.t.Errorf("DueWebhookDeliveries after DeleteWorkspace = ids %v, want only %d", ids(due, deliveryID), dB.ID)
	}
	e.same("the other workspace's endpoint", e.getEndpoint(b.ID, epB.ID), epB)
	e.same("the other workspace's delivery", e.getDelivery(b.ID, dB.ID), &dB)
}

// testWebhookClaimBatch claims several deliveries in one call: only the
// claimable ones, in the order asked, each with its own endpoint and event,
// across workspaces; a repeated id is claimed once.
func testWebhookClaimBatch(e *env) {
	u := e.user("whcb")
	w, other := e.workspace("whcb", u.ID), e.workspace("whcb-other", u.ID)
	ep, ep2, epOther := e.endpoint(w.ID), e.endpoint(w.ID), e.endpoint(other.ID)
	a := e.deliver(w.ID, ep.ID)
	b := e.deliver(other.ID, epOther.ID)
	later := e.deliver(w.ID, ep.ID, func(d *webhooks.Delivery) { d.NextAttemptAt = ptr(at(time.Hour)) })
	leased := e.deliver(w.ID, ep2.ID)
	e.claimDelivery(leased.ID, at(0), at(10*time.Minute))
	done := e.deliver(w.ID, ep.ID, func(d *webhooks.Delivery) { d.Status = webhooks.StatusSuccess })
	c := e.deliver(w.ID, ep2.ID, func(d *webhooks.Delivery) {
		d.Status, d.Attempt, d.NextAttemptAt = webhooks.StatusRetrying, 2, ptr(at(time.Second))
	})

	cs, err := e.s.ClaimWebhookDeliveries(e.ctx, []int64{c.ID, later.ID, b.ID, 999_999_999, leased.ID, a.ID, done.ID, c.ID},
		at(time.Minute), at(2*time.Minute))
	e.must(err, "ClaimWebhookDeliveries")
	want := []int64{c.ID, b.ID, a.ID}
	got := make([]int64, len(cs))
	for i := range cs {
		got[i] = cs[i].Delivery.ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		e.t.Fatalf("ClaimWebhookDeliveries = ids %v, want %v (claimable only, in the order asked, a repeat once)", got, want)
	}
	for _, x := range []struct {
		c     webhooks.Claim
		d     webhooks.Delivery
		ep    int64
		ws    int64
		tries int
	}{{cs[0], c, ep2.ID, w.ID, 3}, {cs[1], b, epOther.ID, other.ID, 1}, {cs[2], a, ep.ID, w.ID, 1}} {
		stored := e.getDelivery(x.ws, x.d.ID)
		e.same(fmt.Sprintf("claimed delivery %d (as stored)", x.d.ID), x.c.Delivery, *stored)
		if stored.Attempt != x.tries || stored.LockedUntil == nil || !stored.LockedUntil.Equal(at(2*time.Minute)) {
			e.t.Errorf("claimed delivery %d: attempt %d, lease %v; want %d, %s", x.d.ID, stored.Attempt, stored.LockedUntil, x.tries, at(2*time.Minute))
		}
		e.same(fmt.Sprintf("claimed delivery %d: its endpoint", x.d.ID), x.c.Endpoint, *e.getEndpoint(x.ws, x.ep))
		ev, err := e.s.WebhookEvent(e.ctx, x.ws, x.d.EventID)
		e.must(err, "WebhookEvent")
		e.same(fmt.Sprintf("claimed delivery %d: its event", x.d.ID), x.c.Event, *ev)
	}
	// What was not claimable is untouched.
	if got := e.getDelivery(w.ID, later.ID); got.Attempt != 0 || got.LockedUntil != nil {
		e.t.Errorf("a delivery not yet due was written by a batch claim: %+v", got)
	}
	if got := e.getDelivery(w.ID, leased.ID); got.Attempt != 1 || !got.LockedUntil.Equal(at(10*time.Minute)) {
		e.t.Errorf("a leased delivery was written by a batch claim: %+v", got)
	}
	if got := e.getDelivery(w.ID, done.ID); got.Attempt != 0 || got.LockedUntil != nil {
		e.t.Errorf("a delivered delivery was written by a batch claim: %+v", got)
	}
	cs, err = e.s.ClaimWebhookDeliveries(e.ctx, nil, at(time.Minute), at(2*time.Minute))
	if err != nil || len(cs) != 0 {
		e.t.Errorf("ClaimWebhookDeliveries of no ids = %+v, %v; want none", cs, err)
	}
	cs, err = e.s.ClaimWebhookDeliveries(e.ctx, []int64{a.ID, b.ID}, at(time.Minute), at(2*time.Minute))
	if err != nil || len(cs) != 0 {
		e.t.Errorf("ClaimWebhookDeliveries of leased deliveries = %d claims, %v; want none", len(cs), err)
	}
}

// testWebhookClaimBatchRace: concurrent batch claims over overlapping
// deliveries, in different orders, claim each delivery exactly once.
func testWebhookClaimBatchRace(e *env) {
	u := e.user("whcbr")
	w := e.workspace("whcbr", u.ID)
	ep := e.endpoint(w.ID)
	const n, claimers = 24, 8
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = e.deliver(w.ID, ep.ID).ID
	}
	var mu sync.Mutex
	won := map[int64]int{}
	errs := parallel(claimers, func(i int) error {
		mine := slices.Clone(ids)
		if i%2 == 1 {
			slices.Reverse(mine)
		}
		mine = mine[i%3:] // overlapping, not equal
		cs, err := e.s.ClaimWebhookDeliveries(e.ctx, mine, at(0), at(time.Duration(i+1)*time.Minute))
		mu.Lock()
		for _, c := range cs {
			won[c.Delivery.ID]++
		}
		mu.Unlock()
		return err
	})
	for i, err := range errs {
		if err != nil {
			e.t.Errorf("claimer %d: %v", i, err)
		}
	}
	for _, id := range ids {
		if won[id] != 1 {
			e.t.Errorf("delivery %d claimed %d times by concurrent batches, want exactly once", id, won[id])
		}
		if got := e.getDelivery(w.ID, id); got.Attempt != 1 {
			e.t.Errorf("delivery %d: attempt %d after the race, want 1", id, got.Attempt)
		}
	}
}

// testWebhookFinishBatch ends several attempts in one call: outcomes of one
// endpoint add up in order, a stale lease (or another workspace's
// delivery) writes nothing while the live ones beside it are written.
func testWebhookFinishBatch(e *env) {
	u := e.user("whfb")
	w, other := e.workspace("whfb", u.ID), e.workspace("whfb-other", u.ID)
	ep := e.endpoint(w.ID, func(x *webhooks.Endpoint) {
		x.SuccessCount, x.FailureCount, x.ConsecutiveFailures, x.FailingSince = 10, 20, 2, ptr(at(-time.Hour))
	})
	ep2 := e.endpoint(w.ID)
	epOther := e.endpoint(other.ID)
	claim := func(ws, endpointID int64, status string) webhooks.Delivery {
		d := e.claimDelivery(e.deliver(ws, endpointID).ID, at(0), at(time.Minute))
		d.Status, d.NextAttemptAt, d.ResponseCode = status, nil, 200
		if status == webhooks.StatusRetrying {
			d.NextAttemptAt, d.ResponseCode = ptr(at(time.Hour)), 500
		}
		return d
	}
	// On ep: failure, success, failure, failure (the run restarts after the
	// success); on ep2: failure then a stale lease's success; another
	// workspace's delivery named under w; one without an outcome.
	d1, d2 := claim(w.ID, ep.ID, webhooks.StatusRetrying), claim(w.ID, ep.ID, webhooks.StatusSuccess)
	d3, d4 := claim(w.ID, ep.ID, webhooks.StatusRetrying), claim(w.ID, ep.ID, webhooks.StatusFailed)
	d5 := claim(w.ID, ep2.ID, webhooks.StatusRetrying)
	stale := e.deliver(w.ID, ep2.ID)
	old := e.claimDelivery(stale.ID, at(0), at(time.Minute))
	current := e.claimDelivery(stale.ID, at(2*time.Minute), at(3*time.Minute))
	old.Status, old.NextAttemptAt = webhooks.StatusSuccess, nil
	theirs := claim(other.ID, epOther.ID, webhooks.StatusFailed)
	asW := theirs
	asW.WorkspaceID = w.ID
	quiet := claim(w.ID, ep2.ID, webhooks.StatusFailed)
	beforeOther, theirsStored := e.getEndpoint(other.ID, epOther.ID), e.getDelivery(other.ID, theirs.ID)
	oldIn, asWIn := old, asW

	fs := []webhooks.Finish{
		{Delivery: &d1, Outcome: &webhooks.AttemptOutcome{At: at(time.Second)}},
		{Delivery: &old, Outcome: &webhooks.AttemptOutcome{Success: true, At: at(2 * time.Second)}},
		{Delivery: &d2, Outcome: &webhooks.AttemptOutcome{Success: true, At: at(3 * time.Second)}},
		{Delivery: &d5, Outcome: &webhooks.AttemptOutcome{At: at(4 * time.Second)}},
		{Delivery: &asW, Outcome: &webhooks.AttemptOutcome{At: at(5 * time.Second), Disable: webhooks.DisabledGone}},
		{Delivery: &d3, Outcome: &webhooks.AttemptOutcome{At: at(6 * time.Second)}},
		{Delivery: &quiet},
		{Delivery: &d4, Outcome: &webhooks.AttemptOutcome{At: at(7 * time.Second)}},
	}
	res, err := e.s.FinishWebhookAttempts(e.ctx, fs)
	e.must(err, "FinishWebhookAttempts")
	wantDone := []bool{true, false, true, true, false, true, true, true}
	if len(res) != len(fs) {
		e.t.Fatalf("FinishWebhookAttempts of %d attempts returned %d results", len(fs), len(res))
	}
	for i, r := range res {
		if r.Done != wantDone[i] || r.Disabled {
			e.t.Errorf("FinishWebhookAttempts item %d = %+v, want done %v, not disabled", i, r, wantDone[i])
		}
	}
	for i, d := range []*webhooks.Delivery{&d1, &d2, &d5, &d3, &quiet, &d4} {
		got := e.getDelivery(w.ID, d.ID)
		e.same(fmt.Sprintf("finished delivery %d (the caller's, set to the stored row)", i), *d, *got)
		if got.LockedUntil != nil {
			e.t.Errorf("finished delivery %d kept its lease", i)
		}
	}
	e.same("the stale attempt's delivery (caller's)", old, oldIn)
	e.same("the stale attempt's delivery (stored: the current lease's)", e.getDelivery(w.ID, stale.ID), &current)
	e.same("another workspace's delivery named under w (caller's)", asW, asWIn)
	e.same("another workspace's delivery named under w (stored)", e.getDelivery(other.ID, theirs.ID), theirsStored)
	e.same("another workspace's endpoint", e.getEndpoint(other.ID, epOther.ID), beforeOther)

	got := e.getEndpoint(w.ID, ep.ID)
	if got.SuccessCount != 11 || got.FailureCount != 23 || got.ConsecutiveFailures != 2 || !got.IsActive ||
		got.FailingSince == nil || !got.FailingSince.Equal(at(6*time.Second)) ||
		got.LastDeliveryAt == nil || !got.LastDeliveryAt.Equal(at(7*time.Second)) {
		e.t.Errorf("endpoint after failure, success, failure, failure in one batch = %+v; want success 11, failure 23, "+
			"consecutive 2, failing since %s (the first failure after the success), last delivery %s", got, at(6*time.Second), at(7*time.Second))
	}
	got2 := e.getEndpoint(w.ID, ep2.ID)
	if got2.SuccessCount != 0 || got2.FailureCount != 1 || got2.ConsecutiveFailures != 1 ||
		got2.FailingSince == nil || !got2.FailingSince.Equal(at(4*time.Second)) || !got2.LastDeliveryAt.Equal(at(4*time.Second)) {
		e.t.Errorf("endpoint after a failure and a stale success in one batch = %+v; want the failure only", got2)
	}

	// Two failures then a success: the run ends; only failures: the run
	// keeps its start and grows by all of them.
	f1, f2 := claim(w.ID, ep.ID, webhooks.StatusRetrying), claim(w.ID, ep.ID, webhooks.StatusRetrying)
	s1 := claim(w.ID, ep.ID, webhooks.StatusSuccess)
	g1, g2 := claim(w.ID, ep2.ID, webhooks.StatusRetrying), claim(w.ID, ep2.ID, webhooks.StatusFailed)
	res, err = e.s.FinishWebhookAttempts(e.ctx, []webhooks.Finish{
		{Delivery: &g1, Outcome: &webhooks.AttemptOutcome{At: at(11 * time.Second)}},
		{Delivery: &f1, Outcome: &webhooks.AttemptOutcome{At: at(8 * time.Second)}},
		{Delivery: &f2, Outcome: &webhooks.AttemptOutcome{At: at(9 * time.Second)}},
		{Delivery: &g2, Outcome: &webhooks.AttemptOutcome{At: at(12 * time.Second)}},
		{Delivery: &s1, Outcome: &webhooks.AttemptOutcome{Success: true, At: at(10 * time.Second)}},
	})
	e.must(err, "FinishWebhookAttempts")
	for i, r := range res {
		if !r.Done {
			e.t.Errorf("second batch item %d not done", i)
		}
	}
	if got := e.getEndpoint(w.ID, ep.ID); got.SuccessCount != 12 || got.FailureCount != 25 || got.ConsecutiveFailures != 0 ||
		got.FailingSince != nil || !got.LastDeliveryAt.Equal(at(10*time.Second)) {
		e.t.Errorf("endpoint after failure, failure, success in one batch = %+v; want success 12, failure 25, the run ended", got)
	}
	if got := e.getEndpoint(w.ID, ep2.ID); got.FailureCount != 3 || got.ConsecutiveFailures != 3 ||
		!got.FailingSince.Equal(at(4*time.Second)) || !got.LastDeliveryAt.Equal(at(12*time.Second)) {
		e.t.Errorf("endpoint after two more failures in one batch = %+v; want failure 3, consecutive 3, failing since %s", got, at(4*time.Second))
	}

	res, err = e.s.FinishWebhookAttempts(e.ctx, nil)
	if err != nil || len(res) != 0 {
		e.t.Errorf("FinishWebhookAttempts of nothing = %v, %v", res, err)
	}
}

// testWebhookFinishBatchDisable: of the disabling failures of one endpoint
// in one batch, the first alone reports it; in concurrent batches, exactly
// one does; a failure before it in the batch is counted as such.
func testWebhookFinishBatchDisable(e *env) {
	u := e.user("whfbd")
	w := e.workspace("whfbd", u.ID)
	claim := func(endpointID int64) *webhooks.Delivery {
		d := e.claimDelivery(e.deliver(w.ID, endpointID).ID, at(0), at(time.Minute))
		d.Status, d.NextAttemptAt = webhooks.StatusFailed, nil
		return &d
	}
	ep := e.endpoint(w.ID)
	res, err := e.s.FinishWebhookAttempts(e.ctx, []webhooks.Finish{
		{Delivery: claim(ep.ID), Outcome: &webhooks.AttemptOutcome{Success: true, At: at(time.Second), Disable: webhooks.DisabledGone}},
		{Delivery: claim(ep.ID), Outcome: &webhooks.AttemptOutcome{At: at(2 * time.Second)}},
		{Delivery: claim(ep.ID), Outcome: &webhooks.AttemptOutcome{At: at(3 * time.Second), Disable: webhooks.DisabledFailing}},
		{Delivery: claim(ep.ID), Outcome: &webhooks.AttemptOutcome{At: at(4 * time.Second), Disable: webhooks.DisabledGone}},
	})
	e.must(err, "FinishWebhookAttempts")
	var dis []bool
	for _, r := range res {
		dis = append(dis, r.Disabled)
	}
	if fmt.Sprint(dis) != fmt.Sprint([]bool{false, false, true, false}) {
		e.t.Errorf("disabled per item = %v, want only the first disabling failure's", dis)
	}
	if got := e.getEndpoint(w.ID, ep.ID); got.IsActive || got.DisabledReason != webhooks.DisabledFailing ||
		got.SuccessCount != 1 || got.FailureCount != 3 || got.ConsecutiveFailures != 3 {
		e.t.Errorf("endpoint after a batch with two disabling failures = %+v; want disabled (failing, the first reason), 1 success, 3 failures", got)
	}

	// Concurrent batches, each with disabling failures of one endpoint.
	const batches, per = 6, 3
	target := e.endpoint(w.ID)
	fss := make([][]webhooks.Finish, batches)
	for i := range fss {
		for j := range per {
			fss[i] = append(fss[i], webhooks.Finish{Delivery: claim(target.ID),
				Outcome: &webhooks.AttemptOutcome{At: at(time.Duration(i*per+j+1) * time.Second), Disable: webhooks.DisabledGone}})
		}
	}
	var mu sync.Mutex
	disabled := 0
	errs := parallel(batches, func(i int) error {
		res, err := e.s.FinishWebhookAttempts(e.ctx, fss[i])
		mu.Lock()
		defer mu.Unlock()
		for _, r := range res {
			if !r.Done {
				return errors.New("not done")
			}
			if r.Disabled {
				disabled++
			}
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			e.t.Errorf("concurrent batch %d: %v", i, err)
		}
	}
	if disabled != 1 {
		e.t.Errorf("%d concurrent batches of disabling failures: %d items reported disabling the endpoint, want exactly 1", batches, disabled)
	}
	if got := e.getEndpoint(w.ID, target.ID); got.IsActive || got.FailureCount != batches*per || got.ConsecutiveFailures != batches*per {
		e.t.Errorf("endpoint after concurrent disabling batches = %+v; want disabled, %d failures counted", got, batches*per)
	}
}
