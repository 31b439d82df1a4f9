-- 0007_audit: the append-only audit trail of sensitive actions.
--
-- No foreign keys on purpose: the trail outlives the workspace, user or key
-- it names (workspace.deleted is itself an event of the deleted workspace).
-- workspace_id 0 holds actions outside any workspace (logins, personal keys).
-- metadata is a JSON object.
CREATE TABLE revops_audit_events (
    id {{id}},
    workspace_id BIGINT NOT NULL DEFAULT 0,
    actor_kind TEXT NOT NULL,
    actor_id BIGINT NOT NULL DEFAULT 0,
    actor_key_id BIGINT NOT NULL DEFAULT 0,
    actor_display TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at {{timestamp}} NOT NULL
);
CREATE INDEX revops_audit_events_workspace_idx ON revops_audit_events (workspace_id, id);
CREATE INDEX revops_audit_events_action_idx ON revops_audit_events (workspace_id, action, id);
