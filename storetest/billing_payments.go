package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revopsdev/revops/billing"
)

func billingPaymentTests() []test {
	return []test{
		{"BillingPayments/Subscription", testSubscription},
		{"BillingPayments/SubscriptionByCustomer", testSubscriptionByCustomer},
		{"BillingPayments/ProviderEventOnce", testProviderEventOnce},
		{"BillingPayments/ProviderEventRollback", testProviderEventRollback},
		{"BillingPayments/ProviderEventConcurrent", testProviderEventConcurrent},
		{"BillingPayments/DeleteWorkspaceCascades", testSubscriptionDeleteWorkspace},
	}
}

func (e *env) subscribe(workspaceID int64, customer string) *billing.Subscription {
	e.t.Helper()
	sub, err := e.s.UpdateSubscription(e.ctx, workspaceID, func(s *billing.Subscription) error {
		s.Provider, s.CustomerID = "stripe", customer
		return nil
	})
	e.must(err, "UpdateSubscription "+customer)
	return sub
}

func testSubscription(e *env) {
	u := e.user("sub")
	w := e.workspace("sub", u.ID)
	_, err := e.s.Subscription(e.ctx, w.ID)
	e.notFound(err, "Subscription before any")
	_, err = e.s.UpdateSubscription(e.ctx, 987654, func(*billing.Subscription) error { return nil })
	e.notFound(err, "UpdateSubscription of a missing workspace")

	// A new one: fn sees a zero subscription of the workspace.
	end := at(30*24*time.Hour + 123456789*time.Nanosecond)
	evAt := at(time.Minute)
	got, err := e.s.UpdateSubscription(e.ctx, w.ID, func(s *billing.Subscription) error {
		if s.WorkspaceID != w.ID || s.Status != "" || !s.CreatedAt.IsZero() {
			e.t.Errorf("UpdateSubscription of a new subscription: fn got %+v, want a zero one of workspace %d", s, w.ID)
		}
		s.Provider, s.CustomerID, s.SubscriptionID, s.Status, s.Tier = "stripe", "cus_1", "sub_1", billing.StatusActive, "pro"
		s.CurrentPeriodEnd, s.CancelAtPeriodEnd, s.EventAt = &end, true, &evAt
		s.WorkspaceID = 42 // ignored
		return nil
	})
	e.must(err, "UpdateSubscription create")
	e.recent("CreatedAt", got.CreatedAt)
	if got.WorkspaceID != w.ID || !got.UpdatedAt.Equal(got.CreatedAt) {
		e.t.Errorf("created subscription = %+v, want workspace %d and UpdatedAt = CreatedAt", got, w.ID)
	}
	if got.CurrentPeriodEnd == nil || !got.CurrentPeriodEnd.Equal(end.Truncate(time.Microsecond)) {
		e.t.Errorf("CurrentPeriodEnd = %v, want %s at microsecond precision", got.CurrentPeriodEnd, end)
	}
	read, err := e.s.Subscription(e.ctx, w.ID)
	e.must(err, "Subscription")
	e.same("Subscription after create", read, got)

	// An update keeps CreatedAt, sets UpdatedAt when fn leaves it zero, and
	// clears optional times set to nil.
	upd := at(time.Hour)
	got2, err := e.s.UpdateSubscription(e.ctx, w.ID, func(s *billing.Subscription) error {
		e.same("fn's view", s, &billing.Subscription{WorkspaceID: w.ID, Provider: "stripe", CustomerID: "cus_1", SubscriptionID: "sub_1",
			Status: billing.StatusActive, Tier: "pro", CurrentPeriodEnd: got.CurrentPeriodEnd, CancelAtPeriodEnd: true, EventAt: &evAt,
			CreatedAt: got.CreatedAt})
		s.Status, s.Tier, s.CurrentPeriodEnd, s.CancelAtPeriodEnd, s.UpdatedAt = billing.StatusCanceled, "free", nil, false, upd
		s.CreatedAt = at(-time.Hour) // ignored
		return nil
	})
	e.must(err, "UpdateSubscription update")
	read, err = e.s.Subscription(e.ctx, w.ID)
	e.must(err, "Subscription")
	e.same("Subscription after update", read, got2)
	if !read.CreatedAt.Equal(got.CreatedAt) || !read.UpdatedAt.Equal(upd) || read.CurrentPeriodEnd != nil || read.Status != billing.StatusCanceled {
		e.t.Errorf("after update = %+v, want CreatedAt kept, UpdatedAt %s, no period end, canceled", read, upd)
	}

	// An error from fn stores nothing.
	boom := errors.New("boom")
	_, err = e.s.UpdateSubscription(e.ctx, w.ID, func(s *billing.Subscription) error { s.Tier = "agency"; return boom })
	if !errors.Is(err, boom) {
		e.t.Errorf("UpdateSubscription with a failing fn = %v, want fn's error", err)
	}
	read, err = e.s.Subscription(e.ctx, w.ID)
	e.must(err, "Subscription")
	e.same("Subscription after a failed update", read, got2)
}

func testSubscriptionByCustomer(e *env) {
	u := e.user("subc")
	a, b := e.workspace("subc-a", u.ID), e.workspace("subc-b", u.ID)
	sa := e.subscribe(a.ID, "cus_a")
	e.subscribe(b.ID, "") // no customer yet
	got, err := e.s.SubscriptionByCustomer(e.ctx, "stripe", "cus_a")
	e.must(err, "SubscriptionByCustomer")
	e.same("SubscriptionByCustomer", got, sa)
	_, err = e.s.SubscriptionByCustomer(e.ctx, "paddle", "cus_a")
	e.notFound(err, "SubscriptionByCustomer of another provider")
	_, err = e.s.SubscriptionByCustomer(e.ctx, "stripe", "")
	e.notFound(err, "SubscriptionByCustomer of the empty customer")

	// A customer belongs to one workspace per provider.
	_, err = e.s.UpdateSubscription(e.ctx, b.ID, func(s *billing.Subscription) error { s.CustomerID = "cus_a"; return nil })
	e.conflict(err, "UpdateSubscription taking another workspace's customer")
	_, err = e.s.UpdateSubscription(e.ctx, b.ID, func(s *billing.Subscription) error {
		s.Provider, s.CustomerID = "paddle", "cus_a"
		return nil
	})
	e.must(err, "the same customer id with another provider")
	got, err = e.s.SubscriptionByCustomer(e.ctx, "paddle", "cus_a")
	e.must(err, "SubscriptionByCustomer paddle")
	if got.WorkspaceID != b.ID {
		e.t.Errorf("SubscriptionByCustomer(paddle) = workspace %d, want %d", got.WorkspaceID, b.ID)
	}
}

func (e *env) providerEvent(id string, workspaceID int64) *billing.ProcessedEvent {
	return &billing.ProcessedEvent{Provider: "stripe", EventID: id, Type: "customer.subscription.updated", WorkspaceID: workspaceID, ProcessedAt: at(0)}
}

func testProviderEventOnce(e *env) {
	u := e.user("pev")
	w := e.workspace("pev", u.ID)
	calls := 0
	apply := func(ctx context.Context) error {
		calls++
		_, err := e.s.UpdateSubscription(ctx, w.ID, func(s *billing.Subscription) error {
			s.Status = billing.StatusActive
			return nil
		})
		return err
	}
	ok, err := e.s.ProcessProviderEvent(e.ctx, e.providerEvent("evt_1", w.ID), apply)
	e.must(err, "ProcessProviderEvent")
	if !ok || calls != 1 {
		e.t.Fatalf("first ProcessProviderEvent = %v with %d calls, want applied once", ok, calls)
	}
	ok, err = e.s.ProcessProviderEvent(e.ctx, e.providerEvent("evt_1", w.ID), apply)
	e.must(err, "ProcessProviderEvent replay")
	if ok || calls != 1 {
		e.t.Errorf("replayed ProcessProviderEvent = %v with %d calls, want not applied, fn not run", ok, calls)
	}
	// The same id from another provider is another event.
	other := e.providerEvent("evt_1", w.ID)
	other.Provider = "paddle"
	ok, err = e.s.ProcessProviderEvent(e.ctx, other, apply)
	e.must(err, "ProcessProviderEvent other provider")
	if !ok || calls != 2 {
		e.t.Errorf("ProcessProviderEvent of another provider = %v with %d calls, want applied", ok, calls)
	}
	sub, err := e.s.Subscription(e.ctx, w.ID)
	e.must(err, "Subscription")
	if sub.Status != billing.StatusActive {
		e.t.Errorf("status = %q, want fn's write", sub.Status)
	}
}

func testProviderEventRollback(e *env) {
	u := e.user("pevr")
	w := e.workspace("pevr", u.ID)
	before := e.subscribe(w.ID, "cus_r")
	boom := errors.New("boom")
	ok, err := e.s.ProcessProviderEvent(e.ctx, e.providerEvent("evt_r", w.ID), func(ctx context.Context) error {
		if _, err := e.s.UpdateSubscription(ctx, w.ID, func(s *billing.Subscription) error { s.Status = billing.StatusCanceled; return nil }); err != nil {
			return err
		}
		return boom // a crash after the write
	})
	if ok || !errors.Is(err, boom) {
		e.t.Errorf("ProcessProviderEvent with a failing fn = %v, %v; want not applied and fn's error", ok, err)
	}
	sub, err := e.s.Subscription(e.ctx, w.ID)
	e.must(err, "Subscription")
	e.same("subscription after a rolled-back event", sub, before)
	// Its redelivery applies it: the record was rolled back with the write.
	ok, err = e.s.ProcessProviderEvent(e.ctx, e.providerEvent("evt_r", w.ID), func(ctx context.Context) error {
		_, err := e.s.UpdateSubscription(ctx, w.ID, func(s *billing.Subscription) error { s.Status = billing.StatusCanceled; return nil })
		return err
	})
	e.must(err, "ProcessProviderEvent redelivery")
	sub, err = e.s.Subscription(e.ctx, w.ID)
	e.must(err, "Subscription")
	if !ok || sub.Status != billing.StatusCanceled {
		e.t.Errorf("redelivery = %v, status %q; want applied, canceled", ok, sub.Status)
	}
}

func testProviderEventConcurrent(e *env) {
	u := e.user("pevc")
	w := e.workspace("pevc", u.ID)
	var applied, calls atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := e.s.ProcessProviderEvent(e.ctx, e.providerEvent("evt_c", w.ID), func(ctx context.Context) error {
				calls.Add(1)
				_, err := e.s.UpdateSubscription(ctx, w.ID, func(s *billing.Subscription) error { s.Tier += "x"; return nil })
				return err
			})
			if err != nil {
				e.t.Errorf("concurrent ProcessProviderEvent: %v", err)
			}
			if ok {
				applied.Add(1)
			}
		})
	}
	wg.Wait()
	sub, err := e.s.Subscription(e.ctx, w.ID)
	e.must(err, "Subscription")
	if applied.Load() != 1 || calls.Load() != 1 || sub.Tier != "x" {
		e.t.Errorf("8 concurrent deliveries: applied %d, fn ran %d times, tier %q; want exactly once", applied.Load(), calls.Load(), sub.Tier)
	}
}

func testSubscriptionDeleteWorkspace(e *env) {
	u := e.user("subd")
	a, b := e.workspace("subd-a", u.ID), e.workspace("subd-b", u.ID)
	e.subscribe(a.ID, "cus_da")
	sb := e.subscribe(b.ID, "cus_db")
	e.must(e.s.DeleteWorkspace(e.ctx, a.ID), "DeleteWorkspace")
	_, err := e.s.Subscription(e.ctx, a.ID)
	e.notFound(err, "Subscription after DeleteWorkspace")
	_, err = e.s.SubscriptionByCustomer(e.ctx, "stripe", "cus_da")
	e.notFound(err, "SubscriptionByCustomer after DeleteWorkspace")
	got, err := e.s.Subscription(e.ctx, b.ID)
	e.must(err, "Subscription of the other workspace")
	e.same("the other workspace's subscription", got, sb)
}
