package revops_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/billing"
)

// BenchmarkUsageIngestion counts b.N usage events of one feature of one
// workspace from 32 concurrent writers, each event durable (committed)
// before its call returns, then — in the same run, on the same database —
// applies b.N increments the naive way: 32 writers running UPDATE … SET
// used = used + n on one hot row. It reports both rates and their ratio
// (x_hot_row; the issue asks ≥ 10 on Postgres).
//
//   - record: Platform.RecordUsage, one event per call, as POST
//     /entitlements/usage does (concurrent calls share a transaction) — it
//     also reads the new total for its answer;
//   - ingest: Meter.Ingest, 500 events per call, the bulk path.
//
// BenchmarkEntitlementCheck reports the latency of CheckFeature.
//
//	REVOPS_TEST_POSTGRES_URL=… go test -run x -bench 'UsageIngestion|EntitlementCheck' -benchtime 200000x .
func BenchmarkUsageIngestion(b *testing.B) {
	for _, db := range testDBs {
		b.Run(db.name, func(b *testing.B) {
			for _, mode := range []string{"record", "ingest"} {
				b.Run(mode, func(b *testing.B) { benchIngest(b, db.open(b), mode) })
			}
		})
	}
}

const benchWriters = 32

func benchIngest(b *testing.B, st *sqlstore.Store, mode string) {
	st.DB().SetMaxOpenConns(benchWriters + 4)
	st.DB().SetMaxIdleConns(benchWriters + 4)
	p := platformOn(b, st)
	wid := sqltest.Workspace(b, st)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Start(ctx) }() // rolls events up as they arrive
	defer func() { _ = p.Stop(context.Background()) }()
	s := billing.Subject{WorkspaceID: wid, Tier: "enterprise"}

	var next atomic.Int64
	run := func(fn func(i int64) error) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for range benchWriters {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					if err := fn(i); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}

	b.ResetTimer()
	var elapsed time.Duration
	switch mode {
	case "record":
		elapsed = run(func(i int64) error {
			_, err := p.RecordUsage(ctx, wid, billing.UsageInput{Feature: "api_calls", Quantity: 1, EventID: fmt.Sprint("e", i)})
			return err
		})
	case "ingest":
		const batch = 500
		events := (b.N + batch - 1) / batch
		b.N = events * batch
		next.Store(0)
		var calls atomic.Int64
		elapsed = run(func(i int64) error {
			if i%batch != 0 {
				return nil // one writer takes each batch
			}
			in := make([]billing.UsageInput, batch)
			for j := range in {
				in[j] = billing.UsageInput{Feature: "api_calls", Quantity: 1, EventID: fmt.Sprint("e", i+int64(j))}
			}
			calls.Add(1)
			_, err := p.Meter().Ingest(ctx, s, in)
			return err
		})
	}
	b.StopTimer()
	d, err := p.CheckFeature(ctx, wid, "api_calls", 1)
	if err != nil || d.Used != int64(b.N) {
		b.Fatalf("counted %v of %d events (%v)", d, b.N, err)
	}

	// The baseline: the same increments on one hot row, same writers.
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE bench_hot_row (id INTEGER PRIMARY KEY, used BIGINT NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, "INSERT INTO bench_hot_row (id, used) VALUES (1, 0)"); err != nil {
		b.Fatal(err)
	}
	next.Store(0)
	base := run(func(int64) error {
		_, err := st.DB().NewRaw("UPDATE bench_hot_row SET used = used + ? WHERE id = 1", 1).Exec(ctx)
		return err
	})
	var used int64
	if err := st.DB().NewRaw("SELECT used FROM bench_hot_row WHERE id = 1").Scan(ctx, &used); err != nil || used != int64(b.N) {
		b.Fatalf("hot row %d, want %d (%v)", used, b.N, err)
	}
	rate := float64(b.N) / elapsed.Seconds()
	baseRate := float64(b.N) / base.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(baseRate, "hot_row_updates/s")
	b.ReportMetric(rate/baseRate, "x_hot_row")
}

func BenchmarkEntitlementCheck(b *testing.B) {
	for _, db := range testDBs {
		b.Run(db.name, func(b *testing.B) {
			st := db.open(b)
			p := platformOn(b, st)
			wid := sqltest.Workspace(b, st)
			ctx := context.Background()
			in := make([]billing.UsageInput, 1000)
			for i := range in {
				in[i] = billing.UsageInput{Feature: "api_calls", Quantity: 1}
			}
			if _, err := p.Meter().Ingest(ctx, billing.Subject{WorkspaceID: wid, Tier: "free"}, in); err != nil {
				b.Fatal(err)
			}
			if _, err := st.RollupUsage(ctx, 10_000); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				d, err := p.CheckFeature(ctx, wid, "api_calls", 1)
				lat = append(lat, time.Since(start))
				if err != nil || d.Used != 1000 {
					b.Fatalf("%+v %v", d, err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_µs")
		})
	}
}
