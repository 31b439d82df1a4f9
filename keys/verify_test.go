package keys_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/benchratio"
	"github.com/revopsdev/revops/internal/testclock"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/scope"
	"github.com/revopsdev/revops/workspace"
)

type fixture struct {
	store *sqlstore.Store
	v     *keys.Verifier
	svc   *keys.Service
	ws    int64
	clock *testclock.Clock
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(tb.TempDir(), "k.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	clk := testclock.New(now)
	clock := clk.Now
	u := &workspace.User{Email: "o@example.com", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateUser(ctx, u); err != nil {
		tb.Fatal(err)
	}
	w := &workspace.Workspace{Name: "W", Slug: "w", Tier: "free", Settings: workspace.Settings{Timezone: "UTC", Locale: "en"}, TOTPPolicy: "off", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateWorkspace(ctx, w, u.ID); err != nil {
		tb.Fatal(err)
	}
	v, err := keys.NewVerifier(st, keys.VerifierConfig{TTL: time.Minute, Now: clock})
	if err != nil {
		tb.Fatal(err)
	}
	cat, _ := scope.NewCatalog("workspaces", "posts")
	svc, err := keys.NewService(st, v, cat, []string{"free", "pro"}, clock)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{store: st, v: v, svc: svc, ws: w.ID, clock: clk}
}

func (f *fixture) key(tb testing.TB) (*keys.Key, string) {
	k, raw, err := f.svc.Create(context.Background(), f.ws, 0, keys.CreateInput{Name: "k"}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return k, raw
}

// countingStore counts KeyByHash calls to prove what the cache saves.
type countingStore struct {
	keys.Store
	mu      sync.Mutex
	lookups int
}

func (c *countingStore) KeyByHash(ctx context.Context, h string) (*keys.Key, error) {
	c.mu.Lock()
	c.lookups++
	c.mu.Unlock()
	return c.Store.KeyByHash(ctx, h)
}

func TestVerifierCachesAndRevokes(t *testing.T) {
	is := is.New(t)
	f := newFixture(t)
	ctx := context.Background()
	cs := &countingStore{Store: f.store}
	v, _ := keys.NewVerifier(cs, keys.VerifierConfig{TTL: time.Minute})
	svc, _ := keys.NewService(cs, v, mustCatalog(), []string{"free"}, nil)
	k, raw, err := svc.Create(ctx, f.ws, 0, keys.CreateInput{Name: "k"}, nil)
	is.NoErr(err)

	for range 10 {
		got, err := v.Verify(ctx, raw)
		is.NoErr(err)
		is.Equal(got.ID, k.ID)
	}
	is.Equal(cs.lookups, 1) // cached after the first

	// Garbage never reaches the store; unknown well-formed keys are looked up once.
	_, err = v.Verify(ctx, "revops_garbage")
	is.True(err != nil)
	is.Equal(cs.lookups, 1)
	unknown := keys.Generate("revops_")
	for range 3 {
		_, err = v.Verify(ctx, unknown)
		is.True(errorsIsUnauthorized(err))
	}
	is.Equal(cs.lookups, 2)

	// Revocation invalidates the cache at once.
	is.NoErr(svc.Revoke(ctx, f.ws, k.ID))
	_, err = v.Verify(ctx, raw)
	is.True(errorsIsUnauthorized(err))
}

func TestVerifierBoundsItsCache(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v, _ := keys.NewVerifier(f.store, keys.VerifierConfig{MaxEntries: 50})
	for range 500 {
		v.Verify(ctx, keys.Generate("revops_"))
	}
	if n := v.Len(); n > 50 {
		t.Fatalf("cache holds %d entries, bound is 50", n)
	}
}

func TestVerifierFlushCoalescesTouches(t *testing.T) {
	is := is.New(t)
	f := newFixture(t)
	ctx := context.Background()
	k, raw := f.key(t)
	for range 20 {
		_, err := f.v.Verify(ctx, raw)
		is.NoErr(err)
	}
	got, _ := f.store.Key(ctx, f.ws, k.ID)
	is.Equal(got.LastUsedAt, nil) // not written per request
	is.NoErr(f.v.Flush(ctx))
	got, _ = f.store.Key(ctx, f.ws, k.ID)
	is.True(got.LastUsedAt != nil && got.LastUsedAt.Equal(f.clock.Now().Truncate(time.Microsecond)))
}

// TestVerifierRejectsExpiredCachedKey: a cached key is refused once it
// expires, on the verifier's clock or at the instant a caller passes
// (VerifyViewAt), whichever decides.
func TestVerifierRejectsExpiredCachedKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	exp := f.clock.Now().Add(time.Minute)
	_, raw, err := f.svc.Create(ctx, f.ws, 0, keys.CreateInput{Name: "k", ExpiresAt: &exp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.v.VerifyViewAt(ctx, raw, exp.Add(-time.Second)); err != nil {
		t.Fatalf("key refused before its expiry: %v", err)
	}
	if _, _, err := f.v.VerifyViewAt(ctx, raw, exp); !errorsIsUnauthorized(err) {
		t.Fatalf("key accepted at its expiry: %v", err)
	}
	if _, err := f.v.Verify(ctx, raw); err != nil { // the verifier's own clock is a minute earlier
		t.Fatalf("key refused on the verifier's clock: %v", err)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := f.v.Verify(ctx, raw); !errorsIsUnauthorized(err) {
		t.Fatalf("expired key accepted from cache: %v", err)
	}
}

// TestInvalidateTakesAnyString: a malformed hash forgets nothing and does
// not panic; the stored (hex) hash forgets the key.
func TestInvalidateTakesAnyString(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, raw, err := f.svc.Create(ctx, f.ws, 0, keys.CreateInput{Name: "k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "zz", strings.Repeat("a", 63), strings.Repeat("g", 64), strings.Repeat("ab", 40)} {
		f.v.Invalidate(bad)
	}
	if f.v.Len() != 1 {
		t.Fatalf("a malformed hash forgot a key: %d cached", f.v.Len())
	}
	f.v.Invalidate(k.Hash)
	if f.v.Len() != 0 {
		t.Fatalf("the key's hash did not forget it: %d cached", f.v.Len())
	}
}

func errorsIsUnauthorized(err error) bool {
	e, ok := err.(*core.Error)
	return ok && e.Code == core.CodeUnauthorized
}

func mustCatalog() *scope.Catalog {
	c, _ := scope.NewCatalog("workspaces", "posts")
	return c
}

// BenchmarkVerify compares verification with a bare SHA-256 + map lookup
// timed in the same run; x_baseline is the ratio.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	k, raw := f.key(b)
	bare := map[[32]byte]*keys.Key{sha256.Sum256([]byte(raw)): k}
	baseline := func() {
		if bare[sha256.Sum256([]byte(raw))] == nil {
			b.Fatal("miss")
		}
	}
	b.Run("cached", func(b *testing.B) {
		f.v.Verify(ctx, raw)
		for b.Loop() {
			if _, err := f.v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
		benchratio.Report(b, baseline)
	})
	b.Run("uncached_sqlite", func(b *testing.B) {
		h := keys.Hash(raw)
		for b.Loop() {
			f.v.Invalidate(h)
			if _, err := f.v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
		benchratio.Report(b, baseline)
	})
	b.Run("garbage_rejected", func(b *testing.B) {
		bad := "revops_" + strings.Repeat("A", len(raw)-len("revops_"))
		for b.Loop() {
			if _, err := f.v.Verify(ctx, bad); err == nil {
				b.Fatal("accepted")
			}
		}
		benchratio.Report(b, baseline)
	})
}

// pausingStore blocks KeyByHash after its read until released, to race a
// revocation against an in-flight verification.
type pausingStore struct {
	keys.Store
	read, release chan struct{}
}

func (p *pausingStore) KeyByHash(ctx context.Context, h string) (*keys.Key, error) {
	k, err := p.Store.KeyByHash(ctx, h)
	if p.read != nil {
		p.read <- struct{}{}
		<-p.release
	}
	return k, err
}

func TestRevocationRacingVerifyIsNotCached(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ps := &pausingStore{Store: f.store}
	v, _ := keys.NewVerifier(ps, keys.VerifierConfig{TTL: time.Hour})
	svc, _ := keys.NewService(ps, v, mustCatalog(), []string{"free"}, nil)
	k, raw, err := svc.Create(ctx, f.ws, 0, keys.CreateInput{Name: "k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps.read, ps.release = make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() { _, err := v.Verify(ctx, raw); done <- err }()
	<-ps.read // the verification has read the still-active row
	ps.read = nil
	if err := svc.Revoke(ctx, f.ws, k.ID); err != nil {
		t.Fatal(err)
	}
	close(ps.release)
	<-done // it may succeed: it started before the revocation
	if _, err := v.Verify(ctx, raw); !errorsIsUnauthorized(err) {
		t.Fatalf("revoked key accepted from a cache filled by a racing lookup: %v", err)
	}
}

type failingTouch struct {
	keys.Store
	fail bool
}

func (f *failingTouch) TouchKeys(ctx context.Context, m map[int64]time.Time) error {
	if f.fail {
		return context.DeadlineExceeded
	}
	return f.Store.TouchKeys(ctx, m)
}

func TestFlushKeepsBatchOnFailure(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ft := &failingTouch{Store: f.store, fail: true}
	v, _ := keys.NewVerifier(ft, keys.VerifierConfig{})
	k, raw := f.key(t)
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if v.Flush(ctx) == nil {
		t.Fatal("flush should fail")
	}
	ft.fail = false
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Key(ctx, f.ws, k.ID); got.LastUsedAt == nil {
		t.Fatal("the failed batch was lost")
	}
}
