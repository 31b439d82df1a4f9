package revops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
)

// BillingTag is the OpenAPI tag of the billing routes. With no payment
// provider configured (Config.Billing.Provider nil, the self-host default)
// every route carrying it answers 200 {"billingEnabled": false} once the
// caller is authenticated, a member of the workspace and holds the scope;
// a host's own billing routes opt in by using the tag.
const BillingTag = "Billing"

// Wire shapes of the billing routes.
type (
	billingDisabledOut struct {
		BillingEnabled bool `json:"billingEnabled"`
	}
	billingStatusOut struct {
		WorkspaceID  int64                      `json:"workspace_id"`
		Provider     string                     `json:"provider"`
		Plan         billingPlanOut             `json:"plan"`
		Usage        map[string]featureUsageOut `json:"usage"` // as in GET /entitlements/summary
		Subscription subscriptionOut            `json:"subscription"`
	}
	billingPlanOut struct {
		Tier   string            `json:"tier"`
		Limits map[string]*int64 `json:"limits"` // null: unlimited
	}
	subscriptionOut struct {
		Status            string     `json:"status"` // "none" before the first checkout completes
		Tier              string     `json:"tier,omitempty"`
		CustomerID        string     `json:"customer_id,omitempty"`
		SubscriptionID    string     `json:"subscription_id,omitempty"`
		CurrentPeriodEnd  *time.Time `json:"current_period_end"`
		CancelAtPeriodEnd bool       `json:"cancel_at_period_end"`
	}
	checkoutIn struct {
		Tier       string `json:"tier" validate:"required"`
		SuccessURL string `json:"success_url" validate:"omitempty,http_url"`
		CancelURL  string `json:"cancel_url" validate:"omitempty,http_url"`
	}
	portalIn struct {
		ReturnURL string `json:"return_url" validate:"omitempty,http_url"`
	}
	sessionURLOut struct {
		URL string `json:"url"`
	}
	providerEventOut struct {
		Received bool   `json:"received"`
		Result   string `json:"result"` // applied, duplicate or ignored
	}
)

var providerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// validateProvider checks what revops needs of a configured provider.
func validateProvider(pr billing.Provider) error {
	if pr == nil {
		return nil
	}
	if !providerNameRE.MatchString(pr.Name()) {
		return fmt.Errorf("revops: Config.Billing.Provider.Name() = %q: a provider name is its webhook path segment, 1–32 of a-z, 0-9, - and _", pr.Name())
	}
	if pr.SignatureHeader() == "" {
		return errors.New("revops: Config.Billing.Provider.SignatureHeader() is empty: name the header carrying the provider's event signature")
	}
	return nil
}

// billingRoutes registers the workspace billing routes and, with a
// provider, its inbound event route. Without one the routes stay
// registered (documented, authenticated, tenant-checked) but answer
// {"billingEnabled": false} (see BillingTag); the event route does not
// exist, so a provider misconfigured to send here gets 404 and retries
// rather than having events acknowledged and dropped.
func (p *Platform) billingRoutes() {
	a, st := p.api, p.cfg.Store
	prov := p.cfg.Billing.Provider
	if prov == nil {
		a.DisableTag(BillingTag, billingDisabledOut{})
	}

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/billing/status", Tag: BillingTag,
		Summary: "Get the workspace's plan, usage quota and subscription status", Scope: "billing:read", Tenant: httpapi.TenantPath},
		func(ctx context.Context, c *Call, _ *NoBody) (*billingStatusOut, error) {
			return p.billingStatus(ctx, c.WorkspaceID())
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/workspaces/{id}/billing/checkout", Tag: BillingTag,
		Summary: "Start a hosted checkout subscribing the workspace to a tier; returns the page's URL", Scope: "billing:write",
		Tenant: httpapi.TenantPath, Bare: true},
		func(ctx context.Context, c *Call, in *checkoutIn) (*sessionURLOut, error) {
			wid := c.WorkspaceID()
			if !slices.Contains(p.cfg.Tiers, in.Tier) {
				return nil, core.Invalid("tier", fmt.Sprintf("Unknown tier %q: use one of %s.", in.Tier, strings.Join(p.cfg.Tiers, ", ")))
			}
			sub, err := st.Subscription(ctx, wid)
			if err != nil && !errors.Is(err, core.ErrNotFound) {
				return nil, err
			}
			if sub != nil && billing.Entitled(sub.Status) {
				return nil, core.Conflict("The workspace already has a %s subscription; change or cancel it in the portal (POST /workspaces/%d/billing/portal).", sub.Status, wid)
			}
			var customer string
			if sub != nil && sub.Provider == prov.Name() {
				customer = sub.CustomerID
			}
			var email string
			if c.Principal.UserID != 0 {
				if u, err := st.User(ctx, c.Principal.UserID); err == nil {
					email = u.Email
				}
			}
			cs, err := prov.Checkout(ctx, billing.CheckoutInput{WorkspaceID: wid, Tier: in.Tier, CustomerID: customer, Email: email,
				SuccessURL: in.SuccessURL, CancelURL: in.CancelURL})
			if err != nil {
				return nil, err
			}
			if cs.CustomerID != "" && cs.CustomerID != customer {
				// Kept now, so that the next checkout and the portal reuse it;
				// it replaces the one passed in, which the provider no longer
				// knows (deleted there), unless another request changed it.
				_, err := st.UpdateSubscription(ctx, wid, func(s *billing.Subscription) error {
					if s.CustomerID == "" || s.Provider != prov.Name() || s.CustomerID == customer {
						s.Provider, s.CustomerID = prov.Name(), cs.CustomerID
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
			}
			return &sessionURLOut{URL: cs.URL}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/workspaces/{id}/billing/portal", Tag: BillingTag,
		Summary: "Open the provider's customer portal for the workspace; returns the page's URL", Scope: "billing:write",
		Tenant: httpapi.TenantPath, Bare: true},
		func(ctx context.Context, c *Call, in *portalIn) (*sessionURLOut, error) {
			wid := c.WorkspaceID()
			sub, err := st.Subscription(ctx, wid)
			if err != nil && !errors.Is(err, core.ErrNotFound) {
				return nil, err
			}
			if sub == nil || sub.CustomerID == "" || sub.Provider != prov.Name() {
				return nil, core.Conflict("This workspace has no billing customer yet: start a subscription with POST /workspaces/%d/billing/checkout first.", wid)
			}
			url, err := prov.Portal(ctx, billing.PortalInput{WorkspaceID: wid, CustomerID: sub.CustomerID, ReturnURL: in.ReturnURL})
			if err != nil {
				return nil, err
			}
			return &sessionURLOut{URL: url}, nil
		})

	if prov == nil {
		return
	}
	sigHeader := prov.SignatureHeader()
	httpapi.HandleRaw(a, httpapi.Route{Method: "POST", Path: "/billing/webhooks/" + prov.Name(), Tag: BillingTag,
		Summary: "Receive a signed event from the payment provider (" + prov.Name() + "); verified on the raw body, applied once per event id",
		Public:  true, RawBody: []string{"application/json"}},
		func(w http.ResponseWriter, r *http.Request, c *Call) error {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return err
			}
			ev, err := prov.ParseEvent(r.Context(), body, r.Header.Get(sigHeader))
			switch {
			case errors.Is(err, billing.ErrInvalidSignature):
				p.cfg.Logger.WarnContext(r.Context(), "revops: payment provider event refused: bad signature", "provider", prov.Name(), "error", err, "request_id", c.RequestID)
				return core.E(core.CodeBadRequest, "The %s header does not verify this body with the webhook signing secret; nothing was applied.", sigHeader)
			case errors.Is(err, billing.ErrMalformedEvent):
				return core.E(core.CodeBadRequest, "The body is not a %s event; nothing was applied.", prov.Name())
			case err != nil:
				return err
			}
			result, err := p.applyProviderEvent(r.Context(), prov.Name(), ev)
			if err != nil {
				return err // 500: the provider retries, and the event applies once
			}
			httpapi.WriteJSON(w, http.StatusOK, map[string]any{"data": providerEventOut{Received: true, Result: result}})
			return nil
		})
}

// billingStatus is GET /workspaces/{id}/billing/status.
func (p *Platform) billingStatus(ctx context.Context, wid int64) (*billingStatusOut, error) {
	w, err := p.cfg.Store.Workspace(ctx, wid)
	if err != nil {
		return nil, err
	}
	out := &billingStatusOut{WorkspaceID: wid, Provider: p.providerName(),
		Plan: billingPlanOut{Tier: w.Tier, Limits: map[string]*int64{}}, Subscription: subscriptionOut{Status: billing.StatusNone}}
	for _, f := range p.cfg.Billing.Features {
		out.Plan.Limits[f.Key] = limitPtr(p.cfg.Billing.Plans[w.Tier].Limits[f.Key])
	}
	if _, out.Usage, err = p.featureUsage(ctx, billing.Subject{WorkspaceID: wid, Tier: w.Tier, Timezone: w.Settings.Timezone}); err != nil {
		return nil, err
	}
	sub, err := p.cfg.Store.Subscription(ctx, wid)
	switch {
	case errors.Is(err, core.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		so := &out.Subscription
		if sub.Status != "" {
			so.Status = sub.Status
		}
		so.Tier, so.CustomerID, so.SubscriptionID = sub.Tier, sub.CustomerID, sub.SubscriptionID
		so.CurrentPeriodEnd, so.CancelAtPeriodEnd = sub.CurrentPeriodEnd, sub.CancelAtPeriodEnd
	}
	return out, nil
}

func (p *Platform) providerName() string {
	if p.cfg.Billing.Provider == nil {
		return ""
	}
	return p.cfg.Billing.Provider.Name()
}

// Results of an inbound provider event.
const (
	eventApplied   = "applied"
	eventDuplicate = "duplicate"
	eventIgnored   = "ignored"
)

// applyProviderEvent applies a verified event to the workspace it concerns:
// its subscription and, through SetTier, its tier. The event's record and
// every write it causes share one transaction, so an event cut short by a
// crash is redelivered by the provider and applied once, and a redelivered
// one changes nothing.
func (p *Platform) applyProviderEvent(ctx context.Context, provider string, ev *billing.ProviderEvent) (string, error) {
	log := p.cfg.Logger.With("provider", provider, "event_id", ev.ID, "event_type", ev.Type)
	if ev.Kind == "" {
		return eventIgnored, nil
	}
	st := p.cfg.Store
	wid := ev.WorkspaceID
	if wid == 0 {
		sub, err := st.SubscriptionByCustomer(ctx, provider, ev.CustomerID)
		if errors.Is(err, core.ErrNotFound) {
			log.WarnContext(ctx, "revops: payment provider event names no known workspace or customer; ignored", "customer_id", ev.CustomerID)
			return eventIgnored, nil
		}
		if err != nil {
			return "", err
		}
		wid = sub.WorkspaceID
	}
	moved := false
	rec := &billing.ProcessedEvent{Provider: provider, EventID: ev.ID, Type: ev.Type, WorkspaceID: wid, ProcessedAt: p.cfg.Now()}
	applied, err := st.ProcessProviderEvent(ctx, rec, func(ctx context.Context) error {
		var tier string
		_, err := st.UpdateSubscription(ctx, wid, func(s *billing.Subscription) error {
			s.Provider = provider
			tier = billing.Apply(s, ev, p.cfg.Tiers[0])
			return nil
		})
		if err != nil || tier == "" {
			return err
		}
		if !slices.Contains(p.cfg.Tiers, tier) {
			log.ErrorContext(ctx, "revops: payment provider event maps to an unknown tier; the workspace's tier is unchanged", "tier", tier, "workspace_id", wid)
			return nil
		}
		moved = true
		return p.SetTier(ctx, wid, tier)
	})
	if moved {
		p.tiers.forget(wid) // again after the commit: a request in between may have cached the old tier
	}
	switch {
	case errors.Is(err, core.ErrNotFound):
		log.WarnContext(ctx, "revops: payment provider event for a deleted workspace; ignored", "workspace_id", wid)
		return eventIgnored, nil
	case errors.Is(err, core.ErrConflict):
		// The customer is another workspace's: a redelivery cannot fix
		// that, so it is acknowledged, and left to a person.
		log.ErrorContext(ctx, "revops: payment provider event names a customer another workspace holds; ignored, check the customer's metadata",
			"workspace_id", wid, "customer_id", ev.CustomerID)
		return eventIgnored, nil
	case err != nil:
		return "", err
	case !applied:
		return eventDuplicate, nil
	}
	log.InfoContext(ctx, "revops: payment provider event applied", "workspace_id", wid)
	return eventApplied, nil
}
