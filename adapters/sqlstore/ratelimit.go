package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/revopsdev/revops/ratelimit"
)

// Limiter is a ratelimit.Limiter shared by every instance on the database:
// each decision is one upsert that runs GCRA on the bucket's row, so
// concurrent requests on any instance serialize on that row and the bucket
// is never overdrawn. Instances' clocks should agree within a few
// milliseconds (NTP): a skew of δ can admit rate×δ extra requests.
type Limiter struct {
	s   *Store
	now func() time.Time
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// Limiter returns the shared limiter on this store; now may be nil
// (time.Now). Pass it as revops.Config.Limiter on every instance.
func (s *Store) Limiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{s: s, now: now}
}

// The new TAT is max(tat, now) + T when it stays within the window, else
// the old one; allowed records which. Every SET expression sees the row as
// it was, so both are computed from the same old tat.
const allowSQL = `INSERT INTO revops_rate_limits AS r (bucket, tat, allowed) VALUES (?, ?, TRUE)
ON CONFLICT (bucket) DO UPDATE SET
  allowed = (CASE WHEN r.tat > ? THEN r.tat ELSE ? END) + ? <= ?,
  tat = CASE WHEN (CASE WHEN r.tat > ? THEN r.tat ELSE ? END) + ? <= ?
    THEN (CASE WHEN r.tat > ? THEN r.tat ELSE ? END) + ? ELSE r.tat END
RETURNING tat, allowed`

// Allow spends one request of key's bucket if it has one.
func (l *Limiter) Allow(ctx context.Context, key string, p ratelimit.Policy) (ratelimit.Decision, error) {
	if key == "" {
		return ratelimit.Decision{}, errors.New("sqlstore: rate limit: empty key")
	}
	now := l.now()
	n, t := now.UnixMicro(), p.Interval().Microseconds()
	horizon := n + p.Window().Microseconds() // the furthest a TAT may run
	var (
		tat     int64
		allowed bool
	)
	err := l.s.db.QueryRowContext(ctx, allowSQL, key, n+t,
		n, n, t, horizon,
		n, n, t, horizon,
		n, n, t).Scan(&tat, &allowed)
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("sqlstore: rate limit: %w", err)
	}
	return ratelimit.Decide(time.UnixMicro(tat), now, allowed, p), nil
}

// Peek reports key's bucket without spending from it.
func (l *Limiter) Peek(ctx context.Context, key string, p ratelimit.Policy) (ratelimit.Decision, error) {
	var tats []int64
	if err := l.s.db.NewRaw("SELECT tat FROM revops_rate_limits WHERE bucket = ?", key).Scan(ctx, &tats); err != nil {
		return ratelimit.Decision{}, fmt.Errorf("sqlstore: rate limit: %w", err)
	}
	var tat time.Time
	if len(tats) > 0 {
		tat = time.UnixMicro(tats[0])
	}
	return ratelimit.Peeked(tat, l.now(), p), nil
}

// Sweep deletes buckets that are full again and returns how many remain.
func (l *Limiter) Sweep(ctx context.Context) (int, error) {
	if _, err := l.s.db.ExecContext(ctx, "DELETE FROM revops_rate_limits WHERE tat <= ?", l.now().UnixMicro()); err != nil {
		return 0, fmt.Errorf("sqlstore: rate limit sweep: %w", err)
	}
	n, err := l.s.db.NewSelect().Table("revops_rate_limits").Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: rate limit sweep: %w", err)
	}
	return int(n), nil
}
