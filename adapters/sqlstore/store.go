// Package sqlstore is the SQL store adapter of revops: one implementation of
// workspace.Store and keys.Store on bun, for PostgreSQL (pgdialect over the
// pgx v5 stdlib driver) and SQLite (sqlitedialect over the pure-Go
// modernc.org/sqlite driver).
//
// Open selects the database by URL, Migrate creates or upgrades the schema
// from migrations embedded in this package, and DB exposes the *bun.DB so a
// host application can keep its own tables in the same database.
//
// Conventions shared by every method:
//   - times are stored in UTC, truncated to microseconds (the resolution of
//     both databases), and returned in UTC;
//   - a missing row, a row of another workspace and a reference to a missing
//     workspace or user are core.NotFound; a unique violation is
//     core.Conflict; every other failure is returned wrapped (%w), which the
//     HTTP layer reports as server_error;
//   - multi-statement operations run in one transaction. On SQLite write
//     transactions begin IMMEDIATE, so they queue on the busy timeout instead
//     of failing with SQLITE_BUSY.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/webhooks"
	"github.com/revopsdev/revops/workspace"
)

// Dialect names returned by (*Store).Dialect.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// SQLiteBusyTimeout is how long an SQLite statement waits for a lock held by
// another connection before failing.
const SQLiteBusyTimeout = 10 * time.Second

var (
	_ workspace.Store = (*Store)(nil)
	_ keys.Store      = (*Store)(nil)
)

// Store implements workspace.Store and keys.Store on one SQL database.
// It is safe for concurrent use.
type Store struct {
	db      *bun.DB
	dialect string
	// hot is passed first to the few hot statements that bind their
	// values (webhook claims and finishes): prepared once per connection,
	// unless the URL chose a query exec mode (e.g. for a pooler that keeps
	// no prepared statements), which then applies to them too.
	hot []any
	// claimSQL and finishSQL are the webhook claim's and finish's
	// statements, chosen once. When the plans of the hot statements are
	// not forced generic (the URL chose plan_cache_mode or the exec mode),
	// a custom plan may walk the delivery rows in another order than by
	// id, so they are the texts that lock their rows in id order first
	// (see Lock order in webhooks.go).
	claimSQL, finishSQL string
	// sequential: the URL chose the simple protocol, so claims and
	// finishes run their statements one by one instead of pipelined.
	sequential bool
}

// supportedURLs is quoted by every error about a database URL.
const supportedURLs = `postgres://user:password@host:5432/dbname?sslmode=disable (or postgresql://), ` +
	`sqlite:./revops.db (or sqlite:///abs/path.db, a plain file path, sqlite::memory:)`

// Open connects to the database that url names and checks that it answers.
// It does not create tables: call Migrate.
//
//   - postgres://… or postgresql://…: PostgreSQL through pgx v5. Any libpq
//     connection parameter the pgx driver understands may be given in the
//     query string (sslmode, search_path, pool settings are up to the caller
//     through DB()).
//   - sqlite:PATH, sqlite://PATH, file:PATH or a plain file path: SQLite in
//     WAL mode with foreign keys on, a busy timeout and immediate write
//     transactions. Query parameters after PATH are passed to the
//     modernc.org/sqlite driver after the adapter's own.
//   - sqlite::memory: (or :memory:): a private in-memory SQLite database on a
//     single connection, gone when the Store is closed.
func Open(ctx context.Context, url string) (*Store, error) {
	kind, dsn, memory, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	switch kind {
	case DialectPostgres:
		return openPostgres(ctx, dsn)
	default:
		return openSQLite(ctx, dsn, memory)
	}
}

// parseURL tells which database url selects and returns the driver's data
// source name.
func parseURL(raw string) (kind, dsn string, memory bool, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "", false, fmt.Errorf("sqlstore: empty database URL: use %s", supportedURLs)
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return DialectPostgres, s, false, nil
	case strings.HasPrefix(lower, "sqlite:"):
		s = s[len("sqlite:"):]
		s = strings.TrimPrefix(s, "//")
	case strings.HasPrefix(lower, "file:"):
		s = s[len("file:"):]
	default:
		// A scheme we do not know (mysql://, postgresx://, …) is an error;
		// anything else, including C:\dir\file.db, is a file path.
		if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
			return "", "", false, fmt.Errorf("sqlstore: unsupported database URL scheme %q: use %s", s[:i], supportedURLs)
		}
	}
	path, query, _ := strings.Cut(s, "?")
	if path == "" {
		return "", "", false, fmt.Errorf("sqlstore: SQLite URL %q names no file: use %s", raw, supportedURLs)
	}
	memory = path == ":memory:"
	extra, err := url.ParseQuery(query)
	if err != nil {
		return "", "", false, fmt.Errorf("sqlstore: SQLite URL %q has a malformed query string: %w", raw, err)
	}
	v := url.Values{}
	v.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", SQLiteBusyTimeout.Milliseconds()))
	v.Add("_pragma", "foreign_keys(1)")
	if !memory {
		v.Add("_pragma", "journal_mode(WAL)")
		v.Add("_pragma", "synchronous(NORMAL)")
	}
	v.Set("_txlock", "immediate")
	for k, vals := range extra {
		if k == "_txlock" {
			v.Del(k)
		}
		for _, x := range vals {
			v.Add(k, x)
		}
	}
	return DialectSQLite, "file:" + path + "?" + v.Encode(), memory, nil
}

func isScheme(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return len(s) > 1 // "C" of C://… is a drive letter, not a scheme
}

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	where := redact(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: invalid PostgreSQL URL %s: %w (expected %s)", where, err, supportedURLs)
	}
	var hot []any
	var opts []stdlib.OptionOpenDB
	lockFirst := true
	if !strings.Contains(dsn, "default_query_exec_mode") {
		// bun writes the values into the SQL text, so nearly every
		// statement is new to pgx's statement cache, and preparing it
		// costs a round trip of its own. The simple protocol sends it once.
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		hot = []any{pgx.QueryExecModeCacheStatement}
		if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set {
			// The prepared (hot) statements bind arrays of ids and values.
			// A custom plan of one costs more to make than to run, and
			// PostgreSQL keeps making them while the batch sizes vary;
			// it may also pick the due index over the ids (measured: the
			// claim's custom plan 12 ms against the generic 3.8 ms for 256
			// ids). The generic plan looks the rows up by id. A session
			// SET, not a startup parameter, which poolers may refuse.
			opts = append(opts, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
				_, err := c.Exec(ctx, "SET plan_cache_mode = force_generic_plan")
				return err
			}))
			lockFirst = false
		}
	}
	sqldb := stdlib.OpenDB(*cfg, opts...)
	if err := sqldb.PingContext(ctx); err != nil {
		_ = sqldb.Close()
		return nil, fmt.Errorf("sqlstore: cannot connect to PostgreSQL at %s: %w (is the server running, and are the host, port, user, password, database and sslmode in the URL right?)", where, err)
	}
	// database/sql keeps only 2 idle connections by default, so any burst
	// of concurrent requests reconnects; keep more. Tune through DB().
	sqldb.SetMaxIdleConns(10)
	s := &Store{db: bun.NewDB(sqldb, pgdialect.New()), dialect: DialectPostgres, hot: hot,
		claimSQL: claimPostgres, finishSQL: finishPostgres,
		sequential: hot == nil && cfg.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol}
	if lockFirst {
		s.claimSQL, s.finishSQL = claimPostgresLockFirst, finishPostgresLockFirst
	}
	return s, nil
}

func openSQLite(ctx context.Context, dsn string, memory bool) (*Store, error) {
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: invalid SQLite URL: %w", err)
	}
	if memory {
		// Every connection to :memory: is a database of its own: keep exactly
		// one, and never let it be closed while the Store lives.
		sqldb.SetMaxOpenConns(1)
		sqldb.SetMaxIdleConns(1)
		sqldb.SetConnMaxLifetime(0)
		sqldb.SetConnMaxIdleTime(0)
	} else {
		// Writers serialize on the database lock whatever the pool size;
		// a few connections let readers run beside them under WAL.
		n := max(4, runtime.GOMAXPROCS(0))
		sqldb.SetMaxOpenConns(n)
		sqldb.SetMaxIdleConns(n)
	}
	if err := sqldb.PingContext(ctx); err != nil {
		_ = sqldb.Close()
		path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
		return nil, fmt.Errorf("sqlstore: cannot open SQLite database %q: %w (does its directory exist, and may this process write there?)", path, err)
	}
	return &Store{db: bun.NewDB(sqldb, sqlitedialect.New()), dialect: DialectSQLite}, nil
}

// redact returns the URL with its password replaced, for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// DB returns the underlying bun database, for a host application's own
// tables. Its connection pool is the Store's.
func (s *Store) DB() *bun.DB { return s.db }

// Dialect returns "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if h := hostTxFrom(ctx); h != nil && h.db == s.db {
		// Inside the host's transaction: a savepoint, so that a failed
		// write is undone without aborting the host's.
		return h.tx.RunInTx(ctx, nil, fn)
	}
	return s.db.RunInTx(ctx, nil, fn)
}

// conn is the host's transaction ctx carries, or the database.
func (s *Store) conn(ctx context.Context) bun.IDB {
	if h := hostTxFrom(ctx); h != nil && h.db == s.db {
		return h.tx
	}
	return s.db
}

// queryer is *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// raw is conn(ctx) at the database/sql level: bun does not format what is
// run on it, so a statement may use $n parameters and (s.hot) be prepared
// once per connection.
func (s *Store) raw(ctx context.Context) queryer {
	if h := hostTxFrom(ctx); h != nil && h.db == s.db {
		return h.tx.Tx
	}
	return s.db.DB
}

// InTx reports whether ctx carries a transaction of RunInTx on this store.
func (s *Store) InTx(ctx context.Context) bool {
	h := hostTxFrom(ctx)
	return h != nil && h.db == s.db
}

// hostTx is a transaction RunInTx opened, carried by its ctx.
type hostTx struct {
	db    *bun.DB
	tx    bun.Tx
	mu    sync.Mutex
	after []func()
}

type hostTxKey struct{}

func hostTxFrom(ctx context.Context) *hostTx {
	h, _ := ctx.Value(hostTxKey{}).(*hostTx)
	return h
}

// RunInTx runs fn in one transaction, committed when fn returns nil and
// rolled back otherwise. The ctx fn receives carries it: the store's
// writes made with that ctx (Platform.Publish's event and deliveries, for
// one) are part of it, so they land or vanish with the host's own rows
// written through tx; work they queue (webhook attempts) starts after the
// commit. A nested call joins the outer transaction.
//
//	err := st.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
//		if _, err := tx.NewInsert().Model(&post).Exec(ctx); err != nil {
//			return err
//		}
//		_, err := platform.Publish(ctx, workspaceID, "post.created", post)
//		return err
//	})
func (s *Store) RunInTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if h := hostTxFrom(ctx); h != nil && h.db == s.db {
		return fn(ctx, h.tx)
	}
	h := &hostTx{db: s.db}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		h.tx = tx
		return fn(context.WithValue(ctx, hostTxKey{}, h), tx)
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	after := h.after
	h.mu.Unlock()
	for _, f := range after {
		f()
	}
	return nil
}

// AfterCommit runs fn after the transaction ctx carries commits (never if
// it rolls back), or at once when ctx carries none of this store's.
var _ webhooks.TxStore = (*Store)(nil)

func (s *Store) AfterCommit(ctx context.Context, fn func()) {
	if h := hostTxFrom(ctx); h != nil && h.db == s.db {
		h.mu.Lock()
		h.after = append(h.after, fn)
		h.mu.Unlock()
		return
	}
	fn()
}

// Constraint violations, detected by driver error code.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		c := lite.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func isForeignKeyViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23503"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// retryDeadlock runs fn again, up to twice, when PostgreSQL ended it as
// one side of a deadlock (40P01): the other side went on, and a second run
// finds the rows as it left them.
func retryDeadlock(fn func() error) error {
	err := fn()
	for range 2 {
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != "40P01" {
			break
		}
		err = fn()
	}
	return err
}

// fail turns a driver error into the store's contract: no rows and foreign key
// violations (a reference to a missing row) are not found, unique violations
// are a conflict with conflictMsg, and anything else is wrapped with op.
func fail(op string, err error, conflictMsg string) error {
	var ce *core.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return err
	case errors.Is(err, sql.ErrNoRows), isForeignKeyViolation(err):
		return core.NotFound()
	case isUniqueViolation(err) && conflictMsg != "":
		return core.Conflict("%s", conflictMsg)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// mustAffect reports not found when an update or delete matched no row.
func mustAffect(op string, res sql.Result, err error) error {
	if err != nil {
		return fail(op, err, "")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(op, err, "")
	}
	if n == 0 {
		return core.NotFound()
	}
	return nil
}

// ts is how every time is written: UTC, microseconds.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// tsp is ts for optional times; nil and the zero time are NULL.
func tsp(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := ts(*t)
	return &v
}

// orNow returns ts(t), or the current time when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return ts(time.Now())
	}
	return ts(t)
}

// utc and utcp normalise times read back from the driver.
func utc(t time.Time) time.Time { return t.UTC() }

func utcp(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.UTC()
	return &v
}

// nullID writes 0 as NULL, for optional references.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}
