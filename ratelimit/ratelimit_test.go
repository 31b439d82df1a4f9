package ratelimit_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/revopsdev/revops/internal/benchratio"
	"github.com/revopsdev/revops/internal/testclock"
	"github.com/revopsdev/revops/ratelimit"
	"github.com/revopsdev/revops/storetest"
	"golang.org/x/time/rate"
)

func TestFreeTierHasNoBurst(t *testing.T) {
	is := is.New(t)
	clk := testclock.New(time.Unix(1_700_000_000, 0))
	m := ratelimit.NewMemory(clk.Now)
	free := ratelimit.DefaultPolicies()["free"]
	ctx := context.Background()
	for i := range 60 {
		d, err := m.Allow(ctx, "k", free)
		is.NoErr(err)
		is.True(d.Allowed)
		is.Equal(d.Remaining, 59-i)
		is.Equal(d.Limit, 60)
	}
	d, _ := m.Allow(ctx, "k", free)
	is.True(!d.Allowed)
	is.Equal(d.Remaining, 0)
	is.Equal(d.RetryAfter, time.Second)
	is.Equal(d.ResetAt, clk.Now().Add(time.Minute)) // full again a minute on
	is.Equal(d.At, clk.Now())                       // decided at the limiter's instant
	clk.Advance(time.Second)
	d, _ = m.Allow(ctx, "k", free)
	is.True(d.Allowed)
	d, _ = m.Allow(ctx, "k", free)
	is.True(!d.Allowed)
	// Another key is independent.
	d, _ = m.Allow(ctx, "other", free)
	is.True(d.Allowed)
	is.Equal(d.Remaining, 59)
}

func TestBurstCapacity(t *testing.T) {
	for name, want := range map[string]int{"free": 60, "starter": 1200, "pro": 6500, "agency": 30000, "enterprise": 200000} {
		p := ratelimit.DefaultPolicies()[name]
		if p.Capacity() != want {
			t.Errorf("%s capacity %d, want %d", name, p.Capacity(), want)
		}
		clk := testclock.New(time.Unix(1_700_000_000, 0))
		m := ratelimit.NewMemory(clk.Now)
		n := 0
		for {
			d, _ := m.Allow(context.Background(), "k", p)
			if !d.Allowed {
				break
			}
			n++
		}
		if n != want {
			t.Errorf("%s: admitted %d at once, want %d", name, n, want)
		}
	}
	if (ratelimit.Policy{PerMinute: 0}).Validate() == nil || (ratelimit.Policy{PerMinute: 5, Burst: -1}).Validate() == nil {
		t.Fatal("bad policies accepted")
	}
}

// 64 goroutines on one key for three seconds of real time admit at most
// capacity + rate×T (+1%), and not much less.
func TestCountingUnderConcurrency(t *testing.T) {
	m := ratelimit.NewMemory(nil)
	p := ratelimit.Policy{Name: "t", PerMinute: 1200, Burst: 0.5} // 20/s, capacity 1800
	const window = 3 * time.Second
	var admitted atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < window {
				if d, _ := m.Allow(context.Background(), "hot", p); d.Allowed {
					admitted.Add(1)
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	ideal := float64(p.Capacity()) + float64(p.PerMinute)*elapsed.Minutes()
	got := float64(admitted.Load())
	if got > ideal*1.01 {
		t.Fatalf("admitted %.0f, more than capacity + rate×T = %.1f (+1%%)", got, ideal)
	}
	// Goroutines descheduled past the window may leave a few tokens unspent
	// on a loaded machine; the bound that matters is the upper one.
	if got < 0.95*(float64(p.Capacity())+float64(p.PerMinute)*window.Minutes()) {
		t.Fatalf("admitted %.0f, fewer than the %v window allows (%.1f)", got, window, ideal)
	}
	t.Logf("admitted %.0f of ideal %.1f over %v", got, ideal, elapsed)
}

func TestSweepEvictsOnlyFullBuckets(t *testing.T) {
	is := is.New(t)
	clk := testclock.New(time.Unix(1_700_000_000, 0))
	m := ratelimit.NewMemory(clk.Now)
	free := ratelimit.DefaultPolicies()["free"]
	ctx := context.Background()
	for i := range 1000 {
		m.Allow(ctx, strconv.Itoa(i), free)
	}
	for range 60 {
		m.Allow(ctx, "busy", free)
	}
	is.Equal(sweep(t, m), 1001) // nothing is full yet
	clk.Advance(2 * time.Second)
	is.Equal(sweep(t, m), 1) // one request refills in 1 s; "busy" needs a minute
	for range 2 {            // two seconds refilled two requests
		d, _ := m.Allow(ctx, "busy", free)
		is.True(d.Allowed)
	}
	d, _ := m.Allow(ctx, "busy", free)
	is.True(!d.Allowed) // eviction lost nothing
	clk.Advance(time.Minute)
	is.Equal(sweep(t, m), 0)
}

func ExampleMemory_Allow() {
	m := ratelimit.NewMemory(nil)
	p := ratelimit.Policy{Name: "tiny", PerMinute: 2}
	for range 3 {
		d, _ := m.Allow(context.Background(), "key_1", p)
		fmt.Println(d.Allowed, d.Remaining)
	}
	// Output:
	// true 1
	// true 0
	// false 0
}

// BenchmarkAllow10kKeys: Memory.Allow cycling over 10,000 keys against bare
// x/time/rate Limiter.Allow on 10,000 pre-made limiters (no lookup, no
// eviction), timed in the same run.
func BenchmarkAllow10kKeys(b *testing.B) {
	const n = 10_000
	keys := make([]string, n)
	bare := make([]*rate.Limiter, n)
	for i := range keys {
		keys[i] = "key_" + strconv.Itoa(i)
		bare[i] = rate.NewLimiter(rate.Limit(5000.0/60), 6500)
	}
	m := ratelimit.NewMemory(nil)
	p := ratelimit.DefaultPolicies()["pro"]
	ctx := context.Background()
	i, j := 0, 0
	for b.Loop() {
		m.Allow(ctx, keys[i%n], p)
		i++
	}
	benchratio.Report(b, func() { bare[j%n].Allow(); j++ })
}

func sweep(t *testing.T, m *ratelimit.Memory) int {
	n, err := m.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMemoryConformance(t *testing.T) {
	storetest.RunLimiter(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter { return ratelimit.NewMemory(now) })
}

// heapMB is the live heap after a full collection.
func heapMB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// BenchmarkMemory1MKeys fills a limiter with one million keys, lets them go
// idle and sweeps: it reports the heap the buckets hold while busy
// (MB_busy), after eviction (MB_after_sweep, the bound for idle keys), and
// what a map of one million bare x/time/rate limiters holds for comparison
// (MB_bare_rate_limiters), all measured in this run. Run it with
// -benchtime=1x.
func BenchmarkMemory1MKeys(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	p := ratelimit.DefaultPolicies()["pro"]
	var busy, after, bare float64
	for b.Loop() {
		clock := testclock.New(time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC))
		base := heapMB()
		m := ratelimit.NewMemory(clock.Now)
		for i := range n {
			m.Allow(ctx, "key_"+strconv.Itoa(i), p)
		}
		busy = heapMB() - base
		clock.Advance(time.Minute)
		if left, _ := m.Sweep(ctx); left != 0 {
			b.Fatalf("%d keys left after they all went idle", left)
		}
		after = heapMB() - base
		runtime.KeepAlive(m)

		base = heapMB()
		lims := make(map[string]*rate.Limiter, n)
		for i := range n {
			l := rate.NewLimiter(rate.Limit(5000.0/60), 6500)
			l.Allow()
			lims["key_"+strconv.Itoa(i)] = l
		}
		bare = heapMB() - base
		runtime.KeepAlive(lims)
	}
	b.ReportMetric(busy, "MB_busy")
	b.ReportMetric(after, "MB_after_sweep")
	b.ReportMetric(bare, "MB_bare_rate_limiters")
}
