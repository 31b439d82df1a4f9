// Package token issues and verifies access tokens: compact JWS (RFC 7515)
// JWTs signed with Ed25519 ("EdDSA", RFC 8037), and publishes the public
// keys as a JWK Set. Verification accepts exactly one algorithm, EdDSA, with
// a key chosen by "kid" from the set: "none", HMAC and RSA tokens never
// reach a verifier, so algorithm confusion is impossible by construction.
package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Key is a signing key. The newest key that is not retired signs; a retired
// key keeps verifying, and stays in the JWK Set, until RetiredAt plus the
// access-token lifetime, when no token it signed can still be valid.
type Key struct {
	Private   ed25519.PrivateKey
	RetiredAt time.Time // zero: active
}

// KeyStore keeps the signing key generated when none is configured, so that
// every instance sharing a store signs and verifies with the same key.
// Contract, checked by storetest: SharedSigningKey stores candidate unless a
// key is already stored and returns the stored key; of concurrent callers
// with different candidates, all get the same one.
type KeyStore interface {
	SharedSigningKey(ctx context.Context, candidate ed25519.PrivateKey) (ed25519.PrivateKey, error)
}

// KeyID is the key's RFC 7638 JWK thumbprint (base64url SHA-256 of its
// canonical JWK), used as "kid".
func KeyID(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

var b64 = base64.RawURLEncoding

// WorkspaceClaim is one membership as of issuance (informational: each
// request checks the membership and role again).
type WorkspaceClaim struct {
	ID   int64  `json:"id"`
	Role string `json:"role"`
}

// Claims are an access token's claims.
type Claims struct {
	Issuer     string           `json:"iss"`
	Subject    string           `json:"sub"` // the user id
	Audience   Audience         `json:"aud,omitempty"`
	IssuedAt   int64            `json:"iat"`
	NotBefore  int64            `json:"nbf"`
	ExpiresAt  int64            `json:"exp"`
	ID         string           `json:"jti"`
	Session    int64            `json:"sid"` // the refresh-token family; revoking it revokes the token
	Scope      string           `json:"scope"`
	Workspaces []WorkspaceClaim `json:"workspaces"`
}

// Audience is "aud": one string or an array of strings (RFC 7519 §4.1.3);
// tokens minted through fosite carry an array, empty when there is none.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// is reports whether the audience is exactly want ("" : none).
func (a Audience) is(want string) bool {
	if want == "" {
		return len(a) == 0
	}
	return len(a) == 1 && a[0] == want
}

// UserID parses Subject.
func (c *Claims) UserID() int64 {
	n, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// Scopes splits Scope.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// Config configures a Signer.
type Config struct {
	Keys     []Key
	Issuer   string
	Audience string
	TTL      time.Duration // access-token lifetime
	Leeway   time.Duration // clock skew tolerated on exp and nbf
	Now      func() time.Time
}

// Signer signs and verifies access tokens.
type Signer struct {
	cfg    Config
	keys   []keyEntry
	signer *keyEntry
}

type keyEntry struct {
	id   string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	ret  time.Time
}

// NewSigner checks cfg. At least one key must be active.
func NewSigner(cfg Config) (*Signer, error) {
	if cfg.TTL <= 0 || cfg.Issuer == "" || cfg.Now == nil {
		return nil, errors.New("token: Config needs a positive TTL, an issuer and a clock")
	}
	s := &Signer{cfg: cfg}
	seen := map[string]bool{}
	for i, k := range cfg.Keys {
		if len(k.Private) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("token: key %d is not an Ed25519 private key (%d bytes, want %d)", i, len(k.Private), ed25519.PrivateKeySize)
		}
		pub := k.Private.Public().(ed25519.PublicKey)
		e := keyEntry{id: KeyID(pub), priv: k.Private, pub: pub, ret: k.RetiredAt}
		if seen[e.id] {
			return nil, fmt.Errorf("token: key %d is listed twice", i)
		}
		seen[e.id] = true
		s.keys = append(s.keys, e)
	}
	for i := range s.keys {
		if s.keys[i].ret.IsZero() {
			s.signer = &s.keys[i]
			break
		}
	}
	if s.signer == nil {
		return nil, errors.New("token: no active signing key: give one Key with a zero RetiredAt")
	}
	return s, nil
}

// TTL is the access-token lifetime.
func (s *Signer) TTL() time.Duration { return s.cfg.TTL }

// Issuer and Audience are the "iss" and "aud" tokens must carry ("" : no aud).
func (s *Signer) Issuer() string   { return s.cfg.Issuer }
func (s *Signer) Audience() string { return s.cfg.Audience }

// verifies reports whether a key still verifies at now.
func (s *Signer) verifies(k *keyEntry, now time.Time) bool {
	return k.ret.IsZero() || now.Before(k.ret.Add(s.cfg.TTL+s.cfg.Leeway))
}

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid"`
}

// Issue signs claims, filling iss, aud, iat, nbf, exp and jti.
func (s *Signer) Issue(c Claims) (string, *Claims, error) {
	now := s.cfg.Now().UTC()
	c.Issuer, c.Audience = s.cfg.Issuer, nil
	if s.cfg.Audience != "" {
		c.Audience = Audience{s.cfg.Audience}
	}
	c.IssuedAt, c.NotBefore, c.ExpiresAt = now.Unix(), now.Unix(), now.Add(s.cfg.TTL).Unix()
	var jti [16]byte
	rand.Read(jti[:])
	c.ID = b64.EncodeToString(jti[:])
	h, err := json.Marshal(header{Alg: "EdDSA", Typ: "JWT", Kid: s.signer.id})
	if err != nil {
		return "", nil, err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", nil, err
	}
	signing := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	sig := ed25519.Sign(s.signer.priv, []byte(signing))
	return signing + "." + b64.EncodeToString(sig), &c, nil
}

// ErrInvalid is every verification failure; callers answer 401 without
// saying which check failed.
var ErrInvalid = errors.New("token: invalid access token")

// Verify checks the token's signature, algorithm, key, issuer, audience and
// time window and returns its claims.
func (s *Signer) Verify(tok string) (*Claims, error) {
	if len(tok) > 8<<10 {
		return nil, ErrInvalid
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, ErrInvalid
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, ErrInvalid
	}
	var h struct {
		Alg  string   `json:"alg"`
		Kid  string   `json:"kid"`
		Crit []string `json:"crit"`
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != "EdDSA" || len(h.Crit) > 0 {
		return nil, ErrInvalid
	}
	now := s.cfg.Now().UTC()
	var key *keyEntry
	for i := range s.keys {
		if s.keys[i].id == h.Kid && s.verifies(&s.keys[i], now) {
			key = &s.keys[i]
		}
	}
	if key == nil {
		return nil, ErrInvalid
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(key.pub, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, ErrInvalid
	}
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, ErrInvalid
	}
	var c Claims
	if json.Unmarshal(pb, &c) != nil {
		return nil, ErrInvalid
	}
	leeway := int64(s.cfg.Leeway / time.Second)
	switch {
	case c.Issuer != s.cfg.Issuer, !c.Audience.is(s.cfg.Audience), c.UserID() == 0, c.ID == "",
		c.ExpiresAt == 0 || now.Unix() >= c.ExpiresAt+leeway,
		c.NotBefore > now.Unix()+leeway:
		return nil, ErrInvalid
	}
	return &c, nil
}

// SigningKey is the active key and its kid, for a signer that mints tokens
// this Signer verifies (the fosite strategy does).
func (s *Signer) SigningKey() (kid string, priv ed25519.PrivateKey) {
	return s.signer.id, s.signer.priv
}

// PublicKey is the key with this kid if it still verifies now.
func (s *Signer) PublicKey(kid string) (ed25519.PublicKey, bool) {
	now := s.cfg.Now().UTC()
	for i := range s.keys {
		if k := &s.keys[i]; k.id == kid && s.verifies(k, now) {
			return k.pub, true
		}
	}
	return nil, false
}

// Keys are every configured private key, the signing one first (what
// derived secrets, such as the refresh-token HMAC key, are built from).
func (s *Signer) Keys() []ed25519.PrivateKey {
	out := []ed25519.PrivateKey{s.signer.priv}
	for i := range s.keys {
		if k := &s.keys[i]; k.id != s.signer.id {
			out = append(out, k.priv)
		}
	}
	return out
}

// JWK is one public key as a JSON Web Key (RFC 8037 OKP).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is the set of keys that verify now: the signing key and the retired
// ones whose tokens may still be valid.
func (s *Signer) JWKS() []JWK {
	now := s.cfg.Now().UTC()
	out := []JWK{}
	for i := range s.keys {
		if k := &s.keys[i]; s.verifies(k, now) {
			out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k.pub), Kid: k.id, Alg: "EdDSA", Use: "sig"})
		}
	}
	return out
}
