package revops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/internal/apitest"
	"github.com/revopsdev/revops/internal/testclock"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/ratelimit"
	"github.com/revopsdev/revops/webhooks"
	"github.com/revopsdev/revops/workspace"
)

// env is a reference host on a real SQLite store served over loopback.
type env struct {
	t      testing.TB
	store  *sqlstore.Store
	p      *revops.Platform
	srv    *httptest.Server
	base   string // server URL + mount prefix
	client *http.Client
	owner  *workspace.User
	ws     *workspace.Workspace
	key    string // the owner's personal key, scope *
	clock  *testclock.Clock
	oas    *apitest.Validator
}

type envOpt func(*revops.Config)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	ctx := context.Background()
	st := sqltest.SQLite(t)
	clk := testclock.New(time.Now().UTC())
	// Generous limits, so that the clock the tests freeze never starves a
	// test of requests; rate-limit tests set their own.
	generous := map[string]ratelimit.Policy{}
	for _, t := range revops.DefaultTiers {
		generous[t] = ratelimit.Policy{PerMinute: 1_000_000}
	}
	cfg := revops.Config{Store: st, Resources: []string{"posts"}, Now: clk.Now, RateLimits: generous, PublicRateLimit: ratelimit.Policy{PerMinute: 1_000_000},
		Webhooks: webhooks.Config{AllowPrivate: true}} // receivers are on loopback
	for _, o := range opts {
		o(&cfg)
	}
	if other, ok := cfg.Store.(*sqlstore.Store); ok {
		st = other // an option chose the store (e.g. Postgres)
	}
	p, err := revops.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, p)
	boot, err := p.Bootstrap(ctx, "admin@localhost", "Default")
	if err != nil || boot == nil {
		t.Fatalf("bootstrap: %v %v", boot, err)
	}
	oas := openAPIValidator(t, p)
	e := &env{t: t, store: st, p: p, srv: srv, base: srv.URL + "/api/v1", client: &http.Client{Transport: oas.Transport(nil)},
		owner: boot.User, ws: boot.Workspace, key: boot.Key, clock: clk, oas: oas}
	return e
}

// serve mounts p's handler under /api/v1 on a loopback test server.
func serve(t testing.TB, p *revops.Platform) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", p.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// resp is a decoded response.
type resp struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r *resp) data() map[string]any { d, _ := r.Body["data"].(map[string]any); return d }
func (r *resp) list() []any          { l, _ := r.Body["data"].([]any); return l }
func (r *resp) str(k string) string  { s, _ := r.data()[k].(string); return s }
func (r *resp) id() int64            { f, _ := r.data()["id"].(float64); return int64(f) }

// fieldErr returns the first validation message of field.
func (r *resp) fieldErr(field string) string {
	errs, _ := r.Body["errors"].(map[string]any)
	l, _ := errs[field].([]any)
	if len(l) == 0 {
		return ""
	}
	s, _ := l[0].(string)
	return s
}

type hdr map[string]string

// do sends a request; body may be nil, a string/[]byte (sent raw) or a value
// (sent as JSON).
func (e *env) do(method, path, key string, body any, h ...hdr) *resp {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/octet-stream"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for _, m := range h {
		for k, v := range m {
			req.Header.Set(k, v)
		}
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := &resp{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			e.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return r
}

// must asserts the status and, for errors, the error code.
func (r *resp) must(t testing.TB, status int, code ...string) *resp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if len(code) > 0 && r.Body["error"] != code[0] {
		t.Fatalf("error %v, want %s: %s", r.Body["error"], code[0], r.Raw)
	}
	return r
}

// newUser makes a user with a personal key of scope * (no HTTP route makes
// users yet; login arrives with the users issue).
func (e *env) newUser(email string) (*workspace.User, string) {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	u := &workspace.User{Email: email, Name: email, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateUser(ctx, u); err != nil {
		e.t.Fatal(err)
	}
	_, raw, err := e.p.Keys().Create(ctx, 0, u.ID, keys.CreateInput{Name: "personal", Scopes: []string{"*"}}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return u, raw
}

// newWorkspace creates a workspace owned by the bootstrap user and a
// workspace key with scopes in it.
func (e *env) newWorkspace(name string, scopes ...string) (int64, string) {
	e.t.Helper()
	w := e.do("POST", "/workspaces", e.key, map[string]any{"name": name}).must(e.t, 201)
	wid := w.id()
	if len(scopes) == 0 {
		scopes = []string{"*"}
	}
	k := e.do("POST", fmt.Sprintf("/workspaces/%d/api-keys", wid), e.key, map[string]any{"name": "ws key", "scopes": scopes}).must(e.t, 201)
	return wid, k.str("key")
}

func wsHdr(id int64) hdr { return hdr{"X-Workspace-ID": fmt.Sprint(id)} }

func withMaxBody(n int64) envOpt { return func(c *revops.Config) { c.MaxBodyBytes = n } }

func memberOf(wid, uid int64, role string) *workspace.Member {
	return &workspace.Member{WorkspaceID: wid, UserID: uid, Role: role, CreatedAt: time.Now().UTC()}
}
