package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/webhooks"
)

// BenchmarkDeliveryThroughput measures delivery to a no-op loopback
// receiver through the whole delivery path (queue; claim, which brings the
// endpoint and event; sign; POST; outcome written) against a bare loop of
// signed http.Client POSTs to the same receiver at the same concurrency, in
// one run. It has three timed phases, reported separately:
//
//  1. publish: b.N events are published (event and delivery rows in the
//     store, jobs queued) while no worker runs: publishes/s, by the given
//     number of concurrent publishers;
//  2. deliver: the workers start and deliver the b.N queued deliveries:
//     deliveries/s, then bare_posts/s (the bare loop, b.N POSTs with
//     `workers` goroutines) and their ratio x_bare. Publishing is NOT in
//     this time: it is phase 1's figure, and an application publishing
//     slower than deliveries/s is bound by its publishing, not by delivery;
//  3. latency: events are published one by one at a steady rate, half of
//     the lower of the two rates above (so below capacity, without a
//     backlog), for min(b.N, 1000) events; p50_ms and p99_ms are from
//     Publish being called to the receiver reading the body.
//
// It runs on SQLite and, when REVOPS_TEST_POSTGRES_URL is set, on
// PostgreSQL (a schema of its own): with 8, 16 (the default) and 32 workers (Concurrency
// senders, PerEndpoint equal: the one endpoint may use them all) and one
// publisher, and with 32 workers and 8 publishers (phase 1 only differs).
//
//	go test -run x -bench DeliveryThroughput -benchtime 20000x ./webhooks/
func BenchmarkDeliveryThroughput(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(testing.TB) *sqlstore.Store
	}{{"sqlite", sqltest.SQLite}, {"postgres", sqltest.Postgres}} {
		b.Run(db.name, func(b *testing.B) {
			for _, c := range []struct{ workers, publishers int }{{8, 1}, {16, 1}, {32, 1}, {32, 8}} {
				name := fmt.Sprintf("workers=%d", c.workers)
				if c.publishers > 1 {
					name += fmt.Sprintf(",publishers=%d", c.publishers)
				}
				b.Run(name, func(b *testing.B) {
					benchDelivery(b, db.open(b), c.workers, c.publishers)
				})
			}
		})
	}
}

func benchDelivery(b *testing.B, st *sqlstore.Store, workers, publishers int) {
	var got atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		var ev struct{ Data struct{ Sent time.Time } }
		if json.Unmarshal(body, &ev) == nil && !ev.Data.Sent.IsZero() {
			mu.Lock()
			lat = append(lat, now.Sub(ev.Data.Sent))
			mu.Unlock()
		}
		got.Add(1)
	}))
	defer recv.Close()

	e := newEnvOn(b, st, func(c *webhooks.Config) {
		c.Now = time.Now
		c.Concurrency, c.PerEndpoint = workers, workers
		c.SweepInterval = time.Hour
	})
	ep, err := e.svc.CreateEndpoint(context.Background(), e.wid, webhooks.EndpointInput{URL: recv.URL, Events: []string{"*"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	defer func() { cancel(); <-ran }() // before the store is dropped
	waitFor := func(n int64) {
		for got.Load() < n {
			time.Sleep(200 * time.Microsecond)
		}
	}

	// 1. Publish, no worker running.
	b.ResetTimer()
	start := time.Now()
	var left atomic.Int64
	left.Store(int64(b.N))
	var pubs sync.WaitGroup
	for range publishers {
		pubs.Go(func() {
			for n := left.Add(-1); n >= 0; n = left.Add(-1) {
				if _, err := e.svc.Publish(ctx, e.wid, "post.created", map[string]any{"n": n}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	pubs.Wait()
	if b.Failed() {
		close(ran) // Run never started
		return
	}
	published := time.Since(start)

	// 2. Deliver what is queued. On PostgreSQL the statistics autovacuum
	// keeps in production first: a table just filled has none, and the
	// planner would guess.
	if st.Dialect() == sqlstore.DialectPostgres {
		if _, err := st.DB().ExecContext(ctx, "ANALYZE revops_webhook_deliveries"); err != nil {
			b.Fatal(err)
		}
	}
	start = time.Now()
	go func() { e.svc.Run(ctx); close(ran) }()
	waitFor(int64(b.N))
	delivered := time.Since(start)
	b.StopTimer()

	// The bare baseline: the same signed POSTs from `workers` goroutines.
	secret, _ := webhooks.ParseSecret(ep.Secret)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var next atomic.Int64
	var wg sync.WaitGroup
	bstart := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				body := []byte(`{"type":"post.created","timestamp":"2026-01-01T00:00:00Z","data":{}}`)
				req, _ := http.NewRequest(http.MethodPost, recv.URL, bytes.NewReader(body))
				for k, v := range webhooks.Headers([][]byte{secret}, webhooks.NewEventID(), time.Now(), body) {
					req.Header.Set(k, v)
				}
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	bare := time.Since(bstart)

	rate := float64(b.N) / delivered.Seconds()
	bareRate := float64(b.N) / bare.Seconds()
	pubRate := float64(b.N) / published.Seconds()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(bareRate, "bare_posts/s")
	b.ReportMetric(rate/bareRate, "x_bare")
	b.ReportMetric(pubRate, "publishes/s")

	// 3. Enqueue-to-delivery latency at a steady rate below capacity.
	paced := min(rate, pubRate) / 2
	n := min(b.N, 1000)
	base := got.Load() // the bare loop's POSTs counted too
	tick := time.NewTicker(time.Duration(float64(time.Second) / paced))
	for range n {
		<-tick.C
		if _, err := e.svc.Publish(ctx, e.wid, "post.created", map[string]any{"sent": time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	waitFor(base + int64(n))
	b.ReportMetric(paced, "paced_publishes/s")
	mu.Lock()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	}
	mu.Unlock()
}
