package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/scope"
)

// TestFastTreeAgreesWithServeMux: wherever the fast tree answers, it picks
// the pattern and the wildcard values the ServeMux picks, and it answers
// the clean paths of the common case.
func TestFastTreeAgreesWithServeMux(t *testing.T) {
	patterns := []string{
		"/workspaces", "/workspaces/join", "/workspaces/{id}", "/workspaces/{id}/members",
		"/workspaces/{id}/members/{userId}", "/workspaces/{id}/rate-limits/refresh",
		"/webhooks/{id}", "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
		"/files/{path...}", "/files/special", "/a/{x}", "/a/{x}/b", "/c/{y...}", "/c/d", "/c/d/{z}", "/pixel/track",
	}
	mux := http.NewServeMux()
	root := &fastNode{}
	byRoutes := map[*pathRoutes]string{}
	for _, p := range patterns {
		pr := &pathRoutes{}
		byRoutes[pr] = p
		mux.Handle(p, http.NotFoundHandler())
		segs, ok := fastPattern(p)
		if !ok || !root.add(segs, pr) {
			t.Fatalf("fast tree refused %q", p)
		}
	}
	paths := []string{
		"/workspaces", "/workspaces/join", "/workspaces/12", "/workspaces/12/members", "/workspaces/12/members/7",
		"/workspaces/join/members", "/webhooks/3", "/webhooks/3/deliveries/9/retry", "/webhooks/3/deliveries/9", "/workspaces/12/rate-limits/refresh", "/workspaces/12/rate-limits",
		"/files/special", "/files/a", "/files/a/b/c", "/a/1", "/a/1/b", "/a/c", "/a/c/b", "/c/d", "/c/d/e", "/c/d/e/f", "/c/x/y", "/c", "/a/c/b/x",
		"/nope", "/workspaces/12/members/7/extra", "/pixel/track", "/pixel", "/a/b.c", "/a/.x",
		// not clean: the fast tree must decline these
		"/workspaces/", "//workspaces", "/workspaces/./12", "/workspaces/../join", "/files/a%2Fb", "/a/..",
	}
	served := 0
	for _, path := range paths {
		r := httptest.NewRequest("GET", "http://x"+path, nil)
		var vals fastValues
		var l *fastLeaf
		if cleanFastPath(r.URL.Path) && r.URL.RawPath == "" {
			l = root.match(r.URL.Path[1:], &vals)
		}
		_, want := mux.Handler(r)
		if l == nil { // declining is always safe: the ServeMux answers
			continue
		}
		served++
		if got := byRoutes[l.pr]; got != want {
			t.Errorf("%s: fast tree %q, ServeMux %q", path, got, want)
			continue
		}
		// The ServeMux's wildcard values, read through a real dispatch.
		m := http.NewServeMux()
		m.HandleFunc(want, func(w http.ResponseWriter, r *http.Request) {
			if len(l.names) != vals.n {
				t.Errorf("%s: %d values for the wildcards %q", path, vals.n, l.names)
				return
			}
			for i, v := range vals.v[:vals.n] {
				if got := r.PathValue(l.names[i]); got != v {
					t.Errorf("%s: {%s} is %q in the fast tree, %q in the ServeMux", path, l.names[i], v, got)
				}
			}
		})
		m.ServeHTTP(httptest.NewRecorder(), r)
	}
	if served < 15 {
		t.Fatalf("the fast tree served only %d paths", served)
	}
	for _, bad := range []string{"/", "/static/", "/x/{$}", "/x/{a}{b}", "/x/{a...}/y", "/x/pre{a}", "GET /x", "/x//y"} {
		if _, ok := fastPattern(bad); ok && !strings.HasPrefix(bad, "GET") {
			t.Errorf("fastPattern accepted %q", bad)
		}
	}
}

// TestRequestContextKeepsParent: the request state Begin puts in the
// context is itself the context, so a handler still sees the values and
// the cancellation of the context the request arrived with.
func TestRequestContextKeepsParent(t *testing.T) {
	a, err := New(Config{Auth: noAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	type hostKey struct{}
	var sawValue any
	var sawDone, sawID bool
	Handle(a, Route{Method: "GET", Path: "/ctx", Public: true}, func(ctx context.Context, c *Call, _ *NoBody) (*struct{}, error) {
		sawValue = ctx.Value(hostKey{})
		sawID = RequestID(ctx) != "" && CallFrom(ctx) == c
		select {
		case <-ctx.Done():
			sawDone = true
		default:
		}
		return &struct{}{}, nil
	})
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), hostKey{}, "host value"))
	cancel()
	r := httptest.NewRequest("GET", "/ctx", nil).WithContext(parent)
	a.ServeHTTP(httptest.NewRecorder(), r)
	if sawValue != "host value" || !sawDone || !sawID {
		t.Fatalf("handler saw value %v, done %v, request id and call %v", sawValue, sawDone, sawID)
	}
}

type noAuth struct{}

func (noAuth) Authenticate(context.Context, string, time.Time) (*auth.Principal, error) {
	return nil, nil
}
func (noAuth) SoleWorkspace(context.Context, *auth.Principal) (int64, error) { return 0, nil }
func (noAuth) Access(context.Context, *auth.Principal, int64) (*auth.Access, error) {
	return nil, nil
}

// TestRequestClockIsReadOnce: a request reads Config.Now once; the call's
// At, the instant authentication is given and the Date header of the
// kernel's answers are that instant, on the configured clock (net/http
// would send its own), and the cached date follows the clock to the next
// second. A host handler's response keeps its own Date, or net/http's.
func TestRequestClockIsReadOnce(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
	reads := 0
	auth := &clockAuth{}
	a, err := New(Config{Auth: auth, Now: func() time.Time { reads++; return now }})
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	clock := func(ctx context.Context, c *Call, _ *NoBody) (*struct{}, error) {
		at = c.At
		return &struct{}{}, nil
	}
	Handle(a, Route{Method: "GET", Path: "/clock", Public: true}, clock)
	Handle(a, Route{Method: "GET", Path: "/signed", Scope: "read"}, clock)
	mux := http.NewServeMux()
	mux.Handle("/", a)
	const upstream = "Sat, 01 Jan 2000 00:00:00 GMT"
	mux.Handle("/proxied", a.Protect("read", TenantNone, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Date", upstream) // as httputil.ReverseProxy copies an upstream's
	})))
	mux.Handle("/host", a.Protect("read", TenantNone, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer good")
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, step := range []time.Duration{0, 200 * time.Millisecond, time.Second} {
		now = now.Add(step)
		for _, path := range []string{"/clock", "/signed"} {
			reads, auth.now = 0, time.Time{}
			res := get(path)
			if want := now.Format(http.TimeFormat); res.StatusCode != 200 || res.Header.Get("Date") != want || !at.Equal(now) || reads != 1 {
				t.Fatalf("%s: status %d, Date %q (want %q), Call.At %v (want %v), %d clock reads (want 1)",
					path, res.StatusCode, res.Header.Get("Date"), want, at, now, reads)
			}
			if path == "/signed" && !auth.now.Equal(now) {
				t.Fatalf("authenticated at %v, want the request's instant %v", auth.now, now)
			}
		}
	}
	if res := get("/proxied"); res.StatusCode != 200 || len(res.Header.Values("Date")) != 1 || res.Header.Get("Date") != upstream {
		t.Fatalf("a host handler's own Date: status %d, Date %q", res.StatusCode, res.Header.Values("Date"))
	}
	if res := get("/host"); res.StatusCode != 200 || res.Header.Get("Date") == "" || res.Header.Get("Date") == now.Format(http.TimeFormat) {
		t.Fatalf("a host handler's response should carry net/http's Date, not the kernel's: status %d, Date %q", res.StatusCode, res.Header.Get("Date"))
	}
}

// clockAuth knows one workspace-less key, "good", with every scope, and
// records the instant it was asked at.
type clockAuth struct{ now time.Time }

func (c *clockAuth) Authenticate(_ context.Context, token string, now time.Time) (*auth.Principal, error) {
	c.now = now
	if token != "good" {
		return nil, nil
	}
	return &auth.Principal{Kind: auth.PersonalKey, KeyID: 1, UserID: 1, Scopes: scope.Set{"*"}}, nil
}
func (*clockAuth) SoleWorkspace(context.Context, *auth.Principal) (int64, error) { return 0, nil }
func (*clockAuth) Access(context.Context, *auth.Principal, int64) (*auth.Access, error) {
	return nil, nil
}
