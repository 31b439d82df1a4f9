// Package revops is the platform backbone of a multi-tenant SaaS API as a
// library: mount Platform.Handler under a prefix and get workspaces, members,
// API keys with scopes and rotation, and spec 001's HTTP conventions.
//
//	store, _ := sqlstore.Open(ctx, "postgres://…") // or "./revops.db"
//	_ = store.Migrate(ctx)
//	p, err := revops.New(revops.Config{Store: store, Resources: []string{"posts"}})
//	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", p.Handler()))
//	mux.Handle("/api/v1/posts", p.Protect("posts:read", postsHandler))
//	go p.Start(ctx)
package revops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/idempotency"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/internal/webhookhttp"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/pixel"
	"github.com/revopsdev/revops/ratelimit"
	"github.com/revopsdev/revops/scope"
	"github.com/revopsdev/revops/token"
	"github.com/revopsdev/revops/twofactor"
	"github.com/revopsdev/revops/webhooks"
	"github.com/revopsdev/revops/workspace"
)

// Store is everything revops persists. adapters/sqlstore implements it for
// Postgres and SQLite; storetest is the suite any implementation must pass.
type Store interface {
	workspace.Store
	keys.Store
	idempotency.Store
	pixel.Store
	webhooks.Store
	billing.UsageStore
	billing.AccountStore
	billing.SubscriptionStore
	audit.Store
	login.Store
	token.KeyStore
	twofactor.Store
	login.WebSessionStore
}

// DefaultTiers are spec 001's tiers, default first.
var DefaultTiers = []string{"free", "starter", "pro", "agency", "enterprise"}

// builtinResources are the resources revops's own routes declare scopes on.
var builtinResources = []string{"workspaces", "members", "api-keys", "rate-limits", "pixel", "webhooks", "entitlements", "billing", "audit", "totp", "sessions"}

// Config configures a Platform. Only Store is required.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// KeyPrefix starts every API key (default "revops_").
	KeyPrefix string
	// Tiers lists the tier names, the default for new workspaces first.
	Tiers []string
	// RateLimits is each tier's policy (default: spec 001's, for the
	// default tier names; required when Tiers is set).
	RateLimits map[string]ratelimit.Policy
	// PublicRateLimit limits each client IP on unauthenticated routes
	// (default DefaultPublicRateLimit). POST /pixel/track has its own,
	// PixelRateLimit.
	PublicRateLimit ratelimit.Policy
	// Limiter keeps the buckets: default an in-process ratelimit.Memory.
	// With several instances pass a shared one, e.g. store.Limiter(nil).
	Limiter ratelimit.Limiter
	// TrustForwardedFor takes the client IP of per-IP limits from the last
	// X-Forwarded-For entry. Set it only behind a proxy that appends it.
	TrustForwardedFor bool
	// IdempotencyTTL is how long a response is kept for replay (default
	// 24 h); IdempotencyLockTimeout how long a request may hold its key
	// (default 1 min): the handler's context ends then, and a retry may run.
	IdempotencyTTL, IdempotencyLockTimeout time.Duration
	// Resources are the host's own resources, so that keys can be given
	// scopes on them (e.g. "posts" for posts:read).
	Resources []string
	// Roles overrides what owner, admin and member may do.
	Roles map[string]scope.Role
	// KeyCacheTTL bounds how long another instance honours a key revoked
	// elsewhere (default 10 s). Revocation in this process is immediate.
	KeyCacheTTL time.Duration
	// KeyTouchInterval is how often last_used_at is written (default 1 min).
	KeyTouchInterval time.Duration
	// MaxBodyBytes limits request bodies (default 1 MiB).
	MaxBodyBytes int64
	// TrustForwardedProto makes pagination links follow X-Forwarded-Proto.
	TrustForwardedProto bool
	// Events are the host's webhook event types (name, description,
	// optional JSON Schema); revops's own (webhooks.BuiltinEvents) are added.
	Events []webhooks.EventType
	// Webhooks tunes delivery: queue, schedule, timeout, private targets,
	// legacy signature header … Its Store, Catalog, Now and Logger are the
	// platform's.
	Webhooks webhooks.Config
	// Billing declares features and each tier's plan (default: spec 001's
	// posts, api_calls and storage), the upgrade URL and payments.
	Billing billing.Config
	// Tokens configures login (POST /auth/login) and access tokens.
	Tokens TokensConfig
	// TOTP configures two-factor authentication (/auth/totp/…).
	TOTP TOTPConfig
	// Sessions configures browser sessions (the cookie of POST /auth/login
	// with {"session": "cookie"}): Secure unless PlainHTTP, timeouts.
	Sessions SessionsConfig
	// SendInvitation, if set, delivers each new invitation's token to the
	// invitee (by email, say): the token is then left out of the API's
	// answer, so that only the owner of the address can accept it. If it
	// fails, the invitation is revoked and the request fails. Unset, the
	// token goes to the inviter, once, in the answer.
	SendInvitation func(ctx context.Context, inv *workspace.Invitation, token string) error
	// Title and Version describe the API in /openapi.json.
	Title, Version string
	// Now is the clock (tests).
	Now func() time.Time
}

func (c *Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("revops: Config.Store is required: open one with sqlstore.Open(ctx, url) and call Migrate(ctx) first"))
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = keys.DefaultPrefix
	}
	if err := keys.ValidatePrefix(c.KeyPrefix); err != nil {
		errs = append(errs, fmt.Errorf("revops: Config.KeyPrefix: %w", err))
	}
	if len(c.Tiers) == 0 {
		c.Tiers = DefaultTiers
		if c.RateLimits == nil {
			c.RateLimits = ratelimit.DefaultPolicies()
		}
	}
	for _, t := range c.Tiers {
		pol, ok := c.RateLimits[t]
		if !ok {
			errs = append(errs, fmt.Errorf("revops: Config.RateLimits has no policy for tier %q: give every tier of Config.Tiers one", t))
			continue
		}
		if pol.Name == "" {
			pol.Name = t
			c.RateLimits[t] = pol
		}
		if err := pol.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("revops: Config.RateLimits[%q]: %w", t, err))
		}
	}
	if c.PublicRateLimit == (ratelimit.Policy{}) {
		c.PublicRateLimit = DefaultPublicRateLimit
	}
	if c.PublicRateLimit.Name == "" {
		c.PublicRateLimit.Name = "public"
	}
	if err := c.PublicRateLimit.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("revops: Config.PublicRateLimit: %w", err))
	}
	if c.IdempotencyTTL < 0 || c.IdempotencyLockTimeout < 0 {
		errs = append(errs, errors.New("revops: Config.IdempotencyTTL and IdempotencyLockTimeout must not be negative (zero means the default)"))
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 24 * time.Hour
	}
	if c.IdempotencyLockTimeout == 0 {
		c.IdempotencyLockTimeout = time.Minute
	}
	seen := map[string]bool{}
	for _, t := range c.Tiers {
		if t == "" || seen[t] {
			errs = append(errs, fmt.Errorf("revops: Config.Tiers must be distinct non-empty names, got %q", c.Tiers))
			break
		}
		seen[t] = true
	}
	for _, r := range c.Resources {
		if slices.Contains(builtinResources, r) {
			errs = append(errs, fmt.Errorf("revops: Config.Resources: %q is a built-in resource; name your resource differently", r))
		}
	}
	if c.KeyCacheTTL < 0 || c.KeyTouchInterval < 0 || c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("revops: Config durations and sizes must not be negative (zero means the default)"))
	}
	if c.KeyTouchInterval == 0 {
		c.KeyTouchInterval = time.Minute
	}
	if err := c.Billing.Validate(c.Tiers); err != nil {
		errs = append(errs, fmt.Errorf("revops: Config.Billing: %w", err))
	}
	if err := validateProvider(c.Billing.Provider); err != nil {
		errs = append(errs, err)
	}
	if err := c.Tokens.validate(); err != nil {
		errs = append(errs, fmt.Errorf("revops: Config.Tokens: %w", err))
	}
	if err := c.Sessions.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Title == "" {
		c.Title = "revops API"
	}
	if c.Version == "" {
		c.Version = "1.0.0"
	}
	if err := c.TOTP.validate(c.Title); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TokensConfig configures user login, access tokens and refresh tokens.
type TokensConfig struct {
	// SigningKeys sign access tokens (Ed25519, EdDSA). The first key with a
	// zero RetiredAt signs; a retired key keeps verifying (and stays in
	// /.well-known/jwks.json) until RetiredAt + AccessTTL. Empty: the first
	// New on a store generates a key and keeps it in the store (private key
	// at rest in the database), and every instance on that store uses it.
	SigningKeys []token.Key
	// Issuer is the tokens' "iss" (default "revops").
	Issuer string
	// AccessTTL is the access-token lifetime (default 15 min); RefreshTTL
	// the refresh-token lifetime, renewed by each rotation (default 30 days).
	AccessTTL, RefreshTTL time.Duration
	// SessionMaxAge ends a token session this long after its login, however
	// often it is refreshed (default 90 days): refresh tokens are capped at
	// that end, and the user signs in again after it.
	SessionMaxAge time.Duration
	// LoginPerAccount and LoginPerIP limit login attempts per email and
	// per client IP (default 10 and 30 per minute); beyond them 429.
	LoginPerAccount, LoginPerIP ratelimit.Policy
}

func (tc *TokensConfig) validate() error {
	if tc.Issuer == "" {
		tc.Issuer = "revops"
	}
	if tc.AccessTTL < 0 || tc.RefreshTTL < 0 || tc.SessionMaxAge < 0 {
		return errors.New("revops: Config.Tokens TTLs and SessionMaxAge must not be negative (zero means the default)")
	}
	if tc.SessionMaxAge == 0 {
		tc.SessionMaxAge = 90 * 24 * time.Hour
	}
	if tc.AccessTTL == 0 {
		tc.AccessTTL = 15 * time.Minute
	}
	if tc.RefreshTTL == 0 {
		tc.RefreshTTL = 30 * 24 * time.Hour
	}
	if tc.LoginPerAccount == (ratelimit.Policy{}) {
		tc.LoginPerAccount = ratelimit.Policy{PerMinute: 10}
	}
	if tc.LoginPerIP == (ratelimit.Policy{}) {
		tc.LoginPerIP = ratelimit.Policy{PerMinute: 30}
	}
	tc.LoginPerAccount.Name, tc.LoginPerIP.Name = "login-account", "login-ip"
	return errors.Join(tc.LoginPerAccount.Validate(), tc.LoginPerIP.Validate())
}

// Platform is a configured revops instance.
type Platform struct {
	cfg Config
	// loginTurns: logins of one account take turns on this instance
	// (striped by email), so that concurrent guesses each see the
	// failures counted before them. A turn is a one-slot channel, so that
	// a waiting request can give up when its client does.
	loginTurns [256]chan struct{}
	api        *httpapi.API
	catalog    *scope.Catalog
	workspaces *workspace.Service
	keys       *keys.Service
	verifier   *keys.Verifier
	resolver   *auth.Resolver
	limiter    ratelimit.Limiter
	ipPolicies map[string]ratelimit.Policy
	tiers      *tierCache
	webhooks   *webhooks.Service
	meter      *billing.Meter
	ledger     *billing.Ledger
	audit      *audit.Recorder
	login      *login.Service
	signer     *token.Signer
	totp       *twofactor.Service
	totpUsers  *totpCache

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// New validates cfg and builds a Platform. It does no I/O.
func New(cfg Config) (*Platform, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	catalog, err := scope.NewCatalog(append(slices.Clone(builtinResources), cfg.Resources...)...)
	if err != nil {
		return nil, fmt.Errorf("revops: Config.Resources: %w", err)
	}
	ws, err := workspace.NewService(cfg.Store, cfg.Tiers, cfg.Roles, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	v, err := keys.NewVerifier(cfg.Store, keys.VerifierConfig{Prefix: cfg.KeyPrefix, TTL: cfg.KeyCacheTTL, Now: cfg.Now, View: auth.KeyView})
	if err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	ks, err := keys.NewService(cfg.Store, v, catalog, cfg.Tiers, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	res, err := auth.NewResolver(v, cfg.Store, ws.Role)
	if err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	events, err := webhooks.NewCatalog(cfg.Events...)
	if err != nil {
		return nil, fmt.Errorf("revops: Config.Events: %w", err)
	}
	whc := cfg.Webhooks
	whc.Store, whc.Catalog, whc.Now, whc.Logger = cfg.Store, events, cfg.Now, cfg.Logger
	if whc.Sender == nil {
		whc.Sender = webhookhttp.New(webhookhttp.Config{AllowPrivate: whc.AllowPrivate, Resolver: whc.Resolver, PerHost: whc.PerEndpoint, Now: cfg.Now})
	}
	wh, err := webhooks.New(whc)
	if err != nil {
		return nil, fmt.Errorf("revops: Config.Webhooks: %w", err)
	}
	ledger, err := billing.NewLedger(cfg.Store, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	rec, err := audit.NewRecorder(cfg.Store, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	p := &Platform{cfg: cfg, catalog: catalog, workspaces: ws, keys: ks, verifier: v, resolver: res, limiter: cfg.Limiter, webhooks: wh, ledger: ledger, audit: rec}
	for i := range p.loginTurns {
		p.loginTurns[i] = make(chan struct{}, 1)
	}
	if p.meter, err = billing.NewMeter(cfg.Store, &p.cfg.Billing, cfg.Now); err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	p.meter.OnThreshold = p.onThreshold
	if err := p.initLogin(); err != nil {
		return nil, err
	}
	res.SetTokens(p)
	if err := p.initTOTP(); err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	p.api, err = httpapi.New(httpapi.Config{Auth: res, Logger: cfg.Logger, MaxBodyBytes: cfg.MaxBodyBytes, Now: cfg.Now,
		TrustForwardedProto: cfg.TrustForwardedProto, OnUnauthorized: p.authFailed, OnDenied: p.denied, Cookie: p.cookieAuth})
	if err != nil {
		return nil, fmt.Errorf("revops: %w", err)
	}
	if p.limiter == nil {
		p.limiter = ratelimit.NewMemory(cfg.Now)
	}
	p.ipPolicies = map[string]ratelimit.Policy{"public": cfg.PublicRateLimit, "pixel": PixelRateLimit}
	ttl := cfg.KeyCacheTTL
	if ttl == 0 {
		ttl = keys.DefaultCacheTTL
	}
	p.tiers = &tierCache{p: p, ttl: ttl, m: map[int64]tierEntry{}}
	p.api.Use(p.rateLimit, p.idempotent)
	p.routes()
	return p, nil
}

// Handler serves the API. Mount it under any prefix:
// mux.Handle("/api/v1/", http.StripPrefix("/api/v1", p.Handler())).
func (p *Platform) Handler() http.Handler { return p.api }

// Routes lists every route the handler serves, revops's and the host's.
func (p *Platform) Routes() []*Route { return p.api.Routes() }

// Workspaces returns the workspace service, for host code.
func (p *Platform) Workspaces() *workspace.Service { return p.workspaces }

// SetTier moves a workspace to another tier; this instance applies the new
// rate limit at once, others within KeyCacheTTL (or after POST
// /workspaces/{id}/rate-limits/refresh on them).
func (p *Platform) SetTier(ctx context.Context, workspaceID int64, tier string) error {
	_, err := p.workspaces.SetTier(ctx, workspaceID, tier)
	p.tiers.forget(workspaceID)
	return err
}

// Keys returns the API key service, for host code.
func (p *Platform) Keys() *keys.Service { return p.keys }

// Start runs background work (webhook delivery, batched last_used_at
// writes, sweeps) until ctx ends or Stop is called. Call it in its own
// goroutine.
func (p *Platform) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cancel != nil || p.stopped {
		p.mu.Unlock()
		return errors.New("revops: Start called twice, or after Stop")
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	p.mu.Unlock()
	defer close(p.done)
	var wg sync.WaitGroup
	wg.Go(func() {
		p.verifier.Run(ctx, p.cfg.KeyTouchInterval, func(err error) {
			p.cfg.Logger.Error("revops: writing key last-use times", "error", err)
		})
	})
	wg.Go(func() { p.every(ctx, time.Minute, "sweeping rate-limit buckets", p.sweepLimits) })
	wg.Go(func() { p.every(ctx, 10*time.Minute, "removing expired idempotency keys", p.sweepIdempotency) })
	wg.Go(func() { p.webhooks.Run(ctx) })
	wg.Go(func() { p.every(ctx, time.Second, "rolling up usage", p.meter.Rollup) })
	wg.Wait()
	return nil
}

// every runs fn each interval until ctx ends, logging failures.
func (p *Platform) every(ctx context.Context, interval time.Duration, what string, fn func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				p.cfg.Logger.Error("revops: "+what, "error", err)
			}
		}
	}
}

func (p *Platform) sweepLimits(ctx context.Context) error {
	_, err := p.limiter.Sweep(ctx)
	return err
}

// sweepIdempotency removes responses kept past IdempotencyTTL.
func (p *Platform) sweepIdempotency(ctx context.Context) error {
	_, err := p.cfg.Store.DeleteExpiredIdempotencyKeys(ctx, p.cfg.Now())
	return err
}

// Stop ends background work, flushing what is pending, and waits for it
// until ctx ends.
func (p *Platform) Stop(ctx context.Context) error {
	p.mu.Lock()
	p.stopped = true
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return p.verifier.Flush(ctx)
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Route, Call and the tenancy modes let a host declare typed routes served
// by the platform's handler, with its envelope, errors and pipeline.
type (
	Route  = httpapi.Route
	Call   = httpapi.Call
	NoBody = httpapi.NoBody
	Time   = httpapi.Time
)

// Tenancy modes of a Route.
const (
	TenantNone    = httpapi.TenantNone
	TenantPath    = httpapi.TenantPath
	TenantContext = httpapi.TenantContext
)

// Handle registers a host JSON route on the platform's handler.
func Handle[In, Out any](p *Platform, rt Route, fn func(ctx context.Context, c *Call, in *In) (Out, error)) {
	p.checkRateLimit(&rt)
	httpapi.Handle(p.api, rt, fn)
}

// checkRateLimit refuses at registration a route naming a per-IP policy
// that does not exist ("public" or "pixel").
func (p *Platform) checkRateLimit(rt *Route) {
	if _, ok := p.ipPolicies[rt.RateLimit]; rt.RateLimit != "" && !ok {
		panic(fmt.Sprintf("revops: route %s %s: unknown RateLimit %q (use \"public\" or \"pixel\")", rt.Method, rt.Path, rt.RateLimit))
	}
}

// HandleList registers a host list route on the platform's handler.
func HandleList[Out any](p *Platform, rt Route, fn func(ctx context.Context, c *Call, lp core.ListParams) ([]Out, int, error)) {
	p.checkRateLimit(&rt)
	httpapi.HandleList(p.api, rt, fn)
}

// Protect runs a host handler behind the pipeline (request id, key auth,
// workspace from X-Workspace-ID or the key, scope check). Inside it,
// CallFrom(r.Context()) tells who is calling and in which workspace.
func (p *Platform) Protect(scope string, h http.Handler) http.Handler {
	return p.api.Protect(scope, httpapi.TenantContext, h)
}

// CallFrom returns the call of a request served by Protect or a route.
func CallFrom(ctx context.Context) *Call { return httpapi.CallFrom(ctx) }

// WriteJSON writes v as JSON; WriteError writes err in the error envelope.
func WriteJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

// WriteError writes err in spec 001's error shape.
func (p *Platform) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p.api.WriteError(w, r, err)
}

// BootstrapResult is what Bootstrap created.
type BootstrapResult struct {
	User      *workspace.User
	Workspace *workspace.Workspace
	Key       string // personal key with scope *, shown once
	// Resumed: the user was there before this call (an earlier start was
	// cut short, or the user was left without a personal key).
	Resumed bool
	// HasPassword: the user has a password already; a host setting one
	// on first start must leave it alone.
	HasPassword bool
}

// Bootstrap makes a first start usable: on an empty store it creates the
// owner user email, a workspace and a personal key with scope "*", and
// returns the key (shown once). Each step runs only if not done yet, so a
// start cut short is finished by the next one; a store whose bootstrap user
// already holds a personal key, or that has other users, is left alone (nil).
func (p *Platform) Bootstrap(ctx context.Context, email, workspaceName string) (*BootstrapResult, error) {
	st := p.cfg.Store
	now := p.cfg.Now().UTC().Truncate(time.Microsecond)
	u, err := st.UserByEmail(ctx, email)
	resumed := err == nil
	switch {
	case errors.Is(err, core.ErrNotFound):
		if n, err := st.CountUsers(ctx); err != nil || n > 0 {
			return nil, err
		}
		u = &workspace.User{Email: email, Name: "Admin", CreatedAt: now, UpdatedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if mine, err := st.ListUserKeys(ctx, u.ID); err != nil || len(mine) > 0 {
			return nil, err
		}
	}
	_, hash, err := st.UserCredentials(ctx, u.Email)
	if err != nil {
		return nil, err
	}
	res := &BootstrapResult{User: u, Resumed: resumed, HasPassword: hash != ""}
	list, _, err := st.ListWorkspaces(ctx, workspace.ListFilter{MemberUserID: u.ID}, core.ListParams{Page: 1, PerPage: 1})
	if err != nil {
		return nil, err
	}
	if len(list) > 0 {
		res.Workspace = &list[0]
	} else if res.Workspace, err = p.workspaces.Create(ctx, workspace.CreateInput{Name: workspaceName}, u.ID); err != nil {
		return nil, err
	}
	// Bound to the owner's default billing account, as POST /workspaces
	// binds a new workspace (also when an earlier start stopped before);
	// a workspace of someone else's the user joined is left alone.
	m, err := st.Member(ctx, res.Workspace.ID, u.ID)
	if err != nil {
		return nil, err
	}
	if _, n, err := p.ledger.WorkspaceAccounts(ctx, res.Workspace.ID, core.ListParams{Page: 1, PerPage: 1}); err != nil {
		return nil, err
	} else if n == 0 && m.Role == scope.Owner {
		acct, err := p.ledger.AccountForNewWorkspace(ctx, u.ID, nil)
		if err == nil && acct != nil {
			_, err = p.ledger.Bind(ctx, res.Workspace.ID, acct.ID, true)
		}
		if err != nil {
			return nil, err
		}
	}
	k, raw, err := p.keys.Create(ctx, 0, u.ID, keys.CreateInput{Name: "Bootstrap key", Scopes: []string{scope.All}}, nil)
	if err != nil {
		return nil, err
	}
	res.Key = raw
	p.writeAudit(ctx, &audit.Event{Actor: audit.Actor{Kind: audit.ActorSystem, Display: "bootstrap"}, Action: audit.APIKeyCreated,
		TargetType: "api_key", TargetID: strconv.FormatInt(k.ID, 10), Metadata: map[string]any{"name": k.Name, "prefix": k.Prefix, "user_id": u.ID}})
	return res, nil
}

// each converts a page of stored items to their wire shapes.
func each[T, O any](list []T, to func(*T) O) []O {
	out := make([]O, len(list))
	for i := range list {
		out[i] = to(&list[i])
	}
	return out
}
