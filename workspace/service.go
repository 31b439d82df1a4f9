package workspace

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // IANA names must validate on hosts without zoneinfo
	"unicode"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/scope"
)

// Limits on input.
const (
	MaxNameLen     = 255
	MaxSlugLen     = 64
	MaxIconBytes   = 256 << 10
	InvitationTTL  = 7 * 24 * time.Hour
	DefaultTZ      = "UTC"
	DefaultLocale  = "en"
	joinCodePrefix = "join_"
)

// Service implements the workspace operations over a Store.
type Service struct {
	store Store
	tiers []string
	roles map[string]scope.Role
	now   func() time.Time
}

// NewService validates its arguments; tiers is the ordered list of tier
// names, the first being the default for new workspaces.
func NewService(store Store, tiers []string, roles map[string]scope.Role, now func() time.Time) (*Service, error) {
	if store == nil {
		return nil, errors.New("workspace: a Store is required")
	}
	if len(tiers) == 0 {
		return nil, errors.New("workspace: at least one tier is required")
	}
	if roles == nil {
		roles = scope.DefaultRoles()
	}
	for _, r := range []string{scope.Owner, scope.Admin, scope.Member} {
		if _, ok := roles[r]; !ok {
			return nil, fmt.Errorf("workspace: roles must define %q", r)
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, tiers: tiers, roles: roles, now: now}, nil
}

// Store returns the underlying store.
func (s *Service) Store() Store { return s.store }

// Role returns the grants of a role name.
func (s *Service) Role(name string) (scope.Role, bool) {
	r, ok := s.roles[name]
	return r, ok
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CreateInput is a new workspace.
type CreateInput struct {
	Name     string
	Slug     string // optional
	Tier     string // optional, default the first tier
	Timezone string // optional
	Locale   string // optional
}

var slugRE = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// Create validates in and stores a workspace owned by ownerID. Without a slug
// one is derived from the name and made unique.
func (s *Service) Create(ctx context.Context, in CreateInput, ownerID int64) (*Workspace, error) {
	var v core.Validation
	in.Name = strings.TrimSpace(in.Name)
	s.checkName(&v, in.Name)
	if in.Slug != "" {
		checkSlug(&v, in.Slug)
	}
	if in.Tier == "" {
		in.Tier = s.tiers[0]
	} else if !slices.Contains(s.tiers, in.Tier) {
		v.Add("tier", fmt.Sprintf("The selected tier is invalid. Use one of: %s.", strings.Join(s.tiers, ", ")))
	}
	set := Settings{Timezone: DefaultTZ, Locale: DefaultLocale}
	if in.Timezone != "" {
		set.Timezone = in.Timezone
	}
	if in.Locale != "" {
		set.Locale = in.Locale
	}
	checkSettings(&v, set)
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.clock()
	w := &Workspace{Name: in.Name, Slug: in.Slug, Tier: in.Tier, Settings: set, TOTPPolicy: TOTPOff, CreatedAt: now, UpdatedAt: now}
	if in.Slug != "" {
		if err := s.store.CreateWorkspace(ctx, w, ownerID); err != nil {
			return nil, slugTaken(err)
		}
		return w, nil
	}
	base := Slugify(in.Name)
	for i := 1; ; i++ {
		w.Slug = candidateSlug(base, i)
		err := s.store.CreateWorkspace(ctx, w, ownerID)
		if err == nil {
			return w, nil
		}
		if !errors.Is(err, core.ErrConflict) || i >= 50 {
			return nil, err
		}
		w.ID = 0
	}
}

// candidateSlug is base, then base-2, base-3 …; past 10 tries a random
// suffix avoids walking a long run of taken numbers.
func candidateSlug(base string, i int) string {
	switch {
	case i == 1:
		return base
	case i <= 10:
		return trimSlug(base, 1+len(strconv.Itoa(i))) + "-" + strconv.Itoa(i)
	}
	b := make([]byte, 3)
	rand.Read(b)
	return trimSlug(base, 7) + "-" + hex.EncodeToString(b)
}

func trimSlug(base string, reserve int) string {
	if len(base)+reserve > MaxSlugLen {
		base = strings.TrimRight(base[:MaxSlugLen-reserve], "-")
	}
	return base
}

// Slugify derives a URL-friendly slug from a name: lower-case ASCII letters
// and digits separated by single hyphens; "workspace" when nothing is left.
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		r = fold(r)
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	s := trimSlug(b.String(), 0)
	if s == "" {
		return "workspace"
	}
	return s
}

// fold maps common Latin letters with diacritics to their base letter.
func fold(r rune) rune {
	const from, to = "àáâãäåçèéêëìíîïñòóôõöøùúûüýÿ", "aaaaaaceeeeiiiinoooooouuuuyy"
	if i := strings.IndexRune(from, r); i >= 0 {
		return []rune(to)[utf8.RuneCountInString(from[:i])]
	}
	return r
}

func (s *Service) checkName(v *core.Validation, name string) {
	switch {
	case name == "":
		v.Add("name", "The name field is required.")
	case utf8.RuneCountInString(name) > MaxNameLen:
		v.Add("name", fmt.Sprintf("The name may not be greater than %d characters.", MaxNameLen))
	}
}

func checkSlug(v *core.Validation, slug string) {
	if len(slug) > MaxSlugLen || !slugRE.MatchString(slug) {
		v.Add("slug", fmt.Sprintf("The slug may only contain lower-case letters, digits and single hyphens (max %d characters).", MaxSlugLen))
	}
}

var localeRE = regexp.MustCompile(`^[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*$`)

func checkSettings(v *core.Validation, set Settings) {
	if _, err := time.LoadLocation(set.Timezone); err != nil || set.Timezone == "" || set.Timezone == "Local" {
		v.Add("settings.timezone", "The settings.timezone must be a valid IANA time zone (e.g. Europe/London).")
	}
	if len(set.Locale) > 35 || !localeRE.MatchString(set.Locale) {
		v.Add("settings.locale", "The settings.locale must be a locale such as en or en_GB.")
	}
}

func slugTaken(err error) error {
	if errors.Is(err, core.ErrConflict) {
		return core.Invalid("slug", "The slug has already been taken.")
	}
	return err
}

// UpdateInput changes a workspace; nil fields are left alone and settings are
// merged key by key.
type UpdateInput struct {
	Name     *string
	Slug     *string
	Timezone *string
	Locale   *string
}

// Update applies in to workspace id, atomically against other updates.
func (s *Service) Update(ctx context.Context, id int64, in UpdateInput) (*Workspace, error) {
	w, err := s.store.UpdateWorkspace(ctx, id, func(w *Workspace) error {
		var v core.Validation
		if in.Name != nil {
			w.Name = strings.TrimSpace(*in.Name)
			s.checkName(&v, w.Name)
		}
		if in.Slug != nil {
			w.Slug = *in.Slug
			checkSlug(&v, w.Slug)
		}
		if in.Timezone != nil {
			w.Settings.Timezone = *in.Timezone
		}
		if in.Locale != nil {
			w.Settings.Locale = *in.Locale
		}
		checkSettings(&v, w.Settings)
		w.UpdatedAt = s.clock()
		return v.Err()
	})
	if err != nil {
		return nil, slugTaken(err)
	}
	return w, nil
}

// SetTier moves the workspace to another tier (billing calls it).
func (s *Service) SetTier(ctx context.Context, id int64, tier string) (*Workspace, error) {
	if !slices.Contains(s.tiers, tier) {
		return nil, core.Invalid("tier", fmt.Sprintf("Unknown tier %q: use one of %s.", tier, strings.Join(s.tiers, ", ")))
	}
	return s.store.UpdateWorkspace(ctx, id, func(w *Workspace) error {
		w.Tier, w.UpdatedAt = tier, s.clock()
		return nil
	})
}

// SetTOTPPolicy stores the workspace's two-factor policy.
func (s *Service) SetTOTPPolicy(ctx context.Context, id int64, policy string) (*Workspace, error) {
	if !slices.Contains([]string{TOTPOff, TOTPOptional, TOTPRequired}, policy) {
		return nil, core.Invalid("policy", "The selected policy is invalid. Use one of: off, optional, required.")
	}
	return s.store.UpdateWorkspace(ctx, id, func(w *Workspace) error {
		w.TOTPPolicy = policy
		w.UpdatedAt = s.clock()
		return nil
	})
}

// SniffImage returns the content type of a PNG, JPEG, GIF or WebP image from
// its magic bytes, or "" for anything else.
func SniffImage(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "image/jpeg"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "image/gif"
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return "image/webp"
	}
	return ""
}

// PutIcon stores data as the workspace's icon after checking size and type.
func (s *Service) PutIcon(ctx context.Context, id int64, data []byte) (*Icon, error) {
	if len(data) > MaxIconBytes {
		return nil, core.E(core.CodeTooLarge, "The icon may not be larger than %d KiB.", MaxIconBytes>>10)
	}
	if len(data) == 0 {
		return nil, core.Invalid("icon", "The icon must not be empty.")
	}
	ct := SniffImage(data)
	if ct == "" {
		return nil, core.E(core.CodeUnsupportedMedia, "The icon must be a PNG, JPEG, WebP or GIF image.")
	}
	sum := sha256.Sum256(data)
	ic := &Icon{WorkspaceID: id, ContentType: ct, Data: data, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`, UpdatedAt: s.clock()}
	if err := s.store.PutIcon(ctx, ic); err != nil {
		return nil, err
	}
	return ic, nil
}

func (s *Service) checkRole(v *core.Validation, role, actorRole string) {
	if _, ok := s.roles[role]; !ok {
		v.Add("role", "The selected role is invalid. Use one of: owner, admin, member.")
	} else if role == scope.Owner && actorRole != scope.Owner {
		v.Add("role", "Only an owner can grant the owner role.")
	}
}

// Invite creates an invitation for email with role and returns it with its
// token, which is shown once. actorRole is the inviter's role ("" for a
// workspace key, which is treated as an admin).
func (s *Service) Invite(ctx context.Context, workspaceID int64, email, role string, invitedBy int64, actorRole string) (*Invitation, string, error) {
	var v core.Validation
	email = strings.ToLower(strings.TrimSpace(email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		v.Add("email", "The email must be a valid email address.")
	}
	if role == "" {
		role = scope.Member
	}
	s.checkRole(&v, role, actorRole)
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	if u, err := s.store.UserByEmail(ctx, email); err == nil {
		if _, err := s.store.Member(ctx, workspaceID, u.ID); err == nil {
			return nil, "", core.Conflict("%s is already a member of this workspace.", email)
		}
	}
	token, hash := Secret("inv_")
	now := s.clock()
	inv := &Invitation{WorkspaceID: workspaceID, Email: email, Role: role, TokenHash: hash, InvitedBy: invitedBy, ExpiresAt: now.Add(InvitationTTL), CreatedAt: now}
	err := s.store.CreateInvitation(ctx, inv)
	if errors.Is(err, core.ErrConflict) && s.dropExpiredInvitation(ctx, workspaceID, email, now) {
		inv.ID = 0
		err = s.store.CreateInvitation(ctx, inv)
	}
	if errors.Is(err, core.ErrConflict) {
		return nil, "", core.Conflict("A pending invitation for %s already exists.", email)
	}
	if err != nil {
		return nil, "", err
	}
	return inv, token, nil
}

// dropExpiredInvitation revokes the pending invitation for email if it has
// expired, so that an unanswered invitation does not block a new one.
func (s *Service) dropExpiredInvitation(ctx context.Context, workspaceID int64, email string, now time.Time) bool {
	list, _, err := s.store.ListInvitations(ctx, workspaceID, core.ListParams{Page: 1, PerPage: core.MaxPerPage, Filter: core.Filter{Search: email}})
	if err != nil {
		return false
	}
	for _, inv := range list {
		if inv.Email == email && !now.Before(inv.ExpiresAt) {
			return s.store.RevokeInvitation(ctx, workspaceID, inv.ID) == nil
		}
	}
	return false
}

// Accept adds the user to the workspace of the invitation with token.
func (s *Service) Accept(ctx context.Context, token string, u *User) (*Member, error) {
	m, err := s.store.AcceptInvitation(ctx, HashSecret(token), u.Email, u.ID, s.clock())
	return m, alreadyMember(err)
}

// CreateJoinCode returns a new code for the workspace; the code is shown once.
func (s *Service) CreateJoinCode(ctx context.Context, workspaceID int64, role string, expiresAt *time.Time, createdBy int64, actorRole string) (*JoinCode, string, error) {
	var v core.Validation
	if role == "" {
		role = scope.Member
	}
	if role == scope.Owner {
		v.Add("role", "A join code cannot grant the owner role.")
	} else {
		s.checkRole(&v, role, actorRole)
	}
	now := s.clock()
	if expiresAt != nil && !expiresAt.After(now) {
		v.Add("expires_at", "The expires_at must be a date in the future.")
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	code, hash := Secret(joinCodePrefix)
	c := &JoinCode{WorkspaceID: workspaceID, CodeHash: hash, Hint: code[len(code)-4:], Role: role, ExpiresAt: utcPtr(expiresAt), CreatedBy: createdBy, CreatedAt: now}
	if err := s.store.CreateJoinCode(ctx, c); err != nil {
		return nil, "", err
	}
	return c, code, nil
}

// Join adds userID to the workspace of code.
func (s *Service) Join(ctx context.Context, code string, userID int64) (*Member, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return nil, core.Invalid("code", "The code field is required.")
	}
	m, err := s.store.JoinByCode(ctx, HashSecret(code), userID, s.clock())
	if errors.Is(err, core.ErrNotFound) {
		return nil, core.Invalid("code", "The code is invalid, expired or revoked.")
	}
	return m, alreadyMember(err)
}

func alreadyMember(err error) error {
	if errors.Is(err, core.ErrConflict) {
		return core.Conflict("You are already a member of this workspace.")
	}
	return err
}

// Secret returns a random secret with prefix and its hex SHA-256.
func Secret(prefix string) (secret, hash string) {
	b := make([]byte, 24)
	rand.Read(b)
	secret = prefix + hex.EncodeToString(b)
	return secret, HashSecret(secret)
}

// HashSecret is the hex SHA-256 under which a secret is stored.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}
