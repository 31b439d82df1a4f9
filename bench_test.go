package revops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/internal/benchratio"
)

// BenchmarkGetWorkspace serves an authenticated GET /api/v1/workspaces/{id}
// through the mounted handler and compares it with a bare net/http handler
// writing the same JSON, timed in the same run (x_baseline). A second
// baseline also reads the workspace from the same store, isolating what the
// pipeline (auth, tenancy, scope, envelope) costs on top of the query.
func BenchmarkGetWorkspace(b *testing.B) {
	e := newEnv(b)
	wid, key := e.newWorkspace("Bench")
	path := fmt.Sprintf("/api/v1/workspaces/%d", wid)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", e.p.Handler()))

	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	serve := func(h http.Handler) []byte {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return w.Body.Bytes()
	}
	body := append([]byte(nil), serve(mux)...)

	static := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	withRead := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := e.store.Workspace(r.Context(), wid)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"id": ws.ID, "name": ws.Name, "slug": ws.Slug, "tier": ws.Tier,
			"settings":    map[string]any{"timezone": ws.Settings.Timezone, "locale": ws.Settings.Locale},
			"totp_policy": ws.TOTPPolicy, "created_at": ws.CreatedAt, "updated_at": ws.UpdatedAt}})
	})

	b.Run("vs_static_json", func(b *testing.B) {
		for b.Loop() {
			serve(mux)
		}
		benchratio.Report(b, func() { serve(static) })
	})
	b.Run("vs_handler_with_same_query", func(b *testing.B) {
		for b.Loop() {
			serve(mux)
		}
		benchratio.Report(b, func() { serve(withRead) })
	})
}

// BenchmarkIdempotency compares a POST replayed from its Idempotency-Key
// with the same POST run for the first time (a fresh key each iteration:
// claim, handler, record), in-process on SQLite. The host handler itself
// does no I/O, so the ratio isolates what the idempotency layer costs.
func BenchmarkIdempotency(b *testing.B) {
	e := newEnv(b)
	th := hostThings(e, "Bench")
	key := th.key
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", e.p.Handler()))
	body := []byte(`{"name":"bench"}`)
	post := func(idemKey string) {
		req := httptest.NewRequest("POST", "/api/v1/things", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 201 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	post("replayed")
	var n atomic.Int64
	first := func() { post(fmt.Sprintf("first-%d", n.Add(1))) }
	b.Run("replay_vs_first_execution", func(b *testing.B) {
		for b.Loop() {
			post("replayed")
		}
		benchratio.Report(b, first)
	})
	b.Run("first_execution_vs_no_key", func(b *testing.B) {
		for b.Loop() {
			first()
		}
		benchratio.Report(b, func() { post("") })
	})
}

// BenchmarkPipelineGet serves an authenticated GET of a host route that
// does no I/O through the whole pipeline (request id, key auth, workspace,
// scope, rate limit, idempotency, envelope), in-process, against a bare
// net/http handler encoding the same JSON. scripts/bench-pipeline measures
// the same over loopback with wrk.
func BenchmarkPipelineGet(b *testing.B) {
	e := newEnv(b)
	type item struct {
		ID     int64  `json:"id"`
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	out := item{ID: 1, Name: "Benchmark item", Status: "active"}
	revops.Handle(e.p, revops.Route{Method: "GET", Path: "/items/{id}", Scope: "posts:read", Tenant: revops.TenantContext},
		func(ctx context.Context, c *revops.Call, _ *revops.NoBody) (*item, error) { return &out, nil })
	_, key := e.newWorkspace("Bench", "posts:read")
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", e.p.Handler()))
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": out})
	})
	req := httptest.NewRequest("GET", "/api/v1/items/1", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	serve := func(h http.Handler) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	for b.Loop() {
		serve(mux)
	}
	benchratio.Report(b, func() { serve(bare) })
}
