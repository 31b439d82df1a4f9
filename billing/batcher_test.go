package billing

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revopsdev/revops/core"
)

// TestBatcherGroupsCalls drives the batcher with many concurrent calls of
// different sizes: every caller gets exactly its own events' answers, no
// write exceeds max unless one call alone does, and calls really are
// written together.
func TestBatcherGroupsCalls(t *testing.T) {
	var (
		mu     sync.Mutex
		writes [][]UsageEvent
	)
	b := batcher{parallel: 2, max: 50, limit: 1 << 20, write: func(_ context.Context, ev []UsageEvent) ([]bool, []int64, error) {
		mu.Lock()
		writes = append(writes, ev)
		mu.Unlock()
		time.Sleep(time.Millisecond) // a write takes a while, so calls queue
		added := make([]bool, len(ev))
		totals := make([]int64, len(ev))
		for i, e := range ev {
			added[i] = e.Quantity%2 == 0 // a verdict each caller can check
			totals[i] = e.Quantity * 10
		}
		return added, totals, nil
	}}
	const callers = 200
	var (
		wg   sync.WaitGroup
		sent atomic.Int64
	)
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			time.Sleep(time.Duration(c%11) * 200 * time.Microsecond) // arrivals spread out
			n := 1 + c%7
			if c == 99 {
				n = 120 // larger than max: written alone
			}
			sent.Add(int64(n))
			ev := make([]UsageEvent, n)
			for i := range ev {
				ev[i] = UsageEvent{EventID: fmt.Sprint(c, "-", i), Quantity: int64(c*1000 + i)}
			}
			added, totals, err := b.add(context.Background(), ev)
			if err != nil || len(added) != n || len(totals) != n {
				errs <- fmt.Errorf("caller %d: %d added, %d totals, %v", c, len(added), len(totals), err)
				return
			}
			for i := range ev {
				if added[i] != (ev[i].Quantity%2 == 0) || totals[i] != ev[i].Quantity*10 {
					errs <- fmt.Errorf("caller %d event %d: got another caller's answer", c, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total, grouped := 0, false
	for _, w := range writes {
		total += len(w)
		if len(w) > b.max && len(w) != 120 {
			t.Errorf("a write of %d events, max %d", len(w), b.max)
		}
		if len(w) > 7 && len(w) != 120 { // no single call is larger
			grouped = true
		}
	}
	if total != int(sent.Load()) {
		t.Errorf("%d events written, %d sent", total, sent.Load())
	}
	if !grouped {
		t.Error("no write held more than one call")
	}
	// The last flusher steps down just after answering its callers.
	for range 1000 {
		b.mu.Lock()
		flushing, pending, queued := b.flushing, len(b.pending), b.queued
		b.mu.Unlock()
		if flushing == 0 && pending == 0 && queued == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("after all calls the batcher still flushes")
}

// TestBatcherRefusesBeyondLimit: while the store stalls, calls queue up to
// the limit (events being written count); the next is refused at once, and
// the queued ones complete when the store comes back.
func TestBatcherRefusesBeyondLimit(t *testing.T) {
	release := make(chan struct{})
	b := batcher{parallel: 1, max: 10, limit: 30, write: func(_ context.Context, ev []UsageEvent) ([]bool, []int64, error) {
		<-release
		return make([]bool, len(ev)), nil, nil
	}}
	call := func(n int) chan error {
		done := make(chan error, 1)
		go func() {
			_, _, err := b.add(context.Background(), make([]UsageEvent, n))
			done <- err
		}()
		return done
	}
	waitQueued := func(want int) {
		t.Helper()
		for range 2000 {
			b.mu.Lock()
			q := b.queued
			b.mu.Unlock()
			if q == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("queued never reached %d", want)
	}
	first := call(10) // taken by the stalled write: in flight counts
	waitQueued(10)
	var queued []chan error
	for range 2 {
		queued = append(queued, call(10))
	}
	waitQueued(30)
	if err := <-call(1); err == nil || core.As(err).Code != core.CodeUnavailable {
		t.Fatalf("a call beyond the limit = %v, want service_unavailable", err)
	}
	close(release)
	for _, c := range append(queued, first) {
		if err := <-c; err != nil {
			t.Errorf("a queued call failed: %v", err)
		}
	}
}
