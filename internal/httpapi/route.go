package httpapi

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/core"
)

// Tenant says where a route finds its workspace.
type Tenant int

const (
	// TenantNone: the route acts for the principal, outside any one workspace.
	TenantNone Tenant = iota
	// TenantPath: the workspace id is the path wildcard WorkspaceParam ("id").
	TenantPath
	// TenantContext: the workspace is X-Workspace-ID, else the key's own.
	TenantContext
)

// Route declares one endpoint. Everything the kernel, the OpenAPI document
// and the conformance tests need to know about it is here.
type Route struct {
	Method  string
	Path    string // ServeMux pattern without method, e.g. /workspaces/{id}
	Summary string
	Tag     string
	// Scope is required unless Public; a route without either panics at
	// registration, and a test walks every route to prove it.
	Scope  string
	Public bool
	// RateLimit names the per-client-IP policy of a public route ("" is the
	// host's default for public routes). Authenticated routes are limited
	// per key by tier.
	RateLimit      string
	Tenant         Tenant
	WorkspaceParam string
	// Status of success: 200 (default), 201 or 204.
	Status int
	// Message is put beside data in the envelope (creates and updates).
	Message string
	// Bare writes the result itself instead of {"data": …}.
	Bare bool
	// List options: allow-lists of sort fields, include names and status
	// values, and whether search is supported.
	Sort     []string
	Include  []string
	Statuses []string
	Search   bool
	// Query documents string query parameters the handler reads itself
	// (beyond the list parameters the kernel parses).
	Query []QueryParam
	// MaxBodyBytes lowers the API's request body limit for this route.
	MaxBodyBytes int64
	// RawBody names the media types of a raw (non-JSON) request body;
	// RawResponse those of a raw response.
	RawBody     []string
	RawResponse []string

	in, out reflect.Type
	list    bool
	fields  map[string]bool
	serve   func(w http.ResponseWriter, r *http.Request, c *Call)
	chain   *atomic.Pointer[builtChain] // set by register (Route is passed by value)
}

// QueryParam is a route-specific query parameter, for the OpenAPI document.
type QueryParam struct{ Name, Description string }

// In and Out return the request body and result types (nil when none).
func (rt *Route) In() reflect.Type  { return rt.in }
func (rt *Route) Out() reflect.Type { return rt.out }

// IsList reports whether the route returns a paginated list.
func (rt *Route) IsList() bool { return rt.list }

// NoBody is the In or Out of a route without a JSON body.
type NoBody struct{}

var noBodyType = reflect.TypeFor[NoBody]()

// Call is one request's context as a handler sees it.
type Call struct {
	R         *http.Request
	W         http.ResponseWriter // for headers and cookies; the handler's result is written by the kernel
	Principal *auth.Principal     // nil on public routes
	Access    *auth.Access        // nil unless the route is workspace-scoped
	RequestID string
	Route     *Route
	// At is when the request began: its one clock read, shared by the
	// checks that admit it (key and cache expiry, tier lookups) and the
	// Date header of the kernel's answers. On some virtual machines a read
	// costs about 100 ns. A request served inside another's handler has
	// the outer request's instant.
	At      time.Time
	include map[string]bool
	fields  []string
}

// WorkspaceID is the workspace of a workspace-scoped route (0 otherwise).
func (c *Call) WorkspaceID() int64 {
	if c.Access == nil {
		return 0
	}
	return c.Access.WorkspaceID
}

// Allows reports whether the call may act with scope: in its workspace when
// the route has one, else with the principal's own scopes.
func (c *Call) Allows(scope string) bool {
	if c.Access != nil {
		return c.Access.Allows(scope)
	}
	return c.Principal != nil && auth.Own(c.Principal).Allows(scope)
}

// Includes reports whether include=name was asked for.
func (c *Call) Includes(name string) bool { return c.include[name] }

// PathID parses a positive integer path wildcard; anything else is not found.
func (c *Call) PathID(name string) (int64, error) { return pathID(c.R, name) }

func pathID(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || s[0] == '+' {
		return 0, core.NotFound()
	}
	return n, nil
}

// CallFrom returns the Call of a request served through Protect or a route.
func CallFrom(ctx context.Context) *Call {
	if s := stateOf(ctx); s != nil {
		return s.call
	}
	return nil
}

// serveRoute runs the pipeline: authenticate, resolve the workspace, check
// the scope, then middleware and the handler.
func (a *API) serveRoute(w http.ResponseWriter, r *http.Request, rt *Route) {
	st := stateOf(r.Context()) // Begin ran: every entry point starts with it
	c := &st.callv
	nested := st.call != nil // a request served inside another one's handler
	if nested {
		c = new(Call)
	}
	if err := a.admit(r, rt, c, st.now); err != nil {
		var err2 error
		switch {
		case core.As(err).Code == core.CodeUnauthorized && a.cfg.OnUnauthorized != nil:
			err2 = a.cfg.OnUnauthorized(w, r)
		case c.Principal != nil && a.cfg.OnDenied != nil:
			err2 = a.cfg.OnDenied(w, r, c)
		}
		if err2 != nil {
			err = err2
		}
		a.WriteError(w, r, err)
		return
	}
	if !nested {
		st.call = c
	} else { // its own state
		r = r.WithContext(&reqState{Context: r.Context(), id: st.id, now: st.now, call: c})
		c.R = r
	}
	a.chain(rt).ServeHTTP(w, r)
}

// chain is rt's handler wrapped in the middleware, built once per route (and
// again after Use): the call reaches the handler through the request state.
func (a *API) chain(rt *Route) http.Handler {
	gen := a.mwGen.Load()
	if ch := rt.chain.Load(); ch != nil && ch.gen == gen {
		return ch.h
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := stateOf(r.Context()).call
		c.R, c.W = r, w
		rt.serve(w, r, c)
	})
	if body, off := a.disabled(rt.Tag); off {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, http.StatusOK, body) })
	}
	a.mu.RLock()
	mw := a.mw
	a.mu.RUnlock()
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	rt.chain.Store(&builtChain{gen: gen, h: h})
	return h
}

type builtChain struct {
	gen uint64
	h   http.Handler
}

// admit authenticates r at now and resolves its access for rt into c.
func (a *API) admit(r *http.Request, rt *Route, c *Call, now time.Time) error {
	*c = Call{R: r, RequestID: RequestID(r.Context()), Route: rt, At: now}
	if rt.Public {
		return nil
	}
	var p *auth.Principal
	var err error
	if token, ok := bearer(r); ok {
		p, err = a.cfg.Auth.Authenticate(r.Context(), token, c.At)
	} else if a.cfg.Cookie != nil {
		p, err = a.cfg.Cookie(r)
	}
	if err != nil {
		return err
	}
	if p == nil {
		return core.Unauthorized()
	}
	c.Principal = p
	if rt.Tenant != TenantNone {
		wid, err := a.workspaceOf(r, rt, p)
		if err != nil {
			return err
		}
		if c.Access, err = a.cfg.Auth.Access(r.Context(), p, wid); err != nil {
			return err
		}
	}
	if !c.Allows(rt.Scope) {
		return core.MissingScope(rt.Scope)
	}
	return nil
}

func bearer(r *http.Request) (string, bool) {
	h := header(r.Header, "Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (a *API) workspaceOf(r *http.Request, rt *Route, p *auth.Principal) (int64, error) {
	if rt.Tenant == TenantPath {
		return pathID(r, rt.WorkspaceParam)
	}
	if h := header(r.Header, "X-Workspace-Id"); h != "" {
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil || n <= 0 {
			return 0, core.E(core.CodeBadRequest, "The X-Workspace-ID header must be a positive integer workspace id.")
		}
		return n, nil
	}
	if p.WorkspaceID != 0 {
		return p.WorkspaceID, nil
	}
	if wid, err := a.cfg.Auth.SoleWorkspace(r.Context(), p); err != nil || wid != 0 {
		return wid, err
	}
	return 0, core.E(core.CodeBadRequest, "The X-Workspace-ID header is required with a personal key or a user's access token whose user belongs to several workspaces (or none).")
}

// Handle registers a JSON endpoint: In is decoded from the body (NoBody for
// none) and validated; the Out result is written in the route's envelope.
func Handle[In, Out any](a *API, rt Route, fn func(ctx context.Context, c *Call, in *In) (Out, error)) *Route {
	r := &rt
	r.in, r.out = reflect.TypeFor[In](), reflect.TypeFor[Out]()
	r.fields = jsonFields(r.out)
	r.serve = func(w http.ResponseWriter, req *http.Request, c *Call) {
		if err := a.parseShape(req, c); err != nil {
			a.WriteError(w, req, err)
			return
		}
		in := new(In)
		if r.in != noBodyType {
			if err := a.decode(w, req, in); err != nil {
				a.WriteError(w, req, err)
				return
			}
		}
		out, err := fn(req.Context(), c, in)
		if err != nil {
			a.WriteError(w, req, err)
			return
		}
		a.writeResult(w, req, c, out)
	}
	a.register(r)
	return r
}

// HandleList registers a paginated list endpoint. fn gets validated list
// parameters and returns one page and the total.
func HandleList[Out any](a *API, rt Route, fn func(ctx context.Context, c *Call, p core.ListParams) ([]Out, int, error)) *Route {
	r := &rt
	r.list = true
	r.in, r.out = noBodyType, reflect.TypeFor[Out]()
	r.fields = jsonFields(r.out)
	r.serve = func(w http.ResponseWriter, req *http.Request, c *Call) {
		p, err := a.parseList(req, c)
		if err != nil {
			a.WriteError(w, req, err)
			return
		}
		items, total, err := fn(req.Context(), c, p)
		if err != nil {
			a.WriteError(w, req, err)
			return
		}
		a.writeList(w, req, c, p, items, len(items), total)
	}
	a.register(r)
	return r
}

// HandleRaw registers an endpoint that reads and writes its own bodies (raw
// images …); errors it returns are still written in the error envelope.
func HandleRaw(a *API, rt Route, fn func(w http.ResponseWriter, r *http.Request, c *Call) error) *Route {
	r := &rt
	r.in, r.out = noBodyType, noBodyType
	r.serve = func(w http.ResponseWriter, req *http.Request, c *Call) {
		limit := a.bodyLimit(c)
		req.Body = http.MaxBytesReader(w, req.Body, limit)
		if err := fn(w, req, c); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = tooLarge(limit)
			}
			a.WriteError(w, req, err)
		}
	}
	a.register(r)
	return r
}

// Protect runs h behind the pipeline as a route with this scope, tenancy and
// middleware, for a host's own handlers mounted outside the API. Inside h,
// CallFrom(r.Context()) returns the call.
func (a *API) Protect(scope string, tenant Tenant, h http.Handler) http.Handler {
	if scope == "" {
		panic("httpapi: Protect needs a scope")
	}
	rt := &Route{Scope: scope, Tenant: tenant, WorkspaceParam: "id", chain: new(atomic.Pointer[builtChain])}
	rt.serve = func(w http.ResponseWriter, r *http.Request, c *Call) { h.ServeHTTP(w, r) }
	return a.Begin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.serveRoute(w, r, rt) }))
}
