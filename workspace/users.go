package workspace

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/scope"
)

// NormalizeEmail is how emails are stored and compared: trimmed, lower-case.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CheckEmail adds a validation error unless email (normalised) is an address.
func CheckEmail(v *core.Validation, field, email string) {
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		v.Add(field, "The "+field+" must be a valid email address.")
	}
}

// CheckProfile validates a user's display name (1 to MaxNameLen characters,
// no control characters, trimmed by the caller) and locale (e.g. "en",
// "en_GB", "pt-BR").
func CheckProfile(v *core.Validation, nameField, name, locale string) {
	switch {
	case name == "":
		v.Add(nameField, "The "+nameField+" field is required.")
	case utf8.RuneCountInString(name) > MaxNameLen:
		v.Add(nameField, fmt.Sprintf("The %s may not be greater than %d characters.", nameField, MaxNameLen))
	case strings.IndexFunc(name, unicode.IsControl) >= 0 || !utf8.ValidString(name):
		v.Add(nameField, "The "+nameField+" may not contain control characters.")
	}
	if len(locale) > 35 || !localeRE.MatchString(locale) {
		v.Add("locale", "The locale must be a locale such as en or en_GB.")
	}
}

// ChangeRole sets a member's role. The rules are those of the other member
// routes: only an owner grants the owner role or changes an owner's role (a
// workspace key acts as an admin); the last owner keeps the role. It
// returns the membership before and after.
func (s *Service) ChangeRole(ctx context.Context, workspaceID, userID int64, role, actorRole string) (before, after *Member, err error) {
	var v core.Validation
	s.checkRole(&v, role, actorRole)
	if err := v.Err(); err != nil {
		return nil, nil, err
	}
	before, err = s.store.Member(ctx, workspaceID, userID)
	if err != nil {
		return nil, nil, err
	}
	if before.Role == scope.Owner && actorRole != scope.Owner {
		return nil, nil, core.E(core.CodeAccessDenied, "Only an owner can change an owner's role.")
	}
	if before.Role == role {
		return before, before, nil
	}
	// Compare-and-set on the role read above, so that the owner rule just
	// checked still holds when it is written.
	after, err = s.store.SetMemberRole(ctx, workspaceID, userID, before.Role, role)
	if errors.Is(err, core.ErrConflict) {
		if now, rerr := s.store.Member(ctx, workspaceID, userID); rerr == nil && now.Role != before.Role {
			return nil, nil, core.Conflict("The member's role changed meanwhile (now %s); read it again and retry.", now.Role)
		}
		err = core.Conflict("The last owner of a workspace cannot give up the owner role; make another member an owner first.")
	}
	return before, after, err
}
