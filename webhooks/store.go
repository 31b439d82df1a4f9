package webhooks

import (
	"context"
	"encoding/json"
	"time"

	"github.com/revopsdev/revops/core"
)

// Delivery statuses (spec 001).
const (
	StatusPending  = "pending"  // due (or running): no attempt has finished yet
	StatusRetrying = "retrying" // an attempt failed; another is scheduled
	StatusSuccess  = "success"  // a 2xx answered
	StatusFailed   = "failed"   // given up: attempts exhausted or endpoint disabled
)

// Statuses lists the delivery statuses a list may filter on.
var Statuses = []string{StatusPending, StatusSuccess, StatusFailed, StatusRetrying}

// Why an endpoint was disabled by delivery, not by its owner.
const (
	DisabledGone    = "gone"    // it answered 410 Gone
	DisabledFailing = "failing" // every attempt failed for Config.DisableAfter
)

// Endpoint is a URL subscribed to events of one workspace.
type Endpoint struct {
	ID          int64
	WorkspaceID int64
	URL         string
	Events      []string // event types and patterns ("post.*", "*")
	Secret      string   // whsec_…, signs every delivery
	// PrevSecret is the secret before the last rotation, still signing
	// deliveries (beside Secret) until PrevSecretUntil.
	PrevSecret      string
	PrevSecretUntil *time.Time
	IsActive        bool
	// DisabledReason says why delivery disabled the endpoint (DisabledGone,
	// DisabledFailing); "" when active or disabled by its owner.
	DisabledReason      string
	SuccessCount        int64
	FailureCount        int64
	ConsecutiveFailures int
	// FailingSince is the end of the first failed attempt of the current
	// run of failures (nil after a success).
	FailingSince   *time.Time
	LastDeliveryAt *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Event is one published event.
type Event struct {
	ID          string // evt_…, the webhook-id of every delivery of it
	WorkspaceID int64
	Type        string
	Payload     json.RawMessage
	CreatedAt   time.Time
}

// Delivery is one event to one endpoint: the durable truth the queue works
// from. A queue job only names it.
type Delivery struct {
	ID          int64
	WorkspaceID int64
	EndpointID  int64
	EventID     string
	EventType   string
	Status      string
	Attempt     int // attempts made (finished or running)
	// NextAttemptAt is when the delivery is due (pending or retrying).
	NextAttemptAt *time.Time
	// LockedUntil is the lease of the worker attempting it.
	LockedUntil    *time.Time
	ResponseCode   int    // of the last attempt; 0 if none answered
	ResponseBody   string // of the last attempt, truncated
	ResponseTimeMs int
	Error          string // why the last attempt failed without a status
	DeliveredAt    *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// DeliveryFilter narrows a list of deliveries.
type DeliveryFilter struct {
	EndpointID int64  // required
	Status     string // "" for all
}

// Claim is a delivery leased to one attempt, with what the attempt sends:
// its endpoint and its event, as stored when it was claimed.
type Claim struct {
	Delivery Delivery
	Endpoint Endpoint
	Event    Event
}

// Finish is one attempt to end (FinishWebhookAttempts): the claimed
// delivery, holding the attempt's lease and carrying its outcome, and what
// to count on its endpoint (nil: nothing).
type Finish struct {
	Delivery *Delivery
	Outcome  *AttemptOutcome
}

// FinishResult is what ending one attempt did.
type FinishResult struct {
	// Done: the attempt still held the lease and its outcome was written.
	Done bool
	// Disabled: this attempt disabled the endpoint.
	Disabled bool
}

// AttemptOutcome is what a finished attempt writes to its endpoint's
// record (FinishWebhookAttempts).
type AttemptOutcome struct {
	// Success: a 2xx answered. It counts a success and ends the endpoint's
	// run of failures; otherwise it counts a failure and, if none is
	// running, starts one at At.
	Success bool
	// At is when the attempt ended (zero: now): the endpoint's
	// LastDeliveryAt, and its FailingSince when this failure starts a run.
	At time.Time
	// Disable, on a failure, disables the endpoint with this reason
	// (DisabledGone, DisabledFailing) if it is still active; "" keeps it.
	Disable string
}

// Store persists endpoints, events and deliveries. Contract, checked by
// storetest: every read and write is scoped to its workspace (another
// workspace's rows are core.ErrNotFound); read-modify-write methods run in
// one transaction with the row locked, so concurrent updates never lose one
// another; times round-trip in UTC.
type Store interface {
	// CreateWebhookEndpoint inserts e and sets its ID, CreatedAt, UpdatedAt.
	CreateWebhookEndpoint(ctx context.Context, e *Endpoint) error
	WebhookEndpoint(ctx context.Context, workspaceID, id int64) (*Endpoint, error)
	// ListWebhookEndpoints pages a workspace's endpoints (sort: id,
	// created_at; search: url).
	ListWebhookEndpoints(ctx context.Context, workspaceID int64, p core.ListParams) ([]Endpoint, int, error)
	// UpdateWebhookEndpoint applies fn to the stored endpoint and writes it
	// back; an error from fn is returned and nothing is written.
	UpdateWebhookEndpoint(ctx context.Context, workspaceID, id int64, fn func(*Endpoint) error) (*Endpoint, error)
	// DeleteWebhookEndpoint removes the endpoint and its deliveries.
	DeleteWebhookEndpoint(ctx context.Context, workspaceID, id int64) error
	// ActiveWebhookEndpoints lists a workspace's active endpoints.
	ActiveWebhookEndpoints(ctx context.Context, workspaceID int64) ([]Endpoint, error)

	// CreateWebhookEvent stores ev and its deliveries in one transaction,
	// setting the deliveries' IDs and times; it returns them.
	CreateWebhookEvent(ctx context.Context, ev *Event, ds []Delivery) ([]Delivery, error)
	WebhookEvent(ctx context.Context, workspaceID int64, id string) (*Event, error)

	WebhookDelivery(ctx context.Context, workspaceID, id int64) (*Delivery, error)
	// ListWebhookDeliveries pages an endpoint's deliveries, newest first
	// unless p sorts (sort: id, created_at); an endpoint that is not the
	// workspace's is not found.
	ListWebhookDeliveries(ctx context.Context, workspaceID int64, f DeliveryFilter, p core.ListParams) ([]Delivery, int, error)
	// ClaimWebhookDeliveries leases each delivery of ids until `until` if
	// it is due at now (pending or retrying, NextAttemptAt ≤ now) and not
	// leased (no LockedUntil, or one ≤ now), incrementing its Attempt. It
	// returns the claimed rows, in the order of ids, each with its endpoint
	// and event (all of the delivery's workspace); a delivery another worker
	// holds, not due, gone, or named twice (after its first claim) is left
	// out. Of workers racing for one delivery, in one call or several,
	// exactly one wins. Group commit: concurrent attempts share one call.
	ClaimWebhookDeliveries(ctx context.Context, ids []int64, now, until time.Time) ([]Claim, error)
	// FinishWebhookAttempts ends attempts in one transaction, each as if
	// finished alone in the order given, and returns one result per item.
	//
	// Each item ends the attempt holding its Delivery's lease: it writes
	// the outcome to the delivery (Status, Attempt, NextAttemptAt, response
	// fields, Error, DeliveredAt as given; LockedUntil cleared; UpdatedAt
	// now) and sets the Delivery to the stored row. Attempt is the claim's
	// count, or one less for a claim given back unsent (claimed ahead, its
	// lease then too short to send safely). Unless its Outcome is nil (the endpoint is left alone), it counts
	// the attempt on the endpoint: LastDeliveryAt Outcome.At; on success
	// SuccessCount+1, ConsecutiveFailures 0, FailingSince nil; on failure
	// FailureCount+1, ConsecutiveFailures+1, FailingSince kept or else
	// Outcome.At, and with Outcome.Disable an endpoint still active is
	// disabled (IsActive false, DisabledReason Outcome.Disable) and the
	// item's Disabled is true. Several outcomes of one endpoint in one
	// call add up; of items disabling one endpoint, in one call or in
	// concurrent calls, exactly one reports it. Counters are never lost to
	// concurrent calls.
	//
	// An item writes nothing (neither delivery nor endpoint) and is not
	// Done if its delivery is no longer leased by its attempt (LockedUntil
	// differs from the Delivery's, at the store's precision, or the
	// Delivery has none), is gone, or is not the Delivery's WorkspaceID's
	// delivery to its EndpointID; the other items are unaffected. An error
	// writes nothing at all.
	FinishWebhookAttempts(ctx context.Context, fs []Finish) ([]FinishResult, error)
	// DueWebhookDeliveries lists up to limit deliveries due at now and not
	// leased, oldest NextAttemptAt first, across workspaces.
	DueWebhookDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// UpdateWebhookDelivery applies fn to the stored delivery and writes it
	// back (manual retry); an error from fn is returned and nothing is written.
	UpdateWebhookDelivery(ctx context.Context, workspaceID, id int64, fn func(*Delivery) error) (*Delivery, error)
}

// ParallelWriter is a Store that says whether it runs concurrent writes in
// parallel (PostgreSQL does; SQLite takes one writer at a time). If it
// does, claims and finishes are written in two lanes instead of one.
type ParallelWriter interface {
	ParallelWrites() bool
}
