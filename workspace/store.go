// Package workspace holds workspaces, their members and roles, invitations,
// join codes, icons and the TOTP policy.
package workspace

import (
	"context"
	"time"

	"github.com/revopsdev/revops/core"
)

// Settings are a workspace's preferences.
type Settings struct {
	Timezone string // IANA name, e.g. "Europe/London"
	Locale   string // e.g. "en_GB"
}

// TOTP policies.
const (
	TOTPOff      = "off"
	TOTPOptional = "optional"
	TOTPRequired = "required"
)

// Workspace is a tenant. Every other tenant-owned row carries its ID.
type Workspace struct {
	ID         int64
	Name       string
	Slug       string // unique across the store
	Tier       string
	Settings   Settings
	TOTPPolicy string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// User is a person who can be a member of workspaces.
type User struct {
	ID        int64
	Email     string // unique, stored lower-case
	Name      string
	Locale    string // e.g. "en" or "en_GB"; "" for users made before locales
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Member is a user's membership of a workspace. Email and Name are read from
// the user when listing; they are not stored on the membership.
type Member struct {
	WorkspaceID int64
	UserID      int64
	Role        string
	Email       string
	Name        string
	CreatedAt   time.Time
}

// Invitation invites an email address into a workspace until accepted.
type Invitation struct {
	ID          int64
	WorkspaceID int64
	Email       string // lower-case
	Role        string
	TokenHash   string // hex SHA-256 of the token; the token is shown once
	InvitedBy   int64  // user id, 0 when invited by a workspace key
	ExpiresAt   time.Time
	AcceptedAt  *time.Time
	CreatedAt   time.Time
}

// JoinCode lets whoever holds it join a workspace with Role.
type JoinCode struct {
	ID          int64
	WorkspaceID int64
	CodeHash    string // hex SHA-256 of the code; the code is shown once
	Hint        string // last characters of the code, for display
	Role        string
	ExpiresAt   *time.Time
	RevokedAt   *time.Time
	Uses        int
	CreatedBy   int64
	CreatedAt   time.Time
}

// Icon is a workspace's image.
type Icon struct {
	WorkspaceID int64
	ContentType string
	Data        []byte
	ETag        string
	UpdatedAt   time.Time
}

// ListFilter narrows ListWorkspaces to what a principal may see. When both are
// set, a workspace must satisfy both.
type ListFilter struct {
	MemberUserID int64   // > 0: only workspaces this user is a member of
	IDs          []int64 // non-nil: only these workspaces (empty: none)
}

// Store persists workspaces. Contract, checked by storetest:
//   - missing rows (including rows of another workspace) are errors.Is(err, core.ErrNotFound);
//   - unique violations (slug, email, membership) are errors.Is(err, core.ErrConflict);
//   - Create* fill ID (and CreatedAt/UpdatedAt when zero);
//   - list methods honour core.ListParams (page, per_page, sort by JSON field
//     names, created/updated filters, search) and return the total before paging.
type Store interface {
	CreateUser(ctx context.Context, u *User) error
	User(ctx context.Context, id int64) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	CountUsers(ctx context.Context) (int, error)

	// CreateWorkspace inserts w and makes ownerID its owner, atomically.
	CreateWorkspace(ctx context.Context, w *Workspace, ownerID int64) error
	Workspace(ctx context.Context, id int64) (*Workspace, error)
	// ListWorkspaces sorts by id, name, slug, tier, created_at, updated_at;
	// search matches name or slug, case-insensitively.
	ListWorkspaces(ctx context.Context, f ListFilter, p core.ListParams) ([]Workspace, int, error)
	// UpdateWorkspace is an atomic read-modify-write: it runs fn on the
	// current row while holding the workspace's lock, then writes every
	// field fn left but ID and CreatedAt (a zero UpdatedAt means now). An
	// error from fn aborts with nothing written and is returned as is.
	// Concurrent updates never lose each other's changes.
	UpdateWorkspace(ctx context.Context, id int64, fn func(*Workspace) error) (*Workspace, error)
	// DeleteWorkspace removes the workspace and everything that belongs to
	// it: members, invitations, join codes, icon and API keys.
	DeleteWorkspace(ctx context.Context, id int64) error

	PutIcon(ctx context.Context, ic *Icon) error
	Icon(ctx context.Context, workspaceID int64) (*Icon, error)
	DeleteIcon(ctx context.Context, workspaceID int64) error

	AddMember(ctx context.Context, m *Member) error
	Member(ctx context.Context, workspaceID, userID int64) (*Member, error)
	// ListMembers sorts by created_at, email, role; search matches email or name.
	ListMembers(ctx context.Context, workspaceID int64, p core.ListParams) ([]Member, int, error)
	// RemoveMember fails with a conflict when it would leave no owner; the
	// check and the delete are atomic against concurrent removals.
	RemoveMember(ctx context.Context, workspaceID, userID int64) error

	// CreateInvitation conflicts when a pending invitation for the email exists.
	CreateInvitation(ctx context.Context, inv *Invitation) error
	// ListInvitations lists pending (not accepted) invitations.
	ListInvitations(ctx context.Context, workspaceID int64, p core.ListParams) ([]Invitation, int, error)
	RevokeInvitation(ctx context.Context, workspaceID, id int64) error
	// AcceptInvitation marks the pending, unexpired invitation with tokenHash
	// and email accepted and adds the user as a member with its role, atomically.
	// Unknown, accepted, expired or other-email invitations are not found;
	// an existing membership is a conflict (and the invitation stays pending).
	AcceptInvitation(ctx context.Context, tokenHash, email string, userID int64, now time.Time) (*Member, error)
	// InvitationByToken returns the pending invitation with tokenHash that
	// has not expired at now; any other (unknown, accepted, expired) is not found.
	InvitationByToken(ctx context.Context, tokenHash string, now time.Time) (*Invitation, error)
	// SetMemberRole changes a member's role from `from` to `to` and returns
	// the membership; a missing member is not found; a member whose role is
	// no longer `from`, or demoting the last owner, is a conflict (atomic
	// against concurrent role changes and removals).
	SetMemberRole(ctx context.Context, workspaceID, userID int64, from, to string) (*Member, error)

	CreateJoinCode(ctx context.Context, c *JoinCode) error
	// ListJoinCodes lists codes that are not revoked.
	ListJoinCodes(ctx context.Context, workspaceID int64, p core.ListParams) ([]JoinCode, int, error)
	RevokeJoinCode(ctx context.Context, workspaceID, id int64, at time.Time) error
	// JoinByCode adds userID with the code's role and counts the use,
	// atomically. Unknown, revoked or expired codes are not found; an existing
	// membership is a conflict.
	JoinByCode(ctx context.Context, codeHash string, userID int64, now time.Time) (*Member, error)
}
