package storetest

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

func billingAccountTests() []test {
	return []test{
		{"Billing/Accounts", testBillingAccounts},
		{"Billing/UserAccount", testBillingUserAccount},
		{"Billing/UserAccountConcurrent", testBillingUserAccountConcurrent},
		{"Billing/Bindings", testBillingBindings},
		{"Billing/BindingsConcurrent", testBillingBindingsConcurrent},
		{"Billing/AccountList", testBillingAccountList},
		{"Billing/Post", testBillingPost},
		{"Billing/PostRefused", testBillingPostRefused},
		{"Billing/ConcurrentDebits", testBillingConcurrentDebits},
		{"Billing/Idempotency", testBillingIdempotency},
		{"Billing/IdempotencyRace", testBillingIdempotencyRace},
		{"Billing/TransactionList", testBillingTransactionList},
		{"Billing/TenantIsolation", testBillingTenantIsolation},
	}
}

func boundID(x billing.BoundAccount) int64    { return x.ID }
func billingTxID(x billing.Transaction) int64 { return x.ID }

func (e *env) billingAccount(ownerID int64, name, currency string, bindTo int64) *billing.Account {
	e.t.Helper()
	a := &billing.Account{OwnerUserID: ownerID, Name: name, Currency: currency, CreatedAt: at(time.Duration(e.next()) * time.Second)}
	e.must(e.s.CreateBillingAccount(e.ctx, a, bindTo), "CreateBillingAccount "+name)
	return a
}

// post posts a transaction that must succeed (not as a replay).
func (e *env) post(accountID int64, typ string, amount int64, currency, key string) billing.Transaction {
	e.t.Helper()
	t := &billing.Transaction{AccountID: accountID, Type: typ, Amount: amount, Currency: currency, Counter: counterOf(typ),
		Description: fmt.Sprintf("%s %d", typ, amount), IdempotencyKey: key, CreatedAt: at(time.Duration(e.next()) * time.Second)}
	replayed, err := e.s.PostBillingTransaction(e.ctx, t)
	e.must(err, fmt.Sprintf("PostBillingTransaction %s %d", typ, amount))
	if replayed {
		e.t.Fatalf("PostBillingTransaction %s %d key %q: replayed, want a new transaction", typ, amount, key)
	}
	return *t
}

func counterOf(typ string) string {
	if typ == billing.Debit {
		return billing.CounterUsage
	}
	return billing.CounterExternal
}

func (e *env) balance(accountID int64) int64 {
	e.t.Helper()
	a, err := e.s.BillingAccount(e.ctx, accountID)
	e.must(err, "BillingAccount")
	return a.Balance
}

func (e *env) allTransactions(accountID int64) []billing.Transaction {
	e.t.Helper()
	var all []billing.Transaction
	for p := 1; ; p++ {
		got, total, err := e.s.ListBillingTransactions(e.ctx, accountID, page(p, 100))
		e.must(err, "ListBillingTransactions")
		all = append(all, got...)
		if len(all) >= total || len(got) == 0 {
			return all
		}
	}
}

// checkLedger requires every transaction of the account to be two entries
// summing to zero, the account's entry to match the type, and the account's
// entries to sum to its stored balance.
func (e *env) checkLedger(what string, accountID int64) {
	e.t.Helper()
	var sum int64
	for _, t := range e.allTransactions(accountID) {
		if len(t.Entries) != 2 {
			e.t.Errorf("%s: transaction %d has %d entries, want 2", what, t.ID, len(t.Entries))
			continue
		}
		if t.Entries[0].Amount+t.Entries[1].Amount != 0 {
			e.t.Errorf("%s: transaction %d entries %v do not sum to zero", what, t.ID, t.Entries)
		}
		want := t.Amount
		if t.Type == billing.Debit {
			want = -t.Amount
		}
		if t.Entries[0].Account != billing.LedgerAccount(accountID) || t.Entries[0].Amount != want || t.Entries[1].Account != t.Counter {
			e.t.Errorf("%s: transaction %d (%s %d) has entries %v, want %s %+d then %s", what, t.ID, t.Type, t.Amount, t.Entries,
				billing.LedgerAccount(accountID), want, t.Counter)
		}
		sum += t.Entries[0].Amount
	}
	if b := e.balance(accountID); b != sum {
		e.t.Errorf("%s: stored balance %d, but the account's entries sum to %d", what, b, sum)
	}
}

func testBillingAccounts(e *env) {
	alice := e.user("alice")
	a := &billing.Account{OwnerUserID: alice.ID, Name: "Main", Currency: "EUR", Balance: 999}
	e.must(e.s.CreateBillingAccount(e.ctx, a, 0), "CreateBillingAccount")
	if a.ID == 0 || a.Balance != 0 {
		e.t.Errorf("created account: id %d balance %d, want an id and balance 0 (a given balance is ignored)", a.ID, a.Balance)
	}
	e.recent("CreatedAt", a.CreatedAt)
	got, err := e.s.BillingAccount(e.ctx, a.ID)
	e.must(err, "BillingAccount")
	e.same("BillingAccount", got, a)

	fixed := &billing.Account{OwnerUserID: alice.ID, Name: "Fixed", Currency: "USD", CreatedAt: at(time.Nanosecond * 1500), UpdatedAt: at(time.Hour)}
	e.must(e.s.CreateBillingAccount(e.ctx, fixed, 0), "CreateBillingAccount with times")
	got, err = e.s.BillingAccount(e.ctx, fixed.ID)
	e.must(err, "BillingAccount")
	e.same("account with given times", got, fixed)
	if !got.CreatedAt.Equal(at(time.Microsecond)) {
		e.t.Errorf("CreatedAt %s, want it truncated to the microsecond", got.CreatedAt)
	}

	_, err = e.s.BillingAccount(e.ctx, a.ID+1000)
	e.notFound(err, "BillingAccount of a missing id")
	e.notFound(e.s.CreateBillingAccount(e.ctx, &billing.Account{OwnerUserID: alice.ID + 1000, Name: "x", Currency: "USD"}, 0),
		"CreateBillingAccount for a missing user")

	// Created and bound at once; a missing workspace stores nothing.
	w := e.workspace("acc", alice.ID)
	b := e.billingAccount(alice.ID, "Bound", "USD", w.ID)
	bound, err := e.s.WorkspaceBillingAccount(e.ctx, w.ID, b.ID)
	e.must(err, "WorkspaceBillingAccount")
	if !bound.IsDefault || bound.WorkspaceID != w.ID {
		e.t.Errorf("account created with bindTo: %+v, want bound to %d as its default", bound, w.ID)
	}
	e.same("bound account", bound.Account, *b)
	bob := e.user("bob")
	e.notFound(e.s.CreateBillingAccount(e.ctx, &billing.Account{OwnerUserID: bob.ID, Name: "x", Currency: "USD"}, w.ID+1000),
		"CreateBillingAccount bound to a missing workspace")
	_, err = e.s.UserBillingAccount(e.ctx, bob.ID, nil)
	e.notFound(err, "UserBillingAccount after a failed create (the account must not be stored)")
}

func testBillingUserAccount(e *env) {
	alice := e.user("alice")
	_, err := e.s.UserBillingAccount(e.ctx, alice.ID, nil)
	e.notFound(err, "UserBillingAccount of a user with none")
	_, err = e.s.UserBillingAccount(e.ctx, alice.ID+1000, &billing.Account{Name: "Default", Currency: "USD"})
	e.notFound(err, "UserBillingAccount of a missing user")

	made, err := e.s.UserBillingAccount(e.ctx, alice.ID, &billing.Account{OwnerUserID: 12345, Name: "Default", Currency: "USD", CreatedAt: at(0)})
	e.must(err, "UserBillingAccount creating")
	if made.ID == 0 || made.OwnerUserID != alice.ID || made.Name != "Default" || made.Balance != 0 {
		e.t.Errorf("created default account %+v, want a new account owned by %d", made, alice.ID)
	}
	again, err := e.s.UserBillingAccount(e.ctx, alice.ID, &billing.Account{Name: "Other", Currency: "EUR"})
	e.must(err, "UserBillingAccount again")
	e.same("UserBillingAccount again (no second account)", again, made)
	// A newer account does not become the default: the oldest is.
	e.billingAccount(alice.ID, "Newer", "USD", 0)
	got, err := e.s.UserBillingAccount(e.ctx, alice.ID, nil)
	e.must(err, "UserBillingAccount")
	if got.ID != made.ID {
		e.t.Errorf("UserBillingAccount = account %d, want the oldest, %d", got.ID, made.ID)
	}
}

func testBillingUserAccountConcurrent(e *env) {
	alice := e.user("alice")
	got := make([]int64, 10)
	errs := parallel(10, func(i int) error {
		a, err := e.s.UserBillingAccount(e.ctx, alice.ID, &billing.Account{Name: "Default", Currency: "USD"})
		if err == nil {
			got[i] = a.ID
		}
		return err
	})
	for i, err := range errs {
		e.must(err, fmt.Sprintf("concurrent UserBillingAccount %d", i))
	}
	for _, id := range got {
		if id != got[0] {
			e.t.Fatalf("concurrent UserBillingAccount returned accounts %v, want one account for all", got)
		}
	}
}

func testBillingBindings(e *env) {
	alice := e.user("alice")
	w := e.workspace("w", alice.ID)
	_, err := e.s.WorkspaceBillingAccount(e.ctx, w.ID, 0)
	e.notFound(err, "default account of a workspace with none")
	a1 := e.billingAccount(alice.ID, "One", "USD", 0)
	a2 := e.billingAccount(alice.ID, "Two", "USD", 0)
	a3 := e.billingAccount(alice.ID, "Three", "EUR", 0)

	b1, err := e.s.BindBillingAccount(e.ctx, w.ID, a1.ID, false)
	e.must(err, "BindBillingAccount first")
	if !b1.IsDefault {
		e.t.Errorf("first bound account is not the default")
	}
	e.recent("BoundAt", b1.BoundAt)
	b2, err := e.s.BindBillingAccount(e.ctx, w.ID, a2.ID, false)
	e.must(err, "BindBillingAccount second")
	if b2.IsDefault {
		e.t.Errorf("second bound account became the default without makeDefault")
	}
	_, err = e.s.BindBillingAccount(e.ctx, w.ID, a2.ID, true)
	e.conflict(err, "binding an account twice")
	_, err = e.s.BindBillingAccount(e.ctx, w.ID, a3.ID+1000, false)
	e.notFound(err, "binding a missing account")
	_, err = e.s.BindBillingAccount(e.ctx, w.ID+1000, a3.ID, false)
	e.notFound(err, "binding to a missing workspace")
	e.checkDefault("after two binds", w.ID, a1.ID)

	b3, err := e.s.BindBillingAccount(e.ctx, w.ID, a3.ID, true)
	e.must(err, "BindBillingAccount makeDefault")
	if !b3.IsDefault {
		e.t.Errorf("account bound with makeDefault is not the default")
	}
	e.checkDefault("after binding with makeDefault", w.ID, a3.ID)

	d, err := e.s.SetDefaultBillingAccount(e.ctx, w.ID, a2.ID)
	e.must(err, "SetDefaultBillingAccount")
	if !d.IsDefault || d.ID != a2.ID {
		e.t.Errorf("SetDefaultBillingAccount returned %+v, want account %d as default", d, a2.ID)
	}
	e.checkDefault("after SetDefault", w.ID, a2.ID)
	_, err = e.s.SetDefaultBillingAccount(e.ctx, w.ID, a2.ID)
	e.must(err, "SetDefaultBillingAccount on the default already")
	e.checkDefault("after SetDefault twice", w.ID, a2.ID)
	unbound := e.billingAccount(alice.ID, "Unbound", "USD", 0)
	_, err = e.s.SetDefaultBillingAccount(e.ctx, w.ID, unbound.ID)
	e.notFound(err, "SetDefaultBillingAccount of an unbound account")

	e.conflict(e.s.UnbindBillingAccount(e.ctx, w.ID, a2.ID), "unbinding the default account")
	e.must(e.s.UnbindBillingAccount(e.ctx, w.ID, a1.ID), "UnbindBillingAccount")
	e.notFound(e.s.UnbindBillingAccount(e.ctx, w.ID, a1.ID), "unbinding twice")
	_, err = e.s.WorkspaceBillingAccount(e.ctx, w.ID, a1.ID)
	e.notFound(err, "WorkspaceBillingAccount after unbinding")
	if _, err := e.s.BillingAccount(e.ctx, a1.ID); err != nil {
		e.t.Errorf("the account itself must survive its unbinding: %v", err)
	}
	e.must(e.s.UnbindBillingAccount(e.ctx, w.ID, a3.ID), "UnbindBillingAccount")
	// The last bound account is the default, so it stays.
	e.conflict(e.s.UnbindBillingAccount(e.ctx, w.ID, a2.ID), "unbinding the last account")
	e.checkDefault("at the end", w.ID, a2.ID)

	// Deleting the workspace removes its bindings, not the accounts.
	e.must(e.s.DeleteWorkspace(e.ctx, w.ID), "DeleteWorkspace")
	_, err = e.s.WorkspaceBillingAccount(e.ctx, w.ID, a2.ID)
	e.notFound(err, "binding of a deleted workspace")
	if _, err := e.s.BillingAccount(e.ctx, a2.ID); err != nil {
		e.t.Errorf("an account must survive its workspace: %v", err)
	}
}

// checkDefault requires exactly one default, id, among the bound accounts.
func (e *env) checkDefault(what string, workspaceID, id int64) {
	e.t.Helper()
	d, err := e.s.WorkspaceBillingAccount(e.ctx, workspaceID, 0)
	e.must(err, what+": default account")
	if d.ID != id || !d.IsDefault {
		e.t.Errorf("%s: default account %d, want %d", what, d.ID, id)
	}
	list, _, err := e.s.ListWorkspaceBillingAccounts(e.ctx, workspaceID, page(1, 100))
	e.must(err, what+": ListWorkspaceBillingAccounts")
	var defaults []int64
	for _, b := range list {
		if b.IsDefault {
			defaults = append(defaults, b.ID)
		}
	}
	if fmt.Sprint(defaults) != fmt.Sprint([]int64{id}) {
		e.t.Errorf("%s: defaults %v, want exactly [%d]", what, defaults, id)
	}
}

func testBillingBindingsConcurrent(e *env) {
	alice := e.user("alice")
	w := e.workspace("w", alice.ID)
	accts := make([]*billing.Account, 8)
	for i := range accts {
		accts[i] = e.billingAccount(alice.ID, fmt.Sprintf("A%d", i), "USD", 0)
	}
	// Concurrent first binds: exactly one becomes the default.
	errs := parallel(len(accts), func(i int) error {
		_, err := e.s.BindBillingAccount(e.ctx, w.ID, accts[i].ID, false)
		return err
	})
	for i, err := range errs {
		e.must(err, fmt.Sprintf("concurrent bind %d", i))
	}
	d, err := e.s.WorkspaceBillingAccount(e.ctx, w.ID, 0)
	e.must(err, "default after concurrent binds")
	e.checkDefault("after concurrent binds", w.ID, d.ID)
	// Concurrent default changes leave exactly one default.
	errs = parallel(len(accts), func(i int) error {
		_, err := e.s.SetDefaultBillingAccount(e.ctx, w.ID, accts[i].ID)
		return err
	})
	for i, err := range errs {
		e.must(err, fmt.Sprintf("concurrent SetDefault %d", i))
	}
	d, err = e.s.WorkspaceBillingAccount(e.ctx, w.ID, 0)
	e.must(err, "default after concurrent SetDefault")
	e.checkDefault("after concurrent SetDefault", w.ID, d.ID)
}

func testBillingAccountList(e *env) {
	alice := e.user("alice")
	w := e.workspace("w", alice.ID)
	other := e.workspace("other", alice.ID)
	names := []string{"Delta", "alpha", "Charlie 100%", "bravo", "Echo_1"}
	currencies := []string{"USD", "EUR", "USD", "GBP", "EUR"}
	var want []int64
	for i, n := range names {
		want = append(want, e.billingAccount(alice.ID, n, currencies[i], w.ID).ID)
	}
	e.billingAccount(alice.ID, "Elsewhere", "USD", other.ID)
	list := func(p core.ListParams) ([]billing.BoundAccount, int, error) {
		return e.s.ListWorkspaceBillingAccounts(e.ctx, w.ID, p)
	}
	checkPaging(e, "ListWorkspaceBillingAccounts", list, boundID, want)
	checkSorts(e, "ListWorkspaceBillingAccounts", len(want), list, boundID,
		byString("name", func(b billing.BoundAccount) string { return b.Name }),
		byString("currency", func(b billing.BoundAccount) string { return b.Currency }),
		byTime("created_at", func(b billing.BoundAccount) time.Time { return b.CreatedAt }))
	checkIDs(e, "search 100%", list, core.ListParams{Filter: core.Filter{Search: "100%"}}, boundID, want[2])
	checkIDs(e, "search ALPHA", list, core.ListParams{Filter: core.Filter{Search: "ALPHA"}}, boundID, want[1])
	checkIDs(e, "search _ literally", list, core.ListParams{Filter: core.Filter{Search: "o_"}}, boundID, want[4])
	items, _, err := list(page(1, 100))
	e.must(err, "ListWorkspaceBillingAccounts")
	for _, b := range items {
		if b.WorkspaceID != w.ID || b.IsDefault != (b.ID == want[0]) {
			e.t.Errorf("listed %+v: want workspace %d, default only for the first bound (%d)", b, w.ID, want[0])
		}
	}
	_, _, err = list(core.ListParams{Filter: core.Filter{Status: "active"}})
	if !errors.Is(err, core.ErrValidation) {
		e.t.Errorf("status filter: got %v, want a validation error", err)
	}
}

func testBillingPost(e *env) {
	alice := e.user("alice")
	a := e.billingAccount(alice.ID, "Main", "USD", 0)
	c := e.post(a.ID, billing.Credit, 1_000, "USD", "")
	if c.ID == 0 || c.BalanceAfter != 1_000 || c.IdempotencyKey != "" {
		e.t.Errorf("credit: %+v, want an id and balance_after 1000", c)
	}
	wantEntries := []billing.Entry{{Account: billing.LedgerAccount(a.ID), Amount: 1_000}, {Account: billing.CounterExternal, Amount: -1_000}}
	e.same("credit entries", c.Entries, wantEntries)
	d := e.post(a.ID, billing.Debit, 300, "USD", "k1")
	e.same("debit entries", d.Entries, []billing.Entry{{Account: billing.LedgerAccount(a.ID), Amount: -300}, {Account: billing.CounterUsage, Amount: 300}})
	if d.BalanceAfter != 700 || d.IdempotencyKey != "k1" {
		e.t.Errorf("debit: %+v, want balance_after 700 and key k1", d)
	}
	// Debiting the balance to exactly zero is allowed.
	e.post(a.ID, billing.Debit, 700, "USD", "")
	if b := e.balance(a.ID); b != 0 {
		e.t.Errorf("balance %d, want 0", b)
	}
	got := e.allTransactions(a.ID)
	if len(got) != 3 {
		e.t.Fatalf("%d transactions listed, want 3", len(got))
	}
	e.same("listed debit", got[1], d) // newest first
	e.same("listed credit", got[2], c)
	e.checkLedger("after posting", a.ID)
	tot, err := e.s.BillingTotals(e.ctx, a.ID)
	e.must(err, "BillingTotals")
	e.same("totals", tot, &billing.Totals{Credited: 1_000, Debited: 1_000, Count: 3})
}

func testBillingPostRefused(e *env) {
	alice := e.user("alice")
	a := e.billingAccount(alice.ID, "Main", "EUR", 0)
	e.post(a.ID, billing.Credit, 500, "EUR", "")
	refused := func(what string, t *billing.Transaction, want error) {
		e.t.Helper()
		t.Counter = counterOf(t.Type)
		replayed, err := e.s.PostBillingTransaction(e.ctx, t)
		if !errors.Is(err, want) || replayed {
			e.t.Errorf("%s: got %v (replayed %v), want %v", what, err, replayed, want)
		}
		var ce *core.Error
		if want == core.ErrValidation && errors.As(err, &ce) && len(ce.Fields["currency"]) == 0 {
			e.t.Errorf("%s: validation error %v names no currency field", what, err)
		}
	}
	refused("credit in another currency", &billing.Transaction{AccountID: a.ID, Type: billing.Credit, Amount: 5, Currency: "USD"}, core.ErrValidation)
	refused("debit beyond the balance", &billing.Transaction{AccountID: a.ID, Type: billing.Debit, Amount: 501, Currency: "EUR", IdempotencyKey: "over"}, core.ErrConflict)
	refused("credit beyond MaxBalance", &billing.Transaction{AccountID: a.ID, Type: billing.Credit, Amount: billing.MaxBalance, Currency: "EUR"}, core.ErrConflict)
	refused("post to a missing account", &billing.Transaction{AccountID: a.ID + 1000, Type: billing.Credit, Amount: 5, Currency: "EUR"}, core.ErrNotFound)
	if b := e.balance(a.ID); b != 500 {
		e.t.Errorf("balance %d after refused posts, want 500", b)
	}
	if n := len(e.allTransactions(a.ID)); n != 1 {
		e.t.Errorf("%d transactions after refused posts, want 1", n)
	}
	// A refused post does not burn its idempotency key.
	e.post(a.ID, billing.Debit, 500, "EUR", "over")
	e.checkLedger("after refused posts", a.ID)
}

func testBillingConcurrentDebits(e *env) {
	alice := e.user("alice")
	a := e.billingAccount(alice.ID, "Main", "USD", 0)
	e.post(a.ID, billing.Credit, 20, "USD", "")
	errs := parallel(50, func(i int) error {
		_, err := e.s.PostBillingTransaction(e.ctx, &billing.Transaction{AccountID: a.ID, Type: billing.Debit, Amount: 1, Currency: "USD", Counter: billing.CounterUsage})
		return err
	})
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, core.ErrConflict):
			e.t.Errorf("debit %d: got %v, want success or a conflict", i, err)
		}
	}
	if ok != 20 {
		e.t.Errorf("%d of 50 concurrent debits of 1 succeeded against a balance of 20, want exactly 20", ok)
	}
	if b := e.balance(a.ID); b != 0 {
		e.t.Errorf("balance %d after the debits, want 0", b)
	}
	if n := len(e.allTransactions(a.ID)); n != 21 {
		e.t.Errorf("%d transactions, want 21 (one credit, 20 debits)", n)
	}
	e.checkLedger("after concurrent debits", a.ID)
}

func testBillingIdempotency(e *env) {
	alice := e.user("alice")
	a := e.billingAccount(alice.ID, "A", "USD", 0)
	b := e.billingAccount(alice.ID, "B", "USD", 0)
	first := e.post(a.ID, billing.Credit, 250, "USD", "topup-1")
	again := &billing.Transaction{AccountID: a.ID, Type: billing.Credit, Amount: 250, Currency: "USD", Counter: billing.CounterExternal,
		Description: "a retry", IdempotencyKey: "topup-1"}
	replayed, err := e.s.PostBillingTransaction(e.ctx, again)
	e.must(err, "replay")
	if !replayed {
		e.t.Errorf("posting a key again: replayed false, want true")
	}
	e.same("replayed transaction", *again, first)
	if bal := e.balance(a.ID); bal != 250 {
		e.t.Errorf("balance %d after a replay, want 250 (money moved twice)", bal)
	}
	// The key with other terms is refused, and moves nothing.
	for _, t := range []*billing.Transaction{
		{AccountID: a.ID, Type: billing.Credit, Amount: 999, Currency: "USD", Counter: billing.CounterExternal, IdempotencyKey: "topup-1"},
		{AccountID: a.ID, Type: billing.Debit, Amount: 250, Currency: "USD", Counter: billing.CounterUsage, IdempotencyKey: "topup-1"},
	} {
		_, err := e.s.PostBillingTransaction(e.ctx, t)
		e.conflict(err, fmt.Sprintf("key reused for a %s of %d", t.Type, t.Amount))
	}
	// Keys are per account: the same key on B is a new transaction.
	onB := e.post(b.ID, billing.Credit, 250, "USD", "topup-1")
	if onB.ID == first.ID || e.balance(b.ID) != 250 {
		e.t.Errorf("the same key on another account must post anew")
	}
	if bal := e.balance(a.ID); bal != 250 {
		e.t.Errorf("balance %d, want 250", bal)
	}
	e.checkLedger("A", a.ID)
}

func testBillingIdempotencyRace(e *env) {
	alice := e.user("alice")
	a := e.billingAccount(alice.ID, "A", "USD", 0)
	e.post(a.ID, billing.Credit, 100, "USD", "")
	// Several rounds, one key each: the first warms the connection pool,
	// so that later rounds really overlap.
	const rounds, n = 5, 20
	for r := range rounds {
		key := fmt.Sprintf("order-%d", r)
		got := make([]int64, n)
		replays := make([]bool, n)
		errs := parallel(n, func(i int) error {
			t := &billing.Transaction{AccountID: a.ID, Type: billing.Debit, Amount: 10, Currency: "USD", Counter: billing.CounterUsage, IdempotencyKey: key}
			rep, err := e.s.PostBillingTransaction(e.ctx, t)
			got[i], replays[i] = t.ID, rep
			return err
		})
		fresh := 0
		for i, err := range errs {
			e.must(err, fmt.Sprintf("%s: racing post %d", key, i))
			if got[i] != got[0] {
				e.t.Errorf("%s: racing posts of one key returned transactions %v, want one", key, got)
				break
			}
			if !replays[i] {
				fresh++
			}
		}
		if fresh != 1 {
			e.t.Errorf("%s: %d racing posts of one key were not replays, want exactly 1", key, fresh)
		}
	}
	if bal := e.balance(a.ID); bal != 100-rounds*10 {
		e.t.Errorf("balance %d after %d rounds of %d racing debits of 10 (one key a round), want %d", bal, rounds, n, 100-rounds*10)
	}
	e.checkLedger("after the race", a.ID)
}

func testBillingTransactionList(e *env) {
	alice := e.user("alice")
	a := e.billingAccount(alice.ID, "A", "USD", 0)
	other := e.billingAccount(alice.ID, "Other", "USD", 0)
	e.post(other.ID, billing.Credit, 5, "USD", "")
	var all []billing.Transaction
	for _, p := range []struct {
		typ    string
		amount int64
	}{{billing.Credit, 500}, {billing.Debit, 20}, {billing.Credit, 70}, {billing.Debit, 300}, {billing.Debit, 1}, {billing.Credit, 9}} {
		all = append(all, e.post(a.ID, p.typ, p.amount, "USD", ""))
	}
	newest := make([]int64, len(all))
	for i := range all {
		newest[len(all)-1-i] = all[i].ID
	}
	list := func(p core.ListParams) ([]billing.Transaction, int, error) {
		return e.s.ListBillingTransactions(e.ctx, a.ID, p)
	}
	checkPaging(e, "ListBillingTransactions (newest first)", list, billingTxID, newest)
	checkSorts(e, "ListBillingTransactions", len(all), list, billingTxID,
		byInt("amount", func(t billing.Transaction) int64 { return t.Amount }),
		byTime("created_at", func(t billing.Transaction) time.Time { return t.CreatedAt }))
	var debits []int64
	for _, id := range newest {
		if i := slices.IndexFunc(all, func(t billing.Transaction) bool { return t.ID == id }); all[i].Type == billing.Debit {
			debits = append(debits, id)
		}
	}
	checkIDs(e, "type filter debit", list, core.ListParams{Filter: core.Filter{Status: billing.Debit}}, billingTxID, debits...)
	checkIDs(e, "created_after", list, core.ListParams{Filter: core.Filter{CreatedAfter: all[3].CreatedAt}}, billingTxID, newest[:2]...)
	_, _, err := list(core.ListParams{Filter: core.Filter{Status: "refund"}})
	if !errors.Is(err, core.ErrValidation) {
		e.t.Errorf("unknown type filter: got %v, want a validation error", err)
	}
	tot, err := e.s.BillingTotals(e.ctx, a.ID)
	e.must(err, "BillingTotals")
	e.same("totals", tot, &billing.Totals{Credited: 579, Debited: 321, Count: 6})
	if b := e.balance(a.ID); b != 258 {
		e.t.Errorf("balance %d, want 258", b)
	}
}

// testBillingTenantIsolation calls every workspace-scoped method with
// workspace A's id on accounts bound only to B: each is not found, and B's
// bindings are unchanged.
func testBillingTenantIsolation(e *env) {
	alice, bob := e.user("alice"), e.user("bob")
	a := e.workspace("a", alice.ID)
	b := e.workspace("b", bob.ID)
	accA := e.billingAccount(alice.ID, "A", "USD", a.ID)
	accB := e.billingAccount(bob.ID, "B", "USD", b.ID)
	accB2 := e.billingAccount(bob.ID, "B2", "USD", b.ID)
	before, _, err := e.s.ListWorkspaceBillingAccounts(e.ctx, b.ID, page(1, 100))
	e.must(err, "ListWorkspaceBillingAccounts B")

	for _, id := range []int64{accB.ID, accB2.ID} {
		_, err := e.s.WorkspaceBillingAccount(e.ctx, a.ID, id)
		e.notFound(err, "WorkspaceBillingAccount of B's account through A")
		_, err = e.s.SetDefaultBillingAccount(e.ctx, a.ID, id)
		e.notFound(err, "SetDefaultBillingAccount of B's account through A")
		e.notFound(e.s.UnbindBillingAccount(e.ctx, a.ID, id), "UnbindBillingAccount of B's account through A")
	}
	listA, total, err := e.s.ListWorkspaceBillingAccounts(e.ctx, a.ID, page(1, 100))
	e.must(err, "ListWorkspaceBillingAccounts A")
	if total != 1 || len(listA) != 1 || listA[0].ID != accA.ID {
		e.t.Errorf("A lists accounts %v, want only its own %d", ids(listA, boundID), accA.ID)
	}
	d, err := e.s.WorkspaceBillingAccount(e.ctx, a.ID, 0)
	e.must(err, "default of A")
	if d.ID != accA.ID {
		e.t.Errorf("A's default is %d, want %d", d.ID, accA.ID)
	}
	after, _, err := e.s.ListWorkspaceBillingAccounts(e.ctx, b.ID, page(1, 100))
	e.must(err, "ListWorkspaceBillingAccounts B")
	e.same("B's accounts after A's attempts", after, before)
}
