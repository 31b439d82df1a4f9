package revops_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
)

// Mount revops under a prefix and call it with the bootstrap key.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "revops-example")
	defer os.RemoveAll(dir)
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
	p, err := revops.New(revops.Config{Store: store, Resources: []string{"posts"}})
	if err != nil {
		panic(err)
	}
	boot, _ := p.Bootstrap(ctx, "admin@localhost", "Default")

	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", p.Handler()))

	req := httptest.NewRequest("GET", "/api/v1/workspaces?fields=name,slug", nil)
	req.Header.Set("Authorization", "Bearer "+boot.Key)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code)
	fmt.Println(w.Body.String()[:45])
	// Output:
	// 200
	// {"data":[{"name":"Default","slug":"default"}]
}

// Protect puts a host handler behind the revops pipeline.
func ExamplePlatform_Protect() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "revops-example")
	defer os.RemoveAll(dir)
	store, _ := sqlstore.Open(ctx, filepath.Join(dir, "app.db"))
	defer store.Close()
	store.Migrate(ctx)
	p, _ := revops.New(revops.Config{Store: store, Resources: []string{"reports"}})
	boot, _ := p.Bootstrap(ctx, "admin@localhost", "Default")

	reports := p.Protect("reports:read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := revops.CallFrom(r.Context())
		revops.WriteJSON(w, 200, map[string]any{"workspace_id": c.WorkspaceID()})
	}))
	for _, key := range []string{"", boot.Key} {
		req := httptest.NewRequest("GET", "/reports", nil)
		req.Header.Set("X-Workspace-ID", fmt.Sprint(boot.Workspace.ID))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		reports.ServeHTTP(w, req)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 401 {"error":"unauthorized","message":"Invalid or missing API key."}
	// 200 {"workspace_id":1}
}
