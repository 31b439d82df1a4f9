package billing

import "context"

// Provider takes payments for a workspace's subscription: hosted checkout
// and portal pages, and the signed events the provider sends about them.
// adapters/stripe implements it; a nil Provider means billing is disabled
// (the self-host default): every billing route answers
// {"billingEnabled": false} and entitlements still work from tiers.
type Provider interface {
	// Name is the provider's path segment in POST /billing/webhooks/{name}.
	Name() string
	// Checkout starts a hosted checkout and returns the page's URL.
	Checkout(ctx context.Context, in CheckoutInput) (url string, err error)
	// Portal opens the customer's self-service portal and returns its URL.
	Portal(ctx context.Context, in PortalInput) (url string, err error)
}

// CheckoutInput is a request to subscribe a workspace to a tier.
type CheckoutInput struct {
	WorkspaceID int64
	Tier        string
	CustomerID  string // the provider's customer, when known
	Email       string
	SuccessURL  string
	CancelURL   string
}

// PortalInput opens the portal of a workspace's customer.
type PortalInput struct {
	WorkspaceID int64
	CustomerID  string
	ReturnURL   string
}
