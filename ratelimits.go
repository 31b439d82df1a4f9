package revops

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/ratelimit"
)

// DefaultPublicRateLimit limits each client IP on unauthenticated routes.
var DefaultPublicRateLimit = ratelimit.Policy{Name: "public", PerMinute: 120, Burst: 0.5}

// PixelRateLimit is spec 001's limit of the pixel per client IP: GET
// /pixel/config and POST /pixel/track spend from one bucket.
var PixelRateLimit = ratelimit.Policy{Name: "pixel", PerMinute: 300}

// rateLimit is the pipeline step after the scope check: it spends one
// request of the caller's bucket (the key's, or the client IP's on a public
// route), reports the bucket in headers, and answers 429 without running
// anything further when it is empty.
func (p *Platform) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := httpapi.CallFrom(r.Context())
		bucket, pol, err := p.bucketOf(r, c)
		if err == nil {
			err = p.spend(r.Context(), w.Header(), bucket, pol)
		}
		if err != nil {
			p.api.WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// spend takes one request from bucket under pol and reports the bucket in
// h: nil when admitted, the 429 when it is empty. A limiter that fails
// admits (a limiter outage must not take the API down), and is logged.
func (p *Platform) spend(ctx context.Context, h http.Header, bucket string, pol ratelimit.Policy) error {
	d, err := p.limiter.Allow(ctx, bucket, pol)
	if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "revops: rate limiter failed; request admitted", "error", err, "request_id", httpapi.RequestID(ctx))
		return nil
	}
	if !d.Allowed {
		return p.rateLimited(h, pol, d)
	}
	setRateHeaders(h, pol, d, p.decidedAt(d))
	return nil
}

// decidedAt is the instant d was decided at: the limiter's, so that the
// seconds to the reset are counted on the clock that set it, else now.
func (p *Platform) decidedAt(d ratelimit.Decision) time.Time {
	if d.At.IsZero() {
		return p.cfg.Now()
	}
	return d.At
}

// setRateHeaders writes both the X-RateLimit-* headers of spec 001 and the
// IETF RateLimit-Policy / RateLimit fields; they report the same bucket.
// They are on every response, so the five values are built in one buffer,
// and the map entries written under their canonical keys share one allocation.
func setRateHeaders(h http.Header, pol ratelimit.Policy, d ratelimit.Decision, now time.Time) {
	resetAt := resetUnix(d.ResetAt)
	reset := max(0, resetAt-now.Unix())
	// One allocation holds the values and their bytes (a long tier name
	// may still spill the bytes to another).
	rv := new(struct {
		vals [5]string
		buf  [128]byte
	})
	b := rv.buf[:0]
	var ends [5]int
	b = strconv.AppendInt(b, int64(d.Limit), 10)
	ends[0] = len(b)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	ends[1] = len(b)
	b = strconv.AppendInt(b, resetAt, 10)
	ends[2] = len(b)
	b = append(append(append(b, '"'), pol.Name...), `";q=`...)
	b = append(strconv.AppendInt(b, int64(d.Limit), 10), ";w=60"...)
	ends[3] = len(b)
	b = append(append(append(b, '"'), pol.Name...), `";r=`...)
	b = append(strconv.AppendInt(b, int64(d.Remaining), 10), ";t="...)
	b = strconv.AppendInt(b, reset, 10)
	ends[4] = len(b)
	all := unsafe.String(unsafe.SliceData(b), len(b)) // b is never written again
	vals := rv.vals[:]
	for i, start := 0, 0; i < 5; i++ {
		vals[i], start = all[start:ends[i]], ends[i]
	}
	h["X-Ratelimit-Limit"] = vals[0:1:1]
	h["X-Ratelimit-Remaining"] = vals[1:2:2]
	h["X-Ratelimit-Reset"] = vals[2:3:3]
	h["Ratelimit-Policy"] = vals[3:4:4]
	h["Ratelimit"] = vals[4:5:5]
}

// resetUnix is the Unix second at which the bucket is full again, rounded
// up: a client waiting until then never comes too early.
func resetUnix(at time.Time) int64 {
	s := at.Unix()
	if at.Nanosecond() > 0 {
		s++
	}
	return s
}

// rateLimited sets the rate-limit headers and Retry-After of a refused
// request and returns spec 001's 429, whose numbers match the headers.
func (p *Platform) rateLimited(h http.Header, pol ratelimit.Policy, d ratelimit.Decision) error {
	setRateHeaders(h, pol, d, p.decidedAt(d))
	after := max(1, int64(math.Ceil(d.RetryAfter.Seconds())))
	h.Set("Retry-After", strconv.FormatInt(after, 10))
	unit := "seconds"
	if after == 1 {
		unit = "second"
	}
	e := core.E(core.CodeRateLimited, "Too many requests. Please retry after %d %s.", after, unit)
	e.Extra = map[string]any{
		"retry_after": after,
		"limit":       d.Limit,
		"remaining":   d.Remaining,
		"reset_at":    time.Unix(resetUnix(d.ResetAt), 0).UTC().Format(time.RFC3339),
	}
	return e
}

// bucketOf names the caller's bucket and its policy: per key under its
// tier (the key's own, else its workspace's), per client IP on public routes.
func (p *Platform) bucketOf(r *http.Request, c *httpapi.Call) (string, ratelimit.Policy, error) {
	if c.Principal == nil {
		name := c.Route.RateLimit
		if name == "" {
			name = "public"
		}
		pol, ok := p.ipPolicies[name]
		if !ok {
			return "", pol, core.Internal(errors.New("revops: route " + c.Route.Path + " names an unknown rate limit " + name))
		}
		return "ip:" + name + ":" + p.clientIP(r), pol, nil
	}
	tier := c.Principal.Tier
	// A personal key (or token) acts in workspaces of several tiers: its own
	// tier may lower its limits in one, never raise them above that
	// workspace's (outside any workspace: the default tier's).
	if tier == "" || c.Principal.UserBound() {
		wid := c.WorkspaceID()
		if wid == 0 {
			wid = c.Principal.WorkspaceID
		}
		wsTier, err := p.tiers.get(r.Context(), wid)
		if err != nil {
			return "", ratelimit.Policy{}, err
		}
		if tier == "" || p.tierAbove(tier, wsTier) {
			tier = wsTier
		}
	}
	return c.Principal.Ref, p.policyOf(tier), nil
}

// tierAbove reports whether tier a allows more than tier b (a higher rate
// or a larger burst).
func (p *Platform) tierAbove(a, b string) bool {
	pa, pb := p.policyOf(a), p.policyOf(b)
	return pa.PerMinute > pb.PerMinute || pa.Capacity() > pb.Capacity()
}

// denied rate-limits an authenticated request refused before its handler
// (a workspace it cannot see, a missing scope, a bad X-Workspace-ID): it
// spends from the key's bucket and carries the headers like any other
// answer, so refusals are not a way around the limit. Once the bucket is
// empty the answer is the 429 instead.
func (p *Platform) denied(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	bucket, pol, err := p.bucketOf(r, c)
	if err != nil {
		return nil // the refusal itself is the answer
	}
	if c.Access == nil && c.Principal.UserBound() {
		// Outside a workspace a user's key is judged by the default tier:
		// in a bucket of its own, so that its refusals do not spend from
		// the bucket its workspaces' tiers fill at their own pace.
		bucket += ":refused"
	}
	return p.spend(r.Context(), w.Header(), bucket, pol)
}

// authFailed spends from the client IP's "auth" bucket (PublicRateLimit) on
// every failed authentication, so that guessing keys is slow: once it is
// empty the answer is 429 instead of 401. Valid keys never touch it.
func (p *Platform) authFailed(w http.ResponseWriter, r *http.Request) error {
	return p.spend(r.Context(), w.Header(), "auth:"+p.clientIP(r), p.cfg.PublicRateLimit)
}

// clientIP is the peer address, or with TrustForwardedFor the last address
// of X-Forwarded-For: the one the trusted proxy in front of us appended
// (earlier entries are whatever the client sent).
func (p *Platform) clientIP(r *http.Request) string {
	if p.cfg.TrustForwardedFor {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tierCache remembers workspaces' tiers for ttl so that rate limiting a
// request reads no database; Refresh and in-process tier changes drop an
// entry at once.
type tierCache struct {
	p   *Platform
	ttl time.Duration
	mu  sync.Mutex
	m   map[int64]tierEntry
}

type tierEntry struct {
	tier, tz string
	totp     string // the workspace's TOTP policy
	exp      time.Time
	missing  bool // no such workspace (never cached)
}

const maxTierEntries = 100_000

func (tc *tierCache) get(ctx context.Context, wid int64) (string, error) {
	e, err := tc.entry(ctx, wid)
	return e.tier, err
}

// requestNow is the instant ctx's request began, read once for all its
// checks, or now outside a request.
func (p *Platform) requestNow(ctx context.Context) time.Time {
	if t := httpapi.RequestTime(ctx); !t.IsZero() {
		return t
	}
	return p.cfg.Now()
}

// entry returns a workspace's tier and timezone; a missing workspace has
// the default tier. Its expiry is checked at the request's instant.
func (tc *tierCache) entry(ctx context.Context, wid int64) (tierEntry, error) {
	def := tierEntry{tier: tc.p.cfg.Tiers[0]}
	if wid == 0 {
		return def, nil
	}
	now := tc.p.requestNow(ctx)
	tc.mu.Lock()
	e, ok := tc.m[wid]
	tc.mu.Unlock()
	if ok && now.Before(e.exp) {
		return e, nil
	}
	w, err := tc.p.cfg.Store.Workspace(ctx, wid)
	switch {
	case errors.Is(err, core.ErrNotFound):
		def.missing = true
		return def, nil
	case err != nil:
		return tierEntry{}, err
	}
	e = tierEntry{tier: w.Tier, tz: w.Settings.Timezone, totp: w.TOTPPolicy, exp: now.Add(tc.ttl)}
	tc.mu.Lock()
	if len(tc.m) >= maxTierEntries {
		clear(tc.m)
	}
	tc.m[wid] = e
	tc.mu.Unlock()
	return e, nil
}

func (tc *tierCache) forget(wid int64) {
	tc.mu.Lock()
	delete(tc.m, wid)
	tc.mu.Unlock()
}
