package sqlstore_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/webhooks"
)

// BenchmarkClaimFinish measures the delivery service's store work per
// delivery: b.N deliveries (created before the timer) are claimed and then
// finished as successes, batch by batch, as the service's batched claims
// and write lane do. One op is one delivery. Run with a fixed -benchtime
// (e.g. 20000x) to compare runs on tables of the same size.
func BenchmarkClaimFinish(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(testing.TB) *sqlstore.Store
	}{{"sqlite", sqltest.SQLite}, {"postgres", sqltest.Postgres}} {
		for _, batch := range []int{8, 64, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", db.name, batch), func(b *testing.B) {
				benchClaimFinish(b, db.open(b), batch)
			})
		}
	}
}

func benchClaimFinish(b *testing.B, st *sqlstore.Store, batch int) {
	ctx := b.Context()
	ws := sqltest.Workspace(b, st)
	ep := &webhooks.Endpoint{WorkspaceID: ws, URL: "https://hooks.example.test/in", Events: []string{"*"}, Secret: "whsec_bench", IsActive: true}
	if err := st.CreateWebhookEndpoint(ctx, ep); err != nil {
		b.Fatal(err)
	}
	// Events of up to 100 deliveries each, to the one endpoint, keep the
	// setup short.
	ids := make([]int64, 0, b.N)
	for len(ids) < b.N {
		ds := make([]webhooks.Delivery, min(100, b.N-len(ids)))
		for i := range ds {
			ds[i].EndpointID = ep.ID
		}
		ev := &webhooks.Event{WorkspaceID: ws, Type: "post.created", Payload: json.RawMessage(`{"id":1,"title":"Hello"}`)}
		ds, err := st.CreateWebhookEvent(ctx, ev, ds)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
	}
	if st.Dialect() == sqlstore.DialectPostgres {
		// The statistics autovacuum keeps in production: without them the
		// planner guesses, and may scan the table for a batch.
		if _, err := st.DB().ExecContext(ctx, "ANALYZE revops_webhook_deliveries"); err != nil {
			b.Fatal(err)
		}
	}
	fs := make([]webhooks.Finish, 0, batch)
	b.ResetTimer()
	for i := 0; i < len(ids); i += batch {
		now := time.Now()
		cs, err := st.ClaimWebhookDeliveries(ctx, ids[i:min(i+batch, len(ids))], now, now.Add(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		if len(cs) != min(batch, len(ids)-i) {
			b.Fatalf("claimed %d of %d", len(cs), min(batch, len(ids)-i))
		}
		fs = fs[:0]
		done := time.Now()
		for j := range cs {
			d := &cs[j].Delivery
			d.Status, d.NextAttemptAt, d.DeliveredAt = webhooks.StatusSuccess, nil, &done
			d.ResponseCode, d.ResponseBody, d.ResponseTimeMs = 200, `{"ok":true}`, 12
			fs = append(fs, webhooks.Finish{Delivery: d, Outcome: &webhooks.AttemptOutcome{Success: true, At: done}})
		}
		res, err := st.FinishWebhookAttempts(ctx, fs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if !r.Done {
				b.Fatal("an attempt was not finished")
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
