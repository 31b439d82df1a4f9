// Package httpapi is the HTTP kernel: typed endpoints on a ServeMux, the
// envelope and error shapes of spec 001, list parameters, request ids, panic
// recovery and the authentication/tenancy/scope pipeline. Resource routes are
// declared elsewhere; every convention lives here once.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-playground/validator/v10"
	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/core"
)

// Authenticator is what the kernel needs to know who is calling and what
// they may do in a workspace. *auth.Resolver implements it.
type Authenticator interface {
	// Authenticate resolves a bearer token at now, the request's instant
	// (Call.At), so that one clock read serves the whole admission.
	Authenticate(ctx context.Context, token string, now time.Time) (*auth.Principal, error)
	Access(ctx context.Context, p *auth.Principal, workspaceID int64) (*auth.Access, error)
	// SoleWorkspace is the workspace of a user-bound principal that names
	// none, when it belongs to exactly one (else 0).
	SoleWorkspace(ctx context.Context, p *auth.Principal) (int64, error)
}

// Middleware wraps the handling of every route (rate limits, idempotency
// …). It runs after authentication and the scope check; on a public route
// the Call has no Principal.
type Middleware func(next http.Handler) http.Handler

// Config configures an API.
type Config struct {
	Auth         Authenticator
	Logger       *slog.Logger
	MaxBodyBytes int64 // default 1 MiB
	// TrustForwardedProto makes pagination links use X-Forwarded-Proto.
	TrustForwardedProto bool
	// OnUnauthorized runs when a request fails authentication, before the
	// 401 is written; an error it returns is written instead (e.g. a 429
	// once a client IP has failed too often).
	OnUnauthorized func(w http.ResponseWriter, r *http.Request) error
	// OnDenied runs when an authenticated request is refused before its
	// handler (workspace or scope), before the error is written; an error
	// it returns is written instead.
	OnDenied func(w http.ResponseWriter, r *http.Request, c *Call) error
	// Cookie authenticates a request that carries no bearer token (a web
	// session cookie), CSRF checks included; it returns nil and no error
	// when the request has no session cookie.
	Cookie func(r *http.Request) (*auth.Principal, error)
	// Now is the clock, read once per request: Call.At and the Date
	// header of the kernel's answers are that instant. Default time.Now.
	Now func() time.Time
}

// API is a set of routes served under one handler.
type API struct {
	cfg      Config
	log      *slog.Logger
	validate *validator.Validate

	mu     sync.RWMutex
	mux    *http.ServeMux
	paths  map[string]*pathRoutes
	routes []*Route
	mw     []Middleware
	off    map[string]any // DisableTag: tag → the body its routes answer
	begun  http.Handler   // Begin(route), built once
	mwGen  atomic.Uint64  // bumped by Use: routes rebuild their chains
	// fast is the lookup in front of mux (router.go); off for good once a
	// pattern is beyond it.
	fast    atomic.Pointer[fastNode]
	fastOff bool
}

type pathRoutes struct {
	api *API
	// methods is replaced, never changed, under api.mu, so that requests
	// read it without a lock.
	methods atomic.Pointer[map[string]*Route]
}

// New returns an API.
func New(cfg Config) (*API, error) {
	if cfg.Auth == nil {
		return nil, errors.New("httpapi: Config.Auth is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{cfg: cfg, log: cfg.Logger, validate: newValidator(), mux: http.NewServeMux(), paths: map[string]*pathRoutes{}}
	a.begun = a.Begin(http.HandlerFunc(a.route))
	// Anything no route matches is a JSON 404.
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { a.WriteError(w, r, core.NotFound()) })
	return a, nil
}

// Use appends middleware run around every route's handler, first outermost.
func (a *API) Use(m ...Middleware) {
	a.mu.Lock()
	a.mw = append(a.mw, m...)
	a.mwGen.Add(1)
	a.mu.Unlock()
}

// DisableTag makes every route tagged tag, registered before or after,
// answer 200 with body as JSON instead of running its handler. The answer
// comes after authentication, the workspace check and the scope check, and
// inside the middleware (rate limits, idempotency), so a disabled route
// tells a caller nothing the enabled one would not. The OpenAPI document
// gives body as the route's 200 response, beside its own.
//
// revops disables the "Billing" routes this way when no payment provider
// is configured: each answers {"billingEnabled": false}.
func (a *API) DisableTag(tag string, body any) {
	a.mu.Lock()
	if a.off == nil {
		a.off = map[string]any{}
	}
	a.off[tag] = body
	a.mwGen.Add(1) // routes rebuild their chains
	a.mu.Unlock()
}

// disabled returns the body routes tagged tag answer instead, if disabled.
func (a *API) disabled(tag string) (any, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	body, ok := a.off[tag]
	return body, ok && tag != ""
}

// Routes returns the registered routes in registration order.
func (a *API) Routes() []*Route {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return slices.Clone(a.routes)
}

func (a *API) register(rt *Route) {
	if rt.Method == "" || !strings.HasPrefix(rt.Path, "/") {
		panic(fmt.Sprintf("httpapi: route %q %q needs a method and a path starting with /", rt.Method, rt.Path))
	}
	if !rt.Public && rt.Scope == "" {
		panic(fmt.Sprintf("httpapi: route %s %s declares no scope; set Scope or Public", rt.Method, rt.Path))
	}
	if rt.Tenant == TenantPath && rt.WorkspaceParam == "" {
		rt.WorkspaceParam = "id"
	}
	if rt.Status == 0 {
		rt.Status = http.StatusOK
	}
	rt.chain = new(atomic.Pointer[builtChain])
	a.mu.Lock()
	defer a.mu.Unlock()
	pr := a.paths[rt.Path]
	if pr == nil {
		pr = &pathRoutes{api: a}
		pr.methods.Store(&map[string]*Route{})
		a.paths[rt.Path] = pr
		a.mux.Handle(rt.Path, pr)
		a.rebuildFast()
	}
	methods := maps.Clone(*pr.methods.Load())
	if methods[rt.Method] != nil {
		panic(fmt.Sprintf("httpapi: route %s %s registered twice", rt.Method, rt.Path))
	}
	methods[rt.Method] = rt
	pr.methods.Store(&methods)
	a.routes = append(a.routes, rt)
}

// requestIDRE is what an incoming X-Request-ID must match to be echoed;
// validRequestID checks the same without the regexp engine (hot path).
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

type ctxKey int

const keyState ctxKey = 0

// reqState is what the kernel keeps in a request's context: Begin sets the
// id, serveRoute the call. It is itself the request's context (its parent's
// values plus itself under keyState), so Begin allocates one state and one
// request copy, no context node.
type reqState struct {
	context.Context
	id    string
	now   time.Time // the request's one clock read (Call.At, the kernel's Date)
	idv   [1]string // the X-Request-Id header value, allocated with the state
	idb   [4 + 24]byte
	call  *Call
	callv Call // the call of the request, allocated with the state
	tw    trackingWriter
}

func (s *reqState) Value(key any) any {
	if key == keyState {
		return s
	}
	return s.Context.Value(key)
}

func stateOf(ctx context.Context) *reqState {
	s, _ := ctx.Value(keyState).(*reqState)
	return s
}

// RequestTime is the instant the request of ctx began (Call.At); zero
// outside a request.
func RequestTime(ctx context.Context) time.Time {
	if s := stateOf(ctx); s != nil {
		return s.now
	}
	return time.Time{}
}

// RequestID returns the request id of ctx.
func RequestID(ctx context.Context) string {
	if s := stateOf(ctx); s != nil {
		return s.id
	}
	return ""
}

// Request ids are "req_" and 24 hex digits: a random per-process prefix and
// a counter multiplied by a random odd number (a bijection, so ids stay
// unique without revealing the request count), made without a system call.
var (
	idPrefix  [4]byte
	idCounter atomic.Uint64
	idMix     uint64
)

func init() {
	var n [16]byte
	rand.Read(idPrefix[:])
	rand.Read(n[:])
	idCounter.Store(binary.LittleEndian.Uint64(n[:8]))
	idMix = binary.LittleEndian.Uint64(n[8:]) | 1
}

// newRequestID writes a new id into out (so the id can live in the request
// state's allocation).
func newRequestID(out *[4 + 24]byte) {
	var b [12]byte
	copy(b[:4], idPrefix[:])
	binary.BigEndian.PutUint64(b[4:], idCounter.Add(1)*idMix)
	copy(out[:], "req_")
	hex.Encode(out[4:], b[:])
}

// Begin assigns the request id (echoing a valid incoming one) and recovers
// panics into server_error. Every entry point runs it first.
func (a *API) Begin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if RequestID(r.Context()) != "" { // already begun by an outer layer
			next.ServeHTTP(w, r)
			return
		}
		// Canonical header keys, so that the hot path allocates no copies.
		st := &reqState{Context: r.Context(), id: header(r.Header, "X-Request-Id"), now: a.cfg.Now(), tw: trackingWriter{ResponseWriter: w}}
		if !validRequestID(st.id) {
			newRequestID(&st.idb)
			st.id = unsafe.String(&st.idb[0], len(st.idb)) // idb is not written again
		}
		id := st.id
		st.idv[0] = id
		w.Header()["X-Request-Id"] = st.idv[:]
		r = r.WithContext(st)
		tw := &st.tw
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.ErrorContext(r.Context(), "panic serving request", "request_id", id, "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !tw.wrote {
				a.WriteError(tw, r, core.Internal(fmt.Errorf("panic: %v", v)))
			}
		}()
		next.ServeHTTP(tw, r)
	})
}

// setDate gives the kernel's own answers (results and errors, not a
// host handler's response) the Date header from the request's clock read,
// formatted once a second: net/http would read the clock and format it
// again for every response. A Date already set is kept.
func setDate(h http.Header, at time.Time) {
	if _, ok := h["Date"]; !ok && !at.IsZero() {
		h["Date"] = httpDate(at)
	}
}

// httpDate is t as an HTTP Date header value, cached for the second.
func httpDate(t time.Time) []string {
	s := t.Unix()
	if d := lastDate.Load(); d != nil && d.sec == s {
		return d.v
	}
	d := &dateValue{sec: s, v: []string{t.UTC().Format(http.TimeFormat)}}
	lastDate.Store(d)
	return d.v
}

// lastDate is shared by every response of a second: header values are
// replaced by Set and Add, never written in place.
var lastDate atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	v   []string
}

// header is h.Get(key) for a key already in canonical form: it skips
// canonicalizing the key again, which the hot path would pay per header.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) { t.wrote = true; t.ResponseWriter.WriteHeader(code) }
func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// ServeHTTP serves the API. It works under any mount prefix, including a
// StripPrefix that leaves an empty or slash-less path.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.begun.ServeHTTP(w, r)
}

func (a *API) route(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "" || p[0] != '/' {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = "/" + p
		if u.RawPath != "" {
			u.RawPath = "/" + u.RawPath
		}
		r2.URL = &u
		r = r2
	}
	if a.serveFast(w, r) {
		return
	}
	// ServeMux.ServeHTTP (not Handler) so that r.PathValue works.
	a.mux.ServeHTTP(w, r)
}

// ServeHTTP dispatches on the method, answering 405 with Allow otherwise.
func (pr *pathRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	methods := *pr.methods.Load()
	rt := methods[r.Method]
	if rt == nil && r.Method == http.MethodHead {
		rt = methods[http.MethodGet]
	}
	if rt == nil {
		allow := allowed(methods)
		w.Header().Set("Allow", allow)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		pr.api.WriteError(w, r, core.E(core.CodeMethodNotAllowed, "The %s method is not supported for this route. Supported methods: %s.", r.Method, allow))
		return
	}
	pr.api.serveRoute(w, r, rt)
}

func allowed(methods map[string]*Route) string {
	ms := make([]string, 0, len(methods)+2)
	for m := range methods {
		ms = append(ms, m)
	}
	if methods[http.MethodGet] != nil && methods[http.MethodHead] == nil {
		ms = append(ms, http.MethodHead)
	}
	ms = append(ms, http.MethodOptions)
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

// bodyLimit is the request body limit of c's route (the API's unless the
// route sets a smaller one).
func (a *API) bodyLimit(c *Call) int64 {
	if c != nil && c.Route != nil && c.Route.MaxBodyBytes > 0 {
		return min(c.Route.MaxBodyBytes, a.cfg.MaxBodyBytes)
	}
	return a.cfg.MaxBodyBytes
}
