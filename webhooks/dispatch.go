package webhooks

import (
	"context"
	"sync"
	"time"
)

// Run's deliveries flow through a dispatcher. A due job is claimed ahead of
// its POST, so that claims share store writes in batches as large as the
// backlog instead of as the number of senders: the queue's workers only
// hand jobs over (a job whose endpoint holds all the claims it may is
// parked here, in order), and Concurrency senders POST the claimed
// deliveries, round robin across endpoints, at most PerEndpoint to one
// endpoint at a time.
//
// A claim ahead must be sent within its lease: an endpoint holds at most
// PerEndpoint × (Lease / Timeout) claims, so that the last of them starts
// before its lease runs short even if every POST ahead of it takes the
// whole Timeout; a claim whose lease has less than half a Timeout left
// when its turn comes is given back unsent, and no POST outlives its lease.

// maxParked bounds the jobs parked for endpoints holding all their claims;
// beyond it, jobs go back to the queue for a second.
const maxParked = 100_000

// maxHeld bounds the claims held in all (payloads are in memory).
const maxHeld = 1024

// endpointState is the dispatcher's view of one endpoint.
type endpointState struct {
	parked   []Job    // due, not claimed yet: waiting for room
	waiting  []*Claim // claimed, waiting for a sender
	held     int      // being claimed, waiting or being sent
	sending  int
	inReady  bool
	inParked bool
}

type dispatcher struct {
	mu        sync.Mutex
	cond      sync.Cond // a claim is ready, or the dispatcher stopped
	eps       map[int64]*endpointState
	ids       map[int64]struct{} // deliveries parked or held: a repeat job is dropped
	ready     []int64            // endpoints with a waiting claim and a free sending slot
	parkedEps []int64            // endpoints with parked jobs
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

// runDispatch runs the queue's workers and the senders until ctx ends,
// then gives back the claims not sent. Outcomes may still be unwritten.
func (s *Service) runDispatch(ctx context.Context) error {
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
	senders.Wait()
	d.mu.Lock()
	var left []*Claim
	for _, e := range d.eps {
		left = append(left, e.waiting...)
		e.waiting = nil
	}
	d.mu.Unlock()
	for _, c := range left {
		s.giveBack(ctx, c)
	}
	return err
}

// take is the queue's work: it claims job j, or parks it while its
// endpoint (or the dispatcher) holds all the claims it may.
func (s *Service) take(ctx context.Context, d *dispatcher, j Job) time.Duration {
	d.mu.Lock()
	if _, dup := d.ids[j.DeliveryID]; dup || d.stopped {
		d.mu.Unlock()
		return 0
	}
	e := d.endpoint(j.EndpointID)
	if len(e.parked) == 0 && e.held < d.perEP && d.held < d.total {
		e.held++
		d.held++
		d.ids[j.DeliveryID] = struct{}{}
		d.mu.Unlock()
		s.claimAhead(ctx, d, j)
		return 0
	}
	if d.parked >= maxParked {
		d.mu.Unlock()
		return time.Second
	}
	e.parked = append(e.parked, j)
	d.parked++
	d.ids[j.DeliveryID] = struct{}{}
	if !e.inParked {
		e.inParked = true
		d.parkedEps = append(d.parkedEps, j.EndpointID)
	}
	d.mu.Unlock()
	return 0
}

func (d *dispatcher) endpoint(id int64) *endpointState {
	e := d.eps[id]
	if e == nil {
		e = &endpointState{}
		d.eps[id] = e
	}
	return e
}

// claimAhead submits the claim of j (already counted as held) to the write
// lane; the claimed delivery waits for a sender.
func (s *Service) claimAhead(ctx context.Context, d *dispatcher, j Job) {
	s.running.Add(1)
	s.claims.submit(ctx, storeOp{claim: j.DeliveryID}, func(r opResult, err error) {
		if err == nil {
			err = r.err
		}
		if err != nil {
			s.cfg.Logger.ErrorContext(ctx, "webhooks: claim failed; the sweep will retry", "delivery_id", j.DeliveryID, "error", err)
		}
		d.mu.Lock()
		switch {
		case r.claim == nil || err != nil: // not due, leased elsewhere, or gone
			jobs := s.release(d, j.EndpointID, j.DeliveryID)
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
			e := d.eps[j.EndpointID]
			e.waiting = append(e.waiting, r.claim)
			d.makeReady(j.EndpointID, e)
			d.mu.Unlock()
			d.cond.Signal()
		}
		s.running.Done()
	})
}

func (s *Service) claimAll(ctx context.Context, d *dispatcher, jobs []Job) {
	for _, j := range jobs {
		s.claimAhead(ctx, d, j)
	}
}

// makeReady puts endpoint id in the senders' round if it has a waiting
// claim and a free sending slot. d.mu is held.
func (d *dispatcher) makeReady(id int64, e *endpointState) {
	if !e.inReady && len(e.waiting) > 0 && e.sending < d.perSend {
		e.inReady = true
		d.ready = append(d.ready, id)
	}
}

// release forgets a claim that ended (sent, given back or not claimed) and
// returns the parked jobs that may now be claimed, round robin across
// endpoints, already counted as held. d.mu is held.
func (s *Service) release(d *dispatcher, endpointID, deliveryID int64) []Job {
	e := d.eps[endpointID]
	e.held--
	d.held--
	delete(d.ids, deliveryID)
	var jobs []Job
	for d.held < d.total && len(d.parkedEps) > 0 {
		took := false
		eps := d.parkedEps[:0]
		for _, id := range d.parkedEps {
			p := d.eps[id]
			if d.held < d.total && p.held < d.perEP {
				jobs = append(jobs, p.parked[0])
				p.parked[0] = Job{}
				p.parked = p.parked[1:]
				p.held++
				d.held++
				d.parked--
				took = true
			}
			if len(p.parked) > 0 {
				eps = append(eps, id)
			} else {
				p.inParked = false
			}
		}
		clear(d.parkedEps[len(eps):])
		d.parkedEps = eps
		if !took {
			break
		}
	}
	if e.held == 0 && len(e.parked) == 0 {
		delete(d.eps, endpointID)
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
		id := d.ready[0]
		d.ready[0] = 0
		d.ready = d.ready[1:]
		e := d.eps[id]
		e.inReady = false
		c := e.waiting[0]
		e.waiting[0] = nil
		e.waiting = e.waiting[1:]
		e.sending++
		d.makeReady(id, e) // back of the round: endpoints take turns
		d.mu.Unlock()

		did := c.Delivery.ID // c is the write lane's once handed over
		if err := s.send1(ctx, c); err != nil && ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "webhooks: attempt failed", "delivery_id", did, "error", err)
		}

		d.mu.Lock()
		e.sending--
		d.makeReady(id, e)
		jobs := s.release(d, id, did)
		d.mu.Unlock()
		d.cond.Signal()
		s.claimAll(ctx, d, jobs)
	}
}

// send1 makes the attempt of claim c, or gives c back unsent if its lease
// has run short while it waited.
func (s *Service) send1(ctx context.Context, c *Claim) error {
	left := c.Delivery.LockedUntil.Sub(s.cfg.Now())
	if left < s.cfg.Timeout/2 {
		s.giveBack(ctx, c)
		return nil
	}
	return s.deliver(ctx, c, min(left, s.cfg.Timeout), true)
}

// giveBack ends claim c without an attempt: the lease is cleared and the
// claim's count of attempts undone; the delivery is queued again once that
// is written.
func (s *Service) giveBack(ctx context.Context, c *Claim) {
	d := c.Delivery
	d.Attempt--
	s.finish(ctx, Finish{Delivery: &d}, "", true)
}
