package revops

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
)

// Wire shapes of entitlements (spec 001). Unlimited limits are null.
type (
	checkOut struct {
		Allowed      bool    `json:"allowed"`
		Feature      string  `json:"feature"`
		Reason       string  `json:"reason,omitempty"`
		Message      string  `json:"message,omitempty"`
		CurrentUsage int64   `json:"current_usage"`
		Limit        *int64  `json:"limit"`
		Available    *int64  `json:"available"`
		UpgradeURL   *string `json:"upgrade_url,omitempty"` // when refused, as the 403 has it
	}
	usageIn struct {
		Feature  string          `json:"feature" validate:"required,max=64"`
		Quantity *int64          `json:"quantity"`
		Metadata json.RawMessage `json:"metadata"`
		EventID  string          `json:"event_id" validate:"max=255"`
	}
	usageOut struct {
		Recorded     bool   `json:"recorded"`
		Duplicate    bool   `json:"duplicate,omitempty"` // the event_id was already counted
		Feature      string `json:"feature"`
		CurrentUsage int64  `json:"current_usage"`
		Limit        *int64 `json:"limit"`
	}
	featureUsageOut struct {
		Used       int64      `json:"used"`
		Limit      *int64     `json:"limit"`
		Available  *int64     `json:"available"`
		Percentage float64    `json:"percentage"`
		ResetAt    *time.Time `json:"reset_at,omitempty"`
		Unit       string     `json:"unit,omitempty"`
	}
	periodUsageOut struct {
		PeriodStart time.Time `json:"period_start"`
		Used        int64     `json:"used"`
	}
	featureOverviewOut struct {
		featureUsageOut
		Kind string `json:"type"` // metered, level or flag
		// History: the current and past periods of a metered feature, newest first.
		History []periodUsageOut `json:"history,omitempty"`
	}
	usageOverviewOut struct {
		WorkspaceID int64                         `json:"workspace_id"`
		Tier        string                        `json:"tier"`
		Features    map[string]featureOverviewOut `json:"features"`
	}
	summaryOut struct {
		WorkspaceID  int64                      `json:"workspace_id"`
		Tier         string                     `json:"tier"`
		Entitlements map[string]featureUsageOut `json:"entitlements"`
	}
)

// maxQuantity keeps sums far from int64 overflow.
const maxQuantity = 1_000_000_000_000

func limitPtr(v int64) *int64 {
	if v == billing.Unlimited {
		return nil
	}
	return &v
}

func (p *Platform) entitlementRoutes() {
	const tag = "Entitlements"
	httpapi.Handle(p.api, httpapi.Route{Method: "GET", Path: "/entitlements/check", Tag: tag, Bare: true,
		Summary: "Check whether the workspace may use a quantity of a feature", Scope: "entitlements:read", Tenant: httpapi.TenantContext},
		func(ctx context.Context, c *Call, _ *NoBody) (*checkOut, error) {
			q := c.R.URL.Query()
			var v core.Validation
			feature := q.Get("feature")
			if feature == "" {
				v.Add("feature", "The feature field is required.")
			}
			quantity := int64(1)
			if raw := q.Get("quantity"); raw != "" {
				n, err := strconv.ParseInt(raw, 10, 64)
				if err != nil || n < 1 || n > maxQuantity {
					v.Add("quantity", "The quantity must be an integer from 1 to 1000000000000.")
				}
				quantity = n
			}
			if err := v.Err(); err != nil {
				return nil, err
			}
			d, err := p.CheckFeature(ctx, c.WorkspaceID(), feature, quantity)
			if err != nil {
				return nil, err
			}
			return p.checkOut(d), nil
		})

	httpapi.Handle(p.api, httpapi.Route{Method: "POST", Path: "/entitlements/usage", Tag: tag, Bare: true,
		Summary: "Record usage of a feature (idempotent by event_id)", Scope: "entitlements:write", Tenant: httpapi.TenantContext},
		func(ctx context.Context, c *Call, in *usageIn) (*usageOut, error) {
			qty := int64(1)
			if in.Quantity != nil {
				qty = *in.Quantity
			}
			// Negative usage (a post deleted) is the host's to record: over
			// the API a tenant could otherwise lower its own usage.
			if qty < 1 || qty > maxQuantity {
				return nil, core.Invalid("quantity", "The quantity must be an integer from 1 to 1000000000000.")
			}
			if string(in.Metadata) == "null" {
				in.Metadata = nil
			}
			d, err := p.RecordUsage(ctx, c.WorkspaceID(), billing.UsageInput{Feature: in.Feature, Quantity: qty, EventID: in.EventID, Metadata: in.Metadata})
			if err != nil {
				return nil, err
			}
			return &usageOut{Recorded: true, Duplicate: d.Duplicate, Feature: d.Feature, CurrentUsage: d.Used, Limit: limitPtr(d.Limit)}, nil
		})

	httpapi.Handle(p.api, httpapi.Route{Method: "GET", Path: "/entitlements/summary", Tag: tag,
		Summary: "Usage and limits of every feature of the workspace", Scope: "entitlements:read", Tenant: httpapi.TenantContext},
		func(ctx context.Context, c *Call, _ *NoBody) (*summaryOut, error) {
			s, err := p.subject(ctx, c.WorkspaceID())
			if err != nil {
				return nil, err
			}
			_, usage, err := p.featureUsage(ctx, s)
			if err != nil {
				return nil, err
			}
			return &summaryOut{WorkspaceID: s.WorkspaceID, Tier: s.Tier, Entitlements: usage}, nil
		})

	httpapi.Handle(p.api, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/billing/usage-overview", Tag: BillingTag,
		Summary: "Usage of every feature, with the last periods of metered ones", Scope: "billing:read", Tenant: httpapi.TenantPath},
		func(ctx context.Context, c *Call, _ *NoBody) (*usageOverviewOut, error) {
			s, err := p.subject(ctx, c.WorkspaceID())
			if err != nil {
				return nil, err
			}
			all, usage, err := p.featureUsage(ctx, s)
			if err != nil {
				return nil, err
			}
			hist, err := p.meter.History(ctx, s, historyPeriods)
			if err != nil {
				return nil, err
			}
			out := &usageOverviewOut{WorkspaceID: s.WorkspaceID, Tier: s.Tier, Features: make(map[string]featureOverviewOut, len(all))}
			for i := range all {
				fo := featureOverviewOut{featureUsageOut: usage[all[i].Feature], Kind: string(all[i].Kind)}
				for _, h := range hist[all[i].Feature] {
					fo.History = append(fo.History, periodUsageOut{PeriodStart: h.PeriodStart, Used: h.Used})
				}
				out.Features[all[i].Feature] = fo
			}
			return out, nil
		})
}

// historyPeriods is how many past periods usage-overview shows.
const historyPeriods = 6

// featureUsage is s's status on every feature, also in the wire shape by
// feature (GET /entitlements/summary, the billing status and overview).
func (p *Platform) featureUsage(ctx context.Context, s billing.Subject) ([]billing.Status, map[string]featureUsageOut, error) {
	all, err := p.meter.Summary(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]featureUsageOut, len(all))
	for _, st := range all {
		out[st.Feature] = featureUsageOut{Used: st.Used, Limit: limitPtr(st.Limit), Available: limitPtr(st.Available),
			Percentage: st.Percentage(), ResetAt: st.ResetAt, Unit: st.Unit}
	}
	return all, out, nil
}

func (p *Platform) checkOut(d *billing.Decision) *checkOut {
	out := &checkOut{Allowed: d.Allowed, Feature: d.Feature, CurrentUsage: d.Used, Limit: limitPtr(d.Limit), Available: limitPtr(d.Available)}
	if !d.Allowed {
		f, _ := p.cfg.Billing.Feature(d.Feature)
		out.Reason, out.Message, out.UpgradeURL = billing.ReasonLimitExceeded, d.Message(f), &p.cfg.Billing.UpgradeURL
	}
	return out
}

// subject is who usage is counted for: the workspace, its tier and zone.
func (p *Platform) subject(ctx context.Context, workspaceID int64) (billing.Subject, error) {
	e, err := p.tiers.entry(ctx, workspaceID)
	if err != nil {
		return billing.Subject{}, err
	}
	if e.missing || workspaceID == 0 {
		return billing.Subject{}, core.NotFound()
	}
	return billing.Subject{WorkspaceID: workspaceID, Tier: e.tier, Timezone: e.tz}, nil
}

// Meter returns the entitlements and usage meter, for host code that needs
// more than CheckFeature, Consume and RecordUsage (overrides, bulk Ingest).
func (p *Platform) Meter() *billing.Meter { return p.meter }

// CheckFeature tells whether a workspace may use quantity more of a
// feature, without using it.
func (p *Platform) CheckFeature(ctx context.Context, workspaceID int64, feature string, quantity int64) (*billing.Decision, error) {
	s, err := p.subject(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	return p.meter.Check(ctx, s, feature, quantity)
}

// Consume checks and uses quantity of a feature in one atomic step: however
// many calls race, no more than the limit is granted. When the limit does
// not allow it, the error is 403 feature_limit_reached (write it with
// WriteError). eventID, when set, makes a retry count once.
func (p *Platform) Consume(ctx context.Context, workspaceID int64, feature string, quantity int64, eventID string) (*billing.Decision, error) {
	s, err := p.subject(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	d, err := p.meter.Consume(ctx, s, feature, quantity, eventID)
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return d, p.limitReached(feature)
	}
	return d, nil
}

// RecordUsage counts usage that happened, whatever the limit; a level
// feature takes negative quantities (a post deleted).
func (p *Platform) RecordUsage(ctx context.Context, workspaceID int64, in billing.UsageInput) (*billing.Decision, error) {
	s, err := p.subject(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	return p.meter.Record(ctx, s, in)
}

// limitReached is spec 001's 403 feature_limit_reached.
func (p *Platform) limitReached(feature string) error {
	e := core.E(core.CodeFeatureLimit, "You have reached your limit for this feature.")
	e.Extra = map[string]any{"feature": feature, "upgrade_url": p.cfg.Billing.UpgradeURL}
	return e
}

// RequireFeature runs h only if the calling workspace may use quantity of
// feature, and uses it (Consume) before h runs; otherwise it answers 403
// feature_limit_reached. A level feature's use is given back when h
// answers with an error status (≥ 400), so a failed create does not hold a
// post. Use it inside Protect, which tells the workspace:
//
//	mux.Handle("POST /posts", p.Protect("posts:write", p.RequireFeature("posts", 1, create)))
func (p *Platform) RequireFeature(feature string, quantity int64, h http.Handler) http.Handler {
	f, ok := p.cfg.Billing.Feature(feature)
	if !ok || quantity < 1 {
		panic("revops: RequireFeature(" + strconv.Quote(feature) + "): declare the feature in Config.Billing.Features and use a quantity ≥ 1")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := CallFrom(r.Context())
		if c == nil || c.WorkspaceID() == 0 {
			p.WriteError(w, r, core.E(core.CodeBadRequest, "No workspace: send X-Workspace-ID or use a workspace key."))
			return
		}
		ctx := r.Context()
		if _, err := p.Consume(ctx, c.WorkspaceID(), feature, quantity, ""); err != nil {
			p.WriteError(w, r, err)
			return
		}
		if f.Kind != billing.Level {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status >= 400 {
			if _, err := p.RecordUsage(context.WithoutCancel(ctx), c.WorkspaceID(), billing.UsageInput{Feature: feature, Quantity: -quantity}); err != nil {
				p.cfg.Logger.ErrorContext(ctx, "revops: giving back usage of a failed request", "error", err, "feature", feature)
			}
		}
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// onThreshold announces usage.threshold_reached.
func (p *Platform) onThreshold(ctx context.Context, t billing.Threshold) {
	p.emit(ctx, t.WorkspaceID, "usage.threshold_reached", map[string]any{
		"workspace_id": t.WorkspaceID, "feature": t.Feature, "threshold": t.Percent,
		"used": t.Used, "limit": t.Limit, "period_start": t.PeriodStart, "reset_at": t.ResetAt,
	})
}
