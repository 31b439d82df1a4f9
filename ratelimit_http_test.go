package revops_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/ratelimit"
	"github.com/revopsdev/revops/workspace"
)

// withLimits gives every tier policy pol and public routes pub.
func withLimits(pol, pub ratelimit.Policy) envOpt {
	return func(c *revops.Config) {
		c.RateLimits = map[string]ratelimit.Policy{}
		for _, t := range revops.DefaultTiers {
			p := pol
			p.Name = t
			c.RateLimits[t] = p
		}
		c.RateLimits["pro"] = ratelimit.Policy{Name: "pro", PerMinute: 600, Burst: 0.5}
		c.PublicRateLimit = pub
	}
}

// rateHeaders checks the five rate-limit headers agree with each other and
// returns limit, remaining and reset.
func rateHeaders(t *testing.T, r *resp, now time.Time) (limit, remaining int, reset int64) {
	t.Helper()
	h := r.Header
	for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"} {
		if h.Get(k) == "" {
			t.Fatalf("status %d: header %s missing: %v", r.Status, k, h)
		}
	}
	limit, _ = strconv.Atoi(h.Get("X-RateLimit-Limit"))
	remaining, _ = strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	reset, _ = strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if !strings.HasSuffix(h.Get("RateLimit-Policy"), fmt.Sprintf(";q=%d;w=60", limit)) {
		t.Fatalf("RateLimit-Policy %q disagrees with X-RateLimit-Limit %d", h.Get("RateLimit-Policy"), limit)
	}
	if want := fmt.Sprintf(";r=%d;t=%d", remaining, reset-now.Unix()); !strings.HasSuffix(h.Get("RateLimit"), want) {
		t.Fatalf("RateLimit %q disagrees with X-RateLimit-Remaining/Reset (want suffix %s)", h.Get("RateLimit"), want)
	}
	return limit, remaining, reset
}

func ceilUnix(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

func TestRateLimitHeadersAnd429(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, withLimits(ratelimit.Policy{PerMinute: 5}, revops.DefaultPublicRateLimit))
	wid, key := e.newWorkspace("Limited") // free tier: 5/min here, no burst
	path := fmt.Sprintf("/workspaces/%d", wid)
	now := e.clock.Now()

	// Every response of the route carries the headers, errors included.
	responses := []*resp{
		e.do("GET", path, key, nil).must(t, 200),
		e.do("GET", path+"/api-keys/999999", key, nil).must(t, 404),
		e.do("PATCH", path, key, map[string]any{"name": ""}).must(t, 422),
		e.do("GET", path+"/api-keys?per_page=0", key, nil).must(t, 422),
	}
	for i, r := range responses {
		limit, remaining, reset := rateHeaders(t, r, now)
		is.Equal(limit, 5)
		is.Equal(remaining, 5-1-i)                                              // one spent per request
		is.Equal(reset, ceilUnix(now.Add(time.Duration(12*(i+1))*time.Second))) // full again after 12 s per spent request
	}
	// The fifth is admitted, the sixth refused without running: a create
	// that would have made a key does not.
	e.do("GET", path, key, nil).must(t, 200)
	r := e.do("POST", path+"/api-keys", key, map[string]any{"name": "never"}).must(t, 429, "rate_limit_exceeded")
	_, n, err := e.store.ListKeys(t.Context(), wid, core.ListParams{Page: 1, PerPage: 10}, time.Now())
	is.NoErr(err)
	is.Equal(n, 1) // only the key newWorkspace made
	limit, remaining, reset := rateHeaders(t, r, now)
	is.Equal(limit, 5)
	is.Equal(remaining, 0)
	is.Equal(r.Header.Get("Retry-After"), "12")
	is.Equal(r.Body["retry_after"], float64(12))
	is.Equal(r.Body["limit"], float64(5))
	is.Equal(r.Body["remaining"], float64(0))
	is.Equal(r.Body["reset_at"], time.Unix(reset, 0).UTC().Format(time.RFC3339))
	is.Equal(r.Body["message"], "Too many requests. Please retry after 12 seconds.")

	// Another key has its own bucket; time refills this one.
	_, other := e.newUser("other@example.com")
	e.do("GET", "/workspaces", other, nil).must(t, 200)
	e.clock.Advance(12 * time.Second)
	r = e.do("GET", path, key, nil).must(t, 200)
	_, remaining, _ = rateHeaders(t, r, e.clock.Now())
	is.Equal(remaining, 0)
}

func TestRateLimitTierOverrideAndRefresh(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, withLimits(ratelimit.Policy{PerMinute: 5}, revops.DefaultPublicRateLimit))
	wid, key := e.newWorkspace("Tiers")
	path := fmt.Sprintf("/workspaces/%d", wid)
	// Over HTTP a key may not be given more than its workspace has ...
	r := e.do("POST", path+"/api-keys", e.key, map[string]any{"name": "pro key", "scopes": []string{"*"}, "rate_limit_tier": "pro"}).must(t, 422, "validation_failed")
	is.Equal(r.fieldErr("rate_limit_tier"), "The rate_limit_tier may not be above the workspace's tier (free).")
	// ... the host's own code may, and such a key follows its tier, not the workspace's.
	_, proKey, err := e.p.Keys().Create(t.Context(), wid, e.owner.ID, keys.CreateInput{Name: "pro key", Scopes: []string{"*"}, RateLimitTier: "pro"}, nil)
	is.NoErr(err)
	r = e.do("GET", path, proKey, nil).must(t, 200)
	is.Equal(r.Header.Get("X-RateLimit-Limit"), "600")
	is.Equal(r.Header.Get("X-RateLimit-Remaining"), "899") // capacity 600 × 1.5
	is.True(strings.HasPrefix(r.Header.Get("RateLimit-Policy"), `"pro";`))

	vr := e.do("GET", path+"/rate-limits", key, nil).must(t, 200)
	view := vr.data()
	is.Equal(view["tier"], "free")
	is.Equal(view["keys_total"], float64(2))
	is.Equal(view["policy"], map[string]any{"tier": "free", "requests_per_minute": float64(5), "burst": float64(0), "capacity": float64(5)})
	ks := view["keys"].([]any)
	is.Equal(len(ks), 2)
	byName := map[string]map[string]any{}
	for _, k := range ks {
		byName[k.(map[string]any)["name"].(string)] = k.(map[string]any)
	}
	is.Equal(byName["pro key"]["tier"], "pro")
	is.Equal(byName["pro key"]["override"], true)
	is.Equal(byName["pro key"]["remaining"], float64(899)) // peeking spends nothing
	is.Equal(byName["ws key"]["remaining"], float64(4))    // the view's own request was spent first
	is.Equal(byName["ws key"]["override"], false)
	reset, err := strconv.ParseInt(vr.Header.Get("X-RateLimit-Reset"), 10, 64)
	is.NoErr(err)
	is.Equal(byName["ws key"]["reset_at"], time.Unix(reset, 0).UTC().Format(time.RFC3339)) // the header's instant

	// The host moves the workspace to pro: this instance applies it at once.
	is.NoErr(e.p.SetTier(t.Context(), wid, "pro"))
	r = e.do("GET", path, key, nil).must(t, 200)
	is.Equal(r.Header.Get("X-RateLimit-Limit"), "600")
	// A change made behind the platform's back shows after refresh.
	_, err = e.store.UpdateWorkspace(t.Context(), wid, func(w *workspace.Workspace) error { w.Tier = "starter"; return nil })
	is.NoErr(err)
	is.Equal(e.do("GET", path, key, nil).must(t, 200).Header.Get("X-RateLimit-Limit"), "600") // cached
	view = e.do("POST", path+"/rate-limits/refresh", key, nil).must(t, 200).data()
	is.Equal(view["tier"], "starter")
	is.Equal(e.do("GET", path, key, nil).must(t, 200).Header.Get("X-RateLimit-Limit"), "5")

	// A personal key's own tier can only lower its limits: pro is capped to
	// this workspace's starter here, and to the default tier outside any.
	mine := e.do("POST", "/user/api-keys", e.key, map[string]any{"name": "mine", "scopes": []string{"*"}, "rate_limit_tier": "pro"}).must(t, 201)
	r = e.do("GET", path, mine.str("key"), nil).must(t, 200)
	is.True(strings.HasPrefix(r.Header.Get("RateLimit-Policy"), `"starter";q=5;`))
	r = e.do("GET", "/user/api-keys", mine.str("key"), nil).must(t, 200)
	is.True(strings.HasPrefix(r.Header.Get("RateLimit-Policy"), `"free";q=5;`))

	// A key whose tier was lowered cannot make keys that are not, nor keys
	// that follow the workspace's tier.
	_, lowered, err := e.p.Keys().Create(t.Context(), wid, e.owner.ID, keys.CreateInput{Name: "lowered", Scopes: []string{"*"}, RateLimitTier: "starter"}, nil)
	is.NoErr(err)
	is.NoErr(e.p.SetTier(t.Context(), wid, "pro"))
	for _, tier := range []string{"pro", ""} {
		r = e.do("POST", path+"/api-keys", lowered, map[string]any{"name": "more", "scopes": []string{"*"}, "rate_limit_tier": tier}).must(t, 422, "validation_failed")
		is.True(strings.Contains(r.fieldErr("rate_limit_tier"), "your own key's tier (starter)"))
	}
	e.do("POST", path+"/api-keys", lowered, map[string]any{"name": "same", "scopes": []string{"*"}, "rate_limit_tier": "starter"}).must(t, 201)
}

func TestRateLimitPerIPOnPublicRoutes(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, withLimits(ratelimit.Policy{PerMinute: 1000}, ratelimit.Policy{Name: "public", PerMinute: 3}),
		func(c *revops.Config) { c.TrustForwardedFor = true })
	for i := range 3 {
		r := e.do("GET", "/openapi.json", "", nil, hdr{"X-Forwarded-For": "203.0.113.7"}).must(t, 200)
		is.Equal(r.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(2-i))
	}
	r := e.do("GET", "/openapi.json", "", nil, hdr{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}).must(t, 429, "rate_limit_exceeded")
	is.Equal(r.Header.Get("Retry-After"), "20")
	// Another client IP has its own bucket; a spoofed first hop does not help.
	e.do("GET", "/openapi.json", "", nil, hdr{"X-Forwarded-For": "203.0.113.7, 192.0.2.1"}).must(t, 200)
	// The pixel's routes have their own 300/min bucket.
	r = e.do("GET", "/pixel/config", "", nil, hdr{"X-Forwarded-For": "203.0.113.7"}).must(t, 200)
	is.Equal(r.Header.Get("X-RateLimit-Limit"), "300")
	for range 300 {
		e.do("POST", "/pixel/track", "", map[string]any{"event": "pageview"}, wsHdr(e.ws.ID), hdr{"X-Forwarded-For": "192.0.2.9"}).must(t, 200)
	}
	r = e.do("POST", "/pixel/track", "", map[string]any{"event": "pageview"}, wsHdr(e.ws.ID), hdr{"X-Forwarded-For": "192.0.2.9"}).must(t, 429, "rate_limit_exceeded")
	is.Equal(r.Header.Get("X-RateLimit-Limit"), "300")
	is.Equal(r.Body["limit"], float64(300))
	n := len(e.do("GET", fmt.Sprintf("/workspaces/%d/pixel/events?per_page=100", e.ws.ID), e.key, nil).must(t, 200).list())
	is.Equal(n, 100)
	total := e.do("GET", fmt.Sprintf("/workspaces/%d/pixel/events", e.ws.ID), e.key, nil).must(t, 200).Body["meta"].(map[string]any)["total"]
	is.Equal(total, float64(300)) // the refused one stored nothing
}

func TestFailedAuthenticationIsRateLimitedPerIP(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, withLimits(ratelimit.Policy{PerMinute: 1000}, ratelimit.Policy{Name: "public", PerMinute: 3}))
	bad := "revops_" + strings.Repeat("A", 49)
	for range 3 {
		e.do("GET", "/workspaces", bad, nil).must(t, 401, "unauthorized")
	}
	r := e.do("GET", "/workspaces", bad, nil).must(t, 429, "rate_limit_exceeded")
	is.Equal(r.Header.Get("Retry-After"), "20")
	e.do("GET", "/workspaces", "", nil).must(t, 429)    // no key is a failure too
	e.do("GET", "/workspaces", e.key, nil).must(t, 200) // a valid key is never held back
	e.clock.Advance(20 * time.Second)
	e.do("GET", "/workspaces", bad, nil).must(t, 401)
}

func TestUnknownRouteRateLimitPanicsAtRegistration(t *testing.T) {
	e := newEnv(t)
	defer func() {
		if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), `unknown RateLimit "nope"`) {
			t.Fatalf("recover() = %v, want a panic naming the policy", v)
		}
	}()
	revops.Handle(e.p, revops.Route{Method: "GET", Path: "/open", Public: true, RateLimit: "nope"},
		func(ctx context.Context, c *revops.Call, _ *revops.NoBody) (revops.NoBody, error) {
			return revops.NoBody{}, nil
		})
}

// TestRefusalsAreRateLimited: an authenticated request refused before its
// handler (a workspace it cannot see, a scope it lacks) spends from its
// key's bucket and carries the headers, so refusals are no way around the
// limit; a failed authentication carries its client IP's bucket's.
func TestRefusalsAreRateLimited(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, withLimits(ratelimit.Policy{PerMinute: 6}, revops.DefaultPublicRateLimit))
	wid, key := e.newWorkspace("Refusals", "posts:read")
	other, _ := e.newWorkspace("Other")
	is.NoErr(e.p.SetTier(t.Context(), other, "pro"))
	foreign := fmt.Sprintf("/workspaces/%d", other)
	r := e.do("GET", foreign, key, nil).must(t, 404, "not_found")
	_, remaining, _ := rateHeaders(t, r, e.clock.Now())
	is.Equal(remaining, 5)
	is.True(strings.HasPrefix(r.Header.Get("RateLimit-Policy"), `"free";`)) // its own tier: nothing of the workspace it cannot see
	r = e.do("GET", "/api-keys", key, nil).must(t, 403, "access_denied")
	_, remaining, _ = rateHeaders(t, r, e.clock.Now())
	is.Equal(remaining, 4)
	for range 4 {
		e.do("GET", foreign, key, nil).must(t, 404, "not_found")
	}
	e.do("GET", foreign, key, nil).must(t, 429, "rate_limit_exceeded")
	r = e.do("GET", "/api-keys", key, nil).must(t, 429, "rate_limit_exceeded")
	is.True(r.Header.Get("Retry-After") != "")

	// A user's key refused outside its workspaces spends from a bucket of
	// its own under the default tier (not its workspaces' bucket, which
	// their tiers fill at their own pace), never under the foreign tier.
	_, stranger := e.newUser("stranger@example.com")
	r = e.do("GET", foreign, stranger, nil).must(t, 404, "not_found")
	_, remaining, _ = rateHeaders(t, r, e.clock.Now())
	is.Equal(remaining, 5)
	is.True(strings.HasPrefix(r.Header.Get("RateLimit-Policy"), `"free";`))
	r = e.do("GET", fmt.Sprintf("/workspaces/%d", wid), stranger, nil).must(t, 404, "not_found")
	_, remaining, _ = rateHeaders(t, r, e.clock.Now())
	is.Equal(remaining, 4)
	r = e.do("GET", "/user/api-keys", stranger, nil).must(t, 200) // its own bucket is untouched
	_, remaining, _ = rateHeaders(t, r, e.clock.Now())
	is.Equal(remaining, 5)

	r = e.do("GET", "/workspaces", "revops_"+strings.Repeat("A", 49), nil).must(t, 401, "unauthorized")
	limit, _, _ := rateHeaders(t, r, e.clock.Now())
	is.Equal(limit, revops.DefaultPublicRateLimit.PerMinute)
}

// TestRateLimitHeadersCountFromTheLimitersClock: the seconds to the reset
// (RateLimit's t) are counted on the clock the limiter decided by — a shared
// limiter's, say — so that they agree with X-RateLimit-Reset even when the
// serving instance's clock is off.
func TestRateLimitHeadersCountFromTheLimitersClock(t *testing.T) {
	is := is.New(t)
	var lag time.Time // the limiter's clock runs an hour behind the platform's
	e := newEnv(t, withLimits(ratelimit.Policy{PerMinute: 5}, revops.DefaultPublicRateLimit), func(c *revops.Config) {
		now := c.Now
		c.Limiter = ratelimit.NewMemory(func() time.Time { lag = now().Add(-time.Hour); return lag })
	})
	wid, key := e.newWorkspace("Lagging")
	r := e.do("GET", fmt.Sprintf("/workspaces/%d", wid), key, nil).must(t, 200)
	_, remaining, reset := rateHeaders(t, r, lag)
	is.Equal(remaining, 4)
	is.Equal(reset, ceilUnix(lag.Add(12*time.Second))) // and rateHeaders checked t against the lagging clock

	// A limiter that does not say when it decided: the platform's clock.
	e = newEnv(t, withLimits(ratelimit.Policy{PerMinute: 5}, revops.DefaultPublicRateLimit), func(c *revops.Config) {
		c.Limiter = noInstant{ratelimit.NewMemory(c.Now)}
	})
	wid, key = e.newWorkspace("Silent")
	r = e.do("GET", fmt.Sprintf("/workspaces/%d", wid), key, nil).must(t, 200)
	_, remaining, reset = rateHeaders(t, r, e.clock.Now())
	is.Equal(remaining, 4)
	is.Equal(reset, ceilUnix(e.clock.Now().Add(12*time.Second)))
}

// noInstant is a Limiter whose decisions leave Decision.At zero.
type noInstant struct{ ratelimit.Limiter }

func (l noInstant) Allow(ctx context.Context, key string, p ratelimit.Policy) (ratelimit.Decision, error) {
	d, err := l.Limiter.Allow(ctx, key, p)
	d.At = time.Time{}
	return d, err
}
