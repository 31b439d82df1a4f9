package webhooks

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"
)

// maxBatch bounds how many calls share one store write.
const maxBatch = 256

// A leader for submitted calls lingers lingerFor before a write of fewer
// than maxBatch/4 calls, none of whose callers waits, if the last write
// had lingerAbove or more: under load, fewer and larger writes (measured on
// PostgreSQL: 16 items per write without, 45 with; throughput up about a
// third), while a lone call at low load is written at once.
const (
	lingerAbove = 8
	lingerFor   = 2 * time.Millisecond
)

// batcher group-commits concurrent calls: a call made while no write is in
// flight writes at once, alone; calls made while one is in flight queue,
// and the next write takes all of them (up to maxBatch). The caller whose
// write ends hands the lead to the first queued caller, so no goroutine
// runs while nothing is queued. A submitted call (submit) waits for
// nobody: when it would lead, or the lead passes to it, a goroutine leads
// in its place until the lead can pass to a waiting caller or nothing is
// queued.
type batcher[In, Out any] struct {
	// write writes ins and returns one Out per In.
	write func(ctx context.Context, ins []In) ([]Out, error)

	mu      sync.Mutex
	queue   []*batchCall[In, Out]
	writing bool // a caller leads: it writes, or is about to
	last    int  // size of the last write
	linger  time.Duration
}

type batchCall[In, Out any] struct {
	in   In
	out  Out
	err  error
	done bool          // out and err are set (written before wake is sent)
	wake chan struct{} // done, or the lead handed to this call; nil if submitted
	then func(Out, error)
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
	b.passLead(ctx)
	return c.out, c.err
}

// submit adds in to the next write without waiting for it: then is called
// with its result once written, by the goroutine that wrote it, so it must
// be quick (and start a goroutine for anything slow). The write is made
// with ctx's values, never cancelled by it.
func (b *batcher[In, Out]) submit(ctx context.Context, in In, then func(Out, error)) {
	c := &batchCall[In, Out]{in: in, then: then}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := !b.writing
	b.writing = true
	b.mu.Unlock()
	if lead {
		go b.lead(context.WithoutCancel(ctx))
	}
}

// lead writes for submitted calls until the lead passes on. Under load
// (the last write was not small) it lingers briefly before a small write,
// so that the calls coming in join it.
func (b *batcher[In, Out]) lead(ctx context.Context) {
	b.mu.Lock()
	linger := b.last >= lingerAbove && len(b.queue) < maxBatch/4 && !b.waiting()
	b.mu.Unlock()
	if linger {
		time.Sleep(cmp.Or(b.linger, lingerFor))
	}
	b.flush(ctx)
	b.passLead(ctx)
}

// waiting reports whether a queued call's caller waits for it (do): the
// leader does not linger then. b.mu is held.
func (b *batcher[In, Out]) waiting() bool {
	for _, c := range b.queue {
		if c.wake != nil {
			return true
		}
	}
	return false
}

// passLead is called by the leader once its write is done: the lead ends
// if nothing is queued, passes to the first queued call if its caller
// waits, or else (a submitted call) to a goroutine.
func (b *batcher[In, Out]) passLead(ctx context.Context) {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.writing = false
		b.mu.Unlock()
		return
	}
	next := b.queue[0]
	b.mu.Unlock()
	if next.wake != nil {
		next.wake <- struct{}{}
		return
	}
	go b.lead(context.WithoutCancel(ctx))
}

// flush writes the queued calls (up to maxBatch, oldest first) and wakes
// every other one of them with its result. A panicking write fails the
// batch with an error; the batch's callers are never left waiting.
func (b *batcher[In, Out]) flush(ctx context.Context) {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.last = n
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
		if c.then != nil {
			c.then(c.out, c.err)
		} else {
			c.wake <- struct{}{} // buffered: the leader's own is never read
		}
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
