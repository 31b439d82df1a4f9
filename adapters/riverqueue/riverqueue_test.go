package riverqueue_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/revopsdev/revops/adapters/riverqueue"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/webhookhttp"
	"github.com/revopsdev/revops/webhooks"
)

// receiver is a loopback webhook endpoint that verifies every delivery
// with the Standard Webhooks library and counts them by webhook-id.
type receiver struct {
	*httptest.Server
	delay time.Duration

	mu     sync.Mutex
	secret string
	seen   map[string]int
	bad    int
	notify chan struct{}
}

func newReceiver(t testing.TB, delay time.Duration) *receiver {
	r := &receiver{delay: delay, seen: map[string]int{}, notify: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		time.Sleep(r.delay)
		r.mu.Lock()
		defer r.mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(r.secret)
		if err == nil {
			err = wh.Verify(body, req.Header)
		}
		if err != nil {
			r.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.seen[req.Header.Get("webhook-id")]++
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// counts returns how many distinct ids arrived, how many repeats, and how
// many deliveries failed verification.
func (r *receiver) counts() (distinct, dups, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.seen {
		distinct++
		dups += n - 1
	}
	return distinct, dups, r.bad
}

// waitFor waits until n distinct events arrived or the deadline passes.
func (r *receiver) waitFor(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		if d, _, _ := r.counts(); d >= n {
			return
		}
		select {
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			d, dups, bad := r.counts()
			t.Fatalf("after %v: %d of %d events delivered (%d repeats, %d failed verification)", within, d, n, dups, bad)
		}
	}
}

// fixture is a migrated store with one workspace.
type fixture struct {
	store *sqlstore.Store
	wid   int64
}

func newFixture(t testing.TB, storeURL string) *fixture {
	t.Helper()
	st := sqltest.Open(t, storeURL)
	return &fixture{store: st, wid: sqltest.Workspace(t, st)}
}

// service builds the webhooks service over store and q.
func service(t testing.TB, st webhooks.Store, q webhooks.Queue, edit func(*webhooks.Config)) *webhooks.Service {
	t.Helper()
	cat, err := webhooks.NewCatalog(webhooks.EventType{Name: "post.created"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhooks.Config{Store: st, Catalog: cat, Queue: q, AllowPrivate: true,
		Sender:  webhookhttp.New(webhookhttp.Config{AllowPrivate: true}),
		Timeout: 2 * time.Second, SweepInterval: time.Hour}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := webhooks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// backend is a migrated store and a way to open River queues on its
// database (several, as separate processes would).
type backend func(t *testing.T) (*fixture, func() *riverqueue.Queue)

// backends lists the databases the tests run on.
func backends() map[string]backend {
	cfg := riverqueue.Config{PollInterval: 20 * time.Millisecond}
	return map[string]backend{
		"sqlite": func(t *testing.T) (*fixture, func() *riverqueue.Queue) {
			f := newFixture(t, filepath.Join(t.TempDir(), "rq.db"))
			return f, func() *riverqueue.Queue {
				q, err := riverqueue.NewSQLite(f.store.DB().DB, cfg)
				return migrated(t, q, err)
			}
		},
		"postgres": func(t *testing.T) (*fixture, func() *riverqueue.Queue) {
			dbURL := sqltest.PostgresURL(t)
			f := newFixture(t, dbURL)
			return f, func() *riverqueue.Queue {
				pool, err := pgxpool.New(t.Context(), dbURL)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(pool.Close)
				q, err := riverqueue.NewPostgres(pool, cfg)
				return migrated(t, q, err)
			}
		},
	}
}

func migrated(t *testing.T, q *riverqueue.Queue, err error) *riverqueue.Queue {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return q
}

// run starts svc's delivery until the test ends, and checks that it
// stopped cleanly.
func run(t *testing.T, svc *webhooks.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestDelivers publishes events to an endpoint allowed one attempt at a
// time, with a slow receiver, so that jobs of a busy endpoint are snoozed
// in River and run again; every event arrives exactly once, verified, and
// every delivery row ends as success.
func TestDelivers(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			f, queue := open(t)
			rec := newReceiver(t, 20*time.Millisecond)
			svc := service(t, f.store, queue(), func(c *webhooks.Config) { c.PerEndpoint = 1 })
			ep, err := svc.CreateEndpoint(t.Context(), f.wid, webhooks.EndpointInput{URL: rec.URL, Events: []string{"post.*"}})
			if err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			rec.secret = ep.Secret
			rec.mu.Unlock()
			run(t, svc)
			const n = 12
			for i := range n {
				if _, err := svc.Publish(t.Context(), f.wid, "post.created", map[string]int{"n": i}); err != nil {
					t.Fatal(err)
				}
			}
			rec.waitFor(t, n, 30*time.Second)
			if d, dups, bad := rec.counts(); d != n || dups != 0 || bad != 0 {
				t.Fatalf("delivered %d distinct, %d repeats, %d unverified; want %d, 0, 0", d, dups, bad, n)
			}
			waitStatus(t, svc, f.wid, ep.ID, webhooks.StatusSuccess, n)
		})
	}
}

// waitStatus waits until n of the endpoint's deliveries have status (the
// outcome is written just after the receiver answers).
func waitStatus(t *testing.T, svc *webhooks.Service, wid, epID int64, status string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, total, err := svc.ListDeliveries(t.Context(), wid, epID, status, core.ListParams{Page: 1, PerPage: 100})
		if err != nil {
			t.Fatal(err)
		}
		if total == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries %s, want %d", total, status, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJobsAreDurable publishes while no worker runs: the jobs wait in
// River's table, and a worker started later (a new Queue, as after a
// restart) runs them. The worker's sweep finds nothing, so the jobs are
// the only way the events can arrive.
func TestJobsAreDurable(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			f, queue := open(t)
			rec := newReceiver(t, 0)
			publisher := service(t, f.store, queue(), nil)
			ep, err := publisher.CreateEndpoint(t.Context(), f.wid, webhooks.EndpointInput{URL: rec.URL, Events: []string{"*"}})
			if err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			rec.secret = ep.Secret
			rec.mu.Unlock()

			// A worker of its own queue whose sweep finds nothing.
			worker := service(t, noSweep{f.store}, queue(), nil)
			const n = 5
			for i := range n {
				if _, err := publisher.Publish(t.Context(), f.wid, "post.created", map[string]int{"n": i}); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(100 * time.Millisecond)
			if d, _, _ := rec.counts(); d != 0 {
				t.Fatalf("%d events arrived with no worker running", d)
			}
			run(t, worker)
			rec.waitFor(t, n, 30*time.Second)
		})
	}
}

// noSweep is a store whose sweep finds nothing, so only queued jobs run.
type noSweep struct{ webhooks.Store }

func (noSweep) DueWebhookDeliveries(context.Context, time.Time, int) ([]webhooks.Delivery, error) {
	return nil, nil
}
