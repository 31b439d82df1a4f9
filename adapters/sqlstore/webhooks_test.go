package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/webhooks"
	"github.com/revopsdev/revops/workspace"
)

// TestWebhookAdapterConventions covers what this adapter adds to the
// webhooks.Store contract.
func TestWebhookAdapterConventions(t *testing.T) {
	each(t, func(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
		s := open(t)
		ctx := t.Context()
		u := &workspace.User{Email: "wh@example.test"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		w := &workspace.Workspace{Name: "W", Slug: "w"}
		if err := s.CreateWorkspace(ctx, w, u.ID); err != nil {
			t.Fatal(err)
		}
		ep := &webhooks.Endpoint{WorkspaceID: w.ID, URL: "https://x.test", Secret: "whsec_x", IsActive: true}
		if err := s.CreateWebhookEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}

		// An event without an id gets one; a delivery without status or
		// NextAttemptAt is pending and due at once.
		created := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
		ev := &webhooks.Event{WorkspaceID: w.ID, Type: "post.created", Payload: json.RawMessage(`{"a":1}`), CreatedAt: created}
		ds, err := s.CreateWebhookEvent(ctx, ev, []webhooks.Delivery{{EndpointID: ep.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ev.ID, "evt_") {
			t.Errorf("event id %q, want a generated evt_ id", ev.ID)
		}
		d := ds[0]
		if d.Status != webhooks.StatusPending || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(created) ||
			d.EventID != ev.ID || d.EventType != ev.Type || d.WorkspaceID != w.ID {
			t.Errorf("delivery with defaults = %+v", d)
		}
		if _, err := s.CreateWebhookEvent(ctx, &webhooks.Event{ID: ev.ID, WorkspaceID: w.ID, Type: "x"}, nil); !errors.Is(err, core.ErrConflict) {
			t.Errorf("duplicate event id: %v, want conflict", err)
		}

		// A response body is stored byte for byte, even when it is not
		// UTF-8 text (PostgreSQL TEXT would refuse it).
		cs, err := s.ClaimWebhookDeliveries(ctx, []int64{d.ID}, created, created.Add(time.Minute))
		if err != nil || len(cs) != 1 {
			t.Fatalf("claim: %d %v", len(cs), err)
		}
		c := &cs[0].Delivery
		body := "bin\x00\xff\xfe end"
		c.Status, c.ResponseCode, c.ResponseBody, c.NextAttemptAt = webhooks.StatusFailed, 500, body, nil
		if res, err := s.FinishWebhookAttempts(ctx, []webhooks.Finish{{Delivery: c}}); err != nil || !res[0].Done {
			t.Fatalf("finish without an outcome: %v %v", res, err)
		}
		if c.LockedUntil != nil {
			t.Errorf("FinishWebhookAttempts left LockedUntil %v in d, want nil", c.LockedUntil)
		}
		got, err := s.WebhookDelivery(ctx, w.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ResponseBody != body || got.Status != webhooks.StatusFailed || got.LockedUntil != nil {
			t.Errorf("after finish: body %q status %q lease %v", got.ResponseBody, got.Status, got.LockedUntil)
		}
		// A delivery without a lease cannot be finished.
		if res, err := s.FinishWebhookAttempts(ctx, []webhooks.Finish{{Delivery: got}}); err != nil || res[0].Done {
			t.Errorf("finish without a lease: %v %v, want not done", res, err)
		}

		// Delivery lists: the status may come in the filter or the list
		// parameters; unknown statuses and sorts are invalid.
		list := func(f webhooks.DeliveryFilter, p core.ListParams) ([]webhooks.Delivery, error) {
			f.EndpointID = ep.ID
			out, _, err := s.ListWebhookDeliveries(ctx, w.ID, f, p)
			return out, err
		}
		if out, err := list(webhooks.DeliveryFilter{}, core.ListParams{Filter: core.Filter{Status: webhooks.StatusFailed}}); err != nil || len(out) != 1 {
			t.Errorf("status in ListParams: %d %v, want the failed delivery", len(out), err)
		}
		if out, err := list(webhooks.DeliveryFilter{}, core.ListParams{Filter: core.Filter{Status: webhooks.StatusPending}}); err != nil || len(out) != 0 {
			t.Errorf("status pending in ListParams: %d %v, want none", len(out), err)
		}
		invalid := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, core.ErrValidation) {
				t.Errorf("%s: %v, want a validation error", what, err)
			}
		}
		_, err = list(webhooks.DeliveryFilter{Status: "done"}, core.ListParams{})
		invalid("unknown delivery status", err)
		_, err = list(webhooks.DeliveryFilter{Status: webhooks.StatusFailed}, core.ListParams{Filter: core.Filter{Status: webhooks.StatusSuccess}})
		invalid("two different statuses", err)
		_, err = list(webhooks.DeliveryFilter{}, core.ListParams{Sort: []core.Sort{{Field: "status"}}})
		invalid("deliveries sorted by status", err)
		_, err = list(webhooks.DeliveryFilter{}, core.ListParams{Filter: core.Filter{Search: "x"}})
		invalid("deliveries searched", err)
		_, _, err = s.ListWebhookEndpoints(ctx, w.ID, core.ListParams{Filter: core.Filter{Status: "active"}})
		invalid("endpoints filtered by status", err)
		_, _, err = s.ListWebhookEndpoints(ctx, w.ID, core.ListParams{Sort: []core.Sort{{Field: "url"}}})
		invalid("endpoints sorted by url", err)
		_, _, err = s.ListWebhookDeliveries(ctx, w.ID, webhooks.DeliveryFilter{}, core.ListParams{})
		if err == nil || errors.Is(err, core.ErrNotFound) || errors.Is(err, core.ErrValidation) {
			t.Errorf("ListWebhookDeliveries without an endpoint: %v, want an internal error", err)
		}
		if due, err := s.DueWebhookDeliveries(ctx, created.Add(time.Hour), 0); err != nil || len(due) != 0 {
			t.Errorf("DueWebhookDeliveries limit 0: %d %v, want none", len(due), err)
		}
	})
}

// A URL that chooses a query exec mode (here: no statement cache at all, as
// behind a pooler that keeps no prepared statements) applies to the
// claim's and the finish's statements too: they must not insist on
// preparing.
func TestWebhookClaimAndFinishFollowTheURLsExecMode(t *testing.T) {
	// simple_protocol: statement by statement (a proxy may know no
	// other protocol); exec: pipelined, but nothing prepared.
	for _, mode := range []string{"simple_protocol", "exec"} {
		t.Run(mode, func(t *testing.T) {
			testClaimAndFinishOn(t, sqltest.Open(t, sqltest.PostgresURL(t)+"&default_query_exec_mode="+mode+"&statement_cache_capacity=0"))
		})
	}
}

func testClaimAndFinishOn(t *testing.T, st *sqlstore.Store) {
	ctx := t.Context()
	wid := sqltest.Workspace(t, st)
	ep := &webhooks.Endpoint{WorkspaceID: wid, URL: "https://x.test", Events: []string{"*"}, Secret: "whsec_x", IsActive: true}
	if err := st.CreateWebhookEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	ds, err := st.CreateWebhookEvent(ctx, &webhooks.Event{WorkspaceID: wid, Type: "post.created", Payload: json.RawMessage(`{}`)},
		[]webhooks.Delivery{{EndpointID: ep.ID}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cs, err := st.ClaimWebhookDeliveries(ctx, []int64{ds[0].ID}, now, now.Add(time.Minute))
	if err != nil || len(cs) != 1 || cs[0].Endpoint.ID != ep.ID {
		t.Fatalf("claim: %v, %d claims", err, len(cs))
	}
	d := &cs[0].Delivery
	d.Status, d.NextAttemptAt, d.DeliveredAt, d.ResponseCode = webhooks.StatusSuccess, nil, &now, 200
	res, err := st.FinishWebhookAttempts(ctx, []webhooks.Finish{{Delivery: d, Outcome: &webhooks.AttemptOutcome{Success: true, At: now}}})
	if err != nil || !res[0].Done {
		t.Fatalf("finish: %v, %+v", err, res)
	}
}

// The store's connections plan its prepared statements generically (see
// openPostgres), unless the URL chooses the plan cache mode or the query
// exec mode itself.
func TestPostgresPlanCacheMode(t *testing.T) {
	base := sqltest.PostgresURL(t)
	for _, c := range []struct{ suffix, want string }{
		{"", "force_generic_plan"},
		{"&plan_cache_mode=force_custom_plan", "force_custom_plan"},
		{"&default_query_exec_mode=simple_protocol", "auto"},
	} {
		st := sqltest.Open(t, base+c.suffix)
		var got string
		if err := st.DB().QueryRowContext(t.Context(), "SHOW plan_cache_mode").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("URL %q: plan_cache_mode %q, want %q", c.suffix, got, c.want)
		}
	}
}

// On PostgreSQL a finish sends its statements without waiting for each
// (see pipelined). One the server refuses midway leaves nothing written
// and the connection clean for the next caller; inside the host's
// transaction a finish runs in it, and lands or vanishes with it.
func TestWebhookFinishPostgresFailureAndHostTx(t *testing.T) {
	st := postgres(t)(t)
	st.DB().SetMaxOpenConns(1) // every call below reuses the one connection
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	wid := sqltest.Workspace(t, st)
	ep := &webhooks.Endpoint{WorkspaceID: wid, URL: "https://x.test", Events: []string{"*"}, Secret: "whsec_x", IsActive: true}
	if err := st.CreateWebhookEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	ds, err := st.CreateWebhookEvent(ctx, &webhooks.Event{WorkspaceID: wid, Type: "post.created", Payload: json.RawMessage(`{}`)},
		[]webhooks.Delivery{{EndpointID: ep.ID}, {EndpointID: ep.ID}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cs, err := st.ClaimWebhookDeliveries(ctx, []int64{ds[0].ID, ds[1].ID}, now, now.Add(time.Minute))
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim: %v, %d claims", err, len(cs))
	}
	success := func(c *webhooks.Claim) webhooks.Finish {
		d := c.Delivery // a copy: a failed finish must not touch it either
		d.Status, d.NextAttemptAt, d.DeliveredAt, d.ResponseCode = webhooks.StatusSuccess, nil, &now, 200
		return webhooks.Finish{Delivery: &d, Outcome: &webhooks.AttemptOutcome{Success: true, At: now}}
	}
	state := func() (leased int, successes int64) {
		t.Helper()
		for _, d := range ds {
			got, err := st.WebhookDelivery(ctx, wid, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.LockedUntil != nil && got.Status == webhooks.StatusPending {
				leased++
			}
		}
		e, err := st.WebhookEndpoint(ctx, wid, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		return leased, e.SuccessCount
	}

	// PostgreSQL refuses a NUL in text: the second item fails the batch.
	bad := success(&cs[1])
	bad.Delivery.Error = "nul\x00"
	if _, err := st.FinishWebhookAttempts(ctx, []webhooks.Finish{success(&cs[0]), bad}); err == nil {
		t.Fatal("a finish PostgreSQL refused succeeded")
	}
	if leased, n := state(); leased != 2 || n != 0 {
		t.Fatalf("after a refused finish: %d leased, %d successes counted; want 2 and 0 (nothing written)", leased, n)
	}

	// The endpoint's count refused, after the deliveries' update in the
	// round trip before it: the transaction spans both, nothing stays.
	disabling := success(&cs[0])
	disabling.Delivery.Status, disabling.Outcome = webhooks.StatusFailed, &webhooks.AttemptOutcome{At: now, Disable: "gone\x00"}
	if _, err := st.FinishWebhookAttempts(ctx, []webhooks.Finish{disabling}); err == nil {
		t.Fatal("a finish whose count PostgreSQL refused succeeded")
	}
	if leased, n := state(); leased != 2 || n != 0 {
		t.Fatalf("after a refused count: %d leased, %d successes counted; want 2 and 0 (nothing written)", leased, n)
	}
	if e, err := st.WebhookEndpoint(ctx, wid, ep.ID); err != nil || !e.IsActive || e.FailureCount != 0 {
		t.Fatalf("after a refused count: endpoint %+v, %v; want active, no failure counted", e, err)
	}

	// Inside the host's transaction, rolled back: nothing stays.
	rollback := errors.New("rolled back")
	err = st.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
		res, err := st.FinishWebhookAttempts(ctx, []webhooks.Finish{success(&cs[0])})
		if err != nil || !res[0].Done {
			t.Errorf("finish in the host's transaction: %+v %v", res, err)
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("RunInTx: %v", err)
	}
	if leased, n := state(); leased != 2 || n != 0 {
		t.Fatalf("after a rolled back host transaction: %d leased, %d successes; want 2 and 0", leased, n)
	}
	// Committed: it lands.
	err = st.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
		_, err := st.FinishWebhookAttempts(ctx, []webhooks.Finish{success(&cs[0])})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// And outside it, on the connection the refused finish used.
	if res, err := st.FinishWebhookAttempts(ctx, []webhooks.Finish{success(&cs[1])}); err != nil || !res[0].Done {
		t.Fatalf("finish after the refused one: %+v %v", res, err)
	}
	if leased, n := state(); leased != 0 || n != 2 {
		t.Fatalf("after both finished: %d leased, %d successes; want 0 and 2", leased, n)
	}
}
