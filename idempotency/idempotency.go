// Package idempotency keeps the results of requests sent with an
// Idempotency-Key, so that a retried request is answered, not run again.
//
// A key lives in a scope (the workspace and the principal) and goes
// through two states: claimed, while the first request runs, and complete,
// holding its response until the record expires. A claim carries a random
// token and a lock deadline: the request that holds it completes or
// releases it; a claim whose deadline has passed is stale (its process
// died) and the next retry takes it over. So a request is run again only
// when no response was recorded: never zero times, never twice.
package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// MaxKeyLen is the longest Idempotency-Key accepted.
const MaxKeyLen = 255

// Record is one key's state.
type Record struct {
	Scope       string // workspace and principal, e.g. "w12:k34"
	Key         string
	Fingerprint string // of the request that claimed the key
	Claim       string // token of the running request; "" once complete
	LockedUntil time.Time
	Status      int
	Header      map[string][]string
	Body        []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// InFlight reports whether the request that claimed the key still runs.
func (r *Record) InFlight() bool { return r.Claim != "" }

// Store persists records. Contract, checked by storetest:
//   - Claim inserts rec (with rec.Claim set) unless its (Scope, Key) holds a
//     live record, and returns nil; a record that expired (ExpiresAt ≤ now)
//     or whose claim is stale (LockedUntil ≤ now) is replaced. Otherwise it
//     changes nothing and returns the live record. It is atomic: of
//     concurrent claims exactly one succeeds.
//   - Complete stores the response on the record only while it is still
//     claimed by claim, and reports whether it was.
//   - Release deletes the record only while it is claimed by claim.
//   - DeleteExpired removes records with ExpiresAt ≤ now (claimed or not)
//     and returns how many.
type Store interface {
	ClaimIdempotencyKey(ctx context.Context, rec *Record, now time.Time) (*Record, error)
	CompleteIdempotencyKey(ctx context.Context, scope, key, claim string, status int, header map[string][]string, body []byte) (bool, error)
	ReleaseIdempotencyKey(ctx context.Context, scope, key, claim string) error
	DeleteExpiredIdempotencyKeys(ctx context.Context, now time.Time) (int, error)
}

// ErrInvalidKey is returned by ValidKey.
var ErrInvalidKey = errors.New("The Idempotency-Key header must be 1 to 255 printable ASCII characters.")

// ValidKey checks a key: 1–255 printable ASCII characters (space to ~).
func ValidKey(k string) error {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return ErrInvalidKey
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return ErrInvalidKey
		}
	}
	return nil
}

// Fingerprint identifies a request: method, path (with its query) and body.
func Fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// NewClaim returns a fresh claim token.
func NewClaim() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
