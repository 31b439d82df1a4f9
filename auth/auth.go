// Package auth turns a presented credential into a principal and a
// principal plus a workspace into the grant a request runs with.
package auth

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/scope"
	"github.com/revopsdev/revops/workspace"
)

// Kind is the kind of a principal.
type Kind string

// Principal kinds of DESIGN.md: a workspace key acts in its workspace only; a
// personal key (and later a user session) acts in the user's workspaces.
const (
	WorkspaceKey Kind = "workspace_key"
	PersonalKey  Kind = "personal_key"
	UserToken    Kind = "user_token" // an access token from POST /auth/login
	// WebSession is a session cookie set by POST /auth/login; it acts as
	// its user exactly like an access token.
	WebSession Kind = "web_session"
)

// Principal is who is calling.
type Principal struct {
	Kind        Kind
	KeyID       int64
	UserID      int64 // the personal key's user; the workspace key's creator, or 0
	WorkspaceID int64 // bound workspace of a workspace key
	Scopes      scope.Set
	Tier        string // the key's own rate-limit tier, "" for the workspace's
	// SessionID is a user token's or web session's login session (0 for keys).
	SessionID int64
	// KeyName and KeyPrefix describe the key in the audit trail.
	KeyName, KeyPrefix string
	// ExpiresAt is when the key stops working (its expiry or the end of its
	// rotation grace, whichever is first); nil if never. Keys it creates may
	// not outlive it.
	ExpiresAt *time.Time

	// Ref names the principal's key ("key:<id>", KeyRef) in rate-limit
	// buckets; built once with the principal.
	Ref string

	own *Access // a workspace key's access to its workspace, built with it
}

// UserBound reports whether the principal acts as a user.
func (p *Principal) UserBound() bool { return p.Kind != WorkspaceKey }

// Access is a principal inside one workspace.
type Access struct {
	Principal   *Principal
	WorkspaceID int64
	Role        string // the user's role; "" for a workspace key
	Grant       scope.Grant
}

// Allows reports whether the access grants required.
func (a *Access) Allows(required string) bool { return a.Grant.Allows(required) }

// TokenVerifier turns an access token into its user's principal.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (*Principal, error)
}

// Resolver authenticates keys and access tokens and resolves workspace access.
type Resolver struct {
	keys   *keys.Verifier
	ws     workspace.Store
	roles  func(string) (scope.Role, bool)
	tokens TokenVerifier
	gate   Gate
}

// Gate is asked, after membership and role are resolved, whether a user
// may act in a workspace at all (the two-factor policy); an error refuses
// the request. It is not asked for workspace keys.
type Gate func(ctx context.Context, p *Principal, workspaceID int64) error

// SetGate installs g. Call it before serving.
func (r *Resolver) SetGate(g Gate) { r.gate = g }

// SetTokens makes the resolver accept access tokens (JWTs) wherever keys
// are accepted. Call it before serving.
func (r *Resolver) SetTokens(v TokenVerifier) { r.tokens = v }

// looksLikeJWT tells a compact JWS from an API key without a lookup: keys
// never contain dots.
func looksLikeJWT(s string) bool { return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2 }

// NewResolver returns a Resolver.
func NewResolver(v *keys.Verifier, ws workspace.Store, roles func(string) (scope.Role, bool)) (*Resolver, error) {
	if v == nil || ws == nil || roles == nil {
		return nil, errors.New("auth: NewResolver needs a key verifier, a workspace store and roles")
	}
	return &Resolver{keys: v, ws: ws, roles: roles}, nil
}

// Authenticate verifies a bearer token at now (a key's expiry, the key
// cache's). The principal is built once per key cache fill (see KeyView)
// and shared: callers must not modify it.
func (r *Resolver) Authenticate(ctx context.Context, token string, now time.Time) (*Principal, error) {
	if r.tokens != nil && looksLikeJWT(token) {
		return r.tokens.VerifyToken(ctx, token)
	}
	k, view, err := r.keys.VerifyViewAt(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if p, ok := view.(*Principal); ok {
		return p, nil
	}
	return KeyView(k).(*Principal), nil
}

// KeyView is the keys.VerifierConfig.View that makes Authenticate build a
// key's principal (and a workspace key's access) once per cache fill
// instead of once per request.
func KeyView(k *keys.Key) any {
	p := &Principal{Kind: WorkspaceKey, KeyID: k.ID, UserID: k.UserID, WorkspaceID: k.WorkspaceID, Scopes: k.Scopes, Tier: k.RateLimitTier, ExpiresAt: k.ExpiresAt,
		KeyName: k.Name, KeyPrefix: k.Prefix}
	if g := k.GraceEndsAt; g != nil && (p.ExpiresAt == nil || g.Before(*p.ExpiresAt)) {
		p.ExpiresAt = g
	}
	p.Ref = KeyRef(k.ID)
	if k.WorkspaceID == 0 {
		p.Kind = PersonalKey
	} else {
		p.own = &Access{Principal: p, WorkspaceID: p.WorkspaceID, Grant: scope.Grant{p.Scopes}}
	}
	return p
}

// SoleWorkspace is the one workspace a user-bound principal is a member
// of, or 0 when it has none or several: a request that names no workspace
// acts there (as spec 002's examples do, with no workspace header).
func (r *Resolver) SoleWorkspace(ctx context.Context, p *Principal) (int64, error) {
	list, total, err := r.ws.ListWorkspaces(ctx, workspace.ListFilter{MemberUserID: p.UserID}, core.ListParams{Page: 1, PerPage: 1})
	if err != nil || total != 1 || len(list) != 1 {
		return 0, err
	}
	return list[0].ID, nil
}

// Access resolves p inside workspace id. A workspace the principal cannot
// see is not found, never forbidden, so existence does not leak.
func (r *Resolver) Access(ctx context.Context, p *Principal, workspaceID int64) (*Access, error) {
	if workspaceID <= 0 {
		return nil, core.NotFound()
	}
	if !p.UserBound() {
		if workspaceID != p.WorkspaceID {
			return nil, core.NotFound()
		}
		if p.own != nil {
			return p.own, nil
		}
		return &Access{Principal: p, WorkspaceID: workspaceID, Grant: scope.Grant{p.Scopes}}, nil
	}
	m, err := r.ws.Member(ctx, workspaceID, p.UserID)
	if err != nil {
		return nil, err
	}
	role, ok := r.roles(m.Role)
	if !ok {
		return nil, core.NotFound()
	}
	if r.gate != nil {
		if err := r.gate(ctx, p, workspaceID); err != nil {
			return nil, err
		}
	}
	return &Access{Principal: p, WorkspaceID: workspaceID, Role: m.Role, Grant: scope.Grant{p.Scopes, role}}, nil
}

// KeyRef is the Ref of the key id's principal.
func KeyRef(id int64) string { return "key:" + strconv.FormatInt(id, 10) }

// Own is the grant of a principal outside any workspace: its own scopes.
func Own(p *Principal) scope.Grant { return scope.Grant{p.Scopes} }
