package token_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/revopsdev/revops/token"
)

func key(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeyRotation: a retired key keeps verifying its tokens until they have
// all expired, and is published until then; the new key signs.
func TestKeyRotation(t *testing.T) {
	now := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	old, next := key(t), key(t)
	s1, err := token.NewSigner(token.Config{Keys: []token.Key{{Private: old}}, Issuer: "revops", TTL: 15 * time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s1.Issue(token.Claims{Subject: "7", Session: 1, Scope: "*"})
	if err != nil {
		t.Fatal(err)
	}
	// Rotate five minutes later: next signs, old is retired now.
	now = now.Add(5 * time.Minute)
	s2, err := token.NewSigner(token.Config{Keys: []token.Key{{Private: old, RetiredAt: now}, {Private: next}}, Issuer: "revops", TTL: 15 * time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s2.Verify(tok); err != nil || c.UserID() != 7 {
		t.Fatalf("a token of the retired key: %v %v, want it valid until it expires", c, err)
	}
	if n := len(s2.JWKS()); n != 2 {
		t.Fatalf("JWKS has %d keys during the overlap, want 2", n)
	}
	fresh, _, _ := s2.Issue(token.Claims{Subject: "7", Session: 1})
	if !strings.Contains(mustHeader(t, fresh), token.KeyID(next.Public().(ed25519.PublicKey))) {
		t.Fatal("the new key does not sign")
	}
	// Once every token of the old key has expired, it is gone.
	now = now.Add(16 * time.Minute)
	if _, err := s2.Verify(tok); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("old token after expiry: %v", err)
	}
	if ks := s2.JWKS(); len(ks) != 1 || ks[0].Kid != token.KeyID(next.Public().(ed25519.PublicKey)) {
		t.Fatalf("JWKS after the overlap: %+v, want only the new key", ks)
	}
	// A signer that does not know a key refuses its tokens.
	s3, _ := token.NewSigner(token.Config{Keys: []token.Key{{Private: key(t)}}, Issuer: "revops", TTL: time.Hour, Now: clock})
	if _, err := s3.Verify(fresh); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("a token of an unknown key: %v", err)
	}
	// Issuer mismatch.
	s4, _ := token.NewSigner(token.Config{Keys: []token.Key{{Private: next}}, Issuer: "other", TTL: time.Hour, Now: clock})
	if _, err := s4.Verify(fresh); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("a token of another issuer: %v", err)
	}
}

func TestNewSignerNeedsAnActiveKey(t *testing.T) {
	now := func() time.Time { return time.Unix(0, 0) }
	for _, cfg := range []token.Config{
		{Issuer: "x", TTL: time.Minute, Now: now},
		{Keys: []token.Key{{Private: key(t), RetiredAt: time.Unix(1, 0)}}, Issuer: "x", TTL: time.Minute, Now: now},
		{Keys: []token.Key{{Private: ed25519.PrivateKey("short")}}, Issuer: "x", TTL: time.Minute, Now: now},
	} {
		if _, err := token.NewSigner(cfg); err == nil {
			t.Errorf("NewSigner(%+v) accepted", cfg)
		}
	}
}

func mustHeader(t *testing.T, tok string) string {
	h, _, _ := strings.Cut(tok, ".")
	b, err := b64dec(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
