package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/webhooks/ssrf"
)

// DefaultSchedule is when attempts run, from the event: the first at once,
// each next one after the delay at its index (Svix's schedule).
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Config configures a Service. Only Store and Catalog are required.
type Config struct {
	Store   Store
	Catalog *Catalog
	// Queue runs deliveries; default an in-process MemoryQueue. A durable
	// queue (River) survives restarts; with either, the delivery rows are
	// the truth and a sweep re-enqueues whatever is due.
	Queue Queue
	// AllowPrivate lets endpoints use http and private, loopback and
	// link-local addresses: for development and tests only.
	AllowPrivate bool
	// Resolver resolves endpoint hosts when they are saved (default
	// net.DefaultResolver).
	Resolver ssrf.Resolver
	// Sender makes the POSTs (required; revops supplies an SSRF-guarded
	// HTTP client that follows no redirect, internal/webhookhttp).
	Sender Sender
	// Timeout of one attempt (default 15 s); no redirect is followed.
	Timeout time.Duration
	// Schedule of attempts (default DefaultSchedule); its length is the
	// number of automatic attempts.
	Schedule []time.Duration
	// Jitter spreads a retry delay (default: up to +10%, random).
	Jitter func(time.Duration) time.Duration
	// DisableAfter disables an endpoint whose attempts have all failed for
	// this long (default 5 days).
	DisableAfter time.Duration
	// RotationOverlap is how long the previous secret keeps signing after
	// a rotation (default 24 h).
	RotationOverlap time.Duration
	// LegacyHeader, if set (e.g. "X-Revops-Signature"), also signs each
	// delivery as "sha256=<hex HMAC of the body>" for spec 000/001 receivers.
	LegacyHeader string
	// Concurrency bounds the POSTs Run makes at once (default 16), and
	// PerEndpoint those to one endpoint (default 4): a slow endpoint holds
	// at most PerEndpoint of them and never stalls the others.
	Concurrency int
	PerEndpoint int
	// SweepInterval is how often due deliveries are re-enqueued (default
	// 30 s): work lost by a crash between commit and enqueue, or with a
	// worker that died, runs again once its lease ends.
	SweepInterval time.Duration
	// Lease is how long a claim holds its delivery (default 5 min, or
	// Timeout + 30 s if longer; at least Timeout): a worker that dies
	// mid-attempt leaves the delivery to the sweep once the lease ends. Run
	// claims deliveries ahead of their POSTs, as many per endpoint as can
	// be sent within the lease (PerEndpoint × Lease / Timeout): a short
	// lease makes smaller batches.
	Lease  time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Sender makes one POST of a delivery; ctx carries the attempt's timeout.
type Sender interface {
	Send(ctx context.Context, url string, header map[string]string, body []byte) SendResult
}

// Service manages endpoints and publishes and delivers events.
type Service struct {
	cfg   Config
	store Store

	// Concurrent attempts share store writes (group commit): each write
	// finishes the attempts that ended (one transaction) and then claims
	// the ones starting (one statement). Claims have a lane of their own
	// when the store writes in parallel (ParallelWriter); otherwise one
	// lane takes both: on SQLite two writers of one process would only
	// wait on each other's lock.
	writes, claims *batcher[storeOp, opResult]
	// Run's senders hand outcomes to the lane without waiting (Attempt
	// waits): pending holds a slot per unwritten one (backpressure);
	// running counts them until written and followed up.
	pending chan struct{}
	running sync.WaitGroup
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Catalog == nil || cfg.Sender == nil {
		return nil, errors.New("webhooks: Config.Store, Config.Catalog and Config.Sender are required")
	}
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if len(cfg.Schedule) == 0 {
		return nil, errors.New("webhooks: Config.Schedule needs at least one attempt")
	}
	for _, d := range cfg.Schedule {
		if d < 0 {
			return nil, errors.New("webhooks: Config.Schedule delays must not be negative")
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration { return d + time.Duration(rand.Int64N(int64(d)/10+1)) }
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = 5 * 24 * time.Hour
	}
	if cfg.RotationOverlap <= 0 {
		cfg.RotationOverlap = 24 * time.Hour
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 4
	}
	if cfg.Lease <= 0 {
		cfg.Lease = max(5*time.Minute, cfg.Timeout+30*time.Second)
	}
	if cfg.Lease < cfg.Timeout {
		return nil, fmt.Errorf("webhooks: Config.Lease (%v) is shorter than Config.Timeout (%v): an attempt would outlive its claim; raise Lease or leave it 0", cfg.Lease, cfg.Timeout)
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Queue == nil {
		cfg.Queue = NewMemoryQueue(MemoryQueueConfig{Now: cfg.Now})
	}
	s := &Service{cfg: cfg, store: cfg.Store, pending: make(chan struct{}, maxPending)}
	s.writes = &batcher[storeOp, opResult]{write: s.writeBatch}
	s.claims = s.writes
	if pw, ok := cfg.Store.(ParallelWriter); ok && pw.ParallelWrites() {
		s.claims = &batcher[storeOp, opResult]{write: s.writeBatch}
	}
	return s, nil
}

// Catalog returns the event catalog.
func (s *Service) Catalog() *Catalog { return s.cfg.Catalog }

// MaxAttempts is the number of automatic attempts of a delivery.
func (s *Service) MaxAttempts() int { return len(s.cfg.Schedule) }

// EndpointInput creates an endpoint.
type EndpointInput struct {
	URL    string
	Events []string
	Secret string // "" generates one
}

// EndpointPatch changes an endpoint; nil fields are kept.
type EndpointPatch struct {
	URL      *string
	Events   []string // nil keeps
	IsActive *bool
}

func (s *Service) checkURL(ctx context.Context, u string) error {
	if len(u) > 2048 {
		return core.Invalid("url", "The url may not be longer than 2048 characters.")
	}
	if err := ssrf.CheckURL(ctx, s.cfg.Resolver, u, s.cfg.AllowPrivate); err != nil {
		return core.Invalid("url", err.Error())
	}
	return nil
}

// maxPatternLen bounds one entry of an endpoint's events.
const maxPatternLen = 200

func (s *Service) checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, core.Invalid("events", "The events field must list at least one event type or pattern.")
	}
	if len(events) > 100 {
		return nil, core.Invalid("events", "The events field may list at most 100 entries.")
	}
	out := make([]string, 0, len(events))
	for i, e := range events {
		field := fmt.Sprintf("events.%d", i)
		if utf8.RuneCountInString(e) > maxPatternLen { // not echoed: the message would be as long
			return nil, core.Invalid(field, fmt.Sprintf("An event type or pattern may not be longer than %d characters.", maxPatternLen))
		}
		if err := s.cfg.Catalog.CheckPattern(e); err != nil {
			return nil, core.Invalid(field, err.Error())
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// CreateEndpoint validates in and creates an active endpoint. The secret is
// in the result; it is never shown again except on rotation.
func (s *Service) CreateEndpoint(ctx context.Context, workspaceID int64, in EndpointInput) (*Endpoint, error) {
	if err := s.checkURL(ctx, in.URL); err != nil {
		return nil, err
	}
	events, err := s.checkEvents(in.Events)
	if err != nil {
		return nil, err
	}
	secret := in.Secret
	if secret == "" {
		secret = NewSecret()
	} else if _, err := ParseSecret(secret); err != nil {
		return nil, core.Invalid("secret", err.Error())
	}
	e := &Endpoint{WorkspaceID: workspaceID, URL: in.URL, Events: events, Secret: secret, IsActive: true}
	if err := s.store.CreateWebhookEndpoint(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// UpdateEndpoint applies p. Re-activating an endpoint clears its failure
// run, so it is not disabled again by the failures that disabled it.
func (s *Service) UpdateEndpoint(ctx context.Context, workspaceID, id int64, p EndpointPatch) (*Endpoint, error) {
	if p.URL != nil {
		if err := s.checkURL(ctx, *p.URL); err != nil {
			return nil, err
		}
	}
	var events []string
	if p.Events != nil {
		var err error
		if events, err = s.checkEvents(p.Events); err != nil {
			return nil, err
		}
	}
	return s.store.UpdateWebhookEndpoint(ctx, workspaceID, id, func(e *Endpoint) error {
		if p.URL != nil {
			e.URL = *p.URL
		}
		if events != nil {
			e.Events = events
		}
		if p.IsActive != nil {
			if *p.IsActive && !e.IsActive {
				e.DisabledReason, e.ConsecutiveFailures, e.FailingSince = "", 0, nil
			}
			e.IsActive = *p.IsActive
		}
		return nil
	})
}

// RotateSecret gives the endpoint a new secret (newSecret, or a generated
// one); the old one keeps signing beside it for RotationOverlap.
func (s *Service) RotateSecret(ctx context.Context, workspaceID, id int64, newSecret string) (*Endpoint, error) {
	if newSecret == "" {
		newSecret = NewSecret()
	} else if _, err := ParseSecret(newSecret); err != nil {
		return nil, core.Invalid("secret", err.Error())
	}
	until := s.cfg.Now().UTC().Add(s.cfg.RotationOverlap)
	return s.store.UpdateWebhookEndpoint(ctx, workspaceID, id, func(e *Endpoint) error {
		if e.Secret == newSecret {
			return core.Invalid("secret", "The new secret must differ from the current one.")
		}
		e.PrevSecret, e.PrevSecretUntil, e.Secret = e.Secret, &until, newSecret
		return nil
	})
}

// Endpoint, ListEndpoints and DeleteEndpoint pass through to the store.
func (s *Service) Endpoint(ctx context.Context, workspaceID, id int64) (*Endpoint, error) {
	return s.store.WebhookEndpoint(ctx, workspaceID, id)
}

func (s *Service) ListEndpoints(ctx context.Context, workspaceID int64, p core.ListParams) ([]Endpoint, int, error) {
	return s.store.ListWebhookEndpoints(ctx, workspaceID, p)
}

func (s *Service) DeleteEndpoint(ctx context.Context, workspaceID, id int64) error {
	return s.store.DeleteWebhookEndpoint(ctx, workspaceID, id)
}

// TxStore is a Store that writes inside a transaction of the host's when ctx
// carries one (sqlstore.Store.RunInTx), so that an event lands or vanishes
// with the host's own rows.
type TxStore interface {
	Store
	// AfterCommit runs fn once the transaction ctx carries commits, never
	// if it rolls back; at once when ctx carries none.
	AfterCommit(ctx context.Context, fn func())
}

// MaxPayloadBytes bounds an event's JSON payload.
const MaxPayloadBytes = 256 << 10

// Publish records an event of a registered type and a delivery to every
// active endpoint of the workspace subscribed to it, then queues them. The
// event and its deliveries are written in one transaction; if queueing
// fails the sweep delivers them anyway. When the store joins a transaction
// ctx carries (see TxStore), they are written in it and queued after it
// commits.
func (s *Service) Publish(ctx context.Context, workspaceID int64, typ string, payload any) (*Event, error) {
	if !s.cfg.Catalog.Has(typ) {
		return nil, fmt.Errorf("webhooks: publish: %q is not a registered event type", typ)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("webhooks: publish %s: payload: %w", typ, err)
	}
	if len(raw) > MaxPayloadBytes {
		return nil, fmt.Errorf("webhooks: publish %s: payload of %d bytes is over %d", typ, len(raw), MaxPayloadBytes)
	}
	eps, err := s.store.ActiveWebhookEndpoints(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	ev := &Event{ID: NewEventID(), WorkspaceID: workspaceID, Type: typ, Payload: raw, CreatedAt: now}
	var ds []Delivery
	for _, e := range eps {
		if subscribed(e.Events, typ) {
			ds = append(ds, Delivery{WorkspaceID: workspaceID, EndpointID: e.ID, EventID: ev.ID, EventType: typ,
				Status: StatusPending, NextAttemptAt: &now})
		}
	}
	ds, err = s.store.CreateWebhookEvent(ctx, ev, ds)
	if err != nil {
		return nil, err
	}
	if ts, ok := s.store.(TxStore); ok {
		ts.AfterCommit(ctx, func() { s.enqueue(ctx, ds) })
	} else {
		s.enqueue(ctx, ds)
	}
	return ev, nil
}

func subscribed(patterns []string, typ string) bool {
	for _, p := range patterns {
		if Matches(p, typ) {
			return true
		}
	}
	return false
}

// enqueue queues deliveries now due; a failure is logged, not returned: the
// rows are committed and the sweep picks them up.
func (s *Service) enqueue(ctx context.Context, ds []Delivery) {
	if len(ds) == 0 {
		return
	}
	now := s.cfg.Now()
	jobs := make([]Job, len(ds))
	for i, d := range ds {
		jobs[i] = Job{DeliveryID: d.ID, EndpointID: d.EndpointID, At: *d.NextAttemptAt}
		if d.LockedUntil != nil {
			// Its worker died mid-attempt: a job of its own, apart from the
			// one that died with it (still "running" to a durable queue).
			jobs[i].At = *d.LockedUntil
		}
		if period := 2 * s.cfg.Lease; now.Sub(jobs[i].At) > period {
			// Long overdue: its job may have died before claiming it and
			// sit "running" in a durable queue, or wait behind a backlog.
			// One more job per period, never one per sweep.
			jobs[i].At = now.Truncate(period)
		}
	}
	if err := s.cfg.Queue.Enqueue(context.WithoutCancel(ctx), jobs...); err != nil {
		s.cfg.Logger.WarnContext(ctx, "webhooks: enqueue failed; the sweep will deliver", "error", err)
	}
}
