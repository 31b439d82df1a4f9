package stripe_test

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
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/revopsdev/revops/adapters/stripe"
	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

// MockEnv names the stripe-mock (v0.203.0) the API tests call; scripts/test
// installs and starts one.
const MockEnv = "REVOPS_TEST_STRIPE_MOCK_URL"

const secret = "whsec_test_secret"

func mockURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(MockEnv)
	if u == "" {
		t.Skip("stripe-mock tests skipped: set " + MockEnv + " to a running stripe-mock v0.203.0 " +
			"(go install github.com/stripe/stripe-mock@v0.203.0; stripe-mock -http-addr 127.0.0.1:12111), or run scripts/test, which does both")
	}
	return u
}

// recorder keeps the form bodies sent to Stripe, by path. A request naming
// the customer gone gets Stripe's answer for a deleted customer (stripe-mock
// keeps no state, so it cannot delete one).
type recorder struct {
	mu   sync.Mutex
	sent map[string][]url.Values
	gone string
}

func (rec *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		v, _ := url.ParseQuery(string(b))
		rec.mu.Lock()
		rec.sent[r.URL.Path] = append(rec.sent[r.URL.Path], v)
		rec.mu.Unlock()
		if rec.gone != "" && v.Get("customer") == rec.gone {
			body := fmt.Sprintf(`{"error":{"code":"resource_missing","param":"customer","type":"invalid_request_error","message":"No such customer: '%s'"}}`, rec.gone)
			return &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (rec *recorder) last(t *testing.T, path string) url.Values {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	l := rec.sent[path]
	if len(l) == 0 {
		t.Fatalf("nothing was sent to %s (sent: %v)", path, rec.sent)
	}
	return l[len(l)-1]
}

func (rec *recorder) count(path string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.sent[path])
}

func validConfig() stripe.Config {
	return stripe.Config{SecretKey: "sk_test_123", WebhookSecret: secret,
		Prices: map[string]string{"pro": "price_pro", "agency": "price_agency"}, SuccessURL: "https://app.test/billing/done"}
}

func newMocked(t *testing.T) (*stripe.Provider, *recorder) {
	cfg := validConfig()
	cfg.APIBaseURL = mockURL(t)
	rec := &recorder{sent: map[string][]url.Values{}}
	cfg.HTTPClient = &http.Client{Transport: rec, Timeout: 10 * time.Second}
	p, err := stripe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*stripe.Config)
		want string
	}{
		{"no key", func(c *stripe.Config) { c.SecretKey = "" }, "SecretKey is empty: use the secret key"},
		{"publishable key", func(c *stripe.Config) { c.SecretKey = "pk_test_1" }, "a publishable key (pk_…) cannot"},
		{"no webhook secret", func(c *stripe.Config) { c.WebhookSecret = "" }, "WebhookSecret is empty: use the signing secret (whsec_…)"},
		{"api key as webhook secret", func(c *stripe.Config) { c.WebhookSecret = "sk_test_1" }, "does not start with whsec_"},
		{"no prices", func(c *stripe.Config) { c.Prices = nil }, `Prices is empty: map each paid tier`},
		{"product id", func(c *stripe.Config) { c.Prices = map[string]string{"pro": "prod_1"} }, `Prices["pro"] = "prod_1": use the price's id`},
		{"shared price", func(c *stripe.Config) { c.Prices = map[string]string{"pro": "price_1", "agency": "price_1"} }, "share price price_1"},
		{"relative url", func(c *stripe.Config) { c.SuccessURL = "/done" }, "SuccessURL \"/done\" is not an absolute http(s) URL"},
		{"negative tolerance", func(c *stripe.Config) { c.Tolerance = -time.Second }, "Tolerance must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.mod(&cfg)
			_, err := stripe.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	p, err := stripe.New(validConfig())
	if err != nil || p.Name() != "stripe" || p.SignatureHeader() != "Stripe-Signature" {
		t.Fatalf("New(valid) = %v, %v", p, err)
	}
}

func TestCheckoutCreatesThenReusesCustomer(t *testing.T) {
	p, rec := newMocked(t)
	ctx := context.Background()
	cs, err := p.Checkout(ctx, billing.CheckoutInput{WorkspaceID: 42, Tier: "pro", Email: "o@acme.test", CancelURL: "https://app.test/cancel"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cs.URL, "https://") || !strings.HasPrefix(cs.CustomerID, "cus_") {
		t.Fatalf("Checkout = %+v, want a URL and a customer", cs)
	}
	c := rec.last(t, "/v1/customers")
	if c.Get("metadata[revops_workspace_id]") != "42" || c.Get("email") != "o@acme.test" {
		t.Errorf("customer created with %v, want the workspace id in metadata and the email", c)
	}
	s := rec.last(t, "/v1/checkout/sessions")
	for k, want := range map[string]string{
		"mode": "subscription", "customer": cs.CustomerID, "client_reference_id": "42",
		"line_items[0][price]": "price_pro", "line_items[0][quantity]": "1",
		"success_url": "https://app.test/billing/done", "cancel_url": "https://app.test/cancel",
		"metadata[revops_workspace_id]": "42", "metadata[revops_tier]": "pro",
		"subscription_data[metadata][revops_workspace_id]": "42", "subscription_data[metadata][revops_tier]": "pro",
	} {
		if got := s.Get(k); got != want {
			t.Errorf("checkout session %s = %q, want %q", k, got, want)
		}
	}

	// A known customer is reused: no new one.
	cs2, err := p.Checkout(ctx, billing.CheckoutInput{WorkspaceID: 42, Tier: "agency", CustomerID: "cus_known", SuccessURL: "https://app.test/mine"})
	if err != nil {
		t.Fatal(err)
	}
	if cs2.CustomerID != "cus_known" || rec.count("/v1/customers") != 1 {
		t.Errorf("second checkout: customer %q and %d customers created, want cus_known reused", cs2.CustomerID, rec.count("/v1/customers"))
	}
	s = rec.last(t, "/v1/checkout/sessions")
	if s.Get("customer") != "cus_known" || s.Get("line_items[0][price]") != "price_agency" || s.Get("success_url") != "https://app.test/mine" {
		t.Errorf("second checkout session sent %v", s)
	}
}

func TestCheckoutRefusals(t *testing.T) {
	p, rec := newMocked(t)
	ctx := context.Background()
	_, err := p.Checkout(ctx, billing.CheckoutInput{WorkspaceID: 1, Tier: "free"})
	if e := core.As(err); e == nil || e.Code != core.CodeValidation || !strings.Contains(e.Fields["tier"][0], "subscribe to one of agency, pro") {
		t.Errorf("Checkout of an unpriced tier = %v, want a validation error on tier", err)
	}
	cfg := validConfig()
	cfg.SuccessURL, cfg.APIBaseURL, cfg.HTTPClient = "", mockURL(t), &http.Client{Transport: rec}
	p2, err := stripe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p2.Checkout(ctx, billing.CheckoutInput{WorkspaceID: 1, Tier: "pro"})
	if e := core.As(err); e == nil || e.Code != core.CodeValidation || len(e.Fields["success_url"]) == 0 {
		t.Errorf("Checkout without any success URL = %v, want a validation error on success_url", err)
	}
	if n := rec.count("/v1/customers") + rec.count("/v1/checkout/sessions"); n != 0 {
		t.Errorf("refused checkouts called Stripe %d times", n)
	}
}

func TestPortal(t *testing.T) {
	p, rec := newMocked(t)
	u, err := p.Portal(context.Background(), billing.PortalInput{WorkspaceID: 7, CustomerID: "cus_7", ReturnURL: "https://app.test/settings"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "https://") {
		t.Errorf("Portal = %q, want a URL", u)
	}
	s := rec.last(t, "/v1/billing_portal/sessions")
	if s.Get("customer") != "cus_7" || s.Get("return_url") != "https://app.test/settings" {
		t.Errorf("portal session sent %v", s)
	}
}

func TestDeletedCustomer(t *testing.T) {
	p, rec := newMocked(t)
	rec.gone = "cus_gone"
	ctx := context.Background()
	// Checkout replaces it with a new customer, which the caller stores.
	cs, err := p.Checkout(ctx, billing.CheckoutInput{WorkspaceID: 9, Tier: "pro", CustomerID: "cus_gone"})
	if err != nil {
		t.Fatal(err)
	}
	if cs.CustomerID == "cus_gone" || !strings.HasPrefix(cs.CustomerID, "cus_") || rec.count("/v1/customers") != 1 {
		t.Fatalf("checkout for a deleted customer = %+v with %d customers created, want one new customer", cs, rec.count("/v1/customers"))
	}
	if got := rec.last(t, "/v1/checkout/sessions").Get("customer"); got != cs.CustomerID {
		t.Errorf("the retried session named customer %q, want %q", got, cs.CustomerID)
	}
	// The portal cannot open for it: a conflict saying what to do.
	_, err = p.Portal(ctx, billing.PortalInput{WorkspaceID: 9, CustomerID: "cus_gone"})
	if e := core.As(err); e == nil || e.Code != core.CodeConflict || !strings.Contains(e.Message, "/workspaces/9/billing/checkout") {
		t.Fatalf("portal for a deleted customer = %v, want a conflict pointing to checkout", err)
	}
}

func TestStripeErrorsAreWrapped(t *testing.T) {
	cfg := validConfig()
	cfg.APIBaseURL = "http://127.0.0.1:1" // nothing listens
	cfg.HTTPClient = &http.Client{Timeout: time.Second}
	p, err := stripe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Portal(context.Background(), billing.PortalInput{WorkspaceID: 7, CustomerID: "cus_7"})
	if err == nil || !strings.Contains(err.Error(), "stripe: create billing portal session for workspace 7") || core.As(err).Code != core.CodeUnavailable {
		t.Fatalf("Portal against a dead API = %v, want a wrapped service_unavailable error", err)
	}
}

// sign returns payload and its Stripe-Signature header made with secret.
func sign(payload string, at time.Time, key string) ([]byte, string) {
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: key, Timestamp: at})
	return sp.Payload, sp.Header
}

func event(id, typ string, created int64, object string) string {
	return fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2024-06-20","type":%q,"created":%d,"data":{"object":%s}}`, id, typ, created, object)
}

func TestParseEvent(t *testing.T) {
	p, err := stripe.New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	end := int64(1_800_000_000)
	for _, tc := range []struct {
		name, payload string
		want          billing.ProviderEvent
	}{
		{"checkout completed, paid", event("evt_1", "checkout.session.completed", 1_700_000_000,
			`{"id":"cs_1","object":"checkout.session","mode":"subscription","customer":"cus_1","subscription":"sub_1","client_reference_id":"42","payment_status":"paid","metadata":{"revops_workspace_id":"42","revops_tier":"pro"}}`),
			billing.ProviderEvent{ID: "evt_1", Type: "checkout.session.completed", Kind: billing.EventCheckoutCompleted, WorkspaceID: 42,
				CustomerID: "cus_1", SubscriptionID: "sub_1", Status: billing.StatusActive, Tier: "pro"}},
		{"checkout completed, unpaid, expanded customer, no metadata: client_reference_id (anyone's to set on a Payment Link) names no workspace", event("evt_2", "checkout.session.completed", 1_700_000_000,
			`{"mode":"subscription","customer":{"id":"cus_2","object":"customer"},"subscription":null,"client_reference_id":"43","payment_status":"unpaid","metadata":{}}`),
			billing.ProviderEvent{ID: "evt_2", Type: "checkout.session.completed", Kind: billing.EventCheckoutCompleted, CustomerID: "cus_2"}},
		{"checkout of a one-off payment is ignored", event("evt_3", "checkout.session.completed", 1_700_000_000, `{"mode":"payment","customer":"cus_3"}`),
			billing.ProviderEvent{ID: "evt_3", Type: "checkout.session.completed"}},
		{"subscription updated, current API (period on items)", event("evt_4", "customer.subscription.updated", 1_700_000_000,
			fmt.Sprintf(`{"id":"sub_4","object":"subscription","customer":"cus_4","status":"past_due","cancel_at_period_end":true,"metadata":{"revops_workspace_id":"44"},"items":{"data":[{"price":{"id":"price_agency"},"current_period_end":%d}]}}`, end)),
			billing.ProviderEvent{ID: "evt_4", Type: "customer.subscription.updated", Kind: billing.EventSubscriptionUpdated, WorkspaceID: 44,
				CustomerID: "cus_4", SubscriptionID: "sub_4", Status: billing.StatusPastDue, Tier: "agency", CurrentPeriodEnd: ptr(time.Unix(end, 0).UTC()), CancelAtPeriodEnd: true}},
		{"subscription created, older API (period on subscription), unknown price", event("evt_5", "customer.subscription.created", 1_700_000_000,
			fmt.Sprintf(`{"id":"sub_5","customer":"cus_5","status":"active","current_period_end":%d,"items":{"data":[{"price":{"id":"price_other"}}]}}`, end)),
			billing.ProviderEvent{ID: "evt_5", Type: "customer.subscription.created", Kind: billing.EventSubscriptionUpdated,
				CustomerID: "cus_5", SubscriptionID: "sub_5", Status: billing.StatusActive, CurrentPeriodEnd: ptr(time.Unix(end, 0).UTC())}},
		{"subscription deleted", event("evt_6", "customer.subscription.deleted", 1_700_000_000,
			`{"id":"sub_6","customer":"cus_6","status":"canceled","items":{"data":[]}}`),
			billing.ProviderEvent{ID: "evt_6", Type: "customer.subscription.deleted", Kind: billing.EventSubscriptionDeleted,
				CustomerID: "cus_6", SubscriptionID: "sub_6", Status: billing.StatusCanceled}},
		{"invoice payment failed, current API", event("evt_7", "invoice.payment_failed", 1_700_000_000,
			`{"id":"in_7","customer":"cus_7","parent":{"subscription_details":{"subscription":"sub_7","metadata":{"revops_workspace_id":"47"}}}}`),
			billing.ProviderEvent{ID: "evt_7", Type: "invoice.payment_failed", Kind: billing.EventPaymentFailed, WorkspaceID: 47, CustomerID: "cus_7", SubscriptionID: "sub_7"}},
		{"invoice payment failed, older API", event("evt_8", "invoice.payment_failed", 1_700_000_000, `{"id":"in_8","customer":"cus_8","subscription":"sub_8"}`),
			billing.ProviderEvent{ID: "evt_8", Type: "invoice.payment_failed", Kind: billing.EventPaymentFailed, CustomerID: "cus_8", SubscriptionID: "sub_8"}},
		{"unknown type is returned without a kind", event("evt_9", "customer.created", 1_700_000_000, `{"id":"cus_9"}`),
			billing.ProviderEvent{ID: "evt_9", Type: "customer.created"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, sig := sign(tc.payload, now, secret)
			got, err := p.ParseEvent(ctx, body, sig)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.CreatedAt = time.Unix(1_700_000_000, 0).UTC()
			if fmt.Sprintf("%+v", deref(got)) != fmt.Sprintf("%+v", deref(&want)) {
				t.Errorf("ParseEvent =\n %+v\nwant\n %+v", deref(got), deref(&want))
			}
		})
	}
}

// deref shows the period end's value rather than its address.
func deref(e *billing.ProviderEvent) any {
	type shown struct {
		billing.ProviderEvent
		End string
	}
	s := shown{ProviderEvent: *e}
	if e.CurrentPeriodEnd != nil {
		s.End = e.CurrentPeriodEnd.Format(time.RFC3339)
	}
	s.CurrentPeriodEnd = nil
	return s
}

func ptr[T any](v T) *T { return &v }

func TestParseEventRefusals(t *testing.T) {
	p, err := stripe.New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good := event("evt_1", "customer.subscription.updated", 1_700_000_000, `{"id":"sub_1","status":"active"}`)
	body, sig := sign(good, time.Now(), secret)
	tampered := bytes.Replace(body, []byte("active"), []byte("trialing"), 1)
	_, otherSig := sign(good, time.Now(), "whsec_other")
	oldBody, oldSig := sign(good, time.Now().Add(-time.Hour), secret)
	aheadBody, aheadSig := sign(good, time.Now().Add(10*time.Minute), secret)
	for _, tc := range []struct {
		name      string
		body      []byte
		signature string
		want      error
	}{
		{"no signature", body, "", billing.ErrInvalidSignature},
		{"garbage signature", body, "t=1,v1=zz", billing.ErrInvalidSignature},
		{"another secret", body, otherSig, billing.ErrInvalidSignature},
		{"tampered body", tampered, sig, billing.ErrInvalidSignature},
		{"too old (replayed capture)", oldBody, oldSig, billing.ErrInvalidSignature},
		{"too far ahead", aheadBody, aheadSig, billing.ErrInvalidSignature},
		{"too far ahead, behind a second t=", aheadBody, fmt.Sprintf("t=%d,", time.Now().Unix()) + aheadSig, billing.ErrInvalidSignature},
		{"signed garbage", signed(`not json`), "", billing.ErrMalformedEvent},
		{"signed non-event", signed(`{"object":"customer","id":"cus_1"}`), "", billing.ErrMalformedEvent},
		{"signed subscription without id", signed(event("evt_x", "customer.subscription.updated", 1, `{"status":"active"}`)), "", billing.ErrMalformedEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, s := tc.body, tc.signature
			if s == "" && !errors.Is(tc.want, billing.ErrInvalidSignature) {
				b, s = sign(string(b), time.Now(), secret)
			}
			ev, err := p.ParseEvent(ctx, b, s)
			if !errors.Is(err, tc.want) || ev != nil {
				t.Fatalf("ParseEvent = %v, %v; want an error wrapping %v", ev, err, tc.want)
			}
		})
	}
}

func signed(s string) []byte { return []byte(s) }
