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

// BenchmarkDeliveryThroughput delivers b.N events to a no-op loopback
// receiver through the whole path (Publish: event and delivery rows in the
// store; queue; claim; sign; POST; outcome written), then times a bare loop
// of b.N signed http.Client POSTs to the same receiver at the same
// concurrency. It reports both rates, their ratio, the enqueue-to-delivery
// latency (publish to the receiver's read: under load mostly the backlog)
// and the publishers' own rate: when that is close to deliveries/s and the
// latency is low, publishing, not delivering, is the bound.
//
// It runs on SQLite and, when REVOPS_TEST_POSTGRES_URL is set, on
// PostgreSQL (a schema of its own): with 8 and 32 workers (PerEndpoint
// equal: the one endpoint may use them all) and one publisher, as an
// application publishing from one loop; and with 32 workers and 8
// publishers, as one publishing from concurrent requests.
//
//	go test -run x -bench DeliveryThroughput -benchtime 3000x ./webhooks/
func BenchmarkDeliveryThroughput(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(testing.TB) *sqlstore.Store
	}{{"sqlite", sqltest.SQLite}, {"postgres", sqltest.Postgres}} {
		b.Run(db.name, func(b *testing.B) {
			for _, c := range []struct{ workers, publishers int }{{8, 1}, {32, 1}, {32, 8}} {
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
		c.PerEndpoint = workers
		c.SweepInterval = time.Hour
		c.Queue = webhooks.NewMemoryQueue(webhooks.MemoryQueueConfig{Workers: workers})
	})
	ep, err := e.svc.CreateEndpoint(context.Background(), e.wid, webhooks.EndpointInput{URL: recv.URL, Events: []string{"*"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.svc.Run(ctx)

	b.ResetTimer()
	start := time.Now()
	var left atomic.Int64
	left.Store(int64(b.N))
	var pubs sync.WaitGroup
	for range publishers {
		pubs.Go(func() {
			for left.Add(-1) >= 0 {
				if _, err := e.svc.Publish(ctx, e.wid, "post.created", map[string]any{"sent": time.Now()}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	pubs.Wait()
	if b.Failed() {
		return
	}
	published := time.Since(start)
	for got.Load() < int64(b.N) {
		time.Sleep(200 * time.Microsecond)
	}
	elapsed := time.Since(start)
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

	rate := float64(b.N) / elapsed.Seconds()
	bareRate := float64(b.N) / bare.Seconds()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(bareRate, "bare_posts/s")
	b.ReportMetric(rate/bareRate, "x_bare")
	// The one publisher's rate: when it is close to deliveries/s (and the
	// latency is low), publishing, not delivering, is the bound.
	b.ReportMetric(float64(b.N)/published.Seconds(), "publishes/s")
	mu.Lock()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	}
	mu.Unlock()
}
