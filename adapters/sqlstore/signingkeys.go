package sqlstore

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"time"

	"github.com/revopsdev/revops/token"
)

var _ token.KeyStore = (*Store)(nil)

// SharedSigningKey stores candidate as the shared signing key unless one is
// stored, and returns the stored key. ON CONFLICT DO NOTHING on the primary
// key settles concurrent first starts.
func (s *Store) SharedSigningKey(ctx context.Context, candidate ed25519.PrivateKey) (ed25519.PrivateKey, error) {
	if len(candidate) != ed25519.PrivateKeySize {
		return nil, errors.New("sqlstore: SharedSigningKey: the candidate is not an Ed25519 private key")
	}
	if _, err := s.db.NewRaw("INSERT INTO revops_signing_keys (name, private_key, created_at) VALUES ('default', ?, ?) ON CONFLICT (name) DO NOTHING",
		base64.StdEncoding.EncodeToString(candidate.Seed()), ts(time.Now())).Exec(ctx); err != nil {
		return nil, fail("store signing key", err, "")
	}
	var enc string
	if err := s.db.NewRaw("SELECT private_key FROM revops_signing_keys WHERE name = 'default'").Scan(ctx, &enc); err != nil {
		return nil, fail("get signing key", err, "")
	}
	seed, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("sqlstore: the stored signing key is not an Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
