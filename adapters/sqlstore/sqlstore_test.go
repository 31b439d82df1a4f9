package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/ratelimit"
	"github.com/revopsdev/revops/storetest"
	"github.com/revopsdev/revops/workspace"
)

const postgresEnv = "REVOPS_TEST_POSTGRES_URL"

// openSQLite opens and migrates a store in a file of its own.
func openSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	return openMigrated(t, "sqlite:"+filepath.Join(t.TempDir(), "revops.db"))
}

func openMigrated(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// postgres returns a function opening a migrated store in a fresh schema of
// the test database, dropped when the (sub)test ends; it skips t when no
// database is configured.
func postgres(t *testing.T) func(t *testing.T) *sqlstore.Store {
	t.Helper()
	schemaURL := postgresSchema(t)
	return func(t *testing.T) *sqlstore.Store { return openMigrated(t, schemaURL(t)) }
}

// postgresSchema returns a function creating a fresh schema, dropped when
// the (sub)test ends, and returning the URL that selects it.
func postgresSchema(t *testing.T) func(t *testing.T) string {
	t.Helper()
	raw := os.Getenv(postgresEnv)
	if raw == "" {
		t.Skip("Postgres suite skipped: set " + postgresEnv + " (scripts/test does) to run it")
	}
	admin, err := sqlstore.Open(t.Context(), raw)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	base, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	var n atomic.Int64
	prefix := fmt.Sprintf("revops_test_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	return func(t *testing.T) string {
		t.Helper()
		schema := fmt.Sprintf("%s_%d", prefix, n.Add(1))
		if _, err := admin.DB().ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			// The store is closed by then (cleanups run last-in first-out).
			if _, err := admin.DB().ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", schema, err)
			}
		})
		u := *base
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
}

func TestStoreSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openSQLite(t) })
}

// TestStoreSQLiteMemory runs the suite on the single-connection in-memory
// configuration, which deadlocks if a transaction ever waits for a second
// connection.
func TestStoreSQLiteMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openMigrated(t, "sqlite::memory:") })
}

func TestStorePostgres(t *testing.T) {
	open := postgres(t)
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
}

// TestStorePostgresCustomPlans runs the suite with PostgreSQL choosing its
// own plans (the URL sets plan_cache_mode): webhook claims and finishes
// then lock their rows in id order first (Store.claimSQL, Store.finishSQL).
func TestStorePostgresCustomPlans(t *testing.T) {
	schemaURL := postgresSchema(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return openMigrated(t, schemaURL(t)+"&plan_cache_mode=force_custom_plan")
	})
}

// each runs fn against SQLite and, when configured, Postgres.
func each(t *testing.T, fn func(t *testing.T, open func(t *testing.T) *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgres(t)) })
}

func TestOpenSelectsDialect(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "abs.db")
	cases := []struct{ url, file string }{
		{"sqlite:" + filepath.Join(dir, "a.db"), "a.db"},
		{"sqlite://" + abs, "abs.db"},
		{"file:" + filepath.Join(dir, "b.db"), "b.db"},
		{filepath.Join(dir, "c.db"), "c.db"},
		{"sqlite:" + filepath.Join(dir, "d.db") + "?_pragma=cache_size(-4000)", "d.db"},
		{"sqlite::memory:", ""},
		{":memory:", ""},
	}
	for _, c := range cases {
		s, err := sqlstore.Open(t.Context(), c.url)
		if err != nil {
			t.Errorf("Open(%q): %v", c.url, err)
			continue
		}
		if s.Dialect() != sqlstore.DialectSQLite {
			t.Errorf("Open(%q).Dialect() = %q, want sqlite", c.url, s.Dialect())
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Errorf("Open(%q).Migrate: %v", c.url, err)
		}
		if c.file != "" {
			if _, err := os.Stat(filepath.Join(dir, c.file)); err != nil {
				t.Errorf("Open(%q) did not create %s: %v", c.url, c.file, err)
			}
			var mode string
			var fk, busy int
			db := s.DB()
			if err := db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("Open(%q): journal_mode %q (%v), want wal", c.url, mode, err)
			}
			if err := db.QueryRowContext(t.Context(), "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
				t.Errorf("Open(%q): foreign_keys %d (%v), want 1", c.url, fk, err)
			}
			if err := db.QueryRowContext(t.Context(), "PRAGMA busy_timeout").Scan(&busy); err != nil || busy < 5000 {
				t.Errorf("Open(%q): busy_timeout %d (%v), want at least 5000", c.url, busy, err)
			}
		}
		_ = s.Close()
	}

	if raw := os.Getenv(postgresEnv); raw != "" {
		for _, u := range []string{raw, strings.Replace(raw, "postgres://", "postgresql://", 1)} {
			s, err := sqlstore.Open(t.Context(), u)
			if err != nil {
				t.Errorf("Open(postgres): %v", err)
				continue
			}
			if s.Dialect() != sqlstore.DialectPostgres {
				t.Errorf("Dialect() = %q, want postgres", s.Dialect())
			}
			_ = s.Close()
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cases := []struct {
		url     string
		want    []string // substrings of the error
		notWant string
	}{
		{"", []string{"empty database URL", "postgres://", "sqlite:"}, ""},
		{"mysql://u@h/db", []string{`unsupported database URL scheme "mysql"`, "postgres://", "sqlite:"}, ""},
		{"sqlite:", []string{"names no file"}, ""},
		{"sqlite:" + filepath.Join(t.TempDir(), "missing", "dir", "x.db"), []string{"cannot open SQLite database", "directory exist"}, ""},
		{"sqlite:x.db?%zz", []string{"malformed query"}, ""},
		{"postgres://revops:s3cret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", []string{"cannot connect to PostgreSQL", "127.0.0.1:1"}, "s3cret"},
	}
	for _, c := range cases {
		s, err := sqlstore.Open(ctx, c.url)
		if err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded, want an error", c.url)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q) = %q, want it to mention %q", c.url, err, w)
			}
		}
		if c.notWant != "" && strings.Contains(err.Error(), c.notWant) {
			t.Errorf("Open(%q) = %q leaks %q", c.url, err, c.notWant)
		}
	}
}

func TestMigrateIdempotent(t *testing.T) {
	each(t, func(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
		s := open(t) // migrated once
		for range 2 {
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
		}
		// Concurrent calls are serialized.
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		}
		var applied int
		if err := s.DB().NewRaw("SELECT COUNT(*) FROM revops_migrations").Scan(t.Context(), &applied); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob("migrations/*.sql")
		if applied != len(files) || applied == 0 {
			t.Errorf("revops_migrations has %d rows, want one per migration file (%d)", applied, len(files))
		}
		// The store works after repeated migrations.
		u := &workspace.User{Email: "m@example.test"}
		if err := s.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	})
}

// A {{postgres_only}} statement runs on PostgreSQL and is skipped on
// SQLite (which has no syntax for it: migrating would fail).
func TestPostgresOnlyMigrationStatements(t *testing.T) {
	each(t, func(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
		s := open(t)
		if s.Dialect() != sqlstore.DialectPostgres {
			return // migrated without error: the statement was skipped
		}
		var opts []string
		err := s.DB().NewRaw("SELECT unnest(reloptions) FROM pg_class WHERE relname = 'revops_webhook_deliveries'").Scan(t.Context(), &opts)
		if err != nil || !slices.Contains(opts, "fillfactor=50") {
			t.Errorf("revops_webhook_deliveries options %v (%v), want fillfactor=50", opts, err)
		}
	})
}

// TestAdapterConventions covers what this adapter adds to the interfaces'
// contracts.
func TestAdapterConventions(t *testing.T) {
	each(t, func(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
		s := open(t)
		ctx := t.Context()
		u := &workspace.User{Email: "Mixed.Case@Example.TEST", Name: "M"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if u.Email != "mixed.case@example.test" {
			t.Errorf("CreateUser stored email %q, want it lower-cased", u.Email)
		}
		if _, err := s.UserByEmail(ctx, "MIXED.case@example.test"); err != nil {
			t.Errorf("UserByEmail ignores case: %v", err)
		}
		if err := s.CreateUser(ctx, &workspace.User{Email: "MIXED.CASE@example.test"}); !errors.Is(err, core.ErrConflict) {
			t.Errorf("CreateUser with the same email in other case: %v, want conflict", err)
		}

		w := &workspace.Workspace{Name: "W", Slug: "w"}
		if err := s.CreateWorkspace(ctx, w, u.ID); err != nil {
			t.Fatal(err)
		}
		invalid := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, core.ErrValidation) {
				t.Errorf("%s: %v, want a validation error", what, err)
			}
		}
		_, _, err := s.ListWorkspaces(ctx, workspace.ListFilter{}, core.ListParams{Sort: []core.Sort{{Field: "name; DROP TABLE users"}}})
		invalid("ListWorkspaces with an unknown sort field", err)
		_, _, err = s.ListMembers(ctx, w.ID, core.ListParams{Filter: core.Filter{UpdatedAfter: time.Now()}})
		invalid("ListMembers with updated_after", err)
		_, _, err = s.ListKeys(ctx, w.ID, core.ListParams{Filter: core.Filter{Status: keys.StatusRevoked}}, time.Now())
		invalid("ListKeys with status revoked", err)
		_, _, err = s.ListWorkspaces(ctx, workspace.ListFilter{}, core.ListParams{Filter: core.Filter{Status: "active"}})
		invalid("ListWorkspaces with a status", err)

		// PutIcon fills a missing ETag from the data.
		ic := &workspace.Icon{WorkspaceID: w.ID, ContentType: "image/png", Data: []byte("x")}
		if err := s.PutIcon(ctx, ic); err != nil {
			t.Fatal(err)
		}
		if len(ic.ETag) != 64 {
			t.Errorf("PutIcon without ETag set ETag %q, want a SHA-256", ic.ETag)
		}

		// TouchKeys never moves last_used_at backwards (batches may arrive
		// out of order).
		k := &keys.Key{WorkspaceID: w.ID, Name: "k", Hash: strings.Repeat("a", 64)}
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		t1 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		for _, at := range []time.Time{t1, t1.Add(-time.Hour)} {
			if err := s.TouchKeys(ctx, map[int64]time.Time{k.ID: at}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Key(ctx, w.ID, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t1) {
			t.Errorf("LastUsedAt = %v, want %s (not moved back)", got.LastUsedAt, t1)
		}

		// RotateKey puts the new key in the workspace whatever next says.
		next := &keys.Key{Name: "n", Hash: strings.Repeat("b", 64)}
		if err := s.RotateKey(ctx, w.ID, k.ID, next, t1); err != nil {
			t.Fatal(err)
		}
		if next.WorkspaceID != w.ID {
			t.Errorf("rotated key's WorkspaceID = %d, want %d", next.WorkspaceID, w.ID)
		}
	})
}

// TestUnknownErrorsAreWrapped checks that a failure which is neither "not
// found" nor a conflict reaches the caller as a plain wrapped error (the
// HTTP layer reports it as server_error).
func TestUnknownErrorsAreWrapped(t *testing.T) {
	s := openSQLite(t)
	if _, err := s.DB().ExecContext(t.Context(), "DROP TABLE revops_api_keys"); err != nil {
		t.Fatal(err)
	}
	_, err := s.KeyByHash(t.Context(), "x")
	if err == nil || errors.Is(err, core.ErrNotFound) || errors.Is(err, core.ErrConflict) {
		t.Fatalf("KeyByHash on a broken schema: %v, want an internal error", err)
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		t.Errorf("KeyByHash on a broken schema returned a core.Error %v, want the wrapped driver error", ce)
	}
	if !strings.Contains(err.Error(), "revops_api_keys") {
		t.Errorf("error %q does not name the cause", err)
	}
}

func TestLimiter(t *testing.T) {
	each(t, func(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
		storetest.RunLimiter(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
			return open(t).Limiter(now)
		})
	})
}

// TestLimiterTwoInstances shares one database between two stores, as two
// instances of a host behind a load balancer would.
func TestLimiterTwoInstances(t *testing.T) {
	p := ratelimit.Policy{Name: "count", PerMinute: 12_000} // 200/s
	t.Run("sqlite", func(t *testing.T) {
		// SQLite serializes writers (and is slow under -race): a rate its
		// two instances can still saturate.
		p := ratelimit.Policy{Name: "count", PerMinute: 1_200} // 20/s
		path := filepath.Join(t.TempDir(), "shared.db")
		a, b := openMigrated(t, path), openMigrated(t, path)
		storetest.CountShared(t, []ratelimit.Limiter{a.Limiter(nil), b.Limiter(nil)}, p, 3*time.Second)
	})
	t.Run("postgres", func(t *testing.T) {
		url := postgresSchema(t)(t)
		a, b := openMigrated(t, url), openMigrated(t, url)
		storetest.CountShared(t, []ratelimit.Limiter{a.Limiter(nil), b.Limiter(nil)}, p, 3*time.Second)
	})
}

// TestThresholdMarksBeforeLimits: a mark migration 0014 carried over (limit
// 0) stands for its period and percent whatever the limit, so the first
// usage after the upgrade announces nothing twice; other percents and
// periods are marked as usual.
func TestThresholdMarksBeforeLimits(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *sqlstore.Store{"sqlite": openSQLite, "postgres": func(t *testing.T) *sqlstore.Store {
		return postgres(t)(t)
	}} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			ctx := t.Context()
			wid := sqltest.Workspace(t, st)
			jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			if _, err := st.DB().NewRaw("INSERT INTO revops_usage_thresholds (workspace_id, feature, period_start, percent, lim) VALUES (?, ?, ?, ?, 0)",
				wid, "api_calls", jan, 80).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				period  time.Time
				percent int
				first   bool
			}{{jan, 80, false}, {jan, 100, true}, {jan.AddDate(0, 1, 0), 80, true}} {
				first, err := st.MarkThreshold(ctx, billing.Counter{WorkspaceID: wid, Feature: "api_calls", PeriodStart: c.period}, c.percent, 1000)
				if err != nil || first != c.first {
					t.Errorf("%v %d%%: first %v, %v; want %v", c.period, c.percent, first, err, c.first)
				}
			}
		})
	}
}
