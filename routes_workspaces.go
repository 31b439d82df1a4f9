package revops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/scope"
	"github.com/revopsdev/revops/workspace"
)

// Wire shapes of workspaces and members (spec 001 + 003).
type (
	settingsOut struct {
		Timezone string `json:"timezone"`
		Locale   string `json:"locale"`
	}
	userOut struct {
		ID          int64  `json:"id"`
		Email       string `json:"email"`
		Name        string `json:"name"`
		DisplayName string `json:"display_name"`     // the name again, as spec 002 calls it
		Locale      string `json:"locale,omitempty"` // on the signed-in user's own record
	}
	memberOut struct {
		UserID    int64     `json:"user_id"`
		Email     string    `json:"email"`
		Name      string    `json:"name"`
		Role      string    `json:"role"`
		CreatedAt time.Time `json:"created_at"`
	}
	workspaceOut struct {
		ID         int64       `json:"id"`
		Name       string      `json:"name"`
		Slug       string      `json:"slug"`
		Tier       string      `json:"tier"`
		Settings   settingsOut `json:"settings"`
		TOTPPolicy string      `json:"totp_policy"`
		CreatedAt  time.Time   `json:"created_at"`
		UpdatedAt  time.Time   `json:"updated_at"`
		// Only with include=owner / include=members (the first 100).
		Owner   *userOut    `json:"owner,omitempty"`
		Members []memberOut `json:"members,omitempty"`
	}
	settingsIn struct {
		Timezone *string `json:"timezone" validate:"omitempty,max=64"`
		Locale   *string `json:"locale" validate:"omitempty,max=35"`
	}
	createWorkspaceIn struct {
		Name     string      `json:"name" validate:"required,max=255"`
		Slug     string      `json:"slug" validate:"omitempty,max=64"`
		Tier     string      `json:"tier"`
		Settings *settingsIn `json:"settings"`
		// BillingAccountID binds an account the creator owns (spec 003);
		// omitted, the creator's default account is bound.
		BillingAccountID *int64 `json:"billingAccountId"`
	}
	updateWorkspaceIn struct {
		Name     *string     `json:"name" validate:"omitempty,max=255"`
		Slug     *string     `json:"slug" validate:"omitempty,max=64"`
		Settings *settingsIn `json:"settings"`
	}
	inviteIn struct {
		Email string `json:"email" validate:"required,max=254"`
		Role  string `json:"role" validate:"omitempty,oneof=owner admin member"`
	}
	invitationOut struct {
		ID        int64     `json:"id"`
		Email     string    `json:"email"`
		Role      string    `json:"role"`
		Status    string    `json:"status"`
		Token     string    `json:"token,omitempty"` // only when created
		ExpiresAt time.Time `json:"expires_at"`
		CreatedAt time.Time `json:"created_at"`
	}
	tokenIn struct {
		Token string `json:"token" validate:"required,max=255"`
	}
	joinCodeIn struct {
		Role      string        `json:"role" validate:"omitempty,oneof=admin member"`
		ExpiresAt *httpapi.Time `json:"expires_at"`
	}
	joinCodeOut struct {
		ID        int64      `json:"id"`
		Code      string     `json:"code,omitempty"` // only when created
		Hint      string     `json:"hint"`
		Role      string     `json:"role"`
		Uses      int        `json:"uses"`
		ExpiresAt *time.Time `json:"expires_at"`
		CreatedAt time.Time  `json:"created_at"`
	}
	joinIn struct {
		Code string `json:"code" validate:"required,max=255"`
	}
	iconOut struct {
		ContentType string    `json:"content_type"`
		Size        int       `json:"size"`
		ETag        string    `json:"etag"`
		UpdatedAt   time.Time `json:"updated_at"`
	}
	totpIn struct {
		Policy string `json:"policy" validate:"required,oneof=off optional required"`
	}
	totpOut struct {
		Policy string `json:"policy"`
	}
)

func toWorkspace(w *workspace.Workspace) *workspaceOut {
	return &workspaceOut{ID: w.ID, Name: w.Name, Slug: w.Slug, Tier: w.Tier,
		Settings:   settingsOut{Timezone: w.Settings.Timezone, Locale: w.Settings.Locale},
		TOTPPolicy: w.TOTPPolicy, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

// toUser is a user's own record as the auth routes show it.
func toUser(u *workspace.User) userOut {
	return userOut{ID: u.ID, Email: u.Email, Name: u.Name, DisplayName: u.Name, Locale: u.Locale}
}

func toMember(m *workspace.Member) memberOut {
	return memberOut{UserID: m.UserID, Email: m.Email, Name: m.Name, Role: m.Role, CreatedAt: m.CreatedAt}
}

// sendInvitation hands a new invitation's token to Config.SendInvitation
// and returns what the answer shows: the token when there is no sender,
// nothing when it was sent. A failed send revokes the invitation and is a
// 503 (the mailer is a dependency that may be back shortly), unless the
// sender answered with a *core.Error of its own, which is passed on.
func (p *Platform) sendInvitation(ctx context.Context, inv *workspace.Invitation, token string) (string, error) {
	if p.cfg.SendInvitation == nil {
		return token, nil
	}
	err := p.cfg.SendInvitation(ctx, inv, token)
	if err == nil {
		return "", nil
	}
	if rerr := p.cfg.Store.RevokeInvitation(context.WithoutCancel(ctx), inv.WorkspaceID, inv.ID); rerr != nil && !errors.Is(rerr, core.ErrNotFound) {
		return "", fmt.Errorf("revops: sending invitation %d: %w", inv.ID, errors.Join(err, rerr))
	}
	if ce, ok := errors.AsType[*core.Error](err); ok {
		return "", ce
	}
	return "", &core.Error{Code: core.CodeUnavailable, Message: "The invitation could not be sent, so it was not kept; try again shortly.",
		Cause: fmt.Errorf("revops: sending invitation %d: %w", inv.ID, err)}
}

func toInvitation(i *workspace.Invitation, token string) *invitationOut {
	return &invitationOut{ID: i.ID, Email: i.Email, Role: i.Role, Status: "pending", Token: token, ExpiresAt: i.ExpiresAt, CreatedAt: i.CreatedAt}
}

func toJoinCode(j *workspace.JoinCode, code string) *joinCodeOut {
	return &joinCodeOut{ID: j.ID, Code: code, Hint: j.Hint, Role: j.Role, Uses: j.Uses, ExpiresAt: j.ExpiresAt, CreatedAt: j.CreatedAt}
}

// withIncludes adds include=owner and include=members to a workspace.
func (p *Platform) withIncludes(ctx context.Context, c *Call, w *workspace.Workspace) (*workspaceOut, error) {
	out := toWorkspace(w)
	if !c.Includes("owner") && !c.Includes("members") {
		return out, nil
	}
	// Members are only shown to whoever may read them.
	if !c.Allows("members:read") {
		return nil, core.MissingScope("members:read")
	}
	if c.Access == nil && c.Principal.UserBound() {
		// Listing workspaces: each one's members as the user may see them
		// there (role, and a TOTP policy the user does not meet), or not
		// at all.
		acc, err := p.resolver.Access(ctx, c.Principal, w.ID)
		if err != nil {
			switch core.As(err).Code {
			case core.CodeNotFound, core.CodeAccessDenied, core.CodeTOTPEnrollmentRequired:
				return out, nil // not theirs to see here
			}
			return nil, err
		}
		if !acc.Allows("members:read") {
			return out, nil
		}
	}
	ms, _, err := p.cfg.Store.ListMembers(ctx, w.ID, core.ListParams{Page: 1, PerPage: core.MaxPerPage, Sort: []core.Sort{{Field: "created_at"}}})
	if err != nil {
		return nil, err
	}
	for i := range ms {
		if c.Includes("members") {
			out.Members = append(out.Members, toMember(&ms[i]))
		}
		if c.Includes("owner") && out.Owner == nil && ms[i].Role == scope.Owner {
			out.Owner = &userOut{ID: ms[i].UserID, Email: ms[i].Email, Name: ms[i].Name, DisplayName: ms[i].Name}
		}
	}
	if c.Includes("members") && out.Members == nil {
		out.Members = []memberOut{}
	}
	return out, nil
}

// needUser rejects workspace keys on routes that act as a person.
func needUser(c *Call, what string) error {
	if !c.Principal.UserBound() {
		return core.E(core.CodeAccessDenied, "A workspace key cannot %s; use a personal key.", what)
	}
	return nil
}

func settingsPatch(s *settingsIn) (tz, loc *string) {
	if s == nil {
		return nil, nil
	}
	return s.Timezone, s.Locale
}

func (p *Platform) workspaceRoutes() {
	a := p.api
	st := p.cfg.Store
	ws := p.workspaces
	const tag = "Workspaces"
	sorts := []string{"id", "name", "slug", "tier", "created_at", "updated_at"}
	includes := []string{"owner", "members"}

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: "/workspaces", Tag: tag, Summary: "List workspaces", Scope: "workspaces:read",
		Sort: sorts, Include: includes, Search: true},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*workspaceOut, int, error) {
			f := workspace.ListFilter{MemberUserID: c.Principal.UserID}
			if !c.Principal.UserBound() {
				f = workspace.ListFilter{IDs: []int64{c.Principal.WorkspaceID}}
			}
			list, total, err := st.ListWorkspaces(ctx, f, lp)
			if err != nil {
				return nil, 0, err
			}
			out := make([]*workspaceOut, len(list))
			for i := range list {
				if out[i], err = p.withIncludes(ctx, c, &list[i]); err != nil {
					return nil, 0, err
				}
			}
			return out, total, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/workspaces", Tag: tag, Summary: "Create a workspace", Scope: "workspaces:write",
		Status: http.StatusCreated, Message: "Workspace created successfully."},
		func(ctx context.Context, c *Call, in *createWorkspaceIn) (*workspaceOut, error) {
			if err := needUser(c, "create workspaces"); err != nil {
				return nil, err
			}
			if err := p.checkNewWorkspaceAccount(ctx, c, in.BillingAccountID); err != nil {
				return nil, err
			}
			tz, loc := settingsPatch(in.Settings)
			if p.cfg.Billing.Provider != nil && in.Tier != "" && in.Tier != p.cfg.Tiers[0] {
				// Paid tiers are bought through checkout, not chosen.
				return nil, core.Invalid("tier", fmt.Sprintf("New workspaces start on the %q tier; subscribe to another through POST /workspaces/{id}/billing/checkout.", p.cfg.Tiers[0]))
			}
			w, err := ws.Create(ctx, workspace.CreateInput{Name: in.Name, Slug: in.Slug, Tier: in.Tier, Timezone: deref(tz), Locale: deref(loc)}, c.Principal.UserID)
			if err != nil {
				return nil, err
			}
			if err := p.bindNewWorkspace(ctx, c, w.ID, in.BillingAccountID); err != nil {
				return nil, err
			}
			return toWorkspace(w), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}", Tag: tag, Summary: "Get a workspace", Scope: "workspaces:read",
		Tenant: httpapi.TenantPath, Include: includes},
		func(ctx context.Context, c *Call, _ *NoBody) (*workspaceOut, error) {
			w, err := st.Workspace(ctx, c.WorkspaceID())
			if err != nil {
				return nil, err
			}
			return p.withIncludes(ctx, c, w)
		})

	update := func(ctx context.Context, c *Call, in *updateWorkspaceIn) (*workspaceOut, error) {
		tz, loc := settingsPatch(in.Settings)
		w, err := ws.Update(ctx, c.WorkspaceID(), workspace.UpdateInput{Name: in.Name, Slug: in.Slug, Timezone: tz, Locale: loc})
		if err != nil {
			return nil, err
		}
		p.tiers.forget(w.ID) // its timezone sets when usage periods reset
		return toWorkspace(w), nil
	}
	for _, m := range []string{"PATCH", "PUT"} {
		httpapi.Handle(a, httpapi.Route{Method: m, Path: "/workspaces/{id}", Tag: tag, Summary: "Update a workspace (settings are merged)", Scope: "workspaces:write",
			Tenant: httpapi.TenantPath, Message: "Workspace updated successfully."}, update)
	}

	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: "/workspaces/{id}", Tag: tag, Summary: "Delete a workspace and everything in it", Scope: "workspaces:delete",
		Tenant: httpapi.TenantPath, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			if c.Access.Role != "" && c.Access.Role != scope.Owner {
				return NoBody{}, core.E(core.CodeAccessDenied, "Only an owner can delete a workspace. Required scope: workspaces:delete")
			}
			w, err := st.Workspace(ctx, c.WorkspaceID())
			if err != nil {
				return NoBody{}, err
			}
			if err := st.DeleteWorkspace(ctx, c.WorkspaceID()); err != nil {
				return NoBody{}, err
			}
			p.verifier.InvalidateWorkspace(c.WorkspaceID())
			// Kept in the deleted workspace's trail (events outlive it) for
			// the host's operators; its ids are never reused.
			p.record(ctx, c, w.ID, audit.WorkspaceDeleted, target{"workspace", w.ID}, map[string]any{"name": w.Name, "slug": w.Slug})
			return NoBody{}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "PUT", Path: "/workspaces/{id}/totp-policy", Tag: tag, Summary: "Set the two-factor policy", Scope: "workspaces:write",
		Tenant: httpapi.TenantPath, Message: "TOTP policy updated successfully."},
		func(ctx context.Context, c *Call, in *totpIn) (*totpOut, error) {
			before, err := st.Workspace(ctx, c.WorkspaceID())
			if err != nil {
				return nil, err
			}
			w, err := ws.SetTOTPPolicy(ctx, c.WorkspaceID(), in.Policy)
			p.tiers.forget(c.WorkspaceID()) // the two-factor gate reads the policy from this cache
			if err != nil {
				return nil, err
			}
			if before.TOTPPolicy != w.TOTPPolicy {
				p.record(ctx, c, w.ID, audit.WorkspaceTOTPPolicyChanged, target{"workspace", w.ID},
					map[string]any{"from": before.TOTPPolicy, "to": w.TOTPPolicy})
			}
			return &totpOut{Policy: w.TOTPPolicy}, nil
		})

	// Icon: raw image bodies, type sniffed from the bytes.
	imageTypes := []string{"image/png", "image/jpeg", "image/webp", "image/gif"}
	httpapi.HandleRaw(a, httpapi.Route{Method: "PUT", Path: "/workspaces/{id}/icon", Tag: tag, Summary: "Upload the workspace icon (PNG, JPEG, WebP or GIF, at most 256 KiB)", Scope: "workspaces:write",
		Tenant: httpapi.TenantPath, Message: "Icon updated successfully.", RawBody: imageTypes},
		func(w http.ResponseWriter, r *http.Request, c *Call) error {
			data, err := io.ReadAll(io.LimitReader(r.Body, workspace.MaxIconBytes+1))
			if err != nil {
				return err
			}
			ic, err := ws.PutIcon(r.Context(), c.WorkspaceID(), data)
			if err != nil {
				return err
			}
			httpapi.WriteJSON(w, http.StatusOK, map[string]any{"message": c.Route.Message,
				"data": iconOut{ContentType: ic.ContentType, Size: len(ic.Data), ETag: ic.ETag, UpdatedAt: ic.UpdatedAt}})
			return nil
		})
	httpapi.HandleRaw(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/icon", Tag: tag, Summary: "Get the workspace icon", Scope: "workspaces:read",
		Tenant: httpapi.TenantPath, RawResponse: imageTypes},
		func(w http.ResponseWriter, r *http.Request, c *Call) error {
			ic, err := st.Icon(r.Context(), c.WorkspaceID())
			if err != nil {
				return err
			}
			h := w.Header()
			h.Set("ETag", ic.ETag)
			h.Set("Cache-Control", "private, no-cache")
			if match := r.Header.Get("If-None-Match"); match != "" && (match == ic.ETag || match == "*") {
				w.WriteHeader(http.StatusNotModified)
				return nil
			}
			h.Set("Content-Type", ic.ContentType)
			h.Set("Content-Length", strconv.Itoa(len(ic.Data)))
			h.Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
			w.Write(ic.Data)
			return nil
		})
	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: "/workspaces/{id}/icon", Tag: tag, Summary: "Delete the workspace icon", Scope: "workspaces:write",
		Tenant: httpapi.TenantPath, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			return NoBody{}, st.DeleteIcon(ctx, c.WorkspaceID())
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/workspaces/join", Tag: tag, Summary: "Join a workspace with a join code", Scope: "workspaces:write",
		Message: "Joined workspace successfully."},
		func(ctx context.Context, c *Call, in *joinIn) (*workspaceOut, error) {
			if err := needUser(c, "join workspaces"); err != nil {
				return nil, err
			}
			m, err := ws.Join(ctx, in.Code, c.Principal.UserID)
			if err != nil {
				return nil, err
			}
			p.emit(ctx, m.WorkspaceID, "member.added", map[string]any{"user_id": m.UserID, "role": m.Role, "via": "join_code"})
			p.record(ctx, c, m.WorkspaceID, audit.MemberAdded, target{"user", m.UserID}, map[string]any{"role": m.Role, "via": "join_code"})
			w, err := st.Workspace(ctx, m.WorkspaceID)
			if err != nil {
				return nil, err
			}
			return toWorkspace(w), nil
		})

	p.memberRoutes()
}

func (p *Platform) memberRoutes() {
	a := p.api
	st := p.cfg.Store
	ws := p.workspaces
	const tag = "Members"

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/members", Tag: tag, Summary: "List members", Scope: "members:read",
		Tenant: httpapi.TenantPath, Sort: []string{"created_at", "email", "role"}, Search: true},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]memberOut, int, error) {
			ms, total, err := st.ListMembers(ctx, c.WorkspaceID(), lp)
			out := make([]memberOut, len(ms))
			for i := range ms {
				out[i] = toMember(&ms[i])
			}
			return out, total, err
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/workspaces/{id}/members", Tag: tag, Summary: "Invite a member by email (the token is returned once)", Scope: "members:write",
		Tenant: httpapi.TenantPath, Status: http.StatusCreated, Message: "Invitation created successfully."},
		func(ctx context.Context, c *Call, in *inviteIn) (*invitationOut, error) {
			inv, token, err := ws.Invite(ctx, c.WorkspaceID(), in.Email, in.Role, c.Principal.UserID, actorRole(c))
			if err != nil {
				return nil, err
			}
			if token, err = p.sendInvitation(ctx, inv, token); err != nil {
				return nil, err
			}
			return toInvitation(inv, token), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: "/workspaces/{id}/members/{userId}", Tag: tag, Summary: "Remove a member (never the last owner)", Scope: "members:delete",
		Tenant: httpapi.TenantPath, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			uid, err := c.PathID("userId")
			if err != nil {
				return NoBody{}, err
			}
			m, err := st.Member(ctx, c.WorkspaceID(), uid)
			if err != nil {
				return NoBody{}, err
			}
			if m.Role == scope.Owner && actorRole(c) != scope.Owner {
				return NoBody{}, core.E(core.CodeAccessDenied, "Only an owner can remove an owner.")
			}
			err = st.RemoveMember(ctx, c.WorkspaceID(), uid)
			if errors.Is(err, core.ErrConflict) {
				err = core.Conflict("The last owner of a workspace cannot be removed.")
			}
			if err == nil {
				p.emit(ctx, c.WorkspaceID(), "member.removed", map[string]any{"user_id": uid, "role": m.Role})
				p.record(ctx, c, c.WorkspaceID(), audit.MemberRemoved, target{"user", uid}, map[string]any{"role": m.Role, "email": m.Email})
			}
			return NoBody{}, err
		})

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/invitations", Tag: tag, Summary: "List pending invitations", Scope: "members:read",
		Tenant: httpapi.TenantPath, Sort: []string{"id", "created_at", "email"}, Search: true},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*invitationOut, int, error) {
			list, total, err := st.ListInvitations(ctx, c.WorkspaceID(), lp)
			return each(list, func(x *workspace.Invitation) *invitationOut { return toInvitation(x, "") }), total, err
		})
	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: "/workspaces/{id}/invitations/{invitationId}", Tag: tag, Summary: "Revoke an invitation", Scope: "members:delete",
		Tenant: httpapi.TenantPath, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			id, err := c.PathID("invitationId")
			if err != nil {
				return NoBody{}, err
			}
			return NoBody{}, st.RevokeInvitation(ctx, c.WorkspaceID(), id)
		})
	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/invitations/accept", Tag: tag, Summary: "Accept an invitation as the invited user", Scope: "workspaces:write",
		Message: "Invitation accepted successfully."},
		func(ctx context.Context, c *Call, in *tokenIn) (*workspaceOut, error) {
			if err := needUser(c, "accept invitations"); err != nil {
				return nil, err
			}
			u, err := st.User(ctx, c.Principal.UserID)
			if err != nil {
				return nil, err
			}
			m, err := ws.Accept(ctx, in.Token, u)
			if errors.Is(err, core.ErrNotFound) {
				return nil, core.Invalid("token", "The invitation is invalid, expired, already used or addressed to another email.")
			}
			if err != nil {
				return nil, err
			}
			p.emit(ctx, m.WorkspaceID, "member.added", map[string]any{"user_id": m.UserID, "role": m.Role, "via": "invitation"})
			p.record(ctx, c, m.WorkspaceID, audit.MemberAdded, target{"user", m.UserID}, map[string]any{"role": m.Role, "via": "invitation"})
			w, err := st.Workspace(ctx, m.WorkspaceID)
			if err != nil {
				return nil, err
			}
			return toWorkspace(w), nil
		})

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/join-codes", Tag: tag, Summary: "List active join codes", Scope: "members:read",
		Tenant: httpapi.TenantPath, Sort: []string{"id", "created_at"}},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*joinCodeOut, int, error) {
			list, total, err := st.ListJoinCodes(ctx, c.WorkspaceID(), lp)
			return each(list, func(x *workspace.JoinCode) *joinCodeOut { return toJoinCode(x, "") }), total, err
		})
	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/workspaces/{id}/join-codes", Tag: tag, Summary: "Create a join code (returned once)", Scope: "members:write",
		Tenant: httpapi.TenantPath, Status: http.StatusCreated, Message: "Join code created successfully."},
		func(ctx context.Context, c *Call, in *joinCodeIn) (*joinCodeOut, error) {
			jc, code, err := ws.CreateJoinCode(ctx, c.WorkspaceID(), in.Role, in.ExpiresAt.Ptr(), c.Principal.UserID, actorRole(c))
			if err != nil {
				return nil, err
			}
			return toJoinCode(jc, code), nil
		})
	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: "/workspaces/{id}/join-codes/{codeId}", Tag: tag, Summary: "Revoke a join code", Scope: "members:delete",
		Tenant: httpapi.TenantPath, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			id, err := c.PathID("codeId")
			if err != nil {
				return NoBody{}, err
			}
			return NoBody{}, st.RevokeJoinCode(ctx, c.WorkspaceID(), id, p.cfg.Now().UTC())
		})
}

// actorRole is the caller's role; a workspace key acts as an admin.
func actorRole(c *Call) string {
	if c.Access == nil || c.Access.Role == "" {
		return scope.Admin
	}
	return c.Access.Role
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
