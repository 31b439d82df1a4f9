package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A pipeline whose statement fails midway (here the second of four, the
// first having begun a transaction and written) returns that failure,
// runs nothing after it, and leaves the one connection of the pool clean:
// no transaction open, nothing written, the next pipeline runs.
func TestPipelineFailureMidway(t *testing.T) {
	ctx := t.Context()
	s := oneConnPostgres(t)
	if _, err := s.db.DB.ExecContext(ctx, "CREATE TEMPORARY TABLE pipe_probe (n int)"); err != nil {
		t.Fatal(err)
	}
	insert := "INSERT INTO pipe_probe VALUES ($1)"
	var scanned []int
	var err error
	err = s.pipelined(ctx, []string{insert}, func(r *pipeRunner) error {
		r.send(pgStep{sql: "BEGIN"}, pgStep{sql: insert, args: []any{1}},
			pgStep{sql: "SELECT 1 / $1::int", args: []any{0}},
			pgStep{sql: insert, args: []any{2}},
			pgStep{sql: "SELECT 3", scan: func(rs rowScanner) error {
				for rs.Next() {
					scanned = append(scanned, 3)
				}
				return nil
			}})
		if err := r.read(); err != nil {
			return err
		}
		t.Error("read after a failed statement reported success")
		r.send(pgStep{sql: "COMMIT"})
		return nil
	})
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "22012" {
		t.Fatalf("pipeline: %v, want the division by zero (22012)", err)
	}
	if len(scanned) != 0 {
		t.Errorf("a statement after the failure ran: %v", scanned)
	}
	// The same connection, clean: no open transaction, nothing inserted.
	var n int
	if err := s.db.DB.QueryRowContext(ctx, "SELECT count(*) FROM pipe_probe").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the failed pipeline: %d rows, %v; want 0 (rolled back)", n, err)
	}
	err = s.pipelined(ctx, []string{insert}, func(r *pipeRunner) error {
		r.send(pgStep{sql: insert, args: []any{4}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.DB.QueryRowContext(ctx, "SELECT count(*) FROM pipe_probe").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after a pipeline committing one row: %d rows, %v", n, err)

	}

	// A step that cannot be encoded is never sent, nor is anything before
	// it committed, even what was read already: in the implicit transaction
	// a Sync would commit it, so the connection is closed unsynced instead
	// (the pool opens another).
	table := fmt.Sprintf("pipe_unsent_%d", time.Now().UnixNano())
	if _, err := s.db.DB.ExecContext(ctx, "CREATE TABLE "+table+" (n int)"); err != nil {
		t.Fatal(err)
	}
	defer s.db.DB.ExecContext(context.WithoutCancel(ctx), "DROP TABLE "+table)
	insertInto := "INSERT INTO " + table + " VALUES ($1)"
	err = s.pipelined(ctx, []string{insertInto}, func(r *pipeRunner) error {
		r.send(pgStep{sql: insertInto, args: []any{5}})
		if err := r.read(); err != nil {
			return err
		}
		r.send(pgStep{sql: insertInto, args: []any{make(chan int)}})
		return nil
	})
	if err == nil {
		t.Fatal("a step with an unencodable argument was sent")
	}
	if err := s.db.DB.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after an unsent step: %d rows, %v; want 0", n, err)
	}
}

// A prepared statement whose table changed under it fails once; its
// connection goes, so the next call prepares it anew and succeeds.
func TestPipelineStaleStatement(t *testing.T) {
	ctx := t.Context()
	s := oneConnPostgres(t)
	table := fmt.Sprintf("pipe_stale_%d", time.Now().UnixNano())
	if _, err := s.db.DB.ExecContext(ctx, "CREATE TABLE "+table+" (a int)"); err != nil {
		t.Fatal(err)
	}
	defer s.db.DB.ExecContext(context.WithoutCancel(ctx), "DROP TABLE "+table)
	q := "SELECT * FROM " + table
	run := func() error {
		return s.pipelined(ctx, []string{q}, func(r *pipeRunner) error {
			r.send(pgStep{sql: q})
			return nil
		})
	}
	if err := run(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.DB.ExecContext(ctx, "ALTER TABLE "+table+" ADD COLUMN b int"); err != nil {
		t.Fatal(err)
	}
	var pg *pgconn.PgError
	if err := run(); !errors.As(err, &pg) || pg.Code != "0A000" {
		t.Fatalf("the stale statement: %v, want 0A000", err)
	}
	if err := run(); err != nil {
		t.Fatalf("after the stale statement's connection went: %v", err)
	}
}

// oneConnPostgres opens a store on REVOPS_TEST_POSTGRES_URL whose pool
// keeps one connection, so that each call reuses the one before's.
func oneConnPostgres(t *testing.T) *Store {
	url := os.Getenv("REVOPS_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("Postgres suite skipped: set REVOPS_TEST_POSTGRES_URL (scripts/test does) to run it")
	}
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.db.DB.SetMaxOpenConns(1)
	return s
}
