// Package audit is the append-only trail of sensitive actions: who did what
// to which thing, in which workspace, from where and when. The store offers
// no way to change or remove an event, and neither does this package.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
)

// ActorKind says what kind of party acted.
type ActorKind string

// Actor kinds. A personal key or a user token acts as its user (Kind user,
// KeyID set for a key); a workspace key acts as itself (Kind key).
const (
	ActorUser      ActorKind = "user"
	ActorKey       ActorKind = "key"
	ActorSystem    ActorKind = "system"
	ActorAnonymous ActorKind = "anonymous" // an unauthenticated caller, e.g. a failed login
)

// Actor is who acted. Display is a snapshot (an email, a key's name and
// prefix) so that the trail stays readable after the user or key is gone.
type Actor struct {
	Kind    ActorKind
	ID      int64 // the user or key id; 0 for system and anonymous
	KeyID   int64 // the key the actor used, if any (a workspace key: its own id)
	Display string
}

// Ref is "kind:id" (e.g. "user:12"), the form the actor filter takes.
func (a Actor) Ref() string {
	if a.ID == 0 {
		return string(a.Kind)
	}
	return string(a.Kind) + ":" + strconv.FormatInt(a.ID, 10)
}

// Actions revops records itself. Hosts may record their own with any name
// of the same shape (ValidAction).
const (
	LoginSucceeded             = "login.succeeded"
	LoginFailed                = "login.failed"
	TokenReuseDetected         = "token.reuse_detected"
	APIKeyCreated              = "api_key.created"
	APIKeyRotated              = "api_key.rotated"
	APIKeyRevoked              = "api_key.revoked"
	MemberAdded                = "member.added"
	MemberRemoved              = "member.removed"
	MemberRoleChanged          = "member.role_changed"
	TOTPEnrolled               = "totp.enrolled" // a new secret, pending confirmation
	TOTPEnabled                = "totp.enabled"  // confirmed with a first code
	TOTPDisabled               = "totp.disabled"
	TOTPRecoveryCodeUsed       = "totp.recovery_code_used"
	TOTPRecoveryCodesReplaced  = "totp.recovery_codes_replaced" // a new set; the old codes stop working
	WorkspaceTOTPPolicyChanged = "workspace.totp_policy_changed"
	WorkspaceDeleted           = "workspace.deleted"
	SecretRevealed             = "secret.revealed"
	SessionRevoked             = "session.revoked"
	UserCreated                = "user.created"
)

// Actions lists revops's own actions, for documentation and tests.
var Actions = []string{
	LoginSucceeded, LoginFailed, TokenReuseDetected,
	APIKeyCreated, APIKeyRotated, APIKeyRevoked,
	MemberAdded, MemberRemoved, MemberRoleChanged,
	TOTPEnrolled, TOTPEnabled, TOTPDisabled, TOTPRecoveryCodeUsed, TOTPRecoveryCodesReplaced, WorkspaceTOTPPolicyChanged, WorkspaceDeleted,
	SecretRevealed, SessionRevoked, UserCreated,
}

// Event is one audited action. Times are UTC with microsecond precision.
type Event struct {
	ID          int64
	WorkspaceID int64 // 0 for actions outside any workspace (login, personal keys)
	Actor       Actor
	Action      string
	TargetType  string // "api_key", "user", "workspace" …; "" when none
	TargetID    string
	IP          string
	UserAgent   string
	RequestID   string
	Metadata    map[string]any // JSON object; nil is stored as {}
	CreatedAt   time.Time
}

// Filter narrows a listing. WorkspaceID is always applied: a workspace's
// trail never shows another workspace's events (0 lists events outside any
// workspace).
type Filter struct {
	WorkspaceID int64
	// Action is an exact action, or a family ending in ".*" ("api_key.*").
	Action string
	// Actor is a user ("user", UserID) or a key ("key", the key used,
	// whoever it belongs to); zero Kind means any actor.
	ActorKind ActorKind
	ActorID   int64
}

// Store persists events. Contract, checked by storetest:
//   - AppendAuditEvent fills ID (and CreatedAt when zero); events are never
//     changed or removed (there is no method to do it), and survive the
//     deletion of their workspace, user or key;
//   - ListAuditEvents returns the events of f.WorkspaceID only, newest first
//     unless sorted (sorts: id, created_at), with the created_after/before
//     filters of core.ListParams and the total before paging; a status,
//     updated_* or search filter is a validation error.
type Store interface {
	AppendAuditEvent(ctx context.Context, e *Event) error
	ListAuditEvents(ctx context.Context, f Filter, p core.ListParams) ([]Event, int, error)
}

// Bounds on what an event may carry; longer text is clipped, never refused,
// so that recording cannot fail on what a client sent.
const (
	MaxAction     = 64
	MaxText       = 255 // display, target id, IP, request id
	MaxUserAgent  = 512
	MaxMetadataKB = 16
)

var actionRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// ValidAction reports whether a names an action: dotted lower-case words,
// at least two ("api_key.created").
func ValidAction(a string) bool { return len(a) <= MaxAction && actionRE.MatchString(a) }

// ParseActionFilter checks an action filter: an action or "family.*".
func ParseActionFilter(s string) error {
	if fam, ok := strings.CutSuffix(s, ".*"); ok {
		if ValidAction(fam + ".x") {
			return nil
		}
	} else if ValidAction(s) {
		return nil
	}
	return core.Invalid("action", "The action must be an action name such as api_key.created, or a family such as api_key.*.")
}

// ParseActorFilter parses "user:12", "key:5" or "system" into a filter's
// actor.
func ParseActorFilter(s string) (ActorKind, int64, error) {
	kind, id, ok := strings.Cut(s, ":")
	switch {
	case !ok && (ActorKind(s) == ActorSystem || ActorKind(s) == ActorAnonymous):
		return ActorKind(s), 0, nil
	case ok && (ActorKind(kind) == ActorUser || ActorKind(kind) == ActorKey):
		n, err := strconv.ParseInt(id, 10, 64)
		if err == nil && n > 0 && id[0] != '+' {
			return ActorKind(kind), n, nil
		}
	}
	return "", 0, core.Invalid("actor", "The actor must be user:<id>, key:<id>, system or anonymous.")
}

// Recorder writes events, filling the time and bounding every field.
type Recorder struct {
	store Store
	now   func() time.Time
}

// NewRecorder returns a Recorder on store; now is the clock (nil: time.Now).
func NewRecorder(store Store, now func() time.Time) (*Recorder, error) {
	if store == nil {
		return nil, errors.New("audit: NewRecorder needs a store")
	}
	if now == nil {
		now = time.Now
	}
	return &Recorder{store: store, now: now}, nil
}

// Record appends e. Its action must be valid; its time is now unless set.
func (r *Recorder) Record(ctx context.Context, e *Event) error {
	if !ValidAction(e.Action) {
		return fmt.Errorf("audit: invalid action %q", e.Action)
	}
	switch e.Actor.Kind {
	case ActorUser, ActorKey, ActorSystem, ActorAnonymous:
	default:
		return fmt.Errorf("audit: invalid actor kind %q", e.Actor.Kind)
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = r.now()
	}
	e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Microsecond)
	e.Actor.Display = clip(e.Actor.Display, MaxText)
	e.TargetType = clip(e.TargetType, MaxAction)
	e.TargetID = clip(e.TargetID, MaxText)
	e.IP = clip(e.IP, MaxText)
	e.RequestID = clip(e.RequestID, MaxText)
	e.UserAgent = clip(e.UserAgent, MaxUserAgent)
	if e.Metadata != nil {
		b, err := json.Marshal(e.Metadata)
		if err != nil {
			return fmt.Errorf("audit: metadata of %s: %w", e.Action, err)
		}
		if len(b) > MaxMetadataKB<<10 {
			e.Metadata = map[string]any{"truncated": true}
		}
	}
	return r.store.AppendAuditEvent(ctx, e)
}

// List lists events matching f.
func (r *Recorder) List(ctx context.Context, f Filter, p core.ListParams) ([]Event, int, error) {
	if f.Action != "" {
		if err := ParseActionFilter(f.Action); err != nil {
			return nil, 0, err
		}
	}
	return r.store.ListAuditEvents(ctx, f, p)
}

// clip cuts s to at most n bytes on a rune boundary, dropping invalid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
