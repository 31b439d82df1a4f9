package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

func meteringTests() []test {
	return []test{
		{"Metering/AppendAndTotals", testUsageAppend},
		{"Metering/Consume", testUsageConsume},
		{"Metering/ConsumeConcurrent", testUsageConsumeConcurrent},
		{"Metering/RollupKeepsTotalsExact", testUsageRollup},
		{"Metering/Overrides", testEntitlementOverrides},
		{"Metering/Thresholds", testUsageThresholds},
	}
}

var (
	jan = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feb = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
)

func usage(ws int64, feature string, period time.Time, qty int64, id string) billing.UsageEvent {
	return billing.UsageEvent{WorkspaceID: ws, Feature: feature, PeriodStart: period, Quantity: qty, EventID: id, CreatedAt: at(0)}
}

func cnt(ws int64, feature string, period time.Time) billing.Counter {
	return billing.Counter{WorkspaceID: ws, Feature: feature, PeriodStart: period}
}

func (e *env) totals(ws int64, cs ...billing.Counter) []int64 {
	e.t.Helper()
	got, err := e.s.UsageTotals(e.ctx, ws, cs)
	e.must(err, "UsageTotals")
	if len(got) != len(cs) {
		e.t.Fatalf("UsageTotals returned %d totals for %d counters", len(got), len(cs))
	}
	return got
}

func testUsageAppend(e *env) {
	u := e.user("use")
	a, b := e.workspace("use-a", u.ID), e.workspace("use-b", u.ID)
	ev := usage(a.ID, "api_calls", jan, 5, "e1")
	ev.Metadata = json.RawMessage(`{"endpoint":"/posts"}`)
	added, err := e.s.AppendUsage(e.ctx, []billing.UsageEvent{
		ev, usage(a.ID, "api_calls", jan, 7, "e2"), usage(a.ID, "api_calls", feb, 11, "e3"),
		usage(a.ID, "posts", billing.LevelPeriod, 3, "e4"), usage(a.ID, "posts", billing.LevelPeriod, -1, "e5"),
		usage(b.ID, "api_calls", jan, 100, "e1"),  // same id, other workspace: its own event
		usage(a.ID, "api_calls", jan, 1000, "e2"), // repeated in the batch: skipped
	}, false)
	e.must(err, "AppendUsage")
	e.same("added", added, []bool{true, true, true, true, true, true, false})
	added, err = e.s.AppendUsage(e.ctx, []billing.UsageEvent{usage(a.ID, "api_calls", jan, 1000, "e1"), usage(a.ID, "api_calls", jan, 1, "e6")}, true)
	e.must(err, "AppendUsage again")
	e.same("added again", added, []bool{false, true})
	cs := []billing.Counter{cnt(a.ID, "api_calls", jan), cnt(a.ID, "api_calls", feb), cnt(a.ID, "posts", billing.LevelPeriod), cnt(a.ID, "storage", billing.LevelPeriod)}
	e.same("totals of a", e.totals(a.ID, cs...), []int64{13, 11, 2, 0})
	e.same("totals of b", e.totals(b.ID, cnt(b.ID, "api_calls", jan)), []int64{100})
	// A workspace's totals never include another's events, whatever the
	// counter says.
	e.same("b asking for a's counter", e.totals(b.ID, cnt(a.ID, "posts", billing.LevelPeriod)), []int64{0})
	e.same("no counters", e.totals(a.ID), []int64{})
	if _, err := e.s.AppendUsage(e.ctx, []billing.UsageEvent{usage(999_999, "api_calls", jan, 1, "x")}, false); !errors.Is(err, core.ErrNotFound) {
		e.t.Fatalf("usage of a missing workspace: %v, want not found", err)
	}
	if _, err := e.s.AppendUsage(e.ctx, []billing.UsageEvent{usage(a.ID, "api_calls", jan, 1, "y"), usage(999_999, "api_calls", jan, 1, "x")}, true); !errors.Is(err, core.ErrNotFound) {
		e.t.Fatalf("folded usage of a missing workspace: %v, want not found", err)
	}
	e.same("nothing of a failed folded append", e.totals(a.ID, cs[0]), []int64{13})
	added, err = e.s.AppendUsage(e.ctx, nil, true)
	e.must(err, "AppendUsage(nil)")
	e.same("nothing added", added, []bool{})
}

func testUsageConsume(e *env) {
	u := e.user("con")
	a := e.workspace("con-a", u.ID)
	c := cnt(a.ID, "api_calls", jan)
	// Recorded usage counts against the limit too.
	_, err := e.s.AppendUsage(e.ctx, []billing.UsageEvent{usage(a.ID, "api_calls", jan, 2, "rec")}, false)
	e.must(err, "AppendUsage")
	var granted []bool
	for i := range 4 {
		ev := usage(a.ID, "api_calls", jan, 1, fmt.Sprintf("c%d", i))
		res, err := e.s.ConsumeUsage(e.ctx, &ev, 4)
		e.must(err, "ConsumeUsage")
		granted = append(granted, res.Granted)
		if res.Duplicate {
			e.t.Fatalf("consume %d: duplicate", i)
		}
		if want := min(int64(3+i), 4); res.Used != want {
			e.t.Fatalf("consume %d: Used %d, want %d", i, res.Used, want)
		}
	}
	e.same("granted", granted, []bool{true, true, false, false})
	e.same("total", e.totals(a.ID, c), []int64{4})
	// A retry of a granted event finds it, even now that the limit is full.
	again := usage(a.ID, "api_calls", jan, 1, "c0")
	res, err := e.s.ConsumeUsage(e.ctx, &again, 4)
	e.must(err, "ConsumeUsage retry")
	e.same("retry", res, billing.ConsumeResult{Granted: true, Duplicate: true, Used: 4})
	other := usage(a.ID, "api_calls", jan, 2, "c0")
	if _, err := e.s.ConsumeUsage(e.ctx, &other, billing.Unlimited); !errors.Is(err, core.ErrConflict) {
		e.t.Fatalf("event id reused for another quantity: %v, want conflict", err)
	}
	// A refused event stored nothing: the same id may be granted later.
	refused := usage(a.ID, "api_calls", jan, 1, "c3")
	res, err = e.s.ConsumeUsage(e.ctx, &refused, billing.Unlimited)
	e.must(err, "ConsumeUsage unlimited")
	e.same("after raising the limit", res, billing.ConsumeResult{Granted: true, Used: 5})
	// Another period, feature or workspace is another counter.
	ev := usage(a.ID, "api_calls", feb, 3, "f1")
	res, err = e.s.ConsumeUsage(e.ctx, &ev, 3)
	e.must(err, "ConsumeUsage feb")
	e.same("feb", res, billing.ConsumeResult{Granted: true, Used: 3})
	zero := usage(a.ID, "posts", billing.LevelPeriod, 1, "p1")
	res, err = e.s.ConsumeUsage(e.ctx, &zero, 0)
	e.must(err, "ConsumeUsage limit 0")
	e.same("limit 0", res, billing.ConsumeResult{Used: 0})
	missing := usage(999_999, "posts", billing.LevelPeriod, 1, "m")
	if _, err := e.s.ConsumeUsage(e.ctx, &missing, 10); !errors.Is(err, core.ErrNotFound) {
		e.t.Fatalf("consume in a missing workspace: %v, want not found", err)
	}
	e.same("totals", e.totals(a.ID, c, cnt(a.ID, "api_calls", feb), cnt(a.ID, "posts", billing.LevelPeriod)), []int64{5, 3, 0})
}

func testUsageConsumeConcurrent(e *env) {
	u := e.user("cc")
	a := e.workspace("cc-a", u.ID)
	const n, limit = 120, 37
	var granted, dups atomic.Int64
	errs := parallel(n, func(i int) error {
		// Every third call retries the id of the call before it.
		id := fmt.Sprintf("ev-%d", i-i%3/2)
		ev := usage(a.ID, "api_calls", jan, 1, id)
		res, err := e.s.ConsumeUsage(e.ctx, &ev, limit)
		if res.Granted && !res.Duplicate {
			granted.Add(1)
		}
		if res.Duplicate {
			dups.Add(1)
		}
		return err
	})
	for i, err := range errs {
		e.must(err, fmt.Sprintf("consume %d", i))
	}
	if granted.Load() != limit {
		e.t.Fatalf("%d granted (and %d duplicates) of %d calls against limit %d", granted.Load(), dups.Load(), n, limit)
	}
	e.same("total", e.totals(a.ID, cnt(a.ID, "api_calls", jan)), []int64{limit})
}

func testUsageRollup(e *env) {
	u := e.user("roll")
	a, b := e.workspace("roll-a", u.ID), e.workspace("roll-b", u.ID)
	ca, cb := cnt(a.ID, "api_calls", jan), cnt(b.ID, "api_calls", jan)
	// Appends, consumes and rollups at once: totals are exact throughout.
	const writers, each = 6, 25
	var consumed atomic.Int64
	errs := parallel(writers+2, func(i int) error {
		switch {
		case i >= writers:
			for range 10 {
				if _, err := e.s.RollupUsage(e.ctx, 7); err != nil {
					return err
				}
			}
		case i%2 == 0:
			for j := range each {
				ws := a.ID
				if j%5 == 0 {
					ws = b.ID
				}
				if _, err := e.s.AppendUsage(e.ctx, []billing.UsageEvent{usage(ws, "api_calls", jan, 2, fmt.Sprintf("w%d-%d", i, j))}, j%2 == 0); err != nil {
					return err
				}
			}
		default:
			for j := range each {
				ev := usage(a.ID, "api_calls", jan, 1, fmt.Sprintf("c%d-%d", i, j))
				res, err := e.s.ConsumeUsage(e.ctx, &ev, billing.Unlimited)
				if err != nil {
					return err
				}
				if res.Granted {
					consumed.Add(1)
				}
			}
		}
		return nil
	})
	for i, err := range errs {
		e.must(err, fmt.Sprintf("worker %d", i))
	}
	appendsA, appendsB := int64(3*each*4/5*2), int64(3*each/5*2)
	want := []int64{appendsA + consumed.Load(), appendsB}
	e.same("totals while events are pending", []int64{e.totals(a.ID, ca)[0], e.totals(b.ID, cb)[0]}, want)
	for {
		n, err := e.s.RollupUsage(e.ctx, 50)
		e.must(err, "RollupUsage")
		if n == 0 {
			break
		}
	}
	e.same("totals after rolling everything up", []int64{e.totals(a.ID, ca)[0], e.totals(b.ID, cb)[0]}, want)
	n, err := e.s.RollupUsage(e.ctx, 50)
	e.must(err, "RollupUsage when done")
	e.same("nothing left to roll up", n, 0)
	ev := usage(a.ID, "api_calls", jan, 2, "w0-1")
	res, err := e.s.ConsumeUsage(e.ctx, &ev, billing.Unlimited)
	e.must(err, "ConsumeUsage of a rolled-up event id")
	e.same("a rolled-up event id consumed again", res, billing.ConsumeResult{Granted: true, Duplicate: true, Used: want[0]})
}

func testEntitlementOverrides(e *env) {
	u := e.user("ovr")
	a, b := e.workspace("ovr-a", u.ID), e.workspace("ovr-b", u.ID)
	got, err := e.s.EntitlementOverrides(e.ctx, a.ID)
	e.must(err, "EntitlementOverrides")
	e.same("none", got, map[string]int64{})
	e.must(e.s.SetEntitlementOverride(e.ctx, a.ID, "posts", ptr(int64(5000))), "set posts")
	e.must(e.s.SetEntitlementOverride(e.ctx, a.ID, "api_calls", ptr(billing.Unlimited)), "set api_calls")
	e.must(e.s.SetEntitlementOverride(e.ctx, a.ID, "posts", ptr(int64(7000))), "replace posts")
	e.must(e.s.SetEntitlementOverride(e.ctx, b.ID, "posts", ptr(int64(1))), "set b")
	got, _ = e.s.EntitlementOverrides(e.ctx, a.ID)
	e.same("a's", got, map[string]int64{"posts": 7000, "api_calls": billing.Unlimited})
	e.must(e.s.SetEntitlementOverride(e.ctx, a.ID, "posts", nil), "remove posts")
	e.must(e.s.SetEntitlementOverride(e.ctx, a.ID, "storage", nil), "remove what is not set")
	got, _ = e.s.EntitlementOverrides(e.ctx, a.ID)
	e.same("after removing", got, map[string]int64{"api_calls": billing.Unlimited})
	got, _ = e.s.EntitlementOverrides(e.ctx, b.ID)
	e.same("b's", got, map[string]int64{"posts": 1})
	e.notFound(e.s.SetEntitlementOverride(e.ctx, 999_999, "posts", ptr(int64(1))), "override in a missing workspace")
	e.notFound(e.s.SetEntitlementOverride(e.ctx, 999_999, "posts", nil), "removing in a missing workspace")
}

func testUsageThresholds(e *env) {
	u := e.user("thr")
	a, b := e.workspace("thr-a", u.ID), e.workspace("thr-b", u.ID)
	c := cnt(a.ID, "api_calls", jan)
	var firsts atomic.Int64
	errs := parallel(10, func(int) error {
		first, err := e.s.MarkThreshold(e.ctx, c, 80, 1000)
		if first {
			firsts.Add(1)
		}
		return err
	})
	for _, err := range errs {
		e.must(err, "MarkThreshold")
	}
	e.same("first marks of one threshold", firsts.Load(), int64(1))
	for _, other := range []billing.Counter{cnt(a.ID, "api_calls", feb), cnt(b.ID, "api_calls", jan), cnt(a.ID, "posts", jan)} {
		first, err := e.s.MarkThreshold(e.ctx, other, 80, 1000)
		e.must(err, "MarkThreshold other")
		if !first {
			e.t.Fatalf("%+v: not first", other)
		}
	}
	first, err := e.s.MarkThreshold(e.ctx, c, 100, 1000)
	e.must(err, "MarkThreshold 100")
	e.same("100% is another threshold", first, true)
	first, err = e.s.MarkThreshold(e.ctx, c, 80, 10_000)
	e.must(err, "MarkThreshold of another limit")
	e.same("80% of another limit (an upgrade) is another mark", first, true)
	first, err = e.s.MarkThreshold(e.ctx, c, 80, 1000)
	e.must(err, "MarkThreshold again")
	e.same("the first limit's mark stays", first, false)
	if _, err := e.s.MarkThreshold(e.ctx, cnt(999_999, "api_calls", jan), 80, 1000); !errors.Is(err, core.ErrNotFound) {
		e.t.Fatalf("threshold of a missing workspace: %v, want not found", err)
	}
}
