package webhooks

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Job asks for an attempt of one delivery at At. Jobs only name the
// delivery: its row is the truth, and an attempt claims the row first, so a
// job run twice, late or after the delivery finished does nothing. Jobs of
// the same delivery and At are one job: a queue should drop the repeat
// while the first is waiting or running (the sweep enqueues whatever is
// due, however often it runs).
type Job struct {
	DeliveryID int64
	EndpointID int64
	At         time.Time
}

// Work runs one job. A positive result asks for the job to run again after
// that long (its endpoint was busy).
type Work func(ctx context.Context, j Job) (again time.Duration)

// Queue schedules jobs and runs them. MemoryQueue is the in-process
// adapter; adapters/riverqueue the durable one.
type Queue interface {
	Enqueue(ctx context.Context, jobs ...Job) error
	// Run hands due jobs to work, concurrently, until ctx ends.
	Run(ctx context.Context, work Work) error
}

// MemoryQueueConfig configures a MemoryQueue.
type MemoryQueueConfig struct {
	Workers int              // concurrent jobs (default 16)
	Now     func() time.Time // the clock jobs are due by (default time.Now)
	// MaxWait bounds how long an idle worker sleeps before looking at the
	// clock again (default 1 s); tests with an injected clock lower it.
	MaxWait time.Duration
}

// MemoryQueue is an in-process Queue: a timer heap and a worker pool. Jobs
// are lost with the process; the delivery rows are not, and the sweep
// queues them again.
type MemoryQueue struct {
	cfg    MemoryQueueConfig
	mu     sync.Mutex
	jobs   jobHeap
	queued map[int64]time.Time // delivery → At of its live job
	wake   chan struct{}       // closed (and replaced) on every Enqueue
}

// NewMemoryQueue returns an empty MemoryQueue.
func NewMemoryQueue(cfg MemoryQueueConfig) *MemoryQueue {
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Second
	}
	return &MemoryQueue{cfg: cfg, queued: map[int64]time.Time{}, wake: make(chan struct{})}
}

// Enqueue adds jobs; a delivery already queued keeps its earlier job.
func (q *MemoryQueue) Enqueue(_ context.Context, jobs ...Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range jobs {
		if at, ok := q.queued[j.DeliveryID]; ok && !j.At.Before(at) {
			continue
		}
		q.queued[j.DeliveryID] = j.At
		heap.Push(&q.jobs, j)
	}
	close(q.wake)
	q.wake = make(chan struct{})
	return nil
}

// Len is the number of queued jobs.
func (q *MemoryQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queued)
}

// Run runs Workers workers until ctx ends.
func (q *MemoryQueue) Run(ctx context.Context, work Work) error {
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(func() {
			for {
				j, ok := q.next(ctx)
				if !ok {
					return
				}
				if again := work(ctx, j); again > 0 {
					j.At = q.cfg.Now().Add(again)
					q.Enqueue(ctx, j)
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// next waits for a due job.
func (q *MemoryQueue) next(ctx context.Context) (Job, bool) {
	// One timer for all the waits of this call (Reset drops a stale fire
	// since Go 1.23), made only if the call has to wait.
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		q.mu.Lock()
		now := q.cfg.Now()
		wait := q.cfg.MaxWait
		for len(q.jobs) > 0 {
			top := q.jobs[0]
			if at, ok := q.queued[top.DeliveryID]; !ok || !at.Equal(top.At) {
				heap.Pop(&q.jobs) // superseded by an earlier job, or already run
				continue
			}
			if !top.At.After(now) {
				heap.Pop(&q.jobs)
				delete(q.queued, top.DeliveryID)
				q.mu.Unlock()
				return top, true
			}
			wait = min(wait, top.At.Sub(now))
			break
		}
		wake := q.wake
		q.mu.Unlock()
		if t == nil {
			t = time.NewTimer(wait)
		} else {
			t.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return Job{}, false
		case <-wake:
		case <-t.C:
		}
	}
}

type jobHeap []Job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].At.Before(h[j].At) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(Job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	*h = old[:len(old)-1]
	return j
}
