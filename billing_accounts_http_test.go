package revops_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/billing"
)

// testProvider enables billing: without a Provider every billing route
// answers {"billingEnabled": false}.
type testProvider struct{}

func (testProvider) Name() string { return "test" }
func (testProvider) Checkout(context.Context, billing.CheckoutInput) (*billing.CheckoutSession, error) {
	return &billing.CheckoutSession{URL: "https://pay.example.test/checkout", CustomerID: "cus_test"}, nil
}
func (testProvider) Portal(context.Context, billing.PortalInput) (string, error) {
	return "https://pay.example.test/portal", nil
}

func (testProvider) ParseEvent(context.Context, []byte, string) (*billing.ProviderEvent, error) {
	return nil, billing.ErrInvalidSignature
}
func (testProvider) SignatureHeader() string { return "Test-Signature" }

func withBilling() envOpt { return func(c *revops.Config) { c.Billing.Provider = testProvider{} } }

func withStore(st *sqlstore.Store) envOpt { return func(c *revops.Config) { c.Store = st } }

// eachStore runs fn on a billing-enabled host over SQLite and, when
// REVOPS_TEST_POSTGRES_URL is set, Postgres.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t, withBilling())) })
	t.Run("postgres", func(t *testing.T) { fn(t, newEnv(t, withBilling(), withStore(sqltest.Postgres(t)))) })
}

func billingPath(wid int64, rest string) string {
	return fmt.Sprintf("/workspaces/%d/billing%s", wid, rest)
}

func num(v any) int64 { f, _ := v.(float64); return int64(f) }

func TestBillingAccountsLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		is := is.New(t)
		ctx := context.Background()
		wid, key := e.newWorkspace("Billed")
		// POST /workspaces bound the creator's default account, created for them.
		l := e.do("GET", billingPath(wid, "/accounts"), key, nil).must(t, 200).list()
		is.Equal(len(l), 1)
		def := l[0].(map[string]any)
		is.Equal(def["name"], "Default")
		is.Equal(def["currency"], "USD")
		is.Equal(def["is_default"], true)
		is.Equal(num(def["owner_user_id"]), e.owner.ID)
		usd := num(def["id"])
		// A second workspace of the same user binds the same account.
		wid2, _ := e.newWorkspace("Billed too")
		d2, err := e.p.Ledger().WorkspaceAccount(ctx, wid2, 0)
		is.NoErr(err)
		is.Equal(d2.ID, usd)

		c := e.do("POST", billingPath(wid, "/accounts"), key, map[string]any{"name": "Euro", "currency": "EUR"}).must(t, 201)
		is.Equal(c.Body["message"], "Billing account created successfully.")
		is.Equal(c.str("currency"), "EUR")
		is.Equal(c.data()["is_default"], false)
		is.Equal(c.data()["balance"], 0.0)
		eur := c.id()

		r := e.do("POST", billingPath(wid, fmt.Sprintf("/accounts/%d/default", eur)), key, nil).must(t, 200)
		is.Equal(r.Body["message"], "Default billing account updated successfully.")
		is.Equal(r.data()["is_default"], true)
		b := e.do("GET", billingPath(wid, "/balance"), key, nil).must(t, 200)
		is.Equal(num(b.data()["billing_account_id"]), eur)
		is.Equal(b.str("currency"), "EUR")

		// The default cannot be unbound; another can, and the last never.
		r = e.do("DELETE", billingPath(wid, fmt.Sprintf("/accounts/%d", eur)), key, nil).must(t, 409, "conflict")
		is.True(strings.Contains(r.Body["message"].(string), "Make another bound account the default first"))
		e.do("DELETE", billingPath(wid, fmt.Sprintf("/accounts/%d", usd)), key, nil).must(t, 204)
		e.do("DELETE", billingPath(wid, fmt.Sprintf("/accounts/%d", usd)), key, nil).must(t, 404, "not_found")
		e.do("DELETE", billingPath(wid, fmt.Sprintf("/accounts/%d", eur)), key, nil).must(t, 409, "conflict")
		// The unbound account still serves the other workspace.
		_, err = e.p.Ledger().WorkspaceAccount(ctx, wid2, usd)
		is.NoErr(err)

		lk := e.do("POST", billingPath(wid, "/accounts/link"), key, map[string]any{"billingAccountId": usd}).must(t, 200)
		is.Equal(lk.Body["message"], "Billing account linked successfully.")
		is.Equal(lk.id(), usd)
		is.Equal(lk.data()["is_default"], false)
		e.do("POST", billingPath(wid, "/accounts/link"), key, map[string]any{"billingAccountId": usd}).must(t, 409, "conflict")
		p := e.do("GET", billingPath(wid, "/accounts?per_page=1&sort=name"), key, nil).must(t, 200)
		is.Equal(len(p.list()), 1)
		is.Equal(p.list()[0].(map[string]any)["name"], "Default")
		is.Equal(p.Body["meta"].(map[string]any)["total"], 2.0)
		is.True(p.Body["links"].(map[string]any)["next"] != nil)
		e.do("GET", billingPath(wid, "/accounts?search=eur"), key, nil).must(t, 200)
	})
}

func TestBillingLedgerOverHTTP(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		is := is.New(t)
		ctx := context.Background()
		wid, key := e.newWorkspace("Ledger")
		acct, err := e.p.Ledger().WorkspaceAccount(ctx, wid, 0)
		is.NoErr(err)
		lg := e.p.Ledger()
		first, err := lg.Credit(ctx, acct.ID, 10_000, "USD", "Top-up", "topup-1")
		is.NoErr(err)
		again, err := lg.Credit(ctx, acct.ID, 10_000, "USD", "Top-up retried", "topup-1")
		is.NoErr(err)
		is.Equal(again.ID, first.ID) // replayed, not credited twice
		_, err = lg.Debit(ctx, acct.ID, 2_500, "USD", "API calls", "")
		is.NoErr(err)
		_, err = lg.Debit(ctx, acct.ID, 1, "EUR", "wrong currency", "")
		is.True(err != nil && strings.Contains(err.Error(), "currency"))
		_, err = lg.Debit(ctx, acct.ID, 7_501, "USD", "too much", "")
		is.True(err != nil && strings.Contains(err.Error(), "Insufficient balance"))
		_, err = lg.Credit(ctx, acct.ID, 0, "USD", "", "")
		is.True(err != nil && strings.Contains(err.Error(), "amount"))
		_, err = lg.Debit(ctx, acct.ID, 500, "USD", "Storage", "")
		is.NoErr(err)

		b := e.do("GET", billingPath(wid, "/balance"), key, nil).must(t, 200)
		is.Equal(b.Body["data"], map[string]any{"billing_account_id": float64(acct.ID), "amount": 7_000.0, "currency": "USD"})

		tl := e.do("GET", billingPath(wid, "/transactions"), key, nil).must(t, 200)
		list := tl.list()
		is.Equal(len(list), 3)
		newest := list[0].(map[string]any)
		is.Equal(newest["type"], "debit")
		is.Equal(newest["amount"], 500.0)
		is.Equal(newest["balance_after"], 7_000.0)
		is.Equal(newest["counter"], "usage")
		is.Equal(newest["idempotency_key"], nil)
		is.Equal(newest["entries"], []any{
			map[string]any{"account": billing.LedgerAccount(acct.ID), "amount": -500.0},
			map[string]any{"account": "usage", "amount": 500.0},
		})
		oldest := list[2].(map[string]any)
		is.Equal(oldest["idempotency_key"], "topup-1")
		is.Equal(oldest["type"], "credit")

		debits := e.do("GET", billingPath(wid, "/transactions?status=debit"), key, nil).must(t, 200).list()
		is.Equal(len(debits), 2)
		pg := e.do("GET", billingPath(wid, "/transactions?per_page=2&page=2"), key, nil).must(t, 200)
		is.Equal(len(pg.list()), 1)
		is.Equal(num(pg.list()[0].(map[string]any)["id"]), first.ID)
		meta := pg.Body["meta"].(map[string]any)
		is.Equal(meta["total"], 3.0)
		is.Equal(meta["last_page"], 2.0)
		is.Equal(pg.Body["links"].(map[string]any)["next"], nil)
		is.Equal(len(e.do("GET", billingPath(wid, "/transactions?sort=amount"), key, nil).must(t, 200).list()), 3)
		e.do("GET", billingPath(wid, "/transactions?status=refund"), key, nil).must(t, 422, "validation_failed")
		e.do("GET", billingPath(wid, "/transactions?sort=balance"), key, nil).must(t, 422, "validation_failed")

		s := e.do("GET", billingPath(wid, "/summary"), key, nil).must(t, 200)
		is.Equal(s.Body["data"], map[string]any{"billing_account_id": float64(acct.ID), "currency": "USD", "balance": 7_000.0,
			"total_credited": 10_000.0, "total_debited": 3_000.0, "transaction_count": 3.0, "accounts_count": 1.0})
	})
}

func TestCreateWorkspaceBillingAccountID(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, withBilling())
	ctx := context.Background()
	stranger, _ := e.newUser("stranger@example.com")
	theirs, err := e.p.Ledger().CreateAccount(ctx, stranger.ID, billing.AccountInput{Name: "Theirs"})
	is.NoErr(err)
	mine, err := e.p.Ledger().CreateAccount(ctx, e.owner.ID, billing.AccountInput{Name: "Mine", Currency: "GBP"})
	is.NoErr(err)
	count := func() float64 {
		return e.do("GET", "/workspaces", e.key, nil).must(t, 200).Body["meta"].(map[string]any)["total"].(float64)
	}
	before := count()
	for _, id := range []int64{theirs.ID, mine.ID + 1000, 0, -1} {
		r := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Nope", "billingAccountId": id}).must(t, 422, "validation_failed")
		is.True(strings.Contains(r.fieldErr("billingAccountId"), "does not exist or is not yours"))
	}
	is.Equal(count(), before) // nothing was created
	e.do("POST", "/workspaces", e.key, map[string]any{"name": "Nope", "billingAccountId": "1"}).must(t, 422, "validation_failed")

	w := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Sterling", "billingAccountId": mine.ID}).must(t, 201)
	l := e.do("GET", billingPath(w.id(), "/accounts"), e.key, nil).must(t, 200).list()
	is.Equal(len(l), 1)
	is.Equal(num(l[0].(map[string]any)["id"]), mine.ID)
	is.Equal(l[0].(map[string]any)["is_default"], true)
	// Without billingAccountId the user's default (oldest) account is bound:
	// the one made for the bootstrap workspace, before "Mine".
	w2 := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Auto"}).must(t, 201)
	d, err := e.p.Ledger().WorkspaceAccount(ctx, w2.id(), 0)
	is.NoErr(err)
	boot, err := e.p.Ledger().WorkspaceAccount(ctx, e.ws.ID, 0)
	is.NoErr(err)
	is.Equal(d.ID, boot.ID)
	is.True(d.ID != mine.ID)
}

func TestBillingAccountValidation(t *testing.T) {
	e := newEnv(t, withBilling())
	wid, key := e.newWorkspace("Strict")
	stranger, _ := e.newUser("stranger@example.com")
	theirs, err := e.p.Ledger().CreateAccount(context.Background(), stranger.ID, billing.AccountInput{Name: "Theirs"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		body  any
		field string
		want  string
	}{
		{"/accounts", map[string]any{}, "name", "required"},
		{"/accounts", map[string]any{"name": "   "}, "name", "required"},
		{"/accounts", map[string]any{"name": strings.Repeat("n", 256)}, "name", "255"},
		{"/accounts", map[string]any{"name": "x", "currency": "usd"}, "currency", "ISO 4217"},
		{"/accounts", map[string]any{"name": "x", "currency": "EURO"}, "currency", "ISO 4217"},
		{"/accounts/link", map[string]any{}, "billingAccountId", "required"},
		{"/accounts/link", map[string]any{"billingAccountId": theirs.ID}, "billingAccountId", "not yours"},
	}
	for _, c := range cases {
		r := e.do("POST", billingPath(wid, c.path), key, c.body).must(t, 422, "validation_failed")
		if msg := r.fieldErr(c.field); !strings.Contains(msg, c.want) {
			t.Errorf("%s %v: %s error %q, want it to mention %q", c.path, c.body, c.field, msg, c.want)
		}
	}
	e.do("POST", billingPath(wid, "/accounts"), key, map[string]any{"name": "x", "balance": 100}).must(t, 422, "validation_failed")
	e.do("POST", billingPath(wid, "/accounts"), key, `{"name":`).must(t, 400, "bad_request")
	e.do("POST", billingPath(wid, "/accounts/abc/default"), key, nil).must(t, 404, "not_found")
	// Scopes: billing:read reads, and cannot write.
	rid, ro := e.newWorkspace("Read only", "billing:read")
	e.do("GET", billingPath(rid, "/summary"), ro, nil).must(t, 200)
	e.do("POST", billingPath(rid, "/accounts"), ro, map[string]any{"name": "x"}).must(t, 403, "access_denied")
}

// TestBillingTenancy: a key of workspace A never reads or changes workspace
// B's accounts, balance or transactions, named by B's id or by B's account
// ids under A's own.
func TestBillingTenancy(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		is := is.New(t)
		ctx := context.Background()
		alice, aliceKey := e.newUser("alice@example.com")
		_, bobKey := e.newUser("bob@example.com")
		wa := e.do("POST", "/workspaces", aliceKey, map[string]any{"name": "A"}).must(t, 201).id()
		wb := e.do("POST", "/workspaces", bobKey, map[string]any{"name": "B"}).must(t, 201).id()
		keyA := e.do("POST", fmt.Sprintf("/workspaces/%d/api-keys", wa), aliceKey, map[string]any{"name": "a", "scopes": []string{"*"}}).must(t, 201).str("key")
		keyB := e.do("POST", fmt.Sprintf("/workspaces/%d/api-keys", wb), bobKey, map[string]any{"name": "b", "scopes": []string{"*"}}).must(t, 201).str("key")
		defB, err := e.p.Ledger().WorkspaceAccount(ctx, wb, 0)
		is.NoErr(err)
		_, err = e.p.Ledger().Credit(ctx, defB.ID, 900, "USD", "B's money", "")
		is.NoErr(err)
		otherB := e.do("POST", billingPath(wb, "/accounts"), keyB, map[string]any{"name": "B2"}).must(t, 201).id()
		snapshot := func() string {
			var b strings.Builder
			for _, p := range []string{"/accounts?sort=id", "/balance", "/transactions", "/summary"} {
				b.Write(e.do("GET", billingPath(wb, p), keyB, nil).must(t, 200).Raw)
			}
			return b.String()
		}
		before := snapshot()

		// B's workspace with A's key: every route is not found.
		for _, rq := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/accounts", nil}, {"GET", "/balance", nil}, {"GET", "/transactions", nil}, {"GET", "/summary", nil},
			{"POST", "/accounts", map[string]any{"name": "intruder"}},
			{"POST", "/accounts/link", map[string]any{"billingAccountId": defB.ID}},
			{"POST", fmt.Sprintf("/accounts/%d/default", otherB), nil},
			{"DELETE", fmt.Sprintf("/accounts/%d", otherB), nil},
		} {
			e.do(rq.method, billingPath(wb, rq.path), keyA, rq.body).must(t, 404, "not_found")
		}
		// A's own workspace, B's account ids: not found (or, for linking an
		// account A's user does not own, the same 422 as a missing one).
		e.do("POST", billingPath(wa, fmt.Sprintf("/accounts/%d/default", otherB)), keyA, nil).must(t, 404, "not_found")
		e.do("DELETE", billingPath(wa, fmt.Sprintf("/accounts/%d", defB.ID)), keyA, nil).must(t, 404, "not_found")
		e.do("POST", billingPath(wa, "/accounts/link"), keyA, map[string]any{"billingAccountId": defB.ID}).must(t, 422, "validation_failed")
		// A workspace key acts for its creator: its account is alice's, not bob's.
		mine := e.do("POST", billingPath(wa, "/accounts"), keyA, map[string]any{"name": "A2"}).must(t, 201)
		is.Equal(num(mine.data()["owner_user_id"]), alice.ID)
		// A sees only its own.
		is.Equal(e.do("GET", billingPath(wa, "/balance"), keyA, nil).must(t, 200).data()["amount"], 0.0)
		is.Equal(len(e.do("GET", billingPath(wa, "/transactions"), keyA, nil).must(t, 200).list()), 0)
		is.Equal(len(e.do("GET", billingPath(wa, "/accounts"), keyA, nil).must(t, 200).list()), 2)
		is.Equal(snapshot(), before)
	})
}
