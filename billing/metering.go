package billing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/revopsdev/revops/core"
)

// UsageEvent is one append-only record of usage. Totals are the sum of
// events; an event id is stored once per workspace, so a retried write
// counts once.
type UsageEvent struct {
	WorkspaceID int64
	Feature     string
	// PeriodStart is the start (UTC) of the metered period the event counts
	// in; LevelPeriod for Level features.
	PeriodStart time.Time
	Quantity    int64
	EventID     string
	Metadata    json.RawMessage // a JSON object, or nil
	CreatedAt   time.Time
}

// LevelPeriod is the PeriodStart of Level features, which never reset.
var LevelPeriod = time.Unix(0, 0).UTC()

// Counter names one usage total: a feature of a workspace in a period.
type Counter struct {
	WorkspaceID int64
	Feature     string
	PeriodStart time.Time
}

// ConsumeResult is what UsageStore.ConsumeUsage did.
type ConsumeResult struct {
	Granted bool
	// Duplicate: the event id was already stored; nothing was appended.
	Duplicate bool
	// Used is the counter's usage after the call.
	Used int64
}

// UsageStore keeps usage events and their totals.
type UsageStore interface {
	// AppendUsage stores, in one transaction, the events whose (workspace,
	// event id) is not stored yet, and reports which ones it stored. Events
	// may belong to several workspaces; a missing workspace is not found.
	// fold adds them to their counters in the same transaction (a short
	// lock on each counter); otherwise their sums are appended as one delta
	// per counter, which locks nothing and RollupUsage folds later.
	AppendUsage(ctx context.Context, events []UsageEvent, fold bool) (added []bool, err error)
	// ConsumeUsage appends e only if its counter's usage plus e.Quantity
	// stays within limit (Unlimited: always), atomically with respect to
	// other ConsumeUsage calls on the counter. An event id already stored
	// appends nothing and reports Duplicate, Granted, and the current usage;
	// if that stored event is of another feature or quantity, it is a
	// conflict.
	ConsumeUsage(ctx context.Context, e *UsageEvent, limit int64) (ConsumeResult, error)
	// UsageTotals returns the usage of each counter of one workspace, 0
	// where there is none.
	UsageTotals(ctx context.Context, workspaceID int64, counters []Counter) ([]int64, error)
	// RollupUsage folds up to max deltas into their counters, so totals
	// read fewer rows, and returns how many it folded. Totals do not change.
	RollupUsage(ctx context.Context, max int) (int, error)
	// SetEntitlementOverride sets a workspace's limit of a feature over its
	// plan's; nil removes the override.
	SetEntitlementOverride(ctx context.Context, workspaceID int64, feature string, limit *int64) error
	// EntitlementOverrides returns a workspace's overrides by feature.
	EntitlementOverrides(ctx context.Context, workspaceID int64) (map[string]int64, error)
	// MarkThreshold records that a counter reached percent of limit and
	// reports whether this call was the first to do so; the same percent
	// of another limit (a plan changed mid-period) is another mark.
	MarkThreshold(ctx context.Context, c Counter, percent int, limit int64) (first bool, err error)
}

// TxStore is a UsageStore that can tell whether ctx carries the host's
// open transaction (see sqlstore.Store.RunInTx). Record then writes
// through it, so the usage lands or vanishes with the host's own rows,
// instead of joining other callers' shared write.
type TxStore interface {
	InTx(ctx context.Context) bool
}

// Subject is the workspace usage is checked and counted for.
type Subject struct {
	WorkspaceID int64
	Tier        string
	Timezone    string // IANA name; "" is UTC
}

// Status is where a workspace stands on one feature.
type Status struct {
	Feature   string
	Kind      Kind
	Unit      string
	Used      int64
	Limit     int64 // Unlimited or ≥ 0
	Available int64 // Unlimited when the limit is
	// ResetAt is when a Metered feature's usage starts again from 0.
	ResetAt *time.Time
	// PeriodStart is the start of the current period (LevelPeriod for Level
	// and Flag features).
	PeriodStart time.Time
}

// Percentage is the share of the limit used, rounded to two decimals (0
// for unlimited features).
func (s *Status) Percentage() float64 {
	if s.Limit <= 0 {
		if s.Limit == 0 && s.Used > 0 {
			return 100
		}
		return 0
	}
	return math.Round(float64(s.Used)*10000/float64(s.Limit)) / 100
}

// Decision answers whether a quantity of a feature may be used.
type Decision struct {
	Status
	Allowed bool
	// Duplicate: Consume found the event id already counted.
	Duplicate bool
}

// ReasonLimitExceeded is the reason of a refused Decision (spec 001).
const ReasonLimitExceeded = "LIMIT_EXCEEDED"

// Message explains a refused decision (spec 001: "Post limit exceeded.
// Used: 100, Limit: 100").
func (d *Decision) Message(f Feature) string {
	if f.Kind == Flag {
		return fmt.Sprintf("%s is not included in your plan.", f.Label)
	}
	return fmt.Sprintf("%s limit exceeded. Used: %d, Limit: %d", f.Label, d.Used, d.Limit)
}

// UsageInput is usage to record.
type UsageInput struct {
	Feature  string
	Quantity int64
	// EventID makes the record idempotent: the same id in the same
	// workspace counts once. Generated when empty.
	EventID  string
	Metadata json.RawMessage
}

// Threshold is a usage level crossed for the first time in a period.
type Threshold struct {
	Status
	WorkspaceID int64
	Percent     int
}

// Thresholds are the percentages of a limit that raise OnThreshold.
var Thresholds = []int{80, 100}

// Meter checks entitlements and meters usage exactly.
type Meter struct {
	store UsageStore
	cfg   *Config
	now   func() time.Time
	// OnThreshold is called once per counter and threshold when Record or
	// Consume takes usage to 80% or 100% of the limit.
	OnThreshold func(ctx context.Context, t Threshold)

	batch  batcher // single records
	ingest batcher // bulk calls

	mu        sync.Mutex
	overrides map[int64]overrideEntry
	marked    map[markKey]bool
	lines     map[Counter]*line
}

// line is the in-process queue of consumers of one counter.
type line struct {
	turn    chan struct{} // holds a token while a consumer has its turn
	waiting int
}

// queue makes this process's consumers of a counter take turns before
// they reach the database: there they would all wait on the counter's row
// lock, and a crowd of waiters woken at each commit costs far more than
// the turn itself. Other instances still serialize on the row lock.
func (m *Meter) queue(ctx context.Context, c Counter) (unlock func(), err error) {
	m.mu.Lock()
	l := m.lines[c]
	if l == nil {
		l = &line{turn: make(chan struct{}, 1)}
		m.lines[c] = l
	}
	l.waiting++
	m.mu.Unlock()
	leave := func() {
		m.mu.Lock()
		if l.waiting--; l.waiting == 0 {
			delete(m.lines, c)
		}
		m.mu.Unlock()
	}
	select {
	case l.turn <- struct{}{}:
		return func() { <-l.turn; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

type overrideEntry struct {
	limits map[string]int64
	exp    time.Time
}

type markKey struct {
	c       Counter
	percent int
	limit   int64
}

// overrideTTL bounds how long another instance applies an old override.
const overrideTTL = 10 * time.Second

// NewMeter builds a Meter on a validated Config (see Config.Validate).
func NewMeter(store UsageStore, cfg *Config, now func() time.Time) (*Meter, error) {
	if store == nil || cfg == nil {
		return nil, fmt.Errorf("billing: NewMeter needs a store and a validated config")
	}
	if now == nil {
		now = time.Now
	}
	m := &Meter{store: store, cfg: cfg, now: now, overrides: map[int64]overrideEntry{}, marked: map[markKey]bool{}, lines: map[Counter]*line{}}
	// Single records are written together and folded at once, and their
	// totals are read back once per workspace of the batch, not once per
	// caller: a read per event would cost what the batching saved.
	m.batch = batcher{write: func(ctx context.Context, ev []UsageEvent) ([]bool, []int64, error) {
		added, err := store.AppendUsage(ctx, ev, true)
		if err != nil {
			return nil, nil, err
		}
		return added, m.batchTotals(ctx, ev), nil
	}, parallel: 2, max: 500, limit: 50_000}
	// Bulk calls are written together too: a few large statements at a
	// time insert faster than many callers contending for the same index
	// pages.
	m.ingest = batcher{write: func(ctx context.Context, ev []UsageEvent) ([]bool, []int64, error) {
		added, err := store.AppendUsage(ctx, ev, false)
		return added, nil, err
	}, parallel: 2, max: 5000, limit: 200_000}
	return m, nil
}

// batchTotals reads the total of each event's counter after a batch, with
// one query per workspace. On error it returns nil: the events are
// counted, and each caller reads its own total.
func (m *Meter) batchTotals(ctx context.Context, ev []UsageEvent) []int64 {
	totals := make([]int64, len(ev))
	done := make([]bool, len(ev))
	for i := range ev {
		if done[i] {
			continue
		}
		wid := ev[i].WorkspaceID
		var counters []Counter
		at := map[Counter]int{}
		for j := i; j < len(ev); j++ {
			if ev[j].WorkspaceID != wid {
				continue
			}
			c := Counter{WorkspaceID: wid, Feature: ev[j].Feature, PeriodStart: ev[j].PeriodStart}
			if _, ok := at[c]; !ok {
				at[c] = len(counters)
				counters = append(counters, c)
			}
		}
		got, err := m.store.UsageTotals(ctx, wid, counters)
		if err != nil || len(got) != len(counters) {
			return nil
		}
		for j := i; j < len(ev); j++ {
			if ev[j].WorkspaceID == wid {
				totals[j] = got[at[Counter{WorkspaceID: wid, Feature: ev[j].Feature, PeriodStart: ev[j].PeriodStart}]]
				done[j] = true
			}
		}
	}
	return totals
}

func (m *Meter) feature(key string) (Feature, error) {
	f, ok := m.cfg.Feature(key)
	if !ok {
		return Feature{}, core.Invalid("feature", fmt.Sprintf("Unknown feature %q.", key))
	}
	return f, nil
}

// Limit is a workspace's limit of a feature: its override, else its plan's.
func (m *Meter) Limit(ctx context.Context, s Subject, feature string) (int64, error) {
	ov, err := m.overridesOf(ctx, s.WorkspaceID)
	if err != nil {
		return 0, err
	}
	if v, ok := ov[feature]; ok {
		return v, nil
	}
	return m.cfg.Plans[s.Tier].Limits[feature], nil
}

func (m *Meter) overridesOf(ctx context.Context, wid int64) (map[string]int64, error) {
	now := m.now()
	m.mu.Lock()
	e, ok := m.overrides[wid]
	m.mu.Unlock()
	if ok && now.Before(e.exp) {
		return e.limits, nil
	}
	limits, err := m.store.EntitlementOverrides(ctx, wid)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if len(m.overrides) > 100_000 {
		clear(m.overrides)
	}
	m.overrides[wid] = overrideEntry{limits: limits, exp: now.Add(overrideTTL)}
	m.mu.Unlock()
	return limits, nil
}

// SetOverride gives a workspace its own limit of a feature (nil: back to
// the plan's). This instance applies it at once, others within 10 s.
func (m *Meter) SetOverride(ctx context.Context, workspaceID int64, feature string, limit *int64) error {
	f, err := m.feature(feature)
	if err != nil {
		return err
	}
	if limit != nil && (*limit < Unlimited || (f.Kind == Flag && *limit > 1)) {
		return core.Invalid("limit", "The limit must be ≥ 0 (a flag: 0 or 1) or billing.Unlimited.")
	}
	if err := m.store.SetEntitlementOverride(ctx, workspaceID, feature, limit); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.overrides, workspaceID)
	m.mu.Unlock()
	return nil
}

// PeriodAt returns the start of the period containing now in loc and the
// start of the next one (the reset), both in UTC.
func (f Feature) PeriodAt(now time.Time, loc *time.Location) (start, reset time.Time) {
	if f.Kind != Metered {
		return LevelPeriod, time.Time{}
	}
	t := now.In(loc)
	switch f.Period {
	case Daily:
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		reset = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
	case Yearly:
		start = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, loc)
		reset = time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, loc)
	default:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		reset = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
	}
	return start.UTC(), reset.UTC()
}

func location(tz string) *time.Location {
	if tz == "" {
		return time.UTC
	}
	// LoadLocation reads and parses the zone's file on every call: far too
	// slow for every check, so zones are kept once loaded.
	if loc, ok := locations.Load(tz); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		// Workspace settings are validated on write; a zone removed from
		// the tz database since falls back to UTC rather than failing usage.
		return time.UTC
	}
	locations.Store(tz, loc)
	return loc
}

// locations caches loaded zones by name (a few hundred at most exist).
var locations sync.Map

// periodKey names a period by its calendar date (the local date of its
// start, written as midnight UTC), not by the instant it starts: changing
// the workspace's timezone then keeps counting in the same counter rather
// than starting a fresh one at 0.
func periodKey(start time.Time, loc *time.Location) time.Time {
	if start.Equal(LevelPeriod) {
		return LevelPeriod
	}
	l := start.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)
}

// counter returns the counter of f for s now, and its reset time.
func (m *Meter) counter(s Subject, f Feature) (Counter, *time.Time) {
	loc := location(s.Timezone)
	start, reset := f.PeriodAt(m.now(), loc)
	c := Counter{WorkspaceID: s.WorkspaceID, Feature: f.Key, PeriodStart: periodKey(start, loc)}
	if reset.IsZero() {
		return c, nil
	}
	return c, &reset
}

func status(f Feature, c Counter, reset *time.Time, used, limit int64) Status {
	st := Status{Feature: f.Key, Kind: f.Kind, Unit: f.Unit, Used: used, Limit: limit, ResetAt: reset, PeriodStart: c.PeriodStart}
	switch {
	case limit == Unlimited:
		st.Available = Unlimited
	case f.Kind == Flag:
		st.Available = limit
	default:
		st.Available = max(0, limit-used)
	}
	return st
}

// Check tells whether s may use quantity more of feature, without using it.
func (m *Meter) Check(ctx context.Context, s Subject, feature string, quantity int64) (*Decision, error) {
	f, err := m.feature(feature)
	if err != nil {
		return nil, err
	}
	if quantity < 1 {
		return nil, core.Invalid("quantity", "The quantity must be at least 1.")
	}
	limit, err := m.Limit(ctx, s, feature)
	if err != nil {
		return nil, err
	}
	c, reset := m.counter(s, f)
	var used int64
	if f.Kind != Flag {
		totals, err := m.store.UsageTotals(ctx, s.WorkspaceID, []Counter{c})
		if err != nil {
			return nil, err
		}
		used = totals[0]
	}
	d := &Decision{Status: status(f, c, reset, used, limit)}
	d.Allowed = allowed(f, limit, used, quantity)
	return d, nil
}

func allowed(f Feature, limit, used, quantity int64) bool {
	switch {
	case f.Kind == Flag:
		return limit != 0
	case limit == Unlimited:
		return true
	default:
		return used+quantity <= limit
	}
}

// Consume uses quantity of feature for s if, and only if, the limit allows
// it: concurrent calls never grant more than the limit in total. A non-empty
// eventID makes it idempotent: a retry finds the first grant and counts
// nothing again. A refused call (Allowed false) stores nothing.
func (m *Meter) Consume(ctx context.Context, s Subject, feature string, quantity int64, eventID string) (*Decision, error) {
	f, err := m.feature(feature)
	if err != nil {
		return nil, err
	}
	if f.Kind == Flag {
		return m.Check(ctx, s, feature, 1)
	}
	if quantity < 1 {
		return nil, core.Invalid("quantity", "The quantity must be at least 1.")
	}
	limit, err := m.Limit(ctx, s, feature)
	if err != nil {
		return nil, err
	}
	c, reset := m.counter(s, f)
	e := &UsageEvent{WorkspaceID: s.WorkspaceID, Feature: f.Key, PeriodStart: c.PeriodStart, Quantity: quantity,
		EventID: eventID, CreatedAt: m.now().UTC().Truncate(time.Microsecond)}
	if e.EventID == "" {
		e.EventID = newEventID()
	} else if err := checkEventID(e.EventID); err != nil {
		return nil, err
	}
	// No turn-taking inside a host transaction: it keeps the counter's row
	// lock after ConsumeUsage returns, so a turn waited for while holding
	// it could wait on itself.
	unlock := func() {}
	if ts, ok := m.store.(TxStore); !ok || !ts.InTx(ctx) {
		if unlock, err = m.queue(ctx, c); err != nil {
			return nil, err
		}
	}
	res, err := m.store.ConsumeUsage(ctx, e, limit)
	unlock()
	if err != nil {
		return nil, err
	}
	d := &Decision{Status: status(f, c, reset, res.Used, limit), Allowed: res.Granted, Duplicate: res.Duplicate}
	if res.Granted && !res.Duplicate {
		m.thresholds(ctx, c, &d.Status)
	}
	return d, nil
}

// Record counts usage that happened, whatever the limit (a limit is
// enforced by Check or Consume), and returns the feature's status after it.
// Level features take negative quantities (a post deleted). Concurrent
// calls are written together, a few transactions for many events.
func (m *Meter) Record(ctx context.Context, s Subject, in UsageInput) (*Decision, error) {
	f, c, reset, e, err := m.event(s, in)
	if err != nil {
		return nil, err
	}
	var (
		added []bool
		total *int64
	)
	if m.inHostTx(ctx) {
		added, err = m.store.AppendUsage(ctx, []UsageEvent{e}, true)
	} else {
		var totals []int64
		if added, totals, err = m.batch.add(ctx, []UsageEvent{e}); err == nil && totals != nil {
			total = &totals[0]
		}
	}
	if err != nil {
		return nil, err
	}
	if !added[0] && e.EventID != "" {
		// The id was counted before: a retry of this usage, or a conflict
		// (ConsumeUsage compares, and appends nothing for a stored id).
		if _, err := m.store.ConsumeUsage(ctx, &e, Unlimited); err != nil {
			return nil, err
		}
	}
	limit, err := m.Limit(ctx, s, f.Key)
	if err != nil {
		return nil, err
	}
	if total == nil {
		totals, err := m.store.UsageTotals(ctx, s.WorkspaceID, []Counter{c})
		if err != nil {
			return nil, err
		}
		total = &totals[0]
	}
	d := &Decision{Status: status(f, c, reset, *total, limit), Allowed: true, Duplicate: !added[0]}
	if added[0] {
		m.thresholds(ctx, c, &d.Status)
	}
	return d, nil
}

// Ingest records many usage events of one workspace atomically and reports
// which were new (false: the event id was already counted). It reads no
// totals and raises no thresholds: it is the bulk path. Concurrent calls
// are written together, each whole or not at all.
func (m *Meter) Ingest(ctx context.Context, s Subject, in []UsageInput) ([]bool, error) {
	events := make([]UsageEvent, len(in))
	for i := range in {
		_, _, _, e, err := m.event(s, in[i])
		if err != nil {
			return nil, err
		}
		events[i] = e
	}
	if len(events) == 0 {
		return []bool{}, nil
	}
	if m.inHostTx(ctx) {
		return m.store.AppendUsage(ctx, events, false)
	}
	added, _, err := m.ingest.add(ctx, events)
	return added, err
}

// inHostTx tells whether ctx carries the host's transaction: writes then
// join it, and must not be batched with other callers' writes.
func (m *Meter) inHostTx(ctx context.Context) bool {
	ts, ok := m.store.(TxStore)
	return ok && ts.InTx(ctx)
}

func (m *Meter) event(s Subject, in UsageInput) (Feature, Counter, *time.Time, UsageEvent, error) {
	f, err := m.feature(in.Feature)
	if err != nil {
		return f, Counter{}, nil, UsageEvent{}, err
	}
	switch {
	case f.Kind == Flag:
		return f, Counter{}, nil, UsageEvent{}, core.Invalid("feature", fmt.Sprintf("%q is a flag: it has no usage to record.", f.Key))
	case in.Quantity == 0 || (in.Quantity < 0 && f.Kind == Metered):
		return f, Counter{}, nil, UsageEvent{}, core.Invalid("quantity", "The quantity must be at least 1 (negative only for level features such as posts).")
	}
	if in.EventID != "" {
		if err := checkEventID(in.EventID); err != nil {
			return f, Counter{}, nil, UsageEvent{}, err
		}
	}
	if len(in.Metadata) > 0 && (!json.Valid(in.Metadata) || in.Metadata[0] != '{') {
		return f, Counter{}, nil, UsageEvent{}, core.Invalid("metadata", "The metadata must be a JSON object.")
	}
	c, reset := m.counter(s, f)
	e := UsageEvent{WorkspaceID: s.WorkspaceID, Feature: f.Key, PeriodStart: c.PeriodStart, Quantity: in.Quantity,
		EventID: in.EventID, Metadata: in.Metadata, CreatedAt: m.now().UTC().Truncate(time.Microsecond)}
	if e.EventID == "" {
		e.EventID = newEventID()
	}
	return f, c, reset, e, nil
}

func checkEventID(id string) error {
	if len(id) > 255 {
		return core.Invalid("event_id", "The event_id may not be greater than 255 characters.")
	}
	return nil
}

// newEventID names an event recorded without an id of the caller's.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "use_" + hex.EncodeToString(b[:])
}

// Summary returns s's status on every feature, in declaration order.
func (m *Meter) Summary(ctx context.Context, s Subject) ([]Status, error) {
	ov, err := m.overridesOf(ctx, s.WorkspaceID)
	if err != nil {
		return nil, err
	}
	counters := make([]Counter, len(m.cfg.Features))
	resets := make([]*time.Time, len(m.cfg.Features))
	for i, f := range m.cfg.Features {
		counters[i], resets[i] = m.counter(s, f)
	}
	totals, err := m.store.UsageTotals(ctx, s.WorkspaceID, counters)
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(m.cfg.Features))
	for i, f := range m.cfg.Features {
		limit, ok := ov[f.Key]
		if !ok {
			limit = m.cfg.Plans[s.Tier].Limits[f.Key]
		}
		out[i] = status(f, counters[i], resets[i], totals[i], limit)
	}
	return out, nil
}

// PeriodUsage is a metered feature's usage in one period.
type PeriodUsage struct {
	PeriodStart time.Time
	Used        int64
}

// History returns each metered feature's usage in the current period and
// the n-1 before it, newest first.
func (m *Meter) History(ctx context.Context, s Subject, n int) (map[string][]PeriodUsage, error) {
	loc := location(s.Timezone)
	var counters []Counter
	for _, f := range m.cfg.Features {
		if f.Kind != Metered {
			continue
		}
		at := m.now()
		for range n {
			start, _ := f.PeriodAt(at, loc)
			counters = append(counters, Counter{WorkspaceID: s.WorkspaceID, Feature: f.Key, PeriodStart: periodKey(start, loc)})
			at = start.Add(-time.Nanosecond)
		}
	}
	totals, err := m.store.UsageTotals(ctx, s.WorkspaceID, counters)
	if err != nil {
		return nil, err
	}
	out := map[string][]PeriodUsage{}
	for i, c := range counters {
		out[c.Feature] = append(out[c.Feature], PeriodUsage{PeriodStart: c.PeriodStart, Used: totals[i]})
	}
	return out, nil
}

// thresholds raises OnThreshold for each threshold usage went from below
// to at or above; MarkThreshold makes it once per counter and limit across
// instances (an upgrade mid-period announces the new limit's thresholds).
func (m *Meter) thresholds(ctx context.Context, c Counter, st *Status) {
	if m.OnThreshold == nil || st.Limit <= 0 {
		return
	}
	for _, pct := range Thresholds {
		level := (st.Limit*int64(pct) + 99) / 100 // the smallest usage at pct
		// Not "before < level": callers whose records were written in one
		// batch all see the batch's total. MarkThreshold says who is first.
		if st.Used < level {
			continue
		}
		k := markKey{c, pct, st.Limit}
		m.mu.Lock()
		done := m.marked[k]
		m.mu.Unlock()
		if done {
			continue
		}
		first, err := m.store.MarkThreshold(ctx, c, pct, st.Limit)
		if err != nil {
			continue // a missed notice is better than a failed usage write
		}
		m.mu.Lock()
		if len(m.marked) > 100_000 {
			clear(m.marked)
		}
		m.marked[k] = true
		m.mu.Unlock()
		if first {
			m.OnThreshold(ctx, Threshold{Status: *st, WorkspaceID: c.WorkspaceID, Percent: pct})
		}
	}
}

// Rollup folds the deltas bulk Ingest appends into their counters, all of
// them, so totals read a few rows however much arrives (Platform.Start runs
// it every second).
func (m *Meter) Rollup(ctx context.Context) error {
	for {
		n, err := m.store.RollupUsage(ctx, rollupBatch)
		if err != nil || n < rollupBatch {
			return err
		}
	}
}

const rollupBatch = 5000

// batcher writes concurrent calls together: while a write is in flight,
// new calls queue and the next write takes them all (group commit), up to
// max events. No goroutine runs when nothing is queued.
type batcher struct {
	write    func(context.Context, []UsageEvent) (added []bool, totals []int64, err error)
	parallel int // writes in flight at once
	max      int // events per write; a larger call is written alone
	// limit bounds the events queued: when the database stalls, callers
	// are refused at once (service_unavailable) rather than piling up.
	limit int

	mu       sync.Mutex
	pending  []*batchItem
	queued   int // events queued or being written
	flushing int
}

type batchItem struct {
	events []UsageEvent
	added  []bool
	totals []int64 // each event's counter total after the write; nil: not read
	err    error
	done   chan struct{}
}

func (b *batcher) add(ctx context.Context, events []UsageEvent) ([]bool, []int64, error) {
	it := &batchItem{events: events, done: make(chan struct{})}
	b.mu.Lock()
	if b.queued > 0 && b.queued+len(events) > b.limit {
		b.mu.Unlock()
		return nil, nil, core.E(core.CodeUnavailable, "Usage is arriving faster than it can be stored; nothing was recorded, retry shortly.")
	}
	b.queued += len(events)
	b.pending = append(b.pending, it)
	lead := b.flushing < b.parallel
	if lead {
		b.flushing++
	}
	b.mu.Unlock()
	if lead {
		b.flush(context.WithoutCancel(ctx))
	}
	select {
	case <-it.done:
		return it.added, it.totals, it.err
	case <-ctx.Done():
		// The write may still land; a retry with the same event ids counts once.
		return nil, nil, ctx.Err()
	}
}

func (b *batcher) writeBatch(ctx context.Context, events []UsageEvent) (added []bool, totals []int64, err error) {
	// A panicking store must not leave the batch's callers waiting forever.
	defer func() {
		if v := recover(); v != nil {
			added, totals, err = nil, nil, fmt.Errorf("billing: writing usage panicked: %v", v)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	added, totals, err = b.write(ctx, events)
	if err == nil && (len(added) != len(events) || totals != nil && len(totals) != len(events)) {
		return nil, nil, fmt.Errorf("billing: the usage store answered %d results for %d events", len(added), len(events))
	}
	return added, totals, err
}

// flush writes one batch, then hands what queued meanwhile to a goroutine
// so that the caller leading this batch is not held up by later ones.
func (b *batcher) flush(ctx context.Context) {
	b.mu.Lock()
	if len(b.pending) == 0 { // another leader took them
		b.flushing--
		b.mu.Unlock()
		return
	}
	n, size := 1, len(b.pending[0].events)
	for n < len(b.pending) && size+len(b.pending[n].events) <= b.max {
		size += len(b.pending[n].events)
		n++
	}
	items := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()
	events := items[0].events
	if n > 1 {
		events = make([]UsageEvent, 0, size)
		for _, it := range items {
			events = append(events, it.events...)
		}
	}
	added, totals, err := b.writeBatch(ctx, events)
	if errors.Is(err, core.ErrNotFound) && len(items) > 1 {
		// One bad call (its workspace just deleted) must not fail the
		// others: write each alone, so each caller gets its own answer.
		for _, it := range items {
			it.added, it.totals, it.err = b.writeBatch(ctx, it.events)
			close(it.done)
		}
	} else {
		at := 0
		for _, it := range items {
			k := len(it.events)
			if err != nil {
				it.err = err
			} else {
				it.added = added[at : at+k : at+k]
				if totals != nil {
					it.totals = totals[at : at+k : at+k]
				}
			}
			at += k
			close(it.done)
		}
	}
	b.mu.Lock()
	b.queued -= size // written (or failed) now
	if len(b.pending) == 0 {
		b.flushing--
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.flush(ctx)
}
