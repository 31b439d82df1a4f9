package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/testclock"
	"github.com/revopsdev/revops/internal/webhookhttp"
	"github.com/revopsdev/revops/webhooks"
)

// env is a webhooks service on a fresh store with one workspace,
// delivering over loopback.
type env struct {
	t     testing.TB
	store *sqlstore.Store
	svc   *webhooks.Service
	wid   int64
	clock *testclock.Clock
	queue *webhooks.MemoryQueue
}

type opt func(*webhooks.Config)

// newEnv is an env on a fresh SQLite store.
func newEnv(t testing.TB, opts ...opt) *env {
	t.Helper()
	return newEnvOn(t, sqltest.SQLite(t), opts...)
}

// newEnvOn is an env on st, a fresh migrated store.
func newEnvOn(t testing.TB, st *sqlstore.Store, opts ...opt) *env {
	t.Helper()
	wid := sqltest.Workspace(t, st)
	clock := testclock.New(time.Now().UTC().Truncate(time.Microsecond))
	cat, err := webhooks.NewCatalog(webhooks.EventType{Name: "post.created"}, webhooks.EventType{Name: "post.updated"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhooks.Config{Store: st, Catalog: cat, AllowPrivate: true, Now: clock.Now,
		Jitter: func(d time.Duration) time.Duration { return d }, Timeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	q := webhooks.NewMemoryQueue(webhooks.MemoryQueueConfig{Now: cfg.Now, MaxWait: 5 * time.Millisecond, Workers: cfg.PerEndpoint * 2})
	// As revops wires it: idle connections kept per host = PerEndpoint.
	cfg.Sender = webhookhttp.New(webhookhttp.Config{AllowPrivate: cfg.AllowPrivate, PerHost: cfg.PerEndpoint, Now: cfg.Now})
	if cfg.Queue == nil {
		cfg.Queue = q
	}
	svc, err := webhooks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: st, svc: svc, wid: wid, clock: clock, queue: q}
}

func (e *env) endpoint(url string, events ...string) *webhooks.Endpoint {
	e.t.Helper()
	if len(events) == 0 {
		events = []string{"post.*"}
	}
	ep, err := e.svc.CreateEndpoint(context.Background(), e.wid, webhooks.EndpointInput{URL: url, Events: events})
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

// publish publishes post.created and returns the event's one delivery to ep.
func (e *env) publish(ep *webhooks.Endpoint) *webhooks.Delivery {
	e.t.Helper()
	ev, err := e.svc.Publish(context.Background(), e.wid, "post.created", map[string]any{"id": 7})
	if err != nil {
		e.t.Fatal(err)
	}
	ds, _, err := e.store.ListWebhookDeliveries(context.Background(), e.wid, webhooks.DeliveryFilter{EndpointID: ep.ID}, core.ListParams{Page: 1, PerPage: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range ds {
		if ds[i].EventID == ev.ID {
			return &ds[i]
		}
	}
	e.t.Fatalf("no delivery of %s to endpoint %d", ev.ID, ep.ID)
	return nil
}

func (e *env) delivery(id int64) *webhooks.Delivery {
	e.t.Helper()
	d, err := e.store.WebhookDelivery(context.Background(), e.wid, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) ep(id int64) *webhooks.Endpoint {
	e.t.Helper()
	ep, err := e.store.WebhookEndpoint(context.Background(), e.wid, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

// receiver answers with status (and headers) and counts requests.
type receiver struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	status int
	header map[string]string
	last   *http.Request
	body   []byte
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.last, r.body = req, b
		st, hdr := r.status, r.header
		r.mu.Unlock()
		r.hits.Add(1)
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(st)
		io.WriteString(w, `{"received":true}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) set(status int, header map[string]string) {
	r.mu.Lock()
	r.status, r.header = status, header
	r.mu.Unlock()
}

func TestDeliveryVerifiesWithStandardWebhooksAlsoDuringRotation(t *testing.T) {
	is := is.New(t)
	// The receiver checks timestamps against the real clock.
	e := newEnv(t, func(c *webhooks.Config) { c.Now = time.Now })
	rec := newReceiver(t, 200)
	ep := e.endpoint(rec.URL)
	verify := func(secret string) error {
		wh, err := standardwebhooks.NewWebhook(secret)
		is.NoErr(err)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return wh.Verify(rec.body, rec.last.Header)
	}

	d := e.publish(ep)
	is.NoErr(e.svc.Attempt(context.Background(), d.ID))
	is.Equal(rec.hits.Load(), int64(1))
	is.NoErr(verify(ep.Secret))
	is.Equal(rec.last.Header.Get("webhook-id"), d.EventID)
	var body struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	is.NoErr(json.Unmarshal(rec.body, &body))
	is.Equal(body.Type, "post.created")
	is.Equal(string(body.Data), `{"id":7}`)

	got := e.delivery(d.ID)
	is.Equal(got.Status, webhooks.StatusSuccess)
	is.Equal(got.Attempt, 1)
	is.Equal(got.ResponseCode, 200)
	is.Equal(got.ResponseBody, `{"received":true}`)
	is.True(got.DeliveredAt != nil)
	after := e.ep(ep.ID)
	is.Equal(after.SuccessCount, int64(1))
	is.True(after.LastDeliveryAt != nil)

	rotated, err := e.svc.RotateSecret(context.Background(), e.wid, ep.ID, "")
	is.NoErr(err)
	is.True(rotated.Secret != ep.Secret)
	d2 := e.publish(ep)
	is.NoErr(e.svc.Attempt(context.Background(), d2.ID))
	is.NoErr(verify(ep.Secret))      // receivers still on the old secret
	is.NoErr(verify(rotated.Secret)) // and those already on the new one
	is.Equal(len(strings.Fields(rec.last.Header.Get("webhook-signature"))), 2)
	is.True(verify(webhooks.NewSecret()) != nil) // the check can fail
}

func TestRetryScheduleFollowsTheInjectedClock(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rec := newReceiver(t, 500)
	ep := e.endpoint(rec.URL)
	d := e.publish(ep)
	ctx := context.Background()
	start := e.clock.Now()
	elapsed := time.Duration(0)
	for i, delay := range webhooks.DefaultSchedule {
		if i > 0 {
			// One microsecond early: not due, nothing is sent.
			e.clock.Advance(delay - time.Microsecond)
			is.NoErr(e.svc.Attempt(ctx, d.ID))
			is.Equal(rec.hits.Load(), int64(i))
			e.clock.Advance(time.Microsecond)
			elapsed += delay
		}
		is.NoErr(e.svc.Attempt(ctx, d.ID))
		is.Equal(rec.hits.Load(), int64(i+1))
		got := e.delivery(d.ID)
		is.Equal(got.Attempt, i+1)
		is.Equal(got.ResponseCode, 500)
		if i+1 < len(webhooks.DefaultSchedule) {
			is.Equal(got.Status, webhooks.StatusRetrying)
			is.Equal(got.NextAttemptAt.Sub(start), elapsed+webhooks.DefaultSchedule[i+1])
		} else {
			is.Equal(got.Status, webhooks.StatusFailed)
			is.True(got.NextAttemptAt == nil)
		}
	}
	// Exhausted: more time brings no more attempts.
	e.clock.Advance(48 * time.Hour)
	is.NoErr(e.svc.Attempt(ctx, d.ID))
	is.Equal(rec.hits.Load(), int64(len(webhooks.DefaultSchedule)))
	after := e.ep(ep.ID)
	is.Equal(after.FailureCount, int64(8))
	is.Equal(after.ConsecutiveFailures, 8)
	is.True(after.IsActive) // 8 failures in ~43 h are not 5 days
}

func TestRetryAfterIsHonoured(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rec := newReceiver(t, http.StatusTooManyRequests)
	rec.set(http.StatusTooManyRequests, map[string]string{"Retry-After": "120"})
	ep := e.endpoint(rec.URL)
	d := e.publish(ep)
	start := e.clock.Now()
	is.NoErr(e.svc.Attempt(context.Background(), d.ID))
	got := e.delivery(d.ID)
	is.Equal(got.Status, webhooks.StatusRetrying)
	is.Equal(got.NextAttemptAt.Sub(start), 120*time.Second) // not the schedule's 5 s

	date := start.Add(10 * time.Minute).Truncate(time.Second)
	rec.set(http.StatusServiceUnavailable, map[string]string{"Retry-After": date.Format(http.TimeFormat)})
	e.clock.Advance(120 * time.Second)
	is.NoErr(e.svc.Attempt(context.Background(), d.ID))
	got = e.delivery(d.ID)
	is.True(got.NextAttemptAt.Equal(date)) // an HTTP date, later than the schedule's 5 min

	// A Retry-After shorter than the schedule does not hurry it.
	rec.set(http.StatusServiceUnavailable, map[string]string{"Retry-After": "1"})
	e.clock.Advance(8 * time.Minute)
	is.NoErr(e.svc.Attempt(context.Background(), d.ID))
	got = e.delivery(d.ID)
	is.Equal(got.NextAttemptAt.Sub(start), 10*time.Minute+30*time.Minute)
}

func TestGoneDisablesTheEndpointAndRecordsAnEvent(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	gone := newReceiver(t, http.StatusGone)
	ops := newReceiver(t, 200)
	ep := e.endpoint(gone.URL, "post.created")
	watcher := e.endpoint(ops.URL, "endpoint.disabled")
	d := e.publish(ep)
	is.NoErr(e.svc.Attempt(context.Background(), d.ID))

	got := e.delivery(d.ID)
	is.Equal(got.Status, webhooks.StatusFailed)
	is.Equal(got.ResponseCode, 410)
	after := e.ep(ep.ID)
	is.True(!after.IsActive)
	is.Equal(after.DisabledReason, webhooks.DisabledGone)

	// endpoint.disabled went to the endpoint subscribed to it.
	ds, _, err := e.store.ListWebhookDeliveries(context.Background(), e.wid, webhooks.DeliveryFilter{EndpointID: watcher.ID}, core.ListParams{Page: 1, PerPage: 10})
	is.NoErr(err)
	is.Equal(len(ds), 1)
	is.Equal(ds[0].EventType, "endpoint.disabled")
	is.NoErr(e.svc.Attempt(context.Background(), ds[0].ID))
	is.True(strings.Contains(string(ops.body), `"reason":"gone"`))

	// Nothing more is sent to a disabled endpoint; new events skip it.
	ev, err := e.svc.Publish(context.Background(), e.wid, "post.created", map[string]any{})
	is.NoErr(err)
	ds, _, err = e.store.ListWebhookDeliveries(context.Background(), e.wid, webhooks.DeliveryFilter{EndpointID: ep.ID}, core.ListParams{Page: 1, PerPage: 10})
	is.NoErr(err)
	for _, x := range ds {
		is.True(x.EventID != ev.ID)
	}
	is.Equal(gone.hits.Load(), int64(1))
}

func TestConcurrentGoneAttemptsRecordOneDisabledEvent(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	gone := newReceiver(t, http.StatusGone)
	ops := newReceiver(t, 200)
	ep := e.endpoint(gone.URL, "post.created")
	watcher := e.endpoint(ops.URL, "endpoint.disabled")
	var ds []*webhooks.Delivery
	for range 6 {
		ds = append(ds, e.publish(ep))
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { is.NoErr(e.svc.Attempt(context.Background(), d.ID)) })
	}
	wg.Wait()
	after := e.ep(ep.ID)
	is.True(!after.IsActive)
	is.Equal(after.DisabledReason, webhooks.DisabledGone)
	// Every attempt sent is counted; one claimed after the endpoint was
	// disabled sends nothing.
	is.True(gone.hits.Load() >= 1)
	is.Equal(after.FailureCount, gone.hits.Load())
	for _, d := range ds {
		is.Equal(e.delivery(d.ID).Status, webhooks.StatusFailed)
	}
	// However many attempts saw the 410, the endpoint was disabled once.
	events, _, err := e.store.ListWebhookDeliveries(context.Background(), e.wid, webhooks.DeliveryFilter{EndpointID: watcher.ID}, core.ListParams{Page: 1, PerPage: 10})
	is.NoErr(err)
	is.Equal(len(events), 1)
}

func TestAttemptForADisabledEndpointSendsNothing(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rec := newReceiver(t, 200)
	ep := e.endpoint(rec.URL)
	d := e.publish(ep)
	off := false
	_, err := e.svc.UpdateEndpoint(context.Background(), e.wid, ep.ID, webhooks.EndpointPatch{IsActive: &off})
	is.NoErr(err)
	before := e.ep(ep.ID)
	is.NoErr(e.svc.Attempt(context.Background(), d.ID))
	is.Equal(rec.hits.Load(), int64(0))
	got := e.delivery(d.ID)
	is.Equal(got.Status, webhooks.StatusFailed)
	is.Equal(got.Attempt, 1) // the claim counts
	is.Equal(got.Error, "The endpoint is disabled.")
	is.True(got.LockedUntil == nil)
	is.Equal(e.ep(ep.ID), before) // no attempt counted on the endpoint
}

func TestEndpointFailingForDisableAfterIsDisabled(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *webhooks.Config) {
		c.Schedule = []time.Duration{0, time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	})
	rec := newReceiver(t, 502)
	ep := e.endpoint(rec.URL)
	d := e.publish(ep)
	ctx := context.Background()
	is.NoErr(e.svc.Attempt(ctx, d.ID)) // failing since now
	e.clock.Advance(time.Hour)
	is.NoErr(e.svc.Attempt(ctx, d.ID))
	for range 4 { // +1 h +4 days: not yet 5 days
		e.clock.Advance(24 * time.Hour)
		is.NoErr(e.svc.Attempt(ctx, d.ID))
	}
	is.True(e.ep(ep.ID).IsActive)
	e.clock.Advance(24 * time.Hour) // 5 days and 1 h
	is.NoErr(e.svc.Attempt(ctx, d.ID))
	after := e.ep(ep.ID)
	is.True(!after.IsActive)
	is.Equal(after.DisabledReason, webhooks.DisabledFailing)
	is.Equal(e.delivery(d.ID).Status, webhooks.StatusFailed)

	// Re-enabling clears the failure run; a success would keep it clear.
	on := true
	again, err := e.svc.UpdateEndpoint(ctx, e.wid, ep.ID, webhooks.EndpointPatch{IsActive: &on})
	is.NoErr(err)
	is.True(again.IsActive)
	is.Equal(again.DisabledReason, "")
	is.Equal(again.ConsecutiveFailures, 0)
	is.True(again.FailingSince == nil)
}

func TestManualRetryAndCannotRetry(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *webhooks.Config) { c.Schedule = []time.Duration{0, time.Hour, time.Hour} })
	rec := newReceiver(t, 500)
	ep := e.endpoint(rec.URL)
	ctx := context.Background()
	d := e.publish(ep)
	is.NoErr(e.svc.Attempt(ctx, d.ID)) // retrying, due in an hour

	r, err := e.svc.Retry(ctx, e.wid, ep.ID, d.ID)
	is.NoErr(err)
	is.Equal(r.Status, webhooks.StatusPending)
	is.NoErr(e.svc.Attempt(ctx, d.ID)) // due now, without waiting the hour
	is.Equal(rec.hits.Load(), int64(2))

	_, err = e.svc.Retry(ctx, e.wid, ep.ID+1000, d.ID) // another endpoint's path
	is.True(err != nil)
	is.Equal(core.As(err).Code, core.CodeNotFound)

	is.NoErr(func() error { _, err := e.svc.Retry(ctx, e.wid, ep.ID, d.ID); return err }())
	is.NoErr(e.svc.Attempt(ctx, d.ID)) // the third and last attempt
	is.Equal(e.delivery(d.ID).Status, webhooks.StatusFailed)
	_, err = e.svc.Retry(ctx, e.wid, ep.ID, d.ID)
	is.Equal(core.As(err).Code, webhooks.CodeCannotRetry) // max retries reached

	rec.set(200, nil)
	ok := e.publish(ep)
	is.NoErr(e.svc.Attempt(ctx, ok.ID))
	_, err = e.svc.Retry(ctx, e.wid, ep.ID, ok.ID)
	is.Equal(core.As(err).Code, webhooks.CodeCannotRetry) // already succeeded
	is.True(strings.Contains(core.As(err).Message, "succeeded"))
}

func TestRedirectIsAFailureAndNotFollowed(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	target := newReceiver(t, 200)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	ep := e.endpoint(redirect.URL)
	d := e.publish(ep)
	is.NoErr(e.svc.Attempt(context.Background(), d.ID))
	got := e.delivery(d.ID)
	is.Equal(got.Status, webhooks.StatusRetrying)
	is.Equal(got.ResponseCode, 302)
	is.True(strings.Contains(got.Error, "Redirects are not followed"))
	is.Equal(target.hits.Load(), int64(0))
}

func TestDeliveryRefusesPrivateAddressesAtDialTime(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *webhooks.Config) { c.AllowPrivate = false })
	rec := newReceiver(t, 200)
	// Creating it through the service is refused ...
	_, err := e.svc.CreateEndpoint(context.Background(), e.wid, webhooks.EndpointInput{URL: rec.URL, Events: []string{"*"}})
	is.Equal(core.As(err).Code, core.CodeValidation)
	// ... and one that got in anyway (a name that resolved public then) is
	// refused when dialled.
	ep := &webhooks.Endpoint{WorkspaceID: e.wid, URL: rec.URL, Events: []string{"*"}, Secret: webhooks.NewSecret(), IsActive: true}
	is.NoErr(e.store.CreateWebhookEndpoint(context.Background(), ep))
	d := e.publish(ep)
	is.NoErr(e.svc.Attempt(context.Background(), d.ID))
	got := e.delivery(d.ID)
	is.Equal(got.ResponseCode, 0)
	is.True(strings.Contains(got.Error, "not allowed"))
	is.Equal(rec.hits.Load(), int64(0))
}

func TestRunDeliversEverythingAndBoundsEachEndpoint(t *testing.T) {
	is := is.New(t)
	// The attempts must outlast the test: one timing out would free its
	// slot and let another begin while its handler is still held (under
	// -race on a loaded machine the test can take over the default 2 s).
	e := newEnv(t, func(c *webhooks.Config) { c.PerEndpoint = 2; c.Now = time.Now; c.Timeout = time.Minute })
	// A slow endpoint holding its attempts, and a fast one.
	release := make(chan struct{})
	var running, peak atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t, 200)
	e.endpoint(slow.URL, "post.updated")
	e.endpoint(fast.URL, "post.created")
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { e.svc.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }() // before the store closes
	for range 6 {
		_, err := e.svc.Publish(ctx, e.wid, "post.updated", map[string]any{})
		is.NoErr(err)
	}
	for range 40 {
		_, err := e.svc.Publish(ctx, e.wid, "post.created", map[string]any{})
		is.NoErr(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fast.hits.Load() < 40 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	is.Equal(fast.hits.Load(), int64(40)) // the slow endpoint stalled nothing
	// It gets its PerEndpoint attempts (the second may start after the fast
	// ones are done), and never more, however often its jobs come back.
	for peak.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // two rounds of busy jobs put back
	is.Equal(peak.Load(), int64(2))
}
