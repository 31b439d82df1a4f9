package billing

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
)

// Ledger is the service over billing accounts, their workspace bindings and
// their double-entry ledger. Validation errors name JSON fields (name,
// currency, amount, description, idempotency_key, billingAccountId).
type Ledger struct {
	st  AccountStore
	now func() time.Time
}

// NewLedger returns a Ledger on st; now is the clock (nil: time.Now).
func NewLedger(st AccountStore, now func() time.Time) (*Ledger, error) {
	if st == nil {
		return nil, errors.New("billing: NewLedger needs an AccountStore")
	}
	if now == nil {
		now = time.Now
	}
	return &Ledger{st: st, now: now}, nil
}

func (l *Ledger) clock() time.Time { return l.now().UTC().Truncate(time.Microsecond) }

// CreateAccount creates an account owned by ownerUserID, bound to no
// workspace.
func (l *Ledger) CreateAccount(ctx context.Context, ownerUserID int64, in AccountInput) (*Account, error) {
	a, err := l.newAccount(ownerUserID, in)
	if err != nil {
		return nil, err
	}
	if err := l.st.CreateBillingAccount(ctx, a, 0); err != nil {
		return nil, err
	}
	return a, nil
}

// CreateWorkspaceAccount creates an account owned by ownerUserID and binds
// it to the workspace (as its default when it has none), atomically.
func (l *Ledger) CreateWorkspaceAccount(ctx context.Context, workspaceID, ownerUserID int64, in AccountInput) (*BoundAccount, error) {
	a, err := l.newAccount(ownerUserID, in)
	if err != nil {
		return nil, err
	}
	if err := l.st.CreateBillingAccount(ctx, a, workspaceID); err != nil {
		return nil, err
	}
	return l.st.WorkspaceBillingAccount(ctx, workspaceID, a.ID)
}

func (l *Ledger) newAccount(ownerUserID int64, in AccountInput) (*Account, error) {
	if ownerUserID <= 0 {
		return nil, core.E(core.CodeAccessDenied, "A billing account is owned by a user; this key has none. Use a personal key or a key created by a user.")
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	now := l.clock()
	return &Account{OwnerUserID: ownerUserID, Name: in.Name, Currency: in.Currency, CreatedAt: now, UpdatedAt: now}, nil
}

// Account returns an account by id, whoever owns it (host code).
func (l *Ledger) Account(ctx context.Context, id int64) (*Account, error) {
	return l.st.BillingAccount(ctx, id)
}

// ownedAccount returns the account userID owns; anything else (missing, or
// another user's) is the same validation error on billingAccountId, so it
// does not tell whether another user's account exists.
func (l *Ledger) ownedAccount(ctx context.Context, userID, accountID int64) (*Account, error) {
	const field, msg = "billingAccountId", "The selected billing account does not exist or is not yours."
	if userID <= 0 || accountID <= 0 {
		return nil, core.Invalid(field, msg)
	}
	a, err := l.st.BillingAccount(ctx, accountID)
	if errors.Is(err, core.ErrNotFound) || (err == nil && a.OwnerUserID != userID) {
		return nil, core.Invalid(field, msg)
	}
	return a, err
}

// LinkAccount binds an existing account that userID owns to the workspace
// (as its default when it has none). Binding it twice is a conflict.
func (l *Ledger) LinkAccount(ctx context.Context, workspaceID, userID, accountID int64) (*BoundAccount, error) {
	if _, err := l.ownedAccount(ctx, userID, accountID); err != nil {
		return nil, err
	}
	b, err := l.st.BindBillingAccount(ctx, workspaceID, accountID, false)
	if errors.Is(err, core.ErrConflict) {
		return nil, core.Conflict("This billing account is already bound to the workspace.")
	}
	return b, err
}

// AccountForNewWorkspace picks the account a workspace userID is creating
// binds to (spec 003): accountID when given, which userID must own (else a
// validation error on billingAccountId); otherwise the user's default
// account, created ("Default", USD) when the user has none. A principal
// without a user (userID 0) and no accountID gets nil: no binding.
func (l *Ledger) AccountForNewWorkspace(ctx context.Context, userID int64, accountID *int64) (*Account, error) {
	if accountID != nil {
		return l.ownedAccount(ctx, userID, *accountID)
	}
	if userID <= 0 {
		return nil, nil
	}
	now := l.clock()
	return l.st.UserBillingAccount(ctx, userID, &Account{OwnerUserID: userID, Name: DefaultAccountName, Currency: DefaultCurrency, CreatedAt: now, UpdatedAt: now})
}

// Bind binds an account to a workspace without an ownership check (host
// code, and a workspace just created by the account's owner).
func (l *Ledger) Bind(ctx context.Context, workspaceID, accountID int64, makeDefault bool) (*BoundAccount, error) {
	return l.st.BindBillingAccount(ctx, workspaceID, accountID, makeDefault)
}

// WorkspaceAccount returns an account bound to the workspace; accountID 0
// is the default (not found when the workspace has none).
func (l *Ledger) WorkspaceAccount(ctx context.Context, workspaceID, accountID int64) (*BoundAccount, error) {
	return l.st.WorkspaceBillingAccount(ctx, workspaceID, accountID)
}

// WorkspaceAccounts lists the accounts bound to the workspace.
func (l *Ledger) WorkspaceAccounts(ctx context.Context, workspaceID int64, p core.ListParams) ([]BoundAccount, int, error) {
	return l.st.ListWorkspaceBillingAccounts(ctx, workspaceID, p)
}

// SetDefault makes a bound account the one the workspace is charged on.
func (l *Ledger) SetDefault(ctx context.Context, workspaceID, accountID int64) (*BoundAccount, error) {
	return l.st.SetDefaultBillingAccount(ctx, workspaceID, accountID)
}

// Unbind removes a binding. The default account cannot be unbound (409):
// make another bound account the default first. So the last bound account,
// always the default, stays.
func (l *Ledger) Unbind(ctx context.Context, workspaceID, accountID int64) error {
	err := l.st.UnbindBillingAccount(ctx, workspaceID, accountID)
	if errors.Is(err, core.ErrConflict) {
		return core.Conflict("The workspace's default billing account cannot be unbound. Make another bound account the default first; the last bound account always stays.")
	}
	return err
}

// PostInput is a transaction to post.
type PostInput struct {
	AccountID      int64
	Type           string // Credit or Debit
	Amount         int64  // minor units, 1..MaxAmount
	Currency       string // must be the account's
	Counter        string // default: CounterExternal for credits, CounterUsage for debits
	Description    string // at most 500 characters
	IdempotencyKey string // optional, at most 255 characters
}

// Post writes a transaction. It returns the stored transaction and whether
// it is a replay of an earlier one with the same idempotency key (then no
// money moved). Errors: validation (amount, currency, description,
// idempotency_key, type), not found (account), conflict (a debit beyond the
// balance, a credit beyond MaxBalance, a key reused for another amount).
func (l *Ledger) Post(ctx context.Context, in PostInput) (*Transaction, bool, error) {
	var v core.Validation
	if in.Type != Credit && in.Type != Debit {
		v.Add("type", "The type must be credit or debit.")
	}
	if in.Amount <= 0 || in.Amount > MaxAmount {
		v.Add("amount", "The amount must be a positive integer number of minor units, at most 10^15.")
	}
	if !ValidCurrency(in.Currency) {
		v.Add("currency", currencyMsg)
	}
	if utf8.RuneCountInString(in.Description) > 500 || !utf8.ValidString(in.Description) {
		v.Add("description", "The description must be valid text of at most 500 characters.")
	}
	in.IdempotencyKey = strings.TrimSpace(in.IdempotencyKey)
	if len(in.IdempotencyKey) > 255 {
		v.Add("idempotency_key", "The idempotency key may not be greater than 255 characters.")
	}
	if in.Counter == "" {
		in.Counter = CounterExternal
		if in.Type == Debit {
			in.Counter = CounterUsage
		}
	}
	if validCounter(in.Counter) != nil {
		v.Add("counter", "The counter-account must be 1–64 of a-z, 0-9 and _ . : - and not a billing account.")
	}
	if err := v.Err(); err != nil {
		return nil, false, err
	}
	if in.AccountID <= 0 {
		return nil, false, core.NotFound()
	}
	t := &Transaction{AccountID: in.AccountID, Type: in.Type, Amount: in.Amount, Currency: in.Currency, Counter: in.Counter,
		Description: in.Description, IdempotencyKey: in.IdempotencyKey, CreatedAt: l.clock()}
	replayed, err := l.st.PostBillingTransaction(ctx, t)
	if err != nil {
		return nil, false, err
	}
	return t, replayed, nil
}

// Credit adds amount (minor units) to the account from CounterExternal. With
// a key, posting it again returns the first transaction and moves nothing.
func (l *Ledger) Credit(ctx context.Context, accountID, amount int64, currency, description, key string) (*Transaction, error) {
	t, _, err := l.Post(ctx, PostInput{AccountID: accountID, Type: Credit, Amount: amount, Currency: currency, Description: description, IdempotencyKey: key})
	return t, err
}

// Debit takes amount (minor units) from the account to CounterUsage; a
// debit beyond the balance is refused with a conflict and moves nothing.
func (l *Ledger) Debit(ctx context.Context, accountID, amount int64, currency, description, key string) (*Transaction, error) {
	t, _, err := l.Post(ctx, PostInput{AccountID: accountID, Type: Debit, Amount: amount, Currency: currency, Description: description, IdempotencyKey: key})
	return t, err
}

// Transactions lists the transactions of the workspace's default account
// (none when it has no account).
func (l *Ledger) Transactions(ctx context.Context, workspaceID int64, p core.ListParams) ([]Transaction, int, error) {
	a, err := l.st.WorkspaceBillingAccount(ctx, workspaceID, 0)
	if errors.Is(err, core.ErrNotFound) {
		return []Transaction{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return l.st.ListBillingTransactions(ctx, a.ID, p)
}

// Summary is a workspace's billing at a glance.
type Summary struct {
	Account  *BoundAccount // the default; nil when the workspace has none
	Totals   Totals
	Accounts int // bound accounts
}

// Summary returns the workspace's default account with its totals and the
// number of accounts bound to the workspace. They are read one after
// another, not as one snapshot: a post in between shows in one, not both.
func (l *Ledger) Summary(ctx context.Context, workspaceID int64) (*Summary, error) {
	s := &Summary{}
	a, err := l.st.WorkspaceBillingAccount(ctx, workspaceID, 0)
	switch {
	case errors.Is(err, core.ErrNotFound):
		return s, nil
	case err != nil:
		return nil, err
	}
	s.Account = a
	t, err := l.st.BillingTotals(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	s.Totals = *t
	if _, s.Accounts, err = l.st.ListWorkspaceBillingAccounts(ctx, workspaceID, core.ListParams{Page: 1, PerPage: 1}); err != nil {
		return nil, err
	}
	return s, nil
}
