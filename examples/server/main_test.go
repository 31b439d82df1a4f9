package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
)

// server runs the reference server as a user would, on a free port.
type server struct {
	base   string
	out    *syncBuf
	cancel context.CancelFunc
	done   chan error
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func start(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{out: &syncBuf{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		s.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), s.out, func(a string) { ready <- a })
	}()
	select {
	case a := <-ready:
		s.base = "http://" + a
	case err := <-s.done:
		t.Fatalf("server exited: %v\n%s", err, s.out)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return s
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	if err := <-s.done; err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
}

func call(t *testing.T, method, url, key string, body any, h ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func TestFirstStartBootstrapsAndServes(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "revops.db")
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, nil, 0o644); err != nil { // a pre-existing, world-readable file
		t.Fatal(err)
	}
	s := start(t, "-db", db, "-bootstrap-key-file", keyFile)

	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	key := strings.TrimSpace(string(raw))
	if !strings.Contains(s.out.String(), key) {
		t.Fatal("the key was not printed")
	}

	st, body := call(t, "GET", s.base+"/api/healthz", "", nil)
	if st != 200 || body["status"] != "ok" {
		t.Fatalf("healthz %d %v", st, body)
	}
	st, body = call(t, "GET", s.base+"/api/v1/workspaces", key, nil)
	if st != 200 || len(body["data"].([]any)) != 1 {
		t.Fatalf("workspaces %d %v", st, body)
	}
	ws := body["data"].([]any)[0].(map[string]any)
	if ws["name"] != "Default" {
		t.Fatalf("%v", ws)
	}
	wid := fmt.Sprint(ws["id"])

	// Posts CRUD through the revops pipeline.
	posts := s.base + "/api/v1/posts"
	st, body = call(t, "POST", posts, key, map[string]any{"title": "Hello", "body": "World"}, "X-Workspace-ID", wid)
	if st != 201 || body["message"] != "Post created successfully." {
		t.Fatalf("create %d %v", st, body)
	}
	pid := fmt.Sprint(body["data"].(map[string]any)["id"])
	st, body = call(t, "PATCH", posts+"/"+pid, key, map[string]any{"status": "published"}, "X-Workspace-ID", wid)
	if st != 200 || body["data"].(map[string]any)["status"] != "published" {
		t.Fatalf("update %d %v", st, body)
	}
	st, body = call(t, "GET", posts+"?status=published&search=hell", key, nil, "X-Workspace-ID", wid)
	if st != 200 || len(body["data"].([]any)) != 1 {
		t.Fatalf("list %d %v", st, body)
	}
	st, _ = call(t, "POST", posts, key, map[string]any{"title": ""}, "X-Workspace-ID", wid)
	if st != 422 {
		t.Fatalf("empty title: %d", st)
	}
	// Idempotency-Key on the host's route: the retry is a replay.
	st, first := call(t, "POST", posts, key, map[string]any{"title": "Once"}, "X-Workspace-ID", wid, "Idempotency-Key", "post-once")
	st2, again := call(t, "POST", posts, key, map[string]any{"title": "Once"}, "X-Workspace-ID", wid, "Idempotency-Key", "post-once")
	if st != 201 || st2 != 201 || fmt.Sprint(first["data"]) != fmt.Sprint(again["data"]) {
		t.Fatalf("idempotent create: %d %v then %d %v", st, first, st2, again)
	}
	// The one-line Protect handler runs behind the same pipeline.
	req, _ := http.NewRequest("GET", posts+"/export.csv", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Workspace-ID", wid)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(csvBody), ",Once,draft,") || strings.Count(string(csvBody), "\n") != 3 || res.Header.Get("X-RateLimit-Limit") != "60" {
		t.Fatalf("export: %d %v %q", res.StatusCode, res.Header, csvBody)
	}
	if st, _ = call(t, "GET", posts+"/export.csv", "", nil); st != 401 {
		t.Fatalf("anonymous export: %d", st)
	}

	// Scopes: a read-only key reads but cannot write; no key is 401.
	st, body = call(t, "POST", s.base+"/api/v1/api-keys", key, map[string]any{"name": "reader", "scopes": []string{"posts:read"}}, "X-Workspace-ID", wid)
	if st != 201 {
		t.Fatalf("key %d %v", st, body)
	}
	reader := body["data"].(map[string]any)["key"].(string)
	if st, _ = call(t, "GET", posts+"/"+pid, reader, nil); st != 200 {
		t.Fatalf("reader get: %d", st)
	}
	st, body = call(t, "DELETE", posts+"/"+pid, reader, nil)
	if st != 403 || body["message"] != "Insufficient permissions. Required scope: posts:write" {
		t.Fatalf("reader delete: %d %v", st, body)
	}
	if st, _ = call(t, "GET", posts, "", nil); st != 401 {
		t.Fatalf("anonymous: %d", st)
	}

	// Tenancy: another workspace's key never sees this workspace's posts.
	st, body = call(t, "POST", s.base+"/api/v1/workspaces", key, map[string]any{"name": "Other"})
	if st != 201 {
		t.Fatal(st, body)
	}
	other := fmt.Sprint(body["data"].(map[string]any)["id"])
	st, body = call(t, "POST", s.base+"/api/v1/workspaces/"+other+"/api-keys", key, map[string]any{"name": "other", "scopes": []string{"*"}})
	if st != 201 {
		t.Fatal(st, body)
	}
	otherKey := body["data"].(map[string]any)["key"].(string)
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		if st, _ = call(t, m, posts+"/"+pid, otherKey, map[string]any{"title": "x"}); st != 404 {
			t.Errorf("%s other tenant's post: %d, want 404", m, st)
		}
	}
	if st, _ = call(t, "GET", posts, otherKey, nil, "X-Workspace-ID", wid); st != 404 {
		t.Errorf("other key naming this workspace: %d, want 404", st)
	}
	st, body = call(t, "GET", posts, otherKey, nil)
	if st != 200 || len(body["data"].([]any)) != 0 {
		t.Errorf("other workspace lists %v", body)
	}
	if st, _ = call(t, "DELETE", posts+"/"+pid, key, nil, "X-Workspace-ID", wid); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	// Entitlements: posts held (Hello deleted, Once kept) and API calls
	// counted — every posts call that reached its handler (7), not the
	// replayed create, nor the calls refused before it (invalid body,
	// scope, tenancy).
	st, body = call(t, "GET", s.base+"/api/v1/entitlements/summary", key, nil, "X-Workspace-ID", wid)
	if st != 200 {
		t.Fatalf("summary %d %v", st, body)
	}
	ent := body["data"].(map[string]any)["entitlements"].(map[string]any)
	if p, c := ent["posts"].(map[string]any), ent["api_calls"].(map[string]any); p["used"] != 1.0 || p["limit"] != 100.0 || c["used"] != 7.0 {
		t.Fatalf("posts %v, api_calls %v", p, c)
	}
	// A refusal names where to upgrade: this server's page, by default.
	st, body = call(t, "GET", s.base+"/api/v1/entitlements/check?feature=posts&quantity=1000", key, nil, "X-Workspace-ID", wid)
	up, _ := body["upgrade_url"].(string)
	if st != 200 || body["allowed"] != false || !strings.HasSuffix(up, "/upgrade") {
		t.Fatalf("check over the limit: %d %v", st, body)
	}
	res, err = http.Get(s.base + "/upgrade")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), "Billing is disabled") {
		t.Fatalf("upgrade page %d %q", res.StatusCode, page)
	}
	s.stop(t)

	// A second start on the same database does not bootstrap again.
	s2 := start(t, "-db", db)
	if strings.Contains(s2.out.String(), "Bootstrap API key") {
		t.Fatal("bootstrapped twice")
	}
	if st, _ = call(t, "GET", s2.base+"/api/v1/workspaces", key, nil); st != 200 {
		t.Fatalf("the key must survive a restart: %d", st)
	}
	s2.stop(t)
}

func TestPostgresWhenConfigured(t *testing.T) {
	url := os.Getenv("REVOPS_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("Postgres run skipped: set REVOPS_TEST_POSTGRES_URL (scripts/test does) to run it")
	}
	s := start(t, "-db", url)
	defer s.stop(t)
	if st, _ := call(t, "GET", s.base+"/api/healthz", "", nil); st != 200 {
		t.Fatalf("healthz on Postgres: %d", st)
	}
	// The server must not print a database password.
	if strings.Contains(s.out.String(), "password=") {
		t.Fatal("leaked credentials")
	}
}

// TestPostEventsReachAVerifyingReceiver runs on SQLite (the in-process
// queue) and, when configured, on Postgres, where the server delivers
// through River.
func TestPostEventsReachAVerifyingReceiver(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testPostEvents(t, filepath.Join(t.TempDir(), "revops.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		testPostEvents(t, sqltest.PostgresURL(t))
	})
}

func testPostEvents(t *testing.T, db string) {
	var mu sync.Mutex
	var secret string
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil || wh.Verify(body, r.Header) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct{ Type string }
		json.Unmarshal(body, &ev)
		got = append(got, ev.Type)
	}))
	defer recv.Close()

	keyFile := filepath.Join(t.TempDir(), "key")
	s := start(t, "-db", db, "-bootstrap-key-file", keyFile, "-webhooks-allow-private")
	defer s.stop(t)
	raw, _ := os.ReadFile(keyFile)
	key := strings.TrimSpace(string(raw))
	_, body := call(t, "GET", s.base+"/api/v1/workspaces", key, nil)
	wid := fmt.Sprint(body["data"].([]any)[0].(map[string]any)["id"])

	st, body := call(t, "POST", s.base+"/api/v1/webhooks", key, map[string]any{"url": recv.URL, "events": []string{"post.*"}}, "X-Workspace-ID", wid)
	if st != 201 {
		t.Fatalf("create webhook: %d %v", st, body)
	}
	mu.Lock()
	secret = body["data"].(map[string]any)["secret"].(string)
	mu.Unlock()

	posts := s.base + "/api/v1/posts"
	_, body = call(t, "POST", posts, key, map[string]any{"title": "Hello"}, "X-Workspace-ID", wid)
	pid := fmt.Sprint(body["data"].(map[string]any)["id"])
	call(t, "PATCH", posts+"/"+pid, key, map[string]any{"status": "published"}, "X-Workspace-ID", wid)
	call(t, "DELETE", posts+"/"+pid, key, nil, "X-Workspace-ID", wid)
	want := []string{"post.created", "post.updated", "post.deleted"}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("receiver verified %v, want %v", got, want)
	}
	if strings.HasPrefix(db, "postgres") {
		// On Postgres the jobs went through River, in the same schema.
		pool, err := pgxpool.New(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var n int
		if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM river_job WHERE kind = 'revops_webhook_delivery'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n < len(want) {
			t.Fatalf("%d River jobs, want at least %d", n, len(want))
		}
	}
}

func TestPrivateWebhookTargetsNeedTheFlag(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	s := start(t, "-db", filepath.Join(dir, "revops.db"), "-bootstrap-key-file", keyFile)
	defer s.stop(t)
	raw, _ := os.ReadFile(keyFile)
	key := strings.TrimSpace(string(raw))
	_, body := call(t, "GET", s.base+"/api/v1/workspaces", key, nil)
	wid := fmt.Sprint(body["data"].([]any)[0].(map[string]any)["id"])
	st, body := call(t, "POST", s.base+"/api/v1/webhooks", key, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"post.*"}}, "X-Workspace-ID", wid)
	if st != 422 || body["error"] != "validation_failed" {
		t.Fatalf("private target without the flag: %d %v", st, body)
	}
}

func TestReachable(t *testing.T) {
	for in, want := range map[string]string{":9000": "localhost:9000", "0.0.0.0:80": "localhost:80", "[::]:8080": "localhost:8080",
		"127.0.0.1:8080": "127.0.0.1:8080", "api.example.com:443": "api.example.com:443", "[::1]:9": "[::1]:9"} {
		if got := reachable(in); got != want {
			t.Errorf("reachable(%q) = %q, want %q", in, got, want)
		}
	}
}
