package keys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revopsdev/revops/core"
)

// Verifier authenticates presented keys. It caches lookups (hits and misses)
// for TTL so the hot path does no I/O, bounds the cache to MaxEntries, and
// coalesces last-use writes into one batch per flush.
type Verifier struct {
	store      Store
	prefix     string
	ttl        time.Duration
	maxEntries int
	now        func() time.Time
	view       func(*Key) any

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]cached // by the hash's bytes: no hex per request
	// gen counts invalidations; a lookup that raced one is not cached, so a
	// row read before a revocation can never be cached after it.
	gen atomic.Uint64

	touchMu sync.Mutex
	pending map[int64]time.Time
}

type cached struct {
	key     *Key // nil: not found
	view    any  // Config.View of key
	expires time.Time
}

// DefaultCacheTTL is how long a verified key is trusted without a read.
const DefaultCacheTTL = 10 * time.Second

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Prefix string
	// TTL bounds how long another instance may keep honouring a key revoked
	// elsewhere; revocations in this process take effect at once. Default
	// DefaultCacheTTL.
	TTL time.Duration
	// MaxEntries bounds the cache. Default 100,000.
	MaxEntries int
	Now        func() time.Time
	// View, if set, derives a caller's read-only view of a key (auth's
	// principal) once per cache fill; VerifyView returns it with the key.
	View func(*Key) any
}

// NewVerifier returns a Verifier over store.
func NewVerifier(store Store, c VerifierConfig) (*Verifier, error) {
	if store == nil {
		return nil, errors.New("keys: NewVerifier needs a Store")
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if err := ValidatePrefix(c.Prefix); err != nil {
		return nil, err
	}
	if c.TTL <= 0 {
		c.TTL = DefaultCacheTTL
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 100_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Verifier{store: store, prefix: c.Prefix, ttl: c.TTL, maxEntries: c.MaxEntries, now: c.Now, view: c.View,
		cache: map[[sha256.Size]byte]cached{}, pending: map[int64]time.Time{}}, nil
}

// Verify returns the key for raw if it is well-formed, known, not revoked and
// not expired at this instant. Every failure is the same unauthorized error.
// The key returned is shared with the cache: callers must not modify it.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Key, error) {
	k, _, err := v.VerifyView(ctx, raw)
	return k, err
}

// VerifyView is Verify also returning the key's view (nil without
// VerifierConfig.View), shared with the cache like the key.
func (v *Verifier) VerifyView(ctx context.Context, raw string) (*Key, any, error) {
	return v.VerifyViewAt(ctx, raw, v.now())
}

// VerifyViewAt is VerifyView at now, a time the caller has already read
// (a request's instant): it reads no clock itself.
func (v *Verifier) VerifyViewAt(ctx context.Context, raw string, now time.Time) (*Key, any, error) {
	// The shape first, so garbage costs no hash; the checksum only when the
	// cache does not know the key (a hit is a stored key's exact hash).
	if len(raw) != len(v.prefix)+bodyLen+checksumLen || !strings.HasPrefix(raw, v.prefix) {
		return nil, nil, core.Unauthorized()
	}
	var rb [96]byte // keys are shorter: the copy stays on the stack
	sum := sha256.Sum256(append(rb[:0], raw...))
	v.mu.RLock()
	c, ok := v.cache[sum]
	v.mu.RUnlock()
	if !ok || !now.Before(c.expires) {
		if Parse(v.prefix, raw) != nil {
			return nil, nil, core.Unauthorized()
		}
		gen := v.gen.Load()
		k, err := v.store.KeyByHash(ctx, hex.EncodeToString(sum[:]))
		switch {
		case errors.Is(err, core.ErrNotFound):
			k = nil
		case err != nil:
			return nil, nil, err
		}
		c = cached{key: k, expires: now.Add(v.ttl)}
		if k != nil && v.view != nil {
			c.view = v.view(k)
		}
		v.put(sum, c, gen)
	}
	if c.key == nil {
		return nil, nil, core.Unauthorized()
	}
	if st := c.key.Status(now); st == StatusExpired || st == StatusRevoked {
		return nil, nil, core.Unauthorized()
	}
	v.touchMu.Lock()
	v.pending[c.key.ID] = now
	v.touchMu.Unlock()
	return c.key, c.view, nil
}

func (v *Verifier) put(h [sha256.Size]byte, c cached, gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gen.Load() != gen {
		return
	}
	if len(v.cache) >= v.maxEntries {
		now := v.now()
		for k, e := range v.cache {
			if !now.Before(e.expires) {
				delete(v.cache, k)
			}
		}
		// Still full: drop an arbitrary tenth; map order is random enough.
		for k := range v.cache {
			if len(v.cache) < v.maxEntries*9/10 {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[h] = c
}

// Len is the number of cached lookups.
func (v *Verifier) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.cache)
}

// Invalidate forgets a key by hash (hex, as stored), so its next use reads
// the store.
func (v *Verifier) Invalidate(hash string) {
	var h [sha256.Size]byte
	ok := len(hash) == 2*sha256.Size
	if ok {
		_, err := hex.Decode(h[:], []byte(hash))
		ok = err == nil
	}
	v.mu.Lock()
	v.gen.Add(1) // even for a malformed hash: no lookup racing this is cached
	if ok {
		delete(v.cache, h)
	}
	v.mu.Unlock()
}

// InvalidateWorkspace forgets every cached key of a workspace.
func (v *Verifier) InvalidateWorkspace(workspaceID int64) {
	v.mu.Lock()
	v.gen.Add(1)
	for h, c := range v.cache {
		if c.key != nil && c.key.WorkspaceID == workspaceID {
			delete(v.cache, h)
		}
	}
	v.mu.Unlock()
}

// Flush writes the last-use times gathered since the previous flush.
func (v *Verifier) Flush(ctx context.Context) error {
	v.touchMu.Lock()
	batch := v.pending
	v.pending = map[int64]time.Time{}
	v.touchMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := v.store.TouchKeys(ctx, batch); err != nil {
		v.touchMu.Lock() // keep it for the next flush; newer uses win
		for id, t := range batch {
			if cur, ok := v.pending[id]; !ok || cur.Before(t) {
				v.pending[id] = t
			}
		}
		v.touchMu.Unlock()
		return err
	}
	return nil
}

// Run flushes last-use times every interval (so each key is written at most
// once per interval) until ctx ends, then flushes once more.
func (v *Verifier) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := v.Flush(context.WithoutCancel(ctx)); err != nil && onErr != nil {
				onErr(err)
			}
			return
		case <-t.C:
			if err := v.Flush(ctx); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
