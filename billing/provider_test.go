package billing_test

import (
	"testing"
	"time"

	"github.com/revopsdev/revops/billing"
)

func TestApply(t *testing.T) {
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	active := func() billing.Subscription {
		return billing.Subscription{CustomerID: "cus_1", SubscriptionID: "sub_1", Status: billing.StatusActive, Tier: "pro", EventAt: at(0)}
	}
	for _, tc := range []struct {
		name     string
		sub      billing.Subscription
		ev       billing.ProviderEvent
		tier     string // Apply's answer
		status   string
		subTier  string
		subID    string
		customer string
	}{
		{"checkout paid starts a subscription", billing.Subscription{},
			billing.ProviderEvent{Kind: billing.EventCheckoutCompleted, CreatedAt: t0, CustomerID: "cus_1", SubscriptionID: "sub_1", Status: billing.StatusActive, Tier: "pro"},
			"pro", billing.StatusActive, "pro", "sub_1", "cus_1"},
		{"checkout unpaid links ids only", billing.Subscription{},
			billing.ProviderEvent{Kind: billing.EventCheckoutCompleted, CreatedAt: t0, CustomerID: "cus_1", SubscriptionID: "sub_1", Tier: "pro"},
			"", "", "", "sub_1", "cus_1"},
		{"checkout after the subscription event keeps its status", billing.Subscription{SubscriptionID: "sub_1", Status: billing.StatusTrialing, Tier: "pro", EventAt: at(0)},
			billing.ProviderEvent{Kind: billing.EventCheckoutCompleted, CreatedAt: t0, SubscriptionID: "sub_1", Status: billing.StatusActive, Tier: "pro"},
			"", billing.StatusTrialing, "pro", "sub_1", ""},
		{"update to another price moves the tier", active(),
			billing.ProviderEvent{Kind: billing.EventSubscriptionUpdated, CreatedAt: t0.Add(time.Second), SubscriptionID: "sub_1", Status: billing.StatusActive, Tier: "agency"},
			"agency", billing.StatusActive, "agency", "sub_1", "cus_1"},
		{"past_due keeps the tier", active(),
			billing.ProviderEvent{Kind: billing.EventSubscriptionUpdated, CreatedAt: t0.Add(time.Second), SubscriptionID: "sub_1", Status: billing.StatusPastDue, Tier: "pro"},
			"pro", billing.StatusPastDue, "pro", "sub_1", "cus_1"},
		{"unpaid goes to the default tier", active(),
			billing.ProviderEvent{Kind: billing.EventSubscriptionUpdated, CreatedAt: t0.Add(time.Second), SubscriptionID: "sub_1", Status: billing.StatusUnpaid, Tier: "pro"},
			"free", billing.StatusUnpaid, "pro", "sub_1", "cus_1"},
		{"incomplete changes no tier", billing.Subscription{},
			billing.ProviderEvent{Kind: billing.EventSubscriptionUpdated, CreatedAt: t0, SubscriptionID: "sub_1", Status: billing.StatusIncomplete, Tier: "pro"},
			"", billing.StatusIncomplete, "pro", "sub_1", ""},
		{"deletion goes to the default tier", active(),
			billing.ProviderEvent{Kind: billing.EventSubscriptionDeleted, CreatedAt: t0.Add(time.Second), SubscriptionID: "sub_1", Status: billing.StatusCanceled},
			"free", billing.StatusCanceled, "pro", "sub_1", "cus_1"},
		{"payment failure marks past_due", active(),
			billing.ProviderEvent{Kind: billing.EventPaymentFailed, CreatedAt: t0.Add(time.Second), SubscriptionID: "sub_1"},
			"", billing.StatusPastDue, "pro", "sub_1", "cus_1"},
		{"a stale event changes nothing", active(),
			billing.ProviderEvent{Kind: billing.EventSubscriptionDeleted, CreatedAt: t0.Add(-time.Second), SubscriptionID: "sub_1"},
			"", billing.StatusActive, "pro", "sub_1", "cus_1"},
		{"an older subscription ending leaves the current one", active(),
			billing.ProviderEvent{Kind: billing.EventSubscriptionDeleted, CreatedAt: t0.Add(time.Second), SubscriptionID: "sub_old", Status: billing.StatusCanceled},
			"", billing.StatusActive, "pro", "sub_1", "cus_1"},
		{"a new active subscription replaces a canceled one", billing.Subscription{CustomerID: "cus_1", SubscriptionID: "sub_1", Status: billing.StatusCanceled, Tier: "pro", EventAt: at(0)},
			billing.ProviderEvent{Kind: billing.EventSubscriptionUpdated, CreatedAt: t0.Add(time.Second), SubscriptionID: "sub_2", Status: billing.StatusActive, Tier: "agency"},
			"agency", billing.StatusActive, "agency", "sub_2", "cus_1"},
		{"an update sent in the same second as the deletion does not revive it", billing.Subscription{CustomerID: "cus_1", SubscriptionID: "sub_1", Status: billing.StatusCanceled, Tier: "pro", EventAt: at(0)},
			billing.ProviderEvent{Kind: billing.EventSubscriptionUpdated, CreatedAt: t0, SubscriptionID: "sub_1", Status: billing.StatusActive, Tier: "agency"},
			"", billing.StatusCanceled, "pro", "sub_1", "cus_1"},
		{"an unknown kind changes nothing", active(),
			billing.ProviderEvent{CreatedAt: t0.Add(time.Second), SubscriptionID: "sub_1"},
			"", billing.StatusActive, "pro", "sub_1", "cus_1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := tc.sub
			tier := billing.Apply(&sub, &tc.ev, "free")
			if tier != tc.tier || sub.Status != tc.status || sub.Tier != tc.subTier || sub.SubscriptionID != tc.subID || sub.CustomerID != tc.customer {
				t.Errorf("Apply = %q, subscription %+v; want %q, status %q, tier %q, subscription %q, customer %q",
					tier, sub, tc.tier, tc.status, tc.subTier, tc.subID, tc.customer)
			}
		})
	}
}
