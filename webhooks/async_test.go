package webhooks_test

import (
	"context"
	"sync"
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
	// the last POSTs may be cut short (a retry, then).
	publishRunStop(t, e, r, n)
	is.Equal(r.hits.Load(), int64(n))
	ds, total, err := e.svc.ListDeliveries(context.Background(), e.wid, ep.ID, "", core.ListParams{PerPage: 100})
	is.NoErr(err)
	is.Equal(total, n)
	var ok, retrying int64
	for _, d := range ds {
		switch {
		case d.LockedUntil != nil || d.Attempt != 1:
			t.Errorf("delivery %d: attempt %d leased until %v: its outcome was not written", d.ID, d.Attempt, d.LockedUntil)
		case d.Status == webhooks.StatusSuccess:
			ok++
		case d.Status == webhooks.StatusRetrying:
			retrying++
		}
	}
	is.Equal(ok+retrying, int64(n))
	is.True(ok > n/2)
	got := e.ep(ep.ID)
	is.Equal(got.SuccessCount, ok)
	is.Equal(got.FailureCount, retrying)
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
	e.endpoint(r.URL)
	const n = 30
	publishRunStop(t, e, r, n) // once Run returns, the follow-ups of every outcome are done
	mu.Lock()
	defer mu.Unlock()
	is.Equal(len(retries), n) // every failed delivery queued again, once written
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
