package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
)

var _ audit.Store = (*Store)(nil)

type auditRow struct {
	ID           int64     `bun:"id"`
	WorkspaceID  int64     `bun:"workspace_id"`
	ActorKind    string    `bun:"actor_kind"`
	ActorID      int64     `bun:"actor_id"`
	ActorKeyID   int64     `bun:"actor_key_id"`
	ActorDisplay string    `bun:"actor_display"`
	Action       string    `bun:"action"`
	TargetType   string    `bun:"target_type"`
	TargetID     string    `bun:"target_id"`
	IP           string    `bun:"ip"`
	UserAgent    string    `bun:"user_agent"`
	RequestID    string    `bun:"request_id"`
	Metadata     string    `bun:"metadata"`
	CreatedAt    time.Time `bun:"created_at"`
}

// AppendAuditEvent stores e and sets its ID. There is deliberately no
// update or delete counterpart.
func (s *Store) AppendAuditEvent(ctx context.Context, e *audit.Event) error {
	meta := "{}"
	if len(e.Metadata) > 0 {
		b, err := json.Marshal(e.Metadata)
		if err != nil {
			return fmt.Errorf("sqlstore: append audit event: metadata: %w", err)
		}
		meta = string(b)
	}
	e.CreatedAt = orNow(e.CreatedAt)
	err := s.db.NewRaw(`INSERT INTO revops_audit_events (workspace_id, actor_kind, actor_id, actor_key_id, actor_display, action,
  target_type, target_id, ip, user_agent, request_id, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.WorkspaceID, string(e.Actor.Kind), e.Actor.ID, e.Actor.KeyID, e.Actor.Display, e.Action,
		e.TargetType, e.TargetID, e.IP, e.UserAgent, e.RequestID, meta, e.CreatedAt).Scan(ctx, &e.ID)
	return fail("append audit event", err, "")
}

var auditList = listSpec{
	columns: "a.id, a.workspace_id, a.actor_kind, a.actor_id, a.actor_key_id, a.actor_display, a.action, a.target_type, a.target_id, " +
		"a.ip, a.user_agent, a.request_id, a.metadata, a.created_at",
	from:     "revops_audit_events a",
	sorts:    map[string]string{"id": "a.id", "created_at": "a.created_at"},
	tieBreak: "a.id",
	created:  "a.created_at",
}

// ListAuditEvents lists one workspace's events, newest first by default.
func (s *Store) ListAuditEvents(ctx context.Context, f audit.Filter, p core.ListParams) ([]audit.Event, int, error) {
	var q listQuery
	q.add("a.workspace_id = ?", f.WorkspaceID)
	if p.Filter.Status != "" {
		return nil, 0, core.Invalid("status", "Audit events have no status.")
	}
	if p.Filter.UpdatedAfter != (time.Time{}) || p.Filter.UpdatedBefore != (time.Time{}) {
		return nil, 0, core.Invalid("updated_after", "Audit events are never updated; filter by created_after and created_before.")
	}
	if fam, ok := strings.CutSuffix(f.Action, ".*"); ok {
		q.add("a.action LIKE ? ESCAPE '"+likeEscape+"'", strings.NewReplacer(likeEscape, likeEscape+likeEscape, "%", likeEscape+"%", "_", likeEscape+"_").Replace(fam)+".%")
	} else if f.Action != "" {
		q.add("a.action = ?", f.Action)
	}
	switch f.ActorKind {
	case "":
	case audit.ActorKey:
		// A key acts as itself (workspace key) or for its user (personal
		// key): either way the key used is actor_key_id.
		q.add("a.actor_key_id = ?", f.ActorID)
	default:
		q.add("a.actor_kind = ? AND a.actor_id = ?", string(f.ActorKind), f.ActorID)
	}
	if len(p.Sort) == 0 {
		p.Sort = []core.Sort{{Field: "id", Desc: true}}
	}
	return listRows(ctx, s.db, &auditList, &q, p, "audit events", func(r *auditRow) audit.Event {
		e := audit.Event{ID: r.ID, WorkspaceID: r.WorkspaceID,
			Actor:  audit.Actor{Kind: audit.ActorKind(r.ActorKind), ID: r.ActorID, KeyID: r.ActorKeyID, Display: r.ActorDisplay},
			Action: r.Action, TargetType: r.TargetType, TargetID: r.TargetID, IP: r.IP, UserAgent: r.UserAgent, RequestID: r.RequestID,
			CreatedAt: r.CreatedAt.UTC()}
		// Written by AppendAuditEvent as a JSON object; an unreadable one
		// is shown empty rather than hiding the event.
		_ = json.Unmarshal([]byte(r.Metadata), &e.Metadata)
		return e
	})
}
