package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/webhooks"
)

var _ webhooks.Store = (*Store)(nil)

// Lock order: a transaction that locks both an endpoint and one of its
// deliveries locks the endpoint first, as deleting the endpoint does (its
// cascade reaches the deliveries after it), so the two cannot deadlock on
// PostgreSQL. Statements that lock several deliveries (claims, finishes)
// look them up by id = ANY(array): with the generic plans the store forces
// (see openPostgres) the primary key's index walks the ids in ascending
// order, so they take the row locks in one order too. When the URL keeps
// PostgreSQL's own choice of plans, a custom plan may walk the due index
// instead (table order), so they first lock the rows in id order in a
// sub-select (Store.claimSQL, Store.finishSQL), at the price of a second
// write of each row. Either way a statement PostgreSQL ends as a deadlock's victim is run
// again (retryDeadlock).

// ---- endpoints ----

type endpointRow struct {
	ID                  int64      `bun:"id"`
	WorkspaceID         int64      `bun:"workspace_id"`
	URL                 string     `bun:"url"`
	Events              []string   `bun:"events"` // JSON array, decoded by bun
	Secret              string     `bun:"secret"`
	PrevSecret          string     `bun:"prev_secret"`
	PrevSecretUntil     *time.Time `bun:"prev_secret_until"`
	IsActive            bool       `bun:"is_active"`
	DisabledReason      string     `bun:"disabled_reason"`
	SuccessCount        int64      `bun:"success_count"`
	FailureCount        int64      `bun:"failure_count"`
	ConsecutiveFailures int        `bun:"consecutive_failures"`
	FailingSince        *time.Time `bun:"failing_since"`
	LastDeliveryAt      *time.Time `bun:"last_delivery_at"`
	CreatedAt           time.Time  `bun:"created_at"`
	UpdatedAt           time.Time  `bun:"updated_at"`
}

const endpointColumns = "id, workspace_id, url, events, secret, prev_secret, prev_secret_until, is_active, disabled_reason, " +
	"success_count, failure_count, consecutive_failures, failing_since, last_delivery_at, created_at, updated_at"

// scan reads a row of endpointColumns into r.
func (r *endpointRow) scan(rs rowScanner) error {
	var events string
	if err := rs.Scan(&r.ID, &r.WorkspaceID, &r.URL, &events, &r.Secret, &r.PrevSecret, &r.PrevSecretUntil, &r.IsActive,
		&r.DisabledReason, &r.SuccessCount, &r.FailureCount, &r.ConsecutiveFailures, &r.FailingSince, &r.LastDeliveryAt,
		&r.CreatedAt, &r.UpdatedAt); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(events), &r.Events); err != nil {
		return fmt.Errorf("sqlstore: webhook endpoint %d: events: %w", r.ID, err)
	}
	return nil
}

func (r *endpointRow) endpoint() webhooks.Endpoint {
	events := r.Events
	if events == nil {
		events = []string{}
	}
	return webhooks.Endpoint{
		ID: r.ID, WorkspaceID: r.WorkspaceID, URL: r.URL, Events: events, Secret: r.Secret,
		PrevSecret: r.PrevSecret, PrevSecretUntil: utcp(r.PrevSecretUntil),
		IsActive: r.IsActive, DisabledReason: r.DisabledReason,
		SuccessCount: r.SuccessCount, FailureCount: r.FailureCount, ConsecutiveFailures: r.ConsecutiveFailures,
		FailingSince: utcp(r.FailingSince), LastDeliveryAt: utcp(r.LastDeliveryAt),
		CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt),
	}
}

// normalizeEndpoint gives e's optional times the stored precision.
func normalizeEndpoint(e *webhooks.Endpoint) {
	e.PrevSecretUntil, e.FailingSince, e.LastDeliveryAt = tsp(e.PrevSecretUntil), tsp(e.FailingSince), tsp(e.LastDeliveryAt)
}

func encodeEvents(events []string) (string, error) {
	if events == nil {
		events = []string{}
	}
	b, err := json.Marshal(events)
	if err != nil {
		return "", fmt.Errorf("sqlstore: encode webhook endpoint events: %w", err)
	}
	return string(b), nil
}

// CreateWebhookEndpoint inserts e. An unknown workspace is not found.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e *webhooks.Endpoint) error {
	events, err := encodeEvents(e.Events)
	if err != nil {
		return err
	}
	created := orNow(e.CreatedAt)
	updated := created
	if !e.UpdatedAt.IsZero() {
		updated = ts(e.UpdatedAt)
	}
	n := *e
	normalizeEndpoint(&n)
	var id int64
	err = s.db.NewRaw(`INSERT INTO revops_webhook_endpoints (workspace_id, url, events, secret, prev_secret, prev_secret_until,
is_active, disabled_reason, success_count, failure_count, consecutive_failures, failing_since, last_delivery_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		n.WorkspaceID, n.URL, events, n.Secret, n.PrevSecret, n.PrevSecretUntil,
		n.IsActive, n.DisabledReason, n.SuccessCount, n.FailureCount, n.ConsecutiveFailures, n.FailingSince, n.LastDeliveryAt,
		created, updated).Scan(ctx, &id)
	if err != nil {
		return fail("create webhook endpoint", err, "")
	}
	n.ID, n.CreatedAt, n.UpdatedAt = id, created, updated
	*e = n
	return nil
}

func webhookEndpoint(ctx context.Context, db bun.IDB, workspaceID, id int64) (*webhooks.Endpoint, error) {
	var r endpointRow
	err := db.NewRaw("SELECT "+endpointColumns+" FROM revops_webhook_endpoints WHERE workspace_id = ? AND id = ?", workspaceID, id).Scan(ctx, &r)
	if err != nil {
		return nil, fail("get webhook endpoint", err, "")
	}
	e := r.endpoint()
	return &e, nil
}

func (s *Store) WebhookEndpoint(ctx context.Context, workspaceID, id int64) (*webhooks.Endpoint, error) {
	return webhookEndpoint(ctx, s.db, workspaceID, id)
}

var endpointList = listSpec{
	columns:  endpointColumns,
	from:     "revops_webhook_endpoints",
	sorts:    map[string]string{"id": "id", "created_at": "created_at"},
	tieBreak: "id",
	search:   []string{"url"},
	created:  "created_at",
	updated:  "updated_at",
}

// ListWebhookEndpoints lists the workspace's endpoints, by id unless sorted.
func (s *Store) ListWebhookEndpoints(ctx context.Context, workspaceID int64, p core.ListParams) ([]webhooks.Endpoint, int, error) {
	if p.Filter.Status != "" {
		return nil, 0, core.Invalid("status", "Webhook endpoints cannot be filtered by status.")
	}
	var q listQuery
	q.add("workspace_id = ?", workspaceID)
	return listRows(ctx, s.db, &endpointList, &q, p, "webhook endpoints", (*endpointRow).endpoint)
}

// UpdateWebhookEndpoint locks the row, reads it, applies fn and writes it
// back, in one transaction. fn may change everything but ID, WorkspaceID and
// CreatedAt; it sees a zero UpdatedAt, and one it leaves zero is set to now.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, workspaceID, id int64, fn func(*webhooks.Endpoint) error) (*webhooks.Endpoint, error) {
	var out *webhooks.Endpoint
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		out, err = updateEndpoint(ctx, tx, workspaceID, id, fn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lockEndpoint takes the endpoint's row lock for the rest of tx (a no-op
// update, see lockWorkspace). A missing endpoint is not found.
func lockEndpoint(ctx context.Context, tx bun.Tx, workspaceID, id int64) error {
	res, err := tx.NewRaw("UPDATE revops_webhook_endpoints SET updated_at = updated_at WHERE workspace_id = ? AND id = ?", workspaceID, id).Exec(ctx)
	return mustAffect("lock webhook endpoint", res, err)
}

func updateEndpoint(ctx context.Context, tx bun.Tx, workspaceID, id int64, fn func(*webhooks.Endpoint) error) (*webhooks.Endpoint, error) {
	if err := lockEndpoint(ctx, tx, workspaceID, id); err != nil {
		return nil, err
	}
	e, err := webhookEndpoint(ctx, tx, workspaceID, id)
	if err != nil {
		return nil, err
	}
	created := e.CreatedAt
	e.UpdatedAt = time.Time{}
	if err := fn(e); err != nil {
		return nil, err
	}
	e.ID, e.WorkspaceID, e.CreatedAt, e.UpdatedAt = id, workspaceID, created, orNow(e.UpdatedAt)
	normalizeEndpoint(e)
	events, err := encodeEvents(e.Events)
	if err != nil {
		return nil, err
	}
	_, err = tx.NewRaw(`UPDATE revops_webhook_endpoints SET url = ?, events = ?, secret = ?, prev_secret = ?, prev_secret_until = ?,
is_active = ?, disabled_reason = ?, success_count = ?, failure_count = ?, consecutive_failures = ?, failing_since = ?,
last_delivery_at = ?, updated_at = ?
WHERE workspace_id = ? AND id = ?`,
		e.URL, events, e.Secret, e.PrevSecret, e.PrevSecretUntil,
		e.IsActive, e.DisabledReason, e.SuccessCount, e.FailureCount, e.ConsecutiveFailures, e.FailingSince,
		e.LastDeliveryAt, e.UpdatedAt, workspaceID, id).Exec(ctx)
	if err != nil {
		return nil, fail("update webhook endpoint", err, "")
	}
	if e.Events == nil {
		e.Events = []string{}
	}
	return e, nil
}

// DeleteWebhookEndpoint deletes the endpoint; the foreign key ON DELETE
// CASCADE deletes its deliveries.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, workspaceID, id int64) error {
	res, err := s.db.NewRaw("DELETE FROM revops_webhook_endpoints WHERE workspace_id = ? AND id = ?", workspaceID, id).Exec(ctx)
	return mustAffect("delete webhook endpoint", res, err)
}

// ActiveWebhookEndpoints lists the workspace's active endpoints by id.
func (s *Store) ActiveWebhookEndpoints(ctx context.Context, workspaceID int64) ([]webhooks.Endpoint, error) {
	var rows []endpointRow
	var err error
	// In the host's transaction when there is one: Publish reads this
	// there, and a single-connection database has no other to read on.
	if s.dialect == DialectPostgres {
		// Every Publish reads this: (s.hot) prepared once per connection.
		var r *sql.Rows
		r, err = s.raw(ctx).QueryContext(ctx, "SELECT "+endpointColumns+" FROM revops_webhook_endpoints WHERE workspace_id = $1 AND is_active ORDER BY id",
			append(s.hot[:len(s.hot):len(s.hot)], workspaceID)...)
		if err == nil {
			err = s.db.ScanRows(ctx, r, &rows)
		}
	} else {
		err = s.conn(ctx).NewRaw("SELECT "+endpointColumns+" FROM revops_webhook_endpoints WHERE workspace_id = ? AND is_active = ? ORDER BY id",
			workspaceID, true).Scan(ctx, &rows)
	}
	if err != nil {
		return nil, fail("list active webhook endpoints", err, "")
	}
	out := make([]webhooks.Endpoint, len(rows))
	for i := range rows {
		out[i] = rows[i].endpoint()
	}
	return out, nil
}

// ---- events ----

type webhookEventRow struct {
	ID          string    `bun:"id"`
	WorkspaceID int64     `bun:"workspace_id"`
	Type        string    `bun:"type"`
	Payload     []byte    `bun:"payload"`
	CreatedAt   time.Time `bun:"created_at"`
}

// CreateWebhookEvent inserts ev (an empty ID gets a new event id, a zero
// CreatedAt the current time) and its deliveries in one transaction. Each
// delivery takes its WorkspaceID, EventID and EventType from ev; a zero
// CreatedAt or UpdatedAt is ev's CreatedAt, an empty Status pending, and a
// pending or retrying delivery without NextAttemptAt is due at its
// CreatedAt. A delivery to an endpoint that is not ev's workspace's is not
// found, and nothing is stored; a duplicate event id is a conflict. ds is
// updated in place and returned.
func (s *Store) CreateWebhookEvent(ctx context.Context, ev *webhooks.Event, ds []webhooks.Delivery) ([]webhooks.Delivery, error) {
	id := ev.ID
	if id == "" {
		id = webhooks.NewEventID()
	}
	created := orNow(ev.CreatedAt)
	out := make([]webhooks.Delivery, len(ds))
	for i, d := range ds {
		d.WorkspaceID, d.EventID, d.EventType = ev.WorkspaceID, id, ev.Type
		if d.Status == "" {
			d.Status = webhooks.StatusPending
		}
		d.CreatedAt = ts(d.CreatedAt)
		if d.CreatedAt.IsZero() {
			d.CreatedAt = created
		}
		d.UpdatedAt = ts(d.UpdatedAt)
		if d.UpdatedAt.IsZero() {
			d.UpdatedAt = d.CreatedAt
		}
		if d.NextAttemptAt == nil && (d.Status == webhooks.StatusPending || d.Status == webhooks.StatusRetrying) {
			d.NextAttemptAt = ptrTo(d.CreatedAt)
		}
		normalizeDelivery(&d)
		out[i] = d
	}
	var err error
	if s.dialect == DialectPostgres {
		err = s.createEventPostgres(ctx, ev, id, created, out)
	} else {
		err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewRaw("INSERT INTO revops_webhook_events (id, workspace_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
				id, ev.WorkspaceID, ev.Type, string(ev.Payload), created).Exec(ctx)
			if err != nil {
				return fail("create webhook event", err, "An event with this id already exists.")
			}
			for i := range out {
				d := &out[i]
				err := tx.NewRaw(`INSERT INTO revops_webhook_deliveries (workspace_id, endpoint_id, event_id, event_type, status, attempt,
next_attempt_at, locked_until, response_code, response_body, response_time_ms, error, delivered_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
					d.WorkspaceID, d.EndpointID, d.EventID, d.EventType, d.Status, d.Attempt,
					d.NextAttemptAt, d.LockedUntil, d.ResponseCode, []byte(d.ResponseBody), d.ResponseTimeMs, d.Error, d.DeliveredAt,
					d.CreatedAt, d.UpdatedAt).Scan(ctx, &d.ID)
				if err != nil {
					return fail("create webhook delivery", err, "")
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	ev.ID, ev.CreatedAt = id, created
	copy(ds, out)
	return ds, nil
}

// createEventPostgres inserts the event and its deliveries ds (filled in,
// given their ids) with one statement: the event in a data-modifying CTE,
// the deliveries from one array per column, in order. One round trip, and
// atomic by itself; in the host's transaction it runs under a savepoint,
// so that a failure (a duplicate id, an endpoint of another workspace)
// does not abort the host's.
func (s *Store) createEventPostgres(ctx context.Context, ev *webhooks.Event, id string, created time.Time, ds []webhooks.Delivery) error {
	n := len(ds)
	eps, attempts, codes, times := make([]int64, n), make([]int, n), make([]int, n), make([]int, n)
	statuses, errs := make([]string, n), make([]string, n)
	next, locks, delivered := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	createdAt, updated := make([]time.Time, n), make([]time.Time, n)
	bodies := make([][]byte, n)
	for i, d := range ds {
		eps[i], statuses[i], attempts[i], next[i], locks[i] = d.EndpointID, d.Status, d.Attempt, d.NextAttemptAt, d.LockedUntil
		codes[i], bodies[i], times[i], errs[i], delivered[i] = d.ResponseCode, []byte(d.ResponseBody), d.ResponseTimeMs, d.Error, d.DeliveredAt
		createdAt[i], updated[i] = d.CreatedAt, d.UpdatedAt
	}
	args := append(s.hot[:len(s.hot):len(s.hot)], id, ev.WorkspaceID, ev.Type, string(ev.Payload), created,
		eps, statuses, attempts, next, locks, codes, bodies, times, errs, delivered, createdAt, updated)
	insert := func(ctx context.Context, q queryer) error {
		r, err := q.QueryContext(ctx, createEventPostgres, args...)
		if err != nil {
			return fail("create webhook event", err, "An event with this id already exists.")
		}
		defer r.Close()
		ids := make([]int64, 0, n)
		for r.Next() {
			var id int64
			if err := r.Scan(&id); err != nil {
				return fail("create webhook event", err, "")
			}
			ids = append(ids, id)
		}
		if err := r.Err(); err != nil { // a constraint fails as the rows are read
			return fail("create webhook event", err, "An event with this id already exists.")
		}
		if len(ids) != n {
			return fmt.Errorf("sqlstore: create webhook event: %d of %d deliveries inserted", len(ids), n)
		}
		// The rows are inserted in the order of ds, each taking the next id:
		// ascending ids are theirs in order, whatever order RETURNING uses.
		slices.Sort(ids)
		for i, id := range ids {
			ds[i].ID = id
		}
		return nil
	}
	if s.InTx(ctx) {
		return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error { return insert(ctx, tx.Tx) })
	}
	return insert(ctx, s.db.DB)
}

// createEventPostgres is the statement of createEventPostgres: $1–$5 the
// event, $6–$17 the deliveries' columns after event_type, as arrays.
const createEventPostgres = `WITH ev AS (INSERT INTO revops_webhook_events (id, workspace_id, type, payload, created_at) VALUES ($1, $2, $3, $4, $5))
INSERT INTO revops_webhook_deliveries (workspace_id, endpoint_id, event_id, event_type, status, attempt,
next_attempt_at, locked_until, response_code, response_body, response_time_ms, error, delivered_at, created_at, updated_at)
SELECT $2, v.endpoint_id, $1, $3, v.status, v.attempt, v.next_attempt_at, v.locked_until, v.response_code, v.response_body,
v.response_time_ms, v.error, v.delivered_at, v.created_at, v.updated_at
FROM unnest($6::bigint[], $7::text[], $8::int[], $9::timestamptz[], $10::timestamptz[], $11::int[], $12::bytea[], $13::int[],
$14::text[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[]) WITH ORDINALITY
AS v(endpoint_id, status, attempt, next_attempt_at, locked_until, response_code, response_body, response_time_ms, error,
delivered_at, created_at, updated_at, n)
ORDER BY v.n
RETURNING id`

func (s *Store) WebhookEvent(ctx context.Context, workspaceID int64, id string) (*webhooks.Event, error) {
	var r webhookEventRow
	err := s.db.NewRaw("SELECT id, workspace_id, type, payload, created_at FROM revops_webhook_events WHERE workspace_id = ? AND id = ?",
		workspaceID, id).Scan(ctx, &r)
	if err != nil {
		return nil, fail("get webhook event", err, "")
	}
	ev := &webhooks.Event{ID: r.ID, WorkspaceID: r.WorkspaceID, Type: r.Type, CreatedAt: utc(r.CreatedAt)}
	if len(r.Payload) > 0 {
		ev.Payload = json.RawMessage(r.Payload)
	}
	return ev, nil
}

// ---- deliveries ----

type deliveryRow struct {
	ID             int64      `bun:"id"`
	WorkspaceID    int64      `bun:"workspace_id"`
	EndpointID     int64      `bun:"endpoint_id"`
	EventID        string     `bun:"event_id"`
	EventType      string     `bun:"event_type"`
	Status         string     `bun:"status"`
	Attempt        int        `bun:"attempt"`
	NextAttemptAt  *time.Time `bun:"next_attempt_at"`
	LockedUntil    *time.Time `bun:"locked_until"`
	ResponseCode   int        `bun:"response_code"`
	ResponseBody   []byte     `bun:"response_body"`
	ResponseTimeMs int        `bun:"response_time_ms"`
	Error          string     `bun:"error"`
	DeliveredAt    *time.Time `bun:"delivered_at"`
	CreatedAt      time.Time  `bun:"created_at"`
	UpdatedAt      time.Time  `bun:"updated_at"`
}

const deliveryColumns = "id, workspace_id, endpoint_id, event_id, event_type, status, attempt, next_attempt_at, locked_until, " +
	"response_code, response_body, response_time_ms, error, delivered_at, created_at, updated_at"

// fields are r's fields in deliveryColumns' order, to scan into.
func (r *deliveryRow) fields() []any {
	return []any{&r.ID, &r.WorkspaceID, &r.EndpointID, &r.EventID, &r.EventType, &r.Status, &r.Attempt, &r.NextAttemptAt,
		&r.LockedUntil, &r.ResponseCode, &r.ResponseBody, &r.ResponseTimeMs, &r.Error, &r.DeliveredAt, &r.CreatedAt, &r.UpdatedAt}
}

func (r *deliveryRow) delivery() webhooks.Delivery {
	return webhooks.Delivery{
		ID: r.ID, WorkspaceID: r.WorkspaceID, EndpointID: r.EndpointID, EventID: r.EventID, EventType: r.EventType,
		Status: r.Status, Attempt: r.Attempt, NextAttemptAt: utcp(r.NextAttemptAt), LockedUntil: utcp(r.LockedUntil),
		ResponseCode: r.ResponseCode, ResponseBody: string(r.ResponseBody), ResponseTimeMs: r.ResponseTimeMs,
		Error: r.Error, DeliveredAt: utcp(r.DeliveredAt), CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt),
	}
}

// normalizeDelivery gives d's optional times the stored precision.
func normalizeDelivery(d *webhooks.Delivery) {
	d.NextAttemptAt, d.LockedUntil, d.DeliveredAt = tsp(d.NextAttemptAt), tsp(d.LockedUntil), tsp(d.DeliveredAt)
}

func ptrTo[T any](v T) *T { return &v }

func webhookDelivery(ctx context.Context, db bun.IDB, where string, args ...any) (*webhooks.Delivery, error) {
	var r deliveryRow
	if err := db.NewRaw("SELECT "+deliveryColumns+" FROM revops_webhook_deliveries WHERE "+where, args...).Scan(ctx, &r); err != nil {
		return nil, fail("get webhook delivery", err, "")
	}
	d := r.delivery()
	return &d, nil
}

func (s *Store) WebhookDelivery(ctx context.Context, workspaceID, id int64) (*webhooks.Delivery, error) {
	return webhookDelivery(ctx, s.db, "workspace_id = ? AND id = ?", workspaceID, id)
}

var deliveryList = listSpec{
	columns:  deliveryColumns,
	from:     "revops_webhook_deliveries",
	sorts:    map[string]string{"id": "id", "created_at": "created_at"},
	tieBreak: "id",
	created:  "created_at",
	updated:  "updated_at",
}

// ListWebhookDeliveries lists an endpoint's deliveries, newest (highest id)
// first unless sorted. The status comes from f.Status or p.Filter.Status
// (both may be given only if equal); an endpoint that is not the
// workspace's is not found; f.EndpointID 0 is a programming error.
func (s *Store) ListWebhookDeliveries(ctx context.Context, workspaceID int64, f webhooks.DeliveryFilter, p core.ListParams) ([]webhooks.Delivery, int, error) {
	if f.EndpointID == 0 {
		return nil, 0, fmt.Errorf("sqlstore: list webhook deliveries: DeliveryFilter.EndpointID is required")
	}
	status := f.Status
	if p.Filter.Status != "" {
		if status != "" && status != p.Filter.Status {
			return nil, 0, core.Invalid("status", "Two different statuses were given.")
		}
		status = p.Filter.Status
	}
	p.Filter.Status = ""
	if status != "" && !slices.Contains(webhooks.Statuses, status) {
		return nil, 0, core.Invalid("status", fmt.Sprintf("Unknown status %q: use %s.", status, strings.Join(webhooks.Statuses, ", ")))
	}
	var n int
	if err := s.db.NewRaw("SELECT COUNT(*) FROM revops_webhook_endpoints WHERE workspace_id = ? AND id = ?", workspaceID, f.EndpointID).Scan(ctx, &n); err != nil {
		return nil, 0, fail("list webhook deliveries", err, "")
	}
	if n == 0 {
		return nil, 0, core.NotFound()
	}
	var q listQuery
	q.add("workspace_id = ?", workspaceID)
	q.add("endpoint_id = ?", f.EndpointID)
	if status != "" {
		q.add("status = ?", status)
	}
	if len(p.Sort) == 0 {
		p.Sort = []core.Sort{{Field: "id", Desc: true}}
	}
	return listRows(ctx, s.db, &deliveryList, &q, p, "webhook deliveries", (*deliveryRow).delivery)
}

// claimRow is a claimed delivery with its event, read together (its
// endpoint is read apart, once per endpoint of the batch).
type claimRow struct {
	Delivery       deliveryRow `bun:"embed:d_"`
	EventType      string      `bun:"ev_type"`
	EventPayload   []byte      `bun:"ev_payload"`
	EventCreatedAt time.Time   `bun:"ev_created_at"`
}

// aliased lists columns ("a, b") as "t.a AS pa, t.b AS pb".
func aliased(t, p, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = t + "." + c + " AS " + p + c
	}
	return strings.Join(cols, ", ")
}

// claimEvent is the event's columns of claimRow, joined as ev to d.
const claimEvent = `ev.type AS ev_type, ev.payload AS ev_payload, ev.created_at AS ev_created_at
FROM d JOIN revops_webhook_events AS ev ON ev.workspace_id = d.workspace_id AND ev.id = d.event_id`

// claimable is the claim's condition on a delivery: due and not leased.
const claimable = "status IN (?, ?) AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)"

// claimPostgres is the claim on PostgreSQL ($1 until, $2 now, $3 ids,
// $4 and $5 the claimable statuses).
var claimPostgres = claimPostgresWhere("id = ANY($3::bigint[])")

// claimPostgresLockFirst is claimPostgres locking its rows in id order
// first (Store.claimSQL, Store.finishSQL).
var claimPostgresLockFirst = claimPostgresWhere(`id IN (SELECT id FROM revops_webhook_deliveries WHERE id = ANY($3::bigint[]) ORDER BY id FOR UPDATE)
AND id = ANY($3::bigint[])`)

func claimPostgresWhere(rows string) string {
	return `WITH d AS (UPDATE revops_webhook_deliveries SET locked_until = $1, attempt = attempt + 1, updated_at = $2
WHERE ` + rows + ` AND status IN ($4, $5) AND next_attempt_at <= $2 AND (locked_until IS NULL OR locked_until <= $2)
RETURNING ` + deliveryColumns + `)
SELECT ` + aliased("d", "d_", deliveryColumns) + ", " + claimEvent
}

// ClaimWebhookDeliveries leases the deliveries with one conditional UPDATE:
// the database runs concurrent ones on a row one after another, and each
// re-checks the condition on the row as the previous one left it, so only
// one can match. A delivery whose endpoint is gone (deleted since, with the
// delivery) is left out.
//
// On PostgreSQL the UPDATE, which looks its rows up by id (locking them in
// id order, see Lock order), is a data-modifying CTE that the same
// statement joins to the events. (The rows used to be locked first by a
// sub-select FOR UPDATE, which cost about a third of the claim: a second
// write of every row.) SQLite (which locks the whole database, and
// has no such CTE) reads the events with a second statement. The
// endpoints are read apart, each once: a batch names few, and reading one
// per delivery cost 10–15% of a claim and its finish. On PostgreSQL that
// read shares the claim's round trip (claimPostgres).
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, ids []int64, now, until time.Time) ([]webhooks.Claim, error) {
	if len(ids) == 0 {
		return []webhooks.Claim{}, nil
	}
	now, until = ts(now), ts(until)
	var rows []claimRow
	var eps map[endpointKey]webhooks.Endpoint
	var err error
	if s.dialect == DialectPostgres {
		rows, eps, err = s.claimPostgres(ctx, ids, now, until)
	} else if rows, err = s.claimSQLite(ctx, ids, now, until); err == nil {
		eps, err = s.claimedEndpoints(ctx, rows)
	}
	if err != nil {
		return nil, fail("claim webhook deliveries", err, "")
	}
	claimed := make(map[int64]*claimRow, len(rows))
	for i := range rows {
		claimed[rows[i].Delivery.ID] = &rows[i]
	}
	out := make([]webhooks.Claim, 0, len(rows))
	for _, id := range ids {
		r := claimed[id]
		if r == nil {
			continue
		}
		delete(claimed, id) // a repeated id is claimed once
		d := r.Delivery.delivery()
		ep, ok := eps[endpointKey{d.WorkspaceID, d.EndpointID}]
		if !ok {
			continue // deleted since, with the delivery
		}
		c := webhooks.Claim{Delivery: d, Endpoint: ep}
		c.Event = webhooks.Event{ID: d.EventID, WorkspaceID: d.WorkspaceID, Type: r.EventType, CreatedAt: utc(r.EventCreatedAt)}
		if len(r.EventPayload) > 0 {
			c.Event.Payload = json.RawMessage(r.EventPayload)
		}
		out = append(out, c)
	}
	return out, nil
}

// claimPostgres claims and reads the claimed deliveries' endpoints, each
// once (a batch mostly names few), in one round trip (see pipelined): the
// read finds the rows the claim leased by their ids, lease and time.
func (s *Store) claimPostgres(ctx context.Context, ids []int64, now, until time.Time) ([]claimRow, map[endpointKey]webhooks.Endpoint, error) {
	q := s.claimSQL
	var rows []claimRow
	eps := map[endpointKey]webhooks.Endpoint{}
	steps := []pgStep{{sql: q, args: []any{until, now, ids, webhooks.StatusPending, webhooks.StatusRetrying}, scan: func(rs rowScanner) error {
		for rs.Next() {
			var c claimRow
			if err := rs.Scan(append(c.Delivery.fields(), &c.EventType, &c.EventPayload, &c.EventCreatedAt)...); err != nil {
				return err
			}
			rows = append(rows, c)
		}
		return nil
	}}, {sql: claimEndpointsPostgres, args: []any{ids, until, now}, scan: func(rs rowScanner) error {
		for rs.Next() {
			var e endpointRow
			if err := e.scan(rs); err != nil {
				return err
			}
			eps[endpointKey{e.WorkspaceID, e.ID}] = e.endpoint()
		}
		return nil
	}}}
	err := retryDeadlock(func() error {
		rows = rows[:0]
		clear(eps)
		if s.sequential { // each statement on its own, as the URL asks
			r := &seqRunner{ctx: ctx, q: s.db.DB} // nothing is prepared then
			r.send(steps...)
			return r.read()
		}
		return s.pipelined(ctx, []string{q, claimEndpointsPostgres}, func(r *pipeRunner) error {
			r.send(steps...)
			return nil
		})
	})
	return rows, eps, err
}

// claimEndpointsPostgres reads the endpoints of the deliveries among $1
// leased until $2 at $3.
const claimEndpointsPostgres = "SELECT " + endpointColumns + ` FROM revops_webhook_endpoints
WHERE (workspace_id, id) IN (SELECT workspace_id, endpoint_id FROM revops_webhook_deliveries
WHERE id = ANY($1::bigint[]) AND locked_until = $2 AND updated_at = $3)`

// claimedEndpoints reads the endpoints of the claimed rows (SQLite), each
// once (a batch mostly names few), by (workspace, id).
func (s *Store) claimedEndpoints(ctx context.Context, rows []claimRow) (map[endpointKey]webhooks.Endpoint, error) {
	out := map[endpointKey]webhooks.Endpoint{}
	seen := map[endpointKey]bool{}
	var args []any
	for _, r := range rows {
		if k := (endpointKey{r.Delivery.WorkspaceID, r.Delivery.EndpointID}); !seen[k] {
			seen[k] = true
			args = append(args, k.workspaceID, k.id)
		}
	}
	if len(args) == 0 {
		return out, nil
	}
	var eps []endpointRow
	in := strings.TrimSuffix(strings.Repeat("(?, ?), ", len(args)/2), ", ")
	err := s.db.NewRaw("SELECT "+endpointColumns+" FROM revops_webhook_endpoints WHERE (workspace_id, id) IN (VALUES "+in+")", args...).Scan(ctx, &eps)
	for i := range eps {
		out[endpointKey{eps[i].WorkspaceID, eps[i].ID}] = eps[i].endpoint()
	}
	return out, err
}

// claimSQLite claims with an UPDATE … RETURNING, then reads the claimed
// deliveries' endpoints and events (one join); a delivery without them is
// left out. NOT INDEXED: SQLite would otherwise pick the due index for the
// status and time terms and scan every due delivery; the ids are rowids.
func (s *Store) claimSQLite(ctx context.Context, ids []int64, now, until time.Time) ([]claimRow, error) {
	var rows []deliveryRow
	err := s.db.NewRaw(`UPDATE revops_webhook_deliveries NOT INDEXED SET locked_until = ?, attempt = attempt + 1, updated_at = ?
WHERE id IN (?) AND `+claimable+` RETURNING `+deliveryColumns,
		until, now, bun.In(ids), webhooks.StatusPending, webhooks.StatusRetrying, now, now).Scan(ctx, &rows)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	got := make([]int64, len(rows))
	for i := range rows {
		got[i] = rows[i].ID
	}
	var targets []claimRow
	err = s.db.NewRaw("WITH d AS (SELECT id, workspace_id, event_id FROM revops_webhook_deliveries WHERE id IN (?)) SELECT d.id AS d_id, "+claimEvent,
		bun.In(got)).Scan(ctx, &targets)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*deliveryRow, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
	}
	for i := range targets {
		targets[i].Delivery = *byID[targets[i].Delivery.ID]
	}
	return targets, nil
}

// endpointKey names an endpoint within its workspace.
type endpointKey struct{ workspaceID, id int64 }

// FinishWebhookAttempts ends a batch of attempts in one transaction:
//
//  1. it locks the endpoints of the items with an outcome in one
//     statement, in (workspace, id) order, reading whether each is
//     active: the lock order of a single attempt (endpoint before
//     delivery, see above), and an order concurrent batches share, so they
//     cannot deadlock;
//  2. it finishes the deliveries with one conditional UPDATE (see
//     finishPostgres) that checks each item's lease (at the stored
//     precision), workspace and endpoint, looking them up by id (see Lock
//     order); an item matching no row is not done and counts nothing;
//  3. it writes each endpoint once, adding up the done items' outcomes in
//     the order given (see tally): counters by expressions on the stored
//     values (never lost), the run of failures as the last of them leaves
//     it, and the disabling by the first disabling failure if the endpoint
//     was active when locked, which alone reports it.
//
// On PostgreSQL, outside a host's transaction (and unless the URL chose the
// simple protocol), 1 and 2 share a round trip and 3 another with the
// COMMIT (see pipelined).
func (s *Store) FinishWebhookAttempts(ctx context.Context, fs []webhooks.Finish) ([]webhooks.FinishResult, error) {
	res := make([]webhooks.FinishResult, len(fs))
	if len(fs) == 0 {
		return res, nil
	}
	now := ts(time.Now())
	var keys []endpointKey
	var order []int // items with a lease, by delivery id
	for i, f := range fs {
		if f.Delivery == nil || f.Delivery.LockedUntil == nil {
			continue
		}
		order = append(order, i)
		if f.Outcome != nil {
			keys = append(keys, endpointKey{f.Delivery.WorkspaceID, f.Delivery.EndpointID})
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(fs[a].Delivery.ID, fs[b].Delivery.ID) })
	slices.SortFunc(keys, func(a, b endpointKey) int {
		return cmp.Or(cmp.Compare(a.workspaceID, b.workspaceID), cmp.Compare(a.id, b.id))
	})
	keys = slices.Compact(keys)
	if len(order) == 0 {
		return res, nil // none holds a lease: none is done
	}
	// Items naming one delivery go to statements one after another, in the
	// order given, so the first holding the lease takes it, as if each were
	// written alone.
	var groups [][]int
	for start := 0; start < len(order); {
		end := start + 1
		for end < len(order) && fs[order[end]].Delivery.ID != fs[order[end-1]].Delivery.ID {
			end++
		}
		groups = append(groups, order[start:end])
		start = end
	}
	outs := make([]webhooks.Delivery, len(fs))
	f := &finishing{fs: fs, keys: keys, groups: groups, now: now, res: res, outs: outs}
	err := retryDeadlock(func() error {
		clear(res)
		switch {
		case s.dialect != DialectPostgres:
			return s.inTx(ctx, f.sqlite)
		case s.InTx(ctx) || s.sequential:
			return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
				r := &seqRunner{ctx: ctx, q: tx.Tx, hot: s.hot}
				if err := f.postgres(r, s.finishSQL); err != nil {
					return err
				}
				return r.read()
			})
		default:
			return s.pipelined(ctx, []string{lockEndpointsPostgres, s.finishSQL, countPostgres}, func(r *pipeRunner) error {
				r.send(pgStep{sql: "BEGIN"})
				if err := f.postgres(r, s.finishSQL); err != nil {
					return err
				}
				r.send(pgStep{sql: "COMMIT"})
				return nil
			})
		}
	})
	if err != nil {
		return nil, fail("finish webhook attempts", err, "")
	}
	for i := range fs {
		if res[i].Done {
			*fs[i].Delivery = outs[i]
		}
	}
	return res, nil
}

// finishing is one FinishWebhookAttempts call: its items, the endpoints
// they count on (sorted), the items with a lease in groups of distinct
// deliveries (each by id), and the results.
type finishing struct {
	fs     []webhooks.Finish
	keys   []endpointKey
	groups [][]int
	now    time.Time
	res    []webhooks.FinishResult
	outs   []webhooks.Delivery
}

// postgres sends f's statements to r: the endpoints' lock and the
// finishes (by finishSQL, the Store's), read, then the endpoints' counts,
// left for the caller to run.
func (f *finishing) postgres(r pgRunner, finishSQL string) error {
	active := make(map[endpointKey]bool, len(f.keys))
	if len(f.keys) > 0 {
		wss, ids := make([]int64, len(f.keys)), make([]int64, len(f.keys))
		for i, k := range f.keys {
			wss[i], ids[i] = k.workspaceID, k.id
		}
		r.send(pgStep{sql: lockEndpointsPostgres, args: []any{wss, ids}, scan: func(rs rowScanner) error {
			for rs.Next() {
				var k endpointKey
				var a bool
				if err := rs.Scan(&k.workspaceID, &k.id, &a); err != nil {
					return err
				}
				active[k] = a
			}
			return nil
		}})
	}
	for _, items := range f.groups {
		ds, locks := f.items(items)
		n := len(ds)
		ids, wss, eps := make([]int64, n), make([]int64, n), make([]int64, n)
		next, delivered := make([]*time.Time, n), make([]*time.Time, n)
		statuses, errs := make([]string, n), make([]string, n)
		attempts, codes, times := make([]int, n), make([]int, n), make([]int, n)
		bodies := make([][]byte, n)
		for j, d := range ds {
			ids[j], wss[j], eps[j] = d.ID, d.WorkspaceID, d.EndpointID
			statuses[j], attempts[j], next[j], codes[j] = d.Status, d.Attempt, d.NextAttemptAt, d.ResponseCode
			bodies[j], times[j], errs[j], delivered[j] = []byte(d.ResponseBody), d.ResponseTimeMs, d.Error, d.DeliveredAt
		}
		r.send(pgStep{sql: finishSQL, args: []any{f.now, ids, wss, eps, locks, statuses, attempts, next, codes, bodies, times, errs, delivered},
			scan: func(rs rowScanner) error {
				rows, err := scanFinished(rs, n)
				if err == nil {
					f.finished(items, ds, rows)
				}
				return err
			}})
	}
	if err := r.read(); err != nil {
		return err
	}
	for _, k := range f.keys {
		t := f.tally(k, active[k])
		if t.successes+t.failures == 0 {
			continue
		}
		r.send(pgStep{sql: countPostgres, args: []any{t.successes, t.failures, t.lastAt, f.now, t.sawSuccess, t.failsAfter,
			t.runStart, t.disable, k.workspaceID, k.id}})
	}
	return nil
}

// sqlite runs f in tx (a write locks the whole database).
func (f *finishing) sqlite(ctx context.Context, tx bun.Tx) error {
	active := make(map[endpointKey]bool, len(f.keys))
	if len(f.keys) > 0 {
		// A no-op update, so that a deferred transaction takes the write
		// lock here, before it reads.
		in := make([]string, len(f.keys))
		args := make([]any, 0, 2*len(f.keys))
		for i, k := range f.keys {
			in[i] = "(?, ?)"
			args = append(args, k.workspaceID, k.id)
		}
		var rows []struct {
			WorkspaceID int64 `bun:"workspace_id"`
			ID          int64 `bun:"id"`
			IsActive    bool  `bun:"is_active"`
		}
		if err := tx.NewRaw("UPDATE revops_webhook_endpoints SET updated_at = updated_at WHERE (workspace_id, id) IN (VALUES "+
			strings.Join(in, ", ")+") RETURNING workspace_id, id, is_active", args...).Scan(ctx, &rows); err != nil {
			return err
		}
		for _, r := range rows {
			active[endpointKey{r.WorkspaceID, r.ID}] = r.IsActive
		}
	}
	for _, items := range f.groups {
		ds, locks := f.items(items)
		values := make([]string, len(ds))
		args := make([]any, 0, 12*len(ds)+1)
		for j, d := range ds {
			values[j] = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
			args = append(args, d.ID, d.WorkspaceID, d.EndpointID, locks[j], d.Status, d.Attempt, d.NextAttemptAt,
				d.ResponseCode, []byte(d.ResponseBody), d.ResponseTimeMs, d.Error, d.DeliveredAt)
		}
		// RETURNING names the updated table's columns unqualified (SQLite).
		// (bun writes the values into the SQL: SQLite's limit on its length
		// is 1e9 bytes, far above a batch.)
		var rows []finishedRow
		if err := tx.NewRaw(`WITH v(`+finishColumns+`) AS (VALUES `+strings.Join(values, ", ")+`)
UPDATE revops_webhook_deliveries AS d `+finishSet+` FROM v WHERE `+finishMatch+`
RETURNING id, event_id, event_type, created_at`, append(args, f.now)...).Scan(ctx, &rows); err != nil {
			return err
		}
		f.finished(items, ds, rows)
	}
	for _, k := range f.keys {
		t := f.tally(k, active[k])
		if t.successes+t.failures == 0 {
			continue
		}
		set := "success_count = success_count + ?, failure_count = failure_count + ?, last_delivery_at = ?, updated_at = ?"
		args := []any{t.successes, t.failures, t.lastAt, f.now}
		if t.sawSuccess {
			set += ", consecutive_failures = ?, failing_since = ?"
		} else {
			set += ", consecutive_failures = consecutive_failures + ?, failing_since = COALESCE(failing_since, ?)"
		}
		args = append(args, t.failsAfter, t.runStart)
		if t.disable != "" {
			set += ", is_active = ?, disabled_reason = ?"
			args = append(args, false, t.disable)
		}
		if _, err := tx.NewRaw("UPDATE revops_webhook_endpoints SET "+set+" WHERE workspace_id = ? AND id = ?",
			append(args, k.workspaceID, k.id)...).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// lockEndpointsPostgres locks endpoints by (workspace, id) ($1, $2) with the
// lock an UPDATE takes (FOR NO KEY UPDATE, which leaves inserts of
// deliveries referencing them free), in that order, and reads whether each
// is active.
const lockEndpointsPostgres = `SELECT workspace_id, id, is_active FROM revops_webhook_endpoints
WHERE (workspace_id, id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[])) ORDER BY workspace_id, id FOR NO KEY UPDATE`

// countPostgres writes a tally to an endpoint: $1 successes, $2 failures,
// $3 the last outcome's time, $4 now, $5 whether a success was among them,
// $6 the failures after the last success (or all), $7 the first of those,
// $8 the reason to disable it ("" keeps it as is), $9 and $10 the
// endpoint's workspace and id. One text, prepared once.
const countPostgres = `UPDATE revops_webhook_endpoints SET success_count = success_count + $1, failure_count = failure_count + $2,
last_delivery_at = $3, updated_at = $4,
consecutive_failures = CASE WHEN $5::boolean THEN $6::int ELSE consecutive_failures + $6::int END,
failing_since = CASE WHEN $5::boolean THEN $7::timestamptz ELSE COALESCE(failing_since, $7::timestamptz) END,
is_active = is_active AND $8::text = '', disabled_reason = CASE WHEN $8::text = '' THEN disabled_reason ELSE $8::text END
WHERE workspace_id = $9 AND id = $10`

// finishedRow is what a finish reads back: the columns it does not write.
type finishedRow struct {
	ID        int64     `bun:"id"`
	EventID   string    `bun:"event_id"`
	EventType string    `bun:"event_type"`
	CreatedAt time.Time `bun:"created_at"`
}

// scanFinished reads finishedRows with plain Scans: bun's reflection cost
// more than the rows.
func scanFinished(rs rowScanner, n int) ([]finishedRow, error) {
	rows := make([]finishedRow, 0, n)
	for rs.Next() {
		var f finishedRow
		if err := rs.Scan(&f.ID, &f.EventID, &f.EventType, &f.CreatedAt); err != nil {
			return nil, err
		}
		rows = append(rows, f)
	}
	return rows, nil
}

// The finish's statement: set from v, the items, matched on the lease,
// each only if its row still holds its lease, workspace and endpoint.
//
// PostgreSQL: the values come as one array per column (unnest; a nil time
// is a NULL element, the items sorted by id), joined to the rows, which the
// ids, named again, let the planner look up by id (see Lock order).
// SQLite: a VALUES list.
const (
	finishSet = `SET status = v.status, attempt = v.attempt, next_attempt_at = v.next_attempt_at, locked_until = NULL,
response_code = v.response_code, response_body = v.response_body, response_time_ms = v.response_time_ms, error = v.error,
delivered_at = v.delivered_at, updated_at = ?`
	finishColumns = "id, workspace_id, endpoint_id, locked_until, status, attempt, next_attempt_at, " +
		"response_code, response_body, response_time_ms, error, delivered_at"
	finishMatch = "d.id = v.id AND d.workspace_id = v.workspace_id AND d.endpoint_id = v.endpoint_id AND d.locked_until = v.locked_until"
)

// finishPostgres takes the updated_at ($1) and one array per column of
// finishColumns ($2–$13).
var finishPostgres = finishPostgresFrom(finishValues)

// finishPostgresLockFirst is finishPostgres joining the values to the rows
// in a sub-select that locks them in id order first (Store.claimSQL, Store.finishSQL).
var finishPostgresLockFirst = finishPostgresFrom(`(SELECT v.* FROM ` + finishValues + `
JOIN revops_webhook_deliveries AS l ON l.id = v.id WHERE l.id = ANY($2::bigint[]) ORDER BY l.id FOR UPDATE OF l) AS v`)

const finishValues = `unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::text[], $7::int[], $8::timestamptz[],
$9::int[], $10::bytea[], $11::int[], $12::text[], $13::timestamptz[]) AS v(` + finishColumns + `)`

func finishPostgresFrom(values string) string {
	return `UPDATE revops_webhook_deliveries AS d ` + strings.Replace(finishSet, "?", "$1", 1) + `
FROM ` + values + `
WHERE ` + finishMatch + ` AND d.id = ANY($2::bigint[])
RETURNING d.id, d.event_id, d.event_type, d.created_at`
}

// items are the deliveries of the items at indexes items, their times at
// the stored precision, and their leases.
func (f *finishing) items(items []int) ([]webhooks.Delivery, []time.Time) {
	ds, locks := make([]webhooks.Delivery, len(items)), make([]time.Time, len(items))
	for j, i := range items {
		ds[j], locks[j] = *f.fs[i].Delivery, ts(*f.fs[i].Delivery.LockedUntil)
		normalizeDelivery(&ds[j])
	}
	return ds, locks
}

// finished marks done the items (of deliveries ds) whose rows were
// written, with their stored rows: the item's Delivery with its times at
// the stored precision, no lease, UpdatedAt now, and the columns not
// written as read back.
func (f *finishing) finished(items []int, ds []webhooks.Delivery, rows []finishedRow) {
	byID := make(map[int64]int, len(ds))
	for j, d := range ds {
		byID[d.ID] = j
	}
	for _, r := range rows {
		j := byID[r.ID]
		out := ds[j]
		out.LockedUntil, out.UpdatedAt = nil, f.now
		out.EventID, out.EventType, out.CreatedAt = r.EventID, r.EventType, utc(r.CreatedAt)
		f.res[items[j]].Done, f.outs[items[j]] = true, out
	}
}

// tally adds up the outcomes of the done items naming endpoint k as if
// written one after another in their order, and marks the item that
// disables it (if it was active).
type tally struct {
	successes, failures int
	failsAfter          int        // failures after the last success (all if none)
	sawSuccess          bool       // a success was among them
	runStart            *time.Time // the first failure after the last success
	lastAt              time.Time
	disable             string
}

func (f *finishing) tally(k endpointKey, active bool) tally {
	var t tally
	for i, it := range f.fs {
		d, o := it.Delivery, it.Outcome
		if !f.res[i].Done || o == nil || d.WorkspaceID != k.workspaceID || d.EndpointID != k.id {
			continue
		}
		at := orNow(o.At)
		t.lastAt = at
		if o.Success {
			t.successes++
			t.sawSuccess, t.failsAfter, t.runStart = true, 0, nil
			continue
		}
		t.failures++
		t.failsAfter++
		if t.runStart == nil {
			t.runStart = &at
		}
		if o.Disable != "" && active && t.disable == "" {
			t.disable, f.res[i].Disabled = o.Disable, true
		}
	}
	return t
}

// DueWebhookDeliveries lists deliveries due at now and not leased, oldest
// NextAttemptAt first (ties by id). A limit below 1 lists none.
func (s *Store) DueWebhookDeliveries(ctx context.Context, now time.Time, limit int) ([]webhooks.Delivery, error) {
	if limit < 1 {
		return []webhooks.Delivery{}, nil
	}
	now = ts(now)
	var rows []deliveryRow
	err := s.db.NewRaw(`SELECT `+deliveryColumns+` FROM revops_webhook_deliveries
WHERE status IN (?, ?) AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
ORDER BY next_attempt_at, id LIMIT ?`,
		webhooks.StatusPending, webhooks.StatusRetrying, now, now, limit).Scan(ctx, &rows)
	if err != nil {
		return nil, fail("list due webhook deliveries", err, "")
	}
	out := make([]webhooks.Delivery, len(rows))
	for i := range rows {
		out[i] = rows[i].delivery()
	}
	return out, nil
}

// UpdateWebhookDelivery locks the delivery, reads it, applies fn and writes
// it back, in one transaction. fn may change the status, attempt, times,
// lease and response fields; ID, WorkspaceID, EndpointID, EventID, EventType
// and CreatedAt are kept. It sees a zero UpdatedAt, and one it leaves zero
// is set to now.
func (s *Store) UpdateWebhookDelivery(ctx context.Context, workspaceID, id int64, fn func(*webhooks.Delivery) error) (*webhooks.Delivery, error) {
	var out *webhooks.Delivery
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewRaw("UPDATE revops_webhook_deliveries SET updated_at = updated_at WHERE workspace_id = ? AND id = ?", workspaceID, id).Exec(ctx)
		if err := mustAffect("update webhook delivery", res, err); err != nil {
			return err
		}
		d, err := webhookDelivery(ctx, tx, "workspace_id = ? AND id = ?", workspaceID, id)
		if err != nil {
			return err
		}
		kept := *d
		d.UpdatedAt = time.Time{}
		if err := fn(d); err != nil {
			return err
		}
		d.ID, d.WorkspaceID, d.EndpointID, d.EventID, d.EventType, d.CreatedAt = id, workspaceID, kept.EndpointID, kept.EventID, kept.EventType, kept.CreatedAt
		d.UpdatedAt = orNow(d.UpdatedAt)
		normalizeDelivery(d)
		_, err = tx.NewRaw(`UPDATE revops_webhook_deliveries SET status = ?, attempt = ?, next_attempt_at = ?, locked_until = ?,
response_code = ?, response_body = ?, response_time_ms = ?, error = ?, delivered_at = ?, updated_at = ?
WHERE workspace_id = ? AND id = ?`,
			d.Status, d.Attempt, d.NextAttemptAt, d.LockedUntil, d.ResponseCode, []byte(d.ResponseBody), d.ResponseTimeMs, d.Error,
			d.DeliveredAt, d.UpdatedAt, workspaceID, id).Exec(ctx)
		if err != nil {
			return fail("update webhook delivery", err, "")
		}
		out = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ParallelWrites tells webhooks whether concurrent writes run in parallel:
// on PostgreSQL they do; SQLite takes one writer at a time.
func (s *Store) ParallelWrites() bool { return s.dialect == DialectPostgres }
