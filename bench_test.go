package revops_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

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
