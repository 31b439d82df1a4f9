package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

var _ billing.AccountStore = (*Store)(nil)

// Lock order: a transaction that locks a workspace (binding changes) never
// locks an account, and posting locks only its account, so the two cannot
// deadlock on PostgreSQL.

// ---- accounts ----

type billingAccountRow struct {
	ID          int64     `bun:"id"`
	OwnerUserID int64     `bun:"owner_user_id"`
	Name        string    `bun:"name"`
	Currency    string    `bun:"currency"`
	Balance     int64     `bun:"balance"`
	CreatedAt   time.Time `bun:"created_at"`
	UpdatedAt   time.Time `bun:"updated_at"`
}

const billingAccountColumns = "id, owner_user_id, name, currency, balance, created_at, updated_at"

func (r *billingAccountRow) account() billing.Account {
	return billing.Account{ID: r.ID, OwnerUserID: r.OwnerUserID, Name: r.Name, Currency: r.Currency, Balance: r.Balance,
		CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt)}
}

// CreateBillingAccount inserts a at balance zero and, with bindTo > 0, binds
// it to that workspace in the same transaction. An unknown user or
// workspace is not found.
func (s *Store) CreateBillingAccount(ctx context.Context, a *billing.Account, bindTo int64) error {
	n := *a
	n.Balance = 0
	n.CreatedAt = orNow(a.CreatedAt)
	n.UpdatedAt = n.CreatedAt
	if !a.UpdatedAt.IsZero() {
		n.UpdatedAt = ts(a.UpdatedAt)
	}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := insertBillingAccount(ctx, tx, &n); err != nil {
			return err
		}
		if bindTo > 0 {
			_, err := bindAccount(ctx, tx, bindTo, n.ID, false, n.CreatedAt)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	*a = n
	return nil
}

func insertBillingAccount(ctx context.Context, db bun.IDB, a *billing.Account) error {
	err := db.NewRaw(`INSERT INTO revops_billing_accounts (owner_user_id, name, currency, balance, created_at, updated_at)
VALUES (?, ?, ?, 0, ?, ?) RETURNING id`, a.OwnerUserID, a.Name, a.Currency, a.CreatedAt, a.UpdatedAt).Scan(ctx, &a.ID)
	return fail("create billing account", err, "")
}

func billingAccount(ctx context.Context, db bun.IDB, where string, args ...any) (*billing.Account, error) {
	var r billingAccountRow
	if err := db.NewRaw("SELECT "+billingAccountColumns+" FROM revops_billing_accounts WHERE "+where, args...).Scan(ctx, &r); err != nil {
		return nil, fail("get billing account", err, "")
	}
	a := r.account()
	return &a, nil
}

func (s *Store) BillingAccount(ctx context.Context, id int64) (*billing.Account, error) {
	return billingAccount(ctx, s.conn(ctx), "id = ?", id)
}

// UserBillingAccount returns the user's oldest account. The user's row lock
// (a no-op update, see lockWorkspace) makes check-then-create atomic, so
// concurrent first workspaces of one user share one new account.
func (s *Store) UserBillingAccount(ctx context.Context, userID int64, create *billing.Account) (*billing.Account, error) {
	var out *billing.Account
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewRaw("UPDATE revops_users SET updated_at = updated_at WHERE id = ?", userID).Exec(ctx)
		if err := mustAffect("lock user", res, err); err != nil {
			return err
		}
		var rows []billingAccountRow
		err = tx.NewRaw("SELECT "+billingAccountColumns+" FROM revops_billing_accounts WHERE owner_user_id = ? ORDER BY id LIMIT 1", userID).Scan(ctx, &rows)
		if err != nil {
			return fail("get user billing account", err, "")
		}
		if len(rows) > 0 {
			a := rows[0].account()
			out = &a
			return nil
		}
		if create == nil {
			return core.NotFound()
		}
		n := *create
		n.OwnerUserID, n.Balance = userID, 0
		n.CreatedAt = orNow(create.CreatedAt)
		n.UpdatedAt = n.CreatedAt
		if !create.UpdatedAt.IsZero() {
			n.UpdatedAt = ts(create.UpdatedAt)
		}
		if err := insertBillingAccount(ctx, tx, &n); err != nil {
			return err
		}
		out = &n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ---- bindings ----

type boundAccountRow struct {
	billingAccountRow
	WorkspaceID int64     `bun:"workspace_id"`
	IsDefault   bool      `bun:"is_default"`
	BoundAt     time.Time `bun:"bound_at"`
}

func (r *boundAccountRow) bound() billing.BoundAccount {
	return billing.BoundAccount{Account: r.account(), WorkspaceID: r.WorkspaceID, IsDefault: r.IsDefault, BoundAt: utc(r.BoundAt)}
}

const boundAccountFrom = "revops_workspace_billing_accounts AS b JOIN revops_billing_accounts AS a ON a.id = b.account_id"

var boundAccountColumns = "a." + strings.ReplaceAll(billingAccountColumns, ", ", ", a.") +
	", b.workspace_id, b.is_default, b.created_at AS bound_at"

func workspaceBillingAccount(ctx context.Context, db bun.IDB, workspaceID, accountID int64) (*billing.BoundAccount, error) {
	where, args := "b.workspace_id = ? AND b.account_id = ?", []any{workspaceID, accountID}
	if accountID == 0 {
		where, args = "b.workspace_id = ? AND b.is_default = ?", []any{workspaceID, true}
	}
	var r boundAccountRow
	if err := db.NewRaw("SELECT "+boundAccountColumns+" FROM "+boundAccountFrom+" WHERE "+where, args...).Scan(ctx, &r); err != nil {
		return nil, fail("get workspace billing account", err, "")
	}
	b := r.bound()
	return &b, nil
}

func (s *Store) WorkspaceBillingAccount(ctx context.Context, workspaceID, accountID int64) (*billing.BoundAccount, error) {
	return workspaceBillingAccount(ctx, s.conn(ctx), workspaceID, accountID)
}

// bindAccount binds under the workspace's lock, so that "first binding is
// the default" holds against concurrent binds.
func bindAccount(ctx context.Context, tx bun.Tx, workspaceID, accountID int64, makeDefault bool, now time.Time) (*billing.BoundAccount, error) {
	if err := lockWorkspace(ctx, tx, workspaceID); err != nil {
		return nil, err
	}
	var n int
	if err := tx.NewRaw("SELECT COUNT(*) FROM revops_workspace_billing_accounts WHERE workspace_id = ? AND is_default = ?",
		workspaceID, true).Scan(ctx, &n); err != nil {
		return nil, fail("bind billing account", err, "")
	}
	def := makeDefault || n == 0
	// Bound already: a conflict, checked before unsetting the default.
	var bound int
	if err := tx.NewRaw("SELECT COUNT(*) FROM revops_workspace_billing_accounts WHERE workspace_id = ? AND account_id = ?",
		workspaceID, accountID).Scan(ctx, &bound); err != nil {
		return nil, fail("bind billing account", err, "")
	}
	if bound > 0 {
		return nil, core.Conflict("The billing account is already bound to the workspace.")
	}
	if def && n > 0 {
		if _, err := tx.NewRaw("UPDATE revops_workspace_billing_accounts SET is_default = ? WHERE workspace_id = ? AND is_default = ?",
			false, workspaceID, true).Exec(ctx); err != nil {
			return nil, fail("bind billing account", err, "")
		}
	}
	_, err := tx.NewRaw("INSERT INTO revops_workspace_billing_accounts (workspace_id, account_id, is_default, created_at) VALUES (?, ?, ?, ?)",
		workspaceID, accountID, def, now).Exec(ctx)
	if err != nil {
		return nil, fail("bind billing account", err, "The billing account is already bound to the workspace.")
	}
	return workspaceBillingAccount(ctx, tx, workspaceID, accountID)
}

// BindBillingAccount binds an existing account. An unknown workspace or
// account is not found; a binding that exists is a conflict.
func (s *Store) BindBillingAccount(ctx context.Context, workspaceID, accountID int64, makeDefault bool) (*billing.BoundAccount, error) {
	var out *billing.BoundAccount
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		out, err = bindAccount(ctx, tx, workspaceID, accountID, makeDefault, ts(time.Now()))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var boundAccountList = listSpec{
	columns:  boundAccountColumns,
	from:     boundAccountFrom,
	sorts:    map[string]string{"id": "a.id", "name": "a.name", "currency": "a.currency", "created_at": "a.created_at"},
	tieBreak: "a.id",
	search:   []string{"a.name"},
	created:  "a.created_at",
	updated:  "a.updated_at",
}

// ListWorkspaceBillingAccounts lists the accounts bound to the workspace, by
// id unless sorted.
func (s *Store) ListWorkspaceBillingAccounts(ctx context.Context, workspaceID int64, p core.ListParams) ([]billing.BoundAccount, int, error) {
	if p.Filter.Status != "" {
		return nil, 0, core.Invalid("status", "Billing accounts cannot be filtered by status.")
	}
	var q listQuery
	q.add("b.workspace_id = ?", workspaceID)
	return listRows(ctx, s.conn(ctx), &boundAccountList, &q, p, "workspace billing accounts", (*boundAccountRow).bound)
}

// SetDefaultBillingAccount moves the default under the workspace's lock:
// the old default is unset before the new one is set, so the partial
// unique index never sees two.
func (s *Store) SetDefaultBillingAccount(ctx context.Context, workspaceID, accountID int64) (*billing.BoundAccount, error) {
	var out *billing.BoundAccount
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		if _, err := workspaceBillingAccount(ctx, tx, workspaceID, accountID); err != nil {
			return err
		}
		if _, err := tx.NewRaw("UPDATE revops_workspace_billing_accounts SET is_default = ? WHERE workspace_id = ? AND is_default = ? AND account_id <> ?",
			false, workspaceID, true, accountID).Exec(ctx); err != nil {
			return fail("set default billing account", err, "")
		}
		if _, err := tx.NewRaw("UPDATE revops_workspace_billing_accounts SET is_default = ? WHERE workspace_id = ? AND account_id = ?",
			true, workspaceID, accountID).Exec(ctx); err != nil {
			return fail("set default billing account", err, "")
		}
		var err error
		out, err = workspaceBillingAccount(ctx, tx, workspaceID, accountID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UnbindBillingAccount deletes a non-default binding with one conditional
// DELETE; when it matches nothing, a second read tells not found from the
// default (a conflict).
func (s *Store) UnbindBillingAccount(ctx context.Context, workspaceID, accountID int64) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		res, err := tx.NewRaw("DELETE FROM revops_workspace_billing_accounts WHERE workspace_id = ? AND account_id = ? AND is_default = ?",
			workspaceID, accountID, false).Exec(ctx)
		if ok, err := affected(res, err); err != nil {
			return fail("unbind billing account", err, "")
		} else if ok {
			return nil
		}
		if _, err := workspaceBillingAccount(ctx, tx, workspaceID, accountID); err != nil {
			return err
		}
		return core.Conflict("The workspace's default billing account cannot be unbound.")
	})
}

// ---- ledger ----

type billingTxRow struct {
	ID             int64     `bun:"id"`
	AccountID      int64     `bun:"account_id"`
	Type           string    `bun:"type"`
	Amount         int64     `bun:"amount"`
	Currency       string    `bun:"currency"`
	Counter        string    `bun:"counter"`
	Description    string    `bun:"description"`
	IdempotencyKey *string   `bun:"idempotency_key"`
	BalanceAfter   int64     `bun:"balance_after"`
	CreatedAt      time.Time `bun:"created_at"`
}

const billingTxColumns = "id, account_id, type, amount, currency, counter, description, idempotency_key, balance_after, created_at"

func (r *billingTxRow) transaction() billing.Transaction {
	t := billing.Transaction{ID: r.ID, AccountID: r.AccountID, Type: r.Type, Amount: r.Amount, Currency: r.Currency,
		Counter: r.Counter, Description: r.Description, BalanceAfter: r.BalanceAfter, CreatedAt: utc(r.CreatedAt)}
	if r.IdempotencyKey != nil {
		t.IdempotencyKey = *r.IdempotencyKey
	}
	return t
}

type billingEntryRow struct {
	TransactionID int64  `bun:"transaction_id"`
	LedgerAccount string `bun:"ledger_account"`
	Amount        int64  `bun:"amount"`
}

// withEntries loads the entries of ts, the account's entry first.
func withEntries(ctx context.Context, db bun.IDB, ts []billing.Transaction) error {
	if len(ts) == 0 {
		return nil
	}
	ids := make([]int64, len(ts))
	for i := range ts {
		ids[i] = ts[i].ID
	}
	var rows []billingEntryRow
	if err := db.NewRaw("SELECT transaction_id, ledger_account, amount FROM revops_billing_entries WHERE transaction_id IN (?) ORDER BY id",
		bun.In(ids)).Scan(ctx, &rows); err != nil {
		return fail("list billing entries", err, "")
	}
	at := make(map[int64]int, len(ts))
	for i := range ts {
		at[ts[i].ID] = i
		ts[i].Entries = []billing.Entry{}
	}
	for _, r := range rows {
		t := &ts[at[r.TransactionID]]
		t.Entries = append(t.Entries, billing.Entry{Account: r.LedgerAccount, Amount: r.Amount})
	}
	return nil
}

// PostBillingTransaction takes the account's row lock first (a no-op
// update): concurrent posts on one account then run one after another, and
// the idempotency lookup that follows sees every earlier post committed
// (each statement of READ COMMITTED reads the latest commits; SQLite's write
// transactions are serial anyway). The balance test and move are made under
// that lock, so concurrent debits never overdraw.
func (s *Store) PostBillingTransaction(ctx context.Context, t *billing.Transaction) (bool, error) {
	n := *t
	n.CreatedAt = orNow(t.CreatedAt)
	replayed := false
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewRaw("UPDATE revops_billing_accounts SET updated_at = updated_at WHERE id = ?", n.AccountID).Exec(ctx)
		if err := mustAffect("lock billing account", res, err); err != nil {
			return err
		}
		if n.IdempotencyKey != "" {
			var rows []billingTxRow
			err := tx.NewRaw("SELECT "+billingTxColumns+" FROM revops_billing_transactions WHERE account_id = ? AND idempotency_key = ?",
				n.AccountID, n.IdempotencyKey).Scan(ctx, &rows)
			if err != nil {
				return fail("post billing transaction", err, "")
			}
			if len(rows) > 0 {
				old := []billing.Transaction{rows[0].transaction()}
				if o := old[0]; o.Type != n.Type || o.Amount != n.Amount || o.Currency != n.Currency {
					return core.Conflict("The idempotency key %q was used for another transaction (%s of %d %s).", n.IdempotencyKey, o.Type, o.Amount, o.Currency)
				}
				if err := withEntries(ctx, tx, old); err != nil {
					return err
				}
				n, replayed = old[0], true
				return nil
			}
		}
		a, err := billingAccount(ctx, tx, "id = ?", n.AccountID)
		if err != nil {
			return err
		}
		if n.Currency != a.Currency {
			return core.Invalid("currency", fmt.Sprintf("The currency %s is not the account's (%s).", n.Currency, a.Currency))
		}
		delta := n.Amount
		switch {
		case n.Type == billing.Debit && a.Balance < n.Amount:
			return core.Conflict("Insufficient balance: the account holds %d, the debit needs %d (minor units of %s).", a.Balance, n.Amount, a.Currency)
		case n.Type == billing.Debit:
			delta = -n.Amount
		case a.Balance > billing.MaxBalance-n.Amount:
			return core.Conflict("The credit would take the balance beyond %d minor units.", billing.MaxBalance)
		}
		n.BalanceAfter = a.Balance + delta
		// The condition repeats the test, so a store whose lock failed
		// would refuse rather than overdraw.
		res, err = tx.NewRaw("UPDATE revops_billing_accounts SET balance = ?, updated_at = ? WHERE id = ? AND balance = ?",
			n.BalanceAfter, ts(time.Now()), n.AccountID, a.Balance).Exec(ctx)
		if ok, err := affected(res, err); err != nil {
			return fail("post billing transaction", err, "")
		} else if !ok {
			return fmt.Errorf("sqlstore: post billing transaction: balance of account %d changed under its lock", n.AccountID)
		}
		var key any
		if n.IdempotencyKey != "" {
			key = n.IdempotencyKey
		}
		err = tx.NewRaw(`INSERT INTO revops_billing_transactions (account_id, type, amount, currency, counter, description, idempotency_key, balance_after, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			n.AccountID, n.Type, n.Amount, n.Currency, n.Counter, n.Description, key, n.BalanceAfter, n.CreatedAt).Scan(ctx, &n.ID)
		if err != nil {
			return fail("post billing transaction", err, "The idempotency key was used concurrently; retry to get the stored transaction.")
		}
		n.Entries = []billing.Entry{{Account: billing.LedgerAccount(n.AccountID), Amount: delta}, {Account: n.Counter, Amount: -delta}}
		for _, e := range n.Entries {
			if _, err := tx.NewRaw("INSERT INTO revops_billing_entries (transaction_id, ledger_account, amount, currency) VALUES (?, ?, ?, ?)",
				n.ID, e.Account, e.Amount, n.Currency).Exec(ctx); err != nil {
				return fail("post billing entry", err, "")
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	*t = n
	return replayed, nil
}

var billingTxList = listSpec{
	columns:  billingTxColumns,
	from:     "revops_billing_transactions",
	sorts:    map[string]string{"id": "id", "created_at": "created_at", "amount": "amount"},
	tieBreak: "id",
	search:   []string{"description"},
	created:  "created_at",
}

// ListBillingTransactions lists an account's transactions, newest first
// unless sorted; p.Filter.Status is the type.
func (s *Store) ListBillingTransactions(ctx context.Context, accountID int64, p core.ListParams) ([]billing.Transaction, int, error) {
	var q listQuery
	q.add("account_id = ?", accountID)
	if st := p.Filter.Status; st != "" {
		if !slices.Contains(billing.TransactionTypes, st) {
			return nil, 0, core.Invalid("status", fmt.Sprintf("Unknown transaction type %q: use credit or debit.", st))
		}
		q.add("type = ?", st)
		p.Filter.Status = ""
	}
	if len(p.Sort) == 0 {
		p.Sort = []core.Sort{{Field: "id", Desc: true}}
	}
	out, total, err := listRows(ctx, s.conn(ctx), &billingTxList, &q, p, "billing transactions", (*billingTxRow).transaction)
	if err != nil {
		return nil, 0, err
	}
	if err := withEntries(ctx, s.conn(ctx), out); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// BillingTotals sums the account's transactions by type. An unknown account
// has none (zero totals), like an account without transactions.
func (s *Store) BillingTotals(ctx context.Context, accountID int64) (*billing.Totals, error) {
	var t billing.Totals
	err := s.conn(ctx).NewRaw(`SELECT
CAST(COALESCE(SUM(CASE WHEN type = 'credit' THEN amount ELSE 0 END), 0) AS BIGINT),
CAST(COALESCE(SUM(CASE WHEN type = 'debit' THEN amount ELSE 0 END), 0) AS BIGINT),
COUNT(*)
FROM revops_billing_transactions WHERE account_id = ?`, accountID).Scan(ctx, &t.Credited, &t.Debited, &t.Count)
	if err != nil {
		return nil, fail("billing totals", err, "")
	}
	return &t, nil
}
