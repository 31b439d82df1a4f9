package revops

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/workspace"
)

// Wire shapes of users (spec 002's invite) and member roles.
type (
	inviteUserIn struct {
		Email       string `json:"email" validate:"required,max=254"`
		DisplayName string `json:"display_name" validate:"required,max=1024"`
		Locale      string `json:"locale" validate:"omitempty,max=35"`
		Role        string `json:"role" validate:"omitempty,oneof=owner admin member"`
	}
	accountOut struct {
		ID          int64     `json:"id"`
		Email       string    `json:"email"`
		DisplayName string    `json:"display_name"`
		Locale      string    `json:"locale"`
		CreatedAt   time.Time `json:"created_at"`
	}
	// invitedUserOut echoes the invitee as asked, whether or not the email
	// already has an account: the answer must not tell which.
	invitedUserOut struct {
		User       inviteeOut     `json:"user"`
		Invitation *invitationOut `json:"invitation"`
	}
	inviteeOut struct {
		Email       string `json:"email"`
		DisplayName string `json:"display_name"`
		Locale      string `json:"locale"`
	}
	registerIn struct {
		Token       string `json:"token" validate:"required,max=255"`
		Password    string `json:"password" validate:"required,max=1024"`
		DisplayName string `json:"display_name" validate:"omitempty,max=1024"`
		Locale      string `json:"locale" validate:"omitempty,max=35"`
	}
	registeredOut struct {
		User      accountOut    `json:"user"`
		Workspace *workspaceOut `json:"workspace"`
	}
	memberRoleIn struct {
		Role string `json:"role" validate:"required,oneof=owner admin member"`
	}
)

func toAccount(u *workspace.User) accountOut {
	loc := u.Locale
	if loc == "" {
		loc = workspace.DefaultLocale
	}
	return accountOut{ID: u.ID, Email: u.Email, DisplayName: u.Name, Locale: loc, CreatedAt: u.CreatedAt}
}

// createAccount makes a password-less account for email; an account made
// meanwhile by someone else is returned instead (created false).
func (p *Platform) createAccount(ctx context.Context, email, name, locale string) (*workspace.User, bool, error) {
	now := p.now()
	u := &workspace.User{Email: email, Name: name, Locale: locale, CreatedAt: now, UpdatedAt: now}
	err := p.cfg.Store.CreateUser(ctx, u)
	if errors.Is(err, core.ErrConflict) {
		u, err = p.cfg.Store.UserByEmail(ctx, email)
		return u, false, err
	}
	return u, err == nil, err
}

// recordUser writes an audit event acted by user u (public routes have no principal).
func (p *Platform) recordUser(ctx context.Context, c *Call, wid int64, u *workspace.User, action string, tg target, meta map[string]any) {
	e := &audit.Event{WorkspaceID: wid, Actor: audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: u.Email}, Action: action, Metadata: meta,
		RequestID: c.RequestID, IP: p.clientIP(c.R), UserAgent: c.R.UserAgent(), TargetType: tg.typ, TargetID: strconv.FormatInt(tg.id, 10)}
	p.writeAudit(ctx, e)
}

func (p *Platform) userRoutes() {
	a := p.api
	st := p.cfg.Store
	ws := p.workspaces

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/users", Tag: "Members", Scope: "members:write", Tenant: httpapi.TenantContext,
		Status: http.StatusCreated, Message: "User invited successfully.",
		Summary: "Invite a user into the workspace (X-Workspace-ID, or the key's): creates the account when the email has none; the invitation token is returned once"},
		func(ctx context.Context, c *Call, in *inviteUserIn) (*invitedUserOut, error) {
			email, name, locale := workspace.NormalizeEmail(in.Email), strings.TrimSpace(in.DisplayName), in.Locale
			if locale == "" {
				locale = workspace.DefaultLocale
			}
			var v core.Validation
			workspace.CheckEmail(&v, "email", email)
			workspace.CheckProfile(&v, "display_name", name, locale)
			if err := v.Err(); err != nil {
				return nil, err
			}
			inv, token, err := ws.Invite(ctx, c.WorkspaceID(), email, in.Role, c.Principal.UserID, actorRole(c))
			if err != nil {
				return nil, err
			}
			_, err = st.UserByEmail(ctx, email)
			if errors.Is(err, core.ErrNotFound) {
				var u *workspace.User
				var created bool
				if u, created, err = p.createAccount(ctx, email, name, locale); err == nil && created {
					p.record(ctx, c, c.WorkspaceID(), audit.UserCreated, target{"user", u.ID}, map[string]any{"email": u.Email, "via": "invite"})
				}
			}
			if err != nil {
				return nil, err
			}
			if token, err = p.sendInvitation(ctx, inv, token); err != nil {
				return nil, err
			}
			return &invitedUserOut{User: inviteeOut{Email: email, DisplayName: name, Locale: locale}, Invitation: toInvitation(inv, token)}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/invitations/register", Tag: "Members", Public: true,
		Message: "Invitation accepted successfully.",
		Summary: "Accept an invitation without an account: creates it (or completes a password-less one) with this password and joins the workspace"},
		func(ctx context.Context, c *Call, in *registerIn) (*registeredOut, error) {
			invalidToken := core.Invalid("token", "The invitation is invalid, expired or already used.")
			inv, err := st.InvitationByToken(ctx, workspace.HashSecret(in.Token), p.now())
			if errors.Is(err, core.ErrNotFound) {
				return nil, invalidToken
			}
			if err != nil {
				return nil, err
			}
			var v core.Validation
			if err := login.CheckPassword(in.Password); err != nil {
				v.Add("password", "The password must be "+strings.TrimPrefix(err.Error(), "a password is ")+".")
			}
			u, hash, err := st.UserCredentials(ctx, inv.Email)
			switch {
			case errors.Is(err, core.ErrNotFound):
				u = nil
				name, locale := strings.TrimSpace(in.DisplayName), in.Locale
				if locale == "" {
					locale = workspace.DefaultLocale
				}
				workspace.CheckProfile(&v, "display_name", name, locale)
				if err := v.Err(); err != nil {
					return nil, err
				}
				var created bool
				if u, created, err = p.createAccount(ctx, inv.Email, name, locale); err != nil {
					return nil, err
				}
				if !created { // made meanwhile: it may hold a password now
					return nil, core.Conflict("An account with this email exists: sign in and accept the invitation with POST /invitations/accept.")
				}
				p.recordUser(ctx, c, inv.WorkspaceID, u, audit.UserCreated, target{"user", u.ID}, map[string]any{"email": u.Email, "via": "invitation"})
			case err != nil:
				return nil, err
			case hash != "":
				return nil, core.Conflict("An account with this email exists: sign in and accept the invitation with POST /invitations/accept.")
			default: // a password-less account (made by POST /users): the invitee completes it
				if err := v.Err(); err != nil {
					return nil, err
				}
			}
			// Accepted first: a refused acceptance leaves no password behind.
			m, err := ws.Accept(ctx, in.Token, u)
			if errors.Is(err, core.ErrNotFound) {
				return nil, invalidToken
			}
			if err != nil {
				return nil, err
			}
			if err := p.login.SetPassword(ctx, u.ID, in.Password); err != nil {
				return nil, err
			}
			p.emit(ctx, m.WorkspaceID, "member.added", map[string]any{"user_id": m.UserID, "role": m.Role, "via": "invitation"})
			p.recordUser(ctx, c, m.WorkspaceID, u, audit.MemberAdded, target{"user", m.UserID}, map[string]any{"role": m.Role, "via": "invitation"})
			w, err := st.Workspace(ctx, m.WorkspaceID)
			if err != nil {
				return nil, err
			}
			return &registeredOut{User: toAccount(u), Workspace: toWorkspace(w)}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "PATCH", Path: "/workspaces/{id}/members/{userId}", Tag: "Members", Scope: "members:write",
		Tenant: httpapi.TenantPath, Message: "Member updated successfully.",
		Summary: "Change a member's role (only an owner grants or takes away the owner role; the last owner keeps it)"},
		func(ctx context.Context, c *Call, in *memberRoleIn) (*memberOut, error) {
			uid, err := c.PathID("userId")
			if err != nil {
				return nil, err
			}
			before, after, err := ws.ChangeRole(ctx, c.WorkspaceID(), uid, in.Role, actorRole(c))
			if err != nil {
				return nil, err
			}
			if before.Role != after.Role {
				meta := map[string]any{"user_id": uid, "from": before.Role, "to": after.Role}
				p.emit(ctx, c.WorkspaceID(), "member.role_changed", meta)
				p.record(ctx, c, c.WorkspaceID(), audit.MemberRoleChanged, target{"user", uid}, map[string]any{"from": before.Role, "to": after.Role, "email": after.Email})
			}
			out := toMember(after)
			return &out, nil
		})
}
