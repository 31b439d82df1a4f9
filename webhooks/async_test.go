package webhooks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/webhooks"
)

// Run's workers hand outcomes to the write lane without waiting; a clean
// stop (ctx ended, Run returned) must still have written every one.
func TestRunWritesEveryOutcomeBeforeReturning(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *webhooks.Config) { c.Now = time.Now; c.PerEndpoint = 8; c.SweepInterval = time.Hour })
	r := newReceiver(t, 200)
	ep := e.endpoint(r.URL)
	const n = 60
	// Stopped as soon as the last POST arrives: outcomes are pending, and
	// the last POSTs may be cut short (given back, then).
	publishRunStop(t, e, r, n)
	is.Equal(r.hits.Load(), int64(n))
	ds, total, err := e.svc.ListDeliveries(context.Background(), e.wid, ep.ID, "", core.ListParams{PerPage: 100})
	is.NoErr(err)
	is.Equal(total, n)
	var ok, back int64
	for _, d := range ds {
		switch {
		case d.LockedUntil != nil:
			t.Errorf("delivery %d: attempt %d leased until %v: its outcome was not written", d.ID, d.Attempt, d.LockedUntil)
		case d.Status == webhooks.StatusSuccess && d.Attempt == 1:
			ok++
		case d.Status == webhooks.StatusPending && d.Attempt == 0: // cut short by the stop: given back
			back++
		default:
			t.Errorf("delivery %d: %s at attempt %d", d.ID, d.Status, d.Attempt)
		}
	}
	is.Equal(ok+back, int64(n))
	is.True(ok > n/2)
	got := e.ep(ep.ID)
	is.Equal(got.SuccessCount, ok)
	is.Equal(got.FailureCount, int64(0))
}

// observedQueue is a MemoryQueue that reads, at each Enqueue, the rows of
// the deliveries queued.
type observedQueue struct {
	*webhooks.MemoryQueue
	seen func(j webhooks.Job)
}

func (q *observedQueue) Enqueue(ctx context.Context, jobs ...webhooks.Job) error {
	for _, j := range jobs {
		q.seen(j)
	}
	return q.MemoryQueue.Enqueue(ctx, jobs...)
}

// A failed attempt's retry is queued only once its outcome is written: a
// job queued before would find the delivery still leased and do nothing.
func TestRetryIsQueuedOnlyAfterItsOutcomeIsWritten(t *testing.T) {
	is := is.New(t)
	var e *env
	var mu sync.Mutex
	retries := map[int64]bool{}
	q := &observedQueue{MemoryQueue: webhooks.NewMemoryQueue(webhooks.MemoryQueueConfig{Workers: 8, MaxWait: 5 * time.Millisecond})}
	q.seen = func(j webhooks.Job) {
		if !j.At.After(time.Now()) {
			return // published, or queued by the sweep: due now
		}
		d := e.delivery(j.DeliveryID) // a retry, 5 s ahead
		mu.Lock()
		retries[d.ID] = true
		mu.Unlock()
		if d.Status != webhooks.StatusRetrying || d.LockedUntil != nil || d.Attempt != 1 {
			t.Errorf("delivery %d queued again as %s (attempt %d), leased until %v: its outcome is not written yet", d.ID, d.Status, d.Attempt, d.LockedUntil)
		}
	}
	e = newEnv(t, func(c *webhooks.Config) {
		c.Now = time.Now
		c.PerEndpoint = 8
		c.SweepInterval = time.Hour
		c.Queue = q
	})
	r := newReceiver(t, 500)
	ep := e.endpoint(r.URL)
	const n = 30
	publishRunStop(t, e, r, n) // once Run returns, the follow-ups of every outcome are done
	ds, _, err := e.svc.ListDeliveries(context.Background(), e.wid, ep.ID, "", core.ListParams{PerPage: 100})
	is.NoErr(err)
	mu.Lock()
	defer mu.Unlock()
	retrying := 0
	for _, d := range ds {
		if d.Status == webhooks.StatusRetrying {
			retrying++
			is.True(retries[d.ID]) // queued again once written
		}
	}
	is.Equal(len(retries), retrying)
	is.True(retrying > n/2) // the last POSTs may be cut short by the stop: given back
}

// publishRunStop publishes n events, runs the service until the receiver
// has had n POSTs (20 s at most), then stops it and waits for Run to return.
func publishRunStop(t *testing.T, e *env, r *receiver, n int64) {
	t.Helper()
	for range n {
		if _, err := e.svc.Publish(context.Background(), e.wid, "post.created", map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { e.svc.Run(ctx); close(ran) }()
	deadline := time.Now().Add(20 * time.Second)
	for r.hits.Load() < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	<-ran
}

// blockingReceiver holds every request until release is closed; firstID
// is the webhook-id of the first.
func blockingReceiver(t *testing.T) (url string, hits *atomic.Int64, release chan struct{}, firstID func() string) {
	hits, release = new(atomic.Int64), make(chan struct{})
	var first atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.CompareAndSwap(nil, r.Header.Get("webhook-id"))
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, hits, release, func() string { id, _ := first.Load().(string); return id }
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Run claims deliveries ahead of their POSTs; one whose lease runs short
// while it waits for its turn is given back unsent (its attempt not
// counted), queued again, claimed afresh and sent.
func TestClaimAheadIsGivenBackWhenItsLeaseRunsShort(t *testing.T) {
	is := is.New(t)
	var mu sync.Mutex
	var released bool
	queued := map[int64]int{} // after the release
	q := &observedQueue{}
	q.seen = func(j webhooks.Job) {
		mu.Lock()
		if released {
			queued[j.DeliveryID]++
		}
		mu.Unlock()
	}
	e := newEnv(t, func(c *webhooks.Config) {
		// One POST at a time; two claims (Lease / Timeout) per endpoint.
		c.Concurrency, c.PerEndpoint, c.Timeout, c.Lease = 1, 1, time.Minute, 2*time.Minute
		c.SweepInterval, c.Queue = time.Hour, q
	})
	q.MemoryQueue = webhooks.NewMemoryQueue(webhooks.MemoryQueueConfig{Now: e.clock.Now, MaxWait: 5 * time.Millisecond}) // before Run
	url, hits, release, firstID := blockingReceiver(t)
	ep := e.endpoint(url)
	first, second := e.publish(ep), e.publish(ep)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { e.svc.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()

	waitUntil(t, "one is sent and the other claimed ahead", func() bool {
		return hits.Load() == 1 && e.delivery(first.ID).LockedUntil != nil && e.delivery(second.ID).LockedUntil != nil
	})
	if firstID() == second.EventID { // the order they are sent in is not fixed
		first, second = second, first
	}
	is.Equal(e.delivery(second.ID).Attempt, 1)
	e.clock.Advance(2*time.Minute - 20*time.Second) // 20 s of lease left: under Timeout/2
	mu.Lock()
	released = true
	mu.Unlock()
	close(release)
	waitUntil(t, "both are delivered", func() bool {
		return e.delivery(first.ID).Status == webhooks.StatusSuccess && e.delivery(second.ID).Status == webhooks.StatusSuccess
	})
	is.Equal(hits.Load(), int64(2))
	is.Equal(e.delivery(second.ID).Attempt, 1) // the claim given back did not count
	mu.Lock()
	defer mu.Unlock()
	is.Equal(queued[first.ID], 0)
	is.Equal(queued[second.ID], 1) // given back
}

// A stopping Run gives back the claims it holds and has not sent: they
// are free at once, not after their lease, and their attempts not counted.
func TestRunGivesBackUnsentClaimsWhenItStops(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *webhooks.Config) {
		c.Concurrency, c.PerEndpoint, c.Timeout, c.SweepInterval = 1, 1, time.Minute, time.Hour
	})
	url, hits, release, _ := blockingReceiver(t)
	defer close(release)
	ep := e.endpoint(url)
	ds := []*webhooks.Delivery{e.publish(ep), e.publish(ep), e.publish(ep)}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { e.svc.Run(ctx); close(ran) }()
	waitUntil(t, "one is sent and all are claimed", func() bool {
		for _, d := range ds {
			if e.delivery(d.ID).LockedUntil == nil {
				return false
			}
		}
		return hits.Load() == 1
	})
	cancel()
	<-ran
	// The two claimed ahead, and the one whose POST the stop cut short
	// (not a failed attempt: nothing answered because Run stopped).
	for _, d := range ds {
		got := e.delivery(d.ID)
		is.True(got.LockedUntil == nil)
		is.Equal(got.Attempt, 0)
		is.Equal(got.Status, webhooks.StatusPending)
	}
	is.Equal(e.ep(ep.ID).FailureCount, int64(0))
}

// Endpoints take turns for the claims that free up: one with a backlog
// does not keep another waiting until it is drained.
func TestEndpointsTakeTurnsForClaims(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *webhooks.Config) {
		// Two claims in all (Concurrency × Lease / Timeout), one POST at a time.
		c.Concurrency, c.PerEndpoint, c.Timeout, c.Lease = 1, 1, time.Minute, 2*time.Minute
		c.Now, c.SweepInterval = time.Now, time.Hour
	})
	var mu sync.Mutex
	var order []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		order = append(order, r.URL.Path)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	e.endpoint(srv.URL+"/busy", "post.created")
	e.endpoint(srv.URL+"/quiet", "post.updated")
	const n = 30
	for range n {
		_, err := e.svc.Publish(context.Background(), e.wid, "post.created", map[string]any{})
		is.NoErr(err)
	}
	_, err := e.svc.Publish(context.Background(), e.wid, "post.updated", map[string]any{})
	is.NoErr(err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { e.svc.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	waitUntil(t, "everything is delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == n+1
	})
	mu.Lock()
	defer mu.Unlock()
	at := slices.Index(order, "/quiet")
	is.True(at >= 0)
	if at > 5 { // its turn comes after one or two of the busy endpoint's
		t.Errorf("the quiet endpoint's delivery was POST %d of %d: it waited for the busy endpoint's backlog", at+1, n+1)
	}
}

// failingQueue's Run fails at once.
type failingQueue struct{ *webhooks.MemoryQueue }

func (failingQueue) Run(context.Context, webhooks.Work) error { return errors.New("queue broke") }

// Run returns the queue's error when the queue stops by itself.
func TestRunReturnsWhenTheQueueStops(t *testing.T) {
	e := newEnv(t, func(c *webhooks.Config) {
		c.Queue = failingQueue{webhooks.NewMemoryQueue(webhooks.MemoryQueueConfig{})}
	})
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || err.Error() != "queue broke" {
			t.Errorf("Run: %v, want the queue's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its queue stopped")
	}
}
