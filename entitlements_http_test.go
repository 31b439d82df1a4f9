package revops_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/sqlstore/sqltest"
	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/testclock"
	"github.com/revopsdev/revops/ratelimit"
	"github.com/uptrace/bun"
)

func TestEntitlementsCheckUsageSummary(t *testing.T) {
	e := newEnv(t, func(c *revops.Config) { c.Billing.UpgradeURL = "https://example.com/upgrade" })
	wid, key := e.newWorkspace("Metered")

	r := e.do("GET", "/entitlements/check?feature=posts", key, nil).must(t, 200)
	want := `{"allowed":true,"feature":"posts","current_usage":0,"limit":100,"available":100}`
	if strings.TrimSpace(string(r.Raw)) != want {
		t.Fatalf("check: %s, want %s", r.Raw, want)
	}

	body := map[string]any{"feature": "api_calls", "quantity": 5, "metadata": map[string]any{"endpoint": "/api/v1/posts"}, "event_id": "evt-1"}
	r = e.do("POST", "/entitlements/usage", key, body).must(t, 200)
	want = `{"recorded":true,"feature":"api_calls","current_usage":5,"limit":1000}`
	if strings.TrimSpace(string(r.Raw)) != want {
		t.Fatalf("usage: %s, want %s", r.Raw, want)
	}
	// The same event again counts once and says so.
	r = e.do("POST", "/entitlements/usage", key, body).must(t, 200)
	if r.Body["current_usage"] != 5.0 || r.Body["duplicate"] != true {
		t.Fatalf("usage replayed: %s", r.Raw)
	}
	// The same event id for other usage is a conflict, and counts nothing.
	for _, other := range []map[string]any{{"feature": "api_calls", "quantity": 7, "event_id": "evt-1"}, {"feature": "posts", "quantity": 5, "event_id": "evt-1"}} {
		r = e.do("POST", "/entitlements/usage", key, other).must(t, 409, "conflict")
		if !strings.Contains(r.Body["message"].(string), `"evt-1" was already used for other usage`) {
			t.Fatalf("conflicting event id: %s", r.Raw)
		}
	}
	e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "api_calls"}).must(t, 200) // quantity defaults to 1
	e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "storage", "quantity": 1 << 30}).must(t, 200)

	r = e.do("GET", "/entitlements/summary", key, nil).must(t, 200)
	d := r.data()
	if num(d["workspace_id"]) != wid || d["tier"] != "free" {
		t.Fatalf("summary: %s", r.Raw)
	}
	ent := d["entitlements"].(map[string]any)
	calls := ent["api_calls"].(map[string]any)
	now := e.clock.Now().UTC()
	reset := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	if num(calls["used"]) != 6 || num(calls["limit"]) != 1000 || num(calls["available"]) != 994 || calls["percentage"] != 0.6 || calls["reset_at"] != reset {
		t.Fatalf("api_calls: %v (reset %s)", calls, reset)
	}
	storage := ent["storage"].(map[string]any)
	if storage["unit"] != "bytes" || num(storage["used"]) != 1<<30 || storage["percentage"] != 100.0 || storage["reset_at"] != nil {
		t.Fatalf("storage: %v", storage)
	}
	if posts := ent["posts"].(map[string]any); num(posts["used"]) != 0 || num(posts["limit"]) != 100 {
		t.Fatalf("posts: %v", posts)
	}

	// Bad input: the documented 422, naming the field.
	for _, c := range []struct{ method, path, field string }{
		{"GET", "/entitlements/check", "feature"},
		{"GET", "/entitlements/check?feature=posts&quantity=0", "quantity"},
		{"GET", "/entitlements/check?feature=posts&quantity=abc", "quantity"},
		{"GET", "/entitlements/check?feature=nope", "feature"},
	} {
		if r := e.do(c.method, c.path, key, nil).must(t, 422, "validation_failed"); r.fieldErr(c.field) == "" {
			t.Fatalf("%s: no error on %s: %s", c.path, c.field, r.Raw)
		}
	}
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{"quantity": 1}, "feature"},
		{map[string]any{"feature": "nope"}, "feature"},
		{map[string]any{"feature": "api_calls", "quantity": -1}, "quantity"},
		{map[string]any{"feature": "posts", "quantity": -1000}, "quantity"}, // a tenant may not lower its own usage
		{map[string]any{"feature": "api_calls", "quantity": 0}, "quantity"},
		{map[string]any{"feature": "custom_domains"}, "feature"},
		{map[string]any{"feature": "api_calls", "metadata": []int{1}}, "metadata"},
		{map[string]any{"feature": "api_calls", "event_id": strings.Repeat("x", 256)}, "event_id"},
	} {
		if r := e.do("POST", "/entitlements/usage", key, c.body).must(t, 422, "validation_failed"); r.fieldErr(c.field) == "" {
			t.Fatalf("%v: no error on %s: %s", c.body, c.field, r.Raw)
		}
	}
	e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "api_calls", "bogus": 1}).must(t, 422, "validation_failed")
	// An event id reused for other usage is a conflict, not a silent skip.
	e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "api_calls", "quantity": 9, "event_id": "evt-1"}).must(t, 409, "conflict")
	if r := e.do("GET", "/entitlements/summary", key, nil).must(t, 200); num(r.data()["entitlements"].(map[string]any)["api_calls"].(map[string]any)["used"]) != 6 {
		t.Fatalf("a reused event id was counted: %s", r.Raw)
	}

	// Scopes: entitlements:read may check but not record.
	_, ro := e.newWorkspace("Read only", "entitlements:read")
	e.do("GET", "/entitlements/check?feature=posts", ro, nil).must(t, 200)
	e.do("POST", "/entitlements/usage", ro, map[string]any{"feature": "api_calls"}).must(t, 403, "access_denied")
}

func TestEntitlementLimitAndMiddleware(t *testing.T) {
	e := newEnv(t, func(c *revops.Config) { c.Billing.UpgradeURL = "https://example.com/upgrade" })
	wid, key := e.newWorkspace("Limited")
	ctx := context.Background()
	if err := e.p.Meter().SetOverride(ctx, wid, "posts", ptr(int64(2))); err != nil {
		t.Fatal(err)
	}
	fail := false
	create := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail {
			revops.WriteJSON(w, 422, map[string]any{"error": "validation_failed"})
			return
		}
		revops.WriteJSON(w, 201, map[string]any{"ok": true})
	})
	srv := httptest.NewServer(e.p.Protect("posts:write", e.p.RequireFeature("posts", 1, create)))
	defer srv.Close()
	post := func() (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	// A failed create gives its post back.
	fail = true
	if code, _ := post(); code != 422 {
		t.Fatalf("failing handler: %d", code)
	}
	fail = false
	for i := range 2 {
		if code, body := post(); code != 201 {
			t.Fatalf("post %d: %d %v", i, code, body)
		}
	}
	code, body := post()
	want := map[string]any{"error": "feature_limit_reached", "message": "You have reached your limit for this feature.",
		"feature": "posts", "upgrade_url": "https://example.com/upgrade"}
	if code != 403 || fmt.Sprint(body) != fmt.Sprint(want) {
		t.Fatalf("over the limit: %d %v, want 403 %v", code, body, want)
	}
	r := e.do("GET", "/entitlements/check?feature=posts", key, nil).must(t, 200)
	want2 := `{"allowed":false,"feature":"posts","reason":"LIMIT_EXCEEDED","message":"Post limit exceeded. Used: 2, Limit: 2","current_usage":2,"limit":2,"available":0,"upgrade_url":"https://example.com/upgrade"}`
	if strings.TrimSpace(string(r.Raw)) != want2 {
		t.Fatalf("check at the limit: %s\nwant %s", r.Raw, want2)
	}
	// Deleting a post gives it back; Consume then grants again.
	if _, err := e.p.RecordUsage(ctx, wid, billing.UsageInput{Feature: "posts", Quantity: -1, EventID: "post-1-deleted"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Consume(ctx, wid, "posts", 1, "post-3"); err != nil {
		t.Fatal(err)
	}
	_, err := e.p.Consume(ctx, wid, "posts", 1, "post-4")
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Code != core.CodeFeatureLimit {
		t.Fatalf("Consume over the limit: %v", err)
	}
	// Flags: on in pro, off in free; an override turns one on.
	if r := e.do("GET", "/entitlements/check?feature=custom_domains", key, nil).must(t, 200); r.Body["allowed"] != false {
		t.Fatalf("flag off: %s", r.Raw)
	}
	if err := e.p.Meter().SetOverride(ctx, wid, "custom_domains", ptr(int64(1))); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/entitlements/check?feature=custom_domains", key, nil).must(t, 200); r.Body["allowed"] != true {
		t.Fatalf("flag on: %s", r.Raw)
	}
	// Unlimited is null.
	if err := e.p.SetTier(ctx, wid, "enterprise"); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Meter().SetOverride(ctx, wid, "posts", nil); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/entitlements/check?feature=posts&quantity=1000000", key, nil).must(t, 200); r.Body["allowed"] != true || r.Body["limit"] != nil || r.Body["available"] != nil {
		t.Fatalf("unlimited: %s", r.Raw)
	}
}

func ptr[T any](v T) *T { return &v }

func TestUsageThresholdEvents(t *testing.T) {
	e := newEnv(t)
	wid, key := e.newWorkspace("Thresholds")
	ep := e.do("POST", "/webhooks", key, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"usage.*"}}).must(t, 201)
	if err := e.p.Meter().SetOverride(context.Background(), wid, "api_calls", ptr(int64(10))); err != nil {
		t.Fatal(err)
	}
	for _, q := range []int{7, 1, 1, 1, 5} { // 7, 8 (80%), 9, 10 (100%), 15
		e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "api_calls", "quantity": q}).must(t, 200)
	}
	r := e.do("GET", fmt.Sprintf("/webhooks/%d/deliveries", ep.id()), key, nil).must(t, 200)
	if len(r.list()) != 2 {
		t.Fatalf("%d deliveries, want 2 (80%% and 100%%): %s", len(r.list()), r.Raw)
	}
	for _, d := range r.list() {
		if d.(map[string]any)["event_type"] != "usage.threshold_reached" {
			t.Fatalf("delivery: %v", d)
		}
	}
	// An upgrade mid-period (the limit is now 100): 80% of the new limit is
	// news again, as is 100%.
	if err := e.p.Meter().SetOverride(context.Background(), wid, "api_calls", ptr(int64(100))); err != nil {
		t.Fatal(err)
	}
	for _, q := range []int{60, 5, 20} { // 75, 80 (80%), 100 (100%)
		e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "api_calls", "quantity": q}).must(t, 200)
	}
	r = e.do("GET", fmt.Sprintf("/webhooks/%d/deliveries", ep.id()), key, nil).must(t, 200)
	if len(r.list()) != 4 {
		t.Fatalf("%d deliveries after the upgrade, want 4: %s", len(r.list()), r.Raw)
	}
}

// TestUsagePeriodResetsInWorkspaceTimezone crosses a month boundary on an
// injected clock: New York's January ends five hours after UTC's.
func TestUsagePeriodResetsInWorkspaceTimezone(t *testing.T) {
	clk := testclock.New(time.Date(2026, 2, 1, 4, 30, 0, 0, time.UTC)) // 23:30 on 31 January in New York
	e := newEnv(t, func(c *revops.Config) { c.Now = clk.Now })
	ny := e.do("POST", "/workspaces", e.key, map[string]any{"name": "NY", "settings": map[string]any{"timezone": "America/New_York"}}).must(t, 201).id()
	utc := e.do("POST", "/workspaces", e.key, map[string]any{"name": "UTC"}).must(t, 201).id()
	summary := func(wid int64) map[string]any {
		r := e.do("GET", "/entitlements/summary", e.key, nil, wsHdr(wid)).must(t, 200)
		return r.data()["entitlements"].(map[string]any)["api_calls"].(map[string]any)
	}
	for _, wid := range []int64{ny, utc} {
		e.do("POST", "/entitlements/usage", e.key, map[string]any{"feature": "api_calls", "quantity": 5}, wsHdr(wid)).must(t, 200)
	}
	if s := summary(ny); num(s["used"]) != 5 || s["reset_at"] != "2026-02-01T05:00:00Z" {
		t.Fatalf("New York before midnight: %v", s)
	}
	if s := summary(utc); num(s["used"]) != 5 || s["reset_at"] != "2026-03-01T00:00:00Z" {
		t.Fatalf("UTC: %v", s)
	}
	clk.Advance(time.Hour) // 00:30 on 1 February in New York
	if s := summary(ny); num(s["used"]) != 0 || s["reset_at"] != "2026-03-01T05:00:00Z" {
		t.Fatalf("New York after midnight: %v", s)
	}
	if s := summary(utc); num(s["used"]) != 5 {
		t.Fatalf("UTC after New York's midnight: %v", s)
	}
	// Rolling up does not move usage between periods.
	if _, err := e.store.RollupUsage(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/entitlements/usage", e.key, map[string]any{"feature": "api_calls", "quantity": 2}, wsHdr(ny)).must(t, 200)
	if s := summary(ny); num(s["used"]) != 2 {
		t.Fatalf("New York's February: %v", s)
	}
	// Moving the workspace to another zone keeps its counter: no fresh quota.
	e.do("PATCH", fmt.Sprintf("/workspaces/%d", ny), e.key, map[string]any{"settings": map[string]any{"timezone": "Pacific/Kiritimati"}}).must(t, 200)
	if s := summary(ny); num(s["used"]) != 2 || s["reset_at"] != "2026-02-28T10:00:00Z" {
		t.Fatalf("after changing the timezone: %v", s)
	}
	e.do("PATCH", fmt.Sprintf("/workspaces/%d", ny), e.key, map[string]any{"settings": map[string]any{"timezone": "America/New_York"}}).must(t, 200)
	clk.Advance(28 * 24 * time.Hour)                                                      // 1 March, 00:30 in New York
	if s := summary(ny); num(s["used"]) != 0 || s["reset_at"] != "2026-04-01T04:00:00Z" { // daylight saving time since 8 March
		t.Fatalf("New York in March: %v", s)
	}
}

// testDBs are the stores usage tests run on (Postgres skipped without
// REVOPS_TEST_POSTGRES_URL, which scripts/test sets).
var testDBs = []struct {
	name string
	open func(t testing.TB) *sqlstore.Store
}{{"sqlite", sqltest.SQLite}, {"postgres", sqltest.Postgres}}

// platformOn builds a platform on st with a generous rate limit.
func platformOn(t testing.TB, st *sqlstore.Store) *revops.Platform {
	t.Helper()
	generous := map[string]ratelimit.Policy{}
	for _, tier := range revops.DefaultTiers {
		generous[tier] = ratelimit.Policy{PerMinute: 1_000_000}
	}
	p, err := revops.New(revops.Config{Store: st, RateLimits: generous})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConsumeNeverOverGrants: 10,000 concurrent check-and-consume calls
// against a limit grant exactly the limit, on SQLite and on Postgres.
func TestConsumeNeverOverGrants(t *testing.T) {
	for _, db := range testDBs {
		t.Run(db.name, func(t *testing.T) {
			st := db.open(t)
			st.DB().SetMaxOpenConns(32)
			st.DB().SetMaxIdleConns(32)
			p := platformOn(t, st)
			wid := sqltest.Workspace(t, st)
			ctx := context.Background()
			const calls, limit = 10_000, 1_234
			if err := p.Meter().SetOverride(ctx, wid, "posts", ptr(int64(limit))); err != nil {
				t.Fatal(err)
			}
			var granted, refused atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, calls)
			for i := range calls {
				wg.Go(func() {
					_, err := p.Consume(ctx, wid, "posts", 1, fmt.Sprintf("post-%d", i))
					var ce *core.Error
					switch {
					case err == nil:
						granted.Add(1)
					case errors.As(err, &ce) && ce.Code == core.CodeFeatureLimit:
						refused.Add(1)
					default:
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if granted.Load() != limit || refused.Load() != calls-limit {
				t.Fatalf("granted %d, refused %d of %d calls against limit %d", granted.Load(), refused.Load(), calls, limit)
			}
			d, err := p.CheckFeature(ctx, wid, "posts", 1)
			if err != nil || d.Used != limit || d.Allowed {
				t.Fatalf("after: %+v %v", d, err)
			}
		})
	}
}

// flakyStore loses the answer of its first usage write after the write
// committed, as a connection cut at the wrong moment would.
type flakyStore struct {
	*sqlstore.Store
	appends, consumes atomic.Int64
}

var errCut = errors.New("connection reset by peer")

func (s *flakyStore) AppendUsage(ctx context.Context, ev []billing.UsageEvent, fold bool) ([]bool, error) {
	added, err := s.Store.AppendUsage(ctx, ev, fold)
	if s.appends.Add(1) == 1 {
		return nil, errCut
	}
	return added, err
}

func (s *flakyStore) ConsumeUsage(ctx context.Context, e *billing.UsageEvent, limit int64) (billing.ConsumeResult, error) {
	res, err := s.Store.ConsumeUsage(ctx, e, limit)
	// The first Consume loses its answer (RecordUsage's check of a
	// duplicate id, an unlimited ConsumeUsage, is left alone).
	if limit != billing.Unlimited && s.consumes.Add(1) == 1 {
		return billing.ConsumeResult{}, errCut
	}
	return res, err
}

// panicStore's usage writes panic.
type panicStore struct{ *sqlstore.Store }

func (panicStore) AppendUsage(context.Context, []billing.UsageEvent, bool) ([]bool, error) {
	panic("driver bug")
}

// A store that panics fails the record instead of leaving callers waiting.
func TestRecordSurvivesAPanickingStore(t *testing.T) {
	st := sqltest.SQLite(t)
	p, err := revops.New(revops.Config{Store: panicStore{st}})
	if err != nil {
		t.Fatal(err)
	}
	wid := sqltest.Workspace(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.RecordUsage(ctx, wid, billing.UsageInput{Feature: "api_calls", Quantity: 1}); err == nil || ctx.Err() != nil {
		t.Fatalf("record on a panicking store: %v (ctx %v)", err, ctx.Err())
	}
}

// TestUsageCountedOnce: a retried write whose first answer was lost, a
// write rolled back with the host's transaction, and the same event sent
// by many callers at once are each counted exactly once.
func TestUsageCountedOnce(t *testing.T) {
	for _, db := range testDBs {
		t.Run(db.name, func(t *testing.T) {
			st := db.open(t)
			st.DB().SetMaxOpenConns(16)
			fs := &flakyStore{Store: st}
			p, err := revops.New(revops.Config{Store: fs})
			if err != nil {
				t.Fatal(err)
			}
			wid := sqltest.Workspace(t, st)
			ctx := context.Background()
			used := func(feature string) int64 {
				d, err := p.CheckFeature(ctx, wid, feature, 1)
				if err != nil {
					t.Fatal(err)
				}
				return d.Used
			}
			// Lost answers: the caller retries with the same event id.
			in := billing.UsageInput{Feature: "api_calls", Quantity: 3, EventID: "req-1"}
			if _, err := p.RecordUsage(ctx, wid, in); !errors.Is(err, errCut) {
				t.Fatalf("first record: %v, want the cut", err)
			}
			d, err := p.RecordUsage(ctx, wid, in)
			if err != nil || !d.Duplicate || d.Used != 3 {
				t.Fatalf("retried record: %+v %v", d, err)
			}
			if _, err := p.Consume(ctx, wid, "posts", 1, "post-1"); !errors.Is(err, errCut) {
				t.Fatalf("first consume: %v, want the cut", err)
			}
			if d, err := p.Consume(ctx, wid, "posts", 1, "post-1"); err != nil || !d.Duplicate || d.Used != 1 {
				t.Fatalf("retried consume: %+v %v", d, err)
			}
			// A write in the host's transaction that then fails leaves nothing.
			err = st.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
				if _, err := p.Consume(ctx, wid, "posts", 1, "post-2"); err != nil {
					return err
				}
				return errors.New("the host's insert failed")
			})
			if err == nil || used("posts") != 1 {
				t.Fatalf("after a rolled-back consume: %v, %d posts", err, used("posts"))
			}
			err = st.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
				if _, err := p.RecordUsage(ctx, wid, billing.UsageInput{Feature: "api_calls", Quantity: 100, EventID: "in-tx"}); err != nil {
					return err
				}
				return errors.New("the host's insert failed")
			})
			if err == nil || used("api_calls") != 3 {
				t.Fatalf("after a rolled-back record: %v, %d api calls", err, used("api_calls"))
			}
			if _, err := p.Consume(ctx, wid, "posts", 1, "post-2"); err != nil || used("posts") != 2 {
				t.Fatalf("retried after rollback: %v, %d posts", err, used("posts"))
			}
			// Two consumes of one counter in a host transaction while another
			// caller consumes it too: no one waits on anyone forever.
			tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			outside := make(chan error, 1)
			err = st.RunInTx(tctx, func(ctx context.Context, _ bun.Tx) error {
				if _, err := p.Consume(ctx, wid, "posts", 1, "tx-a"); err != nil {
					return err
				}
				go func() { _, err := p.Consume(tctx, wid, "posts", 1, "outside"); outside <- err }()
				time.Sleep(50 * time.Millisecond) // the outside call is waiting now
				_, err := p.Consume(ctx, wid, "posts", 1, "tx-b")
				return err
			})
			if err != nil {
				t.Fatalf("host transaction: %v", err)
			}
			if err := <-outside; err != nil {
				t.Fatalf("outside consume: %v", err)
			}
			if got := used("posts"); got != 5 {
				t.Fatalf("posts %d, want 5", got)
			}
			// One event, fifty senders at once.
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					if _, err := p.RecordUsage(ctx, wid, billing.UsageInput{Feature: "api_calls", Quantity: 10, EventID: "burst"}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got := used("api_calls"); got != 13 {
				t.Fatalf("api_calls %d, want 13", got)
			}
		})
	}
}

func TestUsageOverviewAndBillingStatus(t *testing.T) {
	clk := testclock.New(time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC))
	e := newEnv(t, withBilling(), func(c *revops.Config) { c.Now = clk.Now })
	wid, key := e.newWorkspace("Overview")
	e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "api_calls", "quantity": 3}).must(t, 200) // February
	clk.Advance(28 * 24 * time.Hour)
	for _, q := range []int{4, 6} { // March
		e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "api_calls", "quantity": q}).must(t, 200)
	}
	e.do("POST", "/entitlements/usage", key, map[string]any{"feature": "posts", "quantity": 2}).must(t, 200)
	r := e.do("GET", fmt.Sprintf("/workspaces/%d/billing/usage-overview", wid), key, nil).must(t, 200)
	f := r.data()["features"].(map[string]any)
	calls := f["api_calls"].(map[string]any)
	hist := calls["history"].([]any)
	if num(calls["used"]) != 10 || calls["type"] != "metered" || len(hist) != 6 {
		t.Fatalf("api_calls: %v", calls)
	}
	for i, want := range []struct {
		start string
		used  int64
	}{{"2026-03-01T00:00:00Z", 10}, {"2026-02-01T00:00:00Z", 3}, {"2026-01-01T00:00:00Z", 0}} {
		h := hist[i].(map[string]any)
		if h["period_start"] != want.start || num(h["used"]) != want.used {
			t.Fatalf("history[%d] = %v, want %v", i, h, want)
		}
	}
	if posts := f["posts"].(map[string]any); num(posts["used"]) != 2 || posts["type"] != "level" || posts["history"] != nil {
		t.Fatalf("posts: %v", posts)
	}
	st := e.do("GET", fmt.Sprintf("/workspaces/%d/billing/status", wid), key, nil).must(t, 200).data()
	if u := st["usage"].(map[string]any)["api_calls"].(map[string]any); num(u["used"]) != 10 || num(u["available"]) != 990 {
		t.Fatalf("status usage: %v", st["usage"])
	}
	if l := st["plan"].(map[string]any)["limits"].(map[string]any); num(l["posts"]) != 100 {
		t.Fatalf("plan limits: %v", l)
	}
}

// With payments on, a paid tier is bought, not chosen at creation.
func TestPaidTierNotChosenAtCreation(t *testing.T) {
	e := newEnv(t, withBilling())
	if r := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Free ride", "tier": "enterprise"}).must(t, 422, "validation_failed"); r.fieldErr("tier") == "" {
		t.Fatalf("no error on tier: %s", r.Raw)
	}
	if r := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Honest", "tier": "free"}).must(t, 201); r.str("tier") != "free" {
		t.Fatalf("%s", r.Raw)
	}
}
