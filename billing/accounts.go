package billing

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/revopsdev/revops/core"
)

// Account is a billing account: a balance of money in one currency, owned by
// a user and bound to any number of that user's workspaces (spec 003).
// Balance is integer minor units (cents for USD) and never negative.
type Account struct {
	ID          int64
	OwnerUserID int64
	Name        string
	Currency    string // ISO 4217, upper case
	Balance     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// BoundAccount is an account as one workspace sees it. A workspace with any
// bound account has exactly one default: the account it is charged on,
// whose balance, transactions and summary the workspace's billing routes
// show.
type BoundAccount struct {
	Account
	WorkspaceID int64
	IsDefault   bool
	BoundAt     time.Time
}

// Transaction types.
const (
	Credit = "credit"
	Debit  = "debit"
)

// TransactionTypes are the values of Transaction.Type (the transactions
// list's status filter).
var TransactionTypes = []string{Credit, Debit}

// Default counter-accounts: where a credit's money comes from and a debit's
// goes to.
const (
	CounterExternal = "external"
	CounterUsage    = "usage"
)

// Transaction moves Amount into (credit) or out of (debit) an account. It is
// written as two entries that sum to zero: the account's and Counter's.
type Transaction struct {
	ID        int64
	AccountID int64
	Type      string // Credit or Debit
	Amount    int64  // > 0, minor units
	Currency  string // the account's
	// Counter is the other side of the double entry: CounterExternal,
	// CounterUsage or a name of the host's (a-z, 0-9, _ . : -).
	Counter     string
	Description string
	// IdempotencyKey, when set, is unique per account: posting it again
	// returns this transaction and moves no money.
	IdempotencyKey string
	BalanceAfter   int64
	Entries        []Entry // the account's entry first
	CreatedAt      time.Time
}

// Entry is one side of a transaction. Account is LedgerAccount(id) for a
// billing account, or a counter-account's name. Amount is signed: money
// into Account is positive.
type Entry struct {
	Account string
	Amount  int64
}

// LedgerAccount names a billing account in entries.
func LedgerAccount(accountID int64) string {
	return "billing_account:" + strconv.FormatInt(accountID, 10)
}

// Totals sum an account's transactions.
type Totals struct {
	Credited int64
	Debited  int64
	Count    int
}

// Limits of amounts. MaxBalance is the largest integer a JSON number read
// as a double holds exactly, so no client ever sees a rounded balance.
const (
	MaxAmount  int64 = 1_000_000_000_000_000
	MaxBalance int64 = 1<<53 - 1
)

// AccountStore persists billing accounts, workspace bindings and the
// ledger. Contract, checked by storetest:
//   - a missing account, a binding of another workspace and a reference to
//     a missing user or workspace are errors.Is(err, core.ErrNotFound);
//   - times are returned in UTC at microsecond precision; Create fills ID,
//     CreatedAt and UpdatedAt (zero times mean now);
//   - a workspace with bindings has exactly one default; the first account
//     bound becomes it.
type AccountStore interface {
	// CreateBillingAccount inserts a (Balance is ignored: accounts start
	// at zero). With bindTo > 0 it binds the account to that workspace in
	// the same transaction (as its default when it has none).
	CreateBillingAccount(ctx context.Context, a *Account, bindTo int64) error
	BillingAccount(ctx context.Context, id int64) (*Account, error)
	// UserBillingAccount returns the user's default account, the oldest
	// it owns. When it owns none and create is non-nil, create is inserted
	// (owned by the user) and returned; concurrent calls for one user
	// create one account. Otherwise none is not found.
	UserBillingAccount(ctx context.Context, userID int64, create *Account) (*Account, error)

	// BindBillingAccount binds the account to the workspace, as its default
	// when makeDefault or when it has none. Already bound is a conflict.
	BindBillingAccount(ctx context.Context, workspaceID, accountID int64, makeDefault bool) (*BoundAccount, error)
	// WorkspaceBillingAccount returns a bound account; accountID 0 means
	// the default one (not found when the workspace has none).
	WorkspaceBillingAccount(ctx context.Context, workspaceID, accountID int64) (*BoundAccount, error)
	// ListWorkspaceBillingAccounts sorts by id, name, currency, created_at
	// (default id); search matches the name.
	ListWorkspaceBillingAccounts(ctx context.Context, workspaceID int64, p core.ListParams) ([]BoundAccount, int, error)
	// SetDefaultBillingAccount makes a bound account the workspace's
	// default, atomically against concurrent calls.
	SetDefaultBillingAccount(ctx context.Context, workspaceID, accountID int64) (*BoundAccount, error)
	// UnbindBillingAccount removes a binding; the default one is a
	// conflict (make another default first), so a workspace never loses
	// its default while it has accounts.
	UnbindBillingAccount(ctx context.Context, workspaceID, accountID int64) error

	// PostBillingTransaction writes t and its two entries and moves the
	// account's balance, in one database transaction. t must be valid
	// (see Ledger.Post); the store checks against the account, under its
	// lock: a currency other than the account's is a validation error on
	// "currency", a debit beyond the balance (or a credit beyond
	// MaxBalance) a conflict. When t.IdempotencyKey was posted on the
	// account before, t is replaced by that transaction, replayed is true
	// and nothing moves (a conflict if its type, amount or currency
	// differ); this holds under concurrent posts too.
	PostBillingTransaction(ctx context.Context, t *Transaction) (replayed bool, err error)
	// ListBillingTransactions lists an account's transactions with their
	// entries, newest (highest id) first unless sorted by id, created_at or
	// amount; p.Filter.Status filters by type.
	ListBillingTransactions(ctx context.Context, accountID int64, p core.ListParams) ([]Transaction, int, error)
	// BillingTotals sums an account's transactions by type; an unknown
	// account has zero totals.
	BillingTotals(ctx context.Context, accountID int64) (*Totals, error)
}

// AccountInput creates an account.
type AccountInput struct {
	Name     string
	Currency string // default DefaultCurrency
}

// DefaultCurrency of new accounts.
const DefaultCurrency = "USD"

// DefaultAccountName is the name of the account created for a user whose
// first workspace binds to their default account.
const DefaultAccountName = "Default"

// ValidCurrency reports whether c looks like an ISO 4217 code: three
// upper-case ASCII letters.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := range 3 {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

const currencyMsg = "The currency must be an ISO 4217 code of three upper-case letters, e.g. USD."

func (in *AccountInput) check() error {
	var v core.Validation
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		v.Add("name", "The name field is required.")
	case len(in.Name) > 255:
		v.Add("name", "The name may not be greater than 255 characters.")
	}
	if in.Currency == "" {
		in.Currency = DefaultCurrency
	}
	if !ValidCurrency(in.Currency) {
		v.Add("currency", currencyMsg)
	}
	return v.Err()
}

// validCounter: a-z, 0-9 and _ . : -, 1–64 long, never a billing account's
// ledger name (that would make a transfer look like an external movement).
func validCounter(s string) error {
	if s == "" || len(s) > 64 || strings.HasPrefix(s, "billing_account:") {
		return fmt.Errorf("bad counter %q", s)
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && !strings.ContainsRune("_.:-", r) {
			return fmt.Errorf("bad counter %q", s)
		}
	}
	return nil
}
