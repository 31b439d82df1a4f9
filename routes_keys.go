package revops

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/keys"
)

// Wire shapes of API keys (spec 001).
type (
	keyOut struct {
		ID                int64      `json:"id"`
		Name              string     `json:"name"`
		Prefix            string     `json:"prefix"`
		Key               string     `json:"key,omitempty"` // only on create and rotate
		Scopes            []string   `json:"scopes"`
		RateLimitTier     string     `json:"rate_limit_tier"`
		Status            string     `json:"status"`
		LastUsedAt        *time.Time `json:"last_used_at"`
		ExpiresAt         *time.Time `json:"expires_at"`
		GracePeriodEndsAt *time.Time `json:"grace_period_ends_at,omitempty"`
		CreatedAt         time.Time  `json:"created_at"`
	}
	createKeyIn struct {
		Name          string        `json:"name" validate:"required,max=255"`
		Scopes        []string      `json:"scopes" validate:"omitempty,max=100"`
		RateLimitTier string        `json:"rate_limit_tier"`
		ExpiresAt     *httpapi.Time `json:"expires_at"`
	}
	rotateKeyIn struct {
		GracePeriodHours *int `json:"grace_period_hours" validate:"omitempty,gte=0,lte=720"`
	}
)

// toKey shapes a key; an empty key tier shows the workspace's, which it follows.
func toKey(k *keys.Key, wsTier string, now time.Time) *keyOut {
	tier := k.RateLimitTier
	if tier == "" {
		tier = wsTier
	}
	return &keyOut{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes, RateLimitTier: tier,
		Status: k.Status(now), LastUsedAt: k.LastUsedAt, ExpiresAt: k.ExpiresAt, GracePeriodEndsAt: k.GraceEndsAt, CreatedAt: k.CreatedAt}
}

// keyRoutes registers the key routes twice: under /api-keys (workspace from
// the key or X-Workspace-ID) and under /workspaces/{id}/api-keys.
func (p *Platform) keyRoutes() {
	for _, base := range []struct {
		path   string
		param  string
		tenant httpapi.Tenant
	}{
		{"/api-keys", "id", httpapi.TenantContext},
		{"/workspaces/{id}/api-keys", "keyId", httpapi.TenantPath},
	} {
		p.keyRoutesAt(base.path, base.param, base.tenant)
	}
}

func (p *Platform) keyRoutesAt(base, param string, tenant httpapi.Tenant) {
	a := p.api
	ks := p.keys
	item := base + "/{" + param + "}"
	const tag = "API keys"
	now := func() time.Time { return p.cfg.Now().UTC() }

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: base, Tag: tag, Summary: "List API keys (never the key itself)", Scope: "api-keys:read",
		Tenant: tenant, Sort: []string{"id", "name", "created_at", "last_used_at", "expires_at"}, Search: true,
		Statuses: []string{keys.StatusActive, keys.StatusRotating, keys.StatusExpired}},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*keyOut, int, error) {
			tier, err := p.tiers.get(ctx, c.WorkspaceID())
			if err != nil {
				return nil, 0, err
			}
			list, total, err := ks.List(ctx, c.WorkspaceID(), lp)
			return each(list, func(x *keys.Key) *keyOut { return toKey(x, tier, now()) }), total, err
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: item, Tag: tag, Summary: "Get an API key", Scope: "api-keys:read", Tenant: tenant},
		func(ctx context.Context, c *Call, _ *NoBody) (*keyOut, error) {
			id, err := c.PathID(param)
			if err != nil {
				return nil, err
			}
			k, err := ks.Get(ctx, c.WorkspaceID(), id)
			if err != nil {
				return nil, err
			}
			tier, err := p.tiers.get(ctx, c.WorkspaceID())
			return toKey(k, tier, now()), err
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: base, Tag: tag, Summary: "Create an API key (the key is returned once)", Scope: "api-keys:write",
		Tenant: tenant, Status: http.StatusCreated, Message: "API key created successfully."},
		func(ctx context.Context, c *Call, in *createKeyIn) (*keyOut, error) {
			if err := p.checkKeyTier(ctx, c, in.RateLimitTier); err != nil {
				return nil, err
			}
			k, raw, err := ks.Create(ctx, c.WorkspaceID(), c.Principal.UserID,
				keys.CreateInput{Name: in.Name, Scopes: in.Scopes, RateLimitTier: in.RateLimitTier, ExpiresAt: in.ExpiresAt.Ptr(), NotAfter: c.Principal.ExpiresAt}, c.Access)
			if err != nil {
				return nil, err
			}
			tier, err := p.tiers.get(ctx, c.WorkspaceID())
			out := toKey(k, tier, now())
			p.emit(ctx, c.WorkspaceID(), "api_key.created", out) // before the key is set
			p.record(ctx, c, c.WorkspaceID(), audit.APIKeyCreated, target{"api_key", k.ID}, keyMeta(k))
			out.Key = raw
			return out, err
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: item + "/rotate", Tag: tag, Summary: "Rotate an API key; the old key works until the grace period ends", Scope: "api-keys:write",
		Tenant: tenant, Message: "API key rotated successfully."},
		func(ctx context.Context, c *Call, in *rotateKeyIn) (*keyOut, error) {
			id, err := c.PathID(param)
			if err != nil {
				return nil, err
			}
			k, raw, graceEnds, err := ks.Rotate(ctx, c.WorkspaceID(), id, in.GracePeriodHours, c.Access)
			if err != nil {
				return nil, err
			}
			tier, err := p.tiers.get(ctx, c.WorkspaceID())
			out := toKey(k, tier, now())
			out.GracePeriodEndsAt = &graceEnds
			p.emit(ctx, c.WorkspaceID(), "api_key.rotated", map[string]any{"api_key": out, "previous_key_id": id})
			meta := keyMeta(k)
			meta["previous_key_id"], meta["grace_period_ends_at"] = id, graceEnds.UTC().Format(time.RFC3339)
			p.record(ctx, c, c.WorkspaceID(), audit.APIKeyRotated, target{"api_key", k.ID}, meta)
			out.Key = raw
			return out, err
		})

	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: item, Tag: tag, Summary: "Revoke an API key; it fails at once", Scope: "api-keys:delete",
		Tenant: tenant, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			id, err := c.PathID(param)
			if err != nil {
				return NoBody{}, err
			}
			k, err := ks.Get(ctx, c.WorkspaceID(), id) // what the audit event names
			if err != nil {
				return NoBody{}, err
			}
			if err := ks.Revoke(ctx, c.WorkspaceID(), id); err != nil {
				return NoBody{}, err
			}
			p.emit(ctx, c.WorkspaceID(), "api_key.revoked", map[string]any{"id": id})
			p.record(ctx, c, c.WorkspaceID(), audit.APIKeyRevoked, target{"api_key", id}, keyMeta(k))
			return NoBody{}, nil
		})
}

// personalKeyRoutes manage the caller's own personal keys: keys bound to a
// user rather than a workspace, acting in any workspace the user belongs to.
func (p *Platform) personalKeyRoutes() {
	a := p.api
	ks := p.keys
	const tag = "API keys"
	now := func() time.Time { return p.cfg.Now().UTC() }

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: "/user/api-keys", Tag: tag, Summary: "List your personal API keys", Scope: "api-keys:read"},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*keyOut, int, error) {
			if err := needUser(c, "have personal keys"); err != nil {
				return nil, 0, err
			}
			mine, err := ks.ListPersonal(ctx, c.Principal.UserID)
			if err != nil {
				return nil, 0, err
			}
			all := mine[:0]
			for _, k := range mine {
				if inWindow(k.CreatedAt, lp.Filter.CreatedAfter, lp.Filter.CreatedBefore) && inWindow(k.UpdatedAt, lp.Filter.UpdatedAfter, lp.Filter.UpdatedBefore) {
					all = append(all, k)
				}
			}
			from := min(lp.Offset(), len(all))
			page := all[from:min(from+lp.PerPage, len(all))]
			return each(page, func(x *keys.Key) *keyOut { return toKey(x, "", now()) }), len(all), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/user/api-keys", Tag: tag, Summary: "Create a personal API key (returned once); it acts in your workspaces, limited by your role there", Scope: "api-keys:write",
		Status: http.StatusCreated, Message: "API key created successfully."},
		func(ctx context.Context, c *Call, in *createKeyIn) (*keyOut, error) {
			if err := needUser(c, "create personal keys"); err != nil {
				return nil, err
			}
			k, raw, err := ks.Create(ctx, 0, c.Principal.UserID,
				keys.CreateInput{Name: in.Name, Scopes: in.Scopes, RateLimitTier: in.RateLimitTier, ExpiresAt: in.ExpiresAt.Ptr(), NotAfter: c.Principal.ExpiresAt}, c.Principal.Scopes)
			if err != nil {
				return nil, err
			}
			p.record(ctx, c, 0, audit.APIKeyCreated, target{"api_key", k.ID}, keyMeta(k))
			out := toKey(k, "", now())
			out.Key = raw
			return out, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/user/api-keys/{id}", Tag: tag, Summary: "Get one of your personal API keys", Scope: "api-keys:read"},
		func(ctx context.Context, c *Call, _ *NoBody) (*keyOut, error) {
			id, err := personalKeyID(c)
			if err != nil {
				return nil, err
			}
			k, err := ks.GetPersonal(ctx, c.Principal.UserID, id)
			if err != nil {
				return nil, err
			}
			return toKey(k, "", now()), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/user/api-keys/{id}/rotate", Tag: tag, Scope: "api-keys:write", Message: "API key rotated successfully.",
		Summary: "Rotate one of your personal API keys (the new key is returned once); the old key works until the grace period ends"},
		func(ctx context.Context, c *Call, in *rotateKeyIn) (*keyOut, error) {
			id, err := personalKeyID(c)
			if err != nil {
				return nil, err
			}
			k, raw, graceEnds, err := ks.RotatePersonal(ctx, c.Principal.UserID, id, in.GracePeriodHours, c.Principal.Scopes)
			if err != nil {
				return nil, err
			}
			out := toKey(k, "", now())
			out.GracePeriodEndsAt = &graceEnds
			meta := keyMeta(k)
			meta["previous_key_id"], meta["grace_period_ends_at"] = id, graceEnds.UTC().Format(time.RFC3339)
			p.record(ctx, c, 0, audit.APIKeyRotated, target{"api_key", k.ID}, meta)
			out.Key = raw
			return out, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: "/user/api-keys/{id}", Tag: tag, Summary: "Revoke one of your personal API keys; it fails at once", Scope: "api-keys:delete",
		Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			id, err := personalKeyID(c)
			if err != nil {
				return NoBody{}, err
			}
			k, err := ks.GetPersonal(ctx, c.Principal.UserID, id)
			if err != nil {
				return NoBody{}, err
			}
			if err := ks.RevokePersonal(ctx, c.Principal.UserID, id); err != nil {
				return NoBody{}, err
			}
			p.record(ctx, c, 0, audit.APIKeyRevoked, target{"api_key", id}, keyMeta(k))
			return NoBody{}, nil
		})
}

func (p *Platform) routes() {
	p.workspaceRoutes()
	p.keyRoutes()
	p.personalKeyRoutes()
	p.pipelineRoutes()
	p.webhookRoutes()
	p.entitlementRoutes()
	p.billingAccountRoutes()
	p.billingRoutes()
	p.auditRoutes()
	p.authRoutes()
	p.totpRoutes()
	p.sessionRoutes()
	p.userRoutes()
	httpapi.Handle(p.api, httpapi.Route{Method: "GET", Path: "/openapi.json", Tag: "Meta", Summary: "This API's OpenAPI 3.1 document", Public: true, Bare: true},
		func(ctx context.Context, c *Call, _ *NoBody) (any, error) {
			return p.api.OpenAPI(p.cfg.Title, p.cfg.Version, httpapi.MountPrefix(c.R)), nil
		})
}

// inWindow applies strict created/updated filters (zero bounds are open).
func inWindow(t, after, before time.Time) bool {
	return (after.IsZero() || t.After(after)) && (before.IsZero() || t.Before(before))
}

// keyMeta is what the audit trail keeps about a key: never the key itself.
func keyMeta(k *keys.Key) map[string]any {
	m := map[string]any{"name": k.Name, "prefix": k.Prefix, "scopes": k.Scopes}
	if k.WorkspaceID == 0 {
		m["user_id"] = k.UserID
	}
	return m
}

// personalKeyID is the {id} of a personal key route, for a user principal
// only (a workspace key has no personal keys).
func personalKeyID(c *Call) (int64, error) {
	if err := needUser(c, "have personal keys"); err != nil {
		return 0, err
	}
	return c.PathID("id")
}

// checkKeyTier refuses a new workspace key a tier above its workspace's or
// above the caller's own (a key whose tier was lowered cannot make keys
// that are not): over HTTP a key may be given less, never more, like its
// scopes. The host's own code may give any, through Platform.Keys. Unknown
// tiers are left to the keys service, which names the valid ones.
func (p *Platform) checkKeyTier(ctx context.Context, c *Call, tier string) error {
	if tier != "" && !slices.Contains(p.cfg.Tiers, tier) {
		return nil
	}
	wsTier, err := p.tiers.get(ctx, c.WorkspaceID())
	if err != nil {
		return err
	}
	limit, whose := wsTier, "the workspace's tier"
	if own := c.Principal.Tier; own != "" && p.tierAbove(wsTier, own) {
		limit, whose = own, "your own key's tier"
	}
	if p.tierAbove(cmp.Or(tier, wsTier), limit) { // "" follows the workspace's tier
		return core.Invalid("rate_limit_tier", fmt.Sprintf("The rate_limit_tier may not be above %s (%s).", whose, limit))
	}
	return nil
}
