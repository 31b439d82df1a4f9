package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revopsdev/revops/internal/testclock"
	"github.com/revopsdev/revops/ratelimit"
)

// RunLimiter is the conformance suite of a ratelimit.Limiter: newLimiter
// returns an empty limiter reading clock, which each subtest owns.
func RunLimiter(t *testing.T, newLimiter func(t *testing.T, clock func() time.Time) ratelimit.Limiter) {
	setup := func(t *testing.T) (ratelimit.Limiter, *testclock.Clock) {
		c := testclock.New(time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC))
		return newLimiter(t, c.Now), c
	}
	ctx := context.Background()
	p := ratelimit.Policy{Name: "t", PerMinute: 60, Burst: 0.5} // capacity 90, one per second

	t.Run("CapacityThenRefill", func(t *testing.T) {
		l, clk := setup(t)
		for i := range 90 {
			d, err := l.Allow(ctx, "k", p)
			if err != nil || !d.Allowed {
				t.Fatalf("request %d of a fresh bucket of 90: %+v %v", i+1, d, err)
			}
			if d.Remaining != 89-i || d.Limit != 60 || d.Capacity != 90 {
				t.Fatalf("request %d: remaining %d limit %d capacity %d, want %d 60 90", i+1, d.Remaining, d.Limit, d.Capacity, 89-i)
			}
			if want := clk.Now().Add(time.Duration(i+1) * time.Second); !d.ResetAt.Equal(want) {
				t.Fatalf("request %d: reset at %v, want %v", i+1, d.ResetAt, want)
			}
			if !d.At.IsZero() && !d.At.Equal(clk.Now()) { // optional, but on the clock it was given
				t.Fatalf("request %d: decided at %v, want %v", i+1, d.At, clk.Now())
			}
		}
		d, err := l.Allow(ctx, "k", p)
		if err != nil || d.Allowed || d.Remaining != 0 || d.RetryAfter != time.Second {
			t.Fatalf("request 91: %+v %v, want denied with retry after 1s", d, err)
		}
		clk.Advance(999 * time.Millisecond)
		if d, _ := l.Allow(ctx, "k", p); d.Allowed {
			t.Fatalf("admitted 1ms before a request refilled: %+v", d)
		}
		clk.Advance(time.Millisecond)
		if d, _ := l.Allow(ctx, "k", p); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("not admitted once a request refilled: %+v", d)
		}
		if d, _ := l.Allow(ctx, "other", p); !d.Allowed || d.Remaining != 89 {
			t.Fatalf("buckets are not independent: %+v", d)
		}
	})

	t.Run("PeekSpendsNothing", func(t *testing.T) {
		l, _ := setup(t)
		d, err := l.Peek(ctx, "k", p)
		if err != nil || !d.Allowed || d.Remaining != 90 {
			t.Fatalf("peek of a fresh bucket: %+v %v", d, err)
		}
		for range 3 {
			l.Allow(ctx, "k", p)
		}
		for range 2 {
			if d, _ = l.Peek(ctx, "k", p); d.Remaining != 87 {
				t.Fatalf("peek after 3 requests: remaining %d, want 87", d.Remaining)
			}
		}
	})

	t.Run("SweepForgetsFullBuckets", func(t *testing.T) {
		l, clk := setup(t)
		l.Allow(ctx, "a", p)
		for range 30 {
			l.Allow(ctx, "b", p)
		}
		n, err := l.Sweep(ctx)
		if err != nil || n != 2 {
			t.Fatalf("sweep: %d %v, want 2 remaining", n, err)
		}
		clk.Advance(time.Second) // a is full again, b is not
		if n, _ = l.Sweep(ctx); n != 1 {
			t.Fatalf("sweep after 1s: %d remaining, want 1", n)
		}
		if d, _ := l.Peek(ctx, "b", p); d.Remaining != 61 {
			t.Fatalf("sweep changed a busy bucket: remaining %d, want 61", d.Remaining)
		}
	})

	t.Run("ConcurrentNeverOverdraws", func(t *testing.T) {
		l, _ := setup(t)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 12 {
					d, err := l.Allow(ctx, "hot", p)
					if err != nil {
						errs <- err
						return
					}
					if d.Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := admitted.Load(); n != 90 {
			t.Fatalf("192 concurrent requests on a frozen clock admitted %d, want exactly the capacity 90", n)
		}
	})

	t.Run("PolicyChange", func(t *testing.T) {
		l, _ := setup(t)
		for range 60 {
			l.Allow(ctx, "k", p)
		}
		small := ratelimit.Policy{Name: "small", PerMinute: 6} // window 60 s
		d, err := l.Allow(ctx, "k", small)
		if err != nil || d.Allowed {
			t.Fatalf("a bucket 60 s behind admitted under a 60 s window: %+v %v", d, err)
		}
	})
}

// CountShared runs the multi-instance counting check: instances (each a
// Limiter on the same shared state, with the real clock) hammer one key
// from 8 goroutines each for dur, starting from a drained bucket so that
// the rate, not the burst, is measured; the admitted count must be within
// 0.95–1.2× of the ideal PerMinute×elapsed.
func CountShared(t *testing.T, instances []ratelimit.Limiter, p ratelimit.Policy, dur time.Duration) {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("count-%d", time.Now().UnixNano())
	var admitted, attempts atomic.Int64
	for { // drain the bucket
		d, err := instances[0].Allow(ctx, key, p)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			break
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(instances))
	start := time.Now()
	for _, l := range instances {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < dur {
					d, err := l.Allow(ctx, key, p)
					if err != nil {
						errs <- err
						return
					}
					attempts.Add(1)
					if d.Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The ideal is over the window in which requests were offered: a call
	// still running after it (SQLite under -race can take 100 ms) would
	// otherwise stretch the window with time nobody could be admitted in.
	ideal := float64(p.PerMinute) * dur.Minutes()
	ratio := float64(admitted.Load()) / ideal
	t.Logf("%d instances, %d attempts in %v: admitted %d, ideal %.0f, ratio %.3f", len(instances), attempts.Load(), elapsed.Round(time.Millisecond), admitted.Load(), ideal, ratio)
	if attempts.Load() < 2*int64(ideal) {
		t.Fatalf("only %d attempts: the limiter was never saturated, the count proves nothing", attempts.Load())
	}
	if ratio < 0.95 || ratio > 1.2 {
		t.Fatalf("admitted %.3f× the ideal, want 0.95–1.2×", ratio)
	}
}
