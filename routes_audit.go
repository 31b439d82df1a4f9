package revops

import (
	"context"
	"strconv"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
)

// Wire shapes of the audit trail.
type (
	auditActorOut struct {
		Type    string `json:"type"` // user, key, system or anonymous
		ID      *int64 `json:"id"`
		KeyID   *int64 `json:"key_id"` // the API key used, if any
		Display string `json:"display"`
	}
	auditTargetOut struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	auditEventOut struct {
		ID          int64           `json:"id"`
		WorkspaceID *int64          `json:"workspace_id"`
		Action      string          `json:"action"`
		Actor       auditActorOut   `json:"actor"`
		Target      *auditTargetOut `json:"target"`
		IP          string          `json:"ip"`
		UserAgent   string          `json:"user_agent"`
		RequestID   string          `json:"request_id"`
		Metadata    map[string]any  `json:"metadata"`
		CreatedAt   time.Time       `json:"created_at"`
	}
)

func nonZero(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

func toAuditEvent(e *audit.Event) *auditEventOut {
	out := &auditEventOut{ID: e.ID, WorkspaceID: nonZero(e.WorkspaceID), Action: e.Action,
		Actor: auditActorOut{Type: string(e.Actor.Kind), ID: nonZero(e.Actor.ID), KeyID: nonZero(e.Actor.KeyID), Display: e.Actor.Display},
		IP:    e.IP, UserAgent: e.UserAgent, RequestID: e.RequestID, Metadata: e.Metadata, CreatedAt: e.CreatedAt}
	if e.TargetType != "" {
		out.Target = &auditTargetOut{Type: e.TargetType, ID: e.TargetID}
	}
	if out.Metadata == nil {
		out.Metadata = map[string]any{}
	}
	return out
}

// Audit returns the audit recorder, for host code: record the host's own
// sensitive actions, or read events outside any workspace (workspace 0:
// logins, personal keys, two-factor) of any user; a user reads their own
// at GET /user/audit/events.
func (p *Platform) Audit() *audit.Recorder { return p.audit }

// target names what an audited action acted on.
type target struct {
	typ string
	id  int64
}

// record writes an audit event for a call: the actor is the call's
// principal, IP (as rate limits see it), user agent and request id come from
// the request. The action it reports is already committed, so a failure to
// record is logged at error level rather than failing the request.
func (p *Platform) record(ctx context.Context, c *Call, workspaceID int64, action string, tg target, meta map[string]any) {
	e := &audit.Event{WorkspaceID: workspaceID, Action: action, Metadata: meta, RequestID: c.RequestID}
	if tg.typ != "" {
		e.TargetType, e.TargetID = tg.typ, strconv.FormatInt(tg.id, 10)
	}
	if c.R != nil {
		e.IP, e.UserAgent = p.clientIP(c.R), c.R.UserAgent()
	}
	e.Actor = p.actorOf(ctx, c.Principal)
	p.writeAudit(ctx, e)
}

func (p *Platform) writeAudit(ctx context.Context, e *audit.Event) {
	if err := p.audit.Record(context.WithoutCancel(ctx), e); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "revops: recording audit event "+e.Action, "error", err, "workspace_id", e.WorkspaceID)
	}
}

// actorOf describes a principal: a workspace key acts as itself; a personal
// key or a user token acts as its user (display: the email, read now, so
// that the trail stays readable after the user is gone).
func (p *Platform) actorOf(ctx context.Context, pr *auth.Principal) audit.Actor {
	switch {
	case pr == nil:
		return audit.Actor{Kind: audit.ActorAnonymous}
	case !pr.UserBound():
		return audit.Actor{Kind: audit.ActorKey, ID: pr.KeyID, KeyID: pr.KeyID, Display: keyDisplay(pr.KeyName, pr.KeyPrefix)}
	}
	a := audit.Actor{Kind: audit.ActorUser, ID: pr.UserID, KeyID: pr.KeyID}
	if u, err := p.cfg.Store.User(ctx, pr.UserID); err == nil {
		a.Display = u.Email
	}
	return a
}

func keyDisplay(name, prefix string) string {
	if prefix == "" {
		return name
	}
	return name + " (" + prefix + "…)"
}

func (p *Platform) auditRoutes() {
	for _, base := range []struct {
		path   string
		tenant httpapi.Tenant
	}{
		{"/audit/events", httpapi.TenantContext},
		{"/workspaces/{id}/audit/events", httpapi.TenantPath},
	} {
		httpapi.HandleList(p.api, httpapi.Route{Method: "GET", Path: base.path, Tag: "Audit",
			Summary: "The workspace's audit trail of sensitive actions, newest first (owners and admins)", Scope: "audit:read",
			Tenant: base.tenant, Sort: []string{"id", "created_at"},
			Query: []httpapi.QueryParam{
				{Name: "action", Description: "Only this action (e.g. api_key.created) or family (api_key.*)."},
				{Name: "actor", Description: "Only this actor: user:<id> (whichever credential the user used), key:<id> (the API key used), system or anonymous."},
			}},
			func(ctx context.Context, c *Call, lp core.ListParams) ([]*auditEventOut, int, error) {
				f, err := auditFilter(c)
				if err != nil {
					return nil, 0, err
				}
				list, total, err := p.audit.List(ctx, f, lp)
				if err != nil {
					return nil, 0, err
				}
				return each(list, toAuditEvent), total, nil
			})
	}
	httpapi.HandleList(p.api, httpapi.Route{Method: "GET", Path: "/user/audit/events", Tag: "Audit",
		Summary: "Your own account's trail outside any workspace (sign-ins, personal keys, two-factor, sessions), newest first",
		Scope:   "audit:read", Sort: []string{"id", "created_at"},
		Query: []httpapi.QueryParam{{Name: "action", Description: "Only this action (e.g. login.succeeded) or family (totp.*)."}}},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*auditEventOut, int, error) {
			if err := needUser(c, "have an account trail"); err != nil {
				return nil, 0, err
			}
			if c.R.URL.Query().Has("actor") {
				return nil, 0, core.Invalid("actor", "This trail is always yours: leave actor out.")
			}
			f, err := auditFilter(c) // workspace 0: the call has none
			if err != nil {
				return nil, 0, err
			}
			f.ActorKind, f.ActorID = audit.ActorUser, c.Principal.UserID
			list, total, err := p.audit.List(ctx, f, lp)
			if err != nil {
				return nil, 0, err
			}
			return each(list, toAuditEvent), total, nil
		})
}

// auditFilter reads action= and actor= into a filter of the call's workspace.
func auditFilter(c *Call) (audit.Filter, error) {
	f := audit.Filter{WorkspaceID: c.WorkspaceID()}
	q := c.R.URL.Query()
	var v core.Validation
	if q.Has("action") {
		f.Action = q.Get("action")
		if err := audit.ParseActionFilter(f.Action); err != nil {
			v.Add("action", core.As(err).Fields["action"][0])
		}
	}
	if q.Has("actor") {
		var err error
		if f.ActorKind, f.ActorID, err = audit.ParseActorFilter(q.Get("actor")); err != nil {
			v.Add("actor", core.As(err).Fields["actor"][0])
		}
	}
	return f, v.Err()
}
