package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
)

var (
	_ billing.UsageStore = (*Store)(nil)
	_ billing.TxStore    = (*Store)(nil)
)

// Usage totals are a counter row plus the deltas not yet folded into it,
// always read in ONE statement (one snapshot), so that a rollup committing
// in between can neither hide nor double usage. ConsumeUsage locks the
// counter row first; RollupUsage deletes deltas and adds them to the
// counter in one transaction, so it cannot commit while a consumer holds
// the lock. Events themselves are only ever inserted: they are the dedupe
// record, never read for totals.

const usageEventsInsert = "INSERT INTO revops_usage_events (workspace_id, feature, period_start, quantity, event_id, metadata, created_at) VALUES "

func metadataText(e *billing.UsageEvent) string {
	if len(e.Metadata) == 0 {
		return "{}"
	}
	return string(e.Metadata)
}

// AppendUsage inserts the new events in one statement; an event id already
// stored (or repeated in events) is skipped. With fold, the same
// transaction adds them to their counters.
func (s *Store) AppendUsage(ctx context.Context, events []billing.UsageEvent, fold bool) ([]bool, error) {
	added := make([]bool, len(events))
	if len(events) == 0 {
		return added, nil
	}
	if s.dialect == DialectPostgres {
		return added, s.appendUsagePostgres(ctx, events, fold, added)
	}
	var b strings.Builder
	b.WriteString(usageEventsInsert)
	args := make([]any, 0, len(events)*7)
	for i := range events {
		e := &events[i]
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, e.WorkspaceID, e.Feature, ts(e.PeriodStart), e.Quantity, e.EventID, metadataText(e), orNow(e.CreatedAt))
	}
	b.WriteString(" ON CONFLICT (workspace_id, event_id) DO NOTHING RETURNING workspace_id, event_id")
	type key struct {
		ws int64
		id string
	}
	var rows []struct {
		WorkspaceID int64  `bun:"workspace_id"`
		EventID     string `bun:"event_id"`
	}
	write := func(ctx context.Context, db bun.IDB) error {
		rows = rows[:0]
		if err := db.NewRaw(b.String(), args...).Scan(ctx, &rows); err != nil {
			return fail("append usage", err, "")
		}
		inserted := make(map[key]bool, len(rows))
		for _, r := range rows {
			inserted[key{r.WorkspaceID, r.EventID}] = true
		}
		sums := map[billing.Counter]int64{}
		for i := range events {
			if e := &events[i]; inserted[key{e.WorkspaceID, e.EventID}] {
				delete(inserted, key{e.WorkspaceID, e.EventID})
				sums[billing.Counter{WorkspaceID: e.WorkspaceID, Feature: e.Feature, PeriodStart: ts(e.PeriodStart)}] += e.Quantity
			}
		}
		if fold {
			return addToCounters(ctx, db, sums)
		}
		return addDeltas(ctx, db, sums)
	}
	if err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error { return write(ctx, tx) }); err != nil {
		return nil, err
	}
	inserted := make(map[key]bool, len(rows))
	for _, r := range rows {
		inserted[key{r.WorkspaceID, r.EventID}] = true
	}
	for i := range events {
		k := key{events[i].WorkspaceID, events[i].EventID}
		if inserted[k] {
			added[i] = true
			delete(inserted, k) // a repeat later in events was skipped
		}
	}
	return added, nil
}

// The Postgres append passes each column as one array and unnests it: the
// statement's text and plan stay the same size whatever the batch, where a
// VALUES list costs Postgres a parse of seven parameters per row. What most
// events share (workspace, feature and period; creation time) is sent once
// and referenced by position, and an event repeated within the batch is
// dropped before sending. Without fold, the deltas are written by the same
// statement, so a bulk append is a single round trip and needs no
// transaction of its own. Only the events NOT inserted (already stored)
// come back: usually none.
const (
	usageRowsPostgres = `WITH c AS (
  SELECT * FROM unnest(?::bigint[], ?::text[], ?::timestamptz[]) WITH ORDINALITY AS c (workspace_id, feature, period_start, n)
), a AS (
  SELECT * FROM unnest(?::timestamptz[]) WITH ORDINALITY AS a (created_at, n)
), r AS (
  SELECT c.workspace_id, c.feature, c.period_start, x.quantity, x.event_id, coalesce(x.metadata, '{}') AS metadata, a.created_at
  FROM unnest(?::int[], ?::int[], ?::bigint[], ?::text[], ?::text[]) AS x (ci, ai, quantity, event_id, metadata)
  JOIN c ON c.n = x.ci JOIN a ON a.n = x.ai
), ins AS (
  INSERT INTO revops_usage_events (workspace_id, feature, period_start, quantity, event_id, metadata, created_at)
  SELECT workspace_id, feature, period_start, quantity, event_id, metadata, created_at FROM r
  ON CONFLICT (workspace_id, event_id) DO NOTHING
  RETURNING workspace_id, feature, period_start, quantity, event_id
)`
	usageDeltasPostgres = `, d AS (
  INSERT INTO revops_usage_deltas (workspace_id, feature, period_start, quantity)
  SELECT workspace_id, feature, period_start, sum(quantity) FROM ins GROUP BY workspace_id, feature, period_start
)`
	usageSkippedPostgres = ` SELECT r.workspace_id, r.event_id FROM r
WHERE (SELECT count(*) FROM ins) < (SELECT count(*) FROM r)
  AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.workspace_id = r.workspace_id AND ins.event_id = r.event_id)`
)

func (s *Store) appendUsagePostgres(ctx context.Context, events []billing.UsageEvent, fold bool, added []bool) error {
	type key struct {
		ws int64
		id string
	}
	n := len(events)
	var (
		counters = map[billing.Counter]int32{}
		times    = map[time.Time]int32{}
		seen     = make(map[key]bool, n)
		cws      []int64
		cfs      []string
		cps, cas []time.Time
		cis, ais = make([]int32, 0, n), make([]int32, 0, n)
		qs       = make([]int64, 0, n)
		ids      = make([]string, 0, n)
		metas    []string // only when some event has metadata
		first    = make([]bool, n)
	)
	for i := range events {
		e := &events[i]
		k := key{e.WorkspaceID, e.EventID}
		if seen[k] {
			continue // a repeat within the batch: its first occurrence counts
		}
		seen[k], first[i] = true, true
		c := billing.Counter{WorkspaceID: e.WorkspaceID, Feature: e.Feature, PeriodStart: ts(e.PeriodStart)}
		ci, ok := counters[c]
		if !ok {
			ci = int32(len(cws) + 1)
			counters[c] = ci
			cws, cfs, cps = append(cws, c.WorkspaceID), append(cfs, c.Feature), append(cps, c.PeriodStart)
		}
		at := orNow(e.CreatedAt)
		ai, ok := times[at]
		if !ok {
			ai = int32(len(cas) + 1)
			times[at] = ai
			cas = append(cas, at)
		}
		if len(e.Metadata) > 0 && metas == nil {
			metas = make([]string, len(ids), n) // "{}" for those before
			for j := range metas {
				metas[j] = "{}"
			}
		}
		if metas != nil {
			metas = append(metas, metadataText(e))
		}
		cis, ais, qs, ids = append(cis, ci), append(ais, ai), append(qs, e.Quantity), append(ids, e.EventID)
	}
	if metas == nil {
		metas = []string{} // unnest pads with NULL: '{}' by coalesce
	}
	args := []any{pgdialect.Array(cws), pgdialect.Array(cfs), pgdialect.Array(cps), pgdialect.Array(cas),
		pgdialect.Array(cis), pgdialect.Array(ais), pgdialect.Array(qs), pgdialect.Array(ids), pgdialect.Array(metas)}
	var skipped []struct {
		WorkspaceID int64  `bun:"workspace_id"`
		EventID     string `bun:"event_id"`
	}
	q := usageRowsPostgres
	if !fold {
		q += usageDeltasPostgres
	}
	q += usageSkippedPostgres
	mark := func() map[billing.Counter]int64 {
		old := make(map[key]bool, len(skipped))
		for _, r := range skipped {
			old[key{r.WorkspaceID, r.EventID}] = true
		}
		sums := map[billing.Counter]int64{}
		for i := range events {
			e := &events[i]
			if added[i] = first[i] && !old[key{e.WorkspaceID, e.EventID}]; added[i] {
				sums[billing.Counter{WorkspaceID: e.WorkspaceID, Feature: e.Feature, PeriodStart: ts(e.PeriodStart)}] += e.Quantity
			}
		}
		return sums
	}
	write := func(ctx context.Context, db bun.IDB) error {
		skipped = skipped[:0]
		if err := db.NewRaw(q, args...).Scan(ctx, &skipped); err != nil {
			return fail("append usage", err, "")
		}
		sums := mark()
		if !fold {
			return nil
		}
		return addToCounters(ctx, db, sums)
	}
	if !fold && hostTxFrom(ctx) == nil {
		return write(ctx, s.db) // one statement: atomic on its own
	}
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error { return write(ctx, tx) })
}

// addDeltas records sums as deltas, one row per counter: appends that lock
// nothing, folded into the counters by RollupUsage.
func addDeltas(ctx context.Context, db bun.IDB, sums map[billing.Counter]int64) error {
	if len(sums) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO revops_usage_deltas (workspace_id, feature, period_start, quantity) VALUES ")
	args := make([]any, 0, len(sums)*4)
	for c, q := range sums {
		if len(args) > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
		args = append(args, c.WorkspaceID, c.Feature, c.PeriodStart, q)
	}
	_, err := db.NewRaw(b.String(), args...).Exec(ctx)
	return fail("add usage deltas", err, "")
}

// addToCounters adds sums to their counters, locking them in one order
// (workspace, feature, period) so that two writers cannot deadlock.
func addToCounters(ctx context.Context, db bun.IDB, sums map[billing.Counter]int64) error {
	keys := make([]billing.Counter, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b billing.Counter) int {
		if a.WorkspaceID != b.WorkspaceID {
			return cmp.Compare(a.WorkspaceID, b.WorkspaceID)
		}
		if c := strings.Compare(a.Feature, b.Feature); c != 0 {
			return c
		}
		return a.PeriodStart.Compare(b.PeriodStart)
	})
	for _, k := range keys {
		_, err := db.NewRaw(`INSERT INTO revops_usage_counters (workspace_id, feature, period_start, used) VALUES (?, ?, ?, ?)
ON CONFLICT (workspace_id, feature, period_start) DO UPDATE SET used = revops_usage_counters.used + excluded.used`,
			k.WorkspaceID, k.Feature, k.PeriodStart, sums[k]).Exec(ctx)
		if err != nil {
			return fail("add to usage counters", err, "")
		}
	}
	return nil
}

// ConsumeUsage: see billing.UsageStore.
func (s *Store) ConsumeUsage(ctx context.Context, e *billing.UsageEvent, limit int64) (billing.ConsumeResult, error) {
	var res billing.ConsumeResult
	period := ts(e.PeriodStart)
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res = billing.ConsumeResult{}
		// Lock the counter (creating it): consumers of one counter queue here.
		var used int64
		err := tx.NewRaw(`INSERT INTO revops_usage_counters (workspace_id, feature, period_start, used) VALUES (?, ?, ?, 0)
ON CONFLICT (workspace_id, feature, period_start) DO UPDATE SET used = revops_usage_counters.used RETURNING used`,
			e.WorkspaceID, e.Feature, period).Scan(ctx, &used)
		if err != nil {
			return fail("consume usage", err, "")
		}
		var pending int64
		err = tx.NewRaw(`SELECT COALESCE(SUM(quantity), 0) FROM revops_usage_deltas
WHERE workspace_id = ? AND feature = ? AND period_start = ?`, e.WorkspaceID, e.Feature, period).Scan(ctx, &pending)
		if err != nil {
			return fail("consume usage", err, "")
		}
		current := used + pending
		if limit != billing.Unlimited && current+e.Quantity > limit {
			// Refused, unless this is a retry of an event already granted.
			dup, err := sameEvent(ctx, tx, e)
			res = billing.ConsumeResult{Granted: dup, Duplicate: dup, Used: current}
			return err
		}
		inserted, err := s.insertConsumed(ctx, tx, e, period)
		if err != nil {
			return err
		}
		if !inserted {
			dup, err := sameEvent(ctx, tx, e)
			if err == nil && !dup {
				// Gone again: the insert conflicted with a row a concurrent
				// transaction then rolled back. The caller may retry.
				err = core.Conflict("The event_id %q is being written by another request; retry.", e.EventID)
			}
			res = billing.ConsumeResult{Granted: dup, Duplicate: dup, Used: current}
			return err
		}
		res = billing.ConsumeResult{Granted: true, Used: current + e.Quantity}
		return nil
	})
	return res, err
}

// insertConsumed stores a granted event and adds it to its (locked)
// counter, and reports false if the event id was already stored. On
// PostgreSQL both writes are one statement: the lock is held for fewer
// round trips.
func (s *Store) insertConsumed(ctx context.Context, tx bun.Tx, e *billing.UsageEvent, period time.Time) (bool, error) {
	if s.dialect == DialectPostgres {
		var got []int64
		err := tx.NewRaw(`WITH ins AS (`+usageEventsInsert+`(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, event_id) DO NOTHING RETURNING quantity)
UPDATE revops_usage_counters c SET used = c.used + ins.quantity FROM ins
WHERE c.workspace_id = ? AND c.feature = ? AND c.period_start = ? RETURNING c.used`,
			e.WorkspaceID, e.Feature, period, e.Quantity, e.EventID, metadataText(e), orNow(e.CreatedAt),
			e.WorkspaceID, e.Feature, period).Scan(ctx, &got)
		if err != nil {
			return false, fail("consume usage", err, "")
		}
		return len(got) == 1, nil
	}
	var ids []int64
	err := tx.NewRaw(usageEventsInsert+"(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, event_id) DO NOTHING RETURNING quantity",
		e.WorkspaceID, e.Feature, period, e.Quantity, e.EventID, metadataText(e), orNow(e.CreatedAt)).Scan(ctx, &ids)
	if err != nil || len(ids) == 0 {
		return false, fail("consume usage", err, "")
	}
	_, err = tx.NewRaw(`UPDATE revops_usage_counters SET used = used + ? WHERE workspace_id = ? AND feature = ? AND period_start = ?`,
		e.Quantity, e.WorkspaceID, e.Feature, period).Exec(ctx)
	return err == nil, fail("consume usage", err, "")
}

// sameEvent reports whether e's event id is stored, for the same feature
// and quantity; for other usage it is a conflict.
func sameEvent(ctx context.Context, db bun.IDB, e *billing.UsageEvent) (bool, error) {
	var rows []struct {
		Feature  string `bun:"feature"`
		Quantity int64  `bun:"quantity"`
	}
	err := db.NewRaw("SELECT feature, quantity FROM revops_usage_events WHERE workspace_id = ? AND event_id = ?",
		e.WorkspaceID, e.EventID).Scan(ctx, &rows)
	switch {
	case err != nil:
		return false, fail("consume usage", err, "")
	case len(rows) == 0:
		return false, nil
	case rows[0].Feature != e.Feature || rows[0].Quantity != e.Quantity:
		return false, core.Conflict("The event_id %q was already used for other usage.", e.EventID)
	}
	return true, nil
}

// UsageTotals reads counters and pending events in one statement.
func (s *Store) UsageTotals(ctx context.Context, workspaceID int64, counters []billing.Counter) ([]int64, error) {
	out := make([]int64, len(counters))
	if len(counters) == 0 {
		return out, nil
	}
	var match strings.Builder
	var margs []any
	for i, c := range counters {
		if i > 0 {
			match.WriteString(" OR ")
		}
		match.WriteString("(feature = ? AND period_start = ?)")
		margs = append(margs, c.Feature, ts(c.PeriodStart))
	}
	q := fmt.Sprintf(`SELECT feature, period_start, SUM(n) AS total FROM (
SELECT feature, period_start, used AS n FROM revops_usage_counters WHERE workspace_id = ? AND (%[1]s)
UNION ALL
SELECT feature, period_start, quantity AS n FROM revops_usage_deltas WHERE workspace_id = ? AND (%[1]s)
) t GROUP BY feature, period_start`, match.String())
	args := append(append(append([]any{workspaceID}, margs...), workspaceID), margs...)
	var rows []struct {
		Feature     string    `bun:"feature"`
		PeriodStart time.Time `bun:"period_start"`
		Total       int64     `bun:"total"`
	}
	if err := s.conn(ctx).NewRaw(q, args...).Scan(ctx, &rows); err != nil {
		return nil, fail("usage totals", err, "")
	}
	for _, r := range rows {
		for i, c := range counters {
			if c.Feature == r.Feature && ts(c.PeriodStart).Equal(r.PeriodStart) {
				out[i] = r.Total
			}
		}
	}
	return out, nil
}

// rollupLockID keeps PostgreSQL rollups from running twice at once.
const rollupLockID = 7_236_837_891_414_209_140

// RollupUsage: see billing.UsageStore.
func (s *Store) RollupUsage(ctx context.Context, max int) (int, error) {
	n := 0
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		n = 0
		if s.dialect == DialectPostgres {
			var got bool
			if err := tx.NewRaw(fmt.Sprintf("SELECT pg_try_advisory_xact_lock(%d)", int64(rollupLockID))).Scan(ctx, &got); err != nil || !got {
				return err // another instance is rolling up
			}
		}
		var rows []struct {
			WorkspaceID int64     `bun:"workspace_id"`
			Feature     string    `bun:"feature"`
			PeriodStart time.Time `bun:"period_start"`
			Quantity    int64     `bun:"quantity"`
		}
		err := tx.NewRaw(`DELETE FROM revops_usage_deltas WHERE id IN (SELECT id FROM revops_usage_deltas ORDER BY id LIMIT ?)
RETURNING workspace_id, feature, period_start, quantity`, max).Scan(ctx, &rows)
		if err != nil {
			return fail("roll up usage", err, "")
		}
		sums := map[billing.Counter]int64{}
		for _, r := range rows {
			sums[billing.Counter{WorkspaceID: r.WorkspaceID, Feature: r.Feature, PeriodStart: ts(r.PeriodStart)}] += r.Quantity
		}
		if err := addToCounters(ctx, tx, sums); err != nil {
			return err
		}
		n = len(rows)
		return nil
	})
	return n, err
}

// SetEntitlementOverride: see billing.UsageStore.
func (s *Store) SetEntitlementOverride(ctx context.Context, workspaceID int64, feature string, limit *int64) error {
	if limit == nil {
		// Removing what is not there is fine, but not in a missing workspace.
		if _, err := s.workspaceExists(ctx, workspaceID); err != nil {
			return err
		}
		_, err := s.conn(ctx).NewRaw("DELETE FROM revops_entitlement_overrides WHERE workspace_id = ? AND feature = ?", workspaceID, feature).Exec(ctx)
		return fail("remove entitlement override", err, "")
	}
	_, err := s.conn(ctx).NewRaw(`INSERT INTO revops_entitlement_overrides (workspace_id, feature, limit_value) VALUES (?, ?, ?)
ON CONFLICT (workspace_id, feature) DO UPDATE SET limit_value = excluded.limit_value`, workspaceID, feature, *limit).Exec(ctx)
	return fail("set entitlement override", err, "")
}

func (s *Store) workspaceExists(ctx context.Context, id int64) (bool, error) {
	var n int
	if err := s.conn(ctx).NewRaw("SELECT COUNT(*) FROM revops_workspaces WHERE id = ?", id).Scan(ctx, &n); err != nil {
		return false, fail("get workspace", err, "")
	}
	if n == 0 {
		return false, core.NotFound()
	}
	return true, nil
}

// EntitlementOverrides: see billing.UsageStore.
func (s *Store) EntitlementOverrides(ctx context.Context, workspaceID int64) (map[string]int64, error) {
	var rows []struct {
		Feature string `bun:"feature"`
		Limit   int64  `bun:"limit_value"`
	}
	if err := s.conn(ctx).NewRaw("SELECT feature, limit_value FROM revops_entitlement_overrides WHERE workspace_id = ?", workspaceID).Scan(ctx, &rows); err != nil {
		return nil, fail("list entitlement overrides", err, "")
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Feature] = r.Limit
	}
	return out, nil
}

// MarkThreshold: see billing.UsageStore.
func (s *Store) MarkThreshold(ctx context.Context, c billing.Counter, percent int, limit int64) (bool, error) {
	var got []int
	// A mark of limit 0 (made before marks had limits, migration 0014)
	// stands for any limit of its period.
	err := s.conn(ctx).NewRaw(`INSERT INTO revops_usage_thresholds (workspace_id, feature, period_start, percent, lim)
SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM revops_usage_thresholds
WHERE workspace_id = ? AND feature = ? AND period_start = ? AND percent = ? AND lim = 0)
ON CONFLICT (workspace_id, feature, period_start, percent, lim) DO NOTHING RETURNING percent`,
		c.WorkspaceID, c.Feature, ts(c.PeriodStart), percent, limit,
		c.WorkspaceID, c.Feature, ts(c.PeriodStart), percent).Scan(ctx, &got)
	if err != nil {
		return false, fail("mark usage threshold", err, "")
	}
	return len(got) == 1, nil
}
