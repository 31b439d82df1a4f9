package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/scope"
)

// Rotation bounds of spec 001.
const (
	DefaultGraceHours = 24
	MaxGraceHours     = 720
	MaxNameLen        = 255
)

// DefaultScopes are given to a key created without scopes.
var DefaultScopes = []string{"read", "write"}

// Service issues, rotates and revokes keys.
type Service struct {
	store    Store
	verifier *Verifier
	catalog  *scope.Catalog
	tiers    []string
	now      func() time.Time
}

// NewService returns a Service. The verifier is told about revocations and
// rotations so that its cache never outlives them in this process.
func NewService(store Store, v *Verifier, catalog *scope.Catalog, tiers []string, now func() time.Time) (*Service, error) {
	if store == nil || v == nil || catalog == nil {
		return nil, errors.New("keys: NewService needs a Store, a Verifier and a scope Catalog")
	}
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, verifier: v, catalog: catalog, tiers: tiers, now: now}, nil
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CreateInput describes a new key. Nil Scopes means DefaultScopes.
type CreateInput struct {
	Name          string
	Scopes        []string
	RateLimitTier string
	ExpiresAt     *time.Time
	// NotAfter is the issuer's own expiry: the key may not outlive it and
	// inherits it when ExpiresAt is nil.
	NotAfter *time.Time
}

// Allower is what a key's issuer may do; a key never gets more.
type Allower interface{ Allows(string) bool }

// Create validates in and stores a key. workspaceID 0 makes a personal key of
// userID. The plaintext key is returned once and never stored.
func (s *Service) Create(ctx context.Context, workspaceID, userID int64, in CreateInput, issuer Allower) (*Key, string, error) {
	var v core.Validation
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		v.Add("name", "The name field is required.")
	case utf8.RuneCountInString(in.Name) > MaxNameLen:
		v.Add("name", fmt.Sprintf("The name may not be greater than %d characters.", MaxNameLen))
	}
	if in.Scopes == nil {
		in.Scopes = slices.Clone(DefaultScopes)
	}
	if len(in.Scopes) == 0 {
		v.Add("scopes", "The scopes must contain at least one scope.")
	}
	seen := map[string]bool{}
	for i, sc := range in.Scopes {
		if err := s.catalog.Validate(sc); err != nil {
			v.Add(fmt.Sprintf("scopes.%d", i), fmt.Sprintf("The scope %q is invalid: %s.", sc, strings.TrimPrefix(err.Error(), "scope ")))
		} else if seen[sc] {
			v.Add(fmt.Sprintf("scopes.%d", i), fmt.Sprintf("The scope %q is listed twice.", sc))
		}
		seen[sc] = true
	}
	if in.RateLimitTier != "" && !slices.Contains(s.tiers, in.RateLimitTier) {
		v.Add("rate_limit_tier", fmt.Sprintf("The selected rate_limit_tier is invalid. Use one of: %s.", strings.Join(s.tiers, ", ")))
	}
	now := s.clock()
	if in.ExpiresAt == nil {
		in.ExpiresAt = in.NotAfter
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		v.Add("expires_at", "The expires_at must be a date in the future.")
	} else if in.NotAfter != nil && in.ExpiresAt.After(*in.NotAfter) {
		v.Add("expires_at", "The expires_at may not be later than the expiry of the key used to create it ("+in.NotAfter.UTC().Format(time.RFC3339)+").")
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	if err := s.covered(issuer, in.Scopes); err != nil {
		return nil, "", err
	}
	raw := Generate(s.verifier.prefix)
	k := &Key{
		WorkspaceID: workspaceID, UserID: userID, Name: in.Name,
		Prefix: DisplayPrefix(s.verifier.prefix, raw), Hash: Hash(raw),
		Scopes: in.Scopes, RateLimitTier: in.RateLimitTier, ExpiresAt: utc(in.ExpiresAt),
		CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateKey(ctx, k); err != nil {
		return nil, "", err
	}
	return k, raw, nil
}

// covered checks that issuer holds everything scopes grant (nil: trusted
// host code), so that no key is ever handed more than its issuer has.
func (s *Service) covered(issuer Allower, scopes []string) error {
	if issuer == nil {
		return nil
	}
	for _, sc := range scopes {
		if missing, ok := s.catalog.Covers(issuer, sc); !ok {
			return core.MissingScope(missing)
		}
	}
	return nil
}

// Get returns a workspace key.
func (s *Service) Get(ctx context.Context, workspaceID, id int64) (*Key, error) {
	return s.store.Key(ctx, workspaceID, id)
}

// List lists a workspace's keys.
func (s *Service) List(ctx context.Context, workspaceID int64, p core.ListParams) ([]Key, int, error) {
	return s.store.ListKeys(ctx, workspaceID, p, s.clock())
}

// Rotate replaces key id with a new key that keeps its name, scopes, tier
// and expiry. The old key keeps working for graceHours (nil: 24, 0: not at
// all), never past its own expiry. It returns the new key, its plaintext and
// when the old one stops working.
func (s *Service) Rotate(ctx context.Context, workspaceID, id int64, graceHours *int, issuer Allower) (*Key, string, time.Time, error) {
	return s.rotate(ctx, graceHours, issuer, func() (*Key, error) { return s.store.Key(ctx, workspaceID, id) },
		func(next *Key, graceEnds time.Time) error {
			return s.store.RotateKey(ctx, workspaceID, id, next, graceEnds)
		})
}

// RotatePersonal is Rotate for a personal key of userID; another user's key
// or a workspace key is not found.
func (s *Service) RotatePersonal(ctx context.Context, userID, id int64, graceHours *int, issuer Allower) (*Key, string, time.Time, error) {
	return s.rotate(ctx, graceHours, issuer, func() (*Key, error) { return s.GetPersonal(ctx, userID, id) },
		func(next *Key, graceEnds time.Time) error {
			return s.store.RotateUserKey(ctx, userID, id, next, graceEnds)
		})
}

func (s *Service) rotate(ctx context.Context, graceHours *int, issuer Allower, get func() (*Key, error), store func(*Key, time.Time) error) (*Key, string, time.Time, error) {
	g := DefaultGraceHours
	if graceHours != nil {
		g = *graceHours
	}
	if g < 0 || g > MaxGraceHours {
		return nil, "", time.Time{}, core.Invalid("grace_period_hours", fmt.Sprintf("The grace_period_hours must be between 0 and %d.", MaxGraceHours))
	}
	old, err := get()
	if err != nil {
		return nil, "", time.Time{}, err
	}
	// Rotation hands out a key with the old key's scopes: the caller must
	// hold all of them, as when creating one.
	if err := s.covered(issuer, old.Scopes); err != nil {
		return nil, "", time.Time{}, err
	}
	now := s.clock()
	switch old.Status(now) {
	case StatusRotating:
		return nil, "", time.Time{}, core.Conflict("This API key has already been rotated.")
	case StatusExpired:
		return nil, "", time.Time{}, core.Conflict("An expired API key cannot be rotated.")
	}
	graceEnds := now.Add(time.Duration(g) * time.Hour)
	if old.ExpiresAt != nil && old.ExpiresAt.Before(graceEnds) {
		graceEnds = *old.ExpiresAt
	}
	raw := Generate(s.verifier.prefix)
	next := &Key{
		WorkspaceID: old.WorkspaceID, UserID: old.UserID, Name: old.Name,
		Prefix: DisplayPrefix(s.verifier.prefix, raw), Hash: Hash(raw),
		Scopes: old.Scopes, RateLimitTier: old.RateLimitTier, ExpiresAt: old.ExpiresAt,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := store(next, graceEnds); err != nil {
		return nil, "", time.Time{}, err
	}
	s.verifier.Invalidate(old.Hash)
	return next, raw, graceEnds, nil
}

// Revoke makes key id fail at once.
func (s *Service) Revoke(ctx context.Context, workspaceID, id int64) error {
	k, err := s.store.Key(ctx, workspaceID, id)
	if err != nil {
		return err
	}
	if err := s.store.RevokeKey(ctx, workspaceID, id, s.clock()); err != nil {
		return err
	}
	s.verifier.Invalidate(k.Hash)
	return nil
}

// ListPersonal lists a user's personal keys.
func (s *Service) ListPersonal(ctx context.Context, userID int64) ([]Key, error) {
	return s.store.ListUserKeys(ctx, userID)
}

// GetPersonal returns a personal key of userID that is not revoked.
func (s *Service) GetPersonal(ctx context.Context, userID, id int64) (*Key, error) {
	mine, err := s.store.ListUserKeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	for i := range mine {
		if mine[i].ID == id {
			return &mine[i], nil
		}
	}
	return nil, core.NotFound()
}

// RevokePersonal makes a personal key of userID fail at once.
func (s *Service) RevokePersonal(ctx context.Context, userID, id int64) error {
	mine, err := s.store.ListUserKeys(ctx, userID)
	if err != nil {
		return err
	}
	for _, k := range mine {
		if k.ID == id {
			if err := s.store.RevokeUserKey(ctx, userID, id, s.clock()); err != nil {
				return err
			}
			s.verifier.Invalidate(k.Hash)
			return nil
		}
	}
	return core.NotFound()
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}
