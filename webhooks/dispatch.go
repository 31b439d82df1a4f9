package webhooks

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Run's deliveries flow through a dispatcher. A due job is claimed ahead of
// its POST, so that claims share store writes in batches as large as the
// backlog instead of as the number of senders: the queue's workers only
// hand jobs over (a job whose endpoint, or the dispatcher, holds all the
// claims it may is parked here, in order), and Concurrency senders POST
// the claimed deliveries, earliest lease first, at most PerEndpoint to one
// endpoint at a time. Parked jobs are claimed as room frees, the endpoints
// taking turns.
//
// A claim ahead should be sent within its lease: Concurrency × (Lease /
// Timeout) claims are held in all (at most 1,024), PerEndpoint × (Lease /
// Timeout) by one endpoint, so that the last of them starts in time even
// if every POST ahead of it takes the whole Timeout. A claim whose lease
// has less than half a Timeout left when its turn comes is given back
// unsent, and a POST ends a tenth of a Timeout before its lease does, so
// that its outcome is written while the lease still holds.

// maxParked bounds the jobs parked for endpoints holding all their claims;
// beyond it, jobs go back to the queue for a second.
const maxParked = 100_000

// maxHeld bounds the claims held in all (payloads are in memory).
const maxHeld = 1024

// endpointState is the dispatcher's view of one endpoint.
type endpointState struct {
	id       int64
	parked   []Job    // due, not claimed yet: waiting for room
	waiting  []*Claim // claimed, waiting for a sender, in lease order
	held     int      // being claimed, waiting or being sent
	sending  int
	index    int // in the ready heap; -1 when not in it
	inParked bool
}

type dispatcher struct {
	mu        sync.Mutex
	cond      sync.Cond // a claim is ready, or the dispatcher stopped
	eps       map[int64]*endpointState
	ids       map[int64]struct{} // deliveries parked or held: a repeat job is dropped
	ready     readyHeap          // endpoints with a waiting claim and a free sending slot
	parkedEps []*endpointState   // endpoints with parked jobs; the one served goes last
	held      int
	parked    int
	stopped   bool
	perEP     int // claims an endpoint may hold
	total     int // claims all endpoints may hold
	perSend   int // POSTs to one endpoint at a time
}

func (s *Service) newDispatcher() *dispatcher {
	ahead := max(1, int(s.cfg.Lease/s.cfg.Timeout))
	d := &dispatcher{eps: map[int64]*endpointState{}, ids: map[int64]struct{}{},
		total: min(s.cfg.Concurrency*ahead, maxHeld), perSend: s.cfg.PerEndpoint}
	d.perEP = min(s.cfg.PerEndpoint*ahead, d.total)
	d.cond.L = &d.mu
	return d
}

// runDispatch runs the queue's workers and the senders until ctx ends (or
// the queue stops), then gives back the claims not sent and queues the
// parked jobs again (a durable queue keeps them). Outcomes may still be
// unwritten when it returns.
func (s *Service) runDispatch(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := s.newDispatcher()
	var senders sync.WaitGroup
	for range s.cfg.Concurrency {
		senders.Go(func() { s.sender(ctx, d) })
	}
	stop := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.stopped = true
		d.mu.Unlock()
		d.cond.Broadcast()
	})
	defer stop()
	err := s.cfg.Queue.Run(ctx, func(ctx context.Context, j Job) time.Duration { return s.take(ctx, d, j) })
	cancel() // a queue that returned early stops the senders too
	senders.Wait()
	d.mu.Lock()
	var left []*Claim
	var parked []Job
	for _, e := range d.eps {
		left = append(left, e.waiting...)
		parked = append(parked, e.parked...)
		e.waiting, e.parked = nil, nil
	}
	d.mu.Unlock()
	for _, c := range left {
		s.giveBack(ctx, c)
	}
	if len(parked) > 0 {
		if err := s.cfg.Queue.Enqueue(context.WithoutCancel(ctx), parked...); err != nil {
			s.cfg.Logger.WarnContext(ctx, "webhooks: parked jobs not queued again; the sweep will deliver", "error", err)
		}
	}
	return err
}

// take is the queue's work: it claims job j, or parks it while its
// endpoint (or the dispatcher) holds all the claims it may.
func (s *Service) take(ctx context.Context, d *dispatcher, j Job) time.Duration {
	d.mu.Lock()
	if _, dup := d.ids[j.DeliveryID]; dup {
		d.mu.Unlock()
		return 0
	}
	if d.stopped || d.parked >= maxParked {
		d.mu.Unlock()
		return time.Second // back to the queue
	}
	e := d.eps[j.EndpointID]
	if e == nil {
		e = &endpointState{id: j.EndpointID, index: -1}
		d.eps[j.EndpointID] = e
	}
	d.ids[j.DeliveryID] = struct{}{}
	if len(e.parked) == 0 && e.held < d.perEP && d.held < d.total {
		e.held++
		d.held++
		d.mu.Unlock()
		s.claimAhead(ctx, d, e, j)
		return 0
	}
	e.parked = append(e.parked, j)
	d.parked++
	if !e.inParked {
		e.inParked = true
		d.parkedEps = append(d.parkedEps, e)
	}
	d.mu.Unlock()
	return 0
}

// claimAhead submits the claim of j (already counted as held by e) to the
// claims' write lane; the claimed delivery waits for a sender.
func (s *Service) claimAhead(ctx context.Context, d *dispatcher, e *endpointState, j Job) {
	s.running.Add(1)
	s.claims.submit(ctx, storeOp{claim: j.DeliveryID}, func(r opResult, err error) {
		defer s.running.Done()
		if err == nil {
			err = r.err
		}
		if err != nil {
			s.cfg.Logger.ErrorContext(ctx, "webhooks: claim failed; the sweep will retry", "delivery_id", j.DeliveryID, "error", err)
		}
		d.mu.Lock()
		switch {
		case r.claim == nil || err != nil: // not due, leased elsewhere, or gone
			jobs := s.release(d, e, j.DeliveryID)
			d.mu.Unlock()
			s.claimAll(ctx, d, jobs)
		case d.stopped:
			d.mu.Unlock()
			s.running.Add(1) // before this claim's Done: Run keeps waiting
			go func() {
				defer s.running.Done()
				s.giveBack(ctx, r.claim)
			}()
		default:
			e.waiting = append(e.waiting, r.claim)
			d.fix(e)
			d.mu.Unlock()
			d.cond.Signal()
		}
	})
}

func (s *Service) claimAll(ctx context.Context, d *dispatcher, jobs []Job) {
	for _, j := range jobs {
		d.mu.Lock()
		e := d.eps[j.EndpointID]
		d.mu.Unlock()
		s.claimAhead(ctx, d, e, j)
	}
}

// fix puts e in the ready heap, or takes it out, or moves it, after its
// waiting claims or its sending count changed. d.mu is held.
func (d *dispatcher) fix(e *endpointState) {
	ready := len(e.waiting) > 0 && e.sending < d.perSend
	switch {
	case ready && e.index < 0:
		heap.Push(&d.ready, e)
	case ready:
		heap.Fix(&d.ready, e.index)
	case e.index >= 0:
		heap.Remove(&d.ready, e.index)
	}
}

// release forgets a claim of e that ended (sent, given back or not
// claimed) and returns the parked jobs that may now be claimed, already
// counted as held: one at a time from the first endpoint with room, which
// then goes last, so that endpoints take turns. d.mu is held.
func (s *Service) release(d *dispatcher, e *endpointState, deliveryID int64) []Job {
	e.held--
	d.held--
	delete(d.ids, deliveryID)
	var jobs []Job
	for !d.stopped && d.held < d.total {
		i := 0
		for i < len(d.parkedEps) && d.parkedEps[i].held >= d.perEP {
			i++
		}
		if i == len(d.parkedEps) {
			break
		}
		p := d.parkedEps[i]
		jobs = append(jobs, p.parked[0])
		p.parked[0] = Job{}
		p.parked = p.parked[1:]
		p.held++
		d.held++
		d.parked--
		copy(d.parkedEps[i:], d.parkedEps[i+1:])
		d.parkedEps = d.parkedEps[:len(d.parkedEps)-1]
		if len(p.parked) > 0 {
			d.parkedEps = append(d.parkedEps, p)
		} else {
			p.inParked = false
		}
	}
	if e.held == 0 && len(e.parked) == 0 {
		delete(d.eps, e.id)
	}
	return jobs
}

// sender POSTs ready claims until the dispatcher stops.
func (s *Service) sender(ctx context.Context, d *dispatcher) {
	for {
		d.mu.Lock()
		for len(d.ready) == 0 && !d.stopped {
			d.cond.Wait()
		}
		if d.stopped {
			d.mu.Unlock()
			return
		}
		e := d.ready[0]
		c := e.waiting[0]
		e.waiting[0] = nil
		e.waiting = e.waiting[1:]
		e.sending++
		d.fix(e)
		d.mu.Unlock()

		did := c.Delivery.ID // c is the write lane's once handed over
		if err := s.send1(ctx, c); err != nil && ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "webhooks: attempt failed", "delivery_id", did, "error", err)
		}

		d.mu.Lock()
		e.sending--
		d.fix(e)
		jobs := s.release(d, e, did)
		d.mu.Unlock()
		d.cond.Signal()
		s.claimAll(ctx, d, jobs)
	}
}

// send1 makes the attempt of claim c, or gives c back unsent if Run is
// stopping or c's lease ran short while it waited.
func (s *Service) send1(ctx context.Context, c *Claim) error {
	left := c.Delivery.LockedUntil.Sub(s.cfg.Now())
	if ctx.Err() != nil || left < s.cfg.Timeout/2 {
		s.giveBack(ctx, c)
		return nil
	}
	return s.deliver(ctx, c, min(s.cfg.Timeout, left-s.cfg.Timeout/10), true)
}

// giveBack ends claim c without an attempt: the lease is cleared and the
// claim's count of attempts undone; the delivery is queued again once that
// is written.
func (s *Service) giveBack(ctx context.Context, c *Claim) {
	d := c.Delivery
	d.Attempt--
	s.finish(ctx, Finish{Delivery: &d}, "", true)
}

// readyHeap orders endpoints by the lease of their first waiting claim
// (ties by delivery id): the claim whose lease ends first is sent first.
type readyHeap []*endpointState

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	a, b := &h[i].waiting[0].Delivery, &h[j].waiting[0].Delivery
	if !a.LockedUntil.Equal(*b.LockedUntil) {
		return a.LockedUntil.Before(*b.LockedUntil)
	}
	return a.ID < b.ID
}
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *readyHeap) Push(x any) {
	e := x.(*endpointState)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *readyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
