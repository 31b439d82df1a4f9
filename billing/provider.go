package billing

import (
	"context"
	"errors"
	"time"
)

// Provider takes payments for a workspace's subscription: hosted checkout
// and portal pages, and the signed events the provider sends about them.
// adapters/stripe implements it; a nil Provider means billing is disabled
// (the self-host default): every billing route answers
// {"billingEnabled": false} and entitlements still work from tiers.
type Provider interface {
	// Name is the provider's path segment in POST /billing/webhooks/{name}
	// and the Provider of the subscriptions it keeps.
	Name() string
	// Checkout starts a hosted checkout and returns the page's URL and the
	// provider's customer of the workspace (created when in.CustomerID is
	// empty, or names a customer the provider no longer has), which revops
	// stores so that the next checkout and the portal reuse it.
	Checkout(ctx context.Context, in CheckoutInput) (*CheckoutSession, error)
	// Portal opens the customer's self-service portal and returns its URL.
	Portal(ctx context.Context, in PortalInput) (url string, err error)
	// ParseEvent verifies an inbound event on its raw body with the
	// provider's signature scheme (signature is the value of the
	// provider's signature header) and translates it. A bad or missing
	// signature is an error wrapping ErrInvalidSignature; a body that is
	// not an event, one wrapping ErrMalformedEvent. An event of a type
	// revops does not act on is returned with an empty Kind.
	ParseEvent(ctx context.Context, body []byte, signature string) (*ProviderEvent, error)
	// SignatureHeader names the HTTP header that carries the signature
	// ("Stripe-Signature").
	SignatureHeader() string
}

// Errors of Provider.ParseEvent; the HTTP layer answers both 400.
var (
	ErrInvalidSignature = errors.New("billing: the event's signature does not verify")
	ErrMalformedEvent   = errors.New("billing: the body is not a provider event")
)

// CheckoutInput is a request to subscribe a workspace to a tier.
type CheckoutInput struct {
	WorkspaceID int64
	Tier        string
	CustomerID  string // the provider's customer, when known
	Email       string
	SuccessURL  string // "" for the provider's configured default
	CancelURL   string
}

// CheckoutSession is a started checkout.
type CheckoutSession struct {
	URL        string
	CustomerID string
}

// PortalInput opens the portal of a workspace's customer.
type PortalInput struct {
	WorkspaceID int64
	CustomerID  string
	ReturnURL   string // "" for the provider's configured default
}

// EventKind is what a provider event means to revops.
type EventKind string

const (
	// EventCheckoutCompleted: a checkout finished; it links the workspace
	// to its customer and subscription.
	EventCheckoutCompleted EventKind = "checkout_completed"
	// EventSubscriptionUpdated: a subscription was created or changed
	// (status, price, period).
	EventSubscriptionUpdated EventKind = "subscription_updated"
	// EventSubscriptionDeleted: a subscription ended.
	EventSubscriptionDeleted EventKind = "subscription_deleted"
	// EventPaymentFailed: a renewal payment failed.
	EventPaymentFailed EventKind = "payment_failed"
)

// Subscription statuses (Stripe's names, which other providers map onto).
const (
	StatusNone              = "none" // no subscription yet (never stored)
	StatusActive            = "active"
	StatusTrialing          = "trialing"
	StatusPastDue           = "past_due"
	StatusIncomplete        = "incomplete"
	StatusIncompleteExpired = "incomplete_expired"
	StatusUnpaid            = "unpaid"
	StatusPaused            = "paused"
	StatusCanceled          = "canceled"
)

// Entitled reports whether a subscription in status pays for its tier.
// past_due keeps the tier while the provider retries the payment.
func Entitled(status string) bool {
	return status == StatusActive || status == StatusTrialing || status == StatusPastDue
}

// Ended reports whether a subscription in status no longer pays for
// anything: the workspace goes back to the default tier.
func Ended(status string) bool {
	switch status {
	case StatusCanceled, StatusIncompleteExpired, StatusUnpaid, StatusPaused:
		return true
	}
	return false
}

// ProviderEvent is a verified inbound event in provider-neutral terms.
type ProviderEvent struct {
	ID        string    // the provider's event id: the deduplication key
	Type      string    // the provider's event type, e.g. customer.subscription.updated
	Kind      EventKind // "" for a type revops ignores
	CreatedAt time.Time // when the provider created it (orders events)
	// WorkspaceID is the workspace the event names through metadata revops
	// set at checkout; 0 when it names none (found by CustomerID instead).
	WorkspaceID       int64
	CustomerID        string
	SubscriptionID    string
	Status            string // a Status* value; "" when the event says none
	Tier              string // the tier of the subscription's price; "" when unknown
	CurrentPeriodEnd  *time.Time
	CancelAtPeriodEnd bool
}

// Subscription is a workspace's subscription state as its provider last
// reported it.
type Subscription struct {
	WorkspaceID       int64
	Provider          string
	CustomerID        string
	SubscriptionID    string
	Status            string // "" until an event says
	Tier              string // the tier the subscription pays for
	CurrentPeriodEnd  *time.Time
	CancelAtPeriodEnd bool
	// EventAt is the creation time of the newest event applied, so that
	// an older event delivered late does not undo a newer one.
	EventAt   *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ProcessedEvent records a provider event applied once.
type ProcessedEvent struct {
	Provider    string
	EventID     string
	Type        string
	WorkspaceID int64
	ProcessedAt time.Time
}

// SubscriptionStore keeps subscriptions and the provider events applied.
type SubscriptionStore interface {
	// Subscription returns the workspace's subscription; core.ErrNotFound
	// when it has none.
	Subscription(ctx context.Context, workspaceID int64) (*Subscription, error)
	// SubscriptionByCustomer finds the subscription of a provider's
	// customer; core.ErrNotFound when none.
	SubscriptionByCustomer(ctx context.Context, provider, customerID string) (*Subscription, error)
	// UpdateSubscription locks the workspace's subscription (a zero one
	// with WorkspaceID set when it has none), applies fn and writes the
	// result, in one transaction. fn cannot change WorkspaceID or
	// CreatedAt. An unknown workspace is core.ErrNotFound; a customer id
	// another workspace holds with the same provider is core.ErrConflict.
	UpdateSubscription(ctx context.Context, workspaceID int64, fn func(*Subscription) error) (*Subscription, error)
	// ProcessProviderEvent records ev and runs fn in one transaction: the
	// writes fn makes with the ctx it is given join it, so they land
	// exactly when the record does. An event already recorded (same
	// provider and event id) runs nothing and returns false.
	ProcessProviderEvent(ctx context.Context, ev *ProcessedEvent, fn func(ctx context.Context) error) (applied bool, err error)
}

// Apply folds ev into sub, the workspace's current state, and returns the
// tier the workspace should now be on ("" to leave it as it is).
// defaultTier is where an ended subscription leaves the workspace.
//
// Providers may deliver late and out of order: an event older than the
// newest one applied only fills in missing ids, an ended subscription is
// not revived by an update of it (whatever its time), and an event about
// another subscription than the current one may start a new subscription
// but not end the current one.
func Apply(sub *Subscription, ev *ProviderEvent, defaultTier string) (tier string) {
	if sub.CustomerID == "" {
		sub.CustomerID = ev.CustomerID
	}
	stale := sub.EventAt != nil && ev.CreatedAt.Before(*sub.EventAt)
	other := sub.SubscriptionID != "" && ev.SubscriptionID != "" && ev.SubscriptionID != sub.SubscriptionID
	if other && (ev.Kind != EventSubscriptionUpdated && ev.Kind != EventCheckoutCompleted || !Entitled(ev.Status) && ev.Status != "") {
		return "" // an older subscription ending or failing; the current one stands
	}
	// A canceled (or expired) subscription never comes back at the
	// provider: an update of the same subscription arriving after its end
	// was sent before it, even when both carry the same second.
	if !other && sub.SubscriptionID != "" && ev.SubscriptionID == sub.SubscriptionID &&
		(sub.Status == StatusCanceled || sub.Status == StatusIncompleteExpired) && ev.Kind != EventSubscriptionDeleted {
		stale = true
	}
	if stale {
		if sub.SubscriptionID == "" {
			sub.SubscriptionID = ev.SubscriptionID
		}
		return ""
	}
	if ev.CustomerID != "" {
		sub.CustomerID = ev.CustomerID
	}
	if ev.SubscriptionID != "" {
		sub.SubscriptionID = ev.SubscriptionID
	}
	at := ev.CreatedAt.UTC()
	sub.EventAt = &at
	switch ev.Kind {
	case EventCheckoutCompleted:
		// The subscription events carry the truth; a checkout only sets a
		// status when none has arrived yet (they may come first).
		if sub.Status != "" && !other || ev.Status == "" {
			return ""
		}
		sub.Status = ev.Status
		if ev.Tier != "" {
			sub.Tier = ev.Tier
		}
	case EventSubscriptionUpdated:
		if ev.Status != "" {
			sub.Status = ev.Status
		}
		if ev.Tier != "" {
			sub.Tier = ev.Tier
		}
		sub.CurrentPeriodEnd, sub.CancelAtPeriodEnd = ev.CurrentPeriodEnd, ev.CancelAtPeriodEnd
	case EventSubscriptionDeleted:
		sub.Status = StatusCanceled
		sub.CancelAtPeriodEnd = false
		if ev.CurrentPeriodEnd != nil {
			sub.CurrentPeriodEnd = ev.CurrentPeriodEnd
		}
	case EventPaymentFailed:
		if sub.Status == StatusActive || sub.Status == StatusTrialing {
			sub.Status = StatusPastDue
		}
		return ""
	default:
		return ""
	}
	switch {
	case Ended(sub.Status):
		return defaultTier
	case Entitled(sub.Status):
		return sub.Tier
	}
	return ""
}
