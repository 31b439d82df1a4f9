package revops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/adapters/stripe"
	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

const stripeSecret = "whsec_revops_test"

// stripeMockEnv names the stripe-mock the checkout and portal tests call
// (scripts/test starts one).
const stripeMockEnv = "REVOPS_TEST_STRIPE_MOCK_URL"

// withStripe configures the Stripe provider; its API is stripe-mock when
// one is running, else an address nothing answers (event tests need none).
func withStripe(t testing.TB) envOpt { return withStripeVia(t, http.DefaultTransport) }

func withStripeVia(t testing.TB, rt http.RoundTripper) envOpt {
	api := os.Getenv(stripeMockEnv)
	if api == "" {
		api = "http://127.0.0.1:1"
	}
	prov, err := stripe.New(stripe.Config{SecretKey: "sk_test_revops", WebhookSecret: stripeSecret,
		Prices:     map[string]string{"pro": "price_pro", "agency": "price_agency"},
		SuccessURL: "https://app.test/billing/done", APIBaseURL: api, HTTPClient: &http.Client{Transport: rt, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *revops.Config) { c.Billing.Provider = prov }
}

func needStripeMock(t *testing.T) {
	if os.Getenv(stripeMockEnv) == "" {
		t.Skip("checkout and portal need stripe-mock: set " + stripeMockEnv + " to a running stripe-mock v0.203.0, or run scripts/test, which starts one")
	}
}

// stores runs fn on SQLite and, when REVOPS_TEST_POSTGRES_URL is set, Postgres.
func stores(t *testing.T, fn func(t *testing.T, st *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqltest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, sqltest.Postgres(t)) })
}

// stripeEvent posts a Stripe event signed with key.
func (e *env) stripeEvent(key, id, typ string, created time.Time, object string) *resp {
	e.t.Helper()
	payload := fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2026-03-25.dahlia","type":%q,"created":%d,"data":{"object":%s}}`,
		id, typ, created.Unix(), object)
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: key})
	return e.do("POST", "/billing/webhooks/stripe", "", payload, hdr{"Stripe-Signature": sp.Header})
}

// billingState is what an event may change: the subscription row and the
// workspace's tier, read from the store.
func (e *env) billingState(wid int64) string {
	e.t.Helper()
	ctx := context.Background()
	w, err := e.store.Workspace(ctx, wid)
	if err != nil {
		e.t.Fatal(err)
	}
	sub, err := e.store.Subscription(ctx, wid)
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("tier=%s updated=%s sub=%+v", w.Tier, w.UpdatedAt, sub)
}

// billingFields is billingState but for the subscription's UpdatedAt, which
// an event that is applied but changes nothing (a stale one) still moves.
func (e *env) billingFields(wid int64) string {
	e.t.Helper()
	sub, err := e.store.Subscription(context.Background(), wid)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := e.store.Workspace(context.Background(), wid)
	if err != nil {
		e.t.Fatal(err)
	}
	sub.UpdatedAt = time.Time{}
	return fmt.Sprintf("tier=%s updated=%s sub=%+v", w.Tier, w.UpdatedAt, sub)
}

func TestBillingProviderEvents(t *testing.T) {
	stores(t, func(t *testing.T, st *sqlstore.Store) {
		is := is.New(t)
		e := newEnv(t, withStore(st), withStripe(t))
		wid, key := e.newWorkspace("Payer")
		other, _ := e.newWorkspace("Bystander")
		otherBefore := e.billingState(other)
		status := func() map[string]any {
			return e.do("GET", fmt.Sprintf("/workspaces/%d/billing/status", wid), key, nil).must(t, 200).data()
		}
		sub := func() map[string]any { return status()["subscription"].(map[string]any) }
		tierOf := func() string { return status()["plan"].(map[string]any)["tier"].(string) }
		rateTier := func() string {
			return e.do("GET", fmt.Sprintf("/workspaces/%d/rate-limits", wid), key, nil).must(t, 200).data()["tier"].(string)
		}
		is.Equal(sub()["status"], "none")
		is.Equal(rateTier(), "free") // cached now: the event must move it
		t0 := time.Now().Add(-time.Minute).Truncate(time.Second)

		// A completed checkout names the workspace in metadata: it moves to pro.
		completed := fmt.Sprintf(`{"id":"cs_1","object":"checkout.session","mode":"subscription","customer":"cus_A","subscription":"sub_A",
			"client_reference_id":"%d","payment_status":"paid","metadata":{"revops_workspace_id":"%d","revops_tier":"pro"}}`, wid, wid)
		r := e.stripeEvent(stripeSecret, "evt_1", "checkout.session.completed", t0, completed).must(t, 200)
		is.Equal(r.data()["result"], "applied")
		is.Equal(tierOf(), "pro")
		is.Equal(rateTier(), "pro") // the rate limit followed at once
		s := sub()
		is.Equal(s["status"], "active")
		is.Equal(s["customer_id"], "cus_A")
		is.Equal(s["subscription_id"], "sub_A")
		afterCheckout := e.billingState(wid)

		// A replayed id is acknowledged and changes nothing, even with
		// another body.
		deleted := `{"id":"sub_A","object":"subscription","customer":"cus_A","status":"canceled","items":{"data":[]}}`
		r = e.stripeEvent(stripeSecret, "evt_1", "customer.subscription.deleted", t0.Add(time.Second), deleted).must(t, 200)
		is.Equal(r.data()["result"], "duplicate")
		is.Equal(e.billingState(wid), afterCheckout)

		// An unknown type is acknowledged and ignored.
		r = e.stripeEvent(stripeSecret, "evt_2", "customer.created", t0.Add(time.Second), `{"id":"cus_A","object":"customer"}`).must(t, 200)
		is.Equal(r.data()["result"], "ignored")
		is.Equal(e.billingState(wid), afterCheckout)

		// A bad signature is 400 and changes nothing; the event, signed
		// right later, still applies (it was not recorded).
		r = e.stripeEvent("whsec_attacker", "evt_3", "customer.subscription.deleted", t0.Add(time.Second), deleted).must(t, 400, "bad_request")
		is.True(strings.Contains(r.Body["message"].(string), "Stripe-Signature"))
		is.Equal(e.billingState(wid), afterCheckout)
		e.do("POST", "/billing/webhooks/stripe", "", `{"id":"evt_3"}`).must(t, 400, "bad_request") // unsigned
		is.Equal(e.billingState(wid), afterCheckout)

		// An update found by customer (no metadata): agency, past due.
		end := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
		updated := fmt.Sprintf(`{"id":"sub_A","object":"subscription","customer":"cus_A","status":"past_due","cancel_at_period_end":true,
			"items":{"data":[{"price":{"id":"price_agency"},"current_period_end":%d}]}}`, end.Unix())
		e.stripeEvent(stripeSecret, "evt_4", "customer.subscription.updated", t0.Add(2*time.Second), updated).must(t, 200)
		is.Equal(tierOf(), "agency")
		s = sub()
		is.Equal(s["status"], "past_due")
		is.Equal(s["current_period_end"], end.Format(time.RFC3339))
		is.Equal(s["cancel_at_period_end"], true)
		is.Equal(rateTier(), "agency")

		// An older event delivered late is recorded but does not undo it.
		beforeStale := e.billingFields(wid)
		stale := `{"id":"sub_A","customer":"cus_A","status":"active","items":{"data":[{"price":{"id":"price_pro"}}]}}`
		e.stripeEvent(stripeSecret, "evt_0", "customer.subscription.updated", t0.Add(-time.Hour), stale).must(t, 200)
		is.Equal(e.billingFields(wid), beforeStale)

		// An unknown customer is acknowledged and ignored.
		r = e.stripeEvent(stripeSecret, "evt_5", "customer.subscription.deleted", t0.Add(3*time.Second),
			`{"id":"sub_Z","customer":"cus_nobody","status":"canceled"}`).must(t, 200)
		is.Equal(r.data()["result"], "ignored")
		is.Equal(e.billingFields(wid), beforeStale)

		// The bystander's metadata naming Payer's customer: acknowledged
		// (a redelivery cannot fix it) and nothing changes anywhere.
		stolen := fmt.Sprintf(`{"id":"sub_B","object":"subscription","customer":"cus_A","status":"active",
			"metadata":{"revops_workspace_id":"%d","revops_tier":"pro"},"items":{"data":[{"price":{"id":"price_pro"}}]}}`, other)
		r = e.stripeEvent(stripeSecret, "evt_5b", "customer.subscription.updated", t0.Add(3*time.Second), stolen).must(t, 200)
		is.Equal(r.data()["result"], "ignored")
		is.Equal(e.billingFields(wid), beforeStale)
		is.Equal(e.billingState(other), otherBefore)

		// Deletion moves the workspace back to the default tier.
		r = e.stripeEvent(stripeSecret, "evt_6", "customer.subscription.deleted", t0.Add(4*time.Second), deleted).must(t, 200)
		is.Equal(r.data()["result"], "applied")
		is.Equal(tierOf(), "free")
		is.Equal(sub()["status"], "canceled")
		is.Equal(rateTier(), "free")

		is.Equal(e.billingState(other), otherBefore) // nothing leaked to another workspace
	})
}

func TestBillingCheckoutAndPortal(t *testing.T) {
	needStripeMock(t)
	stores(t, func(t *testing.T, st *sqlstore.Store) {
		is := is.New(t)
		e := newEnv(t, withStore(st), withStripe(t))
		wid, key := e.newWorkspace("Buyer")
		base := fmt.Sprintf("/workspaces/%d/billing", wid)

		// No customer yet: the portal says what to do first.
		r := e.do("POST", base+"/portal", key, map[string]any{}).must(t, 409, "conflict")
		is.True(strings.Contains(r.Body["message"].(string), "/billing/checkout first"))

		e.do("POST", base+"/checkout", key, map[string]any{"tier": "gold"}).must(t, 422, "validation_failed")
		r = e.do("POST", base+"/checkout", key, map[string]any{"tier": "free"}).must(t, 422, "validation_failed")
		is.True(strings.Contains(r.fieldErr("tier"), "cannot be bought"))
		e.do("POST", base+"/checkout", key, map[string]any{"tier": "pro", "success_url": "not a url"}).must(t, 422, "validation_failed")
		e.do("POST", base+"/checkout", key, map[string]any{"tier": "pro", "cancel_url": "ftp://app.test/x"}).must(t, 422, "validation_failed") // Stripe would refuse it: not a 500

		// Checkout answers {"url": …} as the whole body and keeps the new customer.
		r = e.do("POST", base+"/checkout", key, map[string]any{"tier": "pro", "cancel_url": "https://app.test/cancel"}).must(t, 200)
		is.True(strings.HasPrefix(r.Body["url"].(string), "https://"))
		is.Equal(len(r.Body), 1)
		s := e.do("GET", base+"/status", key, nil).must(t, 200).data()["subscription"].(map[string]any)
		customer, _ := s["customer_id"].(string)
		is.True(strings.HasPrefix(customer, "cus_"))
		is.Equal(s["status"], "none") // nothing is paid until the provider says so
		is.Equal(e.do("GET", base+"/status", key, nil).data()["plan"].(map[string]any)["tier"], "free")

		// The next checkout reuses the customer.
		e.do("POST", base+"/checkout", key, map[string]any{"tier": "agency"}).must(t, 200)
		sub, err := e.store.Subscription(context.Background(), wid)
		is.NoErr(err)
		is.Equal(sub.CustomerID, customer)

		r = e.do("POST", base+"/portal", key, map[string]any{"return_url": "https://app.test/settings"}).must(t, 200)
		is.True(strings.HasPrefix(r.Body["url"].(string), "https://"))
		is.Equal(len(r.Body), 1)
	})
}

// deletedCustomer answers what Stripe answers for a deleted customer to any
// request naming cus_gone, and passes the rest to stripe-mock (which keeps
// no state, so nothing can be deleted there).
type deletedCustomer struct{}

func (deletedCustomer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		if v, _ := url.ParseQuery(string(b)); v.Get("customer") == "cus_gone" {
			return &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
				Body: io.NopCloser(strings.NewReader(`{"error":{"code":"resource_missing","param":"customer","type":"invalid_request_error","message":"No such customer: 'cus_gone'"}}`))}, nil
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A customer deleted in Stripe: the portal answers 409 saying what to do,
// and checkout makes a new customer and keeps it in place of the old.
func TestBillingDeletedCustomer(t *testing.T) {
	needStripeMock(t)
	stores(t, func(t *testing.T, st *sqlstore.Store) {
		is := is.New(t)
		e := newEnv(t, withStore(st), withStripeVia(t, deletedCustomer{}))
		wid, key := e.newWorkspace("Deleted")
		base := fmt.Sprintf("/workspaces/%d/billing", wid)
		_, err := e.store.UpdateSubscription(context.Background(), wid, func(s *billing.Subscription) error {
			s.Provider, s.CustomerID, s.Status = "stripe", "cus_gone", billing.StatusCanceled
			return nil
		})
		is.NoErr(err)

		r := e.do("POST", base+"/portal", key, map[string]any{}).must(t, 409, "conflict")
		is.True(strings.Contains(r.Body["message"].(string), "no longer exists"))

		e.do("POST", base+"/checkout", key, map[string]any{"tier": "pro"}).must(t, 200)
		sub, err := e.store.Subscription(context.Background(), wid)
		is.NoErr(err)
		is.True(sub.CustomerID != "cus_gone" && strings.HasPrefix(sub.CustomerID, "cus_")) // replaced
		e.do("POST", base+"/portal", key, map[string]any{}).must(t, 200)
	})
}

// TestBillingTenancy: a key of workspace A cannot read or act on B's
// billing, with billing enabled (the tenancy matrix covers disabled mode).
func TestPaymentsTenancy(t *testing.T) {
	e := newEnv(t, withStripe(t))
	_, keyA := e.newWorkspace("A")
	b, keyB := e.newWorkspace("B")
	ctx := context.Background()
	_, err := e.store.UpdateSubscription(ctx, b, func(s *billing.Subscription) error {
		s.Provider, s.CustomerID, s.Status, s.Tier = "stripe", "cus_B", billing.StatusActive, "pro"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before := e.billingState(b)
	base := fmt.Sprintf("/workspaces/%d/billing", b)
	for _, c := range []struct {
		method, path string
		body         any
	}{{"GET", base + "/status", nil}, {"POST", base + "/checkout", map[string]any{"tier": "pro"}}, {"POST", base + "/portal", map[string]any{}}} {
		e.do(c.method, c.path, keyA, c.body).must(t, 404, "not_found")
	}
	if after := e.billingState(b); after != before {
		t.Fatalf("B's billing changed: %s → %s", before, after)
	}
	// B's own key sees it (the 404s were not a broken route).
	s := e.do("GET", base+"/status", keyB, nil).must(t, 200).data()["subscription"].(map[string]any)
	if s["customer_id"] != "cus_B" {
		t.Fatalf("B's status = %v", s)
	}
}

func TestBillingDisabled(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	wid, key := e.newWorkspace("Selfhost")
	// A host's own billing route opts in by its tag.
	revops.Handle(e.p, revops.Route{Method: "POST", Path: "/workspaces/{id}/billing/credits", Tag: revops.BillingTag, Summary: "Host route",
		Scope: "billing:write", Tenant: revops.TenantPath},
		func(ctx context.Context, c *revops.Call, _ *revops.NoBody) (map[string]int, error) {
			t.Error("a disabled billing route ran its handler")
			return nil, nil
		})
	e.oas = openAPIValidator(t, e.p) // the document now has the host route
	e.client.Transport = e.oas.Transport(nil)

	n := 0
	for _, rt := range e.p.Routes() {
		if rt.Tag != revops.BillingTag {
			continue
		}
		path := strings.ReplaceAll(rt.Path, "{id}", fmt.Sprint(wid))
		r := e.do(rt.Method, path, key, map[string]any{"tier": "pro"}).must(t, 200)
		is.Equal(string(r.Raw), `{"billingEnabled":false}`+"\n")
		// Still authenticated and scope-checked.
		e.do(rt.Method, path, "", nil).must(t, 401, "unauthorized")
		n++
	}
	is.Equal(n, 13) // status, checkout, portal, 8 account and ledger routes, usage-overview and the host's
	wid2, reader := e.newWorkspace("Reader", "billing:read")
	e.do("POST", fmt.Sprintf("/workspaces/%d/billing/checkout", wid2), reader, map[string]any{"tier": "pro"}).must(t, 403, "access_denied")
	e.do("GET", fmt.Sprintf("/workspaces/%d/billing/status", wid2), reader, nil).must(t, 200)

	// No provider, no inbound route: a misdirected provider gets 404 and
	// retries rather than having its events dropped.
	e.do("POST", "/billing/webhooks/stripe", "", `{"id":"evt_1"}`).must(t, 404, "not_found")
	// The rest of the API is untouched.
	e.do("GET", fmt.Sprintf("/workspaces/%d", wid), key, nil).must(t, 200)
	if e.oas.Validated() == 0 {
		t.Fatal("no response was validated against the OpenAPI document")
	}
}
