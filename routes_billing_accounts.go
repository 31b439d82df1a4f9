package revops

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
)

// Wire shapes of billing accounts and the ledger (spec 003). Money is an
// integer number of minor units beside its currency.
type (
	billingAccountOut struct {
		ID          int64     `json:"id"`
		Name        string    `json:"name"`
		Currency    string    `json:"currency"`
		Balance     int64     `json:"balance"`
		IsDefault   bool      `json:"is_default"`
		OwnerUserID int64     `json:"owner_user_id"`
		BoundAt     time.Time `json:"bound_at"`
		CreatedAt   time.Time `json:"created_at"`
		UpdatedAt   time.Time `json:"updated_at"`
	}
	createBillingAccountIn struct {
		Name     string `json:"name" validate:"required,max=255"`
		Currency string `json:"currency"`
	}
	linkBillingAccountIn struct {
		BillingAccountID int64 `json:"billingAccountId" validate:"required"`
	}
	// The balance and summary of a workspace without an account have a
	// null account and currency and zero amounts.
	billingBalanceOut struct {
		BillingAccountID *int64  `json:"billing_account_id"`
		Amount           int64   `json:"amount"`
		Currency         *string `json:"currency"`
	}
	billingEntryOut struct {
		Account string `json:"account"`
		Amount  int64  `json:"amount"`
	}
	billingTransactionOut struct {
		ID               int64             `json:"id"`
		BillingAccountID int64             `json:"billing_account_id"`
		Type             string            `json:"type"`
		Amount           int64             `json:"amount"`
		Currency         string            `json:"currency"`
		Counter          string            `json:"counter"`
		Description      string            `json:"description"`
		IdempotencyKey   *string           `json:"idempotency_key"`
		BalanceAfter     int64             `json:"balance_after"`
		Entries          []billingEntryOut `json:"entries"`
		CreatedAt        time.Time         `json:"created_at"`
	}
	billingSummaryOut struct {
		BillingAccountID *int64  `json:"billing_account_id"`
		Currency         *string `json:"currency"`
		Balance          int64   `json:"balance"`
		TotalCredited    int64   `json:"total_credited"`
		TotalDebited     int64   `json:"total_debited"`
		TransactionCount int     `json:"transaction_count"`
		AccountsCount    int     `json:"accounts_count"`
	}
)

func toBillingAccount(b *billing.BoundAccount) *billingAccountOut {
	return &billingAccountOut{ID: b.ID, Name: b.Name, Currency: b.Currency, Balance: b.Balance, IsDefault: b.IsDefault,
		OwnerUserID: b.OwnerUserID, BoundAt: b.BoundAt, CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
}

func toBillingTransaction(t *billing.Transaction) *billingTransactionOut {
	out := &billingTransactionOut{ID: t.ID, BillingAccountID: t.AccountID, Type: t.Type, Amount: t.Amount, Currency: t.Currency,
		Counter: t.Counter, Description: t.Description, BalanceAfter: t.BalanceAfter, CreatedAt: t.CreatedAt,
		Entries: make([]billingEntryOut, len(t.Entries))}
	if t.IdempotencyKey != "" {
		k := t.IdempotencyKey
		out.IdempotencyKey = &k
	}
	for i, e := range t.Entries {
		out.Entries[i] = billingEntryOut{Account: e.Account, Amount: e.Amount}
	}
	return out
}

// Ledger returns the billing accounts and ledger service, for host code:
// Credit and Debit an account (integer minor units, idempotency keys),
// WorkspaceAccount(ctx, workspaceID, 0) for the account a workspace is
// charged on.
func (p *Platform) Ledger() *billing.Ledger { return p.ledger }

// billingAccountRoutes registers spec 003's billing bindings and views. All
// are tagged "Billing", so they answer {"billingEnabled": false} while no
// payment provider is configured.
func (p *Platform) billingAccountRoutes() {
	a, l := p.api, p.ledger
	const tag, base = BillingTag, "/workspaces/{id}/billing"
	accountID := func(c *Call) (int64, error) { return c.PathID("accountId") }

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: base + "/accounts", Tag: tag,
		Summary: "List the billing accounts bound to the workspace", Scope: "billing:read",
		Tenant: httpapi.TenantPath, Sort: []string{"id", "name", "currency", "created_at"}, Search: true},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*billingAccountOut, int, error) {
			list, total, err := l.WorkspaceAccounts(ctx, c.WorkspaceID(), lp)
			return each(list, toBillingAccount), total, err
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: base + "/accounts", Tag: tag,
		Summary: "Create a billing account owned by the caller and bind it (the default when the workspace has none)", Scope: "billing:write",
		Tenant: httpapi.TenantPath, Status: http.StatusCreated, Message: "Billing account created successfully."},
		func(ctx context.Context, c *Call, in *createBillingAccountIn) (*billingAccountOut, error) {
			b, err := l.CreateWorkspaceAccount(ctx, c.WorkspaceID(), c.Principal.UserID, billing.AccountInput{Name: in.Name, Currency: in.Currency})
			if err != nil {
				return nil, err
			}
			return toBillingAccount(b), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: base + "/accounts/link", Tag: tag,
		Summary: "Bind an existing billing account the caller owns", Scope: "billing:write",
		Tenant: httpapi.TenantPath, Message: "Billing account linked successfully."},
		func(ctx context.Context, c *Call, in *linkBillingAccountIn) (*billingAccountOut, error) {
			b, err := l.LinkAccount(ctx, c.WorkspaceID(), c.Principal.UserID, in.BillingAccountID)
			if err != nil {
				return nil, err
			}
			return toBillingAccount(b), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: base + "/accounts/{accountId}/default", Tag: tag,
		Summary: "Make a bound account the one the workspace is charged on", Scope: "billing:write",
		Tenant: httpapi.TenantPath, Message: "Default billing account updated successfully."},
		func(ctx context.Context, c *Call, _ *NoBody) (*billingAccountOut, error) {
			id, err := accountID(c)
			if err != nil {
				return nil, err
			}
			b, err := l.SetDefault(ctx, c.WorkspaceID(), id)
			if err != nil {
				return nil, err
			}
			return toBillingAccount(b), nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: base + "/accounts/{accountId}", Tag: tag,
		Summary: "Unbind an account (409 for the default one: make another default first)", Scope: "billing:write",
		Tenant: httpapi.TenantPath, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			id, err := accountID(c)
			if err != nil {
				return NoBody{}, err
			}
			return NoBody{}, l.Unbind(ctx, c.WorkspaceID(), id)
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: base + "/balance", Tag: tag,
		Summary: "The default account's balance, in minor units", Scope: "billing:read", Tenant: httpapi.TenantPath},
		func(ctx context.Context, c *Call, _ *NoBody) (*billingBalanceOut, error) {
			b, err := l.WorkspaceAccount(ctx, c.WorkspaceID(), 0)
			if errors.Is(err, core.ErrNotFound) {
				return &billingBalanceOut{}, nil
			}
			if err != nil {
				return nil, err
			}
			return &billingBalanceOut{BillingAccountID: &b.ID, Amount: b.Balance, Currency: &b.Currency}, nil
		})

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: base + "/transactions", Tag: tag,
		Summary: "List the default account's transactions, newest first (status filters by type: credit or debit)", Scope: "billing:read",
		Tenant: httpapi.TenantPath, Sort: []string{"id", "created_at", "amount"}, Statuses: billing.TransactionTypes, Search: true},
		func(ctx context.Context, c *Call, lp core.ListParams) ([]*billingTransactionOut, int, error) {
			list, total, err := l.Transactions(ctx, c.WorkspaceID(), lp)
			return each(list, toBillingTransaction), total, err
		})

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: base + "/summary", Tag: tag,
		Summary: "The default account's balance and totals, and the number of bound accounts", Scope: "billing:read", Tenant: httpapi.TenantPath},
		func(ctx context.Context, c *Call, _ *NoBody) (*billingSummaryOut, error) {
			s, err := l.Summary(ctx, c.WorkspaceID())
			if err != nil {
				return nil, err
			}
			out := &billingSummaryOut{TotalCredited: s.Totals.Credited, TotalDebited: s.Totals.Debited,
				TransactionCount: s.Totals.Count, AccountsCount: s.Accounts}
			if s.Account != nil {
				out.BillingAccountID, out.Currency, out.Balance = &s.Account.ID, &s.Account.Currency, s.Account.Balance
			}
			return out, nil
		})
}

// checkNewWorkspaceAccount refuses, before anything is created, a
// billingAccountId the creator does not own (422 on that field).
func (p *Platform) checkNewWorkspaceAccount(ctx context.Context, c *Call, accountID *int64) error {
	if accountID == nil {
		return nil
	}
	_, err := p.ledger.AccountForNewWorkspace(ctx, c.Principal.UserID, accountID)
	return err
}

// bindNewWorkspace binds a workspace just created to the account spec 003
// names: billingAccountId, else the creator's default account (created
// when they have none). The two writes cannot share a transaction through
// the Store interface, so a failed binding deletes the workspace again
// rather than leave one without its account.
func (p *Platform) bindNewWorkspace(ctx context.Context, c *Call, workspaceID int64, accountID *int64) error {
	acct, err := p.ledger.AccountForNewWorkspace(ctx, c.Principal.UserID, accountID)
	if err == nil && acct != nil {
		_, err = p.ledger.Bind(ctx, workspaceID, acct.ID, true)
	}
	if err != nil {
		if derr := p.cfg.Store.DeleteWorkspace(context.WithoutCancel(ctx), workspaceID); derr != nil {
			p.cfg.Logger.ErrorContext(ctx, "revops: removing a workspace whose billing binding failed", "error", derr, "workspace_id", workspaceID)
		}
		return err
	}
	return nil
}
