package webhooks

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatcherGroupsConcurrentCalls: calls made while a write is in flight
// share the next write, every caller gets its own result, and nothing is
// left running once they return.
func TestBatcherGroupsConcurrentCalls(t *testing.T) {
	var writes atomic.Int64
	var maxSize atomic.Int64
	release := make(chan struct{})
	var first sync.Once
	b := batcher[int, int]{write: func(_ context.Context, ins []int) ([]int, error) {
		writes.Add(1)
		if n := int64(len(ins)); n > maxSize.Load() {
			maxSize.Store(n)
		}
		first.Do(func() { <-release }) // hold the first write while the rest queue
		out := make([]int, len(ins))
		for i, x := range ins {
			out[i] = x * 10
		}
		return out, nil
	}}
	const n = 50
	var wg sync.WaitGroup
	started := make(chan struct{}, n)
	for i := range n {
		wg.Go(func() {
			started <- struct{}{}
			got, err := b.do(t.Context(), i)
			if err != nil || got != i*10 {
				t.Errorf("do(%d) = %d, %v; want %d", i, got, err, i*10)
			}
		})
	}
	for range n {
		<-started
	}
	time.Sleep(50 * time.Millisecond) // let them queue behind the held write
	close(release)
	wg.Wait()
	if w := writes.Load(); w > 3 || maxSize.Load() < n-1 {
		t.Errorf("%d calls took %d writes (largest %d); want the ones queued behind the first to share one", n, w, maxSize.Load())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.writing || len(b.queue) != 0 {
		t.Errorf("after every call returned: writing %v, %d queued; want idle", b.writing, len(b.queue))
	}
}

// TestBatcherSurvivesAPanickingWrite: a write that panics fails its batch
// with an error, no caller is stranded, and the next call writes again.
func TestBatcherSurvivesAPanickingWrite(t *testing.T) {
	var panicking atomic.Bool
	panicking.Store(true)
	b := batcher[int, int]{write: func(_ context.Context, ins []int) ([]int, error) {
		if panicking.Load() {
			time.Sleep(5 * time.Millisecond)
			panic("store exploded")
		}
		return make([]int, len(ins)), nil
	}}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 20 {
		wg.Go(func() {
			if _, err := b.do(t.Context(), i); err != nil {
				failed.Add(1)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callers stranded after a panicking write")
	}
	if failed.Load() != 20 {
		t.Errorf("%d of 20 callers saw the panic as an error, want all", failed.Load())
	}
	panicking.Store(false)
	if _, err := b.do(t.Context(), 1); err != nil {
		t.Errorf("a call after the panics: %v", err)
	}
}

// TestBatcherRefusesAShortAnswer: a write returning fewer results than
// items fails the batch instead of misattributing results.
func TestBatcherRefusesAShortAnswer(t *testing.T) {
	b := batcher[int, int]{write: func(context.Context, []int) ([]int, error) { return nil, nil }}
	if _, err := b.do(t.Context(), 1); err == nil {
		t.Error("a write without results succeeded")
	}
	boom := errors.New("boom")
	b.write = func(context.Context, []int) ([]int, error) { return nil, boom }
	if _, err := b.do(t.Context(), 1); !errors.Is(err, boom) {
		t.Errorf("a failing write: %v, want its error", err)
	}
}

// Under load (the last write was not small) a submitted call's write
// lingers, and the calls submitted meanwhile join it; at low load it is
// written at once, alone.
func TestBatcherLingersUnderLoad(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	wrote := make(chan struct{}, 8)
	b := batcher[int, int]{linger: time.Second, write: func(_ context.Context, ins []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(ins))
		mu.Unlock()
		wrote <- struct{}{}
		return make([]int, len(ins)), nil
	}}
	var done sync.WaitGroup
	submit := func(n int) {
		for range n {
			done.Add(1)
			b.submit(context.Background(), 1, func(int, error) { done.Done() })
		}
	}
	start := time.Now()
	submit(1) // idle: written at once
	<-wrote
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Errorf("a lone call at low load waited %v", waited)
	}
	done.Wait()
	b.mu.Lock()
	b.last = lingerAbove // as after a write under load
	b.mu.Unlock()
	submit(1) // leads, and lingers ...
	time.Sleep(50 * time.Millisecond)
	submit(2) // ... so these join its write
	<-wrote
	done.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 3 {
		t.Errorf("write sizes %v, want [1 3]", sizes)
	}
}
