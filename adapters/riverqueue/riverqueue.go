// Package riverqueue is the durable webhooks.Queue, on River
// (github.com/riverqueue/river): Postgres through riverpgxv5 and a pgx pool,
// SQLite through riversqlite and the database/sql handle the store uses.
//
// A job only names a delivery; the delivery row is the durable truth and an
// attempt claims it first. So River may run a job twice, late, or after the
// delivery finished, and nothing is sent twice by the queue's doing; and a
// job lost with its process (or never inserted, when a crash falls between
// the delivery's commit and the insert) is made up by the webhooks sweep.
package riverqueue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/revopsdev/revops/webhooks"
)

var _ webhooks.Queue = (*Queue)(nil)

// Kind is the River job kind of a webhook delivery attempt.
const Kind = "revops_webhook_delivery"

// Config configures a Queue. The zero value is usable.
type Config struct {
	// Queue is the River queue the jobs go to (default "revops_webhooks"),
	// so a host running River for its own jobs keeps them apart.
	Queue string
	// Workers is how many jobs this process runs at once (default 16).
	Workers int
	// Schema holds River's tables on Postgres (default: the search path).
	Schema string
	// PollInterval is how often idle workers look for due jobs when no
	// notification arrives (default 1 s; Postgres notifies on insert).
	PollInterval time.Duration
	// RescueAfter is how long a job may stay running before River takes
	// it for dead and runs it again (default 10 min). The webhooks sweep
	// does not wait for it: a dead worker's delivery is swept once its
	// lease ends.
	RescueAfter time.Duration
	Logger      *slog.Logger
}

// Queue runs webhook delivery jobs on River.
type Queue struct {
	c       client
	work    atomic.Pointer[webhooks.Work]
	queue   string
	migrate func(ctx context.Context) error
}

// client is what Queue needs of a river.Client, whatever its transaction
// type; it keeps driver types out of the API.
type client interface {
	InsertMany(ctx context.Context, params []river.InsertManyParams) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

type riverClient[TTx any] struct{ *river.Client[TTx] }

func (c riverClient[TTx]) InsertMany(ctx context.Context, params []river.InsertManyParams) error {
	_, err := c.Client.InsertMany(ctx, params)
	return err
}

// NewPostgres returns a Queue keeping its jobs in the database pool reaches.
// Call Migrate once before the first Enqueue or Run.
func NewPostgres(pool *pgxpool.Pool, cfg Config) (*Queue, error) {
	if pool == nil {
		return nil, errors.New("riverqueue: NewPostgres needs a *pgxpool.Pool (pgxpool.New(ctx, url))")
	}
	return newQueue[pgx.Tx](riverpgxv5.New(pool), cfg)
}

// NewSQLite returns a Queue keeping its jobs in the SQLite database db, which
// may be the store's own (sqlstore.Store.DB().DB). Call Migrate once before
// the first Enqueue or Run.
func NewSQLite(db *sql.DB, cfg Config) (*Queue, error) {
	if db == nil {
		return nil, errors.New("riverqueue: NewSQLite needs the *sql.DB of an SQLite database")
	}
	if cfg.Schema != "" {
		return nil, errors.New("riverqueue: Config.Schema is for Postgres; leave it empty on SQLite")
	}
	return newQueue[*sql.Tx](riversqlite.New(db), cfg)
}

func newQueue[TTx any](driver riverdriver.Driver[TTx], cfg Config) (*Queue, error) {
	switch {
	case cfg.Workers < 0:
		return nil, fmt.Errorf("riverqueue: Config.Workers is %d; use a positive number, or 0 for the default 16", cfg.Workers)
	case cfg.PollInterval < 0 || cfg.RescueAfter < 0:
		return nil, errors.New("riverqueue: Config.PollInterval and Config.RescueAfter must not be negative (0 takes the default)")
	}
	if cfg.Queue == "" {
		cfg.Queue = "revops_webhooks"
	}
	if cfg.Workers == 0 {
		cfg.Workers = 16
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.RescueAfter == 0 {
		cfg.RescueAfter = 10 * time.Minute
	}
	q := &Queue{queue: cfg.Queue}
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(q.run))
	rc, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{cfg.Queue: {MaxWorkers: cfg.Workers}},
		Workers:           workers,
		Schema:            cfg.Schema,
		FetchPollInterval: cfg.PollInterval,
		FetchCooldown:     min(cfg.PollInterval, 100*time.Millisecond),
		// Attempts bound themselves (the webhooks sender's timeout); a
		// River timeout would only cancel one between send and record.
		JobTimeout:           -1,
		RescueStuckJobsAfter: cfg.RescueAfter,
		Logger:               cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("riverqueue: %w", err)
	}
	q.c = riverClient[TTx]{rc}
	q.migrate = func(ctx context.Context) error {
		m, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: cfg.Schema, Logger: cfg.Logger})
		if err != nil {
			return fmt.Errorf("riverqueue: migrate: %w", err)
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("riverqueue: migrate: %w", err)
		}
		return nil
	}
	return q, nil
}

// Migrate creates or upgrades River's tables.
func (q *Queue) Migrate(ctx context.Context) error { return q.migrate(ctx) }

// deliveryArgs is a job's payload: which delivery to attempt.
type deliveryArgs struct {
	DeliveryID int64     `json:"delivery_id"`
	EndpointID int64     `json:"endpoint_id"`
	At         time.Time `json:"at"` // with the delivery, the job's identity
}

func (deliveryArgs) Kind() string { return Kind }

// unique makes a job of the same delivery and At a no-op while the first
// waits or runs; once it completed, the same job may be inserted again (a
// job that ran before its delivery's transaction committed found nothing).
var unique = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateScheduled, rivertype.JobStateRetryable,
}}

// Enqueue inserts one job per delivery, due at its At.
func (q *Queue) Enqueue(ctx context.Context, jobs ...webhooks.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		params[i] = river.InsertManyParams{
			Args: deliveryArgs{DeliveryID: j.DeliveryID, EndpointID: j.EndpointID, At: j.At.UTC().Truncate(time.Microsecond)},
			// River's own retries are for a job that errs; ours never does
			// (an attempt's failure is the delivery's business), so a few
			// suffice.
			InsertOpts: &river.InsertOpts{Queue: q.queue, ScheduledAt: j.At, MaxAttempts: 3, UniqueOpts: unique},
		}
	}
	if err := q.c.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("riverqueue: enqueue: %w", err)
	}
	return nil
}

// Run works jobs with work until ctx ends, then stops River, cancelling the
// attempts still running after 10 s (their deliveries stay leased and are
// swept when the lease ends).
func (q *Queue) Run(ctx context.Context, work webhooks.Work) error {
	if work == nil {
		return errors.New("riverqueue: Run needs a work function")
	}
	if !q.work.CompareAndSwap(nil, &work) {
		return errors.New("riverqueue: Run is already running on this Queue")
	}
	defer q.work.Store(nil)
	// Start on a context that outlives ctx: cancelling Start's context is
	// River's hard stop, and ending ctx should stop gracefully.
	if err := q.c.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("riverqueue: start: %w", err)
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := q.c.Stop(stop); err != nil {
		hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := q.c.StopAndCancel(hard); err != nil {
			return fmt.Errorf("riverqueue: stop: %w", err)
		}
	}
	return nil
}

// run is River's worker: it hands the job to work and snoozes it when work
// asks to run again later.
func (q *Queue) run(ctx context.Context, job *river.Job[deliveryArgs]) error {
	w := q.work.Load()
	if w == nil {
		return river.JobSnooze(time.Second) // not running here any more
	}
	again := (*w)(ctx, webhooks.Job{DeliveryID: job.Args.DeliveryID, EndpointID: job.Args.EndpointID, At: job.ScheduledAt})
	if again > 0 {
		return river.JobSnooze(again)
	}
	return nil
}
