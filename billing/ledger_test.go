package billing_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

// noStore fails the test on any store call: validation must refuse first.
type noStore struct {
	billing.AccountStore // nil: calling any method panics
}

func TestPostValidatesBeforeTheStore(t *testing.T) {
	l, err := billing.NewLedger(noStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := billing.PostInput{AccountID: 1, Type: billing.Credit, Amount: 100, Currency: "USD"}
	cases := []struct {
		mod   func(*billing.PostInput)
		field string
	}{
		{func(in *billing.PostInput) { in.Amount = 0 }, "amount"},
		{func(in *billing.PostInput) { in.Amount = -5 }, "amount"},
		{func(in *billing.PostInput) { in.Amount = billing.MaxAmount + 1 }, "amount"},
		{func(in *billing.PostInput) { in.Currency = "usd" }, "currency"},
		{func(in *billing.PostInput) { in.Currency = "" }, "currency"},
		{func(in *billing.PostInput) { in.Currency = "US1" }, "currency"},
		{func(in *billing.PostInput) { in.Type = "refund" }, "type"},
		{func(in *billing.PostInput) { in.Counter = "billing_account:2" }, "counter"},
		{func(in *billing.PostInput) { in.Counter = "Bank" }, "counter"},
		{func(in *billing.PostInput) { in.Description = strings.Repeat("é", 501) }, "description"},
		{func(in *billing.PostInput) { in.IdempotencyKey = strings.Repeat("k", 256) }, "idempotency_key"},
	}
	for _, c := range cases {
		in := ok
		c.mod(&in)
		_, _, err := l.Post(context.Background(), in)
		var ce *core.Error
		if !errors.As(err, &ce) || ce.Code != core.CodeValidation || len(ce.Fields[c.field]) == 0 {
			t.Errorf("%+v: got %v, want a validation error on %q", in, err, c.field)
		}
	}
	if _, _, err := l.Post(context.Background(), billing.PostInput{Type: billing.Debit, Amount: 1, Currency: "EUR"}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("post to account 0: got %v, want not found", err)
	}
}

func TestCreateAccountValidates(t *testing.T) {
	l, _ := billing.NewLedger(noStore{}, nil)
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, 0, billing.AccountInput{Name: "x"}); !errors.Is(err, core.ErrAccessDenied) {
		t.Errorf("account without an owner: got %v, want access_denied", err)
	}
	for in, field := range map[billing.AccountInput]string{
		{Name: " "}:                      "name",
		{Name: strings.Repeat("n", 256)}: "name",
		{Name: "x", Currency: "eur"}:     "currency",
		{Name: "x", Currency: "EURO"}:    "currency",
		{Name: "", Currency: "$$$"}:      "currency",
	} {
		_, err := l.CreateAccount(ctx, 7, in)
		var ce *core.Error
		if !errors.As(err, &ce) || len(ce.Fields[field]) == 0 {
			t.Errorf("%+v: got %v, want a validation error on %q", in, err, field)
		}
	}
	// A principal without a user gets no account for its new workspace.
	a, err := l.AccountForNewWorkspace(ctx, 0, nil)
	if a != nil || err != nil {
		t.Errorf("AccountForNewWorkspace without a user = %v, %v; want nil, nil", a, err)
	}
	id := int64(3)
	if _, err := l.AccountForNewWorkspace(ctx, 0, &id); !errors.Is(err, core.ErrValidation) {
		t.Errorf("billingAccountId without a user: got %v, want a validation error", err)
	}
}

func TestValidCurrency(t *testing.T) {
	for c, want := range map[string]bool{"USD": true, "EUR": true, "JPY": true, "usd": false, "US": false, "USDT": false, "U$D": false, "": false} {
		if got := billing.ValidCurrency(c); got != want {
			t.Errorf("ValidCurrency(%q) = %v, want %v", c, got, want)
		}
	}
}
