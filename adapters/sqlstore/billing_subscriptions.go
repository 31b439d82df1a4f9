package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

var _ billing.SubscriptionStore = (*Store)(nil)

type subscriptionRow struct {
	WorkspaceID       int64      `bun:"workspace_id"`
	Provider          string     `bun:"provider"`
	CustomerID        string     `bun:"customer_id"`
	SubscriptionID    string     `bun:"subscription_id"`
	Status            string     `bun:"status"`
	Tier              string     `bun:"tier"`
	CurrentPeriodEnd  *time.Time `bun:"current_period_end"`
	CancelAtPeriodEnd bool       `bun:"cancel_at_period_end"`
	EventAt           *time.Time `bun:"event_at"`
	CreatedAt         time.Time  `bun:"created_at"`
	UpdatedAt         time.Time  `bun:"updated_at"`
}

const subscriptionColumns = "workspace_id, provider, customer_id, subscription_id, status, tier, current_period_end, " +
	"cancel_at_period_end, event_at, created_at, updated_at"

func (r *subscriptionRow) subscription() *billing.Subscription {
	return &billing.Subscription{
		WorkspaceID: r.WorkspaceID, Provider: r.Provider, CustomerID: r.CustomerID, SubscriptionID: r.SubscriptionID,
		Status: r.Status, Tier: r.Tier, CurrentPeriodEnd: utcp(r.CurrentPeriodEnd), CancelAtPeriodEnd: r.CancelAtPeriodEnd,
		EventAt: utcp(r.EventAt), CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt),
	}
}

func subscription(ctx context.Context, db bun.IDB, where string, args ...any) (*billing.Subscription, error) {
	var r subscriptionRow
	if err := db.NewRaw("SELECT "+subscriptionColumns+" FROM revops_billing_subscriptions WHERE "+where, args...).Scan(ctx, &r); err != nil {
		return nil, fail("get billing subscription", err, "")
	}
	return r.subscription(), nil
}

// Subscription returns the workspace's subscription; not found when none.
func (s *Store) Subscription(ctx context.Context, workspaceID int64) (*billing.Subscription, error) {
	return subscription(ctx, s.conn(ctx), "workspace_id = ?", workspaceID)
}

// SubscriptionByCustomer finds the subscription of a provider's customer.
func (s *Store) SubscriptionByCustomer(ctx context.Context, provider, customerID string) (*billing.Subscription, error) {
	if customerID == "" {
		return nil, core.NotFound()
	}
	return subscription(ctx, s.conn(ctx), "provider = ? AND customer_id = ?", provider, customerID)
}

// UpdateSubscription locks the workspace (serialising updates of its
// subscription: SELECT … FOR UPDATE is not portable, and a missing row
// could not be locked anyway), applies fn to the subscription or a new one,
// and upserts the result.
func (s *Store) UpdateSubscription(ctx context.Context, workspaceID int64, fn func(*billing.Subscription) error) (*billing.Subscription, error) {
	var out *billing.Subscription
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		sub, err := subscription(ctx, tx, "workspace_id = ?", workspaceID)
		switch {
		case errors.Is(err, core.ErrNotFound):
			sub = &billing.Subscription{WorkspaceID: workspaceID}
		case err != nil:
			return err
		}
		created := sub.CreatedAt
		sub.UpdatedAt = time.Time{}
		if err := fn(sub); err != nil {
			return err
		}
		now := ts(time.Now()) // one instant: a new row's UpdatedAt is its CreatedAt
		if created.IsZero() {
			created = now
		}
		if sub.UpdatedAt.IsZero() {
			sub.UpdatedAt = now
		}
		sub.WorkspaceID, sub.CreatedAt, sub.UpdatedAt = workspaceID, ts(created), ts(sub.UpdatedAt)
		sub.CurrentPeriodEnd, sub.EventAt = tsp(sub.CurrentPeriodEnd), tsp(sub.EventAt)
		_, err = tx.NewRaw(`INSERT INTO revops_billing_subscriptions (`+subscriptionColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (workspace_id) DO UPDATE SET provider = excluded.provider, customer_id = excluded.customer_id,
subscription_id = excluded.subscription_id, status = excluded.status, tier = excluded.tier,
current_period_end = excluded.current_period_end, cancel_at_period_end = excluded.cancel_at_period_end,
event_at = excluded.event_at, updated_at = excluded.updated_at`,
			workspaceID, sub.Provider, sub.CustomerID, sub.SubscriptionID, sub.Status, sub.Tier, sub.CurrentPeriodEnd,
			sub.CancelAtPeriodEnd, sub.EventAt, sub.CreatedAt, sub.UpdatedAt).Exec(ctx)
		if err != nil {
			return fail("update billing subscription", err, "This payment provider customer belongs to another workspace.")
		}
		out = sub
		return nil
	})
	return out, err
}

// ProcessProviderEvent inserts the event's row and, when it is new, runs fn
// in the same transaction (joined by the store's writes through ctx).
func (s *Store) ProcessProviderEvent(ctx context.Context, ev *billing.ProcessedEvent, fn func(ctx context.Context) error) (bool, error) {
	applied := false
	err := s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// ON CONFLICT DO NOTHING rather than catching the unique violation,
		// which would abort a PostgreSQL transaction; a concurrent
		// delivery of the same event waits here for this one to finish.
		res, err := tx.NewRaw(`INSERT INTO revops_billing_provider_events (provider, event_id, type, workspace_id, processed_at)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider, event_id) DO NOTHING`,
			ev.Provider, ev.EventID, ev.Type, ev.WorkspaceID, orNow(ev.ProcessedAt)).Exec(ctx)
		if err != nil {
			return fail("record provider event", err, "")
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fail("record provider event", err, "")
		}
		if n == 0 {
			return nil
		}
		if err := fn(ctx); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return applied, nil
}
