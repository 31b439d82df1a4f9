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
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// MaxKeyLen is the longest Idempotency-Key accepted.
const MaxKeyLen = 255

// Record is one key's state.
type Record struct {
	Scope       string // workspace and principal, e.g. "w12:k34"
	Key         string // revops files records under StoredKey(the Idempotency-Key)
	Fingerprint string // of the request that claimed the key
	Claim       string // token of the running request; "" once complete
	LockedUntil time.Time
	Status      int
	Header      map[string][]string // revops keeps the header inside Body (nil here)
	Body        []byte              // revops keeps the response Sealed
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

// Fingerprint identifies a request: method, path (with its query) and
// body, keyed by the Idempotency-Key so that what the store keeps is no
// plain hash of the body (a login's password, say) to guess against.
func Fingerprint(key, method, path string, body []byte) string {
	h := hmac.New(sha256.New, secret(key))
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// A recorded response may hold what was meant to be shown once: a new API
// key, a webhook secret, a session cookie. So the store never gets it in
// the clear: the record is filed under a digest of the Idempotency-Key
// (StoredKey) and the response is sealed with a key derived from the
// Idempotency-Key itself (Seal), which only the client holds. A random key
// (a UUID, as clients are told to use) makes the records unreadable to
// anyone who reads the store.

// StoredKey is what the store keeps in place of an Idempotency-Key.
func StoredKey(key string) string {
	sum := sha256.Sum256([]byte("revops idempotency key\x00" + key))
	return hex.EncodeToString(sum[:])
}

// secret is the Idempotency-Key as key material: a digest of it, as long as
// HMAC and HKDF want (a key may be one character), unlike StoredKey.
func secret(key string) []byte {
	sum := sha256.Sum256([]byte("revops idempotency secret\x00" + key))
	return sum[:]
}

// ErrSealed is returned by Open for a record that does not open with the
// given key and scope.
var ErrSealed = errors.New("idempotency: the recorded response does not open with this key")

func sealer(scope, key string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, secret(key), nil, "revops idempotency response\x00"+scope, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block) // the nonce leads the sealed bytes
}

// Seal encrypts a response's header and body for the record of key in
// scope: a random nonce, then the sealed header length, header JSON and
// body. The
// status, which the store keeps beside it, is authenticated with them.
func Seal(scope, key string, status int, header map[string][]string, body []byte) ([]byte, error) {
	aead, err := sealer(scope, key)
	if err != nil {
		return nil, err
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, 0, binary.MaxVarintLen64+len(hj)+len(body))
	plain = binary.AppendUvarint(plain, uint64(len(hj)))
	plain = append(append(plain, hj...), body...)
	return aead.Seal(nil, nil, plain, sealedFor(scope, status)), nil
}

// sealedFor is what a seal is bound to besides its key: the record's scope
// and its status.
func sealedFor(scope string, status int) []byte {
	return strconv.AppendInt([]byte(scope+"\x00"), int64(status), 10)
}

// Open reverses Seal.
func Open(scope, key string, status int, sealed []byte) (map[string][]string, []byte, error) {
	aead, err := sealer(scope, key)
	if err != nil {
		return nil, nil, err
	}
	plain, err := aead.Open(nil, nil, sealed, sealedFor(scope, status))
	if err != nil {
		return nil, nil, ErrSealed
	}
	hl, w := binary.Uvarint(plain)
	if w <= 0 || hl > uint64(len(plain)-w) {
		return nil, nil, ErrSealed
	}
	var header map[string][]string
	if err := json.Unmarshal(plain[w:w+int(hl)], &header); err != nil {
		return nil, nil, ErrSealed
	}
	return header, plain[w+int(hl):], nil
}

// NewClaim returns a fresh claim token.
func NewClaim() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
