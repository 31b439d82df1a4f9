// Package stripe is revops's Stripe payment provider (billing.Provider) on
// stripe-go v85: subscription Checkout, the customer portal, and inbound
// events verified with Stripe's signature scheme.
//
//	prov, err := stripe.New(stripe.Config{
//		SecretKey:     os.Getenv("REVOPS_STRIPE_SECRET_KEY"),
//		WebhookSecret: os.Getenv("REVOPS_STRIPE_WEBHOOK_SECRET"),
//		Prices:        map[string]string{"pro": "price_…", "agency": "price_…"},
//		SuccessURL:    "https://app.example.com/billing?done=1",
//	})
//	p, err := revops.New(revops.Config{Store: st, Billing: billing.Config{Provider: prov}})
//
// Point the Stripe webhook endpoint at <mount prefix>/billing/webhooks/stripe
// with the events checkout.session.completed, customer.subscription.created,
// customer.subscription.updated, customer.subscription.deleted and
// invoice.payment_failed.
//
// Checkout puts the workspace id and tier into the session's and the
// subscription's metadata (revops_workspace_id, revops_tier), so events
// name their workspace; events that do not are matched by customer.
package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	sg "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

var _ billing.Provider = (*Provider)(nil)

// Name is the provider's name: its webhook path is /billing/webhooks/stripe.
const Name = "stripe"

// Metadata keys Checkout sets on the session and the subscription.
const (
	MetaWorkspaceID = "revops_workspace_id"
	MetaTier        = "revops_tier"
)

// Config configures a Provider. SecretKey, WebhookSecret and Prices are
// required.
type Config struct {
	// SecretKey is the API key (sk_live_…, sk_test_… or a restricted rk_…).
	SecretKey string
	// WebhookSecret is the signing secret (whsec_…) of the webhook endpoint.
	WebhookSecret string
	// Prices maps each paid tier to its recurring Stripe price id.
	Prices map[string]string
	// SuccessURL and CancelURL are where Checkout sends the customer back
	// when the request gives none; ReturnURL is the portal's.
	SuccessURL, CancelURL, ReturnURL string
	// APIBaseURL replaces https://api.stripe.com (stripe-mock in tests).
	APIBaseURL string
	// HTTPClient makes the API calls (default: stripe-go's).
	HTTPClient *http.Client
	// Tolerance is how old a signed event may be (default 5 minutes), to
	// refuse replays of captured requests.
	Tolerance time.Duration
}

// Provider is the Stripe billing.Provider.
type Provider struct {
	cfg    Config
	client *sg.Client
	tiers  map[string]string // price id → tier
}

// New validates cfg and returns a Provider. It does no I/O.
func New(cfg Config) (*Provider, error) {
	var errs []error
	switch {
	case cfg.SecretKey == "":
		errs = append(errs, errors.New("stripe: Config.SecretKey is empty: use the secret key from the Stripe Dashboard (Developers → API keys), sk_test_… or sk_live_…"))
	case !hasAnyPrefix(cfg.SecretKey, "sk_", "rk_"):
		errs = append(errs, errors.New("stripe: Config.SecretKey does not look like a Stripe secret key (sk_… or rk_…); a publishable key (pk_…) cannot create sessions"))
	}
	switch {
	case cfg.WebhookSecret == "":
		errs = append(errs, errors.New("stripe: Config.WebhookSecret is empty: use the signing secret (whsec_…) of the webhook endpoint pointing at <prefix>/billing/webhooks/stripe (Dashboard → Developers → Webhooks, or what `stripe listen` prints)"))
	case !strings.HasPrefix(cfg.WebhookSecret, "whsec_"):
		errs = append(errs, errors.New("stripe: Config.WebhookSecret does not start with whsec_: it is the endpoint's signing secret, not an API key"))
	}
	tiers := map[string]string{}
	if len(cfg.Prices) == 0 {
		errs = append(errs, errors.New(`stripe: Config.Prices is empty: map each paid tier to its recurring price id, e.g. {"pro": "price_…"}`))
	}
	for _, tier := range slices.Sorted(maps.Keys(cfg.Prices)) {
		price := cfg.Prices[tier]
		switch {
		case !strings.HasPrefix(price, "price_"):
			errs = append(errs, fmt.Errorf("stripe: Config.Prices[%q] = %q: use the price's id (price_…), not a product id or an amount", tier, price))
		case tiers[price] != "":
			errs = append(errs, fmt.Errorf("stripe: Config.Prices: tiers %q and %q share price %s; give each tier its own price so events map back to one tier", tiers[price], tier, price))
		default:
			tiers[price] = tier
		}
	}
	for name, u := range map[string]string{"SuccessURL": cfg.SuccessURL, "CancelURL": cfg.CancelURL, "ReturnURL": cfg.ReturnURL, "APIBaseURL": cfg.APIBaseURL} {
		if u != "" && !absoluteURL(u) {
			errs = append(errs, fmt.Errorf("stripe: Config.%s %q is not an absolute http(s) URL", name, u))
		}
	}
	if cfg.Tolerance < 0 {
		errs = append(errs, errors.New("stripe: Config.Tolerance must not be negative (0 takes the default, 5 minutes)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = webhook.DefaultTolerance
	}
	bc := &sg.BackendConfig{HTTPClient: cfg.HTTPClient, LeveledLogger: &sg.LeveledLogger{Level: sg.LevelNull}}
	if cfg.APIBaseURL != "" {
		bc.URL = sg.String(strings.TrimSuffix(cfg.APIBaseURL, "/"))
	}
	// Per-provider backends: stripe-go's package-level ones are shared
	// mutable state.
	b := sg.GetBackendWithConfig(sg.APIBackend, bc)
	client := sg.NewClient(cfg.SecretKey, sg.WithBackends(&sg.Backends{API: b, Connect: b, Uploads: b, MeterEvents: b}))
	return &Provider{cfg: cfg, client: client, tiers: tiers}, nil
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Name returns "stripe".
func (p *Provider) Name() string { return Name }

// SignatureHeader returns "Stripe-Signature".
func (p *Provider) SignatureHeader() string { return "Stripe-Signature" }

// Checkout creates a subscription-mode Checkout Session for the tier's
// price, creating the workspace's customer first when it has none.
func (p *Provider) Checkout(ctx context.Context, in billing.CheckoutInput) (*billing.CheckoutSession, error) {
	if _, ok := p.cfg.Prices[in.Tier]; !ok {
		return nil, core.Invalid("tier", fmt.Sprintf("Tier %q cannot be bought: subscribe to one of %s.", in.Tier, strings.Join(slices.Sorted(maps.Keys(p.cfg.Prices)), ", ")))
	}
	success, cancel := or(in.SuccessURL, p.cfg.SuccessURL), or(in.CancelURL, p.cfg.CancelURL)
	if success == "" {
		return nil, core.Invalid("success_url", "The success_url field is required: this server has no default (the Stripe adapter's Config.SuccessURL).")
	}
	wid := strconv.FormatInt(in.WorkspaceID, 10)
	customer := in.CustomerID
	if customer == "" {
		cp := &sg.CustomerCreateParams{Metadata: map[string]string{MetaWorkspaceID: wid}}
		if in.Email != "" {
			cp.Email = sg.String(in.Email)
		}
		c, err := p.client.V1Customers.Create(ctx, cp)
		if err != nil {
			return nil, apiError(fmt.Sprintf("create customer for workspace %d", in.WorkspaceID), err)
		}
		customer = c.ID
	}
	cs, err := p.checkoutSession(ctx, in, customer, success, cancel)
	if missingCustomer(err) && in.CustomerID != "" {
		// The workspace's customer was deleted in Stripe: a new one, and
		// the caller keeps its id (CheckoutSession.CustomerID).
		in.CustomerID = ""
		return p.Checkout(ctx, in)
	}
	return cs, err
}

func (p *Provider) checkoutSession(ctx context.Context, in billing.CheckoutInput, customer, success, cancel string) (*billing.CheckoutSession, error) {
	price := p.cfg.Prices[in.Tier]
	wid := strconv.FormatInt(in.WorkspaceID, 10)
	meta := map[string]string{MetaWorkspaceID: wid, MetaTier: in.Tier}
	sp := &sg.CheckoutSessionCreateParams{
		Mode:              sg.String(string(sg.CheckoutSessionModeSubscription)),
		Customer:          sg.String(customer),
		ClientReferenceID: sg.String(wid),
		SuccessURL:        sg.String(success),
		LineItems:         []*sg.CheckoutSessionCreateLineItemParams{{Price: sg.String(price), Quantity: sg.Int64(1)}},
		Metadata:          meta,
		SubscriptionData:  &sg.CheckoutSessionCreateSubscriptionDataParams{Metadata: meta},
	}
	if cancel != "" {
		sp.CancelURL = sg.String(cancel)
	}
	s, err := p.client.V1CheckoutSessions.Create(ctx, sp)
	if err != nil {
		// A customer created above stays in Stripe unlinked; the next
		// checkout creates another (harmless, and rare: Stripe refused).
		return nil, apiError(fmt.Sprintf("create checkout session for workspace %d", in.WorkspaceID), err)
	}
	return &billing.CheckoutSession{URL: s.URL, CustomerID: customer}, nil
}

// Portal creates a billing portal session for the customer.
func (p *Provider) Portal(ctx context.Context, in billing.PortalInput) (string, error) {
	bp := &sg.BillingPortalSessionCreateParams{Customer: sg.String(in.CustomerID)}
	if ret := or(in.ReturnURL, p.cfg.ReturnURL); ret != "" {
		bp.ReturnURL = sg.String(ret)
	}
	s, err := p.client.V1BillingPortalSessions.Create(ctx, bp)
	if missingCustomer(err) {
		return "", &core.Error{Code: core.CodeConflict, Cause: err, Message: fmt.Sprintf(
			"The workspace's Stripe customer no longer exists: start a new subscription with POST /workspaces/%d/billing/checkout.", in.WorkspaceID)}
	}
	if err != nil {
		return "", apiError(fmt.Sprintf("create billing portal session for workspace %d", in.WorkspaceID), err)
	}
	return s.URL, nil
}

// missingCustomer tells whether Stripe refused a request because the
// customer it names does not exist (deleted in the dashboard, or made
// with other API keys).
func missingCustomer(err error) bool {
	var se *sg.Error
	return errors.As(err, &se) && se.Code == sg.ErrorCodeResourceMissing && se.Param == "customer"
}

// apiError wraps a failed Stripe call. Stripe unreachable, failing or
// rate limiting is service_unavailable (503: retry later); anything else
// it refused is this server's configuration (a price id, a key) and stays
// internal, its cause logged.
func apiError(doing string, err error) error {
	var se *sg.Error
	if !errors.As(err, &se) || se.HTTPStatusCode >= 500 || se.HTTPStatusCode == http.StatusTooManyRequests || se.Type == sg.ErrorTypeAPI {
		return &core.Error{Code: core.CodeUnavailable, Message: "The payment provider cannot be reached right now; try again shortly.",
			Cause: fmt.Errorf("stripe: %s: %w", doing, err)}
	}
	return fmt.Errorf("stripe: %s: %w", doing, err)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ParseEvent verifies body against the Stripe-Signature header value and
// maps the event. Objects are read with the few fields revops needs, in the
// shapes of both older and current API versions, so the endpoint's API
// version need not match stripe-go's.
func (p *Provider) ParseEvent(ctx context.Context, body []byte, signature string) (*billing.ProviderEvent, error) {
	if err := webhook.ValidatePayloadWithTolerance(body, signature, p.cfg.WebhookSecret, p.cfg.Tolerance); err != nil {
		return nil, fmt.Errorf("%w: %w", billing.ErrInvalidSignature, err)
	}
	// stripe-go refuses only old timestamps; one from too far ahead is as
	// suspect (a captured event replayed later would still be "fresh").
	if at, ok := signedAt(signature); !ok || time.Unix(at, 0).After(time.Now().Add(p.cfg.Tolerance)) {
		return nil, fmt.Errorf("%w: the signature's timestamp is more than %v ahead", billing.ErrInvalidSignature, p.cfg.Tolerance)
	}
	// Verified above; here only parsed, whatever the API version.
	ev, err := webhook.ConstructEventWithOptions(body, signature, p.cfg.WebhookSecret,
		webhook.ConstructEventOptions{IgnoreTolerance: true, IgnoreAPIVersionMismatch: true})
	if err != nil || ev.ID == "" || ev.Data == nil {
		return nil, fmt.Errorf("%w: %v", billing.ErrMalformedEvent, err)
	}
	out := &billing.ProviderEvent{ID: ev.ID, Type: string(ev.Type), CreatedAt: time.Unix(ev.Created, 0).UTC()}
	switch ev.Type {
	case "checkout.session.completed":
		err = p.checkoutCompleted(ev.Data.Raw, out)
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		err = p.subscriptionChanged(ev.Data.Raw, out, ev.Type == "customer.subscription.deleted")
	case "invoice.payment_failed":
		err = paymentFailed(ev.Data.Raw, out)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", billing.ErrMalformedEvent, ev.Type, ev.ID, err)
	}
	return out, nil
}

// ref is an expandable field: an id, or the object with its id.
type ref string

func (r *ref) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			ID string `json:"id"`
		}
		err := json.Unmarshal(b, &o)
		*r = ref(o.ID)
		return err
	}
	if string(b) == "null" {
		*r = ""
		return nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	*r = ref(s)
	return err
}

func workspaceOf(meta map[string]string) int64 {
	s := meta[MetaWorkspaceID]
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

func (p *Provider) checkoutCompleted(raw []byte, out *billing.ProviderEvent) error {
	var s struct {
		Mode          string            `json:"mode"`
		Customer      ref               `json:"customer"`
		Subscription  ref               `json:"subscription"`
		PaymentStatus string            `json:"payment_status"`
		Metadata      map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	if s.Mode != string(sg.CheckoutSessionModeSubscription) {
		return nil // a one-off payment: not revops's
	}
	out.Kind = billing.EventCheckoutCompleted
	// Only our metadata names the workspace: client_reference_id can be set
	// by anyone opening a Payment Link of the same Stripe account.
	out.WorkspaceID = workspaceOf(s.Metadata)
	out.CustomerID, out.SubscriptionID = string(s.Customer), string(s.Subscription)
	if _, ok := p.cfg.Prices[s.Metadata[MetaTier]]; ok {
		out.Tier = s.Metadata[MetaTier]
	}
	if s.PaymentStatus == "paid" || s.PaymentStatus == "no_payment_required" {
		out.Status = billing.StatusActive
	}
	return nil
}

func (p *Provider) subscriptionChanged(raw []byte, out *billing.ProviderEvent, deleted bool) error {
	var s struct {
		ID                string            `json:"id"`
		Customer          ref               `json:"customer"`
		Status            string            `json:"status"`
		CancelAtPeriodEnd bool              `json:"cancel_at_period_end"`
		CurrentPeriodEnd  int64             `json:"current_period_end"` // before API 2025-03-31
		Metadata          map[string]string `json:"metadata"`
		Items             struct {
			Data []struct {
				Price struct {
					ID string `json:"id"`
				} `json:"price"`
				CurrentPeriodEnd int64 `json:"current_period_end"` // since API 2025-03-31
			} `json:"data"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	if s.ID == "" {
		return errors.New("subscription without id")
	}
	out.Kind = billing.EventSubscriptionUpdated
	if deleted {
		out.Kind = billing.EventSubscriptionDeleted
	}
	out.WorkspaceID = workspaceOf(s.Metadata)
	out.CustomerID, out.SubscriptionID, out.Status = string(s.Customer), s.ID, s.Status
	out.CancelAtPeriodEnd = s.CancelAtPeriodEnd
	end := s.CurrentPeriodEnd
	for _, it := range s.Items.Data {
		if tier, ok := p.tiers[it.Price.ID]; ok && out.Tier == "" {
			out.Tier = tier
		}
		end = max(end, it.CurrentPeriodEnd)
	}
	if end > 0 {
		t := time.Unix(end, 0).UTC()
		out.CurrentPeriodEnd = &t
	}
	return nil
}

func paymentFailed(raw []byte, out *billing.ProviderEvent) error {
	var in struct {
		Customer     ref `json:"customer"`
		Subscription ref `json:"subscription"` // before API 2025-03-31
		Parent       struct {
			SubscriptionDetails struct {
				Subscription ref               `json:"subscription"`
				Metadata     map[string]string `json:"metadata"`
			} `json:"subscription_details"`
		} `json:"parent"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return err
	}
	sub := or(string(in.Parent.SubscriptionDetails.Subscription), string(in.Subscription))
	if sub == "" {
		return nil // not a subscription's invoice
	}
	out.Kind = billing.EventPaymentFailed
	out.CustomerID, out.SubscriptionID = string(in.Customer), sub
	out.WorkspaceID = workspaceOf(in.Parent.SubscriptionDetails.Metadata)
	return nil
}

// signedAt is the t= of a Stripe-Signature header, split as stripe-go
// splits it; a header with more than one t= is refused, so that the one
// checked here is the one stripe-go verified.
func signedAt(header string) (int64, bool) {
	var at string
	n := 0
	for part := range strings.SplitSeq(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			at, n = v, n+1
		}
	}
	t, err := strconv.ParseInt(at, 10, 64)
	return t, n == 1 && err == nil
}
