package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// A PostgreSQL round trip costs more than the statements of a webhook
// batch: measured on the 2-core development VM, a trivial prepared query
// run alone costs about 57 µs of CPU (32 in the client, 25 in the server,
// most of it waking each other), against 18 µs when five share a round
// trip. Claims and finishes therefore queue their statements (pgStep) on a
// pgRunner and read the results only when they need them: a claim and the
// read of its endpoints go in one round trip, a finish's transaction in
// two, where they used to take two and five.

// pgStep is one statement: its text ($n parameters), its arguments, and
// what reads its rows (nil: the rows, if any, are discarded).
type pgStep struct {
	sql  string
	args []any
	scan func(rowScanner) error
}

// rowScanner is what pgx.Rows and *sql.Rows share.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// pgRunner runs the steps of one transaction, in the order sent: send
// queues, read runs what is queued (if not yet) and scans the results.
type pgRunner interface {
	send(steps ...pgStep)
	read() error
}

// seqRunner runs steps one by one through database/sql: in the host's
// transaction (it has no pipeline), or where the URL chose the simple
// protocol (e.g. for a proxy without the extended one, which pipelines
// need). They are prepared once per connection when the store prepares
// its hot statements (s.hot).
type seqRunner struct {
	ctx    context.Context
	q      queryer
	hot    []any
	queued []pgStep
}

func (r *seqRunner) send(steps ...pgStep) { r.queued = append(r.queued, steps...) }

func (r *seqRunner) read() error {
	steps := r.queued
	r.queued = nil
	for _, st := range steps {
		rows, err := r.q.QueryContext(r.ctx, st.sql, append(r.hot[:len(r.hot):len(r.hot)], st.args...)...)
		if err != nil {
			return err
		}
		if st.scan != nil {
			err = st.scan(rows)
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// pipeRunner sends steps down one connection in pipeline mode: read asks
// the server to flush its answers without ending the transaction, sync
// ends it (an implicit transaction, unless a step began one) and reads the
// rest. Statements named to prepare are prepared once per connection (pgx
// keeps them by text); any other is sent unnamed (parsed each time).
type pipeRunner struct {
	ctx    context.Context
	c      *pgx.Conn
	p      *pgconn.Pipeline
	sds    map[string]*pgconn.StatementDescription
	eqb    pgx.ExtendedQueryBuilder
	queued []pgStep
	err    error // the first failure: later steps are not sent
	// unsent: a step could not be encoded. The pipeline is then closed
	// unsynced, which closes the connection, so that nothing sent before
	// it commits (the server may run it, never commit it).
	unsent bool
}

// pipelined runs fn with a pipeRunner on a connection of the pool. When
// fn fails, an open transaction is rolled back (or the connection closed,
// which rolls it back), so the connection goes back to the pool clean.
// prepare names the statement texts to prepare (none when the URL chose a
// query exec mode, e.g. for a pooler that keeps no prepared statements).
func (s *Store) pipelined(ctx context.Context, prepare []string, fn func(*pipeRunner) error) error {
	conn, err := s.db.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("sqlstore: expected a pgx connection, got %T", dc)
		}
		r := &pipeRunner{ctx: ctx, c: sc.Conn(), sds: map[string]*pgconn.StatementDescription{}}
		if s.hot != nil {
			for _, q := range prepare {
				sd, err := r.c.Prepare(ctx, q, q) // a no-op once prepared on this connection
				if err != nil {
					return err
				}
				r.sds[q] = sd
			}
		}
		err := fn(r)
		if err == nil {
			err = r.sync()
		}
		r.close()
		if err == nil || r.c.IsClosed() {
			return err
		}
		var pg *pgconn.PgError
		if errors.As(err, &pg) && (pg.Code == "0A000" || pg.Code == "26000") {
			// A prepared statement went stale (its table changed) or missing
			// (a pooler's DISCARD ALL): pgx would keep it for this
			// connection, so the connection goes, and the next prepares anew.
			_ = r.c.Close(context.WithoutCancel(ctx))
		} else if r.c.PgConn().TxStatus() != 'I' {
			if _, rerr := r.c.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				_ = r.c.Close(context.WithoutCancel(ctx))
			}
		}
		return err
	})
}

func (r *pipeRunner) send(steps ...pgStep) {
	if r.err != nil {
		return
	}
	if r.p == nil {
		r.p = r.c.PgConn().StartPipeline(r.ctx)
	}
	m := r.c.TypeMap()
	for _, st := range steps {
		sd := r.sds[st.sql]
		if err := r.eqb.Build(m, sd, st.args); err != nil {
			r.err, r.unsent = fmt.Errorf("sqlstore: encode the arguments of %.40q: %w", st.sql, err), true
			return
		}
		if sd != nil {
			// The pipeline keeps the result formats until the results are
			// read (the values it copies): the next Build would overwrite them.
			r.p.SendQueryStatement(sd, r.eqb.ParamValues, r.eqb.ParamFormats, slices.Clone(r.eqb.ResultFormats))
		} else {
			r.p.SendQueryParams(st.sql, r.eqb.ParamValues, nil, r.eqb.ParamFormats, r.eqb.ResultFormats)
		}
		r.queued = append(r.queued, st)
	}
}

// read sends what is queued with a flush request and reads its results.
func (r *pipeRunner) read() error {
	if r.err != nil || len(r.queued) == 0 {
		return r.err
	}
	r.p.SendFlushRequest()
	if err := r.p.Flush(); err != nil {
		r.err = err
		return err
	}
	return r.results()
}

// sync ends the pipeline's transaction (implicit, or committed by a COMMIT
// step) with a Sync and reads the results still due.
func (r *pipeRunner) sync() error {
	if r.err != nil || r.p == nil {
		return r.err
	}
	r.p.SendPipelineSync()
	if err := r.p.Flush(); err != nil {
		r.err = err
		return err
	}
	if err := r.results(); err != nil {
		return err
	}
	res, err := r.p.GetResults()
	if err == nil {
		if _, ok := res.(*pgconn.PipelineSync); !ok {
			err = fmt.Errorf("sqlstore: expected the end of a pipeline, got %T", res)
		}
	}
	r.err = err
	return err
}

// results reads the results of the queued steps, in order.
func (r *pipeRunner) results() error {
	steps := r.queued
	r.queued = nil
	m := r.c.TypeMap()
	for _, st := range steps {
		res, err := r.p.GetResults()
		if err != nil {
			r.err = err
			return err
		}
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			r.err = fmt.Errorf("sqlstore: expected the rows of %.40q, got %T", st.sql, res)
			return r.err
		}
		rows := pgx.RowsFromResultReader(m, rr)
		if st.scan != nil {
			err = st.scan(rows)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			r.err = err
			return err
		}
	}
	return nil
}

// close ends pipeline mode: after a failure it syncs first, so that the
// server skips what was sent after the failure and the connection stays
// usable (the caller rolls back a transaction still open), unless a step
// went unsent.
func (r *pipeRunner) close() {
	if r.p == nil {
		return
	}
	if r.err != nil && !r.unsent {
		r.p.SendPipelineSync()
		if err := r.p.Flush(); err != nil {
			r.err = errors.Join(r.err, err)
		}
	}
	_ = r.p.Close() // its error is the failure already returned
	r.p = nil
}
