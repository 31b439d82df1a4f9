package revops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/idempotency"
	"github.com/revopsdev/revops/workspace"
)

func countWorkspaces(t *testing.T, e *env) int {
	t.Helper()
	_, n, err := e.store.ListWorkspaces(t.Context(), workspace.ListFilter{MemberUserID: e.owner.ID}, core.ListParams{Page: 1, PerPage: 1})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	before := countWorkspaces(t, e)
	var created, conflicts, replays atomic.Int64
	var firstBody sync.Map
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			r := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Once"}, hdr{"Idempotency-Key": "create-once"})
			switch {
			case r.Status == 201 && r.Header.Get("Idempotent-Replayed") == "true":
				replays.Add(1)
				firstBody.Store(string(r.Raw), true)
			case r.Status == 201:
				created.Add(1)
				firstBody.Store(string(r.Raw), true)
			case r.Status == 409 && r.Body["error"] == "conflict":
				conflicts.Add(1)
			default:
				t.Errorf("unexpected %d: %s", r.Status, r.Raw)
			}
		})
	}
	wg.Wait()
	t.Logf("100 concurrent POSTs: %d created, %d replayed, %d in flight (409)", created.Load(), replays.Load(), conflicts.Load())
	is.Equal(created.Load(), int64(1))
	is.Equal(created.Load()+replays.Load()+conflicts.Load(), int64(100))
	is.Equal(countWorkspaces(t, e), before+1)
	n := 0
	firstBody.Range(func(_, _ any) bool { n++; return true })
	is.Equal(n, 1) // every replay is byte for byte the first response

	// Afterwards the key replays; another body with it is refused.
	r := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Once"}, hdr{"Idempotency-Key": "create-once"}).must(t, 201)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "true")
	is.True(r.Header.Get("X-Request-ID") != "")
	is.Equal(r.Header.Get("Content-Type"), "application/json")
	r = e.do("POST", "/workspaces", e.key, map[string]any{"name": "Twice"}, hdr{"Idempotency-Key": "create-once"}).must(t, 422, "validation_failed")
	is.True(strings.Contains(r.fieldErr("Idempotency-Key"), "different request"))
	// Same body on another path is another request too.
	e.do("POST", "/user/api-keys", e.key, map[string]any{"name": "Once"}, hdr{"Idempotency-Key": "create-once"}).must(t, 422)
	is.Equal(countWorkspaces(t, e), before+1)
}

// TestIdempotencySlowHandler holds the first request in the handler while
// 99 duplicates arrive: they see it in flight (409), and it runs once.
func TestIdempotencySlowHandler(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	th := hostThings(e, "Slow")
	th.gate = make(chan struct{})
	key := th.key
	post := func() *resp {
		return e.do("POST", "/things", key, map[string]any{"name": "slow"}, hdr{"Idempotency-Key": "slow"})
	}
	// The first request runs and holds the handler; every retry meanwhile
	// is told it is in flight (409) and runs nothing.
	first := make(chan int, 1)
	go func() { first <- post().Status }()
	for th.runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	statuses := make(chan int, 99)
	var wg sync.WaitGroup
	for range 99 {
		wg.Go(func() { statuses <- post().Status })
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	is.Equal(count[409], 99)
	close(th.gate)
	is.Equal(<-first, 201)
	is.Equal(th.runs.Load(), int64(1))
	r := post().must(t, 201)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "true")
	is.Equal(th.runs.Load(), int64(1))
}

func TestIdempotencyKeyRules(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	for _, k := range []string{strings.Repeat("k", 256), "tab\there", "é"} {
		r := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Bad key"}, hdr{"Idempotency-Key": k}).must(t, 400, "bad_request")
		is.True(strings.Contains(r.Body["message"].(string), "1 to 255 printable"))
	}
	e.do("POST", "/workspaces", e.key, map[string]any{"name": "Long key"}, hdr{"Idempotency-Key": strings.Repeat("k", 255)}).must(t, 201)
	// Scoped to the principal: another user's same key runs on its own.
	_, other := e.newUser("other@example.com")
	a := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Scoped"}, hdr{"Idempotency-Key": "shared"}).must(t, 201)
	b := e.do("POST", "/workspaces", other, map[string]any{"name": "Scoped"}, hdr{"Idempotency-Key": "shared"}).must(t, 201)
	is.Equal(b.Header.Get("Idempotent-Replayed"), "")
	is.True(a.id() != b.id())
	// GET ignores the header; a DELETE honours it (204 replayed).
	e.do("GET", "/workspaces", e.key, nil, hdr{"Idempotency-Key": "x"}).must(t, 200)
	wid, _ := e.newWorkspace("Doomed")
	kid := e.do("POST", fmt.Sprintf("/workspaces/%d/api-keys", wid), e.key, map[string]any{"name": "doomed"}).must(t, 201).id()
	path := fmt.Sprintf("/workspaces/%d/api-keys/%d", wid, kid)
	e.do("DELETE", path, e.key, nil, hdr{"Idempotency-Key": "del"}).must(t, 204)
	r := e.do("DELETE", path, e.key, nil, hdr{"Idempotency-Key": "del"}).must(t, 204)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "true")
	e.do("DELETE", path, e.key, nil).must(t, 404) // without the key it runs again
	// Results expire after 24 h and are then run anew.
	e.clock.Advance(24*time.Hour + time.Second)
	r = e.do("POST", "/workspaces", e.key, map[string]any{"name": "Scoped"}, hdr{"Idempotency-Key": "shared"}).must(t, 201)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "")
	is.True(r.id() != a.id())
}

// things is a host route, POST /things, that counts its runs and fails with
// 500 while fail is set, and a workspace key to call it with.
type things struct {
	gate chan struct{} // when set, a "slow" run waits for it to close
	fail atomic.Bool
	runs atomic.Int64
	wid  int64
	key  string
}

func hostThings(e *env, workspace string) *things {
	th := &things{}
	th.wid, th.key = e.newWorkspace(workspace)
	type in struct {
		Name string `json:"name" validate:"required"`
	}
	type out struct {
		Run  int64  `json:"run"`
		Name string `json:"name"`
	}
	revops.Handle(e.p, revops.Route{Method: "POST", Path: "/things", Scope: "posts:write", Tenant: revops.TenantContext, Status: 201},
		func(ctx context.Context, c *revops.Call, in *in) (*out, error) {
			n := th.runs.Add(1)
			if in.Name == "slow" && th.gate != nil {
				<-th.gate
			}
			if th.fail.Load() {
				return nil, errors.New("database unavailable")
			}
			if in.Name == "taken" {
				return nil, core.Conflict("A thing named taken exists.")
			}
			if in.Name == "bad" {
				return nil, core.Invalid("name", "The name bad is not allowed.")
			}
			return &out{Run: n, Name: in.Name}, nil
		})
	return th
}

func TestIdempotencyRetryAfterFailure(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	th := hostThings(e, "Host")
	key := th.key
	th.fail.Store(true)
	e.do("POST", "/things", key, map[string]any{"name": "a"}, hdr{"Idempotency-Key": "k1"}).must(t, 500, "server_error")
	th.fail.Store(false)
	r := e.do("POST", "/things", key, map[string]any{"name": "a"}, hdr{"Idempotency-Key": "k1"}).must(t, 201)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "") // the 500 released the key: it ran again
	is.Equal(r.data()["run"], float64(2))
	r = e.do("POST", "/things", key, map[string]any{"name": "a"}, hdr{"Idempotency-Key": "k1"}).must(t, 201)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "true")
	is.Equal(r.data()["run"], float64(2))
	is.Equal(th.runs.Load(), int64(2))
	// A 4xx the handler answered is kept like a success (the request was
	// answered) ...
	e.do("POST", "/things", key, map[string]any{"name": "taken"}, hdr{"Idempotency-Key": "k2"}).must(t, 409)
	r = e.do("POST", "/things", key, map[string]any{"name": "taken"}, hdr{"Idempotency-Key": "k2"}).must(t, 409)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "true")
	// ... input refused before the handler ran is not (as Stripe): nothing
	// was done, and the retry with the input fixed runs.
	runs := th.runs.Load()
	e.do("POST", "/things", key, map[string]any{}, hdr{"Idempotency-Key": "k3"}).must(t, 422)
	r = e.do("POST", "/things", key, map[string]any{}, hdr{"Idempotency-Key": "k3"}).must(t, 422)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "")
	e.do("POST", "/things", key, map[string]any{"name": "bad"}, hdr{"Idempotency-Key": "k5"}).must(t, 422) // the handler's own validation
	r = e.do("POST", "/things", key, map[string]any{"name": "bad"}, hdr{"Idempotency-Key": "k5"}).must(t, 422)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "")
	runs = th.runs.Load()
	body := []byte(`{"name":"fixed"}`)
	e.do("POST", "/things", key, body, hdr{"Idempotency-Key": "k4"}).must(t, 415, "unsupported_media_type") // sent as octet-stream
	r = e.do("POST", "/things", key, string(body), hdr{"Idempotency-Key": "k4"}).must(t, 201)               // same bytes, as JSON
	is.Equal(r.Header.Get("Idempotent-Replayed"), "")
	is.Equal(th.runs.Load(), runs+1)
}

func TestIdempotencyStaleClaimExpires(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	th := hostThings(e, "Crash")
	wid, key := th.wid, th.key
	keyID := int64(e.do("GET", "/api-keys", key, nil).must(t, 200).list()[0].(map[string]any)["id"].(float64))
	// A process claimed the key and died mid-request: the claim is in the
	// store with nobody to complete or release it.
	now := e.clock.Now()
	dead := &idempotency.Record{Scope: fmt.Sprintf("w%d:k%d", wid, keyID), Key: idempotency.StoredKey("crash"), Fingerprint: idempotency.Fingerprint("crash", "POST", "/things", []byte(`{"name":"a"}`)),
		Claim: idempotency.NewClaim(), LockedUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	prev, err := e.store.ClaimIdempotencyKey(t.Context(), dead, now)
	is.NoErr(err)
	is.True(prev == nil)
	e.do("POST", "/things", key, `{"name":"a"}`, hdr{"Idempotency-Key": "crash"}).must(t, 409, "conflict")
	is.Equal(th.runs.Load(), int64(0))
	e.clock.Advance(time.Minute)
	r := e.do("POST", "/things", key, `{"name":"a"}`, hdr{"Idempotency-Key": "crash"}).must(t, 201)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "")
	is.Equal(th.runs.Load(), int64(1))
	e.do("POST", "/things", key, `{"name":"a"}`, hdr{"Idempotency-Key": "crash"}).must(t, 201)
	is.Equal(th.runs.Load(), int64(1))
}

// TestIdempotencyEdges: an empty response is recorded like any other; a
// request cut short by its lock deadline is not (a retry runs again); the
// query string is part of the fingerprint.
func TestIdempotencyEdges(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *revops.Config) { c.IdempotencyLockTimeout = 300 * time.Millisecond })
	_, key := e.newWorkspace("Edges")
	var silent, slow atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/silent", e.p.Protect("posts:write", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { silent.Add(1) })))
	mux.Handle("/slow", e.p.Protect("posts:write", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Add(1) == 1 {
			<-r.Context().Done() // the first run outlives its claim
			e.p.WriteError(w, r, r.Context().Err())
			return
		}
		w.WriteHeader(http.StatusCreated)
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(path, k string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Idempotency-Key", k)
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		res.Body.Close()
		return res
	}
	is.Equal(post("/silent", "s").StatusCode, 200)
	r := post("/silent", "s")
	is.Equal(r.StatusCode, 200)
	is.Equal(r.Header.Get("Idempotent-Replayed"), "true")
	is.Equal(silent.Load(), int64(1))
	is.Equal(post("/silent?dry_run=1", "s").StatusCode, 422) // another request

	is.Equal(post("/slow", "t").StatusCode, 400) // cancelled at the lock deadline
	is.Equal(post("/slow", "t").StatusCode, 201) // so the retry ran
	is.Equal(slow.Load(), int64(2))
	is.Equal(post("/slow", "t").Header.Get("Idempotent-Replayed"), "true")
}

// TestNestedRequestsKeepTheirCalls: a handler serving sub-requests through
// the platform's handler in parallel keeps its own call (and -race stays
// quiet).
func TestNestedRequestsKeepTheirCalls(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	wa, ka := e.newWorkspace("Outer")
	wb, kb := e.newWorkspace("Inner")
	var outerAfter int64
	h := e.p.Protect("posts:read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				sub := httptest.NewRequestWithContext(r.Context(), "GET", fmt.Sprintf("/workspaces/%d", wb), nil)
				sub.Header.Set("Authorization", "Bearer "+kb)
				rec := httptest.NewRecorder()
				e.p.Handler().ServeHTTP(rec, sub)
				if rec.Code != 200 {
					t.Errorf("sub-request: %d %s", rec.Code, rec.Body)
				}
			})
		}
		wg.Wait()
		outerAfter = revops.CallFrom(r.Context()).WorkspaceID()
	}))
	req := httptest.NewRequest("GET", "/batch", nil)
	req.Header.Set("Authorization", "Bearer "+ka)
	h.ServeHTTP(httptest.NewRecorder(), req)
	is.Equal(outerAfter, wa)
}

// TestIdempotencyRecordsKeepNoSecrets: a response meant to be shown once
// (a new API key) is replayed to the retry, but the store holds neither it
// nor the Idempotency-Key in the clear.
func TestIdempotencyRecordsKeepNoSecrets(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	const idem = "0b8e6f0c-3c1e-4d7a-9a51-2f6d8e4b7c10"
	first := e.do("POST", "/api-keys", e.key, map[string]any{"name": "once", "scopes": []string{"posts:read"}}, wsHdr(e.ws.ID), hdr{"Idempotency-Key": idem}).must(t, 201)
	again := e.do("POST", "/api-keys", e.key, map[string]any{"name": "once", "scopes": []string{"posts:read"}}, wsHdr(e.ws.ID), hdr{"Idempotency-Key": idem}).must(t, 201)
	is.Equal(again.Header.Get("Idempotent-Replayed"), "true")
	raw := first.str("key")
	is.True(raw != "")
	is.Equal(again.str("key"), raw)

	rows, err := e.store.DB().QueryContext(t.Context(), "SELECT idem_key, fingerprint, header, body FROM revops_idempotency_keys")
	is.NoErr(err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var key, fp string
		var header, body []byte
		is.NoErr(rows.Scan(&key, &fp, &header, &body))
		for _, col := range [][]byte{[]byte(key), []byte(fp), header, body} {
			if bytes.Contains(col, []byte(raw)) || bytes.Contains(col, []byte(idem)) || bytes.Contains(col, []byte(raw[len(raw)-12:])) {
				t.Fatalf("the store holds the key or the Idempotency-Key in the clear: %q", col)
			}
		}
		n++
	}
	is.NoErr(rows.Err())
	is.Equal(n, 1)
}
