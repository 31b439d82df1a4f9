package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/webhooks"
)

var _ webhooks.TxStore = (*sqlstore.Store)(nil)

// seenQueue records what was enqueued and, at that moment, whether each
// delivery was visible outside the publishing transaction.
type seenQueue struct {
	st      *sqlstore.Store
	wid     int64
	mu      sync.Mutex
	visible []bool
}

func (q *seenQueue) Enqueue(ctx context.Context, jobs ...webhooks.Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range jobs {
		_, err := q.st.WebhookDelivery(context.Background(), q.wid, j.DeliveryID)
		q.visible = append(q.visible, err == nil)
	}
	return nil
}

func (q *seenQueue) Run(ctx context.Context, _ webhooks.Work) error { <-ctx.Done(); return nil }

func (q *seenQueue) seen() []bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]bool(nil), q.visible...)
}

// testHostTx publishes inside the host's transaction: rolled back, neither
// the host's row nor the event exists and nothing was queued; committed,
// both exist and the deliveries were queued only once visible to others.
func testHostTx(t *testing.T, st *sqlstore.Store) {
	ctx := t.Context()
	wid := sqltest.Workspace(t, st)
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE host_posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	cat, _ := webhooks.NewCatalog(webhooks.EventType{Name: "post.created"})
	q := &seenQueue{st: st, wid: wid}
	svc, err := webhooks.New(webhooks.Config{Store: st, Catalog: cat, Queue: q, AllowPrivate: true, Sender: nopSender{}})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := svc.CreateEndpoint(ctx, wid, webhooks.EndpointInput{URL: "http://127.0.0.1:9/hook", Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	countPosts := func() int {
		var n int
		if err := st.DB().NewRaw("SELECT COUNT(*) FROM host_posts").Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	countDeliveries := func() int {
		_, n, err := svc.ListDeliveries(ctx, wid, ep.ID, "", core.ListParams{Page: 1, PerPage: 1})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	post := func(id int, fail error) error {
		return st.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewRaw("INSERT INTO host_posts (id, title) VALUES (?, ?)", id, "Hello").Exec(ctx); err != nil {
				return err
			}
			// Nested: joins the same transaction.
			err := st.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
				_, err := svc.Publish(ctx, wid, "post.created", map[string]int{"id": id})
				return err
			})
			if err != nil {
				return err
			}
			if len(q.seen()) != 0 {
				t.Error("deliveries were queued before the host's transaction committed")
			}
			return fail
		})
	}

	boom := errors.New("host fails after publishing")
	if err := post(1, boom); !errors.Is(err, boom) {
		t.Fatalf("RunInTx = %v, want the host's error", err)
	}
	if p, d, s := countPosts(), countDeliveries(), len(q.seen()); p != 0 || d != 0 || s != 0 {
		t.Fatalf("after rollback: %d posts, %d deliveries, %d queued; want none", p, d, s)
	}

	if err := post(2, nil); err != nil {
		t.Fatal(err)
	}
	if p, d := countPosts(), countDeliveries(); p != 1 || d != 1 {
		t.Fatalf("after commit: %d posts, %d deliveries; want 1, 1", p, d)
	}
	if s := q.seen(); len(s) != 1 || !s[0] {
		t.Fatalf("queued %v; want one delivery, visible to other connections when queued", s)
	}

	// Outside any transaction Publish queues at once.
	if _, err := svc.Publish(ctx, wid, "post.created", map[string]int{"id": 3}); err != nil {
		t.Fatal(err)
	}
	if s := q.seen(); len(s) != 2 || !s[1] {
		t.Fatalf("queued %v after a plain Publish; want a second, visible delivery", s)
	}

	// A refused write inside the host's transaction (an event id taken)
	// fails alone: the host's transaction goes on and commits.
	ev, err := svc.Publish(ctx, wid, "post.created", map[string]int{"id": 4})
	if err != nil {
		t.Fatal(err)
	}
	err = st.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		dup := &webhooks.Event{ID: ev.ID, WorkspaceID: wid, Type: "post.created", Payload: []byte(`{}`)}
		_, err := st.CreateWebhookEvent(ctx, dup, []webhooks.Delivery{{EndpointID: ep.ID}})
		if core.As(err).Code != core.CodeConflict {
			t.Errorf("CreateWebhookEvent with a taken id in the host's transaction = %v, want a conflict", err)
		}
		_, err = tx.NewRaw("INSERT INTO host_posts (id, title) VALUES (?, ?)", 5, "After").Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("the host's transaction after a refused event: %v", err)
	}
	if p, d := countPosts(), countDeliveries(); p != 2 || d != 3 {
		t.Fatalf("after a refused event in a committed transaction: %d posts, %d deliveries; want 2, 3", p, d)
	}
}

type nopSender struct{}

func (nopSender) Send(context.Context, string, map[string]string, []byte) webhooks.SendResult {
	return webhooks.SendResult{Code: 204}
}

func TestHostTxSQLite(t *testing.T) { testHostTx(t, openSQLite(t)) }

func TestHostTxSQLiteMemory(t *testing.T) { testHostTx(t, openMigrated(t, "sqlite::memory:")) }

func TestHostTxPostgres(t *testing.T) { testHostTx(t, postgres(t)(t)) }
