package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/revopsdev/revops/core"
)

// CodeCannotRetry is spec 001's error of a manual retry that may not run.
const CodeCannotRetry core.Code = "cannot_retry"

// MaxResponseBody is how much of an answer's body a Sender keeps.
const MaxResponseBody = 1024

// maxRetryAfter caps a receiver's Retry-After.
const maxRetryAfter = 24 * time.Hour

// Run delivers until ctx ends: the queue's workers, and a sweep (at once,
// then every SweepInterval) that queues whatever is due and not leased.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var sweeping sync.WaitGroup
	defer sweeping.Wait()
	defer cancel() // a queue that stops by itself stops the sweep too
	sweeping.Go(func() {
		t := time.NewTicker(s.cfg.SweepInterval)
		defer t.Stop()
		for {
			s.Sweep(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	err := s.runDispatch(ctx)
	s.running.Wait() // every outcome handed to the write lane is written
	return err
}

// Sweep queues every due, unleased delivery (up to 1,000 per call).
func (s *Service) Sweep(ctx context.Context) (int, error) {
	ds, err := s.store.DueWebhookDeliveries(ctx, s.cfg.Now().UTC(), 1000)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "webhooks: sweep failed", "error", err)
		}
		return 0, err
	}
	s.enqueue(ctx, ds)
	return len(ds), nil
}

// Attempt claims delivery id if it is due, sends it and records the
// outcome: success, a retry on the schedule, or failure. A delivery that is
// not due or is leased by another worker is left alone. It takes two store
// writes, each shared with the attempts running at the same time (group
// commit): the claim (which brings the endpoint and event) and the finish.
// It returns once the outcome is written and its follow-ups (the retry
// queued, endpoint.disabled published) are done.
func (s *Service) Attempt(ctx context.Context, id int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := s.claim(ctx, id)
	if err != nil || c == nil {
		return err // not due, leased, or deleted with its endpoint
	}
	return s.deliver(ctx, c, s.cfg.Timeout, false)
}

// deliver makes the attempt of claim c, its POST bounded by timeout. When
// async, it returns once the POST is made: the outcome is handed to the
// write lane (waiting only while maxPending outcomes are unwritten), and
// its follow-ups run once it is written. Run waits for them before
// returning.
func (s *Service) deliver(ctx context.Context, c *Claim, timeout time.Duration, async bool) error {
	d, ep := &c.Delivery, &c.Endpoint
	if !ep.IsActive {
		// Nothing is sent; the claim still counts as an attempt.
		d.Status, d.NextAttemptAt, d.Error = StatusFailed, nil, "The endpoint is disabled."
		return s.finish(ctx, Finish{Delivery: d}, "", async)
	}
	r := s.send(ctx, ep, &c.Event, timeout)
	if async && r.Code == 0 && ctx.Err() != nil {
		// Run is stopping and cut the POST short: not an attempt that
		// failed, so it is given back (the receiver may have had it:
		// delivery is at least once).
		s.giveBack(ctx, c)
		return nil
	}
	now := s.cfg.Now().UTC()
	d.ResponseCode, d.ResponseBody, d.ResponseTimeMs, d.Error = r.Code, r.Body, r.TimeMs, r.Err
	success := r.Code >= 200 && r.Code < 300
	disable := ""
	switch {
	case success:
		d.Status, d.DeliveredAt, d.NextAttemptAt = StatusSuccess, &now, nil
	case r.Code == 410: // Gone
		disable = DisabledGone
	case ep.FailingSince != nil && now.Sub(*ep.FailingSince) >= s.cfg.DisableAfter:
		// FailingSince as read at the claim: a success finishing in the
		// meantime is not seen.
		disable = DisabledFailing
	}
	if !success {
		if disable != "" || d.Attempt >= s.MaxAttempts() {
			d.Status, d.NextAttemptAt = StatusFailed, nil
		} else {
			delay := s.cfg.Jitter(s.cfg.Schedule[d.Attempt])
			if r.RetryAfter > delay {
				delay = min(r.RetryAfter, maxRetryAfter)
			}
			next := now.Add(delay)
			d.Status, d.NextAttemptAt = StatusRetrying, &next
		}
	}
	f := Finish{Delivery: d, Outcome: &AttemptOutcome{Success: success, At: now, Disable: disable}}
	return s.finish(ctx, f, ep.URL, async)
}

// maxPending bounds the outcomes handed to the write lane and not yet
// written: an attempt ending while that many are pending waits for a slot.
const maxPending = maxBatch

// finish records an attempt's outcome, in a write shared with the attempts
// starting and ending at the same time, then runs its follow-ups: a retry
// is queued, a disabling publishes endpoint.disabled (url is the
// endpoint's). Async, it returns at once (or once a slot is free); the
// follow-ups run once the outcome is written (in a goroutine of their own
// when there are any), and their errors are logged.
func (s *Service) finish(ctx context.Context, f Finish, url string, async bool) error {
	ctx = context.WithoutCancel(ctx) // the POST was made: keep its outcome
	if !async {
		r, err := s.writes.do(ctx, storeOp{finish: f})
		if err == nil {
			err = r.err
		}
		return s.followUp(ctx, f, url, r.finish, err)
	}
	s.pending <- struct{}{}
	s.running.Add(1)
	s.writes.submit(ctx, storeOp{finish: f}, func(r opResult, err error) {
		<-s.pending
		if err == nil {
			err = r.err
		}
		if err == nil && (!r.finish.Done || (!due(f.Delivery) && !r.finish.Disabled)) {
			s.running.Done() // nothing follows
			return
		}
		go func() {
			defer s.running.Done()
			if err := s.followUp(ctx, f, url, r.finish, err); err != nil {
				s.cfg.Logger.ErrorContext(ctx, "webhooks: attempt failed", "delivery_id", f.Delivery.ID, "error", err)
			}
		}()
	})
	return nil
}

// followUp runs what follows a written outcome (res; err if not written).
func (s *Service) followUp(ctx context.Context, f Finish, url string, res FinishResult, err error) error {
	if err != nil || !res.Done {
		return err
	}
	d := f.Delivery
	if due(d) {
		s.enqueue(ctx, []Delivery{*d}) // a retry, or a claim given back
	}
	if res.Disabled {
		payload := map[string]any{"endpoint_id": d.EndpointID, "url": url, "reason": f.Outcome.Disable}
		if _, err := s.Publish(ctx, d.WorkspaceID, "endpoint.disabled", payload); err != nil {
			return fmt.Errorf("webhooks: endpoint %d disabled, but its event was not recorded: %w", d.EndpointID, err)
		}
	}
	return nil
}

// due: the delivery is to be attempted again.
func due(d *Delivery) bool { return d.Status == StatusRetrying || d.Status == StatusPending }

// storeOp is one attempt's share of a store write: a claim of delivery
// claim, or (claim 0) the finish of an attempt.
type storeOp struct {
	claim  int64
	finish Finish
}

// opResult is the answer to a storeOp: the claim (nil: not claimed), or the
// finish's result; err if its statement failed.
type opResult struct {
	claim  *Claim
	finish FinishResult
	err    error
}

// writeBatch writes one batch of ops: the finishes in one transaction,
// then the claims in one statement. The lease (Config.Lease) outlives an
// attempt's timeout: a worker that dies leaves the delivery to the sweep
// once it ends.
func (s *Service) writeBatch(ctx context.Context, ops []storeOp) ([]opResult, error) {
	out := make([]opResult, len(ops))
	var fs []Finish
	var fi, ids []int64
	for i, op := range ops {
		if op.claim != 0 {
			ids = append(ids, op.claim)
		} else {
			fs = append(fs, op.finish)
			fi = append(fi, int64(i))
		}
	}
	if len(fs) > 0 {
		// Written even once ctx ends (shutdown): the POSTs were made, and
		// their outcomes are worth keeping.
		res, err := s.store.FinishWebhookAttempts(context.WithoutCancel(ctx), fs)
		if err == nil && len(res) != len(fs) {
			err = fmt.Errorf("webhooks: FinishWebhookAttempts returned %d results for %d attempts", len(res), len(fs))
		}
		for j, i := range fi {
			if err != nil {
				out[i].err = err
			} else {
				out[i].finish = res[j]
			}
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	now := s.cfg.Now().UTC()
	cs, err := s.store.ClaimWebhookDeliveries(ctx, ids, now, now.Add(s.cfg.Lease))
	next := 0
	for i, op := range ops {
		if op.claim == 0 {
			continue
		}
		switch {
		case err != nil:
			out[i].err = err
		// Claims come in the order of ids, each id at most once: a repeat
		// (two jobs of one delivery in one batch) gets none.
		case next < len(cs) && cs[next].Delivery.ID == op.claim:
			out[i].claim = &cs[next]
			next++
		}
	}
	if err == nil && next != len(cs) {
		return nil, fmt.Errorf("webhooks: ClaimWebhookDeliveries returned claims not in the order of ids")
	}
	return out, nil
}

// claim leases delivery id, in a write shared with the attempts starting
// and ending at the same time; nil if it is not claimable.
func (s *Service) claim(ctx context.Context, id int64) (*Claim, error) {
	r, err := s.claims.do(ctx, storeOp{claim: id})
	if err == nil {
		err = r.err
	}
	return r.claim, err
}

// SendResult is the outcome of one POST to an endpoint (a Sender's answer).
type SendResult struct {
	Code       int    // 0 when nothing answered
	Body       string // truncated to MaxResponseBody
	TimeMs     int
	Err        string // why nothing (or a redirect) answered
	RetryAfter time.Duration
}

// Body is the JSON an endpoint receives for ev (Standard Webhooks shape).
func Body(ev *Event) []byte {
	b, _ := json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{ev.Type, ev.CreatedAt.UTC(), ev.Payload})
	return b
}

// send POSTs ev to ep, signed with its secret (and the previous one during
// a rotation's overlap).
func (s *Service) send(ctx context.Context, ep *Endpoint, ev *Event, timeout time.Duration) SendResult {
	body := Body(ev)
	now := s.cfg.Now()
	var keys [][]byte
	if k, err := ParseSecret(ep.Secret); err == nil {
		keys = append(keys, k)
	}
	if ep.PrevSecret != "" && ep.PrevSecretUntil != nil && now.Before(*ep.PrevSecretUntil) {
		if k, err := ParseSecret(ep.PrevSecret); err == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return SendResult{Err: "The endpoint's secret is unusable; rotate it."}
	}
	header := Headers(keys, ev.ID, now, body)
	header["Content-Type"] = "application/json"
	header["User-Agent"] = "revops-webhooks/1"
	if s.cfg.LegacyHeader != "" {
		header[s.cfg.LegacyHeader] = LegacySignature(keys[0], body)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.cfg.Sender.Send(ctx, ep.URL, header, body)
}

// Test sends a test event to the endpoint at once, outside the delivery
// log, and reports what happened (spec 001's test send).
func (s *Service) Test(ctx context.Context, workspaceID, id int64) (*Endpoint, SendResult, error) {
	ep, err := s.store.WebhookEndpoint(ctx, workspaceID, id)
	if err != nil {
		return nil, SendResult{}, err
	}
	ev := &Event{ID: NewEventID(), WorkspaceID: workspaceID, Type: "webhook.test", CreatedAt: s.cfg.Now().UTC(),
		Payload: json.RawMessage(`{"message":"This is a test event from revops."}`)}
	return ep, s.send(ctx, ep, ev, s.cfg.Timeout), nil
}

// Delivery returns one delivery of endpoint endpointID.
func (s *Service) Delivery(ctx context.Context, workspaceID, endpointID, id int64) (*Delivery, error) {
	d, err := s.store.WebhookDelivery(ctx, workspaceID, id)
	if err != nil {
		return nil, err
	}
	if d.EndpointID != endpointID {
		return nil, core.NotFound()
	}
	return d, nil
}

// ListDeliveries pages an endpoint's deliveries (not found if the endpoint
// is not the workspace's: the store checks).
func (s *Service) ListDeliveries(ctx context.Context, workspaceID, endpointID int64, status string, p core.ListParams) ([]Delivery, int, error) {
	return s.store.ListWebhookDeliveries(ctx, workspaceID, DeliveryFilter{EndpointID: endpointID, Status: status}, p)
}

// Retry queues another attempt of a delivery now. It refuses (400
// cannot_retry) a delivery that succeeded, used all its attempts, is being
// attempted, or whose endpoint is disabled.
func (s *Service) Retry(ctx context.Context, workspaceID, endpointID, id int64) (*Delivery, error) {
	ep, err := s.store.WebhookEndpoint(ctx, workspaceID, endpointID)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	d, err := s.store.UpdateWebhookDelivery(ctx, workspaceID, id, func(d *Delivery) error {
		switch {
		case d.EndpointID != endpointID:
			return core.NotFound()
		case d.Status == StatusSuccess:
			return core.E(CodeCannotRetry, "The delivery already succeeded.")
		case d.Attempt >= s.MaxAttempts():
			return core.E(CodeCannotRetry, "The delivery has used all %d attempts.", s.MaxAttempts())
		case d.LockedUntil != nil && d.LockedUntil.After(now):
			return core.E(CodeCannotRetry, "An attempt of this delivery is in progress.")
		case !ep.IsActive:
			return core.E(CodeCannotRetry, "The endpoint is disabled; enable it first.")
		}
		d.Status, d.NextAttemptAt = StatusPending, &now
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.enqueue(ctx, []Delivery{*d})
	return d, nil
}
