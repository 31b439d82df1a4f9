package revops

import (
	"context"
	"net/http"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/webhooks"
)

// Wire shapes of webhooks (spec 001).
type (
	endpointOut struct {
		ID                  int64      `json:"id"`
		URL                 string     `json:"url"`
		Events              []string   `json:"events"`
		Secret              string     `json:"secret,omitempty"` // only on create and rotation
		IsActive            bool       `json:"is_active"`
		DisabledReason      string     `json:"disabled_reason,omitempty"`
		SuccessCount        int64      `json:"success_count"`
		FailureCount        int64      `json:"failure_count"`
		ConsecutiveFailures int        `json:"consecutive_failures"`
		LastDeliveryAt      *time.Time `json:"last_delivery_at"`
		CreatedAt           time.Time  `json:"created_at"`
		UpdatedAt           time.Time  `json:"updated_at"`
	}
	createEndpointIn struct {
		URL    string   `json:"url" validate:"required"`
		Events []string `json:"events" validate:"required"`
		Secret string   `json:"secret"`
	}
	updateEndpointIn struct {
		URL      *string  `json:"url"`
		Events   []string `json:"events"`
		IsActive *bool    `json:"is_active"`
	}
	rotateSecretIn struct {
		Secret string `json:"secret"`
	}
	rotatedOut struct {
		ID                      int64      `json:"id"`
		Secret                  string     `json:"secret"`
		PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	}
	testOut struct {
		Success        bool    `json:"success"`
		StatusCode     *int    `json:"status_code"`
		ResponseTimeMs int     `json:"response_time_ms"`
		ResponseBody   *string `json:"response_body,omitempty"`
		Error          string  `json:"error,omitempty"`
	}
	deliveryOut struct {
		ID             int64      `json:"id"`
		EventID        string     `json:"event_id"`
		EventType      string     `json:"event_type"`
		Status         string     `json:"status"`
		ResponseCode   *int       `json:"response_code"`
		Attempt        int        `json:"attempt"`
		NextRetryAt    *time.Time `json:"next_retry_at,omitempty"`
		DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
		ResponseTimeMs *int       `json:"response_time_ms"`
		ResponseBody   *string    `json:"response_body"`
		Error          string     `json:"error,omitempty"`
		CreatedAt      time.Time  `json:"created_at"`
	}
	eventTypeOut struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Schema      any    `json:"schema,omitempty"`
	}
)

func toEndpoint(e *webhooks.Endpoint) *endpointOut {
	return &endpointOut{ID: e.ID, URL: e.URL, Events: e.Events, IsActive: e.IsActive, DisabledReason: e.DisabledReason,
		SuccessCount: e.SuccessCount, FailureCount: e.FailureCount, ConsecutiveFailures: e.ConsecutiveFailures,
		LastDeliveryAt: e.LastDeliveryAt, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

func toDelivery(d *webhooks.Delivery) *deliveryOut {
	out := &deliveryOut{ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status, Attempt: d.Attempt,
		DeliveredAt: d.DeliveredAt, Error: d.Error, CreatedAt: d.CreatedAt}
	if d.Status == webhooks.StatusRetrying || d.Status == webhooks.StatusPending {
		out.NextRetryAt = d.NextAttemptAt
	}
	if d.Attempt > 0 && (d.ResponseCode != 0 || d.Error != "") {
		code, ms, body := d.ResponseCode, d.ResponseTimeMs, d.ResponseBody
		if code != 0 {
			out.ResponseCode, out.ResponseBody = &code, &body
		}
		out.ResponseTimeMs = &ms
	}
	return out
}

// webhookRoutes registers the webhook routes twice: under /webhooks
// (workspace from the key or X-Workspace-ID) and /workspaces/{id}/webhooks.
func (p *Platform) webhookRoutes() {
	p.webhookRoutesAt("/webhooks", "id", httpapi.TenantContext)
	p.webhookRoutesAt("/workspaces/{id}/webhooks", "webhookId", httpapi.TenantPath)
}

func (p *Platform) webhookRoutesAt(base, param string, tenant httpapi.Tenant) {
	a, wh := p.api, p.webhooks
	item := base + "/{" + param + "}"
	const tag = "Webhooks"
	// The catalog is the same for every workspace; under /workspaces/{id}
	// it is there for clients that address everything by the path.
	catalog := httpapi.Route{Method: "GET", Path: base + "/event-types", Tag: tag,
		Summary: "List the event types endpoints may subscribe to", Scope: "webhooks:read"}
	if tenant == httpapi.TenantPath {
		catalog.Tenant = tenant
	}
	httpapi.HandleList(a, catalog, func(ctx context.Context, c *Call, lp core.ListParams) ([]eventTypeOut, int, error) {
		all := wh.Catalog().Types()
		out := make([]eventTypeOut, 0, len(all))
		for _, t := range all {
			et := eventTypeOut{Name: t.Name, Description: t.Description}
			if len(t.Schema) > 0 {
				et.Schema = t.Schema
			}
			out = append(out, et)
		}
		from := min(lp.Offset(), len(out))
		return out[from:min(from+lp.PerPage, len(out))], len(out), nil
	})
	id := func(c *Call) (int64, error) { return c.PathID(param) }

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: base, Tag: tag, Summary: "List webhook endpoints", Scope: "webhooks:read",
		Tenant: tenant, Sort: []string{"id", "created_at"}, Search: true},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*endpointOut, int, error) {
			list, total, err := wh.ListEndpoints(ctx, c.WorkspaceID(), lp)
			return each(list, toEndpoint), total, err
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: item, Tag: tag, Summary: "Get a webhook endpoint", Scope: "webhooks:read", Tenant: tenant},
		func(ctx context.Context, c *Call, _ *NoBody) (*endpointOut, error) {
			eid, err := id(c)
			if err != nil {
				return nil, err
			}
			e, err := wh.Endpoint(ctx, c.WorkspaceID(), eid)
			if err != nil {
				return nil, err
			}
			return toEndpoint(e), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: base, Tag: tag, Summary: "Create a webhook endpoint (its secret is returned once)", Scope: "webhooks:write",
		Tenant: tenant, Status: http.StatusCreated, Message: "Webhook endpoint created successfully."},
		func(ctx context.Context, c *Call, in *createEndpointIn) (*endpointOut, error) {
			e, err := wh.CreateEndpoint(ctx, c.WorkspaceID(), webhooks.EndpointInput{URL: in.URL, Events: in.Events, Secret: in.Secret})
			if err != nil {
				return nil, err
			}
			out := toEndpoint(e)
			out.Secret = e.Secret
			return out, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "PATCH", Path: item, Tag: tag, Summary: "Update a webhook endpoint (url, events, is_active)", Scope: "webhooks:write",
		Tenant: tenant, Message: "Webhook endpoint updated successfully."},
		func(ctx context.Context, c *Call, in *updateEndpointIn) (*endpointOut, error) {
			eid, err := id(c)
			if err != nil {
				return nil, err
			}
			e, err := wh.UpdateEndpoint(ctx, c.WorkspaceID(), eid, webhooks.EndpointPatch{URL: in.URL, Events: in.Events, IsActive: in.IsActive})
			if err != nil {
				return nil, err
			}
			return toEndpoint(e), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: item, Tag: tag, Summary: "Delete a webhook endpoint and its deliveries", Scope: "webhooks:delete",
		Tenant: tenant, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			eid, err := id(c)
			if err != nil {
				return NoBody{}, err
			}
			return NoBody{}, wh.DeleteEndpoint(ctx, c.WorkspaceID(), eid)
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: item + "/rotate-secret", Tag: tag,
		Summary: "Rotate the signing secret (returned once); the old one also signs until the overlap ends", Scope: "webhooks:write",
		Tenant: tenant, Message: "Webhook secret rotated. Deliveries carry both signatures until the previous secret expires."},
		func(ctx context.Context, c *Call, in *rotateSecretIn) (*rotatedOut, error) {
			eid, err := id(c)
			if err != nil {
				return nil, err
			}
			e, err := wh.RotateSecret(ctx, c.WorkspaceID(), eid, in.Secret)
			if err != nil {
				return nil, err
			}
			return &rotatedOut{ID: e.ID, Secret: e.Secret, PreviousSecretExpiresAt: e.PrevSecretUntil}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: item + "/test", Tag: tag, Summary: "Send a test event to the endpoint now", Scope: "webhooks:write",
		Tenant: tenant, Bare: true},
		func(ctx context.Context, c *Call, _ *NoBody) (*testOut, error) {
			eid, err := id(c)
			if err != nil {
				return nil, err
			}
			_, r, err := wh.Test(ctx, c.WorkspaceID(), eid)
			if err != nil {
				return nil, err
			}
			out := &testOut{Success: r.Code >= 200 && r.Code < 300, ResponseTimeMs: r.TimeMs, Error: r.Err}
			if r.Code != 0 {
				code, body := r.Code, r.Body
				out.StatusCode, out.ResponseBody = &code, &body
				if !out.Success && out.Error == "" {
					out.Error = "The endpoint answered " + http.StatusText(r.Code) + "."
				}
			}
			return out, nil
		})

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: item + "/deliveries", Tag: tag, Summary: "List an endpoint's deliveries, newest first", Scope: "webhooks:read",
		Tenant: tenant, Sort: []string{"id", "created_at"}, Statuses: webhooks.Statuses},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*deliveryOut, int, error) {
			eid, err := id(c)
			if err != nil {
				return nil, 0, err
			}
			list, total, err := wh.ListDeliveries(ctx, c.WorkspaceID(), eid, lp.Filter.Status, lp)
			return each(list, toDelivery), total, err
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: item + "/deliveries/{delivery_id}", Tag: tag, Summary: "Get a delivery", Scope: "webhooks:read", Tenant: tenant},
		func(ctx context.Context, c *Call, _ *NoBody) (*deliveryOut, error) {
			eid, did, err := deliveryIDs(c, param)
			if err != nil {
				return nil, err
			}
			d, err := wh.Delivery(ctx, c.WorkspaceID(), eid, did)
			if err != nil {
				return nil, err
			}
			return toDelivery(d), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: item + "/deliveries/{delivery_id}/retry", Tag: tag,
		Summary: "Queue another attempt of a delivery now (400 cannot_retry if it succeeded or used every attempt)", Scope: "webhooks:write",
		Tenant: tenant, Message: "Delivery queued for retry."},
		func(ctx context.Context, c *Call, _ *NoBody) (*deliveryOut, error) {
			eid, did, err := deliveryIDs(c, param)
			if err != nil {
				return nil, err
			}
			d, err := wh.Retry(ctx, c.WorkspaceID(), eid, did)
			if err != nil {
				return nil, err
			}
			out := toDelivery(d)
			out.Attempt++ // the attempt now queued, as spec 001 shows it
			return out, nil
		})
}

func deliveryIDs(c *Call, param string) (int64, int64, error) {
	eid, err := c.PathID(param)
	if err != nil {
		return 0, 0, err
	}
	did, err := c.PathID("delivery_id")
	return eid, did, err
}

// Publish records an event of a registered type for the workspace and
// queues a signed delivery to every active endpoint subscribed to it.
func (p *Platform) Publish(ctx context.Context, workspaceID int64, eventType string, payload any) (*webhooks.Event, error) {
	return p.webhooks.Publish(ctx, workspaceID, eventType, payload)
}

// Webhooks returns the webhook service, for host code.
func (p *Platform) Webhooks() *webhooks.Service { return p.webhooks }

// emit publishes one of revops's own events. The change it reports is
// already committed, so a failure is logged rather than failing the request.
func (p *Platform) emit(ctx context.Context, workspaceID int64, eventType string, payload any) {
	if workspaceID == 0 {
		return
	}
	if _, err := p.webhooks.Publish(context.WithoutCancel(ctx), workspaceID, eventType, payload); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "revops: publishing "+eventType, "error", err, "workspace_id", workspaceID)
	}
}
