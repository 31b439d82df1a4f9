package webhooks

import (
	"context"
	"fmt"
	"sync"
)

// maxBatch bounds how many calls share one store write.
const maxBatch = 256

// batcher group-commits concurrent calls: a call made while no write is in
// flight writes at once, alone; calls made while one is in flight queue,
// and the next write takes all of them (up to maxBatch). The caller whose
// write ends hands the lead to the first queued caller, so no goroutine
// runs while nothing is queued, and none is started.
type batcher[In, Out any] struct {
	// write writes ins and returns one Out per In.
	write func(ctx context.Context, ins []In) ([]Out, error)

	mu      sync.Mutex
	queue   []*batchCall[In, Out]
	writing bool // a caller leads: it writes, or is about to
}

type batchCall[In, Out any] struct {
	in   In
	out  Out
	err  error
	done bool          // out and err are set (written before wake is sent)
	wake chan struct{} // done, or the lead handed to this call
}

// do adds in to the next write and returns its result. ctx is the write's
// context when this call leads it.
func (b *batcher[In, Out]) do(ctx context.Context, in In) (Out, error) {
	c := &batchCall[In, Out]{in: in, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := !b.writing
	b.writing = true
	b.mu.Unlock()
	if !lead {
		<-c.wake
		if c.done {
			return c.out, c.err
		}
	}
	// Leading: write until c is written, then hand the lead on.
	for !c.done {
		b.flush(ctx)
	}
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.writing = false
		b.mu.Unlock()
	} else {
		next := b.queue[0]
		b.mu.Unlock()
		next.wake <- struct{}{}
	}
	return c.out, c.err
}

// flush writes the queued calls (up to maxBatch, oldest first) and wakes
// every other one of them with its result. A panicking write fails the
// batch with an error; the batch's callers are never left waiting.
func (b *batcher[In, Out]) flush(ctx context.Context) {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()
	ins := make([]In, n)
	for i, c := range batch {
		ins[i] = c.in
	}
	outs, err := b.safeWrite(ctx, ins)
	if err == nil && len(outs) != n {
		err = fmt.Errorf("webhooks: store returned %d results for %d items", len(outs), n)
	}
	for i, c := range batch {
		if err != nil {
			c.err = err
		} else {
			c.out = outs[i]
		}
		c.done = true
		c.wake <- struct{}{} // buffered: the leader's own is never read
	}
}

func (b *batcher[In, Out]) safeWrite(ctx context.Context, ins []In) (outs []Out, err error) {
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, fmt.Errorf("webhooks: store panicked: %v", r)
		}
	}()
	return b.write(ctx, ins)
}
