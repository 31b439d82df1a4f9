// Package sqltest gives tests the databases they run on: a migrated store in
// a SQLite file of its own or in a fresh schema of the Postgres that
// REVOPS_TEST_POSTGRES_URL names (scripts/test starts one), and a
// workspace with its owner to work in.
package sqltest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/workspace"
)

// PostgresEnv names the test database.
const PostgresEnv = "REVOPS_TEST_POSTGRES_URL"

var schemas atomic.Int64

// PostgresURL creates a fresh schema, dropped when t ends, and returns the
// URL selecting it (search_path). It skips t when PostgresEnv is not set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(PostgresEnv)
	if raw == "" {
		t.Skip("Postgres skipped: set " + PostgresEnv + " (scripts/test does) to run it")
	}
	base, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	admin, err := sqlstore.Open(context.Background(), raw)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	schema := fmt.Sprintf("revops_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, schemas.Add(1))
	if _, err := admin.DB().ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		// Registered first, so it runs after the cleanups closing the
		// test's own connections.
		defer admin.Close()
		if _, err := admin.DB().ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := base.Query()
	q.Set("search_path", schema)
	base.RawQuery = q.Encode()
	return base.String()
}

// Open opens and migrates the store at url, closed when t ends.
func Open(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// SQLite is a migrated store in a file of its own.
func SQLite(t testing.TB) *sqlstore.Store {
	return Open(t, filepath.Join(t.TempDir(), "revops.db"))
}

// Postgres is a migrated store in a fresh schema (see PostgresURL).
func Postgres(t testing.TB) *sqlstore.Store { return Open(t, PostgresURL(t)) }

// Workspace creates the workspace "Acme" and its owner, and returns the
// workspace's id.
func Workspace(t testing.TB, st *sqlstore.Store) int64 {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &workspace.User{Email: "o@acme.test", Name: "O", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	w := &workspace.Workspace{Name: "Acme", Slug: "acme", Tier: "free", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateWorkspace(ctx, w, u.ID); err != nil {
		t.Fatal(err)
	}
	return w.ID
}
