// Package ratelimit decides whether a request may run: a per-key bucket that
// refills at Policy.PerMinute and holds PerMinute×(1+Burst) requests.
//
// The algorithm is GCRA, the arithmetic form of a token bucket: each key
// keeps one timestamp, the theoretical arrival time (TAT) at which its
// bucket would be full again. A request is admitted when, after adding one
// emission interval T = 1 min / PerMinute, the TAT is no further than
// Capacity×T ahead of now. So a fresh or idle key can spend Capacity requests
// at once, and after that PerMinute requests a minute; in any window of
// length W at most Capacity + PerMinute×W/1min are admitted.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// Policy is one tier's limit.
type Policy struct {
	Name      string  // e.g. "pro"
	PerMinute int     // sustained requests per minute
	Burst     float64 // extra capacity as a fraction: 0.3 = +30%
}

// Capacity is the bucket size: PerMinute×(1+Burst), at least 1.
func (p Policy) Capacity() int { return max(1, int(float64(p.PerMinute)*(1+p.Burst))) }

// Validate checks a policy.
func (p Policy) Validate() error {
	if p.PerMinute < 1 || p.Burst < 0 || p.Burst > 10 {
		return fmt.Errorf("ratelimit: policy %q needs PerMinute ≥ 1 and Burst between 0 and 10 (a fraction: 0.2 = +20%%)", p.Name)
	}
	return nil
}

// Interval is the emission interval: one request refills every Interval.
func (p Policy) Interval() time.Duration { return time.Minute / time.Duration(p.PerMinute) }

// Window is how far ahead of now the TAT may run: Capacity×Interval.
func (p Policy) Window() time.Duration { return time.Duration(p.Capacity()) * p.Interval() }

// DefaultPolicies are spec 001's tiers.
func DefaultPolicies() map[string]Policy {
	return map[string]Policy{
		"free":       {Name: "free", PerMinute: 60, Burst: 0},
		"starter":    {Name: "starter", PerMinute: 1_000, Burst: 0.2},
		"pro":        {Name: "pro", PerMinute: 5_000, Burst: 0.3},
		"agency":     {Name: "agency", PerMinute: 20_000, Burst: 0.5},
		"enterprise": {Name: "enterprise", PerMinute: 100_000, Burst: 1},
	}
}

// Decision is the outcome of one Allow and what the headers report.
type Decision struct {
	Allowed    bool
	Limit      int           // PerMinute
	Capacity   int           // bucket size
	Remaining  int           // requests that would be admitted right now
	ResetAt    time.Time     // when the bucket is full again
	RetryAfter time.Duration // when denied: until one request is admitted
	// At is the instant the limiter decided at, on its own clock: the
	// headers count the seconds to ResetAt from it. Zero: unknown (the
	// caller's clock is used).
	At time.Time
}

// Limiter decides for a key under a policy. Implementations must be exact
// under concurrency: never admit more than the policy allows.
type Limiter interface {
	// Allow spends one request of key's bucket if it has one.
	Allow(ctx context.Context, key string, p Policy) (Decision, error)
	// Peek reports key's bucket without spending from it.
	Peek(ctx context.Context, key string, p Policy) (Decision, error)
	// Sweep forgets buckets that are full again (they hold no information)
	// and returns how many remain.
	Sweep(ctx context.Context) (int, error)
}

// Step applies GCRA to a stored TAT (zero: none) at now: it returns whether
// one more request is admitted and the TAT to store.
func Step(tat, now time.Time, p Policy) (allowed bool, next time.Time) {
	if tat.Before(now) {
		tat = now
	}
	next = tat.Add(p.Interval())
	if next.Sub(now) > p.Window() {
		return false, tat
	}
	return true, next
}

// Decide describes a bucket whose stored TAT is tat at now, after a request
// that was allowed or not (Step's results). Shared limiters that run Step
// in their database use it to report the same numbers as Memory.
func Decide(tat, now time.Time, allowed bool, p Policy) Decision {
	t, window := p.Interval(), p.Window()
	if tat.Before(now) {
		tat = now
	}
	d := Decision{Allowed: allowed, Limit: p.PerMinute, Capacity: p.Capacity(), ResetAt: tat, At: now}
	d.Remaining = int((window - tat.Sub(now)) / t)
	if d.Remaining <= 0 {
		d.Remaining = 0
		d.RetryAfter = tat.Add(t - window).Sub(now)
	}
	if allowed {
		d.RetryAfter = 0
	}
	return d
}

// Peeked describes a bucket with stored TAT tat at now, spending nothing:
// Allowed says whether a request would be admitted now.
func Peeked(tat, now time.Time, p Policy) Decision {
	d := Decide(tat, now, false, p)
	d.Allowed = d.Remaining > 0
	return d
}

// Memory is an in-process Limiter. It keeps one timestamp per active key in
// sharded maps; a key whose bucket is full again holds no information and
// is evicted by Sweep, so memory follows the number of recently busy keys.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [64]memShard
}

type memShard struct {
	mu  sync.Mutex
	tat map[string]time.Time
	_   [40]byte // keep shards on separate cache lines
}

// NewMemory returns an in-process limiter; now may be nil (time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].tat = map[string]time.Time{}
	}
	return m
}

var errNoKey = errors.New("ratelimit: empty key")

// Allow decides for key. The clock is read under the shard lock, so that
// concurrent callers are ordered by the time they were decided at and the
// bucket can never be overdrawn by a stale timestamp (golang/go#65508).
func (m *Memory) Allow(_ context.Context, key string, p Policy) (Decision, error) {
	if key == "" {
		return Decision{}, errNoKey
	}
	s := &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
	s.mu.Lock()
	now := m.now()
	ok, tat := Step(s.tat[key], now, p)
	s.tat[key] = tat
	s.mu.Unlock()
	return Decide(tat, now, ok, p), nil
}

// Peek reports key's bucket without spending from it.
func (m *Memory) Peek(_ context.Context, key string, p Policy) (Decision, error) {
	s := &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
	s.mu.Lock()
	now := m.now()
	tat := s.tat[key]
	s.mu.Unlock()
	return Peeked(tat, now, p), nil
}

// Sweep evicts keys whose buckets are full again (their TAT has passed);
// it holds one shard lock at a time. It returns how many keys remain.
func (m *Memory) Sweep(context.Context) (int, error) {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		now := m.now()
		evicted := 0
		for k, tat := range s.tat {
			if !tat.After(now) {
				delete(s.tat, k)
				evicted++
			}
		}
		if evicted > len(s.tat) {
			// Go maps never shrink, and maps.Clone keeps the capacity:
			// copy into a map sized for what is left to give memory back.
			nm := make(map[string]time.Time, len(s.tat))
			for k, v := range s.tat {
				nm[k] = v
			}
			s.tat = nm
		}
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n, nil
}
