// Command pipeline serves one authenticated GET for load tests: with
// -mode=pipeline through the whole revops pipeline (request id, key auth,
// workspace, scope, rate limit, idempotency, envelope), with -mode=bare as a
// bare net/http handler writing the same JSON, with -mode=headers as that
// handler also setting the six headers the pipeline sends. scripts/bench-pipeline runs
// both pinned to one core and loads them from another with wrk.
//
// It prints the API key to use on its first line, then serves until killed.
// -cpuprofile and -memprofile write profiles of its first 10 s of serving.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/ratelimit"
)

type item struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

func main() {
	mode := flag.String("mode", "pipeline", "pipeline, bare or headers")
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the first 10 s of serving to this file")
	heap := flag.String("memprofile", "", "write a heap profile after 10 s of serving to this file")
	flag.Parse()
	if *heap != "" {
		runtime.MemProfileRate = 4096
		time.AfterFunc(10*time.Second, func() {
			f, err := os.Create(*heap)
			if err == nil {
				err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "memprofile:", err)
			}
		})
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		time.AfterFunc(10*time.Second, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if err := run(*mode, *addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(mode, addr string) error {
	ctx := context.Background()
	out := item{ID: 1, Name: "Benchmark item", Status: "active"}
	switch mode {
	case "bare", "headers":
		fmt.Println("none")
		return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			if mode == "headers" { // only the headers the pipeline must send, fixed
				h.Set("X-Request-Id", "req_6dbc0d080000da3fa3d4b6e6")
				h.Set("X-Ratelimit-Limit", "1000000000")
				h.Set("X-Ratelimit-Remaining", "999999999")
				h.Set("X-Ratelimit-Reset", "1795431544")
				h.Set("Ratelimit-Policy", `"free";q=1000000000;w=60`)
				h.Set("Ratelimit", `"free";r=999999999;t=0`)
			}
			h.Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"data": out})
		}))
	case "pipeline":
	default:
		return fmt.Errorf("unknown -mode %q: use pipeline, bare or headers", mode)
	}
	dir, err := os.MkdirTemp("", "revops-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	// One tier high enough that the load never hits 429: every request
	// still spends from its bucket and gets the headers.
	limits := map[string]ratelimit.Policy{}
	for _, t := range revops.DefaultTiers {
		limits[t] = ratelimit.Policy{PerMinute: 1_000_000_000}
	}
	p, err := revops.New(revops.Config{Store: store, Resources: []string{"items"}, RateLimits: limits,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	revops.Handle(p, revops.Route{Method: "GET", Path: "/api/v1/items/{id}", Scope: "items:read", Tenant: revops.TenantContext},
		func(ctx context.Context, c *revops.Call, _ *revops.NoBody) (*item, error) { return &out, nil })
	boot, err := p.Bootstrap(ctx, "bench@localhost", "Bench")
	if err != nil {
		return err
	}
	// A workspace key: its access needs no membership read per request.
	_, key, err := p.Keys().Create(ctx, boot.Workspace.ID, boot.User.ID, keys.CreateInput{Name: "bench", Scopes: []string{"items:read"}}, nil)
	if err != nil {
		return err
	}
	fmt.Println(key)
	go p.Start(ctx)
	// The handler is served directly, like the bare one (a host would
	// usually mount it under a prefix: see examples/server).
	return http.ListenAndServe(addr, p.Handler())
}
