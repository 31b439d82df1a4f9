package storetest

import (
	"reflect"
	"sync"
	"time"

	"github.com/revopsdev/revops/idempotency"
)

func idempotencyTests() []test {
	return []test{
		{"Idempotency/ClaimCompleteReplay", testIdemClaimComplete},
		{"Idempotency/ReleaseAndStale", testIdemReleaseStale},
		{"Idempotency/Expiry", testIdemExpiry},
		{"Idempotency/ConcurrentClaims", testIdemConcurrent},
	}
}

func idemRec(scope, key, fp string, now time.Time) *idempotency.Record {
	return &idempotency.Record{Scope: scope, Key: key, Fingerprint: fp, Claim: idempotency.NewClaim(),
		LockedUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
}

func (e *env) claim(rec *idempotency.Record, now time.Time) *idempotency.Record {
	e.t.Helper()
	got, err := e.s.ClaimIdempotencyKey(e.ctx, rec, now)
	e.must(err, "ClaimIdempotencyKey")
	return got
}

func testIdemClaimComplete(e *env) {
	now := base
	a := idemRec("w1:k1", "key-1", "fp-a", now)
	if got := e.claim(a, now); got != nil {
		e.t.Fatalf("first claim returned a record %+v, want nil (claimed)", got)
	}
	got := e.claim(idemRec("w1:k1", "key-1", "fp-b", now), now)
	if got == nil || !got.InFlight() || got.Fingerprint != "fp-a" || got.Claim != a.Claim {
		e.t.Fatalf("second claim while the first runs: %+v, want the in-flight record of fp-a", got)
	}
	if other := e.claim(idemRec("w2:k1", "key-1", "fp-a", now), now); other != nil {
		e.t.Fatal("the same key in another scope was not independent")
	}
	ok, err := e.s.CompleteIdempotencyKey(e.ctx, "w1:k1", "key-1", "not-the-claim", 201, nil, []byte("x"))
	if err != nil || ok {
		e.t.Fatalf("complete with a foreign claim: %v %v, want false", ok, err)
	}
	header := map[string][]string{"Content-Type": {"application/json"}, "Location": {"/posts/1"}}
	ok, err = e.s.CompleteIdempotencyKey(e.ctx, "w1:k1", "key-1", a.Claim, 201, header, []byte(`{"id":1}`))
	if err != nil || !ok {
		e.t.Fatalf("complete: %v %v", ok, err)
	}
	got = e.claim(idemRec("w1:k1", "key-1", "fp-a", now), now.Add(time.Hour))
	if got == nil || got.InFlight() || got.Status != 201 || string(got.Body) != `{"id":1}` || !reflect.DeepEqual(got.Header, header) {
		e.t.Fatalf("claim after completion: %+v, want the stored response", got)
	}
	if !got.CreatedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(24*time.Hour)) {
		e.t.Fatalf("times: created %v expires %v", got.CreatedAt, got.ExpiresAt)
	}
	// A completed record cannot be released or completed again.
	e.must(e.s.ReleaseIdempotencyKey(e.ctx, "w1:k1", "key-1", a.Claim), "Release")
	if ok, _ := e.s.CompleteIdempotencyKey(e.ctx, "w1:k1", "key-1", a.Claim, 500, nil, nil); ok {
		e.t.Fatal("a completed record was completed twice")
	}
	if got = e.claim(idemRec("w1:k1", "key-1", "fp-a", now), now); got == nil || got.Status != 201 {
		e.t.Fatalf("after release/complete attempts: %+v, want the 201 kept", got)
	}
}

func testIdemReleaseStale(e *env) {
	now := base
	a := idemRec("s", "k", "fp", now)
	e.claim(a, now)
	e.must(e.s.ReleaseIdempotencyKey(e.ctx, "s", "k", "other"), "Release foreign")
	if got := e.claim(idemRec("s", "k", "fp", now), now); got == nil {
		e.t.Fatal("a foreign release freed the claim")
	}
	e.must(e.s.ReleaseIdempotencyKey(e.ctx, "s", "k", a.Claim), "Release")
	b := idemRec("s", "k", "fp", now)
	if got := e.claim(b, now); got != nil {
		e.t.Fatalf("claim after release: %+v, want claimed", got)
	}
	// b's process dies: its claim is stale once LockedUntil passes.
	if got := e.claim(idemRec("s", "k", "fp", now), b.LockedUntil.Add(-time.Second)); got == nil {
		e.t.Fatal("a live claim was taken over")
	}
	c := idemRec("s", "k", "fp2", b.LockedUntil)
	if got := e.claim(c, b.LockedUntil); got != nil {
		e.t.Fatalf("a stale claim was not taken over: %+v", got)
	}
	if ok, _ := e.s.CompleteIdempotencyKey(e.ctx, "s", "k", b.Claim, 200, nil, nil); ok {
		e.t.Fatal("the dead claim completed after it was taken over")
	}
	if ok, err := e.s.CompleteIdempotencyKey(e.ctx, "s", "k", c.Claim, 200, nil, nil); !ok || err != nil {
		e.t.Fatalf("the new claim could not complete: %v %v", ok, err)
	}
}

func testIdemExpiry(e *env) {
	now := base
	a := idemRec("s", "old", "fp", now)
	e.claim(a, now)
	_, err := e.s.CompleteIdempotencyKey(e.ctx, "s", "old", a.Claim, 200, nil, []byte("1"))
	e.must(err, "Complete")
	e.claim(idemRec("s", "young", "fp", now.Add(time.Hour)), now.Add(time.Hour))
	n, err := e.s.DeleteExpiredIdempotencyKeys(e.ctx, a.ExpiresAt.Add(-time.Second))
	if err != nil || n != 0 {
		e.t.Fatalf("delete before expiry: %d %v", n, err)
	}
	// Expired but not yet deleted: a new claim replaces it.
	later := a.ExpiresAt
	if got := e.claim(idemRec("s", "old", "fp-new", later), later); got != nil {
		e.t.Fatalf("an expired record was replayed: %+v", got)
	}
	n, err = e.s.DeleteExpiredIdempotencyKeys(e.ctx, now.Add(25*time.Hour))
	if err != nil || n != 1 {
		e.t.Fatalf("delete at +25h: %d %v, want 1 (young)", n, err)
	}
}

func testIdemConcurrent(e *env) {
	now := base
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := e.s.ClaimIdempotencyKey(e.ctx, idemRec("s", "race", "fp", now), now)
			if err != nil {
				e.t.Error(err)
				return
			}
			if got == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		e.t.Fatalf("%d of 20 concurrent claims succeeded, want exactly 1", won)
	}
}
