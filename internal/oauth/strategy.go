package oauth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"

	"github.com/revopsdev/revops/token"
)

// edSigner is fosite's JWT signer for Ed25519. jwt.DefaultSigner signs
// EdDSA from a *jose.JSONWebKey (and go-jose puts its KeyID in "kid"), but
// its Decode and Validate know only RSA and ECDSA keys; these overrides
// verify with token.Signer first (EdDSA only, kid from the key set, iss,
// aud and the time window on the platform clock) and then let fosite's
// parser check the signature against that kid's public key.
type edSigner struct {
	jwt.DefaultSigner
	keys *token.Signer
}

func newEdSigner(keys *token.Signer) *edSigner {
	s := &edSigner{keys: keys}
	s.GetPrivateKey = func(context.Context) (any, error) {
		kid, priv := keys.SigningKey()
		return &jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"}, nil
	}
	return s
}

// Decode verifies a token and returns it.
func (s *edSigner) Decode(_ context.Context, raw string) (*jwt.Token, error) {
	if _, err := s.keys.Verify(raw); err != nil {
		return nil, &jwt.ValidationError{Errors: jwt.ValidationErrorSignatureInvalid, Inner: err}
	}
	return jwt.ParseWithClaims(raw, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, ok := s.keys.PublicKey(kid)
		if t.Method != jose.EdDSA || !ok {
			return nil, errors.New("oauth: not an EdDSA token of a known key")
		}
		// A pointer: fosite's parser would otherwise wrap the key in one,
		// which go-jose does not accept for Ed25519.
		return &jose.JSONWebKey{Key: pub}, nil
	})
}

// Validate verifies a token and returns its signature.
func (s *edSigner) Validate(ctx context.Context, raw string) (string, error) {
	if _, err := s.Decode(ctx, raw); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, raw)
}

// refreshPrefix marks refresh tokens, as before fosite.
const refreshPrefix = "rt_"

// refreshStrategy is fosite's HMAC-SHA512/256 strategy for refresh tokens
// with the "rt_" prefix and expiry checked against the platform clock
// (fosite's compares with time.Now). Access tokens go to the JWT strategy;
// authorize codes stay fosite's.
type refreshStrategy struct {
	*oauth2.HMACSHAStrategyUnPrefixed
	now func() time.Time
}

func (h *refreshStrategy) RefreshTokenSignature(_ context.Context, tok string) string {
	rest, ok := strings.CutPrefix(tok, refreshPrefix)
	if !ok {
		return ""
	}
	return h.Enigma.Signature(rest)
}

func (h *refreshStrategy) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	tok, sig, err := h.Enigma.Generate(ctx)
	if err != nil {
		return "", "", err
	}
	return refreshPrefix + tok, sig, nil
}

func (h *refreshStrategy) ValidateRefreshToken(ctx context.Context, r fosite.Requester, tok string) error {
	rest, ok := strings.CutPrefix(tok, refreshPrefix)
	if !ok {
		return fosite.ErrInvalidTokenFormat
	}
	if exp := r.GetSession().GetExpiresAt(fosite.RefreshToken); exp.IsZero() || !h.now().Before(exp) {
		return fosite.ErrTokenExpired.WithHint("The refresh token expired.")
	}
	return h.Enigma.Validate(ctx, rest)
}
