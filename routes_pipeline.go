package revops

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/pixel"
	"github.com/revopsdev/revops/ratelimit"
)

// Wire shapes of the rate-limit views.
type (
	policyOut struct {
		Tier              string  `json:"tier"`
		RequestsPerMinute int     `json:"requests_per_minute"`
		Burst             float64 `json:"burst"`    // fraction: 0.3 = +30%
		Capacity          int     `json:"capacity"` // requests_per_minute × (1 + burst)
	}
	keyLimitOut struct {
		APIKeyID  int64     `json:"api_key_id"`
		Name      string    `json:"name"`
		Prefix    string    `json:"prefix"`
		Tier      string    `json:"tier"`
		Override  bool      `json:"override"` // the key has its own tier
		Limit     int       `json:"limit"`
		Capacity  int       `json:"capacity"`
		Remaining int       `json:"remaining"`
		ResetAt   time.Time `json:"reset_at"`
	}
	rateLimitsOut struct {
		WorkspaceID int64         `json:"workspace_id"`
		Tier        string        `json:"tier"`
		Policy      policyOut     `json:"policy"`
		Keys        []keyLimitOut `json:"keys"`
		KeysTotal   int           `json:"keys_total"` // keys lists the newest maxViewKeys of them
	}
)

// maxViewKeys bounds the keys listed by the rate-limit view.
const maxViewKeys = 1000

func toPolicy(tier string, pol ratelimit.Policy) policyOut {
	return policyOut{Tier: tier, RequestsPerMinute: pol.PerMinute, Burst: pol.Burst, Capacity: pol.Capacity()}
}

// policyOf is a tier's policy; a tier stored before the host's
// configuration changed gets the default tier's.
func (p *Platform) policyOf(tier string) ratelimit.Policy {
	if pol, ok := p.cfg.RateLimits[tier]; ok {
		return pol
	}
	return p.cfg.RateLimits[p.cfg.Tiers[0]]
}

// rateLimitView reports the workspace's tier and each key's bucket, spending
// nothing from them.
func (p *Platform) rateLimitView(ctx context.Context, wid int64) (*rateLimitsOut, error) {
	tier, err := p.tiers.get(ctx, wid)
	if err != nil {
		return nil, err
	}
	out := &rateLimitsOut{WorkspaceID: wid, Tier: tier, Policy: toPolicy(tier, p.policyOf(tier)), Keys: []keyLimitOut{}}
	for page := 1; len(out.Keys) < maxViewKeys; page++ {
		list, total, err := p.cfg.Store.ListKeys(ctx, wid, core.ListParams{Page: page, PerPage: 100}, p.cfg.Now())
		if err != nil {
			return nil, err
		}
		out.KeysTotal = total
		for i := range list {
			if err := p.addKeyLimit(ctx, out, &list[i], tier); err != nil {
				return nil, err
			}
		}
		if len(list) == 0 || page*100 >= total {
			break
		}
	}
	return out, nil
}

func (p *Platform) addKeyLimit(ctx context.Context, out *rateLimitsOut, k *keys.Key, wsTier string) error {
	tier := k.RateLimitTier
	if tier == "" {
		tier = wsTier
	}
	pol := p.policyOf(tier)
	d, err := p.limiter.Peek(ctx, auth.KeyRef(k.ID), pol)
	if err != nil {
		return err
	}
	out.Keys = append(out.Keys, keyLimitOut{APIKeyID: k.ID, Name: k.Name, Prefix: k.Prefix, Tier: tier, Override: k.RateLimitTier != "",
		Limit: d.Limit, Capacity: d.Capacity, Remaining: d.Remaining, ResetAt: time.Unix(resetUnix(d.ResetAt), 0).UTC()}) // as X-RateLimit-Reset
	return nil
}

// Wire shapes of pixel tracking (spec 001).
type (
	pixelFeatures struct {
		Pageviews bool `json:"pageviews"`
		Events    bool `json:"events"`
		Sessions  bool `json:"sessions"`
	}
	pixelConfigOut struct {
		Enabled    bool          `json:"enabled"`
		Features   pixelFeatures `json:"features"`
		SampleRate float64       `json:"sample_rate"`
	}
	pixelSiteOut struct {
		WorkspaceID int64         `json:"workspace_id"`
		SiteKey     string        `json:"site_key"`
		Enabled     bool          `json:"enabled"`
		Features    pixelFeatures `json:"features"`
		SampleRate  float64       `json:"sample_rate"`
		CreatedAt   time.Time     `json:"created_at"`
		UpdatedAt   time.Time     `json:"updated_at"`
	}
	pixelSiteIn struct {
		Enabled  *bool `json:"enabled"`
		Features *struct {
			Pageviews *bool `json:"pageviews"`
			Events    *bool `json:"events"`
			Sessions  *bool `json:"sessions"`
		} `json:"features"`
		SampleRate *float64 `json:"sample_rate" validate:"omitempty,gte=0,lte=1"`
	}
	trackIn struct {
		SiteKey    string         `json:"site_key"`
		Event      string         `json:"event"`
		URL        string         `json:"url"`
		Referrer   string         `json:"referrer"`
		UserAgent  string         `json:"user_agent"`
		Properties map[string]any `json:"properties"`
	}
	trackOut struct {
		Tracked bool `json:"tracked"`
	}
	pixelEventOut struct {
		ID         int64          `json:"id"`
		Event      string         `json:"event"`
		URL        string         `json:"url"`
		Referrer   string         `json:"referrer"`
		UserAgent  string         `json:"user_agent"`
		Properties map[string]any `json:"properties"`
		CreatedAt  time.Time      `json:"created_at"`
	}
)

// maxTrackBody bounds a POST /pixel/track body.
const maxTrackBody = 16 << 10

func toPixelSite(s *pixel.Site) *pixelSiteOut {
	return &pixelSiteOut{WorkspaceID: s.WorkspaceID, SiteKey: s.SiteKey, Enabled: s.Enabled,
		Features: pixelFeatures{s.Pageviews, s.Events, s.Sessions}, SampleRate: s.SampleRate, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// pixelSite returns the workspace's site, creating the default one (and
// its site key) on first use.
func (p *Platform) pixelSite(ctx context.Context, wid int64) (*pixel.Site, error) {
	st := p.cfg.Store
	s, err := st.PixelSite(ctx, wid)
	if !errors.Is(err, core.ErrNotFound) {
		return s, err
	}
	def := pixel.DefaultSite(wid)
	def.SiteKey = pixel.NewSiteKey()
	now := p.cfg.Now().UTC().Truncate(time.Microsecond)
	def.CreatedAt, def.UpdatedAt = now, now
	if err := st.PutPixelSite(ctx, &def); err != nil {
		return nil, err
	}
	return st.PixelSite(ctx, wid) // a concurrent first use may have won
}

// siteOf finds the site a public pixel request is for: by site key (query
// or body), else X-Workspace-ID; ok is false when the request names none.
// A workspace id that names no workspace gets a disabled site rather than
// an error, so that these public routes do not tell which ids exist; a
// workspace that never configured its pixel gets the default site.
func (p *Platform) siteOf(ctx context.Context, r *http.Request, bodyKey string) (*pixel.Site, bool, error) {
	key := bodyKey
	if key == "" {
		key = r.URL.Query().Get("site_key")
	}
	if key != "" {
		if !pixel.ValidSiteKey(key) {
			return nil, true, core.NotFound()
		}
		s, err := p.cfg.Store.PixelSiteByKey(ctx, key)
		return s, true, err
	}
	h := r.Header.Get("X-Workspace-ID")
	if h == "" {
		return nil, false, nil
	}
	wid, err := strconv.ParseInt(h, 10, 64)
	if err != nil || wid <= 0 {
		return nil, true, core.E(core.CodeBadRequest, "The X-Workspace-ID header must be a positive integer workspace id.")
	}
	s, err := p.cfg.Store.PixelSite(ctx, wid)
	if !errors.Is(err, core.ErrNotFound) {
		return s, true, err
	}
	def := pixel.DefaultSite(wid)
	if _, err := p.cfg.Store.Workspace(ctx, wid); errors.Is(err, core.ErrNotFound) {
		def = pixel.Site{} // nothing to track into; answered like a disabled site
	} else if err != nil {
		return nil, true, err
	}
	return &def, true, nil
}

func (p *Platform) pipelineRoutes() {
	a := p.api
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/rate-limits", Tag: "Rate limits",
		Summary: "The workspace's tier limits and the current state of each API key's bucket", Scope: "rate-limits:read", Tenant: httpapi.TenantPath},
		func(ctx context.Context, c *httpapi.Call, _ *httpapi.NoBody) (*rateLimitsOut, error) {
			return p.rateLimitView(ctx, c.WorkspaceID())
		})
	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/workspaces/{id}/rate-limits/refresh", Tag: "Rate limits",
		Summary: "Re-read the workspace's tier and its keys' tier overrides now", Scope: "rate-limits:write", Tenant: httpapi.TenantPath,
		Message: "Rate limits refreshed."},
		func(ctx context.Context, c *httpapi.Call, _ *httpapi.NoBody) (*rateLimitsOut, error) {
			wid := c.WorkspaceID()
			p.tiers.forget(wid)
			p.verifier.InvalidateWorkspace(wid)
			return p.rateLimitView(ctx, wid)
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/pixel/config", Tag: "Pixel", Public: true, Bare: true, RateLimit: "pixel",
		Summary: "Tracking pixel configuration of a site (site_key query parameter or X-Workspace-ID); defaults when none is named"},
		func(ctx context.Context, c *httpapi.Call, _ *httpapi.NoBody) (*pixelConfigOut, error) {
			s, named, err := p.siteOf(ctx, c.R, "")
			if err != nil {
				return nil, err
			}
			if !named {
				def := pixel.DefaultSite(0)
				s = &def
			}
			return &pixelConfigOut{Enabled: s.Enabled, Features: pixelFeatures{s.Pageviews, s.Events, s.Sessions}, SampleRate: s.SampleRate}, nil
		})
	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/pixel/track", Tag: "Pixel", Public: true, Bare: true, RateLimit: "pixel",
		MaxBodyBytes: maxTrackBody, Summary: "Record a tracking event (300 requests per minute per client IP)"},
		func(ctx context.Context, c *httpapi.Call, in *trackIn) (*trackOut, error) {
			ti := pixel.TrackInput{Event: in.Event, URL: in.URL, Referrer: in.Referrer, UserAgent: in.UserAgent, Properties: in.Properties}
			if ti.UserAgent == "" {
				ti.UserAgent = pixel.Clip(c.R.UserAgent(), pixel.MaxUserAgent)
			}
			if err := ti.Check(); err != nil {
				return nil, err
			}
			s, named, err := p.siteOf(ctx, c.R, in.SiteKey)
			if err != nil {
				return nil, err
			}
			if !named {
				return nil, core.Invalid("site_key", "Name the site: give its site_key, or the X-Workspace-ID header.")
			}
			if !s.Wants(ti.Event) || (s.SampleRate < 1 && rand.Float64() >= s.SampleRate) {
				return &trackOut{Tracked: false}, nil
			}
			ev := &pixel.Event{WorkspaceID: s.WorkspaceID, Event: ti.Event, URL: ti.URL, Referrer: ti.Referrer, UserAgent: ti.UserAgent,
				Properties: ti.Properties, CreatedAt: p.cfg.Now().UTC().Truncate(time.Microsecond)}
			if err := p.cfg.Store.CreatePixelEvent(ctx, ev); err != nil {
				return nil, err
			}
			return &trackOut{Tracked: true}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/pixel", Tag: "Pixel", Scope: "pixel:read", Tenant: httpapi.TenantPath,
		Summary: "The workspace's pixel site: its public site key and configuration"},
		func(ctx context.Context, c *httpapi.Call, _ *httpapi.NoBody) (*pixelSiteOut, error) {
			s, err := p.pixelSite(ctx, c.WorkspaceID())
			if err != nil {
				return nil, err
			}
			return toPixelSite(s), nil
		})
	httpapi.Handle(a, httpapi.Route{Method: "PUT", Path: "/workspaces/{id}/pixel", Tag: "Pixel", Scope: "pixel:write", Tenant: httpapi.TenantPath,
		Summary: "Update the workspace's pixel configuration", Message: "Pixel configuration updated."},
		func(ctx context.Context, c *httpapi.Call, in *pixelSiteIn) (*pixelSiteOut, error) {
			s, err := p.pixelSite(ctx, c.WorkspaceID())
			if err != nil {
				return nil, err
			}
			set := func(dst *bool, v *bool) {
				if v != nil {
					*dst = *v
				}
			}
			set(&s.Enabled, in.Enabled)
			if f := in.Features; f != nil {
				set(&s.Pageviews, f.Pageviews)
				set(&s.Events, f.Events)
				set(&s.Sessions, f.Sessions)
			}
			if in.SampleRate != nil {
				s.SampleRate = *in.SampleRate
			}
			s.UpdatedAt = p.cfg.Now().UTC().Truncate(time.Microsecond)
			if err := p.cfg.Store.PutPixelSite(ctx, s); err != nil {
				return nil, err
			}
			return toPixelSite(s), nil
		})
	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/pixel/events", Tag: "Pixel", Scope: "pixel:read", Tenant: httpapi.TenantPath,
		Summary: "Tracked events, newest first", Sort: []string{"id", "created_at", "event"}, Search: true},
		func(ctx context.Context, c *httpapi.Call, lp core.ListParams) ([]*pixelEventOut, int, error) {
			list, total, err := p.cfg.Store.ListPixelEvents(ctx, c.WorkspaceID(), lp)
			if err != nil {
				return nil, 0, err
			}
			out := make([]*pixelEventOut, len(list))
			for i, e := range list {
				props := e.Properties
				if props == nil {
					props = map[string]any{}
				}
				out[i] = &pixelEventOut{ID: e.ID, Event: e.Event, URL: e.URL, Referrer: e.Referrer, UserAgent: e.UserAgent, Properties: props, CreatedAt: e.CreatedAt}
			}
			return out, total, nil
		})
}
