package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/workspace"
)

// roleOwner is the role RemoveMember protects and CreateWorkspace grants.
const roleOwner = "owner"

// ---- users ----

type userRow struct {
	ID        int64     `bun:"id"`
	Email     string    `bun:"email"`
	Name      string    `bun:"name"`
	Locale    string    `bun:"locale"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

const userColumns = "id, email, name, locale, created_at, updated_at"

func (r *userRow) user() *workspace.User {
	return &workspace.User{ID: r.ID, Email: r.Email, Name: r.Name, Locale: r.Locale, CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt)}
}

// CreateUser inserts u, storing its email lower-case.
func (s *Store) CreateUser(ctx context.Context, u *workspace.User) error {
	email := strings.ToLower(u.Email)
	created := orNow(u.CreatedAt)
	updated := created
	if !u.UpdatedAt.IsZero() {
		updated = ts(u.UpdatedAt)
	}
	var id int64
	err := s.db.NewRaw("INSERT INTO revops_users (email, name, locale, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
		email, u.Name, u.Locale, created, updated).Scan(ctx, &id)
	if err != nil {
		return fail("create user", err, "A user with this email already exists.")
	}
	u.ID, u.Email, u.CreatedAt, u.UpdatedAt = id, email, created, updated
	return nil
}

func (s *Store) User(ctx context.Context, id int64) (*workspace.User, error) {
	var r userRow
	if err := s.db.NewRaw("SELECT "+userColumns+" FROM revops_users WHERE id = ?", id).Scan(ctx, &r); err != nil {
		return nil, fail("get user", err, "")
	}
	return r.user(), nil
}

// UserByEmail finds a user by email, case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, email string) (*workspace.User, error) {
	var r userRow
	if err := s.db.NewRaw("SELECT "+userColumns+" FROM revops_users WHERE email = ?", strings.ToLower(email)).Scan(ctx, &r); err != nil {
		return nil, fail("get user by email", err, "")
	}
	return r.user(), nil
}

func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.NewRaw("SELECT COUNT(*) FROM revops_users").Scan(ctx, &n); err != nil {
		return 0, fail("count users", err, "")
	}
	return n, nil
}

// ---- workspaces ----

type workspaceRow struct {
	ID         int64     `bun:"id"`
	Name       string    `bun:"name"`
	Slug       string    `bun:"slug"`
	Tier       string    `bun:"tier"`
	Timezone   string    `bun:"timezone"`
	Locale     string    `bun:"locale"`
	TOTPPolicy string    `bun:"totp_policy"`
	CreatedAt  time.Time `bun:"created_at"`
	UpdatedAt  time.Time `bun:"updated_at"`
}

const workspaceColumns = "w.id, w.name, w.slug, w.tier, w.timezone, w.locale, w.totp_policy, w.created_at, w.updated_at"

func (r *workspaceRow) workspace() workspace.Workspace {
	return workspace.Workspace{
		ID: r.ID, Name: r.Name, Slug: r.Slug, Tier: r.Tier,
		Settings:   workspace.Settings{Timezone: r.Timezone, Locale: r.Locale},
		TOTPPolicy: r.TOTPPolicy,
		CreatedAt:  utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt),
	}
}

const slugConflict = "A workspace with this slug already exists."

// CreateWorkspace inserts w and makes ownerID its owner in one transaction.
// An unknown owner is not found.
func (s *Store) CreateWorkspace(ctx context.Context, w *workspace.Workspace, ownerID int64) error {
	created := orNow(w.CreatedAt)
	updated := created
	if !w.UpdatedAt.IsZero() {
		updated = ts(w.UpdatedAt)
	}
	var id int64
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewRaw(`INSERT INTO revops_workspaces (name, slug, tier, timezone, locale, totp_policy, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			w.Name, w.Slug, w.Tier, w.Settings.Timezone, w.Settings.Locale, w.TOTPPolicy, created, updated).Scan(ctx, &id)
		if err != nil {
			return fail("create workspace", err, slugConflict)
		}
		_, err = tx.NewRaw("INSERT INTO revops_members (workspace_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
			id, ownerID, roleOwner, created).Exec(ctx)
		return fail("add workspace owner", err, "")
	})
	if err != nil {
		return err
	}
	w.ID, w.CreatedAt, w.UpdatedAt = id, created, updated
	return nil
}

func (s *Store) Workspace(ctx context.Context, id int64) (*workspace.Workspace, error) {
	var r workspaceRow
	if err := s.db.NewRaw("SELECT "+workspaceColumns+" FROM revops_workspaces w WHERE w.id = ?", id).Scan(ctx, &r); err != nil {
		return nil, fail("get workspace", err, "")
	}
	w := r.workspace()
	return &w, nil
}

var workspaceList = listSpec{
	columns: workspaceColumns,
	from:    "revops_workspaces w",
	sorts: map[string]string{
		"id": "w.id", "name": "w.name", "slug": "w.slug", "tier": "w.tier",
		"created_at": "w.created_at", "updated_at": "w.updated_at",
	},
	tieBreak: "w.id",
	search:   []string{"w.name", "w.slug"},
	created:  "w.created_at",
	updated:  "w.updated_at",
}

func (s *Store) ListWorkspaces(ctx context.Context, f workspace.ListFilter, p core.ListParams) ([]workspace.Workspace, int, error) {
	if p.Filter.Status != "" {
		return nil, 0, core.Invalid("status", "Workspaces cannot be filtered by status.")
	}
	if f.IDs != nil && len(f.IDs) == 0 {
		return []workspace.Workspace{}, 0, nil
	}
	var q listQuery
	if f.MemberUserID > 0 {
		q.add("w.id IN (SELECT m.workspace_id FROM revops_members m WHERE m.user_id = ?)", f.MemberUserID)
	}
	if f.IDs != nil {
		q.add("w.id IN (?)", bun.List(f.IDs))
	}
	return listRows(ctx, s.db, &workspaceList, &q, p, "workspaces", (*workspaceRow).workspace)
}

// UpdateWorkspace locks the row, reads it, applies fn and writes it back,
// in one transaction.
func (s *Store) UpdateWorkspace(ctx context.Context, id int64, fn func(*workspace.Workspace) error) (*workspace.Workspace, error) {
	var out workspace.Workspace
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockWorkspace(ctx, tx, id); err != nil {
			return err
		}
		var r workspaceRow
		if err := tx.NewRaw("SELECT "+workspaceColumns+" FROM revops_workspaces w WHERE w.id = ?", id).Scan(ctx, &r); err != nil {
			return fail("update workspace", err, "")
		}
		w := r.workspace()
		created := w.CreatedAt
		w.UpdatedAt = time.Time{}
		if err := fn(&w); err != nil {
			return err
		}
		w.ID, w.CreatedAt, w.UpdatedAt = id, created, orNow(w.UpdatedAt)
		_, err := tx.NewRaw(`UPDATE revops_workspaces SET name = ?, slug = ?, tier = ?, timezone = ?, locale = ?, totp_policy = ?, updated_at = ?
WHERE id = ?`, w.Name, w.Slug, w.Tier, w.Settings.Timezone, w.Settings.Locale, w.TOTPPolicy, w.UpdatedAt, id).Exec(ctx)
		if err != nil {
			return fail("update workspace", err, slugConflict)
		}
		out = w
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWorkspace deletes the workspace; foreign keys ON DELETE CASCADE
// delete its members, invitations, join codes, icon and API keys.
func (s *Store) DeleteWorkspace(ctx context.Context, id int64) error {
	res, err := s.db.NewRaw("DELETE FROM revops_workspaces WHERE id = ?", id).Exec(ctx)
	return mustAffect("delete workspace", res, err)
}

// lockWorkspace takes the workspace's row lock for the rest of tx (a no-op
// update, portable where SELECT … FOR UPDATE is not), so that checks and
// writes about its members are atomic against concurrent transactions.
// A missing workspace is not found.
func lockWorkspace(ctx context.Context, tx bun.Tx, id int64) error {
	res, err := tx.NewRaw("UPDATE revops_workspaces SET updated_at = updated_at WHERE id = ?", id).Exec(ctx)
	return mustAffect("lock workspace", res, err)
}

// ---- icons ----

type iconRow struct {
	WorkspaceID int64     `bun:"workspace_id"`
	ContentType string    `bun:"content_type"`
	Data        []byte    `bun:"data"`
	ETag        string    `bun:"etag"`
	UpdatedAt   time.Time `bun:"updated_at"`
}

// PutIcon creates or replaces the workspace's icon. An empty ETag is set to
// the hex SHA-256 of the data, a zero UpdatedAt to the current time.
func (s *Store) PutIcon(ctx context.Context, ic *workspace.Icon) error {
	data := ic.Data
	if data == nil {
		data = []byte{}
	}
	etag := ic.ETag
	if etag == "" {
		sum := sha256.Sum256(data)
		etag = hex.EncodeToString(sum[:])
	}
	updated := orNow(ic.UpdatedAt)
	_, err := s.db.NewRaw(`INSERT INTO revops_workspace_icons (workspace_id, content_type, data, etag, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (workspace_id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, etag = excluded.etag, updated_at = excluded.updated_at`,
		ic.WorkspaceID, ic.ContentType, data, etag, updated).Exec(ctx)
	if err != nil {
		return fail("put icon", err, "")
	}
	ic.ETag, ic.UpdatedAt = etag, updated
	return nil
}

func (s *Store) Icon(ctx context.Context, workspaceID int64) (*workspace.Icon, error) {
	var r iconRow
	err := s.db.NewRaw("SELECT workspace_id, content_type, data, etag, updated_at FROM revops_workspace_icons WHERE workspace_id = ?", workspaceID).Scan(ctx, &r)
	if err != nil {
		return nil, fail("get icon", err, "")
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	return &workspace.Icon{WorkspaceID: r.WorkspaceID, ContentType: r.ContentType, Data: r.Data, ETag: r.ETag, UpdatedAt: utc(r.UpdatedAt)}, nil
}

func (s *Store) DeleteIcon(ctx context.Context, workspaceID int64) error {
	res, err := s.db.NewRaw("DELETE FROM revops_workspace_icons WHERE workspace_id = ?", workspaceID).Exec(ctx)
	return mustAffect("delete icon", res, err)
}

// ---- members ----

type memberRow struct {
	WorkspaceID int64     `bun:"workspace_id"`
	UserID      int64     `bun:"user_id"`
	Role        string    `bun:"role"`
	Email       string    `bun:"email"`
	Name        string    `bun:"name"`
	CreatedAt   time.Time `bun:"created_at"`
}

const memberColumns = "m.workspace_id, m.user_id, m.role, u.email, u.name, m.created_at"

func (r *memberRow) member() workspace.Member {
	return workspace.Member{WorkspaceID: r.WorkspaceID, UserID: r.UserID, Role: r.Role, Email: r.Email, Name: r.Name, CreatedAt: utc(r.CreatedAt)}
}

const memberConflict = "The user is already a member of this workspace."

func member(ctx context.Context, db bun.IDB, workspaceID, userID int64) (*workspace.Member, error) {
	var r memberRow
	err := db.NewRaw("SELECT "+memberColumns+" FROM revops_members m JOIN revops_users u ON u.id = m.user_id WHERE m.workspace_id = ? AND m.user_id = ?",
		workspaceID, userID).Scan(ctx, &r)
	if err != nil {
		return nil, fail("get member", err, "")
	}
	m := r.member()
	return &m, nil
}

// insertMember adds a membership and returns it as read back (with the
// user's email and name). An unknown workspace or user is not found, an
// existing membership a conflict.
func insertMember(ctx context.Context, tx bun.Tx, workspaceID, userID int64, role string, created time.Time) (*workspace.Member, error) {
	_, err := tx.NewRaw("INSERT INTO revops_members (workspace_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
		workspaceID, userID, role, created).Exec(ctx)
	if err != nil {
		return nil, fail("add member", err, memberConflict)
	}
	return member(ctx, tx, workspaceID, userID)
}

// AddMember inserts m and fills its Email and Name from the user (and
// CreatedAt when zero).
func (s *Store) AddMember(ctx context.Context, m *workspace.Member) error {
	var got *workspace.Member
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		got, err = insertMember(ctx, tx, m.WorkspaceID, m.UserID, m.Role, orNow(m.CreatedAt))
		return err
	})
	if err != nil {
		return err
	}
	*m = *got
	return nil
}

func (s *Store) Member(ctx context.Context, workspaceID, userID int64) (*workspace.Member, error) {
	return member(ctx, s.db, workspaceID, userID)
}

var memberList = listSpec{
	columns:  memberColumns,
	from:     "revops_members m JOIN revops_users u ON u.id = m.user_id",
	sorts:    map[string]string{"created_at": "m.created_at", "email": "u.email", "role": "m.role"},
	tieBreak: "m.user_id",
	search:   []string{"u.email", "u.name"},
	created:  "m.created_at",
}

// ListMembers lists the workspace's members, by user id unless sorted.
func (s *Store) ListMembers(ctx context.Context, workspaceID int64, p core.ListParams) ([]workspace.Member, int, error) {
	if p.Filter.Status != "" {
		return nil, 0, core.Invalid("status", "Members cannot be filtered by status.")
	}
	var q listQuery
	q.add("m.workspace_id = ?", workspaceID)
	return listRows(ctx, s.db, &memberList, &q, p, "members", (*memberRow).member)
}

// RemoveMember removes a membership unless it is the workspace's last
// owner. The workspace row lock makes the owner count and the delete atomic
// against concurrent removals (PostgreSQL READ COMMITTED included).
func (s *Store) RemoveMember(ctx context.Context, workspaceID, userID int64) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		var role string
		err := tx.NewRaw("SELECT role FROM revops_members WHERE workspace_id = ? AND user_id = ?", workspaceID, userID).Scan(ctx, &role)
		if err != nil {
			return fail("remove member", err, "")
		}
		if role == roleOwner {
			var owners int
			err := tx.NewRaw("SELECT COUNT(*) FROM revops_members WHERE workspace_id = ? AND role = ?", workspaceID, roleOwner).Scan(ctx, &owners)
			if err != nil {
				return fail("remove member", err, "")
			}
			if owners <= 1 {
				return core.Conflict("A workspace must keep at least one owner.")
			}
		}
		res, err := tx.NewRaw("DELETE FROM revops_members WHERE workspace_id = ? AND user_id = ?", workspaceID, userID).Exec(ctx)
		return mustAffect("remove member", res, err)
	})
}

// ---- invitations ----

type invitationRow struct {
	ID          int64      `bun:"id"`
	WorkspaceID int64      `bun:"workspace_id"`
	Email       string     `bun:"email"`
	Role        string     `bun:"role"`
	TokenHash   string     `bun:"token_hash"`
	InvitedBy   int64      `bun:"invited_by"`
	ExpiresAt   time.Time  `bun:"expires_at"`
	AcceptedAt  *time.Time `bun:"accepted_at"`
	CreatedAt   time.Time  `bun:"created_at"`
}

const invitationColumns = "i.id, i.workspace_id, i.email, i.role, i.token_hash, i.invited_by, i.expires_at, i.accepted_at, i.created_at"

func (r *invitationRow) invitation() workspace.Invitation {
	return workspace.Invitation{
		ID: r.ID, WorkspaceID: r.WorkspaceID, Email: r.Email, Role: r.Role, TokenHash: r.TokenHash,
		InvitedBy: r.InvitedBy, ExpiresAt: utc(r.ExpiresAt), AcceptedAt: utcp(r.AcceptedAt), CreatedAt: utc(r.CreatedAt),
	}
}

// CreateInvitation inserts inv with its email lower-case. A pending
// invitation for the same email in the workspace, or a duplicate token hash,
// is a conflict; an unknown workspace is not found.
func (s *Store) CreateInvitation(ctx context.Context, inv *workspace.Invitation) error {
	email := strings.ToLower(inv.Email)
	created := orNow(inv.CreatedAt)
	expires := ts(inv.ExpiresAt)
	var id int64
	err := s.db.NewRaw(`INSERT INTO revops_invitations (workspace_id, email, role, token_hash, invited_by, expires_at, accepted_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		inv.WorkspaceID, email, inv.Role, inv.TokenHash, nullID(inv.InvitedBy), expires, tsp(inv.AcceptedAt), created).Scan(ctx, &id)
	if err != nil {
		return fail("create invitation", err, "A pending invitation for this email already exists.")
	}
	inv.ID, inv.Email, inv.CreatedAt, inv.ExpiresAt, inv.AcceptedAt = id, email, created, expires, tsp(inv.AcceptedAt)
	return nil
}

var invitationList = listSpec{
	columns: invitationColumns,
	from:    "revops_invitations i",
	sorts: map[string]string{
		"id": "i.id", "email": "i.email", "role": "i.role",
		"created_at": "i.created_at", "expires_at": "i.expires_at",
	},
	tieBreak: "i.id",
	search:   []string{"i.email"},
	created:  "i.created_at",
}

func (s *Store) ListInvitations(ctx context.Context, workspaceID int64, p core.ListParams) ([]workspace.Invitation, int, error) {
	if p.Filter.Status != "" {
		return nil, 0, core.Invalid("status", "Invitations cannot be filtered by status.")
	}
	var q listQuery
	q.add("i.workspace_id = ?", workspaceID)
	q.add("i.accepted_at IS NULL")
	return listRows(ctx, s.db, &invitationList, &q, p, "invitations", (*invitationRow).invitation)
}

// RevokeInvitation deletes a pending invitation.
func (s *Store) RevokeInvitation(ctx context.Context, workspaceID, id int64) error {
	res, err := s.db.NewRaw("DELETE FROM revops_invitations WHERE workspace_id = ? AND id = ? AND accepted_at IS NULL", workspaceID, id).Exec(ctx)
	return mustAffect("revoke invitation", res, err)
}

// AcceptInvitation claims the invitation with a conditional update (only
// one concurrent caller can), then adds the member; a membership conflict
// rolls the claim back.
func (s *Store) AcceptInvitation(ctx context.Context, tokenHash, email string, userID int64, now time.Time) (*workspace.Member, error) {
	now = ts(now)
	var m *workspace.Member
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var claimed struct {
			WorkspaceID int64  `bun:"workspace_id"`
			Role        string `bun:"role"`
		}
		err := tx.NewRaw(`UPDATE revops_invitations SET accepted_at = ?
WHERE token_hash = ? AND email = ? AND accepted_at IS NULL AND expires_at > ?
RETURNING workspace_id, role`, now, tokenHash, strings.ToLower(email), now).Scan(ctx, &claimed)
		if err != nil {
			return fail("accept invitation", err, "")
		}
		m, err = insertMember(ctx, tx, claimed.WorkspaceID, userID, claimed.Role, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// InvitationByToken returns the pending, unexpired invitation with tokenHash.
func (s *Store) InvitationByToken(ctx context.Context, tokenHash string, now time.Time) (*workspace.Invitation, error) {
	var r invitationRow
	err := s.db.NewRaw("SELECT "+invitationColumns+" FROM revops_invitations i WHERE i.token_hash = ? AND i.accepted_at IS NULL AND i.expires_at > ?",
		tokenHash, ts(now)).Scan(ctx, &r)
	if err != nil {
		return nil, fail("get invitation by token", err, "")
	}
	inv := r.invitation()
	return &inv, nil
}

// SetMemberRole changes a member's role unless that would leave the
// workspace without an owner; the workspace row lock makes the owner count
// and the update atomic against concurrent changes and removals.
func (s *Store) SetMemberRole(ctx context.Context, workspaceID, userID int64, from, role string) (*workspace.Member, error) {
	var m *workspace.Member
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		var cur string
		if err := tx.NewRaw("SELECT role FROM revops_members WHERE workspace_id = ? AND user_id = ?", workspaceID, userID).Scan(ctx, &cur); err != nil {
			return fail("set member role", err, "")
		}
		if cur != from {
			return core.Conflict("The member's role changed meanwhile (now %s).", cur)
		}
		if cur == roleOwner && role != roleOwner {
			var owners int
			if err := tx.NewRaw("SELECT COUNT(*) FROM revops_members WHERE workspace_id = ? AND role = ?", workspaceID, roleOwner).Scan(ctx, &owners); err != nil {
				return fail("set member role", err, "")
			}
			if owners <= 1 {
				return core.Conflict("A workspace must keep at least one owner.")
			}
		}
		res, err := tx.NewRaw("UPDATE revops_members SET role = ? WHERE workspace_id = ? AND user_id = ?", role, workspaceID, userID).Exec(ctx)
		if err := mustAffect("set member role", res, err); err != nil {
			return err
		}
		m, err = member(ctx, tx, workspaceID, userID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// ---- join codes ----

type joinCodeRow struct {
	ID          int64      `bun:"id"`
	WorkspaceID int64      `bun:"workspace_id"`
	CodeHash    string     `bun:"code_hash"`
	Hint        string     `bun:"hint"`
	Role        string     `bun:"role"`
	ExpiresAt   *time.Time `bun:"expires_at"`
	RevokedAt   *time.Time `bun:"revoked_at"`
	Uses        int        `bun:"uses"`
	CreatedBy   int64      `bun:"created_by"`
	CreatedAt   time.Time  `bun:"created_at"`
}

const joinCodeColumns = "c.id, c.workspace_id, c.code_hash, c.hint, c.role, c.expires_at, c.revoked_at, c.uses, c.created_by, c.created_at"

func (r *joinCodeRow) joinCode() workspace.JoinCode {
	return workspace.JoinCode{
		ID: r.ID, WorkspaceID: r.WorkspaceID, CodeHash: r.CodeHash, Hint: r.Hint, Role: r.Role,
		ExpiresAt: utcp(r.ExpiresAt), RevokedAt: utcp(r.RevokedAt), Uses: r.Uses, CreatedBy: r.CreatedBy, CreatedAt: utc(r.CreatedAt),
	}
}

// CreateJoinCode inserts c. A duplicate code hash is a conflict, an unknown
// workspace not found.
func (s *Store) CreateJoinCode(ctx context.Context, c *workspace.JoinCode) error {
	created := orNow(c.CreatedAt)
	var id int64
	err := s.db.NewRaw(`INSERT INTO revops_join_codes (workspace_id, code_hash, hint, role, expires_at, revoked_at, uses, created_by, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		c.WorkspaceID, c.CodeHash, c.Hint, c.Role, tsp(c.ExpiresAt), tsp(c.RevokedAt), c.Uses, nullID(c.CreatedBy), created).Scan(ctx, &id)
	if err != nil {
		return fail("create join code", err, "A join code with this hash already exists.")
	}
	c.ID, c.CreatedAt, c.ExpiresAt, c.RevokedAt = id, created, tsp(c.ExpiresAt), tsp(c.RevokedAt)
	return nil
}

var joinCodeList = listSpec{
	columns: joinCodeColumns,
	from:    "revops_join_codes c",
	sorts: map[string]string{
		"id": "c.id", "role": "c.role", "uses": "c.uses",
		"created_at": "c.created_at", "expires_at": "c.expires_at",
	},
	tieBreak: "c.id",
	search:   []string{"c.hint"},
	created:  "c.created_at",
}

func (s *Store) ListJoinCodes(ctx context.Context, workspaceID int64, p core.ListParams) ([]workspace.JoinCode, int, error) {
	if p.Filter.Status != "" {
		return nil, 0, core.Invalid("status", "Join codes cannot be filtered by status.")
	}
	var q listQuery
	q.add("c.workspace_id = ?", workspaceID)
	q.add("c.revoked_at IS NULL")
	return listRows(ctx, s.db, &joinCodeList, &q, p, "join codes", (*joinCodeRow).joinCode)
}

func (s *Store) RevokeJoinCode(ctx context.Context, workspaceID, id int64, at time.Time) error {
	res, err := s.db.NewRaw("UPDATE revops_join_codes SET revoked_at = ? WHERE workspace_id = ? AND id = ? AND revoked_at IS NULL",
		orNow(at), workspaceID, id).Exec(ctx)
	return mustAffect("revoke join code", res, err)
}

// JoinByCode counts the use with an atomic increment (which also locks the
// code's row), then adds the member; a membership conflict rolls the count
// back.
func (s *Store) JoinByCode(ctx context.Context, codeHash string, userID int64, now time.Time) (*workspace.Member, error) {
	now = ts(now)
	var m *workspace.Member
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var code struct {
			WorkspaceID int64  `bun:"workspace_id"`
			Role        string `bun:"role"`
		}
		err := tx.NewRaw(`UPDATE revops_join_codes SET uses = uses + 1
WHERE code_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
RETURNING workspace_id, role`, codeHash, now).Scan(ctx, &code)
		if err != nil {
			return fail("join by code", err, "")
		}
		m, err = insertMember(ctx, tx, code.WorkspaceID, userID, code.Role, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}
