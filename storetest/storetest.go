// Package storetest is the conformance suite every revops store adapter must
// pass: it exercises every method of workspace.Store and keys.Store, every
// error contract written on those interfaces, list parameters and tenant
// isolation. An adapter runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store {
//			s := openFreshMigratedStore(t) // closed by t.Cleanup
//			return s
//		})
//	}
//
// newStore is called once per subtest and must return an empty, migrated
// store that no other subtest shares: subtests run in parallel.
//
// Beyond the interface comments, the suite pins down these conventions (the
// HTTP layer relies on them):
//   - times round-trip with at least microsecond precision and are returned
//     in UTC; Create* methods leave in the struct exactly what reads return;
//   - lists order by id (members: user id) unless sorted, break ties by that
//     id ascending, and sort NULL values (keys' last_used_at, expires_at)
//     last in either direction; created/updated filters are strict (after:
//     >, before: <); search is a case-insensitive substring match in which
//     "%" and "_" are literal;
//   - a reference to a missing workspace or user is not found;
//   - RotateKey on a revoked key is not found (revoked keys are invisible);
//     on an already rotated key, a conflict.
//   - webhooks: a delivery to an endpoint of another workspace (or none)
//     is not found and CreateWebhookEvent stores nothing; listing the
//     deliveries of another workspace's endpoint is not found; update fns
//     cannot change an ID or WorkspaceID; FinishWebhookAttempts compares
//     leases at the store's time precision.
//   - billing: a binding of another workspace is not found; the default
//     binding cannot be removed (conflict); posts on one account are
//     serial (no overdraft, one transaction per idempotency key under
//     races), and every transaction is two entries summing to zero.
//   - login: a web session belongs to exactly one login session of its own
//     user; ListWebSessions and ListTokenSessions hide revoked and expired
//     ones (a token session lives by its unused refresh token); SetMemberRole
//     changes a role only from the expected one and never leaves a
//     workspace without an owner, even under races.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/idempotency"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/pixel"
	"github.com/revopsdev/revops/token"
	"github.com/revopsdev/revops/twofactor"
	"github.com/revopsdev/revops/webhooks"
	"github.com/revopsdev/revops/workspace"
)

// Store is what an adapter under test implements.
type Store interface {
	workspace.Store
	keys.Store
	idempotency.Store
	pixel.Store
	webhooks.Store
	billing.UsageStore
	billing.AccountStore
	billing.SubscriptionStore
	audit.Store
	login.Store
	token.KeyStore
	twofactor.Store
	login.WebSessionStore
}

type test struct {
	name string
	fn   func(e *env)
}

// tests is every check of the suite, in the order they are reported.
func tests() []test {
	var all []test
	all = append(all, workspaceTests()...)
	all = append(all, memberTests()...)
	all = append(all, invitationTests()...)
	all = append(all, joinCodeTests()...)
	all = append(all, keyTests()...)
	all = append(all, isolationTests()...)
	all = append(all, idempotencyTests()...)
	all = append(all, pixelTests()...)
	all = append(all, webhookTests()...)
	all = append(all, meteringTests()...)
	all = append(all, billingAccountTests()...)
	all = append(all, billingPaymentTests()...)
	all = append(all, auditTests()...)
	all = append(all, loginTests()...)
	all = append(all, totpTests()...)
	all = append(all, webSessionTests()...)
	all = append(all, userTests()...)
	return all
}

// Run runs the suite, one parallel subtest per check, each on a store from
// newStore.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	for _, tc := range tests() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.fn(&env{t: t, s: s, ctx: t.Context()})
		})
	}
}

// base is the suite's reference instant; every time it writes has at most
// microsecond precision unless a test is about precision.
var base = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func ptr[T any](v T) *T { return &v }

// env is one subtest's store with fixture builders and assertions.
type env struct {
	t   *testing.T
	s   Store
	ctx context.Context

	mu  sync.Mutex
	seq int
}

func (e *env) next() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return e.seq
}

// hash returns a fresh 64-hex-digit value, like a SHA-256.
func (e *env) hash() string { return fmt.Sprintf("%064x", 0xabc000+e.next()) }

func (e *env) must(err error, what string) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

func (e *env) user(name string) *workspace.User {
	e.t.Helper()
	u := &workspace.User{Email: name + "@example.test", Name: "Name " + name}
	e.must(e.s.CreateUser(e.ctx, u), "CreateUser "+name)
	return u
}

func (e *env) workspace(slug string, ownerID int64, mods ...func(*workspace.Workspace)) *workspace.Workspace {
	e.t.Helper()
	w := &workspace.Workspace{
		Name: "Workspace " + slug, Slug: slug, Tier: "free",
		Settings:   workspace.Settings{Timezone: "Europe/London", Locale: "en_GB"},
		TOTPPolicy: workspace.TOTPOptional,
	}
	for _, m := range mods {
		m(w)
	}
	e.must(e.s.CreateWorkspace(e.ctx, w, ownerID), "CreateWorkspace "+slug)
	return w
}

func (e *env) addMember(workspaceID, userID int64, role string) *workspace.Member {
	e.t.Helper()
	m := &workspace.Member{WorkspaceID: workspaceID, UserID: userID, Role: role}
	e.must(e.s.AddMember(e.ctx, m), "AddMember")
	return m
}

func (e *env) key(workspaceID, userID int64, mods ...func(*keys.Key)) *keys.Key {
	e.t.Helper()
	n := e.next()
	k := &keys.Key{
		WorkspaceID: workspaceID, UserID: userID,
		Name: fmt.Sprintf("key%03d", n), Prefix: fmt.Sprintf("revops_%03d", n), Hash: e.hash(),
		Scopes: []string{"read", "webhooks:write"},
	}
	for _, m := range mods {
		m(k)
	}
	e.must(e.s.CreateKey(e.ctx, k), "CreateKey "+k.Name)
	return k
}

func (e *env) invitation(workspaceID int64, email string, mods ...func(*workspace.Invitation)) *workspace.Invitation {
	e.t.Helper()
	inv := &workspace.Invitation{
		WorkspaceID: workspaceID, Email: email, Role: "member", TokenHash: e.hash(),
		ExpiresAt: at(7 * 24 * time.Hour),
	}
	for _, m := range mods {
		m(inv)
	}
	e.must(e.s.CreateInvitation(e.ctx, inv), "CreateInvitation "+email)
	return inv
}

func (e *env) joinCode(workspaceID int64, mods ...func(*workspace.JoinCode)) *workspace.JoinCode {
	e.t.Helper()
	h := e.hash()
	c := &workspace.JoinCode{WorkspaceID: workspaceID, CodeHash: h, Hint: h[len(h)-4:], Role: "member"}
	for _, m := range mods {
		m(c)
	}
	e.must(e.s.CreateJoinCode(e.ctx, c), "CreateJoinCode")
	return c
}

// ---- assertions ----

func (e *env) notFound(err error, what string) {
	e.t.Helper()
	if !errors.Is(err, core.ErrNotFound) {
		e.t.Errorf("%s: got error %v, want one that errors.Is core.ErrNotFound", what, err)
	}
}

func (e *env) conflict(err error, what string) {
	e.t.Helper()
	if !errors.Is(err, core.ErrConflict) {
		e.t.Errorf("%s: got error %v, want one that errors.Is core.ErrConflict", what, err)
	}
}

// same reports every difference between got and want, comparing times with
// Equal (and requiring got's times to be UTC) and nil slices as empty.
func (e *env) same(what string, got, want any) {
	e.t.Helper()
	var diffs []string
	diff(reflect.ValueOf(got), reflect.ValueOf(want), "", &diffs)
	if len(diffs) > 0 {
		e.t.Errorf("%s differs:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

var timeType = reflect.TypeFor[time.Time]()

func diff(got, want reflect.Value, path string, out *[]string) {
	if !got.IsValid() || !want.IsValid() {
		if got.IsValid() != want.IsValid() {
			*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, got, want))
		}
		return
	}
	if got.Type() == timeType {
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) {
			*out = append(*out, fmt.Sprintf("%s: got %s, want %s", path, g.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano)))
		} else if !g.IsZero() && g.Location() != time.UTC {
			*out = append(*out, fmt.Sprintf("%s: got %s, want it in UTC", path, g))
		}
		return
	}
	switch got.Kind() {
	case reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				*out = append(*out, fmt.Sprintf("%s: got %s, want %s", path, show(got), show(want)))
			}
			return
		}
		diff(got.Elem(), want.Elem(), path, out)
	case reflect.Struct:
		for i := range got.NumField() {
			name := got.Type().Field(i).Name
			p := name
			if path != "" {
				p = path + "." + name
			}
			diff(got.Field(i), want.Field(i), p, out)
		}
	case reflect.Slice:
		if got.Len() != want.Len() {
			*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, got.Interface(), want.Interface()))
			return
		}
		for i := range got.Len() {
			diff(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: got %#v, want %#v", path, got.Interface(), want.Interface()))
		}
	}
}

func show(v reflect.Value) string {
	if v.IsNil() {
		return "nil"
	}
	if t, ok := v.Elem().Interface().(time.Time); ok {
		return t.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%v", v.Elem().Interface())
}

// recent requires t to be a creation time filled in "now" (within a minute
// of the test's clock, in UTC).
func (e *env) recent(what string, t time.Time) {
	e.t.Helper()
	if d := time.Since(t); d < -time.Minute || d > time.Minute {
		e.t.Errorf("%s = %s, want about now", what, t)
	}
	if t.Location() != time.UTC {
		e.t.Errorf("%s = %s, want UTC", what, t)
	}
}

// page is a shorthand for list parameters.
func page(n, perPage int, sorts ...core.Sort) core.ListParams {
	return core.ListParams{Page: n, PerPage: perPage, Sort: sorts}
}

func asc(field string) core.Sort  { return core.Sort{Field: field} }
func desc(field string) core.Sort { return core.Sort{Field: field, Desc: true} }

// parallel runs fn n times at once (released together) and returns the
// errors by index.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return errs
}

// oneWins checks that exactly one of errs is nil and that every other
// matches loser (core.ErrConflict, core.ErrNotFound…); what names the
// contested action in failures.
func (e *env) oneWins(errs []error, loser error, what string) {
	e.t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, loser):
			e.t.Errorf("a losing %s: %v, want %v", what, err, loser)
		}
	}
	if wins != 1 {
		e.t.Fatalf("%d concurrent %ss succeeded, want exactly 1", wins, what)
	}
}
